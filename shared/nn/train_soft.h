/* train_soft.h: one training epoch against soft labels (the mixed labels of InstaHide), the
 * soft-label twin of fv_train_epoch (train.h); evaluation stays fv_evaluate on hard labels.
 * Deterministic: the data order comes from the caller's rng.
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

#endif
