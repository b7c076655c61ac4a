/* cuda_net.h: the GPU twin of a net.h model, for local training on a CUDA device. C API (usable
 * from C11 and C++).
 *
 * An fv_cuda_net mirrors a finished fv_net node for node (the host graph is the model's one
 * definition) and holds on the device, for its whole life: the parameter vector (trainable then
 * buffers, net.h's layout), the gradients, the optimizer state (optim.h's layout), activations
 * and their gradients for up to max_batch samples, and scratch. A training epoch runs entirely on
 * the device: data staged once per client shard (uint8 images, normalised on the device), the
 * epoch's order drawn on the host from the caller's fv_rng exactly as fv_train_epoch draws it (so
 * CPU and GPU runs see the same batches), every full batch one replay of a CUDA graph that holds
 * gather + forward + loss + backward + FedProx term + optimizer step (captured after the first
 * full batch, which runs uncaptured, of the first epoch that needs it), and the last partial
 * batch run uncaptured. Only the parameter vector crosses back to the host
 * (fv_cuda_net_get_params), once per round in federated use.
 *
 * Federated workers: create one net per worker process (several processes may share one GPU;
 * each holds only its own model's buffers) and reuse it for every virtual client:
 *   cn = fv_cuda_net_new(net, dev, batch, &e);          once
 *   fv_cuda_net_set_opt(cn, &ocfg);                      once
 *   sh = fv_cuda_shard_new(cn);                          once
 *   per task: fv_cuda_net_set_params(cn, global);
 *             fv_cuda_net_opt_reset(cn) or fv_cuda_net_set_opt_state(cn, st, t);
 *             fv_cuda_net_seed_dropout(cn, seed);
 *             fv_cuda_shard_load(sh, d, idx, n, &e);  (grows its buffer only for a bigger shard)
 *             for each local epoch: fv_cuda_train_epoch(cn, sh, B, norm, &rng, mu, ref, corr, cb, ctx);
 *             fv_cuda_net_get_params(cn, update);      the one download per round
 * Buffers are reused across clients and the captured graph stays valid as long as the batch size,
 * the optimizer configuration, the FedProx setting and the shard's device buffer stay the same.
 *
 * Numerics: float32 everywhere (no TF32 unless fv_cuda_net_set_tf32 opts in: cuDNN and every
 * cuBLAS GEMM, the ViT's attention products included), the same formulas as the CPU kernels;
 * convolutions through cuDNN where available (deterministic algorithms only); results differ
 * from the CPU's by rounding (other summation orders), not in algorithm. Dropout masks come from a
 * counter-based generator (cuda_layers.h): same distribution as the CPU's, other masks.
 * Every op of net.h runs here, the transformer token ops (the ViT: layer norm, GELU, tokens,
 * token-wise linear, attention, token selection; transformer.cu) included.
 * Errors: "no device" and "out of device memory" at creation, and "out of device memory" at
 * staging, are ordinary errors (NULL / -1 with e set); CUDA failures after that abort with
 * file:line, like allocation failures.
 * In a build without CUDA (cuda_none.c) every constructor fails with "this build has no CUDA
 * backend".
 * Input gradients (d loss / d input images, for gradient-inversion attacks): fv_cuda_net_input_grad,
 * outside the training step (its captured graph computes none). Pixel-loss training and inference
 * on host floats (image-to-image models): fv_cuda_net_train_pixel, fv_cuda_net_forward;
 * distillation steps on host floats: fv_cuda_net_train_kd. Second-order passes for gradient
 * inversion (attacks/invert.h's engine): fv_cuda_net_inv_*, below.
 * Not here: the kernels (cuda_layers.h), per-example statistics, multi-GPU data parallelism.
 */
#ifndef FV_CUDA_NET_H
#define FV_CUDA_NET_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "data/data.h"
#include "fv_common.h"
#include "nn/loss_pixel.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "rng.h"
#include "nn/train.h"

/* Parse a --device value: "cpu" gives -1, "cuda" gives 0, "cuda:N" gives N (0 <= N < 1024).
 * Syntax only (whether the device exists is fv_cuda_net_new's business). Returns 0, or -1 with e
 * naming the value and the accepted forms. Available in every build (cuda_device.c). */
