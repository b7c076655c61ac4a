/* cuda/trainer.c: the CUDA backend of trainer.h, in C over the fv_cuda_net API of cuda/net.h, the
 * calls the worker, `fedvim train` and `bench train` made themselves before the trainer existed:
 * one fv_cuda_net per trainer (parameters, gradients, optimizer state and activations stay on the
 * device), fv_cuda_shard per shard, fv_cuda_train_epoch (CUDA graphs for full batches unless
 * cfg.eager is set), fv_cuda_evaluate, one parameter download per get_params.
 * Built in every configuration: without the CUDA backend, cuda/none.c's fv_cuda_net_new refuses
 * and so does fv_trainer_cuda_open.
 * Input gradients: fv_cuda_net_input_grad (outside the captured training step). Pixel-loss and
 * distillation steps and inference on host floats: fv_cuda_net_train_pixel, fv_cuda_net_train_kd
 * and fv_cuda_net_forward (uncaptured). Gradient-inversion passes: fv_cuda_net_inv_*.
 * Not here: kernels.
 */
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "nn/trainer_backend.h"

typedef struct {
    fv_cuda_net *cn;
    fv_norm norm;
} cuda_impl;

static void cu_destroy(void *p) {
    cuda_impl *c = p;
    fv_cuda_net_destroy(&c->cn);
    free(c);
}

static void cu_info(void *p, fv_trainer_info *out) {
    cuda_impl *c = p;
    fv_cuda_net_describe(c->cn, out->where, sizeof out->where);
    const fv_cuda_net_info i = fv_cuda_net_info_get(c->cn);
    out->cuda = 1;
    _Static_assert(sizeof out->conv == sizeof i.conv, "fv_trainer_info.conv holds fv_cuda_net_info.conv");
    memcpy(out->conv, i.conv, sizeof out->conv);
    out->graph_steps = i.graph_steps;
    out->eager_steps = i.eager_steps;
    out->captures = i.captures;
    out->device_bytes = i.device_bytes;
    out->tf32 = fv_cuda_net_tf32(c->cn);
    out->relu_fused = i.relu_fused;
}

static void cu_set_params(void *p, const float *src) { fv_cuda_net_set_params(((cuda_impl *)p)->cn, src); }

static void cu_get_params(void *p, float *dst) { fv_cuda_net_get_params(((cuda_impl *)p)->cn, dst); }

static void cu_seed_dropout(void *p, uint64_t seed) { fv_cuda_net_seed_dropout(((cuda_impl *)p)->cn, seed); }

static void cu_reset_opt(void *p) { fv_cuda_net_opt_reset(((cuda_impl *)p)->cn); }

static void cu_set_opt_state(void *p, const float *state, int64_t steps) {
    fv_cuda_net_set_opt_state(((cuda_impl *)p)->cn, state, steps);
}

static void cu_get_opt_state(void *p, float *state, int64_t *steps) {
    fv_cuda_net_get_opt_state(((cuda_impl *)p)->cn, state, steps);
}

static void *cu_shard_new(void *p) { return fv_cuda_shard_new(((cuda_impl *)p)->cn); }

static void cu_shard_destroy(void *s) {
    fv_cuda_shard *sh = s;
    fv_cuda_shard_destroy(&sh);
}

static int cu_shard_load(void *s, const fv_dataset *d, const int *idx, int n, fv_err *e) {
    return fv_cuda_shard_load(s, d, idx, n, e);
}

static int cu_shard_size(const void *s) { return fv_cuda_shard_size(s); }

static fv_epoch_stats cu_train_epoch(void *p, const void *s, int batch, fv_rng *rng, float prox_mu,
                                     const float *prox_ref, const float *corr, fv_progress_fn progress, void *ctx) {
    cuda_impl *c = p;
    return fv_cuda_train_epoch(c->cn, s, batch, c->norm, rng, prox_mu, prox_ref, corr, progress, ctx);
}

static fv_eval_stats cu_evaluate(void *p, const void *s, int batch) {
    cuda_impl *c = p;
    return fv_cuda_evaluate(c->cn, s, batch, c->norm);
}

static int cu_input_grad(void *p, const float *x, const int *labels, int n, float *dx, float *loss,
                         float *grads, fv_err *e) {
    (void)e; /* nothing a user can cause fails here: the front checked n and the labels */
    fv_cuda_net_input_grad(((cuda_impl *)p)->cn, x, labels, n, dx, loss, grads);
    return 0;
}

static float cu_train_pixel(void *p, const float *x, const float *target, int n, fv_pixel_loss_kind kind) {
    float l = 0.0f;
    fv_cuda_net_train_pixel(((cuda_impl *)p)->cn, x, target, n, kind, &l);
    return l;
}

