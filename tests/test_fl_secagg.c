/* test_fl_secagg.c: secure aggregation ([secagg], docs/secagg.md) in real federated runs through
 * the fedvim binary ($FEDVIM_BIN: coordinator and worker processes over CURVE on localhost), on the
 * synthetic set with the tiny model:
 *  - a round's sum equals plain aggregation: the same experiment with and without [secagg] (every
 *    pair masking, and SecAgg+ neighbourhoods of 2) ends, after 3 rounds, with models within 1e-5
 *    of each other per coordinate. The fixed point's error is below 1e-8 per round here (6 clients,
 *    18 fractional bits over 1,200 samples: 6 x 0.5 / (2^18 x 1200)); 1e-5 leaves room for float
 *    rounding carried through training, while a client's update lost or counted twice moves the
 *    model by ~1e-2. metrics.jsonl carries the protocol's figures and the resolved config the section;
 *  - (a client dropping after masking: test_fl_secagg_dropout.c)
 *  - resume: a run killed with SIGKILL after round 2 and resumed ends with the uninterrupted run's
 *    model bit for bit (the masks are random but cancel exactly in integer arithmetic);
 *  - the curious server's inversion sees only the aggregate: read as the victim's update, or
 *    ([secagg] attacker = cohort) as one step over the union of the 4 clients' 8 images, each
 *    reconstructed and measured (attacks.jsonl says which reading and how many clients);
 *  - the config refusals: each rule that needs one client's update, naming its key.
 * A few seconds each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_harness.h"
#include "fv_common.h"

#define TOL 1e-5

static fh_ctx H;

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 1200\ntest_size = 300\n"
                          "[model]\nname = tiny\n[training]\nlr = 0.05\n"
                          "[fl]\nclients = 6\nworkers = 2\nseed = 3\nworker_timeout = 60\n"
                          "round_timeout = 120\n";

static void test_sum_equals_plain(void **state) {
    (void)state;
    assert_int_equal(fh_run_exp(&H, "plain", BASE, "[fl]\nrounds = 3\n"), 0);
    assert_int_equal(fh_run_exp(&H, "mesh", BASE, "[fl]\nrounds = 3\n[secagg]\nenabled = true\n"), 0);
    assert_int_equal(fh_run_exp(&H, "plus", BASE, "[fl]\nrounds = 3\n[secagg]\nenabled = true\nneighbours = 2\n"), 0);
    const double g1 = fh_model_gap(&H, "plain", "mesh"), g2 = fh_model_gap(&H, "plain", "plus");
    print_message("max |secagg - plain|: every pair %.3g, neighbourhoods of 2 %.3g\n", g1, g2);
    assert_true(g1 <= TOL);
    assert_true(g2 <= TOL);
    assert_true(fh_file_has(&H, "results/mesh/metrics.jsonl",
                            "\"secagg\":{\"keys\":6,\"shares\":6,\"survivors\":6,\"dropped_after_shares\":0,"
                            "\"neighbours\":5,\"threshold\":4"));
    assert_true(fh_file_has(&H, "results/plus/metrics.jsonl", "\"neighbours\":2,\"threshold\":2"));
    assert_true(fh_file_has(&H, "results/mesh/config.resolved.ini", "[secagg]\nenabled = true\n"));
    assert_false(fh_file_has(&H, "results/plain/config.resolved.ini", "[secagg]"));
}

static void test_resume_bitwise(void **state) {
    (void)state;
    const char *extra = "[fl]\nrounds = 6\n[secagg]\nenabled = true\nneighbours = 4\n";
    assert_int_equal(fh_run_exp(&H, "sa_ref", BASE, extra), 0);
    fh_cut(&H, "sa_cut", BASE, extra, 6);
    fh_resume_matches(&H, "sa_cut", 6, "sa_ref");
}

/* The curious server's inversion under secure aggregation: it captures the round's aggregate only.
 * Read as the victim's update (attacker = victim) it reconstructs the victim's 2 images; read as one
 * step over the cohort's images (attacker = cohort: 4 clients of 2 images, one SGD step of batch 2
 * each, so the FedAvg mean is one step over all 8) it reconstructs and is measured against all 8. */