FV_MUST_USE int fv_device_parse(const char *s, int *device, fv_err *e);

/* Whether device (fv_device_parse's number) can be used here, checked before any work: the CPU
 * (-1) always; a CUDA device only in a build with the backend and when this machine has it.
 * Returns 0, or -1 with e saying which is missing (the CUDA runtime is asked once). The exact
 * failures (memory, initialisation) still come from fv_cuda_net_new. Every build. */
FV_MUST_USE int fv_device_check(int device, fv_err *e);

/* The --device spelling of a device number into buf[cap] (16 bytes suffice): "cpu" for -1 (any
 * negative), "cuda:N" for N >= 0; fv_device_parse reads it back. Returns buf. Every build. */
const char *fv_device_name(int device, char *buf, size_t cap);

/* The most devices one --device list names. */
#define FV_MAX_DEVICES 64

/* Parse a device list for a launcher that places many workers: "cpu", "cuda", "cuda:N" or
 * "cuda:N,M,..." (distinct device numbers, at most max of them). Fills devs[0..*n) (-1 for cpu,
 * *n = 1) so worker i trains on devs[i % *n]. Returns 0, or -1 with e naming the value and what is
 * wrong (syntax, a repeated device, too many). Available in every build (cuda_device.c). */
FV_MUST_USE int fv_device_list_parse(const char *s, int *devs, int max, int *n, fv_err *e);

/* 1 in a build with the CUDA backend, 0 otherwise. */
int fv_cuda_built(void);
/* Usable CUDA devices: 0 without the backend, a driver or a GPU, or when the runtime fails. Never
 * aborts: this is how tests decide to skip (exit 77). */
int fv_cuda_device_count(void);

typedef struct fv_cuda_net fv_cuda_net;
typedef struct fv_cuda_shard fv_cuda_shard;

/* A device twin of the finished model `host` on CUDA device `device`, for batches of at most
 * max_batch samples, with host's current parameters uploaded and its dropout stream's next value
 * as the dropout seed (host is not modified and may be destroyed afterwards). No optimizer yet
 * (fv_cuda_net_set_opt). Returns NULL with e set when there is no such device, the device cannot
 * be initialised, or its memory is short (the message gives the size and what is free). */
FV_MUST_USE fv_cuda_net *fv_cuda_net_new(const fv_net *host, int device, int max_batch, fv_err *e);
/* Free everything (device and host) and set *cn to NULL. Accepts NULL and *cn == NULL. */
void fv_cuda_net_destroy(fv_cuda_net **cn);
/* The device, e.g. "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)". */
void fv_cuda_net_describe(const fv_cuda_net *cn, char *buf, size_t cap);

/* Parameter vector params[n_params] (net.h's layout: trainable then buffers) to / from the
 * device. Blocking; get waits for the training enqueued before it. */
void fv_cuda_net_set_params(fv_cuda_net *cn, const float *params);
void fv_cuda_net_get_params(fv_cuda_net *cn, float *params);
/* Seed the device dropout generator (resets its counter). */
void fv_cuda_net_seed_dropout(fv_cuda_net *cn, uint64_t seed);

/* Configure the device optimizer for the trainable parameters (optim.h's semantics; aborts on a
 * configuration fv_opt_cfg_check rejects, like fv_opt_new) with zero state and step count. */
void fv_cuda_net_set_opt(fv_cuda_net *cn, const fv_opt_cfg *cfg);
/* Zero the optimizer state and step count (fv_opt_reset). */
void fv_cuda_net_opt_reset(fv_cuda_net *cn);
/* Floats of optimizer state (fv_opt_state_len of the configuration; 0 before set_opt). */
size_t fv_cuda_net_opt_state_len(const fv_cuda_net *cn);
/* The state vector in optim.h's layout (fv_cuda_net_opt_state_len floats) and the step count, to
 * and from the host: a vector from fv_opt_state moves here unchanged and back. */
void fv_cuda_net_get_opt_state(fv_cuda_net *cn, float *state, int64_t *steps);
void fv_cuda_net_set_opt_state(fv_cuda_net *cn, const float *state, int64_t steps);

