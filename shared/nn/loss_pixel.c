/* loss_pixel.c: MSE and L1 regression losses over dense targets (see loss_pixel.h). Serial and
 * in double: the loss is a tiny cost next to the layers that produce `out`.
 */
#include "nn/loss_pixel.h"

#include <math.h>
#include <string.h>

float fv_pixel_loss(float *dout, const float *out, const float *target, size_t n, fv_pixel_loss_kind kind) {
    FV_ASSERT(n > 0);
    FV_ASSERT(kind == FV_PIXEL_MSE || kind == FV_PIXEL_L1);
    const double inv = 1.0 / (double)n;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)out[i] - (double)target[i];
        if (kind == FV_PIXEL_MSE) {
            total += d * d;
            if (dout) dout[i] = (float)(2.0 * d * inv);
        } else {
            total += fabs(d);
            if (dout) dout[i] = (float)((d > 0) - (d < 0)) * (float)inv;
        }
    }
    return (float)(total * inv);
}

const char *fv_pixel_loss_name(fv_pixel_loss_kind kind) { return kind == FV_PIXEL_L1 ? "l1" : "mse"; }

int fv_pixel_loss_parse(const char *word, fv_pixel_loss_kind *kind, fv_err *e) {
    if (word && strcmp(word, "mse") == 0) *kind = FV_PIXEL_MSE;
    else if (word && strcmp(word, "l1") == 0) *kind = FV_PIXEL_L1;
    else return fv_err_set(e, "'%s' is not a pixel loss (mse or l1)", word ? word : "(null)");
    return 0;
}
