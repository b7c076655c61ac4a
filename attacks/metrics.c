/* metrics.c: leakage metrics (see metrics.h and docs/attacks.md, "Metrics").
 * SSIM uses the separable Gaussian window (rows, then columns) in double; the statistics of
 * a and b go through identical operations, so identical images give exactly 1.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- MSE and PSNR ---- */

double fv_mse(const float *a, const float *b, size_t n) {
    FV_ASSERT(n > 0);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s / (double)n;
}

double fv_psnr_from_mse(double mse) {
    if (mse == 0) return INFINITY;
    return 10.0 * log10(1.0 / mse);
}

double fv_psnr(const float *a, const float *b, size_t n) { return fv_psnr_from_mse(fv_mse(a, b, n)); }

double fv_mse_mean(const float *a, const float *b, size_t nimg, size_t img_size) {
    FV_ASSERT(nimg > 0);
    double s = 0;
    for (size_t i = 0; i < nimg; i++) s += fv_mse(a + i * img_size, b + i * img_size, img_size);
    return s / (double)nimg;
}

double fv_psnr_mean(const float *a, const float *b, size_t nimg, size_t img_size) {
    FV_ASSERT(nimg > 0);
    double s = 0;
    for (size_t i = 0; i < nimg; i++) s += fv_psnr(a + i * img_size, b + i * img_size, img_size);
    return s / (double)nimg; /* +inf stays +inf */
}

/* ---- SSIM ---- */

static void gauss_window(double g[FV_SSIM_WIN]) {
    double s = 0;
    const int r = FV_SSIM_WIN / 2;
    for (int k = 0; k < FV_SSIM_WIN; k++) {
        double x = k - r;
        g[k] = exp(-x * x / (2 * FV_SSIM_SIGMA * FV_SSIM_SIGMA));
        s += g[k];
    }
    for (int k = 0; k < FV_SSIM_WIN; k++) g[k] /= s;
}

/* Mean SSIM over the valid positions of one h x w channel. hbuf: 5 * h * (w - 10) doubles. */
static double ssim_channel(const float *x, const float *y, int h, int w, const double *g,
                           double *hbuf) {
    const int ow = w - FV_SSIM_WIN + 1, oh = h - FV_SSIM_WIN + 1;
    const size_t plane = (size_t)h * ow;
    double *hx = hbuf, *hy = hbuf + plane, *hxx = hbuf + 2 * plane, *hyy = hbuf + 3 * plane,
           *hxy = hbuf + 4 * plane;
    /* rows: hbuf[r][j] = sum_k g[k] f(r, j + k) for f = x, y, x^2, y^2, xy */
    for (int r = 0; r < h; r++) {
        const float *xr = x + (size_t)r * w, *yr = y + (size_t)r * w;
        for (int j = 0; j < ow; j++) {
            double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
            for (int k = 0; k < FV_SSIM_WIN; k++) {
                double a = xr[j + k], b = yr[j + k];
                sx += g[k] * a;
                sy += g[k] * b;
                sxx += g[k] * (a * a);
                syy += g[k] * (b * b);
                sxy += g[k] * (a * b);
            }
            size_t o = (size_t)r * ow + j;
            hx[o] = sx;
            hy[o] = sy;
            hxx[o] = sxx;
            hyy[o] = syy;
            hxy[o] = sxy;
        }
    }
    /* columns, then the SSIM at each valid position */
    double total = 0;
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            double mx = 0, my = 0, mxx = 0, myy = 0, mxy = 0;
            for (int k = 0; k < FV_SSIM_WIN; k++) {
                size_t o = (size_t)(i + k) * ow + j;
                mx += g[k] * hx[o];
                my += g[k] * hy[o];
                mxx += g[k] * hxx[o];
                myy += g[k] * hyy[o];
                mxy += g[k] * hxy[o];
            }
            double vx = mxx - mx * mx, vy = myy - my * my, cxy = mxy - mx * my;
            double num = (2 * mx * my + FV_SSIM_C1) * (2 * cxy + FV_SSIM_C2);
            double den = (mx * mx + my * my + FV_SSIM_C1) * (vx + vy + FV_SSIM_C2);
            total += num / den;
        }
    return total / ((double)oh * ow);
}

int fv_ssim(double *out, const float *a, const float *b, int c, int h, int w, fv_err *e) {
    if (c < 1 || h < 1 || w < 1) return fv_err_set(e, "SSIM: bad image shape %d x %d x %d", c, h, w);
    if (h < FV_SSIM_WIN || w < FV_SSIM_WIN)
        return fv_err_set(e, "SSIM needs images of at least %d x %d pixels (the Gaussian window), "
                             "got %d x %d", FV_SSIM_WIN, FV_SSIM_WIN, h, w);
    double g[FV_SSIM_WIN];
    gauss_window(g);
    double *hbuf = fv_malloc(5 * (size_t)h * (size_t)(w - FV_SSIM_WIN + 1) * sizeof(double));
    double s = 0;
    const size_t plane = (size_t)h * w;
    for (int ch = 0; ch < c; ch++) s += ssim_channel(a + ch * plane, b + ch * plane, h, w, g, hbuf);
    free(hbuf);
    *out = s / c;
    return 0;
}

