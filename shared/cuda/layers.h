/* cuda_layers.h: the CUDA twins of layers.h's kernels (and of optim.h's updates), forward and
 * backward, over raw DEVICE pointers. Same contracts as the CPU kernels: outputs first, inputs
 * next, sizes last; activations NCHW; every backward ACCUMULATES (+=) into dinp and into the
 * parameter gradients (the caller zeroes them), a NULL dinp skips the input gradient and a NULL
 * db skips the bias. One .cu per op family, beside its CPU twin: conv2d.cu, linear.cu, pool.cu,
 * activations.cu, batchnorm.cu, dropout.cu, upsample.cu, transformer.cu (the ViT's token ops),
 * loss.cu (cross-entropy and the pixel losses), optim.cu, data.cu.
 *
 * Execution: every call enqueues work on the stream of its fv_cuda_ctx and returns at once; the
 * pointers must stay valid until the stream reaches the work (fv_cuda_ctx_sync). Calls contain no
 * allocation, no host synchronisation and no host-side dependence on device values, so a whole
 * training step of them can be captured in a CUDA graph. The caller keeps the ctx's device
 * current (cudaSetDevice) while calling; fv_cuda_net does.
 * Determinism: no kernel uses atomics; every sum has a fixed order (gathers instead of scatters in
 * the backward passes), so results are bitwise reproducible on one GPU model and driver. They are
 * not bitwise equal to the CPU's (other summation orders, fused multiply-adds, device libm):
 * tests/test_cuda_layers.c states the tolerances.
 * Failures: CUDA and cuBLAS errors are not user errors; they abort with file:line (fv_common.h).
 * Only fv_cuda_ctx_new reports "no device" as an ordinary error.
 * Not here: the graph that strings the kernels together (cuda_net.h), the CPU kernels (layers.h).
 */
#ifndef FV_CUDA_LAYERS_H
#define FV_CUDA_LAYERS_H
#include <stddef.h>
#include <stdint.h>

