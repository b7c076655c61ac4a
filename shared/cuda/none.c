/* cuda_none.c: cuda_net.h in a build without the CUDA backend (nvcc was not found, or
 * -DFEDVIM_CUDA=OFF). Every constructor fails with one clear message, so `--device cuda` says
 * what to do instead of crashing; the other calls cannot be reached without a net and abort.
 * CMake leaves this file out when the backend is built (shared/CMakeLists.txt).
 * Not here: anything that computes.
 */
#include "cuda/net.h"

#define NO_CUDA "this build has no CUDA backend (configure with nvcc available)"

int fv_cuda_built(void) { return 0; }

int fv_cuda_device_count(void) { return 0; }

fv_cuda_net *fv_cuda_net_new(const fv_net *host, int device, int max_batch, fv_err *e) {
    fv_err_set(e, "cuda:%d: " NO_CUDA, device);
    return NULL;
}

void fv_cuda_net_destroy(fv_cuda_net **cn) {
    if (cn) *cn = NULL;
}

void fv_cuda_shard_destroy(fv_cuda_shard **s) {
    if (s) *s = NULL;
}

/* No fv_cuda_net can exist in this build: reaching these is a programmer error. */
void fv_cuda_net_describe(const fv_cuda_net *cn, char *buf, size_t cap) { FV_DIE(NO_CUDA); }
void fv_cuda_net_set_params(fv_cuda_net *cn, const float *params) { FV_DIE(NO_CUDA); }
void fv_cuda_net_get_params(fv_cuda_net *cn, float *params) { FV_DIE(NO_CUDA); }
void fv_cuda_net_seed_dropout(fv_cuda_net *cn, uint64_t seed) { FV_DIE(NO_CUDA); }
void fv_cuda_net_set_opt(fv_cuda_net *cn, const fv_opt_cfg *cfg) { FV_DIE(NO_CUDA); }
void fv_cuda_net_opt_reset(fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
size_t fv_cuda_net_opt_state_len(const fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
void fv_cuda_net_get_opt_state(fv_cuda_net *cn, float *state, int64_t *steps) { FV_DIE(NO_CUDA); }
void fv_cuda_net_set_opt_state(fv_cuda_net *cn, const float *state, int64_t steps) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_set_graphs(fv_cuda_net *cn, int on) { FV_DIE(NO_CUDA); }
void fv_cuda_net_set_tf32(fv_cuda_net *cn, int on) { FV_DIE(NO_CUDA); }
int fv_cuda_net_tf32(const fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
int fv_cuda_net_set_fuse(fv_cuda_net *cn, int on) { FV_DIE(NO_CUDA); }
int fv_cuda_net_fuse(const fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
void fv_cuda_net_profile(fv_cuda_net *cn, int on) { FV_DIE(NO_CUDA); }
const double *fv_cuda_net_profile_times(const fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
int fv_cuda_net_set_conv(fv_cuda_net *cn, const char *impl, fv_err *e) {
    return fv_err_set(e, NO_CUDA);
}
const char *fv_cuda_net_conv(const fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
fv_cuda_net_info fv_cuda_net_info_get(const fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
fv_cuda_shard *fv_cuda_shard_new(fv_cuda_net *cn) { FV_DIE(NO_CUDA); }
int fv_cuda_shard_load(fv_cuda_shard *s, const fv_dataset *d, const int *idx, int n, fv_err *e) {
    return fv_err_set(e, NO_CUDA);
}
int fv_cuda_shard_size(const fv_cuda_shard *s) { FV_DIE(NO_CUDA); }
fv_epoch_stats fv_cuda_train_epoch(fv_cuda_net *cn, const fv_cuda_shard *s, int batch, fv_norm norm,
                                   fv_rng *rng, float prox_mu, const float *prox_ref, const float *corr,
                                   fv_progress_fn progress, void *ctx) {
    FV_DIE(NO_CUDA);
}
fv_eval_stats fv_cuda_evaluate(fv_cuda_net *cn, const fv_cuda_shard *s, int batch, fv_norm norm) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_grad(fv_cuda_net *cn, const float *x, const int *labels, int n, float *loss,
                      float *logits, float *grads) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_input_grad(fv_cuda_net *cn, const float *x, const int *labels, int n, float *dx,
                            float *loss, float *grads) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_train_pixel(fv_cuda_net *cn, const float *x, const float *target, int n,
                             fv_pixel_loss_kind kind, float *loss) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_train_kd(fv_cuda_net *cn, const float *x, const float *teacher, const int *labels, int n,
                          float T, float alpha, float *loss, int *correct) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_forward(fv_cuda_net *cn, const float *x, int n, float *y) { FV_DIE(NO_CUDA); }
int fv_cuda_net_inv_open(fv_cuda_net *cn, const float *theta0, int n, int slots, int slot_batch, fv_err *e) {
    return fv_err_set(e, NO_CUDA);
}
void fv_cuda_net_inv_images(fv_cuda_net *cn, const float *x, const int *labels) { FV_DIE(NO_CUDA); }
void fv_cuda_net_inv_point(fv_cuda_net *cn, const float *base, const float *dir) { FV_DIE(NO_CUDA); }
void fv_cuda_net_inv_pass(fv_cuda_net *cn, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                          double *loss, const float **gth, const float **gx) {
    FV_DIE(NO_CUDA);
}
void fv_cuda_net_inv_kinks_save(fv_cuda_net *cn, int slot) { FV_DIE(NO_CUDA); }
void fv_cuda_net_inv_kinks_load(fv_cuda_net *cn, int slot, int cnt) { FV_DIE(NO_CUDA); }
void fv_cuda_net_inv_bn_stats(fv_cuda_net *cn, double *stats) { FV_DIE(NO_CUDA); }
const float *fv_cuda_net_inv_bn_backward(fv_cuda_net *cn, const double *coef) { FV_DIE(NO_CUDA); }
