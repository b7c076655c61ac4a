/* vmix_alloc.h: window allocations for VisualMixer-style shuffling beyond the power-of-two
 * windows of vmix.h, kept separate while they are being measured (experiments/frontier,
 * experiments/RESULTS.md). One allocation so far:
 *   uniform-any: the image tiled into fixed s x s windows for ANY integer s >= 1 (edge windows
 *   clipped), each window's pixels permuted uniformly at random, independently per channel
 *   (vmix's spatial+chromatic mode at pixel level). Reason: the frontier measurements show that
 *   accuracy falls convexly and VFE rises concavely with the window size, so a mixture of sizes
 *   (Algorithm 1) loses to one intermediate size at equal VFE; powers of two leave large gaps
 *   (VFE 0.55 / 0.79 / 1.02 at s = 2 / 4 / 8 on MNIST) that s = 3, 5, 6 fill.
 * Randomness: a 32-byte image key (the caller derives it, e.g. from a seed and the image index)
 * feeds libsodium's randombytes_buf_deterministic (ChaCha20); Fisher-Yates with unbiased bounded
 * draws (rejection). Deterministic given (key, pixels, s).
 * Not here: Algorithm 1 and the keyed per-window streams of the deployed mixer (vmix.h), VFE.
 */
#ifndef FV_VMIX_ALLOC_H
#define FV_VMIX_ALLOC_H
#include <stdint.h>

#include "fv_common.h"

#define FV_VMIX_ALLOC_KEY_BYTES 32

/* Shuffle in[c][h][w] (uint8, CHW) into out (same shape, out != in) in s x s windows, windows
 * tiled from the top-left corner. 1 <= s. Returns 0, or -1 with e set for s < 1. */
FV_MUST_USE int fv_vmix_alloc_uniform(uint8_t *out, const uint8_t *in, int c, int h, int w, int s,
                          const uint8_t key[FV_VMIX_ALLOC_KEY_BYTES], fv_err *e);

/* The image key of image `index` for experiment seed `seed` and split `split` (0 train, 1 test):
 * BLAKE2b-256 of the three as little-endian 64-bit integers. Experiment keying only: anyone who
 * knows the seed can regenerate the permutations (deployments use vmix's secret client keys). */
void fv_vmix_alloc_seed_key(uint8_t key[FV_VMIX_ALLOC_KEY_BYTES], uint64_t seed, int split, uint64_t index);

#endif
