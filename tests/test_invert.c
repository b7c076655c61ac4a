/* test_invert.c: the gradient-inversion engine and attack (attacks/invert.h) without PyTorch
 * (its PyTorch parity is test_invert_parity.c):
 *  - the attack gradient against a directional finite difference of the matching function on
 *    the smooth sigmoid model dlg_lenet, fedSGD and a fedAVG update of 2 steps: <u, gx> against
 *    (F(x + d u) - F(x - d u)) / 2d with F(x) = <v, update(x)>; tolerance 2e-2 relative (both
 *    sides are float32 differences: the outer one has rounding / d of about 1e-3 here);
 *  - label inference (iDLG rule for batch 1, counts for a batch) on a real gradient;
 *  - an end-to-end attack on untrained LeNet-5, fedSGD batch 1, MNIST test image 0, 2000
 *    iterations (about 3 s): PSNR above 13.5 dB and SSIM above 0.45, and at least 2 dB / 0.2 above
 *    a blank image and 5 dB / 0.3 above the attack's noise start (measured on this image: 14.7 dB
 *    and 0.57; blank 11.2 dB; the message prints all of them). Skipped without MNIST;
 *  - restarts spread over two engines (fv_invert_attack_multi) against one engine in order: the
 *    same bits;
 *  - bad input: engine and attack configurations, and `fedvim attack invert` flags (exit 2 before
 *    any data is read). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack_api.h"
#include "data/data.h"
#include "fl_harness.h"
#include "invert.h"
#include "metrics.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "num_check.h"

static double dotf(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void directional(fv_invert_kind kind) {
    fv_err e = {{0}};
    fv_net *net = fv_model_new("dlg_lenet", (fv_shape){1, 28, 28}, 10, 5, &e);
    assert_non_null(net);
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.kind = kind;
    uc.n = 2;
    uc.batch = 1;
    uc.lr = 0.1f;
    fv_invert_engine *g = fv_invert_engine_new(net, &uc, &e);
    assert_non_null(g);
    const size_t nx = 2 * 28 * 28, nt = fv_invert_n_train(g);
    float *x = fv_malloc(sizeof(float) * (4 * nx + 2 * nt)), *u = x + nx, *xp = u + nx, *gx = xp + nx, *v = gx + nx,
          *U = v + nt;
    int y[2] = {3, 7};
    fv_rng r;
    fv_rng_seed(&r, 9);
    for (size_t i = 0; i < nx; i++) x[i] = (float)fv_rng_uniform(&r), u[i] = (float)fv_rng_normal(&r);
    for (size_t i = 0; i < nt; i++) v[i] = (float)fv_rng_normal(&r);
    fv_invert_update(g, x, y, U);
    fv_invert_vjp(g, v, gx);
    const double analytic = dotf(u, gx, nx), d = 1e-2;
    double F[2];
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < nx; i++) xp[i] = x[i] + (float)((s ? -d : d) * u[i]);
        fv_invert_update(g, xp, y, U);
        F[s] = dotf(v, U, nt);
    }
    const double fd = (F[0] - F[1]) / (2 * d);
    print_message("%s: <u, gx> %.6g, finite difference %.6g\n", kind == FV_INVERT_FEDSGD ? "fedSGD" : "fedAVG 2 steps",
                  analytic, fd);
    assert_true(fabs(analytic - fd) <= 2e-2 * fabs(fd));
    fv_invert_engine_free(&g);
    fv_net_destroy(&net);
    free(x);
}

static void test_directional_fedsgd(void **st) {
    (void)st;
    directional(FV_INVERT_FEDSGD);
}
static void test_directional_fedavg(void **st) {
    (void)st;
    directional(FV_INVERT_FEDAVG);
}

/* The batch-norm statistics prior (bn_prior): its gradient (fv_invert_match with the prior minus
 * without it, the rest of the objective being the same computation) against a central difference
 * of its value along 3 directions, on ResNet-20 (3x32x32, 19 batch-norm layers), a batch of
 * 2, running statistics moved off their initial 0 / 1 so both terms matter. Tolerance 1e-2
 * relative, along the gradient's own direction and two directions half random: the prior's
 * gradient is exact backprop, the outer difference (step 1e-2) is of float32 activations through
 * ReLU kinks (measured 5e-4 along the gradient; printed). Also: refused on a model without batch
 * norm; the in-run setting bn_prior checked. fedSGD's prior, which reuses the update pass's
 * forward, against a fedAVG engine's, which runs its own; and it adds no forward pass. */
