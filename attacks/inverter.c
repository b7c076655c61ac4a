/* inverter.c: the learned inverter (see inverter.h): its network, training loop and application. */
#include "inverter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "nn/trainer.h"
#include "rng.h"

fv_inverter_cfg fv_inverter_defaults(void) {
    fv_inverter_cfg c;
    memset(&c, 0, sizeof c);
    c.width = 16;
    c.epochs = 3;
    c.batch = 32;
    c.lr = 1e-3f;
    c.loss = FV_PIXEL_MSE;
    c.def.kind = FV_INV_DEF_VMIX;
    fv_vmix_params_default(&c.def.vp);
    c.def.window = 3;
    c.def.sigma = 0.25;
    c.def.ih = fv_instahide_defaults(2);
    c.remix = 1;
    c.seed = 1;
    c.device = -1;
    return c;
}

static int check_shape(int h, int w, int width, fv_err *e) {
    if (width < 1 || width > 256) return fv_err_set(e, "inverter width %d is not in [1, 256]", width);
    if (h < 4 || w < 4 || h % 4 || w % 4)
        return fv_err_set(e, "inverter: images of %d x %d: height and width must be multiples of 4 (two 2x2 poolings)",
                          h, w);
    return 0;
}

int fv_inverter_check(const fv_inverter_cfg *cfg, int c, int h, int w, fv_err *e) {
    if (cfg->width < 1 || cfg->width > 256) return fv_err_set(e, "inverter width %d is not in [1, 256]", cfg->width);
    if (cfg->epochs < 0) return fv_err_set(e, "inverter epochs %d < 0", cfg->epochs);
    if (cfg->batch < 1) return fv_err_set(e, "inverter batch %d < 1", cfg->batch);
    if (!(isfinite(cfg->lr) && cfg->lr > 0)) return fv_err_set(e, "inverter learning rate %g is not > 0", (double)cfg->lr);
    if (cfg->loss != FV_PIXEL_MSE && cfg->loss != FV_PIXEL_L1) return fv_err_set(e, "inverter: unknown loss %d", (int)cfg->loss);
    if (c == 0 && h == 0 && w == 0) /* the shape is not known yet */
        return fv_defence_check(&cfg->def, 0, 0, e) ? fv_err_prefix(e, "inverter ") : 0;
    if (c < 1) return fv_err_set(e, "inverter: %d channels", c);
    if (check_shape(h, w, cfg->width, e)) return -1;
    return fv_defence_check(&cfg->def, h, w, e) ? fv_err_prefix(e, "inverter ") : 0;
}

/* conv 3x3 (stride 1, pad 1) then ReLU. */
static int conv_relu(fv_net *net, const char *name, int x, int ch) {
    return fv_net_relu(net, fv_net_conv2d(net, name, x, ch, 3, 1, 1, 1, 1));
}

fv_net *fv_inverter_net_new(int c, int h, int w, int width, uint64_t seed, fv_err *e) {
    if (c < 1) {
        fv_err_set(e, "inverter: %d channels", c);
        return NULL;
    }
    if (check_shape(h, w, width, e)) return NULL;
    const int w1 = width, w2 = 2 * width, w3 = 4 * width;
    fv_net *net = fv_net_new((fv_shape){c, h, w});
    int x = 0;
    x = conv_relu(net, "enc1.0", x, w1);
    const int s1 = conv_relu(net, "enc1.1", x, w1); /* w1 x h x w */
    x = fv_net_maxpool(net, s1, 2, 2, 0);
    x = conv_relu(net, "enc2.0", x, w2);
    const int s2 = conv_relu(net, "enc2.1", x, w2); /* w2 x h/2 x w/2 */
    x = fv_net_maxpool(net, s2, 2, 2, 0);
    x = conv_relu(net, "mid.0", x, w3);
    x = conv_relu(net, "mid.1", x, w3); /* w3 x h/4 x w/4 */
    x = fv_net_upsample(net, x, 2);
    x = fv_net_conv2d(net, "up2", x, w2, 3, 1, 1, 1, 1);
    x = fv_net_relu(net, fv_net_add(net, x, s2));
    x = conv_relu(net, "dec2", x, w2);
    x = fv_net_upsample(net, x, 2);
    x = fv_net_conv2d(net, "up1", x, w1, 3, 1, 1, 1, 1);
    x = fv_net_relu(net, fv_net_add(net, x, s1));
    x = conv_relu(net, "dec1", x, w1);
    fv_net_conv2d(net, "head", x, c, 3, 1, 1, 1, 1);
    fv_net_finish(net, seed);
    return net;
}

