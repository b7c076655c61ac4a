/* batchnorm.cu: batch normalisation over N x C x HW on the GPU with PyTorch's semantics; the CUDA
 * twin of batchnorm.c (biased batch variance to normalise, unbiased to the running variance, which
 * stays unchanged when N*HW == 1; two-pass mean and variance).
 *
 * A channel's M = N*HW values are split into S contiguous ranges, one block each (S from the
 * shape alone: about 8K values per block, at most 64), so ResNet-20's 16-channel layers still
 * fill the GPU. Per block a fixed-order float reduction; the S partials are combined in double in
 * order s = 0..S-1 by whoever needs the channel's total, always the same way, so the mean used by
 * the variance pass and the one saved for backward are the same float. Scratch (device floats):
 * part_a[C*S], part_b[C*S], then sums[2C] (backward's sum g and sum g*xhat as floats).
 * Launches: forward train 4 (sum, squared deviations, statistics, normalise), backward 3.
 * The _relu variants take in the ReLU that is the batch norm's only consumer (net.cu's fusion):
 * the normalise kernel writes max(y, 0), and backward reads the ReLU's gradient through its
 * output's sign, as 0 + (out > 0 ? dout : 0), the value ReLU's backward would have accumulated
 * into the zeroed batch-norm output gradient: the same bits as the two ops apart, one kernel and
 * two passes over the activations fewer each way.
 * Not here: cumulative averaging (momentum None), convolution fused with batch norm.
 */
#include "cuda/common.cuh"

#define BN_PER_BLOCK 8192
#define BN_MAX_SPLIT 64

static int bn_splits(int N, int HW) {
    const size_t M = (size_t)N * HW;
    size_t s = (M + BN_PER_BLOCK - 1) / BN_PER_BLOCK;
    if (s > BN_MAX_SPLIT) s = BN_MAX_SPLIT;
    return s < 1 ? 1 : (int)s;
}

size_t fv_cuda_batchnorm_scratch_floats(int N, int C, int HW) {
    return 2 * (size_t)C * bn_splits(N, HW) + 2 * (size_t)C;
}

/* The range [*a, *b) of split s of M values. */
__device__ __forceinline__ void split_range(size_t *a, size_t *b, size_t M, int s, int S) {
    *a = M * (size_t)s / (size_t)S;
    *b = M * (size_t)(s + 1) / (size_t)S;
}

/* Combined partials of channel c, in double, in split order. */
__device__ __forceinline__ double combine(const float *part, int c, int S) {
    double t = 0.0;
    for (int s = 0; s < S; s++) t += (double)part[(size_t)c * S + s];
    return t;
}

/* grid (S, C): part[c*S + s] = sum of channel c's values in split s. */
static __global__ void bn_sum_kernel(float *part, const float *inp, int C, int HW, size_t M) {
    __shared__ float sh[32];
    const int s = blockIdx.x, S = gridDim.x, c = blockIdx.y;
    size_t a, b;
    split_range(&a, &b, M, s, S);
    float acc = 0.0f;
    for (size_t j = a + threadIdx.x; j < b; j += blockDim.x) {
        const size_t n = j / HW, i = j - n * HW;
        acc += inp[(n * C + c) * HW + i];
    }
    acc = fv_block_sum(acc, sh);
    if (threadIdx.x == 0) part[(size_t)c * S + s] = acc;
}

/* grid (S, C): part_b[c*S + s] = sum of (x - mean_c)^2 over split s. */
static __global__ void bn_sqdev_kernel(float *part_b, const float *part_a, const float *inp, int C, int HW,
                                size_t M) {
    __shared__ float sh[32];
    __shared__ float mean_sh;
    const int s = blockIdx.x, S = gridDim.x, c = blockIdx.y;
    if (threadIdx.x == 0) mean_sh = (float)(combine(part_a, c, S) / (double)M);
    __syncthreads();
    const float m = mean_sh;
    size_t a, b;
    split_range(&a, &b, M, s, S);
    float acc = 0.0f;
    for (size_t j = a + threadIdx.x; j < b; j += blockDim.x) {
        const size_t n = j / HW, i = j - n * HW;
        const float d = inp[(n * C + c) * HW + i] - m;
        acc += d * d;
    }
    acc = fv_block_sum(acc, sh);
    if (threadIdx.x == 0) part_b[(size_t)c * S + s] = acc;
}

