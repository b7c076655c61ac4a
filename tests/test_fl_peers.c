/* test_fl_peers.c: an insider (a client with a valid key, tests/fl_harness.h's scripted rogue)
 * that goes silent, stops reading or sends what is refused cannot stall a run or hide from the
 * log; end to end through the fedvim binary ($FEDVIM_BIN), split from test_fl_insider.c to keep
 * each test executable short:
 *  - a silent worker: with fl.min_clients unmet the round fails cleanly at its deadline (exit 1,
 *    nothing written that looks complete); holding one client of four, that client is dropped
 *    at the deadline and counted while the others finish;
 *  - the log: a reason for every refused connection (a client without CURVE, raw garbage) and for
 *    dropped messages (not joined, banned), and a join with a non-UTF-8 worker name refused;
 *  - a peer that stops reading: its send queue fills, each refused send is a strike, it is banned,
 *    and the round goes on with the undisturbed model;
 *  - a worker declared dead that sends a burst of heartbeats is told to join again at most twice
 *    per fl.heartbeat.
 * Not here: the numbered insider attacks (test_fl_insider.c); the outsider attacks
 * (test_fl_faults.c, test_security). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "fl/transport.h"
#include "fl_harness.h"
#include "fv_common.h"

/* Wait up to timeout s for `needle` in file rel of the scratch folder; fails the test without it. */
static void wait_for_line(const fh_ctx *c, const char *rel, const char *needle, double timeout) {
    double end = fv_now() + timeout;
    while (!fh_file_has(c, rel, needle)) {
        if (fv_now() > end) {
            char p[256];
            fh_path(c, p, sizeof p, "%s", rel);
            char *t = fh_slurp(p);
            print_message("%s:\n%s\n", rel, t ? t : "(none)");
            free(t);
            fail_msg("%s never said '%s'", rel, needle);
        }
        usleep(20000);
    }
}

/* Wait up to timeout s for `needle` to occur n times in file rel; fails the test otherwise. */
static void wait_for_count(const fh_ctx *c, const char *rel, const char *needle, int n, double timeout) {
    char p[256];
    fh_path(c, p, sizeof p, "%s", rel);
    double end = fv_now() + timeout;
    for (;;) {
        char *t = fh_slurp(p);
        int k = 0;
        for (const char *q = t; q && (q = strstr(q, needle)); q++) k++;
        if (k >= n || fv_now() > end) {
            if (k < n) print_message("%s:\n%s\n", rel, t ? t : "(none)");
            free(t);
            if (k < n) fail_msg("%s said '%s' %d times, not %d", rel, needle, k, n);
            return;
        }
        free(t);
        usleep(20000);
    }
}

/* A silent insider (moved here from test_fl.c, where its deadlines made that test the suite's
 * longest; 2 s and 4 s now): a) the only worker takes a task and never answers: the round fails cleanly at
 * its deadline (fl.min_clients = 2) and no result is written; b) it holds one of four clients and
 * never answers: that client is dropped at the deadline, the honest worker's three finish, and
 * the round completes and counts the drop. */
