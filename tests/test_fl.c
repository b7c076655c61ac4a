/* test_fl.c: the federated system end to end on localhost, through the fedvim binary
 * ($FEDVIM_BIN): real coordinator and worker processes talking CURVE over TCP.
 *  - LeNet-5, 4 workers, 3 rounds: accuracy rises, on the synthetic set (every machine) and on an
 *    MNIST subset when $FEDVIM_DATA/mnist exists, each against a bar measured on that data;
 *  - the same config and seed give the bitwise same model with 1 or 4 worker processes (with
 *    Adam state kept per client and FedProx on, the hardest case);
 *  - a worker killed mid-run: its clients are reassigned, the run completes, and the model is
 *    the one an undisturbed run gives;
 *  - security: a worker with an unknown key is refused at the handshake; an allow-listed rogue
 *    sends a malformed message and unsigned, tampered, replayed (wrong round), wrong-shape,
 *    oversized, NaN-bearing and forged updates: each is rejected and logged, the rogue is
 *    banned, its clients reassigned, and the model is again the undisturbed one;
 *  (deadlines of a silent worker are in test_fl_insider.c);
 *  - resume: a coordinator killed with SIGKILL after round 2 resumes to the same final model; a
 *    folder whose checkpoint is lost is not resumed as a fresh start;
 *  - 1,000 virtual clients on 8 worker processes;
 *  - VisualMixer per client: mixed and clean test accuracy, VFE, same model for any process
 *    count, and a worker without the clients' key refuses to serve;
 *  - config errors through the CLI name file, line and key; fl.workers capped by RLIMIT_NPROC and
 *    RLIMIT_NOFILE.
 * Timeouts are generous so the suite also passes under ASan on 2 cores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "crypto.h"
#include "fl/transport.h"
#include "fl/wire.h"
#include "fl_harness.h"

static const char *bin;
static char root[64];

/* ---- helpers ---- */

