/* optim.c: SGD, Adam and ST-Adam over one contiguous parameter vector (see optim.h).
 *
 * The per-element updates are written as the reference formulas, in float like PyTorch's
 * float32 tensors; the scalar bias corrections are computed in double as PyTorch computes them
 * in Python. Large vectors are split over OpenMP threads: every element is independent, so the
 * result does not depend on the thread count.
 * Not here: learning-rate schedules, gradient clipping, AMSGrad, dampening.
 */
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Below this many parameters a step runs on one thread (thread start-up would dominate). */
#define OPT_PAR_MIN 32768

struct fv_opt {
    fv_opt_cfg cfg;
    size_t n;
    int64_t t;         /* steps taken since creation or the last reset */
    float *state;      /* the one allocation: state_len floats */
    size_t state_len;
    float *m, *v;      /* Adam, ST-Adam: first and second moments, n floats each */
    float *u;          /* SGD momentum buffer, or ST-Adam update momentum; n floats or NULL */
};

fv_opt_cfg fv_opt_defaults(fv_opt_kind kind) {
    fv_opt_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.beta1 = 0.9f;
    c.beta2 = 0.999f;
    c.eps = 1e-8f;
    c.lr = kind == FV_OPT_SGD ? 0.01f : 1e-3f;
    return c;
}

int fv_opt_cfg_check(const fv_opt_cfg *c, fv_err *e) {
    const char *kn = fv_opt_kind_name(c->kind);
    if (c->kind != FV_OPT_SGD && c->kind != FV_OPT_ADAM && c->kind != FV_OPT_STADAM)
        return fv_err_set(e, "optimizer: unknown kind %d", (int)c->kind);
    if (!isfinite(c->lr) || c->lr < 0) return fv_err_set(e, "%s: lr must be >= 0, got %g", kn, c->lr);
    if (!isfinite(c->wd) || c->wd < 0)
        return fv_err_set(e, "%s: weight decay must be >= 0, got %g", kn, c->wd);
    if (c->decay_steps < 0 || c->warmup_steps < 0)
        return fv_err_set(e, "%s: decay and warm-up step counts must be >= 0, got %ld and %ld", kn, c->decay_steps,
                          c->warmup_steps);
    if (c->kind == FV_OPT_SGD) {
        if (!isfinite(c->momentum) || c->momentum < 0)
            return fv_err_set(e, "%s: momentum must be >= 0, got %g", kn, c->momentum);
        if (c->nesterov && c->momentum <= 0)
            return fv_err_set(e, "%s: Nesterov momentum needs momentum > 0", kn);
        return 0;
    }
    if (!isfinite(c->beta1) || c->beta1 < 0 || c->beta1 >= 1)
        return fv_err_set(e, "%s: beta1 must be in [0, 1), got %g", kn, c->beta1);
    if (!isfinite(c->beta2) || c->beta2 < 0 || c->beta2 >= 1)
        return fv_err_set(e, "%s: beta2 must be in [0, 1), got %g", kn, c->beta2);
    if (!isfinite(c->eps) || c->eps < 0) return fv_err_set(e, "%s: eps must be >= 0, got %g", kn, c->eps);
    if (c->kind == FV_OPT_STADAM && (!isfinite(c->mu) || c->mu < 0))
        return fv_err_set(e, "%s: mu must be >= 0, got %g", kn, c->mu);
    return 0;
}

size_t fv_opt_state_len(const fv_opt_cfg *c, size_t n) {
    switch (c->kind) {
    case FV_OPT_SGD: return c->momentum != 0 ? n : 0;
    case FV_OPT_ADAM: return 2 * n;
    case FV_OPT_STADAM: return c->mu != 0 ? 3 * n : 2 * n;
    }
    FV_DIE("optimizer: unknown kind %d", (int)c->kind);
}

int fv_opt_parse_kind(const char *s, fv_opt_kind *out, fv_err *e) {
    if (!strcasecmp(s, "sgd")) *out = FV_OPT_SGD;
    else if (!strcasecmp(s, "adam")) *out = FV_OPT_ADAM;
    else if (!strcasecmp(s, "stadam") || !strcasecmp(s, "st-adam")) *out = FV_OPT_STADAM;
    else return fv_err_set(e, "unknown optimizer '%s' (expected sgd, adam or stadam)", s);
    return 0;
}

const char *fv_opt_kind_name(fv_opt_kind k) {
    switch (k) {
    case FV_OPT_SGD: return "sgd";
    case FV_OPT_ADAM: return "adam";
    case FV_OPT_STADAM: return "stadam";
    }
    return "unknown";
}

