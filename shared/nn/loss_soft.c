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
