/* test_torch_parity.c: fedvim's models against PyTorch itself. For LeNet-5 (Adam), ResNet-20 (batch
 * norm, residual shortcuts; SGD with momentum), the MobileNet (depthwise convolutions) and the ViT
 * (layer norm, attention, GELU, class token and position embedding: Adam on 3x32x32, SGD with
 * momentum on 1x28x28; the PyTorch side is tests/torch_vit.py), fedvim
 * writes its initial parameters and a batch, tests/torch_parity.py rebuilds the same model in
 * PyTorch with fedvim's state-dict names, and both compute: the loss, every parameter gradient,
 * the loss after a few optimizer steps, and eval-mode logits (running statistics) after them.
 * PyTorch runs in float64, so the comparison measures fedvim's float32 error alone; the same model
 * in float32 PyTorch sets the scale of a good float32 error (it is up to ~2% of ResNet-20's first
 * layer gradient off float64: batch norm's backward cancels heavily).
 * With FEDVIM_CPU_BLOCKED=1 the nets keep oneDNN's blocked layout (fv_net_set_blocked, the CPU
 * trainer's default; the ReLU masks go to the reference in NCHW order).
 * Skipped (77) when no python3 with torch is available (Debian: python3-torch).
 * Every forward of the reference uses fedvim's ReLU masks of the same pass: where a pre-activation
 * lies within rounding of 0, float32 and float64 legitimately take opposite sides of the kink, and
 * through batch norm one flipped mask moves a whole channel's gradient by several percent (seen:
 * 4% after three SGD steps of ResNet-20 between an -O0 and an -O2 build).
 * Tolerances: loss 1e-5 relative; each tensor's gradient max|a-b| <= max(3 x float32 PyTorch's
 * error, 1e-4 * max|b|) + 1e-7; after the optimizer steps, the loss and the eval-mode logits
 * within 2e-3 relative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl_harness.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/optim.h"

static double maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Read the next whitespace-separated line "name v0 v1 ..." into vals (at most cap). */
static size_t read_line(FILE *f, char *name, float *vals, size_t cap) {
    if (fscanf(f, "%127s", name) != 1) return 0;
    size_t n = 0;
    int ch;
    for (;;) {
        do ch = fgetc(f);
        while (ch == ' ');
        if (ch == '\n' || ch == EOF) break;
        ungetc(ch, f);
        double v;
        if (fscanf(f, "%lf", &v) != 1) break;
        if (n < cap) vals[n] = (float)v;
        n++;
    }
    return n;
}

