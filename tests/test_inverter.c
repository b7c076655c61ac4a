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
 *  - the defences the inverter trains against (fv_defence_apply): their identity settings (shuffle
 *    window 1, noise sigma 0, InstaHide k = 1 without sign flips, VisualMixer windows of 1, none)
 *    give the images back exactly; a fixed (key, stream) repeats, another stream differs; windowed
 *    shuffling keeps each channel's pixel sum (a permutation inside windows); 3 channels work;
 *    InstaHide refuses k above the set's size; bad settings are named (fv_defence_check);
 *  - recovery through noise of sigma 0 on 3-channel images (600 MNIST images coloured as Colored
 *    MNIST): an inverter of width 8 trained 2 epochs (batch 8: 150 Adam steps at lr 3e-3) must
 *    give 100 coloured test images back with median PSNR above 17 dB and SSIM above 0.5. Measured
 *    here: 20.2 dB / 0.68 (still rising: random colours take longer than grey digits), while the
 *    level a broken 3-channel path or defence pipeline stays near, the attacker's mean image, is
 *    10.4 dB / 0.18 (measured once on these images). Skipped without MNIST;
 *  - configuration errors (fv_inverter_check, the network's shape rule);
 *  - bad flags of `fedvim attack inverter`: exit 2 before any data is read (bad defence settings
 *    are given with --dataset nope: the defence's error, not the data set's, proves the order),
 *    or exit 1 naming the input (the attacker's data set, its range, its shape, the mixing bounds).
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

/* Train an inverter (cfg, key of client 1 of seed 7, init seed 1) on own, apply it to the m victim
 * images (c x 28 x 28 bytes) and give the median PSNR and SSIM of its outputs against them (the
 * recovery tests' figures) and the training statistics. */
static void train_recover(const fv_dataset *own, const uint8_t *victim, int m, fv_inverter_cfg *cfg, double *mp,
                          double *ms, fv_inverter_stats *ts) {
    fv_err e = {{0}};
    const int c = own->c, S = c * 784;
    fv_fedsim_client_key(cfg->key, 7, 1);
    fv_net *net = fv_inverter_net_new(c, 28, 28, cfg->width, 1, &e);
    assert_non_null(net);
    if (fv_inverter_train(net, own, cfg, ts, &e)) fail_msg("%s", e.msg);
    float *o = fv_malloc(sizeof(float) * (size_t)m * S * 2), *y = o + (size_t)m * S;
    double *psnr = fv_malloc(sizeof(double) * (size_t)m * 2), *ssim = psnr + m;
    for (size_t i = 0; i < (size_t)m * S; i++) o[i] = victim[i] / 255.0f;
    if (fv_inverter_apply(net, y, o, m, 32, -1, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < m; i++) {
        psnr[i] = fv_psnr(y + (size_t)i * S, o + (size_t)i * S, (size_t)S);
        assert_int_equal(fv_ssim(&ssim[i], y + (size_t)i * S, o + (size_t)i * S, c, 28, 28, &e), 0);
    }
    qsort(psnr, (size_t)m, sizeof(double), cmp_double);
    qsort(ssim, (size_t)m, sizeof(double), cmp_double);
    *mp = 0.5 * (psnr[m / 2 - 1] + psnr[m / 2]);
    *ms = 0.5 * (ssim[m / 2 - 1] + ssim[m / 2]);
    free(o);
    free(psnr);
    fv_net_destroy(&net);
}

/* The attacker's 600 MNIST training images and the test split; -1 (said on stderr) without MNIST. */
static int load_mnist(fv_dataset *own, fv_dataset *te) {
    fv_err e = {{0}};
    fv_dataset tr;
    if (fv_dataset_load("mnist", NULL, 1, &tr, &e)) {
        fprintf(stderr, "test_inverter: skipped: %s\n", e.msg);
        return -1;
    }
    assert_int_equal(fv_dataset_load("mnist", NULL, 0, te, &e), 0);
    fv_fedsim_subset(own, &tr, NULL, 600);
    fv_dataset_free(&tr);
    return 0;
}

static void test_identity_recovery(void **st) {
    (void)st;
    fv_dataset own, te;
    if (load_mnist(&own, &te)) skip();
    fv_inverter_cfg cfg = fv_inverter_defaults();
    cfg.width = 8;
    cfg.epochs = 3;
    cfg.batch = 8; /* 225 Adam steps */
    cfg.def.vp.ws_min = cfg.def.vp.ws_max = 1; /* windows of one pixel: mixing is the identity */
    fv_inverter_stats ts;
    double mp, ms;
    train_recover(&own, te.x, 100, &cfg, &mp, &ms, &ts);
    assert_int_equal(ts.epochs, 3);
    assert_int_equal(ts.pairs, 1800);
    if (!(mp > 24.0 && ms > 0.9))
        fail_msg("identity inverter: median PSNR %.2f dB (want > 24), median SSIM %.4f (want > 0.9)", mp, ms);
    print_message("identity inverter: median %.2f dB, SSIM %.4f; final MSE %.5f in %.1f s\n", mp, ms,
                  (double)ts.final_loss, ts.seconds);
    fv_dataset_free(&own);
    fv_dataset_free(&te);
}

static fv_dataset synth_set(int n, int c, uint64_t seed) {
    fv_dataset d;
    memset(&d, 0, sizeof d);
    d.n = n, d.c = c, d.h = 28, d.w = 28, d.classes = 10;
    d.x = fv_malloc((size_t)n * c * 28 * 28);
    d.y = fv_malloc((size_t)n);
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < (size_t)n * c * 28 * 28; i++) d.x[i] = (uint8_t)fv_rng_below(&r, 256);
    for (int i = 0; i < n; i++) d.y[i] = (uint8_t)(i % 10);
    return d;
}

static void test_defences(void **st) {
    (void)st;
    fv_err e = {{0}};
    uint8_t key[FV_VMIX_KEY_BYTES];
    fv_fedsim_client_key(key, 5, 1);
    for (int c = 1; c <= 3; c += 2) {
        fv_dataset in = synth_set(6, c, 9 + (uint64_t)c), out;
        const size_t bytes = (size_t)in.n * c * 28 * 28;
        fv_defence_cfg id[5];
        for (int k = 0; k < 5; k++) id[k] = fv_inverter_defaults().def;
        id[0].kind = FV_INV_DEF_NONE;
        id[1].kind = FV_INV_DEF_SHUFFLE, id[1].window = 1;
        id[2].kind = FV_INV_DEF_NOISE, id[2].sigma = 0;
        id[3].kind = FV_INV_DEF_INSTAHIDE, id[3].ih = fv_instahide_defaults(1), id[3].ih.sign_flip = 0;
        id[4].kind = FV_INV_DEF_VMIX, id[4].vp.ws_min = id[4].vp.ws_max = 1;
        for (int k = 0; k < 5; k++) {
            if (fv_defence_apply(&out, &in, &id[k], key, 2, &e)) fail_msg("%s: %s", fv_inverter_defence_name(id[k].kind), e.msg);
            if (out.n != in.n || out.c != c || memcmp(out.x, in.x, bytes) != 0)
                fail_msg("the identity setting of %s changed the %d-channel images", fv_inverter_defence_name(id[k].kind), c);
            fv_dataset_free(&out);
        }
        fv_defence_cfg d[4] = {id[0], id[0], id[0], id[0]};
        d[0].kind = FV_INV_DEF_SHUFFLE, d[0].window = 3;
        d[1].kind = FV_INV_DEF_NOISE, d[1].sigma = 0.25;
        d[2].kind = FV_INV_DEF_INSTAHIDE, d[2].ih = fv_instahide_defaults(2);
        d[3].kind = FV_INV_DEF_VMIX, d[3].vp.ws_min = 2, d[3].vp.ws_max = 4;
        for (int k = 0; k < 4; k++) {
            fv_dataset a, b, o;
            if (fv_defence_apply(&a, &in, &d[k], key, 2, &e) || fv_defence_apply(&b, &in, &d[k], key, 2, &e) ||
                fv_defence_apply(&o, &in, &d[k], key, 3, &e))
                fail_msg("%s: %s", fv_inverter_defence_name(d[k].kind), e.msg);
            if (memcmp(a.x, b.x, bytes) != 0) fail_msg("%s: the same stream differs", fv_inverter_defence_name(d[k].kind));
            if (memcmp(a.x, o.x, bytes) == 0 || memcmp(a.x, in.x, bytes) == 0)
                fail_msg("%s: another stream, or the input, gives the same images", fv_inverter_defence_name(d[k].kind));
            if (k == 0)
                for (int i = 0; i < in.n * c; i++) { /* a permutation inside windows keeps every channel's sum */
                    long sa = 0, si = 0;
                    for (int p = 0; p < 784; p++) sa += a.x[(size_t)i * 784 + p], si += in.x[(size_t)i * 784 + p];
                    assert_int_equal(sa, si);
                }
            fv_dataset_free(&a);
            fv_dataset_free(&b);
            fv_dataset_free(&o);
        }
        fv_dataset_free(&in);
    }
    fv_dataset one = synth_set(1, 1, 3), out;
    fv_defence_cfg ih = fv_inverter_defaults().def;
    ih.kind = FV_INV_DEF_INSTAHIDE;
    assert_int_equal(fv_defence_apply(&out, &one, &ih, key, 2, &e), -1);
    assert_non_null(strstr(e.msg, "needs at least 2 images"));
    fv_dataset_free(&one);
    static const struct {
        fv_inverter_defence kind;
        int window, k;
        double sigma, upper;
        const char *msg;
    } bad[] = {
        {FV_INV_DEF_SHUFFLE, 0, 2, 0.1, 0.65, "shuffle window 0"},
        {FV_INV_DEF_NOISE, 3, 2, -0.5, 0.65, "noise sigma -0.5"},
        {FV_INV_DEF_NOISE, 3, 2, NAN, 0.65, "noise sigma nan"},
        {FV_INV_DEF_INSTAHIDE, 3, 0, 0.1, 0.65, "InstaHide k = 0"},
        {FV_INV_DEF_INSTAHIDE, 3, 17, 0.1, 0.65, "InstaHide k = 17"},
        {FV_INV_DEF_INSTAHIDE, 3, 4, 0.1, 0.2, "coefficient bound 0.2"},
        {(fv_inverter_defence)9, 3, 2, 0.1, 0.65, "unknown defence 9"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fv_inverter_cfg c = fv_inverter_defaults();
        c.def.kind = bad[i].kind, c.def.window = bad[i].window, c.def.sigma = bad[i].sigma;
        c.def.ih.k = bad[i].k, c.def.ih.upper = bad[i].upper;
        assert_int_equal(fv_inverter_check(&c, 0, 0, 0, &e), -1); /* before the shape is known */
        if (!strstr(e.msg, bad[i].msg)) fail_msg("bad defence %zu: '%s' does not name '%s'", i, e.msg, bad[i].msg);
    }
    fv_inverter_defence k;
    assert_int_equal(fv_inverter_defence_parse("instahide", &k, &e), 0);
    assert_int_equal(k, FV_INV_DEF_INSTAHIDE);
    assert_int_equal(fv_inverter_defence_parse("dp", &k, &e), -1);
    assert_non_null(strstr(e.msg, "'dp' is not a defence"));
}

static void test_noise0_colour_recovery(void **st) {
    (void)st;
    enum { M = 100 };
    fv_dataset g, te, own, gt, vt;
    if (load_mnist(&g, &te)) skip();
    fv_fedsim_subset(&gt, &te, NULL, M);
    fv_dataset_free(&te);
    fv_cmnist_make(&g, FV_CMNIST_SEED_TRAIN, &own);
    fv_cmnist_make(&gt, FV_CMNIST_SEED_TEST, &vt);
    fv_dataset_free(&g);
    fv_dataset_free(&gt);
    assert_int_equal(own.c, 3);
    fv_inverter_cfg cfg = fv_inverter_defaults();
    cfg.width = 8;
    cfg.epochs = 2;
    cfg.batch = 8; /* 150 Adam steps */
    cfg.lr = 3e-3f;
    cfg.def.kind = FV_INV_DEF_NOISE;
    cfg.def.sigma = 0; /* noise of std 0: the identity */
    fv_inverter_stats ts;
    double mp, ms;
    train_recover(&own, vt.x, M, &cfg, &mp, &ms, &ts);
    assert_int_equal(ts.pairs, 1200);
    if (!(mp > 17.0 && ms > 0.5))
        fail_msg("noise-0 inverter, 3 channels: median PSNR %.2f dB (want > 17), median SSIM %.4f (want > 0.5)", mp, ms);
    print_message("noise-0 inverter, 3 channels: median %.2f dB, SSIM %.4f (the mean image: 10.4 dB, 0.18); final MSE "
                  "%.5f in %.1f s\n", mp, ms, (double)ts.final_loss, ts.seconds);
    fv_dataset_free(&own);
    fv_dataset_free(&vt);
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
        const char *a[6], *msg;
        int status;
    } cases[] = {
        {{"--defence", "bogus", "--dataset", "nope"}, "--defence: 'bogus' is not a defence", 2},
        {{"--defence", "noise", "--reassemble", "--dataset", "nope"}, "--reassemble needs the window map of VisualMixer", 2},
        {{"--defence", "instahide", "--images", "1", "--dataset", "nope"}, "InstaHide k = 2 needs at least k victim images", 2},
        {{"--defence", "noise", "--sigma", "-1", "--dataset", "nope"}, "--sigma", 2},
        {{"--defence", "instahide", "--instahide-k", "17", "--dataset", "nope"}, "--instahide-k", 2},
        {{"--defence", "shuffle", "--window", "0", "--dataset", "nope"}, "--window", 2},
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
        const char *const *a = cases[i].a; /* NULL-padded: fh_run stops at the first NULL */
        int s = fh_run(&c, out, 60, "attack", "inverter", "--epochs", "0", "--images", "2", a[0], a[1], a[2], a[3], a[4],
                       a[5], NULL);
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
        cmocka_unit_test(test_defences),
        cmocka_unit_test(test_noise0_colour_recovery),
        cmocka_unit_test(test_identity_recovery),
        cmocka_unit_test(test_cli_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
