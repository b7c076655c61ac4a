/* cuda_common.cuh: what the .cu files share and nobody else sees: the fv_cuda_ctx struct, the
 * abort-on-error checks for CUDA and cuBLAS calls, launch-size helpers and the deterministic
 * block reductions. Include it first in every .cu file (it pulls in cuda_layers.h).
 * Not here: any kernel of a layer (one .cu per op family), any public API.
 */
#ifndef FV_CUDA_COMMON_CUH
#define FV_CUDA_COMMON_CUH
#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef FEDVIM_HAVE_CUDNN
#include <cudnn.h>
#endif
#include <stddef.h>
#include <stdint.h>

#include "cuda/layers.h"
#include "cuda/net.h"

struct fv_cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS workspace (cublasSetWorkspace), FV_CUBLAS_WS bytes */
    int sms;       /* streaming multiprocessors: sizes grids */
    void *dnn;     /* cudnnHandle_t on `stream`, or NULL (no cuDNN in this build, or it failed) */
    int tf32;      /* 1: TF32 tensor cores allowed for FP32 GEMMs and convolutions (fv_cuda_ctx_set_tf32) */
    char dnn_why[160]; /* why dnn is NULL */
};

/* 32 MiB: what cuBLAS recommends on Hopper so that graph-captured GEMMs never allocate. */
#define FV_CUBLAS_WS ((size_t)32 << 20)

/* The current device, for abort messages (contexts keep theirs current); -1 if even that fails. */
static inline int fv_cuda_current_device(void) {
    int d = -1;
    if (cudaGetDevice(&d) != cudaSuccess) d = -1;
    return d;
}

#define FV_CUDA_CHECK(call)                                                                        \
    do {                                                                                           \
        cudaError_t fv_e_ = (call);                                                                \
        if (fv_e_ != cudaSuccess)                                                                  \
            fv_die_at(__FILE__, __LINE__, "cuda:%d: CUDA error in %s: %s (%s)",                    \
                      fv_cuda_current_device(), #call, cudaGetErrorString(fv_e_),                  \
                      cudaGetErrorName(fv_e_));                                                    \
    } while (0)

#define FV_CUBLAS_CHECK(call)                                                                      \
    do {                                                                                           \
        cublasStatus_t fv_s_ = (call);                                                             \
        if (fv_s_ != CUBLAS_STATUS_SUCCESS)                                                        \
            fv_die_at(__FILE__, __LINE__, "cuda:%d: cuBLAS error in %s: %s",                       \
                      fv_cuda_current_device(), #call, cublasGetStatusString(fv_s_));              \
    } while (0)

/* After a kernel launch: a bad configuration is a programmer error. */
#define FV_CUDA_LAUNCHED() FV_CUDA_CHECK(cudaGetLastError())

#define FV_THREADS 256

/* Blocks for a grid-stride loop over n items: enough to fill the device a few times over, never
 * more than the items need, at least one. */
static inline unsigned fv_grid(const fv_cuda_ctx *x, size_t n, int threads) {
    size_t want = (n + (size_t)threads - 1) / (size_t)threads;
    size_t cap = (size_t)(x->sms > 0 ? x->sms : 132) * 16;
    if (want > cap) want = cap;
    return (unsigned)(want ? want : 1);
}

/* Blocks for one item per thread (no grid-stride loop), aborting past the grid limit. */
static inline unsigned fv_grid_exact(size_t n, int threads) {
    size_t b = (n + (size_t)threads - 1) / (size_t)threads;
    if (b > 0x7fffffffu) fv_die_at(__FILE__, __LINE__, "grid too large (%zu blocks)", b);
    return (unsigned)(b ? b : 1);
}

#define FV_GRID_STRIDE(i, n)                                                                       \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)blockDim.x * gridDim.x)

/* Sum over a warp; every lane gets the total. The shuffle tree is fixed: deterministic. */
template <typename T> __device__ __forceinline__ T fv_warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); the result is valid in
 * thread 0. `sh` is __shared__ T[32]. Fixed order for a fixed block size. Ends with a barrier, so
 * `sh` may be reused right after. */
template <typename T> __device__ __forceinline__ T fv_block_sum(T v, T *sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = fv_warp_sum(v);
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    T r = 0;
    if (wid == 0) {
        r = lane < nw ? sh[lane] : (T)0;
        r = fv_warp_sum(r);
    }
    __syncthreads();
    return r;
}

/* Row-major GEMM through column-major cuBLAS: C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, with
 * A, B, C stored row-major with leading dimensions lda, ldb, ldc. (A row-major matrix is its
 * transpose in column-major order, so C^T = op(B)^T op(A)^T is one cublasSgemm with the operands
 * swapped and the same transpose flags.) FP32 throughout: the handle stays in CUBLAS_DEFAULT_MATH,
 * which does not use TF32 tensor cores for SGEMM. */
static inline void fv_gemm_rm(const fv_cuda_ctx *x, int ta, int tb, int M, int N, int K,
                              float alpha, const float *A, int lda, const float *B, int ldb,
                              float beta, float *C, int ldc) {
    FV_CUBLAS_CHECK(cublasSgemm(x->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                &beta, C, ldc));
}

/* fv_gemm_rm for `batch` independent products at once (cublasSgemmStridedBatched): product i reads
 * A + i sA and B + i sB and writes C + i sC (strides in floats), each as fv_gemm_rm would. The
 * math mode is the handle's: FP32 unless the ctx opted into TF32 (fv_cuda_ctx_set_tf32). */
static inline void fv_gemm_rm_batched(const fv_cuda_ctx *x, int ta, int tb, int M, int N, int K,
                                      float alpha, const float *A, int lda, long long sA,
                                      const float *B, int ldb, long long sB, float beta, float *C,
                                      int ldc, long long sC, int batch) {
    FV_CUBLAS_CHECK(cublasSgemmStridedBatched(x->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                              ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                                              ldb, sB, A, lda, sA, &beta, C, ldc, sC, batch));
}

#endif
