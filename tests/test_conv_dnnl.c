/* test_conv_dnnl.c: the choice between the CPU conv paths (fv_net_set_conv, FEDVIM_CPU_CONV, the
 * per-shape rule) and what the oneDNN path promises beyond the gradient checks of test_layers.c
 * (which run every conv shape through both paths):
 *  - determinism: ResNet-20 trained a few SGD steps twice from the same seed at the same thread
 *    count ends with bitwise-identical parameters, with every conv through oneDNN and with the
 *    per-shape choice; one big conv's forward and backward repeat bit for bit;
 *  - the per-node primitive cache: many batch sizes (more than it keeps) and a thread-count change
 *    give the same bits as a fresh conv;
 *  - the paths agree: loss and gradients of LeNet-5 and ResNet-20 through oneDNN match the
 *    OpenBLAS path within float rounding (test_paths_agree says how close);
 *  - the rule is a pure function of the shape (and pinned here for the model zoo's shapes);
 *  - the layout moves around the kernels are exact (an identity conv returns its input), and a
 *    conv on blocked activations gives the NCHW conv's results moved (test_blocked_layouts).
 * In a build without oneDNN: FV_CONV_DNNL and FEDVIM_CPU_CONV=dnnl are refused with a message, and
 * every node runs on OpenBLAS.
 * About 5 s alone (release build, 2 threads). */
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
#include "nn/models.h"
#include "nn/net.h"
#include "nn/optim.h"
#ifdef FEDVIM_HAVE_DNNL
#include "nn/conv_dnnl.h"
#endif
#include "rng.h"

#define BATCH 8
#define STEPS 2

/* A random batch of BATCH 3x32x32 images and labels, fixed by seed. */
static void batch(float *x, int *y, uint64_t seed) {
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)BATCH * 3 * 32 * 32; i++) x[i] = 2.0f * fv_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < BATCH; i++) y[i] = (int)fv_rng_below(&r, 10);
}

static fv_net *resnet(fv_conv_path path) {
    fv_err e;
    fv_net *net = fv_model_new("resnet20", (fv_shape){3, 32, 32}, 10, 7, &e);
    if (!net) fail_msg("%s", e.msg);
    if (fv_net_set_conv(net, path, &e) != 0) fail_msg("%s", e.msg);
    return net;
}

static int dnnl_nodes(const fv_net *net) {
    int k = 0;
    for (int i = 0; i < net->n_nodes; i++) k += fv_net_node_dnnl(net, i);
    return k;
}

static int conv_nodes(const fv_net *net) {
    int k = 0;
    for (int i = 0; i < net->n_nodes; i++) k += net->nodes[i].op == FV_OP_CONV2D;
    return k;
}

/* STEPS SGD steps (momentum 0.9) of ResNet-20 on path; returns a copy of its parameters (the
 * running statistics included) after them. */
static float *train(fv_conv_path path, size_t *n) {
    fv_net *net = resnet(path);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.1f, oc.momentum = 0.9f;
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    float *x = fv_malloc((size_t)BATCH * 3 * 32 * 32 * sizeof(float)), dl[BATCH * 10];
    int y[BATCH];
    for (int s = 0; s < STEPS; s++) {
        batch(x, y, 100 + (uint64_t)s);
        const float *logits = fv_net_forward(net, x, BATCH, 1);
        fv_softmax_xent(dl, logits, y, BATCH, 10, NULL);
        fv_net_backward(net, dl, BATCH);
        fv_opt_step(opt, net->params, net->grads);
    }
    *n = net->n_params;
    float *p = fv_malloc(net->n_params * sizeof(float));
    memcpy(p, net->params, net->n_params * sizeof(float));
    free(x);
    fv_opt_destroy(&opt);
    fv_net_destroy(&net);
    return p;
}

