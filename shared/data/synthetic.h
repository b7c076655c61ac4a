/* synthetic.h: a synthetic image classification data set that needs no files, for tests,
 * benchmarks and smoke runs: each class has a fixed random prototype made of a few Gaussian
 * blobs per channel; an image is its class prototype shifted by up to two pixels, with a random
 * contrast and additive noise, quantised to uint8. A small CNN learns it in a few hundred steps,
 * and the images have spatial structure (so VisualMixer and VFE behave as on real images).
 * Deterministic: the same (seed, split, index) always gives the same image, on any machine.
 * Not here: real data sets (data.h).
 */
#ifndef FV_SYNTHETIC_H
#define FV_SYNTHETIC_H
#include <stdint.h>

#include "data/data.h"

/* Fill out (fresh; caller frees with fv_dataset_free) with n images of c x h x w and `classes`
 * balanced labels (image i has label i mod classes before a seeded shuffle). Prototypes depend on
 * seed only; `split` (0 train, 1 test) selects an independent stream of images. */
void fv_synthetic_make(fv_dataset *out, int n, int c, int h, int w, int classes, uint64_t seed, int split);

#endif
