/* obfuscate.c: see obfuscate.h. */
#include "vmix/obfuscate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* Streams: noise and InstaHide never share one for the same seed. */
enum { STREAM_NOISE = 1, STREAM_INSTAHIDE = 2 };

static uint64_t image_stream(int kind, int i) { return ((uint64_t)kind << 40) | (uint64_t)(uint32_t)i; }

static uint8_t to_u8(double v) {
    v = v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v;
    return (uint8_t)lrint(v);
}

int fv_obf_noise(uint8_t *out, const fv_dataset *d, double sigma, uint64_t seed, fv_err *e) {
    if (!(sigma >= 0.0) || !isfinite(sigma)) return fv_err_set(e, "noise: sigma must be finite and >= 0 (got %g)", sigma);
    size_t isz = (size_t)d->c * d->h * d->w;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < d->n; i++) {
        fv_rng r;
        fv_rng_seed2(&r, seed, image_stream(STREAM_NOISE, i));
        const uint8_t *x = d->x + (size_t)i * isz;
        uint8_t *o = out + (size_t)i * isz;
        for (size_t p = 0; p < isz; p++) o[p] = to_u8((x[p] / 255.0 + sigma * fv_rng_normal(&r)) * 255.0);
    }
    return 0;
}

fv_instahide_cfg fv_instahide_defaults(int k) {
    fv_instahide_cfg c = {k, k == 1 ? 1.0 : 0.65, 1};
    return c;
}

/* Coefficients uniform on the simplex (normalised exponentials), resampled until each is at
 * most upper. With upper >= 1/k + a margin the expected number of draws is small; a bound on
 * the retries keeps a pathological upper (just above 1/k) from hanging: it then falls back to
 * the closest feasible point, all coefficients 1/k. */
static void draw_coef(double *lam, int k, double upper, fv_rng *r) {
    for (int tries = 0; tries < 10000; tries++) {
        double s = 0.0, mx = 0.0;
        for (int j = 0; j < k; j++) {
            lam[j] = -log(1.0 - fv_rng_uniform_d(r));
            s += lam[j];
        }
        for (int j = 0; j < k; j++) {
            lam[j] /= s;
            if (lam[j] > mx) mx = lam[j];
        }
        if (mx <= upper) return;
    }
    for (int j = 0; j < k; j++) lam[j] = 1.0 / k;
}

