/* test_fl_scaffold.c: SCAFFOLD ([fl] aggregator = scaffold, shared/fl/scaffold.h) in real federated
 * runs through the fedvim binary ($FEDVIM_BIN: coordinator and worker processes over CURVE on
 * localhost), on the synthetic set with the tiny model (10 classes, chance 10%), Dirichlet(0.5)
 * label skew:
 *  - it trains above chance (accuracy > 0.3 after 4 rounds), its first round is FedAvg's bitwise
 *    (c = c_i = 0), and 1 and 3 workers give the same model bitwise (the coordinator holds every
 *    c_i: the workers are stateless); the checkpoint holds c (n_train floats) beside the model and
 *    each client's c_i is a client_state file;
 *  - a run of 8 rounds with half the clients per round, killed with SIGKILL after round 2 or later
 *    and resumed, ends with the model of the uninterrupted run bit for bit (c from the checkpoint,
 *    each c_i from its committed client-state file);
 *  - a rogue worker's updates with a missing, mis-sized or non-finite control delta are each refused
 *    with a strike naming it (the third bans the rogue) and the run completes with the honest worker;
 *  - a client uploading huge finite parameters ([adversary] huge): exactly the rounds that aggregate
 *    it are rolled back, none of them leaves a c_i version behind (c_i is written only for a sound
 *    round), c stays finite and the rounds without the client train on.
 * Kept small: about ten seconds in all. */
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
                          "[model]\nname = tiny\n[partition]\nscheme = dirichlet\nalpha = 0.5\nmin_samples = 20\n"
                          "[training]\nlr = 0.05\nbatch_size = 16\nlocal_epochs = 2\n"
                          "[fl]\nclients = 6\nseed = 3\nworker_timeout = 120\nround_timeout = 120\n";

static void test_learns_workers_bitwise(void **state) {
    (void)state;
    char a[65], b[65];
    assert_int_equal(fh_run_exp(&H, "scaf_w1", BASE, "[fl]\nrounds = 4\nworkers = 1\naggregator = scaffold\n"), 0);
    assert_int_equal(fh_run_exp(&H, "scaf_w3", BASE, "[fl]\nrounds = 4\nworkers = 3\naggregator = scaffold\n"), 0);
    fh_params_hash(&H, "scaf_w1", a);
    fh_params_hash(&H, "scaf_w3", b);
    assert_string_equal(a, b);
    double acc = fh_final_accuracy(&H, "scaf_w1");
    print_message("scaffold: final accuracy %.3f\n", acc);
    assert_true(acc > 0.3);
    /* the first round has no correction (c = c_i = 0) and eta_g = 1: FedAvg's round bitwise */
    assert_int_equal(fh_run_exp(&H, "scaf_r1", BASE, "[fl]\nrounds = 1\nworkers = 2\naggregator = scaffold\n"), 0);
    assert_int_equal(fh_run_exp(&H, "avg_r1", BASE, "[fl]\nrounds = 1\nworkers = 2\n"), 0);
    fh_params_hash(&H, "scaf_r1", a);
    fh_params_hash(&H, "avg_r1", b);
    assert_string_equal(a, b);
    /* c beside the model in the checkpoint; each client's c_i in client_state/ */
    char ck[256];
    fh_path(&H, ck, sizeof ck, "results/scaf_w1/checkpoint.safetensors");
    fv_err e = {{0}};
    fv_st_file *f = fv_st_read(ck, &e);
    assert_non_null(f);
    const fv_st_tensor *g = fv_st_find(f, "global"), *s = fv_st_find(f, "server_state");
    assert_non_null(g);
    assert_non_null(s);
    assert_int_equal(fv_st_numel(s), fv_st_numel(g)); /* c over the tiny model (no buffers) */
    fv_st_file_destroy(&f);
    char cs[256];
    fh_path(&H, cs, sizeof cs, "results/scaf_w1/client_state/c0_r4.safetensors");
    assert_int_equal(access(cs, F_OK), 0);
}

static void test_resume_bitwise(void **state) {
    (void)state;
    const char *extra = "[fl]\nrounds = 8\nworkers = 2\nfraction = 0.5\naggregator = scaffold\n";
    assert_int_equal(fh_run_exp(&H, "scaf_ref", BASE, extra), 0);
    /* the same experiment under another name, killed after its second round, resumed */
    fh_cut(&H, "scaf_cut", BASE, extra, 8);
    fh_resume_matches(&H, "scaf_cut", 8, "scaf_ref");
}

