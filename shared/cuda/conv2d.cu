/* conv2d.cu: 2-D convolution on the GPU, forward and backward; the CUDA twin of conv2d.c (contract
 * in cuda_layers.h and layers.h).
 *
 * Two paths, chosen from the shape alone:
 *  - general: the batch in chunks of nb images, as many as the caller's scratch holds
 *    (fv_cuda_conv2d_scratch_floats asks for up to 128 MiB: a whole ResNet-20 or LeNet-5 batch of
 *    128 in one chunk). Scratch holds col[CRR x nb*P] (CRR = C*R*R rows
 *    ordered c, ky, kx, so the rows of group g are one block; P = OH*OW; column n*P + p) and
 *    ycn[K x nb*P]. Forward: im2col, one SGEMM per group ycn_g = w_g col_g, then a transpose to
 *    NCHW that adds the bias. Backward: dout -> ycn (transpose), dw_g += ycn_g col_g^T with beta 1
 *    (chunks accumulate in order), col_g = w_g^T ycn_g, and col2im as a gather: each input element
 *    sums the column entries it fed, so no two threads write one address and no atomics are
 *    needed. The bias gradient is a per-channel reduction over the whole dout first.
 *  - depthwise (groups == C == K, MobileNet): direct kernels; a GEMM with one row is all overhead.
 *    Weight and bias gradients: one block per weight, a fixed-order reduction over N*OH*OW.
 * Deterministic (no atomics, fixed orders). Not bitwise equal to the CPU (other GEMM orders).
 * Not here: cuDNN (cudnn_conv.cu), Winograd/FFT, TF32 tensor cores, dilation, non-square kernels.
 */
#include "cuda/common.cuh"

/* Scratch budget of the general path: 32 Mi floats = 128 MiB. */
#define CONV_CUDA_BUDGET ((size_t)32 << 20)

static int is_depthwise(const fv_conv2d_shape *s) { return s->groups == s->C && s->groups == s->K; }

static size_t out_plane(const fv_conv2d_shape *s) { return (size_t)s->OH * s->OW; }

/* Scratch floats per image: its columns and its K output rows. */
static size_t img_floats(const fv_conv2d_shape *s) {
    return ((size_t)s->C * s->R * s->R + (size_t)s->K) * out_plane(s);
}

/* Images per chunk for `floats` of scratch: at least one (the caller provides that much). */
static int chunk_images(const fv_conv2d_shape *s, size_t floats) {
    size_t nb = floats / img_floats(s);
    if (nb < 1) nb = 1;
    if (nb > (size_t)s->N) nb = (size_t)s->N;
    return (int)nb;
}

size_t fv_cuda_conv2d_scratch_floats(const fv_conv2d_shape *s) {
    if (is_depthwise(s)) return 0;
    return (size_t)chunk_images(s, CONV_CUDA_BUDGET) * img_floats(s);
}

/* col[r, n*P + p] for r = (c*R + ky)*R + kx over nb images of inp[nb, C, H, W]; zero in the
 * padding. One thread per column entry: consecutive threads write consecutive p (coalesced). */
static __global__ void im2col_kernel(float *col, const float *inp, int nb, int C, int H, int W, int R,
                              int stride, int pad, int OH, int OW) {
    const size_t P = (size_t)OH * OW, cols = (size_t)nb * P, total = (size_t)C * R * R * cols;
    FV_GRID_STRIDE(i, total) {
        const size_t r = i / cols, q = i - r * cols;
        const int n = (int)(q / P), p = (int)(q - (size_t)n * P);
        const int kx = (int)(r % R), ky = (int)((r / R) % R), c = (int)(r / ((size_t)R * R));
        const int oy = p / OW, ox = p - oy * OW;
        const int y = oy * stride - pad + ky, xx = ox * stride - pad + kx;
        float v = 0.0f;
        if (y >= 0 && y < H && xx >= 0 && xx < W) v = inp[(((size_t)n * C + c) * H + y) * W + xx];
        col[i] = v;
    }
}

/* dinp[n, c, y, x] += sum of col[(c*R + ky)*R + kx, n*P + oy*OW + ox] over the (ky, kx) whose
 * output position (oy, ox) = ((y + pad - ky) / stride, (x + pad - kx) / stride) exists. */
