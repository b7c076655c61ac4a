/* test_cuda_trainer.c: the trainer's CUDA backend (cuda/trainer.c over cuda/net.h) against its
 * CPU backend (nn/trainer.c), through the device-neutral calls of nn/trainer.h. Exits 77 without
 * a CUDA device (fv_cuda_device_count() == 0, which includes a build without CUDA); the CPU
 * backend's own tests are test_trainer.c.
 *   - Training: LeNet-5, SGD with momentum, one epoch of four batches from the same rng state on
 *     both backends: parameter changes ||gpu - cpu||_2 / ||cpu||_2 <= STEP_TOL (test_cuda_net.c's
 *     bound for a few steps: the GPU adds in other orders), epoch loss and evaluation loss within
 *     LOSS_TOL relative, accuracy within one image, the step count equal.
 *   - SCAFFOLD's gradient correction (fl/scaffold.h): plain SGD, an epoch with a correction vector
 *     then one without, the same on both backends, parameter changes within STEP_TOL after each
 *     (the second checks that the captured graph of the corrected step is not replayed without it).
 *   - Input gradients (fv_trainer_input_grad), from the same weights and normalised inputs on both
 *     backends, on each convolution path the device has (im2col; cuDNN when present, chosen
 *     through FEDVIM_CUDA_CONV as a benchmark would), for LeNet-5 (ReLU, max pooling; 1x28x28,
 *     batch 8), ResNet-20 (batch norm, residual adds; 3x32x32, batch 8) and input_readers (below:
 *     every kind of op reading the input node, including adds with in0 or in1 == 0 and x + x;
 *     3x8x8, batch 6). Compared: d loss / d x, every parameter gradient and how far each
 *     batch-norm running statistic moved, normwise (max |gpu - cpu| / max |cpu|), and the mean
 *     loss relatively. As in test_cuda_net.c the GPU sums in other orders, so each figure passes
 *     within max(its fixed tolerance, SENS_K x S), S being that figure's CPU rounding sensitivity
 *     measured here (its largest change when the CPU reruns from parameters moved by one ulp,
 *     SENS_SEEDS seeds). Fixed: GRAD_TOL_SHALLOW 1e-4 for LeNet-5 and input_readers
 *     (test_cuda_net.c's bound for LeNet-5-sized gradients; there S is below 1e-6, so the fixed
 *     tolerance decides), GRAD_TOL_DEEP 1e-3 for ResNet-20, where S decides: measured on the
 *     CPU (Release build), a one-ulp start moves its own dx by 1.1e-2 and its parameter gradients
 *     by up to 1.8e-2 (ReLU inputs within rounding of zero flip in an untrained net with batch
 *     norm; a Debug build's other summation orders gave 3.0e-2 for dx), so dx passes within about
 *     3.2e-2; a wrong gradient (a missing or doubled path) is off by O(1).
 *     LOSS_TOL_GRAD 1e-5 relative for the loss. Every error is printed with its S and tolerance.
 *     A second call on the device must give the same bits (node 0's gradient is zeroed before
 *     each backward, not accumulated across calls). The GPU trainer's max_batch is the batch on
 *     the first path and one more on the second, so both ways of zeroing the gradients (one block
 *     at full capacity, node by node below it) are exercised.
 *   - Knowledge distillation (fv_trainer_train_kd_batch): LeNet-5 (no dropout, so both backends
 *     see the same forward), SGD with momentum, T 3, alpha 0.7, three batches (16, 16 and a partial
 *     12, max_batch 16) of the same inputs, random teacher logits and labels on both backends:
 *     each batch's loss within LOSS_TOL relative, its correct count within one image, and the
 *     parameter changes after the three steps within STEP_TOL (as the training case).
 *   - fv_kd_fit with device 0 against device -1 (the teacher's logits on the device too), below.
 * Data are synthetic (fv_synthetic_make), so the test needs no data set.
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

#include "cuda/net.h"
#include "data/synthetic.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/train_soft.h"
#include "nn/trainer.h"
#include "num_check.h"

#define STEP_TOL 2e-3
#define LOSS_TOL 1e-3
#define GRAD_TOL_SHALLOW 1e-4
#define GRAD_TOL_DEEP 1e-3
#define LOSS_TOL_GRAD 1e-5
#define MIN_REF 1e-6
#define SENS_SEEDS 6
#define SENS_K 3.0
#define MODEL_SEED 5

static fv_net *model(const char *name, fv_shape in, int classes) {
    fv_err e = {{0}};
    fv_net *net = fv_model_new(name, in, classes, MODEL_SEED, &e);
    if (!net) fail_msg("%s", e.msg);
    return net;
}

/* Every way an op can read the input node, each of whose gradients dx sums: a conv (the first
 * layer of every named model), an add with in1 == 0, one with in0 == 0, x + x, batch norm and a
 * flatten into a linear layer; 3x8x8 inputs, 10 outputs. */
