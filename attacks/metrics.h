/* metrics.h: the leakage metrics of docs/attacks.md ("Metrics"): MSE and PSNR, SSIM, the
 * membership-inference ROC (AUC, TPR at low FPR, balanced accuracy) and the reassembly figures
 * for attacks on shuffled images. Everything is computed in double.
 *
 * Images are float CHW (c channels of h x w, row-major) with values in [0, 1]: the dynamic range
 * L is 1 in PSNR and SSIM. Values outside [0, 1] are not an error, but the figures then lose
 * their usual meaning.
 * Not here: recognisability and victim-specific resemblance (they need an oracle model and the
 * victim's data: attacks/ builds them from fv_ssim_best), plotting, I/O.
 */
#ifndef FV_METRICS_H
#define FV_METRICS_H
#include <stddef.h>

#include "fv_common.h"

/* ---- MSE and PSNR ---- */

/* Mean of (a[i] - b[i])^2 over n > 0 values. */
double fv_mse(const float *a, const float *b, size_t n);

/* 10 log10(1 / mse) in dB; +INFINITY when mse == 0 (identical images), never NaN for mse >= 0. */
double fv_psnr_from_mse(double mse);

/* PSNR of one image of n values: fv_psnr_from_mse(fv_mse(a, b, n)). */
double fv_psnr(const float *a, const float *b, size_t n);

/* Over nimg images of img_size values each (a and b hold them back to back): the mean of the
 * per-image MSE, and the mean of the per-image PSNR (+INFINITY if any image is identical to its
 * counterpart: an exact recovery is reported as such, not hidden in an average). */
double fv_mse_mean(const float *a, const float *b, size_t nimg, size_t img_size);
double fv_psnr_mean(const float *a, const float *b, size_t nimg, size_t img_size);

/* ---- SSIM (Wang et al. 2004) ---- */

#define FV_SSIM_WIN 11     /* window side */
#define FV_SSIM_SIGMA 1.5  /* Gaussian window standard deviation */
#define FV_SSIM_C1 1e-4    /* (0.01 L)^2, L = 1 */
#define FV_SSIM_C2 9e-4    /* (0.03 L)^2 */

/* SSIM of two c x h x w images: at every VALID position of an 11 x 11 Gaussian window (sigma 1.5,
 * weights normalised to sum 1; no padding, so (h - 10) x (w - 10) positions), with weighted means
 * mu, population (weighted, no Bessel correction) variances and covariance,
 *   ssim = (2 mu_a mu_b + C1)(2 cov_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2)),
 * then the mean over positions per channel, then the mean over channels. Identical images give
 * exactly 1. Images smaller than 11 in height or width have no valid position: that is an error
 * (as in scikit-image), not a silently different definition; upsample or compare larger crops.
 * Returns 0 with *out set, or -1 with e set. */
FV_MUST_USE int fv_ssim(double *out, const float *a, const float *b, int c, int h, int w, fv_err *e);

/* Mean SSIM over nimg image pairs (back to back, c x h x w each). Returns 0 or -1 as fv_ssim. */
FV_MUST_USE int fv_ssim_mean(double *out, const float *a, const float *b, size_t nimg, int c, int h, int w,
                 fv_err *e);

/* The best (largest) SSIM of img against each of nref reference images (back to back), and the
 * index of that reference (*best_idx may be NULL). nref >= 1. Returns 0 or -1 as fv_ssim. */
FV_MUST_USE int fv_ssim_best(double *best, size_t *best_idx, const float *img, const float *refs, size_t nref,
                 int c, int h, int w, fv_err *e);

/* ---- Membership inference: ROC ---- */

/* One point of the ROC curve: predicting "member" for every score >= threshold gives these
 * rates. The first point, (0, 0), predicts no member (threshold +INFINITY, with "score >
 * threshold" meaning); the last is (1, 1). */
typedef struct {
    double fpr, tpr, threshold;
} fv_roc_point;

typedef struct {
    size_t n_points;       /* distinct scores + 1 */
    fv_roc_point *points;  /* by increasing threshold rank: FPR and TPR non-decreasing */
    double auc;            /* area under the curve; equals the Mann-Whitney U / (nm nn) with ties
                            * between a member and a non-member counted 1/2 */
    double tpr_at_fpr_1pct;   /* fv_roc_tpr_at_fpr(roc, 0.01) */
    double tpr_at_fpr_01pct;  /* fv_roc_tpr_at_fpr(roc, 0.001) */
    double balanced_acc;      /* max over ROC points of 1 - (FPR + FNR) / 2 */
    double balanced_acc_threshold; /* threshold of the first point reaching it */
} fv_roc;

/* The ROC of an attack that gives higher scores to members: member[0..nm) are the scores of
 * members (positives), nonmember[0..nn) those of non-members. All scores with equal value form
 * one point (ties are never split). nm, nn >= 1; +-INFINITY scores are allowed, NaN is an error.
 * Fills *roc (caller frees with fv_roc_free). Returns 0, or -1 with e set. */
FV_MUST_USE int fv_roc_compute(fv_roc *roc, const double *member, size_t nm, const double *nonmember, size_t nn,
                   fv_err *e);

/* The TPR at the last ROC point whose FPR <= max_fpr (attacks.md); FPRs within 1e-12 above
 * max_fpr count as equal, so 10 / 1000 qualifies for 0.01 despite rounding. */
double fv_roc_tpr_at_fpr(const fv_roc *roc, double max_fpr);

void fv_roc_free(fv_roc *roc);

/* ---- Reassembly of shuffled images ---- */

typedef struct {
    double correct;    /* fraction of the n values where output equals the original */
    double baseline;   /* the same for the shuffled input (what the attack started from) */
    double restored;   /* among the values the shuffle changed (shuffled != original), the fraction
                        * the attack put back (output == original); 1 when the shuffle changed
                        * nothing */
    size_t displaced;  /* how many values the shuffle changed */
} fv_reassembly;

/* Position figures for an attack on a shuffled image: original, shuffled and output hold n values
 * each (one or more CHW images). Pixels are compared by value, equal when |x - y| <= tol (0 for
 * outputs that permute the input's values). Pixels of equal value are indistinguishable, so in
 * flat regions "correct" counts a pixel as in place even if it came from elsewhere: "restored"
 * is the figure that counts only pixels the shuffle actually moved. n >= 1. */
fv_reassembly fv_reassembly_compute(const float *original, const float *shuffled,
                                    const float *output, size_t n, float tol);

/* When the attack reports its arrangement: perm[i] is the original position of the value it put
 * at position i (for i in [0, n)). Returns the fraction of i with perm[i] == i: the exact "pixels
 * at their original position", unaffected by equal values. */
double fv_perm_correct_fraction(const size_t *perm, size_t n);

#endif
