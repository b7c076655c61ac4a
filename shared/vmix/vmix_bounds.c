/* vmix_bounds.c: see vmix_bounds.h. */
#include "vmix/vmix_bounds.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define MAX_ROWS 16

double fv_norm_quantile(double p) {
    FV_ASSERT(p > 0.0 && p < 1.0);
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 200 && hi - lo > 1e-13; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

double fv_chi2_quantile(double k, double p) {
    FV_ASSERT(k >= 0.0 && p > 0.0 && p < 1.0);
    if (k == 0.0) return 0.0;
    double z = fv_norm_quantile(p);
    if (k >= FV_CHI2_NORMAL_K) {
        double q = k + z * sqrt(2.0 * k);
        return q > 0.0 ? q : 0.0;
    }
    double a = 2.0 / (9.0 * k), b = 1.0 - a + z * sqrt(a);
    return b > 0.0 ? k * b * b * b : 0.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int smallest_pow2_ge(int v) {
    int p = 1;
    while (p < v) p *= 2;
    return p;
}

long fv_vmix_pairs_in(int h, int w, int block, int ws, int unit, long *k_all) {
    FV_ASSERT(h >= 1 && w >= 1 && block >= 1 && ws >= 1 && unit >= 1);
    long kin = 0, kall = 0;
    for (int by = 0; by < h; by += block)
        for (int bx = 0; bx < w; bx += block) {
            int bw = w - bx < block ? w - bx : block, bh = h - by < block ? h - by : block;
            kall += 2L * bw * bh - bw - bh;
            /* a pair (t, t+1) along one axis is randomised iff t+1 does not start a new window
             * and does start a new unit (same window, different units) */
            long hx = 0, vy = 0;
            for (int x = bx; x + 1 < bx + bw; x++) hx += (x + 1) % ws != 0 && (x + 1) % unit == 0;
            for (int y = by; y + 1 < by + bh; y++) vy += (y + 1) % ws != 0 && (y + 1) % unit == 0;
            kin += hx * bh + vy * bw;
        }
    if (k_all) *k_all = kall;
    return kin;
}

int fv_vmix_ws_min(int *ws_min, fv_wsmin_row *rows, int *nrows, int h, int w, int block, int unit,
                   double lambda, double target, double alpha, fv_err *e) {
    *nrows = 0;
    *ws_min = 0;
    if (h < 1 || w < 1) return fv_err_set(e, "empty image shape %d x %d", w, h);
    if (block < 1) return fv_err_set(e, "VFE block size %d must be >= 1", block);
    if (unit < 1 || (unit & (unit - 1))) return fv_err_set(e, "shuffle unit %d is not a power of two", unit);
    if (!(alpha > 0.0 && alpha < 1.0)) return fv_err_set(e, "alpha = %g must be in (0, 1)", alpha);
    if (!(target > 0.0)) return fv_err_set(e, "target VFE = %g must be > 0", target);
    if (!(lambda > 0.0)) return fv_err_set(e, "lambda = %g must be > 0", lambda);
    int full = smallest_pow2_ge(h > w ? h : w);
    for (int ws = unit > 2 ? unit : 2; ws <= full && *nrows < MAX_ROWS; ws *= 2) {
        fv_wsmin_row *r = &rows[(*nrows)++];
        r->ws = ws;
        r->k_in = fv_vmix_pairs_in(h, w, block, ws, unit, &r->k_all);
        r->quantile = fv_chi2_quantile((double)r->k_in, alpha);
        r->model_vfe = lambda * r->quantile / (double)r->k_all;
        if (!*ws_min && r->model_vfe >= target) *ws_min = ws;
    }
    if (!*ws_min) {
        double best = 0.0;
        int bws = 0;
        for (int i = 0; i < *nrows; i++)
            if (rows[i].model_vfe > best) {
                best = rows[i].model_vfe;
                bws = rows[i].ws;
            }
        return fv_err_set(e, "target VFE %.4f is unreachable for a %d x %d image (block %d, unit %d, "
                          "alpha %g): the largest reachable is %.4f (WS = %d)",
                          target, w, h, block, unit, alpha, best, bws);
    }
    return 0;
}

void fv_dp_cfg_default(fv_dp_cfg *c) {
    memset(c, 0, sizeof *c);
    c->kernel = FV_VMIX_KERNEL_DEF;
    c->pool = FV_VMIX_POOL_DEF;
    c->p = FV_VMIX_P_DEF;
    c->trials = FV_VMIX_TRIALS_DEF;
    c->seed = FV_VMIX_SEED_DEF;
}

/* conv (k x k, size-keeping zero padding) then max-pool (pk, stride pk, partial pools kept) of a
 * hh x ww window x; out has ceil(hh/pk) * ceil(ww/pk) values; tmp holds hh * ww. */
static void conv_pool(float *out, float *tmp, const float *x, const float *ker, int hh, int ww, int k,
                      int pk) {
    int o = (k - 1) / 2;
    for (int y = 0; y < hh; y++)
        for (int xx = 0; xx < ww; xx++) {
            float s = 0.0f;
            for (int i = 0; i < k; i++) {
                int yy = y + i - o;
                if (yy < 0 || yy >= hh) continue;
                for (int j = 0; j < k; j++) {
                    int xj = xx + j - o;
                    if (xj < 0 || xj >= ww) continue;
                    s += ker[i * k + j] * x[yy * ww + xj];
                }
            }
            tmp[y * ww + xx] = s;
        }
    int ph = (hh + pk - 1) / pk, pw = (ww + pk - 1) / pk;
    for (int py = 0; py < ph; py++)
        for (int px = 0; px < pw; px++) {
            float m = -INFINITY;
            for (int y = py * pk; y < py * pk + pk && y < hh; y++)
                for (int xx = px * pk; xx < px * pk + pk && xx < ww; xx++)
                    if (tmp[y * ww + xx] > m) m = tmp[y * ww + xx];
            out[py * pw + px] = m;
        }
}

typedef struct {
    double mean[4], std[4];
} chan_stats;

static chan_stats image_stats(const fv_dataset *d) {
    chan_stats cs;
    memset(&cs, 0, sizeof cs);
    long plane = (long)d->h * d->w;
    for (int ch = 0; ch < d->c && ch < 4; ch++) {
        double s = 0.0, q = 0.0;
        for (long i = 0; i < d->n; i++) {
            const uint8_t *p = d->x + (i * d->c + ch) * plane;
            uint64_t si = 0, qi = 0;
            for (long k = 0; k < plane; k++) {
                si += p[k];
                qi += (uint64_t)p[k] * p[k];
            }
            s += (double)si;
            q += (double)qi;
        }
        double n = (double)d->n * plane, mu = s / n, var = q / n - mu * mu;
        cs.mean[ch] = mu / 255.0;
        cs.std[ch] = var > 0.0 ? sqrt(var) / 255.0 : 1.0;
    }
    return cs;
}

static double dp_with(int ws, const fv_dp_cfg *cfg, const chan_stats *cs) {
    FV_ASSERT(ws >= 1 && cfg->kernel >= 1 && cfg->pool >= 1 && cfg->trials >= 1);
    FV_ASSERT(cfg->p > 0.0 && cfg->p < 1.0);
    const fv_dataset *d = cfg->images;
    int hh = ws, ww = ws;
    if (d) {
        if (hh > d->h) hh = d->h;
        if (ww > d->w) ww = d->w;
    }
    int n = hh * ww, k = cfg->kernel, pk = cfg->pool;
    int nout = ((hh + pk - 1) / pk) * ((ww + pk - 1) / pk);
    double *dev = fv_malloc((size_t)cfg->trials * sizeof(double));
    int lg = 0;
    while ((1 << lg) < ws) lg++;
    int nthr = cfg->threads > 0 ? cfg->threads : omp_get_max_threads();
#pragma omp parallel num_threads(nthr)
    {
        float *x = fv_malloc((size_t)n * sizeof(float)), *xp = fv_malloc((size_t)n * sizeof(float));
        float *tmp = fv_malloc((size_t)n * sizeof(float)), *o1 = fv_malloc((size_t)nout * sizeof(float));
        float *o2 = fv_malloc((size_t)nout * sizeof(float)), *ker = fv_malloc((size_t)k * k * sizeof(float));
        int *perm = fv_malloc((size_t)n * sizeof(int));
#pragma omp for schedule(static)
        for (int t = 0; t < cfg->trials; t++) {
            fv_rng r;
            fv_rng_seed2(&r, cfg->seed, (uint64_t)lg << 40 | (uint64_t)t);
            for (int i = 0; i < k * k; i++) ker[i] = (float)fv_rng_normal(&r);
            int ok = 1;
            if (!d) {
                for (int i = 0; i < n; i++) x[i] = (float)fv_rng_normal(&r);
            } else {
                ok = 0;
                for (int tries = 0; tries < 64 && !ok; tries++) {
                    long img = (long)fv_rng_below(&r, (uint64_t)d->n);
                    int ch = (int)fv_rng_below(&r, (uint64_t)d->c);
                    int oy = (int)fv_rng_below(&r, (uint64_t)(d->h - hh + 1));
                    int ox = (int)fv_rng_below(&r, (uint64_t)(d->w - ww + 1));
                    const uint8_t *pl = d->x + ((size_t)img * d->c + ch) * d->h * d->w;
                    uint8_t first = pl[(long)oy * d->w + ox];
                    for (int y = 0; y < hh; y++)
                        for (int xx = 0; xx < ww; xx++) {
                            uint8_t v = pl[(long)(oy + y) * d->w + ox + xx];
                            ok |= v != first;
                            x[y * ww + xx] = (float)((v / 255.0 - cs->mean[ch]) / cs->std[ch]);
                        }
                }
            }
            if (!ok) { /* every draw was flat: a permutation changes nothing */
                dev[t] = 0.0;
                continue;
            }
            for (int i = 0; i < n; i++) perm[i] = i;
            fv_rng_shuffle_int(&r, perm, n);
            for (int i = 0; i < n; i++) xp[i] = x[perm[i]];
            conv_pool(o1, tmp, x, ker, hh, ww, k, pk);
            conv_pool(o2, tmp, xp, ker, hh, ww, k, pk);
            double m = 0.0;
            for (int i = 0; i < nout; i++) {
                double dv = fabs((double)o1[i] - (double)o2[i]);
                if (dv > m) m = dv;
            }
            dev[t] = m;
        }
        free(x);
        free(xp);
        free(tmp);
        free(o1);
        free(o2);
        free(ker);
        free(perm);
    }
    qsort(dev, (size_t)cfg->trials, sizeof(double), cmp_double);
    /* p-quantile: the ceil(p T)-th smallest deviation */
    long idx = (long)ceil(cfg->p * cfg->trials) - 1;
    if (idx < 0) idx = 0;
    double q = dev[idx];
    free(dev);
    return q;
}

double fv_vmix_dp(int ws, const fv_dp_cfg *cfg) {
    chan_stats cs;
    memset(&cs, 0, sizeof cs);
    if (cfg->images) cs = image_stats(cfg->images);
    return dp_with(ws, cfg, &cs);
}

/* The shared body of fv_vmix_ws_max (rel <= 0: d* = d_max) and fv_vmix_ws_max_rel (rel > 0:
 * every d_p up to the whole image first, then d* = rel * d_p(whole image)). */
static int ws_max_scan(int *ws_max, double *d_used, double *dp, int *ndp, int h, int w, double d_max, double rel,
                       const fv_dp_cfg *cfg, fv_err *e) {
    *ws_max = 0;
    *ndp = 0;
    if (h < 1 || w < 1) return fv_err_set(e, "empty image shape %d x %d", w, h);
    if (rel <= 0.0 && !(d_max >= 0.0)) return fv_err_set(e, "d* = %g must be >= 0", d_max);
    if (cfg->kernel < 1 || cfg->pool < 1) return fv_err_set(e, "kernel %d and pool %d must be >= 1", cfg->kernel, cfg->pool);
    if (!(cfg->p > 0.0 && cfg->p < 1.0)) return fv_err_set(e, "quantile p = %g must be in (0, 1)", cfg->p);
    if (cfg->trials < 1) return fv_err_set(e, "Monte Carlo trials = %d must be >= 1", cfg->trials);
    const fv_dataset *d = cfg->images;
    if (d && (d->n < 1 || d->c < 1 || d->c > 4 || d->h < 1 || d->w < 1))
        return fv_err_set(e, "no usable images to draw windows from (%d images of %d x %d x %d)", d->n, d->c, d->h, d->w);
    chan_stats cs;
    memset(&cs, 0, sizeof cs);
    if (d) cs = image_stats(d);
    int full = smallest_pow2_ge(h > w ? h : w);
    if (rel > 0.0) {
        for (int ws = 1; ws <= full && *ndp < MAX_ROWS; ws *= 2) dp[(*ndp)++] = ws == 1 ? 0.0 : dp_with(ws, cfg, &cs);
        d_max = rel * dp[*ndp - 1];
        for (int k = 0; k < *ndp && dp[k] <= d_max; k++) *ws_max = 1 << k;
    } else {
        for (int ws = 1; ws <= full && *ndp < MAX_ROWS; ws *= 2) {
            double v = ws == 1 ? 0.0 : dp_with(ws, cfg, &cs);
            dp[(*ndp)++] = v;
            if (v > d_max) break;
            *ws_max = ws;
        }
    }
    if (d_used) *d_used = d_max;
    return 0;
}

int fv_vmix_ws_max(int *ws_max, double *dp, int *ndp, int h, int w, double d_max,
                   const fv_dp_cfg *cfg, fv_err *e) {
    return ws_max_scan(ws_max, NULL, dp, ndp, h, w, d_max, 0.0, cfg, e);
}

int fv_vmix_ws_max_rel(int *ws_max, double *d_max, double *dp, int *ndp, int h, int w, double rel,
                       const fv_dp_cfg *cfg, fv_err *e) {
    *d_max = 0.0;
    if (!(rel > 0.0 && rel <= 1.0)) {
        *ws_max = 0;
        *ndp = 0;
        return fv_err_set(e, "relative d* = %g must be in (0, 1]", rel);
    }
    return ws_max_scan(ws_max, d_max, dp, ndp, h, w, 0.0, rel, cfg, e);
}

const char *fv_vmix_conflict_name(fv_vmix_conflict c) {
    switch (c) {
    case FV_VMIX_CONFLICT_ERROR: return "error";
    case FV_VMIX_CONFLICT_PRIVACY: return "privacy";
    case FV_VMIX_CONFLICT_UTILITY: return "utility";
    }
    FV_DIE("bad fv_vmix_conflict %d", (int)c);
}

void fv_vmix_bounds_cfg_default(fv_vmix_bounds_cfg *c) {
    memset(c, 0, sizeof *c);
    c->target = FV_VMIX_TARGET_DEF;
    c->alpha = FV_VMIX_ALPHA_DEF;
    c->lambda = FV_VMIX_LAMBDA_DEF;
    c->block = FV_VMIX_BLOCK_DEF;
    c->unit = FV_VMIX_UNIT_DEF;
    c->d_max = FV_VMIX_DMAX_REL;
    c->d_rel = FV_VMIX_DREL_DEF;
    fv_dp_cfg_default(&c->dp);
    c->conflict = FV_VMIX_CONFLICT_ERROR;
    c->words = (fv_vmix_bounds_words){"the target VFE", "d*", "let privacy or utility win", "the shuffle unit"};
}

int fv_vmix_bounds_compute(fv_vmix_bounds *b, const fv_vmix_bounds_cfg *c, int h, int w, fv_err *e) {
    memset(b, 0, sizeof *b);
    b->resolved = FV_VMIX_CONFLICT_ERROR;
    if (c->ws_min > 0) {
        b->ws_min = c->ws_min;
    } else {
        if (fv_vmix_ws_min(&b->ws_min_model, b->rows, &b->nrows, h, w, c->block, c->unit, c->lambda, c->target,
                           c->alpha, e) != 0)
            return -1;
        b->ws_min = b->ws_min_model;
    }
    if (c->ws_max > 0) {
        b->ws_max = c->ws_max;
    } else {
        if (c->d_max >= 0.0) {
            if (fv_vmix_ws_max(&b->ws_max_model, b->dp, &b->ndp, h, w, c->d_max, &c->dp, e) != 0) return -1;
            b->d_max = c->d_max;
        } else if (fv_vmix_ws_max_rel(&b->ws_max_model, &b->d_max, b->dp, &b->ndp, h, w, c->d_rel, &c->dp, e) != 0) {
            return -1;
        }
        b->ws_max = b->ws_max_model;
    }
    if (b->ws_min > b->ws_max) {
        switch (c->conflict) {
        case FV_VMIX_CONFLICT_PRIVACY:
            b->ws_max = b->ws_min;
            b->resolved = FV_VMIX_CONFLICT_PRIVACY;
            break;
        case FV_VMIX_CONFLICT_UTILITY:
            b->ws_min = b->ws_max;
            b->resolved = FV_VMIX_CONFLICT_UTILITY;
            break;
        case FV_VMIX_CONFLICT_ERROR:
            return fv_err_set(e,
                              "WS_min = %d (privacy: V* = %g) > WS_max = %d (utility: d* = %g): the targets "
                              "conflict; lower %s, raise %s, or %s",
                              b->ws_min, c->target, b->ws_max, b->d_max, c->words.target, c->words.d_star,
                              c->words.prefer);
        }
    }
    if (b->ws_min < c->unit)
        return fv_err_set(e,
                          "WS_min = %d%s is smaller than the shuffle unit %d: a window must hold whole units; "
                          "set %s to at most %d%s",
                          b->ws_min, b->resolved == FV_VMIX_CONFLICT_UTILITY ? " (lowered to WS_max: utility won)" : "",
                          c->unit, c->words.unit, b->ws_min,
                          b->resolved == FV_VMIX_CONFLICT_UTILITY ? ", or let privacy win the conflict" : "");
    return 0;
}