/* The project's C headers have no C++ guards of their own; nvcc compiles .cu files as C++. */
#ifdef __cplusplus
extern "C" {
#endif
#include "fv_common.h"
#include "nn/layers.h"
#include "nn/loss_pixel.h"
#include "nn/optim.h"

/* ---- context and memory ---- */

/* A device, one stream on it and a cuBLAS handle bound to that stream with its own workspace
 * (so cuBLAS never allocates while a graph is being captured). Opaque. */
typedef struct fv_cuda_ctx fv_cuda_ctx;

/* A context on device `device` (0-based). Asks the driver to block (not spin) in synchronising
 * calls, so that many worker processes sharing one GPU do not each burn a CPU core while they
 * wait. Returns NULL with e set when the device does not exist or cannot be initialised (no
 * driver, out of memory). Caller owns; free with fv_cuda_ctx_destroy. */
FV_MUST_USE fv_cuda_ctx *fv_cuda_ctx_new(int device, fv_err *e);
/* Synchronise, free and set *x to NULL. Accepts NULL and *x == NULL. */
void fv_cuda_ctx_destroy(fv_cuda_ctx **x);
/* Allow (on != 0) or forbid (0, the default) TF32 tensor cores for the ctx's FP32 work: cuBLAS
 * SGEMMs (CUBLAS_TF32_TENSOR_OP_MATH) and cuDNN convolution plans made afterwards (their math type
 * and the algorithms they may pick). TF32 rounds the multiplied inputs to 10 mantissa bits, so
 * results differ from FP32 by about 1e-3 relative; Volta and older GPUs ignore it. */
void fv_cuda_ctx_set_tf32(fv_cuda_ctx *x, int on);
int fv_cuda_ctx_tf32(const fv_cuda_ctx *x);
int fv_cuda_ctx_device(const fv_cuda_ctx *x);
/* Wait until the ctx's stream has finished all work enqueued so far. */
void fv_cuda_ctx_sync(const fv_cuda_ctx *x);
/* Device name and memory in a short line, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)". */
void fv_cuda_ctx_describe(const fv_cuda_ctx *x, char *buf, size_t cap);

/* Device memory on the ctx's device; aborts when out of memory (see fv_cuda_try_alloc). */
void *fv_cuda_alloc(const fv_cuda_ctx *x, size_t bytes);
/* As fv_cuda_alloc, but returns NULL with e set (naming `what` and the size) when out of memory. */
FV_MUST_USE void *fv_cuda_try_alloc(const fv_cuda_ctx *x, size_t bytes, const char *what, fv_err *e);
/* Free device memory of ctx x (accepts p NULL). Synchronises x's stream first, so memory that
 * work enqueued on x still reads may be freed. Not the whole device: another thread's ctx on the
 * same device may be capturing a CUDA graph (a worker's slots, [fl] worker_slots), and
 * synchronising a device with a stream in capture is invalid. */
void fv_cuda_free(const fv_cuda_ctx *x, void *p);
/* Blocking copies between host and device, ordered after the ctx's earlier work. */
void fv_cuda_upload(const fv_cuda_ctx *x, void *dst_dev, const void *src_host, size_t bytes);
void fv_cuda_download(const fv_cuda_ctx *x, void *dst_host, const void *src_dev, size_t bytes);
/* Asynchronous (enqueued) memset and device-to-device copy. */
void fv_cuda_memset(const fv_cuda_ctx *x, void *dst_dev, int byte, size_t bytes);
void fv_cuda_copy(const fv_cuda_ctx *x, void *dst_dev, const void *src_dev, size_t bytes);

/* ---- conv2d (conv2d.cu): same shapes as fv_conv2d_forward ----
 * General path: im2col of a chunk of images into col[C*R*R x nb*OH*OW], one cuBLAS SGEMM per
 * group into [K x nb*OH*OW], and a transpose (+ bias) into NCHW. Backward: dout of the chunk
 * transposed to [K x nb*OH*OW], dw_g += dout_g col_g^T (beta 1: chunks accumulate in order),
 * dcol_g = w_g^T dout_g and col2im as a gather into dinp. Depthwise convs (groups == C == K) use
 * direct kernels. */
/* Floats of device scratch the conv wants for this shape: the whole batch in one chunk when that
 * fits 128 MiB, else as many images as fit (at least one); non-decreasing in N; 0 for depthwise
 * convs. */
size_t fv_cuda_conv2d_scratch_floats(const fv_conv2d_shape *s);
/* out[N,K,OH,OW] = conv(inp[N,C,H,W], w[K,C/g,R,R]) + b[K] (b may be NULL). scratch holds
 * scratch_floats floats, at least one image's worth (fv_cuda_conv2d_scratch_floats of the shape
 * with N = 1; unused by depthwise convs): the batch runs in chunks of as many images as fit. */
void fv_cuda_conv2d_forward(const fv_cuda_ctx *x, float *out, const float *inp, const float *w,
                            const float *b, float *scratch, size_t scratch_floats,
                            const fv_conv2d_shape *s);
/* dinp[N,C,H,W] += ..., dw[K,C/g,R,R] += ..., db[K] += ... from dout[N,K,OH,OW]; each of dinp,
 * dw, db may be NULL (not computed). */
void fv_cuda_conv2d_backward(const fv_cuda_ctx *x, float *dinp, float *dw, float *db,
                             const float *dout, const float *inp, const float *w, float *scratch,
                             size_t scratch_floats, const fv_conv2d_shape *s);

/* db[K] += sum over n, p of g[N, K, P] (a conv's bias gradient; one block per channel). */
void fv_cuda_channel_sum_add(const fv_cuda_ctx *x, float *db, const float *g, int N, int K,
                             size_t P);

/* ---- conv2d through cuDNN (cudnn_conv.cu) ----
 * A plan for one shape, batch size included: cuDNN descriptors (NCHW float, groups, cross-
 * correlation, FP32 FMA math: no TF32) and, from cuDNN's heuristics, the first DETERMINISTIC
 * algorithm for forward, backward-data and backward-filter whose workspace fits ws_limit bytes.
 * Same contract as fv_cuda_conv2d_*: backward accumulates (beta 1) into dinp, dw and db. */
typedef struct fv_cudnn_conv fv_cudnn_conv;
/* 1 when x can run cuDNN; else 0 and why (a build without cuDNN, or cudnnCreate failed). */
int fv_cudnn_available(const fv_cuda_ctx *x, char *why, size_t cap);
/* cuDNN's version as "9.14.0" (the library loaded at run time). */
void fv_cudnn_version(char *buf, size_t cap);
/* A plan for shape s, or NULL with e set (cuDNN unavailable, or no deterministic algorithm within
 * ws_limit). Caller owns; fv_cudnn_conv_destroy accepts NULL and clears the pointer. */
FV_MUST_USE fv_cudnn_conv *fv_cudnn_conv_new(const fv_cuda_ctx *x, const fv_conv2d_shape *s, size_t ws_limit,
                                 fv_err *e);
void fv_cudnn_conv_destroy(fv_cudnn_conv **c);
/* Workspace bytes the plan's algorithms need (<= ws_limit). */
size_t fv_cudnn_conv_workspace(const fv_cudnn_conv *c);
/* out[N,K,OH,OW] = conv(inp, w) + b (b may be NULL); ws holds fv_cudnn_conv_workspace bytes. */
void fv_cudnn_conv_forward(const fv_cuda_ctx *x, const fv_cudnn_conv *c, float *out,
                           const float *inp, const float *w, const float *b, void *ws);
/* dinp +=, dw +=, db += from dout; each may be NULL (not computed). */
void fv_cudnn_conv_backward(const fv_cuda_ctx *x, const fv_cudnn_conv *c, float *dinp, float *dw,
                            float *db, const float *dout, const float *inp, const float *w,
                            void *ws);

/* ---- linear (linear.cu): out[N,Out] = inp[N,In] w[Out,In]^T + b[Out] ---- */
void fv_cuda_linear_forward(const fv_cuda_ctx *x, float *out, const float *inp, const float *w,
                            const float *b, int N, int In, int Out);
/* dinp +=, dw +=, db += from dout; each may be NULL (not computed). */
void fv_cuda_linear_backward(const fv_cuda_ctx *x, float *dinp, float *dw, float *db,
                             const float *dout, const float *inp, const float *w, int N, int In,
                             int Out);

/* ---- pooling (pool.cu): layers.h's rules (padding never wins the max, a window all in the
 * padding gives 0 and argmax -1, ties to the first maximum, NaN wins; average counts the
 * padding). Backward passes gather per input element, in increasing output order. ---- */
void fv_cuda_maxpool_forward(const fv_cuda_ctx *x, float *out, int32_t *argmax, const float *inp,
                             int N, int C, int H, int W, int k, int stride, int pad);
/* A REPLAY forward: out = inp at the recorded argmax (-1 gives 0). */
void fv_cuda_maxpool_forward_replay(const fv_cuda_ctx *x, float *out, const int32_t *argmax, const float *inp,
                                    int N, int C, int H, int W, int k, int stride, int pad);
void fv_cuda_maxpool_backward(const fv_cuda_ctx *x, float *dinp, const float *dout,
                              const int32_t *argmax, int N, int C, int H, int W, int k, int stride,
                              int pad);
void fv_cuda_avgpool_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int C,
                             int H, int W, int k, int stride, int pad);
