/* train_soft.h: one training epoch against soft labels (the mixed labels of InstaHide), the
 * soft-label twin of fv_train_epoch (train.h), and one epoch of knowledge distillation against a
 * teacher's logits; evaluation stays fv_evaluate on hard labels.
 * Deterministic: the data order comes from the caller's rng.
 * CPU only: the CUDA trainer has neither loss yet (`fedvim distill` refuses --device cuda).
 * Not here: producing the soft labels (obfuscate.h), federated training, loading a teacher.
 */
#ifndef FV_TRAIN_SOFT_H
#define FV_TRAIN_SOFT_H
#include "nn/optim.h"
#include "nn/train.h"

/* One epoch over all images of d with targets soft[d->n, classes] (classes must equal the net's
 * output size: a programmer error otherwise), shuffled with rng, batches of `batch`, inputs
 * normalised with norm. Loss: fv_softmax_xent_soft; accuracy: argmax of the logits against the
 * argmax of the soft label. Returns the epoch's statistics. */
fv_epoch_stats fv_train_epoch_soft(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *soft, int classes,
                                   int batch, fv_norm norm, fv_rng *rng, fv_progress_fn progress, void *ctx);

/* One epoch of knowledge distillation (fv_kd_loss, loss_soft.h) over all images of d, in the order
 * rng shuffles, batches of `batch`: teacher[d->n, classes] holds the teacher's logits of each image
 * of d (fv_logits; classes must equal the net's output size), T the temperature (> 0), alpha the
 * weight of the soft term in [0, 1]. The statistics' loss is fv_kd_loss's; accuracy is against
 * d's labels. Deterministic for a given rng state and thread count. */
fv_epoch_stats fv_train_epoch_kd(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *teacher, int classes,
                                 float T, float alpha, int batch, fv_norm norm, fv_rng *rng,
                                 fv_progress_fn progress, void *ctx);

/* A whole distillation (fv_kd_fit): the student's optimizer, T (> 0) and alpha (in [0, 1]) of
 * fv_kd_loss, epochs and batch (>= 1), the seed of the data order, the inputs' normalisation. */
typedef struct {
    fv_opt_cfg opt;
    float T, alpha;
    int epochs, batch;
    uint64_t seed;
    fv_norm norm;
} fv_kd_cfg;

/* What a distillation measured on its test set: the teacher's and the student's top-1 accuracy,
 * the share of test images where the two predict the same class, the last epoch's statistics, and
 * the seconds spent in the student's training epochs. */
typedef struct {
    double teacher_acc, student_acc, agreement;
    fv_epoch_stats last;
    double seconds;
} fv_kd_result;

/* Called after each epoch (1-based) with its statistics and r's figures so far. */
typedef void (*fv_kd_epoch_fn)(void *ctx, int epoch, const fv_kd_result *r);

/* Distil teacher into student (both built for train's image shape and class count): the teacher's
 * eval-mode logits of every image of train and test are computed once, then cfg->epochs epochs of
 * fv_train_epoch_kd train the student in place with a fresh cfg->opt optimizer, the order drawn
 * from cfg->seed; after each epoch the student is evaluated on test (out's figures) and on_epoch
 * (if not NULL) is called. The one loop `fedvim distill` and a federated run's server-side
 * distillation share. Returns 0; -1 with e set when the outputs of the two nets differ from the
 * class count, or when a loss turns non-finite (out then holds the last epoch). Deterministic for
 * a given seed and thread count. */
FV_MUST_USE int fv_kd_fit(fv_net *teacher, fv_net *student, const fv_dataset *train, const fv_dataset *test,
                          const fv_kd_cfg *cfg, fv_kd_epoch_fn on_epoch, void *ctx, fv_kd_result *out, fv_err *e);

/* Both nets on d (eval mode): their top-1 accuracies and the share of images where they agree
 * into out's teacher_acc, student_acc and agreement (the other fields are left alone). */
void fv_kd_compare(fv_net *teacher, fv_net *student, const fv_dataset *d, fv_norm norm, fv_kd_result *out);

/* The eval-mode logits (running batch-norm statistics, no dropout) of every image of d, in d's
 * order, batches of `batch`: out[d->n, outputs]. */
void fv_logits(fv_net *net, const fv_dataset *d, int batch, fv_norm norm, float *out);

#endif
