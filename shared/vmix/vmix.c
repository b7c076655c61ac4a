/* vmix.c: see vmix.h. */
#include "vmix/vmix.h"

#include <omp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "vmix/vfe.h"
#include "vmix/vmix_defaults.h"

#define STREAM_BUF 512 /* keystream bytes generated per ChaCha20 call (8 blocks) */
#define MAX_CH 4

void fv_vmix_params_default(fv_vmix_params *p) {
    memset(p, 0, sizeof *p);
    p->ws_min = 2;
    p->ws_max = 8;
    p->unit = FV_VMIX_UNIT_DEF;
    p->block = FV_VMIX_BLOCK_DEF;
    p->lambda = FV_VMIX_LAMBDA_DEF;
    p->mode = FV_VMIX_SPATIAL_CHROMATIC;
}

static int is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

int fv_vmix_params_check(const fv_vmix_params *p, int h, int w, fv_err *e) {
    if (h < 1 || w < 1) return fv_err_set(e, "empty image (%d x %d): nothing to mix", w, h);
    if (!is_pow2(p->ws_min)) return fv_err_set(e, "WS_min = %d is not a power of two", p->ws_min);
    if (!is_pow2(p->ws_max)) return fv_err_set(e, "WS_max = %d is not a power of two", p->ws_max);
    if (p->ws_min > p->ws_max)
        return fv_err_set(e, "WS_min = %d > WS_max = %d: the privacy bound exceeds the utility bound",
                          p->ws_min, p->ws_max);
    if (p->ws_max > (1 << (FV_VMIX_SIZES - 1)))
        return fv_err_set(e, "WS_max = %d is larger than the supported %d", p->ws_max, 1 << (FV_VMIX_SIZES - 1));
    if (!is_pow2(p->unit)) return fv_err_set(e, "shuffle unit = %d is not a power of two", p->unit);
    if (p->unit > p->ws_min)
        return fv_err_set(e, "shuffle unit = %d is larger than WS_min = %d", p->unit, p->ws_min);
    if (p->block < 1) return fv_err_set(e, "VFE block size = %d must be >= 1", p->block);
    if (!(p->lambda > 0.0)) return fv_err_set(e, "VFE scale lambda = %g must be > 0", p->lambda);
    if (p->mode != FV_VMIX_SPATIAL_CHROMATIC && p->mode != FV_VMIX_SPATIAL)
        return fv_err_set(e, "unknown shuffle mode %d", (int)p->mode);
    if (p->verify && !(p->target_vfe > 0.0))
        return fv_err_set(e, "--verify needs a target VFE > 0 (got %g)", p->target_vfe);
    return 0;
}

const char *fv_vmix_mode_name(fv_vmix_mode m) {
    return m == FV_VMIX_SPATIAL ? "spatial" : "spatial+chromatic";
}

int fv_vmix_mode_parse(const char *s, fv_vmix_mode *m, fv_err *e) {
    if (strcmp(s, "spatial+chromatic") == 0) *m = FV_VMIX_SPATIAL_CHROMATIC;
    else if (strcmp(s, "spatial") == 0) *m = FV_VMIX_SPATIAL;
    else return fv_err_set(e, "unknown shuffle mode '%s' (expected spatial+chromatic or spatial)", s);
    return 0;
}

void fv_vmix_domain_key(uint8_t out[FV_VMIX_KEY_BYTES], const uint8_t secret[FV_VMIX_KEY_BYTES],
                        uint64_t domain) {
    FV_ASSERT(sodium_init() >= 0);
    FV_ASSERT(crypto_kdf_derive_from_key(out, FV_VMIX_KEY_BYTES, domain, "fvvmdom1", secret) == 0);
}

void fv_vmix_image_key(uint8_t out[FV_VMIX_KEY_BYTES], const uint8_t domain_key[FV_VMIX_KEY_BYTES],
                       uint64_t index) {
    FV_ASSERT(crypto_kdf_derive_from_key(out, FV_VMIX_KEY_BYTES, index, "fvvmimg1", domain_key) == 0);
}

/* ---- keyed stream: ChaCha20 keystream consumed as 16- or 32-bit draws ---- */

