/* rng.c: see rng.h. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void fv_rng_seed(fv_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void fv_rng_seed2(fv_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
    uint64_t y = splitmix64(&x) ^ seed;
    fv_rng_seed(r, y);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fv_rng_u64(fv_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float fv_rng_uniform(fv_rng *r) { return (float)(fv_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double fv_rng_uniform_d(fv_rng *r) { return (double)(fv_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

uint64_t fv_rng_below(fv_rng *r, uint64_t n) {
    /* Lemire: multiply-shift with rejection of the biased low region. */
    unsigned __int128 m = (unsigned __int128)fv_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t t = (0 - n) % n;
        while (lo < t) {
            m = (unsigned __int128)fv_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double fv_rng_normal(fv_rng *r) {
    double u1, u2;
    do u1 = fv_rng_uniform_d(r);
    while (u1 <= 0.0);
    u2 = fv_rng_uniform_d(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void fv_rng_shuffle_int(fv_rng *r, int *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)fv_rng_below(r, (uint64_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
