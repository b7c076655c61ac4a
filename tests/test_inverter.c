/* test_inverter.c: the learned inverter (attacks/inverter.h) and `fedvim attack inverter`:
 *  - the whole network's parameter gradient (every node of the graph it uses: conv, ReLU, max
 *    pool, nearest upsampling, residual add) under the MSE pixel loss, against central
 *    differences of the float loss on a width-2 net of 8 x 8 images, with the ReLU and max-pool
 *    choices of the analytic pass replayed (FV_KINKS_REPLAY: no kink is crossed): normwise
 *    relative error below 5e-3 over every third parameter (float32 losses of ~0.3 differenced
 *    with h = 1e-2 carry ~1e-5 absolute rounding per entry; measured 1e-3 or less; the layers
 *    themselves are checked to 1e-4 in test_layers.c);
 *  - recovery through a trivially invertible mixing: windows of size 1 (WS_min = WS_max = 1: every
 *    "shuffle" is the identity). An inverter of width 8 trained 3 epochs (batch 8: 225 Adam
 *    steps) on 600 MNIST training images must give the first 100 test images back with median
 *    PSNR above 24 dB and median SSIM above 0.9. The identity is easy to learn through the
 *    full-resolution residual skip; this setting measured 28.5 dB / 0.957 here (12 s of training
 *    beside another 2-thread job), and more training goes on rising (40.7 dB / 0.997 with width
 *    16, 2,000 images x 3 epochs), while a broken loss,
 *    gradient or data path stays near a constant image's ~11 dB and SSIM ~0.3. Skipped without MNIST;
 *  - configuration errors (fv_inverter_check, the network's shape rule);
 *  - bad flags of `fedvim attack inverter`: exit 2 before any data is read, or exit 1 naming
 *    the input (the attacker's data set, its range, its shape, the mixing bounds).
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

#include "data/data.h"
#include "fedsim.h"
#include "fl_harness.h"
#include "inverter.h"
#include "metrics.h"
#include "nn/layers.h"
#include "nn/loss_pixel.h"

static void test_net_gradient(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_net *net = fv_inverter_net_new(1, 8, 8, 2, 3, &e);
    assert_non_null(net);
    enum { N = 2, S = 64 };
    float x[N * S], t[N * S], d[N * S];
    fv_rng r;
    fv_rng_seed(&r, 1);
    for (int i = 0; i < N * S; i++) x[i] = fv_rng_uniform(&r), t[i] = fv_rng_uniform(&r);
    fv_net_set_kinks(net, FV_KINKS_RECORD); /* the differences below keep these ReLU / pool choices */
    fv_pixel_loss(d, fv_net_forward(net, x, N, 1), t, N * S, FV_PIXEL_MSE);
    fv_net_backward(net, d, N);
    fv_net_set_kinks(net, FV_KINKS_REPLAY);
    float *g = fv_malloc(sizeof(float) * net->n_train);
    memcpy(g, net->grads, sizeof(float) * net->n_train);
    double num2 = 0, diff2 = 0;
    int checked = 0;
    const float h = 1e-2f;
    for (size_t i = 0; i < net->n_train; i += 3, checked++) {
        const float p0 = net->params[i];
        net->params[i] = p0 + h;
        const double lp = fv_pixel_loss(NULL, fv_net_forward(net, x, N, 1), t, N * S, FV_PIXEL_MSE);
        net->params[i] = p0 - h;
        const double lm = fv_pixel_loss(NULL, fv_net_forward(net, x, N, 1), t, N * S, FV_PIXEL_MSE);
        net->params[i] = p0;
        const double num = (lp - lm) / (2.0 * h);
        num2 += num * num;
        diff2 += (num - g[i]) * (num - g[i]);
    }
    const double rel = sqrt(diff2 / num2);
    if (!(num2 > 0 && rel < 5e-3)) fail_msg("inverter gradient: relative error %.3g over %d parameters", rel, checked);
    free(g);
    fv_net_destroy(&net);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_identity_recovery(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_dataset tr, te;
    if (fv_dataset_load("mnist", NULL, 1, &tr, &e)) {
        fprintf(stderr, "test_inverter: skipped: %s\n", e.msg);
        skip();
    }
    assert_int_equal(fv_dataset_load("mnist", NULL, 0, &te, &e), 0);
    fv_dataset own;
    fv_fedsim_subset(&own, &tr, NULL, 600);
    fv_dataset_free(&tr);
    fv_inverter_cfg cfg = fv_inverter_defaults();
    cfg.width = 8;
    cfg.epochs = 3;
    cfg.batch = 8; /* 225 Adam steps */
    cfg.def.vp.ws_min = cfg.def.vp.ws_max = 1; /* windows of one pixel: mixing is the identity */
    fv_fedsim_client_key(cfg.key, 7, 1);
    fv_net *net = fv_inverter_net_new(1, 28, 28, cfg.width, 1, &e);
    assert_non_null(net);
    fv_inverter_stats ts;
    if (fv_inverter_train(net, &own, &cfg, &ts, &e)) fail_msg("%s", e.msg);
    assert_int_equal(ts.epochs, 3);
    assert_int_equal(ts.pairs, 1800);
    enum { M = 100, S = 784 };
    float *o = fv_malloc(sizeof(float) * M * S * 2), *y = o + M * S;
    for (int i = 0; i < M * S; i++) o[i] = te.x[i] / 255.0f;
    fv_inverter_apply(net, y, o, M, 32);
    double psnr[M], ssim[M];
    for (int i = 0; i < M; i++) {
        psnr[i] = fv_psnr(y + i * S, o + i * S, S);
        assert_int_equal(fv_ssim(&ssim[i], y + i * S, o + i * S, 1, 28, 28, &e), 0);
    }
    qsort(psnr, M, sizeof(double), cmp_double);
    qsort(ssim, M, sizeof(double), cmp_double);
    const double mp = 0.5 * (psnr[M / 2 - 1] + psnr[M / 2]), ms = 0.5 * (ssim[M / 2 - 1] + ssim[M / 2]);
    if (!(mp > 24.0 && ms > 0.9))
        fail_msg("identity inverter: median PSNR %.2f dB (want > 24), median SSIM %.4f (want > 0.9)", mp, ms);
    print_message("identity inverter: median %.2f dB, SSIM %.4f; final MSE %.5f in %.1f s\n", mp, ms,
                  (double)ts.final_loss, ts.seconds);
    free(o);
    fv_net_destroy(&net);
    fv_dataset_free(&own);
    fv_dataset_free(&te);
}

