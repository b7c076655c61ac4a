/* scaffold.c: see scaffold.h. */
#include "fl/scaffold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fv_scaffold {
    size_t n;
    int clients;
    float *c;     /* n */
    float *prev;  /* n: c before the round's end */
    int ended;    /* fv_scaffold_end ran this round (prev is valid) */
    int m, cap;
    float *dc;    /* cap x n: the round's deltas by slot */
    unsigned char *have; /* cap */
    double *acc;  /* n */
};

void fv_scaffold_correction(const float *c, const float *ci, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = ci ? (float)((double)c[i] - (double)ci[i]) : c[i];
}

void fv_scaffold_client_delta(const float *x, const float *y, const float *c, size_t n, int64_t steps, double lr,
                              float *dc) {
    FV_ASSERT(steps >= 1 && lr > 0);
    const double k = (double)steps * lr;
    for (size_t i = 0; i < n; i++) dc[i] = (float)(((double)x[i] - (double)y[i]) / k - (double)c[i]);
}

void fv_scaffold_client_update(const float *ci, const float *dc, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = ci ? (float)((double)ci[i] + (double)dc[i]) : dc[i];
}

fv_scaffold *fv_scaffold_new(size_t n_train, int clients) {
    FV_ASSERT(n_train >= 1 && clients >= 1);
    fv_scaffold *s = fv_calloc(1, sizeof *s);
    s->n = n_train;
    s->clients = clients;
    s->c = fv_calloc(n_train, sizeof(float));
    s->prev = fv_malloc(n_train * sizeof(float));
    s->acc = fv_malloc(n_train * sizeof(double));
    return s;
}

void fv_scaffold_destroy(fv_scaffold **sp) {
    if (!sp || !*sp) return;
    fv_scaffold *s = *sp;
    free(s->c);
    free(s->prev);
    free(s->dc);
    free(s->have);
    free(s->acc);
    free(s);
    *sp = NULL;
}

float *fv_scaffold_c(fv_scaffold *s) { return s->c; }

size_t fv_scaffold_len(const fv_scaffold *s) { return s->n; }

int fv_scaffold_check(const fv_scaffold *s, const char *what, fv_err *e) {
    for (size_t i = 0; i < s->n; i++)
        if (!isfinite(s->c[i]))
            return fv_err_set(e, "%s: SCAFFOLD's control variate c holds a non-finite value at index %zu", what, i);
    return 0;
}

void fv_scaffold_begin(fv_scaffold *s, int m) {
    FV_ASSERT(m >= 0);
    if (m > s->cap) {
        s->dc = fv_realloc(s->dc, (size_t)m * s->n * sizeof(float));
        s->have = fv_realloc(s->have, (size_t)m);
        s->cap = m;
    }
    s->m = m;
    if (m) memset(s->have, 0, (size_t)m);
    s->ended = 0;
}

void fv_scaffold_put(fv_scaffold *s, int slot, const float *dc) {
    FV_ASSERT(slot >= 0 && slot < s->m && !s->have[slot]);
    memcpy(s->dc + (size_t)slot * s->n, dc, s->n * sizeof(float));
    s->have[slot] = 1;
}

const float *fv_scaffold_delta(const fv_scaffold *s, int slot) {
    FV_ASSERT(slot >= 0 && slot < s->m);
    return s->have[slot] ? s->dc + (size_t)slot * s->n : NULL;
}

int fv_scaffold_end(fv_scaffold *s) {
    FV_ASSERT(!s->ended);
    memcpy(s->prev, s->c, s->n * sizeof(float));
    s->ended = 1;
    memset(s->acc, 0, s->n * sizeof(double));
    for (int k = 0; k < s->m; k++) {
        if (!s->have[k]) continue;
        const float *d = s->dc + (size_t)k * s->n;
        for (size_t i = 0; i < s->n; i++) s->acc[i] += (double)d[i];
    }
    const double N = (double)s->clients;
    int sound = 1;
    for (size_t i = 0; i < s->n; i++) {
        s->c[i] = (float)((double)s->c[i] + s->acc[i] / N);
        sound &= isfinite(s->c[i]) != 0;
    }
    return sound ? 0 : -1;
}

void fv_scaffold_undo(fv_scaffold *s) {
    if (!s->ended) return;
    memcpy(s->c, s->prev, s->n * sizeof(float));
    s->ended = 0;
}
