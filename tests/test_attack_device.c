/* test_attack_device.c: the adaptive attacks on the device-neutral trainer (nn/trainer.h), CPU
 * side; runs and gives its verdict (exit 0 or 1) in every build, GPU or not:
 *   - fv_trainer_train_pixel_batch on the CPU makes exactly the calls the learned inverter made
 *     before the trainer (fv_net_forward in training mode, fv_pixel_loss, fv_net_backward,
 *     fv_opt_step): parameters, optimizer state and every loss bit-identical, MSE and L1, full and
 *     partial batches; fv_trainer_forward equals fv_net_forward in eval mode bitwise;
 *   - fv_inverter_train and fv_inverter_apply (device -1) against the old loop, written out here
 *     as it was (the reference): parameters and epoch losses bit-identical, outputs bit-identical;
 *   - fv_oracle_train (the recogniser's and the oracle's training, device -1) against the old
 *     loop (fv_train_epoch with an Adam fv_opt, dropout seeded on the net): parameters and
 *     training accuracy bit-identical, with an index subset and a model with dropout;
 *   - the errors a user can cause: a device that does not exist (cuda:1023 on any machine), and
 *     on a machine or build without CUDA any device, give -1 / NULL with a message naming the
 *     device, from the inverter's training and application and from the oracle's training; the
 *     in-run settings inverter_device and device are checked with the other invert settings, and their device
 *     (fv_attack_devices_check) before round 1;
 *     fv_device_name spells what fv_device_parse reads.
 * The CUDA backend against this one: test_cuda_attacks.c (skipped without a GPU). Synthetic data
 * (data/synthetic.h): no files needed. About a second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inverter.h"
#include "oracle.h"
#include "attack_api.h"
#include "cuda/net.h"
#include "data/synthetic.h"
#include "nn/layers.h"
#include "nn/loss_pixel.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/train.h"
#include "nn/trainer.h"
#include "rng.h"

#define S 12 /* image side: a multiple of 4 (the inverter's two poolings) */

static fv_net *inverter_net(int c, uint64_t seed) {
    fv_err e = {{0}};
    fv_net *net = fv_inverter_net_new(c, S, S, 4, seed, &e);
    if (!net) fail_msg("%s", e.msg);
    return net;
}

static void rnd_unit(float *x, size_t n, fv_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)fv_rng_uniform(r);
}

static void expect_same(const char *what, const void *a, const void *b, size_t bytes) {
    if (memcmp(a, b, bytes) != 0) fail_msg("%s: not bit-identical", what);
}

/* The trainer's pixel step against the direct calls, for both losses and batch sizes 8 and 5. */
static void test_pixel_batch_matches_direct(void **st) {
    (void)st;
    for (int k = 0; k < 2; k++) {
        const fv_pixel_loss_kind kind = k ? FV_PIXEL_L1 : FV_PIXEL_MSE;
        fv_net *a = inverter_net(2, 3), *b = inverter_net(2, 3);
        const size_t isz = fv_shape_size(a->input);
        fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
        oc.lr = 2e-3f;
        fv_opt *opt = fv_opt_new(&oc, a->n_train);
        fv_err e = {{0}};
        const fv_trainer_cfg tc = {.device = -1, .max_batch = 8, .opt = oc};
        fv_trainer *t = fv_trainer_new(b, &tc, &e);
        if (!t) fail_msg("%s", e.msg);
        float *x = fv_malloc(sizeof(float) * isz * 8 * 3), *tg = x + isz * 8, *d = tg + isz * 8;
        fv_rng r;
        fv_rng_seed(&r, 11 + (uint64_t)k);
        for (int step = 0; step < 12; step++) {
            const int n = step % 3 == 2 ? 5 : 8;
            rnd_unit(x, isz * (size_t)n, &r);
            rnd_unit(tg, isz * (size_t)n, &r);
            const float *y = fv_net_forward(a, x, n, 1);
            const float la = fv_pixel_loss(d, y, tg, isz * (size_t)n, kind);
            fv_net_backward(a, d, n);
            fv_opt_step(opt, a->params, a->grads);
            float lb = -1.0f;
            fv_trainer_train_pixel_batch(t, x, tg, n, kind, &lb);
            expect_same("pixel step loss", &la, &lb, sizeof la);
        }
        float *pb = fv_malloc(sizeof(float) * b->n_params);
        fv_trainer_get_params(t, pb);
        expect_same("parameters after pixel steps", a->params, pb, sizeof(float) * a->n_params);
        size_t len = 0;
        const float *sa = fv_opt_state(opt, &len);
        float *sb = fv_malloc(sizeof(float) * (len ? len : 1));
        int64_t steps = 0;
        fv_trainer_get_opt_state(t, sb, &steps);
        assert_int_equal(len, fv_trainer_opt_state_len(t));
        expect_same("optimizer state", sa, sb, sizeof(float) * len);
        assert_int_equal(steps, *fv_opt_step_count(opt));
        /* inference */
        rnd_unit(x, isz * 7, &r);
        float *yb = fv_malloc(sizeof(float) * isz * 7);
        fv_trainer_forward(t, x, 7, yb);
        const float *ya = fv_net_forward(a, x, 7, 0);
        expect_same("eval forward", ya, yb, sizeof(float) * isz * 7);
        free(yb), free(sb), free(pb), free(x);
        fv_trainer_destroy(&t);
        fv_opt_destroy(&opt);
        fv_net_destroy(&a), fv_net_destroy(&b);
    }
}

