/* coordinator.h: the federated-learning server. It holds the only global model (one float
 * vector), samples clients each round, hands their training to workers as tasks over a ROUTER
 * socket, checks every update (signature, task, round, shape, sample count, finiteness),
 * aggregates accepted updates in client-id order (FedAvg, or DP-FedAvg with [dp]: the rules are
 * shared/fl/aggregate.h), evaluates, and records each round in the results folder (store.h) so a
 * crashed run resumes to the identical final model.
 *
 * Faults: a worker that stays silent past fl.worker_timeout is dead and its clients go back to
 * the queue for the live workers; at fl.round_timeout the clients still unfinished are dropped
 * (counted in `dropped`); fewer than fl.min_clients updates fail the round cleanly (the run
 * stops, the results folder still holds the last completed round). Every rejected message is
 * logged with its reason and the sender; a worker is banned after security.max_strikes.
 * Insiders (a worker with a valid key): every kind of misbehaviour is a strike against that
 * worker only: a rejected update (its client then goes to another worker), joins or messages
 * over the per-peer budgets, messages it does not take (sends never wait), an update that made
 * the aggregate unsound. [fl] max_update_norm bounds update - global (norm_action clip or
 * reject). A round whose new model is unsound (non-finite parameters or test loss) is rolled
 * back to the model before it and not checkpointed, and leaves no client state (its clients'
 * optimizer states or SCAFFOLD c_i are those before it). A worker's "cannot serve this experiment"
 * ends its part; with no worker left the run stops with a summary.json of status "stopped" and
 * its stop_reason. A client whose training diverged (reported by its worker) is skipped for the
 * round, without a strike.
 * metrics.jsonl, one object per completed round: round; test_accuracy, test_loss (null when the
 * round was not evaluated, see fl.eval_every); with VisualMixer test_accuracy_mixed,
 * test_loss_mixed and vfe_clients (sample-weighted mean VFE of the contributing clients' mixed
 * shards); clients (accepted updates), samples (their images), sampled, dropped, reassigned,
 * rejected (messages refused this round), diverged (clients whose training diverged, skipped),
 * clipped (updates scaled to fl.max_update_norm), rolled_back (and, when true,
 * rolled_back_clients: the clients blamed); bytes_up, bytes_down (all bytes the coordinator
 * received and sent, routing ids excluded); seconds (the whole round, evaluation included);
 * train_loss, train_accuracy (sample-weighted means of the clients' last local epoch);
 * client_seconds_max (slowest client's local training), worker_busy_max (the busiest worker's
 * summed client work, divided by [fl] worker_slots: its slots train at once, so this estimates
 * the critical path), overhead_seconds (round without evaluation minus worker_busy_max),
 * aggregate_seconds, eval_seconds, mix_seconds (offline mixing done this round); workers (alive);
 * with [dp]: dp_clip, dp_noise_multiplier, dp_q, dp_clipped_fraction and dp_norm_mean (of the
 * accepted updates' pre-clip delta norms), dp_delta, dp_epsilon and dp_order (the accountant's);
 * attack, at a round [attack] names: kind, client, status, seconds (not counted in `seconds`) and
 * the headline figures (attacker.h; the full result is in attacks.jsonl); with [adversary]
 * (simulated malicious clients, shared/fl/adversary.h): malicious (accepted updates of malicious
 * clients this round) and, for kind = backdoor, backdoor_success (share of triggered test images
 * of other classes classified as the target; null when not evaluated) and, with VisualMixer,
 * backdoor_success_mixed (the same images mixed with the test key).
 * With [fl] trace (the virtual clock, docs/heterogeneity.md): virtual_start, virtual_time (the
 * round's end, virtual seconds), stragglers and offline (the clients the clock dropped, untrained);
 * with fl.mode = async (FedBuff) each line is a server step: virtual_time, buffered, staleness_mean,
 * staleness_max, lost_clients and batches.
 * summary.json adds the final and best accuracy, totals (dropped, rejected, diverged,
 * rolled_back and more), the partition's statistics, the model's
 * parameter hash, with VisualMixer the mixed and clean test images' VFE and, with [adversary],
 * an "adversary" object: kind, malicious_clients and the final model's backdoor figures.
 * Not here: worker processes (worker/), launching (cli/), the wire codec (shared/fl/wire.h).
 */
