/* test_cli_train.c: the numeric flags of `fedvim train` and `fedvim bench train` as a user gives
 * them, and `fedvim distill` end to end with its errors. A flag that sets what a config key sets takes that key's range from the config schema
 * (fv_config_range): out of range is a usage error (exit 2) naming the flag and the range.
 * Regression: `train --lr 0` and `--lr -3` silently trained with the default learning rate (-1
 * meant "not given" and anything <= 0 fell back to it). A given --lr is used; an absent one gives
 * the optimizer's default; an optimizer configuration fv_opt_cfg_check rejects (--nesterov
 * without momentum) is a usage error, not an abort. Trains on a tiny MNIST-format folder written
 * here, so no data set is needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fl/config.h"
#include "fl_harness.h"
#include "nn/optim.h"

static fh_ctx H;
static char g_mnist[512];

static void write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const uint8_t magic[4] = {0, 0, 0x08, (uint8_t)ndim};
    fwrite(magic, 1, 4, f);
    for (int i = 0; i < ndim; i++) {
        const uint8_t be[4] = {(uint8_t)(dims[i] >> 24), (uint8_t)(dims[i] >> 16), (uint8_t)(dims[i] >> 8),
                               (uint8_t)dims[i]};
        fwrite(be, 1, 4, f);
    }
    fwrite(data, 1, n, f);
    fclose(f);
}

/* split "train" or "t10k": n images of 8x8 with labels 0..9 */
static void write_split(const char *split, int n) {
    uint8_t *x = malloc((size_t)n * 64), y[64];
    for (int i = 0; i < n * 64; i++) x[i] = (uint8_t)(i * 37 + i / 64);
    for (int i = 0; i < n; i++) y[i] = (uint8_t)(i % 10);
    char p[600];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", g_mnist, split);
    write_idx(p, 3, (const uint32_t[]){(uint32_t)n, 8, 8}, x, (size_t)n * 64);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", g_mnist, split);
    write_idx(p, 1, (const uint32_t[]){(uint32_t)n}, y, (size_t)n);
    free(x);
}

/* Runs fedvim with the arguments (NULL-terminated), expects exit code want, returns the output
 * (stdout and stderr; caller frees). */
static char *run(const char *name, int want, ...) {
    char out[256];
    fh_path(&H, out, sizeof out, "%s.out", name);
    const char *a[24];
    int n = 0;
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *)) && n < 23;) a[n++] = s;
    va_end(ap);
    for (; n < 24; n++) a[n] = NULL;
    const int rc = fh_run(&H, out, 120, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
                          a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22],
                          (const char *)NULL);
    char *t = fh_slurp(out);
    assert_non_null(t);
    if (rc != want) fail_msg("%s: exit %d, expected %d:\n%s", name, rc, want, t);
    return t;
}

/* `cmd [sub] --flag value` is refused naming --flag and the range of config key `key` (printed as
 * integers for an integer flag). */
static void expect_range_error(const char *name, const char *cmd, const char *sub, const char *flag,
                               const char *value, const char *key, int integer) {
    char *t = sub ? run(name, 2, cmd, sub, flag, value, (const char *)NULL)
                  : run(name, 2, cmd, flag, value, (const char *)NULL);
    const fv_config_bounds r = fv_config_range(key);
    char want[160];
    if (integer) snprintf(want, sizeof want, "%s: %s is out of range [%.0f, %.0f]", flag, value, r.lo, r.hi);
    else snprintf(want, sizeof want, "%s: %s is out of range [%g, %g]", flag, value, r.lo, r.hi);
    if (!strstr(t, want)) fail_msg("%s: no '%s' in:\n%s", name, want, t);
    free(t);
}

