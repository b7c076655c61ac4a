/* secagg.h: the arithmetic and cryptography of secure aggregation ([secagg], docs/secagg.md):
 * pairwise masking after Bonawitz et al. (CCS 2017) with SecAgg+ neighbourhoods (Bell et al.,
 * CCS 2020), so the coordinator learns only the sum of the updates of the clients that finished.
 *
 * One round, for a client u with neighbours N(u) (a random Harary graph over the clients that
 * advertised keys: fv_sa_neighbours):
 *   keys    u draws two X25519 key pairs: c (to encrypt shares to its neighbours) and s (to agree
 *           a mask seed with each neighbour), and a self-mask seed b_u (fv_sa_client_init).
 *   shares  u splits b_u and s_sk_u into Shamir shares, threshold t, one per neighbour v at x = v+1
 *           (fv_sa_share), and seals each pair of shares to v (fv_sa_seal: crypto_box, the ids and
 *           the round inside the authenticated plaintext).
 *   input   u sends y_u = encode(update) + PRG(b_u) + sum over the neighbours v that sent it shares
 *           of sign(u,v) PRG(s_uv), mod 2^32 (fv_sa_mask_input); s_uv = fv_sa_agree(...) is the same
 *           seed on both sides and sign(u,v) = +1 when u < v, -1 otherwise, so the pairwise masks
 *           cancel in the sum.
 *   unmask  for each survivor u the coordinator rebuilds b_u from t shares and removes PRG(b_u)
 *           (fv_sa_unmask_self); for each client d that sent shares but no input it rebuilds
 *           s_sk_d and removes d's pairwise masks with the survivors (fv_sa_unmask_dropped).
 *           An honest client reveals, for each neighbour, the share of b or of s_sk, never both.
 * Fixed point: a client's delta x - base, clamped to [-clip, clip] and multiplied by its weight
 * (its sample count) and 2^f, is rounded to an int32 (fv_sa_encode); f is chosen so that the sum
 * over the cohort cannot overflow (fv_sa_frac_bits). Masks are ChaCha20 keystreams (libsodium,
 * crypto_stream_chacha20_ietf, zero nonce, one seed per round and pair) read as little-endian
 * uint32 words.
 * Shamir's field is GF(2^61 - 1): a 32-byte secret is 5 elements of 7 bytes (the last holds 4),
 * each shared with its own random polynomial of degree t - 1; a share is 5 elements of 8 bytes
 * (little-endian), FV_SA_SHARE_BYTES in all.
 * Not here: who sends what to whom (coordinator/, worker/, proto/fedvim.proto).
 */
#ifndef FV_SECAGG_H
#define FV_SECAGG_H
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

#define FV_SA_KEY_BYTES 32   /* X25519 keys, mask seeds, b_u */
#define FV_SA_SHARE_BYTES 40 /* one Shamir share of a 32-byte secret */
/* A sealed pair of shares: nonce (24) || crypto_box_easy of from, to, round (3 x uint32 LE),
 * share of b, share of s_sk (2 x FV_SA_SHARE_BYTES), with its 16-byte MAC. */
#define FV_SA_BOX_BYTES (24 + 12 + 2 * FV_SA_SHARE_BYTES + 16)
#define FV_SA_MIN_FRAC 8     /* fewer fractional bits than this: refuse (the range is too wide) */
/* A client's masked input in a run is the model's n values, then FV_SA_STATS words of its
 * training statistics, so that the server learns those only summed too: its sample count n times
 * its last epoch's mean loss (clamped to [0, FV_SA_LOSS_MAX]) and times its accuracy, both in
 * fixed point with the round's statistics bits g (fv_sa_frac_bits(FV_SA_LOSS_MAX, total)), then
 * the number of its clamped delta coordinates (an integer). */
#define FV_SA_STATS 3
#define FV_SA_LOSS_MAX 16.0

/* One client's secrets for one round (wipe with sodium_memzero when done). */
typedef struct {
    uint8_t c_pk[FV_SA_KEY_BYTES], c_sk[FV_SA_KEY_BYTES]; /* encryption of shares */
    uint8_t s_pk[FV_SA_KEY_BYTES], s_sk[FV_SA_KEY_BYTES]; /* mask agreement */
    uint8_t b[FV_SA_KEY_BYTES];                           /* self-mask seed */
} fv_sa_client;