static void test_silent_worker_deadline(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_silent");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    fh_fake silent = {0};
    fv_identity_generate(&silent.id);
    const char *ws[] = {"solo"};
    fh_keys(&c, ws, 1, &silent.id);
    static const char *const base =
        "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 400\n[training]\nlr = 0.05\n[model]\n"
        "name = tiny\n";
    char p[256], text[1024], cout[256], ep[256], wout[256];
    fh_path(&c, p, sizeof p, "dl_fail.ini");
    snprintf(text, sizeof text, "%s[fl]\nclients = 2\nrounds = 2\nworkers = 1\nmin_clients = 2\nround_timeout = 2\n"
             "[output]\ndir = %s/results\n", base, c.root);
    fh_put(p, text);
    fh_path(&c, cout, sizeof cout, "dl_fail.out");
    pid_t coord = fh_coordinator(&c, "dl_fail", cout, ep, sizeof ep);
    fh_fake_join(&c, &silent, ep);
    fv_wire_msg m;
    assert_int_equal(fh_fake_next(&silent, &m, 60), FEDVIM__ENVELOPE__BODY_TASK);
    fv_wire_msg_close(&m);
    assert_int_equal(fh_wait(coord, 120), 1);
    fh_fake_close(&silent);
    assert_true(fh_file_has(&c, "dl_fail.out", "round 1 failed: 0 of 2 sampled clients"));
    assert_true(fh_file_has(&c, "dl_fail.out", "fl.min_clients = 2"));
    const char *none[] = {"summary.json", "model.safetensors", "checkpoint.safetensors"};
    for (int i = 0; i < 3; i++) {
        fh_path(&c, p, sizeof p, "results/dl_fail/%s", none[i]);
        if (access(p, F_OK) == 0) fail_msg("a failed run wrote %s", p);
    }

    fh_path(&c, p, sizeof p, "dl_drop.ini");
    snprintf(text, sizeof text, "%s[fl]\nclients = 4\nrounds = 1\nworkers = 2\ntasks_per_worker = 1\n"
             "round_timeout = 4\n[output]\ndir = %s/results\n", base, c.root);
    fh_put(p, text);
    fh_path(&c, cout, sizeof cout, "dl_drop.out");
    coord = fh_coordinator(&c, "dl_drop", cout, ep, sizeof ep);
    fh_fake silent2 = {0};
    silent2.id = silent.id;
    fh_fake_join(&c, &silent2, ep);
    fh_path(&c, wout, sizeof wout, "solo.out");
    pid_t solo = fh_worker(&c, ep, "solo", wout);
    assert_int_equal(fh_fake_next(&silent2, &m, 60), FEDVIM__ENVELOPE__BODY_TASK);
    fv_wire_msg_close(&m);
    fh_end_scene(&silent2, coord, solo);
    fh_path(&c, p, sizeof p, "results/dl_drop/metrics.jsonl");
    char *mt = fh_slurp(p);
    assert_non_null(mt);
    assert_true(fh_json_num(mt, "dropped") == 1);
    assert_true(fh_json_num(mt, "clients") == 3);
    free(mt);
    fh_cleanup(&c);
}

/* Reasons are logged for the connections ZAP never sees (a client without CURVE, raw TCP garbage)
 * and for dropped messages that used to vanish silently: from an allow-listed peer that has not
 * joined, and from a banned worker; a join whose worker name is not UTF-8 is refused (and a worker
 * refuses such a --name itself). */
