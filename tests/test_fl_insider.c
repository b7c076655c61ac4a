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
 *    (`diverged`), with no strike for its worker;
 *  and a silent worker: with fl.min_clients unmet the round fails cleanly at its deadline (exit 1,
 *    nothing written that looks complete); holding one client of four, that client is dropped
 *    at the deadline and counted while the others finish;
 *  a peer that stops reading: its send queue fills, each refused send is a strike, it is banned,
 *    and the round goes on with the undisturbed model;
 *  the log: a reason for every refused connection (a client without CURVE, raw garbage) and for
 *    dropped messages (not joined, banned), and a join with a non-UTF-8 worker name refused.
 * Not here: the outsider attacks (test_fl.c, test_security). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
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

#define HUGE_VALUE 3.4e38f

/* ROOT/<name>.ini: 4 clients of a small synthetic set, a tiny model, 2 rounds; `fl` adds [fl]
 * keys, `security` [security] keys. */
static void write_cfg(const fh_ctx *c, const char *name, int workers, const char *fl, const char *security) {
    char p[256], text[2048];
    fh_path(c, p, sizeof p, "%s.ini", name);
    snprintf(text, sizeof text,
             "[data]\ndataset = synthetic\ntrain_size = 1600\ntest_size = 400\n[fl]\nclients = 4\nrounds = 2\n"
             "workers = %d\ntasks_per_worker = 2\nworker_timeout = 10\nround_timeout = 120\n%s\n[training]\n"
             "lr = 0.05\n[model]\nname = tiny\n[security]\n%s\n[output]\ndir = %s/results\n",
             workers, fl ? fl : "", security ? security : "max_strikes = 3", c->root);
    fh_put(p, text);
}

/* `fedvim run` of the undisturbed experiment (one honest worker): its params_hash into out. The
 * model does not depend on the scratch folder, so the first case's run serves all of them. */
static void reference(const fh_ctx *c, char *out, size_t cap) {
    static char done[80];
    if (*done) {
        snprintf(out, cap, "%s", done);
        return;
    }
    write_cfg(c, "ref", 1, NULL, NULL);
    char p[256], o[256];
    fh_path(c, p, sizeof p, "ref.ini");
    fh_path(c, o, sizeof o, "ref.out");
    assert_int_equal(fh_run(c, o, 120, "run", p, "--quiet", "--overwrite", (const char *)NULL), 0);
    fh_path(c, p, sizeof p, "results/ref/summary.json");
    char *s = fh_slurp(p);
    assert_non_null(s);
    const char *h = strstr(s, "\"params_hash\":\"");
    assert_non_null(h);
    snprintf(out, cap, "%.64s", h + 15);
    snprintf(done, sizeof done, "%.64s", h + 15);
    free(s);
}

static void assert_same_model(const fh_ctx *c, const char *name, const char *ref_hash) {
    char p[256];
    fh_path(c, p, sizeof p, "results/%s/summary.json", name);
    char *s = fh_slurp(p);
    assert_non_null(s);
    const char *h = strstr(s, "\"params_hash\":\"");
    assert_non_null(h);
    if (strncmp(h + 15, ref_hash, 64) != 0) fail_msg("%s: model %.64s, undisturbed %s", name, h + 15, ref_hash);
    free(s);
}

static int file_has(const fh_ctx *c, const char *rel, const char *needle) {
    char p[256];
    fh_path(c, p, sizeof p, "%s", rel);
    char *t = fh_slurp(p);
    int r = t && strstr(t, needle);
    free(t);
    return r;
}

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

/* The scene of most cases: experiment `name` (write_cfg with 2 workers and the fl / security
 * extras) served by a coordinator, an allow-listed rogue (a fake worker with a fresh identity,
 * joined first) and one honest worker. Fills *rogue (the caller closes it), the coordinator's
 * endpoint ep[cap] and both process ids. */
