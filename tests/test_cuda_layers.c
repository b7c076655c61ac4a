/* test_cuda_layers.c: every CUDA kernel of cuda_layers.h against its CPU twin (layers.h, optim.h,
 * data.h) on random inputs, forward and backward. The CPU kernels are themselves checked against
 * double-precision references and numeric gradients in test_layers.c; here the question is only
 * whether the GPU computes the same thing.
 *
 * Every device output carries GUARD bytes past its end (a fixed pattern) that must come back
 * untouched; outputs start as NaN (0xff bytes) so an element the kernel forgot fails the check;
 * every gradient buffer starts from random values on both sides and the check compares the
 * increments (after - before), so it also proves the accumulate (+=) convention. A comparison
 * refuses a CPU reference whose max |.| is below MIN_REF (an all-zero result checks nothing).
 *
 * Convolutions are checked on both GPU paths: cuBLAS + im2col, and cuDNN when the build and the
 * device have it.
 * Tolerances, normwise (max |gpu - cpu| / max |cpu|), and why:
 *   FWD_TOL  2e-5  conv / linear / batch-norm / pooling forward: float sums of up to a few hundred
 *                  terms in another order (cuBLAS tiles, block reductions) and FMA contraction;
 *   GRAD_TOL 1e-4  backward increments: longer sums (over N*OH*OW) and batch-norm's cancellation;
 *   ELEM_TOL 1e-6  element-wise maps, the loss (both sides in double), optimizer steps: a few ulps
 *                  of device libm (expf, tanhf, the optimizer scalars' double cos/pow). Not enough
 *                  for a fused multiply-add where the CPU rounds twice: an increment is compared
 *                  against its own size, so one ulp of a parameter near 1 after six SGD steps of lr
 *                  0.01 already reads 2.7e-6. The kernels compared at this tolerance (optimizers,
 *                  FedProx, sigmoid/tanh/dropout/GAP backward) therefore round as the CPU does
 *                  (IEEE intrinsics that nvcc never fuses), which this tolerance checks;
 *   exact          ReLU, max-pool outputs and argmax, add, upsample forward, the gathered batch
 *                  (same table lookups), dropout's masked values and its backward.
 * The transformer token ops (layer norm, GELU, patch tokens, token selection, attention, the
 * token-wise linear layer) are checked the same way and, in addition, against finite differences
 * of the GPU's own forward; their tolerances are stated at their tests.
 * Exits 77 (skipped) when built without CUDA or when no CUDA device is present. Small shapes:
 * about a second on a GPU.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#ifndef FEDVIM_HAVE_CUDA
int main(void) {
    printf("test_cuda_layers: skipped (this build has no CUDA backend)\n");
    return 77;
}
#else

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/layers.h"
#include "cuda/net.h"
#include "data/data.h"
#include "fv_common.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "rng.h"

#define FWD_TOL 2e-5
#define GRAD_TOL 1e-4
#define ELEM_TOL 1e-6
#define MIN_REF 1e-3
#define GUARD 64
#define GUARD_BYTE 0xa5

static fv_cuda_ctx *X; /* the test's device context, set up in main */

/* ---- device buffers with guards ---- */

/* bytes of h (NULL: `fill` bytes) uploaded into a fresh device buffer followed by GUARD bytes. */
static void *dput_fill(const void *h, size_t bytes, int fill) {
    uint8_t *t = fv_malloc(bytes + GUARD);
    if (h)
        memcpy(t, h, bytes);
    else
        memset(t, fill, bytes);
    memset(t + bytes, GUARD_BYTE, GUARD);
    void *d = fv_cuda_alloc(X, bytes + GUARD);
    fv_cuda_upload(X, d, t, bytes + GUARD);
    free(t);
    return d;
}
static void *dput(const void *h, size_t bytes) { return dput_fill(h, bytes, 0); }
/* An output buffer: NaN floats (0xff bytes) so that a missed element shows. */
static void *dout_buf(size_t bytes) { return dput_fill(NULL, bytes, 0xff); }

/* Download bytes of d into h after checking its guard. */
static void dget(void *h, const void *d, size_t bytes, const char *what) {
    uint8_t *t = fv_malloc(bytes + GUARD);
    fv_cuda_download(X, t, d, bytes + GUARD);
    for (int i = 0; i < GUARD; i++)
        if (t[bytes + i] != GUARD_BYTE) {
            free(t);
            fail_msg("%s: the kernel wrote past the end (guard byte %d changed)", what, i);
        }
    if (h) memcpy(h, t, bytes);
    free(t);
}

/* ---- host data ---- */

static float *rnd(size_t n, float lo, float hi, fv_rng *r) {
    float *f = fv_malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = lo + (hi - lo) * fv_rng_uniform(r);
    return f;
}

static float *dup(const float *f, size_t n) {
    float *g = fv_malloc((n ? n : 1) * sizeof(float));
    memcpy(g, f, n * sizeof(float));
    return g;
}

/* Distinct values 0.01 apart in random order (no ties for max pooling). */
static float *distinct(size_t n, fv_rng *r) {
    int *idx = fv_malloc(n * sizeof(int));
    for (size_t i = 0; i < n; i++) idx[i] = (int)i;
    fv_rng_shuffle_int(r, idx, (int)n);
    float *f = fv_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = 0.01f * (float)(idx[i] - (int)n / 2);
    free(idx);
    return f;
}

/* ---- comparisons ---- */

static void expect_close(const char *what, const float *gpu, const float *cpu, size_t n,
                         double tol) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)gpu[i] - (double)cpu[i]);
        if (d > num || d != d) num = d;
        if (fabs((double)cpu[i]) > den) den = fabs((double)cpu[i]);
    }
    if (!(den >= MIN_REF))
        fail_msg("%s: CPU reference max |.| = %.3g: nothing to compare", what, den);
    const double e = num / den;
    if (!(e <= tol)) fail_msg("%s: GPU vs CPU normwise error %.3g > tolerance %.0e", what, e, tol);
}

/* Compare the increments after - before of a gradient buffer. */
static void expect_close_delta(const char *what, const float *gpu, const float *cpu,
                               const float *before, size_t n, double tol) {
    float *dg = fv_malloc(n * sizeof(float)), *dc = fv_malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        dg[i] = gpu[i] - before[i];
        dc[i] = cpu[i] - before[i];
    }
    expect_close(what, dg, dc, n, tol);
    free(dg);
    free(dc);
}

static void expect_bitwise(const char *what, const void *gpu, const void *cpu, size_t bytes) {
    if (memcmp(gpu, cpu, bytes) != 0)
        fail_msg("%s: GPU and CPU differ (expected bitwise equal)", what);
}

/* ---- conv2d ---- */

/* One conv shape through forward and backward on the CPU and on the GPU, once through the
 * cuBLAS + im2col path and, when this build and device have cuDNN, once through cuDNN.
 * scratch_floats 0: the default amount; otherwise that many (small values force the im2col
 * path's chunk loop). null_dinp: backward without the input gradient. */
static void conv_case(const char *name, int N, int C, int H, int W, int K, int R, int stride,
                      int pad, int groups, int bias, size_t scratch_floats, int null_dinp) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 131 + C * 17 + K * 7 + R + stride * 1000 + groups * 77));
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, N, C, H, W, K, R, stride, pad, groups);
    const size_t in = (size_t)N * C * H * W, wn = (size_t)K * (C / groups) * R * R,
                 on = (size_t)N * K * s.OH * s.OW;
    float *inp = rnd(in, -1, 1, &r), *w = rnd(wn, -1, 1, &r), *b = rnd((size_t)K, -1, 1, &r);
    float *g = rnd(on, -1, 1, &r);
    float *dinp0 = rnd(in, -1, 1, &r), *dw0 = rnd(wn, -1, 1, &r), *db0 = rnd((size_t)K, -1, 1, &r);
    /* CPU */
    float *cscr = fv_malloc((fv_conv2d_scratch_floats(&s) + 1) * sizeof(float));
    float *out_c = fv_malloc(on * sizeof(float));
    fv_conv2d_forward(out_c, inp, w, bias ? b : NULL, cscr, &s);
    float *dinp_c = dup(dinp0, in), *dw_c = dup(dw0, wn), *db_c = dup(db0, (size_t)K);
    fv_conv2d_backward(null_dinp ? NULL : dinp_c, dw_c, bias ? db_c : NULL, g, inp, w, cscr, &s);
    float *out_g = fv_malloc(on * 4), *dinp_g = fv_malloc(in * 4), *dw_g = fv_malloc(wn * 4),
          *db_g = fv_malloc((size_t)K * 4);
    const int paths = fv_cudnn_available(X, NULL, 0) ? 2 : 1;
    for (int path = 0; path < paths; path++) {
        const char *pn = path ? "cudnn" : "im2col";
        fv_cudnn_conv *plan = NULL;
        size_t sbytes;
        if (path) {
            fv_err e;
            plan = fv_cudnn_conv_new(X, &s, (size_t)64 << 20, &e);
            /* ungrouped convs (LeNet-5, ResNet-20) must have a plan; for grouped ones the net
             * falls back to im2col, which the first pass checked */
            if (!plan && groups == 1) fail_msg("conv %s: no cuDNN plan: %s", name, e.msg);
            if (!plan) {
                print_message("conv %s: no cuDNN plan (the net uses im2col): %s\n", name, e.msg);
                continue;
            }
            sbytes = fv_cudnn_conv_workspace(plan);
        } else {
            sbytes = (scratch_floats ? scratch_floats : fv_cuda_conv2d_scratch_floats(&s)) * 4;
        }
        float *d_inp = dput(inp, in * 4), *d_w = dput(w, wn * 4), *d_b = dput(b, (size_t)K * 4);
        float *d_g = dput(g, on * 4), *d_out = dout_buf(on * 4),
              *d_scr = dput(NULL, sbytes ? sbytes : 4);
        float *d_dinp = dput(dinp0, in * 4), *d_dw = dput(dw0, wn * 4),
              *d_db = dput(db0, (size_t)K * 4);
        if (path) {
            fv_cudnn_conv_forward(X, plan, d_out, d_inp, d_w, bias ? d_b : NULL, d_scr);
            fv_cudnn_conv_backward(X, plan, null_dinp ? NULL : d_dinp, d_dw, bias ? d_db : NULL,
                                   d_g, d_inp, d_w, d_scr);
        } else {
            fv_cuda_conv2d_forward(X, d_out, d_inp, d_w, bias ? d_b : NULL, d_scr, sbytes / 4, &s);
            fv_cuda_conv2d_backward(X, null_dinp ? NULL : d_dinp, d_dw, bias ? d_db : NULL, d_g,
                                    d_inp, d_w, d_scr, sbytes / 4, &s);
        }
        char what[160];
        snprintf(what, sizeof what, "conv %s (%s) out", name, pn);
        dget(out_g, d_out, on * 4, what);
        expect_close(what, out_g, out_c, on, FWD_TOL);
        snprintf(what, sizeof what, "conv %s (%s) dinp", name, pn);
        dget(dinp_g, d_dinp, in * 4, what);
        if (null_dinp)
            expect_bitwise(what, dinp_g, dinp0, in * 4);
        else
            expect_close_delta(what, dinp_g, dinp_c, dinp0, in, GRAD_TOL);
        snprintf(what, sizeof what, "conv %s (%s) dw", name, pn);
        dget(dw_g, d_dw, wn * 4, what);
        expect_close_delta(what, dw_g, dw_c, dw0, wn, GRAD_TOL);
        snprintf(what, sizeof what, "conv %s (%s) db", name, pn);
        dget(db_g, d_db, (size_t)K * 4, what);
        if (bias)
            expect_close_delta(what, db_g, db_c, db0, (size_t)K, GRAD_TOL);
        else
            expect_bitwise(what, db_g, db0, (size_t)K * 4);
        snprintf(what, sizeof what, "conv %s (%s) scratch", name, pn);
        dget(NULL, d_scr, sbytes ? sbytes : 4, what);
        void *dev[] = {d_inp, d_w, d_b, d_g, d_out, d_scr, d_dinp, d_dw, d_db};
        for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
        fv_cudnn_conv_destroy(&plan);
        assert_null(plan);
    }
    void *host[] = {inp,   w,      b,    g,    dinp0, dw0,    db0,  cscr,
                    out_c, dinp_c, dw_c, db_c, out_g, dinp_g, dw_g, db_g};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_conv_dense(void **st) {
    (void)st;
    conv_case("3x3 pad 1 bias", 3, 4, 9, 7, 5, 3, 1, 1, 1, 1, 0, 0);
    conv_case("5x5 pad 2 (LeNet conv1)", 4, 1, 28, 28, 6, 5, 1, 2, 1, 1, 0, 0);
    conv_case("5x5 no pad, first layer (no dinp)", 2, 6, 14, 14, 16, 5, 1, 0, 1, 1, 0, 1);
}