static void test_bn_prior_gradient(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_net *net = fv_model_new("resnet20", (fv_shape){3, 32, 32}, 10, 3, &e);
    assert_non_null(net);
    fv_rng r;
    fv_rng_seed(&r, 31);
    tc_bn_running_stats(net, &r);
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.n = 2;
    fv_invert_engine *g = fv_invert_engine_new(net, &uc, &e);
    assert_non_null(g);
    const size_t nx = 2 * 3 * 32 * 32, nt = fv_invert_n_train(g);
    float *x = fv_malloc(sizeof(float) * (5 * nx + nt)), *u = x + nx, *xp = u + nx, *g1 = xp + nx, *g0 = g1 + nx,
          *T = g0 + nx;
    int y[2] = {1, 6};
    for (size_t i = 0; i < nx; i++) x[i] = (float)fv_rng_normal(&r);
    fv_invert_update(g, x, y, T); /* a target from other images */
    for (size_t i = 0; i < nx; i++) x[i] = (float)fv_rng_normal(&r);
    fv_invert_cfg c1 = fv_invert_defaults(), c0 = fv_invert_defaults();
    c1.tv = c0.tv = 0;
    c1.bn_prior = 0.5;
    const double p = fv_invert_match(g, x, T, y, &c1, g1) - fv_invert_match(g, x, T, y, &c0, g0);
    assert_true(p > 0);
    double worst = 0, pn = 0;
    for (size_t i = 0; i < nx; i++) pn += ((double)g1[i] - g0[i]) * ((double)g1[i] - g0[i]);
    pn = sqrt(pn);
    for (int t = 0; t < 3; t++) {
        /* the prior's gradient direction, then that plus a random unit direction (a random
         * direction alone sees under 1% of the gradient: its difference would measure noise) */
        for (size_t i = 0; i < nx; i++) u[i] = (float)(fv_rng_normal(&r) * (t > 0) / sqrt((double)nx) + (g1[i] - g0[i]) / pn);
        double an = 0, un = sqrt(dotf(u, u, nx));
        for (size_t i = 0; i < nx; i++) u[i] = (float)(u[i] / un), an += (double)u[i] * ((double)g1[i] - g0[i]);
        const double d = 1e-2;
        double F[2];
        for (int s = 0; s < 2; s++) {
            for (size_t i = 0; i < nx; i++) xp[i] = x[i] + (float)((s ? -d : d) * u[i]);
            F[s] = fv_invert_match(g, xp, T, y, &c1, NULL) - fv_invert_match(g, xp, T, y, &c0, NULL);
        }
        const double fd = (F[0] - F[1]) / (2 * d), err = fabs(an - fd) / fabs(fd);
        worst = fmax(worst, err);
        if (!(err <= 1e-2)) fail_msg("bn prior: direction %d: gradient %.8g, finite difference %.8g", t, an, fd);
    }
    print_message("bn prior on resnet20 (value %.4g): worst relative error %.2e\n", p, worst);
    /* fedSGD evaluates the prior on its update pass's forward (no forward of its own): the same
     * prior, value and gradient, as a fedAVG engine's, which runs its own forward at theta_0 on
     * the same candidates. Tolerance: the value 1e-9 relative (the same double sums, subtracted
     * from different totals), the gradient 1e-4 normwise (float sums onto different vjps) */
    fv_invert_update_cfg ua = uc;
    ua.kind = FV_INVERT_FEDAVG, ua.batch = 1;
    fv_invert_engine *ga = fv_invert_engine_new(net, &ua, &e);
    assert_non_null(ga);
    float *Ta = fv_malloc(sizeof(float) * (fv_invert_n_train(ga) + 2 * nx)), *ga1 = Ta + fv_invert_n_train(ga),
          *ga0 = ga1 + nx;
    for (size_t i = 0; i < nx; i++) xp[i] = (float)fv_rng_normal(&r);
    fv_invert_update(ga, xp, y, Ta);
    const double pa = fv_invert_match(ga, x, Ta, y, &c1, ga1) - fv_invert_match(ga, x, Ta, y, &c0, ga0);
    if (!(fabs(pa - p) <= 1e-9 * fabs(p))) fail_msg("bn prior: fedAVG value %.12g, fedSGD %.12g", pa, p);
    double dd = 0;
    for (size_t i = 0; i < nx; i++) {
        const double a = (double)ga1[i] - ga0[i], b = (double)g1[i] - g0[i];
        dd += (a - b) * (a - b);
    }
    if (!(sqrt(dd) <= 1e-4 * pn)) fail_msg("bn prior: fedAVG gradient differs by %.3g of %.3g", sqrt(dd), pn);
    free(Ta);
    fv_invert_engine_free(&ga);
    fv_invert_result res; /* the attack with the prior on: runs, and its loss includes the prior */
    c1.iters = c0.iters = 2;
    if (fv_invert_attack(g, T, y, &c1, x, &res, &e)) fail_msg("%s", e.msg);
    assert_true(res.loss > res.match);
    fv_invert_result res0; /* fedSGD: the prior costs no forward pass (3 an iteration either way) */
    if (fv_invert_attack(g, T, y, &c0, x, &res0, &e)) fail_msg("%s", e.msg);
    assert_int_equal(res.passes, res0.passes);
    fv_invert_engine_free(&g);
    fv_net_destroy(&net);
    /* a model without batch norm: refused before any pass */
    net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 1, &e);
    uc.n = 1;
    g = fv_invert_engine_new(net, &uc, &e);
    float *T1 = fv_malloc(sizeof(float) * fv_invert_n_train(g));
    for (size_t i = 0; i < fv_invert_n_train(g); i++) T1[i] = 1;
    assert_int_equal(fv_invert_attack(g, T1, y, &c1, x, &res, &e), -1);
    assert_non_null(strstr(e.msg, "batch norm"));
    free(T1);
    fv_invert_engine_free(&g);
    fv_net_destroy(&net);
    free(x);
    /* the in-run setting */
    assert_int_equal(fv_attack_settings_check("invert", "bn_prior=0.01", &e), 0);
    assert_int_equal(fv_attack_settings_check("invert", "bn_prior=-1", &e), -1);
    assert_non_null(strstr(e.msg, "bn_prior"));
}

