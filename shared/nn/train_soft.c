/* train_soft.c: see train_soft.h. */
#include "nn/train_soft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "fv_common.h"
#include "nn/loss_soft.h"

/* The epoch loop the entry points share: per_image[d->n, K] holds each image's row (a soft label,
 * or the teacher's logits when kd is not NULL: kd[0] = T, kd[1] = alpha). With tr not NULL (kd
 * only) each step is fv_trainer_train_kd_batch on tr and net, opt are not used. */
static fv_epoch_stats epoch(fv_net *net, fv_opt *opt, fv_trainer *tr, const fv_dataset *d, const float *per_image,
                            int classes, const float *kd, int batch, fv_norm norm, fv_rng *rng,
                            fv_progress_fn progress, void *ctx) {
    double t0 = fv_now();
    FV_ASSERT(!tr || kd);
    const int K = classes;
    FV_ASSERT(batch >= 1 && (tr || (int)fv_shape_size(fv_net_output_shape(net)) == classes));
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
        int c = 0;
        float l;
        if (tr) {
            fv_dataset_labels(d, order + s, 0, b, y);
            l = fv_trainer_train_kd_batch(tr, x, t, y, b, kd[0], kd[1], &c);
            loss_sum += (double)l * b;
            correct += c;
            if (progress) progress(ctx, s + b, n, loss_sum / (s + b));
            continue;
        }
        const float *logits = fv_net_forward(net, x, b, 1);
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
    return epoch(net, opt, NULL, d, soft, classes, NULL, batch, norm, rng, progress, ctx);
}

fv_epoch_stats fv_train_epoch_kd(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *teacher, int classes,
                                 float T, float alpha, int batch, fv_norm norm, fv_rng *rng,
                                 fv_progress_fn progress, void *ctx) {
    const float kd[2] = {T, alpha};
    return epoch(net, opt, NULL, d, teacher, classes, kd, batch, norm, rng, progress, ctx);
}

