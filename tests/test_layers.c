/* test_layers.c: every CPU layer kernel of layers.h against a naive double-precision reference
 * written here.
 *
 * For each op: the float forward is compared with the double reference, and the float analytic
 * backward (input gradient and every parameter gradient) with central differences of the double
 * reference, for the scalar loss L = sum(out * G) with a fixed random G (so dout = G).
 * Tolerances (normwise, max |a - r| / max |r|):
 *   forward   FWD_TOL  = 1e-5  (float sums of at most a few hundred terms),
 *   gradients GRAD_TOL = 1e-4  (central differences in double, h = 1e-6: truncation and rounding
 *                               errors ~1e-9, so the float backward dominates).
 * A gradient check refuses a reference gradient whose max |.| is below MIN_GRAD: an all-zero
 * gradient (a kernel that does nothing, a test that checks nothing) fails.
 * Every gradient buffer is pre-filled with random values before backward and the fill is
 * subtracted after, so each check also proves the accumulate (+=) convention.
 * Outputs, gradients and conv scratch carry guard floats past their end that must stay untouched.
 * The conv checks run once per CPU conv path: im2col + OpenBLAS (conv2d.c) and, in a oneDNN build,
 * conv_dnnl.h (the same tolerances; every conv shape here goes through both).
 * The transformer token ops (transformer.c) are checked the same way, and their threaded shapes
 * for identical bits on 1 and 2 threads (test_transformer_threads).
 * The channel-blocked batch norm and pooling (the _blk kernels) are checked against the NCHW ones
 * moved (test_blocked_kernels), whose own checks are the double-precision ones above.
 * The losses (softmax cross-entropy, the MSE and L1 pixel losses of loss_pixel.h) SET their
 * gradient: they are checked against hand-computed values and central differences of their
 * double reference (GRAD_TOL), without the pre-fill.
 * Shapes are small; the whole test runs in about a second (release build, 2 threads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"
#include "nn/loss_pixel.h"
#ifdef FEDVIM_HAVE_DNNL
#include "nn/conv_dnnl.h"
#endif
#include "rng.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define MIN_GRAD 1e-3
#define FD_H 1e-6
#define GUARD 16
#define GUARD_VAL -12345.5f

/* ---- buffers with guards ---- */

/* n floats followed by GUARD sentinel floats. */
static float *fbuf(size_t n) {
    float *p = fv_malloc((n + GUARD) * sizeof(float));
    memset(p, 0, n * sizeof(float));
    for (int i = 0; i < GUARD; i++) p[n + i] = GUARD_VAL;
    return p;
}

static void check_guard(const float *p, size_t n, const char *what) {
    for (int i = 0; i < GUARD; i++) {
        if (p[n + i] != GUARD_VAL)
            fail_msg("%s: write past the end (guard float %d changed)", what, i);
    }
}

static void fill_uniform(float *f, size_t n, float lo, float hi, fv_rng *r) {
    for (size_t i = 0; i < n; i++) f[i] = lo + (hi - lo) * fv_rng_uniform(r);
}

/* Random values with |x| >= 0.05 (away from ReLU's kink). */
static void fill_away_from_zero(float *f, size_t n, fv_rng *r) {
    for (size_t i = 0; i < n; i++) {
        float v = 0.05f + 0.95f * fv_rng_uniform(r);
        f[i] = fv_rng_uniform(r) < 0.5f ? -v : v;
    }
}

/* Distinct values spaced 0.01 apart in random order (no ties for max pooling). */
static void fill_distinct(float *f, size_t n, fv_rng *r) {
    int *idx = fv_malloc(n * sizeof(int));
    for (size_t i = 0; i < n; i++) idx[i] = (int)i;
    fv_rng_shuffle_int(r, idx, (int)n);
    for (size_t i = 0; i < n; i++) f[i] = 0.01f * (float)(idx[i] - (int)n / 2);
    free(idx);
}

static double *to_double(const float *f, size_t n) {
    double *d = fv_malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

/* ---- comparisons ---- */

/* max |a - r| / max(max |r|, 1e-3) */
static double rel_err(const float *a, const double *r, size_t n) {
    double num = 0.0, den = 1e-3;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - r[i]);
        if (d > num || d != d) num = d;
        if (fabs(r[i]) > den) den = fabs(r[i]);
    }
    return num / den;
}

static double max_abs(const double *r, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(r[i]) > m) m = fabs(r[i]);
    return m;
}

static void check_fwd(const char *what, const float *a, const double *r, size_t n) {
    double e = rel_err(a, r, n);
    if (!(e <= FWD_TOL)) fail_msg("%s forward: relative error %.3g > %.0e", what, e, FWD_TOL);
}

/* 1 when the analytic gradient a matches the reference r within GRAD_TOL and r is not ~zero. */
static int grad_ok(const char *what, const float *a, const double *r, size_t n) {
    double m = max_abs(r, n);
    if (!(m >= MIN_GRAD)) {
        print_message("%s: reference gradient max |g| = %.3g < %.0e, nothing to check\n", what, m,
                      MIN_GRAD);
        return 0;
    }
    double e = rel_err(a, r, n);
    if (!(e <= GRAD_TOL)) {
        print_message("%s: relative error %.3g > %.0e\n", what, e, GRAD_TOL);
        return 0;
    }
    return 1;
}

static void check_grad(const char *what, const float *a, const double *r, size_t n) {
    if (!grad_ok(what, a, r, n)) fail_msg("gradient check failed: %s", what);
}

/* ---- numeric gradients of L = sum(ref(in) * G) ---- */

typedef void (*ref_fn)(double *out, double *const *in, const void *ctx);

static double dot(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* grad[n_in] = dL/d in[which], central differences with step FD_H. */
static void numeric_grad(double *grad, ref_fn f, const void *ctx, double *const *in, int which,
                         size_t n_in, const double *G, size_t n_out) {
    double *out = fv_malloc(n_out * sizeof(double));
    for (size_t i = 0; i < n_in; i++) {
        const double x = in[which][i];
        in[which][i] = x + FD_H;
        f(out, in, ctx);
        double lp = dot(out, G, n_out);
        in[which][i] = x - FD_H;
        f(out, in, ctx);
        double lm = dot(out, G, n_out);
        in[which][i] = x;
        grad[i] = (lp - lm) / (2.0 * FD_H);
    }
    free(out);
}

/* One float tensor with its double twin, a gradient buffer (guarded) and its random pre-fill. */
typedef struct {
    size_t n;
    float *f;
    double *d;
    float *grad, *prefill;
} tens;

static tens tens_new(size_t n, fv_rng *r) {
    tens t = {.n = n, .f = fbuf(n)};
    fill_uniform(t.f, n, -1.0f, 1.0f, r);
    t.d = to_double(t.f, n);
    t.grad = fbuf(n);
    t.prefill = fv_malloc((n ? n : 1) * sizeof(float));
    fill_uniform(t.prefill, n, -1.0f, 1.0f, r);
    memcpy(t.grad, t.prefill, n * sizeof(float));
    return t;
}

static void tens_sync(tens *t) {
    for (size_t i = 0; i < t->n; i++) t->d[i] = t->f[i];
}

static void tens_free(tens *t) { free(t->f), free(t->d), free(t->grad), free(t->prefill); }

/* Check t's gradient minus its pre-fill against the numeric gradient of in[which]. */
static void check_tens_grad(const char *what, tens *t, ref_fn f, const void *ctx, double *const *in,
                            int which, const double *G, size_t n_out) {
    check_guard(t->grad, t->n, what);
    double *num = fv_malloc(t->n * sizeof(double));
    float *delta = fv_malloc(t->n * sizeof(float));
    numeric_grad(num, f, ctx, in, which, t->n, G, n_out);
    for (size_t i = 0; i < t->n; i++) delta[i] = t->grad[i] - t->prefill[i];
    check_grad(what, delta, num, t->n);
    free(num), free(delta);
}

/* Check t's gradient minus its pre-fill against a direct double reference. */
static void check_direct_grad(const char *what, const char *which, tens *t, const double *ref) {
    char name[200];
    snprintf(name, sizeof name, "%s %s", what, which);
    check_guard(t->grad, t->n, name);
    float *delta = fv_malloc(t->n * sizeof(float));
    for (size_t i = 0; i < t->n; i++) delta[i] = t->grad[i] - t->prefill[i];
    check_grad(name, delta, ref, t->n);
    free(delta);
}

/* ---- the gradient checker itself must be able to fail ---- */

static void test_checker_rejects(void **state) {
    (void)state;
    double r[4] = {0.5, -0.25, 1.0, 0.0};
    float good[4] = {0.5f, -0.25f, 1.0f, 0.0f};
    float bad[4] = {0.5f, -0.25f, 1.01f, 0.0f};
    float zero[4] = {0};
    double rzero[4] = {0};
    assert_true(grad_ok("self-test good", good, r, 4));
    assert_false(grad_ok("self-test off by 1%", bad, r, 4));
    assert_false(grad_ok("self-test all-zero analytic", zero, r, 4));
    assert_false(grad_ok("self-test all-zero reference", zero, rzero, 4));
}

/* ---- conv2d ---- */

static void ref_conv(double *out, double *const *in, const void *ctx) {
    const fv_conv2d_shape *s = ctx;
    const double *x = in[0], *w = in[1], *b = in[2];
    const int Cg = s->C / s->groups, Kg = s->K / s->groups;
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++) {
            const int g = k / Kg;
            for (int oy = 0; oy < s->OH; oy++)
                for (int ox = 0; ox < s->OW; ox++) {
                    double acc = b ? b[k] : 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int ky = 0; ky < s->R; ky++)
                            for (int kx = 0; kx < s->R; kx++) {
                                int iy = oy * s->stride - s->pad + ky,
                                    ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                                acc += w[((size_t)(k * Cg + c) * s->R + ky) * s->R + kx] *
                                       x[(((size_t)n * s->C + g * Cg + c) * s->H + iy) * s->W + ix];
                            }
                    out[(((size_t)n * s->K + k) * s->OH + oy) * s->OW + ox] = acc;
                }
        }
}

/* Direct double-precision conv backward: dx += ..., dw += ..., db += ... (db may be NULL). */
static void ref_conv_backward(double *dx, double *dw, double *db, const double *G, const double *x,
                              const double *w, const fv_conv2d_shape *s) {
    const int Cg = s->C / s->groups, Kg = s->K / s->groups;
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++) {
            const int g = k / Kg;
            for (int oy = 0; oy < s->OH; oy++)
                for (int ox = 0; ox < s->OW; ox++) {
                    const double gv = G[(((size_t)n * s->K + k) * s->OH + oy) * s->OW + ox];
                    if (db) db[k] += gv;
                    for (int c = 0; c < Cg; c++)
                        for (int ky = 0; ky < s->R; ky++)
                            for (int kx = 0; kx < s->R; kx++) {
                                int iy = oy * s->stride - s->pad + ky,
                                    ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) continue;
                                size_t wi = ((size_t)(k * Cg + c) * s->R + ky) * s->R + kx;
                                size_t xi =
                                    (((size_t)n * s->C + g * Cg + c) * s->H + iy) * s->W + ix;
                                dw[wi] += gv * x[xi];
                                dx[xi] += gv * w[wi];
                            }
                }
        }
}

/* The conv path under test: 0 im2col + OpenBLAS, 1 oneDNN (a test's cmocka state points at one). */
enum { PATH_BLAS, PATH_DNNL };
static const int PATHS[2] = {PATH_BLAS, PATH_DNNL};

static int path_of(void **state) { return *state ? *(const int *)*state : PATH_BLAS; }

/* One conv of shape s on a path: the oneDNN objects (for PATH_DNNL) or the scratch (PATH_BLAS). */
typedef struct {
    int path, bias;
    const fv_conv2d_shape *s;
    float *scratch;
#ifdef FEDVIM_HAVE_DNNL
    fv_dnnl *d;
    fv_dnnl_conv *c;
#endif
} conv_run;

