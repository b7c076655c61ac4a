/* upsample.cu: nearest-neighbour upsampling of NCHW by an integer factor s on the GPU; the CUDA
 * twin of upsample.c: out[n, c, y, x] = inp[n, c, y / s, x / s]; backward sums each s x s block
 * (one thread per input element, rows of the block in order).
 * Not here: bilinear modes, non-integer factors.
 */
#include "cuda/common.cuh"

static __global__ void upsample_fwd_kernel(float *out, const float *inp, int H, int W, int s,
                                    size_t total) {
    const int OW = W * s, OH = H * s;
    FV_GRID_STRIDE(i, total) {
        const int X = (int)(i % OW), Y = (int)((i / OW) % OH);
        const size_t pl = i / ((size_t)OW * OH);
        out[i] = inp[(pl * H + Y / s) * W + X / s];
    }
}

static __global__ void upsample_bwd_kernel(float *dinp, const float *dout, int H, int W, int s,
                                    size_t total) {
    const size_t OW = (size_t)W * s;
    FV_GRID_STRIDE(i, total) {
        const int xx = (int)(i % W), y = (int)((i / W) % H);
        const size_t pl = i / ((size_t)W * H);
        const float *g = dout + pl * H * W * s * s;
        float acc = 0.0f;
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++) acc += g[((size_t)y * s + a) * OW + (size_t)xx * s + b];
        dinp[i] += acc;
    }
}

void fv_cuda_upsample_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int C,
                              int H, int W, int s) {
    FV_ASSERT(s >= 1);
    const size_t total = (size_t)N * C * H * W * s * s;
    upsample_fwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(out, inp, H, W,
                                                                                     s, total);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_upsample_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N, int C,
                               int H, int W, int s) {
    FV_ASSERT(s >= 1);
    if (!dinp) return;
    const size_t total = (size_t)N * C * H * W;
    upsample_bwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(dinp, dout, H,
                                                                                     W, s, total);
    FV_CUDA_LAUNCHED();
}