fv_epoch_stats fv_train_epoch_kd_trainer(fv_trainer *t, const fv_dataset *d, const float *teacher, int classes,
                                         float T, float alpha, int batch, fv_norm norm, fv_rng *rng,
                                         fv_progress_fn progress, void *ctx) {
    FV_ASSERT(t);
    const float kd[2] = {T, alpha};
    return epoch(NULL, NULL, t, d, teacher, classes, kd, batch, norm, rng, progress, ctx);
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

/* Top-1 accuracy of the logits z[d->n, K] against d's labels; with other[d->n, K] (another net's
 * logits) also the share of images where both name the same class into *agree. */
static double top1_of(const float *z, int K, const fv_dataset *d, const float *other, double *agree) {
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
    return d->n ? (double)hit / d->n : 0.0;
}

/* top1_of net's eval-mode logits of d (fv_logits, batches of 500). */
static double top1(fv_net *net, const fv_dataset *d, fv_norm norm, const float *other, double *agree) {
    const int K = (int)fv_shape_size(fv_net_output_shape(net));
    float *z = fv_malloc(sizeof(float) * (size_t)(d->n ? d->n : 1) * K);
    fv_logits(net, d, 500, norm, z);
    const double acc = top1_of(z, K, d, other, agree);
    free(z);
    return acc;
}

void fv_kd_compare(fv_net *teacher, fv_net *student, const fv_dataset *d, fv_norm norm, fv_kd_result *out) {
    const int K = (int)fv_shape_size(fv_net_output_shape(teacher));
    float *t = fv_malloc(sizeof(float) * (size_t)(d->n ? d->n : 1) * K);
    fv_logits(teacher, d, 500, norm, t);
    out->teacher_acc = top1(teacher, d, norm, NULL, NULL);
    out->student_acc = top1(student, d, norm, t, &out->agreement);
    free(t);
}

/* fv_logits through a trainer (eval mode, batches of `batch` <= its max_batch). */
static void trainer_logits(fv_trainer *t, const fv_dataset *d, int batch, int K, fv_norm norm, float *out) {
    float *x = fv_malloc((size_t)batch * d->c * d->h * d->w * sizeof(float));
    for (int s = 0; s < d->n; s += batch) {
        int b = d->n - s < batch ? d->n - s : batch;
        fv_dataset_to_float(d, NULL, s, b, norm, x);
        fv_trainer_forward(t, x, b, out + (size_t)s * K);
    }
    free(x);
}

/* The student's top-1 accuracy on d and its agreement with the teacher's logits tt: on the CPU
 * top1 on the net itself (which the CPU trainer trains in place: fv_logits in batches of 500, as
 * before the trainer); on a device through the trainer, in batches of `batch`. */
static double student_top1(fv_trainer *t, fv_net *student, int device, const fv_dataset *d, int batch, fv_norm norm,
                           const float *tt, double *agree) {
    if (device < 0) return top1(student, d, norm, tt, agree);
    const int K = d->classes;
    float *z = fv_malloc(sizeof(float) * (size_t)(d->n ? d->n : 1) * K);
    trainer_logits(t, d, batch, K, norm, z);
    const double acc = top1_of(z, K, d, tt, agree);
    free(z);
    return acc;
}

/* The teacher's eval-mode logits of train into tl and of test into tt, in batches of 500: on the
 * CPU fv_logits on the net itself; on cfg->device through a trainer of its own (made, used and
 * freed here; its optimizer never steps), so a GPU student does not wait for a CPU teacher.
 * Returns 0; -1 with e set when that trainer cannot be made (the device is short of memory). */
static int teacher_logits(fv_net *teacher, const fv_kd_cfg *cfg, const fv_dataset *train, const fv_dataset *test,
                          float *tl, float *tt, fv_err *e) {
    if (cfg->device < 0) {
        fv_logits(teacher, train, 500, cfg->norm, tl);
        fv_logits(teacher, test, 500, cfg->norm, tt);
        return 0;
    }
    const int big = train->n > test->n ? train->n : test->n;
    const int batch = big < 1 ? 1 : big < 500 ? big : 500;
    const fv_trainer_cfg tc = {.device = cfg->device, .max_batch = batch, .opt = cfg->opt, .norm = cfg->norm};
    fv_trainer *t = fv_trainer_new(teacher, &tc, e);
    if (!t) return fv_err_prefix(e, "distillation: the teacher on the device: ");
    const int K = train->classes;
    trainer_logits(t, train, batch, K, cfg->norm, tl);
    trainer_logits(t, test, batch, K, cfg->norm, tt);
    fv_trainer_destroy(&t);
    return 0;
}

int fv_kd_fit(fv_net *teacher, fv_net *student, const fv_dataset *train, const fv_dataset *test,
              const fv_kd_cfg *cfg, fv_kd_epoch_fn on_epoch, void *ctx, fv_kd_result *out, fv_err *e) {
    memset(out, 0, sizeof *out);
    const int K = train->classes;
    const long kt = (long)fv_shape_size(fv_net_output_shape(teacher)), ks = (long)fv_shape_size(fv_net_output_shape(student));
    if (kt != K || ks != K)
        return fv_err_set(e, "distillation: the teacher has %ld outputs and the student %ld, but the data set has %d "
                             "classes", kt, ks, K);
    FV_ASSERT(cfg->batch >= 1);
    /* the student's trainer first: a missing device fails before the teacher's logits are computed */
    const fv_trainer_cfg tc = {.device = cfg->device, .max_batch = cfg->batch, .opt = cfg->opt, .norm = cfg->norm};
    if (fv_device_check(cfg->device, e) != 0) return -1; /* "cuda:N: ..." names the device */
    fv_trainer *tr = fv_trainer_new(student, &tc, e);
    if (!tr) return -1;
    float *tl = fv_malloc(sizeof(float) * (size_t)(train->n ? train->n : 1) * K);
    float *tt = fv_malloc(sizeof(float) * (size_t)(test->n ? test->n : 1) * K);
    if (teacher_logits(teacher, cfg, train, test, tl, tt, e) != 0) {
        fv_trainer_destroy(&tr);
        free(tl);
        free(tt);
        return -1;
    }
    out->teacher_acc = top1_of(tt, K, test, NULL, NULL); /* the same bits as top1(teacher, test) */
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 1);
    int rc = 0;
    for (int ep = 1; ep <= cfg->epochs; ep++) {
        out->last = fv_train_epoch_kd_trainer(tr, train, tl, K, cfg->T, cfg->alpha, cfg->batch, cfg->norm, &rng,
                                              NULL, NULL);
        out->seconds += out->last.seconds;
        out->student_acc = student_top1(tr, student, cfg->device, test, cfg->batch, cfg->norm, tt, &out->agreement);
        if (on_epoch) on_epoch(ctx, ep, out);
        if (!isfinite(out->last.loss)) {
            rc = fv_err_set(e, "distillation: the loss diverged (non-finite) in epoch %d; try a smaller learning rate", ep);
            break;
        }
    }
    fv_trainer_get_params(tr, student->params); /* the CPU trained them in place: no copy */
    fv_trainer_destroy(&tr);
    free(tl);
    free(tt);
    return rc;
}