static void test_config_errors(void **st) {
    (void)st;
    fv_err e = {{0}};
    assert_null(fv_inverter_net_new(1, 30, 28, 8, 1, &e));
    assert_non_null(strstr(e.msg, "multiples of 4"));
    assert_null(fv_inverter_net_new(1, 28, 28, 0, 1, &e));
    assert_non_null(strstr(e.msg, "width 0"));
    fv_inverter_cfg c = fv_inverter_defaults();
    c.def.vp.ws_min = 2, c.def.vp.ws_max = 4;
    assert_int_equal(fv_inverter_check(&c, 1, 28, 28, &e), 0);
    c.lr = NAN;
    assert_int_equal(fv_inverter_check(&c, 1, 28, 28, &e), -1);
    assert_non_null(strstr(e.msg, "learning rate"));
    c = fv_inverter_defaults();
    c.def.vp.ws_min = 8, c.def.vp.ws_max = 4;
    assert_int_equal(fv_inverter_check(&c, 1, 28, 28, &e), -1);
    assert_non_null(strstr(e.msg, "inverter mixing"));
    c.def.kind = FV_INV_DEF_NONE; /* the identity pairs ignore the mixing settings */
    assert_int_equal(fv_inverter_check(&c, 1, 28, 28, &e), 0);
    c.def.kind = FV_INV_DEF_VMIX;
    assert_int_equal(fv_inverter_check(&c, 0, 0, 0, &e), 0); /* shape unknown: no mixing check */
    c.batch = 0;
    assert_int_equal(fv_inverter_check(&c, 0, 0, 0, &e), -1);
    assert_non_null(strstr(e.msg, "batch 0"));
    c.batch = 32;
    fv_dataset empty;
    memset(&empty, 0, sizeof empty);
    fv_net *net = fv_inverter_net_new(1, 8, 8, 2, 1, &e);
    assert_int_equal(fv_inverter_train(net, &empty, &c, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "no images"));
    fv_net_destroy(&net);
}

static void test_cli_errors(void **st) {
    (void)st;
    fh_ctx c;
    int rc = fh_init(&c, "inverter");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char out[512];
    static const struct {
        const char *a[2], *msg;
        int status;
    } cases[] = {
        {{"--loss", "huber"}, "--loss: 'huber' is not a pixel loss", 2},
        {{"--width", "0"}, "--width", 2},
        {{"--mode", "bogus"}, "--mode", 2},
        {{"--lr", "-1"}, "--lr", 2},
        {{"--epochs", "x"}, "--epochs", 2},
        {{"--attacker-dataset", "nope"}, "the attacker's data: unknown data set 'nope'", 1},
        {{"--attacker-images", "70000"}, "70000 attacker images from 0 do not fit the 60000 training images", 1},
        {{"--attacker-dataset", "cmnist"}, "the attacker's cmnist images are 3 x 28 x 28", 1},
        {{"--ws-min", "3"}, "WS_min = 3 is not a power of two", 1},
        {{"--first", "9999"}, "do not fit the 10000 test images", 1},
    };
    fv_dataset probe; /* the exit-1 cases read MNIST: without it only the flag cases run */
    fv_err e = {{0}};
    const int have_mnist = fv_dataset_load("mnist", NULL, 1, &probe, &e) == 0;
    fv_dataset_free(&probe);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].status == 1 && !have_mnist) continue;
        fh_path(&c, out, sizeof out, "case%zu.out", i);
        int s = fh_run(&c, out, 60, "attack", "inverter", "--epochs", "0", "--images", "2", cases[i].a[0], cases[i].a[1],
                       NULL);
        if (s != cases[i].status) fail_msg("case %zu (%s %s): exit %d, want %d", i, cases[i].a[0], cases[i].a[1], s,
                                           cases[i].status);
        if (!fh_contains(out, cases[i].msg)) fail_msg("case %zu: no '%s' in the output", i, cases[i].msg);
    }
    fh_cleanup(&c);
}

int main(void) {
    fv_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_gradient),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_identity_recovery),
        cmocka_unit_test(test_cli_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
