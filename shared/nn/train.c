/* train.c: see train.h. */
#include "nn/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"

static int classes_of(const fv_net *net) { return (int)fv_shape_size(fv_net_output_shape(net)); }

fv_epoch_stats fv_train_epoch(fv_net *net, fv_opt *opt, const fv_dataset *d, const int *idx, int n,
                              int batch, fv_norm norm, fv_rng *rng, float prox_mu,
                              const float *prox_ref, const float *corr, fv_progress_fn progress, void *ctx) {
    double t0 = fv_now();
    if (!idx) n = d->n;
    FV_ASSERT(batch >= 1 && n >= 0);
    int *order = fv_malloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) order[i] = idx ? idx[i] : i;
    fv_rng_shuffle_int(rng, order, n);
    int K = classes_of(net);
    size_t isz = (size_t)d->c * d->h * d->w;
    float *x = fv_malloc((size_t)batch * isz * sizeof(float));
    float *dl = fv_malloc((size_t)batch * K * sizeof(float));
    int *y = fv_malloc((size_t)batch * sizeof(int));
    double loss_sum = 0;
    long correct = 0;
    for (int s = 0; s < n; s += batch) {
        int b = n - s < batch ? n - s : batch;
        fv_dataset_to_float(d, order + s, 0, b, norm, x);
        fv_dataset_labels(d, order + s, 0, b, y);
        const float *logits = fv_net_forward(net, x, b, 1);
        int c = 0;
        float l = fv_softmax_xent(dl, logits, y, b, K, &c);
        fv_net_backward(net, dl, b);
        if (prox_mu > 0.0f && prox_ref)
            for (size_t i = 0; i < net->n_train; i++) net->grads[i] += prox_mu * (net->params[i] - prox_ref[i]);
        if (corr)
            for (size_t i = 0; i < net->n_train; i++) net->grads[i] += corr[i];
        fv_opt_step(opt, net->params, net->grads);
        loss_sum += (double)l * b;
        correct += c;
        if (progress) progress(ctx, s + b, n, loss_sum / (s + b));
    }
    free(x);
    free(dl);
    free(y);
    free(order);
    fv_epoch_stats st = {n ? loss_sum / n : 0.0, n ? (double)correct / n : 0.0, n, fv_now() - t0};
    return st;
}

fv_eval_stats fv_evaluate(fv_net *net, const fv_dataset *d, const int *idx, int n, int batch, fv_norm norm) {
    if (!idx) n = d->n;
    int K = classes_of(net);
    size_t isz = (size_t)d->c * d->h * d->w;
    float *x = fv_malloc((size_t)batch * isz * sizeof(float));
    int *y = fv_malloc((size_t)batch * sizeof(int));
    double loss_sum = 0;
    long correct = 0;
    for (int s = 0; s < n; s += batch) {
        int b = n - s < batch ? n - s : batch;
        if (idx) {
            fv_dataset_to_float(d, idx + s, 0, b, norm, x);
            fv_dataset_labels(d, idx + s, 0, b, y);
        } else {
            fv_dataset_to_float(d, NULL, s, b, norm, x);
            fv_dataset_labels(d, NULL, s, b, y);
        }
        const float *logits = fv_net_forward(net, x, b, 0);
        int c = 0;
        loss_sum += (double)fv_softmax_xent(NULL, logits, y, b, K, &c) * b;
        correct += c;
    }
    free(x);
    free(y);
    fv_eval_stats st = {n ? loss_sum / n : 0.0, n ? (double)correct / n : 0.0, n};
    return st;
}

void fv_per_example(fv_net *net, const fv_dataset *d, const int *idx, int n, int batch, fv_norm norm,
                    float *loss, float *margin) {
    if (!idx) n = d->n;
    int K = classes_of(net);
    size_t isz = (size_t)d->c * d->h * d->w;
    float *x = fv_malloc((size_t)batch * isz * sizeof(float));
    int *y = fv_malloc((size_t)batch * sizeof(int));
    for (int s = 0; s < n; s += batch) {
        int b = n - s < batch ? n - s : batch;
        if (idx) {
            fv_dataset_to_float(d, idx + s, 0, b, norm, x);
            fv_dataset_labels(d, idx + s, 0, b, y);
        } else {
            fv_dataset_to_float(d, NULL, s, b, norm, x);
            fv_dataset_labels(d, NULL, s, b, y);
        }
        const float *logits = fv_net_forward(net, x, b, 0);
        for (int i = 0; i < b; i++) {
            const float *z = logits + (size_t)i * K;
            double mx = z[0];
            for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
            double se = 0, so = 0; /* sum over all, sum over others */
            for (int k = 0; k < K; k++) {
                double ez = exp(z[k] - mx);
                se += ez;
                if (k != y[i]) so += ez;
            }
            double lpy = z[y[i]] - mx - log(se);
            if (loss) loss[s + i] = (float)-lpy;
            if (margin) margin[s + i] = (float)(lpy - (so > 0 ? log(so) - log(se) : -745.0));
        }
    }
    free(x);
    free(y);
}
