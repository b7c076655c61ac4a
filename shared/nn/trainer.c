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
    int inv_n, inv_slots, inv_slot_batch; /* fv_trainer_inv_open's, 0 before it */
};

struct fv_trainer_shard {
    fv_trainer *t;
    void *impl;
};

/* ---- the CPU backend ---- */

/* The inversion passes' state (fv_trainer_inv_*): one block theta0[np] x[n isz] dl[n classes]
 * y[n] (ints, float-sized), the kinks' slots apart. */
typedef struct {
    int n, slots, classes;
    size_t nt, np, isz, kbytes;
    float *block, *theta0, *x, *dl;
    int *y;
    uint8_t *kinks;            /* [slots * kbytes] */
    const float *base, *dir;   /* the point (fv_trainer_inv_point), read at each pass */
    const double *coef;        /* bn_backward's terms while its backward runs */
} cpu_inv;

typedef struct {
    fv_net *net;
    fv_opt *opt;
    fv_norm norm;
    float *dout;     /* the pixel and KD losses' gradient, dout_cap floats (cpu_dout) */
    size_t dout_cap;
    cpu_inv inv;     /* zero until fv_trainer_inv_open */
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
    free(c->inv.block);
    free(c->inv.kinks);
    free(c);
}

static void cpu_info(void *p, fv_trainer_info *out) {
    const fv_net *net = ((const cpu_impl *)p)->net;
    snprintf(out->where, sizeof out->where, "%d threads", omp_get_max_threads());
    out->relu_fused = 0;
    for (int i = 1; i < net->n_nodes && net->fuse; i++) out->relu_fused += net->nodes[i].fused_relu != 0;
    out->blocked = fv_net_blocked_count(net);
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

/* Training keeps each OpenBLAS conv's forward im2col for its backward (net.h, keep_im2col: the
 * same bits, one im2col instead of two per step; LeNet-5 trained 4-7% faster at 2 threads) while
 * those buffers (one per conv node, for the activation capacity) stay under this many floats. */
#define KEEP_IM2COL_MAX_FLOATS ((size_t)16 << 20) /* 64 MiB */

static fv_epoch_stats cpu_train_epoch(void *p, const void *sp, int batch, fv_rng *rng, float prox_mu,
                                      const float *prox_ref, const float *corr, fv_progress_fn progress, void *ctx) {
    cpu_impl *c = p;
    const cpu_shard *s = sp;
    fv_net *net = c->net;
    const int keep = net->keep_im2col;
    if (!keep) net->keep_im2col = fv_net_im2col_floats(net, net->cap > batch ? net->cap : batch) <= KEEP_IM2COL_MAX_FLOATS;
    const fv_epoch_stats st = fv_train_epoch(net, c->opt, s->d, s->idx, s->n, batch, c->norm, rng, prox_mu, prox_ref,
                                             corr, progress, ctx);
    net->keep_im2col = keep;
    return st;
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

/* ---- the CPU's inversion passes: net.h's calls as attacks/invert.c made them ---- */

static int cpu_inv_open(void *p, const float *theta0, int n, int slots, int slot_batch, fv_err *e) {
    (void)e;
    cpu_impl *c = p;
    fv_net *net = c->net;
    cpu_inv *v = &c->inv;
    if (net->blocked_on) fv_net_set_blocked(net, 0); /* the batch-norm prior reads NCHW activations */
    _Static_assert(sizeof(int) == sizeof(float), "labels share the float block");
    v->n = n, v->slots = slots;
    v->nt = net->n_train, v->np = net->n_params;
    v->isz = fv_shape_size(net->input);
    v->classes = (int)fv_shape_size(fv_net_output_shape(net));
    const size_t un = (size_t)n;
    v->block = fv_malloc((v->np + un * v->isz + un * v->classes + un) * sizeof(float));
    v->theta0 = v->block, v->x = v->theta0 + v->np, v->dl = v->x + un * v->isz;
    v->y = (int *)(v->dl + un * v->classes);
    memcpy(v->theta0, theta0, v->np * sizeof(float));
    v->kbytes = fv_net_kinks_bytes(net, slot_batch);
    v->kinks = fv_malloc((size_t)slots * v->kbytes + 1);
    v->base = v->theta0, v->dir = NULL;
    return 0;
}

static void cpu_inv_images(void *p, const float *x, const int *labels) {
    cpu_inv *v = &((cpu_impl *)p)->inv;
    memcpy(v->x, x, (size_t)v->n * v->isz * sizeof(float));
    memcpy(v->y, labels, (size_t)v->n * sizeof(int));
}

static void cpu_inv_point(void *p, const float *base, const float *dir) {
    cpu_inv *v = &((cpu_impl *)p)->inv;
    if (base) v->base = base;
    v->dir = dir;
}

/* net's trainable parameters base + h dir, its buffers theta0's. */
static void cpu_inv_params(cpu_impl *c, double h) {
    const cpu_inv *v = &c->inv;
    float *pp = c->net->params;
    const float *th = v->base, *dir = v->dir;
    if (dir) {
#pragma omp simd
        for (size_t i = 0; i < v->nt; i++) pp[i] = th[i] + (float)(h * dir[i]);
    } else
        memcpy(pp, th, v->nt * sizeof(float));
    memcpy(pp + v->nt, v->theta0 + v->nt, (v->np - v->nt) * sizeof(float));
}

static void cpu_inv_pass(void *p, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                         fv_inv_pass_out *out) {
    cpu_impl *c = p;
    cpu_inv *v = &c->inv;
    fv_net *net = c->net;
    cpu_inv_params(c, h);
    fv_net_set_kinks(net, kinks);
    net->want_input_grad = want_x;
    net->skip_param_grad = want_x && !want_th;
    const float *z = fv_net_forward(net, v->x + (size_t)start * v->isz, cnt, 1);
    out->loss = 0;
    if (want_th || want_x) {
        out->loss = fv_softmax_xent(v->dl, z, v->y + start, cnt, v->classes, NULL);
        fv_net_backward(net, v->dl, cnt);
    }
    net->skip_param_grad = 0;
    out->gth = want_th ? net->grads : NULL;
    out->gx = want_x ? net->input_grad : NULL;
}

static void cpu_inv_kinks_save(void *p, int slot) {
    cpu_impl *c = p;
    fv_net_kinks_save(c->net, c->inv.kinks + (size_t)slot * c->inv.kbytes);
}

static void cpu_inv_kinks_load(void *p, int slot, int cnt) {
    cpu_impl *c = p;
    fv_net_kinks_load(c->net, c->inv.kinks + (size_t)slot * c->inv.kbytes, cnt);
}

/* Per channel c of a batch-norm layer's input h[n, C, HW]: mean and biased variance over n * HW. */
static void bn_channel_stats(const float *h, int n, int C, int HW, int c, double *mu, double *var) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) {
        const float *q0 = h + ((size_t)i * C + c) * HW;
        for (int k = 0; k < HW; k++) s += q0[k];
    }
    const double M = (double)n * HW, m = s / M;
    for (int i = 0; i < n; i++) {
        const float *q0 = h + ((size_t)i * C + c) * HW;
        for (int k = 0; k < HW; k++) q += ((double)q0[k] - m) * ((double)q0[k] - m);
    }
    *mu = m, *var = q / M;
}

