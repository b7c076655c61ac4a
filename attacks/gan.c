/* gan.c: see gan.h. */
#include "gan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "nn/optim.h"
#include "rng.h"
#include "nn/train.h"

fv_gen_arch fv_gen_arch_default(void) { return (fv_gen_arch){100, 128, 64, 1}; }

fv_gan_cfg fv_gan_cfg_default(void) {
    fv_gan_cfg c;
    memset(&c, 0, sizeof c);
    c.steps = 1000;
    c.batch = 64;
    c.lr = 1e-3f;
    for (int i = 0; i < 4; i++) c.norm.std[i] = 1.0f;
    c.seed = 1;
    return c;
}

struct fv_gan {
    fv_shape img;
    fv_gen_arch arch;
    fv_net *g1; /* {nz,1,1} -> linear -> ReLU: {ch1*h0*w0,1,1} */
    fv_net *g2; /* {ch1,h0,w0} -> up2 -> conv3 ch2 -> ReLU -> up2 -> conv3 c -> sigmoid */
    fv_opt *o1, *o2;
    int cap;               /* batch capacity of the buffers below */
    float *z, *xn, *dx, *dlogits;
    int *labels;
    int *shift;            /* per sample (dy, dx) jitter */
};

fv_gan *fv_gan_new(fv_shape img, const fv_gen_arch *a, uint64_t seed, fv_err *e) {
    if (img.c < 1 || img.c > 4) {
        fv_err_set(e, "gan: %d image channels (expected 1 to 4)", img.c);
        return NULL;
    }
    if (img.h < 8 || img.w < 8 || img.h % 4 || img.w % 4 || img.h > 256 || img.w > 256) {
        fv_err_set(e, "gan: image %dx%d: sides must be multiples of 4 between 8 and 256", img.h, img.w);
        return NULL;
    }
    if (a->nz < 1 || a->nz > 4096 || a->ch1 < 1 || a->ch1 > 1024 || a->ch2 < 1 || a->ch2 > 1024) {
        fv_err_set(e, "gan: generator sizes out of range (nz %d, channels %d, %d)", a->nz, a->ch1, a->ch2);
        return NULL;
    }
    fv_gan *g = fv_calloc(1, sizeof *g);
    g->img = img;
    g->arch = *a;
    int h0 = img.h / 4, w0 = img.w / 4;
    g->g1 = fv_net_new((fv_shape){a->nz, 1, 1});
    int x = fv_net_linear(g->g1, "gen.fc", 0, a->ch1 * h0 * w0, 1);
    if (a->bn) x = fv_net_batchnorm(g->g1, "gen.bn0", x);
    fv_net_relu(g->g1, x);
    fv_net_finish(g->g1, seed);
    g->g2 = fv_net_new((fv_shape){a->ch1, h0, w0});
    x = fv_net_upsample(g->g2, 0, 2);
    x = fv_net_conv2d(g->g2, "gen.conv1", x, a->ch2, 3, 1, 1, 1, 1);
    if (a->bn) x = fv_net_batchnorm(g->g2, "gen.bn1", x);
    x = fv_net_relu(g->g2, x);
    x = fv_net_upsample(g->g2, x, 2);
    fv_net_sigmoid(g->g2, fv_net_conv2d(g->g2, "gen.conv2", x, img.c, 3, 1, 1, 1, 1));
    fv_net_finish(g->g2, seed + 1);
    g->g2->want_input_grad = 1;
    return g;
}

void fv_gan_destroy(fv_gan **pg) {
    if (!pg || !*pg) return;
    fv_gan *g = *pg;
    fv_net_destroy(&g->g1);
    fv_net_destroy(&g->g2);
    fv_opt_destroy(&g->o1);
    fv_opt_destroy(&g->o2);
    free(g->z);
    free(g->xn);
    free(g->dx);
    free(g->dlogits);
    free(g->labels);
    free(g->shift);
    free(g);
    *pg = NULL;
}

/* Buffers for batches of n (dlogits for up to 1024 classes per sample). */
static void ensure(fv_gan *g, int n) {
    if (n <= g->cap) return;
    size_t isz = fv_shape_size(g->img);
    free(g->z);
    free(g->xn);
    free(g->dx);
    free(g->dlogits);
    free(g->labels);
    free(g->shift);
    g->shift = fv_malloc(sizeof(int) * 2 * (size_t)n);
    g->z = fv_malloc(sizeof(float) * (size_t)n * g->arch.nz);
    g->xn = fv_malloc(sizeof(float) * (size_t)n * isz);
    g->dx = fv_malloc(sizeof(float) * (size_t)n * isz);
    g->dlogits = fv_malloc(sizeof(float) * (size_t)n * 1024);
    g->labels = fv_malloc(sizeof(int) * (size_t)n);
    g->cap = n;
}