static void to_unit(float *out, const uint8_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] / 255.0f;
}

int fv_inverter_train(fv_net *net, const fv_dataset *own, const fv_inverter_cfg *cfg, fv_inverter_stats *st,
                      fv_err *e) {
    fv_inverter_stats s;
    memset(&s, 0, sizeof s);
    if (own->n < 1) return fv_err_set(e, "inverter: the attacker has no images");
    if (fv_inverter_check(cfg, own->c, own->h, own->w, e)) return -1;
    const fv_shape in = net->input, os = fv_net_output_shape(net);
    if (in.c != own->c || in.h != own->h || in.w != own->w || fv_shape_size(os) != fv_shape_size(in))
        return fv_err_set(e, "inverter: the network takes %d x %d x %d images, the attacker's are %d x %d x %d", in.c,
                          in.h, in.w, own->c, own->h, own->w);
    const double t0 = fv_now();
    const size_t isz = fv_shape_size(in);
    const int B = cfg->batch, n = own->n;
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = cfg->lr;
    const fv_trainer_cfg tc = {.device = cfg->device, .max_batch = B, .opt = oc};
    fv_trainer *tr = fv_trainer_new(net, &tc, e);
    if (!tr) return fv_err_prefix(e, "inverter: ");
    float *x = fv_malloc(sizeof(float) * isz * (size_t)B * 2), *t = x + isz * B;
    int *idx = fv_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x1a7e);
    fv_dataset mixed;
    memset(&mixed, 0, sizeof mixed);
    int rc = -1;
    for (int ep = 0; ep < cfg->epochs; ep++) {
        if (ep == 0 || cfg->remix) {
            fv_dataset_free(&mixed);
            if (fv_defence_apply(&mixed, own, &cfg->def, cfg->key, 2 + (uint64_t)(cfg->remix ? ep : 0), e)) {
                fv_err_prefix(e, "inverter: defending the attacker's images: ");
                goto out;
            }
        }
        const fv_dataset *src = &mixed;
        fv_rng_shuffle_int(&rng, idx, n);
        double sum = 0;
        for (int b0 = 0; b0 < n; b0 += B) {
            const int nb = n - b0 < B ? n - b0 : B;
            for (int k = 0; k < nb; k++) {
                to_unit(x + (size_t)k * isz, src->x + (size_t)idx[b0 + k] * isz, isz);
                to_unit(t + (size_t)k * isz, own->x + (size_t)idx[b0 + k] * isz, isz);
            }
            float l = 0.0f;
            fv_trainer_train_pixel_batch(tr, x, t, nb, cfg->loss, &l);
            sum += (double)l * nb;
        }
        s.final_loss = (float)(sum / n);
        if (ep < 64) s.loss[ep] = s.final_loss;
        s.epochs = ep + 1;
        s.pairs += n;
        if (cfg->verbose)
            fprintf(stderr, "inverter: epoch %d/%d  %s %.5f  %.1f s\n", ep + 1, cfg->epochs, fv_pixel_loss_name(cfg->loss),
                    (double)s.final_loss, fv_now() - t0);
    }
    rc = 0;
out:
    fv_trainer_get_params(tr, net->params); /* the CPU trainer trained them in place: no copy */
    s.seconds = fv_now() - t0;
    if (st) *st = s;
    fv_dataset_free(&mixed);
    fv_trainer_destroy(&tr);
    free(idx);
    free(x);
    return rc;
}

int fv_inverter_apply(fv_net *net, float *out, const float *in, int n, int batch, int device, fv_err *e) {
    FV_ASSERT(batch >= 1);
    const fv_trainer_cfg tc = {.device = device, .max_batch = batch, .opt = fv_opt_defaults(FV_OPT_SGD)};
    fv_trainer *tr = fv_trainer_new(net, &tc, e); /* an optimizer it never steps */
    if (!tr) return fv_err_prefix(e, "inverter: ");
    const size_t isz = fv_shape_size(net->input);
    for (int b0 = 0; b0 < n; b0 += batch) {
        const int nb = n - b0 < batch ? n - b0 : batch;
        float *o = out + (size_t)b0 * isz;
        fv_trainer_forward(tr, in + (size_t)b0 * isz, nb, o);
        for (size_t i = 0; i < isz * (size_t)nb; i++) o[i] = o[i] < 0.0f ? 0.0f : o[i] > 1.0f ? 1.0f : o[i];
    }
    fv_trainer_destroy(&tr);
    return 0;
}
