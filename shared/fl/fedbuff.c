/* fedbuff.c: see fedbuff.h. */
#include "fl/fedbuff.h"

#include <math.h>

double fv_fedbuff_weight(fv_staleness kind, long staleness) {
    const double s = (double)staleness;
    switch (kind) {
    case FV_STALE_SQRT: return 1.0 / sqrt(1.0 + s);
    case FV_STALE_INVERSE: return 1.0 / (1.0 + s);
    case FV_STALE_CONSTANT: break;
    }
    return 1.0;
}

void fv_fedbuff_delta(float *d, const float *upload, const float *base, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = (float)((double)upload[i] - (double)base[i]);
}

void fv_fedbuff_add(double *sum, const float *d, double w, size_t n) {
    for (size_t i = 0; i < n; i++) sum[i] += w * (double)d[i];
}

void fv_fedbuff_apply(float *x, const double *sum, double lr, int k, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)x[i] + lr * sum[i] / k);
}
