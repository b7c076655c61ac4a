/* secagg_server.h: the coordinator's side of one round of secure aggregation ([secagg],
 * docs/secagg.md; the protocol and its arithmetic: shared/fl/secagg.h). It holds what the server
 * may learn (public keys, the sealed boxes it only routes, the sum of the masked inputs, the
 * revealed shares) and checks every answer against the round's state before keeping it: a wrong
 * answer is refused with a message and changes nothing. It knows no sockets: coordinator.c turns
 * its state into messages. Clients are named by their slot in the round (0..n-1, the
 * coordinator's order) and carry their client ids.
 * A round: begin; put_keys per slot, end_keys (U1, the graph); put_shares per slot, end_shares
 * (U2, each slot's inbox); put_input per slot, end_inputs (U3 = survivors, U2 \ U3 = dropped);
 * put_reveals per survivor; finish (rebuild, unmask, decode).
 */
#ifndef FV_SECAGG_SERVER_H
#define FV_SECAGG_SERVER_H
#include <stddef.h>
#include <stdint.h>

#include "fl/secagg.h"
#include "fv_common.h"

typedef struct fv_sa_server fv_sa_server;

/* For models of n_params values. Caller frees with fv_sa_server_free. */
fv_sa_server *fv_sa_server_new(size_t n_params);
void fv_sa_server_free(fv_sa_server **s);

/* Start a round: the cohort ids[0..n) with weights w (sample counts, > 0), [secagg] neighbours
 * k_cfg and threshold fraction frac, and clip. The fixed point's fractional bits follow from clip
 * and the cohort's total weight (fv_sa_frac_bits). Returns 0, or -1 with e set when no 32-bit
 * fixed point fits. */
FV_MUST_USE int fv_sa_server_begin(fv_sa_server *s, uint32_t round, const int *ids, const double *w, int n, int k_cfg,
                                   double frac, double clip, fv_err *e);
int fv_sa_server_frac_bits(const fv_sa_server *s);

/* KEYS: slot's public keys (once). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_sa_server_put_keys(fv_sa_server *s, int slot, const uint8_t c_pk[FV_SA_KEY_BYTES],
                                      const uint8_t s_pk[FV_SA_KEY_BYTES], fv_err *e);

/* End KEYS: U1 is the slots that sent keys; draws the graph's seed, fixes the degree k (k_cfg, or
 * every other client of U1 when 0 or larger) and the threshold t = fv_sa_threshold(k + 1, frac)
 * over each client's k + 1 holders (its neighbours and itself); frac >= 0.5 makes t more than half
 * of them, which the clients demand.
 * Returns |U1|. */
int fv_sa_server_end_keys(fv_sa_server *s);

/* The roster of U1 for a SHARES request: *ids, *c_pk, *s_pk point into the server (valid until
 * the next begin); returns |U1|. Also the graph seed, k and t. */
int fv_sa_server_roster(const fv_sa_server *s, const uint32_t **ids, const uint8_t **c_pk, const uint8_t **s_pk);
const uint8_t *fv_sa_server_graph_seed(const fv_sa_server *s);
int fv_sa_server_k(const fv_sa_server *s);
int fv_sa_server_t(const fv_sa_server *s);
/* Whether slot is in U1, U2, U3 (level 1, 2, 3). */
int fv_sa_server_in(const fv_sa_server *s, int slot, int level);

/* SHARES: slot's boxes, one to each of its neighbours (to[j], boxes + j * FV_SA_BOX_BYTES), once.
 * Refused: slot not in U1, a box to a non-neighbour or twice, a neighbour missing. */
FV_MUST_USE int fv_sa_server_put_shares(fv_sa_server *s, int slot, const uint32_t *to, const uint8_t *boxes, int n,
                                        fv_err *e);

/* End SHARES: U2 is the slots of U1 whose boxes arrived. Returns |U2|. */
int fv_sa_server_end_shares(fv_sa_server *s);

/* The boxes sealed to slot (in U2) by its neighbours in U2: *from (caller frees) and *boxes
 * (caller frees, FV_SA_BOX_BYTES each); returns their number. */
int fv_sa_server_inbox(const fv_sa_server *s, int slot, uint32_t **from, uint8_t **boxes);

/* INPUT: slot's masked input y[0..n_params) (slot in U2, once) is added to the sum mod 2^32. */
FV_MUST_USE int fv_sa_server_put_input(fv_sa_server *s, int slot, const uint32_t *y, fv_err *e);

/* End INPUT: U3 = slots whose input arrived. Writes the client ids of the survivors and of the
 * dropped (U2 \ U3) into *surv, *drop (caller frees). */
void fv_sa_server_end_inputs(fv_sa_server *s, uint32_t **surv, int *ns, uint32_t **drop, int *nd);

/* UNMASK: survivor slot's reveals (owner[j], self_mask[j], shares + j * FV_SA_SHARE_BYTES),
 * once; the slot itself may be an owner (its own share of b). Refused: slot not in U3; an owner
 * that did not seal a box to slot; a share of b for a dropped owner or of s_sk for a survivor; an
 * owner twice. */
FV_MUST_USE int fv_sa_server_put_reveals(fv_sa_server *s, int slot, const uint32_t *owner, const int *self_mask,
                                         const uint8_t *shares, int n, fv_err *e);

/* Rebuild every survivor's b and every dropped client's s_sk from t revealed shares, remove the
 * masks and decode: out = base + the survivors' weighted mean delta. *clients_unmasked gets
 * |U3|. Returns 0, or -1 with e set (too few shares for a client, a rebuilt key that does not
 * match its public key, U3 empty). */
FV_MUST_USE int fv_sa_server_finish(fv_sa_server *s, const float *base, float *out, fv_err *e);

/* After a successful finish: the unmasked sum (n_params words, read-only, valid until the next
 * begin) and the survivors' total weight. */
const uint32_t *fv_sa_server_sum(const fv_sa_server *s, double *total_weight);

#endif
