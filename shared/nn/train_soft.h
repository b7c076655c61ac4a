/* train_soft.h: one training epoch against soft labels (the mixed labels of InstaHide), the
 * soft-label twin of fv_train_epoch (train.h), and one epoch of knowledge distillation against a
 * teacher's logits; evaluation stays fv_evaluate on hard labels.
 * Deterministic: the data order comes from the caller's rng.
 * Distillation also runs through a trainer (nn/trainer.h) on the CPU or a CUDA device
 * (fv_train_epoch_kd_trainer, fv_kd_fit's cfg->device); the soft-label epoch is CPU only.
 * Not here: producing the soft labels (obfuscate.h), federated training, loading a teacher.
 */
#ifndef FV_TRAIN_SOFT_H
#define FV_TRAIN_SOFT_H
#include "nn/optim.h"
#include "nn/train.h"
#include "nn/trainer.h"

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

/* fv_train_epoch_kd through a trainer: the same epoch (the same order drawn from rng, the same
 * batches, the same statistics) with each step fv_trainer_train_kd_batch on t's device (batch <=
 * t's max_batch; classes must equal the model's outputs). On the CPU backend the bits are
 * fv_train_epoch_kd's on t's net and optimizer; on CUDA they differ by rounding only. */
fv_epoch_stats fv_train_epoch_kd_trainer(fv_trainer *t, const fv_dataset *d, const float *teacher, int classes,
                                         float T, float alpha, int batch, fv_norm norm, fv_rng *rng,
                                         fv_progress_fn progress, void *ctx);

/* A whole distillation (fv_kd_fit): the student's optimizer, T (> 0) and alpha (in [0, 1]) of
 * fv_kd_loss, epochs and batch (>= 1), the seed of the data order, the inputs' normalisation, and
 * the device the student trains and is evaluated on (-1: the CPU; N >= 0: CUDA device N, as
 * fv_trainer_cfg.device). Initialise it with designated initialisers: a forgotten device is 0,
 * which is cuda:0. */
typedef struct {
    fv_opt_cfg opt;
    float T, alpha;
    int epochs, batch;
    uint64_t seed;
    fv_norm norm;
    int device;
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
 * eval-mode logits of every image of train and test are computed once on cfg->device (on a GPU
 * through a trainer of the teacher's own, freed before the student trains), then
 * cfg->epochs epochs of fv_train_epoch_kd_trainer train the student with a fresh cfg->opt
 * optimizer in a trainer on cfg->device, the order drawn from cfg->seed; after each epoch the
 * student is evaluated on test on that device (out's figures) and on_epoch (if not NULL) is
 * called. At the end the student's parameters are in student->params (the CPU trains them in
 * place; CUDA copies them back, also after an error). The one loop `fedvim distill` and a
 * federated run's server-side distillation share. Returns 0; -1 with e set when the outputs of the
 * two nets differ from the class count, when the trainer cannot be made (the device is missing
 * or short of memory, the optimizer configuration is bad; e names the device), or when a loss
 * turns non-finite (out then holds the last epoch). With device -1 the bits are those of
 * fv_train_epoch_kd epochs on student; deterministic for a given seed and thread count. */
FV_MUST_USE int fv_kd_fit(fv_net *teacher, fv_net *student, const fv_dataset *train, const fv_dataset *test,
                          const fv_kd_cfg *cfg, fv_kd_epoch_fn on_epoch, void *ctx, fv_kd_result *out, fv_err *e);

/* Both nets on d (eval mode): their top-1 accuracies and the share of images where they agree
 * into out's teacher_acc, student_acc and agreement (the other fields are left alone). */
void fv_kd_compare(fv_net *teacher, fv_net *student, const fv_dataset *d, fv_norm norm, fv_kd_result *out);

/* The eval-mode logits (running batch-norm statistics, no dropout) of every image of d, in d's
 * order, batches of `batch`: out[d->n, outputs]. */
void fv_logits(fv_net *net, const fv_dataset *d, int batch, fv_norm norm, float *out);

#endif