/* One thread per channel: saved statistics and the running-statistics update. */
static __global__ void bn_stats_kernel(float *mean, float *invstd, float *run_mean, float *run_var,
                                const float *part_a, const float *part_b, int C, int S, size_t M,
                                float momentum, float eps) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const float m = (float)(combine(part_a, c, S) / (double)M);
    const double ss = combine(part_b, c, S);
    const double var = ss / (double)M;
    mean[c] = m;
    invstd[c] = (float)(1.0 / sqrt(var + (double)eps));
    run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * m;
    if (M > 1)
        run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)(ss / (double)(M - 1));
}

template <bool RELU>
static __global__ void bn_norm_kernel(float *out, const float *inp, const float *mean, const float *invstd,
                               const float *gamma, const float *beta, int C, int HW, size_t total) {
    FV_GRID_STRIDE(i, total) {
        const int c = (int)((i / HW) % C);
        const float scale = gamma[c] * invstd[c];
        const float y = (inp[i] - mean[c]) * scale + beta[c];
        out[i] = RELU ? (y > 0.0f ? y : 0.0f) : y;
    }
}

/* The batch norm's output gradient at off: dout itself, or through the ReLU that consumes it. */
template <bool RELU>
__device__ __forceinline__ float bn_grad_at(const float *g, const float *relu_out, size_t off) {
    return RELU ? __fadd_rn(0.0f, relu_out[off] > 0.0f ? g[off] : 0.0f) : g[off];
}

static __global__ void bn_eval_kernel(float *out, const float *inp, const float *gamma, const float *beta,
                               const float *run_mean, const float *run_var, int C, int HW,
                               size_t total, float eps) {
    FV_GRID_STRIDE(i, total) {
        const int c = (int)((i / HW) % C);
        const float scale = gamma[c] / sqrtf(run_var[c] + eps);
        out[i] = (inp[i] - run_mean[c]) * scale + beta[c];
    }
}

/* grid (S, C): split sums of g and of g * xhat. */
template <bool RELU>
static __global__ void bn_bwd_sums_kernel(float *part_a, float *part_b, const float *g, const float *relu_out,
                                   const float *inp, const float *mean, const float *invstd, int C, int HW,
                                   size_t M) {
    __shared__ float sh[32];
    const int s = blockIdx.x, S = gridDim.x, c = blockIdx.y;
    const float m = mean[c], is = invstd[c];
    size_t a, b;
    split_range(&a, &b, M, s, S);
    float sa = 0.0f, sb = 0.0f;
    for (size_t j = a + threadIdx.x; j < b; j += blockDim.x) {
        const size_t n = j / HW, i = j - n * HW, off = (n * C + c) * HW + i;
        const float go = bn_grad_at<RELU>(g, relu_out, off);
        sa += go;
        sb += go * ((inp[off] - m) * is);
    }
    sa = fv_block_sum(sa, sh);
    sb = fv_block_sum(sb, sh);
    if (threadIdx.x == 0) {
        part_a[(size_t)c * S + s] = sa;
        part_b[(size_t)c * S + s] = sb;
    }
}

static __global__ void bn_bwd_stats_kernel(float *dgamma, float *dbeta, float *sums, const float *part_a,
                                    const float *part_b, int C, int S) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const double sg = combine(part_a, c, S), sgx = combine(part_b, c, S);
    dgamma[c] += (float)sgx;
    if (dbeta) dbeta[c] += (float)sg;
    sums[2 * c] = (float)sg;
    sums[2 * c + 1] = (float)sgx;
}

