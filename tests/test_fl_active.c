/* test_fl_active.c: the ACTIVE GAN attacker ([attack] kind = gan_active, Hitaj's fake-class
 * injection) in real federated runs through the fedvim binary ($FEDVIM_BIN: coordinator and two
 * worker processes over CURVE on localhost, signed updates), on the synthetic set:
 *  - the shared model has classes + 1 outputs (LeNet-5: one more row of fc3, 84 + 1 parameters);
 *  - the attacking client's worker injects G's samples labelled fake only at the attacker's rounds:
 *    with rounds = 2, round 1's training is bitwise that of a run where the attacker never acts
 *    (same train loss and accuracy in round 1's metrics line), round 2's differs;
 *  - attacks.jsonl holds one "ok" record per attacked round with the replayed generator's figures,
 *    the round's metrics line holds the same headline, and the PNG grid exists;
 *  - config errors (target, client, rounds, unknown setting) name file, line and key; a good
 *    gan_active section with empty rounds acts in every round.
 * Kept small so it runs in seconds, under ASan too. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "fv_common.h"

static const char *bin;
static char root[64];

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

static char *slurp(const char *p) {
    uint8_t *d = NULL;
    size_t len = 0;
    fv_err e;
    if (fv_read_file(p, 64u << 20, &d, &len, &e) != 0) return NULL;
    char *s = realloc(d, len + 1);
    s[len] = 0;
    return s;
}

/* Line i (0-based) of text, as a fresh string; NULL past the end. */
static char *line_of(const char *text, int i) {
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

static int count_lines(const char *text) {
    int n = 0;
    for (const char *c = text; c && *c; c++) n += *c == '\n';
    return n;
}

static double json_num(const char *json, const char *key) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* fedvim with args (NULL-terminated), output to out; returns the exit status. */
static int run_bin(const char *out, double timeout, ...) {
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    va_list ap;
    va_start(ap, timeout);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n < 31) argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    double end = fv_now() + timeout;
    for (;;) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (rc != 0) {
                char *t = slurp(out);
                print_message("fedvim exited %d:\n%s\n", rc, t ? t : "");
                free(t);
            }
            return rc;
        }
        if (fv_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("fedvim did not finish within %.0f s", timeout);
        }
        usleep(5000);
    }
}

/* Write NAME.ini (base + attack section text) and run it; returns the exit status. */
static int run_exp(const char *name, const char *base, const char *attack) {
    char p[256], out[256], text[4096];
    path(p, sizeof p, "%s.ini", name);
    path(out, sizeof out, "%s.out", name);
    snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", base, root, attack ? attack : "");
    put(p, text);
    return run_bin(out, 300, "run", p, "--quiet", "--overwrite", (const char *)NULL);
}


static double summary_num(const char *name, const char *key) {
    char p[256];
    path(p, sizeof p, "results/%s/summary.json", name);
    char *s = slurp(p);
    assert_non_null(s);
    double v = json_num(s, key);
    free(s);
    return v;
}

/* the number right after "key": in line i of results/name/metrics.jsonl */
static double metric(const char *name, int i, const char *key) {
    char p[256];
    path(p, sizeof p, "results/%s/metrics.jsonl", name);
    char *m = slurp(p);
    assert_non_null(m);
    char *l = line_of(m, i);
    assert_non_null(l);
    double v = json_num(l, key);
    free(l);
    free(m);
    return v;
}

static const char *BASE = "[data]\ndataset = synthetic\ntrain_size = 400\ntest_size = 200\n"
                          "[model]\nname = lenet5\n"
                          "[training]\nlr = 0.05\nbatch_size = 16\n"
                          "[fl]\nclients = 2\nrounds = 2\nworkers = 2\nseed = 3\nworker_timeout = 120\n"
                          "[security]\nenabled = true\n";
#define GEN "settings = steps=20,batch=8,samples=8,refs=8,oracle_epochs=1,nz=16,ch1=8,ch2=4,fake=32"

