/* secagg.c: see secagg.h. Arithmetic in GF(2^61 - 1) with 128-bit products; every keystream is
 * ChaCha20 (IETF, zero nonce) under a 32-byte seed, read little-endian. Secrets on the stack and
 * on the heap (coefficients, plaintexts, keystreams, X25519 outputs) are wiped before return. */
#include "fl/secagg.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define P61 ((UINT64_C(1) << 61) - 1)
#define CHUNKS 5                /* field elements per 32-byte secret */
#define CHUNK_BYTES 7           /* bytes of the secret per element; the last holds the 4 left */
#define LAST_CHUNK_BYTES (FV_SA_KEY_BYTES - (CHUNKS - 1) * CHUNK_BYTES)
#define PRG_WORDS 4096          /* keystream words per block of fv_sa_mask_add (a multiple of 16) */
#define FRAC_MAX 30             /* fv_sa_frac_bits's cap */
#define NONCE_BYTES crypto_box_NONCEBYTES
#define PLAIN_BYTES (12 + 2 * FV_SA_SHARE_BYTES) /* from, to, round, share of b, share of s_sk */

_Static_assert(FV_SA_BOX_BYTES == NONCE_BYTES + PLAIN_BYTES + crypto_box_MACBYTES, "box layout");
_Static_assert(FV_SA_SHARE_BYTES == 8 * CHUNKS, "share layout");
_Static_assert(FV_SA_KEY_BYTES == crypto_box_PUBLICKEYBYTES && FV_SA_KEY_BYTES == crypto_box_SECRETKEYBYTES &&
                   FV_SA_KEY_BYTES == crypto_scalarmult_BYTES &&
                   FV_SA_KEY_BYTES == crypto_stream_chacha20_ietf_KEYBYTES,
               "32-byte keys and seeds");

typedef unsigned __int128 u128;

static uint32_t load32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void store32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t load64(const uint8_t *p) { return (uint64_t)load32(p) | (uint64_t)load32(p + 4) << 32; }
static void store64(uint8_t *p, uint64_t v) {
    store32(p, (uint32_t)v);
    store32(p + 4, (uint32_t)(v >> 32));
}

/* ---- GF(2^61 - 1): elements in [0, p) ---- */

/* v mod p for v < 2^122 (2^61 = 1 mod p). */
static uint64_t f_reduce(u128 v) {
    uint64_t r = (uint64_t)(v & P61) + (uint64_t)(v >> 61); /* < 2^62 */
    r = (r & P61) + (r >> 61);                              /* <= p + 1 */
    return r >= P61 ? r - P61 : r;
}
static uint64_t f_mul(uint64_t a, uint64_t b) { return f_reduce((u128)a * b); }
static uint64_t f_add(uint64_t a, uint64_t b) {
    uint64_t s = a + b;
    return s >= P61 ? s - P61 : s;
}
static uint64_t f_sub(uint64_t a, uint64_t b) { return a >= b ? a - b : a + P61 - b; }
/* a^(p-2) = 1/a for a != 0 (Fermat). */
static uint64_t f_inv(uint64_t a) {
    uint64_t r = 1, e = P61 - 2;
    for (; e; e >>= 1, a = f_mul(a, a))
        if (e & 1) r = f_mul(r, a);
    return r;
}
/* Uniform in [0, p): 61 random bits, p itself rejected. */
static uint64_t f_random(void) {
    uint64_t v;
    do {
        randombytes_buf(&v, sizeof v);
        v &= P61;
    } while (v == P61);
    return v;
}

static size_t chunk_bytes(int c) { return c < CHUNKS - 1 ? CHUNK_BYTES : LAST_CHUNK_BYTES; }

static void secret_to_chunks(const uint8_t *secret, uint64_t chunk[CHUNKS]) {
    for (int c = 0; c < CHUNKS; c++) {
        chunk[c] = 0;
        for (size_t i = chunk_bytes(c); i-- > 0;) chunk[c] = chunk[c] << 8 | secret[c * CHUNK_BYTES + i];
    }
}

/* ---- the PRG ---- */

/* Bytes [64 block, 64 block + len) of seed's keystream. */
static void keystream(const uint8_t seed[FV_SA_KEY_BYTES], uint32_t block, uint8_t *out, size_t len) {
    static const uint8_t zero_nonce[crypto_stream_chacha20_ietf_NONCEBYTES];
    memset(out, 0, len);
    crypto_stream_chacha20_ietf_xor_ic(out, out, (unsigned long long)len, zero_nonce, block, seed);
}