static void start_rogue_and_honest(const fh_ctx *c, const char *name, const char *fl, const char *security,
                                   fh_fake *rogue, char *ep, size_t cap, pid_t *coord, pid_t *honest) {
    fv_identity_generate(&rogue->id);
    const char *ws[] = {"honest"};
    fh_keys(c, ws, 1, &rogue->id);
    write_cfg(c, name, 2, fl, security);
    char cout[256], hout[256];
    fh_path(c, cout, sizeof cout, "%s.coord.out", name);
    fh_path(c, hout, sizeof hout, "honest.out");
    *coord = fh_coordinator(c, name, cout, ep, cap);
    fh_fake_join(c, rogue, ep);
    *honest = fh_worker(c, ep, "honest", hout);
}

/* The scene's end: the coordinator and the honest worker both exit 0; the rogue is closed. */
static void end_scene(fh_fake *rogue, pid_t coord, pid_t honest) {
    assert_int_equal(fh_wait(coord, 120), 0);
    assert_int_equal(fh_wait(honest, 60), 0);
    fh_fake_close(rogue);
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
    reference(&c, ref, sizeof ref);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    start_rogue_and_honest(&c, "flood", "join_timeout = 5", NULL, &rogue, ep, sizeof ep, &coord,
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
    end_scene(&rogue, coord, honest);
    assert_true(file_has(&c, "results/flood/coordinator.log", "joins in"));
    assert_true(file_has(&c, "results/flood/coordinator.log", "is banned"));
    assert_true(file_has(&c, "results/flood/summary.json", "\"dropped\":0"));
    assert_same_model(&c, "flood", ref);
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
    reference(&c, ref, sizeof ref);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    start_rogue_and_honest(&c, "huge", "max_update_norm = 1000\nnorm_action = reject", "max_strikes = 100", &rogue, ep,
                           sizeof ep, &coord, &honest);
    rogue_serve(&rogue, 90, always);
    end_scene(&rogue, coord, honest);
    assert_true(file_has(&c, "results/huge/coordinator.log", "exceeds fl.max_update_norm = 1000"));
    assert_true(file_has(&c, "results/huge/summary.json", "\"dropped\":0"));
    assert_false(file_has(&c, "results/huge/summary.json", "\"rejected\":0,"));
    assert_same_model(&c, "huge", ref);
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
    start_rogue_and_honest(&c, "rb", NULL, NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    int client = rogue_serve(&rogue, 90, first_only);
    assert_true(client >= 0);
    end_scene(&rogue, coord, honest);
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
    assert_true(file_has(&c, "results/rb/summary.json", "\"status\":\"complete\""));
    assert_true(file_has(&c, "results/rb/coordinator.log", "rolled back"));
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
    start_rogue_and_honest(&c, "clip", "max_update_norm = 5\nnorm_action = clip", NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    rogue_serve(&rogue, 90, always);
    end_scene(&rogue, coord, honest);
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
    assert_true(file_has(&c, "results/clip/coordinator.log", "clipped to fl.max_update_norm = 5"));
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
    reference(&c, ref, sizeof ref);
    fh_fake rogue = {0};
    char ep[256];
    pid_t coord, honest;
    start_rogue_and_honest(&c, "err", NULL, NULL, &rogue, ep, sizeof ep, &coord,
                           &honest);
    fv_wire_msg m;
    assert_int_equal(fh_fake_next(&rogue, &m, 60), FEDVIM__ENVELOPE__BODY_TASK);
    fv_wire_msg_close(&m);
    fh_fake_error(&rogue, FV_WIRE_ERR_CONFIG, 0, "cannot serve this experiment");
    end_scene(&rogue, coord, honest);
    assert_true(file_has(&c, "results/err/coordinator.log", "cannot serve this experiment"));
    assert_same_model(&c, "err", ref);

    /* the rogue is the only worker: the run stops, with a summary that says so */
    write_cfg(&c, "alone", 1, NULL, NULL);
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
    assert_true(file_has(&c, "results/alone/summary.json", "\"status\":\"stopped\""));
    assert_true(file_has(&c, "results/alone/summary.json", "no worker left that can serve this experiment"));
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
    assert_true(file_has(&c, "results/div/coordinator.log", "diverged on worker"));
    assert_false(file_has(&c, "results/div/coordinator.log", "security:"));
    fh_cleanup(&c);
}

/* Wait up to timeout s for `needle` in file rel of the scratch folder; fails the test without it. */
static void wait_for_line(const fh_ctx *c, const char *rel, const char *needle, double timeout) {
    double end = fv_now() + timeout;
    while (!file_has(c, rel, needle)) {
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
    write_cfg(&c, "logs", 1, NULL, NULL);
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
    assert_true(file_has(&c, "logs.coord.out", "not a CURVE client"));
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
    assert_true(file_has(&c, "logs.coord.out", "its worker name 'fa?ke' is not valid text: invalid UTF-8 at byte 2"));
    zmq_close(early.sock);
    /* and a worker refuses such a name itself */
    char bout[256];
    fh_path(&c, bout, sizeof bout, "badname.out");
    assert_int_equal(fh_run(&c, bout, 30, "worker", "--connect", ep, "--insecure", "--name", "a\tb", (const char *)NULL), 1);
    assert_true(file_has(&c, "badname.out", "--name: control character 0x09 at byte 1"));
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
    end_scene(&rogue, coord, honest);
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
    reference(&c, ref, sizeof ref);
    fh_fake rogue = {.slow = 1};
    char ep[256], bind[128];
    pid_t coord, honest;
    /* over a unix socket: the kernel holds about 200 KB for a peer that does not read (net.core.
     * wmem_default), where loopback TCP autotunes up to megabytes, minutes of heartbeat replies */
    snprintf(bind, sizeof bind, "ipc://%s/coord.ipc", c.root);
    c.bind = bind;
    start_rogue_and_honest(&c, "slow", "heartbeat = 0.01", NULL, &rogue, ep, sizeof ep, &coord, &honest);
    double t0 = fv_now();
    int beats = 0;
    while (!file_has(&c, "slow.coord.out", "is banned") && fv_now() - t0 < 30) {
        for (int i = 0; i < 20; i++, beats++) { /* 250 a second: inside its message budget */
            fh_fake_heartbeat(&rogue);
            usleep(4000);
        }
    }
    print_message("banned after %.1f s and %d heartbeats\n", fv_now() - t0, beats);
    end_scene(&rogue, coord, honest);
    assert_true(file_has(&c, "results/slow/coordinator.log",
                         "the worker does not take its messages (send queue full or gone) (strike 3 of 3)"));
    assert_true(file_has(&c, "results/slow/coordinator.log", "security: worker fake (key "));
    assert_true(file_has(&c, "results/slow/summary.json", "\"dropped\":0"));
    char p[256];
    fh_path(&c, p, sizeof p, "results/slow/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    assert_true(fh_json_num(m, "seconds") < 40); /* round 1: well inside fl.round_timeout = 120 */
    free(m);
    assert_same_model(&c, "slow", ref);
    fh_cleanup(&c);
}

static int setup(void **state) {
    (void)state;
    fv_crypto_init();
    signal(SIGPIPE, SIG_IGN);
    return 0;
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
    assert_true(file_has(&c, "dl_fail.out", "round 1 failed: 0 of 2 sampled clients"));
    assert_true(file_has(&c, "dl_fail.out", "fl.min_clients = 2"));
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
    end_scene(&silent2, coord, solo);
    fh_path(&c, p, sizeof p, "results/dl_drop/metrics.jsonl");
    char *mt = fh_slurp(p);
    assert_non_null(mt);
    assert_true(fh_json_num(mt, "dropped") == 1);
    assert_true(fh_json_num(mt, "clients") == 3);
    free(mt);
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
    end_scene(&ghost, coord, solo);
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
        cmocka_unit_test(test_silent_worker_deadline),
        cmocka_unit_test(test_refusals_and_drops_logged),
        cmocka_unit_test(test_queue_full_bans_slow_reader),
        cmocka_unit_test(test_dead_worker_answers_throttled),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
