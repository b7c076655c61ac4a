/* aggregate.c: see aggregate.h. */
#include "fl/aggregate.h"

#include <stdlib.h>
#include <string.h>

#include "fl/dp.h"
#include "fv_common.h"

enum { SLOT_EMPTY, SLOT_WAITING, SLOT_DONE };

struct fv_agg {
    size_t n;
    fv_agg_rule rule;
    double *acc;
    double total;
    int m, next, nput, round;
    const float *global;  /* borrowed for the round (DP) */
    float *delta;         /* n: DP scratch, a client's clipped delta */
    int dp_clipped;       /* this round's updates whose delta norm exceeded the clip */
    double dp_norm_sum;   /* this round's pre-clip delta norms, summed in arrival order */
    unsigned char *state; /* m */
    float **wait;         /* m: copies of early updates */
    double *weight;       /* m */
    int cap;
};

fv_agg_rule fv_agg_rule_fedavg(void) { return (fv_agg_rule){0}; }

fv_agg_rule fv_agg_rule_from_config(const fv_config *cfg, size_t n_train) {
    if (!cfg->dp) return fv_agg_rule_fedavg();
    return (fv_agg_rule){1, n_train, cfg->dp_clip, cfg->dp_noise, (uint64_t)cfg->seed};
}

double fv_agg_dp_noise_std(const fv_agg_rule *rule, int m) {
    FV_ASSERT(m >= 1);
    return rule->dp ? rule->noise_multiplier * rule->clip / m : 0;
}

fv_agg *fv_agg_new(size_t n, const fv_agg_rule *rule) {
    FV_ASSERT(!rule->dp || (rule->n_private <= n && rule->clip > 0 && rule->noise_multiplier >= 0));
    fv_agg *a = fv_calloc(1, sizeof *a);
    a->n = n;
    a->rule = *rule;
    a->acc = fv_malloc(n * sizeof(double));
    if (rule->dp) a->delta = fv_malloc(n * sizeof(float));
    return a;
}

static void clear_waiting(fv_agg *a) {
    for (int i = 0; i < a->m; i++) {
        free(a->wait[i]);
        a->wait[i] = NULL;
    }
}

void fv_agg_destroy(fv_agg **ap) {
    if (!ap || !*ap) return;
    fv_agg *a = *ap;
    clear_waiting(a);
    free(a->acc);
    free(a->delta);
    free(a->state);
    free(a->wait);
    free(a->weight);
    free(a);
    *ap = NULL;
}

void fv_agg_begin(fv_agg *a, int m, int round, const float *global) {
    FV_ASSERT(m >= 0 && (!a->rule.dp || (global && round >= 1)));
    clear_waiting(a);
    if (m > a->cap) {
        a->state = fv_realloc(a->state, (size_t)m);
        a->wait = fv_realloc(a->wait, (size_t)m * sizeof(float *));
        a->weight = fv_realloc(a->weight, (size_t)m * sizeof(double));
        a->cap = m;
    }
    a->m = m;
    memset(a->state, SLOT_EMPTY, (size_t)m);
    memset(a->wait, 0, (size_t)m * sizeof(float *));
    memset(a->acc, 0, a->n * sizeof(double));
    a->total = 0;
    a->next = 0;
    a->nput = 0;
    a->round = round;
    a->global = global;
    a->dp_clipped = 0;
    a->dp_norm_sum = 0;
}

void fv_agg_axpy(double *restrict acc, const float *restrict x, double w, size_t n) {
    ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= (1u << 20))
    for (ptrdiff_t i = 0; i < N; i++) acc[i] += w * (double)x[i];
}

/* Accumulate every slot from `next` on that is settled (waiting, or done/skipped), in order. */
static void drain(fv_agg *a) {
    while (a->next < a->m && a->state[a->next] != SLOT_EMPTY) {
        int s = a->next;
        if (a->state[s] == SLOT_WAITING) {
            fv_agg_axpy(a->acc, a->wait[s], a->weight[s], a->n);
            a->total += a->weight[s];
            free(a->wait[s]);
            a->wait[s] = NULL;
            a->state[s] = SLOT_DONE;
        }
        a->next++;
    }
}

