/* data.cu: training batches on the GPU from uint8 images staged there once; the CUDA twin of
 * data.c's fv_dataset_to_float and fv_dataset_labels. The batch position comes from a device
 * cursor, so a captured training step gathers the next batch by itself; fv_cuda_advance moves the
 * cursor (and the dropout counter) at the end of the step.
 * Not here: staging (cuda_net.cu), loading files (data.c).
 */
#include "cuda/common.cuh"

/* One thread per pixel of the batch; the label by the first pixel's thread of each image. */
static __global__ void gather_kernel(float *xb, int32_t *yb, const uint8_t *images, const uint8_t *labels,
                              const int32_t *order, const int32_t *cursor, int base,
                              const float *lut, int b, int C, int HW) {
    const size_t img = (size_t)C * HW, total = (size_t)b * img;
    const int off = base + (cursor ? *cursor : 0);
    FV_GRID_STRIDE(i, total) {
        const int k = (int)(i / img);
        const size_t q = i - (size_t)k * img;
        const int c = (int)(q / HW);
        const int pos = off + k;
        const int src = order ? order[pos] : pos;
        xb[i] = lut[c * 256 + images[(size_t)src * img + q]];
        if (q == 0) yb[k] = labels[src];
    }
}

static __global__ void advance_kernel(int32_t *cursor, int step, uint64_t *counter) {
    *cursor += step;
    if (counter) *counter += 1;
}

void fv_cuda_gather_batch(const fv_cuda_ctx *x, float *xb, int32_t *yb, const uint8_t *images,
                          const uint8_t *labels, const int32_t *order, const int32_t *cursor,
                          int base, const float *lut, int b, int C, int HW) {
    FV_ASSERT(b >= 1 && C >= 1 && C <= 4 && HW >= 1);
    const size_t total = (size_t)b * C * HW;
    gather_kernel<<<fv_grid(x, total, FV_THREADS), FV_THREADS, 0, x->stream>>>(
        xb, yb, images, labels, order, cursor, base, lut, b, C, HW);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_advance(const fv_cuda_ctx *x, int32_t *cursor, int step, uint64_t *counter) {
    advance_kernel<<<1, 1, 0, x->stream>>>(cursor, step, counter);
    FV_CUDA_LAUNCHED();
}