static void draw_noise(float *z, size_t n, fv_rng *r) {
    for (size_t i = 0; i < n; i++) z[i] = (float)fv_rng_normal(r);
}

/* G forward: returns the images [n, c, h, w] (owned by g2). */
static const float *gen_forward(fv_gan *g, const float *z, int n, int train) {
    const float *h = fv_net_forward(g->g1, z, n, train);
    return fv_net_forward(g->g2, h, n, train);
}

/* Adds the gradient of tv * mean over images of the image's total variation (squared
 * differences of neighbours, on [0, 1]) to dx; returns that term's value. */
static double tv_term(float *dx, const float *x, int n, fv_shape s, float w) {
    double total = 0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < s.c; c++) {
            const float *p = x + ((size_t)i * s.c + c) * s.h * s.w;
            float *d = dx + ((size_t)i * s.c + c) * s.h * s.w;
            for (int y = 0; y < s.h; y++)
                for (int xx = 0; xx < s.w; xx++) {
                    int k = y * s.w + xx;
                    if (xx + 1 < s.w) {
                        float df = p[k] - p[k + 1];
                        total += df * df;
                        d[k] += 2 * w * df / n;
                        d[k + 1] -= 2 * w * df / n;
                    }
                    if (y + 1 < s.h) {
                        float df = p[k] - p[k + s.w];
                        total += df * df;
                        d[k] += 2 * w * df / n;
                        d[k + s.w] -= 2 * w * df / n;
                    }
                }
        }
    return w * total / n;
}

/* Image-norm prior: w * mean over images and pixels of ((x - mean_c) / std_c)^2; adds its gradient. */
static double l2_term(float *dx, const float *x, int n, fv_shape s, fv_norm norm, float w) {
    double total = 0;
    size_t hw = (size_t)s.h * s.w, isz = hw * s.c;
    double scale = (double)w / ((double)n * isz);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < s.c; c++)
            for (size_t p = 0; p < hw; p++) {
                size_t k = (size_t)i * isz + c * hw + p;
                double v = (x[k] - norm.mean[c]) / norm.std[c];
                total += v * v;
                dx[k] += (float)(scale * 2 * v / norm.std[c]);
            }
    return scale * total;
}

/* Diversity: -w * mean_i mean_pixels (x_i - x_{i+1 mod n})^2; adds its gradient to dx. */
static double diversity_term(float *dx, const float *x, int n, size_t isz, float w) {
    if (n < 2) return 0;
    double total = 0;
    double scale = 2.0 * w / ((double)n * isz);
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        const float *a = x + (size_t)i * isz, *b = x + (size_t)j * isz;
        for (size_t k = 0; k < isz; k++) {
            float df = a[k] - b[k];
            total += df * df;
            dx[(size_t)i * isz + k] -= (float)(scale * df);
            dx[(size_t)j * isz + k] += (float)(scale * df);
        }
    }
    return -w * total / ((double)n * isz);
}

/* One image moved by (sy, sx) with zero fill. Forward (grad 0): out = normalise(shift(in)), with
 * pixels shifted in from outside set to 0 before normalising. Backward (grad 1): out = shift(in)
 * / std with zero fill, the adjoint when called with the opposite shift. */
static void shift_images(float *out, const float *in, fv_shape s, int sy, int sx, fv_norm norm, int grad) {
    for (int c = 0; c < s.c; c++)
        for (int y = 0; y < s.h; y++)
            for (int x = 0; x < s.w; x++) {
                int yy = y - sy, xx = x - sx;
                float v = (yy >= 0 && yy < s.h && xx >= 0 && xx < s.w) ? in[((size_t)c * s.h + yy) * s.w + xx] : 0.0f;
                out[((size_t)c * s.h + y) * s.w + x] = grad ? v / norm.std[c] : (v - norm.mean[c]) / norm.std[c];
            }
}

static int has_batchnorm(const fv_net *net) {
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].op == FV_OP_BATCHNORM) return 1;
    return 0;
}

