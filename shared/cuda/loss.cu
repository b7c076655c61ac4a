/* loss.cu: softmax cross-entropy on the GPU, the mean over the batch; the CUDA twin of loss.c,
 * written as the same double-precision formulas (max subtracted, exp and log in double). One
 * thread per row (N*K is tiny next to the layers), then a one-block reduction of the rows' losses
 * and hits into device accumulators that a training epoch reads once at its end.
 * Not here: label smoothing, class weights, other losses.
 */
#include "cuda/common.cuh"

static __global__ void xent_rows_kernel(float *dlogits, double *row_loss, int32_t *row_hit,
                                 const float *logits, const int32_t *labels, int N, int K) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float *z = logits + (size_t)n * K;
    const int y = labels[n];
    if (y < 0 || y >= K) { /* loaders validate labels; make a bad one impossible to miss */
        row_loss[n] = nan("");
        row_hit[n] = 0;
        if (dlogits)
            for (int k = 0; k < K; k++) dlogits[(size_t)n * K + k] = nanf("");
        return;
    }
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[arg]) arg = k;
    const float mx = z[arg];
    double se = 0.0;
    for (int k = 0; k < K; k++) se += exp((double)(z[k] - mx));
    row_loss[n] = log(se) - (double)(z[y] - mx);
    row_hit[n] = arg == y;
    if (dlogits) {
        float *d = dlogits + (size_t)n * K;
        for (int k = 0; k < K; k++) d[k] = (float)((exp((double)(z[k] - mx)) / se - (k == y)) / N);
    }
}

/* One block: acc_loss += (double)(float)(mean row loss) * N, acc_hits += sum of hits. */
static __global__ void xent_reduce_kernel(double *acc_loss, long long *acc_hits, const double *row_loss,
                                   const int32_t *row_hit, int N) {
    __shared__ double shd[32];
    __shared__ long long shl[32];
    double l = 0.0;
    long long h = 0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        l += row_loss[n];
        h += row_hit[n];
    }
    l = fv_block_sum(l, shd);
    h = fv_block_sum(h, shl);
    if (threadIdx.x == 0) {
        if (acc_loss) *acc_loss += (double)(float)(l / N) * N;
        if (acc_hits) *acc_hits += h;
    }
}

void fv_cuda_softmax_xent(const fv_cuda_ctx *x, float *dlogits, double *row_loss, int32_t *row_hit,
                          double *acc_loss, long long *acc_hits, const float *logits,
                          const int32_t *labels, int N, int K) {
    FV_ASSERT(N >= 1 && K >= 1);
    xent_rows_kernel<<<fv_grid_exact((size_t)N, 128), 128, 0, x->stream>>>(
        dlogits, row_loss, row_hit, logits, labels, N, K);
    FV_CUDA_LAUNCHED();
    if (!acc_loss && !acc_hits) return;
    xent_reduce_kernel<<<1, FV_THREADS, 0, x->stream>>>(acc_loss, acc_hits, row_loss, row_hit, N);
    FV_CUDA_LAUNCHED();
}
