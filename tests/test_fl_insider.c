/* test_fl_insider.c: a client that holds a valid key (allow-listed, signing correctly) cannot
 * stop or wreck a run (issue 17). Each case is a regression test of one reported attack, run
 * end to end through the fedvim binary ($FEDVIM_BIN) with a scripted rogue (tests/fl_harness.h)
 * beside a real honest worker:
 *  1 a Join flood from a peer that does not read: its joins count against it and it is banned;
 *    the run completes with the undisturbed model;
 *  2+4 correctly signed updates of 3.4e38 everywhere with [fl] max_update_norm set: each is
 *    rejected and its client goes to the honest worker (never back to the rogue), so nothing
 *    is dropped and the model is the undisturbed one;
 *  2 the same attack with the bound off: the unsound aggregate is rolled back (not
 *    checkpointed), the rogue's client is named, and the run completes with a finite model;
 *  3 an Error "cannot serve this experiment" from the rogue ends only its part; when it is the
 *    only worker the run stops with a summary saying so;
 *  5 an honest client whose training diverges is skipped for the round and counted
 *    (`diverged`), with no strike for its worker.
 * Not here: insiders that go silent, stop reading or send what is refused (test_fl_peers.c); the
 * outsider attacks (test_fl_faults.c, test_security). */
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
#include <zmq.h>

#include "fl_harness.h"
#include "fv_common.h"

#define HUGE_VALUE 3.4e38f

/* The rogue serves tasks until it hears an Error or Shutdown (or timeout s pass): `huge` decides
 * per task whether it answers with HUGE_VALUE everywhere, or else with the global model unchanged.
 * Returns the first task's client. */
static int rogue_serve(fh_fake *f, double timeout, int (*huge)(int k)) {
    float *global = calloc(f->n_params, sizeof(float)), *bad = malloc(f->n_params * sizeof(float));
    for (size_t i = 0; i < f->n_params; i++) bad[i] = HUGE_VALUE;
    int first = -1;
    double end = fv_now() + timeout;
    for (int k = 0; fv_now() < end; k++) {
        fv_wire_msg m;
        int got = fh_fake_next(f, &m, end - fv_now());
        if (got != FEDVIM__ENVELOPE__BODY_TASK) {
            if (got) fv_wire_msg_close(&m);
            break;
        }
        if (m.nframes == 1) memcpy(global, m.frame[0], f->n_params * sizeof(float));
        if (first < 0) first = (int)m.env->task->client_id;
        fh_fake_update(f, m.env->task, huge(k) ? bad : global);
        fv_wire_msg_close(&m);
    }
    free(global);
    free(bad);
    return first;
}

static int always(int k) { return (void)k, 1; }
static int first_only(int k) { return k == 0; }