static void cpu_inv_bn_stats(void *p, double *stats) {
    cpu_impl *c = p;
    const fv_net *net = c->net;
    const int n = c->inv.n;
    FV_ASSERT(net->last_n == n && net->last_train && !net->last_replay);
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_BATCHNORM) continue;
        const int C = nd->ishape.c, HW = nd->ishape.h * nd->ishape.w;
        for (int ch = 0; ch < C; ch++, stats += 2)
            bn_channel_stats(net->nodes[nd->in0].out, n, C, HW, ch, &stats[0], &stats[1]);
    }
}

/* fv_net's backward hook of bn_backward: for every batch-norm layer fed by `node`, add its
 * terms coef[3c] + coef[3c + 1] (h - coef[3c + 2]) to node's output gradient. */
static void cpu_bn_hook(void *ctx, fv_net *net, int node, int n) {
    const double *cf = ((const cpu_impl *)ctx)->inv.coef;
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_BATCHNORM) continue;
        const int C = nd->ishape.c, HW = nd->ishape.h * nd->ishape.w;
        cf += 3 * C;
        if (nd->in0 != node) continue;
        const double *k3 = cf - 3 * C;
        const float *h = net->nodes[node].out;
        float *d = net->nodes[node].dout;
        for (int ch = 0; ch < C; ch++) {
            const double a = k3[3 * ch], k = k3[3 * ch + 1], mu = k3[3 * ch + 2];
            for (int s = 0; s < n; s++) {
                const size_t o = ((size_t)s * C + ch) * HW;
                for (int q = 0; q < HW; q++) d[o + q] += (float)(a + k * ((double)h[o + q] - mu));
            }
        }
    }
}

static const float *cpu_inv_bn_backward(void *p, const double *coef) {
    cpu_impl *c = p;
    fv_net *net = c->net;
    cpu_inv *v = &c->inv;
    FV_ASSERT(net->last_n == v->n && net->last_train && !net->last_replay);
    net->want_input_grad = 1;
    net->skip_param_grad = 1; /* the prior needs the input gradient only */
    memset(v->dl, 0, sizeof(float) * (size_t)v->n * v->classes);
    v->coef = coef;
    net->backward_hook = cpu_bn_hook, net->backward_hook_ctx = c;
    fv_net_backward(net, v->dl, v->n);
    net->skip_param_grad = 0;
    net->backward_hook = NULL, net->backward_hook_ctx = NULL;
    v->coef = NULL;
    return net->input_grad;
}

static void cpu_inv_restore(void *p) {
    cpu_impl *c = p;
    memcpy(c->net->params, c->inv.theta0, c->inv.np * sizeof(float));
    c->net->want_input_grad = 0;
    fv_net_set_kinks(c->net, FV_KINKS_FREE);
}

