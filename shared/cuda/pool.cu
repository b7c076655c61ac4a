/* pool.cu: max, average and global-average pooling on the GPU, forward and backward; the CUDA
 * twin of pool.c (same rules: floor mode, padding never wins the max and counts in the average's
 * divisor, a window all in the padding gives 0 and argmax -1, ties to the first maximum in
 * row-major window order, NaN wins).
 * Forward: one thread per output. Backward: one thread per INPUT element gathering from the
 * windows that cover it, in increasing output order, so overlapping windows need no atomics.
 * Not here: ceil mode, dilation, adaptive pooling other than the global average.
 */
#include "cuda/common.cuh"

static int pool_out(int size, int k, int stride, int pad) {
    FV_ASSERT(k >= 1 && stride >= 1 && pad >= 0 && size + 2 * pad >= k);
    return (size + 2 * pad - k) / stride + 1;
}

/* The outputs o in [*lo, *hi) along one axis whose window [o*stride - pad, o*stride - pad + k)
 * contains input coordinate v. */
__device__ __forceinline__ void covering(int *lo, int *hi, int v, int k, int stride, int pad,
                                         int O) {
    const int t = v + pad; /* o*stride <= t < o*stride + k */
    int a = t - k + 1;
    a = a <= 0 ? 0 : (a + stride - 1) / stride;
    int b = t / stride + 1;
    *lo = a;
    *hi = b < O ? b : O;
}

__device__ __forceinline__ bool max_takes(float v, float m) { return v > m || v != v; }

static __global__ void maxpool_fwd_kernel(float *out, int32_t *argmax, const float *inp, int N, int C,
                                   int H, int W, int k, int stride, int pad, int OH, int OW) {
    const size_t total = (size_t)N * C * OH * OW;
    FV_GRID_STRIDE(i, total) {
        const int ox = (int)(i % OW), oy = (int)((i / OW) % OH);
        const float *src = inp + (i / ((size_t)OW * OH)) * H * W;
        const int y0 = oy * stride - pad, x0 = ox * stride - pad;
        const int ya = y0 < 0 ? 0 : y0, yb = y0 + k > H ? H : y0 + k;
        const int xa = x0 < 0 ? 0 : x0, xb = x0 + k > W ? W : x0 + k;
        int32_t best = -1;
        float m = 0.0f;
        for (int y = ya; y < yb; y++)
            for (int xx = xa; xx < xb; xx++) {
                const float v = src[y * W + xx];
                if (best < 0 || max_takes(v, m)) m = v, best = y * W + xx;
            }
        out[i] = m;
        argmax[i] = best;
    }
}

/* A REPLAY forward (net.h, fv_kinks): each output takes the input at its recorded argmax (-1: a
 * window all in the padding gives 0), as net.c's maxpool_replay. */
static __global__ void maxpool_replay_kernel(float *out, const int32_t *argmax, const float *inp, int HW, int OHW,
                                             size_t total) {
    FV_GRID_STRIDE(i, total) {
        const int32_t a = argmax[i];
        out[i] = a >= 0 ? inp[(i / (size_t)OHW) * HW + a] : 0.0f;
    }
}

static __global__ void maxpool_bwd_kernel(float *dinp, const float *dout, const int32_t *argmax, int N,
                                   int C, int H, int W, int k, int stride, int pad, int OH,
                                   int OW) {
    const size_t total = (size_t)N * C * H * W;
    FV_GRID_STRIDE(i, total) {
        const int xx = (int)(i % W), y = (int)((i / W) % H);
        const size_t pl = i / ((size_t)W * H);
        const float *g = dout + pl * OH * OW;
        const int32_t *am = argmax + pl * OH * OW;
        const int32_t me = y * W + xx;
        int oya, oyb, oxa, oxb;
        covering(&oya, &oyb, y, k, stride, pad, OH);
        covering(&oxa, &oxb, xx, k, stride, pad, OW);
        float acc = 0.0f;
        for (int oy = oya; oy < oyb; oy++)
            for (int ox = oxa; ox < oxb; ox++)
                if (am[oy * OW + ox] == me) acc += g[oy * OW + ox];
        dinp[i] += acc;
    }
}

