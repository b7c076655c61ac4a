/* transformer.cu: the token ops of a Vision Transformer on the GPU, forward and backward; the CUDA
 * twin of transformer.c (layer norm, exact GELU, patch tokens, class-token selection, multi-head
 * self-attention) plus the column sum the token-wise linear layer's bias gradient uses (the layer
 * itself is linear.cu's, over N*T rows, as net.c runs it). Tokens are [N, T, D] row-major.
 *
 * Work split (every launch on the ctx's stream, no allocation, so a step captures into a graph):
 *  - row-wise ops (layer norm forward, its input gradient, softmax and its gradient): one warp per
 *    row, the lanes striding over the row; sums are warp shuffles in a fixed tree;
 *  - parameter gradients (layer norm weight and bias, the token-linear bias): one 32 x 32 block per
 *    32 columns; thread (tx, ty) sums rows ty, ty + 32, ... of column tx in row order, then the
 *    32 partials of a column are added by a fixed tree in shared memory. The class token's and the
 *    position embedding's gradients: one thread per element, samples in order (transformer.c's
 *    order exactly). No atomics anywhere: results are bitwise reproducible on one GPU model;
 *  - attention: cuBLAS strided-batched SGEMMs, one call per head, each batched over the N samples
 *    (the qkv layout [N, T, 3D] makes sample n's q, k and v of head h matrices [T, dh] with leading
 *    dimension 3D at a fixed stride T*3D; the probabilities [N, H, T, T] are at stride H*T*T), and
 *    the softmax / softmax-backward kernels between them. The 1/sqrt(dh) scale is the GEMM's alpha,
 *    as in transformer.c. The GEMMs use the ctx's cuBLAS handle, stream and workspace, so they
 *    follow the ctx's math mode: FP32 by default, TF32 tensor cores after fv_cuda_ctx_set_tf32(1).
 * Numerics: the same formulas as transformer.c; the element-wise ones (tokens, token selection) are
 * bitwise the CPU's, the others differ by summation order, FMA contraction and device libm (erff,
 * expf): tests/test_cuda_layers.c states the tolerances.
 * Not here: the linear layer (linear.cu), residual adds (activations.cu), masks, attention dropout.
 */
#include <math.h>

#include "cuda/common.cuh"

#define WARPS_PER_BLOCK 8 /* row kernels: 256 threads, one row per warp */

/* The row this warp owns (blockDim.x == 32 * WARPS_PER_BLOCK); every lane of a warp gets the same
 * row, so an early return is warp-uniform and the full-mask shuffles stay valid. */
__device__ __forceinline__ size_t warp_row(void) {
    return (size_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5);
}

static unsigned row_blocks(size_t rows) { return fv_grid_exact(rows, WARPS_PER_BLOCK); }

/* Max over a warp; every lane gets it. */
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ---- column sums (parameter gradients) ---- */

#define COLS 32 /* columns per block; blockDim (COLS, COLS) */

/* Adds the COLS x COLS partials sh[ty][tx] over ty by a fixed tree; the sum ends in sh[0][tx]. */
__device__ __forceinline__ void col_tree(float (*sh)[COLS + 1]) {
    for (int s = COLS / 2; s > 0; s >>= 1) {
        __syncthreads();
        if (threadIdx.y < s) sh[threadIdx.y][threadIdx.x] += sh[threadIdx.y + s][threadIdx.x];
    }
    __syncthreads();
}

/* grid ceil(C / COLS): db[c] += sum over r of g[r, c]. */
static __global__ void col_sum_kernel(float *db, const float *g, size_t R, int C) {
    __shared__ float sh[COLS][COLS + 1];
    const int c = blockIdx.x * COLS + threadIdx.x;
    float acc = 0.0f;
    if (c < C)
        for (size_t r = threadIdx.y; r < R; r += COLS) acc += g[r * C + c];
    sh[threadIdx.y][threadIdx.x] = acc;
    col_tree(sh);
    if (threadIdx.y == 0 && c < C) db[c] += sh[0][threadIdx.x];
}

void fv_cuda_col_sum_add(const fv_cuda_ctx *x, float *db, const float *g, size_t R, int C) {
    FV_ASSERT(R >= 1 && C >= 1);
    col_sum_kernel<<<fv_grid_exact((size_t)C, COLS), dim3(COLS, COLS), 0, x->stream>>>(db, g, R, C);
    FV_CUDA_LAUNCHED();
}

/* ---- layer norm ---- */