typedef struct {
    const uint8_t *key; /* image key (32 bytes), owned by the caller */
    uint8_t nonce[8];
    uint64_t counter;   /* next 64-byte block */
    uint8_t buf[STREAM_BUF];
    int pos;
} vm_stream;

static const uint8_t ZEROS[STREAM_BUF];

static void stream_init(vm_stream *s, const uint8_t *key, uint64_t nonce) {
    s->key = key;
    for (int i = 0; i < 8; i++) s->nonce[i] = (uint8_t)(nonce >> (8 * i));
    s->counter = 0;
    s->pos = STREAM_BUF;
}

static void stream_refill(vm_stream *s) {
    crypto_stream_chacha20_xor_ic(s->buf, ZEROS, STREAM_BUF, s->nonce, s->counter, s->key);
    s->counter += STREAM_BUF / 64;
    s->pos = 0;
}

/* The keystream read as little-endian 16- and 32-bit integers, bytes in stream order. */
static inline __attribute__((always_inline)) uint32_t stream_u16(vm_stream *s) {
    if (s->pos + 2 > STREAM_BUF) stream_refill(s);
    uint16_t v;
    memcpy(&v, s->buf + s->pos, 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap16(v);
#endif
    s->pos += 2;
    return v;
}

static inline __attribute__((always_inline)) uint32_t stream_u32(vm_stream *s) {
    if (s->pos + 4 > STREAM_BUF) return stream_u16(s) | stream_u16(s) << 16; /* across a refill */
    uint32_t v;
    memcpy(&v, s->buf + s->pos, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    s->pos += 4;
    return v;
}

/* Uniform integer in [0, n), 1 <= n: Lemire's multiply-shift, rejecting the low part below
 * (2^b - n) mod n, which removes all bias. b = 16 when n <= 65536, else 32. */
static inline __attribute__((always_inline)) uint32_t stream_below(vm_stream *s, uint32_t n) {
    if (n <= 65536u) {
        uint32_t m = stream_u16(s) * n;
        if ((m & 0xffffu) < n) {
            uint32_t t = (65536u - n) % n;
            while ((m & 0xffffu) < t) m = stream_u16(s) * n;
        }
        return m >> 16;
    }
    uint64_t m = (uint64_t)stream_u32(s) * n;
    if ((uint32_t)m < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while ((uint32_t)m < t) m = (uint64_t)stream_u32(s) * n;
    }
    return (uint32_t)(m >> 32);
}

/* ---- work space ---- */

struct fv_vmix_work {
    fv_vmix_window *win;
    int nwin, capwin;
    uint8_t *vals;    /* window values, one channel (pixel level) or a window copy (block level) */
    int *perm;        /* unit permutation */
    size_t capvals, capperm;
    double *tiles;    /* Q0 tile VFEs, for the median */
    size_t captiles;
    uint8_t perm4[24][4]; /* Fisher-Yates of 4 units for each draw x in [0, 24) (see FISHER_YATES) */
    vm_stream st[MAX_CH];
};

fv_vmix_work *fv_vmix_work_new(void) {
    fv_vmix_work *w = fv_calloc(1, sizeof(fv_vmix_work));
    /* the permutation FISHER_YATES makes from draw x on 4 units, so that a 2x2 window can be
     * permuted straight from registers: result[i] = v[perm4[x][i]] */
    for (uint32_t x = 0; x < 24; x++) {
        uint8_t *q = w->perm4[x], t;
        for (int i = 0; i < 4; i++) q[i] = (uint8_t)i;
        uint32_t j = x & 3;
        t = q[3]; q[3] = q[j]; q[j] = t;
        j = (x >> 2) % 3;
        t = q[2]; q[2] = q[j]; q[j] = t;
        j = (x >> 2) / 3;
        t = q[1]; q[1] = q[j]; q[j] = t;
    }
    return w;
}

void fv_vmix_work_destroy(fv_vmix_work **w) {
    if (!w || !*w) return;
    free((*w)->win);
    free((*w)->vals);
    free((*w)->perm);
    free((*w)->tiles);
    sodium_memzero((*w)->st, sizeof (*w)->st);
    free(*w);
    *w = NULL;
}

static void reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    *p = fv_realloc(*p, c * elem);
    *cap = c;
}

static void push_window(fv_vmix_work *w, int x, int y, int ww, int hh) {
    if (w->nwin == w->capwin) {
        w->capwin = w->capwin ? 2 * w->capwin : 256;
        w->win = fv_realloc(w->win, (size_t)w->capwin * sizeof *w->win);
    }
    w->win[w->nwin++] = (fv_vmix_window){x, y, ww, hh};
}

/* ---- the shuffle of one window ---- */

/* Two Fisher-Yates steps from one 32-bit draw x: j1 uniform in [0, r), j2 in [0, r-1), r >= 3,
 * P = r (r-1) < 2^32. x * P = D * 2^32 + l with D = floor(x P / 2^32) = j1 (r-1) + j2, computed as
 * m1 = x r (j1 = m1 >> 32, l1 = m1 mod 2^32), m2 = l1 (r-1) (j2 = m2 >> 32, l = m2 mod 2^32); D is
 * exactly uniform on [0, P) after Lemire's rejection of l < (2^32 - P) mod P, hence j1 and j2 are
 * independent uniforms: one draw and no division for two steps. */
static inline __attribute__((always_inline)) void pair_below(vm_stream *s, uint32_t r, uint32_t *j1, uint32_t *j2) {
    uint64_t P = (uint64_t)r * (r - 1);
    for (;;) {
        uint64_t m1 = (uint64_t)stream_u32(s) * r;
        uint64_t m2 = (m1 & 0xffffffffull) * (r - 1);
        uint64_t l = m2 & 0xffffffffull;
        if (l >= P || l >= (0x100000000ull - P) % P) {
            *j1 = (uint32_t)(m1 >> 32);
            *j2 = (uint32_t)(m2 >> 32);
            return;
        }
    }
}

/* Fisher-Yates on a[0..n): for i = n-1 down to 1, swap a[i] with a[j], j uniform in [0, i].
 * For n <= 8 all the j's come from ONE uniform draw x in [0, n!) read as mixed-radix digits
 * (j = x mod (i+1), x /= (i+1), from i = n-1 down): the digits of a uniform x are independent and
 * uniform, so this is exactly Fisher-Yates with one keystream draw instead of n-1. A single unit
 * draws nothing. A macro because it serves both uint8_t values and int indices. */
#define FISHER_YATES(T, a, n, s)                                                     \
    do {                                                                             \
        static const uint32_t FACT[9] = {1, 1, 2, 6, 24, 120, 720, 5040, 40320};     \
        T tmp_;                                                                      \
        if ((n) <= 1) {                                                              \
        } else if ((n) <= 8) {                                                       \
            uint32_t x_ = stream_below((s), FACT[(n)]);                              \
            if ((n) == 4) {                                                          \
                uint32_t j_ = x_ & 3;                                                \
                tmp_ = (a)[3]; (a)[3] = (a)[j_]; (a)[j_] = tmp_;                     \
                x_ >>= 2;                                                            \
                j_ = x_ % 3;                                                         \
                tmp_ = (a)[2]; (a)[2] = (a)[j_]; (a)[j_] = tmp_;                     \
                j_ = x_ / 3;                                                         \
                tmp_ = (a)[1]; (a)[1] = (a)[j_]; (a)[j_] = tmp_;                     \
            } else {                                                                 \
                for (uint32_t i_ = (uint32_t)(n) - 1; i_ > 0; i_--) {                \
                    uint32_t j_ = x_ % (i_ + 1);                                     \
                    x_ /= i_ + 1;                                                    \
                    tmp_ = (a)[i_]; (a)[i_] = (a)[j_]; (a)[j_] = tmp_;               \
                }                                                                    \
            }                                                                        \
        } else {                                                                     \
            int i_ = (n) - 1;                                                        \
            for (; i_ > 1; i_ -= 2) {                                                \
                uint32_t j1_, j2_;                                                   \
                pair_below((s), (uint32_t)i_ + 1, &j1_, &j2_);                       \
                tmp_ = (a)[i_]; (a)[i_] = (a)[j1_]; (a)[j1_] = tmp_;                 \
                tmp_ = (a)[i_ - 1]; (a)[i_ - 1] = (a)[j2_]; (a)[j2_] = tmp_;         \
            }                                                                        \
            if (i_ == 1) {                                                           \
                uint32_t j_ = stream_below((s), 2);                                  \
                tmp_ = (a)[1]; (a)[1] = (a)[j_]; (a)[j_] = tmp_;                     \
            }                                                                        \
        }                                                                            \
    } while (0)

/* A uniformly random permutation of perm[0..n). */
static void random_perm(int *perm, int n, vm_stream *s) {
    for (int i = 0; i < n; i++) perm[i] = i;
    FISHER_YATES(int, perm, n, s);
}

static void shuffle_pixels(uint8_t *plane, int W, int x0, int y0, int ww, int hh, uint8_t *v,
                           vm_stream *s) {
    int n = ww * hh;
    for (int y = 0; y < hh; y++) memcpy(v + y * ww, plane + (long)(y0 + y) * W + x0, (size_t)ww);
    FISHER_YATES(uint8_t, v, n, s);
    for (int y = 0; y < hh; y++) memcpy(plane + (long)(y0 + y) * W + x0, v + y * ww, (size_t)ww);
}

/* Pixel level with a given permutation: position i receives the value from position perm[i]. */
static void apply_pixels(uint8_t *plane, int W, int x0, int y0, int ww, int hh, uint8_t *v,
                         const int *perm) {
    int k = 0;
    for (int y = 0; y < hh; y++) {
        const uint8_t *r = plane + (long)(y0 + y) * W + x0;
        for (int x = 0; x < ww; x++) v[k++] = r[x];
    }
    k = 0;
    for (int y = 0; y < hh; y++) {
        uint8_t *r = plane + (long)(y0 + y) * W + x0;
        for (int x = 0; x < ww; x++, k++) r[x] = v[perm[k]];
    }
}

/* Block level: units of u x u. Units of one shape are permuted among themselves: full units,
 * the right strip (rx x u), the bottom strip (u x ry); the corner unit (rx x ry) is alone.
 * group g: 0 full, 1 right strip, 2 bottom strip. Unit i of the group, top-left in the window: */
static void unit_origin(int g, int i, int nux, int u, int *ux, int *uy) {
    if (g == 0) {
        *ux = (i % nux) * u;
        *uy = (i / nux) * u;
    } else if (g == 1) {
        *ux = nux * u;
        *uy = i * u;
    } else {
        *ux = i * u;
        *uy = 0; /* caller adds nuy * u */
    }
}

static void move_units(uint8_t *plane, int W, int x0, int y0, int ww, int hh, int u, int g,
                       const int *perm, int cnt, const uint8_t *copy) {
    int nux = ww / u, nuy = hh / u, rx = ww % u, ry = hh % u;
    int uw = g == 1 ? rx : u, uh = g == 2 ? ry : u;
    for (int i = 0; i < cnt; i++) {
        int dx, dy, sx, sy;
        unit_origin(g, i, nux, u, &dx, &dy);
        unit_origin(g, perm[i], nux, u, &sx, &sy);
        if (g == 2) {
            dy = sy = nuy * u;
        }
        for (int y = 0; y < uh; y++)
            memcpy(plane + (long)(y0 + dy + y) * W + x0 + dx, copy + (long)(sy + y) * ww + sx, (size_t)uw);
    }
}

static void shuffle_window(fv_vmix_work *w, uint8_t *img, int c, int H, int W, int x0, int y0,
                           int ww, int hh, const fv_vmix_params *p) {
    long plane = (long)H * W;
    if (p->unit == 1) {
        int n = ww * hh;
        if (p->mode == FV_VMIX_SPATIAL_CHROMATIC && ww == 2 && hh == 2) {
            for (int ch = 0; ch < c; ch++) { /* the common case, from registers */
                uint8_t *r0 = img + ch * plane + (long)y0 * W + x0, *r1 = r0 + W;
                const uint8_t *q = w->perm4[stream_below(&w->st[ch], 24)];
                uint8_t v[4] = {r0[0], r0[1], r1[0], r1[1]};
                r0[0] = v[q[0]];
                r0[1] = v[q[1]];
                r1[0] = v[q[2]];
                r1[1] = v[q[3]];
            }
        } else if (p->mode == FV_VMIX_SPATIAL_CHROMATIC) {
            for (int ch = 0; ch < c; ch++)
                shuffle_pixels(img + ch * plane, W, x0, y0, ww, hh, w->vals, &w->st[ch]);
        } else {
            random_perm(w->perm, n, &w->st[0]);
            for (int ch = 0; ch < c; ch++) apply_pixels(img + ch * plane, W, x0, y0, ww, hh, w->vals, w->perm);
        }
        return;
    }
    int u = p->unit, nux = ww / u, nuy = hh / u;
    int cnt[3] = {nux * nuy, ww % u ? nuy : 0, hh % u ? nux : 0};
    for (int ch = 0; ch < c; ch++) {
        uint8_t *pl = img + ch * plane;
        for (int y = 0; y < hh; y++) memcpy(w->vals + (long)y * ww, pl + (long)(y0 + y) * W + x0, (size_t)ww);
        for (int g = 0; g < 3; g++) {
            if (cnt[g] < 2) continue;
            int *perm = w->perm + g * (nux * nuy + nux + nuy + 1);
            if (p->mode == FV_VMIX_SPATIAL_CHROMATIC || ch == 0) random_perm(perm, cnt[g], &w->st[p->mode == FV_VMIX_SPATIAL ? 0 : ch]);
            move_units(pl, W, x0, y0, ww, hh, u, g, perm, cnt[g], w->vals);
        }
    }
}

/* ---- Algorithm 1 ---- */

/* A tile's VFE for the split decision: Eq. 2 on the original pixels averaged over the
 * channels that are not flat; 0 when all are flat. */
static double tile_vfe(const uint8_t *img, int c, int H, int W, int x, int y, int ww, int hh) {
    double s = 0.0;
    int used = 0;
    for (int ch = 0; ch < c; ch++) {
        double v = fv_vfe_region_u8(img + (long)ch * H * W + (long)y * W + x, W, ww, hh);
        if (v != FV_VFE_FLAT) {
            s += v;
            used++;
        }
    }
    return used ? s / used : 0.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The k-th smallest of a[0..n) (a is reordered): Hoare-style quickselect. */
static double select_kth(double *a, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = a[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

/* Median: the middle value, or the mean of the two middle values for even n. */
static double median_of(double *a, size_t n) {
    double hi = select_kth(a, n, n / 2);
    if (n % 2) return hi;
    double lo = a[0]; /* after selection a[0..n/2) are <= hi: the largest of them is the other middle */
    for (size_t i = 1; i < n / 2; i++)
        if (a[i] > lo) lo = a[i];
    return 0.5 * (lo + hi);
}

typedef struct {
    fv_vmix_work *w;
    uint8_t *img; /* being mixed in place; a tile's pixels are original until it is shuffled */
    int c, H, W;
    int ws_min;
    double median;
    const fv_vmix_params *p;
} alg1;

/* Depth first, quadrants in the order top-left, top-right, bottom-left, bottom-right: this
 * fixes the window order, hence how the keyed streams are consumed. */
static void process_tile(alg1 *a, int x, int y, int s, int ww, int hh, double v) {
    if (s <= a->ws_min || ww < s || hh < s || v <= a->median) {
        shuffle_window(a->w, a->img, a->c, a->H, a->W, x, y, ww, hh, a->p);
        push_window(a->w, x, y, ww, hh);
        return;
    }
    int q = s / 2;
    for (int i = 0; i < 4; i++) {
        int qx = x + (i & 1) * q, qy = y + (i >> 1) * q;
        /* a quadrant at WS_min is shuffled whatever its VFE: do not compute it */
        double qv = q <= a->ws_min ? 0.0 : tile_vfe(a->img, a->c, a->H, a->W, qx, qy, q, q);
        process_tile(a, qx, qy, q, q, q, qv);
    }
}

static double mix_once(uint8_t *out, fv_vmix_work *w, const uint8_t *in, int c, int H, int W,
                       const uint8_t *key, const fv_vmix_params *p, int ws_min) {
    memcpy(out, in, (size_t)c * H * W);
    int nst = p->mode == FV_VMIX_SPATIAL ? 1 : c;
    for (int ch = 0; ch < nst; ch++) stream_init(&w->st[ch], key, (uint64_t)p->mode << 32 | (uint64_t)ch);
    w->nwin = 0;
    int ws0 = p->ws_max; /* a power of two (checked) */
    int tx = (W + ws0 - 1) / ws0, ty = (H + ws0 - 1) / ws0;
    size_t nt = (size_t)tx * ty;
    reserve((void **)&w->tiles, &w->captiles, 2 * nt, sizeof(double));
    double *vals = w->tiles, *sorted = w->tiles + nt;
    double median = 0.0;
    if (ws0 > ws_min) { /* with WS_max = WS_min every tile is one window: no VFE is needed */
        for (int j = 0; j < ty; j++)
            for (int i = 0; i < tx; i++) {
                int x = i * ws0, y = j * ws0;
                int ww = W - x < ws0 ? W - x : ws0, hh = H - y < ws0 ? H - y : ws0;
                vals[(size_t)j * tx + i] = tile_vfe(in, c, H, W, x, y, ww, hh);
            }
        memcpy(sorted, vals, nt * sizeof(double));
        median = median_of(sorted, nt);
    } else {
        memset(vals, 0, nt * sizeof(double));
    }
    alg1 a = {w, out, c, H, W, ws_min, median, p};
    for (int j = 0; j < ty; j++)
        for (int i = 0; i < tx; i++) {
            int x = i * ws0, y = j * ws0;
            int ww = W - x < ws0 ? W - x : ws0, hh = H - y < ws0 ? H - y : ws0;
            process_tile(&a, x, y, ws0, ww, hh, vals[(size_t)j * tx + i]);
        }
    return fv_vfe_image_u8(out, c, H, W, p->block, p->lambda);
}

int fv_vmix_image(uint8_t *out, fv_vmix_result *res, fv_vmix_work *w, const uint8_t *in, int c,
                  int h, int wd, const uint8_t image_key[FV_VMIX_KEY_BYTES], const fv_vmix_params *p,
                  fv_err *e) {
    memset(res, 0, sizeof *res);
    if (c < 1 || c > MAX_CH) return fv_err_set(e, "image has %d channels (supported: 1 to %d)", c, MAX_CH);
    if (fv_vmix_params_check(p, h, wd, e) != 0) return -1;
    FV_ASSERT(out != in);
    long n = (long)p->ws_max * p->ws_max;
    if (n > (long)h * wd) n = (long)h * wd;
    reserve((void **)&w->vals, &w->capvals, (size_t)n, 1);
    reserve((void **)&w->perm, &w->capperm, (size_t)(p->unit == 1 ? n : 3 * (n + 2 * p->ws_max + 1)), sizeof(int));
    int ws = p->ws_min;
    for (;;) {
        res->attempts++;
        res->vfe = mix_once(out, w, in, c, h, wd, image_key, p, ws);
        res->ws_min_used = ws;
        res->windows = w->win;
        res->nwindows = w->nwin;
        if (!p->verify || res->vfe >= p->target_vfe) return 0;
        if (ws >= p->ws_max)
            return fv_err_set(e, "measured VFE %.4f < target %.4f even with WS_min = WS_max = %d "
                              "(raise --d-max / --ws-max or lower --target-vfe)",
                              res->vfe, p->target_vfe, p->ws_max);
        ws *= 2;
    }
}

int fv_vmix_dataset(fv_dataset *out, float *vfe, fv_vmix_stats *st, const fv_dataset *in,
                    const uint8_t secret[FV_VMIX_KEY_BYTES], uint64_t domain,
                    const fv_vmix_params *p, int threads, fv_err *e) {
    memset(out, 0, sizeof *out);
    if (in->n < 1) return fv_err_set(e, "empty data set: nothing to mix");
    if (in->c < 1 || in->c > MAX_CH) return fv_err_set(e, "data set has %d channels (supported: 1 to %d)", in->c, MAX_CH);
    if (fv_vmix_params_check(p, in->h, in->w, e) != 0) return -1;
    long n = in->n, per = (long)in->c * in->h * in->w;
    uint8_t dkey[FV_VMIX_KEY_BYTES];
    fv_vmix_domain_key(dkey, secret, domain);
    double *v = fv_malloc((size_t)n * sizeof(double));
    int *wsu = fv_malloc((size_t)n * sizeof(int));
    int *att = fv_malloc((size_t)n * sizeof(int));
    uint8_t *fail = fv_calloc((size_t)n, 1);
    uint8_t *x = fv_malloc((size_t)(n * per));
    int nthr = threads > 0 ? threads : omp_get_max_threads();
    long (*hist)[FV_VMIX_SIZES + 1] = fv_calloc((size_t)nthr, sizeof *hist);
#pragma omp parallel num_threads(nthr)
    {
        fv_vmix_work *w = fv_vmix_work_new();
        long *hs = hist[omp_get_thread_num()];
        uint8_t ikey[FV_VMIX_KEY_BYTES];
#pragma omp for schedule(dynamic, 64)
        for (long i = 0; i < n; i++) {
            fv_vmix_result r;
            fv_vmix_image_key(ikey, dkey, (uint64_t)i);
            fail[i] = fv_vmix_image(x + i * per, &r, w, in->x + i * per, in->c, in->h, in->w, ikey, p, NULL) != 0;
            v[i] = r.vfe;
            wsu[i] = r.ws_min_used;
            att[i] = r.attempts;
            for (int k = 0; k < r.nwindows; k++) {
                const fv_vmix_window *wi = &r.windows[k];
                if (wi->w != wi->h || !is_pow2(wi->w)) {
                    hs[FV_VMIX_SIZES]++;
                } else {
                    int b = 0;
                    while ((1 << b) < wi->w) b++;
                    hs[b]++;
                }
            }
        }
        sodium_memzero(ikey, sizeof ikey);
        fv_vmix_work_destroy(&w);
    }
    sodium_memzero(dkey, sizeof dkey);
    int rc = 0;
    for (long i = 0; i < n; i++)
        if (fail[i]) {
            long nf = 0;
            for (long j = i; j < n; j++) nf += fail[j];
            rc = fv_err_set(e, "image %ld: measured VFE %.4f < target %.4f even with WS_min = WS_max = %d "
                            "(%ld image(s) fail; raise --d-max / --ws-max or lower --target-vfe)",
                            i, v[i], p->target_vfe, p->ws_max, nf);
            break;
        }
    if (rc == 0) {
        if (vfe)
            for (long i = 0; i < n; i++) vfe[i] = (float)v[i];
        if (st) {
            memset(st, 0, sizeof *st);
            st->n = n;
            st->vfe_min = v[0];
            double s = 0.0;
            for (long i = 0; i < n; i++) {
                s += v[i];
                if (v[i] < st->vfe_min) {
                    st->vfe_min = v[i];
                    st->vfe_min_index = i;
                }
                if (att[i] > 1) st->remixed++;
                int b = 0;
                while ((1 << b) < wsu[i]) b++;
                st->ws_min_used[b]++;
            }
            st->vfe_mean = s / (double)n;
            double *sorted = fv_malloc((size_t)n * sizeof(double));
            memcpy(sorted, v, (size_t)n * sizeof(double));
            qsort(sorted, (size_t)n, sizeof(double), cmp_double);
            st->vfe_p5 = sorted[(long)(0.05 * (double)(n - 1))];
            free(sorted);
            for (int t = 0; t < nthr; t++) {
                for (int k = 0; k < FV_VMIX_SIZES; k++) st->by_size[k] += hist[t][k];
                st->edge_windows += hist[t][FV_VMIX_SIZES];
            }
            for (int k = 0; k < FV_VMIX_SIZES; k++) st->windows += st->by_size[k];
            st->windows += st->edge_windows;
        }
        out->n = in->n;
        out->c = in->c;
        out->h = in->h;
        out->w = in->w;
        out->classes = in->classes;
        out->x = x;
        out->y = fv_malloc((size_t)n);
        memcpy(out->y, in->y, (size_t)n);
        x = NULL;
    }
    free(x);
    free(v);
    free(wsu);
    free(att);
    free(fail);
    free(hist);
    return rc;
}
