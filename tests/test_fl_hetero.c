/* test_fl_hetero.c: heterogeneous clients on the virtual clock in real federated runs through the
 * fedvim binary ($FEDVIM_BIN: coordinator and worker processes over CURVE on localhost), on the
 * synthetic set with the tiny model (docs/heterogeneity.md):
 *  - a hand-computed deadline run: 4 clients of 400 images (1 epoch), speeds 100, 40, 10 and 200
 *    images per virtual second, client 3 away during [1, 100), deadline 20 s. Round 1 (start 0):
 *    client 2 (40 s) straggles, client 3 goes offline at 1 s, the round ends at the deadline, 20 s;
 *    rounds 2 and 3 sample the 3 clients available (start 20 and 40, end 40 and 60), client 2
 *    straggling each time; metrics.jsonl says so (virtual_start, virtual_time, stragglers,
 *    offline, clients, sampled, dropped);
 *  - the same run killed with SIGKILL after round 2 or later and resumed ends with the model of the
 *    uninterrupted run bit for bit, and the same virtual times (the clock is replayed);
 *  - FedBuff (mode = async): the same model bitwise with 1 and 2 workers, above chance after 6
 *    server steps, every step buffering buffer_size updates with staleness and virtual time
 *    recorded; killed after step 2 and resumed, the same model bitwise and the same virtual
 *    times, staleness and lost updates step by step (the updates in flight and the schedule are
 *    checkpointed);
 *  - `fedvim trace` writes the same file for the same flags and refuses bad flags by name;
 *  - a bad trace stops `fedvim run` before any round with the file, line and field named.
 * A few seconds in all. */
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

static fh_ctx H;

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 400\n"
                          "[model]\nname = tiny\n[training]\nlr = 0.1\n";

/* ROOT/trace.csv of the deadline case; its path into out. */
static void deadline_trace(char *out, size_t cap) {
    fh_path(&H, out, cap, "trace.csv");
    fh_put(out, "client,speed,on,off\n0,100,0,inf\n1,40,0,inf\n2,10,0,inf\n3,200,0,1\n3,200,100,inf\n");
}

/* The [fl] text of the deadline case with `rounds` rounds. */
static void deadline_fl(char *out, size_t cap, int rounds) {
    char tr[256];
    deadline_trace(tr, sizeof tr);
    snprintf(out, cap, "[fl]\nclients = 4\nrounds = %d\nworkers = 2\nseed = 5\ntrace = %s\ndeadline = 20\n"
             "worker_timeout = 120\nround_timeout = 120\n", rounds, tr);
}

static void test_deadline_round(void **state) {
    (void)state;
    char fl[512];
    deadline_fl(fl, sizeof fl, 3);
    assert_int_equal(fh_run_exp(&H, "dl", BASE, fl), 0);
    char *sum = fh_results_file(&H, "dl", "summary.json");
    assert_non_null(strstr(sum, "\"min_size\":400,\"median_size\":400,\"max_size\":400"));
    free(sum);
    char *m = fh_results_file(&H, "dl", "metrics.jsonl");
    assert_non_null(m);
    char *l1 = fh_line(m, 0), *l2 = fh_line(m, 1), *l3 = fh_line(m, 2);
    assert_true(fh_json_num(l1, "virtual_start") == 0 && fh_json_num(l1, "virtual_time") == 20);
    assert_non_null(strstr(l1, "\"stragglers\":[2],\"offline\":[3]"));
    assert_true(fh_json_num(l1, "clients") == 2 && fh_json_num(l1, "sampled") == 4 && fh_json_num(l1, "dropped") == 2);
    assert_true(fh_json_num(l2, "virtual_start") == 20 && fh_json_num(l2, "virtual_time") == 40);
    assert_non_null(strstr(l2, "\"stragglers\":[2],\"offline\":[]"));
    assert_true(fh_json_num(l2, "clients") == 2 && fh_json_num(l2, "sampled") == 3 && fh_json_num(l2, "dropped") == 1);
    assert_true(fh_json_num(l3, "virtual_start") == 40 && fh_json_num(l3, "virtual_time") == 60);
    free(l1);
    free(l2);
    free(l3);
    free(m);
}