static __global__ void ln_fwd_kernel(float *out, float *mean, float *rstd, const float *inp,
                                     const float *w, const float *b, size_t R, int D, float eps) {
    const size_t r = warp_row();
    if (r >= R) return;
    const int lane = threadIdx.x & 31;
    const float *xr = inp + r * D;
    float *o = out + r * D;
    float m = 0.0f, v = 0.0f;
    for (int d = lane; d < D; d += 32) m += xr[d];
    m = fv_warp_sum(m) / (float)D;
    for (int d = lane; d < D; d += 32) {
        const float c = xr[d] - m;
        v += c * c;
    }
    v = fv_warp_sum(v) / (float)D;
    const float s = 1.0f / sqrtf(v + eps);
    for (int d = lane; d < D; d += 32) o[d] = (xr[d] - m) * s * w[d] + b[d];
    if (lane == 0) {
        mean[r] = m;
        rstd[r] = s;
    }
}

/* grid ceil(D / COLS): dw[d] += sum_r g[r,d] xhat[r,d], db[d] += sum_r g[r,d]. */
static __global__ void ln_param_kernel(float *dw, float *db, const float *g, const float *inp,
                                       const float *mean, const float *rstd, size_t R, int D) {
    __shared__ float sw[COLS][COLS + 1], sb[COLS][COLS + 1];
    const int d = blockIdx.x * COLS + threadIdx.x;
    float aw = 0.0f, ab = 0.0f;
    if (d < D)
        for (size_t r = threadIdx.y; r < R; r += COLS) {
            const float gv = g[r * D + d];
            aw += gv * ((inp[r * D + d] - mean[r]) * rstd[r]);
            ab += gv;
        }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    col_tree(sw);
    col_tree(sb);
    if (threadIdx.y == 0 && d < D) {
        dw[d] += sw[0][threadIdx.x];
        db[d] += sb[0][threadIdx.x];
    }
}

/* One warp per row: dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), dxhat = g w. */
static __global__ void ln_dx_kernel(float *dinp, const float *g, const float *inp,
                                    const float *mean, const float *rstd, const float *w, size_t R,
                                    int D) {
    const size_t r = warp_row();
    if (r >= R) return;
    const int lane = threadIdx.x & 31;
    const float *xr = inp + r * D, *gr = g + r * D;
    float *dx = dinp + r * D;
    const float m = mean[r], s = rstd[r];
    float a = 0.0f, bx = 0.0f;
    for (int d = lane; d < D; d += 32) {
        const float dxh = gr[d] * w[d];
        a += dxh;
        bx += dxh * (xr[d] - m) * s;
    }
    a = fv_warp_sum(a) / (float)D;
    bx = fv_warp_sum(bx) / (float)D;
    for (int d = lane; d < D; d += 32) dx[d] += s * (gr[d] * w[d] - a - (xr[d] - m) * s * bx);
}

void fv_cuda_layernorm_forward(const fv_cuda_ctx *x, float *out, float *mean, float *rstd,
                               const float *inp, const float *w, const float *b, int R, int D,
                               float eps) {
    FV_ASSERT(R >= 1 && D >= 1 && eps > 0.0f);
    ln_fwd_kernel<<<row_blocks((size_t)R), 32 * WARPS_PER_BLOCK, 0, x->stream>>>(
        out, mean, rstd, inp, w, b, (size_t)R, D, eps);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_layernorm_backward(const fv_cuda_ctx *x, float *dinp, float *dw, float *db,
                                const float *dout, const float *inp, const float *mean,
                                const float *rstd, const float *w, int R, int D) {
    FV_ASSERT(R >= 1 && D >= 1 && dw && db);
    ln_param_kernel<<<fv_grid_exact((size_t)D, COLS), dim3(COLS, COLS), 0, x->stream>>>(
        dw, db, dout, inp, mean, rstd, (size_t)R, D);
    FV_CUDA_LAUNCHED();
    if (!dinp) return;
    ln_dx_kernel<<<row_blocks((size_t)R), 32 * WARPS_PER_BLOCK, 0, x->stream>>>(
        dinp, dout, inp, mean, rstd, w, (size_t)R, D);
    FV_CUDA_LAUNCHED();
}

/* ---- GELU (exact): x Phi(x) ---- */

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT2PI 0.39894228040143267794f

static __global__ void gelu_fwd_kernel(float *out, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * INV_SQRT2));
}

static __global__ void gelu_bwd_kernel(float *dinp, const float *dout, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) {
        const float v = inp[i];
        const float g = 0.5f * (1.0f + erff(v * INV_SQRT2)) + v * INV_SQRT2PI * expf(-0.5f * v * v);
        dinp[i] += dout[i] * g;
    }
}

void fv_cuda_gelu_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n) {
    if (!n) return;
    gelu_fwd_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(out, inp, n);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_gelu_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, const float *inp,
                           size_t n) {
    if (!dinp || !n) return;
    gelu_bwd_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(dinp, dout, inp, n);
    FV_CUDA_LAUNCHED();
}