static conv_run conv_run_new(int path, const fv_conv2d_shape *s, int bias, float *scratch) {
    conv_run c = {.path = path, .bias = bias, .s = s, .scratch = scratch};
#ifdef FEDVIM_HAVE_DNNL
    if (path == PATH_DNNL) {
        fv_err e;
        c.d = fv_dnnl_new(&e);
        if (!c.d) fail_msg("%s", e.msg);
        c.c = fv_dnnl_conv_new(c.d, s, bias, &e);
        if (!c.c) fail_msg("%s", e.msg);
    }
#else
    assert_int_equal(path, PATH_BLAS);
#endif
    return c;
}

static void conv_run_free(conv_run *c) {
#ifdef FEDVIM_HAVE_DNNL
    fv_dnnl_conv_destroy(&c->c);
    fv_dnnl_destroy(&c->d);
#else
    (void)c;
#endif
}

static void conv_fwd(conv_run *c, float *out, const float *x, const float *w, const float *b) {
#ifdef FEDVIM_HAVE_DNNL
    if (c->path == PATH_DNNL) {
        fv_dnnl_conv_forward(c->c, out, x, w, b, 0, c->s);
        return;
    }
#endif
    fv_conv2d_forward(out, x, w, b, c->scratch, c->s);
}

static void conv_bwd(conv_run *c, float *dx, float *dw, float *db, const float *G, const float *x,
                     const float *w) {
#ifdef FEDVIM_HAVE_DNNL
    if (c->path == PATH_DNNL) {
        fv_dnnl_conv_backward(c->c, dx, 0, dw, db, G, x, w, c->s);
        return;
    }
#endif
    fv_conv2d_backward(dx, dw, db, G, x, w, c->scratch, c->s);
}

/* Checks one conv shape: forward against ref_conv, backward against central differences of ref_conv
 * (numeric != 0; small shapes) or against ref_conv_backward (numeric == 0: shapes big enough for
 * the multi-threaded paths, where finite differences would take too long). */
static void check_conv_ex(int path, int N, int C, int H, int W, int K, int R, int stride, int pad,
                          int groups, int bias, int numeric) {
    char what[160];
    snprintf(what, sizeof what, "%s conv N%d C%d %dx%d K%d R%d s%d p%d g%d%s",
             path == PATH_DNNL ? "oneDNN" : "OpenBLAS", N, C, H, W, K, R, stride, pad, groups,
             bias ? "" : " nobias");
    fv_rng r;
    fv_rng_seed(&r,
                (uint64_t)(N * 131 + C * 17 + H * 7 + W * 3 + K * 5 + R + stride * 11 + pad * 13));
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, N, C, H, W, K, R, stride, pad, groups);
    const size_t nin = (size_t)N * C * H * W, nw = (size_t)K * (C / groups) * R * R;
    const size_t nout = (size_t)N * K * s.OH * s.OW;
    tens x = tens_new(nin, &r), w = tens_new(nw, &r), b = tens_new((size_t)K, &r);
    const size_t nscr = fv_conv2d_scratch_floats(&s);
    float *scratch = fbuf(nscr), *out = fbuf(nout), *G = fbuf(nout);
    fill_uniform(G, nout, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, nout), *ref = fv_malloc(nout * sizeof(double));
    double *in[3] = {x.d, w.d, bias ? b.d : NULL};
    conv_run cr = conv_run_new(path, &s, bias, scratch);

    conv_fwd(&cr, out, x.f, w.f, bias ? b.f : NULL);
    ref_conv(ref, in, &s);
    check_guard(out, nout, what);
    check_guard(scratch, nscr, what);
    check_fwd(what, out, ref, nout);

    conv_bwd(&cr, x.grad, w.grad, bias ? b.grad : NULL, G, x.f, w.f);
    check_guard(scratch, nscr, what);
    char name[200];
    if (numeric) {
        snprintf(name, sizeof name, "%s dinp", what);
        check_tens_grad(name, &x, ref_conv, &s, in, 0, Gd, nout);
        snprintf(name, sizeof name, "%s dw", what);
        check_tens_grad(name, &w, ref_conv, &s, in, 1, Gd, nout);
        if (bias) {
            snprintf(name, sizeof name, "%s db", what);
            check_tens_grad(name, &b, ref_conv, &s, in, 2, Gd, nout);
        }
    }
    { /* the direct reference, itself validated here on every small shape */
        double *dx = fv_calloc(nin, sizeof(double)), *dw = fv_calloc(nw, sizeof(double));
        double *db = fv_calloc((size_t)K, sizeof(double));
        ref_conv_backward(dx, dw, db, Gd, x.d, w.d, &s);
        check_direct_grad(what, "dinp", &x, dx);
        check_direct_grad(what, "dw", &w, dw);
        if (bias) check_direct_grad(what, "db", &b, db);
        free(dx), free(dw), free(db);
    }

    /* dinp == NULL: the same parameter gradients, bit for bit */
    float *dw2 = fbuf(nw), *db2 = fbuf((size_t)K);
    memcpy(dw2, w.prefill, nw * sizeof(float));
    memcpy(db2, b.prefill, (size_t)K * sizeof(float));
    conv_bwd(&cr, NULL, dw2, bias ? db2 : NULL, G, x.f, w.f);
    assert_memory_equal(dw2, w.grad, nw * sizeof(float));
    if (bias) assert_memory_equal(db2, b.grad, (size_t)K * sizeof(float));
    conv_run_free(&cr);

    tens_free(&x), tens_free(&w), tens_free(&b);
    free(scratch), free(out), free(G), free(Gd), free(ref), free(dw2), free(db2);
}

static void check_conv(int path, int N, int C, int H, int W, int K, int R, int stride, int pad,
                       int groups, int bias) {
    check_conv_ex(path, N, C, H, W, K, R, stride, pad, groups, bias, 1);
}

static void test_conv_dense(void **state) {
    const int p = path_of(state);
    check_conv(p, 2, 3, 7, 9, 4, 3, 1, 1, 1, 1);   /* odd, non-square, same padding */
    check_conv(p, 2, 3, 8, 6, 5, 3, 1, 0, 1, 1);   /* no padding */
    check_conv(p, 2, 2, 9, 8, 3, 5, 2, 2, 1, 1);   /* stride 2, pad 2, 5x5 */
    check_conv(p, 3, 2, 7, 7, 4, 3, 2, 0, 1, 0);   /* stride 2, no pad, no bias */
    check_conv(p, 1, 3, 6, 5, 4, 3, 1, 1, 1, 1);   /* one image: GEMM straight into out */
    check_conv(p, 2, 1, 10, 10, 6, 5, 1, 2, 1, 1); /* LeNet conv1 in miniature */
    check_conv(p, 2, 2, 5, 1, 3, 3, 2, 2, 1, 1);   /* a 1-wide image where some taps never see it */
}

static void test_conv_groups(void **state) {
    const int p = path_of(state);
    check_conv(p, 2, 4, 7, 6, 6, 3, 1, 1, 2, 1); /* 2 groups */
    check_conv(p, 2, 6, 7, 8, 3, 3, 2, 1, 3, 1); /* 3 groups, stride 2 */
    check_conv(p, 2, 4, 6, 6, 8, 3, 1, 1, 4, 1); /* groups == C, 2 filters per channel: GEMM path */
    check_conv(p, 2, 4, 7, 9, 4, 3, 1, 1, 4, 1); /* depthwise */
    check_conv(p, 2, 3, 9, 8, 3, 3, 2, 2, 3, 1); /* depthwise, stride 2, pad 2 */
    check_conv(p, 1, 5, 6, 7, 5, 5, 1, 2, 5, 0); /* depthwise 5x5, no bias */
}

static void test_conv_pointwise(void **state) {
    const int p = path_of(state);
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, 2, 6, 5, 7, 4, 1, 1, 0, 1);
    assert_int_equal(fv_conv2d_scratch_floats(&s), 0); /* the 1x1 fast path needs no im2col */
    check_conv(p, 2, 6, 5, 7, 4, 1, 1, 0, 1, 1);
    check_conv(p, 3, 4, 3, 4, 6, 1, 1, 0, 2, 0); /* 1x1 with groups */
    check_conv(p, 2, 4, 7, 7, 5, 1, 2, 0, 1, 1); /* 1x1 stride 2: general path */
    check_conv(p, 2, 3, 4, 5, 2, 1, 1, 1, 1, 1); /* 1x1 with padding: general path */
}

/* Shapes with enough work for the multi-threaded paths (2 threads: uneven image ranges, per-thread
 * weight-gradient buffers), checked against the direct double reference. */
static void test_conv_threaded(void **state) {
    const int p = path_of(state);
    check_conv_ex(p, 5, 8, 12, 11, 8, 3, 1, 1, 1, 1, 0);    /* odd batch: 2 + 3 images */
    check_conv_ex(p, 4, 8, 23, 23, 16, 3, 2, 1, 1, 0, 0);   /* stride 2 */
    check_conv_ex(p, 4, 8, 16, 16, 8, 3, 1, 1, 2, 1, 0);    /* 2 groups */
    check_conv_ex(p, 4, 16, 24, 24, 16, 3, 1, 1, 16, 1, 0); /* depthwise */
    check_conv_ex(p, 4, 32, 31, 31, 32, 3, 2, 1, 32, 1, 0); /* depthwise, stride 2 */
    check_conv_ex(p, 5, 32, 16, 16, 16, 1, 1, 0, 1, 1, 0);  /* 1x1 */
    check_conv_ex(p, 3, 32, 16, 16, 32, 1, 1, 0, 2, 0, 0);  /* 1x1, 2 groups */
}

/* A batch larger than the scratch budget runs in chunks (here 2 images then 1, the last through
 * the one-image path); checked against the reference and a direct double backward. */
static void test_conv_chunked(void **state) {
    (void)state;
    const int N = 3, C = 8, H = 136, W = 136, K = 4, R = 3;
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, N, C, H, W, K, R, 1, 1, 1);
    const size_t per_img = ((size_t)C * R * R + K) * s.OH * s.OW;
    const size_t nscr = fv_conv2d_scratch_floats(&s);
    assert_true(nscr < (size_t)N * per_img); /* the batch really is split */
    fv_rng r;
    fv_rng_seed(&r, 7);
    const size_t nin = (size_t)N * C * H * W, nw = (size_t)K * C * R * R,
                 nout = (size_t)N * K * H * W;
    tens x = tens_new(nin, &r), w = tens_new(nw, &r), b = tens_new((size_t)K, &r);
    float *scratch = fbuf(nscr), *out = fbuf(nout), *G = fbuf(nout);
    fill_uniform(G, nout, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, nout), *ref = fv_malloc(nout * sizeof(double));
    double *in[3] = {x.d, w.d, b.d};
    fv_conv2d_forward(out, x.f, w.f, b.f, scratch, &s);
    ref_conv(ref, in, &s);
    check_guard(scratch, nscr, "chunked conv scratch");
    check_fwd("chunked conv", out, ref, nout);
    fv_conv2d_backward(x.grad, w.grad, b.grad, G, x.f, w.f, scratch, &s);
    check_guard(scratch, nscr, "chunked conv scratch");
    double *dx = fv_calloc(nin, sizeof(double)), *dw = fv_calloc(nw, sizeof(double));
    double *db = fv_calloc((size_t)K, sizeof(double));
    ref_conv_backward(dx, dw, db, Gd, x.d, w.d, &s);
    float *delta = fv_malloc(nin * sizeof(float));
    for (size_t i = 0; i < nin; i++) delta[i] = x.grad[i] - x.prefill[i];
    check_grad("chunked conv dinp", delta, dx, nin);
    for (size_t i = 0; i < nw; i++) delta[i] = w.grad[i] - w.prefill[i];
    /* dw sums 3 * 136 * 136 products in float: a looser bound, still far below any real bug */
    double e = rel_err(delta, dw, nw);
    if (!(e <= 1e-3)) fail_msg("chunked conv dw: relative error %.3g > 1e-3", e);
    for (int i = 0; i < K; i++) delta[i] = b.grad[i] - b.prefill[i];
    e = rel_err(delta, db, (size_t)K);
    if (!(e <= 1e-3)) fail_msg("chunked conv db: relative error %.3g > 1e-3", e);
    tens_free(&x), tens_free(&w), tens_free(&b);
    free(scratch), free(out), free(G), free(Gd), free(ref), free(dx), free(dw), free(db),
        free(delta);
}