static void test_parse(void **state) {
    (void)state;
    fv_conv_path p;
    fv_err e;
    assert_int_equal(fv_conv_path_parse("blas", &p, &e), 0);
    assert_int_equal(p, FV_CONV_BLAS);
    assert_int_equal(fv_conv_path_parse("dnnl", &p, &e), 0);
    assert_int_equal(p, FV_CONV_DNNL);
    assert_int_equal(fv_conv_path_parse("auto", &p, &e), 0);
    assert_int_equal(p, FV_CONV_AUTO);
    assert_int_equal(fv_conv_path_parse("mkl", &p, &e), -1);
    assert_non_null(strstr(e.msg, "'mkl'"));
    assert_int_equal(fv_conv_path_parse(NULL, &p, &e), -1);
    for (int i = FV_CONV_AUTO; i <= FV_CONV_DNNL; i++) {
        assert_int_equal(fv_conv_path_parse(fv_conv_path_name((fv_conv_path)i), &p, &e), 0);
        assert_int_equal(p, i);
    }
}

/* FEDVIM_CPU_CONV reaches fv_model_new; a bad word is an error naming the variable. */
static void test_env(void **state) {
    (void)state;
    fv_err e;
    if (setenv("FEDVIM_CPU_CONV", "gpu", 1) != 0) fail_msg("setenv");
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 1, &e);
    assert_null(net);
    assert_non_null(strstr(e.msg, "FEDVIM_CPU_CONV"));
    if (setenv("FEDVIM_CPU_CONV", "blas", 1) != 0) fail_msg("setenv");
    net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 1, &e);
    assert_non_null(net);
    assert_int_equal(net->conv_path, FV_CONV_BLAS);
    assert_int_equal(dnnl_nodes(net), 0);
    fv_net_destroy(&net);
    if (setenv("FEDVIM_CPU_CONV", "dnnl", 1) != 0) fail_msg("setenv");
    net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 1, &e);
#ifdef FEDVIM_HAVE_DNNL
    assert_non_null(net);
    assert_int_equal(dnnl_nodes(net), conv_nodes(net));
    fv_net_destroy(&net);
#else
    assert_null(net);
    assert_non_null(strstr(e.msg, "no oneDNN"));
#endif
    if (unsetenv("FEDVIM_CPU_CONV") != 0) fail_msg("unsetenv");
}

/* Switching paths on a finished net, back and forth. */
static void test_set_conv(void **state) {
    (void)state;
    fv_net *net = resnet(FV_CONV_BLAS);
    assert_int_equal(dnnl_nodes(net), 0);
    fv_err e;
#ifdef FEDVIM_HAVE_DNNL
    assert_int_equal(fv_net_set_conv(net, FV_CONV_DNNL, &e), 0);
    assert_int_equal(dnnl_nodes(net), conv_nodes(net));
    assert_int_equal(fv_net_set_conv(net, FV_CONV_AUTO, &e), 0);
    assert_true(dnnl_nodes(net) > 0);
    assert_int_equal(fv_net_set_conv(net, FV_CONV_BLAS, &e), 0);
    assert_int_equal(dnnl_nodes(net), 0);
#else
    assert_int_equal(fv_net_set_conv(net, FV_CONV_DNNL, &e), -1);
    assert_non_null(strstr(e.msg, "no oneDNN"));
    assert_int_equal(net->conv_path, FV_CONV_BLAS);
    assert_int_equal(fv_net_set_conv(net, FV_CONV_AUTO, &e), 0);
    assert_int_equal(dnnl_nodes(net), 0);
    assert_int_equal(conv_nodes(net), 21);
#endif
    fv_net_destroy(&net);
}

/* Same seed, same threads: the same bits, on every path. */
static void test_training_deterministic(void **state) {
    (void)state;
    const fv_conv_path paths[] = {FV_CONV_AUTO, FV_CONV_DNNL};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++) {
#ifndef FEDVIM_HAVE_DNNL
        if (paths[k] == FV_CONV_DNNL) continue;
#endif
        size_t n1, n2;
        float *a = train(paths[k], &n1), *b = train(paths[k], &n2);
        assert_int_equal(n1, n2);
        if (memcmp(a, b, n1 * sizeof(float)) != 0)
            fail_msg("ResNet-20, path %s: two runs from the same seed differ", fv_conv_path_name(paths[k]));
        free(a), free(b);
    }
}

