/* aggregate.c: see aggregate.h. */
#include "fl/aggregate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fl/dp.h"
#include "fv_common.h"

/* SLOT_KEPT: a robust rule's upload, kept in wait[] until fv_agg_end. */
enum { SLOT_EMPTY, SLOT_WAITING, SLOT_DONE, SLOT_KEPT };

struct fv_agg {
    size_t n;
    fv_agg_rule rule;
    double *acc;
    double total;
    double ntau;          /* FedNova: sum of samples x ||a_i||_1 over the accumulated updates */
    int m, next, nput, round;
    const float *global;  /* borrowed for the round (DP, FedNova, the robust rules) */
    float *delta;         /* n: DP scratch, a client's clipped delta */
    int dp_clipped;       /* this round's updates whose delta norm exceeded the clip */
    double dp_norm_sum;   /* this round's pre-clip delta norms, summed in arrival order */
    unsigned char *state; /* m */
    float **wait;         /* m: copies of early updates */
    double *weight;       /* m */
    int cap;
    int held;             /* the last robust round kept the global model */
};

static int robust(const fv_agg_rule *r) {
    return r->kind != FV_AGGREGATOR_FEDAVG && r->kind != FV_AGGREGATOR_FEDNOVA && r->kind != FV_AGGREGATOR_SCAFFOLD;
}

static int scaffold(const fv_agg_rule *r) { return r->kind == FV_AGGREGATOR_SCAFFOLD; }

static int fednova(const fv_agg_rule *r) { return r->kind == FV_AGGREGATOR_FEDNOVA; }

fv_agg_rule fv_agg_rule_fedavg(void) { return (fv_agg_rule){.kind = FV_AGGREGATOR_FEDAVG}; }

fv_agg_rule fv_agg_rule_from_config(const fv_config *cfg, size_t n_train) {
    if (cfg->dp)
        return (fv_agg_rule){.kind = FV_AGGREGATOR_FEDAVG, .dp = 1, .n_train = n_train, .clip = cfg->dp_clip,
                             .noise_multiplier = cfg->dp_noise, .seed = (uint64_t)cfg->seed};
    return (fv_agg_rule){.kind = cfg->aggregator, .n_train = n_train, .trim = cfg->trim_fraction,
                         .krum_f = cfg->krum_f, .multikrum_m = cfg->multikrum_m, .clip_norm = cfg->clip_norm,
                         .local_epochs = cfg->local_epochs, .batch_size = cfg->batch_size,
                         .local_momentum = cfg->momentum, .local_prox = cfg->lr * cfg->prox_mu,
                         .server_lr = cfg->server_opt == FV_SOPT_NONE ? fv_config_server_lr(cfg) : 1.0};
}

int64_t fv_agg_local_steps(int epochs, int batch, int64_t samples) {
    FV_ASSERT(epochs >= 1 && batch >= 1 && samples >= 1);
    return (int64_t)epochs * ((samples + batch - 1) / batch);
}

double fv_agg_fednova_norm(const fv_agg_rule *r, double samples) {
    double tau = (double)fv_agg_local_steps(r->local_epochs, r->batch_size, (int64_t)samples);
    double rho = r->local_momentum, alpha = r->local_prox;
    if (rho > 0) return (tau - rho * (1 - pow(rho, tau)) / (1 - rho)) / (1 - rho);
    if (alpha > 0) return (1 - pow(1 - alpha, tau)) / alpha;
    return tau;
}

double fv_agg_dp_noise_std(const fv_agg_rule *rule, int m) {
    FV_ASSERT(m >= 1);
    return rule->dp ? rule->noise_multiplier * rule->clip / m : 0;
}