static fv_net *input_readers(fv_shape in) {
    fv_net *net = fv_net_new(in);
    const int c = fv_net_conv2d(net, "conv", 0, in.c, 3, 1, 1, 1, 1);
    const int r = fv_net_add(net, 0, fv_net_add(net, c, 0));
    const int s = fv_net_add(net, fv_net_add(net, r, fv_net_add(net, 0, 0)), fv_net_batchnorm(net, "bn", 0));
    const int h = fv_net_linear(net, "fc", fv_net_flatten(net, fv_net_relu(net, s)), 10, 1);
    fv_net_add(net, h, fv_net_linear(net, "skip", fv_net_flatten(net, 0), 10, 0));
    fv_net_finish(net, MODEL_SEED);
    return net;
}

/* A named model (models.h) with MODEL_SEED weights, or "input_readers" (above). */
static fv_net *any_model(const char *name, fv_shape in) {
    return strcmp(name, "input_readers") == 0 ? input_readers(in) : model(name, in, 10);
}

static fv_trainer *trainer(fv_net *net, int device, int max_batch, fv_opt_cfg oc, fv_norm norm) {
    fv_err e = {{0}};
    const fv_trainer_cfg tc = {.device = device, .max_batch = max_batch, .opt = oc, .norm = norm};
    fv_trainer *t = fv_trainer_new(net, &tc, &e);
    if (!t) fail_msg("%s", e.msg);
    return t;
}

static double rel_change_diff(const float *gpu, const float *cpu, const float *p0, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double dg = (double)gpu[i] - p0[i], dc = (double)cpu[i] - p0[i];
        num += (dg - dc) * (dg - dc);
        den += dc * dc;
    }
    return sqrt(num) / sqrt(den);
}

/* max |a - ref| / max |ref| (NaN in a gives NaN); -1 when ref is all below MIN_REF */
static double normwise(const float *a, const float *ref, size_t n) { return tc_normwise(a, ref, n, MIN_REF); }

