/* vfe.c: see vfe.h. Eq. 2 in closed form: with n pixels, sum S, sum of squares Q and pair
 * energy G = sum over in-region adjacent pairs of (f(p) - f(q))^2,
 *   s2 = (n Q - S^2) / n^2,  VFE_R = G / (2 s2 |P|) = G n^2 / (2 |P| (n Q - S^2)).
 * For uint8 all sums are exact integers, so "flat" is exactly n Q - S^2 == 0 (for regions of up
 * to 10^6 pixels the smallest non-zero uint8 variance is far above 1e-12 in [0,1] units). */
#include "vmix/vfe.h"

#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Sums of one region: S (values), Q (squares), G (pair energy). Row sums fit 32 bits for rows of
 * up to 16384 pixels; always_inline lets the fixed widths below unroll completely. */
static inline __attribute__((always_inline)) void region_sums(const uint8_t *p, int stride, int w, int h,
                                                              uint64_t *S, uint64_t *Q, uint64_t *G) {
    uint64_t s = 0, q = 0, g = 0;
    for (int y = 0; y < h; y++) {
        const uint8_t *r = p + (long)y * stride;
        uint32_t rs = 0, rq = 0, rg = 0;
        for (int x = 0; x < w; x++) {
            uint32_t v = r[x];
            rs += v;
            rq += v * v;
        }
        for (int x = 0; x + 1 < w; x++) {
            int d = (int)r[x + 1] - (int)r[x];
            rg += (uint32_t)(d * d);
        }
        if (y + 1 < h)
            for (int x = 0; x < w; x++) {
                int d = (int)r[x + stride] - (int)r[x];
                rg += (uint32_t)(d * d);
            }
        s += rs;
        q += rq;
        g += rg;
    }
    *S = s;
    *Q = q;
    *G = g;
}

#if defined(__SSE2__)
/* SSE2 sums of a w x h region with w = 4 or 8 (one row per 16-bit vector). Bitwise the same
 * integers as region_sums. Row loads read exactly w bytes. */
static inline __attribute__((always_inline)) __m128i load_row(const uint8_t *r, int w) {
    if (w == 8) return _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)r), _mm_setzero_si128());
    uint32_t v;
    memcpy(&v, r, 4);
    return _mm_unpacklo_epi8(_mm_cvtsi32_si128((int)v), _mm_setzero_si128());
}

static inline __attribute__((always_inline)) void region_sums_simd(const uint8_t *p, int stride, int w, int h,
                                                                   uint64_t *S, uint64_t *Q, uint64_t *G) {
    /* lanes beyond w are zero; the horizontal-difference mask keeps lanes 0..w-2 */
    const __m128i hmask = w == 8 ? _mm_set_epi16(0, -1, -1, -1, -1, -1, -1, -1)
                                 : _mm_set_epi16(0, 0, 0, 0, 0, -1, -1, -1);
    __m128i sum16 = _mm_setzero_si128(), q32 = _mm_setzero_si128(), g32 = _mm_setzero_si128();
    __m128i cur = load_row(p, w);
    for (int y = 0; y < h; y++) {
        sum16 = _mm_add_epi16(sum16, cur);
        q32 = _mm_add_epi32(q32, _mm_madd_epi16(cur, cur));
        __m128i dh = _mm_and_si128(_mm_sub_epi16(_mm_srli_si128(cur, 2), cur), hmask);
        g32 = _mm_add_epi32(g32, _mm_madd_epi16(dh, dh));
        if (y + 1 < h) {
            __m128i nxt = load_row(p + (long)(y + 1) * stride, w);
            __m128i dv = _mm_sub_epi16(nxt, cur);
            g32 = _mm_add_epi32(g32, _mm_madd_epi16(dv, dv));
            cur = nxt;
        }
    }
    /* 16-bit lane sums: at most 8 rows x 255 per lane, no overflow */
    __m128i s32 = _mm_madd_epi16(sum16, _mm_set1_epi16(1));
    uint32_t a[4], b[4], c[4];
    _mm_storeu_si128((__m128i *)a, s32);
    _mm_storeu_si128((__m128i *)b, q32);
    _mm_storeu_si128((__m128i *)c, g32);
    *S = (uint64_t)a[0] + a[1] + a[2] + a[3];
    *Q = (uint64_t)b[0] + b[1] + b[2] + b[3];
    *G = (uint64_t)c[0] + c[1] + c[2] + c[3];
}
#endif

