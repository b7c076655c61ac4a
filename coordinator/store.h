/* store.h: the coordinator's results folder, written so that a crash at any instant leaves it
 * consistent and resumable:
 *   metrics.jsonl        one JSON object per completed round (the whole file is rewritten
 *                        atomically after each round, before the checkpoint);
 *   checkpoint.safetensors  the global model after the last completed round, with that round, the
 *                        config hash and a hash of the parameters as metadata (written atomically;
 *                        it is the source of truth: on resume, metrics lines after its round are
 *                        dropped); with a server optimizer (shared/fl/server_opt.h) its state,
 *                        then with SCAFFOLD (shared/fl/scaffold.h) its control variate c, as
 *                        a second tensor "server_state" with its own hash, in the same file, so
 *                        model and state are committed together (this module only stores the
 *                        floats: the coordinator lays them out);
 *   client_state/c<id>_r<round>.safetensors  a client's state after <round>: its optimizer state
 *                        (training.opt_state = keep) or its SCAFFOLD control variate c_i ([fl]
 *                        aggregator = scaffold; the config allows one or the other, never both:
 *                        SCAFFOLD's plain SGD has no optimizer state); a version written during
 *                        round r is pending: r's checkpoint commits it, or, when r is rolled back
 *                        (no checkpoint of r will ever be written), fv_store_client_state_discard
 *                        deletes it, so a client's state never outlives the model it was trained
 *                        for; a committed version is deleted only after a later checkpoint commits
 *                        its successor, and versions newer than the checkpoint are deleted on resume.
 * summary.json and model.safetensors are written last by the coordinator; their presence means
 * the run completed.
 * Not here: the config and keys (written by the launcher), what a round does (coordinator.c).
 */
#ifndef FV_STORE_H
#define FV_STORE_H
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "fv_common.h"

typedef struct fv_store fv_store;

/* Open the results folder dir (must exist) for a run of n_clients clients. Caller owns. */
FV_MUST_USE fv_store *fv_store_open(const char *dir, int n_clients, fv_err *e);
void fv_store_close(fv_store **s);

/* Append one metrics line (a JSON object without newline) and rewrite metrics.jsonl atomically. */
FV_MUST_USE int fv_store_metrics_add(fv_store *s, const char *line, fv_err *e);

/* Resume: read metrics.jsonl keeping the lines of rounds <= upto (a missing file is empty). */
FV_MUST_USE int fv_store_metrics_load(fv_store *s, int upto, fv_err *e);

/* The metrics lines held (round order). */
int fv_store_metrics_count(const fv_store *s);
const char *fv_store_metrics_line(const fv_store *s, int i);

/* Save the global model params[n] after `round` and the server state[ns] (optimizer, SCAFFOLD; ns = 0:
 * none; state may then be NULL), then commit the client-state versions of that round (older
 * versions of those clients are deleted). Every pending version must be of `round` (a rolled-back
 * round's were discarded: fv_store_client_state_discard). */
FV_MUST_USE int fv_store_checkpoint(fv_store *s, int round, const float *params, size_t n, const float *state,
                                    size_t ns, const uint8_t config_hash[FV_HASH_BYTES], fv_err *e);

/* Load the checkpoint into params[n] and the server state[ns] (ns = 0: none, and a
 * checkpoint holding one is refused) and set *round. Returns 0, 1 when there is no checkpoint (a
 * run that never completed a round; state untouched), or -1 with e set: a damaged file, another
 * config (hash mismatch), another model or state size, or no checkpoint although metrics.jsonl
 * shows a round that was checkpointed (a lost checkpoint is not a fresh start). Also recovers the
 * client-state index: versions newer than the checkpoint are deleted, the newest version <= round
 * of each client is kept. */
FV_MUST_USE int fv_store_resume(fv_store *s, int *round, float *params, size_t n, float *state, size_t ns,
                                const uint8_t config_hash[FV_HASH_BYTES], fv_err *e);

/* Write a client's state (optimizer state with `steps`, or SCAFFOLD's c_i with steps 0) after `round`
 * (pending until the checkpoint of round). */
FV_MUST_USE int fv_store_client_state_save(fv_store *s, int client, int round, const float *state, size_t n,
                               uint64_t steps, fv_err *e);

/* A round rolled back: delete the client-state versions written since the last checkpoint (all
 * pending, of that round); each client's committed version stays its newest. Call it before the
 * round's metrics line: a crash before it resumes from the last checkpoint, which deletes those
 * versions anyway. Returns 0, or -1 with e set (a file that cannot be deleted: the run stops). */
FV_MUST_USE int fv_store_client_state_discard(fv_store *s, fv_err *e);

/* The client's newest committed state: *state (caller frees) of *n floats and *steps. Returns 0,
 * 1 when the client has none yet, -1 on a damaged file. */
FV_MUST_USE int fv_store_client_state_load(fv_store *s, int client, float **state, size_t *n, uint64_t *steps,
                               fv_err *e);

#endif