static void to_unit(float *out, const uint8_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] / 255.0f;
}

/* fv_inverter_train's loop as it was before the trainer (inverter.c at ce49740), for cfg's
 * settings with remix on: the reference. Returns the last epoch's mean loss; loss[ep] per epoch. */
static void old_inverter_train(fv_net *net, const fv_dataset *own, const fv_inverter_cfg *cfg, float *loss) {
    fv_err e = {{0}};
    const size_t isz = fv_shape_size(net->input);
    const int B = cfg->batch, n = own->n;
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = cfg->lr;
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    float *x = fv_malloc(sizeof(float) * isz * (size_t)B * 3), *t = x + isz * B, *d = t + isz * B;
    int *idx = fv_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x1a7e);
    for (int ep = 0; ep < cfg->epochs; ep++) {
        fv_dataset mixed;
        if (fv_defence_apply(&mixed, own, &cfg->def, cfg->key, 2 + (uint64_t)ep, &e)) fail_msg("%s", e.msg);
        fv_rng_shuffle_int(&rng, idx, n);
        double sum = 0;
        for (int b0 = 0; b0 < n; b0 += B) {
            const int nb = n - b0 < B ? n - b0 : B;
            for (int k = 0; k < nb; k++) {
                to_unit(x + (size_t)k * isz, mixed.x + (size_t)idx[b0 + k] * isz, isz);
                to_unit(t + (size_t)k * isz, own->x + (size_t)idx[b0 + k] * isz, isz);
            }
            const float *y = fv_net_forward(net, x, nb, 1);
            float l = fv_pixel_loss(d, y, t, isz * (size_t)nb, cfg->loss);
            fv_net_backward(net, d, nb);
            fv_opt_step(opt, net->params, net->grads);
            sum += (double)l * nb;
        }
        loss[ep] = (float)(sum / n);
        fv_dataset_free(&mixed);
    }
    fv_opt_destroy(&opt);
    free(idx);
    free(x);
}

static fv_inverter_cfg small_cfg(void) {
    fv_inverter_cfg c = fv_inverter_defaults();
    c.width = 4;
    c.epochs = 3;
    c.batch = 16;
    c.def.kind = FV_INV_DEF_NOISE;
    c.def.sigma = 0.2;
    for (int i = 0; i < FV_VMIX_KEY_BYTES; i++) c.key[i] = (uint8_t)(3 * i + 1);
    return c;
}

static void test_inverter_matches_old_loop(void **st) {
    (void)st;
    fv_dataset own;
    fv_synthetic_make(&own, 70, 1, S, S, 10, 4, 0); /* 70 = 4 x 16 + 6: a partial last batch */
    for (int k = 0; k < 2; k++) {
        fv_inverter_cfg c = small_cfg();
        c.loss = k ? FV_PIXEL_L1 : FV_PIXEL_MSE;
        fv_net *a = inverter_net(1, c.seed), *b = inverter_net(1, c.seed);
        float ref[8];
        old_inverter_train(a, &own, &c, ref);
        fv_inverter_stats s;
        fv_err e = {{0}};
        if (fv_inverter_train(b, &own, &c, &s, &e)) fail_msg("%s", e.msg);
        assert_int_equal(s.epochs, c.epochs);
        expect_same("epoch losses", ref, s.loss, sizeof(float) * (size_t)c.epochs);
        expect_same("inverter parameters", a->params, b->params, sizeof(float) * a->n_params);
        /* application: the old clamp of fv_net_forward(eval), batch 32 over 70 images */
        const size_t isz = fv_shape_size(a->input);
        float *in = fv_malloc(sizeof(float) * isz * 70 * 3), *want = in + isz * 70, *got = want + isz * 70;
        to_unit(in, own.x, isz * 70);
        for (int b0 = 0; b0 < 70; b0 += 32) {
            const int nb = 70 - b0 < 32 ? 70 - b0 : 32;
            const float *y = fv_net_forward(a, in + isz * (size_t)b0, nb, 0);
            for (size_t i = 0; i < isz * (size_t)nb; i++)
                want[isz * (size_t)b0 + i] = y[i] < 0.0f ? 0.0f : y[i] > 1.0f ? 1.0f : y[i];
        }
        if (fv_inverter_apply(b, got, in, 70, 32, -1, &e)) fail_msg("%s", e.msg);
        expect_same("inverter application", want, got, sizeof(float) * isz * 70);
        free(in);
        fv_net_destroy(&a), fv_net_destroy(&b);
    }
    fv_dataset_free(&own);
}