/* A buffer sized for the largest batch serves every smaller batch. */
static void test_conv_scratch_monotone(void **state) {
    (void)state;
    size_t prev = 0;
    for (int n = 1; n <= 300; n++) {
        fv_conv2d_shape s;
        fv_conv2d_shape_init(&s, n, 16, 32, 32, 16, 3, 1, 1, 1);
        size_t f = fv_conv2d_scratch_floats(&s);
        assert_true(f >= prev);
        prev = f;
    }
}

/* ---- pooling ---- */

typedef struct {
    int N, C, H, W, k, stride, pad;
} pool_ctx;

static int pool_out(int size, int k, int stride, int pad) {
    return (size + 2 * pad - k) / stride + 1;
}

static void ref_maxpool(double *out, double *const *in, const void *ctx) {
    const pool_ctx *p = ctx;
    const int OH = pool_out(p->H, p->k, p->stride, p->pad),
              OW = pool_out(p->W, p->k, p->stride, p->pad);
    for (int pl = 0; pl < p->N * p->C; pl++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double m = 0.0;
                int any = 0;
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int y = oy * p->stride - p->pad + ky, x = ox * p->stride - p->pad + kx;
                        if (y < 0 || y >= p->H || x < 0 || x >= p->W) continue;
                        double v = in[0][((size_t)pl * p->H + y) * p->W + x];
                        if (!any || v > m) m = v, any = 1;
                    }
                out[((size_t)pl * OH + oy) * OW + ox] = m;
            }
}

static void ref_avgpool(double *out, double *const *in, const void *ctx) {
    const pool_ctx *p = ctx;
    const int OH = pool_out(p->H, p->k, p->stride, p->pad),
              OW = pool_out(p->W, p->k, p->stride, p->pad);
    for (int pl = 0; pl < p->N * p->C; pl++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double acc = 0.0;
                for (int ky = 0; ky < p->k; ky++)
                    for (int kx = 0; kx < p->k; kx++) {
                        int y = oy * p->stride - p->pad + ky, x = ox * p->stride - p->pad + kx;
                        if (y < 0 || y >= p->H || x < 0 || x >= p->W) continue;
                        acc += in[0][((size_t)pl * p->H + y) * p->W + x];
                    }
                out[((size_t)pl * OH + oy) * OW + ox] = acc / (p->k * p->k); /* count_include_pad */
            }
}

static void check_pool(int is_max, int N, int C, int H, int W, int k, int stride, int pad) {
    char what[128];
    snprintf(what, sizeof what, "%s N%d C%d %dx%d k%d s%d p%d", is_max ? "maxpool" : "avgpool", N,
             C, H, W, k, stride, pad);
    pool_ctx p = {N, C, H, W, k, stride, pad};
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    const size_t nin = (size_t)N * C * H * W, nout = (size_t)N * C * OH * OW;
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(H * 31 + W + k * 7 + stride * 3 + pad));
    tens x = tens_new(nin, &r);
    if (is_max) {
        fill_distinct(x.f, nin, &r);
        tens_sync(&x);
    }
    float *out = fbuf(nout), *G = fbuf(nout);
    int32_t *am = fv_malloc((nout + 1) * sizeof(int32_t));
    fill_uniform(G, nout, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, nout), *ref = fv_malloc(nout * sizeof(double));
    double *in[1] = {x.d};
    ref_fn f = is_max ? ref_maxpool : ref_avgpool;
    if (is_max) {
        fv_maxpool_forward(out, am, x.f, N, C, H, W, k, stride, pad);
        fv_maxpool_backward(x.grad, G, am, N, C, H, W, k, stride, pad);
    } else {
        fv_avgpool_forward(out, x.f, N, C, H, W, k, stride, pad);
        fv_avgpool_backward(x.grad, G, N, C, H, W, k, stride, pad);
    }
    check_guard(out, nout, what);
    f(ref, in, &p);
    check_fwd(what, out, ref, nout);
    if (is_max)
        for (size_t i = 0; i < nout; i++) { /* argmax points at the value it reports */
            assert_true(am[i] >= 0 && am[i] < H * W);
            assert_true(x.f[i / ((size_t)OH * OW) * H * W + (size_t)am[i]] == out[i]);
        }
    check_tens_grad(what, &x, f, &p, in, 0, Gd, nout);
    tens_free(&x);
    free(out), free(G), free(am), free(Gd), free(ref);
}

static void test_pool(void **state) {
    (void)state;
    check_pool(1, 2, 3, 8, 8, 2, 2, 0); /* LeNet's 2x2 */
    check_pool(1, 2, 2, 7, 9, 3, 2, 1); /* overlapping, padded, odd */
    check_pool(1, 1, 2, 6, 5, 3, 1, 1);
    check_pool(0, 2, 3, 8, 8, 2, 2, 0);
    check_pool(0, 2, 2, 7, 9, 3, 2, 1); /* padding counted in the divisor */
    check_pool(0, 1, 2, 5, 6, 3, 1, 1);
}

static void test_maxpool_ties_and_padding(void **state) {
    (void)state;
    /* one 2x4 plane: the left window is all equal -> argmax is the first (row-major) position;
     * the right window has two equal maxima -> the first one */
    const float x[8] = {3, 3, 1, 5, 3, 3, 5, 2};
    float out[2], dx[8] = {0};
    int32_t am[2];
    fv_maxpool_forward(out, am, x, 1, 1, 2, 4, 2, 2, 0);
    assert_true(out[0] == 3.0f && out[1] == 5.0f);
    assert_int_equal(am[0], 0);
    assert_int_equal(am[1], 3);
    const float g[2] = {1.5f, -2.0f};
    fv_maxpool_backward(dx, g, am, 1, 1, 2, 4, 2, 2, 0);
    const float want[8] = {1.5f, 0, 0, -2.0f, 0, 0, 0, 0};
    assert_memory_equal(dx, want, sizeof want);

    /* negative inputs with padding 1: the padding must never win */
    const float neg[4] = {-4, -3, -2, -1};
    float o9[9];
    int32_t a9[9];
    fv_maxpool_forward(o9, a9, neg, 1, 1, 2, 2, 2, 1, 1);
    const float w9[9] = {-4, -3, -3, -2, -1, -1, -2, -1, -1};
    assert_memory_equal(o9, w9, sizeof w9);
    assert_int_equal(a9[0], 0);
    assert_int_equal(a9[8], 3);

    /* a window entirely in the padding: out 0, argmax -1, and backward skips it */
    float o3[9], d3[1] = {0.25f};
    int32_t a3[9];
    const float one[1] = {-7};
    fv_maxpool_forward(o3, a3, one, 1, 1, 1, 1, 1, 1, 1);
    assert_int_equal(a3[0], -1);
    assert_true(o3[0] == 0.0f);
    assert_int_equal(a3[4], 0);
    assert_true(o3[4] == -7.0f);
    const float g9[9] = {1, 1, 1, 1, 2, 1, 1, 1, 1};
    fv_maxpool_backward(d3, g9, a3, 1, 1, 1, 1, 1, 1, 1);
    assert_true(d3[0] == 2.25f);
}

static void ref_gap(double *out, double *const *in, const void *ctx) {
    const int *d = ctx; /* N, C, HW */
    for (int pl = 0; pl < d[0] * d[1]; pl++) {
        double acc = 0.0;
        for (int i = 0; i < d[2]; i++) acc += in[0][(size_t)pl * d[2] + i];
        out[pl] = acc / d[2];
    }
}

static void test_gap(void **state) {
    (void)state;
    const int d[3] = {3, 4, 25};
    const size_t nin = 3 * 4 * 25, nout = 12;
    fv_rng r;
    fv_rng_seed(&r, 11);
    tens x = tens_new(nin, &r);
    float *out = fbuf(nout), *G = fbuf(nout);
    fill_uniform(G, nout, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, nout), ref[12];
    double *in[1] = {x.d};
    fv_gap_forward(out, x.f, 3, 4, 25);
    check_guard(out, nout, "gap");
    ref_gap(ref, in, d);
    check_fwd("gap", out, ref, nout);
    fv_gap_backward(x.grad, G, 3, 4, 25);
    check_tens_grad("gap dinp", &x, ref_gap, d, in, 0, Gd, nout);
    tens_free(&x);
    free(out), free(G), free(Gd);
}

/* ---- element-wise activations ---- */

typedef enum { ACT_RELU, ACT_SIGMOID, ACT_TANH } act_kind;

static void ref_act(double *out, double *const *in, const void *ctx) {
    const int *d = ctx; /* kind, n */
    for (int i = 0; i < d[1]; i++) {
        double x = in[0][i];
        out[i] = d[0] == ACT_RELU      ? (x > 0 ? x : 0)
                 : d[0] == ACT_SIGMOID ? 1.0 / (1.0 + exp(-x))
                                       : tanh(x);
    }
}

static void check_act(act_kind kind, const char *what, int n) {
    const int d[2] = {kind, n};
    fv_rng r;
    fv_rng_seed(&r, 100 + (uint64_t)kind);
    tens x = tens_new((size_t)n, &r);
    fill_away_from_zero(x.f, (size_t)n, &r);
    for (int i = 0; i < n; i++) x.f[i] *= 3.0f;
    tens_sync(&x);
    float *out = fbuf((size_t)n), *G = fbuf((size_t)n);
    fill_uniform(G, (size_t)n, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, (size_t)n), *ref = fv_malloc((size_t)n * sizeof(double));
    double *in[1] = {x.d};
    if (kind == ACT_RELU) {
        fv_relu_forward(out, x.f, (size_t)n);
        fv_relu_backward(x.grad, G, out, (size_t)n);
    } else if (kind == ACT_SIGMOID) {
        fv_sigmoid_forward(out, x.f, (size_t)n);
        fv_sigmoid_backward(x.grad, G, out, (size_t)n);
    } else {
        fv_tanh_forward(out, x.f, (size_t)n);
        fv_tanh_backward(x.grad, G, out, (size_t)n);
    }
    check_guard(out, (size_t)n, what);
    ref_act(ref, in, d);
    check_fwd(what, out, ref, (size_t)n);
    check_tens_grad(what, &x, ref_act, d, in, 0, Gd, (size_t)n);
    tens_free(&x);
    free(out), free(G), free(Gd), free(ref);
}

static void test_activations(void **state) {
    (void)state;
    check_act(ACT_RELU, "relu", 1001);
    check_act(ACT_SIGMOID, "sigmoid", 1001);
    check_act(ACT_TANH, "tanh", 1001);
    /* saturated inputs stay finite */
    const float big[4] = {-200.0f, 200.0f, -1e30f, 1e30f};
    float o[4];
    fv_sigmoid_forward(o, big, 4);
    assert_true(o[0] == 0.0f && o[1] == 1.0f && o[2] == 0.0f && o[3] == 1.0f);
    fv_tanh_forward(o, big, 4);
    assert_true(o[0] == -1.0f && o[1] == 1.0f);
}

/* Large enough to run the OpenMP path of the element-wise kernels and the add. */
static void test_elementwise_large_and_add(void **state) {
    (void)state;
    const size_t n = 100003;
    fv_rng r;
    fv_rng_seed(&r, 5);
    float *a = fbuf(n), *b = fbuf(n), *o = fbuf(n), *d = fbuf(n);
    fill_uniform(a, n, -2.0f, 2.0f, &r);
    fill_uniform(b, n, -2.0f, 2.0f, &r);
    fv_add_forward(o, a, b, n);
    check_guard(o, n, "add");
    for (size_t i = 0; i < n; i++) assert_true(o[i] == a[i] + b[i]);
    fv_relu_forward(o, a, n);
    for (size_t i = 0; i < n; i++) assert_true(o[i] == (a[i] > 0.0f ? a[i] : 0.0f));
    memcpy(d, b, n * sizeof(float));
    fv_relu_backward(d, a, o, n);
    check_guard(d, n, "relu backward");
    for (size_t i = 0; i < n; i++) assert_true(d[i] == b[i] + (o[i] > 0.0f ? a[i] : 0.0f));
    free(a), free(b), free(o), free(d);
}