static __global__ void avgpool_fwd_kernel(float *out, const float *inp, int N, int C, int H, int W, int k,
                                   int stride, int pad, int OH, int OW, float scale) {
    const size_t total = (size_t)N * C * OH * OW;
    FV_GRID_STRIDE(i, total) {
        const int ox = (int)(i % OW), oy = (int)((i / OW) % OH);
        const float *src = inp + (i / ((size_t)OW * OH)) * H * W;
        const int y0 = oy * stride - pad, x0 = ox * stride - pad;
        const int ya = y0 < 0 ? 0 : y0, yb = y0 + k > H ? H : y0 + k;
        const int xa = x0 < 0 ? 0 : x0, xb = x0 + k > W ? W : x0 + k;
        float acc = 0.0f;
        for (int y = ya; y < yb; y++)
            for (int xx = xa; xx < xb; xx++) acc += src[y * W + xx];
        out[i] = acc * scale;
    }
}

static __global__ void avgpool_bwd_kernel(float *dinp, const float *dout, int N, int C, int H, int W,
                                   int k, int stride, int pad, int OH, int OW, float scale) {
    const size_t total = (size_t)N * C * H * W;
    FV_GRID_STRIDE(i, total) {
        const int xx = (int)(i % W), y = (int)((i / W) % H);
        const float *g = dout + (i / ((size_t)W * H)) * OH * OW;
        int oya, oyb, oxa, oxb;
        covering(&oya, &oyb, y, k, stride, pad, OH);
        covering(&oxa, &oxb, xx, k, stride, pad, OW);
        float acc = 0.0f;
        for (int oy = oya; oy < oyb; oy++)
            for (int ox = oxa; ox < oxb; ox++) acc += g[oy * OW + ox] * scale;
        dinp[i] += acc;
    }
}

/* One warp per (n, c) plane. */
static __global__ void gap_fwd_kernel(float *out, const float *inp, size_t planes, int HW, float scale) {
    const size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (warp >= planes) return; /* whole warps leave together */
    const float *src = inp + warp * HW;
    float acc = 0.0f;
    for (int j = lane; j < HW; j += 32) acc += src[j];
    acc = fv_warp_sum(acc);
    if (lane == 0) out[warp] = acc * scale;
}

static __global__ void gap_bwd_kernel(float *dinp, const float *dout, size_t planes, int HW, float scale) {
    const size_t total = planes * HW;
    /* never fused into an FMA: rounds as pool.c's dst += dout * scale does */
    FV_GRID_STRIDE(i, total) dinp[i] = __fadd_rn(dinp[i], __fmul_rn(dout[i / HW], scale));
}

void fv_cuda_maxpool_forward(const fv_cuda_ctx *x, float *out, int32_t *argmax, const float *inp,
                             int N, int C, int H, int W, int k, int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    const size_t total = (size_t)N * C * OH * OW;
    maxpool_fwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        out, argmax, inp, N, C, H, W, k, stride, pad, OH, OW);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_maxpool_backward(const fv_cuda_ctx *x, float *dinp, const float *dout,
                              const int32_t *argmax, int N, int C, int H, int W, int k, int stride,
                              int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    if (!dinp) return;
    const size_t total = (size_t)N * C * H * W;
    maxpool_bwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        dinp, dout, argmax, N, C, H, W, k, stride, pad, OH, OW);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_avgpool_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int C,
                             int H, int W, int k, int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    const size_t total = (size_t)N * C * OH * OW;
    avgpool_fwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        out, inp, N, C, H, W, k, stride, pad, OH, OW, 1.0f / (float)(k * k));
    FV_CUDA_LAUNCHED();
}

void fv_cuda_avgpool_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N, int C,
                              int H, int W, int k, int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    if (!dinp) return;
    const size_t total = (size_t)N * C * H * W;
    avgpool_bwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        dinp, dout, N, C, H, W, k, stride, pad, OH, OW, 1.0f / (float)(k * k));
    FV_CUDA_LAUNCHED();
}

void fv_cuda_gap_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int C, int HW) {
    FV_ASSERT(HW >= 1);
    const size_t planes = (size_t)N * C;
    gap_fwd_kernel<<<fv_grid_exact(planes * 32, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        out, inp, planes, HW, 1.0f / (float)HW);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_gap_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N, int C,
                          int HW) {
    FV_ASSERT(HW >= 1);
    if (!dinp) return;
    const size_t planes = (size_t)N * C;
    gap_bwd_kernel<<<fv_grid(x, planes * HW, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        dinp, dout, planes, HW, 1.0f / (float)HW);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_maxpool_forward_replay(const fv_cuda_ctx *x, float *out, const int32_t *argmax, const float *inp,
                                    int N, int C, int H, int W, int k, int stride, int pad) {
    const int OH = pool_out(H, k, stride, pad), OW = pool_out(W, k, stride, pad);
    const size_t total = (size_t)N * C * OH * OW;
    if (total == 0) return;
    maxpool_replay_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(out, argmax, inp, H * W,
                                                                                      OH * OW, total);
    FV_CUDA_LAUNCHED();
}
