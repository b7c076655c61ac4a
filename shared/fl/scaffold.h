/* scaffold.h: SCAFFOLD's control variates (Karimireddy et al. 2020, "SCAFFOLD: Stochastic
 * Controlled Averaging for Federated Learning", Algorithm 1 with option II): the arithmetic of
 * both sides. The model's own step is the aggregation rule's (aggregate.h, FV_AGGREGATOR_SCAFFOLD).
 *   Client i, from the global model x, the server's control variate c and its own c_i (zero
 *   before its first round): K = fv_agg_local_steps(E, B, n_i) local SGD steps
 *     y <- y - lr (g(y) + c - c_i)          (the trainer's correction argument: c - c_i),
 *   then c_i+ = c_i - c + (x - y) / (K lr); it uploads y and dc_i = c_i+ - c_i = (x - y) / (K lr) - c.
 *   Server, over the round's arrived clients S: x as the aggregation rule says,
 *     c <- c + (1 / N) sum_{i in S} dc_i  (N = fl.clients: c stays the mean of all c_i),
 *     c_i <- c_i + dc_i for each i in S.
 *   A client that does not arrive keeps its c_i and adds nothing to c. Only the trainable
 *   coordinates (the first n_train) have control variates: batch-norm buffers take no gradient step.
 * Where the state lives: the coordinator holds c (checkpoint.safetensors, after the server
 * optimizer's state) and every c_i (coordinator/store.h's client-state files, committed with the
 * checkpoint); each task carries c and c_i to the worker that trains the client and the update
 * returns dc_i. The workers keep nothing, so any worker may train any client: 1 or 3 workers,
 * and a run resumed from its checkpoint, give the same model bitwise.
 * Arithmetic: each coordinate in double from the float inputs, each result rounded once to float;
 * the server sums the round's dc_i in slot order (client id order), whatever order they arrive in.
 * Memory: the coordinator holds c, its value before the round (for a roll-back) and one dc per
 * slot of the round (m + 2 vectors of n_train floats); each c_i is read from its file when needed.
 * Not here: the model's aggregation (aggregate.h), the gradient step (nn/trainer.h), the files
 * (coordinator/store.h), the messages (proto/fedvim.proto, FRAME_CONTROL).
 */
#ifndef FV_SCAFFOLD_H
#define FV_SCAFFOLD_H
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

/* ---- the client's side ---- */

/* The gradient correction of a client's local steps: out[i] = c[i] - ci[i] for i < n (ci NULL:
 * zero, a client's first round). out may alias c. */
void fv_scaffold_correction(const float *c, const float *ci, size_t n, float *out);

/* The client's control delta after `steps` >= 1 local steps of learning rate lr > 0 from x to y:
 * dc[i] = (x[i] - y[i]) / (steps lr) - c[i] for i < n. The caller checks dc for non-finite values
 * (a step size near zero can overflow it). */
void fv_scaffold_client_delta(const float *x, const float *y, const float *c, size_t n, int64_t steps, double lr,
                              float *dc);

/* The server's new c_i of a client: out[i] = ci[i] + dc[i] (ci NULL: zero). out may alias ci. */
void fv_scaffold_client_update(const float *ci, const float *dc, size_t n, float *out);

/* ---- the server's side ---- */

typedef struct fv_scaffold fv_scaffold;

/* The server's control variate c = 0 for n_train >= 1 trainable coordinates and N = clients >= 1.
 * Aborts only on out-of-memory. Caller owns; free with fv_scaffold_destroy. */
fv_scaffold *fv_scaffold_new(size_t n_train, int clients);

/* Free s and set *s to NULL; accepts NULL and a NULL *s. */
void fv_scaffold_destroy(fv_scaffold **s);

/* c itself, n_train floats owned by s: read to send or checkpoint it, written to restore one (then
 * check it with fv_scaffold_check). */
float *fv_scaffold_c(fv_scaffold *s);
size_t fv_scaffold_len(const fv_scaffold *s);

/* Whether c (as restored from a file) is sound: every value finite. Returns 0, or -1 with e naming
 * the first bad index and `what` (the file). */
FV_MUST_USE int fv_scaffold_check(const fv_scaffold *s, const char *what, fv_err *e);

/* Start a round of m >= 0 slots: forgets the last round's deltas and its undo record. */
void fv_scaffold_begin(fv_scaffold *s, int m);

/* Slot s's (0 <= s < m) control delta dc[n_train] (copied; finite: the coordinator checked it).
 * At most once per slot (a second aborts). */
void fv_scaffold_put(fv_scaffold *s, int slot, const float *dc);

/* Slot s's delta as put this round, or NULL when it was not. */
const float *fv_scaffold_delta(const fv_scaffold *s, int slot);

/* Close the round: c += (1 / N) sum of the put deltas in slot order (in double, rounded once);
 * keeps c as it was for fv_scaffold_undo. Returns 0, or -1 when the new c holds a non-finite
 * value (a sum of huge finite deltas): the caller rolls the round back with fv_scaffold_undo. */
FV_MUST_USE int fv_scaffold_end(fv_scaffold *s);

/* Put c back to what it was before this round's fv_scaffold_end (nothing when it was not called). */
void fv_scaffold_undo(fv_scaffold *s);

#endif