static void path(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void path(char *out, size_t cap, const char *fmt, ...) {
    int n = snprintf(out, cap, "%s/", root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

static void put(const char *p, const char *text) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The whole file as a string (read in chunks: /proc files report size 0). NULL if absent. */
static char *slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    for (;;) {
        if (n + 1 >= cap) b = realloc(b, cap *= 2);
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (r == 0) break;
        n += r;
    }
    b[n] = 0;
    fclose(f);
    return b;
}

static int lines(const char *p) {
    char *t = slurp(p);
    if (!t) return 0;
    int n = 0;
    for (char *c = t; *c; c++) n += *c == '\n';
    free(t);
    return n;
}

static int contains(const char *p, const char *needle) {
    char *t = slurp(p);
    int r = t && strstr(t, needle);
    free(t);
    return r;
}

/* Start FEDVIM_BIN with args (NULL-terminated); stdout+stderr to `out` (may be NULL). */
static pid_t spawn(const char *out, ...) {
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    va_list ap;
    va_start(ap, out);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 63) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (out) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Wait for pid; return its exit status, or fail the test after timeout seconds (killing it). */
static int wait_exit(pid_t pid, double timeout) {
    double end = fv_now() + timeout;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (fv_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("process %d did not finish within %.0f s", (int)pid, timeout);
        }
        usleep(5000);
    }
}

/* The value of "key":"..." in a JSON text, into out. */
static int json_str(const char *json, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return -1;
    p += strlen(pat);
    size_t i = 0;
    while (p[i] && p[i] != '"' && i + 1 < cap) out[i] = p[i], i++;
    out[i] = 0;
    return 0;
}

static double json_num(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* params_hash from a results folder's summary.json. */
static void model_hash(const char *name, char *out, size_t cap) {
    char p[256];
    path(p, sizeof p, "results/%s/summary.json", name);
    char *s = slurp(p);
    if (!s) fail_msg("%s: no summary.json", name);
    assert_int_equal(json_str(s, "params_hash", out, cap), 0);
    free(s);
}

static int same_file(const char *a, const char *b) {
    char *x = slurp(a), *y = slurp(b);
    struct stat sa, sb;
    int r = x && y && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_size == sb.st_size &&
            memcmp(x, y, (size_t)sa.st_size) == 0;
    free(x);
    free(y);
    return r;
}

/* A config file: a small synthetic base plus `extra` lines (later keys must not repeat base keys). */
static void config(const char *name, const char *data, const char *fl, const char *training, const char *extra) {
    char p[256], text[4096];
    path(p, sizeof p, "%s.ini", name);
    snprintf(text, sizeof text,
             "[data]\n%s\n[fl]\n%s\n[training]\n%s\n[output]\ndir = %s/results\n%s\n", data, fl, training, root,
             extra ? extra : "");
    put(p, text);
}

/* fedvim run NAME.ini with extra args; returns exit status. */
static int run_cfg(const char *name, double timeout, const char *a1, const char *a2) {
    char p[256], out[256];
    path(p, sizeof p, "%s.ini", name);
    path(out, sizeof out, "%s.out", name);
    pid_t pid = spawn(out, "run", p, "--quiet", "--overwrite", a1, a2, (const char *)NULL);
    int st = wait_exit(pid, timeout);
    if (st != 0) {
        char *t = slurp(out);
        print_message("fedvim run %s exited %d:\n%s\n", name, st, t ? t : "");
        free(t);
    }
    return st;
}

/* The endpoint the coordinator printed ("listening on tcp://..."), waiting for it. */
static void endpoint_of(const char *out, char *ep, size_t cap) {
    double end = fv_now() + 60;
    while (fv_now() < end) {
        char *t = slurp(out);
        const char *p = t ? strstr(t, "listening on ") : NULL;
        if (p) {
            p += 13;
            size_t i = 0;
            while (p[i] && p[i] != ' ' && i + 1 < cap) ep[i] = p[i], i++;
            ep[i] = 0;
            free(t);
            return;
        }
        free(t);
        usleep(10000);
    }
    fail_msg("the coordinator never said where it listens (%s)", out);
}

/* ---- fixtures ---- */

static int setup(void **state) {
    (void)state;
    bin = getenv("FEDVIM_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "test_fl: FEDVIM_BIN is not set to the fedvim binary\n");
        return -1;
    }
    snprintf(root, sizeof root, "/tmp/fv_test_fl_XXXXXX");
    if (!mkdtemp(root)) return -1;
    fv_crypto_init();
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---- */

/* LeNet-5 federated for 3 rounds on `data` (a [data] section body): accuracy rises and ends above
 * `bar`. Each data set has its own bar, measured on it with margin: the run is deterministic, the
 * margin absorbs other CPUs' rounding. */
static void lenet_accuracy_rises(const char *name, const char *data, double bar) {
    config(name, data, "clients = 8\nrounds = 3\nworkers = 4", "optimizer = sgd\nlr = 0.05\nmomentum = 0.9",
           "[model]\nname = lenet5");
    assert_int_equal(run_cfg(name, 600, NULL, NULL), 0);
    char p[256], rel[128];
    snprintf(rel, sizeof rel, "results/%s/metrics.jsonl", name);
    path(p, sizeof p, rel);
    char *m = slurp(p);
    assert_non_null(m);
    double acc[3];
    const char *l = m;
    for (int r = 0; r < 3; r++) {
        acc[r] = json_num(l, "test_accuracy");
        assert_true(json_num(l, "round") == r + 1);
        assert_true(json_num(l, "clients") == 8);
        assert_true(json_num(l, "bytes_up") > 8 * 61706 * 4); /* eight LeNet-5 updates */
        l = strchr(l, '\n') + 1;
    }
    free(m);
    print_message("accuracy per round: %.4f %.4f %.4f (bar %.2f)\n", acc[0], acc[1], acc[2], bar);
    /* rises, and ends well above chance (10 classes) */
    assert_true(acc[2] > acc[0]);
    if (!(acc[2] > bar)) fail_msg("%s: final accuracy %.4f <= %.2f", name, acc[2], bar);
    snprintf(rel, sizeof rel, "results/%s/model.safetensors", name);
    path(p, sizeof p, rel);
    assert_int_equal(access(p, R_OK), 0);
    snprintf(rel, sizeof rel, "results/%s/config.resolved.ini", name);
    path(p, sizeof p, rel);
    assert_true(contains(p, "name = lenet5"));
}

/* On an MNIST subset of 8,000 images (measured: 0.563 0.827 0.918): bar 0.85. Skipped without
 * MNIST (scripts/setup.sh fetches it). */
static void test_lenet_accuracy_rises(void **state) {
    (void)state;
    const char *data = getenv("FEDVIM_DATA");
    char mn[512];
    snprintf(mn, sizeof mn, "%s/mnist/train-images-idx3-ubyte", data ? data : "data");
    char gz[520];
    snprintf(gz, sizeof gz, "%s.gz", mn);
    if (access(mn, R_OK) != 0 && access(gz, R_OK) != 0) {
        print_message("skipped: no MNIST under %s (the synthetic case still runs)\n", data ? data : "data");
        return;
    }
    char d[600];
    snprintf(d, sizeof d, "dataset = mnist\ndir = %s/mnist\ntrain_size = 8000\ntest_size = 1000", data ? data : "data");
    lenet_accuracy_rises("lenet", d, 0.85);
}

/* On the synthetic set, which every machine has (measured: 0.497 0.694 0.814): bar 0.70. The MNIST
 * bar (0.85) used to be applied here too and failed on machines without MNIST. */
static void test_lenet_accuracy_rises_synthetic(void **state) {
    (void)state;
    lenet_accuracy_rises("lenet_syn", "dataset = synthetic\ntrain_size = 4000\ntest_size = 1000", 0.70);
}

static const char *SYN = "dataset = synthetic\ntrain_size = 1600\ntest_size = 400";

static void test_same_model_any_process_count(void **state) {
    (void)state;
    const char *tr = "optimizer = adam\nlr = 0.002\nopt_state = keep\nprox_mu = 0.01\nbatch_size = 16";
    config("det1", SYN, "clients = 10\nfraction = 0.5\nrounds = 3\nworkers = 1\ntasks_per_worker = 1", tr,
           "[model]\nname = tiny\n[output]\nname = det");
    config("det4", SYN, "clients = 10\nfraction = 0.5\nrounds = 3\nworkers = 4\ntasks_per_worker = 3", tr,
           "[model]\nname = tiny\n[output]\nname = det_b");
    assert_int_equal(run_cfg("det1", 300, NULL, NULL), 0);
    assert_int_equal(run_cfg("det4", 300, NULL, NULL), 0);
    char a[128], b[128], pa[256], pb[256];
    model_hash("det", a, sizeof a);
    model_hash("det_b", b, sizeof b);
    assert_string_equal(a, b);
    path(pa, sizeof pa, "results/det/model.safetensors");
    path(pb, sizeof pb, "results/det_b/model.safetensors");
    assert_true(same_file(pa, pb));
}

static void test_killed_worker(void **state) {
    (void)state;
    const char *fl = "clients = 8\nfraction = 0.5\nrounds = 4\nworkers = 3\nworker_timeout = 2\nheartbeat = 0.2";
    const char *tr = "optimizer = sgd\nlr = 0.05";
    const char *d = "dataset = synthetic\ntrain_size = 4000\ntest_size = 200";
    config("kill_ref", d, fl, tr, "[model]\nname = lenet5");
    config("kill", d, fl, tr, "[model]\nname = lenet5");
    assert_int_equal(run_cfg("kill_ref", 600, NULL, NULL), 0);
    char p[256], out[256], metrics[256];
    path(p, sizeof p, "kill.ini");
    path(out, sizeof out, "kill.out");
    path(metrics, sizeof metrics, "results/kill/metrics.jsonl");
    pid_t run = spawn(out, "run", p, "--quiet", "--overwrite", (const char *)NULL);
    double end = fv_now() + 300;
    while (lines(metrics) < 1 && fv_now() < end) usleep(2000);
    /* round 2 is being dispatched: kill the first worker process while it trains */
    char cp[64];
    snprintf(cp, sizeof cp, "/proc/%d/task/%d/children", (int)run, (int)run);
    char *ch = slurp(cp);
    assert_non_null(ch);
    int victim = atoi(ch);
    free(ch);
    assert_true(victim > 0);
    usleep(20000);
    assert_int_equal(kill(victim, SIGKILL), 0);
    assert_int_equal(wait_exit(run, 600), 0);
    char log[256];
    path(log, sizeof log, "results/kill/coordinator.log");
    assert_true(contains(log, "lost: "));
    char *m = slurp(metrics);
    int reassigned = 0;
    for (const char *l = m; l && *l; l = strchr(l, '\n') + 1) {
        assert_true(json_num(l, "dropped") == 0);
        reassigned += (int)json_num(l, "reassigned");
        if (!strchr(l, '\n')) break;
    }
    free(m);
    print_message("%d client(s) of the killed worker were reassigned\n", reassigned);
    /* reassigned clients compute exactly what they would have: the undisturbed model */
    char a[128], b[128];
    model_hash("kill_ref", a, sizeof a);
    model_hash("kill", b, sizeof b);
    assert_string_equal(a, b);
}

/* Keys and an allow-list for coordinator + named workers, through the CLI. */
static void make_keys(const char *const *workers, int n, const fv_identity *extra_allowed) {
    char k[256], allow[256], tmp[256];
    path(k, sizeof k, "coord.key");
    path(tmp, sizeof tmp, "coord.keygen.out");
    assert_int_equal(wait_exit(spawn(tmp, "coordinator", "--gen-key", k, (const char *)NULL), 30), 0);
    path(allow, sizeof allow, "allow.txt");
    FILE *af = fopen(allow, "w");
    for (int i = 0; i < n; i++) {
        path(k, sizeof k, "%s.key", workers[i]);
        path(tmp, sizeof tmp, "%s.keygen.out", workers[i]);
        assert_int_equal(wait_exit(spawn(tmp, "worker", "--gen-key", k, (const char *)NULL), 30), 0);
        char *line = slurp(tmp);
        assert_non_null(strstr(line, "fvid1:"));
        fprintf(af, "%.*s %s\n", FV_PUBID_STR_LEN, strstr(line, "fvid1:"), workers[i]);
        free(line);
    }
    if (extra_allowed) {
        char line[FV_PUBID_STR_LEN + 1];
        fv_pubid_format(line, sizeof line, &extra_allowed->pub);
        fprintf(af, "%s fake\n", line);
    }
    fclose(af);
}

static pid_t start_worker(const char *ep, const char *name, const char *out) {
    char key[256], skey[256];
    path(key, sizeof key, "%s.key", name);
    path(skey, sizeof skey, "coord.key.pub");
    return spawn(out, "worker", "--connect", ep, "--key", key, "--server-key", skey, "--name", name,
                 (const char *)NULL);
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
             SYN);
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
    assert_true(contains(sout, "refused this worker's key"));

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
        if (!contains(log, reasons[i])) fail_msg("coordinator.log lacks '%s'", reasons[i]);
    char sp[256];
    fh_path(&H, sp, sizeof sp, "results/sec/summary.json");
    char *s = slurp(sp);
    assert_true(json_num(s, "rejected") >= 8);
    assert_true(json_num(s, "dropped") == 0);
    free(s);
    char a[128], b[128];
    fh_path(&H, sp, sizeof sp, "results/sec_ref/summary.json");
    s = slurp(sp);
    assert_int_equal(json_str(s, "params_hash", a, sizeof a), 0);
    free(s);
    fh_path(&H, sp, sizeof sp, "results/sec/summary.json");
    s = slurp(sp);
    assert_int_equal(json_str(s, "params_hash", b, sizeof b), 0);
    free(s);
    assert_string_equal(a, b);
    fh_cleanup(&H);
}

static void test_resume_equivalence(void **state) {
    (void)state;
    const char *fl = "clients = 8\nfraction = 0.5\nrounds = 4\nworkers = 2";
    const char *tr = "optimizer = adam\nlr = 0.001\nopt_state = keep";
    const char *d = "dataset = synthetic\ntrain_size = 1500\ntest_size = 200";
    config("res_ref", d, fl, tr, "[model]\nname = lenet5");
    config("res", d, fl, tr, "[model]\nname = lenet5");
    assert_int_equal(run_cfg("res_ref", 600, NULL, NULL), 0);
    char p[256], out[256], metrics[256], sp[256];
    path(p, sizeof p, "res.ini");
    path(out, sizeof out, "res.out");
    path(metrics, sizeof metrics, "results/res/metrics.jsonl");
    path(sp, sizeof sp, "results/res/summary.json");
    pid_t run = spawn(out, "run", p, "--quiet", "--overwrite", (const char *)NULL);
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
    path(rdir, sizeof rdir, "results/res");
    path(cfgp, sizeof cfgp, "results/res/config.resolved.ini");
    char *orig = slurp(cfgp);
    char *edited = malloc(strlen(orig) + 32);
    sprintf(edited, "%s; edited\n", orig);
    put(cfgp, edited);
    assert_int_equal(wait_exit(spawn(out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 120), 1);
    assert_true(contains(out, "was edited after the run started"));
    put(cfgp, orig);
    free(orig);
    free(edited);
    assert_int_equal(wait_exit(spawn(out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 600), 0);
    assert_int_equal(lines(metrics), 4);
    char a[128], b[128], pa[256], pb[256];
    model_hash("res_ref", a, sizeof a);
    model_hash("res", b, sizeof b);
    assert_string_equal(a, b);
    path(pa, sizeof pa, "results/res_ref/model.safetensors");
    path(pb, sizeof pb, "results/res/model.safetensors");
    assert_true(same_file(pa, pb));
    char ma[256];
    path(ma, sizeof ma, "results/res/coordinator.log");
    assert_true(contains(ma, "resuming after round"));
    /* a completed run is not run again */
    assert_int_equal(wait_exit(spawn(out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 120), 1);
    assert_true(contains(out, "already completed"));
    /* rounds without their checkpoint are an error, not a fresh start that would discard them */
    char ck[256];
    path(ck, sizeof ck, "results/res/checkpoint.safetensors");
    assert_int_equal(unlink(sp), 0);
    assert_int_equal(unlink(ck), 0);
    assert_int_equal(wait_exit(spawn(out, "run", "--resume", rdir, "--quiet", (const char *)NULL), 120), 1);
    assert_true(contains(out, "holds completed rounds (metrics.jsonl line 2 follows a round whose model was checkpointed) "
                              "but no checkpoint.safetensors"));
    assert_int_equal(lines(metrics), 4); /* nothing was lost */
}

/* VisualMixer inside FL: mixed and clean test accuracy and the measured VFE are reported, mixing
 * is keyed per client so the model is still the same for any process count, and a worker without
 * the clients' key refuses to serve (the coordinator never needs that key). */
static void test_visualmixer(void **state) {
    (void)state;
    const char *d = "dataset = synthetic\ntrain_size = 1200\ntest_size = 300";
    const char *tr = "optimizer = stadam\nlr = 0.002";
    config("vm1", d, "clients = 6\nrounds = 2\nworkers = 1", tr,
           "[model]\nname = lenet5\n[visualmixer]\nenabled = true\ntrials = 200\n[output]\nname = vm_a");
    config("vm3", d, "clients = 6\nrounds = 2\nworkers = 3", tr,
           "[model]\nname = lenet5\n[visualmixer]\nenabled = true\ntrials = 200\n[output]\nname = vm_b");
    /* the same keys (and config) reproduce a VisualMixer run: both runs use one key folder */
    char kd[256];
    path(kd, sizeof kd, "vmkeys");
    assert_int_equal(run_cfg("vm1", 600, "--keys", kd), 0);
    assert_int_equal(run_cfg("vm3", 600, "--keys", kd), 0);
    char a[128], b[128], p[256];
    model_hash("vm_a", a, sizeof a);
    model_hash("vm_b", b, sizeof b);
    assert_string_equal(a, b);
    path(p, sizeof p, "results/vm_a/metrics.jsonl");
    char *m = slurp(p);
    double am = json_num(m, "test_accuracy_mixed"), vc = json_num(m, "vfe_clients");
    free(m);
    assert_true(am >= 0 && am <= 1);
    assert_true(vc > 0);
    path(p, sizeof p, "results/vm_a/summary.json");
    char *s = slurp(p);
    double vt = json_num(s, "vfe_test"), vclean = json_num(s, "vfe_test_clean");
    /* the default d* = auto is reported as the number it became for the test images */
    double dstar = json_num(s, "test_d_star");
    free(s);
    assert_true(dstar > 0 && isfinite(dstar));
    print_message("VFE: clients' shards %.3f, mixed test %.3f, clean test %.3f\n", vc, vt, vclean);
    assert_true(vt > vclean); /* mixing destroys visual structure: VFE rises */

    /* multi-host style: the coordinator has only the evaluation key; a worker without the
     * clients' key cannot serve, and the coordinator stops with its reason */
    const char *ws[] = {"nokey"};
    make_keys(ws, 1, NULL);
    char cfgp[256], key[256], allow[256], ek[256], out[256], ep[256], wout[256], kout[256];
    path(ek, sizeof ek, "eval.vmix.key");
    path(kout, sizeof kout, "eval.keygen.out");
    assert_int_equal(wait_exit(spawn(kout, "keygen", "--out", ek, "--force", (const char *)NULL), 30), 0);
    path(cfgp, sizeof cfgp, "vm1.ini");
    path(key, sizeof key, "coord.key");
    path(allow, sizeof allow, "allow.txt");
    path(out, sizeof out, "vm_nokey.out");
    pid_t coord = spawn(out, "coordinator", cfgp, "--bind", "tcp://127.0.0.1:*", "--key", key, "--allow", allow,
                        "--eval-key", ek, "--overwrite", "--set", "output.name=vm_nokey", (const char *)NULL);
    endpoint_of(out, ep, sizeof ep);
    path(wout, sizeof wout, "nokey.out");
    pid_t w = start_worker(ep, "nokey", wout);
    assert_int_equal(wait_exit(coord, 120), 1);
    assert_int_equal(wait_exit(w, 60), 1);
    assert_true(contains(out, "no client key file"));
}

/* Config errors reach the user naming file, line and key; --set overrides any key. */
static void test_cli_config_errors(void **state) {
    (void)state;
    char p[256], out[256];
    path(p, sizeof p, "bad.ini");
    path(out, sizeof out, "bad.out");
    put(p, "[fl]\nrounds = 2\nroundz = 3\n");
    assert_int_equal(wait_exit(spawn(out, "run", p, (const char *)NULL), 60), 1);
    char want[300];
    snprintf(want, sizeof want, "%s:3: [fl] roundz: unknown key", p);
    assert_true(contains(out, want));
    put(p, "[fl]\nrounds = 2\n[data]\ndataset = synthetic\n");
    assert_int_equal(wait_exit(spawn(out, "run", p, "--set", "fl.rounds=zero", (const char *)NULL), 60), 1);
    assert_true(contains(out, "--set fl.rounds=zero: [fl] rounds: expected an integer, got 'zero'"));
    assert_int_equal(wait_exit(spawn(out, "run", p, "--set", "fl.clients=0", (const char *)NULL), 60), 1);
    assert_true(contains(out, "[fl] clients: 0 is out of range"));
    /* a good override: the resolved config records it */
    char od[256];
    path(od, sizeof od, "results");
    char dirset[300];
    snprintf(dirset, sizeof dirset, "output.dir=%s", od);
    assert_int_equal(wait_exit(spawn(out, "run", p, "--set", "fl.rounds=1", "--set", dirset, "--set", "model.name=tiny",
                                     "--set", "data.train_size=400", "--set", "data.test_size=100", "--set", "fl.workers=1",
                                     "--quiet", "--overwrite", (const char *)NULL), 120), 0);
    path(p, sizeof p, "results/bad/config.resolved.ini");
    assert_true(contains(p, "rounds = 1\n"));
    assert_true(contains(p, "name = tiny\n"));
    /* an empty experiment file is an error naming it */
    path(p, sizeof p, "empty.ini");
    put(p, "; nothing here\n");
    assert_int_equal(wait_exit(spawn(out, "run", p, (const char *)NULL), 60), 1);
    snprintf(want, sizeof want, "%s: sets no key", p);
    assert_true(contains(out, want));
}

/* fl.workers is capped by what the machine lets `fedvim run` start (the limits are lowered for
 * the child only: fork inherits them, and no worker is started). */
static void test_workers_cap(void **state) {
    (void)state;
    char p[256], out[256], od[256], dirset[300];
    path(p, sizeof p, "cap.ini");
    path(out, sizeof out, "cap.out");
    path(od, sizeof od, "results");
    snprintf(dirset, sizeof dirset, "output.dir=%s", od);
    put(p, "[data]\ndataset = synthetic\n[fl]\nclients = 4\nrounds = 1\nworkers = 200\n");
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 128;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    pid_t pid = spawn(out, "run", p, "--set", dirset, "--quiet", (const char *)NULL);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(wait_exit(pid, 60), 1);
    char want[300];
    snprintf(want, sizeof want, "%s:6: [fl] workers: 200 worker processes need", p);
    assert_true(contains(out, want));
    assert_true(contains(out, "RLIMIT_NOFILE (ulimit -n) = 128 allows: at most"));
    /* processes: 4096 workers of 2 threads need 4 tasks each; a limit of 10000 (or the hard one) is short */
    assert_int_equal(getrlimit(RLIMIT_NPROC, &old), 0);
    low = old;
    low.rlim_cur = old.rlim_max < 10000 ? old.rlim_max : 10000;
    assert_int_equal(setrlimit(RLIMIT_NPROC, &low), 0);
    pid = spawn(out, "run", p, "--set", dirset, "--set", "fl.workers=4096", "--set", "training.threads=2", "--quiet",
                (const char *)NULL);
    assert_int_equal(setrlimit(RLIMIT_NPROC, &old), 0);
    assert_int_equal(wait_exit(pid, 60), 1);
    assert_true(contains(out, "--set: [fl] workers: 4096 worker processes need 16384 tasks (4 each: training.threads 2 + 2)"));
    snprintf(want, sizeof want, "RLIMIT_NPROC (ulimit -u) = %llu allows: at most %llu workers",
             (unsigned long long)low.rlim_cur, (unsigned long long)low.rlim_cur / 4);
    assert_true(contains(out, want));
    path(p, sizeof p, "results/cap/logs");
    assert_int_not_equal(access(p, F_OK), 0); /* refused before anything was set up */
}

static void test_thousand_virtual_clients(void **state) {
    (void)state;
    config("v1000", "dataset = synthetic\nsynthetic_shape = 1x8x8\ntrain_size = 10000\ntest_size = 500",
           "clients = 1000\nfraction = 0.1\nrounds = 2\nworkers = 8", "lr = 0.1\nbatch_size = 10",
           "[model]\nname = tiny");
    assert_int_equal(run_cfg("v1000", 600, NULL, NULL), 0);
    char p[256];
    path(p, sizeof p, "results/v1000/metrics.jsonl");
    char *m = slurp(p);
    assert_non_null(m);
    assert_true(json_num(m, "clients") == 100);
    assert_true(json_num(strchr(m, '\n') + 1, "clients") == 100);
    assert_true(json_num(m, "dropped") == 0);
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_accuracy_rises), cmocka_unit_test(test_lenet_accuracy_rises_synthetic),
        cmocka_unit_test(test_same_model_any_process_count),
        cmocka_unit_test(test_killed_worker),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_resume_equivalence),
        cmocka_unit_test(test_thousand_virtual_clients),
        cmocka_unit_test(test_cli_config_errors),
        cmocka_unit_test(test_workers_cap),
        cmocka_unit_test(test_visualmixer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
