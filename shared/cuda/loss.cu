/* loss.cu: softmax cross-entropy on the GPU, the mean over the batch; the CUDA twin of loss.c,
 * written as the same double-precision formulas (max subtracted, exp and log in double). One
 * thread per row (N*K is tiny next to the layers), then a one-block reduction of the rows' losses
 * and hits into device accumulators that a training epoch reads once at its end.
 * Also the pixel losses (MSE, L1) of loss_pixel.c: one block computes every gradient value and the
 * fixed-order double sum (an image batch is at most a few hundred thousand values).
 * And the knowledge-distillation loss of loss_soft.c (fv_kd_loss): one thread per row in double
 * with the same formulas, then one thread sums the rows in row order (the CPU's order).
 * Not here: label smoothing, class weights, the soft-label cross-entropy (fv_softmax_xent_soft).
 */
#include "cuda/common.cuh"

/* Row n's label check and argmax, for the per-row loss kernels: a label y outside [0, K) (loaders
 * and the trainer validate labels; make a bad one impossible to miss) gives the row a NaN loss, no
 * hit and NaN gradients (dlogits may be NULL) and returns -1; otherwise the first index of the
 * row's largest logit z[k]. */
static __device__ int row_check_argmax(float *dlogits, double *row_loss, int32_t *row_hit, const float *z, int y,
                                       int n, int K) {
    if (y < 0 || y >= K) {
        row_loss[n] = nan("");
        row_hit[n] = 0;
        if (dlogits)
            for (int k = 0; k < K; k++) dlogits[(size_t)n * K + k] = nanf("");
        return -1;
    }
    int arg = 0;
    for (int k = 1; k < K; k++)
        if (z[k] > z[arg]) arg = k;
    return arg;
}

static __global__ void xent_rows_kernel(float *dlogits, double *row_loss, int32_t *row_hit,
                                 const float *logits, const int32_t *labels, int N, int K) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float *z = logits + (size_t)n * K;
    const int y = labels[n], arg = row_check_argmax(dlogits, row_loss, row_hit, z, y, n, K);
    if (arg < 0) return;
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

/* log sum_k exp(v[k] / T), the maximum (a float) subtracted first: loss_soft.c's lse_scaled. */
static __device__ double kd_lse_scaled(const float *v, int K, double T) {
    float mx = v[0];
    for (int k = 1; k < K; k++) mx = v[k] > mx ? v[k] : mx;
    double se = 0.0;
    for (int k = 0; k < K; k++) se += exp(((double)v[k] - mx) / T);
    return log(se) + mx / T;
}

/* One thread per row: fv_kd_loss's row (loss_soft.c), written the same way. dlogits may be
 * teacher itself: the row's teacher values are all read before the first gradient is written,
 * except in the gradient loop, where each k reads teacher[k] before it writes dlogits[k]. */
static __global__ void kd_rows_kernel(float *dlogits, double *row_loss, int32_t *row_hit, const float *logits,
                                      const float *teacher, const int32_t *labels, int N, int K, double t,
                                      double a) {
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const float *z = logits + (size_t)n * K, *zt = teacher + (size_t)n * K;
    const int y = labels[n], arg = row_check_argmax(dlogits, row_loss, row_hit, z, y, n, K);
    if (arg < 0) return;
    row_hit[n] = arg == y;
    const double l1 = kd_lse_scaled(z, K, 1.0), lt = kd_lse_scaled(z, K, t), lq = kd_lse_scaled(zt, K, t);
    const double ce = l1 - (double)z[y];
    double kl = 0.0;
    for (int k = 0; k < K; k++) {
        const double logq = (double)zt[k] / t - lq, logp = (double)z[k] / t - lt;
        const double q = exp(logq);
        kl += q * (logq - logp);
    }
    row_loss[n] = (1.0 - a) * ce + a * t * t * kl;
    if (dlogits) {
        float *d = dlogits + (size_t)n * K;
        for (int k = 0; k < K; k++) {
            const double s1 = exp((double)z[k] - l1), p = exp((double)z[k] / t - lt);
            const double q = exp((double)zt[k] / t - lq);
            d[k] = (float)(((1.0 - a) * (s1 - (k == y)) + a * t * (p - q)) / N);
        }
    }
}

/* One thread: *loss = (sum of the rows in row order) / N, *hits = the rows' hits. */
static __global__ void kd_reduce_kernel(double *loss, long long *hits, const double *row_loss,
                                        const int32_t *row_hit, int N) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double total = 0.0;
    long long h = 0;
    for (int n = 0; n < N; n++) {
        total += row_loss[n];
        h += row_hit[n];
    }
    *loss = total / N;
    *hits = h;
}

void fv_cuda_kd_loss(const fv_cuda_ctx *x, float *dlogits, double *row_loss, int32_t *row_hit, double *loss,
                     long long *hits, const float *logits, const float *teacher, const int32_t *labels, int N,
                     int K, float T, float alpha) {
    FV_ASSERT(N >= 1 && K >= 1 && T > 0.0f && alpha >= 0.0f && alpha <= 1.0f && loss && hits);
    kd_rows_kernel<<<fv_grid_exact((size_t)N, 128), 128, 0, x->stream>>>(
        dlogits, row_loss, row_hit, logits, teacher, labels, N, K, (double)T, (double)alpha);
    FV_CUDA_LAUNCHED();
    kd_reduce_kernel<<<1, 1, 0, x->stream>>>(loss, hits, row_loss, row_hit, N);
    FV_CUDA_LAUNCHED();
}