static __global__ void col2im_add_kernel(float *dinp, const float *col, int nb, int C, int H, int W, int R,
                                  int stride, int pad, int OH, int OW) {
    const size_t P = (size_t)OH * OW, cols = (size_t)nb * P, total = (size_t)nb * C * H * W;
    FV_GRID_STRIDE(i, total) {
        const int xx = (int)(i % W), y = (int)((i / W) % H);
        const int c = (int)((i / ((size_t)W * H)) % C), n = (int)(i / ((size_t)W * H * C));
        float acc = 0.0f;
        for (int ky = 0; ky < R; ky++) {
            const int ty = y + pad - ky;
            if (ty < 0 || ty % stride) continue;
            const int oy = ty / stride;
            if (oy >= OH) continue;
            for (int kx = 0; kx < R; kx++) {
                const int tx = xx + pad - kx;
                if (tx < 0 || tx % stride) continue;
                const int ox = tx / stride;
                if (ox >= OW) continue;
                acc += col[((size_t)(c * R + ky) * R + kx) * cols + (size_t)n * P +
                           (size_t)oy * OW + ox];
            }
        }
        dinp[i] += acc;
    }
}

/* out[n, k, p] = ycn[k, n*P + p] + (b ? b[k] : 0) over nb images. */
static __global__ void cn_to_nchw_kernel(float *out, const float *ycn, const float *b, int nb, int K,
                                  size_t P) {
    const size_t total = (size_t)nb * K * P, cols = (size_t)nb * P;
    FV_GRID_STRIDE(i, total) {
        const size_t p = i % P;
        const int k = (int)((i / P) % K), n = (int)(i / (P * K));
        out[i] = ycn[(size_t)k * cols + (size_t)n * P + p] + (b ? b[k] : 0.0f);
    }
}

/* ycn[k, n*P + p] = g[n, k, p] over nb images. */
static __global__ void nchw_to_cn_kernel(float *ycn, const float *g, int nb, int K, size_t P) {
    const size_t total = (size_t)nb * K * P, cols = (size_t)nb * P;
    FV_GRID_STRIDE(i, total) {
        const size_t p = i % P;
        const int k = (int)((i / P) % K), n = (int)(i / (P * K));
        ycn[(size_t)k * cols + (size_t)n * P + p] = g[i];
    }
}

/* db[k] += sum over n, p of g[n, k, p]; one block per channel, fixed order. */
static __global__ void channel_sum_add_kernel(float *db, const float *g, int N, int K, size_t P) {
    __shared__ float sh[32];
    const int k = blockIdx.x;
    const size_t M = (size_t)N * P;
    float acc = 0.0f;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) {
        const size_t n = j / P, p = j - n * P;
        acc += g[(n * K + k) * P + p];
    }
    acc = fv_block_sum(acc, sh);
    if (threadIdx.x == 0) db[k] += acc;
}

/* ---- depthwise: out[n, c] = w[c] (*) inp[n, c] ---- */

static __global__ void dw_forward_kernel(float *out, const float *inp, const float *w, const float *b,
                                  int N, int C, int H, int W, int R, int stride, int pad, int OH,
                                  int OW) {
    const size_t total = (size_t)N * C * OH * OW;
    FV_GRID_STRIDE(i, total) {
        const int ox = (int)(i % OW), oy = (int)((i / OW) % OH);
        const size_t pl = i / ((size_t)OW * OH);
        const int c = (int)(pl % C);
        const float *src = inp + pl * H * W, *wc = w + (size_t)c * R * R;
        float acc = 0.0f;
        for (int ky = 0; ky < R; ky++) {
            const int y = oy * stride - pad + ky;
            if (y < 0 || y >= H) continue;
            for (int kx = 0; kx < R; kx++) {
                const int xx = ox * stride - pad + kx;
                if (xx < 0 || xx >= W) continue;
                acc += wc[ky * R + kx] * src[y * W + xx];
            }
        }
        out[i] = acc + (b ? b[c] : 0.0f);
    }
}