int fv_ssim_mean(double *out, const float *a, const float *b, size_t nimg, int c, int h, int w,
                 fv_err *e) {
    FV_ASSERT(nimg > 0);
    const size_t sz = (size_t)c * h * w;
    double s = 0;
    for (size_t i = 0; i < nimg; i++) {
        double v;
        if (fv_ssim(&v, a + i * sz, b + i * sz, c, h, w, e) != 0) return -1;
        s += v;
    }
    *out = s / (double)nimg;
    return 0;
}

int fv_ssim_best(double *best, size_t *best_idx, const float *img, const float *refs, size_t nref,
                 int c, int h, int w, fv_err *e) {
    FV_ASSERT(nref > 0);
    const size_t sz = (size_t)c * h * w;
    double bv = -INFINITY;
    size_t bi = 0;
    for (size_t i = 0; i < nref; i++) {
        double v;
        if (fv_ssim(&v, img, refs + i * sz, c, h, w, e) != 0) return -1;
        if (v > bv) {
            bv = v;
            bi = i;
        }
    }
    *best = bv;
    if (best_idx) *best_idx = bi;
    return 0;
}

/* ---- ROC ---- */

typedef struct {
    double s;
    int member;
} scored;

static int scored_desc(const void *pa, const void *pb) {
    double a = ((const scored *)pa)->s, b = ((const scored *)pb)->s;
    return a > b ? -1 : a < b ? 1 : 0;
}

int fv_roc_compute(fv_roc *roc, const double *member, size_t nm, const double *nonmember, size_t nn,
                   fv_err *e) {
    memset(roc, 0, sizeof *roc);
    if (nm == 0 || nn == 0)
        return fv_err_set(e, "ROC needs at least one member and one non-member (got %zu and %zu)",
                          nm, nn);
    for (size_t i = 0; i < nm; i++)
        if (isnan(member[i])) return fv_err_set(e, "ROC: member score %zu is NaN", i);
    for (size_t i = 0; i < nn; i++)
        if (isnan(nonmember[i])) return fv_err_set(e, "ROC: non-member score %zu is NaN", i);
    const size_t n = nm + nn;
    scored *all = fv_malloc(n * sizeof *all);
    for (size_t i = 0; i < nm; i++) all[i] = (scored){member[i], 1};
    for (size_t i = 0; i < nn; i++) all[nm + i] = (scored){nonmember[i], 0};
    qsort(all, n, sizeof *all, scored_desc);

    roc->points = fv_malloc((n + 1) * sizeof *roc->points);
    roc->points[0] = (fv_roc_point){0, 0, INFINITY};
    size_t np = 1, tp = 0, fp = 0;
    double area2 = 0; /* twice the number of (member, non-member) pairs ranked right, ties 1/2 */
    for (size_t i = 0; i < n;) {
        size_t dp = 0, dn = 0, j = i;
        for (; j < n && all[j].s == all[i].s; j++) {
            if (all[j].member) dp++;
            else dn++;
        }
        area2 += (double)dn * (double)(2 * tp + dp);
        tp += dp;
        fp += dn;
        roc->points[np++] = (fv_roc_point){(double)fp / (double)nn, (double)tp / (double)nm, all[i].s};
        i = j;
    }
    free(all);
    roc->n_points = np;
    roc->auc = area2 / (2.0 * (double)nm * (double)nn);
    roc->tpr_at_fpr_1pct = fv_roc_tpr_at_fpr(roc, 0.01);
    roc->tpr_at_fpr_01pct = fv_roc_tpr_at_fpr(roc, 0.001);
    roc->balanced_acc = -1;
    for (size_t k = 0; k < np; k++) {
        double acc = 1.0 - (roc->points[k].fpr + (1.0 - roc->points[k].tpr)) / 2.0;
        if (acc > roc->balanced_acc) {
            roc->balanced_acc = acc;
            roc->balanced_acc_threshold = roc->points[k].threshold;
        }
    }
    return 0;
}

double fv_roc_tpr_at_fpr(const fv_roc *roc, double max_fpr) {
    double tpr = 0;
    for (size_t k = 0; k < roc->n_points && roc->points[k].fpr <= max_fpr + 1e-12; k++)
        tpr = roc->points[k].tpr;
    return tpr;
}

void fv_roc_free(fv_roc *roc) {
    if (!roc) return;
    free(roc->points);
    memset(roc, 0, sizeof *roc);
}

/* ---- reassembly ---- */

fv_reassembly fv_reassembly_compute(const float *original, const float *shuffled,
                                    const float *output, size_t n, float tol) {
    FV_ASSERT(n > 0 && tol >= 0);
    size_t ok = 0, base = 0, moved = 0, back = 0;
    for (size_t i = 0; i < n; i++) {
        int o = fabsf(output[i] - original[i]) <= tol;
        int s = fabsf(shuffled[i] - original[i]) <= tol;
        ok += (size_t)o;
        base += (size_t)s;
        if (!s) {
            moved++;
            back += (size_t)o;
        }
    }
    fv_reassembly r;
    r.correct = (double)ok / (double)n;
    r.baseline = (double)base / (double)n;
    r.restored = moved ? (double)back / (double)moved : 1.0;
    r.displaced = moved;
    return r;
}

double fv_perm_correct_fraction(const size_t *perm, size_t n) {
    FV_ASSERT(n > 0);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += perm[i] == i;
    return (double)k / (double)n;
}
