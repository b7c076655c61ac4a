/* dp.c: see dp.h. */
#include "fl/dp.h"

#include <math.h>

#include "fv_common.h"
#include "rng.h"

/* log(exp(a) + exp(b)) without overflow. */
static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + log1p(exp(lo - hi));
}

double fv_dp_rdp(double q, double z, int alpha) {
    FV_ASSERT(alpha >= 2 && alpha <= FV_DP_MAX_ORDER && q >= 0 && q <= 1 && z >= 0);
    if (q == 0) return 0;
    if (z == 0) return INFINITY;
    /* log A = logsumexp_k [log C(alpha,k) + (alpha-k) log(1-q) + k log q + (k^2-k)/(2 z^2)] */
    double loga = -INFINITY;
    double lq = log(q), l1q = q < 1 ? log1p(-q) : -INFINITY;
    for (int k = 0; k <= alpha; k++) {
        if (q == 1 && k < alpha) continue; /* (1-q)^(alpha-k) = 0 */
        double lbin = lgamma(alpha + 1.0) - lgamma(k + 1.0) - lgamma(alpha - k + 1.0);
        double t = lbin + (alpha - k) * (q == 1 ? 0 : l1q) + k * lq + ((double)k * k - k) / (2 * z * z);
        loga = log_add(loga, t);
    }
    return loga / (alpha - 1);
}

double fv_dp_epsilon(double q, double z, long T, double delta, int *best_alpha) {
    FV_ASSERT(T >= 0 && delta > 0 && delta < 1);
    double best = INFINITY;
    int ba = 2;
    for (int a = 2; a <= FV_DP_MAX_ORDER; a++) {
        double r = fv_dp_rdp(q, z, a);
        double eps = (T == 0 ? 0 : r * (double)T) + log(1 / delta) / (a - 1);
        if (eps < best) best = eps, ba = a;
    }
    if (best_alpha) *best_alpha = ba;
    return best;
}

double fv_dp_clip(float *d, size_t n, double clip) {
    FV_ASSERT(clip > 0);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)d[i] * d[i];
    double norm = sqrt(s);
    if (norm > clip) {
        double f = clip / norm;
        for (size_t i = 0; i < n; i++) d[i] = (float)(d[i] * f);
    }
    return norm;
}

void fv_dp_add_noise(double *out, size_t n, double sigma, uint64_t seed, uint64_t stream) {
    fv_rng r;
    fv_rng_seed2(&r, seed, stream);
    for (size_t i = 0; i < n; i++) out[i] += sigma * fv_rng_normal(&r);
}
