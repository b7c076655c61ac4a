/* loss_soft.h: softmax cross-entropy against soft targets (distributions over the classes), for
 * training on mixed labels (InstaHide, mixup). The hard-label loss is fv_softmax_xent (layers.h).
 * Not here: label smoothing schedules, class weights.
 */
#ifndef FV_LOSS_SOFT_H
#define FV_LOSS_SOFT_H

/* logits[N, K], targets[N, K] (each row a distribution: >= 0, sums to 1; not checked here: the
 * loaders check it). Returns the batch mean of -sum_k t[n,k] log softmax(logits[n])[k].
 * dlogits[N, K] (may be NULL) receives (softmax(logits[n]) - t[n]) / N. *correct (may be NULL)
 * counts rows whose largest logit is at the target's largest entry (the first one on ties).
 * Numerically stable (row maximum subtracted); serial, so bitwise reproducible. */
float fv_softmax_xent_soft(float *dlogits, const float *logits, const float *targets, int N, int K, int *correct);

#endif
