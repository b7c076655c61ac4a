/* vmix_alloc.c: see vmix_alloc.h. */
#include "vmix/vmix_alloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A buffered ChaCha20 stream (randombytes_buf_deterministic over a growing counter is not
 * available, so the stream is drawn in one block per image: at most 4 bytes per pixel per draw,
 * with rejection re-draws taken from a second, independently keyed block when the first runs out). */
typedef struct {
    uint8_t key[32];
    uint8_t *buf;
    size_t len, pos;
    uint64_t block;
} stream;

static void refill(stream *s) {
    uint8_t seed[randombytes_SEEDBYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, s->key, 32, sizeof seed);
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(s->block >> (8 * i));
    crypto_generichash_update(&st, b, 8);
    crypto_generichash_final(&st, seed, sizeof seed);
    randombytes_buf_deterministic(s->buf, s->len, seed);
    s->block++;
    s->pos = 0;
}

static uint32_t next32(stream *s) {
    if (s->pos + 4 > s->len) refill(s);
    uint32_t v;
    memcpy(&v, s->buf + s->pos, 4);
    s->pos += 4;
    return v;
}

/* Uniform in [0, n), n >= 1, without modulo bias (Lemire's multiply-shift with rejection). */
static uint32_t below(stream *s, uint32_t n) {
    uint64_t m = (uint64_t)next32(s) * n;
    uint32_t lo = (uint32_t)m;
    if (lo < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (lo < t) {
            m = (uint64_t)next32(s) * n;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

int fv_vmix_alloc_uniform(uint8_t *out, const uint8_t *in, int c, int h, int w, int s,
                          const uint8_t key[FV_VMIX_ALLOC_KEY_BYTES], fv_err *e) {
    if (s < 1) return fv_err_set(e, "window size must be >= 1 (got %d)", s);
    FV_ASSERT(c >= 1 && h >= 1 && w >= 1 && out != in);
    if (sodium_init() < 0) FV_ASSERT(!"sodium_init failed");
    stream st = {{0}, NULL, (size_t)4 * c * h * w + 64, 0, 0};
    memcpy(st.key, key, 32);
    st.buf = fv_malloc(st.len);
    refill(&st);
    uint8_t *win = fv_malloc((size_t)s * s);
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *ip = in + (size_t)ch * h * w;
        uint8_t *op = out + (size_t)ch * h * w;
        for (int y0 = 0; y0 < h; y0 += s)
            for (int x0 = 0; x0 < w; x0 += s) {
                int wh = h - y0 < s ? h - y0 : s, ww = w - x0 < s ? w - x0 : s, n = wh * ww;
                for (int y = 0; y < wh; y++) memcpy(win + y * ww, ip + (size_t)(y0 + y) * w + x0, (size_t)ww);
                for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
                    int j = (int)below(&st, (uint32_t)(i + 1));
                    uint8_t t = win[i];
                    win[i] = win[j];
                    win[j] = t;
                }
                for (int y = 0; y < wh; y++) memcpy(op + (size_t)(y0 + y) * w + x0, win + y * ww, (size_t)ww);
            }
    }
    sodium_memzero(st.key, sizeof st.key);
    free(win);
    free(st.buf);
    return 0;
}

void fv_vmix_alloc_seed_key(uint8_t key[FV_VMIX_ALLOC_KEY_BYTES], uint64_t seed, int split, uint64_t index) {
    uint8_t b[24];
    uint64_t v[3] = {seed, (uint64_t)split, index};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 8; i++) b[8 * k + i] = (uint8_t)(v[k] >> (8 * i));
    crypto_generichash(key, FV_VMIX_ALLOC_KEY_BYTES, b, sizeof b, NULL, 0);
}
