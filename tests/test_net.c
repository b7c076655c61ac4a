/* test_net.c: the graph wiring. Directional finite differences of the whole-network loss match the
 * analytic gradient (parameters and input) on a graph that uses every op, including a residual
 * add, batch norm and dropout (re-seeded so each evaluation sees the same mask); the per-layer
 * double-precision checks live in test_layers.c. Also: training is bitwise reproducible for a
 * fixed seed and thread count, timing the nodes (fv_net_profile) changes no result, kinks replay
 * (also saved and loaded back), the input-only backward equals the full one's input gradient, and
 * which batch-norm and add nodes may be fused with their ReLU, and that fusing them changes no bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/train.h"

/* Every op in one graph: conv -> bn -> relu -> (conv || identity) add -> maxpool -> avgpool ->
 * upsample -> tanh -> conv(depthwise) -> sigmoid -> gap ... flatten -> dropout -> linear */
static fv_net *all_ops_net(void) {
    fv_net *net = fv_net_new((fv_shape){2, 8, 8});
    int x = fv_net_conv2d(net, "c1", 0, 4, 3, 1, 1, 1, 1);
    x = fv_net_relu(net, fv_net_batchnorm(net, "bn", x));
    int y = fv_net_conv2d(net, "c2", x, 4, 3, 1, 1, 2, 0);
    x = fv_net_add(net, x, y);
    x = fv_net_maxpool(net, x, 2, 2, 0);
    x = fv_net_avgpool(net, x, 3, 1, 1);
    x = fv_net_tanh(net, fv_net_upsample(net, x, 2));
    x = fv_net_sigmoid(net, fv_net_conv2d(net, "dw", x, 4, 3, 2, 1, 4, 1));
    int g = fv_net_flatten(net, fv_net_gap(net, x));
    int f = fv_net_flatten(net, x);
    f = fv_net_linear(net, "fc0", f, 4, 1);
    x = fv_net_add(net, g, f);
    x = fv_net_dropout(net, x, 0.25f);
    fv_net_linear(net, "fc", x, 3, 1);
    fv_net_finish(net, 5);
    return net;
}

static double loss_at(fv_net *net, const float *x, const int *y, int n) {
    fv_net_seed_dropout(net, 99);
    const float *z = fv_net_forward(net, x, n, 1);
    return fv_softmax_xent(NULL, z, y, n, 3, NULL);
}

/* The directional finite-difference check of net's loss gradient (parameters and input), batch 4,
 * 3 classes, inputs of at most 4 * 512 floats, central differences of step h. */
static void check_graph_gradients(fv_net *net, double h) {
    net->want_input_grad = 1;
    const int n = 4;
    size_t isz = fv_shape_size(net->input);
    assert_true(isz <= 512);
    float x[4 * 512];
    int y[4] = {0, 1, 2, 1};
    fv_rng r;
    fv_rng_seed(&r, 11);
    for (size_t i = 0; i < n * isz; i++) x[i] = (float)fv_rng_normal(&r);
    fv_net_seed_dropout(net, 99);
    const float *z = fv_net_forward(net, x, n, 1);
    float dl[12];
    fv_softmax_xent(dl, z, y, n, 3, NULL);
    fv_net_backward(net, dl, n);
    float *g = fv_malloc(net->n_train * sizeof(float));
    memcpy(g, net->grads, net->n_train * sizeof(float));
    float *gx = fv_malloc(n * isz * sizeof(float));
    memcpy(gx, net->input_grad, n * isz * sizeof(float));
    double gn = 0;
    for (size_t i = 0; i < net->n_train; i++) gn += (double)g[i] * g[i];
    assert_true(gn > 1e-6); /* guard: an all-zero gradient must not pass */
    /* Directional derivative along random unit directions, central difference, step h on the
     * direction; tolerance: |fd - analytic| <= 3e-2 * max(|analytic|, 1e-2) (float forward). */
    float *v = fv_malloc(net->n_train * sizeof(float));
    float *p0 = fv_malloc(net->n_train * sizeof(float));
    memcpy(p0, net->params, net->n_train * sizeof(float));
    for (int trial = 0; trial < 5; trial++) {
        double vn = 0, dot = 0;
        for (size_t i = 0; i < net->n_train; i++) {
            v[i] = (float)fv_rng_normal(&r);
            vn += (double)v[i] * v[i];
        }
        vn = sqrt(vn);
        for (size_t i = 0; i < net->n_train; i++) {
            v[i] = (float)(v[i] / vn);
            dot += (double)v[i] * g[i];
        }
        for (size_t i = 0; i < net->n_train; i++) net->params[i] = p0[i] + (float)h * v[i];
        double lp = loss_at(net, x, y, n);
        for (size_t i = 0; i < net->n_train; i++) net->params[i] = p0[i] - (float)h * v[i];
        double lm = loss_at(net, x, y, n);
        memcpy(net->params, p0, net->n_train * sizeof(float));
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dot) > 3e-2 * fmax(fabs(dot), 1e-2)) fail_msg("params trial %d: fd %g analytic %g", trial, fd, dot);
    }
    /* input gradient, same tolerance */
    double gxn = 0;
    for (size_t i = 0; i < n * isz; i++) gxn += (double)gx[i] * gx[i];
    assert_true(gxn > 1e-8);
    float xp[4 * 512], vx[4 * 512];
    for (int trial = 0; trial < 3; trial++) {
        double vn = 0, dot = 0;
        for (size_t i = 0; i < n * isz; i++) {
            vx[i] = (float)fv_rng_normal(&r);
            vn += (double)vx[i] * vx[i];
        }
        vn = sqrt(vn);
        for (size_t i = 0; i < n * isz; i++) {
            vx[i] = (float)(vx[i] / vn);
            dot += (double)vx[i] * gx[i];
        }
        for (size_t i = 0; i < n * isz; i++) xp[i] = x[i] + (float)h * vx[i];
        double lp = loss_at(net, xp, y, n);
        for (size_t i = 0; i < n * isz; i++) xp[i] = x[i] - (float)h * vx[i];
        double lm = loss_at(net, xp, y, n);
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - dot) > 3e-2 * fmax(fabs(dot), 1e-2)) fail_msg("input trial %d: fd %g analytic %g", trial, fd, dot);
    }
    free(v);
    free(p0);
    free(g);
    free(gx);
}

