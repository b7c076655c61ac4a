/* pool.c: max, average and global-average pooling over NCHW, forward and backward (see layers.h).
 * Square windows of k x k with a stride and zero padding; OH = (H + 2*pad - k) / stride + 1
 * (PyTorch's floor mode). Every (n, c) plane is handled by one thread, so results are bitwise the
 * same for any thread count.
 * Not here: ceil mode, dilation, adaptive pooling other than the global average.
 */
#include "fv_common.h"
#include "nn/layers.h"

/* Below this many floats of work a parallel region costs more than it saves. */
#define POOL_OMP_MIN ((size_t)1 << 15)

static int pool_out(int size, int k, int stride, int pad) {
    FV_ASSERT(k >= 1 && stride >= 1 && pad >= 0 && size + 2 * pad >= k);
    return (size + 2 * pad - k) / stride + 1;
}

/* Max pooling. The padding never wins (it acts as -infinity): a window that covers only padding
 * gives out = 0 and argmax = -1. Ties go to the first maximum in row-major window order; a NaN
 * wins over any number (PyTorch's rule: v > max || isnan(v), so the last NaN is reported). */
static inline int max_takes(float v, float m) { return v > m || v != v; }

/* The common 2x2, stride 2, no padding case: no bounds, no window loops. */
static void maxpool_2x2(float *dst, int32_t *am, const float *src, int H, int W, int OH, int OW) {
    for (int oy = 0; oy < OH; oy++) {
        const int y = 2 * oy;
        const float *r0 = src + (size_t)y * W, *r1 = r0 + W;
        /* selects, not branches: random data would mispredict every other compare */
#pragma omp simd
        for (int ox = 0; ox < OW; ox++) {
            const int x = 2 * ox;
            const float a = r0[x], b = r0[x + 1], c = r1[x], d = r1[x + 1];
            float m = a;
            int32_t i = y * W + x;
            int t = max_takes(b, m);
            m = t ? b : m, i = t ? i + 1 : i;
            t = max_takes(c, m);
            m = t ? c : m, i = t ? (y + 1) * W + x : i;
            t = max_takes(d, m);
            m = t ? d : m, i = t ? (y + 1) * W + x + 1 : i;
            dst[oy * OW + ox] = m;
            am[oy * OW + ox] = i;
        }
    }
}

void fv_maxpool_forward(float *out, int32_t *argmax, const float *inp, int N, int C, int H, int W,
                        int k, int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    const size_t planes = (size_t)N * C;
#pragma omp parallel for schedule(static) if (planes * H * W >= POOL_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = inp + pl * H * W;
        float *dst = out + pl * OH * OW;
        int32_t *am = argmax + pl * OH * OW;
        if (k == 2 && stride == 2 && pad == 0) {
            maxpool_2x2(dst, am, src, H, W, OH, OW);
            continue;
        }
        for (int oy = 0; oy < OH; oy++) {
            const int y0 = oy * stride - pad;
            const int ya = y0 < 0 ? 0 : y0, yb = y0 + k > H ? H : y0 + k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * stride - pad;
                const int xa = x0 < 0 ? 0 : x0, xb = x0 + k > W ? W : x0 + k;
                int32_t best = -1;
                float m = 0.0f;
                for (int y = ya; y < yb; y++) {
                    for (int x = xa; x < xb; x++) {
                        const float v = src[y * W + x];
                        if (best < 0 || max_takes(v, m)) m = v, best = y * W + x;
                    }
                }
                dst[oy * OW + ox] = m;
                am[oy * OW + ox] = best;
            }
        }
    }
}

void fv_maxpool_backward(float *dinp, const float *dout, const int32_t *argmax, int N, int C, int H,
                         int W, int k, int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    if (!dinp) return;
    const size_t planes = (size_t)N * C;
#pragma omp parallel for schedule(static) if (planes * H * W >= POOL_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = dinp + pl * H * W;
        const float *g = dout + pl * OH * OW;
        const int32_t *am = argmax + pl * OH * OW;
        for (int o = 0; o < OH * OW; o++)
            if (am[o] >= 0) dst[am[o]] += g[o];
    }
}