static void test_active_in_run(void **state) {
    (void)state;
    assert_int_equal(run_exp("plain", BASE, NULL), 0);
    /* the attacker (client 1) acts in round 2 only, then in every round (rounds empty) */
    assert_int_equal(run_exp("late", BASE, "[attack]\nkind = gan_active\nrounds = 2\nclient = 1\ntarget = 2\n" GEN), 0);
    {
        /* not quiet: the attacking worker's log line is checked below */
        char ini[256], out[256], text[4096];
        path(ini, sizeof ini, "all.ini");
        path(out, sizeof out, "all.out");
        snprintf(text, sizeof text, "%s\n[output]\ndir = %s/results\n%s\n", BASE, root,
                 "[attack]\nkind = gan_active\nclient = 1\ntarget = 2\n" GEN);
        put(ini, text);
        assert_int_equal(run_bin(out, 300, "run", ini, "--overwrite", (const char *)NULL), 0);
    }
    /* one more output: LeNet-5's last layer is 84 wide */
    double np = summary_num("plain", "n_params"), na = summary_num("all", "n_params");
    assert_true(np > 0);
    assert_true(na - np == 85);
    assert_true(summary_num("late", "n_params") == na);
    /* round 1: the all-rounds attacker trained on G's fake images, the late one did not */
    double late1 = metric("late", 0, "train_loss"), all1 = metric("all", 0, "train_loss");
    assert_true(isfinite(late1) && isfinite(all1));
    assert_true(late1 != all1);
    char p[256];
    path(p, sizeof p, "results/late/attacks.jsonl");
    char *at = slurp(p);
    assert_non_null(at);
    assert_int_equal(count_lines(at), 1);
    assert_true(json_num(at, "round") == 2 && json_num(at, "client") == 1);
    free(at);
    path(p, sizeof p, "results/all/attacks.jsonl");
    at = slurp(p);
    assert_non_null(at);
    assert_int_equal(count_lines(at), 2);
    for (int r = 0; r < 2; r++) {
        char *l = line_of(at, r);
        assert_true(json_num(l, "round") == r + 1 && json_num(l, "client") == 1);
        assert_non_null(strstr(l, "\"kind\":\"gan_active\""));
        assert_non_null(strstr(l, "\"status\":\"ok\""));
        assert_non_null(
            strstr(l, "\"discriminator_source\":\"the global model the attacking client trained against\""));
        double rec = json_num(l, "recognisability"), ssim = json_num(l, "ssim_best_median");
        assert_true(rec >= 0 && rec <= 1);
        assert_true(ssim > -1 && ssim <= 1);
        assert_true(json_num(l, "target_class") == 2);
        /* the coordinator replayed the very generator the attacking worker trained and injected
         * (same recipe, seed and discriminator, one thread): D's mean target probability on G's
         * last batch is the same number, to the last printed digit */
        char wl[160];
        path(wl, sizeof wl, "results/all/logs/worker-0.log");
        char *w0 = slurp(wl);
        path(wl, sizeof wl, "results/all/logs/worker-1.log");
        char *w1 = slurp(wl);
        char needle[96];
        snprintf(needle, sizeof needle, "round %d: client 1 (gan_active attacker) adds 32 generated images", r + 1);
        const char *wline = w0 ? strstr(w0, needle) : NULL;
        if (!wline && w1) wline = strstr(w1, needle);
        if (!wline) fail_msg("no worker log line '%s'", needle);
        assert_true(json_num(wline, "fake_class") == 10);
        assert_true(json_num(wline, "p_target") == json_num(l, "p_target"));
        free(w0);
        free(w1);
        /* the metrics line of that round carries the same headline */
        path(p, sizeof p, "results/all/metrics.jsonl");
        char *m = slurp(p);
        char *ml = line_of(m, r);
        const char *h = strstr(ml, "\"attack\":{");
        assert_non_null(h);
        assert_non_null(strstr(h, "\"kind\":\"gan_active\""));
        assert_true(json_num(h, "recognisability") == rec);
        assert_true(json_num(h, "ssim_best_median") == ssim);
        char grid[96];
        snprintf(grid, sizeof grid, "\"grid\":\"attacks/r%d_c1_gan_grid.png\"", r + 1);
        assert_non_null(strstr(h, grid));
        free(ml);
        free(m);
        path(p, sizeof p, "results/all/attacks/r%d_c1_gan_grid.png", r + 1);
        char *png = slurp(p);
        assert_non_null(png);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        free(png);
        free(l);
    }
    free(at);
}