/* fv_oracle_train's loop as it was before the trainer (oracle.c at ce49740): the reference. */
static fv_net *old_oracle_train(const fv_oracle_cfg *cfg, const fv_dataset *d, const int *idx, int n, fv_norm norm,
                                double *acc) {
    fv_err e = {{0}};
    fv_net *net = fv_model_new(cfg->model, (fv_shape){d->c, d->h, d->w}, d->classes, cfg->seed, &e);
    if (!net) fail_msg("%s", e.msg);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = cfg->lr;
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x6f72);
    fv_net_seed_dropout(net, cfg->seed);
    fv_epoch_stats st = {0};
    for (int ep = 0; ep < cfg->epochs; ep++)
        st = fv_train_epoch(net, opt, d, idx, n, cfg->batch, norm, &rng, 0, NULL, NULL, NULL, NULL);
    *acc = st.accuracy;
    fv_opt_destroy(&opt);
    return net;
}

static void test_oracle_matches_old_loop(void **st) {
    (void)st;
    fv_dataset d;
    fv_synthetic_make(&d, 120, 1, 28, 28, 10, 6, 0);
    int idx[90];
    for (int i = 0; i < 90; i++) idx[i] = (i * 7) % 120;
    const char *models[] = {"lenet5", "fedavg_cnn"}; /* fedavg_cnn: dropout, seeded from cfg.seed */
    for (int m = 0; m < 2; m++) {
        fv_oracle_cfg c = fv_oracle_defaults();
        c.model = models[m];
        c.epochs = 2;
        c.batch = 32;
        double acc_a = -1, acc_b = -2;
        fv_net *a = old_oracle_train(&c, &d, idx, 90, fv_norm_for("mnist"), &acc_a);
        fv_err e = {{0}};
        fv_net *b = fv_oracle_train(&c, &d, idx, 90, fv_norm_for("mnist"), &acc_b, &e);
        if (!b) fail_msg("%s", e.msg);
        expect_same(models[m], a->params, b->params, sizeof(float) * a->n_params);
        expect_same("training accuracy", &acc_a, &acc_b, sizeof acc_a);
        fv_net_destroy(&a), fv_net_destroy(&b);
    }
    fv_dataset_free(&d);
}

static void expect_device_error(const char *what, int rc, const fv_err *e, int device) {
    char want[32];
    snprintf(want, sizeof want, "cuda:%d", device);
    if (rc != -1) fail_msg("%s on cuda:%d: returned %d, not an error", what, device, rc);
    if (!strstr(e->msg, want)) fail_msg("%s: the error does not name %s: %s", what, want, e->msg);
    printf("  %s, cuda:%d: %s\n", what, device, e->msg);
}