#ifndef FV_COORDINATOR_H
#define FV_COORDINATOR_H
#include <stdint.h>
#include <stdio.h>

#include "fl/config.h"
#include "crypto.h"
#include "fv_common.h"

typedef struct {
    const fv_config *cfg;        /* checked (fv_config_check); copied */
    const char *config_text;     /* the resolved INI sent to workers (fv_config_write of cfg) */
    const char *bind;            /* endpoint to bind, e.g. tcp://127.0.0.1:0 (any port) or tcp://0.0.0.0:5555 */
    const fv_identity *id;       /* server identity; NULL iff cfg->security == 0 */
    const fv_allowlist *allow;   /* worker identities admitted; NULL iff cfg->security == 0 */
    const char *dir;             /* results folder: exists and holds config.resolved.ini */
    int resume;                  /* continue from dir's checkpoint */
    const char *eval_key;        /* VisualMixer secret for mixing test images (visualmixer on) */
    const char *data_dir;        /* overrides data.dir (NULL: the config's) */
    const char *client_keys;     /* evaluation only (NULL: none): the clients' VisualMixer key file,
                                    for the attacker's figures against mixed images (attacker.h) */
    int threads;                 /* evaluation threads (>= 1) */
    int quiet;                   /* no log or progress lines on stderr (the log file still has them) */
} fv_coord_opts;

typedef struct fv_coord fv_coord;

/* Load the data, build the model and the partition, restore the checkpoint when resuming,
 * start the ZAP handler and bind. Returns NULL with e set. Caller owns. */
FV_MUST_USE fv_coord *fv_coord_new(const fv_coord_opts *o, fv_err *e);

/* The endpoint actually bound (with the real port when the bind asked for any port). */
const char *fv_coord_endpoint(const fv_coord *c);

/* A callback polled several times a second during fv_coord_run; a nonzero return stops the run
 * with `why` (fedvim run: every worker process has exited). */
void fv_coord_set_stop(fv_coord *c, int (*should_stop)(void *ctx, char *why, size_t cap), void *ctx);

/* Run the remaining rounds. Returns 0 when the last round completed (model.safetensors and
 * summary.json written), -1 with e set otherwise (failed round, no workers, stop request, I/O
 * error); the results folder then holds the last completed round and resumes. Workers get a
 * Shutdown either way. */
FV_MUST_USE int fv_coord_run(fv_coord *c, fv_err *e);

/* The summary JSON object (valid after a successful fv_coord_run, owned by c). */
const char *fv_coord_summary(const fv_coord *c);

/* Per-round history for comparison tables: test accuracy (clean, and mixed or NaN), for rounds
 * 1..*n (NaN where not evaluated). Pointers owned by c. */
void fv_coord_history(const fv_coord *c, const double **acc, const double **acc_mixed, int *n);

/* Measured VFE: mean over accepted updates of the clients' mixed-shard VFE (weighted by samples),
 * of the mixed test set and of the same test images unmixed; NaN without VisualMixer. */
void fv_coord_vfe(const fv_coord *c, double *clients, double *test, double *test_clean);

/* A local worker process with this pid has exited (the launcher saw it): declare it dead now
 * rather than after fl.worker_timeout, so its clients are reassigned at once. */
void fv_coord_worker_exited(fv_coord *c, long pid);

/* Close sockets, stop the ZAP thread, free. Accepts NULL; sets *c to NULL. */
void fv_coord_destroy(fv_coord **c);

#endif