/* 1: Joins by the thousand from a peer that never reads. */
static void test_join_flood(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_flood");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char ref[80];
    fh_reference(&c, ref, sizeof ref);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    fh_start_rogue_and_honest(&c, "flood", "join_timeout = 5", NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    /* the flood: signed-in Joins, sent without waiting and never read back */
    int nowait = 0;
    zmq_setsockopt(rogue.sock, ZMQ_SNDTIMEO, &nowait, sizeof nowait);
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Join j = FEDVIM__JOIN__INIT;
    j.worker_name = "fake";
    j.sign_public_key = (ProtobufCBinaryData){FV_SIGN_PK_BYTES, rogue.id.pub.sign_pk};
    env.body_case = FEDVIM__ENVELOPE__BODY_JOIN;
    env.join = &j;
    int sent = 0;
    double end = fv_now() + 3;
    while (sent < 3000 && fv_now() < end) {
        fv_err e;
        if (fv_wire_send(rogue.sock, NULL, 0, &env, NULL, 0, NULL, &e) == 0) sent++;
        else usleep(1000);
    }
    print_message("the rogue sent %d joins\n", sent);
    fh_end_scene(&rogue, coord, honest);
    assert_true(fh_file_has(&c, "results/flood/coordinator.log", "joins in"));
    assert_true(fh_file_has(&c, "results/flood/coordinator.log", "is banned"));
    assert_true(fh_file_has(&c, "results/flood/summary.json", "\"dropped\":0"));
    fh_assert_same_model(&c, "flood", ref);
    fh_cleanup(&c);
}

/* 2 and 4: huge signed updates against max_update_norm; the rogue is never banned (max_strikes
 * 100), so only reassignment to the honest worker keeps the rejected clients in the round. */
static void test_huge_update_rejected_and_reassigned(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_huge");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char ref[80];
    fh_reference(&c, ref, sizeof ref);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    fh_start_rogue_and_honest(&c, "huge", "max_update_norm = 1000\nnorm_action = reject", "max_strikes = 100", &rogue, ep,
                           sizeof ep, &coord, &honest);
    rogue_serve(&rogue, 90, always);
    fh_end_scene(&rogue, coord, honest);
    assert_true(fh_file_has(&c, "results/huge/coordinator.log", "exceeds fl.max_update_norm = 1000"));
    assert_true(fh_file_has(&c, "results/huge/summary.json", "\"dropped\":0"));
    assert_false(fh_file_has(&c, "results/huge/summary.json", "\"rejected\":0,"));
    fh_assert_same_model(&c, "huge", ref);
    fh_cleanup(&c);
}

/* 2 with the bound off: round 1's aggregate is unsound, rolled back and blamed on the rogue's
 * client; the rogue then answers with the global model and the run completes. */
static void test_huge_update_rolled_back(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_rollback");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    fh_start_rogue_and_honest(&c, "rb", NULL, NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    int client = rogue_serve(&rogue, 90, first_only);
    assert_true(client >= 0);
    fh_end_scene(&rogue, coord, honest);
    char p[256];
    fh_path(&c, p, sizeof p, "results/rb/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    char *l1 = fh_line(m, 0), *l2 = fh_line(m, 1);
    assert_non_null(l2);
    char blamed[64];
    snprintf(blamed, sizeof blamed, "\"rolled_back_clients\":[%d]", client);
    if (!strstr(l1, "\"rolled_back\":true") || !strstr(l1, blamed)) fail_msg("round 1: %s", l1);
    assert_non_null(strstr(l2, "\"rolled_back\":false"));
    assert_true(isfinite(fh_json_num(l2, "test_accuracy")));
    free(l1);
    free(l2);
    free(m);
    assert_true(fh_file_has(&c, "results/rb/summary.json", "\"status\":\"complete\""));
    assert_true(fh_file_has(&c, "results/rb/coordinator.log", "rolled back"));
    fh_cleanup(&c);
}

/* 2 with norm_action = clip: the huge updates are scaled down to the bound and aggregated; the
 * run completes with a finite model and counts them. */
static void test_huge_update_clipped(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_clip");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    fh_start_rogue_and_honest(&c, "clip", "max_update_norm = 5\nnorm_action = clip", NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    rogue_serve(&rogue, 90, always);
    fh_end_scene(&rogue, coord, honest);
    char p[256];
    fh_path(&c, p, sizeof p, "results/clip/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    for (int i = 0; i < 2; i++) {
        char *l = fh_line(m, i);
        assert_non_null(l);
        if (!(fh_json_num(l, "clipped") >= 1) || !strstr(l, "\"rolled_back\":false") ||
            !isfinite(fh_json_num(l, "test_loss")))
            fail_msg("round %d: %s", i + 1, l);
        free(l);
    }
    free(m);
    assert_true(fh_file_has(&c, "results/clip/coordinator.log", "clipped to fl.max_update_norm = 5"));
    fh_cleanup(&c);
}

/* 3: one worker's "cannot serve" ends its part, not the run; alone, it stops the run with a
 * summary that says why. */
static void test_error_ends_only_that_worker(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_error");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char ref[80];
    fh_reference(&c, ref, sizeof ref);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    fh_start_rogue_and_honest(&c, "err", NULL, NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    fv_wire_msg m;
    assert_int_equal(fh_fake_next(&rogue, &m, 60), FEDVIM__ENVELOPE__BODY_TASK);
    fv_wire_msg_close(&m);
    fh_fake_error(&rogue, FV_WIRE_ERR_CONFIG, 0, "cannot serve this experiment");
    fh_end_scene(&rogue, coord, honest);
    assert_true(fh_file_has(&c, "results/err/coordinator.log", "cannot serve this experiment"));
    fh_assert_same_model(&c, "err", ref);

    /* the rogue is the only worker: the run stops, with a summary that says so */
    fh_insider_cfg(&c, "alone", 1, NULL, NULL);
    char cout[256];
    fh_path(&c, cout, sizeof cout, "alone.coord.out");
    coord = fh_coordinator(&c, "alone", cout, ep, sizeof ep);
    fh_fake rogue2 = {0};
    rogue2.id = rogue.id;
    fh_fake_join(&c, &rogue2, ep);
    assert_int_equal(fh_fake_next(&rogue2, &m, 60), FEDVIM__ENVELOPE__BODY_TASK);
    fv_wire_msg_close(&m);
    fh_fake_error(&rogue2, FV_WIRE_ERR_CONFIG, 0, "cannot serve this experiment");
    assert_int_equal(fh_wait(coord, 60), 1);
    fh_fake_close(&rogue2);
    assert_true(fh_file_has(&c, "results/alone/summary.json", "\"status\":\"stopped\""));
    assert_true(fh_file_has(&c, "results/alone/summary.json", "no worker left that can serve this experiment"));
    fh_cleanup(&c);
}

/* 5: with lr 3 on this non-IID split, client 1's local training diverges in round 1 (measured),
 * the other three do not. */
static void test_diverged_client_skipped(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_div");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    const char *base = "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 400\n[partition]\n"
                       "scheme = dirichlet\nalpha = 0.3\n[fl]\nclients = 4\nrounds = 1\nworkers = 2\n"
                       "[training]\nlr = 3\nlocal_epochs = 2\n[model]\nname = tiny";
    assert_int_equal(fh_run_exp(&c, "div", base, NULL), 0);
    char p[256];
    fh_path(&c, p, sizeof p, "results/div/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    assert_true(fh_json_num(m, "diverged") == 1);
    assert_true(fh_json_num(m, "clients") == 3);
    assert_true(fh_json_num(m, "rejected") == 0);
    assert_true(isfinite(fh_json_num(m, "test_accuracy")));
    free(m);
    assert_true(fh_file_has(&c, "results/div/coordinator.log", "diverged on worker"));
    assert_false(fh_file_has(&c, "results/div/coordinator.log", "security:"));
    fh_cleanup(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_flood),
        cmocka_unit_test(test_huge_update_rejected_and_reassigned),
        cmocka_unit_test(test_huge_update_rolled_back),
        cmocka_unit_test(test_huge_update_clipped),
        cmocka_unit_test(test_error_ends_only_that_worker),
        cmocka_unit_test(test_diverged_client_skipped),
    };
    return cmocka_run_group_tests(tests, fh_group_setup, NULL);
}