/* ---- batch norm ---- */

typedef struct {
    int N, C, HW;
    double eps;
} bn_ctx;

static void ref_bn_train(double *out, double *const *in, const void *ctx) {
    const bn_ctx *p = ctx;
    const double *x = in[0], *gamma = in[1], *beta = in[2];
    const double M = (double)p->N * p->HW;
    for (int c = 0; c < p->C; c++) {
        double mu = 0.0, var = 0.0;
        for (int n = 0; n < p->N; n++)
            for (int i = 0; i < p->HW; i++) mu += x[((size_t)n * p->C + c) * p->HW + i];
        mu /= M;
        for (int n = 0; n < p->N; n++)
            for (int i = 0; i < p->HW; i++) {
                double d = x[((size_t)n * p->C + c) * p->HW + i] - mu;
                var += d * d;
            }
        var /= M;
        for (int n = 0; n < p->N; n++)
            for (int i = 0; i < p->HW; i++) {
                size_t j = ((size_t)n * p->C + c) * p->HW + i;
                out[j] = (x[j] - mu) / sqrt(var + p->eps) * gamma[c] + beta[c];
            }
    }
}

static void check_bn(int N, int C, int HW) {
    char what[96];
    snprintf(what, sizeof what, "batchnorm N%d C%d HW%d", N, C, HW);
    const bn_ctx p = {N, C, HW, 1e-5};
    const size_t n = (size_t)N * C * HW;
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 7 + C * 3 + HW));
    tens x = tens_new(n, &r), gamma = tens_new((size_t)C, &r), beta = tens_new((size_t)C, &r);
    for (size_t i = 0; i < n; i++)
        x.f[i] = 2.0f * x.f[i] + 0.5f; /* mean and variance away from 0/1 */
    tens_sync(&x);
    float *out = fbuf(n), *G = fbuf(n), *mean = fbuf((size_t)C), *invstd = fbuf((size_t)C);
    float *rm = fbuf((size_t)C), *rv = fbuf((size_t)C);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    fill_uniform(rm, (size_t)C, -1.0f, 1.0f, &r);
    fill_uniform(rv, (size_t)C, 0.5f, 2.0f, &r);
    double *rm0 = to_double(rm, (size_t)C), *rv0 = to_double(rv, (size_t)C);
    double *Gd = to_double(G, n), *ref = fv_malloc(n * sizeof(double));
    double *in[3] = {x.d, gamma.d, beta.d};
    const float momentum = 0.1f;
    fv_batchnorm_forward_train(out, mean, invstd, rm, rv, x.f, gamma.f, beta.f, N, C, HW, momentum,
                               (float)p.eps);
    check_guard(out, n, what);
    ref_bn_train(ref, in, &p);
    check_fwd(what, out, ref, n);
    /* saved statistics and PyTorch's running-stat rule (unbiased variance) */
    const double M = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double mu = 0.0, ss = 0.0;
        for (int b = 0; b < N; b++)
            for (int i = 0; i < HW; i++) mu += x.d[((size_t)b * C + c) * HW + i];
        mu /= M;
        for (int b = 0; b < N; b++)
            for (int i = 0; i < HW; i++) {
                double d = x.d[((size_t)b * C + c) * HW + i] - mu;
                ss += d * d;
            }
        const double want_rm = 0.9 * rm0[c] + 0.1 * mu, want_rv = 0.9 * rv0[c] + 0.1 * ss / (M - 1);
        assert_true(fabs(mean[c] - mu) <= 1e-6 * (1 + fabs(mu)));
        assert_true(fabs(invstd[c] - 1.0 / sqrt(ss / M + p.eps)) <= 1e-6 / sqrt(ss / M + p.eps));
        if (!(fabs(rm[c] - want_rm) <= 1e-6 && fabs(rv[c] - want_rv) <= 1e-6 * want_rv))
            fail_msg("%s running stats c=%d: got %g %g, want %g %g", what, c, rm[c], rv[c], want_rm,
                     want_rv);
    }
    fv_batchnorm_backward(x.grad, gamma.grad, beta.grad, G, x.f, mean, invstd, gamma.f, N, C, HW);
    char name[128];
    snprintf(name, sizeof name, "%s dinp", what);
    check_tens_grad(name, &x, ref_bn_train, &p, in, 0, Gd, n);
    snprintf(name, sizeof name, "%s dgamma", what);
    check_tens_grad(name, &gamma, ref_bn_train, &p, in, 1, Gd, n);
    snprintf(name, sizeof name, "%s dbeta", what);
    check_tens_grad(name, &beta, ref_bn_train, &p, in, 2, Gd, n);

    /* eval mode with the updated running statistics */
    fv_batchnorm_forward_eval(out, x.f, gamma.f, beta.f, rm, rv, N, C, HW, (float)p.eps);
    for (int b = 0; b < N; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) {
                size_t j = ((size_t)b * C + c) * HW + i;
                ref[j] = (x.d[j] - rm[c]) / sqrt((double)rv[c] + p.eps) * gamma.d[c] + beta.d[c];
            }
    snprintf(name, sizeof name, "%s eval", what);
    check_fwd(name, out, ref, n);
    check_guard(out, n, name);
    tens_free(&x), tens_free(&gamma), tens_free(&beta);
    free(out), free(G), free(mean), free(invstd), free(rm), free(rv), free(rm0), free(rv0),
        free(Gd), free(ref);
}

static void test_batchnorm(void **state) {
    (void)state;
    check_bn(4, 3, 10); /* BatchNorm2d */
    check_bn(6, 5, 1);  /* BatchNorm1d after a linear layer */
    check_bn(2, 2, 49);
}

/* One value per channel: the unbiased variance is undefined, the running variance is kept. */
static void test_batchnorm_single_value(void **state) {
    (void)state;
    const float x[2] = {3.0f, -1.0f}, gamma[2] = {1, 1}, beta[2] = {0.5f, 0.5f};
    float out[2], mean[2], invstd[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    fv_batchnorm_forward_train(out, mean, invstd, rm, rv, x, gamma, beta, 1, 2, 1, 0.1f, 1e-5f);
    assert_true(out[0] == 0.5f && out[1] == 0.5f);
    assert_true(fabsf(rm[0] - 0.3f) < 1e-7f && fabsf(rm[1] + 0.1f) < 1e-7f);
    assert_true(rv[0] == 1.0f && rv[1] == 1.0f);
}

/* ---- linear ---- */

typedef struct {
    int N, I, O;
} lin_ctx;

static void ref_linear(double *out, double *const *in, const void *ctx) {
    const lin_ctx *p = ctx;
    for (int n = 0; n < p->N; n++)
        for (int o = 0; o < p->O; o++) {
            double acc = in[2] ? in[2][o] : 0.0;
            for (int i = 0; i < p->I; i++)
                acc += in[0][(size_t)n * p->I + i] * in[1][(size_t)o * p->I + i];
            out[(size_t)n * p->O + o] = acc;
        }
}

static void ref_linear_backward(double *dx, double *dw, double *db, const double *G,
                                const double *x, const double *w, const lin_ctx *p) {
    for (int n = 0; n < p->N; n++)
        for (int o = 0; o < p->O; o++) {
            const double g = G[(size_t)n * p->O + o];
            if (db) db[o] += g;
            for (int i = 0; i < p->I; i++) {
                dw[(size_t)o * p->I + i] += g * x[(size_t)n * p->I + i];
                dx[(size_t)n * p->I + i] += g * w[(size_t)o * p->I + i];
            }
        }
}

/* Backward against central differences (numeric != 0) and always against the direct reference
 * (so big, multi-threaded shapes are checked too). */
static void check_linear_ex(int N, int I, int O, int bias, int numeric) {
    char what[96];
    snprintf(what, sizeof what, "linear N%d I%d O%d%s", N, I, O, bias ? "" : " nobias");
    const lin_ctx p = {N, I, O};
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N + I * 3 + O * 5));
    tens x = tens_new((size_t)N * I, &r), w = tens_new((size_t)O * I, &r),
         b = tens_new((size_t)O, &r);
    const size_t nout = (size_t)N * O;
    float *out = fbuf(nout), *G = fbuf(nout);
    fill_uniform(G, nout, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, nout), *ref = fv_malloc(nout * sizeof(double));
    double *in[3] = {x.d, w.d, bias ? b.d : NULL};
    fv_linear_forward(out, x.f, w.f, bias ? b.f : NULL, N, I, O);
    check_guard(out, nout, what);
    ref_linear(ref, in, &p);
    check_fwd(what, out, ref, nout);
    fv_linear_backward(x.grad, w.grad, bias ? b.grad : NULL, G, x.f, w.f, N, I, O);
    char name[128];
    if (numeric) {
        snprintf(name, sizeof name, "%s dinp", what);
        check_tens_grad(name, &x, ref_linear, &p, in, 0, Gd, nout);
        snprintf(name, sizeof name, "%s dw", what);
        check_tens_grad(name, &w, ref_linear, &p, in, 1, Gd, nout);
        if (bias) {
            snprintf(name, sizeof name, "%s db", what);
            check_tens_grad(name, &b, ref_linear, &p, in, 2, Gd, nout);
        }
    }
    double *dx = fv_calloc(x.n, sizeof(double)), *dw = fv_calloc(w.n, sizeof(double));
    double *db = fv_calloc(b.n, sizeof(double));
    ref_linear_backward(dx, dw, db, Gd, x.d, w.d, &p);
    check_direct_grad(what, "dinp", &x, dx);
    check_direct_grad(what, "dw", &w, dw);
    if (bias) check_direct_grad(what, "db", &b, db);
    free(dx), free(dw), free(db);
    /* dinp == NULL leaves the parameter gradients as they were with it */
    float *dw2 = fbuf(w.n);
    memcpy(dw2, w.prefill, w.n * sizeof(float));
    fv_linear_backward(NULL, dw2, NULL, G, x.f, w.f, N, I, O);
    assert_memory_equal(dw2, w.grad, w.n * sizeof(float));
    tens_free(&x), tens_free(&w), tens_free(&b);
    free(out), free(G), free(Gd), free(ref), free(dw2);
}

static void test_linear(void **state) {
    (void)state;
    check_linear_ex(5, 7, 3, 1, 1);
    check_linear_ex(1, 12, 9, 1, 1);
    check_linear_ex(8, 20, 10, 0, 1);
    check_linear_ex(64, 400, 120, 1, 0); /* LeNet's fc1: the multi-threaded split */
    check_linear_ex(33, 150, 71, 1, 0);  /* uneven splits of rows and features */
}

/* ---- dropout ---- */