#if defined(__SSE2__)
/* SSE2 sums of a 16 x h region (h <= 16): each row is two 8-lane halves; the horizontal pair
 * between them comes from a one-byte shift of the whole row, so no byte outside the row is read. */
static inline __attribute__((always_inline)) void region_sums_simd16(const uint8_t *p, int stride, int h,
                                                                     uint64_t *S, uint64_t *Q, uint64_t *G) {
    const __m128i z = _mm_setzero_si128(), one = _mm_set1_epi16(1);
    const __m128i last = _mm_set_epi16(0, -1, -1, -1, -1, -1, -1, -1); /* drops pair (15, 16) */
    __m128i sum16 = z, q32 = z, g32 = z;
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    for (int y = 0; y < h; y++) {
        __m128i lo = _mm_unpacklo_epi8(b, z), hi = _mm_unpackhi_epi8(b, z);
        __m128i bs = _mm_srli_si128(b, 1);
        __m128i dlo = _mm_sub_epi16(_mm_unpacklo_epi8(bs, z), lo);
        __m128i dhi = _mm_and_si128(_mm_sub_epi16(_mm_unpackhi_epi8(bs, z), hi), last);
        sum16 = _mm_add_epi16(sum16, _mm_add_epi16(lo, hi));
        q32 = _mm_add_epi32(q32, _mm_add_epi32(_mm_madd_epi16(lo, lo), _mm_madd_epi16(hi, hi)));
        g32 = _mm_add_epi32(g32, _mm_add_epi32(_mm_madd_epi16(dlo, dlo), _mm_madd_epi16(dhi, dhi)));
        if (y + 1 < h) {
            __m128i nb = _mm_loadu_si128((const __m128i *)(p + (long)(y + 1) * stride));
            __m128i vlo = _mm_sub_epi16(_mm_unpacklo_epi8(nb, z), lo);
            __m128i vhi = _mm_sub_epi16(_mm_unpackhi_epi8(nb, z), hi);
            g32 = _mm_add_epi32(g32, _mm_add_epi32(_mm_madd_epi16(vlo, vlo), _mm_madd_epi16(vhi, vhi)));
            b = nb;
        }
    }
    /* 16-bit lane sums: at most 2 x 16 x 255 = 8160 per lane */
    __m128i s32 = _mm_madd_epi16(sum16, one);
    uint32_t a[4], c[4], d[4];
    _mm_storeu_si128((__m128i *)a, s32);
    _mm_storeu_si128((__m128i *)c, q32);
    _mm_storeu_si128((__m128i *)d, g32);
    *S = (uint64_t)a[0] + a[1] + a[2] + a[3];
    *Q = (uint64_t)c[0] + c[1] + c[2] + c[3];
    *G = (uint64_t)d[0] + d[1] + d[2] + d[3];
}
#endif

