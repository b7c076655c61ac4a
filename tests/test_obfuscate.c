/* test_obfuscate.c: the baseline obfuscations (obfuscate.h), the soft-label loss (loss_soft.h),
 * soft-label training (train_soft.h) and `fedvim obfuscate` through $FEDVIM_BIN (that part skips
 * without the binary or MNIST). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "nn/layers.h"
#include "nn/loss_soft.h"
#include "nn/models.h"
#include "vmix/obfuscate.h"
#include "nn/optim.h"
#include "rng.h"
#include "nn/train_soft.h"

/* n images of c x h x w with pseudo-random pixels and labels 0..classes-1 in turn. */
static fv_dataset make_set(int n, int c, int h, int w, int classes, uint64_t seed) {
    fv_dataset d = {n, c, h, w, classes, NULL, NULL};
    size_t isz = (size_t)c * h * w;
    d.x = fv_malloc((size_t)n * isz);
    d.y = fv_malloc((size_t)n);
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * isz; i++) d.x[i] = (uint8_t)fv_rng_below(&r, 256);
    for (int i = 0; i < n; i++) d.y[i] = (uint8_t)(i % classes);
    return d;
}

static void test_noise_zero_sigma_is_identity(void **st) {
    (void)st;
    fv_dataset d = make_set(5, 3, 8, 8, 10, 1);
    uint8_t *o = fv_malloc(5 * 192);
    fv_err e = {{0}};
    assert_int_equal(fv_obf_noise(o, &d, 0.0, 7, &e), 0);
    assert_memory_equal(o, d.x, 5 * 192);
    assert_int_equal(fv_obf_noise(o, &d, -0.1, 7, &e), -1);
    assert_non_null(strstr(e.msg, "sigma"));
    assert_int_equal(fv_obf_noise(o, &d, NAN, 7, &e), -1);
    free(o);
    fv_dataset_free(&d);
}

/* On mid-grey pixels (128) with sigma 0.05 nothing clamps (|z| < 7.5 sigma), so out - in is
 * N(0, sigma^2) rounded to 1/255: over 20,000 pixels the mean is within 5 standard errors of 0
 * and the standard deviation within 3% of sigma (rounding adds 1/(12 * 255^2) to the variance). */
static void test_noise_statistics_and_determinism(void **st) {
    (void)st;
    int n = 20, isz = 1000;
    fv_dataset d = {n, 1, 25, 40, 10, fv_malloc((size_t)n * isz), fv_malloc((size_t)n)};
    memset(d.x, 128, (size_t)n * isz);
    memset(d.y, 0, (size_t)n);
    uint8_t *a = fv_malloc((size_t)n * isz), *b = fv_malloc((size_t)n * isz);
    fv_err e = {{0}};
    const double sigma = 0.05;
    assert_int_equal(fv_obf_noise(a, &d, sigma, 3, &e), 0);
    double s = 0, s2 = 0;
    for (int i = 0; i < n * isz; i++) {
        double v = (a[i] - 128) / 255.0;
        s += v;
        s2 += v * v;
    }
    double mean = s / (n * isz), sd = sqrt(s2 / (n * isz) - mean * mean);
    assert_true(fabs(mean) < 5 * sigma / sqrt(n * isz));
    assert_true(fabs(sd - sigma) < 0.03 * sigma);
    assert_int_equal(fv_obf_noise(b, &d, sigma, 3, &e), 0);
    assert_memory_equal(a, b, (size_t)n * isz); /* same seed: same output */
    assert_int_equal(fv_obf_noise(b, &d, sigma, 4, &e), 0);
    assert_memory_not_equal(a, b, (size_t)n * isz);
    /* image i depends only on (seed, i): a prefix of the set obfuscates identically */
    d.n = 7;
    memset(b, 0, (size_t)n * isz);
    assert_int_equal(fv_obf_noise(b, &d, sigma, 3, &e), 0);
    assert_memory_equal(a, b, (size_t)7 * isz);
    free(a);
    free(b);
    fv_dataset_free(&d);
}

/* Every InstaHide output pixel is, up to the 8-bit rounding (half a step: 1/255 on [-1, 1]), the
 * stated mixture of the partners' centred pixels, with a sign; signs flip about half the time. */