static void run_case(const char *py, const char *model, int c, int hw, int batch, fv_opt_kind kind, int steps,
                     double after_tol) {
    char dir[] = "/tmp/fedvim_parity_XXXXXX";
    assert_non_null(mkdtemp(dir));
    fv_err e = {{0}};
    fv_net *net = fv_model_new(model, (fv_shape){c, hw, hw}, 10, 3, &e);
    assert_non_null(net);
    /* FEDVIM_CPU_BLOCKED=1: the blocked layout the CPU trainer uses (tests/CMakeLists.txt) */
    const char *blk = getenv("FEDVIM_CPU_BLOCKED");
    if (blk && strcmp(blk, "1") == 0) fv_net_set_blocked(net, 1);
    size_t isz = (size_t)c * hw * hw;
    float *x = fv_malloc(batch * isz * sizeof(float));
    int *y = fv_malloc(batch * sizeof(int));
    fv_rng r;
    fv_rng_seed(&r, 42);
    for (size_t i = 0; i < batch * isz; i++) x[i] = (float)fv_rng_normal(&r);
    for (int i = 0; i < batch; i++) y[i] = (int)fv_rng_below(&r, 10);
    char path[600];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *mf = fopen(path, "w");
    fprintf(mf, "%s %d %d %d %d %s %d\n", model, batch, c, hw, hw, kind == FV_OPT_ADAM ? "adam" : "sgd", steps);
    for (int i = 0; i < net->n_tensors; i++)
        fprintf(mf, "%s %zu %zu\n", net->tensors[i].name, net->tensors[i].off, net->tensors[i].count);
    fclose(mf);
    fh_dump(dir, "params.bin", net->params, net->n_params * sizeof(float));
    fh_dump(dir, "x.bin", x, batch * isz * sizeof(float));
    fh_dump(dir, "y.bin", y, batch * sizeof(int));
    /* fedvim's side runs first, every pass: the gradient pass, the optimizer steps, the train-mode
     * loss after them and the eval-mode logits. The ReLU masks of each forward go to the reference
     * (masks_K.bin for forward K), so that both sides linearise the same way. */
    float *dl = fv_malloc(batch * 10 * sizeof(float));
    int nfwd = 0;
    const float *z = fv_net_forward(net, x, batch, 1);
    fh_dump_relu_masks(dir, net, batch, nfwd++);
    float loss0 = fv_softmax_xent(dl, z, y, batch, 10, NULL);
    fv_net_backward(net, dl, batch);
    float *g0 = fv_malloc(net->n_train * sizeof(float));
    memcpy(g0, net->grads, net->n_train * sizeof(float));
    fv_opt_cfg oc = fv_opt_defaults(kind);
    if (kind == FV_OPT_SGD) {
        oc.lr = 0.05f;
        oc.momentum = 0.9f;
    }
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    for (int s = 0; s < steps; s++) {
        z = fv_net_forward(net, x, batch, 1);
        fh_dump_relu_masks(dir, net, batch, nfwd++);
        fv_softmax_xent(dl, z, y, batch, 10, NULL);
        fv_net_backward(net, dl, batch);
        fv_opt_step(opt, net->params, net->grads);
    }
    z = fv_net_forward(net, x, batch, 1);
    fh_dump_relu_masks(dir, net, batch, nfwd++);
    float loss_after = fv_softmax_xent(NULL, z, y, batch, 10, NULL);
    z = fv_net_forward(net, x, batch, 0);
    fh_dump_relu_masks(dir, net, batch, nfwd++);
    float *zeval = fv_malloc(batch * 10 * sizeof(float));
    memcpy(zeval, z, batch * 10 * sizeof(float));

    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s/tests/torch_parity.py %s", py, getenv("FEDVIM_SOURCE_DIR") ? getenv("FEDVIM_SOURCE_DIR") : "..", dir);
    int rc = system(cmd);
    if (rc != 0) fail_msg("%s failed (%d)", cmd, rc);
    snprintf(path, sizeof path, "%s/torch.txt", dir);
    FILE *tf = fopen(path, "r");
    assert_non_null(tf);
    char name[128];
    float *vals = fv_malloc((net->n_params + 16) * sizeof(float));
    assert_int_equal(read_line(tf, name, vals, 1), 1);
    assert_string_equal(name, "loss");
    if (fabs(loss0 - vals[0]) > 1e-5 * fabs(vals[0])) fail_msg("%s: loss %.9g, PyTorch %.9g", model, loss0, vals[0]);
    int checked = 0;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < net->n_tensors; i++) {
        const fv_tensor *t = &net->tensors[i];
        if (!t->trainable) continue;
        size_t n = read_line(tf, name, vals, net->n_params + 1);
        assert_string_equal(name, t->name);
        assert_int_equal(n, t->count + 1);
        double err32 = vals[0], ref = maxabs(vals + 1, t->count), diff = 0;
        for (size_t k = 0; k < t->count; k++) diff = fmax(diff, fabs(g0[t->off + k] - vals[1 + k]));
        if (diff > fmax(3.0 * err32, 1e-4 * ref) + 1e-7)
            fail_msg("%s: gradient of %s is off float64 by %g (max %g); float32 PyTorch is off by %g", model, t->name,
                     diff, ref, err32);
        double ratio = diff / fmax(err32, 1e-30);
        if (ratio > worst) worst = ratio, worst_name = t->name;
        checked++;
    }
    assert_true(checked > 0);
    print_message("%s: all %d gradients match float64 PyTorch (largest error ratio to float32 PyTorch's: %.2f, %s)\n",
                  model, checked, worst, worst_name);
    assert_int_equal(read_line(tf, name, vals, 1), 1);
    assert_string_equal(name, "after");
    const double ref_after = vals[0];
    if (fabs(loss_after - ref_after) > after_tol * fabs(ref_after))
        fail_msg("%s: loss after %d steps %.9g, PyTorch %.9g", model, steps, loss_after, ref_after);
    size_t n = read_line(tf, name, vals, net->n_params);
    assert_string_equal(name, "eval");
    assert_int_equal(n, (size_t)batch * 10);
    double ref = maxabs(vals, n), diff = 0;
    for (size_t k = 0; k < n; k++) diff = fmax(diff, fabs(zeval[k] - vals[k]));
    if (diff > after_tol * ref + 1e-4) fail_msg("%s: eval logits differ by %g (max %g)", model, diff, ref);
    print_message("%s: after %d steps loss %.7g (PyTorch %.7g), eval logits within %.2g\n", model, steps, loss_after,
                  ref_after, diff);
    fclose(tf);
    fv_opt_destroy(&opt);
    fv_net_destroy(&net);
    free(x);
    free(y);
    free(dl);
    free(vals);
    free(g0);
    free(zeval);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static const char *PY;

/* FEDVIM_PARITY_SET=cnn or vit runs only that part (tests/CMakeLists.txt); unset: both. */
static int in_set(const char *set) {
    const char *e = getenv("FEDVIM_PARITY_SET");
    return !e || !*e || strcmp(e, set) == 0;
}

static void test_lenet5(void **st) {
    (void)st;
    if (!in_set("cnn")) skip();
    run_case(PY, "lenet5", 1, 28, 16, FV_OPT_ADAM, 10, 2e-3);
}

static void test_resnet20(void **st) {
    (void)st;
    if (!in_set("cnn")) skip();
    run_case(PY, "resnet20", 3, 32, 8, FV_OPT_SGD, 3, 2e-3);
}

static void test_mobilenet(void **st) {
    (void)st;
    if (!in_set("cnn")) skip();
    run_case(PY, "mobilenet", 3, 32, 8, FV_OPT_SGD, 3, 2e-3);
}

/* The ViT (tests/torch_vit.py) on both input shapes: 65 and 50 tokens. No ReLU: no masks. Its
 * one convolution is the patch embedding, so the runs with a forced conv path (FEDVIM_CPU_CONV
 * set, tests/CMakeLists.txt) check the 3x32x32 case only: each run stays within a test's time. */
static void test_vit32(void **st) {
    (void)st;
    if (!in_set("vit")) skip();
    run_case(PY, "vit", 3, 32, 4, FV_OPT_ADAM, 3, 2e-3);
}

static void test_vit28(void **st) {
    (void)st;
    if (!in_set("vit") || getenv("FEDVIM_CPU_CONV")) skip();
    run_case(PY, "vit", 1, 28, 2, FV_OPT_SGD, 3, 2e-3);
}

int main(void) {
    PY = fh_torch_python();
    if (!PY) {
        fprintf(stderr, "test_torch_parity: skipped: no python3 with torch and numpy (Debian: python3-torch)\n");
        return 77;
    }
    fv_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet5),
        cmocka_unit_test(test_resnet20),
        cmocka_unit_test(test_mobilenet),
        cmocka_unit_test(test_vit32),
        cmocka_unit_test(test_vit28),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
