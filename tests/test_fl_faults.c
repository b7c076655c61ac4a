/* test_fl_faults.c: faults and outsider attacks on the federated system end to end on localhost,
 * through the fedvim binary ($FEDVIM_BIN): real coordinator and worker processes talking CURVE
 * over TCP (split from test_fl.c to keep each test executable short).
 *  - a worker killed mid-run: its clients are reassigned, the run completes, and the model is
 *    the one an undisturbed run gives;
 *  - security: a worker with an unknown key is refused at the handshake; an allow-listed rogue
 *    sends a malformed message and unsigned, tampered, replayed (wrong round), wrong-shape,
 *    oversized, NaN-bearing and forged updates: each is rejected and logged, the rogue is
 *    banned, its clients reassigned, and the model is again the undisturbed one;
 *  - resume: a coordinator killed with SIGKILL after round 2 resumes to the same final model; a
 *    folder whose checkpoint is lost is not resumed as a fresh start;
 *  - a rolled-back round with client optimizer state kept (training.opt_state = keep, Adam): a
 *    client uploading huge finite parameters makes exactly the rounds that aggregate it unsound,
 *    and none of them leaves an optimizer-state version in client_state/ (each client holds one
 *    version, of a round that was kept), although sound rounds follow (their checkpoints commit
 *    only their own versions).
 * Not here: the insider attacks and deadlines of a silent worker (test_fl_insider.c,
 * test_fl_peers.c); the runs that work (test_fl.c).
 * Timeouts are generous so the suite also passes under ASan on 2 cores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "fl/transport.h"
#include "fl_harness.h"

/* The scratch folder of the cases that share one (test_security makes its own). */
static fh_ctx C;

/* Lines in the file at p (0 when it is unreadable). */
static int lines(const char *p) {
    char *t = fh_slurp(p);
    int n = fh_count_lines(t);
    free(t);
    return n;
}

static int setup(void **state) {
    if (fh_init(&C, "test_fl_faults") != 0) return -1;
    return fh_group_setup(state);
}

static int teardown(void **state) {
    (void)state;
    fh_cleanup(&C);
    return 0;
}

static void test_killed_worker(void **state) {
    (void)state;
    const char *fl = "clients = 8\nfraction = 0.5\nrounds = 4\nworkers = 3\nworker_timeout = 2\nheartbeat = 0.2";
    const char *tr = "optimizer = sgd\nlr = 0.05";
    const char *d = "dataset = synthetic\ntrain_size = 4000\ntest_size = 200";
    fh_config(&C, "kill_ref", d, fl, tr, "[model]\nname = lenet5");
    fh_config(&C, "kill", d, fl, tr, "[model]\nname = lenet5");
    assert_int_equal(fh_run_cfg(&C, "kill_ref", 600, NULL, NULL), 0);
    char p[256], out[256], metrics[256];
    fh_path(&C, p, sizeof p, "kill.ini");
    fh_path(&C, out, sizeof out, "kill.out");
    fh_path(&C, metrics, sizeof metrics, "results/kill/metrics.jsonl");
    pid_t run = fh_spawn(&C, out, "run", p, "--quiet", "--overwrite", (const char *)NULL);
    double end = fv_now() + 300;
    while (lines(metrics) < 1 && fv_now() < end) usleep(2000);
    /* round 2 is being dispatched: kill the first worker process while it trains */
    char cp[64];
    snprintf(cp, sizeof cp, "/proc/%d/task/%d/children", (int)run, (int)run);
    char *ch = fh_slurp(cp);
    assert_non_null(ch);
    int victim = atoi(ch);
    free(ch);
    assert_true(victim > 0);
    usleep(20000);
    assert_int_equal(kill(victim, SIGKILL), 0);
    assert_int_equal(fh_wait(run, 600), 0);
    char log[256];
    fh_path(&C, log, sizeof log, "results/kill/coordinator.log");
    assert_true(fh_contains(log, "lost: "));
    char *m = fh_slurp(metrics);
    int reassigned = 0;
    for (const char *l = m; l && *l; l = strchr(l, '\n') + 1) {
        assert_true(fh_json_num(l, "dropped") == 0);
        reassigned += (int)fh_json_num(l, "reassigned");
        if (!strchr(l, '\n')) break;
    }
    free(m);
    print_message("%d client(s) of the killed worker were reassigned\n", reassigned);
    /* reassigned clients compute exactly what they would have: the undisturbed model */
    char a[128], b[128];
    fh_model_hash(&C, "kill_ref", a, sizeof a);
    fh_model_hash(&C, "kill", b, sizeof b);
    assert_string_equal(a, b);
}

