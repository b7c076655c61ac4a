/* train_soft.c: see train_soft.h. */
#include "nn/train_soft.h"

#include <stdlib.h>
#include <string.h>

#include "fv_common.h"
#include "nn/loss_soft.h"

/* The epoch loop both entry points share: per_image[d->n, K] holds each image's row (a soft label,
 * or the teacher's logits when kd is not NULL: kd[0] = T, kd[1] = alpha). */
static fv_epoch_stats epoch(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *per_image, int classes,
                            const float *kd, int batch, fv_norm norm, fv_rng *rng, fv_progress_fn progress,
                            void *ctx) {
    double t0 = fv_now();
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    FV_ASSERT(batch >= 1 && K == classes);
    const int n = d->n;
    int *order = fv_malloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) order[i] = i;
    fv_rng_shuffle_int(rng, order, n);
    size_t isz = (size_t)d->c * d->h * d->w;
    float *x = fv_malloc((size_t)batch * isz * sizeof(float));
    float *t = fv_malloc((size_t)batch * K * sizeof(float));
    float *dl = fv_malloc((size_t)batch * K * sizeof(float));
    int *y = fv_malloc((size_t)batch * sizeof(int));
    double loss_sum = 0;
    long correct = 0;
    for (int s = 0; s < n; s += batch) {
        int b = n - s < batch ? n - s : batch;
        fv_dataset_to_float(d, order + s, 0, b, norm, x);
        for (int i = 0; i < b; i++) memcpy(t + (size_t)i * K, per_image + (size_t)order[s + i] * K, sizeof(float) * K);
        const float *logits = fv_net_forward(net, x, b, 1);
        int c = 0;
        float l;
        if (kd) {
            fv_dataset_labels(d, order + s, 0, b, y);
            l = fv_kd_loss(dl, logits, t, y, b, K, kd[0], kd[1], NULL, &c);
        } else {
            l = fv_softmax_xent_soft(dl, logits, t, b, K, &c);
        }
        fv_net_backward(net, dl, b);
        fv_opt_step(opt, net->params, net->grads);
        loss_sum += (double)l * b;
        correct += c;
        if (progress) progress(ctx, s + b, n, loss_sum / (s + b));
    }
    free(x);
    free(t);
    free(dl);
    free(y);
    free(order);
    fv_epoch_stats st = {n ? loss_sum / n : 0.0, n ? (double)correct / n : 0.0, n, fv_now() - t0};
    return st;
}

fv_epoch_stats fv_train_epoch_soft(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *soft, int classes,
                                   int batch, fv_norm norm, fv_rng *rng, fv_progress_fn progress, void *ctx) {
    return epoch(net, opt, d, soft, classes, NULL, batch, norm, rng, progress, ctx);
}

fv_epoch_stats fv_train_epoch_kd(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *teacher, int classes,
                                 float T, float alpha, int batch, fv_norm norm, fv_rng *rng,
                                 fv_progress_fn progress, void *ctx) {
    const float kd[2] = {T, alpha};
    return epoch(net, opt, d, teacher, classes, kd, batch, norm, rng, progress, ctx);
}

void fv_logits(fv_net *net, const fv_dataset *d, int batch, fv_norm norm, float *out) {
    FV_ASSERT(batch >= 1);
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    float *x = fv_malloc((size_t)batch * d->c * d->h * d->w * sizeof(float));
    for (int s = 0; s < d->n; s += batch) {
        int b = d->n - s < batch ? d->n - s : batch;
        fv_dataset_to_float(d, NULL, s, b, norm, x);
        memcpy(out + (size_t)s * K, fv_net_forward(net, x, b, 0), sizeof(float) * (size_t)b * K);
    }
    free(x);
}
