/* dropout.cu: inverted dropout on the GPU; the CUDA twin of dropout.c. The mask comes from a
 * counter-based generator instead of dropout.c's serial fv_rng stream (a serial stream cannot be
 * split over threads): element i is kept when u >= p, u = (h >> 40) / 2^24 as in fv_rng_uniform,
 * h = mix(k + i * C2), k = mix(mix(seed ^ (counter * C1)) ^ (salt * C3)), mix splitmix64's
 * finaliser; seed and counter are read from device memory. The mask thus depends on (seed,
 * counter, salt, i) only. Same keep probability as the CPU, other masks: a GPU run and a CPU run
 * of a model with dropout differ by more than rounding.
 * Not here: choosing when dropout is active (cuda_net.cu), spatial dropout.
 */
#include "cuda/common.cuh"

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static __global__ void dropout_fwd_kernel(float *out, uint8_t *mask, const float *inp, size_t n, float p,
                                   float scale, uint64_t salt, const uint64_t *seed_ctr) {
    const uint64_t key = mix64(mix64(seed_ctr[0] ^ (seed_ctr[1] * 0x9e3779b97f4a7c15ULL)) ^
                               (salt * 0xc2b2ae3d27d4eb4fULL));
    FV_GRID_STRIDE(i, n) {
        const uint64_t h = mix64(key + (uint64_t)i * 0xd1342543de82ef95ULL);
        const float u = (float)(h >> 40) * (1.0f / 16777216.0f);
        const uint8_t keep = u >= p;
        mask[i] = keep;
        out[i] = keep ? inp[i] * scale : 0.0f;
    }
}

static __global__ void dropout_bwd_kernel(float *dinp, const float *dout, const uint8_t *mask, size_t n,
                                   float scale) {
    /* __fmul_rn / __fadd_rn: never fused into an FMA, so the result rounds as dropout.c's does */
    FV_GRID_STRIDE(i, n) if (mask[i]) dinp[i] = __fadd_rn(dinp[i], __fmul_rn(dout[i], scale));
}

void fv_cuda_dropout_forward(const fv_cuda_ctx *x, float *out, uint8_t *mask, const float *inp,
                             size_t n, float p, uint64_t salt, const uint64_t *key) {
    FV_ASSERT(p >= 0.0f && p < 1.0f && key);
    if (!n) return;
    dropout_fwd_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        out, mask, inp, n, p, 1.0f / (1.0f - p), salt, key);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_dropout_backward(const fv_cuda_ctx *x, float *dinp, const float *dout,
                              const uint8_t *mask, size_t n, float p) {
    FV_ASSERT(p >= 0.0f && p < 1.0f);
    if (!dinp || !n) return;
    dropout_bwd_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(dinp, dout, mask, n,
                                                                                1.0f / (1.0f - p));
    FV_CUDA_LAUNCHED();
}