static void test_conv_strided_groups(void **st) {
    (void)st;
    conv_case("5x5 stride 2 pad 2 groups 2", 3, 4, 11, 9, 6, 5, 2, 2, 2, 0, 0, 0);
    conv_case("1x1 stride 2 (ResNet shortcut)", 4, 8, 8, 8, 16, 1, 2, 0, 1, 0, 0, 0);
    conv_case("1x1 stride 1 (pointwise)", 3, 8, 5, 5, 12, 1, 1, 0, 1, 1, 0, 0);
}

static void test_conv_depthwise(void **st) {
    (void)st;
    conv_case("depthwise 3x3 stride 2 pad 1", 3, 6, 9, 9, 6, 3, 2, 1, 6, 1, 0, 0);
    conv_case("depthwise 3x3 stride 1 pad 1", 2, 4, 7, 6, 4, 3, 1, 1, 4, 0, 0, 0);
}

/* A scratch for one or two images forces the chunk loop (and dw accumulation across chunks). */
static void test_conv_chunked(void **st) {
    (void)st;
    fv_conv2d_shape one;
    fv_conv2d_shape_init(&one, 1, 4, 9, 7, 5, 3, 1, 1, 1);
    const size_t per = fv_cuda_conv2d_scratch_floats(&one);
    conv_case("3x3 chunks of 1 image", 5, 4, 9, 7, 5, 3, 1, 1, 1, 1, per, 0);
    conv_case("3x3 chunks of 2 images", 5, 4, 9, 7, 5, 3, 1, 1, 1, 1, 2 * per + 3, 0);
    fv_conv2d_shape big, small;
    fv_conv2d_shape_init(&big, 64, 16, 32, 32, 16, 3, 1, 1, 1);
    fv_conv2d_shape_init(&small, 8, 16, 32, 32, 16, 3, 1, 1, 1);
    assert_true(fv_cuda_conv2d_scratch_floats(&small) <= fv_cuda_conv2d_scratch_floats(&big));
}

/* ---- linear ---- */

static void linear_case(int N, int In, int Out, int bias, int null_dinp) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 1000 + In * 10 + Out));
    const size_t ni = (size_t)N * In, nw = (size_t)Out * In, no = (size_t)N * Out;
    float *inp = rnd(ni, -1, 1, &r), *w = rnd(nw, -1, 1, &r), *b = rnd((size_t)Out, -1, 1, &r),
          *g = rnd(no, -1, 1, &r);
    float *dinp0 = rnd(ni, -1, 1, &r), *dw0 = rnd(nw, -1, 1, &r),
          *db0 = rnd((size_t)Out, -1, 1, &r);
    float *out_c = fv_malloc(no * 4), *dinp_c = dup(dinp0, ni), *dw_c = dup(dw0, nw),
          *db_c = dup(db0, (size_t)Out);
    fv_linear_forward(out_c, inp, w, bias ? b : NULL, N, In, Out);
    fv_linear_backward(null_dinp ? NULL : dinp_c, dw_c, bias ? db_c : NULL, g, inp, w, N, In, Out);
    float *d_inp = dput(inp, ni * 4), *d_w = dput(w, nw * 4), *d_b = dput(b, (size_t)Out * 4),
          *d_g = dput(g, no * 4), *d_out = dout_buf(no * 4), *d_dinp = dput(dinp0, ni * 4),
          *d_dw = dput(dw0, nw * 4), *d_db = dput(db0, (size_t)Out * 4);
    fv_cuda_linear_forward(X, d_out, d_inp, d_w, bias ? d_b : NULL, N, In, Out);
    fv_cuda_linear_backward(X, null_dinp ? NULL : d_dinp, d_dw, bias ? d_db : NULL, d_g, d_inp, d_w,
                            N, In, Out);
    float *out_g = fv_malloc(no * 4), *dinp_g = fv_malloc(ni * 4), *dw_g = fv_malloc(nw * 4),
          *db_g = fv_malloc((size_t)Out * 4);
    dget(out_g, d_out, no * 4, "linear out");
    expect_close("linear out", out_g, out_c, no, FWD_TOL);
    dget(dinp_g, d_dinp, ni * 4, "linear dinp");
    if (null_dinp)
        expect_bitwise("linear dinp (NULL: untouched)", dinp_g, dinp0, ni * 4);
    else
        expect_close_delta("linear dinp", dinp_g, dinp_c, dinp0, ni, GRAD_TOL);
    dget(dw_g, d_dw, nw * 4, "linear dw");
    expect_close_delta("linear dw", dw_g, dw_c, dw0, nw, GRAD_TOL);
    dget(db_g, d_db, (size_t)Out * 4, "linear db");
    if (bias)
        expect_close_delta("linear db", db_g, db_c, db0, (size_t)Out, GRAD_TOL);
    else
        expect_bitwise("linear db (no bias: untouched)", db_g, db0, (size_t)Out * 4);
    void *dev[] = {d_inp, d_w, d_b, d_g, d_out, d_dinp, d_dw, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
    void *host[] = {inp,    w,    b,    g,     dinp0,  dw0,  db0, out_c,
                    dinp_c, dw_c, db_c, out_g, dinp_g, dw_g, db_g};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_linear(void **st) {
    (void)st;
    linear_case(5, 37, 11, 1, 0);
    linear_case(64, 400, 120, 1, 0); /* LeNet-5 fc1 */
    linear_case(3, 16, 10, 0, 1);
}

/* ---- pooling ---- */

static void maxpool_case(const char *name, int N, int C, int H, int W, int k, int stride, int pad,
                         int ties) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(H * 100 + k * 10 + stride + pad * 7 + ties));
    const int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    const size_t in = (size_t)N * C * H * W, on = (size_t)N * C * OH * OW;
    float *inp = distinct(in, &r);
    if (ties) {
        for (size_t i = 0; i < in; i++) inp[i] = (float)(fv_rng_below(&r, 3)) - 1.0f;
        inp[in / 3] = NAN;
        inp[in / 2] = NAN;
    }
    float *g = rnd(on, -1, 1, &r), *dinp0 = rnd(in, -1, 1, &r);
    float *out_c = fv_malloc(on * 4), *dinp_c = dup(dinp0, in);
    int32_t *am_c = fv_malloc(on * 4);
    fv_maxpool_forward(out_c, am_c, inp, N, C, H, W, k, stride, pad);
    fv_maxpool_backward(dinp_c, g, am_c, N, C, H, W, k, stride, pad);
    float *d_inp = dput(inp, in * 4), *d_g = dput(g, on * 4), *d_out = dout_buf(on * 4),
          *d_dinp = dput(dinp0, in * 4);
    int32_t *d_am = dput_fill(NULL, on * 4, 0x7b);
    fv_cuda_maxpool_forward(X, d_out, d_am, d_inp, N, C, H, W, k, stride, pad);
    fv_cuda_maxpool_backward(X, d_dinp, d_g, d_am, N, C, H, W, k, stride, pad);
    float *out_g = fv_malloc(on * 4), *dinp_g = fv_malloc(in * 4);
    int32_t *am_g = fv_malloc(on * 4);
    char what[128];
    snprintf(what, sizeof what, "maxpool %s out", name);
    dget(out_g, d_out, on * 4, what);
    expect_bitwise(what, out_g, out_c, on * 4); /* NaN payloads included: both copy the input */
    snprintf(what, sizeof what, "maxpool %s argmax", name);
    dget(am_g, d_am, on * 4, what);
    expect_bitwise(what, am_g, am_c, on * 4);
    snprintf(what, sizeof what, "maxpool %s dinp", name);
    dget(dinp_g, d_dinp, in * 4, what);
    expect_close_delta(what, dinp_g, dinp_c, dinp0, in, ELEM_TOL);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp),
        fv_cuda_free(X, d_am);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(am_c), free(out_g),
        free(dinp_g);
    free(am_g);
}

