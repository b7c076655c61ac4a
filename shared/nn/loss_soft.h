/* loss_soft.h: softmax cross-entropy against soft targets (distributions over the classes), for
 * training on mixed labels (InstaHide, mixup), and the knowledge-distillation loss of Hinton et al.
 * (2015) against a teacher's logits. The hard-label loss is fv_softmax_xent (layers.h).
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

/* Knowledge distillation (Hinton, Vinyals, Dean 2015). logits[N, K] of the student, teacher[N, K]
 * the teacher's logits for the same images, labels[N] in [0, K), temperature T > 0, alpha in [0, 1].
 * With p = softmax(z / T), q = softmax(teacher / T):
 *   loss = (1 - alpha) * CE(softmax(z), label) + alpha * T^2 * KL(q || p), averaged over the batch.
 * T^2 keeps the soft term's gradient at the scale of the hard term's as T grows. alpha = 0 is
 * fv_softmax_xent; alpha = 1, T = 1 is fv_softmax_xent_soft against softmax(teacher) less the
 * teacher's entropy (the same gradient). dlogits[N, K] (may be NULL) receives
 *   ((1 - alpha) (softmax(z) - onehot) + alpha T (p - q)) / N.
 * *hard (may be NULL) receives the batch mean of the hard term alone, *correct (may be NULL) the
 * rows whose largest logit is at the label. Rows are computed in double, serially: bitwise
 * reproducible. */
float fv_kd_loss(float *dlogits, const float *logits, const float *teacher, const int *labels, int N, int K,
                 float T, float alpha, float *hard, int *correct);

#endif