static void test_attack_on_the_sum(void **state) {
    (void)state;
    const char *base = "[data]\ndataset = synthetic\ntrain_size = 8\ntest_size = 50\n[model]\nname = lenet5\n"
                       "[training]\noptimizer = sgd\nlr = 0.1\nbatch_size = 2\n"
                       "[fl]\nclients = 4\nrounds = 2\nworkers = 2\nseed = 5\nworker_timeout = 120\n"
                       "[attack]\nkind = invert\nrounds = 2\nclient = 1\nsettings = iters=20\n";
    assert_int_equal(fh_run_exp(&H, "sum_victim", base, "[secagg]\nenabled = true\n"), 0);
    assert_int_equal(fh_run_exp(&H, "sum_cohort", base, "[secagg]\nenabled = true\nattacker = cohort\n"), 0);
    char *v = fh_results_file(&H, "sum_victim", "attacks.jsonl"), *c = fh_results_file(&H, "sum_cohort", "attacks.jsonl");
    assert_non_null(v);
    assert_non_null(c);
    assert_non_null(strstr(v, "\"status\":\"ok\""));
    assert_non_null(strstr(v, "\"upload\":\"aggregate as the victim's update\",\"cohort\":4"));
    assert_true(fh_json_num(v, "batch") == 2);
    assert_non_null(strstr(c, "\"status\":\"ok\""));
    assert_non_null(strstr(c, "\"upload\":\"aggregate as one step over the cohort's images\",\"cohort\":4"));
    assert_true(fh_json_num(c, "batch") == 8 && fh_json_num(c, "local_steps") == 1);
    const double s = fh_json_num(c, "ssim_original_median");
    assert_true(s > -1 && s <= 1);
    free(v), free(c);
}

static void test_config_refusals(void **state) {
    (void)state;
    const char *on = "[secagg]\nenabled = true\n";
    char x[512];
    snprintf(x, sizeof x, "%s[fl]\naggregator = krum\nkrum_f = 1\n", on);
    fh_expect_config_error(BASE, x, "[fl] aggregator", "secagg");
    snprintf(x, sizeof x, "%s[dp]\nenabled = true\n", on);
    fh_expect_config_error(BASE, x, "[dp] enabled", "secagg");
    snprintf(x, sizeof x, "%s[fl]\nmax_update_norm = 10\n", on);
    fh_expect_config_error(BASE, x, "[fl] max_update_norm", "secagg");
    snprintf(x, sizeof x, "%s[training]\nopt_state = keep\nmomentum = 0.9\n", on);
    fh_expect_config_error(BASE, x, "[training] opt_state", "secagg");
    snprintf(x, sizeof x, "%s[fl]\nfraction = 0.34\n", on);
    fh_expect_config_error(BASE, x, "[fl] fraction", "at least 3");
    fh_expect_config_error(BASE, "[secagg]\nneighbours = 3\n", "[secagg] neighbours", "odd");
    snprintf(x, sizeof x, "%s[fl]\naggregator = scaffold\n", on);
    fh_expect_config_error(BASE, x, "[fl] aggregator", "secagg");
    fh_expect_config_error(BASE, "[secagg]\nattacker = cohort\n", "[secagg] attacker", "enabled");
    snprintf(x, sizeof x, "%sattacker = cohort\n", on);
    fh_expect_config_error(BASE, x, "[secagg] attacker", "kind");
}

int main(void) {
    if (sodium_init() < 0) return 1;
    int rc = fh_init(&H, "fl_secagg");
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_sum_equals_plain),
        cmocka_unit_test(test_resume_bitwise),
        cmocka_unit_test(test_attack_on_the_sum),
    };
    rc = cmocka_run_group_tests(tests, fh_group_setup, NULL);
    fh_cleanup(&H);
    return rc;
}
