/* trainer.c: see trainer.h. The device-neutral front (argument checks, dispatch through the
 * backend table of trainer_backend.h) and the CPU backend, which is the nn/ reference code called
 * exactly as callers called it before the trainer existed: fv_train_epoch, fv_evaluate, fv_opt_*,
 * fv_net_forward / fv_net_backward, fv_pixel_loss, fv_kd_loss. The CUDA backend is cuda/trainer.c.
 * Not here: any kernel, any CUDA call.
 */
#include "nn/trainer.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "nn/loss_soft.h"
#include "nn/trainer_backend.h"

struct fv_trainer {
    const fv_trainer_backend *ops;
    void *impl;
    fv_net *net;
    fv_trainer_cfg cfg;
    size_t opt_len;
};

struct fv_trainer_shard {
    fv_trainer *t;
    void *impl;
};

/* ---- the CPU backend ---- */

typedef struct {
    fv_net *net;
    fv_opt *opt;
    fv_norm norm;
    float *dout;     /* the pixel and KD losses' gradient, dout_cap floats (cpu_dout) */
    size_t dout_cap;
} cpu_impl;

typedef struct {
    const fv_dataset *d;
    const int *idx; /* NULL: all of d */
    int n;
} cpu_shard;

static void cpu_destroy(void *p) {
    cpu_impl *c = p;
    fv_opt_destroy(&c->opt);
    free(c->dout);
    free(c);
}

static void cpu_info(void *p, fv_trainer_info *out) {
    (void)p;
    snprintf(out->where, sizeof out->where, "%d threads", omp_get_max_threads());
}

static void cpu_set_params(void *p, const float *src) {
    cpu_impl *c = p;
    if (src != c->net->params) memcpy(c->net->params, src, c->net->n_params * sizeof(float));
}

static void cpu_get_params(void *p, float *dst) {
    cpu_impl *c = p;
    if (dst != c->net->params) memcpy(dst, c->net->params, c->net->n_params * sizeof(float));
}

static void cpu_seed_dropout(void *p, uint64_t seed) { fv_net_seed_dropout(((cpu_impl *)p)->net, seed); }

static void cpu_reset_opt(void *p) { fv_opt_reset(((cpu_impl *)p)->opt); }

static void cpu_set_opt_state(void *p, const float *state, int64_t steps) {
    cpu_impl *c = p;
    fv_opt_reset(c->opt);
    size_t len = 0;
    float *st = fv_opt_state(c->opt, &len);
    if (len) memcpy(st, state, len * sizeof(float));
    *fv_opt_step_count(c->opt) = steps;
}

static void cpu_get_opt_state(void *p, float *state, int64_t *steps) {
    cpu_impl *c = p;
    size_t len = 0;
    const float *st = fv_opt_state(c->opt, &len);
    if (len) memcpy(state, st, len * sizeof(float));
    *steps = *fv_opt_step_count(c->opt);
}

static void *cpu_shard_new(void *p) {
    (void)p;
    return fv_calloc(1, sizeof(cpu_shard));
}

static void cpu_shard_destroy(void *s) { free(s); }

static int cpu_shard_load(void *p, const fv_dataset *d, const int *idx, int n, fv_err *e) {
    (void)e;
    cpu_shard *s = p;
    s->d = d;
    s->idx = idx;
    s->n = idx ? n : d->n;
    return 0;
}

static int cpu_shard_size(const void *p) { return ((const cpu_shard *)p)->n; }

static fv_epoch_stats cpu_train_epoch(void *p, const void *sp, int batch, fv_rng *rng, float prox_mu,
                                      const float *prox_ref, const float *corr, fv_progress_fn progress, void *ctx) {
    cpu_impl *c = p;
    const cpu_shard *s = sp;
    return fv_train_epoch(c->net, c->opt, s->d, s->idx, s->n, batch, c->norm, rng, prox_mu, prox_ref, corr,
                          progress, ctx);
}

static fv_eval_stats cpu_evaluate(void *p, const void *sp, int batch) {
    cpu_impl *c = p;
    const cpu_shard *s = sp;
    return fv_evaluate(c->net, s->d, s->idx, s->n, batch, c->norm);
}

static int cpu_input_grad(void *p, const float *x, const int *labels, int n, float *dx, float *loss,
                          float *grads, fv_err *e) {
    (void)e;
    fv_net *net = ((cpu_impl *)p)->net;
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    float *dl = fv_malloc((size_t)n * K * sizeof(float));
    const int saved = net->want_input_grad;
    net->want_input_grad = 1;
    const float *logits = fv_net_forward(net, x, n, 1);
    const float l = fv_softmax_xent(dl, logits, labels, n, K, NULL);
    fv_net_backward(net, dl, n);
    memcpy(dx, net->input_grad, (size_t)n * fv_shape_size(net->input) * sizeof(float));
    if (grads) memcpy(grads, net->grads, net->n_train * sizeof(float));
    if (loss) *loss = l;
    net->want_input_grad = saved;
    free(dl);
    return 0;
}

