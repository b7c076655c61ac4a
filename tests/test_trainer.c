/* test_trainer.c: the device-neutral trainer (nn/trainer.h), its CPU backend; runs and gives its
 * verdict (exit 0 or 1) in every build:
 *   - training (shuffled subset shard, a partial last batch, FedProx, Adam, two epochs) gives
 *     bit-identical parameters, optimizer state and statistics to the direct nn/ calls it
 *     replaced (fv_train_epoch with an fv_opt; the trainer keeps each conv's im2col for its
 *     backward, the direct calls do not); optimizer state round trips bitwise;
 *   - a shard of the first n images trains n images (fv_train_epoch with idx NULL takes all of d:
 *     `bench train` once timed all of d while counting n);
 *   - evaluation equals fv_evaluate bitwise;
 *   - input gradients of the sigmoid DLG LeNet (smooth) against central finite differences of
 *     the float32 loss, along four random N(0, I) directions v and at each image's largest
 *     coordinate: |fd - <dx, v>| <= FD_TOL x |<dx, v>| + FD_ABS, step FD_H. The float32 loss's
 *     rounding over 2h is about 1e-5 absolute; measured relative errors along directions were
 *     4e-5 to 1.2e-4 (a wrong gradient is off by O(1)). The parameter gradients and loss that
 *     come with them equal a direct forward/backward bitwise;
 *   - the errors a user can cause: a bad optimizer configuration, a device in a build or on a
 *     machine without CUDA, a FEDVIM_CPU_BLOCKED that is not 0 or 1; and that switch itself.
 * The CUDA backend against this one: test_cuda_trainer.c (skipped without a GPU).
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
#include "nn/trainer.h"

#define FD_H 1e-2
#define FD_TOL 1e-3
#define FD_ABS 2e-5

static fv_net *model(const char *name, fv_shape in, int classes) {
    fv_err e = {{0}};
    fv_net *net = fv_model_new(name, in, classes, 5, &e);
    if (!net) fail_msg("%s", e.msg);
    return net;
}

static fv_trainer *trainer(fv_net *net, int device, int max_batch, fv_opt_cfg oc) {
    fv_err e = {{0}};
    const fv_trainer_cfg tc = {.device = device, .max_batch = max_batch, .opt = oc, .norm = fv_norm_for("mnist")};
    fv_trainer *t = fv_trainer_new(net, &tc, &e);
    if (!t) fail_msg("%s", e.msg);
    return t;
}

static void test_cpu_matches_direct(void **st) {
    (void)st;
    fv_dataset d;
    fv_synthetic_make(&d, 100, 1, 28, 28, 10, 3, 0);
    int idx[45];
    for (int i = 0; i < 45; i++) idx[i] = (i * 37) % 100; /* a shuffled subset */
    fv_net *a = model("lenet5", (fv_shape){1, 28, 28}, 10), *b = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    float *ref = fv_malloc(a->n_params * sizeof(float));
    for (size_t i = 0; i < a->n_params; i++) ref[i] = a->params[i] * 0.5f;
    /* the trainer */
    fv_trainer *t = trainer(a, -1, 16, oc);
    fv_trainer_shard *sh = fv_trainer_shard_new(t);
    fv_err e = {{0}};
    assert_int_equal(fv_trainer_shard_load(sh, &d, idx, 45, &e), 0);
    assert_int_equal(fv_trainer_shard_size(sh), 45);
    fv_trainer_seed_dropout(t, 99);
    fv_rng r1, r2;
    fv_rng_seed(&r1, 7);
    fv_rng_seed(&r2, 7);
    fv_epoch_stats s1[2], s2[2];
    for (int ep = 0; ep < 2; ep++) s1[ep] = fv_trainer_train_epoch(t, sh, 16, &r1, 0.01f, ref, NULL, NULL, NULL);
    /* the direct calls */
    fv_opt *opt = fv_opt_new(&oc, b->n_train);
    fv_net_seed_dropout(b, 99);
    for (int ep = 0; ep < 2; ep++)
        s2[ep] = fv_train_epoch(b, opt, &d, idx, 45, 16, fv_norm_for("mnist"), &r2, 0.01f, ref, NULL, NULL, NULL);
    float *pa = fv_malloc(a->n_params * sizeof(float));
    fv_trainer_get_params(t, pa);
    assert_memory_equal(pa, b->params, a->n_params * sizeof(float));
    for (int ep = 0; ep < 2; ep++) {
        assert_true(s1[ep].loss == s2[ep].loss && s1[ep].accuracy == s2[ep].accuracy);
        assert_int_equal(s1[ep].images, 45);
    }
    assert_int_equal(fv_rng_u64(&r1), fv_rng_u64(&r2)); /* the same draws were made */
    /* optimizer state: out equals fv_opt's, and a round trip restores it bitwise */
    size_t len = 0;
    const float *want = fv_opt_state(opt, &len);
    assert_int_equal(fv_trainer_opt_state_len(t), len);
    float *got = fv_malloc(len * sizeof(float));
    int64_t steps = 0;
    fv_trainer_get_opt_state(t, got, &steps);
    assert_memory_equal(got, want, len * sizeof(float));
    assert_int_equal(steps, *fv_opt_step_count(opt));
    fv_trainer_reset_opt(t);
    fv_trainer_set_opt_state(t, got, steps);
    memset(got, 0, len * sizeof(float));
    int64_t steps2 = 0;
    fv_trainer_get_opt_state(t, got, &steps2);
    assert_memory_equal(got, want, len * sizeof(float));
    assert_int_equal(steps2, steps);
    /* set_params from another vector, and from net->params itself */
    fv_trainer_set_params(t, ref);
    fv_trainer_get_params(t, pa);
    assert_memory_equal(pa, ref, a->n_params * sizeof(float));
    fv_trainer_set_params(t, a->params);
    assert_memory_equal(a->params, ref, a->n_params * sizeof(float));
    free(got);
    free(pa);
    free(ref);
    fv_opt_destroy(&opt);
    fv_trainer_shard_destroy(&sh);
    assert_null(sh);
    fv_trainer_destroy(&t);
    assert_null(t);
    fv_trainer_destroy(&t); /* accepts a cleared pointer */
    fv_net_destroy(&a);
    fv_net_destroy(&b);
    fv_dataset_free(&d);
}