/* dinp += gamma * invstd / M * (M * g - sum g - xhat * sum g*xhat). */
template <bool RELU>
static __global__ void bn_bwd_data_kernel(float *dinp, const float *g, const float *relu_out, const float *inp,
                                   const float *mean, const float *invstd, const float *gamma,
                                   const float *sums, int C, int HW, size_t M, size_t total) {
    const float fm = (float)M;
    FV_GRID_STRIDE(i, total) {
        const int c = (int)((i / HW) % C);
        const float is = invstd[c], k = gamma[c] * is / fm;
        const float gi = bn_grad_at<RELU>(g, relu_out, i);
        dinp[i] += k * (fm * gi - sums[2 * c] - (inp[i] - mean[c]) * is * sums[2 * c + 1]);
    }
}

template <bool RELU>
static void bn_forward_train(const fv_cuda_ctx *x, float *out, float *mean, float *invstd, float *run_mean,
                             float *run_var, const float *inp, const float *gamma, const float *beta,
                             float *scratch, int N, int C, int HW, float momentum, float eps) {
    FV_ASSERT(N >= 1 && C >= 1 && HW >= 1 && eps > 0.0f && momentum >= 0.0f && momentum <= 1.0f);
    FV_ASSERT(C <= 65535);
    const int S = bn_splits(N, HW);
    const size_t M = (size_t)N * HW, total = M * C;
    float *pa = scratch, *pb = scratch + (size_t)C * S;
    const dim3 grid((unsigned)S, (unsigned)C);
    bn_sum_kernel<<<grid, FV_THREADS, 0, x->stream>>>(pa, inp, C, HW, M);
    FV_CUDA_LAUNCHED();
    bn_sqdev_kernel<<<grid, FV_THREADS, 0, x->stream>>>(pb, pa, inp, C, HW, M);
    FV_CUDA_LAUNCHED();
    bn_stats_kernel<<<fv_grid_exact((size_t)C, 64), 64, 0, x->stream>>>(
        mean, invstd, run_mean, run_var, pa, pb, C, S, M, momentum, eps);
    FV_CUDA_LAUNCHED();
    bn_norm_kernel<RELU><<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        out, inp, mean, invstd, gamma, beta, C, HW, total);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_batchnorm_forward_train(const fv_cuda_ctx *x, float *out, float *mean, float *invstd,
                                     float *run_mean, float *run_var, const float *inp,
                                     const float *gamma, const float *beta, float *scratch, int N,
                                     int C, int HW, float momentum, float eps) {
    bn_forward_train<false>(x, out, mean, invstd, run_mean, run_var, inp, gamma, beta, scratch, N, C, HW,
                            momentum, eps);
}

void fv_cuda_batchnorm_forward_train_relu(const fv_cuda_ctx *x, float *out, float *mean, float *invstd,
                                          float *run_mean, float *run_var, const float *inp,
                                          const float *gamma, const float *beta, float *scratch, int N,
                                          int C, int HW, float momentum, float eps) {
    bn_forward_train<true>(x, out, mean, invstd, run_mean, run_var, inp, gamma, beta, scratch, N, C, HW,
                           momentum, eps);
}

void fv_cuda_batchnorm_forward_eval(const fv_cuda_ctx *x, float *out, const float *inp,
                                    const float *gamma, const float *beta, const float *run_mean,
                                    const float *run_var, int N, int C, int HW, float eps) {
    FV_ASSERT(N >= 1 && C >= 1 && HW >= 1 && eps > 0.0f);
    const size_t total = (size_t)N * C * HW;
    bn_eval_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        out, inp, gamma, beta, run_mean, run_var, C, HW, total, eps);
    FV_CUDA_LAUNCHED();
}