static void test_maxpool(void **st) {
    (void)st;
    maxpool_case("2x2 stride 2", 3, 4, 10, 8, 2, 2, 0, 0);
    maxpool_case("3x3 stride 2 pad 1 (overlapping)", 2, 3, 9, 11, 3, 2, 1, 0);
    maxpool_case("3x3 stride 1 pad 1, ties and NaN", 2, 2, 7, 7, 3, 1, 1, 1);
}

static void avgpool_case(int N, int C, int H, int W, int k, int stride, int pad) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(H * 100 + k * 10 + stride + pad));
    const int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    const size_t in = (size_t)N * C * H * W, on = (size_t)N * C * OH * OW;
    float *inp = rnd(in, -1, 1, &r), *g = rnd(on, -1, 1, &r), *dinp0 = rnd(in, -1, 1, &r);
    float *out_c = fv_malloc(on * 4), *dinp_c = dup(dinp0, in);
    fv_avgpool_forward(out_c, inp, N, C, H, W, k, stride, pad);
    fv_avgpool_backward(dinp_c, g, N, C, H, W, k, stride, pad);
    float *d_inp = dput(inp, in * 4), *d_g = dput(g, on * 4), *d_out = dout_buf(on * 4),
          *d_dinp = dput(dinp0, in * 4);
    fv_cuda_avgpool_forward(X, d_out, d_inp, N, C, H, W, k, stride, pad);
    fv_cuda_avgpool_backward(X, d_dinp, d_g, N, C, H, W, k, stride, pad);
    float *out_g = fv_malloc(on * 4), *dinp_g = fv_malloc(in * 4);
    dget(out_g, d_out, on * 4, "avgpool out");
    expect_close("avgpool out", out_g, out_c, on, FWD_TOL);
    dget(dinp_g, d_dinp, in * 4, "avgpool dinp");
    expect_close_delta("avgpool dinp", dinp_g, dinp_c, dinp0, in, GRAD_TOL);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(out_g), free(dinp_g);
}

static void test_avgpool_gap(void **st) {
    (void)st;
    avgpool_case(2, 3, 8, 8, 2, 2, 0);
    avgpool_case(2, 3, 9, 7, 3, 2, 1);
    avgpool_case(1, 2, 6, 6, 3, 1, 1);
    fv_rng r;
    fv_rng_seed(&r, 5);
    const int N = 5, C = 7, HW = 64;
    const size_t in = (size_t)N * C * HW, on = (size_t)N * C;
    float *inp = rnd(in, -1, 1, &r), *g = rnd(on, -1, 1, &r), *dinp0 = rnd(in, -1, 1, &r);
    float *out_c = fv_malloc(on * 4), *dinp_c = dup(dinp0, in);
    fv_gap_forward(out_c, inp, N, C, HW);
    fv_gap_backward(dinp_c, g, N, C, HW);
    float *d_inp = dput(inp, in * 4), *d_g = dput(g, on * 4), *d_out = dout_buf(on * 4),
          *d_dinp = dput(dinp0, in * 4);
    fv_cuda_gap_forward(X, d_out, d_inp, N, C, HW);
    fv_cuda_gap_backward(X, d_dinp, d_g, N, C, HW);
    float *out_g = fv_malloc(on * 4), *dinp_g = fv_malloc(in * 4);
    dget(out_g, d_out, on * 4, "gap out");
    expect_close("gap out", out_g, out_c, on, FWD_TOL);
    dget(dinp_g, d_dinp, in * 4, "gap dinp");
    expect_close_delta("gap dinp", dinp_g, dinp_c, dinp0, in, ELEM_TOL);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(out_g), free(dinp_g);
}

/* ---- element-wise ---- */

typedef void (*cpu_fwd)(float *, const float *, size_t);
typedef void (*cpu_bwd)(float *, const float *, const float *, size_t);
typedef void (*gpu_fwd)(const fv_cuda_ctx *, float *, const float *, size_t);
typedef void (*gpu_bwd)(const fv_cuda_ctx *, float *, const float *, const float *, size_t);

static void act_case(const char *name, cpu_fwd cf, cpu_bwd cb, gpu_fwd gf, gpu_bwd gb, int exact) {
    fv_rng r;
    fv_rng_seed(&r, 11);
    const size_t n = 100003; /* more than one grid-stride pass */
    float *inp = rnd(n, -4, 4, &r), *g = rnd(n, -1, 1, &r), *dinp0 = rnd(n, -1, 1, &r);
    float *out_c = fv_malloc(n * 4), *dinp_c = dup(dinp0, n);
    cf(out_c, inp, n);
    cb(dinp_c, g, out_c, n);
    float *d_inp = dput(inp, n * 4), *d_g = dput(g, n * 4), *d_out = dout_buf(n * 4),
          *d_dinp = dput(dinp0, n * 4);
    gf(X, d_out, d_inp, n);
    gb(X, d_dinp, d_g, d_out, n);
    float *out_g = fv_malloc(n * 4), *dinp_g = fv_malloc(n * 4);
    char what[64];
    snprintf(what, sizeof what, "%s out", name);
    dget(out_g, d_out, n * 4, what);
    if (exact)
        expect_bitwise(what, out_g, out_c, n * 4);
    else
        expect_close(what, out_g, out_c, n, ELEM_TOL);
    snprintf(what, sizeof what, "%s dinp", name);
    dget(dinp_g, d_dinp, n * 4, what);
    expect_close_delta(what, dinp_g, dinp_c, dinp0, n, ELEM_TOL);
    /* a NULL dinp is accepted and writes nothing */
    gb(X, NULL, d_g, d_out, n);
    fv_cuda_ctx_sync(X);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(out_g), free(dinp_g);
}

static void test_activations(void **st) {
    (void)st;
    act_case("relu", fv_relu_forward, fv_relu_backward, fv_cuda_relu_forward, fv_cuda_relu_backward,
             1);
    act_case("sigmoid", fv_sigmoid_forward, fv_sigmoid_backward, fv_cuda_sigmoid_forward,
             fv_cuda_sigmoid_backward, 0);
    act_case("tanh", fv_tanh_forward, fv_tanh_backward, fv_cuda_tanh_forward, fv_cuda_tanh_backward,
             0);
}

static void test_add(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 12);
    const size_t n = 5003;
    float *a = rnd(n, -1, 1, &r), *b = rnd(n, -1, 1, &r), *g = rnd(n, -1, 1, &r),
          *da0 = rnd(n, -1, 1, &r), *db0 = rnd(n, -1, 1, &r);
    float *out_c = fv_malloc(n * 4), *out_g = fv_malloc(n * 4), *da_g = fv_malloc(n * 4),
          *db_g = fv_malloc(n * 4), *da_c = fv_malloc(n * 4), *db_c = fv_malloc(n * 4);
    fv_add_forward(out_c, a, b, n);
    for (size_t i = 0; i < n; i++) da_c[i] = da0[i] + g[i], db_c[i] = db0[i] + g[i];
    float *d_a = dput(a, n * 4), *d_b = dput(b, n * 4), *d_g = dput(g, n * 4),
          *d_out = dout_buf(n * 4), *d_da = dput(da0, n * 4), *d_db = dput(db0, n * 4);
    fv_cuda_add_forward(X, d_out, d_a, d_b, n);
    fv_cuda_add_backward(X, d_da, d_db, d_g, n);
    dget(out_g, d_out, n * 4, "add out");
    expect_bitwise("add out", out_g, out_c, n * 4);
    dget(da_g, d_da, n * 4, "add da");
    expect_bitwise("add da", da_g, da_c, n * 4);
    dget(db_g, d_db, n * 4, "add db");
    expect_bitwise("add db", db_g, db_c, n * 4);
    /* x + x: both gradients land in one buffer, twice */
    fv_cuda_upload(X, d_da, da0, n * 4);
    fv_cuda_add_backward(X, d_da, d_da, d_g, n);
    dget(da_g, d_da, n * 4, "add aliased");
    for (size_t i = 0; i < n; i++) da_c[i] = (da0[i] + g[i]) + g[i];
    expect_bitwise("add aliased (x + x)", da_g, da_c, n * 4);
    fv_cuda_free(X, d_a), fv_cuda_free(X, d_b), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out),
        fv_cuda_free(X, d_da);
    fv_cuda_free(X, d_db);
    free(a), free(b), free(g), free(da0), free(db0), free(out_c), free(out_g), free(da_g),
        free(db_g);
    free(da_c), free(db_c);
}

/* ---- batch norm ---- */

