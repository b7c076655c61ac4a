/* dropout.c: inverted dropout (see layers.h). The mask is drawn serially from the caller's fv_rng,
 * so the same seed gives the same mask whatever the thread count.
 * Not here: spatial (channel-wise) dropout, the choice of when dropout is active (net.c).
 */
#include "fv_common.h"
#include "nn/layers.h"

/* p in [0, 1]: mask[i] = 1 with probability 1 - p (one fv_rng_uniform draw per element, kept when
 * the draw is >= p), out = inp * mask / (1 - p). p == 0 keeps everything and draws nothing; p == 1
 * drops everything (out = 0). */
void fv_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p,
                        fv_rng *rng) {
    FV_ASSERT(p >= 0.0f && p <= 1.0f);
    if (p == 0.0f) {
        for (size_t i = 0; i < n; i++) mask[i] = 1, out[i] = inp[i];
        return;
    }
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        mask[i] = fv_rng_uniform(rng) >= p;
        out[i] = mask[i] ? inp[i] * scale : 0.0f;
    }
}

void fv_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p) {
    FV_ASSERT(p >= 0.0f && p <= 1.0f);
    if (!dinp) return;
    const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    for (size_t i = 0; i < n; i++)
        if (mask[i]) dinp[i] += dout[i] * scale;
}
