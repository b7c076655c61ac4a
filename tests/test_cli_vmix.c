/* test_cli_vmix.c: the VisualMixer commands (`fedvim keygen`, `vfe`, `bounds`, `mix`) run as a
 * user runs them, through $FEDVIM_BIN: the error cases must exit non-zero with a message naming
 * the input and the values involved, and the success paths must write what they promise and
 * print one JSON object last on stdout. Also: the commands and a federated run's config
 * (fl/experiment.h) get the same bounds from the same inputs, and the same defaults.
 * Skips (77) when FEDVIM_BIN is not set. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl/config.h"
#include "fl/experiment.h"
#include "io/png_io.h"
#include "rng.h"

static const char *BIN;
static char DIR_[256];
static char OUT[1 << 16], ERR[1 << 16];

/* Run `fedvim <args>`; capture stdout and stderr; return the exit status. */
static int fv(const char *fmt, ...) {
    char args[2048], cmd[4096], o[300], e[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(o, sizeof o, "%s/stdout", DIR_);
    snprintf(e, sizeof e, "%s/stderr", DIR_);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s' </dev/null", BIN, args, o, e);
    int st = system(cmd);
    const char *paths[2] = {o, e};
    char *bufs[2] = {OUT, ERR};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "rb");
        size_t n = f ? fread(bufs[i], 1, sizeof OUT - 1, f) : 0;
        bufs[i][n] = 0;
        if (f) fclose(f);
    }
    print_message("$ fedvim %s -> %d\n%s", args, WIFEXITED(st) ? WEXITSTATUS(st) : -1, ERR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The last line of stdout is one JSON object. */
static const char *last_json(void) {
    size_t n = strlen(OUT);
    while (n > 0 && OUT[n - 1] == '\n') OUT[--n] = 0;
    char *l = strrchr(OUT, '\n');
    l = l ? l + 1 : OUT;
    assert_true(l[0] == '{' && l[strlen(l) - 1] == '}');
    return l;
}

static void write_png(const char *name, int c, uint64_t seed) {
    enum { H = 24, W = 20 };
    uint8_t px[H * W * 3];
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (int i = 0; i < H * W * c; i++) px[i] = (uint8_t)((i / c) % W * 12 + (fv_rng_below(&r, 4) ? 0 : 60));
    char p[512];
    snprintf(p, sizeof p, "%s/%s", DIR_, name);
    fv_err e;
    assert_int_equal(fv_png_write(p, px, W, H, c, &e), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(DIR_, sizeof DIR_, "/tmp/fv_cli_vmixXXXXXX");
    if (!mkdtemp(DIR_)) return -1;
    write_png("a.png", 3, 1);
    write_png("b.png", 3, 2);
    write_png("grey.png", 1, 3);
    char p[512];
    snprintf(p, sizeof p, "%s/bad.png", DIR_);
    FILE *f = fopen(p, "wb");
    fputs("\x89PNG\r\n\x1a\nthis is not a png", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/empty.png", DIR_);
    fclose(fopen(p, "wb"));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", DIR_);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_keygen(void **state) {
    (void)state;
    assert_int_equal(fv("keygen --out %s/k.key --json", DIR_), 0);
    assert_non_null(strstr(last_json(), "vmix-secret"));
    struct stat st;
    char p[512];
    snprintf(p, sizeof p, "%s/k.key", DIR_);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fv("keygen --out %s/k.key", DIR_), 1);
    assert_non_null(strstr(ERR, "already exists"));
    assert_int_equal(fv("keygen --out %s/k2.key", DIR_), 0);
    assert_int_equal(fv("keygen --out %s/k2.key --force", DIR_), 0);
    assert_int_equal(fv("keygen"), 2);
    assert_non_null(strstr(ERR, "--out"));
}

static void test_vfe(void **state) {
    (void)state;
    assert_int_equal(fv("vfe %s/a.png %s/b.png --json", DIR_, DIR_), 0);
    const char *j = last_json();
    assert_non_null(strstr(j, "\"mean\":"));
    assert_non_null(strstr(j, "\"images\":2"));
    assert_non_null(strstr(OUT, "a.png\t"));
    assert_int_equal(fv("vfe %s/bad.png", DIR_), 1);
    assert_non_null(strstr(ERR, "bad.png"));
    assert_int_equal(fv("vfe %s/empty.png", DIR_), 1);
    assert_non_null(strstr(ERR, "empty.png"));
    assert_int_equal(fv("vfe %s/missing.png", DIR_), 1);
    assert_non_null(strstr(ERR, "missing.png"));
    assert_int_equal(fv("vfe %s/a.png %s/grey.png", DIR_, DIR_), 1); /* shapes differ */
    assert_non_null(strstr(ERR, "grey.png"));
    assert_int_equal(fv("vfe"), 2);
    assert_int_equal(fv("vfe --block 0 %s/a.png", DIR_), 2);
    assert_non_null(strstr(ERR, "--block"));
}

static void test_bounds(void **state) {
    (void)state;
    assert_int_equal(fv("bounds --target-vfe 0.7 --d-max 8 --shape 1x28x28 --trials 300 --json"), 0);
    const char *j = last_json();
    assert_non_null(strstr(j, "\"ws_min\":4"));
    assert_non_null(strstr(j, "\"d_p\":"));
    assert_non_null(strstr(j, "\"quantile\":"));
    /* unreachable V*: names the largest reachable model VFE (28x28, B = 8: 0.9365) */
    assert_int_equal(fv("bounds --target-vfe 0.99 --shape 1x28x28 --trials 100"), 1);
    assert_non_null(strstr(ERR, "largest reachable is 0.9365"));
    /* conflict: both numbers, and --prefer resolves it */
    assert_int_equal(fv("bounds --target-vfe 0.9 --d-max 0.5 --shape 1x28x28 --trials 300"), 1);
    assert_non_null(strstr(ERR, "WS_min = 8"));
    assert_non_null(strstr(ERR, "WS_max = 1"));
    assert_int_equal(fv("bounds --target-vfe 0.9 --d-max 0.5 --shape 1x28x28 --trials 300 --prefer privacy --json"), 0);
    assert_non_null(strstr(last_json(), "\"ws_max\":8"));
    /* without --d-max, d* is --d-rel (default 0.55) x d_p of the whole image, and says so */
    assert_int_equal(fv("bounds --shape 1x28x28 --trials 300 --json"), 0);
    j = last_json();
    assert_non_null(strstr(j, "\"d_rel\":0.55"));
    assert_non_null(strstr(j, "\"ws_max\":4"));
    assert_int_equal(fv("bounds --shape 1x28x28 --trials 300 --d-rel 1 --json"), 0);
    assert_non_null(strstr(last_json(), "\"ws_max\":32"));
    assert_int_equal(fv("bounds --shape 1x28x28 --d-rel 1.5"), 2);
    assert_non_null(strstr(ERR, "--d-rel"));
    assert_int_equal(fv("bounds --shape 0x28x28"), 2);
    assert_non_null(strstr(ERR, "0x28x28"));
}

static void test_mix(void **state) {
    (void)state;
    assert_int_equal(fv("keygen --out %s/m.key", DIR_), 0);
    assert_int_equal(fv("mix --key %s/m.key --out %s/mixed --ws-min 2 --ws-max 8 --json %s/a.png %s/b.png", DIR_, DIR_,
                        DIR_, DIR_),
                     0);
    const char *j = last_json();
    assert_non_null(strstr(j, "\"vfe_mean\":"));
    assert_non_null(strstr(j, "\"vfe_min\":"));
    assert_non_null(strstr(j, "\"windows_by_size\":"));
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/mixed/a.png", DIR_);
    assert_int_equal(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/mixed/preview.png", DIR_);
    assert_int_equal(stat(p, &st), 0);
    /* the mixed PNG differs from the original but has the same shape */
    uint8_t *x, *y;
    int w, h, c, w2, h2, c2;
    fv_err e;
    snprintf(p, sizeof p, "%s/mixed/a.png", DIR_);
    assert_int_equal(fv_png_read(p, &y, &w2, &h2, &c2, &e), 0);
    snprintf(p, sizeof p, "%s/a.png", DIR_);
    assert_int_equal(fv_png_read(p, &x, &w, &h, &c, &e), 0);
    assert_true(w == w2 && h == h2 && c == c2);
    assert_memory_not_equal(x, y, (size_t)w * h * c);
    free(x);
    free(y);
    /* WS_min > WS_max names both values */
    assert_int_equal(fv("mix --key %s/m.key --out %s/o2 --ws-min 8 --ws-max 4 %s/a.png", DIR_, DIR_, DIR_), 1);
    assert_non_null(strstr(ERR, "WS_min = 8"));
    assert_non_null(strstr(ERR, "WS_max = 4"));
    /* missing and short key files */
    assert_int_equal(fv("mix --key %s/nokey --out %s/o3 --ws-min 2 --ws-max 4 %s/a.png", DIR_, DIR_, DIR_), 1);
    assert_non_null(strstr(ERR, "nokey"));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "head -c 40 '%s/m.key' > '%s/short.key' && chmod 600 '%s/short.key'", DIR_, DIR_, DIR_);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(fv("mix --key %s/short.key --out %s/o4 --ws-min 2 --ws-max 4 %s/a.png", DIR_, DIR_, DIR_), 1);
    assert_non_null(strstr(ERR, "short.key"));
    /* --verify with an unreachable target names the image and the VFE reached */
    assert_int_equal(fv("mix --key %s/m.key --out %s/o5 --ws-min 2 --ws-max 2 --target-vfe 5 --verify %s/a.png", DIR_,
                        DIR_, DIR_),
                     1);
    assert_non_null(strstr(ERR, "image 0: measured VFE"));
    assert_non_null(strstr(ERR, "< target 5.0000"));
    /* malformed PNG input */
    assert_int_equal(fv("mix --key %s/m.key --out %s/o6 --ws-min 2 --ws-max 4 %s/bad.png", DIR_, DIR_, DIR_), 1);
    assert_non_null(strstr(ERR, "bad.png"));
    assert_int_equal(fv("mix --out %s/o7 %s/a.png", DIR_, DIR_), 2);
    assert_non_null(strstr(ERR, "--key"));
    /* same key, same output: mixing twice gives identical files */
    assert_int_equal(fv("mix --key %s/m.key --out %s/again --ws-min 2 --ws-max 8 %s/a.png %s/b.png", DIR_, DIR_, DIR_,
                        DIR_),
                     0);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/mixed/a.png' '%s/again/a.png'", DIR_, DIR_);
    assert_int_equal(system(cmd), 0);
}

/* PNG files DIR_/names[0..n) as one CHW data set, as `fedvim mix` reads them. */
static void load_pngs(fv_dataset *d, const char *const *names, int n) {
    memset(d, 0, sizeof *d);
    for (int i = 0; i < n; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", DIR_, names[i]);
        uint8_t *px;
        int w, h, c;
        fv_err e;
        assert_int_equal(fv_png_read(p, &px, &w, &h, &c, &e), 0);
        if (i == 0) {
            *d = (fv_dataset){.n = n, .c = c, .h = h, .w = w, .classes = 1};
            d->x = fv_malloc((size_t)n * c * h * w);
            d->y = fv_calloc((size_t)n, 1);
        }
        assert_true(c == d->c && h == d->h && w == d->w);
        for (int ch = 0; ch < c; ch++)
            for (long k = 0; k < (long)h * w; k++) d->x[((size_t)i * c + ch) * h * w + k] = px[k * c + ch];
        free(px);
    }
}

/* Regression: a federated run (fv_exp_vmix_params) raised WS_min to the shuffle unit silently
 * where `fedvim mix` refused. Both now take the one rule of vmix_bounds.h: on the same images,
 * seed and settings they give the same bounds, and refuse the same unit case. */
static void test_one_rule(void **state) {
    (void)state;
    assert_int_equal(fv("keygen --out %s/r.key", DIR_), 0);
    const char *names[] = {"a.png", "b.png"};
    fv_dataset d;
    load_pngs(&d, names, 2);
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    assert_int_equal(fv_config_set(&c, "visualmixer.trials=200", &e), 0);
    struct {
        const char *flags, *sets[3];
    } cases[] = {
        {"--target-vfe 0.3 --d-max 3", {"visualmixer.vfe_target=0.3", "visualmixer.d_star=3", NULL}},
        {"", {NULL}}, /* the defaults: V* 0.5, d* relative */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fv_config ck = c;
        for (int i = 0; cases[k].sets[i]; i++) assert_int_equal(fv_config_set(&ck, cases[k].sets[i], &e), 0);
        fv_vmix_params p;
        fv_exp_bounds b;
        assert_int_equal(fv_exp_vmix_params(&ck, &d, 1 /* the commands' --seed default */, 1, &p, &b, &e), 0);
        assert_int_equal(fv("mix --key %s/r.key --out %s/rule%zu --trials 200 %s --preview 0 --json %s/a.png %s/b.png",
                            DIR_, DIR_, k, cases[k].flags, DIR_, DIR_),
                         0);
        char want[64];
        snprintf(want, sizeof want, "\"ws_min\":%d,\"ws_max\":%d,", b.ws_min, b.ws_max);
        if (!strstr(last_json(), want)) fail_msg("config gives %s, fedvim mix: %s", want, last_json());
    }
    /* the unit case: utility wins a conflict and lowers WS_min below the unit: both refuse */
    fv_config cu = c;
    const char *sets[] = {"visualmixer.unit=4", "visualmixer.vfe_target=0.1", "visualmixer.d_star=0.01",
                          "visualmixer.conflict=utility"};
    for (int i = 0; i < 4; i++) assert_int_equal(fv_config_set(&cu, sets[i], &e), 0);
    fv_vmix_params p;
    fv_exp_bounds b;
    assert_int_equal(fv_exp_vmix_params(&cu, &d, 1, 1, &p, &b, &e), -1);
    assert_non_null(strstr(e.msg, "[visualmixer] WS_min = 1 (lowered to WS_max: utility won) is smaller than the "
                                  "shuffle unit 4"));
    assert_non_null(strstr(e.msg, "set unit to at most 1"));
    assert_int_equal(fv("mix --key %s/r.key --out %s/ruleu --trials 200 --unit 4 --target-vfe 0.1 --d-max 0.01 "
                        "--prefer utility %s/a.png %s/b.png",
                        DIR_, DIR_, DIR_, DIR_),
                     1);
    assert_non_null(strstr(ERR, "WS_min = 1 (lowered to WS_max: utility won) is smaller than the shuffle unit 4"));
    assert_non_null(strstr(ERR, "set --unit to at most 1"));
    fv_dataset_free(&d);
}

/* The default a command's --help shows for --flag, as a number. */
static double help_default(const char *flag) {
    char key[64];
    snprintf(key, sizeof key, "  --%s ", flag);
    const char *l = strstr(OUT, key);
    if (!l) l = strstr(ERR, key);
    if (!l) fail_msg("--%s is not in the help", flag);
    const char *eol = strchr(l, '\n'), *d = strstr(l, "(default ");
    if (!d || (eol && d > eol)) fail_msg("--%s shows no default", flag);
    return strtod(d + 9, NULL);
}

/* `fedvim bounds`, `fedvim mix` and the config share one set of defaults (vmix_defaults.h). */
static void test_defaults_agree(void **state) {
    (void)state;
    fv_config c;
    fv_config_defaults(&c);
    const struct {
        const char *flag;
        double config;
    } keys[] = {
        {"target-vfe", c.vmix_vfe_target}, {"alpha", c.vmix_alpha}, {"d-rel", c.vmix_d_rel},
        {"block", c.vmix_block},           {"unit", c.vmix_unit},   {"lambda", c.vmix_lambda},
        {"quantile", c.vmix_p},            {"trials", c.vmix_trials},
    };
    const char *cmds[] = {"bounds", "mix"};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(fv("%s --help", cmds[k]), 0);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (help_default(keys[i].flag) != keys[i].config)
                fail_msg("fedvim %s --%s defaults to %g, the config to %g", cmds[k], keys[i].flag,
                         help_default(keys[i].flag), keys[i].config);
    }
    assert_true(c.vmix_d_star == FV_CFG_AUTO); /* d* relative, as the commands without --d-max */
    assert_int_equal(c.vmix_conflict, FV_VMIX_CONFLICT_ERROR); /* as the commands without --prefer */
    /* and the config's bounds parameters are the rule's defaults */
    fv_vmix_bounds_cfg fromcfg, def;
    fv_exp_vmix_bounds_cfg(&c, &fromcfg);
    fv_vmix_bounds_cfg_default(&def);
    assert_true(fromcfg.target == def.target && fromcfg.alpha == def.alpha && fromcfg.lambda == def.lambda);
    assert_true(fromcfg.block == def.block && fromcfg.unit == def.unit && fromcfg.d_max == def.d_max);
    assert_true(fromcfg.d_rel == def.d_rel && fromcfg.dp.p == def.dp.p && fromcfg.dp.trials == def.dp.trials);
    assert_true(fromcfg.dp.kernel == def.dp.kernel && fromcfg.dp.pool == def.dp.pool);
    assert_int_equal(fromcfg.conflict, def.conflict);
}

int main(void) {
    BIN = getenv("FEDVIM_BIN");
    if (!BIN || access(BIN, X_OK) != 0) {
        fprintf(stderr, "test_cli_vmix: FEDVIM_BIN is not set to the fedvim binary: skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_vfe),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_mix),
        cmocka_unit_test(test_one_rule),
        cmocka_unit_test(test_defaults_agree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
