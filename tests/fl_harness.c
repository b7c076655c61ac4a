/* fl_harness.c: see fl_harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "attack_api.h"
#include "fl/config.h"
#include "fl_harness.h"
#include "fl/transport.h"
#include "io/safetensors.h"
#include "fv_common.h"

int fh_init(fh_ctx *c, const char *name) {
    c->bin = getenv("FEDVIM_BIN");
    c->bind = NULL;
    if (!c->bin || access(c->bin, X_OK) != 0) {
        fprintf(stderr, "skipped: FEDVIM_BIN does not name the built fedvim binary\n");
        return 77;
    }
    snprintf(c->root, sizeof c->root, "/tmp/fv_%.20s_XXXXXX", name);
    return mkdtemp(c->root) ? 0 : -1;
}

void fh_cleanup(fh_ctx *c) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", c->root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", c->root);
}

void fh_path(const fh_ctx *c, char *out, size_t cap, const char *fmt, ...) {
    int n = snprintf(out, cap, "%s/", c->root);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

void fh_put(const char *p, const char *text) {
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

char *fh_slurp(const char *p) {
    uint8_t *d = NULL;
    size_t len = 0;
    fv_err e;
    if (fv_read_file(p, 64u << 20, &d, &len, &e) != 0) return NULL;
    char *s = realloc(d, len + 1);
    s[len] = 0;
    return s;
}

char *fh_line(const char *text, int i) {
    const char *p = text;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) return NULL;
    const char *nl = strchr(p, '\n');
    size_t l = nl ? (size_t)(nl - p) : strlen(p);
    char *s = malloc(l + 1);
    memcpy(s, p, l);
    s[l] = 0;
    return s;
}

const char *fh_torch_python(void) {
    static const char *cands[] = {"/usr/bin/python3", "python3"};
    for (size_t i = 0; i < 2; i++) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "%s -c 'import torch, numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

void fh_dump(const char *dir, const char *name, const void *p, size_t bytes) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, bytes, f), bytes);
    fclose(f);
}

void fh_dump_relu_masks(const char *dir, const fv_net *net, int batch, int k) {
    char path[600];
    snprintf(path, sizeof path, "%s/masks_%d.bin", dir, k);
    FILE *bf = fopen(path, "wb");
    assert_non_null(bf);
    FILE *kf = NULL;
    if (k == 0) {
        snprintf(path, sizeof path, "%s/masks.txt", dir);
        kf = fopen(path, "w");
        assert_non_null(kf);
    }
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_RELU) continue;
        size_t cnt = (size_t)batch * fv_shape_size(nd->oshape);
        const int B = nd->blocked, C = nd->oshape.c, HW = nd->oshape.h * nd->oshape.w;
        for (size_t j = 0; j < cnt; j++) { /* in NCHW order, a blocked output moved (net.h) */
            const size_t n = j / ((size_t)C * HW), c = j / HW % C, q = j % HW;
            const size_t at = B ? ((n * (C / B) + c / B) * HW + q) * B + c % B : j;
            fputc(nd->out[at] > 0.0f, bf);
        }
        if (kf) fprintf(kf, "%zu\n", cnt);
    }
    assert_int_equal(fclose(bf), 0);
    if (kf) assert_int_equal(fclose(kf), 0);
}

char *fh_results_file(const fh_ctx *c, const char *name, const char *file) {
    char p[512];
    fh_path(c, p, sizeof p, "results/%s/%s", name, file);
    return fh_slurp(p);
}

void fh_params_hash(const fh_ctx *c, const char *name, char out[65]) {
    char *s = fh_results_file(c, name, "summary.json");
    assert_non_null(s);
    const char *h = strstr(s, "\"params_hash\":\"");
    assert_non_null(h);
    assert_true(strlen(h + 15) >= 64);
    memcpy(out, h + 15, 64);
    out[64] = 0;
    free(s);
}

double fh_final_accuracy(const fh_ctx *c, const char *name) {
    char *s = fh_results_file(c, name, "summary.json");
    assert_non_null(s);
    double a = fh_json_num(s, "test_accuracy");
    free(s);
    return a;
}