/* A shard of the first n images of d trains n images, not all of d. */
static void test_shard_first_n(void **st) {
    (void)st;
    fv_dataset d;
    fv_synthetic_make(&d, 40, 1, 8, 8, 4, 3, 0);
    fv_net *net = model("tiny", (fv_shape){1, 8, 8}, 4);
    fv_trainer *t = trainer(net, -1, 8, fv_opt_defaults(FV_OPT_SGD));
    fv_trainer_shard *sh = fv_trainer_shard_new(t);
    int first[40];
    for (int i = 0; i < 40; i++) first[i] = i;
    fv_err e = {{0}};
    assert_int_equal(fv_trainer_shard_load(sh, &d, NULL, 0, &e), 0);
    assert_int_equal(fv_trainer_shard_size(sh), 40);
    assert_int_equal(fv_trainer_shard_load(sh, &d, first, 12, &e), 0);
    assert_int_equal(fv_trainer_shard_size(sh), 12);
    fv_rng rng;
    fv_rng_seed(&rng, 1);
    assert_int_equal(fv_trainer_train_epoch(t, sh, 8, &rng, 0, NULL, NULL, NULL, NULL).images, 12);
    fv_trainer_shard_destroy(&sh);
    fv_trainer_destroy(&t);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

static void test_evaluate_matches(void **st) {
    (void)st;
    fv_dataset d;
    fv_synthetic_make(&d, 70, 1, 28, 28, 10, 4, 1);
    fv_net *net = model("lenet5", (fv_shape){1, 28, 28}, 10);
    fv_trainer *t = trainer(net, -1, 16, fv_opt_defaults(FV_OPT_SGD));
    fv_trainer_shard *sh = fv_trainer_shard_new(t);
    fv_err e = {{0}};
    assert_int_equal(fv_trainer_shard_load(sh, &d, NULL, 0, &e), 0);
    const fv_eval_stats a = fv_trainer_evaluate(t, sh, 32);
    const fv_eval_stats b = fv_evaluate(net, &d, NULL, d.n, 32, fv_norm_for("mnist"));
    assert_true(a.loss == b.loss && a.accuracy == b.accuracy);
    assert_int_equal(a.images, 70);
    int idx[5] = {9, 1, 60, 3, 3};
    assert_int_equal(fv_trainer_shard_load(sh, &d, idx, 5, &e), 0);
    const fv_eval_stats c = fv_trainer_evaluate(t, sh, 2);
    const fv_eval_stats f = fv_evaluate(net, &d, idx, 5, 2, fv_norm_for("mnist"));
    assert_true(c.loss == f.loss && c.accuracy == f.accuracy);
    fv_trainer_shard_destroy(&sh);
    fv_trainer_destroy(&t);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

static double loss_at(fv_net *net, const float *x, const int *y, int n) {
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    return fv_softmax_xent(NULL, fv_net_forward(net, x, n, 1), y, n, K, NULL);
}

static void test_input_grad_fd(void **st) {
    (void)st;
    const fv_shape in = {1, 16, 16};
    const int n = 3, isz = (int)fv_shape_size(in), N = n * isz;
    fv_net *net = model("dlg_lenet", in, 4);
    fv_trainer *t = trainer(net, -1, 4, fv_opt_defaults(FV_OPT_SGD));
    fv_rng g;
    fv_rng_seed(&g, 21);
    float *x = fv_malloc((size_t)N * sizeof(float)), *dx = fv_malloc((size_t)N * sizeof(float));
    float *xp = fv_malloc((size_t)N * sizeof(float)), *v = fv_malloc((size_t)N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = (float)fv_rng_uniform(&g);
    int y[3] = {2, 0, 3};
    float loss = 0;
    float *grads = fv_malloc(net->n_train * sizeof(float));
    fv_err e = {{0}};
    assert_int_equal(fv_trainer_input_grad(t, x, y, n, dx, &loss, grads, &e), 0);
    assert_int_equal(net->want_input_grad, 0); /* restored */
    /* the loss and parameter gradients of a direct forward/backward, bitwise */
    {
        float *dl = fv_malloc((size_t)n * 4 * sizeof(float));
        const float l = fv_softmax_xent(dl, fv_net_forward(net, x, n, 1), y, n, 4, NULL);
        fv_net_backward(net, dl, n);
        assert_true(l == loss);
        assert_memory_equal(grads, net->grads, net->n_train * sizeof(float));
        free(dl);
    }
    double gmax = 0;
    for (int i = 0; i < N; i++) gmax = fmax(gmax, fabs(dx[i]));
    assert_true(gmax > 0);
    for (int dir = 0; dir < 4; dir++) {
        double an = 0;
        for (int i = 0; i < N; i++) v[i] = (float)fv_rng_normal(&g), an += (double)dx[i] * v[i];
        for (int i = 0; i < N; i++) xp[i] = x[i] + (float)FD_H * v[i];
        const double lp = loss_at(net, xp, y, n);
        for (int i = 0; i < N; i++) xp[i] = x[i] - (float)FD_H * v[i];
        const double lm = loss_at(net, xp, y, n);
        const double fd = (lp - lm) / (2 * FD_H);
        printf("input gradient along direction %d: analytic %.7g, finite difference %.7g\n", dir, an, fd);
        if (!(fabs(fd - an) <= FD_TOL * fabs(an) + FD_ABS)) fail_msg("direction %d: %g vs %g", dir, an, fd);
    }
    /* single coordinates: the largest input gradient of each image */
    for (int s = 0; s < n; s++) {
        int k = s * isz;
        for (int i = s * isz; i < (s + 1) * isz; i++) k = fabsf(dx[i]) > fabsf(dx[k]) ? i : k;
        memcpy(xp, x, (size_t)N * sizeof(float));
        xp[k] = x[k] + (float)FD_H;
        const double lp = loss_at(net, xp, y, n);
        xp[k] = x[k] - (float)FD_H;
        const double lm = loss_at(net, xp, y, n);
        const double fd = (lp - lm) / (2 * FD_H);
        printf("input gradient at x[%d]: analytic %.7g, finite difference %.7g\n", k, dx[k], fd);
        if (!(fabs(fd - dx[k]) <= FD_TOL * fabs(dx[k]) + FD_ABS)) fail_msg("x[%d]: %g vs %g", k, dx[k], fd);
    }
    free(x), free(dx), free(xp), free(v), free(grads);
    fv_trainer_destroy(&t);
    fv_net_destroy(&net);
}

static void test_user_errors(void **st) {
    (void)st;
    fv_net *net = model("tiny", (fv_shape){1, 8, 8}, 3);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.nesterov = 1; /* without momentum */
    fv_err e = {{0}};
    fv_trainer_cfg tc = {.device = -1, .max_batch = 4, .opt = oc};
    assert_null(fv_trainer_new(net, &tc, &e));
    assert_non_null(strstr(e.msg, "Nesterov"));
    if (fv_cuda_device_count() == 0) { /* a device where there is none: refused with the reason */
        tc.opt = fv_opt_defaults(FV_OPT_SGD);
        tc.device = 0;
        e.msg[0] = '\0';
        assert_null(fv_trainer_new(net, &tc, &e));
        assert_non_null(strstr(e.msg, "cuda:0"));
    }
    fv_net_destroy(&net);
}

/* The blocked layout's switch (fv_trainer_cfg.blocked, FEDVIM_CPU_BLOCKED): on by default where
 * oneDNN keeps a blocked layout (ResNet-20: 70 outputs), off with -1 or FEDVIM_CPU_BLOCKED=0, the
 * field over the variable, a bad value refused naming the variable. */
static void test_blocked_switch(void **st) {
    (void)st;
    fv_net *net = model("resnet20", (fv_shape){3, 32, 32}, 10);
    fv_net_set_blocked(net, 1);
    const int k = fv_net_blocked_count(net); /* 0 without oneDNN or its blocked layout */
    static const struct { const char *env; int field, want; } cases[] = {
        {NULL, 0, 1}, {"0", 0, 0}, {"1", 0, 1}, {"1", -1, 0}, {"0", 1, 1}, {NULL, -1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].env) setenv("FEDVIM_CPU_BLOCKED", cases[i].env, 1);
        else unsetenv("FEDVIM_CPU_BLOCKED");
        fv_err e = {{0}};
        const fv_trainer_cfg tc = {.device = -1, .max_batch = 4, .opt = fv_opt_defaults(FV_OPT_SGD), .blocked = cases[i].field};
        fv_trainer *t = fv_trainer_new(net, &tc, &e);
        if (!t) fail_msg("%s", e.msg);
        if (fv_trainer_info_get(t).blocked != (cases[i].want ? k : 0))
            fail_msg("FEDVIM_CPU_BLOCKED %s, field %d: %d outputs blocked", cases[i].env ? cases[i].env : "unset",
                     cases[i].field, fv_trainer_info_get(t).blocked);
        fv_trainer_destroy(&t);
    }
    setenv("FEDVIM_CPU_BLOCKED", "yes", 1);
    fv_err e = {{0}};
    const fv_trainer_cfg tc = {.device = -1, .max_batch = 4, .opt = fv_opt_defaults(FV_OPT_SGD)};
    assert_null(fv_trainer_new(net, &tc, &e));
    assert_non_null(strstr(e.msg, "FEDVIM_CPU_BLOCKED: 'yes'"));
    unsetenv("FEDVIM_CPU_BLOCKED");
    fv_net_destroy(&net);
}

int main(void) {
    fv_set_threads(2);
    const struct CMUnitTest cpu[] = {
        cmocka_unit_test(test_cpu_matches_direct), cmocka_unit_test(test_shard_first_n),
        cmocka_unit_test(test_evaluate_matches),   cmocka_unit_test(test_input_grad_fd),
        cmocka_unit_test(test_user_errors),        cmocka_unit_test(test_blocked_switch),
    };
    return cmocka_run_group_tests_name("trainer, CPU backend", cpu, NULL, NULL) != 0;
}