void fv_sa_client_init(fv_sa_client *k) {
    crypto_box_keypair(k->c_pk, k->c_sk);
    crypto_box_keypair(k->s_pk, k->s_sk);
    randombytes_buf(k->b, sizeof k->b);
}

typedef struct {
    uint32_t id;
    int idx;
} ring_slot;

static int slot_by_id(const void *a, const void *b) {
    uint32_t x = ((const ring_slot *)a)->id, y = ((const ring_slot *)b)->id;
    return (x > y) - (x < y);
}
static int by_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int fv_sa_neighbours(const uint32_t *ids, int n, const uint8_t seed[FV_SA_KEY_BYTES], int k, int self,
                     int *out) {
    FV_ASSERT(n >= 1 && self >= 0 && self < n);
    if (k < 0 || (k < n - 1 && k % 2)) return -1;
    ring_slot *r = fv_malloc((size_t)n * sizeof *r);
    for (int i = 0; i < n; i++) r[i] = (ring_slot){ids[i], i};
    qsort(r, (size_t)n, sizeof *r, slot_by_id);
    for (int i = 1; i < n; i++)
        if (r[i].id == r[i - 1].id) {
            free(r);
            return -1;
        }
    int c = 0;
    if (k == 0 || k >= n - 1) {
        for (int i = 0; i < n; i++)
            if (i != self) out[c++] = i;
        free(r);
        return c;
    }
    /* n >= 3 here (0 < k < n - 1): Fisher-Yates as in the header */
    uint8_t *ks = fv_malloc(8 * (size_t)(n - 1));
    keystream(seed, 0, ks, 8 * (size_t)(n - 1));
    for (int i = n - 1; i >= 1; i--) {
        size_t j = (size_t)(load64(ks + 8 * (size_t)(n - 1 - i)) % (uint64_t)(i + 1));
        ring_slot t = r[i];
        r[i] = r[j];
        r[j] = t;
    }
    free(ks);
    int pos = 0;
    while (r[pos].idx != self) pos++;
    for (int d = 1; d <= k / 2; d++) {
        out[c++] = r[(pos + d) % n].idx;
        out[c++] = r[(pos - d + n) % n].idx;
    }
    free(r);
    qsort(out, (size_t)c, sizeof *out, by_int);
    return c;
}

int fv_sa_threshold(int k, double frac) {
    FV_ASSERT(k >= 0 && frac > 0 && frac < 1);
    int t = (int)floor(frac * k) + 1;
    if (t > k) t = k;
    return t < 1 ? 1 : t;
}

void fv_sa_share(const uint8_t secret[FV_SA_KEY_BYTES], int t, int m, const uint64_t *x, uint8_t *shares) {
    FV_ASSERT(t >= 1 && t <= m);
    for (int j = 0; j < m; j++) {
        FV_ASSERT(x[j] >= 1 && x[j] < P61);
        for (int i = 0; i < j; i++) FV_ASSERT(x[i] != x[j]);
    }
    uint64_t chunk[CHUNKS];
    secret_to_chunks(secret, chunk);
    uint64_t *coef = fv_malloc((size_t)t * sizeof *coef); /* the polynomial of one chunk, coef[0] its value */
    for (int c = 0; c < CHUNKS; c++) {
        coef[0] = chunk[c];
        for (int i = 1; i < t; i++) coef[i] = f_random();
        for (int j = 0; j < m; j++) {
            uint64_t y = coef[t - 1];
            for (int i = t - 2; i >= 0; i--) y = f_add(f_mul(y, x[j]), coef[i]);
            store64(shares + (size_t)j * FV_SA_SHARE_BYTES + 8 * c, y);
        }
    }
    sodium_memzero(coef, (size_t)t * sizeof *coef);
    sodium_memzero(chunk, sizeof chunk);
    free(coef);
}