/* How convolutions run: "cudnn" (the default in a build with cuDNN, when it initialises) or
 * "im2col" (cuBLAS SGEMM over im2col columns; always available, and used for depthwise convs and
 * for shapes cuDNN has no deterministic FP32 algorithm for). The environment variable
 * FEDVIM_CUDA_CONV (cudnn or im2col), read by fv_cuda_net_new, sets the default, for benchmarks.
 * Returns 0, or -1 with e set (unknown name; cuDNN requested but unavailable). */
FV_MUST_USE int fv_cuda_net_set_conv(fv_cuda_net *cn, const char *impl, fv_err *e);
/* "cudnn" or "im2col". */
const char *fv_cuda_net_conv(const fv_cuda_net *cn);

/* Use CUDA graphs for full batches (default on). Off runs every step uncaptured: for tests that
 * check that graph replay gives the same bits, and for profiling. */
void fv_cuda_net_set_graphs(fv_cuda_net *cn, int on);

/* TF32 tensor cores for this net's FP32 GEMMs and convolutions: off by default (full FP32); on is
 * an explicit opt-in (fedvim's --tf32, [training] tf32) that trades about 1e-3 relative error per
 * product for tensor-core speed on Ampere and later (fv_cuda_ctx_set_tf32). Drops the cuDNN plans
 * and the captured graph, so it may be called between tasks; info.conv names the math. */
void fv_cuda_net_set_tf32(fv_cuda_net *cn, int on);
int fv_cuda_net_tf32(const fv_cuda_net *cn);

/* Fusion of each batch norm or residual add with the ReLU that is its only consumer
 * (fv_net_fusable_relu: ResNet-20 has 19 such pairs, MobileNet's blocks and the CNNs with batch
 * norm theirs): in training steps the pair runs as one kernel forward (the ReLU's output written
 * directly, the batch norm's or add's own never) and one backward (the ReLU's gradient read
 * through its output's sign inside the batch norm's reductions or the add's copy), which saves a
 * launch and two passes over the activation each way. Designed to give the same bits as the ops
 * apart (layers.h); gradient-inversion passes, evaluation and inference never fuse. Off by
 * default until measured on a GPU (docs/cuda.md, "Fusion"); the environment variable
 * FEDVIM_CUDA_FUSE (0 or 1), read by fv_cuda_net_new, sets the default, for benchmarks (another
 * value fails the creation). The setting is part of the captured graph's key. Returns the number
 * of ReLUs fused from now on (0 when off). */
int fv_cuda_net_set_fuse(fv_cuda_net *cn, int on);
int fv_cuda_net_fuse(const fv_cuda_net *cn);

/* Start (on != 0) or stop timing each node of the training steps (fv_cuda_net_train_epoch), the
 * GPU twin of net.h's fv_net_profile: while on, every step runs uncaptured (no graph replay) with
 * a CUDA event at each node boundary and waits for itself, and fv_cuda_net_profile_times returns
 * 2 * n_nodes seconds in fv_net_profile's layout: [i] node i's forward, [n_nodes + i] its backward,
 * [n_nodes] the zeroing of the gradient buffers. They are GPU times between events, so a node's
 * time includes any gap in which the GPU waited for the host to launch its kernels (the launch
 * overhead that graph replay removes). Switching on zeroes the times; off frees them (returns
 * NULL then). */
void fv_cuda_net_profile(fv_cuda_net *cn, int on);
const double *fv_cuda_net_profile_times(const fv_cuda_net *cn);

typedef struct {
    char conv[96];       /* how convolutions run, e.g. "cuDNN 9.14.0 (FP32, deterministic
                            algorithms)" or "cuBLAS SGEMM + im2col (FP32)", and with fusion on
                            how many ReLUs are fused ("...; 19 ReLUs fused)") */
    long conv_fallbacks; /* conv shapes cuDNN had no algorithm for (they ran on im2col) */
    long graph_steps;    /* training steps run as graph replays */
    long eager_steps;    /* training steps run uncaptured (partial batches, the batch before a
                            capture, graphs off) */
    long captures;       /* graphs captured (a new one when the batch, optimizer, FedProx setting
                            or shard buffer changed) */
    size_t device_bytes; /* device memory this net holds (excluding shards) */
    int relu_fused;      /* ReLUs run inside their batch norm's or add's kernels (0: fusion off) */
} fv_cuda_net_info;
fv_cuda_net_info fv_cuda_net_info_get(const fv_cuda_net *cn);