static void test_dropout(void **state) {
    (void)state;
    const size_t n = 200000;
    const float p = 0.3f;
    fv_rng r, r2;
    fv_rng_seed(&r, 42);
    float *x = fbuf(n), *out = fbuf(n), *out2 = fbuf(n), *G = fbuf(n), *dx = fbuf(n),
          *pre = fbuf(n);
    uint8_t *mask = fv_malloc(n), *mask2 = fv_malloc(n);
    fill_uniform(x, n, -1.0f, 1.0f, &r);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    fill_uniform(pre, n, -1.0f, 1.0f, &r);
    memcpy(dx, pre, n * sizeof(float));
    fv_rng_seed(&r, 1);
    fv_dropout_forward(out, mask, x, n, p, &r);
    check_guard(out, n, "dropout");
    /* drop rate within 5 sigma of p (sigma = sqrt(p (1 - p) / n) ~ 0.001) */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(mask[i] == 0 || mask[i] == 1);
        kept += mask[i];
        const float want = mask[i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f;
        assert_true(out[i] == want);
    }
    const double rate = 1.0 - (double)kept / n, sigma = sqrt(p * (1.0 - p) / n);
    if (!(fabs(rate - p) <= 5 * sigma))
        fail_msg("dropout rate %.4f, want %.2f +- %.4f", rate, p, 5 * sigma);
    /* backward: the same mask and scale, accumulated */
    fv_dropout_backward(dx, G, mask, n, p);
    check_guard(dx, n, "dropout backward");
    for (size_t i = 0; i < n; i++) {
        const float want = pre[i] + (mask[i] ? G[i] * (1.0f / (1.0f - p)) : 0.0f);
        assert_true(dx[i] == want);
    }
    /* the same seed gives the same mask; another seed a different one */
    fv_rng_seed(&r2, 1);
    fv_dropout_forward(out2, mask2, x, n, p, &r2);
    assert_memory_equal(mask, mask2, n);
    assert_memory_equal(out, out2, n * sizeof(float));
    fv_rng_seed(&r2, 2);
    fv_dropout_forward(out2, mask2, x, n, p, &r2);
    assert_memory_not_equal(mask, mask2, n);
    /* p = 0 keeps everything unscaled; p = 1 drops everything without dividing by zero */
    fv_dropout_forward(out2, mask2, x, n, 0.0f, &r2);
    assert_memory_equal(out2, x, n * sizeof(float));
    fv_dropout_forward(out2, mask2, x, n, 1.0f, &r2);
    for (size_t i = 0; i < n; i++) assert_true(out2[i] == 0.0f && mask2[i] == 0);
    free(x), free(out), free(out2), free(G), free(dx), free(pre), free(mask), free(mask2);
}

/* ---- upsample ---- */

static void ref_upsample(double *out, double *const *in, const void *ctx) {
    const int *d = ctx; /* N, C, H, W, s */
    const int H = d[2], W = d[3], s = d[4];
    for (int pl = 0; pl < d[0] * d[1]; pl++)
        for (int y = 0; y < H * s; y++)
            for (int x = 0; x < W * s; x++)
                out[((size_t)pl * H * s + y) * W * s + x] =
                    in[0][((size_t)pl * H + y / s) * W + x / s];
}

static void test_upsample(void **state) {
    (void)state;
    const int d[5] = {2, 3, 3, 5, 2};
    const size_t nin = 2 * 3 * 3 * 5, nout = nin * 4;
    fv_rng r;
    fv_rng_seed(&r, 3);
    tens x = tens_new(nin, &r);
    float *out = fbuf(nout), *G = fbuf(nout);
    fill_uniform(G, nout, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, nout), *ref = fv_malloc(nout * sizeof(double));
    double *in[1] = {x.d};
    fv_upsample_forward(out, x.f, 2, 3, 3, 5, 2);
    check_guard(out, nout, "upsample");
    ref_upsample(ref, in, d);
    check_fwd("upsample", out, ref, nout);
    fv_upsample_backward(x.grad, G, 2, 3, 3, 5, 2);
    check_tens_grad("upsample dinp", &x, ref_upsample, d, in, 0, Gd, nout);
    tens_free(&x);
    free(out), free(G), free(Gd), free(ref);
}

/* ---- softmax cross-entropy ---- */

static void ref_xent(double *out, double *const *in, const void *ctx) {
    const int *d = ctx; /* N, K, labels... */
    const int N = d[0], K = d[1];
    double total = 0.0;
    for (int n = 0; n < N; n++) {
        const double *z = in[0] + (size_t)n * K;
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp(z[k]);
        total += log(se) - z[d[2 + n]];
    }
    out[0] = total / N;
}

static void test_softmax_xent(void **state) {
    (void)state;
    /* hand-computed: row 0 = [1 2 3] label 2: loss log(e + e^2 + e^3) - 3 = 0.4076059644;
     * row 1 = [1 1 1] label 1: loss log 3 = 1.0986122887; argmax of a tie is the first (0), a miss
     */
    const float z[6] = {1, 2, 3, 1, 1, 1};
    const int labels[2] = {2, 1};
    float dz[6];
    int correct = -1;
    float loss = fv_softmax_xent(dz, z, labels, 2, 3, &correct);
    assert_true(fabs(loss - 0.7531091265) < 1e-6);
    assert_int_equal(correct, 1);
    const double s0[3] = {0.0900305732, 0.2447284711, 0.6652409558};
    const double want[6] = {s0[0] / 2, s0[1] / 2,         (s0[2] - 1) / 2,
                            1.0 / 6,   (1.0 / 3 - 1) / 2, 1.0 / 6};
    for (int i = 0; i < 6; i++)
        if (!(fabs(dz[i] - want[i]) < 1e-7))
            fail_msg("dlogits[%d] = %.9f, want %.9f", i, dz[i], want[i]);
    /* NULL dlogits and correct are allowed */
    assert_true(fv_softmax_xent(NULL, z, labels, 2, 3, NULL) == loss);

    /* huge logits: stable, finite */
    const float zb[3] = {1000.0f, 1001.0f, -1000.0f};
    const int lb[1] = {0};
    float db[3];
    loss = fv_softmax_xent(db, zb, lb, 1, 3, NULL);
    assert_true(fabs(loss - 1.3132616875) < 1e-5);
    assert_true(isfinite(db[0]) && isfinite(db[1]) && isfinite(db[2]));

    /* gradient check against the double loss */
    enum { N = 4, K = 5 };
    int ctx[2 + N] = {N, K, 3, 0, 4, 1};
    fv_rng r;
    fv_rng_seed(&r, 9);
    tens x = tens_new(N * K, &r);
    for (size_t i = 0; i < x.n; i++) x.f[i] *= 3.0f;
    tens_sync(&x);
    float g[N * K];
    double one = 1.0, num[N * K];
    double *in[1] = {x.d};
    fv_softmax_xent(g, x.f, ctx + 2, N, K, NULL);
    numeric_grad(num, ref_xent, ctx, in, 0, x.n, &one, 1);
    check_grad("softmax xent dlogits", g, num, x.n);
    double lref;
    ref_xent(&lref, in, ctx);
    assert_true(fabs(fv_softmax_xent(NULL, x.f, ctx + 2, N, K, NULL) - lref) < 1e-6 * fabs(lref));
    tens_free(&x);
}

/* ---- per-value regression losses (nn/loss_pixel.h) ---- */

static void ref_pixel(double *out, double *const *in, const void *ctx) {
    const int *d = ctx; /* n, kind */
    double total = 0.0;
    for (int i = 0; i < d[0]; i++) {
        const double r = in[0][i] - in[1][i];
        total += d[1] == FV_PIXEL_L1 ? fabs(r) : r * r;
    }
    out[0] = total / d[0];
}

static void test_pixel_loss(void **state) {
    (void)state;
    /* hand-computed: out - target = [0.5, -1, 0, 2]: MSE (0.25 + 1 + 0 + 4) / 4 = 1.3125, gradient
     * 2 r / 4 = [0.25, -0.5, 0, 1]; L1 (0.5 + 1 + 0 + 2) / 4 = 0.875, gradient sign(r) / 4 with 0
     * where out == target. Exact in float. */
    const float o[4] = {1.0f, 0.0f, 0.25f, 3.0f}, t[4] = {0.5f, 1.0f, 0.25f, 1.0f};
    float d[4];
    assert_true(fv_pixel_loss(d, o, t, 4, FV_PIXEL_MSE) == 1.3125f);
    const float dm[4] = {0.25f, -0.5f, 0.0f, 1.0f}, dl[4] = {0.25f, -0.25f, 0.0f, 0.25f};
    for (int i = 0; i < 4; i++) assert_true(d[i] == dm[i]);
    assert_true(fv_pixel_loss(d, o, t, 4, FV_PIXEL_L1) == 0.875f);
    for (int i = 0; i < 4; i++) assert_true(d[i] == dl[i]);
    assert_true(fv_pixel_loss(NULL, o, t, 4, FV_PIXEL_MSE) == 1.3125f); /* NULL dout is allowed */
    fv_pixel_loss_kind k;
    fv_err e = {{0}};
    assert_int_equal(fv_pixel_loss_parse("l1", &k, &e), 0);
    assert_int_equal(k, FV_PIXEL_L1);
    assert_int_equal(fv_pixel_loss_parse("huber", &k, &e), -1);
    assert_non_null(strstr(e.msg, "'huber'"));

    /* gradient check against the double loss, both kinds (GRAD_TOL); for L1 the values are drawn
     * so that no |out - target| is within a few FD_H of the kink at 0 */
    enum { N = 24 };
    fv_rng r;
    fv_rng_seed(&r, 21);
    for (int kind = FV_PIXEL_MSE; kind <= FV_PIXEL_L1; kind++) {
        tens x = tens_new(N, &r), y = tens_new(N, &r);
        for (size_t i = 0; i < N; i++)
            if (fabsf(x.f[i] - y.f[i]) < 0.05f) x.f[i] = y.f[i] + (x.f[i] >= y.f[i] ? 0.1f : -0.1f);
        tens_sync(&x);
        int ctx[2] = {N, kind};
        float g[N];
        double one = 1.0, num[N], lref;
        double *in[2] = {x.d, y.d};
        float l = fv_pixel_loss(g, x.f, y.f, N, (fv_pixel_loss_kind)kind);
        numeric_grad(num, ref_pixel, ctx, in, 0, N, &one, 1);
        check_grad(kind == FV_PIXEL_L1 ? "l1 loss dout" : "mse loss dout", g, num, N);
        ref_pixel(&lref, in, ctx);
        assert_true(fabs(l - lref) < 1e-6 * fabs(lref));
        tens_free(&x);
        tens_free(&y);
    }
}

/* ---- a NULL dinp (first layer) skips the input gradient in every backward ---- */

/* ---- the channel-blocked batch norm and global average pool (layers.h, the _blk kernels) ---- */

/* NCHW to [N][C/B][HW][B] and back. */
static void nchw_to_blk(float *dst, const float *src, int N, int C, int HW, int B) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++)
                dst[(((size_t)n * (C / B) + c / B) * HW + p) * B + c % B] = src[((size_t)n * C + c) * HW + p];
}

/* max |a - b| / max(max |b|, 1e-30) over n floats. */
static double norm_diff(const float *a, const float *b, size_t n) {
    double d = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i])), m = fmax(m, fabs((double)b[i]));
    return d / m;
}

static void same_bits(const void *a, const void *b, size_t bytes, const char *what) {
    if (memcmp(a, b, bytes) != 0) fail_msg("%s: not the same bits", what);
}

/* One shape: the blocked kernels against the NCHW ones moved (forward within FWD_TOL, running
 * statistics and gradients within GRAD_TOL normwise: the sums run in another order; evaluation and
 * the pooling bit for bit), on 1 and 2 threads bit for bit, with the ReLU fused as with it apart
 * (relu_backward into zeros, then the plain batch-norm backward) and the set form as += into zeros,
 * both bit for bit. HW 25 leaves a tail of the 4-way pixel unrolling. */