static void test_device_errors(void **st) {
    (void)st;
    /* cuda:1023 never exists; without a GPU or CUDA build, cuda:0 does not either */
    const int devices[2] = {1023, 0};
    const int ndev = fv_cuda_device_count() == 0 ? 2 : 1;
    fv_dataset own;
    fv_synthetic_make(&own, 20, 1, S, S, 10, 4, 0);
    for (int i = 0; i < ndev; i++) {
        fv_err e = {{0}};
        fv_inverter_cfg c = small_cfg();
        c.device = devices[i];
        fv_net *net = inverter_net(1, 1);
        expect_device_error("fv_inverter_train", fv_inverter_train(net, &own, &c, NULL, &e), &e, devices[i]);
        float x[S * S], y[S * S];
        memset(x, 0, sizeof x);
        memset(&e, 0, sizeof e);
        expect_device_error("fv_inverter_apply", fv_inverter_apply(net, y, x, 1, 1, devices[i], &e), &e, devices[i]);
        fv_net_destroy(&net);
        fv_oracle_cfg oc = fv_oracle_defaults();
        oc.model = "lenet5";
        oc.device = devices[i];
        fv_dataset d;
        fv_synthetic_make(&d, 16, 1, 28, 28, 10, 6, 0);
        memset(&e, 0, sizeof e);
        fv_net *o = fv_oracle_train(&oc, &d, NULL, 0, fv_norm_for("mnist"), NULL, &e);
        expect_device_error("fv_oracle_train", o ? 0 : -1, &e, devices[i]);
        fv_dataset_free(&d);
    }
    if (!fv_cuda_built()) {
        fv_err e = {{0}};
        fv_inverter_cfg c = small_cfg();
        c.device = 0;
        fv_net *net = inverter_net(1, 1);
        assert_int_equal(fv_inverter_train(net, &own, &c, NULL, &e), -1);
        assert_non_null(strstr(e.msg, "no CUDA backend"));
        fv_net_destroy(&net);
    }
    fv_dataset_free(&own);
    /* fv_device_check, what the attack commands ask before loading anything: the CPU always
     * passes; a device this machine lacks is named (regression: `fedvim attack inverter --device`
     * used to fail only after the data load, the mixing and the reassembly) */
    for (int i = 0; i < ndev; i++) {
        fv_err e = {{0}};
        expect_device_error("fv_device_check", fv_device_check(devices[i], &e), &e, devices[i]);
    }
    {
        fv_err e = {{0}};
        assert_int_equal(fv_device_check(-1, &e), 0);
    }
    /* the in-run setting: a malformed device is refused before round 1, a well-formed one passes */
    {
        fv_err e2 = {{0}};
        assert_int_equal(fv_attack_settings_check("invert", "inverter_epochs=2,inverter_device=gpu", &e2), -1);
        assert_non_null(strstr(e2.msg, "inverter_device"));
        printf("  invert settings: %s\n", e2.msg);
        memset(&e2, 0, sizeof e2);
        assert_int_equal(fv_attack_settings_check("invert", "inverter_epochs=2,inverter_device=cuda:1", &e2), 0);
        assert_int_equal(fv_attack_settings_check("invert", "inverter_device=cpu", &e2), 0);
        /* and a device this machine lacks is refused before round 1 too (regression: it was found
         * only when the chain first ran), but only when the inverter runs at all */
        for (int i = 0; i < ndev; i++) {
            char set[96];
            snprintf(set, sizeof set, "inverter_epochs=2,inverter_device=cuda:%d", devices[i]);
            memset(&e2, 0, sizeof e2);
            expect_device_error("fv_attack_devices_check", fv_attack_devices_check("invert", set, &e2), &e2,
                                devices[i]);
            assert_non_null(strstr(e2.msg, "inverter_device"));
            snprintf(set, sizeof set, "inverter_epochs=0,inverter_device=cuda:%d", devices[i]);
            assert_int_equal(fv_attack_devices_check("invert", set, &e2), 0);
        }
        assert_int_equal(fv_attack_devices_check("invert", "inverter_epochs=2,inverter_device=cpu", &e2), 0);
        assert_int_equal(fv_attack_devices_check("gan", "", &e2), 0);
        /* the inversion engine's own device: malformed refused by the settings check, missing by
         * the devices check, before round 1 */
        memset(&e2, 0, sizeof e2);
        assert_int_equal(fv_attack_settings_check("invert", "device=gpu", &e2), -1);
        assert_non_null(strstr(e2.msg, "invert settings: device"));
        assert_int_equal(fv_attack_settings_check("invert", "device=cuda:0", &e2), 0);
        assert_int_equal(fv_attack_devices_check("invert", "device=cpu", &e2), 0);
        for (int i = 0; i < ndev; i++) {
            char set[64];
            snprintf(set, sizeof set, "device=cuda:%d", devices[i]);
            memset(&e2, 0, sizeof e2);
            expect_device_error("fv_attack_devices_check", fv_attack_devices_check("invert", set, &e2), &e2,
                                devices[i]);
            assert_non_null(strstr(e2.msg, "invert settings: device"));
        }
    }
    /* the spelling the JSON reports reads back */
    char buf[16];
    int dev = -5;
    fv_err e = {{0}};
    assert_string_equal(fv_device_name(-1, buf, sizeof buf), "cpu");
    assert_int_equal(fv_device_parse(buf, &dev, &e), 0);
    assert_int_equal(dev, -1);
    assert_string_equal(fv_device_name(7, buf, sizeof buf), "cuda:7");
    assert_int_equal(fv_device_parse(buf, &dev, &e), 0);
    assert_int_equal(dev, 7);
}

int main(void) {
    fv_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pixel_batch_matches_direct),
        cmocka_unit_test(test_inverter_matches_old_loop),
        cmocka_unit_test(test_oracle_matches_old_loop),
        cmocka_unit_test(test_device_errors),
    };
    return cmocka_run_group_tests_name("adaptive attacks on the trainer, CPU", tests, NULL, NULL) != 0;
}