fv_agg *fv_agg_new(size_t n, const fv_agg_rule *rule) {
    FV_ASSERT(rule->n_train <= n);
    FV_ASSERT(!rule->dp || (rule->kind == FV_AGGREGATOR_FEDAVG && rule->clip > 0 && rule->noise_multiplier >= 0));
    FV_ASSERT(rule->kind != FV_AGGREGATOR_TRIMMED_MEAN || (rule->trim >= 0 && rule->trim <= 0.5));
    FV_ASSERT((rule->kind != FV_AGGREGATOR_KRUM && rule->kind != FV_AGGREGATOR_MULTIKRUM) || rule->krum_f >= 0);
    FV_ASSERT(rule->kind != FV_AGGREGATOR_MULTIKRUM || rule->multikrum_m >= 1);
    FV_ASSERT((rule->kind != FV_AGGREGATOR_CLIP && rule->kind != FV_AGGREGATOR_CENTERED_CLIP) || rule->clip_norm > 0);
    FV_ASSERT(!fednova(rule) || (rule->local_epochs >= 1 && rule->batch_size >= 1 && rule->local_momentum >= 0 &&
                                 rule->local_momentum < 1 && rule->local_prox >= 0 && rule->local_prox < 1 &&
                                 (rule->local_momentum == 0 || rule->local_prox == 0)));
    FV_ASSERT(!scaffold(rule) || rule->server_lr > 0);
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
    FV_ASSERT(m >= 0 && (!a->rule.dp || (global && round >= 1)) && (!robust(&a->rule) || global) &&
              (!fednova(&a->rule) || global) && (!scaffold(&a->rule) || global));
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
    a->ntau = 0;
    a->next = 0;
    a->nput = 0;
    a->round = round;
    a->global = global;
    a->dp_clipped = 0;
    a->dp_norm_sum = 0;
    a->held = 0;
}

void fv_agg_axpy(double *restrict acc, const float *restrict x, double w, size_t n) {
    ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= (1u << 20))
    for (ptrdiff_t i = 0; i < N; i++) acc[i] += w * (double)x[i];
}

/* Accumulate one contribution x of weight w (FedNova: w is its samples n_i; over the trainable
 * coordinates acc += n_i / ||a_i||_1 (x - global) in double, the buffers acc += n_i x). */
static void accumulate(fv_agg *a, const float *x, double w) {
    a->total += w;
    if (!fednova(&a->rule)) {
        fv_agg_axpy(a->acc, x, w, a->n);
        return;
    }
    size_t nt = a->rule.n_train;
    double an = fv_agg_fednova_norm(&a->rule, w), k = w / an;
    const float *g = a->global;
    double *acc = a->acc;
    for (size_t i = 0; i < nt; i++) acc[i] += k * ((double)x[i] - (double)g[i]);
    fv_agg_axpy(acc + nt, x + nt, w, a->n - nt);
    a->ntau += w * an;
}