/* dinp[n, c, y, x] += sum over (ky, kx) with an output there of w[c, ky, kx] g[n, c, oy, ox]. */
static __global__ void dw_backward_data_kernel(float *dinp, const float *g, const float *w, int N, int C,
                                        int H, int W, int R, int stride, int pad, int OH, int OW) {
    const size_t total = (size_t)N * C * H * W;
    FV_GRID_STRIDE(i, total) {
        const int xx = (int)(i % W), y = (int)((i / W) % H);
        const size_t pl = i / ((size_t)W * H);
        const int c = (int)(pl % C);
        const float *gp = g + pl * OH * OW, *wc = w + (size_t)c * R * R;
        float acc = 0.0f;
        for (int ky = 0; ky < R; ky++) {
            const int ty = y + pad - ky;
            if (ty < 0 || ty % stride) continue;
            const int oy = ty / stride;
            if (oy >= OH) continue;
            for (int kx = 0; kx < R; kx++) {
                const int tx = xx + pad - kx;
                if (tx < 0 || tx % stride) continue;
                const int ox = tx / stride;
                if (ox >= OW) continue;
                acc += wc[ky * R + kx] * gp[oy * OW + ox];
            }
        }
        dinp[i] += acc;
    }
}

/* dw[c, ky, kx] += sum over n, oy, ox of g[n, c, oy, ox] inp[n, c, y, x]; one block per weight. */
static __global__ void dw_backward_weight_kernel(float *dw, const float *g, const float *inp, int N, int C,
                                          int H, int W, int R, int stride, int pad, int OH,
                                          int OW) {
    __shared__ float sh[32];
    const int wi = blockIdx.x, c = wi / (R * R), ky = (wi / R) % R, kx = wi % R;
    const size_t P = (size_t)OH * OW, M = (size_t)N * P;
    float acc = 0.0f;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) {
        const int n = (int)(j / P), p = (int)(j - (size_t)n * P);
        const int oy = p / OW, ox = p - oy * OW;
        const int y = oy * stride - pad + ky, xx = ox * stride - pad + kx;
        if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
        const size_t pl = (size_t)n * C + c;
        acc += g[pl * P + p] * inp[(pl * H + y) * W + xx];
    }
    acc = fv_block_sum(acc, sh);
    if (threadIdx.x == 0) dw[wi] += acc;
}

void fv_cuda_channel_sum_add(const fv_cuda_ctx *x, float *db, const float *g, int N, int K,
                             size_t P) {
    channel_sum_add_kernel<<<K, FV_THREADS, 0, x->stream>>>(db, g, N, K, P);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_conv2d_forward(const fv_cuda_ctx *x, float *out, const float *inp, const float *w,
                            const float *b, float *scratch, size_t scratch_floats,
                            const fv_conv2d_shape *s) {
    const size_t P = out_plane(s);
    if (is_depthwise(s)) {
        const size_t total = (size_t)s->N * s->C * P;
        dw_forward_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
            out, inp, w, b, s->N, s->C, s->H, s->W, s->R, s->stride, s->pad, s->OH, s->OW);
        FV_CUDA_LAUNCHED();
        return;
    }
    FV_ASSERT(scratch && scratch_floats >= img_floats(s));
    const int nbmax = chunk_images(s, scratch_floats), G = s->groups;
    const int CRR = s->C * s->R * s->R, Kg = s->K / G, CRRg = CRR / G;
    const size_t in_img = (size_t)s->C * s->H * s->W, out_img = (size_t)s->K * P;
    for (int n0 = 0; n0 < s->N; n0 += nbmax) {
        const int nb = s->N - n0 < nbmax ? s->N - n0 : nbmax;
        const size_t cols = (size_t)nb * P;
        float *col = scratch, *ycn = scratch + (size_t)CRR * cols;
        FV_ASSERT(cols <= 0x7fffffff);
        im2col_kernel<<<fv_grid(x, (size_t)CRR * cols, FV_THREADS), FV_THREADS, 0, x->stream>>>(
            col, inp + (size_t)n0 * in_img, nb, s->C, s->H, s->W, s->R, s->stride, s->pad, s->OH,
            s->OW);
        FV_CUDA_LAUNCHED();
        for (int g = 0; g < G; g++)
            fv_gemm_rm(x, 0, 0, Kg, (int)cols, CRRg, 1.0f, w + (size_t)g * Kg * CRRg, CRRg,
                       col + (size_t)g * CRRg * cols, (int)cols, 0.0f, ycn + (size_t)g * Kg * cols,
                       (int)cols);
        cn_to_nchw_kernel<<<fv_grid(x, (size_t)s->K * cols, FV_THREADS), FV_THREADS, 0,
                            x->stream>>>(out + (size_t)n0 * out_img, ycn, b, nb, s->K, P);
        FV_CUDA_LAUNCHED();
    }
}