int fv_gan_train(fv_gan *g, fv_net *D, const fv_gan_cfg *cfg, fv_gan_stats *st, fv_err *e) {
    memset(st, 0, sizeof *st);
    fv_shape din = D->input, dout = fv_net_output_shape(D);
    int K = (int)fv_shape_size(dout);
    if (din.c != g->img.c || din.h != g->img.h || din.w != g->img.w)
        return fv_err_set(e, "gan: the discriminator takes %dx%dx%d images, the generator makes %dx%dx%d", din.c,
                          din.h, din.w, g->img.c, g->img.h, g->img.w);
    if (cfg->target < 0 || cfg->target >= K)
        return fv_err_set(e, "gan: target class %d out of range [0, %d)", cfg->target, K);
    if (K > 1024) return fv_err_set(e, "gan: %d classes (at most 1024)", K);
    if (cfg->steps < 0 || cfg->batch < 1 || cfg->batch > 4096 || !(cfg->lr > 0))
        return fv_err_set(e, "gan: bad settings (steps %d, batch %d, lr %g)", cfg->steps, cfg->batch, cfg->lr);
    if (cfg->tv < 0 || cfg->diversity < 0 || cfg->l2 < 0)
        return fv_err_set(e, "gan: TV, norm and diversity weights must be >= 0");
    if (cfg->jitter < 0 || cfg->jitter >= g->img.h || cfg->jitter >= g->img.w)
        return fv_err_set(e, "gan: jitter %d out of range [0, %d)", cfg->jitter, g->img.h < g->img.w ? g->img.h : g->img.w);
    double t0 = fv_now();
    int n = cfg->batch;
    ensure(g, n);
    if (!g->o1) {
        fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
        oc.lr = cfg->lr;
        g->o1 = fv_opt_new(&oc, g->g1->n_train);
        g->o2 = fv_opt_new(&oc, g->g2->n_train);
    }
    size_t isz = fv_shape_size(g->img);
    int bn = has_batchnorm(D);
    float *state = NULL;
    if (bn && D->n_state) {
        state = fv_malloc(sizeof(float) * D->n_state);
        memcpy(state, D->params + D->n_train, sizeof(float) * D->n_state);
    }
    int saved_want = D->want_input_grad;
    D->want_input_grad = 1;
    for (int i = 0; i < n; i++) g->labels[i] = cfg->target;
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x6a6e);
    double ce_tail = 0;
    int tail = 0, tail_from = cfg->steps - (cfg->steps + 9) / 10;
    for (int s = 0; s < cfg->steps; s++) {
        draw_noise(g->z, (size_t)n * g->arch.nz, &rng);
        const float *x = gen_forward(g, g->z, n, 1);
        for (int i = 0; i < n; i++) {
            int sy = 0, sx = 0;
            if (cfg->jitter > 0) {
                sy = (int)fv_rng_below(&rng, 2 * (uint64_t)cfg->jitter + 1) - cfg->jitter;
                sx = (int)fv_rng_below(&rng, 2 * (uint64_t)cfg->jitter + 1) - cfg->jitter;
            }
            g->shift[2 * i] = sy;
            g->shift[2 * i + 1] = sx;
            shift_images(g->xn + (size_t)i * isz, x + (size_t)i * isz, g->img, sy, sx, cfg->norm, 0);
        }
        const float *logits = fv_net_forward(D, g->xn, n, bn);
        int hits = 0;
        float ce = fv_softmax_xent(g->dlogits, logits, g->labels, n, K, &hits);
        if (s == cfg->steps - 1) {
            double p = 0;
            for (int i = 0; i < n; i++) {
                const float *z = logits + (size_t)i * K;
                float m = z[0];
                for (int k = 1; k < K; k++) m = fmaxf(m, z[k]);
                double se = 0;
                for (int k = 0; k < K; k++) se += exp((double)(z[k] - m));
                p += exp((double)(z[cfg->target] - m)) / se;
            }
            st->p_target = p / n;
            st->d_hits = (double)hits / n;
        }
        if (s >= tail_from) {
            ce_tail += ce;
            tail++;
        }
        fv_net_backward(D, g->dlogits, n);
        if (state) memcpy(D->params + D->n_train, state, sizeof(float) * D->n_state);
        for (int i = 0; i < n; i++)
            shift_images(g->dx + (size_t)i * isz, D->input_grad + (size_t)i * isz, g->img, -g->shift[2 * i],
                         -g->shift[2 * i + 1], cfg->norm, 1);
        double tvv = cfg->tv > 0 ? tv_term(g->dx, x, n, g->img, cfg->tv) : 0;
        double l2v = cfg->l2 > 0 ? l2_term(g->dx, x, n, g->img, cfg->norm, cfg->l2) : 0;
        double dv = cfg->diversity > 0 ? diversity_term(g->dx, x, n, isz, cfg->diversity) : 0;
        fv_net_backward(g->g2, g->dx, n);
        fv_net_backward(g->g1, g->g2->input_grad, n);
        fv_opt_step(g->o1, g->g1->params, g->g1->grads);
        fv_opt_step(g->o2, g->g2->params, g->g2->grads);
        if (cfg->verbose && (s % 100 == 0 || s == cfg->steps - 1))
            fprintf(stderr, "gan: step %d ce %.4f tv %.4f l2 %.4f diversity %.4f D hits %d/%d (%.1f s)\n", s, ce, tvv, l2v, dv,
                    hits,
                    n, fv_now() - t0);
    }
    D->want_input_grad = saved_want;
    free(state);
    st->ce = tail ? ce_tail / tail : 0;
    st->steps = cfg->steps;
    st->seconds = fv_now() - t0;
    return 0;
}