static void test_graph_gradients(void **st) {
    (void)st;
    fv_set_threads(2);
    fv_net *net = all_ops_net();
    check_graph_gradients(net, 1e-2);
    fv_net_destroy(&net);
}

static fv_dataset synth(int n) {
    fv_dataset d = {0};
    d.n = n;
    d.c = 1;
    d.h = d.w = 16;
    d.classes = 4;
    d.x = fv_malloc((size_t)n * 256);
    d.y = fv_malloc((size_t)n);
    fv_rng r;
    fv_rng_seed(&r, 4);
    for (int i = 0; i < n; i++) {
        d.y[i] = (uint8_t)(i % 4);
        for (int p = 0; p < 256; p++) /* class-dependent bright quadrant plus noise */
            d.x[(size_t)i * 256 + p] = (uint8_t)((((p / 16) / 8) * 2 + (p % 16) / 8 == d.y[i]) * 150 + fv_rng_below(&r, 100));
    }
    return d;
}

static void train_once(float **out, size_t *n, double *acc) {
    fv_dataset d = synth(256);
    fv_err e = {{0}};
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 16, 16}, 4, 7, &e);
    assert_non_null(net);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_rng r;
    fv_rng_seed(&r, 8);
    fv_norm norm = {{0.5f}, {0.5f}};
    for (int ep = 0; ep < 3; ep++) fv_train_epoch(net, opt, &d, NULL, d.n, 32, norm, &r, 0, NULL, NULL, NULL, NULL);
    *acc = fv_evaluate(net, &d, NULL, d.n, 64, norm).accuracy;
    *n = net->n_params;
    *out = fv_malloc(*n * sizeof(float));
    memcpy(*out, net->params, *n * sizeof(float));
    fv_opt_destroy(&opt);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

static void test_bitwise_reproducible_and_learns(void **st) {
    (void)st;
    fv_set_threads(2);
    float *a, *b;
    size_t na, nb;
    double acc_a, acc_b;
    train_once(&a, &na, &acc_a);
    train_once(&b, &nb, &acc_b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(float));
    assert_true(acc_a > 0.9); /* a trivially separable synthetic task */
    free(a);
    free(b);
}

/* Regression: an ADD whose first input is the network input must still pass its gradient to its
 * second input when the input gradient is not wanted (the whole op used to be skipped). */
static void test_add_of_input(void **st) {
    (void)st;
    fv_net *net = fv_net_new((fv_shape){1, 4, 4});
    int y = fv_net_conv2d(net, "c", 0, 1, 3, 1, 1, 1, 1);
    int x = fv_net_add(net, 0, y);
    fv_net_linear(net, "fc", fv_net_flatten(net, x), 2, 1);
    fv_net_finish(net, 1);
    float in[16], dl[2];
    for (int i = 0; i < 16; i++) in[i] = (float)i / 16.0f;
    int lab = 1;
    const float *z = fv_net_forward(net, in, 1, 1);
    fv_softmax_xent(dl, z, &lab, 1, 2, NULL);
    fv_net_backward(net, dl, 1);
    const fv_tensor *cw = fv_net_tensor(net, "c.weight");
    double g = 0;
    for (size_t i = 0; i < cw->count; i++) g += fabs(net->grads[cw->off + i]);
    assert_true(g > 1e-6); /* the conv behind the add gets a gradient */
    fv_net_destroy(&net);
}

/* fv_net_fusable_relu: the batch-norm and add nodes whose only consumer is a ReLU (the pairs the
 * CUDA backend fuses), in the zoo and in hand-made graphs where a second reader forbids it. */
static int fusable_pairs(const fv_net *net) {
    int k = 0;
    for (int i = 0; i < net->n_nodes; i++) {
        const int j = fv_net_fusable_relu(net, i);
        if (!j) continue;
        assert_int_equal(net->nodes[j].op, FV_OP_RELU);
        assert_int_equal(net->nodes[j].in0, i);
        k++;
    }
    return k;
}

