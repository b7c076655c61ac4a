/* experiment.h: what the coordinator and every worker derive identically from one experiment
 * config, so that results never depend on which process computed them:
 *  - the data (a named data set, truncated as configured, or the synthetic set) and its
 *    normalisation;
 *  - the initial model (seeded by fl.seed) and the local optimizer's settings;
 *  - the partition of the training set among clients;
 *  - the clients sampled in each round (sorted by id) and each client's random stream in each
 *    round, a pure function of (seed, round, client id).
 * Not here: the protocol (wire.h) and what each role does (coordinator/, worker/).
 */
#ifndef FV_EXPERIMENT_H
#define FV_EXPERIMENT_H
#include <stdint.h>

#include "fl/config.h"
#include "data/data.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "data/partition.h"
#include "rng.h"
#include "vmix/vmix.h"
#include "vmix/vmix_bounds.h"

/* Load the training (train = 1) or test split as configured. data_dir overrides data.dir when
 * not NULL (a worker's local copy). Returns 0 or -1 with e naming the data set and what is
 * missing, or the size key when it asks for more images than the split has. */
FV_MUST_USE int fv_exp_load_data(const fv_config *c, const char *data_dir, int train, fv_dataset *out, fv_err *e);

/* Normalisation constants for the configured data set. */
fv_norm fv_exp_norm(const fv_config *c);

/* The initial global model [model] name (seeded by fl.seed) for images of d's shape, with
 * `outputs` outputs: the caller decides (d->classes, or what an attack needs:
 * fv_attack_model_classes in attacks/attack_api.h). Returns NULL with e set. */
FV_MUST_USE fv_net *fv_exp_model(const fv_config *c, const fv_dataset *d, int outputs, fv_err *e);

/* The local optimizer's settings from [training]. */
fv_opt_cfg fv_exp_opt_cfg(const fv_config *c);
/* The most tasks the coordinator keeps at one worker: one per slot ([fl] worker_slots) plus
 * tasks_per_worker - 1 waiting behind them (tasks_per_worker itself with one slot). */
int fv_exp_worker_queue(const fv_config *c);

/* Partition d among fl.clients as [partition] says. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_exp_partition(const fv_config *c, const fv_dataset *d, fv_partition *p, fv_err *e);

/* The fv_config_clients_per_round(c) clients of `round` (1-based), sorted ascending, into out. */
void fv_exp_sample_clients(const fv_config *c, int round, int *out);

/* Seed a client's random stream for one round (data order, then dropout seed). */
void fv_exp_client_rng(const fv_config *c, int round, int client, fv_rng *r);

/* The window bounds one VisualMixer user computed for its own images. */
typedef struct {
    int ws_min, ws_max;             /* the bounds used */
    int ws_min_model, ws_max_model; /* as computed before a conflict was resolved */
    double d_star;                  /* the d* WS_max came from (given, or d_star_relative x d_p) */
    const char *resolved;           /* NULL, or "privacy" / "utility" when visualmixer.conflict chose */
} fv_exp_bounds;

/* The bounds parameters of [visualmixer] (fv_vmix_bounds_compute's input; errors worded with the
 * config's keys); the Monte Carlo's seed, threads and images are left to the caller. */
void fv_exp_vmix_bounds_cfg(const fv_config *c, fv_vmix_bounds_cfg *bc);

/* VisualMixer parameters for mixing `own` (a client's shard, or the test set): WS_min from the
 * chi-square model for V* = visualmixer.vfe_target, WS_max from the Monte Carlo on own's images
 * (d* = visualmixer.d_star, or with d_star = auto d_star_relative x own's d_p at the whole image)
 * (seeded by mc_seed, `threads` threads; the result does not depend on them), by
 * fv_vmix_bounds_compute, the rule `fedvim bounds` and `fedvim mix` use too: a conflict WS_min >
 * WS_max is resolved as visualmixer.conflict says or is an error naming both bounds, and a WS_min
 * below visualmixer.unit is an error. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_exp_vmix_params(const fv_config *c, const fv_dataset *own, uint64_t mc_seed, int threads,
                       fv_vmix_params *p, fv_exp_bounds *b, fv_err *e);

/* A client's mixed shard, as its worker makes it once, offline: the client's own key (derived
 * from the clients' master key file's secret `master` and the client id), its own bounds
 * (fv_exp_vmix_params on the shard, Monte Carlo seeded by fl.seed and the client id), domain
 * FV_VMIX_DOMAIN_TRAIN. shard: the client's images in partition order (after any poisoning of an
 * adversarial client). *mixed receives the mixed images (caller frees with fv_dataset_free); st and
 * b (may be NULL) the mixing's statistics and bounds. The worker trains on it; the coordinator's
 * attacker re-makes it, for evaluation only, when the simulator gives it the key file. Returns 0,
 * or -1 with e set (prefixed with the client). */
FV_MUST_USE int fv_exp_client_mix(const fv_config *c, const fv_dataset *shard, int client,
                                  const uint8_t master[FV_VMIX_KEY_BYTES], int threads, fv_dataset *mixed,
                                  fv_vmix_stats *st, fv_exp_bounds *b, fv_err *e);

/* The [obfuscation] defence of c as a defence.h configuration (kind, window, sigma; kind NONE
 * when the section is off). */
void fv_exp_obf_cfg(const fv_config *c, fv_defence_cfg *d);

/* A client's obfuscated shard ([obfuscation] kind = shuffle or noise), made like the mixed shard
 * (fv_exp_client_mix): once, offline, with the client's own key (derived from `master` and the
 * client id exactly as for VisualMixer), stream FV_VMIX_DOMAIN_TRAIN, by fv_defence_apply. The
 * worker trains on it; the coordinator's attacker re-makes it, for evaluation only, from the
 * simulator's key file. *out receives the images (caller frees with fv_dataset_free). Returns 0,
 * or -1 with e set (prefixed with the client). */
FV_MUST_USE int fv_exp_client_obfuscate(const fv_config *c, const fv_dataset *shard, int client,
                                        const uint8_t master[FV_VMIX_KEY_BYTES], fv_dataset *out, fv_err *e);

#endif