void fv_cuda_avgpool_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N, int C,
                              int H, int W, int k, int stride, int pad);
/* out[N,C] = mean over HW of inp[N,C,HW]. */
void fv_cuda_gap_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int C, int HW);
void fv_cuda_gap_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N, int C,
                          int HW);

/* ---- element-wise (activations.cu) over n floats; backward uses the forward OUTPUT ---- */
void fv_cuda_relu_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n);
/* Kinks (net.h, fv_kinks): RECORD writes mask[n] = out > 0 as well; REPLAY applies a recorded
 * mask to inp; the backward of a REPLAY forward: dinp += mask ? dout : 0 (dinp may be NULL). */
void fv_cuda_relu_forward_record(const fv_cuda_ctx *x, float *out, uint8_t *mask, const float *inp, size_t n);
void fv_cuda_relu_forward_replay(const fv_cuda_ctx *x, float *out, const uint8_t *mask, const float *inp,
                                 size_t n);
void fv_cuda_relu_backward_mask(const fv_cuda_ctx *x, float *dinp, const float *dout, const uint8_t *mask,
                                size_t n);
void fv_cuda_relu_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, const float *out,
                           size_t n);
void fv_cuda_sigmoid_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n);
void fv_cuda_sigmoid_backward(const fv_cuda_ctx *x, float *dinp, const float *dout,
                              const float *out, size_t n);
void fv_cuda_tanh_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n);
void fv_cuda_tanh_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, const float *out,
                           size_t n);
/* out = a + b. */
void fv_cuda_add_forward(const fv_cuda_ctx *x, float *out, const float *a, const float *b,
                         size_t n);
/* da += g, then db += g (each may be NULL; da == db adds twice, like two accumulations). */
void fv_cuda_add_backward(const fv_cuda_ctx *x, float *da, float *db, const float *g, size_t n);
/* The add and the ReLU that is its only consumer in one kernel each way (net.cu's fusion):
 * out = max(a + b, 0); backward da += v, then db += v (each may be NULL, da == db adds twice), v
 * = out > 0 ? dout : 0, with dout and out the ReLU's. The same bits as the two ops apart. */
