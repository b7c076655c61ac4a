/* lbfgs.c: see lbfgs.h. */
#include "lbfgs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"

fv_lbfgs_cfg fv_lbfgs_defaults(void) {
    fv_lbfgs_cfg c;
    memset(&c, 0, sizeof c);
    c.m = 10;
    c.max_iter = 500;
    c.max_evals = 0; /* 0: derived from max_iter */
    c.gtol = 1e-12;
    c.f_target = -HUGE_VAL;
    c.ftol_change = 1e-15;
    c.xtol = 1e-14;
    c.c1 = 1e-4;
    c.c2 = 0.9;
    c.ls_max = 25;
    c.lo = 0.0;
    c.hi = 1.0;
    return c;
}

const char *fv_lbfgs_status_name(fv_lbfgs_status s) {
    switch (s) {
    case FV_LBFGS_GTOL: return "gtol";
    case FV_LBFGS_TARGET: return "target";
    case FV_LBFGS_FTOL: return "ftol";
    case FV_LBFGS_XTOL: return "xtol";
    case FV_LBFGS_MAX_ITER: return "max_iter";
    case FV_LBFGS_MAX_EVALS: return "max_evals";
    case FV_LBFGS_LS_FAIL: return "line_search_failed";
    case FV_LBFGS_STOPPED: return "stopped";
    case FV_LBFGS_NONFINITE: return "nonfinite";
    }
    return "?";
}