static void test_lr_defect(void **st) {
    (void)st;
    expect_range_error("lr0", "train", NULL, "--lr", "0", "training.lr", 0);
    expect_range_error("lr_neg", "train", NULL, "--lr", "-3", "training.lr", 0);
    expect_range_error("lr_big", "train", NULL, "--lr", "1000", "training.lr", 0);
    /* a given --lr is used, an absent one is the optimizer's default */
    char *t = run("lr_given", 0, "train", "--data-dir", g_mnist, "--model", "tiny", "--optimizer", "sgd", "--lr",
                  "0.25", "--batch", "8", "--threads", "1", (const char *)NULL);
    if (!strstr(t, "sgd lr 0.25,")) fail_msg("--lr 0.25 not used:\n%s", t);
    free(t);
    t = run("lr_default", 0, "train", "--data-dir", g_mnist, "--model", "tiny", "--optimizer", "sgd", "--batch", "8",
            "--threads", "1", (const char *)NULL);
    char want[64];
    snprintf(want, sizeof want, "sgd lr %g,", (double)fv_opt_defaults(FV_OPT_SGD).lr);
    if (!strstr(t, want)) fail_msg("no '%s' in:\n%s", want, t);
    free(t);
}

static void test_other_numeric_flags(void **st) {
    (void)st;
    expect_range_error("momentum", "train", NULL, "--momentum", "1", "training.momentum", 0);
    expect_range_error("wd", "train", NULL, "--wd", "-0.1", "training.weight_decay", 0);
    expect_range_error("mu", "train", NULL, "--mu", "1", "training.stadam_mu", 0);
    expect_range_error("batch0", "train", NULL, "--batch", "0", "training.batch_size", 1);
    expect_range_error("threads", "train", NULL, "--threads", "300", "training.threads", 1);
    expect_range_error("limit", "train", NULL, "--limit", "-1", "data.train_size", 1);
    expect_range_error("test_limit", "train", NULL, "--test-limit", "-5", "data.test_size", 1);
    expect_range_error("bench_batch", "bench", "train", "--batch", "70000", "training.batch_size", 1);
    expect_range_error("bench_threads", "bench", "train", "--threads", "0", "training.threads", 1);
    /* an optimizer configuration PyTorch's rules reject: a usage error, not an abort */
    char *t = run("nesterov", 2, "train", "--optimizer", "sgd", "--nesterov", "--momentum", "0", (const char *)NULL);
    if (!strstr(t, "Nesterov momentum needs momentum > 0")) fail_msg("no Nesterov error in:\n%s", t);
    free(t);
}

/* --warmup-epochs and the per-epoch figures of --json: three epochs give three test accuracies
 * and losses, the last of them the final test_accuracy; a negative warm-up is a usage error. */
static void test_epochs_and_warmup(void **st) {
    (void)st;
    char *t = run("warmup_neg", 2, "train", "--warmup-epochs", "-1", (const char *)NULL);
    if (!strstr(t, "--warmup-epochs")) fail_msg("no --warmup-epochs error in:\n%s", t);
    free(t);
    t = run("warmup", 0, "train", "--data-dir", g_mnist, "--model", "tiny", "--batch", "8", "--threads", "1",
            "--epochs", "3", "--schedule", "cosine", "--warmup-epochs", "0.5", "--json", (const char *)NULL);
    const char *j = strrchr(t, '{');
    assert_non_null(j);
    assert_true(fh_json_num(j, "warmup_epochs") == 0.5);
    const char *keys[] = {"\"epoch_test_accuracy\":[", "\"epoch_test_loss\":["};
    for (int k = 0; k < 2; k++) {
        const char *a = strstr(j, keys[k]);
        if (!a) fail_msg("no %s in %s", keys[k], j);
        a += strlen(keys[k]);
        double v[4];
        int n = 0;
        for (char *end; n < 4 && *a != ']'; a = end + (*end == ',')) {
            v[n++] = strtod(a, &end);
            assert_true(end != a);
        }
        assert_int_equal(n, 3);
        if (k == 0) assert_true(v[2] == fh_json_num(j, "test_accuracy"));
        else assert_true(v[2] == fh_json_num(j, "test_loss"));
    }
    free(t);
}

