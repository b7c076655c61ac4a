/* batchnorm.c: batch normalisation over N x C x HW with PyTorch's semantics (see layers.h).
 * Training normalises with the biased batch variance and feeds the unbiased one to the running
 * variance; evaluation uses the running statistics.
 * One thread owns a channel: each (n, c) plane is summed in float (vectorised, fixed lane order)
 * and the plane sums are added in double in order of n, so results are bitwise the same for any
 * thread count. Mean and variance take two passes (no E[x^2] - E[x]^2 cancellation).
 * The _relu variants take in the ReLU that is the batch norm's only consumer (net.c's fusion) with
 * the same bits as the two ops apart.
 * Not here: the momentum default (0.1, the caller's), cumulative averaging (momentum = None).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"

/* Below this many floats a parallel region costs more than it saves. */
#define BN_OMP_MIN ((size_t)1 << 15)

/* Sum of x[0..n) and of (x - m)^2, and of g and g * (x - m) * is: one plane, in float, vectorised
 * with a fixed lane order (the caller adds the plane sums in double, in a fixed order). */
static float plane_sum(const float *x, int n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < n; i++) acc += x[i];
    return acc;
}

static float plane_sqdev(const float *x, float m, int n) {
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int i = 0; i < n; i++) acc += (x[i] - m) * (x[i] - m);
    return acc;
}

static void plane_grad_sums(float *sg, float *sgx, const float *g, const float *x, float m,
                            float is, int n) {
    float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
    for (int i = 0; i < n; i++) {
        a += g[i];
        b += g[i] * ((x[i] - m) * is);
    }
    *sg = a, *sgx = b;
}

/* momentum in [0, 1], eps > 0. With N*HW == 1 the unbiased variance is undefined (PyTorch raises
 * an error there): the running variance is then left as it is, the running mean still moves. */
static void bn_forward_train(float *out, float *mean, float *invstd, float *run_mean, float *run_var,
                             const float *inp, const float *gamma, const float *beta, int N, int C, int HW,
                             float momentum, float eps, int relu) {
    FV_ASSERT(N >= 1 && C >= 1 && HW >= 1 && eps > 0.0f && momentum >= 0.0f && momentum <= 1.0f);
    const size_t M = (size_t)N * HW;
#pragma omp parallel for schedule(static) if (M * C >= BN_OMP_MIN)
    for (int c = 0; c < C; c++) {
        double sum = 0.0, ss = 0.0;
        for (int n = 0; n < N; n++) sum += plane_sum(inp + ((size_t)n * C + c) * HW, HW);
        const float m = (float)(sum / (double)M);
        for (int n = 0; n < N; n++) ss += plane_sqdev(inp + ((size_t)n * C + c) * HW, m, HW);
        const double var = ss / (double)M;
        const float is = (float)(1.0 / sqrt(var + (double)eps));
        mean[c] = m;
        invstd[c] = is;
        const float scale = gamma[c] * is, shift = beta[c];
        for (int n = 0; n < N; n++) {
            const float *x = inp + ((size_t)n * C + c) * HW;
            float *y = out + ((size_t)n * C + c) * HW;
            if (relu) {
#pragma omp simd
                for (int i = 0; i < HW; i++) {
                    const float v = (x[i] - m) * scale + shift;
                    y[i] = v > 0.0f ? v : 0.0f;
                }
            } else {
#pragma omp simd
                for (int i = 0; i < HW; i++) y[i] = (x[i] - m) * scale + shift;
            }
        }
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * m;
        if (M > 1)
            run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(ss / (double)(M - 1));
    }
}

void fv_batchnorm_forward_train(float *out, float *mean, float *invstd, float *run_mean,
                                float *run_var, const float *inp, const float *gamma,
                                const float *beta, int N, int C, int HW, float momentum,
                                float eps) {
    bn_forward_train(out, mean, invstd, run_mean, run_var, inp, gamma, beta, N, C, HW, momentum, eps, 0);
}

void fv_batchnorm_forward_train_relu(float *out, float *mean, float *invstd, float *run_mean,
                                     float *run_var, const float *inp, const float *gamma,
                                     const float *beta, int N, int C, int HW, float momentum, float eps) {
    bn_forward_train(out, mean, invstd, run_mean, run_var, inp, gamma, beta, N, C, HW, momentum, eps, 1);
}

void fv_batchnorm_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                               const float *run_mean, const float *run_var, int N, int C, int HW,
                               float eps) {
    FV_ASSERT(N >= 1 && C >= 1 && HW >= 1 && eps > 0.0f);
    const size_t work = (size_t)N * C * HW;
#pragma omp parallel for collapse(2) schedule(static) if (work >= BN_OMP_MIN)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const float scale = gamma[c] / sqrtf(run_var[c] + eps);
            const float m = run_mean[c], shift = beta[c];
            const float *x = inp + ((size_t)n * C + c) * HW;
            float *y = out + ((size_t)n * C + c) * HW;
#pragma omp simd
            for (int i = 0; i < HW; i++) y[i] = (x[i] - m) * scale + shift;
        }
    }
}