static void test_fusable_relu(void **st) {
    (void)st;
    static const struct {
        const char *model;
        fv_shape in;
        int pairs;
    } zoo[] = {
        {"lenet5", {1, 28, 28}, 0},    /* ReLUs after convs and linears only */
        {"resnet20", {3, 32, 32}, 19}, /* the stem's bn + relu, then per block bn + relu and add + relu */
        {"vgg11", {3, 32, 32}, 8},     /* eight conv + bn + relu */
        {"mobilenet", {3, 32, 32}, 11}, /* the stem and each block's two conv + bn + relu */
    };
    for (size_t m = 0; m < sizeof zoo / sizeof zoo[0]; m++) {
        fv_err e;
        fv_net *net = fv_model_new(zoo[m].model, zoo[m].in, 10, 1, &e);
        if (!net) fail_msg("%s", e.msg);
        const int k = fusable_pairs(net);
        print_message("%s: %d batch-norm or add nodes with a ReLU as their only consumer\n", zoo[m].model, k);
        if (zoo[m].pairs >= 0) assert_int_equal(k, zoo[m].pairs);
        else assert_true(k > 0);
        fv_net_destroy(&net);
    }
    /* bn read by a ReLU and by an add: no; the add's ReLU: yes; a bn that is the output: no */
    fv_net *net = fv_net_new((fv_shape){2, 4, 4});
    const int c = fv_net_conv2d(net, "c", 0, 2, 3, 1, 1, 1, 0);
    const int bn = fv_net_batchnorm(net, "bn", c);
    const int r = fv_net_relu(net, bn);
    const int a = fv_net_add(net, r, bn);
    const int ra = fv_net_relu(net, a);
    const int bn2 = fv_net_batchnorm(net, "bn2", ra);
    const int r2 = fv_net_relu(net, bn2);
    const int a2 = fv_net_add(net, r2, r2);
    const int r3 = fv_net_relu(net, a2);
    const int bn3 = fv_net_batchnorm(net, "bn3", r3);
    fv_net_finish(net, 1);
    assert_int_equal(fv_net_fusable_relu(net, bn), 0);
    assert_int_equal(fv_net_fusable_relu(net, a), ra);
    assert_int_equal(fv_net_fusable_relu(net, bn2), r2);
    assert_int_equal(fv_net_fusable_relu(net, a2), r3);
    assert_int_equal(fv_net_fusable_relu(net, bn3), 0); /* the net's output */
    assert_int_equal(fv_net_fusable_relu(net, c), 0);   /* a conv: never */
    assert_int_equal(fv_net_fusable_relu(net, r), 0);
    fv_net_destroy(&net);
}

/* A data set of 40 random images of shape `in` with random labels of 10 classes (seed 21). */
static fv_dataset random_images(fv_shape in) {
    fv_dataset d = {0};
    d.n = 40, d.c = in.c, d.h = in.h, d.w = in.w, d.classes = 10;
    const size_t isz = fv_shape_size(in);
    d.x = fv_malloc((size_t)d.n * isz);
    d.y = fv_malloc((size_t)d.n);
    fv_rng g;
    fv_rng_seed(&g, 21);
    for (size_t i = 0; i < (size_t)d.n * isz; i++) d.x[i] = (uint8_t)fv_rng_below(&g, 256);
    for (int i = 0; i < d.n; i++) d.y[i] = (uint8_t)fv_rng_below(&g, 10);
    return d;
}

/* A small residual net whose activations can all stay blocked (fv_net_set_blocked): a dense stem,
 * a depthwise conv and its batch norm, conv -> bn -> relu -> conv -> bn, a strided 1x1 shortcut with its batch norm, add -> relu,
 * a standalone ReLU after a second add of identity, global pooling, linear. */
static fv_net *blocked_net(void) {
    fv_net *net = fv_net_new((fv_shape){3, 6, 6});
    int x = fv_net_relu(net, fv_net_batchnorm(net, "bn0", fv_net_conv2d(net, "c0", 0, 16, 3, 1, 1, 1, 0)));
    x = fv_net_batchnorm(net, "bnd", fv_net_conv2d(net, "cd", x, 16, 3, 1, 1, 16, 0)); /* depthwise */
    int y = fv_net_relu(net, fv_net_batchnorm(net, "bn1", fv_net_conv2d(net, "c1", x, 32, 3, 2, 1, 1, 0)));
    y = fv_net_batchnorm(net, "bn2", fv_net_conv2d(net, "c2", y, 32, 3, 1, 1, 1, 0));
    int sc = fv_net_batchnorm(net, "bns", fv_net_conv2d(net, "cs", x, 32, 1, 2, 0, 1, 0));
    x = fv_net_relu(net, fv_net_add(net, y, sc));
    x = fv_net_relu(net, fv_net_add(net, x, fv_net_conv2d(net, "c3", x, 32, 3, 1, 1, 1, 1)));
    x = fv_net_flatten(net, fv_net_gap(net, x));
    fv_net_linear(net, "fc", x, 3, 1);
    fv_net_finish(net, 9);
    return net;
}