static int load_test(fv_dataset *d) {
    fv_err e = {{0}};
    if (fv_dataset_load("mnist", NULL, 0, d, &e)) {
        fprintf(stderr, "test_invert: skipped: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static void test_labels(void **st) {
    (void)st;
    fv_dataset d;
    if (load_test(&d)) skip();
    fv_err e = {{0}};
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 1, &e);
    assert_non_null(net);
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.n = 4;
    fv_invert_engine *g = fv_invert_engine_new(net, &uc, &e);
    assert_non_null(g);
    float *x = fv_malloc(sizeof(float) * 4 * 784), *U = fv_malloc(sizeof(float) * net->n_train);
    int y[4], got[4];
    fv_dataset_to_float(&d, NULL, 0, 4, fv_norm_for("mnist"), x);
    fv_dataset_labels(&d, NULL, 0, 4, y);
    /* batch 1: iDLG */
    fv_invert_engine *g1;
    uc.n = 1;
    g1 = fv_invert_engine_new(net, &uc, &e);
    fv_invert_update(g1, x, y, U);
    assert_int_equal(fv_invert_labels(net, U, 1, got, &e), 0);
    assert_int_equal(got[0], y[0]);
    /* batch 4 (labels 7 2 1 0: distinct): the multiset */
    fv_invert_update(g, x, y, U);
    assert_int_equal(fv_invert_labels(net, U, 4, got, &e), 0);
    int want[4] = {0, 1, 2, 7};
    for (int i = 0; i < 4; i++) assert_int_equal(got[i], want[i]);
    /* nothing negative: a clear error */
    memset(U, 0, sizeof(float) * net->n_train);
    assert_int_equal(fv_invert_labels(net, U, 1, got, &e), -1);
    assert_non_null(strstr(e.msg, "cannot be inferred"));
    fv_invert_engine_free(&g);
    fv_invert_engine_free(&g1);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
    free(x);
    free(U);
}

static void test_attack_lenet5(void **st) {
    (void)st;
    fv_dataset d;
    if (load_test(&d)) skip();
    fv_err e = {{0}};
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 1, &e);
    assert_non_null(net);
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    fv_invert_engine *g = fv_invert_engine_new(net, &uc, &e);
    assert_non_null(g);
    const fv_norm nm = fv_norm_for("mnist");
    float *x = fv_malloc(sizeof(float) * 784 * 4), *rec = x + 784, *p0 = rec + 784, *p1 = p0 + 784;
    float *U = fv_malloc(sizeof(float) * net->n_train);
    int y;
    fv_dataset_to_float(&d, NULL, 0, 1, nm, x);
    fv_dataset_labels(&d, NULL, 0, 1, &y);
    fv_invert_update(g, x, &y, U);
    fv_invert_cfg ac = fv_invert_defaults();
    ac.iters = 2000;
    ac.lo[0] = (0 - nm.mean[0]) / nm.std[0];
    ac.hi[0] = (1 - nm.mean[0]) / nm.std[0];
    fv_invert_result res;
    assert_int_equal(fv_invert_attack(g, U, &y, &ac, rec, &res, &e), 0);
    for (int i = 0; i < 784; i++) {
        p0[i] = x[i] * nm.std[0] + nm.mean[0];
        p1[i] = fminf(1.0f, fmaxf(0.0f, rec[i] * nm.std[0] + nm.mean[0]));
    }
    double psnr = fv_psnr(p1, p0, 784), ssim;
    assert_int_equal(fv_ssim(&ssim, p1, p0, 1, 28, 28, &e), 0);
    /* the baselines: a blank image, and the attack's own start (N(0, 1) clamped to the box) */
    float blank[784] = {0}, noise[784];
    fv_rng r;
    fv_rng_seed2(&r, ac.seed, 0);
    for (int i = 0; i < 784; i++)
        noise[i] = fminf(1.0f, fmaxf(0.0f, (float)fv_rng_normal(&r) * nm.std[0] + nm.mean[0]));
    double psnr_blank = fv_psnr(blank, p0, 784), psnr_noise = fv_psnr(noise, p0, 784), ssim_blank, ssim_noise;
    assert_int_equal(fv_ssim(&ssim_blank, blank, p0, 1, 28, 28, &e), 0);
    assert_int_equal(fv_ssim(&ssim_noise, noise, p0, 1, 28, 28, &e), 0);
    print_message("lenet5 fedSGD b1, %d iterations: PSNR %.2f dB, SSIM %.3f, cosine %.4f, %.2f s (blank image %.2f dB "
                  "SSIM %.3f; the noise start %.2f dB SSIM %.3f)\n",
                  ac.iters, psnr, ssim, res.cos, res.seconds, psnr_blank, ssim_blank, psnr_noise, ssim_noise);
    assert_true(psnr > 13.5 && psnr > psnr_blank + 2 && psnr > psnr_noise + 5);
    assert_true(ssim > 0.45 && ssim > ssim_blank + 0.2 && ssim > ssim_noise + 0.3);
    fv_invert_engine_free(&g);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
    free(x);
    free(U);
}

