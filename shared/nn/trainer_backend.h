/* trainer_backend.h: what a trainer backend provides (trainer.h's dispatch table), for the two
 * files that implement one: nn/trainer.c (the CPU backend and the device-neutral front) and
 * cuda/trainer.c (the CUDA backend over cuda/net.h). Callers use trainer.h, never this.
 * The front checks the arguments trainer.h promises to check (batch and n against max_batch,
 * shard ownership) before a backend sees them; a backend only does the work.
 * Not here: any implementation.
 */
#ifndef FV_TRAINER_BACKEND_H
#define FV_TRAINER_BACKEND_H
#include "nn/trainer.h"

typedef struct {
    void (*destroy)(void *impl);
    void (*info)(void *impl, fv_trainer_info *out);
    void (*set_params)(void *impl, const float *src);
    void (*get_params)(void *impl, float *dst);
    void (*seed_dropout)(void *impl, uint64_t seed);
    void (*reset_opt)(void *impl);
    void (*set_opt_state)(void *impl, const float *state, int64_t steps);
    void (*get_opt_state)(void *impl, float *state, int64_t *steps);
    void *(*shard_new)(void *impl);
    void (*shard_destroy)(void *shard);
    int (*shard_load)(void *shard, const fv_dataset *d, const int *idx, int n, fv_err *e);
    int (*shard_size)(const void *shard);
    fv_epoch_stats (*train_epoch)(void *impl, const void *shard, int batch, fv_rng *rng, float prox_mu,
                                  const float *prox_ref, const float *corr, fv_progress_fn progress, void *ctx);
    fv_eval_stats (*evaluate)(void *impl, const void *shard, int batch);
    int (*input_grad)(void *impl, const float *x, const int *labels, int n, float *dx, float *loss,
                      float *grads, fv_err *e);
    float (*train_pixel)(void *impl, const float *x, const float *target, int n, fv_pixel_loss_kind kind);
    float (*train_kd)(void *impl, const float *x, const float *teacher, const int *labels, int n, float T,
                      float alpha, int *correct);
    void (*forward)(void *impl, const float *x, int n, float *y);
    void (*profile)(void *impl, int on);
    const double *(*profile_times)(const void *impl);
    /* gradient-inversion passes (trainer.h, fv_trainer_inv_*) */
    int (*inv_open)(void *impl, const float *theta0, int n, int slots, int slot_batch, fv_err *e);
    void (*inv_images)(void *impl, const float *x, const int *labels);
    void (*inv_point)(void *impl, const float *base, const float *dir);
    void (*inv_pass)(void *impl, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                     fv_inv_pass_out *out);
    void (*inv_kinks_save)(void *impl, int slot);
    void (*inv_kinks_load)(void *impl, int slot, int cnt);
    void (*inv_bn_stats)(void *impl, double *stats);
    const float *(*inv_bn_backward)(void *impl, const double *coef);
    void (*inv_restore)(void *impl);
} fv_trainer_backend;

/* The CUDA backend (cuda/trainer.c, in every build): *impl for the finished net on cfg->device
 * (>= 0) with cfg's max_batch, optimizer (already checked) and graph setting (eager), *ops its table.
 * Returns 0, or -1 with e set as fv_cuda_net_new sets it (no device, memory short, a build
 * without CUDA). */
FV_MUST_USE int fv_trainer_cuda_open(fv_net *net, const fv_trainer_cfg *cfg, const fv_trainer_backend **ops,
                                     void **impl, fv_err *e);

#endif