/* c->dout with room for at least m floats (the host-float steps' loss gradient), grown on demand. */
static void cpu_dout(cpu_impl *c, size_t m) {
    if (m <= c->dout_cap) return;
    free(c->dout);
    c->dout = fv_malloc(m * sizeof(float));
    c->dout_cap = m;
}

/* The learned inverter's step as it was written before the trainer: forward, fv_pixel_loss,
 * backward, optimizer step, on net's own buffers. */
static float cpu_train_pixel(void *p, const float *x, const float *target, int n, fv_pixel_loss_kind kind) {
    cpu_impl *c = p;
    fv_net *net = c->net;
    const size_t m = (size_t)n * fv_shape_size(fv_net_output_shape(net));
    cpu_dout(c, m);
    const float *y = fv_net_forward(net, x, n, 1);
    const float l = fv_pixel_loss(c->dout, y, target, m, kind);
    fv_net_backward(net, c->dout, n);
    fv_opt_step(c->opt, net->params, net->grads);
    return l;
}

/* fv_train_epoch_kd's step (train_soft.c) on net's own buffers: forward, fv_kd_loss, backward,
 * optimizer step; the loss's gradient in the same buffer as the pixel step's. */
static float cpu_train_kd(void *p, const float *x, const float *teacher, const int *labels, int n, float T,
                          float alpha, int *correct) {
    cpu_impl *c = p;
    fv_net *net = c->net;
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    const size_t m = (size_t)n * K;
    cpu_dout(c, m);
    const float *logits = fv_net_forward(net, x, n, 1);
    const float l = fv_kd_loss(c->dout, logits, teacher, labels, n, K, T, alpha, NULL, correct);
    fv_net_backward(net, c->dout, n);
    fv_opt_step(c->opt, net->params, net->grads);
    return l;
}

static void cpu_forward(void *p, const float *x, int n, float *y) {
    fv_net *net = ((cpu_impl *)p)->net;
    const float *out = fv_net_forward(net, x, n, 0);
    memcpy(y, out, (size_t)n * fv_shape_size(fv_net_output_shape(net)) * sizeof(float));
}

static const fv_trainer_backend CPU = {
    .destroy = cpu_destroy,
    .info = cpu_info,
    .set_params = cpu_set_params,
    .get_params = cpu_get_params,
    .seed_dropout = cpu_seed_dropout,
    .reset_opt = cpu_reset_opt,
    .set_opt_state = cpu_set_opt_state,
    .get_opt_state = cpu_get_opt_state,
    .shard_new = cpu_shard_new,
    .shard_destroy = cpu_shard_destroy,
    .shard_load = cpu_shard_load,
    .shard_size = cpu_shard_size,
    .train_epoch = cpu_train_epoch,
    .evaluate = cpu_evaluate,
    .input_grad = cpu_input_grad,
    .train_pixel = cpu_train_pixel,
    .train_kd = cpu_train_kd,
    .forward = cpu_forward,
};

/* ---- the device-neutral front ---- */

fv_trainer *fv_trainer_new(fv_net *net, const fv_trainer_cfg *cfg, fv_err *e) {
    FV_ASSERT(net && net->finished && cfg && cfg->max_batch >= 1);
    if (fv_opt_cfg_check(&cfg->opt, e) != 0) return NULL;
    const fv_trainer_backend *ops = &CPU;
    void *impl = NULL;
    if (cfg->device >= 0) {
        if (fv_trainer_cuda_open(net, cfg, &ops, &impl, e) != 0) return NULL;
    } else {
        cpu_impl *c = fv_calloc(1, sizeof *c);
        c->net = net;
        c->opt = fv_opt_new(&cfg->opt, net->n_train);
        c->norm = cfg->norm;
        impl = c;
    }
    fv_trainer *t = fv_calloc(1, sizeof *t);
    t->ops = ops;
    t->impl = impl;
    t->net = net;
    t->cfg = *cfg;
    t->opt_len = fv_opt_state_len(&cfg->opt, net->n_train);
    return t;
}

void fv_trainer_destroy(fv_trainer **t) {
    if (!t || !*t) return;
    (*t)->ops->destroy((*t)->impl);
    free(*t);
    *t = NULL;
}

int fv_trainer_device(const fv_trainer *t) { return t->cfg.device; }

fv_trainer_info fv_trainer_info_get(const fv_trainer *t) {
    fv_trainer_info info;
    memset(&info, 0, sizeof info);
    t->ops->info(t->impl, &info);
    return info;
}

