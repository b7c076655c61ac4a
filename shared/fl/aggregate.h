/* aggregate.h: FedAvg's weighted average of client models, computed in client-id order whatever
 * order the updates arrive in, so the global model is bitwise the same for any number of workers
 * and any scheduling.
 *
 * A round has m slots (its sampled clients, sorted by id). An update for the next slot in order
 * is accumulated at once (acc += w * x in double precision); one that arrives early is copied and
 * waits for its predecessors; a slot that will never arrive (dropped client) is skipped. At the
 * end, out = acc / sum(w) rounded once to float. Memory: the double accumulator plus the updates
 * that arrived ahead of a missing predecessor (at most m - 1 vectors, usually none or one).
 * Not here: validating updates (the coordinator), weights other than sample counts.
 */
#ifndef FV_AGGREGATE_H
#define FV_AGGREGATE_H
#include <stddef.h>

typedef struct fv_agg fv_agg;

/* An aggregator for vectors of n floats. Caller owns; free with fv_agg_destroy. */
fv_agg *fv_agg_new(size_t n);
void fv_agg_destroy(fv_agg **a);

/* Start a round of m slots (clears the accumulator and any waiting update). */
void fv_agg_begin(fv_agg *a, int m);

/* The update x[n] of slot s (0 <= s < m) with weight w > 0. Each slot is given at most once
 * (put or skip; a second one aborts: the caller checks duplicates first). */
void fv_agg_put(fv_agg *a, int s, const float *x, double w);

/* Slot s will not arrive. */
void fv_agg_skip(fv_agg *a, int s);

/* Close the round: every slot not yet put or skipped counts as skipped. Writes the weighted
 * average to out[n] and returns the total weight; returns 0 and leaves out untouched when no
 * slot was put. */
double fv_agg_end(fv_agg *a, float *out);

/* Close the round like fv_agg_end, but hand out the raw accumulator instead of the average:
 * returns sum[n] = sum over the put slots of w * x (double, accumulated in slot order), owned by
 * a, which the caller may modify until the next fv_agg_begin; *total gets the total weight (0
 * when no slot was put). For estimators that divide by something else than the total weight
 * (DP-FedAvg's fixed m). */
double *fv_agg_end_sum(fv_agg *a, double *total);

/* Updates currently waiting for a predecessor (for tests and logs). */
int fv_agg_waiting(const fv_agg *a);

/* The accumulation kernel alone: acc[i] += w * x[i] for i < n (for benchmarks). */
void fv_agg_axpy(double *acc, const float *x, double w, size_t n);

#endif
