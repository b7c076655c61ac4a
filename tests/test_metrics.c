/* test_metrics.c: the leakage metrics pinned on hand-computed cases (docs/attacks.md, "Metrics"):
 * MSE / PSNR incl. infinite PSNR, SSIM against a direct double-precision evaluation of the
 * formula and on constant images, ROC / AUC with ties, TPR at FPR 1% and 0.1%, balanced
 * accuracy, and the reassembly figures.
 * Tolerances: exact (==) where the definition makes the value exact (identical images, integer
 * pair counts); 1e-12 for values computed in double along a different route.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"

#define TOL 1e-12

static void assert_near(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.17g want %.17g (tol %g)", what, got, want, tol);
}

static void assert_has(const char *msg, const char *want) {
    if (!strstr(msg, want)) fail_msg("error message '%s' lacks '%s'", msg, want);
}

static float *rand_image(fv_rng *r, size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = fv_rng_uniform(r);
    return x;
}

/* ---- MSE / PSNR ---- */

static void test_mse_psnr(void **st) {
    /* differences 0.5, 0, 0.25, 0.25: MSE = (0.25 + 0 + 0.0625 + 0.0625) / 4 = 0.09375,
     * PSNR = 10 log10(1 / 0.09375) = 10.280287236002435 dB */
    const float a[4] = {0, 0.5f, 1, 0.25f}, b[4] = {0.5f, 0.5f, 0.75f, 0};
    assert_true(fv_mse(a, b, 4) == 0.09375);
    assert_near(fv_psnr(a, b, 4), 10.280287236002435, TOL, "psnr");

    /* identical: MSE 0, PSNR +inf (not NaN) */
    assert_true(fv_mse(a, a, 4) == 0);
    double p = fv_psnr(a, a, 4);
    assert_true(isinf(p) && p > 0);
    assert_true(isinf(fv_psnr_from_mse(0.0)));

    /* a constant shift of 1/8 (exact in float): MSE = 1/64, PSNR = 10 log10 64 = 18.0618 dB;
     * of 1/16: 10 log10 256 = 24.0824 dB */
    enum { N = 3 * 5 * 7 };
    float x[2 * N], y[2 * N];
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i % 7) / 8.0f;
        y[i] = x[i] + 0.125f;
        x[N + i] = (float)(i % 13) / 16.0f;
        y[N + i] = x[N + i] - 0.0625f;
    }
    assert_true(fv_mse(x, y, N) == 1.0 / 64);
    assert_near(fv_psnr(x, y, N), 18.06179973983887, TOL, "psnr 1/8 shift");
    assert_near(fv_psnr(x + N, y + N, N), 24.082399653118497, TOL, "psnr 1/16 shift");
    /* a shift of 0.1 gives 20 dB (float rounding of 0.1: 1e-5 dB) */
    float z[N];
    for (int i = 0; i < N; i++) z[i] = x[i] + 0.1f;
    assert_near(fv_psnr(x, z, N), 20.0, 1e-5, "psnr 0.1 shift");

    /* means over images: per-image PSNR averaged; one exact image makes the mean +inf */
    assert_true(fv_mse_mean(x, y, 2, N) == (1.0 / 64 + 1.0 / 256) / 2);
    assert_near(fv_psnr_mean(x, y, 2, N), (18.06179973983887 + 24.082399653118497) / 2, TOL,
                "psnr mean");
    float y2[2 * N];
    memcpy(y2, y, sizeof y2);
    memcpy(y2 + N, x + N, N * sizeof(float));
    p = fv_psnr_mean(x, y2, 2, N);
    assert_true(isinf(p) && p > 0);
}

/* ---- SSIM ---- */

/* Direct evaluation of the definition, independent of the implementation's route: the 2-D
 * window built as such (not separably), normalised over all 121 weights, and the variances as
 * sum w (x - mu)^2 rather than E[x^2] - mu^2. */