static double dot(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double clampd(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* 1 if variable i sits at a bound and its gradient pushes it outwards (it cannot move). */
static int binding(const fv_lbfgs_cfg *c, double x, double g) {
    return c->bounded && ((x <= c->lo && g > 0) || (x >= c->hi && g < 0));
}

static double proj_grad_max(const fv_lbfgs_cfg *c, const double *x, const double *g, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        if (!binding(c, x[i], g[i]) && fabs(g[i]) > m) m = fabs(g[i]);
    return m;
}

/* Minimiser of the cubic through (t1, f1, d1) and (t2, f2, d2) (N&W eq. 3.59), clamped to
 * [lo, hi]; the midpoint when the cubic has no real minimiser. */
static double cubic_min(double t1, double f1, double d1, double t2, double f2, double d2, double lo,
                        double hi) {
    if (t1 == t2 || !isfinite(f1) || !isfinite(f2)) return 0.5 * (lo + hi);
    double e1 = d1 + d2 - 3 * (f1 - f2) / (t1 - t2);
    double disc = e1 * e1 - d1 * d2;
    if (disc < 0) return 0.5 * (lo + hi);
    double e2 = sqrt(disc);
    double t;
    if (t1 <= t2)
        t = t2 - (t2 - t1) * ((d2 + e2 - e1) / (d2 - d1 + 2 * e2));
    else
        t = t1 - (t1 - t2) * ((d1 + e2 - e1) / (d1 - d2 + 2 * e2));
    if (!isfinite(t)) return 0.5 * (lo + hi);
    return clampd(t, lo, hi);
}

/* The line: phi(t) = f(P(x0 + t d)). */
typedef struct {
    int n;
    fv_lbfgs_fn f;
    void *ctx;
    const fv_lbfgs_cfg *cfg;
    const double *x0, *d;
    double *xt, *gt; /* trial point and its gradient */
    double *xb, *gb; /* best accepted point (the "lo" end of the bracket) */
    int evals, budget;
} line;

typedef struct {
    double t, f, d;
} lpt;

static lpt phi(line *L, double t) {
    const fv_lbfgs_cfg *c = L->cfg;
    for (int i = 0; i < L->n; i++) {
        double v = L->x0[i] + t * L->d[i];
        L->xt[i] = c->bounded ? clampd(v, c->lo, c->hi) : v;
    }
    lpt p = {t, L->f(L->ctx, L->xt, L->gt, L->n), 0};
    L->evals++;
    double s = 0;
    for (int i = 0; i < L->n; i++) {
        double v = L->x0[i] + t * L->d[i];
        if (!c->bounded || (v > c->lo && v < c->hi)) s += L->gt[i] * L->d[i];
    }
    p.d = s;
    if (!isfinite(p.d)) p.f = NAN;
    return p;
}

static void keep(line *L) {
    memcpy(L->xb, L->xt, sizeof(double) * L->n);
    memcpy(L->gb, L->gt, sizeof(double) * L->n);
}

/* Strong-Wolfe line search. p0 is phi at t = 0 (with p0.d < 0); xb/gb must hold x0 and g0 on entry.
 * Returns 1 when the strong Wolfe conditions hold at the returned point, 0 when only sufficient
 * decrease holds (budget exhausted or bracket collapsed), -1 when no step decreased f.
 * On return xb/gb hold the point and *best its (t, f, d). */
static int line_search(line *L, lpt p0, double t_init, double t_max, lpt *best) {
    const double c1 = L->cfg->c1, c2 = L->cfg->c2;
    lpt prev = p0, lo = p0, hi;
    double t = fmin(t_init, t_max);
    int i = 0, bracketed = 0;
    for (;; i++) {
        if (L->evals >= L->budget) goto out;
        lpt p = phi(L, t);
        if (!isfinite(p.f) || p.f > p0.f + c1 * p.t * p0.d || (i > 0 && p.f >= prev.f)) {
            lo = prev;
            hi = p;
            bracketed = 1;
            break;
        }
        if (fabs(p.d) <= -c2 * p0.d) {
            keep(L);
            *best = p;
            return 1;
        }
        keep(L);
        lo = p;
        if (p.d >= 0) {
            hi = prev;
            bracketed = 1;
            break;
        }
        if (t >= t_max) goto out;
        double tn = cubic_min(prev.t, prev.f, prev.d, p.t, p.f, p.d, t + 0.01 * (t - prev.t), 10 * t);
        prev = p;
        t = fmin(tn, t_max);
    }
    if (bracketed) {
        /* Zoom: lo is the best point with sufficient decrease; the minimiser lies between lo and hi. */
        double dmax = 0;
        for (int k = 0; k < L->n; k++) dmax = fmax(dmax, fabs(L->d[k]));
        while (L->evals < L->budget) {
            double a = fmin(lo.t, hi.t), b = fmax(lo.t, hi.t), w = b - a;
            if (w * dmax < 1e-16) break;
            double tz = cubic_min(lo.t, lo.f, lo.d, hi.t, hi.f, hi.d, a, b);
            tz = clampd(tz, a + 0.1 * w, b - 0.1 * w); /* at least 10% shrink per step */
            lpt p = phi(L, tz);
            if (!isfinite(p.f) || p.f > p0.f + c1 * p.t * p0.d || p.f >= lo.f) {
                hi = p;
            } else {
                if (fabs(p.d) <= -c2 * p0.d) {
                    keep(L);
                    *best = p;
                    return 1;
                }
                if (p.d * (hi.t - lo.t) >= 0) hi = lo;
                lo = p;
                keep(L);
            }
        }
    }
out:
    *best = lo;
    return lo.t > 0 ? 0 : -1;
}

fv_lbfgs_result fv_lbfgs_minimize(double *x, int n, fv_lbfgs_fn f, void *ctx, const fv_lbfgs_cfg *cfg) {
    FV_ASSERT(x && n > 0 && f && cfg && cfg->m >= 1 && cfg->max_iter >= 0);
    FV_ASSERT(!cfg->bounded || cfg->lo < cfg->hi);
    const int m = cfg->m;
    const int max_evals = cfg->max_evals > 0 ? cfg->max_evals : cfg->max_iter + cfg->max_iter / 4 + 20;
    /* One allocation: s[m][n], y[m][n], then g, d, xt, gt, xb, gb. */
    double *buf = fv_malloc(sizeof(double) * ((size_t)2 * m * n + (size_t)6 * n));
    double *S = buf, *Y = S + (size_t)m * n, *g = Y + (size_t)m * n, *d = g + n, *xt = d + n,
           *gt = xt + n, *xb = gt + n, *gb = xb + n;
    double *rho = fv_malloc(sizeof(double) * 2 * m), *alpha = rho + m;
    int hist = 0, head = 0; /* number of stored pairs; next slot */

    fv_lbfgs_result res = {FV_LBFGS_MAX_ITER, 0, 0, 0, 0};
    if (cfg->bounded)
        for (int i = 0; i < n; i++) x[i] = clampd(x[i], cfg->lo, cfg->hi);
    double fx = f(ctx, x, g, n);
    res.evals = 1;
    int finite = isfinite(fx);
    for (int i = 0; i < n && finite; i++) finite = isfinite(g[i]);
    if (!finite) {
        res.status = FV_LBFGS_NONFINITE;
        res.f = fx;
        goto done;
    }
    for (;;) {
        res.f = fx;
        res.pgmax = proj_grad_max(cfg, x, g, n);
        if (res.pgmax <= cfg->gtol) { res.status = FV_LBFGS_GTOL; break; }
        if (fx <= cfg->f_target) { res.status = FV_LBFGS_TARGET; break; }
        if (res.iters >= cfg->max_iter) { res.status = FV_LBFGS_MAX_ITER; break; }
        if (res.evals >= max_evals) { res.status = FV_LBFGS_MAX_EVALS; break; }

        int restarted = 0;
    direction:
        /* Two-loop recursion on the gradient with bound-held variables removed. */
        for (int i = 0; i < n; i++) d[i] = binding(cfg, x[i], g[i]) ? 0 : -g[i];
        for (int k = 0; k < hist; k++) {
            int j = (head - 1 - k + m) % m;
            alpha[j] = rho[j] * dot(S + (size_t)j * n, d, n);
            const double *yj = Y + (size_t)j * n;
            for (int i = 0; i < n; i++) d[i] -= alpha[j] * yj[i];
        }
        if (hist > 0) {
            int j = (head - 1 + m) % m;
            const double *yj = Y + (size_t)j * n;
            double gamma = 1.0 / (rho[j] * dot(yj, yj, n));
            for (int i = 0; i < n; i++) d[i] *= gamma;
        }
        for (int k = hist - 1; k >= 0; k--) {
            int j = (head - 1 - k + m) % m;
            double beta = rho[j] * dot(Y + (size_t)j * n, d, n);
            const double *sj = S + (size_t)j * n;
            for (int i = 0; i < n; i++) d[i] += (alpha[j] - beta) * sj[i];
        }
        if (cfg->bounded)
            for (int i = 0; i < n; i++)
                if (binding(cfg, x[i], g[i]) || (x[i] <= cfg->lo && d[i] < 0) || (x[i] >= cfg->hi && d[i] > 0)) d[i] = 0;
        double gd = dot(g, d, n);
        if (!(gd < 0)) {
            if (hist == 0) { res.status = FV_LBFGS_GTOL; break; } /* no descent direction in the box */
            hist = head = 0;
            goto direction;
        }
        /* Step: the full quasi-Newton step once there is curvature information; a step of
         * length about 1 in the l1 sense otherwise (the first iteration, or after a restart). */
        double t_init = 1.0;
        if (hist == 0) {
            double l1 = 0;
            for (int i = 0; i < n; i++) l1 += fabs(d[i]);
            t_init = fmin(1.0, 1.0 / l1);
        }
        double t_max = HUGE_VAL;
        if (cfg->bounded) {
            t_max = 0;
            for (int i = 0; i < n; i++) {
                if (d[i] > 0) t_max = fmax(t_max, (cfg->hi - x[i]) / d[i]);
                else if (d[i] < 0) t_max = fmax(t_max, (cfg->lo - x[i]) / d[i]);
            }
        }
        line L = {n, f, ctx, cfg, x, d, xt, gt, xb, gb, res.evals, 0};
        L.budget = res.evals + cfg->ls_max;
        if (L.budget > max_evals) L.budget = max_evals;
        memcpy(xb, x, sizeof(double) * n);
        memcpy(gb, g, sizeof(double) * n);
        lpt best;
        int ls = line_search(&L, (lpt){0, fx, gd}, t_init, t_max, &best);
        res.evals = L.evals;
        if (ls < 0) {
            if (!restarted && hist > 0 && res.evals < max_evals) {
                hist = head = 0; /* forget the curvature pairs and retry along the gradient */
                restarted = 1;
                goto direction;
            }
            res.status = res.evals >= max_evals ? FV_LBFGS_MAX_EVALS : FV_LBFGS_LS_FAIL;
            break;
        }
        /* Accept xb: store the pair s = xb - x, y = gb - g when it has positive curvature. */
        double *sj = S + (size_t)head * n, *yj = Y + (size_t)head * n, smax = 0;
        for (int i = 0; i < n; i++) {
            sj[i] = xb[i] - x[i];
            yj[i] = gb[i] - g[i];
            smax = fmax(smax, fabs(sj[i]));
        }
        double sy = dot(sj, yj, n), yy = dot(yj, yj, n);
        if (sy > 1e-10 * yy && sy > 0) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % m;
            if (hist < m) hist++;
        }
        double fold = fx;
        memcpy(x, xb, sizeof(double) * n);
        memcpy(g, gb, sizeof(double) * n);
        fx = best.f;
        res.iters++;
        if (cfg->progress && cfg->progress(cfg->progress_ctx, res.iters, res.evals, fx)) {
            res.status = FV_LBFGS_STOPPED;
            break;
        }
        if (fabs(fold - fx) <= cfg->ftol_change * fmax(1.0, fabs(fx))) { res.status = FV_LBFGS_FTOL; break; }
        if (smax <= cfg->xtol) { res.status = FV_LBFGS_XTOL; break; }
    }
    res.f = fx;
    res.pgmax = proj_grad_max(cfg, x, g, n);
done:
    free(rho);
    free(buf);
    return res;
}

fv_adam_cfg fv_adam_defaults(void) {
    fv_adam_cfg c;
    memset(&c, 0, sizeof c);
    c.iters = 2000;
    c.lr = 0.1;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.lr_decay_at[0] = 3.0 / 8;
    c.lr_decay_at[1] = 5.0 / 8;
    c.lr_decay_at[2] = 7.0 / 8;
    c.lo = 0.0;
    c.hi = 1.0;
    c.f_target = -HUGE_VAL;
    return c;
}

fv_lbfgs_result fv_adam_minimize(double *x, int n, fv_lbfgs_fn f, void *ctx, const fv_adam_cfg *cfg) {
    FV_ASSERT(x && n > 0 && f && cfg && cfg->iters >= 0 && cfg->lr > 0);
    double *buf = fv_calloc((size_t)4 * n, sizeof(double));
    double *g = buf, *mo = g + n, *v = mo + n, *best = v + n;
    fv_lbfgs_result res = {FV_LBFGS_MAX_ITER, 0, 0, HUGE_VAL, 0};
    if (cfg->bounded)
        for (int i = 0; i < n; i++) x[i] = clampd(x[i], cfg->lo, cfg->hi);
    memcpy(best, x, sizeof(double) * n);
    double b1t = 1, b2t = 1;
    for (int it = 0;; it++) {
        double fx = f(ctx, x, g, n);
        res.evals++;
        if (!isfinite(fx)) {
            res.status = FV_LBFGS_NONFINITE;
            break;
        }
        if (fx < res.f) {
            res.f = fx;
            memcpy(best, x, sizeof(double) * n);
        }
        if (fx <= cfg->f_target) { res.status = FV_LBFGS_TARGET; break; }
        if (it >= cfg->iters) break;
        if (cfg->progress && it > 0 && cfg->progress(cfg->progress_ctx, it, res.evals, fx)) {
            res.status = FV_LBFGS_STOPPED;
            break;
        }
        double lr = cfg->lr;
        for (int k = 0; k < 3; k++)
            if (cfg->lr_decay_at[k] > 0 && it >= cfg->lr_decay_at[k] * cfg->iters) lr *= 0.1;
        b1t *= cfg->beta1;
        b2t *= cfg->beta2;
        for (int i = 0; i < n; i++) {
            mo[i] = cfg->beta1 * mo[i] + (1 - cfg->beta1) * g[i];
            v[i] = cfg->beta2 * v[i] + (1 - cfg->beta2) * g[i] * g[i];
            double mh = mo[i] / (1 - b1t), vh = v[i] / (1 - b2t);
            x[i] -= lr * mh / (sqrt(vh) + cfg->eps);
            if (cfg->bounded) x[i] = clampd(x[i], cfg->lo, cfg->hi);
        }
        res.iters = it + 1;
    }
    memcpy(x, best, sizeof(double) * n);
    res.pgmax = 0;
    free(buf);
    return res;
}
