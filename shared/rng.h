/* rng.h: the project's deterministic, seedable pseudo-random generator (xoshiro256**, seeded by
 * splitmix64), for weight initialisation, data order, dropout masks and Monte Carlo work.
 * It is NOT for secrets: keyed randomness for VisualMixer comes from libsodium (see vmix).
 * Each user owns its state; there is no global generator.
 */
#ifndef FV_RNG_H
#define FV_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} fv_rng;

/* Seed from a 64-bit value; the same seed always gives the same stream. */
void fv_rng_seed(fv_rng *r, uint64_t seed);
/* A generator whose stream depends on (seed, stream) only: for per-client/per-thread streams. */
void fv_rng_seed2(fv_rng *r, uint64_t seed, uint64_t stream);
uint64_t fv_rng_u64(fv_rng *r);
/* Uniform in [0, 1) with 24 bits (float) or 53 bits (double). */
float fv_rng_uniform(fv_rng *r);
double fv_rng_uniform_d(fv_rng *r);
/* Unbiased integer in [0, n), n > 0 (Lemire's method with rejection). */
uint64_t fv_rng_below(fv_rng *r, uint64_t n);
/* Standard normal (Box-Muller, both values used in turn is not assumed: one call, one draw). */
double fv_rng_normal(fv_rng *r);
/* Uniformly random permutation of idx[0..n) in place (Fisher-Yates). */
void fv_rng_shuffle_int(fv_rng *r, int *idx, int n);
#endif
