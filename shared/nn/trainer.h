/* trainer.h: one device-neutral interface for training, evaluating and differentiating a model,
 * on the CPU (the nn/ reference code) or on a CUDA device (cuda/net.h). The backend is chosen once,
 * at fv_trainer_new, from the device number; after that the caller makes the same calls either
 * way (ggml-style: the trainer holds a small table of the backend's functions).
 *
 * Usage (a federated worker; fedvim train and bench train do the same with their own loops):
 *   fv_trainer_cfg tc = {.device = dev, .max_batch = B, .opt = ocfg, .norm = norm};
 *   fv_trainer *t = fv_trainer_new(net, &tc, &e);        once
 *   fv_trainer_shard *sh = fv_trainer_shard_new(t);      once (reused for every client)
 *   per task: fv_trainer_set_params(t, global);
 *             fv_trainer_reset_opt(t) or fv_trainer_set_opt_state(t, state, steps);
 *             fv_trainer_seed_dropout(t, seed);
 *             fv_trainer_shard_load(sh, d, idx, n, &e);
 *             for each local epoch: fv_trainer_train_epoch(t, sh, B, &rng, mu, ref, corr, cb, ctx);
 *             fv_trainer_get_params(t, update);
 *
 * Numerics: the CPU backend makes exactly the calls fv_train_epoch / fv_evaluate make (same bits
 * as calling them directly). The CUDA backend is fv_cuda_net with its CUDA graphs, device-resident
 * shards and one parameter download per get_params; it differs from the CPU by rounding only
 * (cuda/net.h, "Numerics"), and sees the same batches for the same rng state.
 * Errors: what a user can cause (no such device, device memory short, a bad optimizer
 * configuration) returns NULL / -1 with an fv_err; misuse (a batch above max_batch, a shard of another trainer) aborts.
 * Image-to-image models (attacks/inverter.h) train with fv_trainer_train_pixel_batch on host floats
 * and run with fv_trainer_forward, on either backend; distillation students (nn/train_soft.h)
 * train with fv_trainer_train_kd_batch the same way.
 * Not here: the layer kernels (layers.h, cuda/layers.h), the device twin itself (cuda/net.h),
 * federated logic (worker/), per-example statistics and profiling (CPU only: train.h, net.h).
 */
#ifndef FV_TRAINER_H
#define FV_TRAINER_H
#include <stddef.h>
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "nn/loss_pixel.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/train.h"
#include "rng.h"

typedef struct {
    int device;     /* -1: the CPU; N >= 0: CUDA device N (fv_device_parse gives this number) */
    int max_batch;  /* the largest batch train_epoch and input_grad will be given (>= 1) */
    fv_opt_cfg opt; /* the optimizer of the trainable parameters (checked with fv_opt_cfg_check) */
    fv_norm norm;   /* how images become floats, for training and evaluation (shards only: the
                       pixel and forward calls below take floats and never read it) */
    int eager;      /* CUDA: 0 (the default) replays each full training batch as a CUDA graph, 1
                       launches every kernel (fv_cuda_net_set_graphs); ignored on the CPU */
    int tf32;       /* CUDA: 1 allows TF32 tensor cores for FP32 products (fv_cuda_net_set_tf32; an
                       explicit opt-in, off by default); ignored on the CPU, which has none */
    int fuse;       /* batch norm / add + ReLU fusion (fv_net_set_fuse, fv_cuda_net_set_fuse; the
                       same bits either way): 0 the backend's default (the CPU: on; CUDA: off
                       unless FEDVIM_CUDA_FUSE=1), 1 on, -1 off. The CPU backend sets it on net */
    int blocked;    /* the CPU: activations between oneDNN convs kept in oneDNN's blocked layout
                       (fv_net_set_blocked): 1 on, -1 off, 0 the environment variable
                       FEDVIM_CPU_BLOCKED (0 or 1; anything else is refused) or, unset, on. Ignored
                       by CUDA. The CPU backend sets it on net; an inversion (fv_trainer_inv_open)
                       turns it off */
} fv_trainer_cfg;

typedef struct fv_trainer fv_trainer;
typedef struct fv_trainer_shard fv_trainer_shard;

/* A trainer for the finished model `net` on cfg->device. net is borrowed: it must outlive the
 * trainer. The CPU backend trains net->params in place with net's dropout stream; the CUDA backend
 * copies net's graph, parameters and next dropout seed to the device at creation and touches net
 * no more (fv_trainer_get_params may write into net->params on request). The optimizer starts with
 * zero state. Returns NULL with e set when cfg->opt fails fv_opt_cfg_check (e names the field),
 * when the device does not exist or cannot hold the model (cuda/net.h), or in a build without
 * CUDA when a device is asked for. */
