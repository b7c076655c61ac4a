/* loss.c: softmax cross-entropy over logits[N, K], the mean over the batch (see layers.h).
 * Numerically stable (the row maximum is subtracted before exp); serial, so bitwise the same for
 * any thread count (N*K is tiny next to the layers).
 * Not here: label smoothing, class weights, other losses.
 */
#include <math.h>

#include "fv_common.h"
#include "nn/layers.h"

/* labels[n] must lie in [0, K) (a programmer error otherwise: data loaders validate labels).
 * dlogits[n, k] = (softmax(logits[n])[k] - [k == labels[n]]) / N. */
float fv_softmax_xent(float *dlogits, const float *logits, const int *labels, int N, int K,
                      int *correct) {
    FV_ASSERT(N >= 1 && K >= 1);
    double total = 0.0;
    int hits = 0;
    for (int n = 0; n < N; n++) {
        const float *z = logits + (size_t)n * K;
        const int y = labels[n];
        FV_ASSERT(y >= 0 && y < K);
        int arg = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[arg]) arg = k;
        hits += arg == y;
        const float mx = z[arg];
        double se = 0.0;
        for (int k = 0; k < K; k++) se += exp((double)(z[k] - mx));
        const double lse = log(se);
        total += lse - (double)(z[y] - mx);
        if (dlogits) {
            float *d = dlogits + (size_t)n * K;
            for (int k = 0; k < K; k++)
                d[k] = (float)((exp((double)(z[k] - mx)) / se - (k == y)) / N);
        }
    }
    if (correct) *correct = hits;
    return (float)(total / N);
}