/* A training or evaluation set staged on cn's device: uint8 images and labels. Bound to cn (use
 * it only with cn; destroy it before cn). Caller owns. */
fv_cuda_shard *fv_cuda_shard_new(fv_cuda_net *cn);
void fv_cuda_shard_destroy(fv_cuda_shard **s);
/* Stage images idx[0..n) of d (idx NULL: all of d, n ignored), in that order, replacing what the
 * shard held. The device buffer grows when needed and is otherwise reused. d's images must have
 * cn's input shape and labels below the model's outputs. Returns 0, or -1 with e set (shape
 * mismatch, device memory short). Blocking. */
FV_MUST_USE int fv_cuda_shard_load(fv_cuda_shard *s, const fv_dataset *d, const int *idx, int n, fv_err *e);
int fv_cuda_shard_size(const fv_cuda_shard *s);

/* One epoch over the staged shard: its n images in the order fv_rng_shuffle_int(rng) gives a
 * shard-local 0..n-1 (the draws fv_train_epoch makes for n images, so the same rng state gives
 * the same batches on both), in batches of `batch` <= max_batch (the last may be smaller),
 * normalised with norm on the device. prox_mu > 0 with prox_ref (n_train host floats) adds
 * FedProx's mu (w - ref) to the gradients; corr (n_train host floats, may be NULL) is then added
 * to them (SCAFFOLD's c - c_i, fl/scaffold.h; copied to the device once per call). progress (may
 * be NULL) is called at most about four times a second (each call waits for the device) and once
 * at the end. Needs an optimizer (fv_cuda_net_set_opt). Returns fv_train_epoch's statistics;
 * blocks until the epoch is done. */
fv_epoch_stats fv_cuda_train_epoch(fv_cuda_net *cn, const fv_cuda_shard *s, int batch, fv_norm norm,
                                   fv_rng *rng, float prox_mu, const float *prox_ref, const float *corr,
                                   fv_progress_fn progress, void *ctx);

/* Evaluate on the whole shard in eval mode (running statistics, no dropout), in shard order, in
 * batches of min(batch, max_batch). Blocking. */
fv_eval_stats fv_cuda_evaluate(fv_cuda_net *cn, const fv_cuda_shard *s, int batch, fv_norm norm);

/* One training-mode forward and backward of host inputs x[n, input] (already normalised floats)
 * with labels[n] in [0, outputs), n <= max_batch, without an optimizer step (batch-norm running
 * statistics are updated, as fv_net_forward does). Outputs (each may be NULL): *loss the mean
 * loss, logits[n, outputs], grads[n_train]. For tests and tools that compare with the CPU
 * (fv_net_forward, fv_softmax_xent, fv_net_backward). Blocking. */
void fv_cuda_net_grad(fv_cuda_net *cn, const float *x, const int *labels, int n, float *loss,
                      float *logits, float *grads);

/* fv_cuda_net_grad's step (the same training-mode forward: batch statistics, batch-norm running
 * statistics updated, dropout drawn from the device generator, whose counter advances as after a
 * training step; no optimizer step), with the gradient of the mean loss with respect to the
 * inputs as well: dx[n, input] (host, not NULL) = d loss / d x, for x[n, input] (already
 * normalised floats) and labels[n] in [0, outputs), 1 <= n <= max_batch (aborts otherwise, like
 * fv_cuda_net_grad). *loss (may be NULL) the mean loss, grads (may be NULL) d loss / d params
 * [n_train]. The semantics of the CPU's fv_net_forward(train 1) + fv_softmax_xent +
 * fv_net_backward with want_input_grad set; the values differ from it by rounding only. Leaves
 * the training state (optimizer, captured graph) untouched. Blocking. */
void fv_cuda_net_input_grad(fv_cuda_net *cn, const float *x, const int *labels, int n, float *dx,
                            float *loss, float *grads);