/* On the shared harness (tests/fl_harness.h): its own scratch folder, keys, coordinator, the honest
 * worker and the rogue (a scripted fake worker with an allow-listed key). */
static void test_security(void **state) {
    (void)state;
    fh_ctx H;
    int rc = fh_init(&H, "fl_sec");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char base[512], p[256];
    snprintf(base, sizeof base,
             "[data]\n%s\n[training]\nlr = 0.05\n[model]\nname = tiny\n[security]\nmax_strikes = 8\n[fl]\n"
             "clients = 4\nrounds = 2\ntasks_per_worker = 2\nworker_timeout = 10\n",
             FH_SYN_DATA);
    /* the reference: the same experiment with one honest worker and no attacker */
    assert_int_equal(fh_run_exp(&H, "sec_ref", base, "[fl]\nworkers = 1"), 0);
    char text[1024];
    fh_path(&H, p, sizeof p, "sec.ini");
    snprintf(text, sizeof text, "%sworkers = 2\n[output]\ndir = %s/results\n", base, H.root);
    fh_put(p, text);

    fh_fake rogue = {0};
    fv_identity_generate(&rogue.id);
    const char *ws[] = {"honest", "stranger"};
    fh_keys(&H, ws, 1, &rogue.id); /* "stranger" gets a key but stays off the allow-list */
    char k[256], tmp[256];
    fh_path(&H, k, sizeof k, "stranger.key");
    fh_path(&H, tmp, sizeof tmp, "stranger.keygen.out");
    assert_int_equal(fh_run(&H, tmp, 30, "worker", "--gen-key", k, (const char *)NULL), 0);

    char cout[256], ep[256];
    fh_path(&H, cout, sizeof cout, "sec.coord.out");
    pid_t coord = fh_coordinator(&H, "sec", cout, ep, sizeof ep);
    fv_public_id server;
    fv_err e = {{0}};
    fh_path(&H, p, sizeof p, "coord.key.pub");
    assert_int_equal(fv_pubid_load(p, &server, &e), 0);

    /* an unknown key: the fedvim worker says so and stops; a raw client sees the refusal */
    char sout[256];
    fh_path(&H, sout, sizeof sout, "stranger.out");
    assert_int_equal(fh_wait(fh_worker(&H, ep, "stranger", sout), 120), 1);
    assert_true(fh_contains(sout, "refused this worker's key"));

    char hout[256];
    fh_path(&H, hout, sizeof hout, "honest.out");
    pid_t honest = fh_worker(&H, ep, "honest", hout);
    fh_fake_join(&H, &rogue, ep);
    fv_wire_msg m;
    assert_int_equal(fh_fake_next(&rogue, &m, 120), FEDVIM__ENVELOPE__BODY_TASK);
    const Fedvim__Task *t = m.env->task;
    assert_int_equal(m.nframes, 1);
    const float *params = m.frame[0];
    size_t n = m.count[0];
    assert_int_equal(n, rogue.n_params);

    /* 1 malformed protobuf */
    zmq_send(rogue.sock, "\x0a\xff\xff\xff\x01", 5, 0);
    /* 2 unsigned, 3 tampered payload, 4 replayed into another round, 5 wrong shape, 6 oversized */
    const fh_forgery forged[] = {
        {.unsigned_ = 1}, {.tamper = 1}, {.round = t->round + 1}, {.count = n - 1}, {.count = n + 1000},
    };
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) fh_fake_forged_update(&rogue, t, params, &forged[i]);
    /* 7 NaN-bearing */
    float *bad = malloc(n * sizeof(float));
    memcpy(bad, params, n * sizeof(float));
    bad[n / 3] = NAN;
    fh_fake_update(&rogue, t, bad);
    free(bad);
    /* 8 a forged task id: the eighth strike bans the rogue */
    const fh_forgery other_task = {.task_id = t->task_id + 100000};
    fh_fake_forged_update(&rogue, t, params, &other_task);
    fv_wire_msg_close(&m);
    /* the rogue hears that it is banned */
    int got;
    while ((got = fh_fake_next(&rogue, &m, 60)) == FEDVIM__ENVELOPE__BODY_TASK) fv_wire_msg_close(&m);
    assert_int_equal(got, FEDVIM__ENVELOPE__BODY_ERROR);
    assert_int_equal(m.env->error->code, FV_WIRE_ERR_REJECTED);
    fv_wire_msg_close(&m);

    /* the refused handshake of an unknown key, seen from a raw client */
    fv_identity stranger;
    fv_identity_generate(&stranger);
    void *sctx = zmq_ctx_new(), *smon = NULL;
    void *ssock = fv_socket_client(sctx, ep, &stranger, server.curve_pk, 1 << 20, &smon, &e);
    assert_non_null(ssock);
    int refused = 0;
    double end = fv_now() + 30;
    while (!refused && fv_now() < end) refused = fv_socket_event(smon, 100) == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    assert_true(refused);
    zmq_close(smon);
    zmq_close(ssock);
    zmq_ctx_term(sctx);

    assert_int_equal(fh_wait(coord, 300), 0);
    assert_int_equal(fh_wait(honest, 60), 0);
    fh_fake_close(&rogue);
    char log[256];
    fh_path(&H, log, sizeof log, "results/sec/coordinator.log");
    const char *reasons[] = {"refused connection", "malformed protobuf header", "unsigned update",
                             "payload hash mismatch", "replayed update: it says round", "wrong shape: ",
                             "allowed 1..", "non-finite value", "was never issued", "is banned"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (!fh_contains(log, reasons[i])) fail_msg("coordinator.log lacks '%s'", reasons[i]);
    char sp[256];
    fh_path(&H, sp, sizeof sp, "results/sec/summary.json");
    char *s = fh_slurp(sp);
    assert_true(fh_json_num(s, "rejected") >= 8);
    assert_true(fh_json_num(s, "dropped") == 0);
    free(s);
    char a[128], b[128];
    fh_path(&H, sp, sizeof sp, "results/sec_ref/summary.json");
    s = fh_slurp(sp);
    assert_int_equal(fh_json_str(s, "params_hash", a, sizeof a), 0);
    free(s);
    fh_path(&H, sp, sizeof sp, "results/sec/summary.json");
    s = fh_slurp(sp);
    assert_int_equal(fh_json_str(s, "params_hash", b, sizeof b), 0);
    free(s);
    assert_string_equal(a, b);
    fh_cleanup(&H);
}

