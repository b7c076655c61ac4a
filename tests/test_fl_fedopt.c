/* test_fl_fedopt.c: the server optimizers ([fl] server_opt, shared/fl/server_opt.h) and FedNova
 * ([fl] aggregator = fednova, shared/fl/aggregate.h) in real federated runs through the fedvim binary
 * ($FEDVIM_BIN: coordinator and worker processes over CURVE on localhost), on the synthetic set
 * with the tiny model (10 classes, chance 10%):
 *  - each of fedavgm, fedadam, fedyogi and fedadagrad trains above chance in 4 rounds, and the
 *    resolved config records the optimizer;
 *  - FedNova on a Dirichlet split (unequal local steps) with local and server momentum trains above
 *    chance and gives the same model bitwise with 1 and 3 workers;
 *  - FedAdam resumed: a run killed with SIGKILL after round 2 or later and resumed ends with the
 *    model of the uninterrupted run bit for bit (the moments come back from the checkpoint, which
 *    holds them beside the model);
 *  - a client uploading huge finite values under FedAdam: exactly the rounds that aggregate it are
 *    rolled back (its v would overflow while the model stayed finite), the others train on.
 * Kept small: a few seconds in all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl_harness.h"
#include "fv_common.h"
#include "io/safetensors.h"

static fh_ctx H;

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 1200\ntest_size = 300\n"
                          "[model]\nname = tiny\n"
                          "[fl]\nclients = 6\nseed = 3\nworker_timeout = 120\nround_timeout = 120\n";

static void test_each_optimizer_learns(void **state) {
    (void)state;
    const char *opts[] = {"fedavgm", "fedadam", "fedyogi", "fedadagrad"};
    for (int i = 0; i < 4; i++) {
        char extra[256];
        snprintf(extra, sizeof extra, "[fl]\nrounds = 4\nworkers = 2\nserver_opt = %s\n[training]\nlr = 0.05\n", opts[i]);
        assert_int_equal(fh_run_exp(&H, opts[i], BASE, extra), 0);
        double acc = fh_final_accuracy(&H, opts[i]);
        print_message("%s: final accuracy %.3f\n", opts[i], acc);
        assert_true(acc > 0.3);
        char *cfg = fh_results_file(&H, opts[i], "config.resolved.ini");
        char line[64];
        snprintf(line, sizeof line, "\nserver_opt = %s\n", opts[i]);
        assert_non_null(strstr(cfg, line));
        free(cfg);
    }
}

static void test_fednova_workers_bitwise(void **state) {
    (void)state;
    /* label skew gives unequal shards, so unequal local steps; local and server momentum */
    const char *cfg = "aggregator = fednova\nserver_opt = fedavgm\nserver_momentum = 0.5\n[partition]\n"
                      "scheme = dirichlet\nalpha = 0.5\nmin_samples = 20\n[training]\nlr = 0.05\nbatch_size = 16\n"
                      "momentum = 0.5\nlocal_epochs = 2\n";
    char extra[512], a[65], b[65];
    snprintf(extra, sizeof extra, "[fl]\nrounds = 4\nworkers = 1\n%s[output]\nname = nova1\n", cfg);
    assert_int_equal(fh_run_exp(&H, "nova_w1", BASE, extra), 0);
    snprintf(extra, sizeof extra, "[fl]\nrounds = 4\nworkers = 3\n%s[output]\nname = nova3\n", cfg);
    assert_int_equal(fh_run_exp(&H, "nova_w3", BASE, extra), 0);
    fh_params_hash(&H, "nova1", a);
    fh_params_hash(&H, "nova3", b);
    assert_string_equal(a, b);
    double acc = fh_final_accuracy(&H, "nova1");
    print_message("fednova: final accuracy %.3f\n", acc);
    assert_true(acc > 0.3);
}

static void test_fedadam_resume_bitwise(void **state) {
    (void)state;
    const char *extra = "[fl]\nrounds = 8\nworkers = 2\nfraction = 0.5\nserver_opt = fedadam\nserver_lr = 0.02\n"
                        "[training]\nlr = 0.05\n";
    assert_int_equal(fh_run_exp(&H, "adam_ref", BASE, extra), 0);
    /* the same experiment under another name, killed after its second round */
    fh_cut(&H, "adam_cut", BASE, extra, 8);
    /* the checkpoint holds the moments beside the model */
    char ck[256];
    fh_path(&H, ck, sizeof ck, "results/adam_cut/checkpoint.safetensors");
    fv_err e = {{0}};
    fv_st_file *f = fv_st_read(ck, &e);
    assert_non_null(f);
    const fv_st_tensor *g = fv_st_find(f, "global"), *s = fv_st_find(f, "server_state");
    assert_non_null(g);
    assert_non_null(s);
    assert_int_equal(fv_st_numel(s), 2 * fv_st_numel(g)); /* m and v over the tiny model (no buffers) */
    fv_st_file_destroy(&f);
    fh_resume_matches(&H, "adam_cut", 8, "adam_ref");
}

/* Regression: a client uploading huge finite values (3e38) made FedAdam's v infinite while the model
 * stayed finite (D / sqrt(v) ~ 1 before the overflow, 0 after), so nothing was rolled back and every
 * later step was 0: the run silently stalled. Now a round whose server state is not finite is rolled
 * back (state included), and the rounds without the client train on. */
static void test_huge_update_rolled_back(void **state) {
    (void)state;
    const char *extra = "[fl]\nrounds = 6\nworkers = 2\nfraction = 0.5\nserver_opt = fedadam\n[training]\nlr = 0.05\n"
                        "[adversary]\nkind = huge\nclients = 2\n[security]\nmax_strikes = 1000\n";
    assert_int_equal(fh_run_exp(&H, "adam_huge", BASE, extra), 0);
    char *m = fh_results_file(&H, "adam_huge", "metrics.jsonl");
    assert_non_null(m);
    int n = fh_count_lines(m), bad = 0, last_bad = 0;
    double acc_after_bad = 0, acc_end = 0;
    for (int i = 0; i < n; i++) {
        char *l = fh_line(m, i);
        int mal = (int)fh_json_num(l, "malicious");
        int rolled = strstr(l, "\"rolled_back\":true") != NULL;
        assert_int_equal(rolled, mal > 0); /* exactly the rounds that aggregated the huge update */
        if (mal) bad++, last_bad = i + 1, acc_after_bad = fh_json_num(l, "test_accuracy");
        acc_end = fh_json_num(l, "test_accuracy");
        free(l);
    }
    free(m);
    print_message("%d of %d rounds rolled back (last %d); accuracy %.3f then, %.3f at the end\n", bad, n, last_bad,
                  acc_after_bad, acc_end);
    assert_true(bad >= 1 && last_bad < n); /* the seed samples the client, then rounds without it */
    assert_true(acc_end > acc_after_bad);  /* and those rounds still train */
}

int main(void) {
    int rc = fh_init(&H, "fl_fedopt");
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_optimizer_learns),
        cmocka_unit_test(test_fednova_workers_bitwise),
        cmocka_unit_test(test_fedadam_resume_bitwise),
        cmocka_unit_test(test_huge_update_rolled_back),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    fh_cleanup(&H);
    return rc;
}