/* ---- patch tokens ---- */

/* out[n, t, d]: cls[d] + pos[d] for t = 0, inp[n, d, t - 1] + pos[t, d] after. */
static __global__ void tokens_fwd_kernel(float *out, const float *inp, const float *cls,
                                         const float *pos, int D, int P, size_t total) {
    const int T = P + 1;
    FV_GRID_STRIDE(i, total) {
        const int d = (int)(i % D);
        const size_t nt = i / D;
        const int t = (int)(nt % T);
        const size_t n = nt / T;
        out[i] = t == 0 ? cls[d] + pos[d] : inp[(n * D + d) * P + (t - 1)] + pos[(size_t)t * D + d];
    }
}

/* One thread per element e of [T, D]: dpos[e] += dout[n, e] for n in order; for e < D (the class
 * token's row) dcls[e] too. transformer.c's additions in its order: bitwise the CPU's. */
static __global__ void tokens_param_kernel(float *dcls, float *dpos, const float *dout, int N, int D,
                                           size_t TD) {
    FV_GRID_STRIDE(e, TD) {
        float p = dpos[e], c = e < (size_t)D ? dcls[e] : 0.0f;
        for (int n = 0; n < N; n++) {
            const float g = dout[(size_t)n * TD + e];
            p += g;
            c += g;
        }
        dpos[e] = p;
        if (e < (size_t)D) dcls[e] = c;
    }
}

/* One thread per input element (n, d, p): dinp[n, d, p] += dout[n, 1 + p, d]. */
static __global__ void tokens_dx_kernel(float *dinp, const float *dout, int D, int P, size_t total) {
    const int T = P + 1;
    FV_GRID_STRIDE(i, total) {
        const int p = (int)(i % P);
        const size_t nd = i / P;
        const int d = (int)(nd % D);
        const size_t n = nd / D;
        dinp[i] += dout[(n * T + 1 + p) * D + d];
    }
}

void fv_cuda_tokens_forward(const fv_cuda_ctx *x, float *out, const float *inp, const float *cls,
                            const float *pos, int N, int D, int P) {
    FV_ASSERT(N >= 1 && D >= 1 && P >= 1);
    const size_t total = (size_t)N * (P + 1) * D;
    tokens_fwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(out, inp, cls,
                                                                                  pos, D, P, total);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_tokens_backward(const fv_cuda_ctx *x, float *dinp, float *dcls, float *dpos,
                             const float *dout, int N, int D, int P) {
    FV_ASSERT(N >= 1 && D >= 1 && P >= 1 && dcls && dpos);
    const size_t TD = (size_t)(P + 1) * D;
    tokens_param_kernel<<<fv_grid(x, TD, FV_THREADS), FV_THREADS, 0, x->stream>>>(dcls, dpos, dout,
                                                                                 N, D, TD);
    FV_CUDA_LAUNCHED();
    if (!dinp) return;
    const size_t total = (size_t)N * D * P;
    tokens_dx_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(dinp, dout, D, P,
                                                                                 total);
    FV_CUDA_LAUNCHED();
}

/* ---- class-token selection ---- */

static __global__ void select_fwd_kernel(float *out, const float *inp, int T, int D, int t,
                                         size_t total) {
    FV_GRID_STRIDE(i, total) {
        const size_t n = i / D;
        out[i] = inp[(n * T + t) * D + i % D];
    }
}

static __global__ void select_bwd_kernel(float *dinp, const float *dout, int T, int D, int t,
                                         size_t total) {
    FV_GRID_STRIDE(i, total) {
        const size_t n = i / D;
        dinp[(n * T + t) * D + i % D] += dout[i];
    }
}

void fv_cuda_token_select_forward(const fv_cuda_ctx *x, float *out, const float *inp, int N, int T,
                                  int D, int t) {
    FV_ASSERT(N >= 1 && D >= 1 && t >= 0 && t < T);
    const size_t total = (size_t)N * D;
    select_fwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(out, inp, T, D,
                                                                                  t, total);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_token_select_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, int N,
                                   int T, int D, int t) {
    FV_ASSERT(N >= 1 && D >= 1 && t >= 0 && t < T);
    if (!dinp) return;
    const size_t total = (size_t)N * D;
    select_bwd_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(dinp, dout, T,
                                                                                  D, t, total);
    FV_CUDA_LAUNCHED();
}

/* ---- multi-head self-attention ---- */

/* One warp per row of a[rows, T]: a = softmax(a), the maximum subtracted first (transformer.c's
 * steps: e = exp(a - max), sum, times 1 / sum). */
static __global__ void softmax_rows_kernel(float *a, size_t rows, int T) {
    const size_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    float *row = a + r * T;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += 32) mx = fmaxf(mx, row[j]);
    mx = warp_max(mx);
    float s = 0.0f;
    for (int j = lane; j < T; j += 32) {
        const float e = expf(row[j] - mx);
        row[j] = e;
        s += e;
    }
    const float inv = 1.0f / fv_warp_sum(s);
    for (int j = lane; j < T; j += 32) row[j] *= inv;
}