FV_MUST_USE fv_trainer *fv_trainer_new(fv_net *net, const fv_trainer_cfg *cfg, fv_err *e);
/* Free the trainer (not net; destroy its shards first) and set *t to NULL. Accepts NULL and
 * *t == NULL. */
void fv_trainer_destroy(fv_trainer **t);

/* The device number the trainer was made for (-1: the CPU). */
int fv_trainer_device(const fv_trainer *t);

/* What a trainer reports about where and how it runs. */
typedef struct {
    char where[320];     /* "2 threads" (the CPU, with the current OpenMP thread count), or the
                            CUDA device, e.g. "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" */
    int cuda;            /* 1 when the fields below are the CUDA backend's (fv_cuda_net_info) */
    char conv[96];       /* CUDA: how convolutions run; "" on the CPU */
    long graph_steps, eager_steps, captures; /* CUDA: steps replayed / uncaptured, graphs captured */
    size_t device_bytes; /* CUDA: device memory the model holds (shards excluded) */
    int tf32;            /* CUDA: TF32 tensor cores allowed (fv_trainer_cfg.tf32); 0 on the CPU */
    int relu_fused;      /* ReLUs computed inside their batch norm's or add's pass (0: fusion off) */
    int blocked;         /* the CPU: node outputs kept blocked (fv_net_blocked_count); 0 on CUDA */
} fv_trainer_info;
fv_trainer_info fv_trainer_info_get(const fv_trainer *t);

/* The parameter vector (net.h's layout: n_params floats, trainable then buffers) into / out of
 * the trainer. src and dst may be net->params itself (then the CPU backend copies nothing).
 * get_params waits for the training enqueued before it. */
void fv_trainer_set_params(fv_trainer *t, const float *src);
void fv_trainer_get_params(fv_trainer *t, float *dst);

/* Seed the dropout stream of the next training steps (CPU: net's stream; CUDA: the device's
 * counter-based generator; the masks differ between the two, the distribution does not). */
void fv_trainer_seed_dropout(fv_trainer *t, uint64_t seed);

/* The optimizer state: fv_opt_state_len(cfg->opt, n_train) floats in optim.h's layout plus the
 * step count. reset zeroes both; set copies state (opt_state_len floats; may be NULL only when
 * the length is 0) and steps in; get copies them out (state may be NULL when the length is 0). */
size_t fv_trainer_opt_state_len(const fv_trainer *t);
void fv_trainer_reset_opt(fv_trainer *t);
void fv_trainer_set_opt_state(fv_trainer *t, const float *state, int64_t steps);
void fv_trainer_get_opt_state(fv_trainer *t, float *state, int64_t *steps);

/* A data set slot bound to t (use it only with t; destroy it before t). Caller owns. */
fv_trainer_shard *fv_trainer_shard_new(fv_trainer *t);
/* Free and set *s to NULL. Accepts NULL and *s == NULL. */
void fv_trainer_shard_destroy(fv_trainer_shard **s);
/* Make the shard hold images idx[0..n) of d in that order (idx NULL: all of d, n ignored),
 * replacing what it held. The CPU backend only remembers d and idx (both must stay valid and
 * unchanged while the shard is used, until the next load); the CUDA backend copies the images to
 * the device (its buffer grows when needed and is otherwise reused, which keeps a captured graph
 * valid). d's images must have the model's input shape and labels below its outputs. Returns 0,
 * or -1 with e set (CUDA: shape mismatch, device memory short). */
FV_MUST_USE int fv_trainer_shard_load(fv_trainer_shard *s, const fv_dataset *d, const int *idx, int n,
                                      fv_err *e);
/* Images the shard holds. */
int fv_trainer_shard_size(const fv_trainer_shard *s);

/* One epoch over the shard: its images in the order fv_rng_shuffle_int(rng) gives (as
 * fv_train_epoch draws it), in batches of `batch` (1 <= batch <= max_batch; the last may be
 * smaller), each a forward, loss, backward, optional FedProx term mu (w - prox_ref) (prox_mu > 0
 * with prox_ref, n_train host floats), optional gradient correction corr (n_train host floats, may
 * be NULL: SCAFFOLD's c - c_i, fl/scaffold.h, added to every step's gradient after the FedProx
 * term; read during the call only) and optimizer step. progress (may be NULL) is called after
 * batches (CUDA: at most about four times a second, and at the end). Returns the epoch's
 * statistics once the epoch is done. */
fv_epoch_stats fv_trainer_train_epoch(fv_trainer *t, const fv_trainer_shard *s, int batch, fv_rng *rng,
                                      float prox_mu, const float *prox_ref, const float *corr,
                                      fv_progress_fn progress, void *ctx);

