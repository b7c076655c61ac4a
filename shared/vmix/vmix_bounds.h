/* vmix_bounds.h: VisualMixer's window-size bounds, docs/visualmixer.md section 3.
 *   WS_min (privacy): the chi-square model of the shuffled image's VFE. Pairs with both pixels in
 *     one window (and, at block level, in different units) count as chi2(1) each, all others as
 *     0; the modelled image VFE is lambda * chi2(K_in) / K_all, and WS_min is the smallest power
 *     of two whose alpha-quantile reaches V*.
 *   WS_max (utility): Monte Carlo p-quantile d_p(WS) of the output bias of conv (CK x CK, N(0,1)
 *     weights, size-keeping zero padding) + max-pool (PK x PK, stride PK, partial pools kept)
 *     between a window and a random permutation of it; WS_max is the largest power of two with
 *     d_p <= d*, scanning up from WS = 1 and stopping at the first WS over d*.
 * Both are computed once per client shard, offline. fv_vmix_bounds_compute is the one rule that
 * turns the parameters into the window bounds every caller uses (a federated run's workers and
 * coordinator through fl/experiment.h, `fedvim bounds` and `fedvim mix`): WS_min, WS_max, d*,
 * the conflict WS_min > WS_max, and the shuffle unit. Not here: the mixing itself (vmix.h), the
 * defaults (vmix_defaults.h).
 */
#ifndef FV_VMIX_BOUNDS_H
#define FV_VMIX_BOUNDS_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "vmix/vmix_defaults.h"

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
    int kernel;     /* CK */
    int pool;       /* PK */
    double p;       /* quantile of D */
    int trials;     /* Monte Carlo trials per WS */
    uint64_t seed;
    int threads;    /* <= 0: OpenMP default; results do not depend on it */
    const fv_dataset *images; /* windows drawn from these (the client's own images), standardised
                                 by their per-channel mean and std, flat windows redrawn;
                                 NULL: i.i.d. N(0, 1) pixels */
} fv_dp_cfg;

/* The defaults of vmix_defaults.h (kernel, pool, p, trials, seed); threads 0, images NULL. */
void fv_dp_cfg_default(fv_dp_cfg *c);

/* d_p(ws) for windows of ws x ws (clipped to the images' size when images are given). */
double fv_vmix_dp(int ws, const fv_dp_cfg *cfg);

/* WS_max for an h x w image and accepted deviation d_max >= 0. dp[k] (k = 0..*ndp-1, at most 16)
 * receives d_p(2^k) for every WS evaluated (up to the first one over d_max, or the smallest
 * power of two >= max(h, w)). Returns 0, or -1 with e set on bad arguments. */
FV_MUST_USE int fv_vmix_ws_max(int *ws_max, double *dp, int *ndp, int h, int w, double d_max,
                   const fv_dp_cfg *cfg, fv_err *e);

/* WS_max with d* given relative to the shard: d_p(2^k) for every power of two up to the whole
 * image (dp[0..*ndp), as fv_vmix_ws_max), then *d_max = rel x the last of them and *ws_max the
 * largest power of two whose d_p (and every smaller one's) is <= *d_max. rel in (0, 1]. Returns
 * 0, or -1 with e set on bad arguments. */
FV_MUST_USE int fv_vmix_ws_max_rel(int *ws_max, double *d_max, double *dp, int *ndp, int h, int w, double rel,
                       const fv_dp_cfg *cfg, fv_err *e);

/* Who wins when WS_min > WS_max: nobody (an error naming both), privacy (WS_max raised to
 * WS_min) or utility (WS_min lowered to WS_max). */
typedef enum { FV_VMIX_CONFLICT_ERROR, FV_VMIX_CONFLICT_PRIVACY, FV_VMIX_CONFLICT_UTILITY } fv_vmix_conflict;

/* "error", "privacy", "utility". */
const char *fv_vmix_conflict_name(fv_vmix_conflict c);

/* How the caller's user spells the knobs, for the advice in errors (flags or config keys). */
typedef struct {
    const char *target; /* e.g. "--target-vfe" */
    const char *d_star; /* e.g. "--d-max or --d-rel" */
    const char *prefer; /* e.g. "choose with --prefer privacy|utility" */
    const char *unit;   /* e.g. "--unit" */
} fv_vmix_bounds_words;

/* Everything the window bounds depend on. */
typedef struct {
    double target, alpha, lambda; /* WS_min model: V*, alpha, lambda */
    int block, unit;              /* VFE block B; shuffle unit u (WS_min must be >= u) */
    double d_max;                 /* WS_max: absolute d*, or < 0 (FV_VMIX_DMAX_REL): d_rel applies */
    double d_rel;                 /* WS_max: d* = d_rel x d_p(whole image) when d_max < 0 */
    fv_dp_cfg dp;                 /* WS_max Monte Carlo (images: the user's own, or NULL) */
    int ws_min, ws_max;           /* > 0: given by the user, that bound is not computed */
    fv_vmix_conflict conflict;    /* who wins WS_min > WS_max */
    fv_vmix_bounds_words words;   /* neutral words by default */
} fv_vmix_bounds_cfg;

/* The d_max of a configuration whose d* is relative. */
#define FV_VMIX_DMAX_REL (-1.0)

typedef struct {
    int ws_min, ws_max;             /* the bounds to use */
    int ws_min_model, ws_max_model; /* as computed, before a conflict was resolved (0: given) */
    fv_wsmin_row rows[16];          /* the WS_min model's figures (nrows 0: WS_min given) */
    int nrows;
    double dp[16];                  /* d_p(2^k) (ndp 0: WS_max given) */
    int ndp;
    double d_max;                   /* the d* WS_max came from (given, or d_rel x d_p) */
    fv_vmix_conflict resolved;      /* FV_VMIX_CONFLICT_ERROR: no conflict; else who won one */
} fv_vmix_bounds;

/* The defaults of vmix_defaults.h; d* relative, nothing given, conflicts are errors, neutral
 * words. */
void fv_vmix_bounds_cfg_default(fv_vmix_bounds_cfg *c);

/* The window bounds for h x w images: WS_min from the chi-square model (fv_vmix_ws_min) unless
 * given, WS_max from the Monte Carlo (fv_vmix_ws_max, or fv_vmix_ws_max_rel when d_max < 0)
 * unless given; a conflict WS_min > WS_max is resolved as c->conflict says or is an error naming
 * both bounds and the targets behind them. The rule for the shuffle unit: the bounds are never
 * raised silently; a WS_min below c->unit (given, or lowered to WS_max by conflict = utility) is
 * an error naming both values. *b holds whatever was computed even on failure (the figures behind
 * a conflict). Errors name the values and what to set, in c->words; callers prefix their own
 * context (the config section, or nothing for the flags). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_vmix_bounds_compute(fv_vmix_bounds *b, const fv_vmix_bounds_cfg *c, int h, int w, fv_err *e);

#endif