static double ssim_direct(const float *a, const float *b, int c, int h, int w) {
    double wt[11][11], s = 0;
    for (int u = 0; u < 11; u++)
        for (int v = 0; v < 11; v++) {
            wt[u][v] = exp(-((u - 5) * (u - 5) + (v - 5) * (v - 5)) / (2 * 1.5 * 1.5));
            s += wt[u][v];
        }
    for (int u = 0; u < 11; u++)
        for (int v = 0; v < 11; v++) wt[u][v] /= s;
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03;
    double total = 0;
    for (int ch = 0; ch < c; ch++) {
        const float *x = a + (size_t)ch * h * w, *y = b + (size_t)ch * h * w;
        double sum = 0;
        int cnt = 0;
        for (int i = 0; i + 11 <= h; i++)
            for (int j = 0; j + 11 <= w; j++) {
                double mx = 0, my = 0;
                for (int u = 0; u < 11; u++)
                    for (int v = 0; v < 11; v++) {
                        mx += wt[u][v] * x[(i + u) * w + j + v];
                        my += wt[u][v] * y[(i + u) * w + j + v];
                    }
                double vx = 0, vy = 0, cxy = 0;
                for (int u = 0; u < 11; u++)
                    for (int v = 0; v < 11; v++) {
                        double dx = x[(i + u) * w + j + v] - mx, dy = y[(i + u) * w + j + v] - my;
                        vx += wt[u][v] * dx * dx;
                        vy += wt[u][v] * dy * dy;
                        cxy += wt[u][v] * dx * dy;
                    }
                sum += (2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
                cnt++;
            }
        total += sum / cnt;
    }
    return total / c;
}

static void test_ssim_identical(void **st) {
    fv_rng r;
    fv_rng_seed(&r, 1);
    const int shapes[3][3] = {{1, 11, 11}, {3, 16, 17}, {2, 28, 28}};
    for (int k = 0; k < 3; k++) {
        size_t n = (size_t)shapes[k][0] * shapes[k][1] * shapes[k][2];
        float *x = rand_image(&r, n), *y = malloc(n * sizeof *y);
        memcpy(y, x, n * sizeof *y);
        double s = -1;
        assert_int_equal(fv_ssim(&s, x, y, shapes[k][0], shapes[k][1], shapes[k][2], NULL), 0);
        if (s != 1.0) fail_msg("SSIM of identical images is %.17g, not exactly 1", s);
        free(x);
        free(y);
    }
}

/* Constant images a and b: every variance and covariance is 0, so at every position
 * SSIM = (2ab + C1) / (a^2 + b^2 + C1) * C2 / C2; for a = 0.5, b = 0.25:
 * (0.25 + 0.0001) / (0.25 + 0.0625 + 0.0001) = 0.2501 / 0.3126 = 0.8000639795265515. */
static void test_ssim_constant(void **st) {
    enum { C = 2, H = 12, W = 13 };
    static float a[C * H * W], b[C * H * W];
    for (int i = 0; i < C * H * W; i++) {
        a[i] = 0.5f;
        b[i] = 0.25f;
    }
    double s;
    assert_int_equal(fv_ssim(&s, a, b, C, H, W, NULL), 0);
    assert_near(s, 0.8000639795265515, TOL, "constant images");
    /* black vs white: (0 + C1) / (0 + 1 + C1) = 1e-4 / 1.0001 */
    for (int i = 0; i < C * H * W; i++) {
        a[i] = 0;
        b[i] = 1;
    }
    assert_int_equal(fv_ssim(&s, a, b, C, H, W, NULL), 0);
    assert_near(s, 1e-4 / 1.0001, TOL, "black vs white");
}

static void test_ssim_direct(void **st) {
    fv_rng r;
    fv_rng_seed(&r, 2);
    const int shapes[3][3] = {{1, 11, 11}, {2, 14, 19}, {3, 20, 12}};
    for (int k = 0; k < 3; k++) {
        int c = shapes[k][0], h = shapes[k][1], w = shapes[k][2];
        size_t n = (size_t)c * h * w;
        float *x = rand_image(&r, n), *y = malloc(n * sizeof *y), *z = rand_image(&r, n);
        for (size_t i = 0; i < n; i++) {
            float v = x[i] + 0.2f * (fv_rng_uniform(&r) - 0.5f);
            y[i] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
        double s, t, u;
        assert_int_equal(fv_ssim(&s, x, y, c, h, w, NULL), 0);
        assert_near(s, ssim_direct(x, y, c, h, w), TOL, "ssim vs direct (correlated)");
        assert_true(s > 0.3 && s < 1); /* correlated, not identical */
        assert_int_equal(fv_ssim(&t, y, x, c, h, w, NULL), 0);
        assert_near(t, s, 1e-15, "symmetry");
        assert_int_equal(fv_ssim(&u, x, z, c, h, w, NULL), 0);
        assert_near(u, ssim_direct(x, z, c, h, w), TOL, "ssim vs direct (independent)");
        assert_true(fabs(u) < 0.3); /* independent noise */
        free(x);
        free(y);
        free(z);
    }
    /* a channel mean: channel 0 identical (1), channel 1 constant 0.5 vs 0.25 (0.80006...) */
    enum { H = 11, W = 11 };
    static float a[2 * H * W], b[2 * H * W];
    for (int i = 0; i < H * W; i++) {
        a[i] = b[i] = fv_rng_uniform(&r);
        a[H * W + i] = 0.5f;
        b[H * W + i] = 0.25f;
    }
    double s;
    assert_int_equal(fv_ssim(&s, a, b, 2, H, W, NULL), 0);
    assert_near(s, (1 + 0.8000639795265515) / 2, TOL, "per channel then averaged");
}

static void test_ssim_small_and_batch(void **st) {
    float img[3 * 10 * 30] = {0};
    double s = 42;
    fv_err e;
    assert_int_equal(fv_ssim(&s, img, img, 3, 10, 30, &e), -1);
    assert_has(e.msg, "at least 11 x 11");
    assert_has(e.msg, "10 x 30");
    assert_int_equal(fv_ssim(&s, img, img, 1, 30, 10, &e), -1);
    assert_int_equal(fv_ssim(&s, img, img, 0, 11, 11, &e), -1);
    assert_true(s == 42); /* untouched on error */

    /* best match among references, and the mean over pairs */
    fv_rng r;
    fv_rng_seed(&r, 3);
    enum { C = 1, H = 12, W = 12, SZ = C * H * W };
    float *refs = rand_image(&r, 3 * SZ), *img2 = malloc(SZ * sizeof(float));
    memcpy(img2, refs + SZ, SZ * sizeof(float));
    double best;
    size_t idx = 99;
    assert_int_equal(fv_ssim_best(&best, &idx, img2, refs, 3, C, H, W, &e), 0);
    assert_true(best == 1.0);
    assert_int_equal(idx, 1);
    double m, s0, s1;
    assert_int_equal(fv_ssim(&s0, refs, refs + SZ, C, H, W, &e), 0);
    assert_int_equal(fv_ssim(&s1, refs + SZ, refs + 2 * SZ, C, H, W, &e), 0); /* pairs (0,1), (1,2) */
    assert_int_equal(fv_ssim_mean(&m, refs, refs + SZ, 2, C, H, W, &e), 0);
    assert_near(m, (s0 + s1) / 2, TOL, "ssim mean");
    free(refs);
    free(img2);
}

/* ---- ROC ---- */

/* Members {0.9, 0.8, 0.5, 0.5}, non-members {0.5, 0.3, 0.2, 0.8}. Pairs ranked right (ties 1/2):
 * 0.9: 4; 0.8: 3 + 1/2; 0.5: 2 + 1/2 twice: 12.5 of 16, AUC = 0.78125. ROC points by distinct
 * score: (0,0) (0,.25)@0.9 (.25,.5)@0.8 (.5,1)@0.5 (.75,1)@0.3 (1,1)@0.2. TPR at FPR <= 1%: 0.25.
 * Balanced accuracy (TPR + 1 - FPR) / 2 is largest at (.5, 1): 0.75, threshold 0.5. */
static void test_roc_ties(void **st) {
    const double m[4] = {0.9, 0.8, 0.5, 0.5}, nm[4] = {0.5, 0.3, 0.2, 0.8};
    fv_roc roc;
    fv_err e;
    assert_int_equal(fv_roc_compute(&roc, m, 4, nm, 4, &e), 0);
    assert_true(roc.auc == 0.78125);
    const fv_roc_point want[6] = {{0, 0, INFINITY}, {0, .25, .9}, {.25, .5, .8},
                                  {.5, 1, .5},      {.75, 1, .3}, {1, 1, .2}};
    assert_int_equal(roc.n_points, 6);
    for (int k = 0; k < 6; k++) {
        assert_true(roc.points[k].fpr == want[k].fpr);
        assert_true(roc.points[k].tpr == want[k].tpr);
        assert_true(roc.points[k].threshold == want[k].threshold);
    }
    assert_true(roc.tpr_at_fpr_1pct == 0.25);
    assert_true(roc.tpr_at_fpr_01pct == 0.25);
    assert_true(fv_roc_tpr_at_fpr(&roc, 0.25) == 0.5);
    assert_true(fv_roc_tpr_at_fpr(&roc, 0.6) == 1.0);
    assert_true(roc.balanced_acc == 0.75);
    assert_true(roc.balanced_acc_threshold == 0.5);
    fv_roc_free(&roc);
    assert_null(roc.points);
}

/* 1000 non-members scored 0, 1, ..., 999; 100 members: 20 at 2000, 30 at 995.5 (4 non-members
 * above), 25 at 989.5 (10 above), 25 at 500.5 (499 above).
 * TPR at FPR <= 0.1%: the last point with FPR <= 0.001 is (0.001, 0.2) (threshold 999) -> 0.2.
 * TPR at FPR <= 1%: the last point with FPR <= 0.01 is (0.010, 0.75) (threshold 989.5) -> 0.75.
 * AUC: (20 * 1000 + 30 * 996 + 25 * 990 + 25 * 501) / 100000 = 87155 / 100000 = 0.87155.
 * Balanced accuracy: max (TPR + 1 - FPR) / 2 = (0.75 + 0.99) / 2 = 0.87 at threshold 989.5. */
static void test_roc_low_fpr(void **st) {
    double nm[1000], m[100];
    for (int i = 0; i < 1000; i++) nm[i] = 999 - i; /* any order */
    for (int i = 0; i < 100; i++) m[i] = i < 20 ? 2000 : i < 50 ? 995.5 : i < 75 ? 989.5 : 500.5;
    fv_roc roc;
    assert_int_equal(fv_roc_compute(&roc, m, 100, nm, 1000, NULL), 0);
    assert_near(roc.tpr_at_fpr_01pct, 0.2, 0, "TPR at 0.1%");
    assert_near(roc.tpr_at_fpr_1pct, 0.75, 0, "TPR at 1%");
    assert_near(roc.auc, 0.87155, TOL, "AUC");
    assert_near(roc.balanced_acc, 0.87, TOL, "balanced accuracy");
    assert_true(roc.balanced_acc_threshold == 989.5);
    assert_int_equal(roc.n_points, 1 + 1000 + 4);
    assert_true(roc.points[roc.n_points - 1].fpr == 1 && roc.points[roc.n_points - 1].tpr == 1);
    fv_roc_free(&roc);
}

/* AUC equals the Mann-Whitney statistic counted pair by pair, with many ties. */
static void test_roc_bruteforce(void **st) {
    fv_rng r;
    fv_rng_seed(&r, 4);
    for (int trial = 0; trial < 20; trial++) {
        size_t nm = 1 + fv_rng_below(&r, 60), nn = 1 + fv_rng_below(&r, 60);
        double m[60], n[60];
        for (size_t i = 0; i < nm; i++) m[i] = (double)fv_rng_below(&r, 8) + 0.5;
        for (size_t i = 0; i < nn; i++) n[i] = (double)fv_rng_below(&r, 6);
        double u = 0;
        for (size_t i = 0; i < nm; i++)
            for (size_t j = 0; j < nn; j++) {
                double a = floor(m[i]), b = n[j]; /* make ties: compare integer parts */
                u += a > b ? 1 : a == b ? 0.5 : 0;
            }
        for (size_t i = 0; i < nm; i++) m[i] = floor(m[i]);
        fv_roc roc;
        assert_int_equal(fv_roc_compute(&roc, m, nm, n, nn, NULL), 0);
        assert_near(roc.auc, u / ((double)nm * nn), TOL, "AUC vs pair count");
        /* trapezoid area over the points gives the same */
        double area = 0;
        for (size_t k = 1; k < roc.n_points; k++)
            area += (roc.points[k].fpr - roc.points[k - 1].fpr) *
                    (roc.points[k].tpr + roc.points[k - 1].tpr) / 2;
        assert_near(area, roc.auc, TOL, "AUC vs trapezoid");
        fv_roc_free(&roc);
    }
}

static void test_roc_edges(void **st) {
    fv_roc roc;
    fv_err e;
    const double hi[3] = {3, 4, INFINITY}, lo[2] = {-INFINITY, 1}, same[3] = {2, 2, 2};
    assert_int_equal(fv_roc_compute(&roc, hi, 3, lo, 2, &e), 0);
    assert_true(roc.auc == 1.0);
    assert_true(roc.tpr_at_fpr_01pct == 1.0);
    assert_true(roc.balanced_acc == 1.0);
    fv_roc_free(&roc);
    assert_int_equal(fv_roc_compute(&roc, lo, 2, hi, 3, &e), 0);
    assert_true(roc.auc == 0.0);
    assert_true(roc.balanced_acc == 0.5); /* never worse than predicting one class */
    fv_roc_free(&roc);
    assert_int_equal(fv_roc_compute(&roc, same, 3, same, 2, &e), 0);
    assert_true(roc.auc == 0.5);
    assert_int_equal(roc.n_points, 2);
    assert_true(roc.tpr_at_fpr_1pct == 0.0);
    fv_roc_free(&roc);
    assert_int_equal(fv_roc_compute(&roc, hi, 0, lo, 2, &e), -1);
    assert_has(e.msg, "at least one member");
    assert_int_equal(fv_roc_compute(&roc, hi, 3, lo, 0, &e), -1);
    const double bad[2] = {1, NAN};
    assert_int_equal(fv_roc_compute(&roc, bad, 2, lo, 2, &e), -1);
    assert_has(e.msg, "member score 1 is NaN");
    assert_int_equal(fv_roc_compute(&roc, hi, 3, bad, 2, &e), -1);
    assert_has(e.msg, "non-member score 1 is NaN");
    assert_null(roc.points);
    fv_roc_free(&roc); /* harmless after a failure */
}

/* ---- reassembly ---- */

/* original 1 x 2 x 4; the shuffle swaps positions 2<->3 (0.5, 1), 4<->5 (0.25, 0) and 0<->1 (both
 * 0: invisible); the attack undoes the first swap only. correct: positions 0,1,2,3,6,7 = 6/8;
 * baseline 0,1,6,7 = 4/8; displaced 2,3,4,5 = 4; restored 2,3 = 2/4. */
static void test_reassembly(void **st) {
    const float orig[8] = {0, 0, 0.5f, 1, 0.25f, 0, 0, 0.75f};
    const float shuf[8] = {0, 0, 1, 0.5f, 0, 0.25f, 0, 0.75f};
    float out[8] = {0, 0, 0.5f, 1, 0, 0.25f, 0, 0.75f};
    fv_reassembly r = fv_reassembly_compute(orig, shuf, out, 8, 0);
    assert_true(r.correct == 0.75);
    assert_true(r.baseline == 0.5);
    assert_int_equal(r.displaced, 4);
    assert_true(r.restored == 0.5);
    /* a tolerance absorbs rounding of the output only when asked */
    out[2] += 1e-6f;
    r = fv_reassembly_compute(orig, shuf, out, 8, 0);
    assert_true(r.correct == 5.0 / 8);
    r = fv_reassembly_compute(orig, shuf, out, 8, 1e-5f);
    assert_true(r.correct == 0.75);
    /* nothing shuffled: restored is 1 by definition */
    r = fv_reassembly_compute(orig, orig, orig, 8, 0);
    assert_true(r.correct == 1 && r.baseline == 1 && r.restored == 1 && r.displaced == 0);
    /* the permutation form counts the invisible 0<->1 swap too */
    const size_t perm[8] = {1, 0, 2, 3, 5, 4, 6, 7};
    assert_true(fv_perm_correct_fraction(perm, 8) == 0.5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mse_psnr),
        cmocka_unit_test(test_ssim_identical),
        cmocka_unit_test(test_ssim_constant),
        cmocka_unit_test(test_ssim_direct),
        cmocka_unit_test(test_ssim_small_and_batch),
        cmocka_unit_test(test_roc_ties),
        cmocka_unit_test(test_roc_low_fpr),
        cmocka_unit_test(test_roc_bruteforce),
        cmocka_unit_test(test_roc_edges),
        cmocka_unit_test(test_reassembly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