static void bn_case(const char *name, int N, int C, int HW) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 7 + C * 3 + HW));
    const size_t n = (size_t)N * C * HW, c = (size_t)C;
    float *inp = rnd(n, -2, 3, &r), *gamma = rnd(c, 0.5f, 1.5f, &r),
          *beta = rnd(c, -0.5f, 0.5f, &r);
    float *rm0 = rnd(c, -0.1f, 0.1f, &r), *rv0 = rnd(c, 0.9f, 1.1f, &r), *g = rnd(n, -1, 1, &r);
    float *dinp0 = rnd(n, -1, 1, &r), *dg0 = rnd(c, -1, 1, &r), *dbt0 = rnd(c, -1, 1, &r);
    const float mom = 0.1f, eps = 1e-5f;
    /* CPU */
    float *out_c = fv_malloc(n * 4), *mean_c = fv_malloc(c * 4), *is_c = fv_malloc(c * 4),
          *rm_c = dup(rm0, c), *rv_c = dup(rv0, c), *dinp_c = dup(dinp0, n), *dg_c = dup(dg0, c),
          *dbt_c = dup(dbt0, c), *eval_c = fv_malloc(n * 4);
    fv_batchnorm_forward_train(out_c, mean_c, is_c, rm_c, rv_c, inp, gamma, beta, N, C, HW, mom,
                               eps);
    fv_batchnorm_backward(dinp_c, dg_c, dbt_c, g, inp, mean_c, is_c, gamma, N, C, HW);
    fv_batchnorm_forward_eval(eval_c, inp, gamma, beta, rm_c, rv_c, N, C, HW, eps);
    /* GPU */
    const size_t sf = fv_cuda_batchnorm_scratch_floats(N, C, HW);
    float *d_inp = dput(inp, n * 4), *d_gm = dput(gamma, c * 4), *d_bt = dput(beta, c * 4),
          *d_rm = dput(rm0, c * 4), *d_rv = dput(rv0, c * 4), *d_g = dput(g, n * 4),
          *d_out = dout_buf(n * 4), *d_mean = dout_buf(c * 4), *d_is = dout_buf(c * 4),
          *d_scr = dput(NULL, sf * 4), *d_dinp = dput(dinp0, n * 4), *d_dg = dput(dg0, c * 4),
          *d_dbt = dput(dbt0, c * 4), *d_eval = dout_buf(n * 4);
    fv_cuda_batchnorm_forward_train(X, d_out, d_mean, d_is, d_rm, d_rv, d_inp, d_gm, d_bt, d_scr, N,
                                    C, HW, mom, eps);
    fv_cuda_batchnorm_backward(X, d_dinp, d_dg, d_dbt, d_g, d_inp, d_mean, d_is, d_gm, d_scr, N, C,
                               HW);
    fv_cuda_batchnorm_forward_eval(X, d_eval, d_inp, d_gm, d_bt, d_rm, d_rv, N, C, HW, eps);
    float *h = fv_malloc(n * 4);
    char what[128];
#define BN_CHECK(dev, bytes, label, cmp)                                                           \
    do {                                                                                           \
        snprintf(what, sizeof what, "batchnorm %s %s", name, label);                               \
        dget(h, dev, bytes, what);                                                                 \
        cmp;                                                                                       \
    } while (0)
    BN_CHECK(d_out, n * 4, "out", expect_close(what, h, out_c, n, FWD_TOL));
    BN_CHECK(d_mean, c * 4, "mean", expect_close(what, h, mean_c, c, FWD_TOL));
    BN_CHECK(d_is, c * 4, "invstd", expect_close(what, h, is_c, c, FWD_TOL));
    BN_CHECK(d_rm, c * 4, "running_mean", expect_close(what, h, rm_c, c, FWD_TOL));
    BN_CHECK(d_rv, c * 4, "running_var", expect_close(what, h, rv_c, c, FWD_TOL));
    BN_CHECK(d_eval, n * 4, "eval out", expect_close(what, h, eval_c, n, FWD_TOL));
    BN_CHECK(d_dinp, n * 4, "dinp", expect_close_delta(what, h, dinp_c, dinp0, n, GRAD_TOL));
    BN_CHECK(d_dg, c * 4, "dgamma", expect_close_delta(what, h, dg_c, dg0, c, GRAD_TOL));
    BN_CHECK(d_dbt, c * 4, "dbeta", expect_close_delta(what, h, dbt_c, dbt0, c, GRAD_TOL));
    BN_CHECK(d_scr, sf * 4, "scratch", (void)0);
#undef BN_CHECK
    void *dev[] = {d_inp,  d_gm, d_bt,  d_rm,   d_rv, d_g,   d_out,
                   d_mean, d_is, d_scr, d_dinp, d_dg, d_dbt, d_eval};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
    void *host[] = {inp,    gamma, beta, rm0,  rv0,    g,    dinp0, dg0,    dbt0, out_c,
                    mean_c, is_c,  rm_c, rv_c, dinp_c, dg_c, dbt_c, eval_c, h};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_batchnorm(void **st) {
    (void)st;
    bn_case("small", 6, 3, 25);
    bn_case("split over 8 blocks per channel", 64, 2, 1024);
    bn_case("after a linear layer (HW 1)", 37, 5, 1);
}

/* N*HW == 1: the running variance stays as it is, the running mean moves (batchnorm.c's rule). */
static void test_batchnorm_single_value(void **st) {
    (void)st;
    const float inp = 2.0f, gamma = 1.0f, beta = 0.0f, rm = 0.5f, rv = 3.0f;
    float *d_inp = dput(&inp, 4), *d_gm = dput(&gamma, 4), *d_bt = dput(&beta, 4),
          *d_rm = dput(&rm, 4), *d_rv = dput(&rv, 4), *d_out = dout_buf(4), *d_mean = dout_buf(4),
          *d_is = dout_buf(4);
    float *d_scr = dput(NULL, fv_cuda_batchnorm_scratch_floats(1, 1, 1) * 4);
    fv_cuda_batchnorm_forward_train(X, d_out, d_mean, d_is, d_rm, d_rv, d_inp, d_gm, d_bt, d_scr, 1,
                                    1, 1, 0.1f, 1e-5f);
    float out, rm_g, rv_g;
    dget(&out, d_out, 4, "bn single out");
    dget(&rm_g, d_rm, 4, "bn single running_mean");
    dget(&rv_g, d_rv, 4, "bn single running_var");
    assert_true(out == 0.0f);
    assert_true(fabsf(rm_g - (0.9f * 0.5f + 0.1f * 2.0f)) < 1e-7f);
    assert_true(rv_g == 3.0f);
    void *dev[] = {d_inp, d_gm, d_bt, d_rm, d_rv, d_out, d_mean, d_is, d_scr};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
}

/* ---- transformer token ops ----
 * Parity with transformer.c (forward, every gradient as increments over random starting values, a
 * NULL input gradient leaving its buffer untouched), then a finite-difference check of the GPU's
 * own gradients: L = sum(g * out) from the GPU's float forward, summed in double, central
 * differences with step FD_H at FD_SAMPLES random entries of every input, against the GPU
 * backward's increments for the same g. Tolerances (normwise, as above):
 *   FWD_TOL / GRAD_TOL   layer norm (sums over D), attention (cuBLAS GEMMs over dh and T, device
 *                        expf in the softmax), the token-linear layer (linear.cu over N*T rows) and
 *                        its bias column sum (over N*T rows, another order);
 *   GELU_TOL 1e-5        GELU forward and backward: device erff / expf (2 ulp) through the
 *                        cancellation in 1 + erf(x / sqrt 2) for negative x, and FMA contraction;
 *   exact                patch tokens and token selection (copies and single adds; dcls and dpos
 *                        add the samples in transformer.c's order);
 *   FD_TOL 1e-2          finite differences: truncation O(FD_H^2) and the float rounding of the
 *                        outputs one entry moves (the others cancel exactly: same kernels, same
 *                        bits), both far below it; an index error gives O(1). */
#define GELU_TOL 1e-5
#define FD_TOL 1e-2
#define FD_H 1e-2
#define FD_SAMPLES 6

typedef struct fd_op fd_op;
struct fd_op {
    const char *name;
    int n_in;
    float *h[4];           /* host inputs: the ones the check perturbs */
    float *d[4];           /* their device copies (forward inputs) */
    size_t len[4];         /* floats */
    const char *in_name[4];
    float *d_out, *d_aux;  /* forward output and side output (statistics, probabilities) */
    size_t out_n;
    const float *g;        /* L = sum g * out */
    int s[4];              /* shape, as run reads it */
    void (*run)(const fd_op *);
};

/* L of the current host inputs through the GPU forward. */
static double fd_loss(const fd_op *op) {
    for (int k = 0; k < op->n_in; k++) fv_cuda_upload(X, op->d[k], op->h[k], op->len[k] * 4);
    op->run(op);
    float *out = fv_malloc(op->out_n * 4);
    fv_cuda_download(X, out, op->d_out, op->out_n * 4);
    double l = 0.0;
    for (size_t i = 0; i < op->out_n; i++) l += (double)op->g[i] * out[i];
    free(out);
    return l;
}

/* Central differences of L at the entries idx[0..m) of input k against an[len[k]] (the GPU
 * backward's gradient of L with respect to that input). Restores the inputs and their device
 * copies. */
static void fd_check_at(const fd_op *op, int k, const float *an, const size_t *idx, int m) {
    double num = 0.0, den = 0.0;
    for (int s = 0; s < m; s++) {
        const size_t i = idx[s];
        FV_ASSERT(i < op->len[k]);
        const float v = op->h[k][i];
        op->h[k][i] = v + (float)FD_H;
        const double lp = fd_loss(op);
        op->h[k][i] = v - (float)FD_H;
        const double lm = fd_loss(op);
        op->h[k][i] = v;
        /* the step actually taken, in float */
        const double step = (double)(v + (float)FD_H) - (double)(v - (float)FD_H);
        const double fd = (lp - lm) / step;
        num = fmax(num, fabs(fd - (double)an[i]));
        den = fmax(den, fmax(fabs(fd), fabs((double)an[i])));
    }
    fd_loss(op); /* device inputs back to the unperturbed values */
    if (!(den >= 1e-6))
        fail_msg("%s d%s: finite differences see no gradient (max %.3g)", op->name, op->in_name[k], den);
    const double e = num / den;
    if (!(e <= FD_TOL))
        fail_msg("%s d%s: GPU gradient vs finite differences %.3g > %.0e", op->name, op->in_name[k], e,
                 FD_TOL);
}

/* fd_check_at at FD_SAMPLES random entries of input k. */
static void fd_check(const fd_op *op, int k, const float *an, uint64_t seed) {
    fv_rng r;
    fv_rng_seed(&r, seed);
    size_t idx[FD_SAMPLES];
    for (int s = 0; s < FD_SAMPLES; s++) idx[s] = (size_t)fv_rng_below(&r, op->len[k]);
    fd_check_at(op, k, an, idx, FD_SAMPLES);
}

/* an = after - before (the increment a backward added). */
static float *increment(const float *after, const float *before, size_t n) {
    float *d = fv_malloc(n * 4);
    for (size_t i = 0; i < n; i++) d[i] = after[i] - before[i];
    return d;
}

/* layer norm: s = {R, D}; d[0] inp, d[1] w, d[2] b; aux: mean then rstd */
static void ln_run(const fd_op *op) {
    const int R = op->s[0];
    fv_cuda_layernorm_forward(X, op->d_out, op->d_aux, op->d_aux + R, op->d[0], op->d[1], op->d[2], R,
                              op->s[1], 1e-5f);
}