static void test_bad_input(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_net *net = fv_model_new("tiny", (fv_shape){1, 28, 28}, 10, 1, &e);
    assert_non_null(net);
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.kind = FV_INVERT_FEDAVG;
    uc.n = 2;
    uc.batch = 4;
    assert_null(fv_invert_engine_new(net, &uc, &e));
    assert_non_null(strstr(e.msg, "local batch 4"));
    uc.batch = 2;
    uc.epochs = 0;
    assert_null(fv_invert_engine_new(net, &uc, &e));
    assert_non_null(strstr(e.msg, "local epochs"));
    uc.epochs = 1;
    uc.fd_scale = 0;
    assert_null(fv_invert_engine_new(net, &uc, &e));
    assert_non_null(strstr(e.msg, "fd_scale"));
    uc.fd_scale = FV_INVERT_FD_SCALE;
    fv_invert_engine *g = fv_invert_engine_new(net, &uc, &e);
    assert_non_null(g);
    float x[2 * 784] = {0}, out[2 * 784];
    float *T = fv_calloc(net->n_train, sizeof(float));
    int y[2] = {0, 11};
    fv_invert_cfg ac = fv_invert_defaults();
    ac.iters = 1;
    assert_int_equal(fv_invert_attack(g, T, y, &ac, out, &(fv_invert_result){0}, &e), -1);
    assert_non_null(strstr(e.msg, "label 11"));
    y[1] = 1;
    assert_int_equal(fv_invert_attack(g, T, y, &ac, out, &(fv_invert_result){0}, &e), -1);
    assert_non_null(strstr(e.msg, "zero"));
    ac.restarts = 0;
    assert_int_equal(fv_invert_attack(g, T, y, &ac, out, &(fv_invert_result){0}, &e), -1);
    assert_non_null(strstr(e.msg, "restarts"));
    (void)x;
    fv_invert_engine_free(&g);
    free(T);
    fv_net_destroy(&net);
}