/* Loss and accuracy over the whole shard in eval mode (running statistics, no dropout), in shard
 * order, in batches of `batch` (CUDA: at most max_batch, its buffers' size; the figures differ by
 * rounding only). */
fv_eval_stats fv_trainer_evaluate(fv_trainer *t, const fv_trainer_shard *s, int batch);

/* The gradient of the mean softmax cross-entropy loss with respect to a batch of input images:
 * one training-mode forward of x[n, input] (normalised floats, 1 <= n <= max_batch) with
 * labels[n] in [0, outputs), and one backward, without an optimizer step (batch-norm running
 * statistics are updated and dropout draws from the trainer's stream, as in a training step).
 * Outputs: dx[n, input] = d loss / d x; *loss (may be NULL) the mean loss; grads (may be NULL)
 * n_train floats, d loss / d params. For gradient-inversion attacks, on whichever device the
 * trainer runs: the CPU (net.h's want_input_grad) or CUDA (fv_cuda_net_input_grad, outside the
 * captured training step; the values differ from the CPU's by rounding only, and dropout masks
 * differ as in training). Both backends compute them, so today it returns 0; -1 with e set is
 * kept for a backend that cannot. */
FV_MUST_USE int fv_trainer_input_grad(fv_trainer *t, const float *x, const int *labels, int n, float *dx,
                                      float *loss, float *grads, fv_err *e);

/* One training step of an image-to-image (or any dense-output) model on host floats: a
 * training-mode forward of x[n, input] (1 <= n <= max_batch), the pixel loss (nn/loss_pixel.h,
 * kind MSE or L1) of the output against target[n, outputs] (the mean over all n * outputs
 * values), a backward and an optimizer step. *loss (may be NULL) receives the loss. Batch-norm
 * running statistics and dropout behave as in any training step; no FedProx term or correction.
 * CPU: exactly fv_net_forward(train 1), fv_pixel_loss, fv_net_backward, fv_opt_step on net's
 * parameters (the learned inverter's loop before the trainer existed, same bits). CUDA:
 * fv_cuda_net_train_pixel (uploads x and target, the loss kernel reduces in a fixed order); the
 * values differ from the CPU's by rounding only. Blocking (the loss is read back). */
void fv_trainer_train_pixel_batch(fv_trainer *t, const float *x, const float *target, int n, fv_pixel_loss_kind kind,
                                  float *loss);

/* One knowledge-distillation step on host floats: a training-mode forward of x[n, input]
 * (normalised floats, 1 <= n <= max_batch), Hinton's loss (nn/loss_soft.h fv_kd_loss) of the
 * logits against teacher[n, outputs] (the teacher's logits of the same images) and labels[n] in
 * [0, outputs), temperature T > 0, soft-term weight alpha in [0, 1], a backward and an optimizer
 * step (no FedProx term or correction). Returns the batch loss (fv_kd_loss's); *correct (may be
 * NULL) receives the rows whose largest logit is at the label. Batch-norm running statistics and
 * dropout behave as in any training step. CPU: exactly fv_net_forward(train 1), fv_kd_loss,
 * fv_net_backward, fv_opt_step on net's parameters (fv_train_epoch_kd's step, same bits). CUDA:
 * fv_cuda_net_train_kd (uploads x, teacher and labels; the loss kernel computes each row in
 * double as fv_kd_loss does and reduces the rows serially in row order); the values differ from
 * the CPU's by rounding only. Bad arguments (n, labels, T, alpha) abort. Blocking. */
float fv_trainer_train_kd_batch(fv_trainer *t, const float *x, const float *teacher, const int *labels, int n,
                                float T, float alpha, int *correct);

/* Inference: y[n, outputs] (host) = the model on host floats x[n, input] in eval mode (running
 * statistics, no dropout), 1 <= n <= max_batch. CPU: fv_net_forward(train 0) copied out (same
 * bits); CUDA: fv_cuda_net_forward (rounding only). Blocking. */
void fv_trainer_forward(fv_trainer *t, const float *x, int n, float *y);

/* Time each node of the training steps from now on (on != 0), or stop (0). The times come back
 * from fv_trainer_profile_times in net.h's fv_net_profile layout (2 * n_nodes seconds: [i] node
 * i's forward, [n_nodes + i] its backward, [n_nodes] the zeroing of gradient buffers), NULL when
 * off. CPU: fv_net_profile (wall time per node); CUDA: fv_cuda_net_profile (GPU time between
 * events; the steps then run uncaptured, one at a time). Switching on zeroes the times. */
void fv_trainer_profile(fv_trainer *t, int on);
const double *fv_trainer_profile_times(const fv_trainer *t);

