/* train_soft.c: see train_soft.h. */
#include "nn/train_soft.h"

#include <math.h>
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

/* Top-1 accuracy of net on d; with other[d->n, K] (another net's logits) also the share of images
 * where both name the same class into *agree. */
static double top1(fv_net *net, const fv_dataset *d, fv_norm norm, const float *other, double *agree) {
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    float *z = fv_malloc(sizeof(float) * (size_t)(d->n ? d->n : 1) * K);
    fv_logits(net, d, 500, norm, z);
    long hit = 0, same = 0;
    for (int i = 0; i < d->n; i++) {
        const float *r = z + (size_t)i * K;
        int a = 0, b = 0;
        for (int k = 1; k < K; k++) a = r[k] > r[a] ? k : a;
        hit += a == d->y[i];
        if (other) {
            const float *o = other + (size_t)i * K;
            for (int k = 1; k < K; k++) b = o[k] > o[b] ? k : b;
            same += a == b;
        }
    }
    if (agree) *agree = d->n ? (double)same / d->n : 0.0;
    free(z);
    return d->n ? (double)hit / d->n : 0.0;
}

void fv_kd_compare(fv_net *teacher, fv_net *student, const fv_dataset *d, fv_norm norm, fv_kd_result *out) {
    const int K = (int)fv_shape_size(fv_net_output_shape(teacher));
    float *t = fv_malloc(sizeof(float) * (size_t)(d->n ? d->n : 1) * K);
    fv_logits(teacher, d, 500, norm, t);
    out->teacher_acc = top1(teacher, d, norm, NULL, NULL);
    out->student_acc = top1(student, d, norm, t, &out->agreement);
    free(t);
}

int fv_kd_fit(fv_net *teacher, fv_net *student, const fv_dataset *train, const fv_dataset *test,
              const fv_kd_cfg *cfg, fv_kd_epoch_fn on_epoch, void *ctx, fv_kd_result *out, fv_err *e) {
    memset(out, 0, sizeof *out);
    const int K = train->classes;
    const long kt = (long)fv_shape_size(fv_net_output_shape(teacher)), ks = (long)fv_shape_size(fv_net_output_shape(student));
    if (kt != K || ks != K)
        return fv_err_set(e, "distillation: the teacher has %ld outputs and the student %ld, but the data set has %d "
                             "classes", kt, ks, K);
    float *tl = fv_malloc(sizeof(float) * (size_t)(train->n ? train->n : 1) * K);
    float *tt = fv_malloc(sizeof(float) * (size_t)(test->n ? test->n : 1) * K);
    fv_logits(teacher, train, 500, cfg->norm, tl);
    fv_logits(teacher, test, 500, cfg->norm, tt);
    out->teacher_acc = top1(teacher, test, cfg->norm, NULL, NULL);
    fv_opt *opt = fv_opt_new(&cfg->opt, student->n_train);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 1);
    int rc = 0;
    for (int ep = 1; ep <= cfg->epochs; ep++) {
        out->last = fv_train_epoch_kd(student, opt, train, tl, K, cfg->T, cfg->alpha, cfg->batch, cfg->norm, &rng,
                                      NULL, NULL);
        out->seconds += out->last.seconds;
        out->student_acc = top1(student, test, cfg->norm, tt, &out->agreement);
        if (on_epoch) on_epoch(ctx, ep, out);
        if (!isfinite(out->last.loss)) {
            rc = fv_err_set(e, "distillation: the loss diverged (non-finite) in epoch %d; try a smaller learning rate", ep);
            break;
        }
    }
    fv_opt_destroy(&opt);
    free(tl);
    free(tt);
    return rc;
}
