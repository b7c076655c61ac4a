/* vmix_bounds.h: VisualMixer's window-size bounds, docs/visualmixer.md section 3.
 *   WS_min (privacy): the chi-square model of the shuffled image's VFE. Pairs with both pixels in
 *     one window (and, at block level, in different units) count as chi2(1) each, all others as
 *     0; the modelled image VFE is lambda * chi2(K_in) / K_all, and WS_min is the smallest power
 *     of two whose alpha-quantile reaches V*.
 *   WS_max (utility): Monte Carlo p-quantile d_p(WS) of the output bias of conv (CK x CK, N(0,1)
 *     weights, size-keeping zero padding) + max-pool (PK x PK, stride PK, partial pools kept)
 *     between a window and a random permutation of it; WS_max is the largest power of two with
 *     d_p <= d*, scanning up from WS = 1 and stopping at the first WS over d*.
 * Both are computed once per client shard, offline. Not here: the mixing itself (vmix.h).
 */
#ifndef FV_VMIX_BOUNDS_H
#define FV_VMIX_BOUNDS_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"

/* Inverse of the standard normal CDF, 0 < p < 1 (bisection on erfc to 1e-13). */
double fv_norm_quantile(double p);

/* Below this many degrees of freedom the chi-square quantile uses Wilson-Hilferty, at and above
 * it the normal approximation k + z sqrt(2k) (choice: at k = 1000 the two differ by ~0.1%). */
#define FV_CHI2_NORMAL_K 1000.0

/* p-quantile of chi2(k), k >= 0 (0 for k = 0), by the approximations above. */
double fv_chi2_quantile(double k, double p);

/* Pairs of the VFE model for an h x w image, VFE blocks of `block`, uniform windows of `ws`,
 * shuffle units of `unit`: *k_all = sum over blocks of |P_B|; returns K_in. */
long fv_vmix_pairs_in(int h, int w, int block, int ws, int unit, long *k_all);

typedef struct {
    int ws;
    long k_in, k_all;
    double quantile;  /* alpha-quantile of chi2(k_in) */
    double model_vfe; /* lambda * quantile / k_all */
} fv_wsmin_row;

/* WS_min for target V* with probability 1 - alpha. rows[0..*nrows) (at most 16) receive the
 * model for WS = max(2, unit), ..., the smallest power of two >= max(h, w). Returns 0, or -1
 * with e set: bad arguments, or V* unreachable (e names the largest reachable VFE). */
FV_MUST_USE int fv_vmix_ws_min(int *ws_min, fv_wsmin_row *rows, int *nrows, int h, int w, int block, int unit,
                   double lambda, double target, double alpha, fv_err *e);

typedef struct {
    int kernel;     /* CK, default 3 */
    int pool;       /* PK, default 2 */
    double p;       /* quantile of D, default 0.95 */
    int trials;     /* Monte Carlo trials per WS, default 2000 */
    uint64_t seed;  /* default 1 */
    int threads;    /* <= 0: OpenMP default; results do not depend on it */
    const fv_dataset *images; /* windows drawn from these (the client's own images), standardised
                                 by their per-channel mean and std, flat windows redrawn;
                                 NULL: i.i.d. N(0, 1) pixels */
} fv_dp_cfg;

void fv_dp_cfg_default(fv_dp_cfg *c);

/* d_p(ws) for windows of ws x ws (clipped to the images' size when images are given). */
double fv_vmix_dp(int ws, const fv_dp_cfg *cfg);

/* WS_max for an h x w image and accepted deviation d_max >= 0. dp[k] (k = 0..*ndp-1, at most 16)
 * receives d_p(2^k) for every WS evaluated (up to the first one over d_max, or the smallest
 * power of two >= max(h, w)). Returns 0, or -1 with e set on bad arguments. */
FV_MUST_USE int fv_vmix_ws_max(int *ws_max, double *dp, int *ndp, int h, int w, double d_max,
                   const fv_dp_cfg *cfg, fv_err *e);

/* The default utility limit, relative to the shard's own scale: d* = FV_VMIX_DEFAULT_DREL x
 * d_p(whole image). d_p in standardised units depends on the images (MNIST 9.3 / 14.0 / 19.4,
 * Fashion-MNIST 5.3 / 9.7 / 15.6, Colored MNIST 5.0 / 8.5 / 12.0 at WS 4 / 8 / whole image), so
 * no absolute d* selects the same WS_max on all of them; the ratio does. 0.55 is the middle of
 * [0.48, 0.62), the ratios that select WS_max = 4 on all three, the window size the measured
 * d* sweeps (experiments/vmix/results/dstar_sweep*.csv) accept on MNIST and Fashion-MNIST within
 * 2.5 points of unmixed accuracy (docs/visualmixer.md section 7). */
#define FV_VMIX_DEFAULT_DREL 0.55

/* WS_max with d* given relative to the shard: d_p(2^k) for every power of two up to the whole
 * image (dp[0..*ndp), as fv_vmix_ws_max), then *d_max = rel x the last of them and *ws_max the
 * largest power of two whose d_p (and every smaller one's) is <= *d_max. rel in (0, 1]. Returns
 * 0, or -1 with e set on bad arguments. */
FV_MUST_USE int fv_vmix_ws_max_rel(int *ws_max, double *d_max, double *dp, int *ndp, int h, int w, double rel,
                       const fv_dp_cfg *cfg, fv_err *e);

#endif