static void layernorm_case(int R, int D, int null_dinp, int fd) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(R * 31 + D));
    const size_t n = (size_t)R * D, d = (size_t)D, rr = (size_t)R;
    float *inp = rnd(n, -2, 3, &r), *w = rnd(d, 0.5f, 1.5f, &r), *b = rnd(d, -0.5f, 0.5f, &r),
          *g = rnd(n, -1, 1, &r), *dinp0 = rnd(n, -1, 1, &r), *dw0 = rnd(d, -1, 1, &r),
          *db0 = rnd(d, -1, 1, &r);
    /* rows with a large common offset: the two-pass variance must not cancel */
    for (int i = 0; i < D; i++) inp[i] += 100.0f;
    float *out_c = fv_malloc(n * 4), *mean_c = fv_malloc(rr * 4), *rstd_c = fv_malloc(rr * 4),
          *dinp_c = dup(dinp0, n), *dw_c = dup(dw0, d), *db_c = dup(db0, d);
    fv_layernorm_forward(out_c, mean_c, rstd_c, inp, w, b, R, D, 1e-5f);
    fv_layernorm_backward(null_dinp ? NULL : dinp_c, dw_c, db_c, g, inp, mean_c, rstd_c, w, R, D);
    float *d_inp = dput(inp, n * 4), *d_w = dput(w, d * 4), *d_b = dput(b, d * 4), *d_g = dput(g, n * 4),
          *d_out = dout_buf(n * 4), *d_st = dout_buf(2 * rr * 4), *d_dinp = dput(dinp0, n * 4),
          *d_dw = dput(dw0, d * 4), *d_db = dput(db0, d * 4);
    fv_cuda_layernorm_forward(X, d_out, d_st, d_st + R, d_inp, d_w, d_b, R, D, 1e-5f);
    fv_cuda_layernorm_backward(X, null_dinp ? NULL : d_dinp, d_dw, d_db, d_g, d_inp, d_st, d_st + R, d_w,
                               R, D);
    float *h = fv_malloc(n * 4), *hw = fv_malloc(d * 4), *hb = fv_malloc(d * 4),
          *st = fv_malloc(2 * rr * 4);
    char what[128];
    snprintf(what, sizeof what, "layernorm %dx%d out", R, D);
    dget(h, d_out, n * 4, what);
    expect_close(what, h, out_c, n, FWD_TOL);
    snprintf(what, sizeof what, "layernorm %dx%d mean/rstd", R, D);
    dget(st, d_st, 2 * rr * 4, what);
    expect_close(what, st, mean_c, rr, FWD_TOL);
    expect_close(what, st + R, rstd_c, rr, FWD_TOL);
    snprintf(what, sizeof what, "layernorm %dx%d dw", R, D);
    dget(hw, d_dw, d * 4, what);
    expect_close_delta(what, hw, dw_c, dw0, d, GRAD_TOL);
    snprintf(what, sizeof what, "layernorm %dx%d db", R, D);
    dget(hb, d_db, d * 4, what);
    expect_close_delta(what, hb, db_c, db0, d, GRAD_TOL);
    snprintf(what, sizeof what, "layernorm %dx%d dinp", R, D);
    dget(h, d_dinp, n * 4, what);
    if (null_dinp) {
        expect_bitwise(what, h, dinp0, n * 4);
    } else {
        expect_close_delta(what, h, dinp_c, dinp0, n, GRAD_TOL);
        /* finite differences (without the offset row: float steps of 1e-2 on 100 are coarse) */
        if (fd) {
            for (int i = 0; i < D; i++) inp[i] -= 100.0f;
            fv_cuda_upload(X, d_inp, inp, n * 4);
            fv_cuda_upload(X, d_dinp, dinp0, n * 4);
            fv_cuda_upload(X, d_dw, dw0, d * 4);
            fv_cuda_upload(X, d_db, db0, d * 4);
            fv_cuda_layernorm_forward(X, d_out, d_st, d_st + R, d_inp, d_w, d_b, R, D, 1e-5f);
            fv_cuda_layernorm_backward(X, d_dinp, d_dw, d_db, d_g, d_inp, d_st, d_st + R, d_w, R, D);
            dget(h, d_dinp, n * 4, what);
            dget(hw, d_dw, d * 4, what);
            dget(hb, d_db, d * 4, what);
            float *ai = increment(h, dinp0, n), *aw = increment(hw, dw0, d), *ab = increment(hb, db0, d);
            fd_op op = {"layernorm", 3, {inp, w, b}, {d_inp, d_w, d_b}, {n, d, d}, {"inp", "w", "b"},
                        d_out, d_st, n, g, {R, D}, ln_run};
            fd_check(&op, 0, ai, 1);
            fd_check(&op, 1, aw, 2);
            fd_check(&op, 2, ab, 3);
            free(ai), free(aw), free(ab);
        }
    }
    void *dev[] = {d_inp, d_w, d_b, d_g, d_out, d_st, d_dinp, d_dw, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
    void *host[] = {inp, w, b, g, dinp0, dw0, db0, out_c, mean_c, rstd_c, dinp_c, dw_c, db_c, h, hw, hb, st};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_layernorm(void **st) {
    (void)st;
    layernorm_case(3 * 65, 192, 0, 1);   /* the ViT on 3x32x32, batch 3 */
    layernorm_case(7, 37, 0, 1);         /* D not a multiple of 32 */
    layernorm_case(1, 5, 0, 1);          /* fewer features than lanes */
    layernorm_case(5 * 50, 192, 1, 0);   /* no input gradient */
    layernorm_case(128 * 65, 192, 0, 0); /* a batch of 128: many blocks, long column sums */
}

/* GELU: d[0] inp, s[0] n */
static void gelu_run(const fd_op *op) { fv_cuda_gelu_forward(X, op->d_out, op->d[0], (size_t)op->s[0]); }

static void test_gelu(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 21);
    const size_t n = 100003;
    float *inp = rnd(n, -6, 6, &r), *g = rnd(n, -1, 1, &r), *dinp0 = rnd(n, -1, 1, &r);
    inp[0] = 0.0f, inp[1] = -0.0f, inp[2] = 1e-30f, inp[3] = -20.0f, inp[4] = 20.0f;
    float *out_c = fv_malloc(n * 4), *dinp_c = dup(dinp0, n), *out_g = fv_malloc(n * 4),
          *dinp_g = fv_malloc(n * 4);
    fv_gelu_forward(out_c, inp, n);
    fv_gelu_backward(dinp_c, g, inp, n);
    float *d_inp = dput(inp, n * 4), *d_g = dput(g, n * 4), *d_out = dout_buf(n * 4),
          *d_dinp = dput(dinp0, n * 4);
    fv_cuda_gelu_forward(X, d_out, d_inp, n);
    fv_cuda_gelu_backward(X, d_dinp, d_g, d_inp, n);
    dget(out_g, d_out, n * 4, "gelu out");
    expect_close("gelu out", out_g, out_c, n, GELU_TOL);
    dget(dinp_g, d_dinp, n * 4, "gelu dinp");
    expect_close_delta("gelu dinp", dinp_g, dinp_c, dinp0, n, GELU_TOL);
    /* a NULL dinp is accepted and writes nothing */
    fv_cuda_gelu_backward(X, NULL, d_g, d_inp, n);
    fv_cuda_ctx_sync(X);
    float *an = increment(dinp_g, dinp0, n);
    fd_op op = {"gelu", 1, {inp}, {d_inp}, {n}, {"inp"}, d_out, NULL, n, g, {(int)n}, gelu_run};
    fd_check(&op, 0, an, 4);
    free(an);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(out_g), free(dinp_g);
}

/* tokens: s = {N, D, P}; d[0] inp, d[1] cls, d[2] pos */
static void tokens_run(const fd_op *op) {
    fv_cuda_tokens_forward(X, op->d_out, op->d[0], op->d[1], op->d[2], op->s[0], op->s[1], op->s[2]);
}

static void tokens_case(int N, int D, int P, int null_dinp) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 1000 + D + P));
    const int T = P + 1;
    const size_t ni = (size_t)N * D * P, no = (size_t)N * T * D, nc = (size_t)D, np = (size_t)T * D;
    float *inp = rnd(ni, -1, 1, &r), *cls = rnd(nc, -1, 1, &r), *pos = rnd(np, -1, 1, &r),
          *g = rnd(no, -1, 1, &r), *dinp0 = rnd(ni, -1, 1, &r), *dcls0 = rnd(nc, -1, 1, &r),
          *dpos0 = rnd(np, -1, 1, &r);
    float *out_c = fv_malloc(no * 4), *dinp_c = dup(dinp0, ni), *dcls_c = dup(dcls0, nc),
          *dpos_c = dup(dpos0, np);
    fv_tokens_forward(out_c, inp, cls, pos, N, D, P);
    fv_tokens_backward(null_dinp ? NULL : dinp_c, dcls_c, dpos_c, g, N, D, P);
    float *d_inp = dput(inp, ni * 4), *d_cls = dput(cls, nc * 4), *d_pos = dput(pos, np * 4),
          *d_g = dput(g, no * 4), *d_out = dout_buf(no * 4), *d_dinp = dput(dinp0, ni * 4),
          *d_dcls = dput(dcls0, nc * 4), *d_dpos = dput(dpos0, np * 4);
    fv_cuda_tokens_forward(X, d_out, d_inp, d_cls, d_pos, N, D, P);
    fv_cuda_tokens_backward(X, null_dinp ? NULL : d_dinp, d_dcls, d_dpos, d_g, N, D, P);
    float *h = fv_malloc(no * 4), *hi = fv_malloc(ni * 4), *hc = fv_malloc(nc * 4), *hp = fv_malloc(np * 4);
    char what[128];
    snprintf(what, sizeof what, "tokens N %d D %d P %d out", N, D, P);
    dget(h, d_out, no * 4, what);
    expect_bitwise(what, h, out_c, no * 4);
    snprintf(what, sizeof what, "tokens N %d D %d P %d dinp", N, D, P);
    dget(hi, d_dinp, ni * 4, what);
    expect_bitwise(what, hi, null_dinp ? dinp0 : dinp_c, ni * 4);
    snprintf(what, sizeof what, "tokens N %d D %d P %d dcls", N, D, P);
    dget(hc, d_dcls, nc * 4, what);
    expect_bitwise(what, hc, dcls_c, nc * 4);
    snprintf(what, sizeof what, "tokens N %d D %d P %d dpos", N, D, P);
    dget(hp, d_dpos, np * 4, what);
    expect_bitwise(what, hp, dpos_c, np * 4);
    if (!null_dinp) {
        float *ai = increment(hi, dinp0, ni), *ac = increment(hc, dcls0, nc), *ap = increment(hp, dpos0, np);
        fd_op op = {"tokens", 3, {inp, cls, pos}, {d_inp, d_cls, d_pos}, {ni, nc, np}, {"inp", "cls", "pos"},
                    d_out, NULL, no, g, {N, D, P}, tokens_run};
        fd_check(&op, 0, ai, 5);
        fd_check(&op, 1, ac, 6);
        fd_check(&op, 2, ap, 7);
        free(ai), free(ac), free(ap);
    }
    void *dev[] = {d_inp, d_cls, d_pos, d_g, d_out, d_dinp, d_dcls, d_dpos};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
    void *host[] = {inp, cls, pos, g, dinp0, dcls0, dpos0, out_c, dinp_c, dcls_c, dpos_c, h, hi, hc, hp};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_tokens(void **st) {
    (void)st;
    tokens_case(3, 192, 64, 0);  /* 3x32x32 through the 4x4 patch conv: T = 65 */
    tokens_case(2, 192, 49, 0);  /* 1x28x28: T = 50 */
    tokens_case(4, 7, 3, 1);     /* odd sizes, no input gradient */
    tokens_case(128, 192, 64, 0); /* a batch of 128: grid-stride loops */
}