fv_opt *fv_opt_new(const fv_opt_cfg *cfg, size_t n) {
    fv_err e;
    if (fv_opt_cfg_check(cfg, &e) != 0) FV_DIE("fv_opt_new: invalid configuration: %s", e.msg);
    fv_opt *o = fv_calloc(1, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->state_len = fv_opt_state_len(cfg, n);
    if (o->state_len) o->state = fv_calloc(o->state_len, sizeof(float));
    if (cfg->kind == FV_OPT_SGD) {
        o->u = o->state; /* NULL without momentum */
    } else {
        o->m = o->state;
        o->v = o->state + n;
        if (o->state_len == 3 * n) o->u = o->state + 2 * n;
    }
    return o;
}

void fv_opt_destroy(fv_opt **o) {
    if (!o || !*o) return;
    free((*o)->state);
    free(*o);
    *o = NULL;
}

void fv_opt_reset(fv_opt *o) {
    if (o->state_len) memset(o->state, 0, o->state_len * sizeof(float));
    o->t = 0;
}

float *fv_opt_state(fv_opt *o, size_t *len) {
    *len = o->state_len;
    return o->state;
}

int64_t *fv_opt_step_count(fv_opt *o) { return &o->t; }

/* PyTorch SGD: d = g + wd p; with momentum b = mu b + d (the first step's b = d, which is what a
 * zeroed buffer gives with dampening 0), d = nesterov ? d + mu b : b; p -= lr d. */
static void sgd_step(float *p, float *b, const float *g, float lr, float wd, float mu, int nesterov,
                     size_t n) {
    ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= OPT_PAR_MIN)
    for (ptrdiff_t i = 0; i < N; i++) {
        float d = g[i];
        if (wd != 0) d += wd * p[i];
        if (b) {
            b[i] = mu * b[i] + d;
            d = nesterov ? d + mu * b[i] : b[i];
        }
        p[i] -= lr * d;
    }
}

/* PyTorch Adam (amsgrad off): d = g + wd p; m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
 * p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), bc_k = 1 - beta_k^t. */
static void adam_step(float *p, float *m, float *v, const float *g, float wd, float b1, float b2,
                      float eps, float step_size, float bc2_sqrt, size_t n) {
    ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= OPT_PAR_MIN)
    for (ptrdiff_t i = 0; i < N; i++) {
        float d = g[i];
        if (wd != 0) d += wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * d;
        v[i] = b2 * v[i] + (1.0f - b2) * d * d;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

/* ST-Adam (visualmixer.md section 5): as Adam without bias correction, then an update momentum
 * u = mu u + m / (sqrt(v) + eps); p -= lr u. u may be NULL when mu == 0. */
static void stadam_step(float *p, float *m, float *v, float *u, const float *g, float lr, float wd,
                        float b1, float b2, float eps, float mu, size_t n) {
    ptrdiff_t N = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (n >= OPT_PAR_MIN)
    for (ptrdiff_t i = 0; i < N; i++) {
        float d = g[i];
        if (wd != 0) d += wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * d;
        v[i] = b2 * v[i] + (1.0f - b2) * d * d;
        float step = m[i] / (sqrtf(v[i]) + eps);
        if (u) {
            u[i] = mu * u[i] + step;
            step = u[i];
        }
        p[i] -= lr * step;
    }
}

float fv_opt_current_lr(const fv_opt *o) {
    const fv_opt_cfg *c = &o->cfg;
    double lr = c->lr;
    if (c->decay_steps > 0) {
        const double f = (double)(o->t < c->decay_steps ? o->t : c->decay_steps) / (double)c->decay_steps;
        lr = 0.5 * c->lr * (1.0 + cos(3.14159265358979323846 * f));
    }
    if (c->warmup_steps > 0 && o->t < c->warmup_steps) lr = lr * (double)(o->t + 1) / (double)c->warmup_steps;
    return (float)lr;
}

void fv_opt_step(fv_opt *o, float *params, const float *grads) {
    fv_opt_cfg cfg = o->cfg;
    const fv_opt_cfg *c = &cfg;
    cfg.lr = fv_opt_current_lr(o);
    o->t++;
    switch (c->kind) {
    case FV_OPT_SGD:
        sgd_step(params, o->u, grads, c->lr, c->wd, c->momentum, c->nesterov, o->n);
        break;
    case FV_OPT_ADAM: {
        double bc1 = 1.0 - pow((double)c->beta1, (double)o->t);
        double bc2 = 1.0 - pow((double)c->beta2, (double)o->t);
        adam_step(params, o->m, o->v, grads, c->wd, c->beta1, c->beta2, c->eps,
                  (float)(c->lr / bc1), (float)sqrt(bc2), o->n);
        break;
    }
    case FV_OPT_STADAM:
        stadam_step(params, o->m, o->v, o->u, grads, c->lr, c->wd, c->beta1, c->beta2, c->eps,
                    c->mu, o->n);
        break;
    }
}