/* Loss and gradients of one batch of `model` (on c x hw x hw inputs) with every conv through
 * oneDNN against the OpenBLAS path: loss within 1e-4 relative, gradients within gtol normwise
 * (max |a - b| / max |a|). */
static void paths_agree(const char *model, int c, int hw, double gtol) {
#ifdef FEDVIM_HAVE_DNNL
    const size_t per = (size_t)c * hw * hw;
    float *x = fv_malloc((size_t)BATCH * per * sizeof(float)), dl[BATCH * 10];
    int y[BATCH];
    fv_rng r;
    fv_rng_seed(&r, 5);
    for (size_t i = 0; i < (size_t)BATCH * per; i++) x[i] = 2.0f * fv_rng_uniform(&r) - 1.0f;
    for (int i = 0; i < BATCH; i++) y[i] = (int)fv_rng_below(&r, 10);
    float loss[2];
    float *grads[2];
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        fv_err e;
        fv_net *net = fv_model_new(model, (fv_shape){c, hw, hw}, 10, 7, &e);
        if (!net) fail_msg("%s", e.msg);
        if (fv_net_set_conv(net, k ? FV_CONV_DNNL : FV_CONV_BLAS, &e) != 0) fail_msg("%s", e.msg);
        loss[k] = fv_softmax_xent(dl, fv_net_forward(net, x, BATCH, 1), y, BATCH, 10, NULL);
        fv_net_backward(net, dl, BATCH);
        n = net->n_train;
        grads[k] = fv_malloc(n * sizeof(float));
        memcpy(grads[k], net->grads, n * sizeof(float));
        fv_net_destroy(&net);
    }
    if (!(fabsf(loss[0] - loss[1]) <= 1e-4f * fabsf(loss[0])))
        fail_msg("%s: loss %.8g (OpenBLAS) against %.8g (oneDNN)", model, loss[0], loss[1]);
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)grads[0][i] - grads[1][i]), m = fabs((double)grads[0][i]);
        if (d > num) num = d;
        if (m > den) den = m;
    }
    if (!(den > 0.0 && num <= gtol * den))
        fail_msg("%s: gradients differ: max |a-b| %.3g, max |a| %.3g (tolerance %g)", model, num, den, gtol);
    free(grads[0]), free(grads[1]), free(x);
#else
    (void)model, (void)c, (void)hw, (void)gtol;
    skip();
#endif
}

/* LeNet-5 has no batch norm: float rounding alone, 1e-4. ResNet-20's batch norms cancel heavily
 * in backward (test_torch_parity.c: float32 PyTorch itself is up to ~2% off float64 on its first
 * layer's gradient) and a pre-activation within rounding of 0 can flip a ReLU mask: 3e-2. */
static void test_paths_agree(void **state) {
    (void)state;
    paths_agree("lenet5", 1, 28, 1e-4);
    paths_agree("resnet20", 3, 32, 3e-2);
}

#ifdef FEDVIM_HAVE_DNNL
typedef struct {
    float *out, *dx, *dw, *db;
} conv_result;

/* The inputs of a conv of shape s (s->N images), fixed by seed 11: x, the output gradient g,
 * weights w and bias b, each U(-0.5, 0.5). Caller frees. */
