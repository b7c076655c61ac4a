/* mia.c: see mia.h. */
#include "mia.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "rng.h"
#include "nn/train.h"

fv_lira_cfg fv_lira_defaults(void) {
    fv_lira_cfg c;
    memset(&c, 0, sizeof c);
    c.k = 8;
    c.per_example_sd = -1;
    c.seed = 1;
    return c;
}

void fv_mia_loss_scores(double *score, fv_net *target, const fv_dataset *qd, const int *qidx, int nq, fv_norm norm) {
    float *loss = fv_malloc(sizeof(float) * (size_t)(nq ? nq : 1));
    fv_per_example(target, qd, qidx, nq, 256, norm, loss, NULL);
    for (int i = 0; i < nq; i++) score[i] = -(double)loss[i];
    free(loss);
}

void fv_mia_margins(double *margin, fv_net *model, const fv_dataset *qd, const int *qidx, int nq, fv_norm norm) {
    float *m = fv_malloc(sizeof(float) * (size_t)(nq ? nq : 1));
    fv_per_example(model, qd, qidx, nq, 256, norm, NULL, m);
    for (int i = 0; i < nq; i++) margin[i] = m[i];
    free(m);
}

int fv_lira_fit(double *mu, double *sd, double *shadow_acc, const fv_lira_cfg *cfg, fv_mia_train_fn train,
                void *ctx, const int *own, int n_own, const fv_dataset *qd, const int *qidx, int nq,
                fv_norm norm, fv_err *e) {
    if (cfg->k < 2) return fv_err_set(e, "lira: need at least 2 shadow models (got %d)", cfg->k);
    if (n_own < 2) return fv_err_set(e, "lira: the attacker's data has %d images (need at least 2)", n_own);
    if (nq < 1) return fv_err_set(e, "lira: no queries");
    double *m = fv_malloc(sizeof(double) * (size_t)cfg->k * nq);
    int *perm = fv_malloc(sizeof(int) * (size_t)n_own);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x6c697261);
    double acc = 0;
    for (int s = 0; s < cfg->k; s++) {
        memcpy(perm, own, sizeof(int) * (size_t)n_own);
        fv_rng_shuffle_int(&rng, perm, n_own);
        double t0 = fv_now();
        fv_net *sh = train(ctx, perm, n_own / 2, cfg->seed * 1000003u + (uint64_t)s, e);
        if (!sh) {
            free(m);
            free(perm);
            return fv_err_prefix(e, "lira: shadow %d: ", s);
        }
        fv_mia_margins(m + (size_t)s * nq, sh, qd, qidx, nq, norm);
        fv_eval_stats ev = fv_evaluate(sh, qd, qidx, nq, 256, norm);
        acc += ev.accuracy;
        if (cfg->verbose)
            fprintf(stderr, "lira: shadow %d/%d on %d images: query accuracy %.4f (%.1f s)\n", s + 1, cfg->k, n_own / 2,
                    ev.accuracy, fv_now() - t0);
        fv_net_destroy(&sh);
    }
    int per = cfg->per_example_sd < 0 ? cfg->k >= 16 : cfg->per_example_sd;
    double pooled = 0;
    for (int i = 0; i < nq; i++) {
        double s1 = 0, s2 = 0;
        for (int s = 0; s < cfg->k; s++) s1 += m[(size_t)s * nq + i];
        mu[i] = s1 / cfg->k;
        for (int s = 0; s < cfg->k; s++) {
            double d = m[(size_t)s * nq + i] - mu[i];
            s2 += d * d;
        }
        sd[i] = sqrt(s2 / (cfg->k - 1));
        pooled += s2 / (cfg->k - 1);
    }
    pooled = sqrt(pooled / nq);
    for (int i = 0; i < nq; i++) sd[i] = fmax(per ? sd[i] : pooled, 1e-3);
    if (shadow_acc) *shadow_acc = acc / cfg->k;
    free(m);
    free(perm);
    return 0;
}

void fv_lira_scores(double *score, fv_net *target, const double *mu, const double *sd, const fv_dataset *qd,
                    const int *qidx, int nq, fv_norm norm) {
    fv_mia_margins(score, target, qd, qidx, nq, norm);
    for (int i = 0; i < nq; i++) score[i] = (score[i] - mu[i]) / sd[i];
}

int fv_mia_evaluate(fv_mia_figures *out, const double *score, const uint8_t *member, int n, fv_err *e) {
    memset(out, 0, sizeof *out);
    double *a = fv_malloc(sizeof(double) * (size_t)(n ? n : 1)), *b = fv_malloc(sizeof(double) * (size_t)(n ? n : 1));
    int na = 0, nb = 0;
    for (int i = 0; i < n; i++) {
        if (member[i]) a[na++] = score[i];
        else b[nb++] = score[i];
    }
    out->members = na;
    out->nonmembers = nb;
    fv_roc roc;
    int rc = fv_roc_compute(&roc, a, (size_t)na, b, (size_t)nb, e);
    free(a);
    free(b);
    if (rc) return fv_err_prefix(e, "membership inference: ");
    out->auc = roc.auc;
    out->tpr_1pct = roc.tpr_at_fpr_1pct;
    out->tpr_01pct = roc.tpr_at_fpr_01pct;
    out->balanced_acc = roc.balanced_acc;
    size_t np = roc.n_points;
    out->roc_n = np < FV_MIA_ROC_POINTS ? (int)np : FV_MIA_ROC_POINTS;
    for (int k = 0; k < out->roc_n; k++) {
        size_t i = out->roc_n > 1 ? (size_t)((double)k * (double)(np - 1) / (double)(out->roc_n - 1) + 0.5) : 0;
        out->roc_fpr[k] = roc.points[i].fpr;
        out->roc_tpr[k] = roc.points[i].tpr;
    }
    fv_roc_free(&roc);
    return 0;
}