/* Parse base + extra with fv_config and check; the error must contain each needle. */
static void expect_config_error(const char *extra, const char *n1, const char *n2) {
    char text[4096];
    snprintf(text, sizeof text,
             "[data]\ndataset = synthetic\n[fl]\nclients = 4\nrounds = 5\n[training]\nlr = 0.1\n%s\n", extra);
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    int rc = fv_config_parse(&c, "t.ini", text, strlen(text), &e);
    if (rc == 0) rc = fv_config_check(&c, &e);
    if (rc == 0) fail_msg("accepted: %s", extra);
    if (!strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
        fail_msg("for %s: message '%s' lacks '%s' / '%s'", extra, e.msg, n1, n2 ? n2 : "");
}

static void test_config(void **state) {
    (void)state;
    /* lines: 1 [data], 2 dataset, 3 [fl], 4 clients, 5 rounds, 6 [training], 7 lr, 8 [attack], 9.. */
    expect_config_error("[attack]\nkind = gan_activ", "t.ini:9: [attack] kind", "gan_active");
    expect_config_error("[attack]\nkind = gan_active\nclient = 4", "t.ini:10: [attack] client", "0..3");
    expect_config_error("[attack]\nkind = gan_active\nrounds = 6", "t.ini:10: [attack] rounds", "[1, 5]");
    expect_config_error("[attack]\nkind = gan_active\nrounds = 3,2", "t.ini:10: [attack] rounds", "ascending");
    expect_config_error("[attack]\nkind = gan_active\ntarget = 10", "t.ini:10: [attack] target", "10 classes");
    /* on a named data set the oracle needs images beyond train_size */
    char text[512];
    snprintf(text, sizeof text, "[data]\ndataset = mnist\n[attack]\nkind = gan_active\n");
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    assert_int_equal(fv_config_parse(&c, "m.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_config_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "[data] train_size"));
    assert_non_null(strstr(e.msg, "gan_active"));
    /* empty rounds: every round, from the first; the section resolves and reads back */
    snprintf(text, sizeof text, "[attack]\nkind = gan_active\nclient = 1\ntarget = 3\n[fl]\nrounds = 4\n"
                                "clients = 3\n[data]\ndataset = synthetic\n");
    fv_config_defaults(&c);
    assert_int_equal(fv_config_parse(&c, "g.ini", text, strlen(text), &e), 0);
    assert_int_equal(fv_config_check(&c, &e), 0);
    int rs[4];
    assert_int_equal(fv_config_attack_rounds(&c, rs, 4), 4);
    for (int i = 0; i < 4; i++) assert_int_equal(rs[i], i + 1);
    char *w = fv_config_write(&c);
    assert_non_null(strstr(w, "kind = gan_active\n"));
    fv_config back;
    fv_config_defaults(&back);
    assert_int_equal(fv_config_parse(&back, "w.ini", w, strlen(w), &e), 0);
    assert_int_equal(back.attack_kind, FV_ATTACK_GAN_ACTIVE);
    free(w);
}

static void test_bad_setting_in_run(void **state) {
    (void)state;
    /* an unknown generator setting stops the run before round 1, naming the key (the attacking
     * worker would otherwise fail on it mid-run) */
    assert_int_not_equal(run_exp("badset", BASE, "[attack]\nkind = gan_active\nclient = 0\nsettings = stepz=3"), 0);
    char p[256];
    path(p, sizeof p, "badset.out");
    char *t = slurp(p);
    assert_non_null(t);
    if (!strstr(t, "[attack] settings: gan_active settings: unknown key 'stepz'")) fail_msg("output: %s", t);
    free(t);
    path(p, sizeof p, "results/badset/metrics.jsonl");
    assert_int_not_equal(access(p, F_OK), 0);
}

static int setup(void **state) {
    (void)state;
    bin = getenv("FEDVIM_BIN");
    if (!bin || access(bin, X_OK) != 0) {
        fprintf(stderr, "test_fl_active: FEDVIM_BIN is not set to the fedvim binary\n");
        return -1;
    }
    snprintf(root, sizeof root, "/tmp/fv_test_fl_active_XXXXXX");
    if (!mkdtemp(root)) return -1;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_active_in_run),
        cmocka_unit_test(test_bad_setting_in_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