static void cpu_profile(void *p, int on) { fv_net_profile(((cpu_impl *)p)->net, on); }
static const double *cpu_profile_times(const void *p) { return ((const cpu_impl *)p)->net->prof; }

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
    .profile = cpu_profile,
    .profile_times = cpu_profile_times,
    .inv_open = cpu_inv_open,
    .inv_images = cpu_inv_images,
    .inv_point = cpu_inv_point,
    .inv_pass = cpu_inv_pass,
    .inv_kinks_save = cpu_inv_kinks_save,
    .inv_kinks_load = cpu_inv_kinks_load,
    .inv_bn_stats = cpu_inv_bn_stats,
    .inv_bn_backward = cpu_inv_bn_backward,
    .inv_restore = cpu_inv_restore,
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
        int blocked = cfg->blocked; /* 0: FEDVIM_CPU_BLOCKED (0 or 1), else on */
        const char *env = blocked ? NULL : getenv("FEDVIM_CPU_BLOCKED");
        if (env && strcmp(env, "0") != 0 && strcmp(env, "1") != 0) {
            fv_err_set(e, "FEDVIM_CPU_BLOCKED: '%s': expected 0 or 1", env);
            return NULL;
        }
        if (env) blocked = env[0] == '1' ? 1 : -1;
        if (cfg->fuse) fv_net_set_fuse(net, cfg->fuse > 0);
        if (net->blocked_on != (blocked >= 0)) fv_net_set_blocked(net, blocked >= 0);
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

void fv_trainer_profile(fv_trainer *t, int on) { t->ops->profile(t->impl, on); }

const double *fv_trainer_profile_times(const fv_trainer *t) { return t->ops->profile_times(t->impl); }

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

/* ---- inversion passes: the front ---- */

int fv_trainer_inv_open(fv_trainer *t, const float *theta0, int n, int slots, int slot_batch, fv_err *e) {
    FV_ASSERT(theta0 && n >= 1 && n <= t->cfg.max_batch && slots >= 1 && slot_batch >= 1 && slot_batch <= n);
    FV_ASSERT(!t->inv_n); /* once per trainer */
    for (int i = 1; i < t->net->n_nodes; i++)
        FV_ASSERT(t->net->nodes[i].op != FV_OP_DROPOUT || t->net->nodes[i].p == 0.0f);
    if (t->ops->inv_open(t->impl, theta0, n, slots, slot_batch, e)) return -1;
    t->inv_n = n, t->inv_slots = slots, t->inv_slot_batch = slot_batch;
    return 0;
}

void fv_trainer_inv_images(fv_trainer *t, const float *x, const int *labels) {
    FV_ASSERT(t->inv_n && x && labels);
    const int K = (int)fv_shape_size(fv_net_output_shape(t->net));
    for (int i = 0; i < t->inv_n; i++) FV_ASSERT(labels[i] >= 0 && labels[i] < K);
    t->ops->inv_images(t->impl, x, labels);
}

void fv_trainer_inv_point(fv_trainer *t, const float *base, const float *dir) {
    FV_ASSERT(t->inv_n);
    t->ops->inv_point(t->impl, base, dir);
}

void fv_trainer_inv_pass(fv_trainer *t, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                         fv_inv_pass_out *out) {
    FV_ASSERT(t->inv_n && start >= 0 && cnt >= 1 && start + cnt <= t->inv_n && out);
    FV_ASSERT(kinks == FV_KINKS_FREE || cnt <= t->inv_slot_batch);
    t->ops->inv_pass(t->impl, h, start, cnt, kinks, want_th, want_x, out);
}

void fv_trainer_inv_kinks_save(fv_trainer *t, int slot) {
    FV_ASSERT(t->inv_n && slot >= 0 && slot < t->inv_slots);
    t->ops->inv_kinks_save(t->impl, slot);
}

void fv_trainer_inv_kinks_load(fv_trainer *t, int slot, int cnt) {
    FV_ASSERT(t->inv_n && slot >= 0 && slot < t->inv_slots && cnt >= 1 && cnt <= t->inv_slot_batch);
    t->ops->inv_kinks_load(t->impl, slot, cnt);
}

int fv_trainer_inv_bn_layers(const fv_trainer *t, size_t *channels) {
    int layers = 0;
    size_t ch = 0;
    for (int i = 1; i < t->net->n_nodes; i++)
        if (t->net->nodes[i].op == FV_OP_BATCHNORM) layers++, ch += (size_t)t->net->nodes[i].ishape.c;
    if (channels) *channels = ch;
    return layers;
}

void fv_trainer_inv_bn_stats(fv_trainer *t, double *stats) {
    FV_ASSERT(t->inv_n && stats);
    t->ops->inv_bn_stats(t->impl, stats);
}

const float *fv_trainer_inv_bn_backward(fv_trainer *t, const double *coef) {
    FV_ASSERT(t->inv_n && coef);
    return t->ops->inv_bn_backward(t->impl, coef);
}

void fv_trainer_inv_restore(fv_trainer *t) {
    FV_ASSERT(t->inv_n);
    t->ops->inv_restore(t->impl);
}