/* Average pooling with count_include_pad: the divisor is always k*k (in floor mode a window never
 * reaches past the padding). */
void fv_avgpool_forward(float *out, const float *inp, int N, int C, int H, int W, int k, int stride,
                        int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    const size_t planes = (size_t)N * C;
    const float scale = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static) if (planes * H * W >= POOL_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = inp + pl * H * W;
        float *dst = out + pl * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            const int y0 = oy * stride - pad;
            const int ya = y0 < 0 ? 0 : y0, yb = y0 + k > H ? H : y0 + k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * stride - pad;
                const int xa = x0 < 0 ? 0 : x0, xb = x0 + k > W ? W : x0 + k;
                float acc = 0.0f;
                for (int y = ya; y < yb; y++)
                    for (int x = xa; x < xb; x++) acc += src[y * W + x];
                dst[oy * OW + ox] = acc * scale;
            }
        }
    }
}

void fv_avgpool_backward(float *dinp, const float *dout, int N, int C, int H, int W, int k,
                         int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    if (!dinp) return;
    const size_t planes = (size_t)N * C;
    const float scale = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static) if (planes * H * W >= POOL_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = dinp + pl * H * W;
        const float *g = dout + pl * OH * OW;
        for (int oy = 0; oy < OH; oy++) {
            const int y0 = oy * stride - pad;
            const int ya = y0 < 0 ? 0 : y0, yb = y0 + k > H ? H : y0 + k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * stride - pad;
                const int xa = x0 < 0 ? 0 : x0, xb = x0 + k > W ? W : x0 + k;
                const float v = g[oy * OW + ox] * scale;
                for (int y = ya; y < yb; y++)
                    for (int x = xa; x < xb; x++) dst[y * W + x] += v;
            }
        }
    }
}

void fv_gap_forward(float *out, const float *inp, int N, int C, int HW) {
    FV_ASSERT(HW >= 1);
    const size_t planes = (size_t)N * C;
    const float scale = 1.0f / (float)HW;
#pragma omp parallel for schedule(static) if (planes * HW >= POOL_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = inp + pl * HW;
        float acc = 0.0f;
        for (int i = 0; i < HW; i++) acc += src[i];
        out[pl] = acc * scale;
    }
}

void fv_gap_backward(float *dinp, const float *dout, int N, int C, int HW) {
    FV_ASSERT(HW >= 1);
    if (!dinp) return;
    const size_t planes = (size_t)N * C;
    const float scale = 1.0f / (float)HW;
#pragma omp parallel for schedule(static) if (planes * HW >= POOL_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = dinp + pl * HW;
        const float v = dout[pl] * scale;
        for (int i = 0; i < HW; i++) dst[i] += v;
    }
}

void fv_gap_forward_blk(float *out, const float *inp, int N, int C, int HW, int B) {
    FV_ASSERT(HW >= 1 && B >= 1 && B <= 16 && C % B == 0);
    const int CB = C / B;
    const float scale = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW >= POOL_OMP_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            const float *src = inp + ((size_t)n * CB + cb) * HW * B;
            float acc[16] = {0};
            for (int i = 0; i < HW; i++)
#pragma omp simd
                for (int l = 0; l < B; l++) acc[l] += src[(size_t)i * B + l];
            for (int l = 0; l < B; l++) out[(size_t)n * C + (size_t)cb * B + l] = acc[l] * scale;
        }
}

void fv_gap_backward_blk(float *dinp, const float *dout, int N, int C, int HW, int B) {
    FV_ASSERT(HW >= 1 && B >= 1 && B <= 16 && C % B == 0);
    if (!dinp) return;
    const int CB = C / B;
    const float scale = 1.0f / (float)HW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW >= POOL_OMP_MIN)
    for (int n = 0; n < N; n++)
        for (int cb = 0; cb < CB; cb++) {
            float v[16];
            for (int l = 0; l < B; l++) v[l] = dout[(size_t)n * C + (size_t)cb * B + l] * scale;
            float *dst = dinp + ((size_t)n * CB + cb) * HW * B;
            for (int i = 0; i < HW; i++)
#pragma omp simd
                for (int l = 0; l < B; l++) dst[(size_t)i * B + l] += v[l];
        }
}