void fv_cuda_add_relu_forward(const fv_cuda_ctx *x, float *out, const float *a, const float *b, size_t n);
void fv_cuda_add_relu_backward(const fv_cuda_ctx *x, float *da, float *db, const float *dout, const float *out,
                               size_t n);

/* ---- batch norm (batchnorm.cu) over N x C x HW, layers.h's semantics ----
 * Channel sums are split over several blocks per channel (partials combined in double, in a fixed
 * order) so a layer with few channels still fills the GPU; both passes of the two-pass variance
 * read the same partials. mean[C], invstd[C] are device buffers saved for backward. */
size_t fv_cuda_batchnorm_scratch_floats(int N, int C, int HW);
void fv_cuda_batchnorm_forward_train(const fv_cuda_ctx *x, float *out, float *mean, float *invstd,
                                     float *run_mean, float *run_var, const float *inp,
                                     const float *gamma, const float *beta, float *scratch, int N,
                                     int C, int HW, float momentum, float eps);
/* Gradient inversion (net.h, fv_cuda_net_inv_*): stats[2C] (device doubles) = per channel the
 * mean and biased variance of inp[N, C, HW], in double; dh[N, C, HW] += coef[3c] + coef[3c + 1]
 * (h - coef[3c + 2]) (device doubles, rounded once to float), the batch-norm prior's gradient. */
void fv_cuda_bn_channel_stats(const fv_cuda_ctx *x, double *stats, const float *inp, int N, int C, int HW);
void fv_cuda_bn_prior_add(const fv_cuda_ctx *x, float *dh, const float *h, const double *coef, int N, int C,
                          int HW);
void fv_cuda_batchnorm_forward_eval(const fv_cuda_ctx *x, float *out, const float *inp,
                                    const float *gamma, const float *beta, const float *run_mean,
                                    const float *run_var, int N, int C, int HW, float eps);
/* dgamma and dbeta += (dbeta may be NULL); dinp += (may be NULL). */
void fv_cuda_batchnorm_backward(const fv_cuda_ctx *x, float *dinp, float *dgamma, float *dbeta,
                                const float *dout, const float *inp, const float *mean,
                                const float *invstd, const float *gamma, float *scratch, int N,
                                int C, int HW);
/* Batch norm and the ReLU that is its only consumer (net.cu's fusion), the same bits as the two
 * ops apart. forward_train_relu: as forward_train, but out = max(bn(inp), 0) (the ReLU's output;
 * the batch norm's own output is never written). backward_relu: as backward, with dout and out
 * the ReLU's output gradient and output; the batch norm's output gradient is out > 0 ? dout : 0. */
void fv_cuda_batchnorm_forward_train_relu(const fv_cuda_ctx *x, float *out, float *mean, float *invstd,
                                          float *run_mean, float *run_var, const float *inp,
                                          const float *gamma, const float *beta, float *scratch, int N,
                                          int C, int HW, float momentum, float eps);
void fv_cuda_batchnorm_backward_relu(const fv_cuda_ctx *x, float *dinp, float *dgamma, float *dbeta,
                                     const float *dout, const float *out, const float *inp, const float *mean,
                                     const float *invstd, const float *gamma, float *scratch, int N,
                                     int C, int HW);

/* ---- transformer token ops (transformer.cu): layers.h's semantics over [N, T, D] tokens ----
 * Same arguments as the CPU twins after the ctx; every backward accumulates, a NULL dinp / dqkv
 * skips the input gradient (the parameter gradients are always written, as on the CPU). */
/* Layer norm over the D features of each of R rows; mean[R] and rstd[R] (device) saved for
 * backward. One warp per row: any D, any R. */
void fv_cuda_layernorm_forward(const fv_cuda_ctx *x, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int R, int D,
                               float eps);
/* dinp[R, D] += (may be NULL), dw[D] +=, db[D] += (neither NULL) from dout and the saved
 * statistics. */
void fv_cuda_layernorm_backward(const fv_cuda_ctx *x, float *dinp, float *dw, float *db,
                                const float *dout, const float *inp, const float *mean,
                                const float *rstd, const float *w, int R, int D);
/* Exact (erf) GELU over n floats; backward takes the forward INPUT (unlike activations.cu). */
void fv_cuda_gelu_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n);
void fv_cuda_gelu_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, const float *inp,
                           size_t n);