static void check_instahide(int k, int flip) {
    const int n = 40, c = 2, h = 6, w = 5, K = 10;
    const size_t isz = (size_t)c * h * w;
    fv_dataset d = make_set(n, c, h, w, K, 11);
    uint8_t *o = fv_malloc(n * isz);
    float *soft = fv_malloc(sizeof(float) * n * K);
    int *who = fv_malloc(sizeof(int) * n * k);
    double *lam = fv_malloc(sizeof(double) * n * k);
    fv_instahide_cfg cfg = fv_instahide_defaults(k);
    cfg.sign_flip = flip;
    fv_err e = {{0}};
    assert_int_equal(fv_obf_instahide(o, soft, who, lam, &d, &cfg, 5, &e), 0);
    long flips = 0, nonzero = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(who[i * k], i);
        double sum = 0;
        float expect[10] = {0};
        for (int j = 0; j < k; j++) {
            assert_true(who[i * k + j] >= 0 && who[i * k + j] < n);
            for (int t = 0; t < j; t++) assert_int_not_equal(who[i * k + t], who[i * k + j]);
            assert_true(lam[i * k + j] >= 0 && lam[i * k + j] <= cfg.upper + 1e-12);
            sum += lam[i * k + j];
            expect[d.y[who[i * k + j]]] += (float)lam[i * k + j];
        }
        assert_true(fabs(sum - 1.0) < 1e-12);
        for (int cl = 0; cl < K; cl++) assert_float_equal(soft[i * K + cl], expect[cl], 1e-6);
        for (size_t p = 0; p < isz; p++) {
            double v = 0;
            for (int j = 0; j < k; j++) v += lam[i * k + j] * (2.0 * d.x[who[i * k + j] * isz + p] / 255.0 - 1.0);
            double got = o[i * isz + p] / 127.5 - 1.0;
            if (flip) {
                assert_true(fabs(fabs(got) - fabs(v)) <= 1.0 / 255 + 1e-9);
                if (fabs(v) > 2.0 / 255) {
                    nonzero++;
                    flips += (got < 0) != (v < 0);
                }
            } else {
                assert_true(fabs(got - v) <= 1.0 / 255 + 1e-9);
            }
        }
    }
    if (flip) { /* binomial(nonzero, 1/2): 6 standard deviations */
        assert_true(nonzero > 1000);
        assert_true(fabs(flips - nonzero / 2.0) < 6 * sqrt(nonzero / 4.0));
    }
    free(o);
    free(soft);
    free(who);
    free(lam);
    fv_dataset_free(&d);
}

static void test_instahide_k2(void **st) {
    (void)st;
    check_instahide(2, 1);
    check_instahide(2, 0);
}

static void test_instahide_k4(void **st) {
    (void)st;
    check_instahide(4, 1);
    check_instahide(4, 0);
}

/* k = 1 without sign flips is the identity (the centring and 8-bit storage round-trip exactly:
 * 2x/255 - 1 maps back to (v + 1) * 127.5 = x). */
static void test_instahide_k1_identity_and_errors(void **st) {
    (void)st;
    fv_dataset d = make_set(6, 1, 4, 4, 3, 2);
    uint8_t *o = fv_malloc(6 * 16);
    float soft[18];
    fv_instahide_cfg cfg = fv_instahide_defaults(1);
    cfg.sign_flip = 0;
    fv_err e = {{0}};
    assert_int_equal(fv_obf_instahide(o, soft, NULL, NULL, &d, &cfg, 1, &e), 0);
    assert_memory_equal(o, d.x, 6 * 16);
    for (int i = 0; i < 6; i++) assert_float_equal(soft[i * 3 + d.y[i]], 1.0f, 0);
    cfg = fv_instahide_defaults(8);
    assert_int_equal(fv_obf_instahide(o, soft, NULL, NULL, &d, &cfg, 1, &e), -1); /* k > n */
    assert_non_null(strstr(e.msg, "at least 8"));
    cfg = fv_instahide_defaults(4);
    cfg.upper = 0.2; /* below 1/k */
    assert_int_equal(fv_obf_instahide(o, soft, NULL, NULL, &d, &cfg, 1, &e), -1);
    assert_non_null(strstr(e.msg, "bound"));
    cfg = fv_instahide_defaults(FV_OBF_INSTAHIDE_KMAX + 1);
    assert_int_equal(fv_obf_instahide(o, soft, NULL, NULL, &d, &cfg, 1, &e), -1);
    free(o);
    fv_dataset_free(&d);
}

static char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "/tmp/test_obfuscate_%d_%s", (int)getpid(), name);
    return buf;
}

