/* linear.cu: fully connected layer on the GPU, out[N,Out] = inp[N,In] w[Out,In]^T + b[Out]
 * (PyTorch's weight layout); the CUDA twin of linear.c. Three cuBLAS SGEMMs (forward, dw with
 * beta 1, dinp with beta 1), a bias broadcast and a per-feature column sum for db (one thread per
 * feature, rows in order: deterministic).
 * Not here: cuBLASLt epilogue fusion, TF32.
 */
#include "cuda/common.cuh"

/* out[n, o] += b[o]. */
static __global__ void add_bias_rows_kernel(float *out, const float *b, int N, int Out) {
    const size_t total = (size_t)N * Out;
    FV_GRID_STRIDE(i, total) out[i] += b[i % Out];
}

/* db[o] += sum over n of g[n, o], n in order. */
static __global__ void col_sum_add_kernel(float *db, const float *g, int N, int Out) {
    const int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= Out) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += g[(size_t)n * Out + o];
    db[o] += acc;
}

void fv_cuda_linear_forward(const fv_cuda_ctx *x, float *out, const float *inp, const float *w,
                            const float *b, int N, int In, int Out) {
    FV_ASSERT(N >= 1 && In >= 1 && Out >= 1);
    /* out[N, Out] = inp[N, In] w[Out, In]^T */
    fv_gemm_rm(x, 0, 1, N, Out, In, 1.0f, inp, In, w, In, 0.0f, out, Out);
    if (b) {
        add_bias_rows_kernel<<<fv_grid(x, (size_t)N * Out, FV_THREADS), FV_THREADS, 0, x->stream>>>(
            out, b, N, Out);
        FV_CUDA_LAUNCHED();
    }
}

void fv_cuda_linear_backward(const fv_cuda_ctx *x, float *dinp, float *dw, float *db,
                             const float *dout, const float *inp, const float *w, int N, int In,
                             int Out) {
    FV_ASSERT(N >= 1 && In >= 1 && Out >= 1);
    /* dw[Out, In] += dout[N, Out]^T inp[N, In] */
    if (dw) fv_gemm_rm(x, 1, 0, Out, In, N, 1.0f, dout, Out, inp, In, 1.0f, dw, In);
    if (db) {
        col_sum_add_kernel<<<fv_grid_exact((size_t)Out, 128), 128, 0, x->stream>>>(db, dout, N,
                                                                                   Out);
        FV_CUDA_LAUNCHED();
    }
    /* dinp[N, In] += dout[N, Out] w[Out, In] */
    if (dinp) fv_gemm_rm(x, 0, 0, N, In, Out, 1.0f, dout, Out, w, In, 1.0f, dinp, In);
}