/* Patch tokens inp[N, D, P] to out[N, P + 1, D] with the class token cls[D] first and pos[P + 1, D]
 * added. Backward: dinp (may be NULL), dcls[D] and dpos[P + 1, D] accumulate, the latter two in
 * transformer.c's order (bitwise the CPU's). */
void fv_cuda_tokens_forward(const fv_cuda_ctx *x, float *out, const float *inp, const float *cls,
                            const float *pos, int N, int D, int P);
void fv_cuda_tokens_backward(const fv_cuda_ctx *x, float *dinp, float *dcls, float *dpos,
                             const float *dout, int N, int D, int P);
/* out[N, D] = inp[N, T, D] at token t; backward dinp (may be NULL) += at token t. */
void fv_cuda_token_select_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int T,
                                  int D, int t);
void fv_cuda_token_select_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N,
                                   int T, int D, int t);
/* Multi-head self-attention on qkv[N, T, 3D] (fv_attention_forward's column layout): out[N, T, D],
 * att[N, H, T, T] (device) the softmax probabilities saved for backward. cuBLAS strided-batched
 * SGEMMs (one call per head over the N samples) in the ctx's math mode (TF32 when opted in). */
void fv_cuda_attention_forward(const fv_cuda_ctx *x, float *out, float *att, const float *qkv,
                               int N, int T, int D, int H);
/* dqkv[N, T, 3D] += from dout[N, T, D], qkv and att; scratch holds N * H * T * T floats (the
 * softmax gradients). */
void fv_cuda_attention_backward(const fv_cuda_ctx *x, float *dqkv, const float *dout,
                                const float *qkv, const float *att, float *scratch, int N, int T,
                                int D, int H);
/* db[C] += sum over r of g[R, C], rows in a fixed order (the token-wise linear layer's bias
 * gradient over N*T rows: 32 columns per block, 32 threads per column; linear.cu's one thread per
 * column would run N*T serial additions). */
void fv_cuda_col_sum_add(const fv_cuda_ctx *x, float *db, const float *g, size_t R, int C);

/* ---- inverted dropout (dropout.cu) with drop probability p in [0, 1) ----
 * The mask is counter-based: key[0] is a seed and key[1] a step counter, both in DEVICE memory
 * (read by the kernel, so a captured step follows reseeding and the caller advances the counter
 * between steps); salt tells apart the layers of one step. Element i is kept when
 * u(key[0], key[1], salt, i) >= p, u a 24-bit uniform in [0, 1) from a 64-bit hash: the mask
 * depends on those values only, not on the launch shape. Same distribution as the CPU's fv_rng
 * draws, but NOT the same masks. p == 0 keeps everything. */
void fv_cuda_dropout_forward(const fv_cuda_ctx *x, float *out, uint8_t *mask, const float *inp,
                             size_t n, float p, uint64_t salt, const uint64_t *key);
void fv_cuda_dropout_backward(const fv_cuda_ctx *x, float *dinp, const float *dout,
                              const uint8_t *mask, size_t n, float p);

/* ---- nearest-neighbour upsampling (upsample.cu): out[N,C,H*s,W*s] ---- */
void fv_cuda_upsample_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int C,
                              int H, int W, int s);
void fv_cuda_upsample_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N, int C,
                               int H, int W, int s);

/* ---- softmax cross-entropy (loss.cu) ----
 * For each row n of logits[N,K] with label labels[n] in [0, K) (the caller validated labels):
 * row_loss[n] = logsumexp - z_y and row_hit[n] = (argmax == y, ties to the first maximum), in
 * double like the CPU; dlogits (may be NULL) is SET to (softmax - onehot) / N. Then a one-block
 * reduction adds to the device accumulators: *acc_loss += (double)(float)(sum row_loss / N) * N
 * (the CPU's loss_sum += l * b) and *acc_hits += hits. acc_loss / acc_hits may be NULL. */
void fv_cuda_softmax_xent(const fv_cuda_ctx *x, float *dlogits, double *row_loss, int32_t *row_hit,
                          double *acc_loss, long long *acc_hits, const float *logits,
                          const int32_t *labels, int N, int K);

/* ---- pixel losses (loss.cu): loss_pixel.c's fv_pixel_loss on the device ----
 * Over n > 0 values out[n] and target[n]: *loss (one device double) is SET to the mean of
 * (out - target)^2 (MSE) or |out - target| (L1), summed in double; dout[n] (may be NULL) is SET
 * to 2 (out - target) / n (MSE) or sign(out - target) / n (L1, 0 where equal), the differences
 * taken in double as on the CPU. dout may be target itself (each value is read before it is
 * overwritten, by the same thread). One block with a fixed-order reduction: deterministic; the
 * sum differs from the CPU's serial one by rounding only. */