/* Slot s's contribution x with weight w, accumulated now or kept until its predecessors are. */
static void put_weighted(fv_agg *a, int s, const float *x, double w) {
    FV_ASSERT(s >= 0 && s < a->m && a->state[s] == SLOT_EMPTY && w > 0);
    a->nput++;
    if (s == a->next) {
        fv_agg_axpy(a->acc, x, w, a->n);
        a->total += w;
        a->state[s] = SLOT_DONE;
        a->next++;
        drain(a);
        return;
    }
    a->wait[s] = fv_malloc(a->n * sizeof(float));
    memcpy(a->wait[s], x, a->n * sizeof(float));
    a->weight[s] = w;
    a->state[s] = SLOT_WAITING;
}

/* DP-FedAvg's contribution of one client: over the private coordinates its delta x - global
 * clipped to the bound; the buffers after them as uploaded. */
static void put_dp(fv_agg *a, int s, const float *x) {
    size_t np = a->rule.n_private;
    const float *g = a->global;
    float *d = a->delta;
    for (size_t i = 0; i < np; i++) d[i] = (float)((double)x[i] - (double)g[i]);
    memcpy(d + np, x + np, (a->n - np) * sizeof(float));
    double norm = fv_dp_clip(d, np, a->rule.clip);
    a->dp_norm_sum += norm;
    a->dp_clipped += norm > a->rule.clip;
    put_weighted(a, s, d, 1.0);
}

void fv_agg_put(fv_agg *a, int s, const float *x, double samples) {
    FV_ASSERT(samples > 0);
    if (a->rule.dp) put_dp(a, s, x);
    else put_weighted(a, s, x, samples);
}

void fv_agg_skip(fv_agg *a, int s) {
    FV_ASSERT(s >= 0 && s < a->m && a->state[s] == SLOT_EMPTY);
    a->state[s] = SLOT_DONE;
    if (s == a->next) drain(a);
}

static void close_round(fv_agg *a) {
    for (int s = 0; s < a->m; s++)
        if (a->state[s] == SLOT_EMPTY) a->state[s] = SLOT_DONE; /* never arrived: skipped */
    drain(a);
    FV_ASSERT(a->next == a->m);
}

/* FedAvg: out = acc / total, rounded once to float. */
static void end_fedavg(fv_agg *a, float *out) {
    double total = a->total;
    ptrdiff_t N = (ptrdiff_t)a->n;
    const double *acc = a->acc;
#pragma omp parallel for schedule(static) if (a->n >= (1u << 20))
    for (ptrdiff_t i = 0; i < N; i++) out[i] = (float)(acc[i] / total);
}

/* DP-FedAvg: out = global + sum of clipped deltas / m + N(0, (z C / m)^2) over the private
 * coordinates; the uniform average of the uploads after them. */
static void end_dp(fv_agg *a, float *out) {
    double *sum = a->acc;
    size_t np = a->rule.n_private;
    double m = (double)a->m;
    for (size_t i = 0; i < np; i++) sum[i] /= m;
    fv_dp_add_noise(sum, np, fv_agg_dp_noise_std(&a->rule, a->m), a->rule.seed ^ FV_AGG_DP_NOISE_DOMAIN,
                    (uint64_t)a->round);
    const float *g = a->global;
    for (size_t i = 0; i < np; i++) out[i] = (float)((double)g[i] + sum[i]);
    for (size_t i = np; i < a->n; i++) out[i] = (float)(sum[i] / a->total);
}

int fv_agg_end(fv_agg *a, float *out) {
    close_round(a);
    if (a->nput == 0) return 0;
    if (a->rule.dp) end_dp(a, out);
    else end_fedavg(a, out);
    return a->nput;
}

void fv_agg_dp_stats(const fv_agg *a, int *clipped, double *norm_sum) {
    *clipped = a->dp_clipped;
    *norm_sum = a->dp_norm_sum;
}

int fv_agg_waiting(const fv_agg *a) {
    int w = 0;
    for (int s = 0; s < a->m; s++) w += a->state[s] == SLOT_WAITING;
    return w;
}