static void conv_inputs(const fv_conv2d_shape *s, float **x, float **g, float **w, float **b) {
    fv_rng r;
    fv_rng_seed(&r, 11);
    const size_t ni = (size_t)s->N * s->C * s->H * s->W, no = (size_t)s->N * s->K * s->OH * s->OW,
                 nw = (size_t)s->K * s->C / s->groups * s->R * s->R;
    *x = fv_malloc(ni * sizeof(float)), *g = fv_malloc(no * sizeof(float));
    *w = fv_malloc(nw * sizeof(float)), *b = fv_malloc((size_t)s->K * sizeof(float));
    for (size_t i = 0; i < ni; i++) (*x)[i] = fv_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < no; i++) (*g)[i] = fv_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < nw; i++) (*w)[i] = fv_rng_uniform(&r) - 0.5f;
    for (int i = 0; i < s->K; i++) (*b)[i] = fv_rng_uniform(&r) - 0.5f;
}

/* Forward and backward of conv c (a fresh one when c is NULL) on N images of shape s, inputs fixed
 * by seed; the gradients start from zero. set_keep: the forward keeps its moved input (keep_src)
 * and the backward writes dx (set_dinp) into a buffer of NaNs instead of adding into zeros. */
static conv_result run_conv_as(fv_dnnl *d, fv_dnnl_conv *c, const fv_conv2d_shape *s0, int N, int set_keep) {
    fv_conv2d_shape s = *s0;
    s.N = N;
    fv_err e;
    fv_dnnl_conv *own = c ? NULL : fv_dnnl_conv_new(d, &s, 1, &e);
    if (!c && !own) fail_msg("%s", e.msg);
    const size_t ni = (size_t)N * s.C * s.H * s.W, no = (size_t)N * s.K * s.OH * s.OW,
                 nw = (size_t)s.K * s.C / s.groups * s.R * s.R;
    float *x, *g, *w, *b;
    conv_inputs(&s, &x, &g, &w, &b);
    conv_result o = {fv_malloc(no * sizeof(float)), fv_calloc(ni, sizeof(float)), fv_calloc(nw, sizeof(float)),
                     fv_calloc((size_t)s.K, sizeof(float))};
    if (set_keep)
        for (size_t i = 0; i < ni; i++) o.dx[i] = NAN;
    fv_dnnl_conv_forward(c ? c : own, o.out, x, w, b, set_keep, &s);
    fv_dnnl_conv_backward(c ? c : own, o.dx, set_keep, o.dw, o.db, g, x, w, &s);
    fv_dnnl_conv_destroy(&own);
    free(x), free(g), free(w), free(b);
    return o;
}

static conv_result run_conv(fv_dnnl *d, fv_dnnl_conv *c, const fv_conv2d_shape *s0, int N) {
    return run_conv_as(d, c, s0, N, 0);
}

static void result_same(const conv_result *a, const conv_result *b, const fv_conv2d_shape *s, int N,
                        const char *what) {
    const size_t ni = (size_t)N * s->C * s->H * s->W, no = (size_t)N * s->K * s->OH * s->OW,
                 nw = (size_t)s->K * s->C / s->groups * s->R * s->R;
    if (memcmp(a->out, b->out, no * sizeof(float)) || memcmp(a->dx, b->dx, ni * sizeof(float)) ||
        memcmp(a->dw, b->dw, nw * sizeof(float)) || memcmp(a->db, b->db, (size_t)s->K * sizeof(float)))
        fail_msg("%s: N %d differs from a fresh conv", what, N);
}

static void result_free(conv_result *r) { free(r->out), free(r->dx), free(r->dw), free(r->db); }
#endif

/* One conv object through six batch sizes (more than the four it keeps), each again later, and
 * a thread-count change: every result equals a fresh conv's, bit for bit. */