static void test_resume_equivalence(void **state) {
    (void)state;
    const char *fl = "clients = 8\nfraction = 0.5\nrounds = 4\nworkers = 2";
    const char *tr = "optimizer = adam\nlr = 0.001\nopt_state = keep";
    const char *d = "dataset = synthetic\ntrain_size = 1500\ntest_size = 200";
    fh_config(&C, "res_ref", d, fl, tr, "[model]\nname = lenet5");
    fh_config(&C, "res", d, fl, tr, "[model]\nname = lenet5");
    assert_int_equal(fh_run_cfg(&C, "res_ref", 600, NULL, NULL), 0);
    char p[256], out[256], metrics[256], sp[256];
    fh_path(&C, p, sizeof p, "res.ini");
    fh_path(&C, out, sizeof out, "res.out");
    fh_path(&C, metrics, sizeof metrics, "results/res/metrics.jsonl");
    fh_path(&C, sp, sizeof sp, "results/res/summary.json");
    pid_t run = fh_spawn(&C, out, "run", p, "--quiet", "--overwrite", (const char *)NULL);
    double end = fv_now() + 300;
    while (lines(metrics) < 2 && fv_now() < end) usleep(1000);
    assert_int_equal(kill(run, SIGKILL), 0);
    int st;
    waitpid(run, &st, 0);
    usleep(200000); /* the workers follow their launcher (parent-death signal) */
    assert_int_not_equal(access(sp, F_OK), 0); /* nothing looks complete */
    int done = lines(metrics);
    assert_true(done >= 2 && done < 4);
    /* an edited config is refused: resuming needs the config as it ran */
    char rdir[256], cfgp[256];
    fh_path(&C, rdir, sizeof rdir, "results/res");
    fh_path(&C, cfgp, sizeof cfgp, "results/res/config.resolved.ini");
    char *orig = fh_slurp(cfgp);
    char *edited = malloc(strlen(orig) + 32);
    sprintf(edited, "%s; edited\n", orig);
    fh_put(cfgp, edited);
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 120), 1);
    assert_true(fh_contains(out, "was edited after the run started"));
    fh_put(cfgp, orig);
    free(orig);
    free(edited);
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 600), 0);
    assert_int_equal(lines(metrics), 4);
    char a[128], b[128], pa[256], pb[256];
    fh_model_hash(&C, "res_ref", a, sizeof a);
    fh_model_hash(&C, "res", b, sizeof b);
    assert_string_equal(a, b);
    fh_path(&C, pa, sizeof pa, "results/res_ref/model.safetensors");
    fh_path(&C, pb, sizeof pb, "results/res/model.safetensors");
    assert_true(fh_same_file(pa, pb));
    char ma[256];
    fh_path(&C, ma, sizeof ma, "results/res/coordinator.log");
    assert_true(fh_contains(ma, "resuming after round"));
    /* a completed run is not run again */
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 120), 1);
    assert_true(fh_contains(out, "already completed"));
    /* rounds without their checkpoint are an error, not a fresh start that would discard them */
    char ck[256];
    fh_path(&C, ck, sizeof ck, "results/res/checkpoint.safetensors");
    assert_int_equal(unlink(sp), 0);
    assert_int_equal(unlink(ck), 0);
    assert_int_equal(fh_wait(fh_spawn(&C, out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 120), 1);
    assert_true(fh_contains(out, "holds completed rounds (metrics.jsonl line 2 follows a round whose model was checkpointed) "
                              "but no checkpoint.safetensors"));
    assert_int_equal(lines(metrics), 4); /* nothing was lost */
}

