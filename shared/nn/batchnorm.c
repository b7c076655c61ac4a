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

/* ---- the channel-blocked layout [N][C/B][HW][B] (net.c's blocked chains) ----
 * Each (n, channel block) is one task: its B channels are summed lane-wise over HW in float with
 * four accumulators per lane (pixel i into accumulator i % 4, then (a0 + a1) + (a2 + a3)), and
 * the per-(n, c) sums are added in double in order of n, so results are bitwise the same for any
 * thread count. Not bitwise the plain kernels' (their plane sums are vectorised along pixels):
 * they agree within float rounding (tests/test_layers.c). Element-wise formulas are the plain
 * kernels' own, so evaluation is bitwise the plain one moved. */

#define BLK_MAX 16

static void check_blk(int N, int C, int HW, int B) {
    FV_ASSERT(N >= 1 && HW >= 1 && (B == 8 || B == 16) && C >= B && C % B == 0);
}

/* The lane loops below take B (and relu) as compile-time constants through always-inlined
 * helpers called from a switch, so the accumulators live in vector registers. */
#define BLK_INLINE static inline __attribute__((always_inline))

/* o[l] = sum over i of f(x[i][l]) (f the identity, or (x - m[l])^2 with sq). */
BLK_INLINE void lane_sums_b(float *o, const float *x, const float *m, int HW, const int B, const int sq) {
    float a[4][BLK_MAX], mm[BLK_MAX];
    for (int l = 0; l < B; l++) a[0][l] = a[1][l] = a[2][l] = a[3][l] = 0.0f, mm[l] = sq ? m[l] : 0.0f;
    int i = 0;
    for (; i + 4 <= HW; i += 4)
        for (int k = 0; k < 4; k++) {
            const float *r = x + (size_t)(i + k) * B;
#pragma omp simd
            for (int l = 0; l < B; l++) a[k][l] += sq ? (r[l] - mm[l]) * (r[l] - mm[l]) : r[l];
        }
    for (; i < HW; i++) {
        const float *r = x + (size_t)i * B;
        for (int l = 0; l < B; l++) a[0][l] += sq ? (r[l] - mm[l]) * (r[l] - mm[l]) : r[l];
    }
    for (int l = 0; l < B; l++) o[l] = (a[0][l] + a[1][l]) + (a[2][l] + a[3][l]);
}

static void lane_sums(float *o, const float *x, const float *m, int HW, int B) {
    if (B == 16) m ? lane_sums_b(o, x, m, HW, 16, 1) : lane_sums_b(o, x, m, HW, 16, 0);
    else m ? lane_sums_b(o, x, m, HW, 8, 1) : lane_sums_b(o, x, m, HW, 8, 0);
}

/* The batch norm's output gradient at one element: dout, or through its ReLU (y its output)
 * y > 0 ? dout : 0. The ReLU's own backward leaves 0 + that (a -0 made +0); this select keeps a
 * -0, which changes no bit of what follows (GCC 12 vectorises neither way of adding the 0 here):
 * the sums start at +0 and so are never -0 (x + -0 == x + +0 then); the input gradient's term
 * M g - a equals -a either way unless a, the channel's sum of g, is 0 (a channel the ReLU killed
 * entirely), where only a zero's sign may differ, and the set form's 0 + value makes every zero +0.
 * (dinp's += form could then keep a -0 where the ReLU apart gives +0; net.c uses the set form
 * wherever the batch norm is its input's only reader, as in every chain of the zoo.) */
BLK_INLINE float blk_grad(const float *dout, const float *y, size_t k, const int relu) {
    const float v = dout[k]; /* loaded unconditionally so the select vectorises */
    return relu ? (y[k] > 0.0f ? v : 0.0f) : v;
}

/* sg[l] = sum g, sgx[l] = sum g * (x - m[l]) * is[l] over one task's HW pixels (the order of
 * lane_sums). */
BLK_INLINE void lane_grad_sums_b(float *sg, float *sgx, const float *dout, const float *y, const float *x,
                                 const float *m, const float *is, int HW, const int B, const int relu) {
    float a[4][BLK_MAX], b[4][BLK_MAX], mm[BLK_MAX], ii[BLK_MAX];
    for (int l = 0; l < B; l++)
        a[0][l] = a[1][l] = a[2][l] = a[3][l] = b[0][l] = b[1][l] = b[2][l] = b[3][l] = 0.0f, mm[l] = m[l], ii[l] = is[l];
    int i = 0;
    for (; i + 4 <= HW; i += 4)
        for (int k = 0; k < 4; k++) {
            const size_t o = (size_t)(i + k) * B;
#pragma omp simd
            for (int l = 0; l < B; l++) {
                const float g = blk_grad(dout, y, o + l, relu);
                a[k][l] += g;
                b[k][l] += g * ((x[o + l] - mm[l]) * ii[l]);
            }
        }
    for (; i < HW; i++) {
        const size_t o = (size_t)i * B;
        for (int l = 0; l < B; l++) {
            const float g = blk_grad(dout, y, o + l, relu);
            a[0][l] += g;
            b[0][l] += g * ((x[o + l] - mm[l]) * ii[l]);
        }
    }
    for (int l = 0; l < B; l++) {
        sg[l] = (a[0][l] + a[1][l]) + (a[2][l] + a[3][l]);
        sgx[l] = (b[0][l] + b[1][l]) + (b[2][l] + b[3][l]);
    }
}