static void test_cache(void **state) {
    (void)state;
#ifdef FEDVIM_HAVE_DNNL
    fv_err e;
    fv_dnnl *d = fv_dnnl_new(&e);
    if (!d) fail_msg("%s", e.msg);
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, 1, 16, 12, 12, 32, 3, 1, 1, 1);
    fv_dnnl_conv *c = fv_dnnl_conv_new(d, &s, 1, &e);
    if (!c) fail_msg("%s", e.msg);
    const int ns[] = {8, 3, 5, 1, 7, 2, 8, 3, 5, 1, 7, 2};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        conv_result a = run_conv(d, c, &s, ns[i]), b = run_conv(d, NULL, &s, ns[i]);
        result_same(&a, &b, &s, ns[i], "cached conv");
        result_free(&a), result_free(&b);
    }
    fv_set_threads(1);
    conv_result a = run_conv(d, c, &s, 8), b = run_conv(d, NULL, &s, 8);
    result_same(&a, &b, &s, 8, "cached conv after a thread change");
    result_free(&a), result_free(&b);
    fv_set_threads(2);
    fv_dnnl_conv_destroy(&c);
    fv_dnnl_destroy(&d);
#else
    skip();
#endif
}

/* The forms net.c uses in training (conv_dnnl.h): a forward that keeps its moved input for the
 * backward's weight gradient, and a backward that writes dinp instead of adding into it (over
 * NaNs here), give the bits of the plain forward and of a backward into zeros: ResNet-20's three
 * 3x3 shapes (16, 32, 64 channels; the strided one), a channel count with a partial block (20),
 * and a 3-channel input that oneDNN reads as it is (no move to keep). */
static void test_keep_and_set(void **state) {
    (void)state;
#ifdef FEDVIM_HAVE_DNNL
    fv_err e;
    fv_dnnl *d = fv_dnnl_new(&e);
    if (!d) fail_msg("%s", e.msg);
    static const int shapes[][6] = {{16, 32, 16, 1, 3, 1}, {16, 32, 32, 2, 3, 1}, {32, 16, 32, 1, 3, 1},
                                    {64, 8, 64, 1, 3, 1},  {20, 9, 24, 1, 3, 1},  {3, 12, 16, 1, 3, 1}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int *q = shapes[k];
        fv_conv2d_shape s;
        fv_conv2d_shape_init(&s, 1, q[0], q[1], q[1], q[2], q[4], q[3], q[5], 1);
        fv_dnnl_conv *c = fv_dnnl_conv_new(d, &s, 1, &e);
        if (!c) fail_msg("%s", e.msg);
        char what[96];
        snprintf(what, sizeof what, "keep_src and set_dinp, %dx%dx%d -> %d stride %d", q[0], q[1], q[1], q[2], q[3]);
        for (int rep = 0; rep < 2; rep++) { /* the second time through the cached entry and its kept buffer */
            conv_result a = run_conv_as(d, c, &s, 6, 1), b = run_conv(d, NULL, &s, 6);
            result_same(&a, &b, &s, 6, what);
            result_free(&a), result_free(&b);
        }
        fv_dnnl_conv_destroy(&c);
    }
    fv_dnnl_destroy(&d);
#else
    skip();
#endif
}

/* NCHW src to nChw<B>c dst (C a multiple of B). */
static void to_blk(float *dst, const float *src, int N, int C, int HW, int B) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++)
                dst[(((size_t)n * (C / B) + c / B) * HW + p) * B + c % B] = src[((size_t)n * C + c) * HW + p];
}

/* Elementwise equal as floats (a zero's sign aside: conv_dnnl.h's direct set form). */
static void same_values(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i])) fail_msg("%s: element %zu: %.9g against %.9g", what, i, a[i], b[i]);
}

/* Blocked activations (fv_dnnl_conv_set_layout): a conv whose input, output or both are in
 * oneDNN's blocked layout gives exactly the NCHW conv's results moved (forward, backward data
 * added into zeros and set over NaNs, weight and bias gradients), for ResNet-20's shapes: 3x3 on
 * 16, 32 and 64 channels, the strided 3x3 and 1x1 shortcuts, and the 3-channel stem (blocked
 * output only), and MobileNet's: depthwise 3x3 (strided too) and pointwise 1x1. */