static void blk_case(int N, int C, int HW, int B) {
    const size_t n = (size_t)N * C * HW;
    fv_rng r;
    fv_rng_seed(&r, 77);
    float *x = fbuf(n), *go = fbuf(n), *gamma = fbuf(C), *beta = fbuf(C);
    fill_uniform(x, n, -2.0f, 3.0f, &r);
    fill_uniform(go, n, -1.0f, 1.0f, &r);
    fill_uniform(gamma, C, 0.5f, 1.5f, &r);
    fill_uniform(beta, C, -0.5f, 0.5f, &r);
    float *xb = fbuf(n), *gob = fbuf(n);
    nchw_to_blk(xb, x, N, C, HW, B);
    nchw_to_blk(gob, go, N, C, HW, B);
    /* the NCHW kernels */
    float *y = fbuf(n), *m = fbuf(C), *is = fbuf(C), *rm = fbuf(C), *rv = fbuf(C), *dx = fbuf(n), *dg = fbuf(C),
          *dbt = fbuf(C);
    for (int c = 0; c < C; c++) rm[c] = 0.1f, rv[c] = 0.9f, dg[c] = 0.0f, dbt[c] = 0.0f;
    memset(dx, 0, n * sizeof(float));
    fv_batchnorm_forward_train(y, m, is, rm, rv, x, gamma, beta, N, C, HW, 0.1f, 1e-5f);
    fv_batchnorm_backward(dx, dg, dbt, go, x, m, is, gamma, N, C, HW);
    float *yr = fbuf(n), *dxr = fbuf(n);
    nchw_to_blk(yr, y, N, C, HW, B);
    nchw_to_blk(dxr, dx, N, C, HW, B);
    /* the blocked ones, on 1 and 2 threads, plain and fused, += and set */
    float *out[2][2], *grad[2][2], *stat[2];
    for (int t = 0; t < 2; t++) {
        fv_set_threads(t + 1);
        for (int relu = 0; relu < 2; relu++) {
            float *yb = fbuf(n), *mb = fbuf(C), *ib = fbuf(C), *rmb = fbuf(C), *rvb = fbuf(C);
            for (int c = 0; c < C; c++) rmb[c] = 0.1f, rvb[c] = 0.9f;
            fv_batchnorm_forward_train_blk(yb, mb, ib, rmb, rvb, xb, gamma, beta, N, C, HW, B, 0.1f, 1e-5f, relu);
            float *g = fbuf(4 * (size_t)C + n);
            memset(g, 0, (4 * (size_t)C + n) * sizeof(float)); /* dgamma, dbeta, then dx += */
            fv_batchnorm_backward_blk(g + 2 * C, 0, g, g + C, gob, relu ? yb : NULL, xb, mb, ib, gamma, N, C, HW, B);
            memcpy(g + 2 * (size_t)C + n, mb, C * sizeof(float)); /* (mean and invstd with the gradients) */
            memcpy(g + 3 * (size_t)C + n, ib, C * sizeof(float));
            out[t][relu] = yb, grad[t][relu] = g;
            if (!relu) {
                char what[96];
                snprintf(what, sizeof what, "blocked batch norm N %d C %d HW %d B %d", N, C, HW, B);
                if (norm_diff(yb, yr, n) > FWD_TOL) fail_msg("%s: output off by %g", what, norm_diff(yb, yr, n));
                if (norm_diff(mb, m, C) > FWD_TOL || norm_diff(ib, is, C) > FWD_TOL) fail_msg("%s: statistics", what);
                if (norm_diff(rmb, rm, C) > FWD_TOL || norm_diff(rvb, rv, C) > FWD_TOL) fail_msg("%s: running", what);
                if (norm_diff(g + 2 * C, dxr, n) > GRAD_TOL) fail_msg("%s: input gradient off by %g", what, norm_diff(g + 2 * C, dxr, n));
                if (norm_diff(g, dg, C) > GRAD_TOL || norm_diff(g + C, dbt, C) > GRAD_TOL) fail_msg("%s: dgamma / dbeta", what);
                stat[t] = rvb;
                free(rmb);
            } else {
                free(rmb), free(rvb);
            }
            free(mb), free(ib);
        }
    }
    fv_set_threads(2);
    for (int relu = 0; relu < 2; relu++) {
        same_bits(out[0][relu], out[1][relu], n * sizeof(float), "blocked batch norm, 1 and 2 threads: output");
        same_bits(grad[0][relu], grad[1][relu], (4 * (size_t)C + n) * sizeof(float),
                  "blocked batch norm, 1 and 2 threads: gradients");
    }
    same_bits(stat[0], stat[1], C * sizeof(float), "blocked batch norm, 1 and 2 threads: running variance");
    /* fused forward = ReLU of the plain one */
    float *rl = fbuf(n);
    fv_relu_forward(rl, out[1][0], n);
    same_bits(rl, out[1][1], n * sizeof(float), "blocked batch norm + ReLU forward");
    /* fused backward = ReLU's backward into zeros, then the batch norm's; and set = += into zeros */
    float *mb = grad[1][0] + 2 * (size_t)C + n, *ib = mb + C;
    float *gr = fbuf(n);
    memset(gr, 0, n * sizeof(float));
    fv_relu_backward(gr, gob, out[1][1], n);
    for (int set = 0; set < 2; set++) {
        float *g = fbuf(2 * (size_t)C + n);
        memset(g, 0, 2 * (size_t)C * sizeof(float));
        for (size_t i = 0; i < n; i++) g[2 * C + i] = set ? NAN : 0.0f;
        fv_batchnorm_backward_blk(g + 2 * C, set, g, g + C, gr, NULL, xb, mb, ib, gamma, N, C, HW, B);
        same_bits(g, grad[1][1], (2 * (size_t)C + n) * sizeof(float),
                  set ? "blocked batch norm: set form" : "blocked batch norm + ReLU backward");
        free(g);
    }
    /* evaluation and the global average pool: the NCHW bits, moved */
    float *ye = fbuf(n), *yeb = fbuf(n), *yer = fbuf(n);
    fv_batchnorm_forward_eval(ye, x, gamma, beta, rm, rv, N, C, HW, 1e-5f);
    fv_batchnorm_forward_eval_blk(yeb, xb, gamma, beta, rm, rv, N, C, HW, B, 1e-5f);
    nchw_to_blk(yer, ye, N, C, HW, B);
    same_bits(yeb, yer, n * sizeof(float), "blocked batch norm, evaluation");
    float *p = fbuf((size_t)N * C), *pb = fbuf((size_t)N * C), *dp = fbuf((size_t)N * C);
    fill_uniform(dp, (size_t)N * C, -1.0f, 1.0f, &r);
    fv_gap_forward(p, x, N, C, HW);
    fv_gap_forward_blk(pb, xb, N, C, HW, B);
    same_bits(p, pb, (size_t)N * C * sizeof(float), "blocked global average pool");
    float *gx = fbuf(n), *gxb = fbuf(n), *gxr = fbuf(n);
    fill_uniform(gx, n, -1.0f, 1.0f, &r);
    nchw_to_blk(gxb, gx, N, C, HW, B); /* += onto the same start */
    fv_gap_backward(gx, dp, N, C, HW);
    fv_gap_backward_blk(gxb, dp, N, C, HW, B);
    nchw_to_blk(gxr, gx, N, C, HW, B);
    same_bits(gxb, gxr, n * sizeof(float), "blocked global average pool, backward");
    for (int t = 0; t < 2; t++) free(out[t][0]), free(out[t][1]), free(grad[t][0]), free(grad[t][1]), free(stat[t]);
    free(x), free(go), free(gamma), free(beta), free(xb), free(gob), free(y), free(m), free(is), free(rm), free(rv);
    free(dx), free(dg), free(dbt), free(yr), free(dxr), free(rl), free(gr), free(ye), free(yeb), free(yer);
    free(p), free(pb), free(dp), free(gx), free(gxb), free(gxr);
}

static void test_blocked_kernels(void **state) {
    (void)state;
    blk_case(3, 32, 25, 16);
    blk_case(3, 32, 25, 8);
    blk_case(64, 16, 64, 16); /* enough work for both threads */
    blk_case(2, 16, 3, 16);   /* fewer pixels than the unrolling */
}

/* One case of test_set_forms: batch norm of N x C x HW with the ReLU after it or not. */
static void bn_set_case(int N, int C, int HW, int relu, fv_rng *r) {
    const size_t n = (size_t)N * C * HW;
    float *x = fv_malloc(n * sizeof(float)), *g = fv_malloc(n * sizeof(float)), *y = fv_malloc(n * sizeof(float));
    float *d1 = fv_calloc(n, sizeof(float)), *d2 = fv_malloc(n * sizeof(float));
    float *gam = fv_malloc((size_t)C * sizeof(float)), *bet = fv_malloc((size_t)C * sizeof(float));
    float *mean = fv_malloc((size_t)C * sizeof(float)), *inv = fv_malloc((size_t)C * sizeof(float));
    float *rm = fv_calloc((size_t)C, sizeof(float)), *rv = fv_calloc((size_t)C, sizeof(float));
    float *dg = fv_calloc(4 * (size_t)C, sizeof(float));
    fill_uniform(x, n, -1.0f, 1.0f, r);
    fill_uniform(g, n, -1.0f, 1.0f, r);
    for (size_t i = 0; i < n; i += 7) g[i] = (i / 7) % 2 ? -0.0f : 0.0f; /* signed zeros too */
    fill_uniform(gam, (size_t)C, 0.5f, 1.5f, r);
    fill_uniform(bet, (size_t)C, -0.5f, 0.5f, r);
    fv_batchnorm_forward_train_relu(y, mean, inv, rm, rv, x, gam, bet, N, C, HW, 0.1f, 1e-5f);
    for (size_t i = 0; i < n; i++) d2[i] = NAN;
    if (relu) {
        fv_batchnorm_backward_relu(d1, dg, dg + C, g, y, x, mean, inv, gam, N, C, HW);
        fv_batchnorm_backward_set(d2, dg + 2 * C, dg + 3 * C, g, y, x, mean, inv, gam, N, C, HW);
    } else {
        fv_batchnorm_backward(d1, dg, dg + C, g, x, mean, inv, gam, N, C, HW);
        fv_batchnorm_backward_set(d2, dg + 2 * C, dg + 3 * C, g, NULL, x, mean, inv, gam, N, C, HW);
    }
    if (memcmp(d1, d2, n * sizeof(float)) != 0 || memcmp(dg, dg + 2 * C, 2 * (size_t)C * sizeof(float)) != 0)
        fail_msg("batch norm %dx%dx%d (ReLU %d): the set form differs from += into zeros", N, C, HW, relu);
    free(x), free(g), free(y), free(d1), free(d2), free(gam), free(bet), free(mean), free(inv), free(rm), free(rv),
        free(dg);
}

/* The "set" forms of the backward kernels (layers.h: net.c uses them where a node is the only
 * reader of its input, so that gradient buffer is never zeroed) write exactly what their += form
 * leaves in a zeroed buffer, over a buffer of NaNs: batch norm with and without its ReLU, on a
 * channel small enough for the whole-channel ReLU buffer and on one too large for it (2 x 1.1M
 * values), at 2 threads; the fused add + ReLU with either side set. */
static void test_set_forms(void **state) {
    (void)state;
    fv_rng r;
    fv_rng_seed(&r, 81);
    for (int relu = 0; relu < 2; relu++) {
        bn_set_case(4, 3, 50, relu, &r);
        bn_set_case(8, 16, 1024, relu, &r);
    }
    bn_set_case(2, 1, 1100000, 1, &r);
    enum { n = 5000 };
    float *a = fv_malloc(4 * n * sizeof(float)), *g = a + n, *y = a + 2 * n, *d = a + 3 * n;
    float *da1 = fv_malloc(n * sizeof(float)), *da2 = fv_malloc(n * sizeof(float));
    float *db1 = fv_malloc(n * sizeof(float)), *db2 = fv_malloc(n * sizeof(float));
    fill_uniform(a, n, -1.0f, 1.0f, &r);
    fill_uniform(g, n, -1.0f, 1.0f, &r);
    fill_uniform(d, n, -1.0f, 1.0f, &r);
    for (size_t i = 0; i < n; i += 5) g[i] = -0.0f;
    fv_add_relu_forward(y, a, d, n);
    for (int side = 0; side < 2; side++) { /* side 0: da set, db added onto d; side 1 the other way */
        float *acc1 = side ? da1 : db1, *acc2 = side ? da2 : db2, *zero1 = side ? db1 : da1, *set2 = side ? db2 : da2;
        memcpy(acc1, d, n * sizeof(float));
        memcpy(acc2, d, n * sizeof(float));
        memset(zero1, 0, n * sizeof(float));
        for (size_t i = 0; i < n; i++) set2[i] = NAN;
        fv_add_relu_backward(da1, 0, db1, 0, g, y, n);
        fv_add_relu_backward(da2, side == 0, db2, side == 1, g, y, n);
        if (memcmp(da1, da2, n * sizeof(float)) != 0 || memcmp(db1, db2, n * sizeof(float)) != 0)
            fail_msg("add + ReLU backward with side %d set differs from += into zeros", side);
    }
    free(a), free(da1), free(da2), free(db1), free(db2);
}