static void test_soft_label_file(void **st) {
    (void)st;
    float soft[6] = {0.25f, 0.75f, 0.0f, 1.0f, 0.0f, 0.0f};
    fv_err e = {{0}};
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path("soft.fvsl"));
    assert_int_equal(fv_soft_labels_write(path, soft, 2, 3, &e), 0);
    float *got = NULL;
    int n = 0, k = 0;
    assert_int_equal(fv_soft_labels_read(path, &got, &n, &k, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(k, 3);
    assert_memory_equal(got, soft, sizeof soft);
    free(got);
    /* a row that does not sum to 1, a wrong magic, a truncated file, a wrong version */
    soft[0] = 0.5f;
    assert_int_equal(fv_soft_labels_write(path, soft, 2, 3, &e), 0);
    assert_int_equal(fv_soft_labels_read(path, &got, &n, &k, &e), -1);
    assert_non_null(strstr(e.msg, "row 0"));
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fv_read_file(path, 1 << 20, &buf, &len, &e), 0);
    assert_int_equal(fv_write_file_atomic(path, buf, len - 1, &e), 0);
    assert_int_equal(fv_soft_labels_read(path, &got, &n, &k, &e), -1);
    assert_non_null(strstr(e.msg, "bytes"));
    buf[4] = 9;
    assert_int_equal(fv_write_file_atomic(path, buf, len, &e), 0);
    assert_int_equal(fv_soft_labels_read(path, &got, &n, &k, &e), -1);
    assert_non_null(strstr(e.msg, "version"));
    buf[0] = 'X';
    assert_int_equal(fv_write_file_atomic(path, buf, len, &e), 0);
    assert_int_equal(fv_soft_labels_read(path, &got, &n, &k, &e), -1);
    assert_non_null(strstr(e.msg, "magic"));
    free(buf);
    unlink(path);
}

/* Loss in double for the finite-difference check. */
static double soft_loss_d(const double *z, const float *t, int N, int K) {
    double tot = 0;
    for (int n = 0; n < N; n++) {
        double mx = z[n * K];
        for (int k = 1; k < K; k++) mx = fmax(mx, z[n * K + k]);
        double se = 0;
        for (int k = 0; k < K; k++) se += exp(z[n * K + k] - mx);
        for (int k = 0; k < K; k++) tot -= t[n * K + k] * (z[n * K + k] - mx - log(se));
    }
    return tot / N;
}

/* The analytic gradient against central differences of the loss (h = 1e-5 in double: error
 * O(h^2) ~ 1e-10, against float rounding of the analytic value ~ 1e-7 relative): tolerance 1e-5.
 * With one-hot targets the loss, gradient and hit count equal fv_softmax_xent's. */
static void test_soft_xent_gradient(void **st) {
    (void)st;
    enum { N = 4, K = 5 };
    float z[N * K], t[N * K], d[N * K], d2[N * K];
    double zd[N * K];
    fv_rng r;
    fv_rng_seed(&r, 9);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            z[n * K + k] = (float)(3 * fv_rng_normal(&r));
            t[n * K + k] = fv_rng_uniform(&r);
            s += t[n * K + k];
        }
        for (int k = 0; k < K; k++) t[n * K + k] = (float)(t[n * K + k] / s);
    }
    for (int i = 0; i < N * K; i++) zd[i] = z[i];
    float l = fv_softmax_xent_soft(d, z, t, N, K, NULL);
    assert_true(fabs(l - soft_loss_d(zd, t, N, K)) < 1e-5);
    double gnorm = 0;
    for (int i = 0; i < N * K; i++) {
        const double h = 1e-5;
        zd[i] = z[i] + h;
        double lp = soft_loss_d(zd, t, N, K);
        zd[i] = z[i] - h;
        double lm = soft_loss_d(zd, t, N, K);
        zd[i] = z[i];
        assert_true(fabs((lp - lm) / (2 * h) - d[i]) < 1e-5);
        gnorm += d[i] * d[i];
    }
    assert_true(gnorm > 1e-4); /* a gradient check of an all-zero gradient proves nothing */
    int y[N] = {0, 3, 1, 4}, c1 = 0, c2 = 0;
    memset(t, 0, sizeof t);
    for (int n = 0; n < N; n++) t[n * K + y[n]] = 1.0f;
    float ls = fv_softmax_xent_soft(d, z, t, N, K, &c1);
    float lh = fv_softmax_xent(d2, z, y, N, K, &c2);
    assert_float_equal(ls, lh, 1e-6);
    assert_int_equal(c1, c2);
    for (int i = 0; i < N * K; i++) assert_float_equal(d[i], d2[i], 1e-7);
}

/* Soft-label training learns: 2 classes told apart by the brightness of the left half, soft
 * targets 0.8 / 0.2. The loss cannot go below the targets' entropy H(0.8, 0.2) = 0.5004; after 30
 * epochs of the tiny CNN it is within 0.05 of it (it starts near log 2 = 0.69 or above), and the
 * hard-label accuracy is 1 (the task is trivially separable). */