static void test_blocked_layouts(void **state) {
    (void)state;
#ifdef FEDVIM_HAVE_DNNL
    fv_err e;
    fv_dnnl *d = fv_dnnl_new(&e);
    if (!d) fail_msg("%s", e.msg);
    const int B = fv_dnnl_block(d);
    print_message("oneDNN's block here: %d\n", B);
    if (!B) {
        fv_dnnl_destroy(&d);
        skip();
    }
    static const int shapes[][6] = {{16, 12, 16, 1, 3, 1}, {16, 12, 32, 2, 3, 1}, {32, 8, 32, 1, 3, 1},
                                    {64, 6, 64, 1, 3, 1},  {16, 12, 32, 2, 1, 1}, {3, 12, 16, 1, 3, 1},
                                    {32, 8, 32, 1, 3, 32}, {32, 8, 32, 2, 3, 32}, {32, 8, 64, 1, 1, 1}};
    const int N = 5;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int *q = shapes[k];
        fv_conv2d_shape s;
        fv_conv2d_shape_init(&s, N, q[0], q[1], q[1], q[2], q[4], q[3], q[4] / 2, q[5]);
        const int HW = s.H * s.W, OHW = s.OH * s.OW;
        const size_t ni = (size_t)N * s.C * HW, no = (size_t)N * s.K * OHW, nw = (size_t)s.K * s.C / s.groups * s.R * s.R;
        conv_result ref = run_conv(d, NULL, &s, N);
        float *x, *g, *w, *b; /* run_conv's inputs */
        conv_inputs(&s, &x, &g, &w, &b);
        float *xb = fv_malloc(ni * sizeof(float)), *gb = fv_malloc(no * sizeof(float));
        float *ob = fv_malloc(no * sizeof(float)), *dxb = fv_malloc(ni * sizeof(float));
        float *refo = fv_malloc(no * sizeof(float)), *refdx = fv_malloc(ni * sizeof(float));
        for (int ib = 0; ib <= B; ib += B)
            for (int obk = 0; obk <= B; obk += B)
                for (int set = 0; set < 2; set++) {
                    if (ib && s.C % B) continue;
                    fv_dnnl_conv *c = fv_dnnl_conv_new(d, &s, 1, &e);
                    if (!c) fail_msg("%s", e.msg);
                    fv_dnnl_conv_set_layout(c, ib, obk);
                    if (ib) to_blk(xb, x, N, s.C, HW, B), to_blk(refdx, ref.dx, N, s.C, HW, B);
                    else memcpy(xb, x, ni * sizeof(float)), memcpy(refdx, ref.dx, ni * sizeof(float));
                    if (obk) to_blk(gb, g, N, s.K, OHW, B), to_blk(refo, ref.out, N, s.K, OHW, B);
                    else memcpy(gb, g, no * sizeof(float)), memcpy(refo, ref.out, no * sizeof(float));
                    float *dw = fv_calloc(nw, sizeof(float)), *db = fv_calloc((size_t)s.K, sizeof(float));
                    for (size_t i = 0; i < ni; i++) dxb[i] = set ? NAN : 0.0f;
                    fv_dnnl_conv_forward(c, ob, xb, w, b, 1, &s);
                    fv_dnnl_conv_backward(c, dxb, set, dw, db, gb, xb, w, &s);
                    char what[128];
                    snprintf(what, sizeof what, "%dx%dx%d -> %d, %dx%d stride %d groups %d, layouts in %d out %d, set %d",
                             q[0], q[1], q[1], q[2], q[4], q[4], q[3], q[5], ib, obk, set);
                    if (memcmp(ob, refo, no * sizeof(float))) fail_msg("%s: forward differs", what);
                    same_values(dxb, refdx, ni, what);
                    if (!set && memcmp(dxb, refdx, ni * sizeof(float))) fail_msg("%s: input gradient bits", what);
                    if (memcmp(dw, ref.dw, nw * sizeof(float)) || memcmp(db, ref.db, (size_t)s.K * sizeof(float)))
                        fail_msg("%s: weight gradient differs", what);
                    free(dw), free(db);
                    fv_dnnl_conv_destroy(&c);
                }
        free(x), free(g), free(w), free(b), free(xb), free(gb), free(ob), free(dxb), free(refo), free(refdx);
        result_free(&ref);
    }
    fv_dnnl_destroy(&d);
