/* layers.h: the CPU kernels of every layer, forward and backward, in plain C over raw float
 * pointers (OpenBLAS for matrix work, OpenMP for loops). llm.c style: outputs first, inputs next,
 * sizes last; every buffer's shape is in the comment. Activations are NCHW.
 *
 * Backward convention (all kernels): gradients are ACCUMULATED (+=) into dinp and into parameter
 * gradients; the caller zeroes them before a backward pass. A NULL dinp skips the input gradient
 * (first layer), a NULL db skips the bias.
 *
 * Thread count is the caller's business (fv_set_threads); results are bitwise reproducible for
 * a fixed thread count (no kernel splits a sum in a way that depends on scheduling).
 * Not here: the graph that strings kernels together (net.h), CUDA twins (*.cu), the oneDNN conv
 * path (conv_dnnl.h).
 */
#ifndef FV_LAYERS_H
#define FV_LAYERS_H
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* Use n >= 1 threads in the kernels: OpenMP gets n, OpenBLAS gets 1, because conv2d and linear
 * split their GEMM work over the OpenMP threads themselves (two thread pools on the same cores
 * measured slower than one). Process-wide settings of those libraries; call it once at start-up,
 * from the thread that runs the kernels. If OpenBLAS is later given more threads, conv2d and
 * linear stay on one OpenMP thread and OpenBLAS threads their GEMMs instead. */
void fv_set_threads(int n);

/* ---- conv2d: square kernel R, stride, zero padding, groups (groups == C == K is depthwise) ---- */
typedef struct {
    int N, C, H, W;     /* input  N x C x H x W */
    int K, R;           /* K output channels, R x R kernel; weight K x (C/groups) x R x R */
    int stride, pad, groups;
    int OH, OW;         /* output N x K x OH x OW, filled by fv_conv2d_shape_init */
} fv_conv2d_shape;

/* Fill s and compute OH/OW. Aborts on an impossible shape (programmer error). */
void fv_conv2d_shape_init(fv_conv2d_shape *s, int N, int C, int H, int W, int K, int R, int stride,
                          int pad, int groups);
/* Floats of scratch space the conv needs (im2col and GEMM staging) for this shape: at most 16 MiB
 * worth of columns plus, with padding, one zero-bordered input plane per image the columns hold
 * (each thread uses one); non-decreasing in N (a buffer sized for the largest batch serves every
 * smaller batch), independent of the thread count, and 0 for 1x1/stride 1/no padding and
 * depthwise convs (scratch may then be NULL). */
size_t fv_conv2d_scratch_floats(const fv_conv2d_shape *s);
/* out[N,K,OH,OW] = conv(inp[N,C,H,W], w[K,C/g,R,R]) + b[K] (b may be NULL). */
void fv_conv2d_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                       const fv_conv2d_shape *s);
/* dinp[N,C,H,W] += ..., dw[K,C/g,R,R] += ..., db[K] += ... from dout[N,K,OH,OW]. A NULL dw skips
 * the weight and bias gradients (db is then ignored): the input gradient alone, bitwise the same
 * as with dw. */
void fv_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, float *scratch, const fv_conv2d_shape *s);
/* The same, keeping the forward's im2col for the backward (memory for one im2col per call):
 * fv_conv2d_forward_cols also writes it to cols (fv_conv2d_cols_floats(s) floats; 0 for the
 * depthwise and 1x1 paths, which have none: cols is then unused and may be NULL), and
 * fv_conv2d_backward_cols reads it from there instead of recomputing it. cols must hold the
 * im2col of this inp from a forward of the same shape and fv_conv2d_cols_key. Results are
 * bitwise those of fv_conv2d_forward / fv_conv2d_backward. */
size_t fv_conv2d_cols_floats(const fv_conv2d_shape *s);
/* The layout of cols (its chunking over threads) under the current thread settings: cols written
 * under one key are valid only for calls of the same shape under the same key. */
long long fv_conv2d_cols_key(const fv_conv2d_shape *s);
void fv_conv2d_forward_cols(float *out, float *cols, const float *inp, const float *w, const float *b,
                            float *scratch, const fv_conv2d_shape *s);
void fv_conv2d_backward_cols(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             const float *cols, const float *w, float *scratch, const fv_conv2d_shape *s);

/* ---- pooling: OH = (H + 2*pad - k) / stride + 1 ---- */
/* out[N,C,OH,OW], argmax[N,C,OH,OW] = flat index into the H*W plane of the max. Padding never
 * wins; a window entirely in the padding gives out 0 and argmax -1 (backward skips it). Ties go to
 * the first maximum in row-major window order; a NaN wins over numbers (PyTorch's rule). */
void fv_maxpool_forward(float *out, int32_t *argmax, const float *inp, int N, int C, int H, int W,
                        int k, int stride, int pad);