static void test_train_soft_learns(void **st) {
    (void)st;
    const int n = 64, K = 2;
    fv_dataset d = {n, 1, 8, 8, K, fv_malloc((size_t)n * 64), fv_malloc((size_t)n)};
    float *soft = fv_malloc(sizeof(float) * n * K);
    fv_rng r;
    fv_rng_seed(&r, 4);
    for (int i = 0; i < n; i++) {
        int y = i % 2;
        d.y[i] = (uint8_t)y;
        for (int p = 0; p < 64; p++)
            d.x[i * 64 + p] = (uint8_t)(((p % 8) < 4) == y ? 200 + fv_rng_below(&r, 50) : fv_rng_below(&r, 50));
        soft[i * K + y] = 0.8f;
        soft[i * K + 1 - y] = 0.2f;
    }
    fv_err e = {{0}};
    fv_net *net = fv_model_new("tiny", (fv_shape){1, 8, 8}, K, 1, &e);
    assert_non_null(net);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = 0.01f;
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_norm norm = fv_norm_for(NULL);
    fv_epoch_stats first = {0}, last = {0};
    for (int ep = 0; ep < 30; ep++) {
        last = fv_train_epoch_soft(net, opt, &d, soft, K, 16, norm, &r, NULL, NULL);
        if (ep == 0) first = last;
    }
    assert_true(first.loss > 0.6);
    assert_true(last.loss < 0.5004 + 0.05);
    assert_true(last.loss > 0.5004 - 1e-3);
    fv_eval_stats ev = fv_evaluate(net, &d, NULL, n, 32, norm);
    assert_float_equal(ev.accuracy, 1.0, 0);
    fv_opt_destroy(&opt);
    fv_net_destroy(&net);
    free(soft);
    fv_dataset_free(&d);
}

/* ---- the command, through $FEDVIM_BIN, on 60 MNIST images ---- */
static const char *BIN;

static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int file_exists(const char *dir, const char *name) {
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

static void test_cli(void **st) {
    (void)st;
    const char *data = getenv("FEDVIM_DATA");
    char mn[1024];
    snprintf(mn, sizeof mn, "%s/mnist/train-images-idx3-ubyte", data ? data : "data");
    if (!BIN || access(mn, R_OK) != 0) {
        fprintf(stderr, "test_obfuscate: FEDVIM_BIN or MNIST missing: CLI part skipped\n");
        skip();
    }
    char dd[1024], out[600];
    snprintf(dd, sizeof dd, "%s/mnist", data ? data : "data");
    snprintf(out, sizeof out, "%s", tmp_path("cli"));
    assert_int_equal(sh("%s obfuscate --method blur --out %s 2>/dev/null", BIN, out), 2);
    assert_int_equal(sh("%s obfuscate --method noise --out %s 2>/dev/null", BIN, out), 2); /* no sigma */
    assert_int_equal(sh("%s obfuscate --method shuffle --out %s 2>/dev/null", BIN, out), 2); /* no ws */
    assert_int_equal(sh("%s obfuscate --method shuffle --ws 3 --data-dir %s --limit 60 --test-limit 20 --out %s "
                        ">/dev/null 2>&1", BIN, dd, out), 0);
    assert_true(file_exists(out, "train-images-idx3-ubyte") && file_exists(out, "preview.png"));
    assert_int_equal(sh("%s obfuscate --method noise --sigma 0.1 --data-dir /nonexistent --out %s 2>/dev/null", BIN,
                        out), 1);
    assert_int_equal(sh("%s obfuscate --method instahide --k 4 --data-dir %s --limit 60 --test-limit 20 --out %s "
                        "--json > %s.json 2>/dev/null", BIN, dd, out, out), 0);
    const char *files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte", "train-soft-labels.fvsl", "t10k-soft-labels.fvsl",
                           "preview.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) assert_true(file_exists(out, files[i]));
    assert_int_equal(sh("grep -q '\"ssim_to_original\"' %s.json", out), 0);
    assert_int_equal(sh("%s obfuscate train --data-dir %s --model tiny --test-dir %s --test-limit 20 --json "
                        ">/dev/null 2>&1", BIN, out, dd), 0);
    assert_int_equal(sh("%s obfuscate --method noise --sigma 0.2 --data-dir %s --limit 60 --test-limit 20 --out %s "
                        ">/dev/null 2>&1 && %s obfuscate train --data-dir %s --model tiny 2>/dev/null", BIN, dd, out,
                        BIN, out), 1); /* noise writes no soft labels: a clear error */
    sh("rm -rf %s %s.json", out, out);
}

int main(void) {
    BIN = getenv("FEDVIM_BIN");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_zero_sigma_is_identity),
        cmocka_unit_test(test_noise_statistics_and_determinism),
        cmocka_unit_test(test_instahide_k2),
        cmocka_unit_test(test_instahide_k4),
        cmocka_unit_test(test_instahide_k1_identity_and_errors),
        cmocka_unit_test(test_soft_label_file),
        cmocka_unit_test(test_soft_xent_gradient),
        cmocka_unit_test(test_train_soft_learns),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