void fv_trainer_set_params(fv_trainer *t, const float *src) { t->ops->set_params(t->impl, src); }

void fv_trainer_get_params(fv_trainer *t, float *dst) { t->ops->get_params(t->impl, dst); }

void fv_trainer_seed_dropout(fv_trainer *t, uint64_t seed) { t->ops->seed_dropout(t->impl, seed); }

size_t fv_trainer_opt_state_len(const fv_trainer *t) { return t->opt_len; }

void fv_trainer_reset_opt(fv_trainer *t) { t->ops->reset_opt(t->impl); }

void fv_trainer_set_opt_state(fv_trainer *t, const float *state, int64_t steps) {
    FV_ASSERT(state || t->opt_len == 0);
    t->ops->set_opt_state(t->impl, state, steps);
}

void fv_trainer_get_opt_state(fv_trainer *t, float *state, int64_t *steps) {
    FV_ASSERT((state || t->opt_len == 0) && steps);
    t->ops->get_opt_state(t->impl, state, steps);
}

fv_trainer_shard *fv_trainer_shard_new(fv_trainer *t) {
    fv_trainer_shard *s = fv_calloc(1, sizeof *s);
    s->t = t;
    s->impl = t->ops->shard_new(t->impl);
    return s;
}

void fv_trainer_shard_destroy(fv_trainer_shard **s) {
    if (!s || !*s) return;
    (*s)->t->ops->shard_destroy((*s)->impl);
    free(*s);
    *s = NULL;
}

int fv_trainer_shard_load(fv_trainer_shard *s, const fv_dataset *d, const int *idx, int n, fv_err *e) {
    FV_ASSERT(d && (!idx || n >= 0));
    return s->t->ops->shard_load(s->impl, d, idx, n, e);
}

int fv_trainer_shard_size(const fv_trainer_shard *s) { return s->t->ops->shard_size(s->impl); }

fv_epoch_stats fv_trainer_train_epoch(fv_trainer *t, const fv_trainer_shard *s, int batch, fv_rng *rng,
                                      float prox_mu, const float *prox_ref, const float *corr,
                                      fv_progress_fn progress, void *ctx) {
    FV_ASSERT(s->t == t && batch >= 1 && batch <= t->cfg.max_batch && rng);
    return t->ops->train_epoch(t->impl, s->impl, batch, rng, prox_mu, prox_ref, corr, progress, ctx);
}

fv_eval_stats fv_trainer_evaluate(fv_trainer *t, const fv_trainer_shard *s, int batch) {
    FV_ASSERT(s->t == t && batch >= 1);
    return t->ops->evaluate(t->impl, s->impl, batch);
}

int fv_trainer_input_grad(fv_trainer *t, const float *x, const int *labels, int n, float *dx, float *loss,
                          float *grads, fv_err *e) {
    FV_ASSERT(x && labels && dx && n >= 1 && n <= t->cfg.max_batch);
    const int K = (int)fv_shape_size(fv_net_output_shape(t->net));
    for (int i = 0; i < n; i++) FV_ASSERT(labels[i] >= 0 && labels[i] < K);
    return t->ops->input_grad(t->impl, x, labels, n, dx, loss, grads, e);
}

void fv_trainer_train_pixel_batch(fv_trainer *t, const float *x, const float *target, int n, fv_pixel_loss_kind kind,
                                  float *loss) {
    FV_ASSERT(x && target && n >= 1 && n <= t->cfg.max_batch);
    FV_ASSERT(kind == FV_PIXEL_MSE || kind == FV_PIXEL_L1);
    const float l = t->ops->train_pixel(t->impl, x, target, n, kind);
    if (loss) *loss = l;
}

float fv_trainer_train_kd_batch(fv_trainer *t, const float *x, const float *teacher, const int *labels, int n,
                                float T, float alpha, int *correct) {
    FV_ASSERT(x && teacher && labels && n >= 1 && n <= t->cfg.max_batch);
    FV_ASSERT(T > 0.0f && alpha >= 0.0f && alpha <= 1.0f);
    const int K = (int)fv_shape_size(fv_net_output_shape(t->net));
    for (int i = 0; i < n; i++) FV_ASSERT(labels[i] >= 0 && labels[i] < K);
    int c = 0;
    const float l = t->ops->train_kd(t->impl, x, teacher, labels, n, T, alpha, &c);
    if (correct) *correct = c;
    return l;
}

void fv_trainer_forward(fv_trainer *t, const float *x, int n, float *y) {
    FV_ASSERT(x && y && n >= 1 && n <= t->cfg.max_batch);
    t->ops->forward(t->impl, x, n, y);
}