static void test_refusals_and_drops_logged(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_logs");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    fh_fake rogue = {0};
    fv_identity_generate(&rogue.id);
    const char *ws[] = {"honest"};
    fh_keys(&c, ws, 1, &rogue.id);
    fh_insider_cfg(&c, "logs", 1, NULL, NULL);
    char cout[256], hout[256], ep[256];
    fh_path(&c, cout, sizeof cout, "logs.coord.out");
    fh_path(&c, hout, sizeof hout, "honest.out");
    pid_t coord = fh_coordinator(&c, "logs", cout, ep, sizeof ep);
    /* a client without CURVE (a whole ZMTP 3.0 greeting offering the NULL mechanism, so that the
     * server, not the client, finds the mismatch), then raw bytes that are not ZMTP at all */
    void *ctx = zmq_ctx_new();
    fv_err e = {{0}};
    static const char greeting[64] = {(char)0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
    static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    const struct {
        const char *bytes;
        size_t n;
    } outsiders[] = {{greeting, sizeof greeting}, {junk, sizeof junk - 1}};
    for (int i = 0; i < 2; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(strrchr(ep, ':') + 1))};
        assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
        assert_int_equal(connect(fd, (const struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(write(fd, outsiders[i].bytes, outsiders[i].n), (long)outsiders[i].n);
        /* the greeting is refused as such; the garbage is refused, or seen closed mid-handshake (the
         * address is the peer's when the watcher read it before libzmq closed the connection) */
        if (i == 0) wait_for_line(&c, "logs.coord.out", "security: refused connection from", 20);
        else wait_for_count(&c, "logs.coord.out", "connection from ", 2, 20);
        close(fd);
    }
    assert_true(fh_file_has(&c, "logs.coord.out", "not a CURVE client"));
    /* an allow-listed peer that sends a heartbeat before joining: dropped (told to join), and said */
    char kp[256];
    fv_public_id server;
    fh_path(&c, kp, sizeof kp, "coord.key.pub");
    assert_int_equal(fv_pubid_load(kp, &server, &e), 0);
    fh_fake early = {.ctx = ctx, .id = rogue.id};
    early.sock = fv_socket_client(ctx, ep, &rogue.id, server.curve_pk, 1 << 20, NULL, &e);
    assert_non_null(early.sock);
    fh_fake_heartbeat(&early);
    wait_for_line(&c, "logs.coord.out", "dropped a heartbeat message from a peer that has not joined (key ", 20);
    /* a join whose worker name is not UTF-8 is refused, naming the key */
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Join j = FEDVIM__JOIN__INIT;
    j.worker_name = "fa\xffke";
    j.sign_public_key = (ProtobufCBinaryData){FV_SIGN_PK_BYTES, rogue.id.pub.sign_pk};
    env.body_case = FEDVIM__ENVELOPE__BODY_JOIN;
    env.join = &j;
    assert_int_equal(fv_wire_send(early.sock, NULL, 0, &env, NULL, 0, NULL, &e), 0);
    wait_for_line(&c, "logs.coord.out", "rejected join from key ", 20);
    assert_true(fh_file_has(&c, "logs.coord.out", "its worker name 'fa?ke' is not valid text: invalid UTF-8 at byte 2"));
    zmq_close(early.sock);
    /* and a worker refuses such a name itself */
    char bout[256];
    fh_path(&c, bout, sizeof bout, "badname.out");
    assert_int_equal(fh_run(&c, bout, 30, "worker", "--connect", ep, "--insecure", "--name", "a\tb", (const char *)NULL), 1);
    assert_true(fh_file_has(&c, "badname.out", "--name: control character 0x09 at byte 1"));
    /* the rogue: three updates for tasks never issued ban it, and what it sends then is dropped */
    fh_fake_join(&c, &rogue, ep);
    float *params = calloc(rogue.n_params, sizeof(float));
    Fedvim__Task forged = FEDVIM__TASK__INIT;
    forged.task_id = 999999;
    forged.round = 1;
    forged.expected_samples = 400;
    for (int i = 0; i < 3; i++) fh_fake_update(&rogue, &forged, params);
    free(params);
    wait_for_line(&c, "logs.coord.out", "is banned", 20);
    fh_fake_heartbeat(&rogue);
    wait_for_line(&c, "logs.coord.out", "dropped a message from banned worker fake", 20);
    pid_t honest = fh_worker(&c, ep, "honest", hout);
    fh_end_scene(&rogue, coord, honest);
    zmq_ctx_term(ctx);
    char *log = NULL;
    fh_path(&c, cout, sizeof cout, "results/logs/coordinator.log");
    log = fh_slurp(cout);
    assert_non_null(log);
    assert_non_null(strstr(log, "security: refused connection from "));
    assert_non_null(strstr(log, "was never issued (strike 3 of 3)"));
    free(log);
    fh_cleanup(&c);
}

/* A peer that stops reading: the rogue (tiny receive buffers, fh_fake.slow) joins, takes its tasks
 * and then only sends heartbeats, never reading. The coordinator answers heartbeats (at most two
 * per fl.heartbeat), so its queue for the rogue fills to its bound (64 messages, transport.c);
 * each send to the full queue fails at once, a strike, and the rogue is banned after
 * security.max_strikes. Its clients go to the honest worker: the round ends long before its
 * deadline, nothing is dropped, and the model is the undisturbed one. */
static void test_queue_full_bans_slow_reader(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_slow");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char ref[80];
    fh_reference(&c, ref, sizeof ref);
    fh_fake rogue = {.slow = 1};
    char ep[256], bind[128];
    pid_t coord, honest;
    /* over a unix socket: the kernel holds about 200 KB for a peer that does not read (net.core.
     * wmem_default), where loopback TCP autotunes up to megabytes, minutes of heartbeat replies */
    snprintf(bind, sizeof bind, "ipc://%s/coord.ipc", c.root);
    c.bind = bind;
    fh_start_rogue_and_honest(&c, "slow", "heartbeat = 0.01", NULL, &rogue, ep, sizeof ep, &coord, &honest);
    double t0 = fv_now();
    int beats = 0;
    while (!fh_file_has(&c, "slow.coord.out", "is banned") && fv_now() - t0 < 30) {
        for (int i = 0; i < 20; i++, beats++) { /* 250 a second: inside its message budget */
            fh_fake_heartbeat(&rogue);
            usleep(4000);
        }
    }
    print_message("banned after %.1f s and %d heartbeats\n", fv_now() - t0, beats);
    fh_end_scene(&rogue, coord, honest);
    assert_true(fh_file_has(&c, "results/slow/coordinator.log",
                         "the worker does not take its messages (send queue full or gone) (strike 3 of 3)"));
    assert_true(fh_file_has(&c, "results/slow/coordinator.log", "security: worker fake (key "));
    assert_true(fh_file_has(&c, "results/slow/summary.json", "\"dropped\":0"));
    char p[256];
    fh_path(&c, p, sizeof p, "results/slow/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    assert_true(fh_json_num(m, "seconds") < 40); /* round 1: well inside fl.round_timeout = 120 */
    free(m);
    fh_assert_same_model(&c, "slow", ref);
    fh_cleanup(&c);
}

/* A worker declared dead that then sends a burst of heartbeats (what a link cut mid-round releases
 * when it comes back) is told to join again at most twice per fl.heartbeat, not once per
 * heartbeat: a peer cannot make the server talk faster, alive or not. */
static void test_dead_worker_answers_throttled(void **state) {
    (void)state;
    fh_ctx c;
    int rc = fh_init(&c, "ins_dead");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    fh_fake ghost = {0};
    fv_identity_generate(&ghost.id);
    const char *ws[] = {"solo"};
    fh_keys(&c, ws, 1, &ghost.id);
    char p[256], text[1024], cout[256], ep[256], wout[256];
    fh_path(&c, p, sizeof p, "dead.ini");
    snprintf(text, sizeof text,
             "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 400\n[training]\nlr = 0.05\n[model]\n"
             "name = tiny\n[fl]\nclients = 4\nrounds = 6\nworkers = 2\ntasks_per_worker = 1\nheartbeat = 0.2\n"
             "worker_timeout = 1.5\n[output]\ndir = %s/results\n", c.root);
    fh_put(p, text);
    fh_path(&c, cout, sizeof cout, "dead.coord.out");
    pid_t coord = fh_coordinator(&c, "dead", cout, ep, sizeof ep);
    fh_fake_join(&c, &ghost, ep);
    fh_path(&c, wout, sizeof wout, "solo.out");
    pid_t solo = fh_worker(&c, ep, "solo", wout);
    fv_wire_msg m;
    assert_int_equal(fh_fake_next(&ghost, &m, 60), FEDVIM__ENVELOPE__BODY_TASK);
    fv_wire_msg_close(&m);
    wait_for_line(&c, "dead.coord.out", "lost: silent for", 30); /* its client goes to solo */
    for (int i = 0; i < 20; i++) fh_fake_heartbeat(&ghost);
    int told = 0, t = 100;
    zmq_setsockopt(ghost.sock, ZMQ_RCVTIMEO, &t, sizeof t);
    for (double end = fv_now() + 1.0; fv_now() < end;) {
        fv_err e;
        if (fv_wire_recv(ghost.sock, 0, &ghost.lim, &m, &e) != 0) continue;
        told += m.env->body_case == FEDVIM__ENVELOPE__BODY_ERROR;
        fv_wire_msg_close(&m);
    }
    if (told < 1 || told > 2) fail_msg("20 heartbeats of a dead worker got %d 'join again' answers (want 1 or 2)", told);
    fh_end_scene(&ghost, coord, solo);
    fh_cleanup(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_worker_deadline),
        cmocka_unit_test(test_refusals_and_drops_logged),
        cmocka_unit_test(test_queue_full_bans_slow_reader),
        cmocka_unit_test(test_dead_worker_answers_throttled),
    };
    return cmocka_run_group_tests(tests, fh_group_setup, NULL);
}
