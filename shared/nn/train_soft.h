/* train_soft.h: one training epoch against soft labels (the mixed labels of InstaHide), the
 * soft-label twin of fv_train_epoch (train.h), and one epoch of knowledge distillation against a
 * teacher's logits; evaluation stays fv_evaluate on hard labels.
 * Deterministic: the data order comes from the caller's rng.
 * CPU only: the CUDA trainer has neither loss yet (`fedvim distill` refuses --device cuda).
 * Not here: producing the soft labels (obfuscate.h), federated training.
 */
#ifndef FV_TRAIN_SOFT_H
#define FV_TRAIN_SOFT_H
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

/* The eval-mode logits (running batch-norm statistics, no dropout) of every image of d, in d's
 * order, batches of `batch`: out[d->n, outputs]. */
void fv_logits(fv_net *net, const fv_dataset *d, int batch, fv_norm norm, float *out);

#endif