int fv_sa_reconstruct(const uint64_t *x, const uint8_t *shares, int m, int t, uint8_t secret[FV_SA_KEY_BYTES]) {
    sodium_memzero(secret, FV_SA_KEY_BYTES);
    if (t < 1 || m < t) return -1;
    for (int j = 0; j < t; j++) {
        if (x[j] < 1 || x[j] >= P61) return -1;
        for (int i = 0; i < j; i++)
            if (x[i] == x[j]) return -1;
        for (int c = 0; c < CHUNKS; c++)
            if (load64(shares + (size_t)j * FV_SA_SHARE_BYTES + 8 * c) >= P61) return -1;
    }
    /* lambda_j = L_j(0) = prod over i != j of x_i / (x_i - x_j) */
    uint64_t *lambda = fv_malloc((size_t)t * sizeof *lambda);
    for (int j = 0; j < t; j++) {
        uint64_t num = 1, den = 1;
        for (int i = 0; i < t; i++)
            if (i != j) {
                num = f_mul(num, x[i]);
                den = f_mul(den, f_sub(x[i], x[j]));
            }
        lambda[j] = f_mul(num, f_inv(den));
    }
    uint64_t chunk[CHUNKS];
    int rc = 0;
    for (int c = 0; c < CHUNKS; c++) {
        chunk[c] = 0;
        for (int j = 0; j < t; j++)
            chunk[c] = f_add(chunk[c], f_mul(lambda[j], load64(shares + (size_t)j * FV_SA_SHARE_BYTES + 8 * c)));
        if (chunk[c] >> (8 * chunk_bytes(c))) rc = -1;
    }
    if (rc == 0)
        for (int c = 0; c < CHUNKS; c++)
            for (size_t i = 0; i < chunk_bytes(c); i++) secret[c * CHUNK_BYTES + i] = (uint8_t)(chunk[c] >> (8 * i));
    sodium_memzero(chunk, sizeof chunk);
    free(lambda);
    return rc;
}

int fv_sa_seal(const fv_sa_client *from_keys, uint32_t from, uint32_t to, uint32_t round,
               const uint8_t to_c_pk[FV_SA_KEY_BYTES], const uint8_t *share_b, const uint8_t *share_s,
               uint8_t *box) {
    uint8_t plain[PLAIN_BYTES];
    store32(plain, from);
    store32(plain + 4, to);
    store32(plain + 8, round);
    memcpy(plain + 12, share_b, FV_SA_SHARE_BYTES);
    memcpy(plain + 12 + FV_SA_SHARE_BYTES, share_s, FV_SA_SHARE_BYTES);
    randombytes_buf(box, NONCE_BYTES);
    int rc = crypto_box_easy(box + NONCE_BYTES, plain, sizeof plain, box, to_c_pk, from_keys->c_sk);
    sodium_memzero(plain, sizeof plain);
    return rc == 0 ? 0 : -1;
}

int fv_sa_open(const fv_sa_client *to_keys, uint32_t from, uint32_t to, uint32_t round,
               const uint8_t from_c_pk[FV_SA_KEY_BYTES], const uint8_t *box, uint8_t *share_b, uint8_t *share_s) {
    uint8_t plain[PLAIN_BYTES];
    if (crypto_box_open_easy(plain, box + NONCE_BYTES, FV_SA_BOX_BYTES - NONCE_BYTES, box, from_c_pk,
                             to_keys->c_sk) != 0)
        return -1;
    int ok = load32(plain) == from && load32(plain + 4) == to && load32(plain + 8) == round;
    if (ok) {
        memcpy(share_b, plain + 12, FV_SA_SHARE_BYTES);
        memcpy(share_s, plain + 12 + FV_SA_SHARE_BYTES, FV_SA_SHARE_BYTES);
    }
    sodium_memzero(plain, sizeof plain);
    return ok ? 0 : -1;
}

int fv_sa_agree(const uint8_t my_s_sk[FV_SA_KEY_BYTES], const uint8_t my_s_pk[FV_SA_KEY_BYTES],
                const uint8_t peer_s_pk[FV_SA_KEY_BYTES], uint32_t round, uint8_t seed[FV_SA_KEY_BYTES]) {
    uint8_t shared[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(shared, my_s_sk, peer_s_pk) != 0 || sodium_is_zero(shared, sizeof shared)) {
        sodium_memzero(shared, sizeof shared);
        return -1;
    }
    int mine_first = memcmp(my_s_pk, peer_s_pk, FV_SA_KEY_BYTES) <= 0;
    uint8_t r[4];
    store32(r, round);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, FV_SA_KEY_BYTES);
    crypto_generichash_update(&st, shared, sizeof shared);
    crypto_generichash_update(&st, mine_first ? my_s_pk : peer_s_pk, FV_SA_KEY_BYTES);
    crypto_generichash_update(&st, mine_first ? peer_s_pk : my_s_pk, FV_SA_KEY_BYTES);
    crypto_generichash_update(&st, r, sizeof r);
    crypto_generichash_final(&st, seed, FV_SA_KEY_BYTES);
    sodium_memzero(shared, sizeof shared);
    sodium_memzero(&st, sizeof st);
    return 0;
}

int fv_sa_key_matches(const uint8_t sk[FV_SA_KEY_BYTES], const uint8_t pk[FV_SA_KEY_BYTES]) {
    uint8_t q[FV_SA_KEY_BYTES];
    return crypto_scalarmult_base(q, sk) == 0 && sodium_memcmp(q, pk, FV_SA_KEY_BYTES) == 0;
}