/* Blocked activations (fv_net_set_blocked), where this machine's oneDNN picks a blocked layout:
 *  - which outputs are kept blocked: every one from ResNet-20's stem to its pooling (70, all 21
 *    convs through oneDNN), VGG-11's conv pairs between pools (12), all of MobileNet's from the
 *    stem to the pooling (33, depthwise convs included), none of LeNet-5's (6 channels), none
 *    with FV_CONV_BLAS or when off;
 *  - the finite-difference check of the whole network's gradient through the blocked kernels;
 *  - one ResNet-20 step blocked and not: losses within 1e-6 relative, gradients within 4x what
 *    another rounding of the same arithmetic gives (NCHW with every conv through oneDNN) plus
 *    1e-6 of the largest, and never beyond 2e-3 of it (the batch-norm sums run in another order,
 *    the stem and shortcuts through oneDNN). Measured: the release build 4.9e-7 of 0.19 (the
 *    calibration 4.5e-7), the unvectorised Debug build 1.4e-4 (calibration 1.4e-4: its float
 *    sums run in one sequence). Not compared after training: two epochs of SGD with momentum on random labels carry
 *    those roundings to 4e-2 in the parameters;
 *  - two epochs blocked, twice from one seed: the same bits. */
static void test_blocked(void **st) {
    (void)st;
    fv_set_threads(2);
    fv_err e;
    fv_net *net = fv_model_new("resnet20", (fv_shape){3, 32, 32}, 10, 5, &e);
    if (!net) fail_msg("%s", e.msg);
    fv_net_set_blocked(net, 1);
    const int k = fv_net_blocked_count(net);
#ifndef FEDVIM_HAVE_DNNL
    assert_int_equal(k, 0);
    fv_net_destroy(&net);
    skip();
#endif
    if (k == 0) {
        print_message("oneDNN keeps no blocked layout on this machine: nothing to check\n");
        fv_net_destroy(&net);
        skip();
    }
    int convs = 0, dn = 0;
    for (int i = 1; i < net->n_nodes; i++)
        if (net->nodes[i].op == FV_OP_CONV2D) convs++, dn += fv_net_node_dnnl(net, i);
    assert_int_equal(k, 70);
    assert_int_equal(dn, 21);
    assert_int_equal(convs, 21);
    assert_int_equal(net->nodes[0].blocked, 0);
    assert_int_equal(net->nodes[net->n_nodes - 1].blocked, 0);
    if (fv_net_set_conv(net, FV_CONV_BLAS, &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(fv_net_blocked_count(net), 0);
    if (fv_net_set_conv(net, FV_CONV_AUTO, &e) != 0) fail_msg("%s", e.msg);
    assert_int_equal(fv_net_blocked_count(net), 70);
    fv_net_set_blocked(net, 0);
    assert_int_equal(fv_net_blocked_count(net), 0);
    fv_net_destroy(&net);
    static const struct { const char *m; int c, hw, k; } zoo[] = {
        {"vgg11", 3, 32, 12}, {"mobilenet", 3, 32, 33}, {"lenet5", 1, 28, 0}};
    for (size_t z = 0; z < sizeof zoo / sizeof zoo[0]; z++) {
        net = fv_model_new(zoo[z].m, (fv_shape){zoo[z].c, zoo[z].hw, zoo[z].hw}, 10, 5, &e);
        if (!net) fail_msg("%s", e.msg);
        fv_net_set_blocked(net, 1);
        if (fv_net_blocked_count(net) != zoo[z].k)
            fail_msg("%s: %d outputs blocked, expected %d", zoo[z].m, fv_net_blocked_count(net), zoo[z].k);
        fv_net_destroy(&net);
    }
    /* the gradient through every blocked kernel */
    net = blocked_net();
    fv_net_set_blocked(net, 1);
    print_message("blocked_net: %d of %d outputs blocked\n", fv_net_blocked_count(net), net->n_nodes);
    assert_int_equal(fv_net_blocked_count(net), net->n_nodes - 4); /* not the input, flatten, gap, linear */
    check_graph_gradients(net, 1e-3); /* 1e-2 steps over batch-norm curvature here (3-4% off, blocked or not) */
    fv_net_destroy(&net);
    /* one step blocked against NCHW: the same loss and gradient within float rounding, calibrated
     * by another rounding of the same arithmetic (every conv through oneDNN, NCHW) */
    {
        const int n = 16;
        const size_t isz = 3 * 32 * 32;
        float *x = fv_malloc(n * isz * sizeof(float)), *gr[3];
        int y[16];
        fv_rng r;
        fv_rng_seed(&r, 3);
        for (size_t i = 0; i < n * isz; i++) x[i] = (float)fv_rng_normal(&r);
        for (int i = 0; i < n; i++) y[i] = i % 10;
        double L[3];
        size_t nt = 0;
        for (int b = 0; b < 3; b++) { /* NCHW, blocked, NCHW with every conv through oneDNN */
            net = fv_model_new("resnet20", (fv_shape){3, 32, 32}, 10, 5, &e);
            if (!net) fail_msg("%s", e.msg);
            fv_net_set_blocked(net, b == 1);
            if (b == 2 && fv_net_set_conv(net, FV_CONV_DNNL, &e) != 0) fail_msg("%s", e.msg);
            const float *z = fv_net_forward(net, x, n, 1);
            float dl[160];
            L[b] = fv_softmax_xent(dl, z, y, n, 10, NULL);
            fv_net_backward(net, dl, n);
            nt = net->n_train;
            gr[b] = fv_malloc(nt * sizeof(float));
            memcpy(gr[b], net->grads, nt * sizeof(float));
            fv_net_destroy(&net);
        }
        double dg = 0, dc = 0, mg = 0;
        for (size_t i = 0; i < nt; i++) {
            dg = fmax(dg, fabs((double)gr[1][i] - gr[0][i]));
            dc = fmax(dc, fabs((double)gr[2][i] - gr[0][i]));
            mg = fmax(mg, fabs((double)gr[0][i]));
        }
        print_message("ResNet-20, one step: loss %.9g NCHW, %.9g blocked; gradients differ by %.3g of %.3g "
                      "(NCHW with every conv through oneDNN: %.3g)\n", L[0], L[1], dg, mg, dc);
        const int ok = fabs(L[0] - L[1]) <= 1e-6 * fabs(L[0]) && dg <= 4 * dc + 1e-6 * mg && dg <= 2e-3 * mg;
        free(gr[0]), free(gr[1]), free(gr[2]), free(x);
        if (!ok) fail_msg("blocked and NCHW disagree beyond rounding: losses %.9g and %.9g, gradients by %g", L[0], L[1], dg);
    }
    /* two epochs blocked, twice: the same bits */
    fv_dataset d = random_images((fv_shape){3, 32, 32});
    float *p[2];
    double loss[2];
    size_t np = 0;
    for (int run = 0; run < 2; run++) {
        net = fv_model_new("resnet20", (fv_shape){3, 32, 32}, 10, 5, &e);
        if (!net) fail_msg("%s", e.msg);
        fv_net_set_blocked(net, 1);
        fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
        oc.lr = 0.05f, oc.momentum = 0.9f;
        fv_opt *opt = fv_opt_new(&oc, net->n_train);
        fv_rng r;
        fv_rng_seed(&r, 8);
        loss[run] = 0;
        for (int ep = 0; ep < 2; ep++)
            loss[run] += fv_train_epoch(net, opt, &d, NULL, d.n, 16, fv_norm_for("cifar10"), &r, 0, NULL, NULL, NULL, NULL).loss;
        np = net->n_params;
        p[run] = fv_malloc(np * sizeof(float));
        memcpy(p[run], net->params, np * sizeof(float));
        fv_opt_destroy(&opt);
        fv_net_destroy(&net);
    }
    assert_true(isfinite(loss[0]));
    if (memcmp(&loss[0], &loss[1], sizeof loss[0]) || memcmp(p[0], p[1], np * sizeof(float)))
        fail_msg("blocked training is not reproducible");
    for (int run = 0; run < 2; run++) free(p[run]);
    fv_dataset_free(&d);
}

/* Fusion (fv_net_set_fuse) gives the unfused bits: `model` trained by fv_train_epoch (SGD
 * momentum, two epochs with a partial last batch) fused and unfused from one seed must end with
 * equal parameters (running statistics included) and losses, and one more step's gradient and
 * input gradient must be equal, at 1 and 2 threads (the batch-norm kernels split channels over
 * threads). Exact equality, no tolerance: fusion changes no rounding by design (layers.h). */
static void fuse_case(const char *model, fv_shape in, int threads, int blocked) {
    fv_set_threads(threads);
    fv_dataset d = random_images(in);
    const size_t isz = fv_shape_size(in);
    float *x = fv_malloc(8 * isz * sizeof(float));
    for (size_t i = 0; i < 8 * isz; i++) x[i] = (float)d.x[i] / 127.5f - 1.0f;
    int y[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    float *p[2], *gr[2], *gx[2];
    double loss[2];
    size_t np = 0, nt = 0;
    int fused = 0;
    for (int f = 0; f < 2; f++) {
        fv_err e;
        fv_net *net = fv_model_new(model, in, 10, 5, &e);
        if (!net) fail_msg("%s", e.msg);
        fv_net_set_fuse(net, f);
        fv_net_set_blocked(net, blocked);
        fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
        oc.lr = 0.05f, oc.momentum = 0.9f;
        fv_opt *opt = fv_opt_new(&oc, net->n_train);
        fv_rng r;
        fv_rng_seed(&r, 8);
        fv_net_seed_dropout(net, 3);
        const fv_norm norm = fv_norm_for("cifar10");
        loss[f] = 0;
        for (int ep = 0; ep < 2; ep++)
            loss[f] += fv_train_epoch(net, opt, &d, NULL, d.n, 16, norm, &r, 0, NULL, NULL, NULL, NULL).loss;
        fused = 0;
        for (int i = 1; i < net->n_nodes; i++) fused += net->nodes[i].fused_relu != 0;
        assert_int_equal(net->last_fused, f); /* the last training forward fused, or not */
        /* one more step with the input gradient */
        net->want_input_grad = 1;
        const float *z = fv_net_forward(net, x, 8, 1);
        float dl[80];
        fv_softmax_xent(dl, z, y, 8, 10, NULL);
        fv_net_backward(net, dl, 8);
        np = net->n_params, nt = net->n_train;
        p[f] = fv_malloc(np * sizeof(float));
        gr[f] = fv_malloc(nt * sizeof(float));
        gx[f] = fv_malloc(8 * isz * sizeof(float));
        memcpy(p[f], net->params, np * sizeof(float));
        memcpy(gr[f], net->grads, nt * sizeof(float));
        memcpy(gx[f], net->input_grad, 8 * isz * sizeof(float));
        fv_opt_destroy(&opt);
        fv_net_destroy(&net);
    }
    print_message("%s, %d threads%s: %d pairs fused, losses %.9g both ways\n", model, threads,
                  blocked ? ", blocked" : "", fused, loss[0]);
    assert_true(isfinite(loss[0]));
    if (memcmp(&loss[0], &loss[1], sizeof loss[0]) != 0)
        fail_msg("%s: loss %.12g unfused, %.12g fused", model, loss[0], loss[1]);
    if (memcmp(p[0], p[1], np * sizeof(float)) != 0) fail_msg("%s: fused training gave other parameters", model);
    if (memcmp(gr[0], gr[1], nt * sizeof(float)) != 0) fail_msg("%s: fused gradient differs", model);
    if (memcmp(gx[0], gx[1], 8 * isz * sizeof(float)) != 0) fail_msg("%s: fused input gradient differs", model);
    for (int f = 0; f < 2; f++) free(p[f]), free(gr[f]), free(gx[f]);
    free(x);
    fv_dataset_free(&d);
}

static void test_fusion_same_bits(void **st) {
    (void)st;
    for (int t = 1; t <= 2; t++) {
        fuse_case("resnet20", (fv_shape){3, 32, 32}, t, 0);
        fuse_case("vgg11", (fv_shape){3, 32, 32}, t, 0); /* dropout too */
        fuse_case("mobilenet", (fv_shape){3, 32, 32}, t, 0);
        fuse_case("resnet20", (fv_shape){3, 32, 32}, t, 1); /* the blocked kernels' fused forms */
        fuse_case("vgg11", (fv_shape){3, 32, 32}, t, 1);
        fuse_case("mobilenet", (fv_shape){3, 32, 32}, t, 1);
    }
    fuse_case("lenet5", (fv_shape){1, 28, 28}, 2, 0);
    fv_set_threads(2);
}

/* Profiling times every node with work and changes nothing: outputs and gradients of a step are
 * bitwise those of the same step unprofiled; switching on zeroes the times, off frees them. */
static void test_profile(void **st) {
    (void)st;
    fv_set_threads(2);
    fv_err e = {{0}};
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 3, &e);
    assert_non_null(net);
    const int n = 8, nn = net->n_nodes;
    float *x = fv_malloc((size_t)n * 784 * sizeof(float)), dl[80];
    int y[8];
    fv_rng r;
    fv_rng_seed(&r, 4);
    for (int i = 0; i < n * 784; i++) x[i] = fv_rng_uniform(&r);
    for (int i = 0; i < n; i++) y[i] = i % 10;
    float *z0 = fv_malloc(80 * sizeof(float)), *g0 = fv_malloc(net->n_train * sizeof(float));
    memcpy(z0, fv_net_forward(net, x, n, 1), sizeof dl);
    fv_softmax_xent(dl, z0, y, n, 10, NULL);
    fv_net_backward(net, dl, n);
    memcpy(g0, net->grads, net->n_train * sizeof(float));

    assert_null(net->prof);
    fv_net_profile(net, 1);
    assert_non_null(net->prof);
    for (int i = 0; i < 2 * nn; i++) assert_true(net->prof[i] == 0.0);
    for (int rep = 0; rep < 2; rep++) {
        const float *z = fv_net_forward(net, x, n, 1);
        assert_memory_equal(z, z0, sizeof dl);
        fv_net_backward(net, dl, n);
        assert_memory_equal(net->grads, g0, net->n_train * sizeof(float));
    }
    assert_true(net->prof[0] == 0.0); /* the input node does no forward work */
    for (int i = 0; i < 2 * nn; i++) assert_true(net->prof[i] >= 0.0);
    for (int i = 1; i < nn; i++) {
        if (strcmp(fv_net_op_name(net, i), "conv2d") != 0) continue;
        assert_true(net->prof[i] > 0.0 && net->prof[nn + i] > 0.0);
    }
    char buf[64];
    assert_string_equal(fv_net_op_name(net, 1), "conv2d");
    assert_string_equal(fv_net_node_prefix(net, 1, buf, sizeof buf), "conv1");
    assert_null(fv_net_node_prefix(net, 2, buf, sizeof buf)); /* relu: no tensors */
    assert_string_equal(fv_net_node_prefix(net, nn - 1, buf, sizeof buf), "fc3");
    assert_string_equal(fv_net_node_prefix(net, 1, buf, 3), "co"); /* truncated to fit */
    fv_net_profile(net, 1);
    for (int i = 0; i < 2 * nn; i++) assert_true(net->prof[i] == 0.0);
    fv_net_profile(net, 0);
    assert_null(net->prof);
    free(x), free(z0), free(g0);
    fv_net_destroy(&net);
}

/* Kink record / replay (net.h, fv_kinks): a REPLAY forward at the recorded parameters is the
 * FREE forward bit for bit, and so is its backward; at other parameters every ReLU and max pool
 * keeps the recorded pattern (the output is linear in a parameter step within one region, so a
 * step and its double give exactly proportional changes up to float rounding: 1e-4 relative). */
static void test_kinks_replay(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 4, &e);
    assert_non_null(net);
    const int n = 3, K = 10;
    const size_t isz = 784, nt = net->n_train;
    float *x = fv_malloc(sizeof(float) * n * isz), *z0 = fv_malloc(sizeof(float) * 4 * n * K), *z1 = z0 + n * K,
          *z2 = z1 + n * K, *z3 = z2 + n * K;
    float *g0 = fv_malloc(sizeof(float) * nt * 2), *g1 = g0 + nt, *th = fv_malloc(sizeof(float) * nt);
    int y[3] = {1, 4, 9};
    fv_rng r;
    fv_rng_seed(&r, 3);
    for (size_t i = 0; i < n * isz; i++) x[i] = (float)fv_rng_normal(&r);
    float dl[30];
    memcpy(z0, fv_net_forward(net, x, n, 1), sizeof(float) * n * K);
    fv_softmax_xent(dl, z0, y, n, K, NULL);
    fv_net_backward(net, dl, n);
    memcpy(g0, net->grads, sizeof(float) * nt);
    fv_net_set_kinks(net, FV_KINKS_RECORD);
    fv_net_forward(net, x, n, 1);
    fv_net_set_kinks(net, FV_KINKS_REPLAY);
    memcpy(z1, fv_net_forward(net, x, n, 1), sizeof(float) * n * K);
    fv_net_backward(net, dl, n);
    memcpy(g1, net->grads, sizeof(float) * nt);
    assert_memory_equal(z0, z1, sizeof(float) * n * K);
    assert_memory_equal(g0, g1, sizeof(float) * nt);
    /* a bias-only step of the first layer: with the kinks held the logits move linearly */
    memcpy(th, net->params, sizeof(float) * nt);
    const fv_tensor *b = fv_net_tensor(net, "conv1.bias");
    assert_non_null(b);
    for (int s = 1; s <= 2; s++) {
        for (size_t i = 0; i < b->count; i++) net->params[b->off + i] = th[b->off + i] + 0.05f * s;
        memcpy(s == 1 ? z2 : z3, fv_net_forward(net, x, n, 1), sizeof(float) * n * K);
    }
    memcpy(net->params, th, sizeof(float) * nt);
    double d = 0, m = 0;
    for (int i = 0; i < n * K; i++) d = fmax(d, fabs((z3[i] - z1[i]) - 2 * (z2[i] - z1[i]))), m = fmax(m, fabs(z3[i] - z1[i]));
    assert_true(m > 0 && d <= 1e-4 * m + 1e-6);
    /* saved kinks, loaded after another batch was recorded, replay as if just recorded */
    uint8_t *kb = fv_malloc(fv_net_kinks_bytes(net, n));
    fv_net_kinks_save(net, kb);
    fv_net_set_kinks(net, FV_KINKS_RECORD);
    for (size_t i = 0; i < n * isz; i++) x[i] = -x[i];
    fv_net_forward(net, x, n, 1);
    for (size_t i = 0; i < n * isz; i++) x[i] = -x[i];
    fv_net_kinks_load(net, kb, n);
    fv_net_set_kinks(net, FV_KINKS_REPLAY);
    for (size_t i = 0; i < b->count; i++) net->params[b->off + i] = th[b->off + i] + 0.05f;
    assert_memory_equal(fv_net_forward(net, x, n, 1), z2, sizeof(float) * n * K);
    memcpy(net->params, th, sizeof(float) * nt);
    free(kb);
    fv_net_set_kinks(net, FV_KINKS_FREE);
    free(x), free(z0), free(g0), free(th);
    fv_net_destroy(&net);
}

/* One backward of net on x[n] with labels y: input_grad into gx, and (when want_th) grads into g. */
static void backward_once(fv_net *net, const float *x, const int *y, int n, int skip, float *gx, float *g) {
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    float *dl = fv_malloc(sizeof(float) * (size_t)n * K);
    fv_net_seed_dropout(net, 99);
    const float *z = fv_net_forward(net, x, n, 1);
    fv_softmax_xent(dl, z, y, n, K, NULL);
    net->want_input_grad = 1;
    net->skip_param_grad = skip;
    fv_net_backward(net, dl, n);
    net->skip_param_grad = 0;
    memcpy(gx, net->input_grad, sizeof(float) * (size_t)n * fv_shape_size(net->input));
    if (g) memcpy(g, net->grads, sizeof(float) * net->n_train);
    free(dl);
}

/* A patch conv, 1x1 conv and the token ops (tokens, layer norm, token linear, attention, GELU,
 * token select), for the input-only backward. */
static fv_net *token_net(void) {
    fv_net *net = fv_net_new((fv_shape){2, 8, 8});
    int x = fv_net_conv2d(net, "pw", 0, 3, 1, 1, 0, 1, 1);
    x = fv_net_tokens(net, "t", fv_net_conv2d(net, "patch", x, 8, 4, 4, 0, 1, 1));
    int y = fv_net_layernorm(net, "ln", x);
    y = fv_net_attention(net, fv_net_token_linear(net, "qkv", y, 24, 1), 2);
    y = fv_net_gelu(net, fv_net_token_linear(net, "proj", y, 8, 1));
    x = fv_net_add(net, x, y);
    fv_net_linear(net, "head", fv_net_token_select(net, x, 0), 3, 1);
    fv_net_finish(net, 6);
    return net;
}

/* The input-only backward (skip_param_grad) gives bitwise the input gradient of the full one, and
 * keeping the forward's im2col (keep_im2col) bitwise the same gradients, on
 * every layer type (the all-ops graph: general, grouped and depthwise convs, batch norm, linear;
 * the token graph: 1x1 and patch convs, token ops; LeNet-5, where every parameter node skips),
 * at 1 and 2 threads; the next full backward's parameter gradients are unaffected. */
static void test_input_only_backward(void **st) {
    (void)st;
    fv_err e = {{0}};
    /* every net on its automatic conv paths, then (a oneDNN build) every conv forced through
     * oneDNN, whose input-only backward skips the backward-weights primitive; ResNet-20 for batch
     * norm between the convs */
    for (int which = 0; which < 8; which++) {
        const int m = which % 4, dnnl = which >= 4;
        fv_net *net = m == 0   ? all_ops_net()
                      : m == 1 ? token_net()
                      : m == 2 ? fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 3, &e)
                               : fv_model_new("resnet20", (fv_shape){3, 16, 16}, 10, 3, &e);
        assert_non_null(net);
        if (dnnl && fv_net_set_conv(net, FV_CONV_DNNL, &e) != 0) { /* no oneDNN in this build */
            print_message("net %d: no oneDNN path (%s)\n", m, e.msg);
            fv_net_destroy(&net);
            continue;
        }
        int nd = 0;
        for (int i = 1; i < net->n_nodes; i++) nd += fv_net_node_dnnl(net, i);
        if (dnnl) print_message("net %d: %d conv nodes through oneDNN\n", m, nd);
        const int n = 4;
        const size_t isz = fv_shape_size(net->input), nt = net->n_train;
        float *x = fv_malloc(sizeof(float) * n * isz), *gx0 = fv_malloc(sizeof(float) * n * isz * 2), *gx1 = gx0 + n * isz;
        float *g0 = fv_malloc(sizeof(float) * nt * 2), *g1 = g0 + nt;
        int y[4] = {0, 1, 2, 1};
        fv_rng r;
        fv_rng_seed(&r, 21);
        for (size_t i = 0; i < n * isz; i++) x[i] = (float)fv_rng_normal(&r);
        for (int threads = 1; threads <= 2; threads++) {
            fv_set_threads(threads);
            backward_once(net, x, y, n, 0, gx0, g0);
            backward_once(net, x, y, n, 1, gx1, NULL);
            assert_memory_equal(gx0, gx1, sizeof(float) * n * isz);
            backward_once(net, x, y, n, 0, gx1, g1);
            assert_memory_equal(g0, g1, sizeof(float) * nt);
            /* the im2col kept from the forward: the same gradients, full and input-only */
            net->keep_im2col = 1;
            backward_once(net, x, y, n, 0, gx1, g1);
            assert_memory_equal(gx0, gx1, sizeof(float) * n * isz);
            assert_memory_equal(g0, g1, sizeof(float) * nt);
            backward_once(net, x, y, n, 1, gx1, NULL);
            assert_memory_equal(gx0, gx1, sizeof(float) * n * isz);
            const float x5 = x[5];
            x[5] += 0.5f; /* another input, kept against recomputed */
            backward_once(net, x, y, n, 0, gx1, g1);
            net->keep_im2col = 0;
            float *gx2 = fv_malloc(sizeof(float) * n * isz), *g2 = fv_malloc(sizeof(float) * nt);
            backward_once(net, x, y, n, 0, gx2, g2);
            assert_memory_equal(gx1, gx2, sizeof(float) * n * isz);
            assert_memory_equal(g1, g2, sizeof(float) * nt);
            free(gx2), free(g2);
            x[5] = x5;
            backward_once(net, x, y, n, 0, gx1, g1); /* and off again: recomputed */
            assert_memory_equal(g0, g1, sizeof(float) * nt);
        }
        double s = 0;
        for (size_t i = 0; i < n * isz; i++) s += fabs(gx0[i]);
        assert_true(s > 0);
        free(x), free(gx0), free(g0);
        fv_net_destroy(&net);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_gradients),
        cmocka_unit_test(test_bitwise_reproducible_and_learns),
        cmocka_unit_test(test_add_of_input),
        cmocka_unit_test(test_fusable_relu),
        cmocka_unit_test(test_fusion_same_bits),
        cmocka_unit_test(test_blocked),
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_kinks_replay),
        cmocka_unit_test(test_input_only_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