/* One warp per row: ds = a * (ds - sum_j ds a) (ds holds d loss / d a on entry). */
static __global__ void softmax_bwd_rows_kernel(float *ds, const float *a, size_t rows, int T) {
    const size_t r = warp_row();
    if (r >= rows) return;
    const int lane = threadIdx.x & 31;
    float *dr = ds + r * T;
    const float *ar = a + r * T;
    float s = 0.0f;
    for (int j = lane; j < T; j += 32) s += dr[j] * ar[j];
    s = fv_warp_sum(s);
    for (int j = lane; j < T; j += 32) dr[j] = ar[j] * (dr[j] - s);
}

void fv_cuda_attention_forward(const fv_cuda_ctx *x, float *out, float *att, const float *qkv,
                               int N, int T, int D, int H) {
    FV_ASSERT(N >= 1 && T >= 1 && H >= 1 && D % H == 0);
    const int dh = D / H, ld = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    const long long sq = (long long)T * ld, sa = (long long)H * T * T, so = (long long)T * D;
    for (int h = 0; h < H; h++) {
        const float *q = qkv + (size_t)h * dh, *k = q + D;
        float *a = att + (size_t)h * T * T;
        /* a = scale q k^T for every sample (row-major [T, T]) */
        fv_gemm_rm_batched(x, 0, 1, T, T, dh, scale, q, ld, sq, k, ld, sq, 0.0f, a, T, sa, N);
    }
    const size_t rows = (size_t)N * H * T;
    softmax_rows_kernel<<<row_blocks(rows), 32 * WARPS_PER_BLOCK, 0, x->stream>>>(att, rows, T);
    FV_CUDA_LAUNCHED();
    for (int h = 0; h < H; h++) {
        const float *v = qkv + (size_t)h * dh + 2 * (size_t)D;
        const float *a = att + (size_t)h * T * T;
        /* out[:, h dh:(h+1) dh] = a v */
        fv_gemm_rm_batched(x, 0, 0, T, dh, T, 1.0f, a, T, sa, v, ld, sq, 0.0f, out + (size_t)h * dh,
                           D, so, N);
    }
}

void fv_cuda_attention_backward(const fv_cuda_ctx *x, float *dqkv, const float *dout,
                                const float *qkv, const float *att, float *scratch, int N, int T,
                                int D, int H) {
    FV_ASSERT(N >= 1 && T >= 1 && H >= 1 && D % H == 0);
    const int dh = D / H, ld = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    const long long sq = (long long)T * ld, sa = (long long)H * T * T, so = (long long)T * D;
    for (int h = 0; h < H; h++) {
        const size_t o = (size_t)h * dh;
        const float *v = qkv + o + 2 * (size_t)D, *a = att + (size_t)h * T * T, *g = dout + o;
        float *dv = dqkv + o + 2 * (size_t)D, *ds = scratch + (size_t)h * T * T;
        /* dv += a^T g; da = g v^T */
        fv_gemm_rm_batched(x, 1, 0, T, dh, T, 1.0f, a, T, sa, g, D, so, 1.0f, dv, ld, sq, N);
        fv_gemm_rm_batched(x, 0, 1, T, T, dh, 1.0f, g, D, so, v, ld, sq, 0.0f, ds, T, sa, N);
    }
    const size_t rows = (size_t)N * H * T;
    softmax_bwd_rows_kernel<<<row_blocks(rows), 32 * WARPS_PER_BLOCK, 0, x->stream>>>(scratch, att,
                                                                                     rows, T);
    FV_CUDA_LAUNCHED();
    for (int h = 0; h < H; h++) {
        const size_t o = (size_t)h * dh;
        const float *q = qkv + o, *k = q + D, *ds = scratch + (size_t)h * T * T;
        float *dq = dqkv + o, *dk = dq + D;
        /* dq += scale ds k; dk += scale ds^T q */
        fv_gemm_rm_batched(x, 0, 0, T, dh, T, scale, ds, T, sa, k, ld, sq, 1.0f, dq, ld, sq, N);
        fv_gemm_rm_batched(x, 1, 0, T, dh, T, scale, ds, T, sa, q, ld, sq, 1.0f, dk, ld, sq, N);
    }
}