void fv_sa_mask_add(uint32_t *y, size_t n, const uint8_t seed[FV_SA_KEY_BYTES], int sign) {
    FV_ASSERT(sign == 1 || sign == -1);
    FV_ASSERT(n == 0 || (uint64_t)(n - 1) / 16 <= UINT32_MAX);
    uint8_t ks[4 * PRG_WORDS];
    for (size_t i = 0; i < n; i += PRG_WORDS) {
        size_t w = n - i < PRG_WORDS ? n - i : PRG_WORDS;
        keystream(seed, (uint32_t)(i / 16), ks, 4 * w);
        if (sign > 0)
            for (size_t j = 0; j < w; j++) y[i + j] += load32(ks + 4 * j);
        else
            for (size_t j = 0; j < w; j++) y[i + j] -= load32(ks + 4 * j);
    }
    sodium_memzero(ks, sizeof ks);
}

int fv_sa_frac_bits(double clip, double total_weight) {
    if (!(isfinite(clip) && clip > 0 && isfinite(total_weight) && total_weight > 0)) return -1;
    double range = clip * total_weight;
    for (int f = FRAC_MAX; f >= FV_SA_MIN_FRAC; f--)
        if (ldexp(range, f) <= (double)INT32_MAX) return f;
    return -1;
}

size_t fv_sa_encode(const float *x, const float *base, size_t n, double weight, double clip, int f, uint32_t *y) {
    FV_ASSERT(weight > 0 && clip > 0 && f >= 0 && f <= FRAC_MAX);
    double scale = ldexp(weight, f), bound = floor(clip * scale);
    FV_ASSERT(bound <= (double)INT32_MAX);
    size_t clamped = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)base[i];
        if (isnan(d)) {
            d = 0;
            clamped++;
        } else if (d > clip) {
            d = clip;
            clamped++;
        } else if (d < -clip) {
            d = -clip;
            clamped++;
        }
        double v = fmin(fmax(rint(d * scale), -bound), bound);
        y[i] = (uint32_t)(int64_t)v;
    }
    return clamped;
}

void fv_sa_decode(const uint32_t *s, size_t n, int f, double total_weight, const float *base, float *out) {
    FV_ASSERT(total_weight > 0 && f >= 0);
    double scale = ldexp(total_weight, f);
    for (size_t i = 0; i < n; i++) {
        int64_t v = s[i] >= UINT32_C(0x80000000) ? (int64_t)s[i] - (INT64_C(1) << 32) : (int64_t)s[i];
        out[i] = (float)((double)base[i] + (double)v / scale);
    }
}

int fv_sa_mask_input(uint32_t *y, size_t n, const fv_sa_client *me, uint32_t me_id, uint32_t round,
                     const uint32_t *peer_ids, const uint8_t *peer_s_pk, int npeers) {
    fv_sa_mask_add(y, n, me->b, 1);
    uint8_t seed[FV_SA_KEY_BYTES];
    int rc = 0;
    for (int p = 0; p < npeers && rc == 0; p++) {
        if (peer_ids[p] == me_id ||
            fv_sa_agree(me->s_sk, me->s_pk, peer_s_pk + (size_t)p * FV_SA_KEY_BYTES, round, seed) != 0)
            rc = -1;
        else
            fv_sa_mask_add(y, n, seed, me_id < peer_ids[p] ? 1 : -1);
    }
    sodium_memzero(seed, sizeof seed);
    return rc;
}

void fv_sa_unmask_self(uint32_t *s, size_t n, const uint8_t b[FV_SA_KEY_BYTES]) { fv_sa_mask_add(s, n, b, -1); }

int fv_sa_unmask_dropped(uint32_t *s, size_t n, const uint8_t d_s_sk[FV_SA_KEY_BYTES],
                         const uint8_t d_s_pk[FV_SA_KEY_BYTES], uint32_t d_id, uint32_t round,
                         const uint32_t *surv_ids, const uint8_t *surv_s_pk, int nsurv) {
    if (!fv_sa_key_matches(d_s_sk, d_s_pk)) return -1;
    uint8_t seed[FV_SA_KEY_BYTES];
    int rc = 0;
    for (int v = 0; v < nsurv && rc == 0; v++) {
        if (surv_ids[v] == d_id ||
            fv_sa_agree(d_s_sk, d_s_pk, surv_s_pk + (size_t)v * FV_SA_KEY_BYTES, round, seed) != 0)
            rc = -1;
        else /* v added sign(v, d) PRG(seed): +1 when v < d */
            fv_sa_mask_add(s, n, seed, surv_ids[v] < d_id ? -1 : 1);
    }
    sodium_memzero(seed, sizeof seed);
    return rc;
}
