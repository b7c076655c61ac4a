/* test_fl_dp.c: DP-FedAvg ([dp] enabled) in real federated runs through the fedvim binary
 * ($FEDVIM_BIN: coordinator and worker processes over CURVE on localhost), on the synthetic set
 * (4 clients of equal size, 2 sampled per round, 3 rounds):
 *  - with noise_multiplier 0 and a clip no update reaches, DP-FedAvg is FedAvg with uniform
 *    weights: with equal shards, the plain run's per-round test loss to 1e-4 relative (the two
 *    differ only in float rounding: the delta form global + sum(d)/m against sum(x)/m);
 *  - every metrics line carries the dp fields; epsilon is the accountant's (q = 2/4, z, T = round)
 *    and grows with the rounds; a tiny clip clips every client;
 *  - two identical noisy runs give the same model bitwise, and so does one with 1 worker
 *    instead of 2; noise changes the model;
 *  - a robust aggregation rule ([fl] aggregator = median, shared/fl/aggregate.h) runs end to end:
 *    the resolved config records it, 1 and 2 workers give the same model bitwise, and the median of
 *    the 2 updates of a round (their mean) tracks the plain FedAvg run (equal shards).
 *  - a client that diverges under heavy noise is skipped for its round at once (`diverged`),
 *    with no strike against its worker.
 * Kept small so it runs in seconds, under ASan too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl/dp.h"
#include "fv_common.h"
#include "fl_harness.h"

static fh_ctx H;

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 800\ntest_size = 200\n"
                          "[model]\nname = lenet5\n"
                          "[training]\nlr = 0.05\nbatch_size = 16\n"
                          "[fl]\nclients = 4\nfraction = 0.5\nrounds = 3\nseed = 5\nworker_timeout = 120\nround_timeout = 60\n";

static double metric(const char *name, int i, const char *key) {
    char *m = fh_results_file(&H, name, "metrics.jsonl");
    char *l = fh_line(m, i);
    assert_non_null(l);
    double v = fh_json_num(l, key);
    free(l);
    free(m);
    return v;
}

static int run(const char *name, const char *workers, const char *dp) {
    char extra[512];
    snprintf(extra, sizeof extra, "[fl]\nworkers = %s\n%s", workers, dp ? dp : "");
    /* [fl] twice in one file is fine for INI as long as no key repeats */
    return fh_run_exp(&H, name, BASE, extra);
}

static void test_zero_noise_is_uniform_fedavg(void **state) {
    (void)state;
    assert_int_equal(run("plain", "2", NULL), 0);
    assert_int_equal(run("z0", "2", "[dp]\nenabled = true\nclip = 1e6\nnoise_multiplier = 0\n"), 0);
    for (int r = 0; r < 3; r++) {
        double a = metric("plain", r, "test_loss"), b = metric("z0", r, "test_loss");
        print_message("round %d: test loss plain %.9g, DP z = 0 %.9g\n", r + 1, a, b);
        assert_true(fabs(a - b) <= 1e-4 * fabs(a)); /* float rounding only */
        assert_true(metric("z0", r, "dp_clipped_fraction") == 0);
        char *pm = fh_results_file(&H, "plain", "metrics.jsonl");
        assert_null(strstr(pm, "dp_"));
        free(pm);
    }
}