/* ---- Passes for gradient inversion (attacks/invert.h) ----
 * The engine of attacks/invert.h differentiates a client's update with respect to its images by
 * central differences of gradients at theta +- h a, holding the ReLU masks and max-pool argmaxes
 * of a recorded forward (net.h, fv_kinks). These calls give it those passes on either backend;
 * what the passes read (the images, the point, the direction, the recorded kinks) stays where
 * the backend computes between calls (CUDA: on the device, uploaded once per change). Dropout
 * must be off in net (the engine sets p = 0 before creating the trainer). The sequence:
 *   fv_trainer_inv_open(t, theta0, n, slots, sb, &e)  once per engine
 *   fv_trainer_inv_images(t, x, labels)               the n candidates, whenever they change
 *   fv_trainer_inv_point(t, base, dir)                whenever the point or direction changes
 *   fv_trainer_inv_pass(t, h, start, cnt, ...)        any number of passes
 *   fv_trainer_inv_kinks_save / _load                 keep and bring back recorded kinks
 *   fv_trainer_inv_bn_stats / _bn_backward            the batch-norm statistics prior
 *   fv_trainer_inv_restore(t)                         after each engine call
 * CPU: exactly net.h's calls as attacks/invert.c made them before (same bits). CUDA: the same
 * passes by cuda/net.h's fv_cuda_net_inv_* (values differ by rounding only). */

/* Prepare t for inversion passes over n images (1 <= n <= max_batch) with room for `slots` >= 1
 * recorded kinks of batches of at most slot_batch (in [1, n]) images. theta0[n_params] (copied)
 * gives the buffers (batch-norm running statistics) every pass starts from. Call once per
 * trainer. Returns 0, or -1 with e set (CUDA: device memory short). */
FV_MUST_USE int fv_trainer_inv_open(fv_trainer *t, const float *theta0, int n, int slots, int slot_batch,
                                    fv_err *e);
/* The candidates x[n, input] (normalised floats) and labels[n] in [0, outputs). Copied. */
void fv_trainer_inv_images(fv_trainer *t, const float *x, const int *labels);
/* The passes' trainable parameters are base + h dir (base and dir n_train floats; dir NULL: base
 * for every h; base NULL: the base of the last call, theta0's trainable part before any). The CPU
 * reads both at each pass (keep them unchanged until the next call); CUDA copies them now. */
void fv_trainer_inv_point(fv_trainer *t, const float *base, const float *dir);

/* What one pass gives: valid until the next pass or bn_backward. */
typedef struct {
    double loss;       /* mean softmax cross-entropy of the pass's images */
    const float *gth;  /* n_train floats, d loss / d theta (want_th), else NULL */
    const float *gx;   /* cnt * input floats, d loss / d x of those images (want_x), else NULL */
} fv_inv_pass_out;
/* One training-mode forward + backward of images [start, start + cnt) of the candidates at the
 * point base + h dir and theta0's buffers, kinks as `kinks` says (REPLAY needs the kinks of a
 * batch of cnt recorded or loaded since the last FREE forward). want_x without want_th skips the
 * parameter-gradient work. want_th == want_x == 0: the forward only (out->loss 0). */
void fv_trainer_inv_pass(fv_trainer *t, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                         fv_inv_pass_out *out);
/* Copy the kinks of the last RECORD (or REPLAY) pass into slot [0, slots); make slot's kinks,
 * saved from a batch of cnt, the recorded ones (later REPLAY passes of cnt images apply them). */
void fv_trainer_inv_kinks_save(fv_trainer *t, int slot);
void fv_trainer_inv_kinks_load(fv_trainer *t, int slot, int cnt);
/* Batch-norm layers of the model, and their channels in all. */
int fv_trainer_inv_bn_layers(const fv_trainer *t, size_t *channels);
/* The statistics of the last pass's forward (which ran train mode on all n candidates): for each
 * batch-norm layer in node order, for each channel c, stats[2c] the mean and stats[2c + 1] the
 * biased variance of the layer's input over n * H * W values, in double. */
void fv_trainer_inv_bn_stats(fv_trainer *t, double *stats);
/* A backward of that same forward with zero loss gradient plus, at each batch-norm layer's input
 * h (channel c, in stats' order), the term coef[3c] + coef[3c + 1] (h - coef[3c + 2]) added to
 * its gradient, in double rounded once to float, when the gradient reaches that input; input
 * gradient only. Returns the n * input floats of d / d x (valid as a pass's gx). */
const float *fv_trainer_inv_bn_backward(fv_trainer *t, const double *coef);
/* CPU: net->params back to theta0, input gradients off, kinks FREE. CUDA: nothing to undo. */
void fv_trainer_inv_restore(fv_trainer *t);

#endif