/* Accumulate every slot from `next` on that is settled (waiting, or done/skipped), in order. */
static void drain(fv_agg *a) {
    while (a->next < a->m && a->state[a->next] != SLOT_EMPTY) {
        int s = a->next;
        if (a->state[s] == SLOT_WAITING) {
            accumulate(a, a->wait[s], a->weight[s]);
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
        accumulate(a, x, w);
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
    size_t np = a->rule.n_train;
    const float *g = a->global;
    float *d = a->delta;
    for (size_t i = 0; i < np; i++) d[i] = (float)((double)x[i] - (double)g[i]);
    memcpy(d + np, x + np, (a->n - np) * sizeof(float));
    double norm = fv_dp_clip(d, np, a->rule.clip);
    a->dp_norm_sum += norm;
    a->dp_clipped += norm > a->rule.clip;
    put_weighted(a, s, d, 1.0);
}

/* A robust rule's upload: a copy kept until fv_agg_end. */
static void put_kept(fv_agg *a, int s, const float *x, double samples) {
    FV_ASSERT(s >= 0 && s < a->m && a->state[s] == SLOT_EMPTY);
    a->nput++;
    a->wait[s] = fv_malloc(a->n * sizeof(float));
    memcpy(a->wait[s], x, a->n * sizeof(float));
    a->weight[s] = samples;
    a->state[s] = SLOT_KEPT;
}

void fv_agg_put(fv_agg *a, int s, const float *x, double samples) {
    FV_ASSERT(samples > 0);
    if (robust(&a->rule)) put_kept(a, s, x, samples);
    else if (a->rule.dp) put_dp(a, s, x);
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

/* FedNova: out = global + tau_eff sum_i p_i (x_i - global) / ||a_i||_1 over the trainable
 * coordinates, p_i = n_i / sum n, tau_eff = sum_i p_i ||a_i||_1; the buffers' weighted mean. */
static void end_fednova(fv_agg *a, float *out) {
    size_t nt = a->rule.n_train;
    const float *g = a->global;
    const double *acc = a->acc, total = a->total, teff = a->ntau / total;
    for (size_t i = 0; i < nt; i++) out[i] = (float)((double)g[i] + teff * (acc[i] / total));
    for (size_t i = nt; i < a->n; i++) out[i] = (float)(acc[i] / total);
}

/* SCAFFOLD: out = global + eta_g (acc / total - global) over the trainable coordinates, the
 * buffers' weighted mean; with eta_g = 1 FedAvg's output itself (bitwise). */
static void end_scaffold(fv_agg *a, float *out) {
    const double eta = a->rule.server_lr;
    if (eta == 1.0) {
        end_fedavg(a, out);
        return;
    }
    size_t nt = a->rule.n_train;
    const float *g = a->global;
    const double *acc = a->acc, total = a->total;
    for (size_t i = 0; i < nt; i++) out[i] = (float)((double)g[i] + eta * (acc[i] / total - (double)g[i]));
    for (size_t i = nt; i < a->n; i++) out[i] = (float)(acc[i] / total);
}

/* DP-FedAvg: out = global + sum of clipped deltas / m + N(0, (z C / m)^2) over the private
 * coordinates; the uniform average of the uploads after them. */
static void end_dp(fv_agg *a, float *out) {
    double *sum = a->acc;
    size_t np = a->rule.n_train;
    double m = (double)a->m;
    for (size_t i = 0; i < np; i++) sum[i] /= m;
    fv_dp_add_noise(sum, np, fv_agg_dp_noise_std(&a->rule, a->m), a->rule.seed ^ FV_AGG_DP_NOISE_DOMAIN,
                    (uint64_t)a->round);
    const float *g = a->global;
    for (size_t i = 0; i < np; i++) out[i] = (float)((double)g[i] + sum[i]);
    for (size_t i = np; i < a->n; i++) out[i] = (float)(sum[i] / a->total);
}

/* ---- robust rules: over the k kept uploads x[0..k), in slot order, with their sample counts w ---- */

static int cmp_float(const void *p, const void *q) {
    float x = *(const float *)p, y = *(const float *)q;
    return (x > y) - (x < y);
}

static int cmp_double(const void *p, const void *q) {
    double x = *(const double *)p, y = *(const double *)q;
    return (x > y) - (x < y);
}

/* Sort v[k] ascending (insertion sort for the usual handful, qsort beyond). */
static void sort_floats(float *v, int k) {
    if (k > 32) {
        qsort(v, (size_t)k, sizeof *v, cmp_float);
        return;
    }
    for (int i = 1; i < k; i++) {
        float t = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > t; j--) v[j] = v[j - 1];
        v[j] = t;
    }
}

/* Coordinates [lo, hi) of out: per coordinate the plain mean (in double, rounded once) of the
 * sorted values with t dropped from each end, 2t < k. */
static void coordinatewise(const float *const *x, int k, int t, size_t lo, size_t hi, float *out) {
    FV_ASSERT(2 * t < k);
    float *col = fv_malloc((size_t)k * sizeof(float));
    for (size_t i = lo; i < hi; i++) {
        for (int j = 0; j < k; j++) col[j] = x[j][i];
        sort_floats(col, k);
        double s = 0;
        for (int j = t; j < k - t; j++) s += (double)col[j];
        out[i] = (float)(s / (k - 2 * t));
    }
    free(col);
}

/* The median as a trimmed mean: one middle value kept (odd k) or the two middle ones (even k). */
static int median_trim(int k) { return (k - 1) / 2; }

/* Krum's scores: score[i] = the sum of the k - f - 2 smallest squared distances from x[i] to the
 * others, over the first nt coordinates (in double: finite floats cannot overflow it). */
static void krum_scores(const float *const *x, int k, int f, size_t nt, double *score) {
    double *d = fv_malloc((size_t)k * (size_t)k * sizeof(double));
    for (int i = 0; i < k; i++) {
        d[(size_t)i * k + i] = 0;
        for (int j = i + 1; j < k; j++) {
            double s = 0;
            for (size_t c = 0; c < nt; c++) {
                double u = (double)x[i][c] - (double)x[j][c];
                s += u * u;
            }
            d[(size_t)i * k + j] = d[(size_t)j * k + i] = s;
        }
    }
    int near = k - f - 2;
    double *row = fv_malloc((size_t)k * sizeof(double));
    for (int i = 0; i < k; i++) {
        int r = 0;
        for (int j = 0; j < k; j++)
            if (j != i) row[r++] = d[(size_t)i * k + j];
        qsort(row, (size_t)r, sizeof *row, cmp_double); /* the near smallest of the k - 1 first */
        double s = 0;
        for (int p = 0; p < near; p++) s += row[p];
        score[i] = s;
    }
    free(row);
    free(d);
}

/* Multi-Krum (krum: sel = 1): out = the plain mean of the sel best-scored updates, ties broken by
 * the lower slot, summed in slot order. */
static void end_krum(const fv_agg *a, const float *const *x, int k, int sel, float *out) {
    double *score = fv_malloc((size_t)k * sizeof(double));
    krum_scores(x, k, a->rule.krum_f, a->rule.n_train, score);
    unsigned char *chosen = fv_calloc((size_t)k, 1);
    for (int c = 0; c < sel; c++) {
        int best = -1;
        for (int i = 0; i < k; i++)
            if (!chosen[i] && (best < 0 || score[i] < score[best])) best = i;
        chosen[best] = 1;
    }
    for (size_t c = 0; c < a->n; c++) {
        double s = 0;
        for (int i = 0; i < k; i++)
            if (chosen[i]) s += (double)x[i][c];
        out[c] = (float)(s / sel);
    }
    free(chosen);
    free(score);
}

/* clip: out = global + sum of w * clipped delta / sum of w over the trainable coordinates; the
 * buffers' coordinate-wise median. */
static void end_clip(fv_agg *a, const float *const *x, const double *w, int k, float *out) {
    size_t nt = a->rule.n_train;
    const float *g = a->global;
    float *d = fv_malloc((nt ? nt : 1) * sizeof(float));
    double *acc = a->acc, total = 0;
    for (int j = 0; j < k; j++) {
        for (size_t i = 0; i < nt; i++) d[i] = (float)((double)x[j][i] - (double)g[i]);
        (void)fv_dp_clip(d, nt, a->rule.clip_norm);
        fv_agg_axpy(acc, d, w[j], nt);
        total += w[j];
    }
    free(d);
    coordinatewise(x, k, median_trim(k), nt, a->n, out);
    for (size_t i = 0; i < nt; i++) out[i] = (float)((double)g[i] + acc[i] / total);
}

/* centered_clip: v = 0, then FV_AGG_CCLIP_ITERS times v += mean_j clip(d_j - v) over the
 * trainable coordinates, d_j = x_j - global in double; out = global + v there, the buffers'
 * coordinate-wise median. */
static void end_centered_clip(fv_agg *a, const float *const *x, int k, float *out) {
    size_t nt = a->rule.n_train;
    const float *g = a->global;
    double *v = a->acc; /* zeroed by fv_agg_begin */
    double *step = fv_malloc((nt ? nt : 1) * sizeof(double));
    for (int it = 0; it < FV_AGG_CCLIP_ITERS; it++) {
        memset(step, 0, nt * sizeof(double));
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (size_t i = 0; i < nt; i++) {
                double u = (double)x[j][i] - (double)g[i] - v[i];
                s += u * u;
            }
            double norm = sqrt(s), f = norm > a->rule.clip_norm ? a->rule.clip_norm / norm : 1.0;
            for (size_t i = 0; i < nt; i++) step[i] += ((double)x[j][i] - (double)g[i] - v[i]) * f;
        }
        for (size_t i = 0; i < nt; i++) v[i] += step[i] / k;
    }
    free(step);
    coordinatewise(x, k, median_trim(k), nt, a->n, out);
    for (size_t i = 0; i < nt; i++) out[i] = (float)((double)g[i] + v[i]);
}

/* Whether k arrived updates are as many as the robust rule needs (see aggregate.h). */
static int robust_enough(const fv_agg_rule *r, int k) {
    switch (r->kind) {
    case FV_AGGREGATOR_TRIMMED_MEAN: {
        int t = fv_config_trim_count(r->trim, k);
        return t >= 1 && 2 * t < k;
    }
    case FV_AGGREGATOR_KRUM: return k >= fv_config_krum_min(r->krum_f);
    case FV_AGGREGATOR_MULTIKRUM: return k >= fv_config_krum_min(r->krum_f) && k >= r->multikrum_m + r->krum_f;
    case FV_AGGREGATOR_MEDIAN:
    case FV_AGGREGATOR_CLIP:
    case FV_AGGREGATOR_CENTERED_CLIP: return k >= 1;
    case FV_AGGREGATOR_FEDAVG:
    case FV_AGGREGATOR_FEDNOVA:
    case FV_AGGREGATOR_SCAFFOLD: break;
    }
    FV_DIE("not a robust rule: %d", (int)r->kind);
}

static void end_robust(fv_agg *a, float *out) {
    const float **x = fv_malloc((size_t)a->nput * sizeof *x);
    double *w = fv_malloc((size_t)a->nput * sizeof *w);
    int k = 0;
    for (int s = 0; s < a->m; s++)
        if (a->wait[s]) x[k] = a->wait[s], w[k++] = a->weight[s];
    FV_ASSERT(k == a->nput);
    if (!robust_enough(&a->rule, k)) {
        a->held = 1;
        if (out != a->global) memcpy(out, a->global, a->n * sizeof(float));
    } else {
        switch (a->rule.kind) {
        case FV_AGGREGATOR_MEDIAN: coordinatewise(x, k, median_trim(k), 0, a->n, out); break;
        case FV_AGGREGATOR_TRIMMED_MEAN:
            coordinatewise(x, k, fv_config_trim_count(a->rule.trim, k), 0, a->n, out);
            break;
        case FV_AGGREGATOR_KRUM: end_krum(a, x, k, 1, out); break;
        case FV_AGGREGATOR_MULTIKRUM: end_krum(a, x, k, a->rule.multikrum_m, out); break;
        case FV_AGGREGATOR_CLIP: end_clip(a, x, w, k, out); break;
        case FV_AGGREGATOR_CENTERED_CLIP: end_centered_clip(a, x, k, out); break;
        case FV_AGGREGATOR_FEDAVG:
        case FV_AGGREGATOR_FEDNOVA:
        case FV_AGGREGATOR_SCAFFOLD: FV_DIE("not a robust rule: %d", (int)a->rule.kind);
        }
    }
    free(x);
    free(w);
}

int fv_agg_end(fv_agg *a, float *out) {
    close_round(a);
    if (a->nput == 0) return 0;
    if (robust(&a->rule)) end_robust(a, out);
    else if (a->rule.dp) end_dp(a, out);
    else if (fednova(&a->rule)) end_fednova(a, out);
    else if (scaffold(&a->rule)) end_scaffold(a, out);
    else end_fedavg(a, out);
    return a->nput;
}

int fv_agg_held(const fv_agg *a) { return a->held; }

void fv_agg_dp_stats(const fv_agg *a, int *clipped, double *norm_sum) {
    *clipped = a->dp_clipped;
    *norm_sum = a->dp_norm_sum;
}

int fv_agg_waiting(const fv_agg *a) {
    int w = 0;
    for (int s = 0; s < a->m; s++) w += a->state[s] == SLOT_WAITING;
    return w;
}
