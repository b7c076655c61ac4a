/* loss_soft.c: see loss_soft.h. */
#include "nn/loss_soft.h"

#include <math.h>

#include "fv_common.h"

static int argmax(const float *v, int K) {
    int a = 0;
    for (int k = 1; k < K; k++)
        if (v[k] > v[a]) a = k;
    return a;
}

float fv_softmax_xent_soft(float *dlogits, const float *logits, const float *targets, int N, int K, int *correct) {
    FV_ASSERT(N >= 1 && K >= 1);
    double total = 0.0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K;
        const float *t = targets + (size_t)n * K;
        const int arg = argmax(z, K);
        hits += arg == argmax(t, K);
        const float mx = z[arg];
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp((double)(z[k] - mx));
        const double lse = log(se);
        for (int k = 0; k < K; k++) total += (double)t[k] * (lse - (double)(z[k] - mx));
        if (dlogits) {
            float *d = dlogits + (size_t)n * K;
            for (int k = 0; k < K; k++) d[k] = (float)((exp((double)(z[k] - mx)) / se - (double)t[k]) / N);
        }
    }
    if (correct) *correct = hits;
    return (float)(total / N);
}

/* log sum_k exp(v[k] / T), stable (the maximum subtracted first). */
static double lse_scaled(const float *v, int K, double T) {
    float mx = v[0];
    for (int k = 1; k < K; k++) mx = v[k] > mx ? v[k] : mx;
    double se = 0.0;
    for (int k = 0; k < K; k++) se += exp(((double)v[k] - mx) / T);
    return log(se) + mx / T;
}

float fv_kd_loss(float *dlogits, const float *logits, const float *teacher, const int *labels, int N, int K,
                 float T, float alpha, float *hard, int *correct) {
    FV_ASSERT(N >= 1 && K >= 1 && T > 0.0f && alpha >= 0.0f && alpha <= 1.0f);
    double total = 0.0, total_hard = 0.0;
    int hits = 0;
    const double a = alpha, t = T;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K, *zt = teacher + (size_t)n * K;
        const int y = labels[n];
        FV_ASSERT(y >= 0 && y < K);
        hits += argmax(z, K) == y;
        const double l1 = lse_scaled(z, K, 1.0), lt = lse_scaled(z, K, t), lq = lse_scaled(zt, K, t);
        const double ce = l1 - (double)z[y];
        double kl = 0.0;
        for (int k = 0; k < K; k++) {
            const double logq = (double)zt[k] / t - lq, logp = (double)z[k] / t - lt;
            const double q = exp(logq);
            kl += q * (logq - logp);
        }
        total_hard += ce;
        total += (1.0 - a) * ce + a * t * t * kl;
        if (dlogits) {
            float *d = dlogits + (size_t)n * K;
            for (int k = 0; k < K; k++) {
                const double s1 = exp((double)z[k] - l1), p = exp((double)z[k] / t - lt);
                const double q = exp((double)zt[k] / t - lq);
                d[k] = (float)(((1.0 - a) * (s1 - (k == y)) + a * t * (p - q)) / N);
            }
        }
    }
    if (hard) *hard = (float)(total_hard / N);
    if (correct) *correct = hits;
    return (float)(total / N);
}