static void lane_grad_sums(float *sg, float *sgx, const float *dout, const float *y, const float *x, const float *m,
                           const float *is, int HW, int B) {
    if (B == 16) y ? lane_grad_sums_b(sg, sgx, dout, y, x, m, is, HW, 16, 1)
                   : lane_grad_sums_b(sg, sgx, dout, y, x, m, is, HW, 16, 0);
    else y ? lane_grad_sums_b(sg, sgx, dout, y, x, m, is, HW, 8, 1) : lane_grad_sums_b(sg, sgx, dout, y, x, m, is, HW, 8, 0);
}

/* One task's input gradient: d = (set ? 0 + : d +) k * (M g - a - (x - m) is bx), lane-wise. */
BLK_INLINE void lane_dx_b(float *d, const float *go, const float *y, const float *x, const float *k, const float *a,
                          const float *bx, const float *m, const float *is, float fm, int HW, const int B,
                          const int relu, const int set) {
    float kk[BLK_MAX], aa[BLK_MAX], bb[BLK_MAX], mm[BLK_MAX], ii[BLK_MAX];
    for (int l = 0; l < B; l++) kk[l] = k[l], aa[l] = a[l], bb[l] = bx[l], mm[l] = m[l], ii[l] = is[l];
    for (int i = 0; i < HW; i++) {
        const size_t o = (size_t)i * B;
#pragma omp simd
        for (int l = 0; l < B; l++) {
            const float v = kk[l] * (fm * blk_grad(go, y, o + l, relu) - aa[l] - (x[o + l] - mm[l]) * ii[l] * bb[l]);
            if (set) d[o + l] = 0.0f + v;
            else d[o + l] += v;
        }
    }
}

static void lane_dx(float *d, const float *go, const float *y, const float *x, const float *k, const float *a,
                    const float *bx, const float *m, const float *is, float fm, int HW, int B, int set) {
#define LANE_DX(BB, R, S) lane_dx_b(d, go, y, x, k, a, bx, m, is, fm, HW, BB, R, S)
    if (B == 16) {
        if (y) set ? LANE_DX(16, 1, 1) : LANE_DX(16, 1, 0);
        else set ? LANE_DX(16, 0, 1) : LANE_DX(16, 0, 0);
    } else {
        if (y) set ? LANE_DX(8, 1, 1) : LANE_DX(8, 1, 0);
        else set ? LANE_DX(8, 0, 1) : LANE_DX(8, 0, 0);
    }
#undef LANE_DX
}

void fv_batchnorm_forward_train_blk(float *out, float *mean, float *invstd, float *run_mean, float *run_var,
                                    const float *inp, const float *gamma, const float *beta, int N, int C, int HW,
                                    int B, float momentum, float eps, int relu) {
    check_blk(N, C, HW, B);
    FV_ASSERT(eps > 0.0f && momentum >= 0.0f && momentum <= 1.0f);
    const int CB = C / B;
    const size_t M = (size_t)N * HW, plane = (size_t)HW * B;
    float *part = fv_malloc((size_t)N * C * sizeof(float));
    double *ss = fv_malloc((size_t)C * sizeof(double));
#pragma omp parallel if (M * C >= BN_OMP_MIN)
    {
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int cb = 0; cb < CB; cb++)
                lane_sums(part + (size_t)n * C + (size_t)cb * B, inp + ((size_t)n * CB + cb) * plane, NULL, HW, B);
#pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            double sum = 0.0;
            for (int n = 0; n < N; n++) sum += part[(size_t)n * C + c];
            mean[c] = (float)(sum / (double)M);
        }
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int cb = 0; cb < CB; cb++)
                lane_sums(part + (size_t)n * C + (size_t)cb * B, inp + ((size_t)n * CB + cb) * plane,
                          mean + (size_t)cb * B, HW, B);
#pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += part[(size_t)n * C + c];
            ss[c] = s;
            invstd[c] = (float)(1.0 / sqrt(s / (double)M + (double)eps));
        }
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int cb = 0; cb < CB; cb++) {
                float sc[BLK_MAX], sh[BLK_MAX], m[BLK_MAX];
                for (int l = 0; l < B; l++) {
                    const int c = cb * B + l;
                    sc[l] = gamma[c] * invstd[c], sh[l] = beta[c], m[l] = mean[c];
                }
                const float *x = inp + ((size_t)n * CB + cb) * plane;
                float *y = out + ((size_t)n * CB + cb) * plane;
                for (int i = 0; i < HW; i++) {
                    const size_t o = (size_t)i * B;
                    if (relu) {
#pragma omp simd
                        for (int l = 0; l < B; l++) {
                            const float v = (x[o + l] - m[l]) * sc[l] + sh[l];
                            y[o + l] = v > 0.0f ? v : 0.0f;
                        }
                    } else {
#pragma omp simd
                        for (int l = 0; l < B; l++) y[o + l] = (x[o + l] - m[l]) * sc[l] + sh[l];
                    }
                }
            }
    }
    for (int c = 0; c < C; c++) {
        run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mean[c];
        if (M > 1) run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(ss[c] / (double)(M - 1));
    }
    free(part);
    free(ss);
}

void fv_batchnorm_forward_eval_blk(float *out, const float *inp, const float *gamma, const float *beta,
                                   const float *run_mean, const float *run_var, int N, int C, int HW, int B,
                                   float eps) {
    check_blk(N, C, HW, B);
    FV_ASSERT(eps > 0.0f);
    const int CB = C / B;
    const size_t plane = (size_t)HW * B;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW >= BN_OMP_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            float sc[BLK_MAX], sh[BLK_MAX], m[BLK_MAX];
            for (int l = 0; l < B; l++) {
                const int c = cb * B + l;
                sc[l] = gamma[c] / sqrtf(run_var[c] + eps), sh[l] = beta[c], m[l] = run_mean[c];
            }
            const float *x = inp + ((size_t)n * CB + cb) * plane;
            float *y = out + ((size_t)n * CB + cb) * plane;
            for (int i = 0; i < HW; i++) {
                const size_t o = (size_t)i * B;
#pragma omp simd
                for (int l = 0; l < B; l++) y[o + l] = (x[o + l] - m[l]) * sc[l] + sh[l];
            }
        }
}

void fv_batchnorm_backward_blk(float *dinp, int set, float *dgamma, float *dbeta, const float *dout,
                               const float *relu_out, const float *inp, const float *mean, const float *invstd,
                               const float *gamma, int N, int C, int HW, int B) {
    check_blk(N, C, HW, B);
    FV_ASSERT(!set || dinp);
    const int CB = C / B;
    const size_t M = (size_t)N * HW, plane = (size_t)HW * B;
    float *pg = fv_malloc(2 * (size_t)N * C * sizeof(float)), *pgx = pg + (size_t)N * C;
    float *fa = fv_malloc(2 * (size_t)C * sizeof(float)), *fb = fa + C;
#pragma omp parallel if (M * C >= BN_OMP_MIN)
    {
#pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < N; n++)
            for (int cb = 0; cb < CB; cb++) {
                const size_t t = ((size_t)n * CB + cb) * plane, o = (size_t)n * C + (size_t)cb * B;
                lane_grad_sums(pg + o, pgx + o, dout + t, relu_out ? relu_out + t : NULL, inp + t,
                               mean + (size_t)cb * B, invstd + (size_t)cb * B, HW, B);
            }
#pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            double sg = 0.0, sgx = 0.0;
            for (int n = 0; n < N; n++) sg += pg[(size_t)n * C + c], sgx += pgx[(size_t)n * C + c];
            dgamma[c] += (float)sgx;
            if (dbeta) dbeta[c] += (float)sg;
            fa[c] = (float)sg, fb[c] = (float)sgx;
        }
        if (dinp) {
#pragma omp for collapse(2) schedule(static)
            for (int n = 0; n < N; n++)
                for (int cb = 0; cb < CB; cb++) {
                    float k[BLK_MAX], a[BLK_MAX], bx[BLK_MAX], m[BLK_MAX], is[BLK_MAX];
                    for (int l = 0; l < B; l++) {
                        const int c = cb * B + l;
                        is[l] = invstd[c], m[l] = mean[c], a[l] = fa[c], bx[l] = fb[c];
                        k[l] = gamma[c] * is[l] / (float)M;
                    }
                    const size_t t = ((size_t)n * CB + cb) * plane;
                    lane_dx(dinp + t, dout + t, relu_out ? relu_out + t : NULL, inp + t, k, a, bx, m, is, (float)M,
                            HW, B, set);
                }
        }
    }
    free(pg);
    free(fa);
}