template <bool RELU>
static void bn_backward(const fv_cuda_ctx *x, float *dinp, float *dgamma, float *dbeta, const float *dout,
                        const float *relu_out, const float *inp, const float *mean, const float *invstd,
                        const float *gamma, float *scratch, int N, int C, int HW) {
    FV_ASSERT(N >= 1 && C >= 1 && HW >= 1 && C <= 65535);
    const int S = bn_splits(N, HW);
    const size_t M = (size_t)N * HW, total = M * C;
    float *pa = scratch, *pb = scratch + (size_t)C * S, *sums = scratch + 2 * (size_t)C * S;
    bn_bwd_sums_kernel<RELU><<<dim3((unsigned)S, (unsigned)C), FV_THREADS, 0, x->stream>>>(
        pa, pb, dout, relu_out, inp, mean, invstd, C, HW, M);
    FV_CUDA_LAUNCHED();
    bn_bwd_stats_kernel<<<fv_grid_exact((size_t)C, 64), 64, 0, x->stream>>>(dgamma, dbeta, sums, pa,
                                                                            pb, C, S);
    FV_CUDA_LAUNCHED();
    if (!dinp) return;
    bn_bwd_data_kernel<RELU><<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        dinp, dout, relu_out, inp, mean, invstd, gamma, sums, C, HW, M, total);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_batchnorm_backward(const fv_cuda_ctx *x, float *dinp, float *dgamma, float *dbeta,
                                const float *dout, const float *inp, const float *mean,
                                const float *invstd, const float *gamma, float *scratch, int N,
                                int C, int HW) {
    bn_backward<false>(x, dinp, dgamma, dbeta, dout, NULL, inp, mean, invstd, gamma, scratch, N, C, HW);
}

void fv_cuda_batchnorm_backward_relu(const fv_cuda_ctx *x, float *dinp, float *dgamma, float *dbeta,
                                     const float *dout, const float *out, const float *inp, const float *mean,
                                     const float *invstd, const float *gamma, float *scratch, int N,
                                     int C, int HW) {
    FV_ASSERT(out);
    bn_backward<true>(x, dinp, dgamma, dbeta, dout, out, inp, mean, invstd, gamma, scratch, N, C, HW);
}

/* ---- the batch-norm statistics prior of gradient inversion (net.h's fv_cuda_net_inv_*) ---- */

/* One block per channel c: stats[2c] the mean and stats[2c + 1] the biased variance of channel
 * c's N * HW values, in double, two passes (as the CPU's bn_channel_stats; the order of the sum
 * differs, so they agree to rounding). */
static __global__ void bn_stats_kernel(double *stats, const float *inp, int N, int C, int HW) {
    __shared__ double sh[32];
    __shared__ double mean;
    const int c = blockIdx.x;
    const size_t M = (size_t)N * HW;
    double s = 0.0;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) {
        const size_t n = j / HW, i = j - n * HW;
        s += (double)inp[(n * C + c) * HW + i];
    }
    s = fv_block_sum(s, sh);
    if (threadIdx.x == 0) mean = s / (double)M;
    __syncthreads();
    const double m = mean;
    double q = 0.0;
    for (size_t j = threadIdx.x; j < M; j += blockDim.x) {
        const size_t n = j / HW, i = j - n * HW;
        const double d = (double)inp[(n * C + c) * HW + i] - m;
        q += d * d;
    }
    q = fv_block_sum(q, sh);
    if (threadIdx.x == 0) stats[2 * c] = m, stats[2 * c + 1] = q / (double)M;
}

void fv_cuda_bn_channel_stats(const fv_cuda_ctx *x, double *stats, const float *inp, int N, int C, int HW) {
    bn_stats_kernel<<<C, FV_THREADS, 0, x->stream>>>(stats, inp, N, C, HW);
    FV_CUDA_LAUNCHED();
}

/* dh[i] += coef[3c] + coef[3c + 1] (h[i] - coef[3c + 2]), in double rounded once, c the channel of i. */
static __global__ void bn_prior_add_kernel(float *dh, const float *h, const double *coef, int C, int HW,
                                           size_t total) {
    FV_GRID_STRIDE(i, total) {
        const int c = (int)((i / (size_t)HW) % (size_t)C);
        const double *k = coef + 3 * c;
        dh[i] += (float)(k[0] + k[1] * ((double)h[i] - k[2]));
    }
}

void fv_cuda_bn_prior_add(const fv_cuda_ctx *x, float *dh, const float *h, const double *coef, int N, int C,
                          int HW) {
    const size_t total = (size_t)N * C * HW;
    if (total == 0) return;
    bn_prior_add_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(dh, h, coef, C, HW, total);
    FV_CUDA_LAUNCHED();
}