/* `fedvim attack invert` refuses bad flags before it reads any data (exit 2, the flag named). */
/* fv_invert_attack_multi: restarts spread over two engines (two nets with the same weights, two
 * threads) give exactly what one engine gives in order on the CPU (bit for bit: each restart is
 * the same computation, only where it runs differs): the reconstruction, the winner and its
 * figures, and the passes of all engines together. With a target that restart 0 meets, the
 * in-order attack stops there and the spread one runs every restart but chooses the same. */
static void test_attack_multi(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_net *n0 = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 4, &e), *n1 = fv_model_new("lenet5", (fv_shape){1, 28, 28}, 10, 9, &e);
    assert_non_null(n0);
    assert_non_null(n1);
    memcpy(n1->params, n0->params, n0->n_params * sizeof(float));
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.n = 2;
    fv_invert_engine *g0 = fv_invert_engine_new(n0, &uc, &e), *g1 = fv_invert_engine_new(n1, &uc, &e);
    assert_non_null(g0);
    assert_non_null(g1);
    const size_t nx = 2 * 28 * 28, nt = fv_invert_n_train(g0);
    float *x = fv_malloc(sizeof(float) * (3 * nx + nt)), *a = x + nx, *b = a + nx, *T = b + nx;
    fv_rng r;
    fv_rng_seed(&r, 12);
    for (size_t i = 0; i < nx; i++) x[i] = (float)fv_rng_normal(&r);
    int y[2] = {3, 8};
    fv_invert_update(g0, x, y, T);
    fv_invert_cfg c = fv_invert_defaults();
    c.iters = 6, c.restarts = 3;
    for (int k = 0; k < 2; k++) {
        fv_invert_result ra, rb;
        fv_invert_engine *both[2] = {g0, g1};
        if (fv_invert_attack(g0, T, y, &c, a, &ra, &e) || fv_invert_attack_multi(both, 2, T, y, &c, b, &rb, &e))
            fail_msg("%s", e.msg);
        assert_memory_equal(a, b, nx * sizeof(float));
        assert_int_equal(ra.restart, rb.restart);
        assert_true(ra.loss == rb.loss && ra.cos == rb.cos && ra.match0 == rb.match0);
        if (k == 0) assert_int_equal(ra.passes, rb.passes);
        else assert_true(ra.restart == 0 && ra.passes < rb.passes); /* the target: in order stops early */
        c.target = 0.999; /* 1 - cos: met by any start */
    }
    free(x);
    fv_invert_engine_free(&g0);
    fv_invert_engine_free(&g1);
    fv_net_destroy(&n0);
    fv_net_destroy(&n1);
}