void fv_maxpool_backward(float *dinp, const float *dout, const int32_t *argmax, int N, int C, int H,
                         int W, int k, int stride, int pad);
/* Average pooling, padding counted in the divisor (PyTorch's count_include_pad=True). */
void fv_avgpool_forward(float *out, const float *inp, int N, int C, int H, int W, int k, int stride,
                        int pad);
void fv_avgpool_backward(float *dinp, const float *dout, int N, int C, int H, int W, int k, int stride,
                         int pad);
/* Global average pool: out[N,C] = mean over HW of inp[N,C,HW]. */
void fv_gap_forward(float *out, const float *inp, int N, int C, int HW);
void fv_gap_backward(float *dinp, const float *dout, int N, int C, int HW);
/* The same from the channel-blocked layout [N][C/B][HW][B] (C a multiple of B); out and dout stay
 * [N][C]. Each channel is summed in the plain kernel's order: bitwise its results, moved. */
void fv_gap_forward_blk(float *out, const float *inp, int N, int C, int HW, int B);
void fv_gap_backward_blk(float *dinp, const float *dout, int N, int C, int HW, int B);

/* ---- element-wise activations over n floats; backward uses the forward OUTPUT ---- */
void fv_relu_forward(float *out, const float *inp, size_t n);
void fv_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
void fv_sigmoid_forward(float *out, const float *inp, size_t n);
void fv_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
void fv_tanh_forward(float *out, const float *inp, size_t n);
void fv_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);

/* ---- batch norm over N x C x HW (HW = 1 after a linear layer) ---- */
/* Training: batch statistics; saves mean[C] and invstd[C] for backward; updates running stats
 * with PyTorch's rule (run = (1 - momentum) * run + momentum * batch, unbiased variance). With
 * N*HW == 1 (where PyTorch raises an error) the running variance is left unchanged. */
void fv_batchnorm_forward_train(float *out, float *mean, float *invstd, float *run_mean,
                                float *run_var, const float *inp, const float *gamma,
                                const float *beta, int N, int C, int HW, float momentum, float eps);
/* Evaluation: running statistics. */
void fv_batchnorm_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                               const float *run_mean, const float *run_var, int N, int C, int HW,
                               float eps);
void fv_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *mean, const float *invstd,
                           const float *gamma, int N, int C, int HW);
/* Batch norm and the ReLU that is its only consumer (net.c's fusion), the same bits as the two
 * ops apart. forward_train_relu: as forward_train, but out = max(bn(inp), 0) (the ReLU's output;
 * the batch norm's own is never written). backward_relu: as backward, with dout and out the
 * ReLU's output gradient and output; the batch norm's output gradient, out > 0 ? dout : 0, is
 * formed a plane at a time in a per-thread buffer and fed to the very loops of backward. */
void fv_batchnorm_forward_train_relu(float *out, float *mean, float *invstd, float *run_mean,
                                     float *run_var, const float *inp, const float *gamma,
                                     const float *beta, int N, int C, int HW, float momentum, float eps);
void fv_batchnorm_backward_relu(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                const float *out, const float *inp, const float *mean, const float *invstd,
                                const float *gamma, int N, int C, int HW);
/* As fv_batchnorm_backward (relu_out NULL) or fv_batchnorm_backward_relu (relu_out the ReLU's
 * output), but dinp (not NULL) is written, not added to: each element gets exactly what += would
 * leave in a zeroed buffer, so a caller that knows the batch norm is the only writer of dinp
 * (net.c: it is the only reader of its input) skips zeroing it, one pass less each way. */
void fv_batchnorm_backward_set(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *relu_out,
                               const float *inp, const float *mean, const float *invstd, const float *gamma, int N,
                               int C, int HW);

/* The same batch norm on the channel-blocked layout [N][C/B][HW][B] (B 8 or 16, C a multiple of
 * B; net.c's blocked chains between oneDNN convs): inp, out, dout, relu_out and dinp all in it.
 * relu != 0 / relu_out != NULL: fused with the ReLU that is its only consumer, as the _relu
 * kernels; set != 0: dinp written as the _set kernel does (else +=); dinp NULL: dgamma and dbeta
 * only. Sums run lane-wise per (n, channel block), then in double over n: bitwise the same for
 * any thread count, within float rounding of the plain kernels (not bitwise: another order);
 * evaluation is bitwise the plain kernel's. */
void fv_batchnorm_forward_train_blk(float *out, float *mean, float *invstd, float *run_mean, float *run_var,
                                    const float *inp, const float *gamma, const float *beta, int N, int C, int HW,
                                    int B, float momentum, float eps, int relu);
void fv_batchnorm_forward_eval_blk(float *out, const float *inp, const float *gamma, const float *beta,
                                   const float *run_mean, const float *run_var, int N, int C, int HW, int B,
                                   float eps);