#else
    skip();
#endif
}

/* A conv with enough work to split over both threads, twice: the same bits. */
static void test_kernel_deterministic(void **state) {
    (void)state;
#ifdef FEDVIM_HAVE_DNNL
    fv_err e;
    fv_dnnl *d = fv_dnnl_new(&e);
    if (!d) fail_msg("%s", e.msg);
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, 1, 32, 16, 16, 32, 3, 1, 1, 1);
    fv_dnnl_conv *c = fv_dnnl_conv_new(d, &s, 1, &e);
    if (!c) fail_msg("%s", e.msg);
    conv_result a = run_conv(d, c, &s, 32), b = run_conv(d, c, &s, 32);
    result_same(&a, &b, &s, 32, "repeated conv");
    result_free(&a), result_free(&b);
    fv_dnnl_conv_destroy(&c);
    fv_dnnl_destroy(&d);
#else
    skip();
#endif
}

/* The layout moves around oneDNN's kernels (conv_dnnl.c: NCHW <-> nChw8c / nChw16c, 4 x 4 SSE
 * blocks with scalar edges) are exact: a 3 x 3 conv (padding 1) whose kernel is the identity on the
 * centre tap gives back its input bit for bit (products with 0 and 1 are exact), and its input
 * gradient adds dout to what dinp held, bit for bit. Channel counts with whole 4-channel groups,
 * a partial group and padding channels in the last block (16, 32, 20, 18, 6), planes with and
 * without a pixel tail (28 x 28, 7 x 5, 9 x 9), batch 3. */
static void test_moves_exact(void **state) {
    (void)state;
#ifdef FEDVIM_HAVE_DNNL
    fv_err e;
    fv_dnnl *d = fv_dnnl_new(&e);
    if (!d) fail_msg("%s", e.msg);
    const int shapes[][3] = {{16, 28, 28}, {32, 28, 28}, {20, 7, 5}, {18, 9, 9}, {6, 7, 5}};
    fv_rng r;
    fv_rng_seed(&r, 77);
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int C = shapes[k][0], H = shapes[k][1], W = shapes[k][2], N = 3;
        fv_conv2d_shape s;
        fv_conv2d_shape_init(&s, N, C, H, W, C, 3, 1, 1, 1);
        fv_dnnl_conv *c = fv_dnnl_conv_new(d, &s, 0, &e);
        if (!c) fail_msg("%s", e.msg);
        const size_t n = (size_t)N * C * H * W;
        float *w = calloc((size_t)C * C * 9, sizeof(float)), *x = malloc(n * sizeof(float)),
              *y = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float)),
              *want = malloc(n * sizeof(float));
        for (int o = 0; o < C; o++) w[((size_t)o * C + o) * 9 + 4] = 1.0f;
        for (size_t i = 0; i < n; i++) {
            x[i] = (float)fv_rng_below(&r, 1u << 20) / (float)(1u << 18) - 2.0f;
            g[i] = (float)fv_rng_below(&r, 1u << 20) / (float)(1u << 19) - 1.0f;
            dx[i] = (float)fv_rng_below(&r, 1u << 20) / (float)(1u << 20);
            want[i] = dx[i] + g[i];
        }
        fv_dnnl_conv_forward(c, y, x, w, NULL, 0, &s);
        if (memcmp(y, x, n * sizeof(float)) != 0) fail_msg("identity conv %dx%dx%d: the output is not the input", C, H, W);
        fv_dnnl_conv_backward(c, dx, 0, NULL, NULL, g, x, w, &s);
        if (memcmp(dx, want, n * sizeof(float)) != 0)
            fail_msg("identity conv %dx%dx%d: dinp is not dinp + dout", C, H, W);
        free(w), free(x), free(y), free(g), free(dx), free(want);
        fv_dnnl_conv_destroy(&c);
    }
    fv_dnnl_destroy(&d);