static void test_null_dinp(void **state) {
    (void)state;
    enum { N = 2, C = 3, H = 6, W = 6, HW = H * W, n = N * C * HW };
    fv_rng r;
    fv_rng_seed(&r, 77);
    float x[n], g[n], out[n], mean[C], invstd[C], rm[C] = {0}, rv[C] = {0};
    float gamma[C] = {1.0f, 0.5f, 2.0f}, beta[C] = {0}, dg1[C] = {0}, db1[C] = {0};
    float dg2[C] = {0}, db2[C] = {0}, dx[n] = {0};
    int32_t am[n];
    uint8_t mask[n];
    fill_uniform(x, n, -1.0f, 1.0f, &r);
    fill_uniform(g, n, -1.0f, 1.0f, &r);
    fv_batchnorm_forward_train(out, mean, invstd, rm, rv, x, gamma, beta, N, C, HW, 0.1f, 1e-5f);
    fv_batchnorm_backward(dx, dg1, db1, g, x, mean, invstd, gamma, N, C, HW);
    fv_batchnorm_backward(NULL, dg2, db2, g, x, mean, invstd, gamma, N, C, HW);
    assert_memory_equal(dg1, dg2, sizeof dg1);
    assert_memory_equal(db1, db2, sizeof db1);
    /* the rest have no parameters: they must simply return */
    fv_maxpool_forward(out, am, x, N, C, H, W, 2, 2, 0);
    fv_maxpool_backward(NULL, g, am, N, C, H, W, 2, 2, 0);
    fv_avgpool_backward(NULL, g, N, C, H, W, 2, 2, 0);
    fv_gap_backward(NULL, g, N, C, HW);
    fv_relu_backward(NULL, g, x, n);
    fv_sigmoid_backward(NULL, g, x, n);
    fv_tanh_backward(NULL, g, x, n);
    fv_dropout_forward(out, mask, x, n, 0.5f, &r);
    fv_dropout_backward(NULL, g, mask, n, 0.5f);
    fv_upsample_backward(NULL, g, N, C, 3, 3, 2);
}

/* ---- transformer token ops (transformer.c) ----
 * Same tolerances as above (FWD_TOL, GRAD_TOL against central differences of the double
 * reference) on small shapes, which run on one thread. The shapes big enough to split over
 * threads are checked forward against the double reference and for bitwise-identical results
 * (forward and every gradient) on 1 and 2 threads: the split is the only thing they add. */

typedef struct {
    int R, D;
    double eps;
} ln_ctx;

static void ref_layernorm(double *out, double *const *in, const void *ctx) {
    const ln_ctx *p = ctx;
    for (int r = 0; r < p->R; r++) {
        const double *x = in[0] + (size_t)r * p->D;
        double m = 0.0, v = 0.0;
        for (int d = 0; d < p->D; d++) m += x[d];
        m /= p->D;
        for (int d = 0; d < p->D; d++) v += (x[d] - m) * (x[d] - m);
        v /= p->D;
        for (int d = 0; d < p->D; d++)
            out[(size_t)r * p->D + d] = (x[d] - m) / sqrt(v + p->eps) * in[1][d] + in[2][d];
    }
}

static void check_layernorm(int R, int D) {
    char what[96], name[128];
    snprintf(what, sizeof what, "layernorm R%d D%d", R, D);
    const ln_ctx p = {R, D, 1e-5};
    const size_t n = (size_t)R * D;
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(R * 11 + D));
    tens x = tens_new(n, &r), w = tens_new((size_t)D, &r), b = tens_new((size_t)D, &r);
    for (size_t i = 0; i < n; i++) x.f[i] = 2.0f * x.f[i] + 0.5f; /* mean and scale away from 0/1 */
    tens_sync(&x);
    float *out = fbuf(n), *G = fbuf(n), *mean = fbuf((size_t)R), *rstd = fbuf((size_t)R);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, n), *ref = fv_malloc(n * sizeof(double));
    double *in[3] = {x.d, w.d, b.d};
    fv_layernorm_forward(out, mean, rstd, x.f, w.f, b.f, R, D, (float)p.eps);
    check_guard(out, n, what), check_guard(mean, (size_t)R, what), check_guard(rstd, (size_t)R, what);
    ref_layernorm(ref, in, &p);
    check_fwd(what, out, ref, n);
    fv_layernorm_backward(x.grad, w.grad, b.grad, G, x.f, mean, rstd, w.f, R, D);
    snprintf(name, sizeof name, "%s dinp", what);
    check_tens_grad(name, &x, ref_layernorm, &p, in, 0, Gd, n);
    snprintf(name, sizeof name, "%s dw", what);
    check_tens_grad(name, &w, ref_layernorm, &p, in, 1, Gd, n);
    snprintf(name, sizeof name, "%s db", what);
    check_tens_grad(name, &b, ref_layernorm, &p, in, 2, Gd, n);
    tens_free(&x), tens_free(&w), tens_free(&b);
    free(out), free(G), free(mean), free(rstd), free(Gd), free(ref);
}

static void ref_gelu(double *out, double *const *in, const void *ctx) {
    const size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++) out[i] = 0.5 * in[0][i] * (1.0 + erf(in[0][i] / sqrt(2.0)));
}

static void check_gelu(size_t n) {
    char what[64];
    snprintf(what, sizeof what, "gelu n%zu", n);
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)n);
    tens x = tens_new(n, &r);
    for (size_t i = 0; i < n; i++) x.f[i] *= 4.0f; /* both tails and the bend */
    tens_sync(&x);
    float *out = fbuf(n), *G = fbuf(n);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, n), *ref = fv_malloc(n * sizeof(double)), *in[1] = {x.d};
    fv_gelu_forward(out, x.f, n);
    check_guard(out, n, what);
    ref_gelu(ref, in, &n);
    check_fwd(what, out, ref, n);
    fv_gelu_backward(x.grad, G, x.f, n);
    /* elementwise: the derivative of the double reference at each point, by central differences */
    double *num = fv_malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        const double v = x.d[i];
        const double hi = 0.5 * (v + FD_H) * (1.0 + erf((v + FD_H) / sqrt(2.0)));
        const double lo = 0.5 * (v - FD_H) * (1.0 + erf((v - FD_H) / sqrt(2.0)));
        num[i] = Gd[i] * (hi - lo) / (2.0 * FD_H);
    }
    check_direct_grad(what, "dinp", &x, num);
    fv_gelu_backward(NULL, G, x.f, n); /* NULL dinp: nothing to do, no crash */
    tens_free(&x);
    free(out), free(G), free(Gd), free(ref), free(num);
}

typedef struct {
    int N, D, P;
} tok_ctx;

static void ref_tokens(double *out, double *const *in, const void *ctx) {
    const tok_ctx *p = ctx;
    const int T = p->P + 1;
    for (int n = 0; n < p->N; n++)
        for (int t = 0; t < T; t++)
            for (int d = 0; d < p->D; d++)
                out[((size_t)n * T + t) * p->D + d] =
                    (t == 0 ? in[1][d] : in[0][((size_t)n * p->D + d) * p->P + t - 1]) + in[2][(size_t)t * p->D + d];
}

static void check_tokens(int N, int D, int P) {
    char what[96], name[128];
    snprintf(what, sizeof what, "tokens N%d D%d P%d", N, D, P);
    const tok_ctx p = {N, D, P};
    const size_t n = (size_t)N * (P + 1) * D;
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N + D * 5 + P * 7));
    tens x = tens_new((size_t)N * D * P, &r), cls = tens_new((size_t)D, &r), pos = tens_new((size_t)(P + 1) * D, &r);
    float *out = fbuf(n), *G = fbuf(n);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, n), *ref = fv_malloc(n * sizeof(double));
    double *in[3] = {x.d, cls.d, pos.d};
    fv_tokens_forward(out, x.f, cls.f, pos.f, N, D, P);
    check_guard(out, n, what);
    ref_tokens(ref, in, &p);
    check_fwd(what, out, ref, n);
    fv_tokens_backward(x.grad, cls.grad, pos.grad, G, N, D, P);
    snprintf(name, sizeof name, "%s dinp", what);
    check_tens_grad(name, &x, ref_tokens, &p, in, 0, Gd, n);
    snprintf(name, sizeof name, "%s dcls", what);
    check_tens_grad(name, &cls, ref_tokens, &p, in, 1, Gd, n);
    snprintf(name, sizeof name, "%s dpos", what);
    check_tens_grad(name, &pos, ref_tokens, &p, in, 2, Gd, n);
    tens_free(&x), tens_free(&cls), tens_free(&pos);
    free(out), free(G), free(Gd), free(ref);
}

typedef struct {
    int N, T, D, t;
} sel_ctx;

static void ref_select(double *out, double *const *in, const void *ctx) {
    const sel_ctx *p = ctx;
    for (int n = 0; n < p->N; n++)
        for (int d = 0; d < p->D; d++) out[(size_t)n * p->D + d] = in[0][((size_t)n * p->T + p->t) * p->D + d];
}

static void check_select(int N, int T, int D, int t) {
    char what[96];
    snprintf(what, sizeof what, "token_select N%d T%d D%d t%d", N, T, D, t);
    const sel_ctx p = {N, T, D, t};
    const size_t n = (size_t)N * D;
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N + T + D + t));
    tens x = tens_new((size_t)N * T * D, &r);
    float *out = fbuf(n), *G = fbuf(n);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, n), *ref = fv_malloc(n * sizeof(double)), *in[1] = {x.d};
    fv_token_select_forward(out, x.f, N, T, D, t);
    check_guard(out, n, what);
    ref_select(ref, in, &p);
    check_fwd(what, out, ref, n);
    fv_token_select_backward(x.grad, G, N, T, D, t);
    check_tens_grad(what, &x, ref_select, &p, in, 0, Gd, n);
    tens_free(&x);
    free(out), free(G), free(Gd), free(ref);
}

typedef struct {
    int N, T, D, H;
} att_ctx;

static void ref_attention(double *out, double *const *in, const void *ctx) {
    const att_ctx *p = ctx;
    const int T = p->T, D = p->D, dh = D / p->H, ld = 3 * D;
    double *s = fv_malloc((size_t)T * sizeof(double));
    for (int n = 0; n < p->N; n++)
        for (int h = 0; h < p->H; h++)
            for (int i = 0; i < T; i++) {
                const double *q = in[0] + ((size_t)n * T + i) * ld + h * dh;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j < T; j++) {
                    const double *k = in[0] + ((size_t)n * T + j) * ld + D + h * dh;
                    double a = 0.0;
                    for (int e = 0; e < dh; e++) a += q[e] * k[e];
                    s[j] = a / sqrt((double)dh);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < T; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < dh; e++) {
                    double o = 0.0;
                    for (int j = 0; j < T; j++) o += s[j] / sum * in[0][((size_t)n * T + j) * ld + 2 * D + h * dh + e];
                    out[((size_t)n * T + i) * D + h * dh + e] = o;
                }
            }
    free(s);
}