/* token selection: s = {N, T, D, t}; d[0] inp */
static void select_run(const fd_op *op) {
    fv_cuda_token_select_forward(X, op->d_out, op->d[0], op->s[0], op->s[1], op->s[2], op->s[3]);
}

static void select_case(int N, int T, int D, int t) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 100 + T + t));
    const size_t ni = (size_t)N * T * D, no = (size_t)N * D;
    float *inp = rnd(ni, -1, 1, &r), *g = rnd(no, -1, 1, &r), *dinp0 = rnd(ni, -1, 1, &r);
    float *out_c = fv_malloc(no * 4), *dinp_c = dup(dinp0, ni), *h = fv_malloc(ni * 4);
    fv_token_select_forward(out_c, inp, N, T, D, t);
    fv_token_select_backward(dinp_c, g, N, T, D, t);
    float *d_inp = dput(inp, ni * 4), *d_g = dput(g, no * 4), *d_out = dout_buf(no * 4),
          *d_dinp = dput(dinp0, ni * 4);
    fv_cuda_token_select_forward(X, d_out, d_inp, N, T, D, t);
    fv_cuda_token_select_backward(X, d_dinp, d_g, N, T, D, t);
    fv_cuda_token_select_backward(X, NULL, d_g, N, T, D, t); /* accepted, writes nothing */
    dget(h, d_out, no * 4, "token_select out");
    expect_bitwise("token_select out", h, out_c, no * 4);
    dget(h, d_dinp, ni * 4, "token_select dinp");
    expect_bitwise("token_select dinp", h, dinp_c, ni * 4);
    float *an = increment(h, dinp0, ni);
    fd_op op = {"token_select", 1, {inp}, {d_inp}, {ni}, {"inp"}, d_out, NULL, no, g, {N, T, D, t}, select_run};
    /* entries of the selected token (the others' gradient is 0, compared bitwise above) and one
     * of another token */
    fv_rng rs;
    fv_rng_seed(&rs, 9);
    size_t idx[FD_SAMPLES + 1];
    for (int s = 0; s < FD_SAMPLES; s++)
        idx[s] = ((size_t)fv_rng_below(&rs, (uint64_t)N) * T + t) * D + fv_rng_below(&rs, (uint64_t)D);
    idx[FD_SAMPLES] = (size_t)((t + 1) % T) * D;
    fd_check_at(&op, 0, an, idx, FD_SAMPLES + 1);
    free(an);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(h);
}

static void test_token_select(void **st) {
    (void)st;
    select_case(4, 65, 192, 0);
    select_case(3, 50, 192, 7);
    select_case(128, 65, 192, 0);
}

/* attention: s = {N, T, D, H}; d[0] qkv; aux: probabilities */
static void attn_run(const fd_op *op) {
    fv_cuda_attention_forward(X, op->d_out, op->d_aux, op->d[0], op->s[0], op->s[1], op->s[2], op->s[3]);
}

static void attention_case(int N, int T, int D, int H, int fd) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(N * 7919 + T * 31 + D + H));
    const size_t nq = (size_t)N * T * 3 * D, no = (size_t)N * T * D, na = (size_t)N * H * T * T;
    float *qkv = rnd(nq, -1.5f, 1.5f, &r), *g = rnd(no, -1, 1, &r), *dq0 = rnd(nq, -1, 1, &r);
    float *out_c = fv_malloc(no * 4), *att_c = fv_malloc(na * 4), *scr_c = fv_malloc(na * 4),
          *dq_c = dup(dq0, nq);
    fv_attention_forward(out_c, att_c, qkv, N, T, D, H);
    fv_attention_backward(dq_c, g, qkv, att_c, scr_c, N, T, D, H);
    float *d_qkv = dput(qkv, nq * 4), *d_g = dput(g, no * 4), *d_out = dout_buf(no * 4),
          *d_att = dout_buf(na * 4), *d_scr = dout_buf(na * 4), *d_dq = dput(dq0, nq * 4);
    fv_cuda_attention_forward(X, d_out, d_att, d_qkv, N, T, D, H);
    fv_cuda_attention_backward(X, d_dq, d_g, d_qkv, d_att, d_scr, N, T, D, H);
    float *h = fv_malloc(nq * 4), *ha = fv_malloc(na * 4);
    char what[128];
    snprintf(what, sizeof what, "attention N %d T %d D %d H %d out", N, T, D, H);
    dget(h, d_out, no * 4, what);
    expect_close(what, h, out_c, no, FWD_TOL);
    snprintf(what, sizeof what, "attention N %d T %d D %d H %d probabilities", N, T, D, H);
    dget(ha, d_att, na * 4, what);
    expect_close(what, ha, att_c, na, FWD_TOL);
    snprintf(what, sizeof what, "attention N %d T %d D %d H %d scratch", N, T, D, H);
    dget(NULL, d_scr, na * 4, what);
    /* dq, dk and dv apart: each column block of dqkv */
    dget(h, d_dq, nq * 4, "attention dqkv");
    const char *part[3] = {"dq", "dk", "dv"};
    for (int p = 0; p < 3; p++) {
        const size_t m = (size_t)N * T * D;
        float *a = fv_malloc(m * 4), *c = fv_malloc(m * 4), *z = fv_malloc(m * 4);
        for (size_t row = 0; row < (size_t)N * T; row++)
            for (int j = 0; j < D; j++) {
                const size_t src = row * 3 * D + (size_t)p * D + j, dst = row * D + j;
                a[dst] = h[src], c[dst] = dq_c[src], z[dst] = dq0[src];
            }
        snprintf(what, sizeof what, "attention N %d T %d D %d H %d %s", N, T, D, H, part[p]);
        expect_close_delta(what, a, c, z, m, GRAD_TOL);
        free(a), free(c), free(z);
    }
    if (fd) {
        float *an = increment(h, dq0, nq);
        fd_op op = {"attention", 1, {qkv}, {d_qkv}, {nq}, {"qkv"}, d_out, d_att, no, g, {N, T, D, H}, attn_run};
        fd_check(&op, 0, an, 10);
        free(an);
    }
    fv_cuda_free(X, d_qkv), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_att);
    fv_cuda_free(X, d_scr), fv_cuda_free(X, d_dq);
    free(qkv), free(g), free(dq0), free(out_c), free(att_c), free(scr_c), free(dq_c), free(h), free(ha);
}

static void test_attention(void **st) {
    (void)st;
    attention_case(2, 65, 192, 3, 1); /* the ViT on 3x32x32: dh 64 */
    attention_case(3, 50, 192, 3, 1); /* on 1x28x28 */
    attention_case(2, 33, 12, 2, 1);  /* T just past a warp, dh 6 */
    attention_case(3, 5, 6, 3, 1);    /* tiny: dh 2, T below a warp */
    attention_case(32, 65, 192, 3, 0); /* a larger batch: batched GEMM strides */
}

/* the token-wise linear layer as net.cu runs it: linear.cu over N*T rows, the bias gradient by
 * fv_cuda_col_sum_add; s = {rows, In, Out}; d[0] inp, d[1] w, d[2] b */
static void tlin_run(const fd_op *op) {
    fv_cuda_linear_forward(X, op->d_out, op->d[0], op->d[1], op->d[2], op->s[0], op->s[1], op->s[2]);
}

