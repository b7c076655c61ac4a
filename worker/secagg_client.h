/* secagg_client.h: a worker's side of secure aggregation ([secagg], docs/secagg.md): the secrets
 * of the clients it serves in the current round and the rules an honest client keeps. The
 * protocol and its arithmetic are shared/fl/secagg.h's; the messages are worker.c's.
 * A client's round, in order: keys (fresh key pairs and self-mask seed), shares (its neighbours
 * from the roster, its secrets shared and sealed to them), mask (it opens the shares sealed to it
 * and masks its encoded update with exactly those senders), unmask (once per round: for each
 * sender, the share of b when the sender survived, of s_sk when it dropped; never both). A new
 * round wipes the states of the one before (sodium_memzero). Every request that breaks the
 * order or the rules is refused with a message naming what is wrong; nothing here trusts the
 * coordinator beyond what the protocol lets it decide.
 */
#ifndef FV_SECAGG_CLIENT_H
#define FV_SECAGG_CLIENT_H
#include <stddef.h>
#include <stdint.h>

#include "fl/secagg.h"
#include "fv_common.h"

typedef struct fv_sa_worker fv_sa_worker;

/* An empty table. Caller frees with fv_sa_worker_free. */
fv_sa_worker *fv_sa_worker_new(void);

/* Wipes every secret and frees; accepts NULL; sets *w to NULL. */
void fv_sa_worker_free(fv_sa_worker **w);

/* KEYS: fresh keys and b for client in round (a later round than the table's wipes it first; an
 * earlier one is refused, and so is a client asked twice). Writes its public keys. Returns 0 or
 * -1 with e set. */
FV_MUST_USE int fv_sa_worker_keys(fv_sa_worker *w, uint32_t round, uint32_t client, uint8_t c_pk[FV_SA_KEY_BYTES],
                                  uint8_t s_pk[FV_SA_KEY_BYTES], fv_err *e);

/* SHARES: the roster (ids[j] with c_pk and s_pk at j * FV_SA_KEY_BYTES, n entries, distinct ids,
 * the client itself among them with the keys it advertised), the graph's seed, degree k and
 * threshold t: client's neighbours (fv_sa_neighbours), its b and s_sk shared among them and itself
 * (x = id + 1; t of those shares rebuild a secret) and sealed to each neighbour; it keeps its own
 * share of b. *to and *boxes (caller frees) get *nbox entries (FV_SA_BOX_BYTES each).
 * Refused: an unknown client, a second call, a roster without the client or with its keys changed,
 * repeated ids, t outside (h/2, h] for its h = neighbours + 1 holders (a t of half or less would
 * let a server that gives different holders different lists of the dropped rebuild both of the
 * client's secrets). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_sa_worker_shares(fv_sa_worker *w, uint32_t round, uint32_t client, const uint32_t *ids,
                                    const uint8_t *c_pk, const uint8_t *s_pk, int n,
                                    const uint8_t seed[FV_SA_KEY_BYTES], int k, int t, uint32_t **to,
                                    uint8_t **boxes, int *nbox, fv_err *e);

/* MASK: open the boxes sealed to client (from[j], boxes + j * FV_SA_BOX_BYTES), keep their shares
 * and add to y[0..n) (already fv_sa_encode's words) PRG(b) and the pairwise masks with exactly
 * those senders. Refused: a sender that is not a neighbour, a repeated sender, fewer senders than
 * t - 1 (the round could not be unmasked), a box that does not open, a second call. Returns 0 or
 * -1 with e set. */
FV_MUST_USE int fv_sa_worker_mask(fv_sa_worker *w, uint32_t round, uint32_t client, const uint32_t *from,
                                  const uint8_t *boxes, int nbox, uint32_t *y, size_t n, fv_err *e);

/* UNMASK: the round's survivors and dropped clients. For each sender of client's boxes that is
 * listed: the share of its b when it survived, of its s_sk when it dropped (a sender in neither
 * list gets nothing); last, its own share of its b. *owner, *self_mask and *shares (FV_SA_SHARE_BYTES each; caller frees) get
 * *nrev entries. Refused: client not a survivor or not masked, an id in both lists, a second
 * call for the round (a server asking again with other lists could collect both shares of one
 * client), fewer than 3 survivors in all or fewer than t among client's senders and itself (the
 * sum of so few would say too much of each). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_sa_worker_unmask(fv_sa_worker *w, uint32_t round, uint32_t client, const uint32_t *surv, int ns,
                                    const uint32_t *drop, int nd, uint32_t **owner, int **self_mask,
                                    uint8_t **shares, int *nrev, fv_err *e);

#endif