static void test_rogue_control(void **state) {
    (void)state;
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    fh_start_rogue_and_honest(&H, "scaf_rogue", "aggregator = scaffold", NULL, &rogue, ep, sizeof ep, &coord, &honest);
    fv_wire_msg m;
    assert_int_equal(fh_fake_next(&rogue, &m, 120), FEDVIM__ENVELOPE__BODY_TASK);
    const Fedvim__Task *t = m.env->task;
    const float *params = NULL, *ctl = NULL;
    size_t nc = 0;
    for (int i = 0; i < m.nframes; i++) {
        if (m.kind[i] == FEDVIM__FRAME_KIND__FRAME_PARAMS) params = m.frame[i];
        if (m.kind[i] == FEDVIM__FRAME_KIND__FRAME_CONTROL) ctl = m.frame[i], nc = m.count[i];
    }
    assert_non_null(params);
    assert_non_null(ctl);
    const size_t n = rogue.n_params; /* the tiny model: every parameter is trainable */
    assert_int_equal(nc, 2 * n);     /* c then c_i, both zero in round 1 */
    for (size_t i = 0; i < nc; i++) assert_true(ctl[i] == 0.0f);
    float *dc = calloc(n, sizeof(float));
    const fh_forgery missing = {0}, short_ = {.control = dc, .control_count = n - 1};
    fh_fake_forged_update(&rogue, t, params, &missing);
    fh_fake_forged_update(&rogue, t, params, &short_);
    dc[n / 2] = NAN;
    const fh_forgery nan = {.control = dc, .control_count = n};
    fh_fake_forged_update(&rogue, t, params, &nan); /* the third strike bans the rogue */
    free(dc);
    fv_wire_msg_close(&m);
    fh_end_scene(&rogue, coord, honest);
    const char *reasons[] = {"SCAFFOLD control delta of 0 floats, expected", "SCAFFOLD control delta of",
                             "non-finite value (NaN or Inf) in the SCAFFOLD control delta", "is banned"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (!fh_file_has(&H, "results/scaf_rogue/coordinator.log", reasons[i])) fail_msg("log lacks '%s'", reasons[i]);
    char *s = fh_results_file(&H, "scaf_rogue", "summary.json");
    assert_non_null(s); /* the honest worker finished the run */
    free(s);
}

static void test_rolled_back_round(void **state) {
    (void)state;
    const char *extra = "[fl]\nrounds = 6\nworkers = 2\nfraction = 0.5\naggregator = scaffold\n"
                        "[adversary]\nkind = huge\nclients = 2\n[security]\nmax_strikes = 1000\n";
    assert_int_equal(fh_run_exp(&H, "scaf_huge", BASE, extra), 0);
    char *m = fh_results_file(&H, "scaf_huge", "metrics.jsonl");
    assert_non_null(m);
    int n = fh_count_lines(m), bad = 0, last_bad = 0;
    double acc_after_bad = 0, acc_end = 0;
    for (int i = 0; i < n; i++) {
        char *l = fh_line(m, i);
        int mal = (int)fh_json_num(l, "malicious");
        int rolled = strstr(l, "\"rolled_back\":true") != NULL;
        assert_int_equal(rolled, mal > 0); /* exactly the rounds that aggregated the huge update */
        if (mal) {
            bad++, last_bad = i + 1, acc_after_bad = fh_json_num(l, "test_accuracy");
            for (int k = 0; k < 6; k++) { /* no c_i of a rolled-back round */
                char f[256];
                fh_path(&H, f, sizeof f, "results/scaf_huge/client_state/c%d_r%d.safetensors", k, i + 1);
                assert_int_not_equal(access(f, F_OK), 0);
            }
        }
        acc_end = fh_json_num(l, "test_accuracy");
        free(l);
    }
    free(m);
    print_message("%d of %d rounds rolled back (last %d); accuracy %.3f then, %.3f at the end\n", bad, n, last_bad,
                  acc_after_bad, acc_end);
    assert_true(bad >= 1 && last_bad < n); /* the seed samples the client, then rounds without it */
    assert_true(acc_end > acc_after_bad);
    char ck[256];
    fh_path(&H, ck, sizeof ck, "results/scaf_huge/checkpoint.safetensors");
    fv_err e = {{0}};
    fv_st_file *f = fv_st_read(ck, &e);
    assert_non_null(f);
    const fv_st_tensor *s = fv_st_find(f, "server_state");
    assert_non_null(s);
    for (size_t i = 0; i < fv_st_numel(s); i++) assert_true(isfinite(s->data[i]));
    fv_st_file_destroy(&f);
}

int main(void) {
    int rc = fh_init(&H, "fl_scaffold");
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_workers_bitwise),
        cmocka_unit_test(test_resume_bitwise),
        cmocka_unit_test(test_rogue_control),
        cmocka_unit_test(test_rolled_back_round),
    };
    rc = cmocka_run_group_tests(tests, fh_group_setup, NULL);
    fh_cleanup(&H);
    return rc;
}