/* `fedvim distill`: a teacher saved by `train --save` distils into a student with a JSON summary;
 * a missing or unreadable --teacher, a teacher file that does not hold the named model, and an
 * out-of-range --temperature or --alpha, and a --device this machine lacks (cuda:1023 exists
 * nowhere) are usage errors (exit 2) that name the input. */
static void test_distill(void **st) {
    (void)st;
    char teacher[512];
    fh_path(&H, teacher, sizeof teacher, "teacher.safetensors");
    free(run("kd_teacher", 0, "train", "--data-dir", g_mnist, "--model", "tiny", "--batch", "8", "--threads", "1",
             "--save", teacher, (const char *)NULL));
    char *t = run("kd_ok", 0, "distill", "--teacher", teacher, "--data-dir", g_mnist, "--student", "tiny", "--batch",
                  "8", "--threads", "1", "--epochs", "2", "--eval-data-dir", g_mnist, "--json", (const char *)NULL);
    const char *j = strrchr(t, '{');
    assert_non_null(j);
    const double acc = fh_json_num(j, "student_test_accuracy"), agree = fh_json_num(j, "agreement");
    if (!(acc >= 0 && acc <= 1 && agree >= 0 && agree <= 1 && strstr(j, "\"teacher_model\":\"tiny\"") &&
          strstr(j, "\"device\":\"cpu\"")))
        fail_msg("distill summary:\n%s", t);
    free(t);
    t = run("kd_none", 2, "distill", "--data-dir", g_mnist, (const char *)NULL);
    if (!strstr(t, "--teacher FILE is required")) fail_msg("no missing-teacher error in:\n%s", t);
    free(t);
    t = run("kd_missing", 2, "distill", "--teacher", "/nonexistent/t.safetensors", (const char *)NULL);
    if (!strstr(t, "/nonexistent/t.safetensors: cannot read")) fail_msg("no unreadable-teacher error in:\n%s", t);
    free(t);
    t = run("kd_wrong_model", 2, "distill", "--teacher", teacher, "--teacher-model", "fedavg_cnn", "--data-dir", g_mnist,
            (const char *)NULL);
    if (!strstr(t, teacher) || !strstr(t, "fedavg_cnn")) fail_msg("no wrong-model error in:\n%s", t);
    free(t);
    t = run("kd_temp", 2, "distill", "--teacher", teacher, "--temperature", "0", (const char *)NULL);
    if (!strstr(t, "--temperature: 0 is out of range")) fail_msg("no temperature error in:\n%s", t);
    free(t);
    t = run("kd_alpha", 2, "distill", "--teacher", teacher, "--alpha", "1.5", (const char *)NULL);
    if (!strstr(t, "--alpha: 1.5 is out of range")) fail_msg("no alpha error in:\n%s", t);
    free(t);
    t = run("kd_device", 2, "distill", "--teacher", teacher, "--data-dir", g_mnist, "--student", "tiny", "--device",
            "cuda:1023", (const char *)NULL);
    if (!strstr(t, "cuda:1023")) fail_msg("no missing-device error in:\n%s", t);
    free(t);
    t = run("kd_device_syntax", 2, "distill", "--teacher", teacher, "--device", "gpu", (const char *)NULL);
    if (!strstr(t, "--device 'gpu'")) fail_msg("no device syntax error in:\n%s", t);
    free(t);
}

int main(void) {
    const int r = fh_init(&H, "cli_train");
    if (r == 77) {
        fprintf(stderr, "test_cli_train: FEDVIM_BIN is not set to the fedvim binary: skipped\n");
        return 77;
    }
    if (r != 0) return 1;
    fh_path(&H, g_mnist, sizeof g_mnist, "mnist");
    mkdir(g_mnist, 0755);
    write_split("train", 40);
    write_split("t10k", 20);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_lr_defect), cmocka_unit_test(test_other_numeric_flags),
                                       cmocka_unit_test(test_epochs_and_warmup),
                                       cmocka_unit_test(test_distill)};
    const int rc = cmocka_run_group_tests_name("cli_train", tests, NULL, NULL);
    fh_cleanup(&H);
    return rc != 0 ? 1 : 0;
}