static void test_noisy_runs(void **state) {
    (void)state;
    /* noise std 1.0 * 0.01 / 2 per coordinate: visible, yet small enough not to blow the model up */
    const char *dp = "[dp]\nenabled = true\nclip = 0.01\nnoise_multiplier = 1.0\n";
    assert_int_equal(run("dp_a", "2", dp), 0);
    assert_int_equal(run("dp_b", "2", dp), 0);
    assert_int_equal(run("dp_w1", "1", dp), 0);
    assert_int_equal(run("tiny", "2", "[dp]\nenabled = true\nclip = 1e-6\nnoise_multiplier = 0\n"), 0);
    char ha[65], hb[65], hw[65], ht[65];
    fh_params_hash(&H, "dp_a", ha);
    fh_params_hash(&H, "dp_b", hb);
    fh_params_hash(&H, "dp_w1", hw);
    fh_params_hash(&H, "tiny", ht);
    assert_string_equal(ha, hb); /* reproducible bitwise */
    assert_string_equal(ha, hw); /* whatever the number of workers */
    assert_string_not_equal(ha, ht);
    double prev = 0;
    for (int r = 0; r < 3; r++) {
        assert_true(metric("dp_a", r, "dp_clip") == 0.01);
        assert_true(metric("dp_a", r, "dp_noise_multiplier") == 1.0);
        assert_true(metric("dp_a", r, "dp_q") == 0.5);
        double f = metric("dp_a", r, "dp_clipped_fraction"), nm = metric("dp_a", r, "dp_norm_mean");
        assert_true(f >= 0 && f <= 1);
        assert_true(nm > 0 && isfinite(nm));
        /* the JSON prints 9 significant digits */
        double eps = metric("dp_a", r, "dp_epsilon"), want = fv_dp_epsilon(0.5, 1.0, r + 1, 1e-5, NULL);
        print_message("round %d: epsilon %.9g (accountant %.9g), clipped %.2f, mean norm %.4g\n", r + 1, eps, want,
                      f, nm);
        assert_true(fabs(eps - want) <= 1e-8 * want);
        assert_true(eps > prev);
        prev = eps;
        /* every delta is longer than 1e-6 */
        assert_true(metric("tiny", r, "dp_clipped_fraction") == 1);
    }
    char *s = fh_results_file(&H, "dp_a", "summary.json");
    assert_true(fabs(fh_json_num(s, "dp_epsilon") - fv_dp_epsilon(0.5, 1.0, 3, 1e-5, NULL)) < 1e-6);
    free(s);
}

/* Regression: a client whose training diverges under heavy DP noise used to send a NaN update,
 * which was rejected as an attack (a strike against its worker) and first waited for
 * fl.round_timeout (60 s here, 600 s by default), then was retried until dropped. Now the worker
 * reports the divergence (FV_WIRE_ERR_DIVERGED, issue 17): the client is skipped for the round at
 * once and counted in `diverged`, no worker gets a strike, and the run completes in seconds. */
static void test_unusable_update_fails_fast(void **state) {
    (void)state;
    double t0 = fv_now();
    assert_int_equal(
        fh_run_exp(&H, "diverged", BASE, "[fl]\nworkers = 2\n[dp]\nenabled = true\nclip = 0.5\nnoise_multiplier = 1.0\n"),
        0);
    double secs = fv_now() - t0;
    char *log = fh_results_file(&H, "diverged", "coordinator.log");
    assert_non_null(strstr(log, "diverged on worker"));
    assert_null(strstr(log, "security:"));
    free(log);
    double diverged = 0;
    for (int r = 0; r < 3; r++) diverged += metric("diverged", r, "diverged");
    assert_true(diverged >= 1);
    if (secs > 30.0) fail_msg("the run took %.1f s: a diverged client still waits for the round timeout", secs);
}

static void test_robust_median_run(void **state) {
    (void)state;
    assert_int_equal(run("fedavg_ref", "2", NULL), 0);
    assert_int_equal(run("median_w2", "2", "aggregator = median\n"), 0);
    assert_int_equal(run("median_w1", "1", "aggregator = median\n"), 0);
    char *cfg = fh_results_file(&H, "median_w2", "config.resolved.ini");
    assert_non_null(strstr(cfg, "\naggregator = median\n"));
    free(cfg);
    char h2[65], h1[65];
    fh_params_hash(&H, "median_w2", h2);
    fh_params_hash(&H, "median_w1", h1);
    assert_string_equal(h2, h1);
    for (int r = 0; r < 3; r++) {
        double a = metric("fedavg_ref", r, "test_loss"), b = metric("median_w2", r, "test_loss");
        print_message("round %d: test loss FedAvg %.9g, median %.9g\n", r + 1, a, b);
        assert_true(fabs(a - b) <= 1e-4 * fabs(a));
    }
}

int main(void) {
    int rc = fh_init(&H, "fl_dp");
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_noise_is_uniform_fedavg),
        cmocka_unit_test(test_noisy_runs),
        cmocka_unit_test(test_unusable_update_fails_fast),
        cmocka_unit_test(test_robust_median_run),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    fh_cleanup(&H);
    return rc;
}
