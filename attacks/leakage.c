/* leakage.c: see leakage.h. */
#include "leakage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "oracle.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n < 1) return NAN;
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int fv_leakage_eval(fv_leakage *out, const float *samples, int n, fv_shape s, fv_net *oracle, fv_norm onorm,
                    int target, const float *victim, int nv, const float *victim_mixed, const float *others,
                    int no, fv_err *e) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->recognisability = out->oracle_p = NAN;
    out->ssim_best_median = out->ssim_best_mean = out->psnr_best_median = NAN;
    out->ssim_mixed_median = out->resemblance = out->resemblance_pos = NAN;
    if (n < 1) return fv_err_set(e, "leakage: no samples");
    size_t isz = fv_shape_size(s);
    if (oracle) {
        float *p = fv_malloc(sizeof(float) * (size_t)n);
        out->recognisability = fv_oracle_recognise(oracle, samples, n, onorm, target, NULL, p);
        double m = 0;
        for (int i = 0; i < n; i++) m += p[i];
        out->oracle_p = m / n;
        free(p);
    }
    if (nv < 1 || !victim) return 0;
    double *best = fv_malloc(sizeof(double) * (size_t)n * 4), *bpsnr = best + n, *bmix = bpsnr + n, *diff = bmix + n;
    int m = others && no > 0 ? (nv < no ? nv : no) : 0, pos = 0;
    double sum = 0, rsum = 0;
    for (int i = 0; i < n; i++) {
        const float *x = samples + (size_t)i * isz;
        if (fv_ssim_best(&best[i], NULL, x, victim, (size_t)nv, s.c, s.h, s.w, e)) {
            free(best);
            return fv_err_prefix(e, "leakage: ");
        }
        sum += best[i];
        double bp = -INFINITY;
        for (int k = 0; k < nv; k++) bp = fmax(bp, fv_psnr(x, victim + (size_t)k * isz, isz));
        bpsnr[i] = bp;
        if (victim_mixed && fv_ssim_best(&bmix[i], NULL, x, victim_mixed, (size_t)nv, s.c, s.h, s.w, e)) {
            free(best);
            return fv_err_prefix(e, "leakage: ");
        }
        if (m > 0) {
            double bv, bo;
            if (fv_ssim_best(&bv, NULL, x, victim, (size_t)m, s.c, s.h, s.w, e) ||
                fv_ssim_best(&bo, NULL, x, others, (size_t)m, s.c, s.h, s.w, e)) {
                free(best);
                return fv_err_prefix(e, "leakage: ");
            }
            diff[i] = bv - bo;
            rsum += diff[i];
            pos += diff[i] > 0;
        }
    }
    out->ssim_best_mean = sum / n;
    out->ssim_best_median = median(best, n);
    out->psnr_best_median = median(bpsnr, n);
    if (victim_mixed) out->ssim_mixed_median = median(bmix, n);
    if (m > 0) {
        out->resemblance = rsum / n;
        out->resemblance_pos = (double)pos / n;
    }
    free(best);
    return 0;
}

void fv_leakage_json(fv_json *j, const fv_leakage *l) {
    fv_json_int(j, "samples", l->n);
    fv_json_num(j, "recognisability", l->recognisability);
    fv_json_num(j, "oracle_p_target", l->oracle_p);
    fv_json_num(j, "ssim_best_median", l->ssim_best_median);
    fv_json_num(j, "ssim_best_mean", l->ssim_best_mean);
    fv_json_num_or_inf(j, "psnr_best_median", l->psnr_best_median);
    fv_json_num(j, "ssim_best_mixed_median", l->ssim_mixed_median);
    fv_json_num(j, "victim_resemblance", l->resemblance);
    fv_json_num(j, "victim_resemblance_positive", l->resemblance_pos);
}