int fh_count_lines(const char *text) {
    int n = 0;
    for (const char *c = text; c && *c; c++) n += *c == '\n';
    return n;
}

double fh_json_num(const char *json, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* fedvim with the argument list ap (NULL-terminated) in a child, stdout and stderr to out. */
static pid_t spawn_v(const fh_ctx *c, const char *out, va_list ap) {
    const char *argv[32];
    int n = 0;
    argv[n++] = c->bin;
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31) argv[n++] = a;
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(c->bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int fh_run(const fh_ctx *c, const char *out, double timeout, ...) {
    va_list ap;
    va_start(ap, timeout);
    const pid_t pid = spawn_v(c, out, ap);
    va_end(ap);
    const int rc = fh_wait(pid, timeout);
    if (rc != 0) {
        char *t = fh_slurp(out);
        print_message("fedvim exited %d:\n%s\n", rc, t ? t : "");
        free(t);
    }
    return rc;
}

int fh_run_exp(const fh_ctx *c, const char *name, const char *base, const char *extra) {
    char p[256], out[256], text[4096];
    fh_path(c, p, sizeof p, "%s.ini", name);
    fh_path(c, out, sizeof out, "%s.out", name);
    snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", base, c->root, extra ? extra : "");
    fh_put(p, text);
    return fh_run(c, out, 300, "run", p, "--quiet", "--overwrite", (const char *)NULL);
}

int fh_contains(const char *path, const char *needle) {
    char *t = fh_slurp(path);
    int r = t && strstr(t, needle);
    free(t);
    return r;
}

int fh_file_has(const fh_ctx *c, const char *rel, const char *needle) {
    char p[256];
    fh_path(c, p, sizeof p, "%s", rel);
    return fh_contains(p, needle);
}

int fh_out_has(const fh_ctx *c, const char *name, const char *needle) {
    char p[256];
    fh_path(c, p, sizeof p, "%s.out", name);
    char *t = fh_slurp(p);
    const int has = t && strstr(t, needle) != NULL;
    if (!has) fprintf(stderr, "%s lacks \"%s\"; it holds:\n%s\n", p, needle, t ? t : "(unreadable)");
    free(t);
    return has;
}

int fh_same_file(const char *a, const char *b) {
    char *x = fh_slurp(a), *y = fh_slurp(b);
    struct stat sa, sb;
    int r = x && y && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_size == sb.st_size &&
            memcmp(x, y, (size_t)sa.st_size) == 0;
    free(x);
    free(y);
    return r;
}

int fh_json_str(const char *json, const char *key, char *out, size_t cap) {
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

void fh_model_hash(const fh_ctx *c, const char *name, char *out, size_t cap) {
    char p[256];
    fh_path(c, p, sizeof p, "results/%s/summary.json", name);
    char *s = fh_slurp(p);
    if (!s) fail_msg("%s: no summary.json", name);
    assert_int_equal(fh_json_str(s, "params_hash", out, cap), 0);
    free(s);
}

void fh_config(const fh_ctx *c, const char *name, const char *data, const char *fl, const char *training,
               const char *extra) {
    char p[256], text[4096];
    fh_path(c, p, sizeof p, "%s.ini", name);
    snprintf(text, sizeof text, "[data]\n%s\n[fl]\n%s\n[training]\n%s\n[output]\ndir = %s/results\n%s\n", data, fl,
             training, c->root, extra ? extra : "");
    fh_put(p, text);
}

int fh_run_cfg(const fh_ctx *c, const char *name, double timeout, const char *a1, const char *a2) {
    char p[256], out[256];
    fh_path(c, p, sizeof p, "%s.ini", name);
    fh_path(c, out, sizeof out, "%s.out", name);
    return fh_run(c, out, timeout, "run", p, "--quiet", "--overwrite", a1, a2, (const char *)NULL);
}

int fh_group_setup(void **state) {
    (void)state;
    fv_crypto_init();
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void fh_expect_config_error(const char *base_ini, const char *extra, const char *n1, const char *n2) {
    char text[4096];
    const int len = snprintf(text, sizeof text, "%s%s\n", base_ini, extra);
    if (len < 0 || (size_t)len >= sizeof text) fail_msg("config text of %d bytes does not fit: %.60s", len, extra);
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    int rc = fv_config_parse(&c, "t.ini", text, strlen(text), &e);
    if (rc == 0) rc = fv_config_check(&c, &e);
    if (rc == 0) rc = fv_attack_check_config(&c, &e); /* as every entry point that runs one */
    if (rc == 0) fail_msg("accepted: %s", extra);
    if (!strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
        fail_msg("for %s: message '%s' lacks '%s' / '%s'", extra, e.msg, n1, n2 ? n2 : "");
}

/* ---- the rogue client ---- */

pid_t fh_spawn(const fh_ctx *c, const char *out, ...) {
    va_list ap;
    va_start(ap, out);
    const pid_t pid = spawn_v(c, out, ap);
    va_end(ap);
    return pid;
}

int fh_wait(pid_t pid, double timeout) {
    double end = fv_now() + timeout;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (fv_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("process %d did not finish within %.0f s", (int)pid, timeout);
        }
        usleep(5000);
    }
}

void fh_keys(const fh_ctx *c, const char *const *workers, int n, const fv_identity *fake_id) {
    char k[256], allow[256], tmp[256];
    fh_path(c, k, sizeof k, "coord.key");
    fh_path(c, tmp, sizeof tmp, "coord.keygen.out");
    assert_int_equal(fh_wait(fh_spawn(c, tmp, "coordinator", "--gen-key", k, (const char *)NULL), 30), 0);
    fh_path(c, allow, sizeof allow, "allow.txt");
    FILE *af = fopen(allow, "w");
    assert_non_null(af);
    for (int i = 0; i < n; i++) {
        fh_path(c, k, sizeof k, "%s.key", workers[i]);
        fh_path(c, tmp, sizeof tmp, "%s.keygen.out", workers[i]);
        assert_int_equal(fh_wait(fh_spawn(c, tmp, "worker", "--gen-key", k, (const char *)NULL), 30), 0);
        char *line = fh_slurp(tmp);
        assert_non_null(line);
        assert_non_null(strstr(line, "fvid1:"));
        fprintf(af, "%.*s %s\n", FV_PUBID_STR_LEN, strstr(line, "fvid1:"), workers[i]);
        free(line);
    }
    if (fake_id) {
        char line[FV_PUBID_STR_LEN + 1];
        fv_pubid_format(line, sizeof line, &fake_id->pub);
        fprintf(af, "%s fake\n", line);
    }
    fclose(af);
}

pid_t fh_coordinator(const fh_ctx *c, const char *cfg, const char *out, char *ep, size_t cap) {
    char p[256], key[256], allow[256];
    fh_path(c, p, sizeof p, "%s.ini", cfg);
    fh_path(c, key, sizeof key, "coord.key");
    fh_path(c, allow, sizeof allow, "allow.txt");
    pid_t pid = fh_spawn(c, out, "coordinator", p, "--bind", c->bind ? c->bind : "tcp://127.0.0.1:*", "--key", key, "--allow", allow,
                         "--overwrite", (const char *)NULL);
    fh_endpoint_of(out, ep, cap);
    return pid;
}

void fh_endpoint_of(const char *out, char *ep, size_t cap) {
    double end = fv_now() + 60;
    while (fv_now() < end) {
        char *t = fh_slurp(out);
        const char *s = t ? strstr(t, "listening on ") : NULL;
        if (s) {
            s += 13;
            size_t i = 0;
            while (s[i] && s[i] != ' ' && i + 1 < cap) ep[i] = s[i], i++;
            ep[i] = 0;
            free(t);
            return;
        }
        free(t);
        usleep(10000);
    }
    fail_msg("the coordinator never said where it listens (%s)", out);
}

pid_t fh_worker(const fh_ctx *c, const char *ep, const char *name, const char *out) {
    char key[256], skey[256];
    fh_path(c, key, sizeof key, "%s.key", name);
    fh_path(c, skey, sizeof skey, "coord.key.pub");
    return fh_spawn(c, out, "worker", "--connect", ep, "--key", key, "--server-key", skey, "--name", name,
                    (const char *)NULL);
}

void fh_fake_send(fh_fake *f, Fedvim__Envelope *env, const fv_wire_frame *fr, int nf) {
    fv_err e;
    if (fv_wire_send(f->sock, NULL, 0, env, fr, nf, NULL, &e) != 0) fail_msg("fake worker: %s", e.msg);
}

void fh_fake_heartbeat(fh_fake *f) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Heartbeat hb = FEDVIM__HEARTBEAT__INIT;
    env.body_case = FEDVIM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    fh_fake_send(f, &env, NULL, 0);
}

void fh_fake_join(const fh_ctx *c, fh_fake *f, const char *ep) {
    char p[256];
    fv_public_id server;
    fv_err e = {{0}};
    fh_path(c, p, sizeof p, "coord.key.pub");
    assert_int_equal(fv_pubid_load(p, &server, &e), 0);
    f->ctx = zmq_ctx_new();
    if (f->slow) { /* the options must precede the connection: fv_socket_client connects at once */
        f->sock = zmq_socket(f->ctx, ZMQ_DEALER);
        assert_non_null(f->sock);
        int hwm = 1, buf = 4096, linger = 0;
        assert_int_equal(zmq_setsockopt(f->sock, ZMQ_RCVHWM, &hwm, sizeof hwm), 0);
        assert_int_equal(zmq_setsockopt(f->sock, ZMQ_RCVBUF, &buf, sizeof buf), 0);
        assert_int_equal(zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger), 0);
        assert_int_equal(zmq_setsockopt(f->sock, ZMQ_CURVE_SERVERKEY, server.curve_pk, FV_CURVE_KEY_BYTES), 0);
        assert_int_equal(zmq_setsockopt(f->sock, ZMQ_CURVE_PUBLICKEY, f->id.pub.curve_pk, FV_CURVE_KEY_BYTES), 0);
        assert_int_equal(zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, f->id.curve_sk, FV_CURVE_KEY_BYTES), 0);
        assert_int_equal(zmq_connect(f->sock, ep), 0);
    } else {
        f->sock = fv_socket_client(f->ctx, ep, &f->id, server.curve_pk, 1 << 26, NULL, &e);
    }
    assert_non_null(f->sock);
    f->lim = (fv_wire_limits){FV_WIRE_MAX_HEADER, 1 << 24};
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Join j = FEDVIM__JOIN__INIT;
    j.worker_name = "fake";
    j.sign_public_key = (ProtobufCBinaryData){FV_SIGN_PK_BYTES, f->id.pub.sign_pk};
    env.body_case = FEDVIM__ENVELOPE__BODY_JOIN;
    env.join = &j;
    fh_fake_send(f, &env, NULL, 0);
    int timeout = 30000;
    zmq_setsockopt(f->sock, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    fv_wire_msg m;
    assert_int_equal(fv_wire_recv(f->sock, 0, &f->lim, &m, &e), 0);
    assert_int_equal(m.env->body_case, FEDVIM__ENVELOPE__BODY_WELCOME);
    f->session = m.env->welcome->session;
    f->n_params = m.env->welcome->n_params;
    fv_wire_msg_close(&m);
    fh_fake_heartbeat(f);
}

int fh_fake_next(fh_fake *f, fv_wire_msg *m, double timeout) {
    double end = fv_now() + timeout, beat = 0;
    int t = 200;
    zmq_setsockopt(f->sock, ZMQ_RCVTIMEO, &t, sizeof t);
    while (fv_now() < end) {
        fv_err e;
        int r = fv_wire_recv(f->sock, 0, &f->lim, m, &e);
        if (r == 0 && m->env->body_case != FEDVIM__ENVELOPE__BODY_HEARTBEAT) return m->env->body_case;
        fv_wire_msg_close(m);
        if (fv_now() - beat >= 0.2) { /* like a worker: a heartbeat now and then, not an echo */
            fh_fake_heartbeat(f);
            beat = fv_now();
        }
    }
    return 0;
}

void fh_fake_update(fh_fake *f, const Fedvim__Task *t, const float *params) {
    const fh_forgery honest = {0};
    fh_fake_forged_update(f, t, params, &honest);
}

void fh_fake_forged_update(fh_fake *f, const Fedvim__Task *t, const float *params, const fh_forgery *how) {
    Fedvim__UpdateBody b = FEDVIM__UPDATE_BODY__INIT;
    b.session = f->session;
    b.task_id = how->task_id ? how->task_id : t->task_id;
    b.round = how->round ? how->round : t->round;
    b.client_id = t->client_id;
    b.num_samples = t->expected_samples;
    const size_t count = how->count ? how->count : f->n_params;
    float *x = calloc(count, sizeof(float));
    memcpy(x, params, (count < f->n_params ? count : f->n_params) * sizeof(float));
    fv_wire_frame fr[2] = {{FEDVIM__FRAME_KIND__FRAME_PARAMS, x, count},
                           {FEDVIM__FRAME_KIND__FRAME_CONTROL, how->control, how->control_count}};
    const int nf = how->control ? 2 : 1;
    uint8_t *bb, sig[FV_SIG_BYTES];
    size_t bl;
    fv_wire_pack_update(&b, fr, nf, f->id.sign_sk, &bb, &bl, sig);
    if (how->tamper) x[count / 2] += 0.5f;
    Fedvim__Update u = FEDVIM__UPDATE__INIT;
    u.body = (ProtobufCBinaryData){bl, bb};
    u.signature = (ProtobufCBinaryData){how->unsigned_ ? 0 : FV_SIG_BYTES, sig};
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    env.body_case = FEDVIM__ENVELOPE__BODY_UPDATE;
    env.update = &u;
    fh_fake_send(f, &env, fr, nf);
    free(bb);
    free(x);
}

void fh_fake_error(fh_fake *f, uint32_t code, uint64_t task_id, const char *text) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Error er = FEDVIM__ERROR__INIT;
    er.code = code;
    er.message = (char *)text;
    er.task_id = task_id;
    env.body_case = FEDVIM__ENVELOPE__BODY_ERROR;
    env.error = &er;
    fh_fake_send(f, &env, NULL, 0);
}

void fh_fake_close(fh_fake *f) {
    if (f->sock) zmq_close(f->sock);
    if (f->ctx) zmq_ctx_term(f->ctx);
    f->sock = f->ctx = NULL;
}

/* ---- the insider scene ---- */

void fh_insider_cfg(const fh_ctx *c, const char *name, int workers, const char *fl, const char *security) {
    char p[256], text[2048];
    fh_path(c, p, sizeof p, "%s.ini", name);
    snprintf(text, sizeof text,
             "[data]\n" FH_SYN_DATA "\n[fl]\nclients = 4\nrounds = 2\n"
             "workers = %d\ntasks_per_worker = 2\nworker_timeout = 10\nround_timeout = 120\n%s\n[training]\n"
             "lr = 0.05\n[model]\nname = tiny\n[security]\n%s\n[output]\ndir = %s/results\n",
             workers, fl ? fl : "", security ? security : "max_strikes = 3", c->root);
    fh_put(p, text);
}

void fh_reference(const fh_ctx *c, char *out, size_t cap) {
    static char done[80];
    if (*done) {
        snprintf(out, cap, "%s", done);
        return;
    }
    fh_insider_cfg(c, "ref", 1, NULL, NULL);
    assert_int_equal(fh_run_cfg(c, "ref", 120, NULL, NULL), 0);
    fh_model_hash(c, "ref", done, sizeof done);
    snprintf(out, cap, "%s", done);
}

void fh_assert_same_model(const fh_ctx *c, const char *name, const char *ref_hash) {
    char h[80];
    fh_model_hash(c, name, h, sizeof h);
    if (strcmp(h, ref_hash) != 0) fail_msg("%s: model %s, undisturbed %s", name, h, ref_hash);
}

void fh_start_rogue_and_honest(const fh_ctx *c, const char *name, const char *fl, const char *security,
                               fh_fake *rogue, char *ep, size_t cap, pid_t *coord, pid_t *honest) {
    fv_identity_generate(&rogue->id);
    const char *ws[] = {"honest"};
    fh_keys(c, ws, 1, &rogue->id);
    fh_insider_cfg(c, name, 2, fl, security);
    char cout[256], hout[256];
    fh_path(c, cout, sizeof cout, "%s.coord.out", name);
    fh_path(c, hout, sizeof hout, "honest.out");
    *coord = fh_coordinator(c, name, cout, ep, cap);
    fh_fake_join(c, rogue, ep);
    *honest = fh_worker(c, ep, "honest", hout);
}

void fh_end_scene(fh_fake *rogue, pid_t coord, pid_t honest) {
    assert_int_equal(fh_wait(coord, 120), 0);
    assert_int_equal(fh_wait(honest, 60), 0);
    fh_fake_close(rogue);
}

int fh_cut(const fh_ctx *c, const char *name, const char *base, const char *extra, int rounds) {
    char p[256], out[256], metrics[256], text[4096];
    fh_path(c, p, sizeof p, "%s.ini", name);
    fh_path(c, out, sizeof out, "%s.out", name);
    fh_path(c, metrics, sizeof metrics, "results/%s/metrics.jsonl", name);
    snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", base, c->root, extra ? extra : "");
    fh_put(p, text);
    const int done = fh_run_killed_after(c, p, out, metrics, 2);
    print_message("%s: killed after %d rounds of %d\n", name, done, rounds);
    assert_true(done >= 2 && done < rounds);
    char *sum = fh_results_file(c, name, "summary.json");
    assert_null(sum); /* nothing looks complete */
    return done;
}

void fh_resume_matches(const fh_ctx *c, const char *name, int rounds, const char *ref) {
    char out[256], rdir[256];
    fh_path(c, out, sizeof out, "%s.out", name);
    fh_path(c, rdir, sizeof rdir, "results/%s", name);
    assert_int_equal(fh_run(c, out, 300, "run", "--resume", rdir, "--quiet", (const char *)NULL), 0);
    char *m = fh_results_file(c, name, "metrics.jsonl");
    assert_int_equal(fh_count_lines(m), rounds);
    free(m);
    char a[65], b[65];
    fh_params_hash(c, ref, a);
    fh_params_hash(c, name, b);
    assert_string_equal(a, b);
}

int fh_run_killed_after(const fh_ctx *c, const char *ini, const char *out, const char *metrics, int k) {
    pid_t run = fh_spawn(c, out, "run", ini, "--quiet", "--overwrite", (const char *)NULL);
    double end = fv_now() + 120;
    int done = 0;
    while (done < k && fv_now() < end) {
        char *m = fh_slurp(metrics);
        done = fh_count_lines(m);
        free(m);
        if (done < k) usleep(500);
    }
    assert_int_equal(kill(run, SIGKILL), 0);
    int st;
    waitpid(run, &st, 0);
    usleep(200000);
    char *m = fh_slurp(metrics);
    done = fh_count_lines(m);
    free(m);
    assert_true(done >= k);
    return done;
}

double fh_model_gap(const fh_ctx *c, const char *a, const char *b) {
    char pa[256], pb[256];
    fh_path(c, pa, sizeof pa, "results/%s/model.safetensors", a);
    fh_path(c, pb, sizeof pb, "results/%s/model.safetensors", b);
    fv_err e = {{0}};
    fv_st_file *fa = fv_st_read(pa, &e), *fb = fv_st_read(pb, &e);
    if (!fa || !fb) fail_msg("%s", e.msg);
    assert_int_equal(fa->n, fb->n);
    double gap = 0;
    for (int i = 0; i < fa->n; i++) {
        const fv_st_tensor *x = &fa->tensors[i], *y = fv_st_find(fb, x->name);
        assert_non_null(y);
        assert_int_equal(fv_st_numel(x), fv_st_numel(y));
        for (size_t k = 0; k < fv_st_numel(x); k++) gap = fmax(gap, fabs((double)x->data[k] - y->data[k]));
    }
    fv_st_file_destroy(&fa);
    fv_st_file_destroy(&fb);
    return gap;
}