void fv_cuda_pixel_loss(const fv_cuda_ctx *x, float *dout, double *loss, const float *out,
                        const float *target, size_t n, fv_pixel_loss_kind kind);

/* ---- knowledge distillation (loss.cu): loss_soft.c's fv_kd_loss on the device ----
 * For each row n of the student's logits[N,K], the teacher's logits teacher[N,K] and the label
 * labels[n] in [0, K) (the caller validated them), T > 0, alpha in [0, 1]: row_loss[n] =
 * (1 - alpha) CE + alpha T^2 KL(q || p) and row_hit[n] = (argmax == y, ties to the first), in
 * double with fv_kd_loss's formulas; dlogits (may be NULL) is SET to
 * ((1 - alpha)(softmax(z) - onehot) + alpha T (p - q)) / N. dlogits may be teacher itself (each
 * row's values are read before they are overwritten, by the same thread). Then one thread sets
 * *loss (a device double) to the rows' sum in row order / N and *hits (a device long long) to the
 * hits: deterministic, no atomics; rows differ from the CPU's by the device's exp/log rounding. */
void fv_cuda_kd_loss(const fv_cuda_ctx *x, float *dlogits, double *row_loss, int32_t *row_hit, double *loss,
                     long long *hits, const float *logits, const float *teacher, const int32_t *labels, int N,
                     int K, float T, float alpha);

/* ---- optimizers (optim.cu): optim.c's formulas, on the device ----
 * The step's scalars live on the device so a captured step needs no host input: `ost` holds the
 * step count t (optim.c's o->t) and the scalars the update reads. fv_cuda_opt_step first runs a
 * one-thread kernel that computes lr (optim.c's cosine schedule from the current t, in double),
 * increments t and computes Adam's lr / (1 - beta1^t) and sqrt(1 - beta2^t) in double, then the
 * element-wise update. params[n], grads[n]; state[fv_opt_state_len(cfg, n)] in optim.h's layout
 * (SGD: momentum buffer; Adam: m, v; ST-Adam: m, v, then u when mu != 0), so a state vector moves
 * between the CPU and the GPU optimizers unchanged. */
typedef struct {
    int64_t t;       /* steps taken (as fv_opt_step_count) */
    float lr;        /* the lr of the last step */
    float step_size; /* Adam: lr / (1 - beta1^t) */
    float bc2_sqrt;  /* Adam: sqrt(1 - beta2^t) */
    float pad_;
} fv_cuda_opt_step_state;
void fv_cuda_opt_step(const fv_cuda_ctx *x, float *params, float *state, const float *grads,
                      fv_cuda_opt_step_state *ost, const fv_opt_cfg *cfg, size_t n);
/* SCAFFOLD's correction: grads[i] += corr[i] for i < n. */
/* p[n] = base + h dir (device vectors; h dir in double, rounded once): gradient inversion's
 * perturbed parameters. */
void fv_cuda_inv_point(const fv_cuda_ctx *x, float *p, const float *base, const float *dir, double h, size_t n);
void fv_cuda_corr_grad(const fv_cuda_ctx *x, float *grads, const float *corr, size_t n);
/* FedProx: grads[i] += mu * (params[i] - ref[i]) for i < n. */
void fv_cuda_prox_grad(const fv_cuda_ctx *x, float *grads, const float *params, const float *ref,
                       float mu, size_t n);

/* ---- data (data.cu): a training batch from uint8 images staged on the device ----
 * For k < b, with pos = base + (cursor ? *cursor : 0) + k and i = order ? order[pos] : pos:
 * xb[k, c, p] = lut[c * 256 + images[i, c, p]] (the CPU's fv_dataset_to_float table, built on the
 * host: bitwise the same floats), yb[k] = labels[i]. images[*, C, HW], lut[C * 256]. */
void fv_cuda_gather_batch(const fv_cuda_ctx *x, float *xb, int32_t *yb, const uint8_t *images,
                          const uint8_t *labels, const int32_t *order, const int32_t *cursor,
                          int base, const float *lut, int b, int C, int HW);
/* *cursor += step (one thread; enqueued, capturable), and *counter += 1 when counter != NULL. */
void fv_cuda_advance(const fv_cuda_ctx *x, int32_t *cursor, int step, uint64_t *counter);

#ifdef __cplusplus
}
#endif
#endif