/* numeric != 0: gradients against central differences; always: the forward against the reference. */
static void check_attention_ex(int N, int T, int D, int H, float amp, int numeric, float *out_f, float *dqkv_f) {
    char what[96];
    snprintf(what, sizeof what, "attention N%d T%d D%d H%d", N, T, D, H);
    const att_ctx p = {N, T, D, H};
    const size_t n = (size_t)N * T * D, nq = (size_t)N * T * 3 * D, na = (size_t)N * H * T * T;
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 3 + T * 5 + D * 7 + H));
    tens qkv = tens_new(nq, &r);
    for (size_t i = 0; i < nq; i++) qkv.f[i] *= amp; /* amp sets how peaked the softmax is */
    tens_sync(&qkv);
    float *out = fbuf(n), *G = fbuf(n), *att = fbuf(na), *scratch = fbuf(na);
    fill_uniform(G, n, -1.0f, 1.0f, &r);
    double *Gd = to_double(G, n), *ref = fv_malloc(n * sizeof(double)), *in[1] = {qkv.d};
    fv_attention_forward(out, att, qkv.f, N, T, D, H);
    check_guard(out, n, what), check_guard(att, na, what);
    ref_attention(ref, in, &p);
    check_fwd(what, out, ref, n);
    for (size_t i = 0; i < (size_t)N * H * T; i++) { /* each probability row sums to 1 */
        double s = 0.0;
        for (int j = 0; j < T; j++) s += att[i * T + j];
        assert_true(fabs(s - 1.0) < 1e-5);
    }
    fv_attention_backward(qkv.grad, G, qkv.f, att, scratch, N, T, D, H);
    check_guard(scratch, na, what);
    if (numeric) check_tens_grad(what, &qkv, ref_attention, &p, in, 0, Gd, n);
    if (out_f) memcpy(out_f, out, n * sizeof(float));
    if (dqkv_f) memcpy(dqkv_f, qkv.grad, nq * sizeof(float));
    tens_free(&qkv);
    free(out), free(G), free(att), free(scratch), free(Gd), free(ref);
}

static void test_transformer_ops(void **state) {
    (void)state;
    check_layernorm(6, 10);
    check_layernorm(1, 3);
    check_layernorm(7, 48);
    check_gelu(40);
    check_gelu((size_t)1 << 16); /* the threaded loop */
    check_tokens(2, 3, 4);
    check_tokens(3, 5, 9);
    check_select(3, 5, 4, 0);
    check_select(2, 4, 3, 2);
    check_attention_ex(2, 5, 12, 2, 1.0f, 1, NULL, NULL);
    check_attention_ex(1, 7, 9, 3, 3.0f, 1, NULL, NULL); /* peaked softmax */
    check_attention_ex(2, 1, 4, 1, 1.0f, 1, NULL, NULL); /* one token: attention is the identity on v */
    check_attention_ex(3, 6, 8, 4, 1.0f, 1, NULL, NULL); /* head width 2 */
}

/* The shapes big enough to split over threads: the same bits on 1 and on 2 threads. */
static void test_transformer_threads(void **state) {
    (void)state;
    const int N = 4, T = 65, D = 192, H = 3;
    const size_t n = (size_t)N * T * D, nq = 3 * n, P = (size_t)T - 1;
    float *o[2], *g[2], *lo[2], *lg[2], *to[2], *tg[2];
    fv_rng r;
    fv_rng_seed(&r, 77);
    float *x = fbuf(nq), *G = fbuf(n), *w = fbuf((size_t)D), *b = fbuf((size_t)D), *pos = fbuf(n / N);
    fill_uniform(x, nq, -1.0f, 1.0f, &r), fill_uniform(G, n, -1.0f, 1.0f, &r);
    fill_uniform(w, (size_t)D, 0.5f, 1.5f, &r), fill_uniform(b, (size_t)D, -0.5f, 0.5f, &r);
    fill_uniform(pos, n / N, -0.1f, 0.1f, &r);
    for (int k = 0; k < 2; k++) {
        fv_set_threads(k + 1);
        o[k] = fv_calloc(n, 4), g[k] = fv_calloc(nq, 4);
        check_attention_ex(N, T, D, H, 1.0f, 0, o[k], g[k]);
        /* layer norm on N*T rows of D, and the tokens op on a 8x8 patch grid */
        float *mean = fv_calloc((size_t)N * T, 4), *rstd = fv_calloc((size_t)N * T, 4);
        lo[k] = fv_calloc(n, 4), lg[k] = fv_calloc(n + 2 * (size_t)D, 4);
        fv_layernorm_forward(lo[k], mean, rstd, x, w, b, N * T, D, 1e-5f);
        fv_layernorm_backward(lg[k], lg[k] + n, lg[k] + n + D, G, x, mean, rstd, w, N * T, D);
        to[k] = fv_calloc(n, 4), tg[k] = fv_calloc((size_t)N * D * P + D + n / N, 4);
        fv_tokens_forward(to[k], x, w, pos, N, D, (int)P);
        fv_tokens_backward(tg[k], tg[k] + (size_t)N * D * P, tg[k] + (size_t)N * D * P + D, G, N, D, (int)P);
        free(mean), free(rstd);
    }
    fv_set_threads(2);
    assert_memory_equal(o[0], o[1], n * 4);
    assert_memory_equal(g[0], g[1], nq * 4);
    assert_memory_equal(lo[0], lo[1], n * 4);
    assert_memory_equal(lg[0], lg[1], (n + 2 * (size_t)D) * 4);
    assert_memory_equal(to[0], to[1], n * 4);
    assert_memory_equal(tg[0], tg[1], ((size_t)N * D * P + D + n / N) * 4);
    /* and the layer-norm forward of the big shape against the double reference */
    const ln_ctx p = {N * T, D, 1e-5};
    double *xd = to_double(x, n), *wd = to_double(w, (size_t)D), *bd = to_double(b, (size_t)D);
    double *ref = fv_malloc(n * sizeof(double)), *in[3] = {xd, wd, bd};
    ref_layernorm(ref, in, &p);
    check_fwd("layernorm threaded", lo[1], ref, n);
    for (int k = 0; k < 2; k++) free(o[k]), free(g[k]), free(lo[k]), free(lg[k]), free(to[k]), free(tg[k]);
    free(x), free(G), free(w), free(b), free(pos), free(xd), free(wd), free(bd), free(ref);
}

/* ---- determinism: the same inputs twice with 2 threads give the same bits ---- */

static void lenet_like_pass(float *outs, float *grads, const float *x, const float *w1,
                            const float *b1, const float *w2, const float *b2, const float *gamma,
                            const float *beta, const float *G, float *scratch, int N) {
    fv_conv2d_shape s1, s2;
    fv_conv2d_shape_init(&s1, N, 1, 28, 28, 6, 5, 1, 2, 1);
    fv_conv2d_shape_init(&s2, N, 6, 14, 14, 16, 5, 1, 0, 1);
    const size_t n1 = (size_t)N * 6 * 28 * 28, n1p = n1 / 4, n2 = (size_t)N * 16 * 10 * 10;
    float *a1 = fv_calloc(n1, 4), *p1 = fv_calloc(n1p, 4), *a2 = fv_calloc(n2, 4);
    float *bn = outs, *mean = fv_calloc(16, 4), *inv = fv_calloc(16, 4);
    float rm[16] = {0}, rv[16] = {0};
    float *d1 = fv_calloc(n1, 4), *dr1 = fv_calloc(n1, 4), *dp1 = fv_calloc(n1p, 4);
    float *d2 = fv_calloc(n2, 4);
    int32_t *am = fv_calloc(n1p, 4);
    fv_conv2d_forward(a1, x, w1, b1, scratch, &s1);
    fv_relu_forward(a1, a1, n1);
    fv_maxpool_forward(p1, am, a1, N, 6, 28, 28, 2, 2, 0);
    fv_conv2d_forward(a2, p1, w2, b2, scratch, &s2);
    fv_batchnorm_forward_train(bn, mean, inv, rm, rv, a2, gamma, beta, N, 16, 100, 0.1f, 1e-5f);
    float *dgamma = grads, *dbeta = grads + 16, *dw2 = grads + 32, *db2 = dw2 + 16 * 6 * 25;
    float *dw1 = db2 + 16, *db1 = dw1 + 6 * 25;
    fv_batchnorm_backward(d2, dgamma, dbeta, G, a2, mean, inv, gamma, N, 16, 100);
    fv_conv2d_backward(dp1, dw2, db2, d2, p1, w2, scratch, &s2);
    fv_maxpool_backward(d1, dp1, am, N, 6, 28, 28, 2, 2, 0);
    fv_relu_backward(dr1, d1, a1, n1);
    fv_conv2d_backward(NULL, dw1, db1, dr1, x, w1, scratch, &s1);
    free(a1), free(p1), free(a2), free(mean), free(inv), free(d1), free(dr1), free(dp1), free(d2);
    free(am);
}

static void test_determinism(void **state) {
    (void)state;
    const int N = 16;
    fv_rng r;
    fv_rng_seed(&r, 2024);
    const size_t nx = (size_t)N * 28 * 28, nout = (size_t)N * 16 * 100;
    const size_t ngrad = 32 + 16 * 6 * 25 + 16 + 6 * 25 + 6;
    float *x = fbuf(nx), *w1 = fbuf(150), *b1 = fbuf(6), *w2 = fbuf(2400), *b2 = fbuf(16);
    float gamma[16], beta[16], *G = fbuf(nout);
    fill_uniform(x, nx, -1, 1, &r), fill_uniform(w1, 150, -0.2f, 0.2f, &r);
    fill_uniform(b1, 6, -0.2f, 0.2f, &r), fill_uniform(w2, 2400, -0.1f, 0.1f, &r);
    fill_uniform(b2, 16, -0.1f, 0.1f, &r), fill_uniform(gamma, 16, 0.5f, 1.5f, &r);
    fill_uniform(beta, 16, -0.5f, 0.5f, &r), fill_uniform(G, nout, -1, 1, &r);
    fv_conv2d_shape s1, s2;
    fv_conv2d_shape_init(&s1, N, 1, 28, 28, 6, 5, 1, 2, 1);
    fv_conv2d_shape_init(&s2, N, 6, 14, 14, 16, 5, 1, 0, 1);
    size_t nscr = fv_conv2d_scratch_floats(&s1);
    if (fv_conv2d_scratch_floats(&s2) > nscr) nscr = fv_conv2d_scratch_floats(&s2);
    float *scratch = fbuf(nscr);
    float *o1 = fv_calloc(nout, 4), *o2 = fv_calloc(nout, 4);
    float *g1 = fv_calloc(ngrad, 4), *g2 = fv_calloc(ngrad, 4);
    lenet_like_pass(o1, g1, x, w1, b1, w2, b2, gamma, beta, G, scratch, N);
    lenet_like_pass(o2, g2, x, w1, b1, w2, b2, gamma, beta, G, scratch, N);
    assert_memory_equal(o1, o2, nout * sizeof(float));
    assert_memory_equal(g1, g2, ngrad * sizeof(float));
    double m = 0.0;
    for (size_t i = 0; i < ngrad; i++) m = fmax(m, fabs(g1[i]));
    assert_true(m > 1e-3); /* the comparison compared something */
    free(x), free(w1), free(b1), free(w2), free(b2), free(G), free(scratch), free(o1), free(o2),
        free(g1), free(g2);
}

int main(void) {
    fv_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects),
        cmocka_unit_test_prestate(test_conv_dense, (void *)&PATHS[PATH_BLAS]),
        cmocka_unit_test_prestate(test_conv_groups, (void *)&PATHS[PATH_BLAS]),
        cmocka_unit_test_prestate(test_conv_pointwise, (void *)&PATHS[PATH_BLAS]),
        cmocka_unit_test_prestate(test_conv_threaded, (void *)&PATHS[PATH_BLAS]),
#ifdef FEDVIM_HAVE_DNNL
        cmocka_unit_test_prestate(test_conv_dense, (void *)&PATHS[PATH_DNNL]),
        cmocka_unit_test_prestate(test_conv_groups, (void *)&PATHS[PATH_DNNL]),
        cmocka_unit_test_prestate(test_conv_pointwise, (void *)&PATHS[PATH_DNNL]),
        cmocka_unit_test_prestate(test_conv_threaded, (void *)&PATHS[PATH_DNNL]),
#endif
        cmocka_unit_test(test_conv_chunked),
        cmocka_unit_test(test_conv_scratch_monotone),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_maxpool_ties_and_padding),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_elementwise_large_and_add),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_single_value),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_pixel_loss),
        cmocka_unit_test(test_null_dinp),
        cmocka_unit_test(test_set_forms),
        cmocka_unit_test(test_blocked_kernels),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_transformer_ops),
        cmocka_unit_test(test_transformer_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