#else
    skip();
#endif
}

/* The rule of FV_CONV_AUTO on the model zoo's shapes, as conv_dnnl.c documents it. */
static void test_rule(void **state) {
    (void)state;
#ifdef FEDVIM_HAVE_DNNL
    typedef struct {
        int C, H, K, R, stride, pad, groups, dnnl;
    } row;
    static const row rows[] = {
        /* ResNet-20 on 3x32x32: the 3x3 convs after the stem */
        {3, 32, 16, 3, 1, 1, 1, 0}, {16, 32, 16, 3, 1, 1, 1, 1}, {16, 32, 32, 3, 2, 1, 1, 1},
        {16, 32, 32, 1, 2, 0, 1, 0}, {32, 16, 32, 3, 1, 1, 1, 1}, {32, 16, 64, 3, 2, 1, 1, 1},
        {32, 16, 64, 1, 2, 0, 1, 0}, {64, 8, 64, 3, 1, 1, 1, 1},
        /* VGG-11 on 3x32x32: all but the stem */
        {3, 32, 16, 3, 1, 1, 1, 0}, {16, 16, 32, 3, 1, 1, 1, 1}, {32, 8, 64, 3, 1, 1, 1, 1},
        {64, 8, 64, 3, 1, 1, 1, 1}, {64, 4, 128, 3, 1, 1, 1, 1}, {128, 4, 128, 3, 1, 1, 1, 1},
        {128, 2, 128, 3, 1, 1, 1, 1},
        /* MobileNet on 3x32x32: the stem, depthwise and 1x1 convs all stay on OpenBLAS */
        {3, 32, 32, 3, 1, 1, 1, 0}, {32, 32, 32, 3, 1, 1, 32, 0}, {32, 32, 64, 1, 1, 0, 1, 0},
        {64, 32, 64, 3, 2, 1, 64, 0}, {64, 16, 128, 1, 1, 0, 1, 0}, {128, 16, 128, 3, 1, 1, 128, 0},
        {128, 16, 128, 1, 1, 0, 1, 0}, {128, 16, 128, 3, 2, 1, 128, 0}, {128, 8, 256, 1, 1, 0, 1, 0},
        {256, 8, 256, 3, 1, 1, 256, 0}, {256, 8, 256, 1, 1, 0, 1, 0},
        /* LeNet-5 on 1x28x28: 1 and 6 input channels */
        {1, 28, 6, 5, 1, 2, 1, 0}, {6, 14, 16, 5, 1, 0, 1, 0},
        /* grouped but not depthwise, and a dense 3x3 on 8 channels (the smallest block) */
        {16, 8, 16, 3, 1, 1, 2, 0}, {8, 8, 8, 3, 1, 1, 1, 1}, {7, 8, 8, 3, 1, 1, 1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *q = &rows[i];
        fv_conv2d_shape s;
        for (int n = 1; n <= 256; n *= 4) {
            fv_conv2d_shape_init(&s, n, q->C, q->H, q->H, q->K, q->R, q->stride, q->pad, q->groups);
            if (fv_dnnl_conv_prefer(&s) != q->dnnl)
                fail_msg("rule: C %d %dx%d K %d R %d s %d p %d g %d N %d: want %d", q->C, q->H, q->H, q->K, q->R,
                         q->stride, q->pad, q->groups, n, q->dnnl);
        }
    }
#else
    skip();
#endif
}

int main(void) {
    fv_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_set_conv),
        cmocka_unit_test(test_training_deterministic),
        cmocka_unit_test(test_paths_agree),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_kernel_deterministic),
        cmocka_unit_test(test_keep_and_set),
        cmocka_unit_test(test_blocked_layouts),
        cmocka_unit_test(test_rule),
        cmocka_unit_test(test_moves_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