/* The rolled-back round's clients trained and uploaded their optimizer state before the server
 * found the aggregate unsound; that state belongs to a discarded model and must not survive:
 * no client_state version of a rolled-back round, one version per client. 6 clients, 3 per
 * round, client 2 huge: with seed 3 it is sampled in round 4 only (measured: round 4 of 6 rolled
 * back, with clients 2, 3 and 4), so sound rounds checkpoint after it. Before the fix, round 5's
 * checkpoint committed c2_r4 and c3_r4 as those clients' state and c4_r4 stayed behind c4_r6.
 * About 1 s. */
static void test_rolled_back_keep(void **state) {
    (void)state;
    const char *d = "dataset = synthetic\ntrain_size = 1200\ntest_size = 300";
    const char *fl = "clients = 6\nfraction = 0.5\nrounds = 6\nworkers = 2\nseed = 3";
    const char *tr = "optimizer = adam\nlr = 0.002\nopt_state = keep\nbatch_size = 16";
    fh_config(&C, "keep_huge", d, fl, tr,
              "[model]\nname = tiny\n[adversary]\nkind = huge\nclients = 2\n[security]\nmax_strikes = 1000");
    assert_int_equal(fh_run_cfg(&C, "keep_huge", 120, NULL, NULL), 0);
    char p[256];
    fh_path(&C, p, sizeof p, "results/keep_huge/metrics.jsonl");
    char *m = fh_slurp(p);
    assert_non_null(m);
    const int n = fh_count_lines(m);
    assert_int_equal(n, 6);
    int rolled[7] = {0}, bad = 0, last_bad = 0;
    for (int i = 0; i < n; i++) {
        char *l = fh_line(m, i);
        rolled[i + 1] = strstr(l, "\"rolled_back\":true") != NULL;
        assert_int_equal(rolled[i + 1], fh_json_num(l, "malicious") > 0); /* the rounds that aggregated it */
        if (rolled[i + 1]) bad++, last_bad = i + 1;
        free(l);
    }
    free(m);
    print_message("%d of %d rounds rolled back (last %d)\n", bad, n, last_bad);
    assert_true(bad >= 1 && last_bad < n); /* a sound round (and its checkpoint) follows a rolled-back one */
    fh_path(&C, p, sizeof p, "results/keep_huge/client_state");
    DIR *dir = opendir(p);
    assert_non_null(dir);
    int versions[6] = {0}, files = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        int k, r;
        char tail[32];
        if (sscanf(de->d_name, "c%d_r%d.%31s", &k, &r, tail) != 3) continue;
        assert_true(k >= 0 && k < 6 && r >= 1 && r <= n);
        if (rolled[r]) fail_msg("client_state/%s: a version of rolled-back round %d", de->d_name, r);
        versions[k]++, files++;
    }
    closedir(dir);
    for (int k = 0; k < 6; k++) assert_true(versions[k] <= 1); /* no leftover of a superseded version */
    assert_true(files >= 3);                                     /* every sound round's clients kept theirs */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_worker),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_resume_equivalence),
        cmocka_unit_test(test_rolled_back_keep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