static void test_cuda_matches_cpu(void **st) {
    (void)st;
    fv_dataset d;
    fv_synthetic_make(&d, 64, 1, 28, 28, 10, 8, 0);
    fv_net *net = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    const fv_norm norm = fv_norm_for("mnist");
    const size_t np = net->n_params;
    float *p0 = fv_malloc(np * sizeof(float)), *pc = fv_malloc(np * sizeof(float));
    float *pg = fv_malloc(np * sizeof(float));
    memcpy(p0, net->params, np * sizeof(float));
    fv_trainer *g = trainer(net, 0, 16, oc, norm); /* copies net's start to the device */
    fv_trainer *c = trainer(net, -1, 16, oc, norm);
    fv_trainer_shard *sg = fv_trainer_shard_new(g), *sc = fv_trainer_shard_new(c);
    fv_err e = {{0}};
    assert_int_equal(fv_trainer_shard_load(sg, &d, NULL, 0, &e), 0);
    assert_int_equal(fv_trainer_shard_load(sc, &d, NULL, 0, &e), 0);
    fv_rng rg, rc;
    fv_rng_seed(&rg, 3);
    fv_rng_seed(&rc, 3);
    const fv_epoch_stats eg = fv_trainer_train_epoch(g, sg, 16, &rg, 0, NULL, NULL, NULL, NULL);
    const fv_epoch_stats ec = fv_trainer_train_epoch(c, sc, 16, &rc, 0, NULL, NULL, NULL, NULL);
    fv_trainer_get_params(g, pg);
    fv_trainer_get_params(c, pc);
    const double step = rel_change_diff(pg, pc, p0, net->n_train);
    printf("cuda vs cpu: parameter changes %.3g, epoch loss %.7g vs %.7g\n", step, eg.loss, ec.loss);
    assert_true(step <= STEP_TOL);
    assert_true(fabs(eg.loss - ec.loss) <= LOSS_TOL * fabs(ec.loss));
    const fv_eval_stats vg = fv_trainer_evaluate(g, sg, 16), vc = fv_trainer_evaluate(c, sc, 16);
    printf("cuda vs cpu: evaluation loss %.7g vs %.7g, accuracy %g vs %g\n", vg.loss, vc.loss, vg.accuracy,
           vc.accuracy);
    assert_true(fabs(vg.loss - vc.loss) <= LOSS_TOL * fabs(vc.loss));
    assert_true(fabs(vg.accuracy - vc.accuracy) <= 1.0 / d.n + 1e-12);
    int64_t sgs = 0, scs = 0;
    const size_t len = fv_trainer_opt_state_len(g);
    float *og = fv_malloc(len * sizeof(float)), *ocs = fv_malloc(len * sizeof(float));
    fv_trainer_get_opt_state(g, og, &sgs);
    fv_trainer_get_opt_state(c, ocs, &scs);
    assert_int_equal(sgs, scs);
    const fv_trainer_info info = fv_trainer_info_get(g);
    assert_true(info.cuda && info.graph_steps + info.eager_steps == 4);
    free(og), free(ocs), free(p0), free(pc), free(pg);
    fv_trainer_shard_destroy(&sg);
    fv_trainer_shard_destroy(&sc);
    fv_trainer_destroy(&g);
    fv_trainer_destroy(&c);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

static void test_cuda_correction(void **st) {
    (void)st;
    fv_dataset d;
    fv_synthetic_make(&d, 64, 1, 28, 28, 10, 8, 0);
    fv_net *net = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.05f;
    const fv_norm norm = fv_norm_for("mnist");
    const size_t np = net->n_params, nt = net->n_train;
    float *p0 = fv_malloc(np * sizeof(float)), *pc = fv_malloc(np * sizeof(float));
    float *pg = fv_malloc(np * sizeof(float)), *corr = fv_malloc(nt * sizeof(float));
    for (size_t i = 0; i < nt; i++) corr[i] = 0.01f * (float)((int)(i % 7) - 3);
    fv_trainer *g = trainer(net, 0, 16, oc, norm);
    fv_trainer *c = trainer(net, -1, 16, oc, norm);
    fv_trainer_shard *sg = fv_trainer_shard_new(g), *sc = fv_trainer_shard_new(c);
    fv_err e = {{0}};
    assert_int_equal(fv_trainer_shard_load(sg, &d, NULL, 0, &e), 0);
    assert_int_equal(fv_trainer_shard_load(sc, &d, NULL, 0, &e), 0);
    fv_rng rg, rc;
    fv_rng_seed(&rg, 5);
    fv_rng_seed(&rc, 5);
    for (int ep = 0; ep < 2; ep++) {
        const float *v = ep == 0 ? corr : NULL;
        fv_trainer_get_params(c, p0);
        (void)fv_trainer_train_epoch(g, sg, 16, &rg, 0, NULL, v, NULL, NULL);
        (void)fv_trainer_train_epoch(c, sc, 16, &rc, 0, NULL, v, NULL, NULL);
        fv_trainer_get_params(g, pg);
        fv_trainer_get_params(c, pc);
        const double step = rel_change_diff(pg, pc, p0, nt);
        printf("cuda vs cpu, %s correction: parameter changes %.3g\n", v ? "with" : "without", step);
        assert_true(step <= STEP_TOL);
        fv_trainer_set_params(g, pc); /* the next epoch from the same start on both */
    }
    free(p0), free(pc), free(pg), free(corr);
    fv_trainer_shard_destroy(&sg);
    fv_trainer_shard_destroy(&sc);
    fv_trainer_destroy(&g);
    fv_trainer_destroy(&c);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

/* ---- knowledge distillation ---- */

static void test_cuda_kd(void **st) {
    (void)st;
    enum { B = 16, NB = 3 };
    const int sizes[NB] = {16, 16, 12};
    fv_dataset d;
    fv_synthetic_make(&d, B * NB, 1, 28, 28, 10, 13, 0);
    fv_net *net = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    const fv_norm norm = fv_norm_for("mnist");
    const size_t np = net->n_params;
    float *p0 = fv_malloc(np * sizeof(float)), *pc = fv_malloc(np * sizeof(float)), *pg = fv_malloc(np * sizeof(float));
    memcpy(p0, net->params, np * sizeof(float));
    const size_t isz = 28 * 28;
    float *x = fv_malloc(B * NB * isz * sizeof(float)), *tl = fv_malloc(B * NB * 10 * sizeof(float));
    int *y = fv_malloc(B * NB * sizeof(int));
    fv_dataset_to_float(&d, NULL, 0, B * NB, norm, x);
    fv_dataset_labels(&d, NULL, 0, B * NB, y);
    fv_rng r;
    fv_rng_seed(&r, 31);
    for (int i = 0; i < B * NB * 10; i++) tl[i] = 6.0f * ((float)fv_rng_below(&r, 1u << 20) / (float)(1u << 20) - 0.5f);
    fv_trainer *g = trainer(net, 0, B, oc, norm); /* copies net's parameters and dropout seed first */
    fv_trainer *c = trainer(net, -1, B, oc, norm);
    int off = 0;
    for (int k = 0; k < NB; k++) {
        const int n = sizes[k];
        int hc = 0, hg = 0;
        const float lc = fv_trainer_train_kd_batch(c, x + off * isz, tl + off * 10, y + off, n, 3.0f, 0.7f, &hc);
        const float lg = fv_trainer_train_kd_batch(g, x + off * isz, tl + off * 10, y + off, n, 3.0f, 0.7f, &hg);
        const double rel = fabs((double)lg - lc) / fabs((double)lc);
        printf("KD batch %d (%d images): loss cpu %.6f gpu %.6f (relative %.2e, tolerance %.0e), correct cpu %d gpu %d\n",
               k, n, lc, lg, rel, LOSS_TOL, hc, hg);
        assert_true(isfinite(lc) && rel <= LOSS_TOL);
        assert_true(abs(hc - hg) <= 1);
        off += n;
    }
    fv_trainer_get_params(c, pc);
    fv_trainer_get_params(g, pg);
    const double step = rel_change_diff(pg, pc, p0, net->n_train);
    printf("KD, three steps: parameter changes ||gpu - cpu|| / ||cpu|| = %.2e (tolerance %.0e)\n", step, STEP_TOL);
    assert_true(step <= STEP_TOL);
    fv_trainer_destroy(&g);
    fv_trainer_destroy(&c);
    free(p0), free(pc), free(pg), free(x), free(tl), free(y);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

/* fv_kd_fit on the device against the CPU (nn/train_soft.h): the teacher's logits come from a
 * trainer of its own on the device, the student trains there. One epoch of a LeNet-5 student
 * (SGD, batch 32: four steps, as the training case) from a LeNet-5 teacher on 128 synthetic
 * training and 200 test images: the teacher's test accuracy within 2 images of the CPU's (its
 * logits differ by rounding only: only a near tie can flip), the student's accuracy and agreement
 * within 0.05 (one epoch whose steps differ by rounding), and the student's parameter changes
 * within STEP_TOL. */
static void test_cuda_kd_fit(void **st) {
    (void)st;
    fv_dataset tr, te;
    fv_synthetic_make(&tr, 128, 1, 28, 28, 10, 17, 0);
    fv_synthetic_make(&te, 200, 1, 28, 28, 10, 17, 1);
    fv_net *teacher = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_net *a = model("lenet5", (fv_shape){1, 28, 28}, 10), *b = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_rng r;
    fv_rng_seed(&r, 5); /* a teacher unlike the students' start */
    for (size_t i = 0; i < teacher->n_train; i++)
        teacher->params[i] *= 1.0f + 0.5f * ((float)fv_rng_below(&r, 1u << 20) / (float)(1u << 20) - 0.5f);
    const size_t np = a->n_params;
    float *p0 = fv_malloc(np * sizeof(float));
    memcpy(p0, a->params, np * sizeof(float));
    memcpy(b->params, a->params, np * sizeof(float));
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    fv_kd_cfg kc = {.opt = oc, .T = 3.0f, .alpha = 0.7f, .epochs = 1, .batch = 32, .seed = 3,
                    .norm = fv_norm_for("mnist"), .device = -1};
    fv_kd_result rc, rg;
    fv_err e = {{0}};
    assert_int_equal(fv_kd_fit(teacher, a, &tr, &te, &kc, NULL, NULL, &rc, &e), 0);
    kc.device = 0;
    assert_int_equal(fv_kd_fit(teacher, b, &tr, &te, &kc, NULL, NULL, &rg, &e), 0);
    printf("kd_fit: teacher cpu %.3f gpu %.3f; student cpu %.3f gpu %.3f; agreement cpu %.3f gpu %.3f\n",
           rc.teacher_acc, rg.teacher_acc, rc.student_acc, rg.student_acc, rc.agreement, rg.agreement);
    assert_true(fabs(rc.teacher_acc - rg.teacher_acc) <= 2.0 / 200 + 1e-12);
    assert_true(fabs(rc.student_acc - rg.student_acc) <= 0.05);
    assert_true(fabs(rc.agreement - rg.agreement) <= 0.05);
    const double step = rel_change_diff(b->params, a->params, p0, a->n_train);
    printf("kd_fit, one epoch: parameter changes ||gpu - cpu|| / ||cpu|| = %.2e (tolerance %.0e)\n", step, STEP_TOL);
    assert_true(step <= STEP_TOL);
    free(p0);
    fv_net_destroy(&a);
    fv_net_destroy(&b);
    fv_net_destroy(&teacher);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
}

/* ---- input gradients ---- */

/* What one input_grad call gives: dx, the loss, the parameter gradients, and the parameters after
 * it (batch-norm running statistics move) and before it. */
typedef struct {
    float *dx, loss, *grads, *p0, *p1;
} ig_result;

static void ig_free(ig_result *r) { free(r->dx), free(r->grads), free(r->p0), free(r->p1); }

/* One fv_trainer_input_grad on `device` of a fresh model (MODEL_SEED weights, moved by one ulp of
 * float32 with random signs when pert != 0), batch n of x, y, with max_batch cap. On a device, a
 * second call must give the same dx, loss and gradients bitwise (train-mode batch norm reads batch
 * statistics, not the running ones the first call moved). */
static ig_result ig_run(const char *name, fv_shape in, int device, int cap, uint64_t pert, const float *x,
                        const int *y, int n) {
    fv_net *net = any_model(name, in);
    if (pert) {
        fv_rng r;
        fv_rng_seed(&r, pert);
        for (size_t i = 0; i < net->n_params; i++)
            net->params[i] *= fv_rng_below(&r, 2) ? 1.0f + 0x1p-23f : 1.0f - 0x1p-23f;
    }
    ig_result r;
    const size_t nx = (size_t)n * fv_shape_size(in);
    r.dx = fv_malloc(nx * sizeof(float));
    r.grads = fv_malloc(net->n_train * sizeof(float));
    r.p0 = fv_malloc(net->n_params * sizeof(float));
    r.p1 = fv_malloc(net->n_params * sizeof(float));
    memcpy(r.p0, net->params, net->n_params * sizeof(float));
    fv_trainer *t = trainer(net, device, cap, fv_opt_defaults(FV_OPT_SGD), fv_norm_for("cifar10"));
    fv_err e = {{0}};
    if (fv_trainer_input_grad(t, x, y, n, r.dx, &r.loss, r.grads, &e) != 0) fail_msg("input_grad: %s", e.msg);
    fv_trainer_get_params(t, r.p1);
    if (device >= 0) { /* the same call again: the same bits (nothing accumulates across calls) */
        float *dx2 = fv_malloc(nx * sizeof(float)), *g2 = fv_malloc(net->n_train * sizeof(float)), l2 = 0;
        if (fv_trainer_input_grad(t, x, y, n, dx2, &l2, g2, &e) != 0) fail_msg("input_grad: %s", e.msg);
        if (memcmp(dx2, r.dx, nx * sizeof(float)) != 0 || memcmp(g2, r.grads, net->n_train * sizeof(float)) != 0 ||
            l2 != r.loss)
            fail_msg("%s: a second input_grad on cuda:%d gave other bits", name, device);
        free(dx2), free(g2);
    }
    fv_trainer_destroy(&t);
    fv_net_destroy(&net);
    return r;
}

/* The compared figures of an input_grad result: 0 the loss (relative error), 1 d loss / d x, then
 * one per tensor of the model (its gradient when trainable, else how far input_grad moved it: a
 * batch-norm running statistic), all normwise. */
static int n_figures(const fv_net *shape) { return 2 + shape->n_tensors; }

static void figure_name(const fv_net *shape, int f, char *buf, size_t cap) {
    if (f == 0) snprintf(buf, cap, "loss (relative)");
    else if (f == 1) snprintf(buf, cap, "d loss / d x");
    else if (shape->tensors[f - 2].trainable) snprintf(buf, cap, "d %s", shape->tensors[f - 2].name);
    else snprintf(buf, cap, "%s (moved)", shape->tensors[f - 2].name);
}

/* err[f] = the error of figure f of a against ref; -1 where ref's figure is all below MIN_REF. */
static void ig_errors(const fv_net *shape, const ig_result *a, const ig_result *ref, size_t nx, double *err) {
    err[0] = fabs((double)a->loss - ref->loss) / fabs((double)ref->loss);
    err[1] = normwise(a->dx, ref->dx, nx);
    for (int t = 0; t < shape->n_tensors; t++) {
        const fv_tensor *tt = &shape->tensors[t];
        if (tt->trainable) {
            err[2 + t] = normwise(a->grads + tt->off, ref->grads + tt->off, tt->count);
            continue;
        }
        float *dg = fv_malloc(tt->count * sizeof(float)), *dc = fv_malloc(tt->count * sizeof(float));
        for (size_t i = 0; i < tt->count; i++)
            dg[i] = a->p1[tt->off + i] - a->p0[tt->off + i], dc[i] = ref->p1[tt->off + i] - ref->p0[tt->off + i];
        err[2 + t] = normwise(dg, dc, tt->count);
        free(dg), free(dc);
    }
}

/* max |.| of figure f >= 1 of a. */
static double figure_max_abs(const fv_net *shape, const ig_result *a, int f, size_t nx) {
    double mx = 0.0;
    if (f == 1) {
        for (size_t i = 0; i < nx; i++) mx = fmax(mx, fabs((double)a->dx[i]));
        return mx;
    }
    const fv_tensor *tt = &shape->tensors[f - 2];
    for (size_t i = 0; i < tt->count; i++)
        mx = fmax(mx, fabs(tt->trainable ? (double)a->grads[tt->off + i]
                                         : (double)a->p1[tt->off + i] - a->p0[tt->off + i]));
    return mx;
}

static void input_grad_case(const char *name, fv_shape in, int n, double tol) {
    fv_dataset d;
    fv_synthetic_make(&d, n, in.c, in.h, in.w, 10, 11, 0);
    const size_t nx = (size_t)n * fv_shape_size(in);
    float *x = fv_malloc(nx * sizeof(float));
    int *y = fv_malloc((size_t)n * sizeof(int));
    fv_dataset_to_float(&d, NULL, 0, n, fv_norm_for("cifar10"), x);
    fv_dataset_labels(&d, NULL, 0, n, y);
    fv_net *shape = any_model(name, in);
    const int nf = n_figures(shape);
    double *sens = fv_calloc((size_t)nf, sizeof(double)), *err = fv_malloc((size_t)nf * sizeof(double));
    /* the CPU: the reference and, per figure, its own rounding sensitivity */
    ig_result ref = ig_run(name, in, -1, n, 0, x, y, n);
    for (int s = 1; s <= SENS_SEEDS; s++) {
        ig_result q = ig_run(name, in, -1, n, 1000 + (uint64_t)s, x, y, n);
        ig_errors(shape, &q, &ref, nx, err);
        for (int f = 0; f < nf; f++) sens[f] = fmax(sens[f], err[f]);
        ig_free(&q);
    }
    const char *paths[2] = {"im2col", "cudnn"};
    for (int k = 0; k < 2; k++) {
        if (setenv("FEDVIM_CUDA_CONV", paths[k], 1) != 0) fail_msg("setenv failed");
        fv_err e = {{0}};
        fv_cuda_net *probe = fv_cuda_net_new(shape, 0, 1, &e);
        if (!probe) {
            if (k == 0) fail_msg("cuda:0 with convolutions im2col: %s", e.msg); /* always available */
            printf("%s input gradients, convolutions %s: not on this device (%s)\n", name, paths[k], e.msg);
            continue;
        }
        fv_cuda_net_destroy(&probe);
        printf("%s input gradients, batch %d, convolutions %s, max_batch %d: error (CPU sensitivity S) "
               "tolerance max(fixed, %.0f S)\n",
               name, n, paths[k], n + k, SENS_K);
        ig_result g = ig_run(name, in, 0, n + k, 0, x, y, n);
        assert_memory_equal(g.p0, ref.p0, shape->n_params * sizeof(float)); /* the same weights */
        ig_errors(shape, &g, &ref, nx, err);
        int zero = 0;
        for (int f = 0; f < nf; f++) {
            char what[FV_NAME_MAX + 32];
            figure_name(shape, f, what, sizeof what);
            if (f > 0 && err[f] < 0.0) { /* the CPU's figure is all zero: the GPU's must be too */
                const double mx = figure_max_abs(shape, &g, f, nx);
                zero++;
                printf("  %-36s cpu all zero, gpu max |.| %.1e\n", what, mx);
                if (!(mx < MIN_REF)) fail_msg("%s %s: CPU's is zero, GPU's max |.| is %.3g", name, what, mx);
                continue;
            }
            const double t = fmax(f == 0 ? LOSS_TOL_GRAD : tol, SENS_K * sens[f]);
            printf("  %-36s %.2e (S %.2e) tolerance %.2e\n", what, err[f], sens[f], t);
            if (!(err[f] <= t)) fail_msg("%s %s: GPU vs CPU error %.3g > %.2e", name, what, err[f], t);
        }
        if (err[1] < 0.0) fail_msg("%s: the CPU's d loss / d x is all zero: nothing compared", name);
        if (zero * 4 > nf) fail_msg("%s: %d of %d figures are zero on the CPU: too little compared", name, zero, nf);
        ig_free(&g);
    }
    if (unsetenv("FEDVIM_CUDA_CONV") != 0) fail_msg("unsetenv failed");
    ig_free(&ref);
    fv_net_destroy(&shape);
    free(x), free(y), free(sens), free(err);
    fv_dataset_free(&d);
}

static void test_input_grad_lenet5(void **st) {
    (void)st;
    input_grad_case("lenet5", (fv_shape){1, 28, 28}, 8, GRAD_TOL_SHALLOW);
}

static void test_input_grad_resnet20(void **st) {
    (void)st;
    input_grad_case("resnet20", (fv_shape){3, 32, 32}, 8, GRAD_TOL_DEEP);
}

static void test_input_grad_input_readers(void **st) {
    (void)st;
    input_grad_case("input_readers", (fv_shape){3, 8, 8}, 6, GRAD_TOL_SHALLOW);
}

int main(void) {
    fv_set_threads(2);
    if (fv_cuda_device_count() == 0) {
        printf("test_cuda_trainer: skipped (no CUDA device)\n");
        return 77;
    }
    const struct CMUnitTest cuda[] = {
        cmocka_unit_test(test_cuda_matches_cpu),
        cmocka_unit_test(test_cuda_correction),
        cmocka_unit_test(test_cuda_kd),
        cmocka_unit_test(test_cuda_kd_fit),
        cmocka_unit_test(test_input_grad_lenet5),
        cmocka_unit_test(test_input_grad_resnet20),
        cmocka_unit_test(test_input_grad_input_readers),
    };
    return cmocka_run_group_tests_name("trainer, CUDA against CPU", cuda, NULL, NULL) != 0;
}