/* Fresh random keys and b (libsodium's randombytes; sodium_init must have run). */
void fv_sa_client_init(fv_sa_client *k);

/* The neighbours of ids[self] among ids[0..n) (distinct client ids, any order): with k == 0 or
 * k >= n - 1 all the others; else a Harary graph H(k, n) (k even) over a random ring order of
 * the ids drawn from seed: the k/2 ids on either side of ids[self] on the ring. The ring: the ids
 * in increasing order, then Fisher-Yates with the ChaCha20 (IETF, zero nonce) keystream of seed
 * read as little-endian uint64 words w_0, w_1, ...: for i = n-1 down to 1, swap slots i and
 * w_(n-1-i) mod (i+1) (plain reduction, no rejection sampling: a bias below (i+1)/2^64).
 * Writes the neighbours' indices into ids (not the ids) to out (room for n - 1), in increasing
 * index order, and returns their number (<= n - 1); -1 when an id repeats, or k is negative, or
 * odd and below n - 1 (ids and k may come from a peer). The graph depends on the set of ids, not
 * their order: the coordinator and every client compute the same one from (ids, seed, k). */
FV_MUST_USE int fv_sa_neighbours(const uint32_t *ids, int n, const uint8_t seed[FV_SA_KEY_BYTES], int k, int self,
                                 int *out);

/* The threshold for a neighbourhood of k clients and fraction frac in (0, 1): floor(frac k) + 1,
 * at most k (at least 1). */
int fv_sa_threshold(int k, double frac);

/* Shamir-share secret among m holders with threshold t (1 <= t <= m): holder j gets the share at
 * x = x[j] (distinct, 1 <= x[j] < 2^61 - 1; checked, abort otherwise), written to
 * shares + j * FV_SA_SHARE_BYTES. The polynomials' coefficients are uniform in the field:
 * randombytes masked to 61 bits, 2^61 - 1 itself rejected. */
void fv_sa_share(const uint8_t secret[FV_SA_KEY_BYTES], int t, int m, const uint64_t *x, uint8_t *shares);

/* Rebuild a secret from the first t of m shares (shares + j * FV_SA_SHARE_BYTES at x[j]; only
 * those t are read) by Lagrange interpolation at 0. Returns 0; -1 (secret zeroed) when t < 1 or
 * m < t, an x repeats or is out of range, a share holds a value outside the field, or an
 * interpolated element does not fit its chunk of the secret (7 bytes, 4 for the last): a bad share
 * or too few shares usually gives that, but not always (the secret then comes out wrong). With
 * fewer than the sharing's threshold the result is unrelated to the secret. */
FV_MUST_USE int fv_sa_reconstruct(const uint64_t *x, const uint8_t *shares, int m, int t,
                                  uint8_t secret[FV_SA_KEY_BYTES]);

/* Seal the pair of shares (share_b, share_s) from client `from` to client `to` for `round` with
 * from's c_sk and to's c_pk into box (FV_SA_BOX_BYTES, random nonce). Returns 0; -1 when to_c_pk
 * is refused by crypto_box (a low-order point: a peer's bad key), box then unspecified. */
FV_MUST_USE int fv_sa_seal(const fv_sa_client *from_keys, uint32_t from, uint32_t to, uint32_t round,
                           const uint8_t to_c_pk[FV_SA_KEY_BYTES], const uint8_t *share_b,
                           const uint8_t *share_s, uint8_t *box);

/* Open a box sealed by fv_sa_seal: to_keys are the recipient's; from_c_pk the sender's c_pk.
 * Returns 0 with the shares; -1 when the box does not authenticate or names another sender,
 * recipient or round (a forged or misrouted box). */
FV_MUST_USE int fv_sa_open(const fv_sa_client *to_keys, uint32_t from, uint32_t to, uint32_t round,
                           const uint8_t from_c_pk[FV_SA_KEY_BYTES], const uint8_t *box, uint8_t *share_b,
                           uint8_t *share_s);

/* The mask seed of a pair: BLAKE2b-256 of the X25519 shared secret || the two s_pk, the lower
 * (memcmp) first || the round (uint32 LE). my_s_pk must be my_s_sk's. Symmetric in the pair.
 * Returns 0, or -1 (seed unspecified) when the peer's key is a low-order point (X25519 gives all
 * zeros). */