double fv_vfe_region_u8(const uint8_t *p, int stride, int w, int h) {
    uint64_t s, q, g;
    if (w > 16384) { /* split wide regions into column strips so row sums stay in 32 bits */
        s = q = g = 0;
        for (int x0 = 0; x0 < w; x0 += 16384) {
            int cw = w - x0 < 16384 ? w - x0 : 16384;
            uint64_t a, b, c;
            region_sums(p + x0, stride, cw, h, &a, &b, &c);
            s += a;
            q += b;
            g += c;
            if (x0 + cw < w) /* the horizontal pairs across the strip boundary */
                for (int y = 0; y < h; y++) {
                    int d = (int)p[(long)y * stride + x0 + cw] - (int)p[(long)y * stride + x0 + cw - 1];
                    g += (uint64_t)(d * d);
                }
        }
    } else if (w == 2 && h == 2) {
        region_sums(p, stride, 2, 2, &s, &q, &g);
#if defined(__SSE2__)
    } else if (w == 4 && h == 4) {
        region_sums_simd(p, stride, 4, 4, &s, &q, &g);
    } else if (w == 8 && h == 8) {
        region_sums_simd(p, stride, 8, 8, &s, &q, &g);
#else
    } else if (w == 4 && h == 4) {
        region_sums(p, stride, 4, 4, &s, &q, &g);
    } else if (w == 8 && h == 8) {
        region_sums(p, stride, 8, 8, &s, &q, &g);
#endif
    } else if (w == 16 && h == 16) {
#if defined(__SSE2__)
        region_sums_simd16(p, stride, 16, &s, &q, &g);
#else
        region_sums(p, stride, 16, 16, &s, &q, &g);
#endif
    } else {
        region_sums(p, stride, w, h, &s, &q, &g);
    }
    double n = (double)w * h;
    double var_n2 = n * (double)q - (double)s * (double)s; /* n^2 * s2, exact below 2^53 */
    double pairs = 2.0 * w * h - w - h;
    if (var_n2 <= 0.0 || pairs <= 0.0) return FV_VFE_FLAT;
    return (double)g * n * n / (2.0 * pairs * var_n2);
}

double fv_vfe_region_f32(const float *p, int stride, int w, int h) {
    double n = (double)w * h, s = 0.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) s += p[(long)y * stride + x];
    double mu = s / n, s2 = 0.0, g = 0.0;
    for (int y = 0; y < h; y++) {
        const float *r = p + (long)y * stride;
        for (int x = 0; x < w; x++) {
            double v = r[x], dv = v - mu;
            s2 += dv * dv;
            if (x + 1 < w) g += ((double)r[x + 1] - v) * ((double)r[x + 1] - v);
            if (y + 1 < h) g += ((double)r[stride + x] - v) * ((double)r[stride + x] - v);
        }
    }
    s2 /= n;
    double pairs = 2.0 * w * h - w - h;
    if (s2 < 1e-12 || pairs <= 0.0) return FV_VFE_FLAT;
    return g / (2.0 * s2 * pairs);
}

double fv_vfe_channel_u8(const uint8_t *plane, int h, int w, int block, double lambda) {
    double sum = 0.0;
    long used = 0;
    for (int by = 0; by < h; by += block)
        for (int bx = 0; bx < w; bx += block) {
            int bw = w - bx < block ? w - bx : block, bh = h - by < block ? h - by : block;
            double v = fv_vfe_region_u8(plane + (long)by * w + bx, w, bw, bh);
            if (v != FV_VFE_FLAT) {
                sum += v;
                used++;
            }
        }
    return used ? lambda * sum / (double)used : lambda;
}

double fv_vfe_channel_f32(const float *plane, int h, int w, int block, double lambda) {
    double sum = 0.0;
    long used = 0;
    for (int by = 0; by < h; by += block)
        for (int bx = 0; bx < w; bx += block) {
            int bw = w - bx < block ? w - bx : block, bh = h - by < block ? h - by : block;
            double v = fv_vfe_region_f32(plane + (long)by * w + bx, w, bw, bh);
            if (v != FV_VFE_FLAT) {
                sum += v;
                used++;
            }
        }
    return used ? lambda * sum / (double)used : lambda;
}

double fv_vfe_image_u8(const uint8_t *chw, int c, int h, int w, int block, double lambda) {
    double sum = 0.0;
    for (int ch = 0; ch < c; ch++) sum += fv_vfe_channel_u8(chw + (long)ch * h * w, h, w, block, lambda);
    return sum / c;
}

double fv_vfe_image_f32(const float *chw, int c, int h, int w, int block, double lambda) {
    double sum = 0.0;
    for (int ch = 0; ch < c; ch++) sum += fv_vfe_channel_f32(chw + (long)ch * h * w, h, w, block, lambda);
    return sum / c;
}