void fv_batchnorm_backward_blk(float *dinp, int set, float *dgamma, float *dbeta, const float *dout,
                               const float *relu_out, const float *inp, const float *mean, const float *invstd,
                               const float *gamma, int N, int C, int HW, int B);

/* ---- linear: out[N,Out] = inp[N,In] w[Out,In]^T + b[Out] (PyTorch layout) ---- */
void fv_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int In,
                       int Out);
/* A NULL dw skips the weight and bias gradients (db is then ignored); dinp is the same bitwise. */
void fv_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int In, int Out);

/* ---- inverted dropout with drop probability p in [0, 1]: out = inp * mask / (1 - p) ----
 * mask[i] is 0 or 1, one fv_rng_uniform draw per element in order (kept when the draw >= p), so a
 * seed fixes the mask whatever the thread count. p == 0 draws nothing; p == 1 gives out = 0. */
void fv_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, fv_rng *rng);
void fv_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

/* ---- nearest-neighbour upsampling by an integer factor s: out[N,C,H*s,W*s] ---- */
void fv_upsample_forward(float *out, const float *inp, int N, int C, int H, int W, int s);
void fv_upsample_backward(float *dinp, const float *dout, int N, int C, int H, int W, int s);

/* ---- residual add: out = a + b ---- */
void fv_add_forward(float *out, const float *a, const float *b, size_t n);
/* The add and the ReLU that is its only consumer in one pass each way (net.c's fusion,
 * fv_net_fusable_relu), the same bits as the two ops apart: out = max(a + b, 0); backward
 * da += v, then db += v (either may be NULL; da == db adds twice), v = out > 0 ? dout : 0 with
 * dout and out the ReLU's. set_a / set_b: write v into da / db instead (exactly what += into a
 * zeroed buffer gives), for a caller that knows it is that buffer's only writer; not with
 * da == db. (The CUDA twin has no set flags: it zeroes all gradients in one memset.) */
void fv_add_relu_forward(float *out, const float *a, const float *b, size_t n);
void fv_add_relu_backward(float *da, int set_a, float *db, int set_b, const float *dout, const float *out,
                          size_t n);

/* ---- transformer token ops (transformer.c): a token sequence is [N, T, D] row-major ---- */
/* Layer norm over the D features of each of R rows (R = N * T), PyTorch's nn.LayerNorm(D, eps):
 * out = (x - mean) / sqrt(var + eps) * w + b with the biased variance; saves mean[R] and
 * rstd[R] = 1 / sqrt(var + eps) for backward. */
void fv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int R, int D, float eps);
void fv_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *mean, const float *rstd, const float *w, int R, int D);
/* GELU, exact erf form (PyTorch's default): out = x * Phi(x). Backward takes the forward INPUT. */
void fv_gelu_forward(float *out, const float *inp, size_t n);
void fv_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* Patch tokens: inp[N, D, P] (a patch conv's output, channel-major, P = OH * OW patches) to
 * out[N, T, D] with T = P + 1: token 0 is cls[D], token 1 + p is inp[n, :, p]; pos[T, D] is added
 * to every sample. Backward: dinp (may be NULL), dcls[D], dpos[T, D] accumulate. */
void fv_tokens_forward(float *out, const float *inp, const float *cls, const float *pos, int N,
                       int D, int P);
void fv_tokens_backward(float *dinp, float *dcls, float *dpos, const float *dout, int N, int D,
                        int P);
/* out[N, D] = inp[N, T, D] at token t (the class token is t = 0). */
void fv_token_select_forward(float *out, const float *inp, int N, int T, int D, int t);
void fv_token_select_backward(float *dinp, const float *dout, int N, int T, int D, int t);
/* Multi-head self-attention without mask, after a fused QKV projection: qkv[N, T, 3D] holds per
 * token q (columns 0..D), k (D..2D), v (2D..3D), head h using columns h*dh..(h+1)*dh of each,
 * dh = D / H (PyTorch's / timm's qkv.reshape(N, T, 3, H, dh) layout). out[N, T, D] =
 * softmax(q k^T / sqrt(dh)) v per head, heads side by side in the columns; att[N, H, T, T] keeps
 * the probabilities for backward. Backward accumulates into dqkv[N, T, 3D] and needs
 * scratch[N * H * T * T]. */
void fv_attention_forward(float *out, float *att, const float *qkv, int N, int T, int D, int H);
void fv_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           float *scratch, int N, int T, int D, int H);

/* ---- softmax cross-entropy, mean over the batch ----
 * Returns the mean loss of logits[N,K] against labels[N]; if dlogits is not NULL it is SET
 * (not accumulated) to d(mean loss)/d(logits). *correct (if not NULL) counts argmax hits (ties:
 * the first maximum). Numerically stable (max subtracted). labels[n] in [0, K) (aborts
 * otherwise: loaders validate labels). */
float fv_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int K,
                      int *correct);

#endif
