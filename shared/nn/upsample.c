/* upsample.c: nearest-neighbour upsampling of NCHW by an integer factor s (see layers.h):
 * out[n, c, y, x] = inp[n, c, y / s, x / s]; backward sums each s x s block into dinp.
 * One thread per (n, c) plane: bitwise the same for any thread count.
 * Not here: bilinear modes, non-integer factors.
 */
#include "fv_common.h"
#include "nn/layers.h"

#define UP_OMP_MIN ((size_t)1 << 15)

void fv_upsample_forward(float *out, const float *inp, int N, int C, int H, int W, int s) {
    FV_ASSERT(s >= 1);
    const size_t planes = (size_t)N * C, OW = (size_t)W * s;
#pragma omp parallel for schedule(static) if (planes * H * W * s * s >= UP_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *src = inp + pl * H * W;
        float *dst = out + pl * H * W * s * s;
        for (int y = 0; y < H; y++) {
            float *row = dst + (size_t)y * s * OW;
            for (int x = 0; x < W; x++)
                for (int j = 0; j < s; j++) row[(size_t)x * s + j] = src[(size_t)y * W + x];
            for (int i = 1; i < s; i++)
                for (size_t x = 0; x < OW; x++) row[i * OW + x] = row[x];
        }
    }
}

void fv_upsample_backward(float *dinp, const float *dout, int N, int C, int H, int W, int s) {
    FV_ASSERT(s >= 1);
    if (!dinp) return;
    const size_t planes = (size_t)N * C, OW = (size_t)W * s;
#pragma omp parallel for schedule(static) if (planes * H * W * s * s >= UP_OMP_MIN)
    for (size_t pl = 0; pl < planes; pl++) {
        float *dst = dinp + pl * H * W;
        const float *g = dout + pl * H * W * s * s;
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                float acc = 0.0f;
                for (int i = 0; i < s; i++)
                    for (int j = 0; j < s; j++)
                        acc += g[((size_t)y * s + i) * OW + (size_t)x * s + j];
                dst[(size_t)y * W + x] += acc;
            }
        }
    }
}
