/* vfe.h: Visual Feature Entropy (VFE), paper Section III, exactly as fixed in
 * docs/visualmixer.md section 1: Eq. 1 (gradient energy of adjacent pairs), Eq. 2 (standardised
 * per-pair VFE of a region, flat regions excluded), Eq. 3 (mean over B x B blocks of one channel,
 * times lambda), Eq. 4 (mean over channels).
 * Pixel values are uint8 / 255; Eq. 2 is invariant to a*x + b (a > 0), so the uint8 functions
 * work on the integers directly and are exact (integer sums, one division at the end).
 * Not here: shuffling (vmix.h) and the window-size bounds (vmix_bounds.h).
 */
#ifndef FV_VFE_H
#define FV_VFE_H
#include <stdint.h>

/* Returned by the region functions for a flat region (variance < 1e-12 in [0,1] units, or a
 * region of one pixel): it carries no visual feature and is excluded from Eq. 3's mean. */
#define FV_VFE_FLAT (-1.0)

/* Eq. 2 for one w x h region of one channel; p points at its top-left pixel, rows `stride`
 * elements apart. Returns VFE_R >= 0, or FV_VFE_FLAT. w, h >= 1. */
double fv_vfe_region_u8(const uint8_t *p, int stride, int w, int h);
double fv_vfe_region_f32(const float *p, int stride, int w, int h);

/* Eq. 3: lambda * mean over the non-flat B x B blocks (edge blocks clipped) of one h x w plane;
 * lambda when every block is flat. block >= 1. */
double fv_vfe_channel_u8(const uint8_t *plane, int h, int w, int block, double lambda);
double fv_vfe_channel_f32(const float *plane, int h, int w, int block, double lambda);

/* Eq. 4: mean of Eq. 3 over the c planes of a CHW image (c x h x w). */
double fv_vfe_image_u8(const uint8_t *chw, int c, int h, int w, int block, double lambda);
double fv_vfe_image_f32(const float *chw, int c, int h, int w, int block, double lambda);

#endif
