/* fedbuff.h: FedBuff's buffer arithmetic (Nguyen et al. 2022; [fl] mode = async,
 * docs/heterogeneity.md). A client's update is its delta d = upload - the model it started from
 * (kept in float, each coordinate computed in double and rounded once). The buffer sums
 * w(s) d over its K updates in double, s the update's staleness (server steps since its start);
 * the server step is x += server_lr x sum / K, each coordinate in double, rounded once to float.
 * Every parameter, batch-norm buffers included, follows this rule. The order of additions is the
 * caller's (the virtual clock's arrival order), so the result is deterministic.
 * Not here: when updates arrive (vclock.h), the wire (coordinator/).
 */
#ifndef FV_FEDBUFF_H
#define FV_FEDBUFF_H
#include <stddef.h>

#include "fl/config.h"

/* The weight of an update `staleness` (>= 0) server steps stale: 1 / sqrt(1 + s) (sqrt),
 * 1 / (1 + s) (inverse) or 1 (constant). */
double fv_fedbuff_weight(fv_staleness kind, long staleness);

/* d[i] = upload[i] - base[i] (in double, rounded to float). */
void fv_fedbuff_delta(float *d, const float *upload, const float *base, size_t n);

/* sum[i] += w x d[i]. */
void fv_fedbuff_add(double *sum, const float *d, double w, size_t n);

/* The server step: x[i] = x[i] + lr x sum[i] / k (k >= 1, in double, rounded to float). */
void fv_fedbuff_apply(float *x, const double *sum, double lr, int k, size_t n);

#endif