/* Fails unless runs a and b report the same value of each key, round by round, for n rounds. */
static void same_per_round(const char *a, const char *b, int n, const char *const *keys, int nk) {
    char *ma = fh_results_file(&H, a, "metrics.jsonl"), *mb = fh_results_file(&H, b, "metrics.jsonl");
    for (int i = 0; i < n; i++) {
        char *la = fh_line(ma, i), *lb = fh_line(mb, i);
        assert_non_null(la);
        assert_non_null(lb);
        for (int k = 0; k < nk; k++)
            if (fh_json_num(la, keys[k]) != fh_json_num(lb, keys[k]))
                fail_msg("round %d: %s %g in %s, %g in %s", i + 1, keys[k], fh_json_num(la, keys[k]), a,
                         fh_json_num(lb, keys[k]), b);
        free(la), free(lb);
    }
    free(ma), free(mb);
}

static void test_deadline_resume_bitwise(void **state) {
    (void)state;
    char fl[512];
    deadline_fl(fl, sizeof fl, 8);
    assert_int_equal(fh_run_exp(&H, "dl_ref", BASE, fl), 0);
    fh_cut(&H, "dl_cut", BASE, fl, 8);
    fh_resume_matches(&H, "dl_cut", 8, "dl_ref");
    const char *keys[] = {"virtual_time"};
    same_per_round("dl_ref", "dl_cut", 8, keys, 1);
    char *m = fh_results_file(&H, "dl_cut", "metrics.jsonl");
    for (int i = 0; i < 8; i++) {
        char *l = fh_line(m, i);
        assert_true(fh_json_num(l, "virtual_time") == 20.0 * (i + 1));
        free(l);
    }
    free(m);
}

/* The [fl] text of the FedBuff case: 8 clients of 200 images, `steps` server steps of 3 updates. */
static void async_fl(char *out, size_t cap, int workers, int steps) {
    char tr[256];
    fh_path(&H, tr, sizeof tr, "async.csv");
    fh_put(tr, "client,speed,on,off\n0,100,0,inf\n1,50,0,inf\n2,20,0,inf\n3,10,0,40\n3,10,60,inf\n"
               "4,100,5,inf\n5,25,0,inf\n6,40,0,inf\n7,5,0,inf\n");
    snprintf(out, cap, "[fl]\nclients = 8\nrounds = %d\nworkers = %d\nseed = 5\ntrace = %s\nmode = async\n"
             "buffer_size = 3\nconcurrency = 4\nserver_lr = 1\nworker_timeout = 120\nround_timeout = 120\n",
             steps, workers, tr);
}

static void test_fedbuff(void **state) {
    (void)state;
    char fl[512];
    async_fl(fl, sizeof fl, 1, 6);
    assert_int_equal(fh_run_exp(&H, "fb1", BASE, fl), 0);
    async_fl(fl, sizeof fl, 2, 6);
    assert_int_equal(fh_run_exp(&H, "fb2", BASE, fl), 0);
    char a[65], b[65];
    fh_params_hash(&H, "fb1", a);
    fh_params_hash(&H, "fb2", b);
    assert_string_equal(a, b);
    double acc = fh_final_accuracy(&H, "fb1");
    print_message("FedBuff accuracy after 6 steps: %.3f\n", acc);
    assert_true(acc > 0.2); /* chance is 0.1 */
    char *m = fh_results_file(&H, "fb1", "metrics.jsonl");
    double prev = 0;
    for (int i = 0; i < 6; i++) {
        char *l = fh_line(m, i);
        assert_true(fh_json_num(l, "buffered") == 3);
        assert_true(fh_json_num(l, "staleness_max") >= 0 && fh_json_num(l, "staleness_max") <= i);
        assert_true(fh_json_num(l, "virtual_time") > prev);
        prev = fh_json_num(l, "virtual_time");
        free(l);
    }
    free(m);
}

