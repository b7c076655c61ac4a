/* mia.h: membership inference, as docs/attacks.md section 3 describes.
 *  - Loss threshold (Yeom et al. 2018): score = -loss of the example under the target model.
 *  - Shadow models with per-example Gaussians, offline (Shokri et al. 2017; LiRA, Carlini et al.
 *    2022): k shadow models are trained with the target's recipe on random halves of the
 *    attacker's own data, which holds none of the queried examples, so every shadow is an OUT
 *    model for every query. Each query's logit margin m = log p_y - log sum_{j != y} p_j under the
 *    shadows gives its OUT Gaussian N(mu, sd^2); the target's score for the query is the one-sided
 *    likelihood-ratio statistic (m - mu) / sd (monotone in Phi((m - mu) / sd), LiRA's offline test).
 *    With few shadows, sd is pooled over queries (LiRA's fixed-variance variant).
 * The recipe is the caller's: a training callback builds each shadow, so shadows match the target
 * (model, epochs, optimizer, VisualMixer or not). Queries come from a data set of the caller's
 * choosing (originals, or mixed versions for a model used on mixed images).
 * Not here: the ROC and its figures (attacks/metrics.h), training loops (shared/nn/train.h).
 */
#ifndef FV_MIA_H
#define FV_MIA_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "nn/net.h"

/* Builds one shadow model trained on images idx[0..n) of the caller's data with the target's
 * recipe; seed varies per shadow. Returns the model (the caller of fv_lira_fit destroys it) or NULL
 * with e set. */
typedef fv_net *(*fv_mia_train_fn)(void *ctx, const int *idx, int n, uint64_t seed, fv_err *e);

typedef struct {
    int k;              /* shadow models (default 8) */
    int per_example_sd; /* 1: per-query sd, 0: pooled, -1: per-query when k >= 16 (default) */
    uint64_t seed;
    int verbose;
} fv_lira_cfg;

fv_lira_cfg fv_lira_defaults(void);

/* Loss-threshold scores: score[nq] = -loss of qd's images qidx[0..nq) under target. */
void fv_mia_loss_scores(double *score, fv_net *target, const fv_dataset *qd, const int *qidx, int nq, fv_norm norm);

/* Logit margins of qd's images qidx[0..nq) under a model: margin[nq]. */
void fv_mia_margins(double *margin, fv_net *model, const fv_dataset *qd, const int *qidx, int nq, fv_norm norm);

/* Train cfg->k shadows, each on a uniformly random half of the attacker's indices own[0..n_own)
 * (own must not contain the queries), and fit each query's OUT Gaussian: mu[nq], sd[nq]
 * (sd floored at 1e-3 and, when pooled, the same for all queries). *shadow_acc (may be NULL)
 * receives the shadows' mean accuracy on the queries. Returns 0, or -1 with e set (k < 2,
 * n_own < 2, or a training failure). */
FV_MUST_USE int fv_lira_fit(double *mu, double *sd, double *shadow_acc, const fv_lira_cfg *cfg, fv_mia_train_fn train,
                void *ctx, const int *own, int n_own, const fv_dataset *qd, const int *qidx, int nq,
                fv_norm norm, fv_err *e);

/* LiRA offline scores of the target: score[i] = (margin_i - mu[i]) / sd[i]. */
void fv_lira_scores(double *score, fv_net *target, const double *mu, const double *sd, const fv_dataset *qd,
                    const int *qidx, int nq, fv_norm norm);

/* The figures of an attack with scores[n] on queries whose membership is member[n] (1 member,
 * 0 non-member): fills auc, tpr at 1% and 0.1% FPR and balanced accuracy (via attacks/metrics.h).
 * Returns 0, or -1 with e set (no members or no non-members). */
#define FV_MIA_ROC_POINTS 101
typedef struct {
    double auc, tpr_1pct, tpr_01pct, balanced_acc;
    int members, nonmembers;
    /* The ROC curve for plots, at most FV_MIA_ROC_POINTS points picked evenly along the full
     * curve (first (0, 0) and last (1, 1) always kept). */
    int roc_n;
    double roc_fpr[FV_MIA_ROC_POINTS], roc_tpr[FV_MIA_ROC_POINTS];
} fv_mia_figures;

FV_MUST_USE int fv_mia_evaluate(fv_mia_figures *out, const double *score, const uint8_t *member, int n, fv_err *e);

#endif
