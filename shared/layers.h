/* layers.h: the CPU kernels of every layer, forward and backward, in plain C over raw float
 * pointers (OpenBLAS for matrix work, OpenMP for loops). llm.c style: outputs first, inputs next,
 * sizes last; every buffer's shape is in the comment. Activations are NCHW.
 *
 * Backward convention (all kernels): gradients are ACCUMULATED (+=) into dinp and into parameter
 * gradients; the caller zeroes them before a backward pass. A NULL dinp skips the input gradient
 * (first layer), a NULL db skips the bias.
 *
 * Thread count is the caller's business (omp_set_num_threads / openblas_set_num_threads, see
 * fv_set_threads); results are bitwise reproducible for a fixed thread count.
 * Not here: the graph that strings kernels together (net.h), CUDA twins (*.cu).
 */
#ifndef FV_LAYERS_H
#define FV_LAYERS_H
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* Set the number of threads used by OpenMP loops and by OpenBLAS (process-wide settings of those
 * libraries). n >= 1. */
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
/* Floats of scratch space the conv needs (im2col and GEMM staging) for this shape. */
size_t fv_conv2d_scratch_floats(const fv_conv2d_shape *s);
/* out[N,K,OH,OW] = conv(inp[N,C,H,W], w[K,C/g,R,R]) + b[K] (b may be NULL). */
void fv_conv2d_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                       const fv_conv2d_shape *s);
/* dinp[N,C,H,W] += ..., dw[K,C/g,R,R] += ..., db[K] += ... from dout[N,K,OH,OW]. */
void fv_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, float *scratch, const fv_conv2d_shape *s);

/* ---- pooling: OH = (H + 2*pad - k) / stride + 1 ---- */
/* out[N,C,OH,OW], argmax[N,C,OH,OW] = flat index into the H*W plane of the max (-1: all padding). */
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

/* ---- element-wise activations over n floats; backward uses the forward OUTPUT ---- */
void fv_relu_forward(float *out, const float *inp, size_t n);
void fv_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
void fv_sigmoid_forward(float *out, const float *inp, size_t n);
void fv_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n);
void fv_tanh_forward(float *out, const float *inp, size_t n);
void fv_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);

/* ---- batch norm over N x C x HW (HW = 1 after a linear layer) ---- */
/* Training: batch statistics; saves mean[C] and invstd[C] for backward; updates running stats
 * with PyTorch's rule (run = (1 - momentum) * run + momentum * batch, unbiased variance). */
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

/* ---- linear: out[N,Out] = inp[N,In] w[Out,In]^T + b[Out] (PyTorch layout) ---- */
void fv_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int In,
                       int Out);
void fv_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int In, int Out);

/* ---- inverted dropout with drop probability p: out = inp * mask / (1 - p) ---- */
void fv_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p, fv_rng *rng);
void fv_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

/* ---- nearest-neighbour upsampling by an integer factor s: out[N,C,H*s,W*s] ---- */
void fv_upsample_forward(float *out, const float *inp, int N, int C, int H, int W, int s);
void fv_upsample_backward(float *dinp, const float *dout, int N, int C, int H, int W, int s);

/* ---- residual add: out = a + b ---- */
void fv_add_forward(float *out, const float *a, const float *b, size_t n);

/* ---- softmax cross-entropy, mean over the batch ----
 * Returns the mean loss of logits[N,K] against labels[N]; if dlogits is not NULL it is SET
 * (not accumulated) to d(mean loss)/d(logits). *correct (if not NULL) counts argmax hits.
 * Numerically stable (max subtracted). */
float fv_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int K,
                      int *correct);

#endif