static void token_linear_case(int rows, int In, int Out) {
    fv_rng r;
    fv_rng_seed(&r, (uint64_t)(rows * 3 + In * 5 + Out));
    const size_t ni = (size_t)rows * In, nw = (size_t)Out * In, no = (size_t)rows * Out;
    float *inp = rnd(ni, -1, 1, &r), *w = rnd(nw, -0.1f, 0.1f, &r), *b = rnd((size_t)Out, -1, 1, &r),
          *g = rnd(no, -1, 1, &r), *dinp0 = rnd(ni, -1, 1, &r), *dw0 = rnd(nw, -1, 1, &r),
          *db0 = rnd((size_t)Out, -1, 1, &r);
    float *out_c = fv_malloc(no * 4), *dinp_c = dup(dinp0, ni), *dw_c = dup(dw0, nw), *db_c = dup(db0, (size_t)Out);
    fv_linear_forward(out_c, inp, w, b, rows, In, Out);
    fv_linear_backward(dinp_c, dw_c, db_c, g, inp, w, rows, In, Out);
    float *d_inp = dput(inp, ni * 4), *d_w = dput(w, nw * 4), *d_b = dput(b, (size_t)Out * 4),
          *d_g = dput(g, no * 4), *d_out = dout_buf(no * 4), *d_dinp = dput(dinp0, ni * 4),
          *d_dw = dput(dw0, nw * 4), *d_db = dput(db0, (size_t)Out * 4);
    fv_cuda_linear_forward(X, d_out, d_inp, d_w, d_b, rows, In, Out);
    fv_cuda_linear_backward(X, d_dinp, d_dw, NULL, d_g, d_inp, d_w, rows, In, Out);
    fv_cuda_col_sum_add(X, d_db, d_g, (size_t)rows, Out);
    float *h = fv_malloc((no > ni ? no : ni) * 4), *hw = fv_malloc(nw * 4), *hb = fv_malloc((size_t)Out * 4);
    char what[128];
    snprintf(what, sizeof what, "token linear %d rows %d->%d out", rows, In, Out);
    dget(h, d_out, no * 4, what);
    expect_close(what, h, out_c, no, FWD_TOL);
    snprintf(what, sizeof what, "token linear %d rows %d->%d dw", rows, In, Out);
    dget(hw, d_dw, nw * 4, what);
    expect_close_delta(what, hw, dw_c, dw0, nw, GRAD_TOL);
    snprintf(what, sizeof what, "token linear %d rows %d->%d db (column sum)", rows, In, Out);
    dget(hb, d_db, (size_t)Out * 4, what);
    expect_close_delta(what, hb, db_c, db0, (size_t)Out, GRAD_TOL);
    snprintf(what, sizeof what, "token linear %d rows %d->%d dinp", rows, In, Out);
    dget(h, d_dinp, ni * 4, what);
    expect_close_delta(what, h, dinp_c, dinp0, ni, GRAD_TOL);
    float *ai = increment(h, dinp0, ni), *aw = increment(hw, dw0, nw), *ab = increment(hb, db0, (size_t)Out);
    fd_op op = {"token linear", 3, {inp, w, b}, {d_inp, d_w, d_b}, {ni, nw, (size_t)Out}, {"inp", "w", "b"},
                d_out, NULL, no, g, {rows, In, Out}, tlin_run};
    fd_check(&op, 0, ai, 11);
    fd_check(&op, 1, aw, 12);
    fd_check(&op, 2, ab, 13);
    free(ai), free(aw), free(ab);
    void *dev[] = {d_inp, d_w, d_b, d_g, d_out, d_dinp, d_dw, d_db};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
    void *host[] = {inp, w, b, g, dinp0, dw0, db0, out_c, dinp_c, dw_c, db_c, h, hw, hb};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_token_linear(void **st) {
    (void)st;
    token_linear_case(3 * 65, 192, 576); /* qkv */
    token_linear_case(2 * 50, 768, 192); /* fc2 */
    token_linear_case(37, 5, 33);        /* Out past a block of columns */
    token_linear_case(64 * 65, 192, 768); /* fc1 at batch 64: a long column sum */
}

/* ---- dropout ---- */

static void test_dropout(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 13);
    const size_t n = 200000;
    const float p = 0.3f, scale = 1.0f / (1.0f - p);
    float *inp = rnd(n, -1, 1, &r), *g = rnd(n, -1, 1, &r), *dinp0 = rnd(n, -1, 1, &r);
    uint64_t key[2] = {99, 41}; /* seed, counter */
    float *d_inp = dput(inp, n * 4), *d_g = dput(g, n * 4), *d_out = dout_buf(n * 4),
          *d_dinp = dput(dinp0, n * 4);
    uint8_t *d_mask = dput_fill(NULL, n, 0x7b);
    uint64_t *d_key = dput(key, sizeof key);
    fv_cuda_dropout_forward(X, d_out, d_mask, d_inp, n, p, 3, d_key);
    fv_cuda_dropout_backward(X, d_dinp, d_g, d_mask, n, p);
    float *out = fv_malloc(n * 4), *dinp = fv_malloc(n * 4);
    uint8_t *mask = fv_malloc(n), *mask2 = fv_malloc(n);
    dget(out, d_out, n * 4, "dropout out");
    dget(mask, d_mask, n, "dropout mask");
    dget(dinp, d_dinp, n * 4, "dropout dinp");
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask[i] > 1) fail_msg("dropout mask[%zu] = %d (not 0/1)", i, mask[i]);
        kept += mask[i];
        const float want = mask[i] ? inp[i] * scale : 0.0f;
        if (out[i] != want) fail_msg("dropout out[%zu] = %g, want %g", i, out[i], want);
    }
    /* kept ~ Binomial(n, 0.7): sd = sqrt(n p (1 - p)) ~ 205; allow 6 sd */
    const double mean = (double)n * (1.0 - p), sd = sqrt((double)n * p * (1.0 - p));
    if (fabs((double)kept - mean) > 6 * sd)
        fail_msg("dropout kept %zu of %zu (expected %.0f +- %.0f)", kept, n, mean, 6 * sd);
    /* backward against the CPU kernel with the same mask */
    float *dinp_c = dup(dinp0, n);
    fv_dropout_backward(dinp_c, g, mask, n, p);
    expect_bitwise("dropout dinp", dinp, dinp_c, n * 4);
    /* same (seed, counter): same mask; next counter: another mask */
    fv_cuda_dropout_forward(X, d_out, d_mask, d_inp, n, p, 3, d_key);
    dget(mask2, d_mask, n, "dropout mask again");
    expect_bitwise("dropout mask for the same counter", mask2, mask, n);
    /* another counter, another seed, another salt (layer): independent masks, which agree on
     * 0.7^2 + 0.3^2 = 58% of the elements */
    const struct {
        uint64_t seed, ctr, salt;
        const char *what;
    } other[3] = {
        {99, 42, 3, "next counter"}, {100, 41, 3, "other seed"}, {99, 41, 4, "other salt"}};
    for (int k = 0; k < 3; k++) {
        const uint64_t kk[2] = {other[k].seed, other[k].ctr};
        fv_cuda_upload(X, d_key, kk, sizeof kk);
        fv_cuda_dropout_forward(X, d_out, d_mask, d_inp, n, p, other[k].salt, d_key);
        dget(mask2, d_mask, n, "dropout mask");
        size_t same = 0;
        for (size_t i = 0; i < n; i++) same += mask[i] == mask2[i];
        if (same > n * 62 / 100)
            fail_msg("dropout (%s): the mask agrees on %zu of %zu elements", other[k].what, same,
                     n);
    }
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp),
        fv_cuda_free(X, d_mask);
    fv_cuda_free(X, d_key);
    free(inp), free(g), free(dinp0), free(out), free(dinp), free(mask), free(mask2), free(dinp_c);
}

/* ---- upsample ---- */

static void test_upsample(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 14);
    const int N = 2, C = 3, H = 5, W = 4, s = 3;
    const size_t in = (size_t)N * C * H * W, on = in * s * s;
    float *inp = rnd(in, -1, 1, &r), *g = rnd(on, -1, 1, &r), *dinp0 = rnd(in, -1, 1, &r);
    float *out_c = fv_malloc(on * 4), *dinp_c = dup(dinp0, in), *out_g = fv_malloc(on * 4),
          *dinp_g = fv_malloc(in * 4);
    fv_upsample_forward(out_c, inp, N, C, H, W, s);
    fv_upsample_backward(dinp_c, g, N, C, H, W, s);
    float *d_inp = dput(inp, in * 4), *d_g = dput(g, on * 4), *d_out = dout_buf(on * 4),
          *d_dinp = dput(dinp0, in * 4);
    fv_cuda_upsample_forward(X, d_out, d_inp, N, C, H, W, s);
    fv_cuda_upsample_backward(X, d_dinp, d_g, N, C, H, W, s);
    dget(out_g, d_out, on * 4, "upsample out");
    expect_bitwise("upsample out", out_g, out_c, on * 4);
    dget(dinp_g, d_dinp, in * 4, "upsample dinp");
    expect_close_delta("upsample dinp", dinp_g, dinp_c, dinp0, in, ELEM_TOL);
    fv_cuda_free(X, d_inp), fv_cuda_free(X, d_g), fv_cuda_free(X, d_out), fv_cuda_free(X, d_dinp);
    free(inp), free(g), free(dinp0), free(out_c), free(dinp_c), free(out_g), free(dinp_g);
}

/* ---- loss ---- */

static void test_softmax_xent(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 15);
    const int N = 37, K = 10;
    const size_t nk = (size_t)N * K;
    float *logits = rnd(nk, -3, 3, &r);
    int *labels = fv_malloc((size_t)N * sizeof(int));
    for (int i = 0; i < N; i++) labels[i] = (int)fv_rng_below(&r, (uint64_t)K);
    logits[3 * K + 4] = logits[3 * K + 7] = 9.0f; /* a tie: the first maximum counts */
    labels[3] = 7;
    float *dl_c = fv_malloc(nk * 4), *dl_g = fv_malloc(nk * 4);
    int correct = 0;
    const float loss = fv_softmax_xent(dl_c, logits, labels, N, K, &correct);
    const double acc0 = 1.5;
    const long long hits0 = 7;
    float *d_logits = dput(logits, nk * 4), *d_dl = dout_buf(nk * 4);
    int32_t *d_labels = dput(labels, (size_t)N * 4), *d_hit = dout_buf((size_t)N * 4);
    double *d_row = dout_buf((size_t)N * 8), *d_acc = dput(&acc0, 8);
    long long *d_hits = dput(&hits0, 8);
    fv_cuda_softmax_xent(X, d_dl, d_row, d_hit, d_acc, d_hits, d_logits, d_labels, N, K);
    dget(dl_g, d_dl, nk * 4, "xent dlogits");
    expect_close("xent dlogits", dl_g, dl_c, nk, ELEM_TOL);
    double acc;
    long long hits;
    dget(&acc, d_acc, 8, "xent loss accumulator");
    dget(&hits, d_hits, 8, "xent hit accumulator");
    const double want = (double)loss * N;
    if (!(fabs((acc - acc0) - want) <= ELEM_TOL * fabs(want)))
        fail_msg("xent: accumulated loss %.9g, CPU %.9g", acc - acc0, want);
    assert_int_equal(hits - hits0, correct);
    dget(NULL, d_row, (size_t)N * 8, "xent row losses");
    dget(NULL, d_hit, (size_t)N * 4, "xent row hits");
    fv_cuda_free(X, d_logits), fv_cuda_free(X, d_dl), fv_cuda_free(X, d_labels), fv_cuda_free(X, d_hit);
    fv_cuda_free(X, d_row), fv_cuda_free(X, d_acc), fv_cuda_free(X, d_hits);
    free(logits), free(labels), free(dl_c), free(dl_g);
}