/* One training step of a dense-output model (an image-to-image net, attacks/inverter.h) on host
 * floats: upload x[n, input] and target[n, outputs] (1 <= n <= max_batch, aborts otherwise),
 * training-mode forward, the pixel loss of the output against target (fv_cuda_pixel_loss: kind
 * MSE or L1, the mean over n * outputs values), backward, optimizer step (needs
 * fv_cuda_net_set_opt), dropout counter advanced as after a training step; *loss (may be NULL)
 * the loss. Uncaptured; leaves the captured classification step untouched. The semantics of the
 * CPU's fv_net_forward(train 1) + fv_pixel_loss + fv_net_backward + fv_opt_step; the values
 * differ by rounding only. Blocking (reads the loss back). */
void fv_cuda_net_train_pixel(fv_cuda_net *cn, const float *x, const float *target, int n,
                             fv_pixel_loss_kind kind, float *loss);

/* One knowledge-distillation step on host floats: upload x[n, input], teacher[n, outputs] (the
 * teacher's logits) and labels[n] in [0, outputs) (1 <= n <= max_batch; aborts otherwise),
 * training-mode forward, Hinton's loss (fv_cuda_kd_loss: temperature T > 0, soft weight alpha in
 * [0, 1], each row in double as nn/loss_soft.h's fv_kd_loss, the rows summed serially in row
 * order), backward, optimizer step (needs fv_cuda_net_set_opt), dropout counter advanced as after
 * a training step. *loss (may be NULL) the batch mean loss, *correct (may be NULL) the rows whose
 * largest logit is at the label. Uncaptured; leaves the captured classification step untouched.
 * The semantics of the CPU's fv_net_forward(train 1) + fv_kd_loss + fv_net_backward + fv_opt_step;
 * the values differ by rounding only. Blocking (reads the loss back). */
void fv_cuda_net_train_kd(fv_cuda_net *cn, const float *x, const float *teacher, const int *labels, int n,
                          float T, float alpha, float *loss, int *correct);

/* Inference on host floats: y[n, outputs] (host) = the model on x[n, input] in eval mode (running
 * statistics, no dropout), 1 <= n <= max_batch. Blocking. */
void fv_cuda_net_forward(fv_cuda_net *cn, const float *x, int n, float *y);

/* ---- Gradient-inversion passes: the CUDA side of nn/trainer.h's fv_trainer_inv_* (same
 * contracts, a NULL base in inv_point included; the trainer's front checks the arguments). Open
 * once per net: it allocates the
 * images, the point, a ReLU mask per ReLU node and the kinks' slots on the device (an "out of
 * device memory" error is returned). A pass sets the parameters on the device (base + h dir in
 * one kernel, theta0's buffers copied), copies its images into the input, runs forward (ReLU masks
 * recorded or replayed, max pooling through recorded argmaxes on REPLAY) and, unless neither
 * gradient is wanted, loss and backward (want_x without want_th: no weight gradients for convs
 * and linears), then downloads what was asked into host buffers it owns: *gth (n_train floats)
 * and *gx (cnt * input floats), valid until the next pass or bn_backward; *loss the mean loss.
 * bn_stats reduces each batch-norm layer's input of the last forward per channel in double on
 * the device; bn_backward adds the prior's terms at those inputs during an input-only backward
 * with zero loss gradient. Uncaptured; training, evaluation and their graph are untouched. */
FV_MUST_USE int fv_cuda_net_inv_open(fv_cuda_net *cn, const float *theta0, int n, int slots, int slot_batch,
                                     fv_err *e);
void fv_cuda_net_inv_images(fv_cuda_net *cn, const float *x, const int *labels);
void fv_cuda_net_inv_point(fv_cuda_net *cn, const float *base, const float *dir);
void fv_cuda_net_inv_pass(fv_cuda_net *cn, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                          double *loss, const float **gth, const float **gx);
void fv_cuda_net_inv_kinks_save(fv_cuda_net *cn, int slot);
void fv_cuda_net_inv_kinks_load(fv_cuda_net *cn, int slot, int cnt);
void fv_cuda_net_inv_bn_stats(fv_cuda_net *cn, double *stats);
const float *fv_cuda_net_inv_bn_backward(fv_cuda_net *cn, const double *coef);

#ifdef __cplusplus
}
#endif
#endif
