/* loss.cu: softmax cross-entropy on the GPU, the mean over the batch; the CUDA twin of loss.c,
 * written as the same double-precision formulas (max subtracted, exp and log in double). One
 * thread per row (N*K is tiny next to the layers), then a one-block reduction of the rows' losses
 * and hits into device accumulators that a training epoch reads once at its end.
 * Also the pixel losses (MSE, L1) of loss_pixel.c: one block computes every gradient value and the
 * fixed-order double sum (an image batch is at most a few hundred thousand values).
 * Not here: label smoothing, class weights, soft-label losses.
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

/* One block: dout[i] = the gradient at i (as loss_pixel.c writes it), *loss = sum / n. */
static __global__ void pixel_loss_kernel(float *dout, double *loss, const float *out, const float *target,
                                         size_t n, int l1) {
    __shared__ double sh[32];
    const double inv = 1.0 / (double)n;
    double s = 0.0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        const double d = (double)out[i] - (double)target[i]; /* read target[i] before dout[i] is written */
        if (l1) {
            s += fabs(d);
            if (dout) dout[i] = (float)((d > 0) - (d < 0)) * (float)inv;
        } else {
            s += d * d;
            if (dout) dout[i] = (float)(2.0 * d * inv);
        }
    }
    s = fv_block_sum(s, sh);
    if (threadIdx.x == 0) *loss = s * inv;
}

void fv_cuda_pixel_loss(const fv_cuda_ctx *x, float *dout, double *loss, const float *out,
                        const float *target, size_t n, fv_pixel_loss_kind kind) {
    FV_ASSERT(n > 0 && loss && out && target);
    FV_ASSERT(kind == FV_PIXEL_MSE || kind == FV_PIXEL_L1);
    pixel_loss_kernel<<<1, 1024, 0, x->stream>>>(dout, loss, out, target, n, kind == FV_PIXEL_L1);
    FV_CUDA_LAUNCHED();
}