int fv_obf_instahide(uint8_t *out, float *soft, int *partners, double *coef, const fv_dataset *d,
                     const fv_instahide_cfg *cfg, uint64_t seed, fv_err *e) {
    const int k = cfg->k;
    if (k < 1 || k > FV_OBF_INSTAHIDE_KMAX)
        return fv_err_set(e, "instahide: k must be in [1, %d] (got %d)", FV_OBF_INSTAHIDE_KMAX, k);
    if (k > d->n) return fv_err_set(e, "instahide: k = %d needs at least %d images (the set has %d)", k, k, d->n);
    if (!(cfg->upper >= 1.0 / k - 1e-12 && cfg->upper <= 1.0))
        return fv_err_set(e, "instahide: the coefficient bound must lie in [1/k, 1] = [%g, 1] (got %g)", 1.0 / k,
                          cfg->upper);
    FV_ASSERT(d->classes >= 1);
    const size_t isz = (size_t)d->c * d->h * d->w;
    const int K = d->classes;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < d->n; i++) {
        fv_rng r;
        fv_rng_seed2(&r, seed, image_stream(STREAM_INSTAHIDE, i));
        int who[FV_OBF_INSTAHIDE_KMAX];
        double lam[FV_OBF_INSTAHIDE_KMAX];
        who[0] = i;
        for (int j = 1; j < k; j++) { /* k - 1 distinct partners, none equal to i */
            int c, dup;
            do {
                c = (int)fv_rng_below(&r, (uint64_t)d->n);
                dup = 0;
                for (int t = 0; t < j; t++) dup |= who[t] == c;
            } while (dup);
            who[j] = c;
        }
        draw_coef(lam, k, cfg->upper, &r);
        uint8_t *o = out + (size_t)i * isz;
        for (size_t p = 0; p < isz; p++) {
            double v = 0.0;
            for (int j = 0; j < k; j++) v += lam[j] * (2.0 * d->x[(size_t)who[j] * isz + p] / 255.0 - 1.0);
            if (cfg->sign_flip && (fv_rng_u64(&r) >> 63)) v = -v;
            o[p] = to_u8((v + 1.0) * 127.5);
        }
        float *s = soft + (size_t)i * K;
        for (int c = 0; c < K; c++) s[c] = 0.0f;
        for (int j = 0; j < k; j++) {
            FV_ASSERT(d->y[who[j]] < K);
            s[d->y[who[j]]] += (float)lam[j];
        }
        if (partners) memcpy(partners + (size_t)i * k, who, sizeof(int) * (size_t)k);
        if (coef) memcpy(coef + (size_t)i * k, lam, sizeof(double) * (size_t)k);
    }
    return 0;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int b = 0; b < 4; b++) p[b] = (uint8_t)(v >> (8 * b));
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int fv_soft_labels_write(const char *path, const float *soft, int n, int classes, fv_err *e) {
    FV_ASSERT(n >= 0 && classes >= 1);
    size_t len = 16 + (size_t)n * classes * 4;
    uint8_t *buf = fv_malloc(len);
    memcpy(buf, FV_OBF_SOFT_MAGIC, 4);
    put32(buf + 4, FV_OBF_SOFT_VERSION);
    put32(buf + 8, (uint32_t)n);
    put32(buf + 12, (uint32_t)classes);
    for (size_t i = 0; i < (size_t)n * classes; i++) {
        uint32_t u;
        memcpy(&u, &soft[i], 4);
        put32(buf + 16 + 4 * i, u);
    }
    int rc = fv_write_file_atomic(path, buf, len, e);
    free(buf);
    return rc;
}

int fv_soft_labels_read(const char *path, float **soft, int *n, int *classes, fv_err *e) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fv_read_file(path, (size_t)1 << 31, &buf, &len, e)) return -1;
    int rc = -1;
    if (len < 16 || memcmp(buf, FV_OBF_SOFT_MAGIC, 4) != 0) {
        fv_err_set(e, "%s: not a soft-label file (no FVSL magic): write it with fedvim obfuscate", path);
        goto done;
    }
    if (get32(buf + 4) != FV_OBF_SOFT_VERSION) {
        fv_err_set(e, "%s: soft-label format version %u, this fedvim reads version %d: re-create it with this "
                      "fedvim's obfuscate", path, get32(buf + 4), FV_OBF_SOFT_VERSION);
        goto done;
    }
    uint32_t nn = get32(buf + 8), kk = get32(buf + 12);
    if (kk < 1 || kk > 100000 || nn > 0x7fffffffu || (len - 16) / 4 / kk != nn || (len - 16) != (size_t)nn * kk * 4) {
        fv_err_set(e, "%s: header says %u rows of %u classes but the file holds %zu bytes of labels", path, nn, kk,
                   len - 16);
        goto done;
    }
    float *s = fv_malloc((size_t)(nn ? nn : 1) * kk * sizeof(float));
    for (size_t i = 0; i < (size_t)nn * kk; i++) {
        uint32_t u = get32(buf + 16 + 4 * i);
        memcpy(&s[i], &u, 4);
    }
    for (uint32_t r = 0; r < nn; r++) {
        double sum = 0.0;
        for (uint32_t c = 0; c < kk; c++) {
            float v = s[(size_t)r * kk + c];
            if (!(v >= 0.0f && v <= 1.0f)) {
                fv_err_set(e, "%s: row %u, class %u: %g is not a probability", path, r, c, (double)v);
                free(s);
                goto done;
            }
            sum += v;
        }
        if (fabs(sum - 1.0) > 1e-3) {
            fv_err_set(e, "%s: row %u sums to %g, not 1", path, r, sum);
            free(s);
            goto done;
        }
    }
    *soft = s;
    *n = (int)nn;
    *classes = (int)kk;
    rc = 0;
done:
    free(buf);
    return rc;
}