/* ---- optimizers ---- */

static void opt_case(const char *name, fv_opt_cfg c) {
    fv_rng r;
    fv_rng_seed(&r, 16);
    const size_t n = 1537;
    const int steps = 6;
    float *p0 = rnd(n, -1, 1, &r), *p_c = dup(p0, n), *p_g = fv_malloc(n * 4);
    fv_opt *o = fv_opt_new(&c, n);
    size_t sl = 0;
    float *state_c = fv_opt_state(o, &sl);
    assert_int_equal(sl, fv_opt_state_len(&c, n));
    float *d_p = dput(p0, n * 4), *d_state = dput(NULL, (sl ? sl : 1) * 4),
          *d_grad = dput(NULL, n * 4);
    fv_cuda_opt_step_state ost0;
    memset(&ost0, 0, sizeof ost0);
    fv_cuda_opt_step_state *d_ost = dput(&ost0, sizeof ost0);
    for (int s = 0; s < steps; s++) {
        float *g = rnd(n, -1, 1, &r);
        fv_opt_step(o, p_c, g);
        fv_cuda_upload(X, d_grad, g, n * 4);
        fv_cuda_opt_step(X, d_p, sl ? d_state : NULL, d_grad, d_ost, &c, n);
        fv_cuda_ctx_sync(X);
        free(g);
    }
    char what[128];
    snprintf(what, sizeof what, "%s params", name);
    dget(p_g, d_p, n * 4, what);
    expect_close_delta(what, p_g, p_c, p0, n, ELEM_TOL);
    if (sl) {
        float *s_g = fv_malloc(sl * 4);
        snprintf(what, sizeof what, "%s state", name);
        dget(s_g, d_state, sl * 4, what);
        expect_close(what, s_g, state_c, sl, ELEM_TOL);
        free(s_g);
    }
    fv_cuda_opt_step_state ost;
    dget(&ost, d_ost, sizeof ost, "optimizer step state");
    assert_int_equal(ost.t, *fv_opt_step_count(o));
    dget(NULL, d_grad, n * 4, "optimizer grads");
    fv_cuda_free(X, d_p), fv_cuda_free(X, d_state), fv_cuda_free(X, d_grad), fv_cuda_free(X, d_ost);
    fv_opt_destroy(&o);
    free(p0), free(p_c), free(p_g);
}

static void test_optimizers(void **st) {
    (void)st;
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_SGD);
    opt_case("sgd plain", c);
    c.momentum = 0.9f, c.lr = 0.1f;
    opt_case("sgd momentum", c);
    c.nesterov = 1, c.wd = 5e-4f, c.decay_steps = 8;
    opt_case("sgd nesterov wd cosine", c);
    c = fv_opt_defaults(FV_OPT_ADAM);
    opt_case("adam", c);
    c.wd = 1e-2f, c.decay_steps = 5; /* the last step runs at lr 0 */
    opt_case("adam wd cosine", c);
    c.warmup_steps = 3; /* the linear warm-up multiplying the cosine */
    opt_case("adam wd cosine warm-up", c);
    c = fv_opt_defaults(FV_OPT_STADAM);
    opt_case("stadam mu 0", c);
    c.mu = 0.9f, c.wd = 1e-3f;
    opt_case("stadam mu 0.9", c);
}

static void test_prox(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 17);
    const size_t n = 3001;
    const float mu = 0.01f;
    float *g0 = rnd(n, -1, 1, &r), *p = rnd(n, -1, 1, &r), *ref = rnd(n, -1, 1, &r);
    float *g_c = dup(g0, n), *g_g = fv_malloc(n * 4);
    for (size_t i = 0; i < n; i++) g_c[i] += mu * (p[i] - ref[i]);
    float *d_g = dput(g0, n * 4), *d_p = dput(p, n * 4), *d_ref = dput(ref, n * 4);
    fv_cuda_prox_grad(X, d_g, d_p, d_ref, mu, n);
    dget(g_g, d_g, n * 4, "prox grads");
    expect_close_delta("prox grads", g_g, g_c, g0, n, ELEM_TOL);
    fv_cuda_free(X, d_g), fv_cuda_free(X, d_p), fv_cuda_free(X, d_ref);
    free(g0), free(p), free(ref), free(g_c), free(g_g);
}

/* ---- data ---- */

static void test_gather(void **st) {
    (void)st;
    fv_rng r;
    fv_rng_seed(&r, 18);
    fv_dataset d = {0};
    d.n = 20, d.c = 3, d.h = 5, d.w = 7, d.classes = 10;
    const size_t img = (size_t)d.c * d.h * d.w;
    d.x = fv_malloc((size_t)d.n * img);
    d.y = fv_malloc((size_t)d.n);
    for (size_t i = 0; i < (size_t)d.n * img; i++) d.x[i] = (uint8_t)fv_rng_below(&r, 256);
    for (int i = 0; i < d.n; i++) d.y[i] = (uint8_t)fv_rng_below(&r, 10);
    fv_norm norm = fv_norm_for("cifar10");
    float lut[4 * 256] = {0};
    for (int c = 0; c < d.c; c++)
        for (int v = 0; v < 256; v++)
            lut[c * 256 + v] = ((float)v / 255.0f - norm.mean[c]) / norm.std[c];
    int order[20];
    for (int i = 0; i < 20; i++) order[i] = i;
    fv_rng_shuffle_int(&r, order, 20);
    const int32_t cursor0 = 4, base = 2, b = 6;
    uint64_t ctr0 = 9;
    uint8_t *d_img = dput(d.x, (size_t)d.n * img), *d_lab = dput(d.y, (size_t)d.n);
    int32_t *d_order = dput(order, sizeof order), *d_cursor = dput(&cursor0, 4),
            *d_yb = dout_buf((size_t)b * 4);
    float *d_lut = dput(lut, sizeof lut), *d_xb = dout_buf((size_t)b * img * 4);
    uint64_t *d_ctr = dput(&ctr0, 8);
    fv_cuda_gather_batch(X, d_xb, d_yb, d_img, d_lab, d_order, d_cursor, base, d_lut, b, d.c,
                         d.h * d.w);
    fv_cuda_advance(X, d_cursor, b, d_ctr);
    float *xb_g = fv_malloc((size_t)b * img * 4), *xb_c = fv_malloc((size_t)b * img * 4);
    int32_t yb_g[6];
    int yb_c[6], idx[6];
    for (int k = 0; k < b; k++) idx[k] = order[base + cursor0 + k];
    fv_dataset_to_float(&d, idx, 0, b, norm, xb_c);
    fv_dataset_labels(&d, idx, 0, b, yb_c);
    dget(xb_g, d_xb, (size_t)b * img * 4, "gathered batch");
    expect_bitwise("gathered batch", xb_g, xb_c, (size_t)b * img * 4);
    dget(yb_g, d_yb, (size_t)b * 4, "gathered labels");
    expect_bitwise("gathered labels", yb_g, yb_c, (size_t)b * 4);
    int32_t cursor;
    uint64_t ctr;
    dget(&cursor, d_cursor, 4, "cursor");
    dget(&ctr, d_ctr, 8, "dropout counter");
    assert_int_equal(cursor, cursor0 + b);
    assert_int_equal(ctr, ctr0 + 1);
    /* no order, no cursor: consecutive images from base */
    fv_cuda_gather_batch(X, d_xb, d_yb, d_img, d_lab, NULL, NULL, 11, d_lut, b, d.c, d.h * d.w);
    fv_dataset_to_float(&d, NULL, 11, b, norm, xb_c);
    dget(xb_g, d_xb, (size_t)b * img * 4, "gathered batch (sequential)");
    expect_bitwise("gathered batch (sequential)", xb_g, xb_c, (size_t)b * img * 4);
    void *dev[] = {d_img, d_lab, d_order, d_cursor, d_yb, d_lut, d_xb, d_ctr};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) fv_cuda_free(X, dev[i]);
    free(xb_g), free(xb_c);
    fv_dataset_free(&d);
}

int main(void) {
    fv_set_threads(2);
    fv_err e = {{0}};
    if (fv_cuda_device_count() == 0) {
        /* the context's refusal carries the runtime's reason (no GPU, a driver too old, ...) */
        fv_cuda_ctx *none = fv_cuda_ctx_new(0, &e);
        if (none) { /* a device after all: not a skip */
            fv_cuda_ctx_destroy(&none);
            printf("test_cuda_layers: fv_cuda_device_count() is 0 but cuda:0 opened\n");
            return 1;
        }
        printf("test_cuda_layers: skipped (%s)\n", e.msg);
        return 77;
    }
    X = fv_cuda_ctx_new(0, &e);
    if (!X) {
        printf("test_cuda_layers: cannot use cuda:0: %s\n", e.msg);
        return 1;
    }
    char dev[256];
    fv_cuda_ctx_describe(X, dev, sizeof dev);
    char why[200] = "";
    const int dnn = fv_cudnn_available(X, why, sizeof why);
    char ver[32] = "";
    if (dnn) fv_cudnn_version(ver, sizeof ver);
    printf("test_cuda_layers on %s; convolutions also through cuDNN: %s%s\n", dev,
           dnn ? "yes, " : "no, ", dnn ? ver : why);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_dense),
        cmocka_unit_test(test_conv_strided_groups),
        cmocka_unit_test(test_conv_depthwise),
        cmocka_unit_test(test_conv_chunked),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool_gap),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_single_value),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_token_select),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_token_linear),
        cmocka_unit_test(test_softmax_xent),
        cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_prox),
        cmocka_unit_test(test_gather),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fv_cuda_ctx_destroy(&X);
    return rc;
}
#endif