void fv_cuda_conv2d_backward(const fv_cuda_ctx *x, float *dinp, float *dw, float *db,
                             const float *dout, const float *inp, const float *w, float *scratch,
                             size_t scratch_floats, const fv_conv2d_shape *s) {
    const size_t P = out_plane(s);
    if (db) {
        channel_sum_add_kernel<<<s->K, FV_THREADS, 0, x->stream>>>(db, dout, s->N, s->K, P);
        FV_CUDA_LAUNCHED();
    }
    if (is_depthwise(s)) {
        if (dw) {
            dw_backward_weight_kernel<<<s->C * s->R * s->R, FV_THREADS, 0, x->stream>>>(
                dw, dout, inp, s->N, s->C, s->H, s->W, s->R, s->stride, s->pad, s->OH, s->OW);
            FV_CUDA_LAUNCHED();
        }
        if (dinp) {
            const size_t total = (size_t)s->N * s->C * s->H * s->W;
            dw_backward_data_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
                dinp, dout, w, s->N, s->C, s->H, s->W, s->R, s->stride, s->pad, s->OH, s->OW);
            FV_CUDA_LAUNCHED();
        }
        return;
    }
    FV_ASSERT(scratch && scratch_floats >= img_floats(s));
    const int nbmax = chunk_images(s, scratch_floats), G = s->groups;
    const int CRR = s->C * s->R * s->R, Kg = s->K / G, CRRg = CRR / G;
    const size_t in_img = (size_t)s->C * s->H * s->W, out_img = (size_t)s->K * P;
    for (int n0 = 0; n0 < s->N; n0 += nbmax) {
        const int nb = s->N - n0 < nbmax ? s->N - n0 : nbmax;
        const size_t cols = (size_t)nb * P;
        float *col = scratch, *ycn = scratch + (size_t)CRR * cols;
        FV_ASSERT(cols <= 0x7fffffff);
        nchw_to_cn_kernel<<<fv_grid(x, (size_t)s->K * cols, FV_THREADS), FV_THREADS, 0,
                            x->stream>>>(ycn, dout + (size_t)n0 * out_img, nb, s->K, P);
        FV_CUDA_LAUNCHED();
        if (dw) { /* NULL: the input gradient only (gradient inversion's passes) */
            im2col_kernel<<<fv_grid(x, (size_t)CRR * cols, FV_THREADS), FV_THREADS, 0, x->stream>>>(
                col, inp + (size_t)n0 * in_img, nb, s->C, s->H, s->W, s->R, s->stride, s->pad, s->OH,
                s->OW);
            FV_CUDA_LAUNCHED();
            /* dw_g[Kg, CRRg] += ycn_g[Kg, cols] col_g[CRRg, cols]^T */
            for (int g = 0; g < G; g++)
                fv_gemm_rm(x, 0, 1, Kg, CRRg, (int)cols, 1.0f, ycn + (size_t)g * Kg * cols, (int)cols,
                           col + (size_t)g * CRRg * cols, (int)cols, 1.0f, dw + (size_t)g * Kg * CRRg,
                           CRRg);
        }
        if (!dinp) continue;
        /* col_g[CRRg, cols] = w_g[Kg, CRRg]^T ycn_g[Kg, cols] (the columns are not needed again) */
        for (int g = 0; g < G; g++)
            fv_gemm_rm(x, 1, 0, CRRg, (int)cols, Kg, 1.0f, w + (size_t)g * Kg * CRRg, CRRg,
                       ycn + (size_t)g * Kg * cols, (int)cols, 0.0f, col + (size_t)g * CRRg * cols,
                       (int)cols);
        const size_t total = (size_t)nb * in_img;
        col2im_add_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
            dinp + (size_t)n0 * in_img, col, nb, s->C, s->H, s->W, s->R, s->stride, s->pad, s->OH,
            s->OW);
        FV_CUDA_LAUNCHED();
    }
}