void fv_gan_sample(fv_gan *g, float *out, int n, uint64_t seed) {
    FV_ASSERT(n >= 1);
    fv_rng rng;
    fv_rng_seed2(&rng, seed, 0x73616d70);
    size_t isz = fv_shape_size(g->img);
    const int chunk = 64;
    float *z = fv_malloc(sizeof(float) * (size_t)chunk * g->arch.nz);
    for (int s = 0; s < n; s += chunk) {
        int b = n - s < chunk ? n - s : chunk;
        draw_noise(z, (size_t)b * g->arch.nz, &rng);
        const float *x = gen_forward(g, z, b, 0);
        memcpy(out + (size_t)s * isz, x, sizeof(float) * b * isz);
    }
    free(z);
}

void fv_gan_describe(const fv_gan *g, const fv_gan_cfg *cfg, char *buf, size_t len) {
    snprintf(buf, len,
             "generator: z %d -> dense %dx%dx%d -> up2 conv3x3 %d -> up2 conv3x3 %d sigmoid, batch norm %s "
             "(%zu parameters); "
             "target %d, %d steps of %d, Adam %g; TV prior %s (%g); norm prior %s (%g); diversity %s (%g); "
             "jitter %s (%d px)",
             g->arch.nz, g->arch.ch1, g->img.h / 4, g->img.w / 4, g->arch.ch2, g->img.c,
             g->arch.bn ? "on" : "off", g->g1->n_train + g->g2->n_train, cfg->target, cfg->steps, cfg->batch, cfg->lr, cfg->tv > 0 ? "on" : "off",
             cfg->tv, cfg->l2 > 0 ? "on" : "off", cfg->l2, cfg->diversity > 0 ? "on" : "off", cfg->diversity, cfg->jitter > 0 ? "on" : "off", cfg->jitter);
}

int fv_gan_active_round(fv_gan *g, fv_net *shared, const fv_dataset *own, const int *idx, int n,
                        const fv_gan_cfg *gcfg, const fv_gan_active_cfg *cfg, fv_gan_stats *st, fv_err *e) {
    int K = (int)fv_shape_size(fv_net_output_shape(shared));
    if (cfg->fake_class != K - 1)
        return fv_err_set(e, "gan active: the fake class must be the shared model's last output (%d), got %d", K - 1,
                          cfg->fake_class);
    if (K > 256) return fv_err_set(e, "gan active: %d classes do not fit 8-bit labels", K);
    if (own->c != g->img.c || own->h != g->img.h || own->w != g->img.w)
        return fv_err_set(e, "gan active: the attacker's images are %dx%dx%d, the generator makes %dx%dx%d", own->c,
                          own->h, own->w, g->img.c, g->img.h, g->img.w);
    if (n < 0 || cfg->n_fake < 0 || cfg->epochs < 1 || cfg->batch < 1 || !(cfg->lr > 0))
        return fv_err_set(e, "gan active: bad settings (images %d, fake %d, epochs %d, batch %d, lr %g)", n,
                          cfg->n_fake, cfg->epochs, cfg->batch, cfg->lr);
    if (fv_gan_train(g, shared, gcfg, st, e)) return -1;
    /* local data: the attacker's images, then n_fake generated ones labelled fake_class */
    size_t isz = fv_shape_size(g->img);
    int total = n + cfg->n_fake;
    if (total == 0) return 0;
    fv_dataset loc = {total, own->c, own->h, own->w, K, fv_malloc(isz * total), fv_malloc((size_t)total)};
    for (int i = 0; i < n; i++) {
        int k = idx ? idx[i] : i;
        memcpy(loc.x + (size_t)i * isz, own->x + (size_t)k * isz, isz);
        loc.y[i] = own->y[k];
    }
    if (cfg->n_fake > 0) {
        float *fake = fv_malloc(sizeof(float) * isz * cfg->n_fake);
        fv_gan_sample(g, fake, cfg->n_fake, cfg->seed ^ 0x66616b65);
        for (size_t k = 0; k < isz * cfg->n_fake; k++) {
            float v = fake[k] * 255.0f + 0.5f;
            loc.x[(size_t)n * isz + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        for (int i = 0; i < cfg->n_fake; i++) loc.y[n + i] = (uint8_t)cfg->fake_class;
        free(fake);
    }
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = cfg->lr;
    fv_opt *opt = fv_opt_new(&oc, shared->n_train);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x6c6f63);
    for (int ep = 0; ep < cfg->epochs; ep++)
        fv_train_epoch(shared, opt, &loc, NULL, total, cfg->batch, cfg->norm, &rng, 0, NULL, NULL, NULL, NULL);
    fv_opt_destroy(&opt);
    fv_dataset_free(&loc);
    return 0;
}