FV_MUST_USE int fv_sa_agree(const uint8_t my_s_sk[FV_SA_KEY_BYTES], const uint8_t my_s_pk[FV_SA_KEY_BYTES],
                            const uint8_t peer_s_pk[FV_SA_KEY_BYTES], uint32_t round,
                            uint8_t seed[FV_SA_KEY_BYTES]);

/* 1 when pk is the X25519 public key of sk. */
int fv_sa_key_matches(const uint8_t sk[FV_SA_KEY_BYTES], const uint8_t pk[FV_SA_KEY_BYTES]);

/* y[i] += sign * PRG(seed)[i] mod 2^32 for i < n (sign +1 or -1; n <= 2^36, the IETF block
 * counter's range); the keystream is generated in blocks of 4096 words, never n words at once,
 * and is the same as the one-shot crypto_stream_chacha20_ietf(seed, zero nonce). */
void fv_sa_mask_add(uint32_t *y, size_t n, const uint8_t seed[FV_SA_KEY_BYTES], int sign);

/* The largest f <= 30 such that clip * total_weight * 2^f <= 2^31 - 1 (no sum of clamped,
 * weighted deltas overflows an int32: total_weight must cover every client that may send an input,
 * so it is fixed before anyone drops), or -1 when that f is below FV_SA_MIN_FRAC or the inputs
 * are not positive and finite. */
int fv_sa_frac_bits(double clip, double total_weight);

/* y[i] = (uint32) lrint(clamp(x[i] - base[i], -clip, clip) * weight * 2^f) (the difference in
 * double), its magnitude then capped at floor(clip * weight * 2^f) so that rounding cannot push a
 * sum past fv_sa_frac_bits's bound (error <= 0.5 unit, < 1 unit within a unit of the clip). A NaN
 * difference counts as 0 and as clamped. Returns the number of clamped coordinates. Needs
 * weight > 0, clip > 0, clip * weight * 2^f <= 2^31 - 1. */
size_t fv_sa_encode(const float *x, const float *base, size_t n, double weight, double clip, int f, uint32_t *y);

/* out[i] = base[i] + (int32) s[i] / (2^f total_weight), in double, rounded once to float: the
 * weighted mean of the survivors' updates from the unmasked sum (total_weight: the survivors'
 * weights; out may be base). */
void fv_sa_decode(const uint32_t *s, size_t n, int f, double total_weight, const float *base, float *out);

/* Client me_id's masked input: y (already holding fv_sa_encode's words) += PRG(me->b) +
 * sum over the peers p of sign(me_id, peer_ids[p]) PRG(fv_sa_agree(me->s_sk, me->s_pk,
 * peer_s_pk + p * FV_SA_KEY_BYTES, round)). Returns 0, or -1 when a peer's key is refused by
 * fv_sa_agree or a peer id is me_id (y is then unspecified). */
FV_MUST_USE int fv_sa_mask_input(uint32_t *y, size_t n, const fv_sa_client *me, uint32_t me_id, uint32_t round,
                                 const uint32_t *peer_ids, const uint8_t *peer_s_pk, int npeers);

/* Remove a survivor's self mask from the sum: s -= PRG(b). */
void fv_sa_unmask_self(uint32_t *s, size_t n, const uint8_t b[FV_SA_KEY_BYTES]);

/* Remove a dropped client's pairwise masks from the sum: for each survivor v in surv (its id and
 * s_pk) that masked with d, s -= sign(v, d) PRG(seed_vd), the seed computed from d's rebuilt
 * s_sk. Returns 0; -1 when d_s_sk does not belong to d_s_pk (a bad share made a wrong key), a
 * key is refused or a survivor's id is d_id (s is then unspecified; on a wrong key, untouched). */
FV_MUST_USE int fv_sa_unmask_dropped(uint32_t *s, size_t n, const uint8_t d_s_sk[FV_SA_KEY_BYTES],
                                     const uint8_t d_s_pk[FV_SA_KEY_BYTES], uint32_t d_id, uint32_t round,
                                     const uint32_t *surv_ids, const uint8_t *surv_s_pk, int nsurv);

#endif
