/* aggregate.c: see aggregate.h. */
#include "fl/aggregate.h"

#include <stdlib.h>
#include <string.h>

#include "fv_common.h"

enum { SLOT_EMPTY, SLOT_WAITING, SLOT_DONE };

struct fv_agg {
    size_t n;
    double *acc;
    double total;
    int m, next, nput;
    unsigned char *state; /* m */
    float **wait;         /* m: copies of early updates */
    double *weight;       /* m */
    int cap;
};

fv_agg *fv_agg_new(size_t n) {
    fv_agg *a = fv_calloc(1, sizeof *a);
    a->n = n;
    a->acc = fv_malloc(n * sizeof(double));
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
    free(a->state);
    free(a->wait);
    free(a->weight);
    free(a);
    *ap = NULL;
}

void fv_agg_begin(fv_agg *a, int m) {
    FV_ASSERT(m >= 0);
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

void fv_agg_put(fv_agg *a, int s, const float *x, double w) {
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

double *fv_agg_end_sum(fv_agg *a, double *total) {
    close_round(a);
    *total = a->nput ? a->total : 0;
    return a->acc;
}

double fv_agg_end(fv_agg *a, float *out) {
    close_round(a);
    if (a->nput == 0) return 0;
    double total = a->total;
    ptrdiff_t N = (ptrdiff_t)a->n;
    const double *acc = a->acc;
#pragma omp parallel for schedule(static) if (a->n >= (1u << 20))
    for (ptrdiff_t i = 0; i < N; i++) out[i] = (float)(acc[i] / total);
    return a->total;
}

int fv_agg_waiting(const fv_agg *a) {
    int w = 0;
    for (int s = 0; s < a->m; s++) w += a->state[s] == SLOT_WAITING;
    return w;
}