static float cu_train_kd(void *p, const float *x, const float *teacher, const int *labels, int n, float T,
                         float alpha, int *correct) {
    float l = 0.0f;
    fv_cuda_net_train_kd(((cuda_impl *)p)->cn, x, teacher, labels, n, T, alpha, &l, correct);
    return l;
}

static void cu_forward(void *p, const float *x, int n, float *y) { fv_cuda_net_forward(((cuda_impl *)p)->cn, x, n, y); }

/* gradient-inversion passes: fv_cuda_net_inv_* */
static int cu_inv_open(void *p, const float *theta0, int n, int slots, int slot_batch, fv_err *e) {
    return fv_cuda_net_inv_open(((cuda_impl *)p)->cn, theta0, n, slots, slot_batch, e);
}
static void cu_inv_images(void *p, const float *x, const int *labels) {
    fv_cuda_net_inv_images(((cuda_impl *)p)->cn, x, labels);
}
static void cu_inv_point(void *p, const float *base, const float *dir) {
    fv_cuda_net_inv_point(((cuda_impl *)p)->cn, base, dir);
}
static void cu_inv_pass(void *p, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                        fv_inv_pass_out *out) {
    fv_cuda_net_inv_pass(((cuda_impl *)p)->cn, h, start, cnt, kinks, want_th, want_x, &out->loss, &out->gth,
                         &out->gx);
}
static void cu_inv_kinks_save(void *p, int slot) { fv_cuda_net_inv_kinks_save(((cuda_impl *)p)->cn, slot); }
static void cu_inv_kinks_load(void *p, int slot, int cnt) { fv_cuda_net_inv_kinks_load(((cuda_impl *)p)->cn, slot, cnt); }
static void cu_inv_bn_stats(void *p, double *stats) { fv_cuda_net_inv_bn_stats(((cuda_impl *)p)->cn, stats); }
static const float *cu_inv_bn_backward(void *p, const double *coef) {
    return fv_cuda_net_inv_bn_backward(((cuda_impl *)p)->cn, coef);
}
static void cu_inv_restore(void *p) { (void)p; /* every pass sets its own parameters */ }

static void cu_profile(void *p, int on) { fv_cuda_net_profile(((cuda_impl *)p)->cn, on); }
static const double *cu_profile_times(const void *p) {
    return fv_cuda_net_profile_times(((const cuda_impl *)p)->cn);
}

static const fv_trainer_backend CUDA = {
    .destroy = cu_destroy,
    .info = cu_info,
    .set_params = cu_set_params,
    .get_params = cu_get_params,
    .seed_dropout = cu_seed_dropout,
    .reset_opt = cu_reset_opt,
    .set_opt_state = cu_set_opt_state,
    .get_opt_state = cu_get_opt_state,
    .shard_new = cu_shard_new,
    .shard_destroy = cu_shard_destroy,
    .shard_load = cu_shard_load,
    .shard_size = cu_shard_size,
    .train_epoch = cu_train_epoch,
    .evaluate = cu_evaluate,
    .input_grad = cu_input_grad,
    .train_pixel = cu_train_pixel,
    .train_kd = cu_train_kd,
    .forward = cu_forward,
    .profile = cu_profile,
    .profile_times = cu_profile_times,
    .inv_open = cu_inv_open,
    .inv_images = cu_inv_images,
    .inv_point = cu_inv_point,
    .inv_pass = cu_inv_pass,
    .inv_kinks_save = cu_inv_kinks_save,
    .inv_kinks_load = cu_inv_kinks_load,
    .inv_bn_stats = cu_inv_bn_stats,
    .inv_bn_backward = cu_inv_bn_backward,
    .inv_restore = cu_inv_restore,
};

int fv_trainer_cuda_open(fv_net *net, const fv_trainer_cfg *cfg, const fv_trainer_backend **ops, void **impl,
                         fv_err *e) {
    FV_ASSERT(cfg->device >= 0);
    fv_cuda_net *cn = fv_cuda_net_new(net, cfg->device, cfg->max_batch, e);
    if (!cn) return -1;
    fv_cuda_net_set_opt(cn, &cfg->opt);
    fv_cuda_net_set_graphs(cn, !cfg->eager);
    if (cfg->tf32) fv_cuda_net_set_tf32(cn, 1);
    if (cfg->fuse) fv_cuda_net_set_fuse(cn, cfg->fuse > 0);
    cuda_impl *c = fv_calloc(1, sizeof *c);
    c->cn = cn;
    c->norm = cfg->norm;
    *ops = &CUDA;
    *impl = c;
    return 0;
}
