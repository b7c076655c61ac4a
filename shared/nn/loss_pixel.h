/* loss_pixel.h: per-value regression losses for image (or any dense) targets: the mean squared
 * error and the mean absolute error (L1) between a network's output and a target of the same
 * shape, with their gradients. Used by image-to-image models (attacks/inverter.h). The class
 * losses are fv_softmax_xent (layers.h) and loss_soft.h.
 * Not here: SSIM or perceptual losses, per-channel weights.
 */
#ifndef FV_LOSS_PIXEL_H
#define FV_LOSS_PIXEL_H
#include <stddef.h>

#include "fv_common.h"

typedef enum {
    FV_PIXEL_MSE = 0, /* mean of (out - target)^2 */
    FV_PIXEL_L1 = 1,  /* mean of |out - target| */
} fv_pixel_loss_kind;

/* The mean over all n > 0 values (a batch of N images of c*h*w values is n = N*c*h*w) of the
 * squared (MSE) or absolute (L1) difference between out[n] and target[n]. dout[n] (may be NULL)
 * is SET (not accumulated) to d loss / d out: 2 (out - target) / n for MSE, sign(out - target) / n
 * for L1 (0 where they are equal: the subgradient PyTorch's L1Loss uses). Summed in double,
 * serially: bitwise reproducible whatever the thread count. n == 0 aborts (programmer error). */
float fv_pixel_loss(float *dout, const float *out, const float *target, size_t n, fv_pixel_loss_kind kind);

/* "mse" / "l1" <-> kind. Parse returns 0, or -1 with e naming the word (NULL included). */
const char *fv_pixel_loss_name(fv_pixel_loss_kind kind);
FV_MUST_USE int fv_pixel_loss_parse(const char *word, fv_pixel_loss_kind *kind, fv_err *e);

#endif