static void test_cli_errors(void **st) {
    (void)st;
    fh_ctx c;
    int rc = fh_init(&c, "invert");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char out[512];
    static const struct {
        const char *a[4], *msg;
    } cases[] = {
        {{"--batch", "8", "--images", "4"}, "--batch 8 is not in [1, --images 4]"},
        {{"--model", "nope", NULL, NULL}, "unknown model 'nope'"},
        {{"--update", "fedprox", NULL, NULL}, "--update: 'fedprox'"},
        {{"--labels", "guess", NULL, NULL}, "--labels: 'guess'"},
        {{"--images", "6", "--batch", "4"}, "not a multiple of --batch 4"},
        {{"--trained-epochs", "1", "--oracle-from", "5000"}, "--oracle-from 5000 overlaps"},
        {{"--fd", "backward", NULL, NULL}, "--fd: 'backward'"},
        {{"--bn-prior", "-1", NULL, NULL}, "bn-prior"},
        {{"--device", "gpu", NULL, NULL}, "--device: --device 'gpu'"},
        {{"--parallel", "65", NULL, NULL}, "--parallel: 65 is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fh_path(&c, out, sizeof out, "case%zu.out", i);
        const char *const *a = cases[i].a;
        int st2 = a[2] ? fh_run(&c, out, 30, "attack", "invert", a[0], a[1], a[2], a[3], NULL)
                       : fh_run(&c, out, 30, "attack", "invert", a[0], a[1], NULL);
        assert_int_equal(st2, 2);
        if (!fh_contains(out, cases[i].msg)) fail_msg("case %zu: no '%s' in the output", i, cases[i].msg);
    }
    fh_path(&c, out, sizeof out, "avg.out");
    assert_int_equal(fh_run(&c, out, 30, "attack", "invert", "--update", "fedavg", "--batch", "2", "--images", "2",
                            "--local-batch", "3", NULL),
                     2);
    assert_true(fh_contains(out, "--local-batch 3 is above the client's --batch 2"));
    fh_cleanup(&c);
}

/* Regression: --trained-epochs trained on every training image whatever --train-images said
 * (fv_train_epoch takes all of a data set when given no index list). One epoch of Adam on 64
 * images is one step from the seed's weights: its test accuracy stays far below what an epoch on
 * 60,000 MNIST images gives (0.199 when written, against about 0.95); the bar is 0.5. */
static void test_train_images(void **st) {
    (void)st;
    fv_dataset d;
    if (load_test(&d)) skip();
    fv_dataset_free(&d);
    fh_ctx c;
    int rc = fh_init(&c, "invert_train");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char out[512];
    fh_path(&c, out, sizeof out, "train.out");
    assert_int_equal(fh_run(&c, out, 60, "attack", "invert", "--trained-epochs", "1", "--train-images", "64",
                            "--iters", "2", "--images", "1", "--batch", "1", "--threads", "1", "--json", NULL),
                     0);
    char *t = fh_slurp(out);
    const char *j = strrchr(t, '{');
    assert_non_null(j);
    const double acc = fh_json_num(j, "test_accuracy"), n = fh_json_num(j, "train_images");
    if (!(n == 64 && acc >= 0 && acc < 0.5)) fail_msg("64 training images gave test accuracy %g:\n%s", acc, j);
    free(t);
    fh_cleanup(&c);
}

int main(void) {
    fv_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directional_fedsgd), cmocka_unit_test(test_directional_fedavg),
        cmocka_unit_test(test_labels),             cmocka_unit_test(test_attack_lenet5),
        cmocka_unit_test(test_bad_input),          cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_train_images),       cmocka_unit_test(test_bn_prior_gradient),
        cmocka_unit_test(test_attack_multi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