/* FedBuff resumed: the updates in flight and the schedule come back from the checkpoint, so a run
 * killed after its second server step ends, resumed, with the uninterrupted run's model bitwise and
 * the same virtual times, staleness and lost updates step by step. Regression: resume was refused
 * for async runs (nothing of the updates in flight was checkpointed). */
static void test_fedbuff_resume_bitwise(void **state) {
    (void)state;
    char fl[512];
    async_fl(fl, sizeof fl, 2, 12);
    assert_int_equal(fh_run_exp(&H, "fbr_ref", BASE, fl), 0);
    fh_cut(&H, "fbr_cut", BASE, fl, 12);
    fh_resume_matches(&H, "fbr_cut", 12, "fbr_ref");
    const char *keys[] = {"virtual_time", "staleness_mean", "dropped"};
    same_per_round("fbr_ref", "fbr_cut", 12, keys, 3);
}

/* `fedvim trace`: the same flags give the same file byte for byte; a bad flag is refused by name. */
static void test_trace_command(void **state) {
    (void)state;
    char a[256], b[256], out[256];
    fh_path(&H, a, sizeof a, "gen_a.csv");
    fh_path(&H, b, sizeof b, "gen_b.csv");
    fh_path(&H, out, sizeof out, "gen.out");
    const char *flags[] = {"--clients", "20", "--sigma", "1.5", "--mean-on", "50", "--mean-off", "25", "--horizon",
                           "1000", "--seed", "9"};
    assert_int_equal(fh_run(&H, out, 60, "trace", flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6],
                            flags[7], flags[8], flags[9], flags[10], flags[11], "--out", a, (const char *)NULL), 0);
    assert_int_equal(fh_run(&H, out, 60, "trace", flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6],
                            flags[7], flags[8], flags[9], flags[10], flags[11], "--out", b, (const char *)NULL), 0);
    assert_true(fh_same_file(a, b));
    assert_true(fh_contains(a, "client,speed,on,off\n0,"));
    assert_int_equal(fh_run(&H, out, 60, "trace", "--clients", "3", "--speed", "pareto", "--out", a, (const char *)NULL), 2);
    assert_true(fh_contains(out, "--speed: 'pareto' is not one of lognormal|constant"));
    assert_int_equal(fh_run(&H, out, 60, "trace", "--clients", "3", "--sigma", "-1", "--out", a, (const char *)NULL), 2);
    assert_true(fh_contains(out, "sigma"));
}

static void test_bad_trace(void **state) {
    (void)state;
    char tr[256], fl[512], out[256];
    fh_path(&H, tr, sizeof tr, "bad.csv");
    fh_put(tr, "client,speed,on,off\n0,100,0,inf\n1,-5,0,inf\n");
    snprintf(fl, sizeof fl, "[fl]\nclients = 2\nrounds = 1\nworkers = 1\ntrace = %s\n", tr);
    assert_int_not_equal(fh_run_exp(&H, "badtr", BASE, fl), 0);
    fh_path(&H, out, sizeof out, "badtr.out");
    assert_true(fh_contains(out, "bad.csv:3: speed: -5 is not > 0"));
}

int main(void) {
    int rc = fh_init(&H, "fl_hetero");
    if (rc) return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_round),
        cmocka_unit_test(test_deadline_resume_bitwise),
        cmocka_unit_test(test_fedbuff_resume_bitwise),
        cmocka_unit_test(test_fedbuff),
        cmocka_unit_test(test_trace_command),
        cmocka_unit_test(test_bad_trace),
    };
    rc = cmocka_run_group_tests(tests, fh_group_setup, NULL);
    fh_cleanup(&H);
    return rc;
}