/* The batch norm's output gradient on plane off: dout itself, or, through the ReLU that consumes
 * it (relu_out its output), what ReLU's backward accumulates into a zeroed buffer, formed the same
 * way in buf (a -0 becomes +0 as there), so the loops below see the bits they would see unfused.
 * (Written as zero then +=: GCC 12 leaves `buf[i] = 0 + (c ? v : 0)` unvectorised, a branch per
 * element that made the fused backward 6x slower than both ops apart.) */
static const float *plane_grad(float *buf, const float *dout, const float *relu_out, size_t off, int HW) {
    if (!relu_out) return dout + off;
    const float *g = dout + off, *y = relu_out + off;
    memset(buf, 0, (size_t)HW * sizeof(float));
#pragma omp simd
    for (int i = 0; i < HW; i++) {
        const float v = g[i]; /* loaded unconditionally so the select vectorises */
        buf[i] += y[i] > 0.0f ? v : 0.0f;
    }
    return buf;
}

/* Largest channel (N * HW floats) whose ReLU-side gradient bn_backward keeps whole between its two
 * passes, per thread (8 MiB: ResNet-20's 16-channel maps at batch 128 take 512 KiB); a larger one
 * is formed again a plane at a time in the second pass. */
#define BN_KEEP_MAX_FLOATS ((size_t)2 << 20)

/* With xhat = (x - mean) * invstd and M = N*HW:
 *   dgamma += sum dout * xhat, dbeta += sum dout,
 *   dinp += gamma * invstd / M * (M * dout - sum dout - xhat * sum dout * xhat)
 * or, with set, dinp = 0 + that term (the bits of += into a zeroed buffer: the caller needs none).
 * relu_out != NULL: dout is the consuming ReLU's output gradient (plane_grad), formed in the first
 * pass into a per-thread buffer of the whole channel and read back in the second when it fits. */
static void bn_backward(float *dinp, int set, float *dgamma, float *dbeta, const float *dout, const float *relu_out,
                        const float *inp, const float *mean, const float *invstd, const float *gamma, int N,
                        int C, int HW) {
    const size_t M = (size_t)N * HW;
    const int keep = relu_out && M <= BN_KEEP_MAX_FLOATS;
#pragma omp parallel if (M * C >= BN_OMP_MIN)
    {
        float *buf = relu_out ? fv_malloc((keep ? M : (size_t)HW) * sizeof(float)) : NULL;
#pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            const float m = mean[c], is = invstd[c];
            double sg = 0.0, sgx = 0.0;
            for (int n = 0; n < N; n++) {
                float a, b;
                const size_t off = ((size_t)n * C + c) * HW;
                float *bp = keep ? buf + (size_t)n * HW : buf;
                plane_grad_sums(&a, &b, plane_grad(bp, dout, relu_out, off, HW), inp + off, m, is, HW);
                sg += a, sgx += b;
            }
            dgamma[c] += (float)sgx;
            if (dbeta) dbeta[c] += (float)sg;
            if (!dinp) continue;
            const float k = gamma[c] * is / (float)M;
            const float a = (float)sg, bx = (float)sgx, fm = (float)M;
            for (int n = 0; n < N; n++) {
                const size_t off = ((size_t)n * C + c) * HW;
                const float *x = inp + off;
                const float *g = keep ? buf + (size_t)n * HW : plane_grad(buf, dout, relu_out, off, HW);
                float *d = dinp + off;
                if (set) {
#pragma omp simd
                    for (int i = 0; i < HW; i++) d[i] = 0.0f + k * (fm * g[i] - a - (x[i] - m) * is * bx);
                } else {
#pragma omp simd
                    for (int i = 0; i < HW; i++) d[i] += k * (fm * g[i] - a - (x[i] - m) * is * bx);
                }
            }
        }
        free(buf);
    }
}

void fv_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *mean, const float *invstd,
                           const float *gamma, int N, int C, int HW) {
    bn_backward(dinp, 0, dgamma, dbeta, dout, NULL, inp, mean, invstd, gamma, N, C, HW);
}

void fv_batchnorm_backward_relu(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                const float *out, const float *inp, const float *mean, const float *invstd,
                                const float *gamma, int N, int C, int HW) {
    FV_ASSERT(out);
    bn_backward(dinp, 0, dgamma, dbeta, dout, out, inp, mean, invstd, gamma, N, C, HW);
}

void fv_batchnorm_backward_set(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *relu_out,
                               const float *inp, const float *mean, const float *invstd, const float *gamma, int N,
                               int C, int HW) {
    FV_ASSERT(dinp);
    bn_backward(dinp, 1, dgamma, dbeta, dout, relu_out, inp, mean, invstd, gamma, N, C, HW);
}
