/* obfuscate.h: the baseline obfuscations VisualMixer is compared with, on uint8 data sets:
 *  - Gaussian noise on the pixels (the "DP noise" baseline of the paper's Figure 2): each pixel
 *    value x in [0, 1] becomes clamp(x + N(0, sigma^2), 0, 1), rounded back to 8 bits;
 *  - InstaHide (Huang, Song, Li, Arora, ICML 2020), inside-data-set variant: each private image
 *    is mixed with k - 1 other images drawn from the same private set (not a public set), with
 *    coefficients drawn uniformly from the simplex (Dirichlet(1, ..., 1)) and resampled until
 *    none exceeds `upper` (InstaHide's code bounds every coefficient, 0.65 by default), after the
 *    pixels are centred to [-1, 1] (v = 2x - 1); then every pixel (each channel separately) has
 *    its sign flipped with probability 1/2 by a fresh mask per image. The label becomes the
 *    same mixture of the k one-hot labels (a soft label). The result, in [-1, 1], is stored as
 *    uint8 round((v + 1) * 127.5): an affine map, which the first layer of any network absorbs.
 * Both are deterministic given the seed (xoshiro streams keyed by seed and image index), so the
 * output does not depend on threads or processing order.
 * Also: soft-label files (magic "FVSL", version 1: int32 n, classes; then n*classes float32,
 * little-endian) that `fedvim obfuscate` writes beside the IDX files for InstaHide.
 * Not here: VisualMixer (vmix.h), DP-FedAvg (clipping and noising client updates: the federated
 * code's business), cryptographic randomness (these baselines use the simulation RNG, rng.h).
 */
#ifndef FV_OBFUSCATE_H
#define FV_OBFUSCATE_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"

#define FV_OBF_INSTAHIDE_KMAX 16
#define FV_OBF_SOFT_MAGIC "FVSL"
#define FV_OBF_SOFT_VERSION 1

/* Gaussian noise. out and in are n*c*h*w uint8 pixels of d (out may equal in.x). sigma >= 0 is
 * the standard deviation on the [0, 1] pixel scale. Image i uses the stream (seed, i).
 * Returns 0, or -1 with e set if sigma is negative or not finite. */
FV_MUST_USE int fv_obf_noise(uint8_t *out, const fv_dataset *d, double sigma, uint64_t seed, fv_err *e);

typedef struct {
    int k;          /* images per mixture, 1 <= k <= FV_OBF_INSTAHIDE_KMAX (k = 1: sign flip only) */
    double upper;   /* upper bound on every coefficient, in [1/k, 1] (InstaHide's default 0.65) */
    int sign_flip;  /* 1: random sign per pixel (the paper's InstaHide); 0: mixing only */
} fv_instahide_cfg;

fv_instahide_cfg fv_instahide_defaults(int k); /* k, upper 0.65 (1 when k == 1), sign_flip 1 */

/* InstaHide over the whole private set d (d->n >= k). out: n*c*h*w uint8 pixels (not d->x);
 * soft: n*classes floats, the mixed labels (each row sums to 1); partners (may be NULL):
 * n*k ints, image i's mixture members (partners[i*k] == i) and coef (may be NULL): n*k
 * doubles, their coefficients. Image i draws from the stream (seed, i). Returns 0, or -1 with
 * e set for a bad configuration (k out of range or above d->n, upper below 1/k or above 1). */
FV_MUST_USE int fv_obf_instahide(uint8_t *out, float *soft, int *partners, double *coef, const fv_dataset *d,
                     const fv_instahide_cfg *cfg, uint64_t seed, fv_err *e);

/* Write soft labels (n rows of `classes` floats) to path atomically. Returns 0 or -1 with e. */
FV_MUST_USE int fv_soft_labels_write(const char *path, const float *soft, int n, int classes, fv_err *e);

/* Read a soft-label file: *soft (caller frees) holds *n x *classes floats. Checks the magic,
 * the version, the sizes against the file length, and that every row is a distribution
 * (entries in [0, 1], sum within 1e-3 of 1). Returns 0, or -1 with e naming the file. */
FV_MUST_USE int fv_soft_labels_read(const char *path, float **soft, int *n, int *classes, fv_err *e);

#endif
