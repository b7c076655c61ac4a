/* config.c: see config.h. The schema table below is the single list of keys: parsing, defaults,
 * range checks, the resolved output and `--help-config` all come from it. */
#include "fl/config.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "nn/models.h"

/* T_ENUM: a word of the key's choice table, stored as its enum value; T_WORD: a word of the
 * table, stored as the text (a data set is passed on by name). */
typedef enum { T_INT, T_I64, T_FLOAT, T_BOOL, T_STRING, T_ENUM, T_WORD } key_type;

/* A choice key's vocabulary: each word and the enum value it stands for (T_WORD: 0); a NULL name
 * ends the table. These tables are the one place the words are written. */
typedef struct {
    const char *name;
    int value;
} choice;

static const choice DATASETS[] = {{"mnist", 0}, {"fashion", 0}, {"cmnist", 0}, {"cifar10", 0}, {"synthetic", 0}, {NULL, 0}};
static const choice SCHEMES[] = {
    {"iid", FV_PART_IID}, {"dirichlet", FV_PART_DIRICHLET}, {"shards", FV_PART_SHARDS}, {NULL, 0}};
static const choice OPTIMIZERS[] = {{"sgd", FV_OPT_SGD}, {"adam", FV_OPT_ADAM}, {"stadam", FV_OPT_STADAM}, {NULL, 0}};
static const choice OPT_STATES[] = {{"reset", FV_OPTSTATE_RESET}, {"keep", FV_OPTSTATE_KEEP}, {NULL, 0}};
static const choice SA_ATTACKERS[] = {{"victim", FV_SA_ATTACK_VICTIM}, {"cohort", FV_SA_ATTACK_COHORT},
                                      {NULL, 0}};
static const choice NORM_ACTIONS[] = {{"reject", FV_NORM_REJECT}, {"clip", FV_NORM_CLIP}, {NULL, 0}};
static const choice VMIX_MODES[] = {
    {"spatial+chromatic", FV_VMIX_SPATIAL_CHROMATIC}, {"spatial", FV_VMIX_SPATIAL}, {NULL, 0}};
static const choice VMIX_CONFLICTS[] = {{"error", FV_VMIX_CONFLICT_ERROR},
                                        {"privacy", FV_VMIX_CONFLICT_PRIVACY},
                                        {"utility", FV_VMIX_CONFLICT_UTILITY},
                                        {NULL, 0}};
static const choice OBF_KINDS[] = {{"none", FV_DEFENCE_NONE}, {"shuffle", FV_DEFENCE_SHUFFLE},
                                   {"noise", FV_DEFENCE_NOISE}, {NULL, 0}};
static const choice ATTACK_KINDS[] = {{"none", FV_ATTACK_NONE}, {"gan", FV_ATTACK_GAN},
                                      {"dlg", FV_ATTACK_DLG},   {"mia", FV_ATTACK_MIA},
                                      {"gan_active", FV_ATTACK_GAN_ACTIVE}, {"invert", FV_ATTACK_INVERT},
                                      {NULL, 0}};
static const choice ADV_KINDS[] = {{"none", FV_ADV_NONE},           {"sign_flip", FV_ADV_SIGN_FLIP},
                                   {"scale", FV_ADV_SCALE},         {"noise", FV_ADV_NOISE},
                                   {"huge", FV_ADV_HUGE},           {"label_flip", FV_ADV_LABEL_FLIP},
                                   {"backdoor", FV_ADV_BACKDOOR},   {NULL, 0}};
static const choice AGGREGATORS[] = {{"fedavg", FV_AGGREGATOR_FEDAVG},
                                     {"median", FV_AGGREGATOR_MEDIAN},
                                     {"trimmed_mean", FV_AGGREGATOR_TRIMMED_MEAN},
                                     {"krum", FV_AGGREGATOR_KRUM},
                                     {"multikrum", FV_AGGREGATOR_MULTIKRUM},
                                     {"clip", FV_AGGREGATOR_CLIP},
                                     {"centered_clip", FV_AGGREGATOR_CENTERED_CLIP},
                                     {"fednova", FV_AGGREGATOR_FEDNOVA},
                                     {"scaffold", FV_AGGREGATOR_SCAFFOLD},
                                     {NULL, 0}};
static const choice MODES[] = {{"sync", FV_MODE_SYNC}, {"async", FV_MODE_ASYNC}, {NULL, 0}};
static const choice STALENESS[] = {
    {"sqrt", FV_STALE_SQRT}, {"inverse", FV_STALE_INVERSE}, {"constant", FV_STALE_CONSTANT}, {NULL, 0}};
static const choice SERVER_OPTS[] = {{"none", FV_SOPT_NONE},         {"fedavgm", FV_SOPT_FEDAVGM},
                                     {"fedadam", FV_SOPT_FEDADAM},   {"fedyogi", FV_SOPT_FEDYOGI},
                                     {"fedadagrad", FV_SOPT_FEDADAGRAD}, {NULL, 0}};

/* T_ENUM keys store their value through an int: every such enum must be int-sized. */
_Static_assert(sizeof(fv_part_scheme) == sizeof(int) && sizeof(fv_opt_kind) == sizeof(int) &&
                   sizeof(fv_optstate_policy) == sizeof(int) && sizeof(fv_vmix_mode) == sizeof(int) &&
                   sizeof(fv_vmix_conflict) == sizeof(int) && sizeof(fv_attack_kind) == sizeof(int) &&
                   sizeof(fv_aggregator) == sizeof(int) && sizeof(fv_norm_action) == sizeof(int) &&
                   sizeof(fv_adv_kind) == sizeof(int) && sizeof(fv_server_opt) == sizeof(int) &&
                   sizeof(fv_fl_mode) == sizeof(int) && sizeof(fv_staleness) == sizeof(int),
               "a choice key's enum is not int-sized");

typedef struct {
    const char *section, *key;
    key_type type;
    size_t off;
    const char *def;        /* default, as it would be written in the file */
    double lo, hi;          /* inclusive range (numbers) */
    const choice *choices;  /* T_ENUM, T_WORD: the vocabulary */
    const char *keyword;    /* T_FLOAT: a word that stores FV_CFG_AUTO (e.g. "auto"), or NULL */
    const char *help;
} key_def;

#define OFF(f) offsetof(fv_config, f)
/* A vmix_defaults.h value as default text: the literal itself. */
#define STR_(x) #x
#define STR(x) STR_(x)

static const key_def SCHEMA[] = {
    {"data", "dataset", T_WORD, OFF(dataset), "mnist", 0, 0, DATASETS, NULL,
     "training and test data (synthetic: class-dependent patterns plus noise, no files needed)"},
    {"data", "dir", T_STRING, OFF(data_dir), "", 0, 0, NULL, NULL,
     "folder of the data set (empty: $FEDVIM_DATA/<dataset> or ./data/<dataset>)"},
    {"data", "train_size", T_INT, OFF(train_size), "0", 0, 1e8, NULL, NULL,
     "use the first N training images (0: all; synthetic: 6000)"},
    {"data", "test_size", T_INT, OFF(test_size), "0", 0, 1e8, NULL, NULL,
     "evaluate on the first N test images (0: all; synthetic: 1000)"},
    {"data", "synthetic_shape", T_STRING, OFF(synthetic_shape), "1x28x28", 0, 0, NULL, NULL,
     "CxHxW of synthetic images"},
    {"data", "synthetic_classes", T_INT, OFF(synthetic_classes), "10", 2, 256, NULL, NULL,
     "classes of the synthetic data set"},

    {"partition", "scheme", T_ENUM, OFF(partition), "iid", 0, 0, SCHEMES, NULL,
     "how training images are split among clients: iid (uniform), dirichlet (label skew, "
     "Dir(alpha) per class), shards (FedAvg's pathological split: sorted by label, "
     "shards_per_client shards each)"},
    {"partition", "alpha", T_FLOAT, OFF(alpha), "0.5", 1e-4, 1e6, NULL, NULL,
     "Dirichlet concentration (smaller: more skew)"},
    {"partition", "shards_per_client", T_INT, OFF(shards_per_client), "2", 1, 1000, NULL, NULL,
     "shards per client for scheme = shards"},
    {"partition", "min_samples", T_INT, OFF(min_samples), "1", 1, 1e8, NULL, NULL,
     "every client gets at least this many images (Dirichlet redraws until it holds)"},

    {"model", "name", T_STRING, OFF(model), "lenet5", 0, 0, NULL, NULL,
     "architecture (models.h): lenet5, fedavg_cnn, vgg11, resnet20, mobilenet, dlg_lenet, tiny"},

    {"training", "optimizer", T_ENUM, OFF(optimizer), "sgd", 0, 0, OPTIMIZERS, NULL,
     "local optimizer of each client"},
    {"training", "lr", T_FLOAT, OFF(lr), "0.01", 1e-12, 100, NULL, NULL, "learning rate"},
    {"training", "momentum", T_FLOAT, OFF(momentum), "0", 0, 0.999999, NULL, NULL, "SGD momentum"},
    {"training", "nesterov", T_BOOL, OFF(nesterov), "false", 0, 0, NULL, NULL, "SGD Nesterov momentum"},
    {"training", "weight_decay", T_FLOAT, OFF(weight_decay), "0", 0, 10, NULL, NULL, "L2 weight decay"},
    {"training", "beta1", T_FLOAT, OFF(beta1), "0.9", 0, 0.999999, NULL, NULL, "Adam / ST-Adam beta1"},
    {"training", "beta2", T_FLOAT, OFF(beta2), "0.999", 0, 0.999999999, NULL, NULL, "Adam / ST-Adam beta2"},
    {"training", "eps", T_FLOAT, OFF(eps), "1e-08", 1e-30, 1, NULL, NULL, "Adam / ST-Adam epsilon"},
    {"training", "stadam_mu", T_FLOAT, OFF(stadam_mu), "0", 0, 0.999999, NULL, NULL,
     "ST-Adam momentum on the update (docs/visualmixer.md section 5)"},
    {"training", "local_epochs", T_INT, OFF(local_epochs), "1", 1, 10000, NULL, NULL,
     "local epochs E per round"},
    {"training", "batch_size", T_INT, OFF(batch_size), "32", 1, 65536, NULL, NULL, "local minibatch size B"},
    {"training", "opt_state", T_ENUM, OFF(opt_state), "reset", 0, 0, OPT_STATES, NULL,
     "optimizer state across rounds: reset (fresh each round, the FedAvg convention) or keep "
     "(each client's moments survive to its next round; stored by the coordinator, one file "
     "per client, and sent with the client's next task)"},
    {"training", "prox_mu", T_FLOAT, OFF(prox_mu), "0", 0, 1e4, NULL, NULL,
     "FedProx proximal term mu (0: plain FedAvg)"},
    {"training", "threads", T_INT, OFF(threads), "1", 1, 256, NULL, NULL,
     "compute threads per worker (1 keeps results independent of the machine)"},
    {"training", "tf32", T_BOOL, OFF(tf32), "false", 0, 0, NULL, NULL,
     "workers on a CUDA device allow TF32 tensor cores for FP32 convolutions and matrix products "
     "(Ampere and later: faster, about 1e-3 relative error per product); off: full FP32. Ignored "
     "by workers on the CPU. fedvim run --tf32 sets it"},

    {"fl", "clients", T_INT, OFF(clients), "10", 1, 1e6, NULL, NULL, "number of clients K"},
    {"fl", "fraction", T_FLOAT, OFF(fraction), "1", 1e-9, 1, NULL, NULL,
     "fraction C of clients sampled each round (at least one)"},
    {"fl", "rounds", T_INT, OFF(rounds), "10", 1, 1e6, NULL, NULL, "communication rounds"},
    {"fl", "min_clients", T_INT, OFF(min_clients), "1", 1, 1e6, NULL, NULL,
     "a round fails (and the run stops, resumable) when fewer updates arrive by its deadline"},
    {"fl", "workers", T_INT, OFF(workers), "4", 1, 4096, NULL, NULL,
     "worker processes `fedvim run` starts; the coordinator waits for this many to join"},
    {"fl", "seed", T_I64, OFF(seed), "1", 0, 9.007199254740992e15, NULL, NULL,
     "seed of everything random in the simulation (init, partition, sampling, data order)"},
    {"fl", "round_timeout", T_FLOAT, OFF(round_timeout), "600", 0.01, 1e7, NULL, NULL,
     "seconds a round may take; unfinished clients are then dropped"},
    {"fl", "worker_timeout", T_FLOAT, OFF(worker_timeout), "30", 0.05, 1e6, NULL, NULL,
     "seconds of silence after which a worker counts as dead and its clients are reassigned"},
    {"fl", "heartbeat", T_FLOAT, OFF(heartbeat), "1", 0.01, 3600, NULL, NULL,
     "seconds between worker heartbeats"},
    {"fl", "join_timeout", T_FLOAT, OFF(join_timeout), "120", 0.01, 1e6, NULL, NULL,
     "seconds the coordinator waits for `workers` workers before round 1"},
    {"fl", "eval_every", T_INT, OFF(eval_every), "1", 1, 1e6, NULL, NULL,
     "evaluate the global model every N rounds (and after the last)"},
    {"fl", "eval_batch", T_INT, OFF(eval_batch), "500", 1, 65536, NULL, NULL, "evaluation batch size"},
    {"fl", "tasks_per_worker", T_INT, OFF(tasks_per_worker), "2", 1, 64, NULL, NULL,
     "tasks queued at a worker at once (more hides latency, fewer reassign faster)"},
    {"fl", "worker_slots", T_INT, OFF(worker_slots), "1", 1, 64, NULL, NULL,
     "clients each worker trains at once, each on its own thread with its own model copy and "
     "[training] threads threads (on a GPU: its own stream); the coordinator then keeps up to "
     "worker_slots + tasks_per_worker - 1 tasks at a worker. Results do not depend on it"},
    /* the aggregation rule: ROBUST_KEYS below lists these keys, written only for a robust rule */
    {"fl", "aggregator", T_ENUM, OFF(aggregator), "fedavg", 0, 0, AGGREGATORS, NULL,
     "server aggregation rule (shared/fl/aggregate.h; README, robust aggregation): fedavg "
     "(sample-weighted mean); median (coordinate-wise); trimmed_mean (coordinate-wise, drops "
     "trim_fraction of the updates per side); krum, multikrum (Blanchard et al. 2017: the update, or "
     "the plain mean of the multikrum_m updates, closest to their neighbours, krum_f Byzantine clients "
     "assumed); clip (each update's delta clipped to L2 norm clip_norm, then FedAvg); centered_clip "
     "(Karimireddy et al. 2021: deltas clipped to clip_norm around a centre that moves to their mean, "
     "a few iterations from the global model); fednova (Wang et al. 2020: each delta divided by its "
     "client's local steps, then scaled by their sample-weighted mean; local SGD only); scaffold "
     "(Karimireddy et al. 2020, option II: each local SGD step adds the control variate correction c - c_i "
     "to the gradient; the server moves by server_lr times the sample-weighted mean delta and c by the "
     "sum of the clients' control deltas over fl.clients; c and every c_i are kept by the coordinator and "
     "checkpointed; plain SGD without momentum or FedProx). A round with fewer arrived updates than a "
     "robust rule needs keeps the global model"},
    {"fl", "trim_fraction", T_FLOAT, OFF(trim_fraction), "0.1", 0, 0.5, NULL, NULL,
     "trimmed_mean: floor(trim_fraction x arrived updates) dropped per side and coordinate (at least "
     "one, and at least one kept, at the clients per round)"},
    {"fl", "krum_f", T_INT, OFF(krum_f), "1", 0, 1e6, NULL, NULL,
     "krum, multikrum: Byzantine clients f assumed per round (clients per round must exceed 2f + 2)"},
    {"fl", "multikrum_m", T_INT, OFF(multikrum_m), "3", 1, 1e6, NULL, NULL,
     "multikrum: best-scored updates averaged (plain mean; at most clients per round - krum_f)"},
    {"fl", "clip_norm", T_FLOAT, OFF(clip_norm), "1", 1e-12, 1e9, NULL, NULL,
     "clip, centered_clip: L2 bound tau on each update's delta (upload - global, trainable "
     "parameters; centered_clip: on its distance from the centre)"},
    /* the server optimizer: SERVER_OPT_KEYS below lists these keys, written only when it is not none */
    {"fl", "server_opt", T_ENUM, OFF(server_opt), "none", 0, 0, SERVER_OPTS, NULL,
     "server optimizer (Reddi et al. 2021; shared/fl/server_opt.h): the round's aggregate minus the "
     "global model is a pseudo-gradient D the server steps with, over the trainable parameters "
     "(batch-norm buffers take the aggregate): none (the aggregate is the new model); fedavgm "
     "(v = server_momentum v + D, x += server_lr v); fedadam, fedyogi, fedadagrad (m = beta1 m + "
     "(1 - beta1) D; v = beta2 v + (1 - beta2) D^2, v - (1 - beta2) D^2 sign(v - D^2), v + D^2; "
     "x += server_lr m / (sqrt(v) + server_tau); v starts at server_tau^2). Its state is in every "
     "checkpoint; with [dp] it steps from the private aggregate (post-processing)"},
    {"fl", "server_lr", T_FLOAT, OFF(server_lr), "auto", 1e-12, 1000, NULL, "auto",
     "server learning rate (auto: 1 for fedavgm, 0.01 for fedadam and fedyogi, 0.1 for fedadagrad, whose "
     "v only grows); with server_opt = none and aggregator = scaffold, SCAFFOLD's global step size eta_g "
     "(auto: 1); with mode = async, FedBuff's server learning rate (auto: 1)"},
    {"fl", "server_momentum", T_FLOAT, OFF(server_momentum), "0.9", 0, 0.999999, NULL, NULL,
     "fedavgm: server momentum beta"},
    {"fl", "server_beta1", T_FLOAT, OFF(server_beta1), "0.9", 0, 0.999999, NULL, NULL,
     "fedadam, fedyogi, fedadagrad: decay of the first moment m"},
    {"fl", "server_beta2", T_FLOAT, OFF(server_beta2), "0.99", 0, 0.999999, NULL, NULL,
     "fedadam, fedyogi: decay of the second moment v"},
    {"fl", "server_tau", T_FLOAT, OFF(server_tau), "0.001", 1e-12, 10, NULL, NULL,
     "fedadam, fedyogi, fedadagrad: adaptivity tau (added to sqrt(v); v starts at tau^2)"},
    /* an insider's update: the L2 bound of update - global, checked before aggregation */
    {"fl", "max_update_norm", T_FLOAT, OFF(max_update_norm), "0", 0, 1e30, NULL, NULL,
     "L2 bound of a client's update minus the global model, checked before aggregation (0: off)"},
    {"fl", "norm_action", T_ENUM, OFF(norm_action), "reject", 0, 0, NORM_ACTIONS, NULL,
     "an update over max_update_norm: reject (a strike; the client is reassigned to another "
     "worker) or clip (scaled down to the bound and aggregated)"},
    /* heterogeneity: HETERO_KEYS below lists these keys, written only when not at their default */
    {"fl", "trace", T_STRING, OFF(trace), "", 0, 0, NULL, NULL,
     "CSV trace of each client's speed (images per virtual second) and availability intervals "
     "(docs/heterogeneity.md; `fedvim trace` generates one): header client,speed,on,off, then one row per "
     "on-interval [on, off) of a client (off may be inf), clients in id order, each one's intervals "
     "ascending without overlap, one speed per client. It turns on the virtual clock. A task of a "
     "client takes shard images x local_epochs / speed + comm_seconds virtual seconds; rounds sample "
     "only clients available at their start, and a client that goes offline before it finishes is "
     "dropped; metrics.jsonl gets virtual_time and the dropped clients (empty: no virtual clock)"},
    {"fl", "deadline", T_FLOAT, OFF(deadline), "0", 0, 1e12, NULL, NULL,
     "virtual seconds a client's task may take (needs trace; 0: none): a sampled client that would "
     "finish later is a straggler, dropped without being trained (the round then ends at the "
     "deadline); async: its update is lost at start + deadline"},
    {"fl", "comm_seconds", T_FLOAT, OFF(comm_seconds), "0", 0, 1e9, NULL, NULL,
     "virtual seconds of communication added to every task's duration (needs trace)"},
    {"fl", "mode", T_ENUM, OFF(mode), "sync", 0, 0, MODES, NULL,
     "sync (rounds of sampled clients) or async (FedBuff, Nguyen et al. 2022; needs trace): up to "
     "concurrency clients train at once, each from the global model current when it starts; an update "
     "arriving at its virtual finish time goes to a buffer with weight staleness(s), s the server steps "
     "since it started, and every buffer_size updates the server steps x += server_lr x (sum of "
     "weighted deltas) / buffer_size; fl.rounds counts server steps; fraction and min_clients are "
     "unused; plain FedAvg only (no robust aggregator, server_opt, DP, opt_state = keep or [attack]); "
     "--resume is refused (the updates in flight are not checkpointed)"},
    {"fl", "buffer_size", T_INT, OFF(buffer_size), "10", 1, 1e6, NULL, NULL,
     "async: updates K per server step"},
    {"fl", "concurrency", T_INT, OFF(concurrency), "20", 1, 1e6, NULL, NULL,
     "async: clients training at once (fl.clients when it is more)"},
    {"fl", "staleness", T_ENUM, OFF(staleness), "sqrt", 0, 0, STALENESS, NULL,
     "async: weight of an update s server steps stale: sqrt (1 / sqrt(1 + s), FedBuff's), inverse "
     "(1 / (1 + s)) or constant (1)"},

    {"visualmixer", "enabled", T_BOOL, OFF(vmix), "false", 0, 0, NULL, NULL,
     "each client mixes its own shard once, offline, with its own key; test accuracy is then "
     "also reported on mixed test images"},
    {"visualmixer", "vfe_target", T_FLOAT, OFF(vmix_vfe_target), STR(FV_VMIX_TARGET_DEF), FV_VMIX_TARGET_LO, FV_VMIX_TARGET_HI, NULL, NULL,
     "target image VFE V* (in units of lambda) giving the window-size lower bound"},
    {"visualmixer", "alpha", T_FLOAT, OFF(vmix_alpha), STR(FV_VMIX_ALPHA_DEF), FV_VMIX_ALPHA_LO, FV_VMIX_ALPHA_HI, NULL, NULL,
     "V* is reached with probability at least 1 - alpha"},
    {"visualmixer", "lambda", T_FLOAT, OFF(vmix_lambda), STR(FV_VMIX_LAMBDA_DEF), FV_VMIX_LAMBDA_LO, FV_VMIX_LAMBDA_HI,
     NULL, NULL, "VFE scale lambda"},
    {"visualmixer", "block", T_INT, OFF(vmix_block), STR(FV_VMIX_BLOCK_DEF), FV_VMIX_BLOCK_LO, FV_VMIX_BLOCK_HI, NULL,
     NULL, "VFE block size B"},
    {"visualmixer", "d_star", T_FLOAT, OFF(vmix_d_star), "auto", FV_VMIX_DMAX_LO, FV_VMIX_DMAX_HI, NULL, "auto",
     "largest accepted convolution output deviation d*, giving the window-size upper bound; auto: "
     "d_star_relative x the shard's own d_p at the whole image"},
    {"visualmixer", "d_star_relative", T_FLOAT, OFF(vmix_d_rel), STR(FV_VMIX_DREL_DEF), FV_VMIX_DREL_LO, FV_VMIX_DREL_HI,
     NULL, NULL,
     "d* relative to d_p at the whole image, used when d_star = auto (the default selects WS_max 4 "
     "on MNIST, Fashion-MNIST and Colored MNIST; docs/visualmixer.md section 7)"},
    {"visualmixer", "p", T_FLOAT, OFF(vmix_p), STR(FV_VMIX_P_DEF), FV_VMIX_P_LO, FV_VMIX_P_HI, NULL, NULL,
     "quantile of the output deviation compared with d*"},
    {"visualmixer", "trials", T_INT, OFF(vmix_trials), STR(FV_VMIX_TRIALS_DEF), FV_VMIX_TRIALS_LO, FV_VMIX_TRIALS_HI, NULL, NULL,
     "Monte Carlo trials per window size for the upper bound"},
    {"visualmixer", "unit", T_INT, OFF(vmix_unit), STR(FV_VMIX_UNIT_DEF), FV_VMIX_UNIT_LO, FV_VMIX_UNIT_HI, NULL, NULL,
     "shuffle unit u (1: pixel level), a power of two; a WS_min below it is an error, never raised"},
    {"visualmixer", "mode", T_ENUM, OFF(vmix_mode), "spatial+chromatic", 0, 0, VMIX_MODES, NULL,
     "independent permutation per channel, or one shared by all channels"},
    {"visualmixer", "verify", T_BOOL, OFF(vmix_verify), "false", 0, 0, NULL, NULL,
     "re-mix an image whose measured VFE is below V* with larger windows"},
    {"visualmixer", "conflict", T_ENUM, OFF(vmix_conflict), "error", 0, 0, VMIX_CONFLICTS, NULL,
     "when the lower bound exceeds the upper bound: stop, or let privacy or utility win"},

    {"obfuscation", "kind", T_ENUM, OFF(obf_kind), "none", 0, 0, OBF_KINDS, NULL,
     "a baseline defence instead of VisualMixer (not both): each client obfuscates its own shard "
     "once, offline, with its own key (the key file VisualMixer uses): shuffle (the image tiled "
     "into fixed window x window windows, edge windows clipped, each window's pixels permuted, "
     "per channel) or noise (Gaussian noise of std sigma on each pixel, clamped to [0, 1]); "
     "docs/visualmixer.md section 10"},
    {"obfuscation", "window", T_INT, OFF(obf_window), "4", 1, 1024, NULL, NULL,
     "shuffle: the window side in pixels (the grid is public; only the permutations are secret)"},
    {"obfuscation", "sigma", T_FLOAT, OFF(obf_sigma), "0.25", 0, 1000, NULL, NULL,
     "noise: the noise's standard deviation on the [0, 1] pixel scale"},

    {"security", "enabled", T_BOOL, OFF(security), "true", 0, 0, NULL, NULL,
     "CURVE encryption on every socket, an allow-list of worker keys, signed updates"},
    {"security", "max_strikes", T_INT, OFF(max_strikes), "3", 1, 1000000, NULL, NULL,
     "rejected messages after which a worker is banned and its clients reassigned"},

    {"attack", "kind", T_ENUM, OFF(attack_kind), "none", 0, 0, ATTACK_KINDS, NULL,
     "the honest-but-curious server attacks one client's uploaded model (docs/attacks.md): gan "
     "(passive GAN, the upload as discriminator), dlg (gradient inversion of dlg_lenet), invert "
     "(Inverting Gradients on the run's own model: the update replayed through the client's "
     "plain-SGD local steps), mia (membership inference); gan_active: client is the attacker, a participant that trains a GAN against the "
     "global model and adds its samples, labelled with an extra fake class (the model gets classes "
     "+ 1 outputs), to its local data; figures go to attacks.jsonl and the round's metrics line, "
     "grids to attacks/. What a kind needs of the other sections (held-out images; dlg: its model "
     "and plain SGD; invert: plain SGD) is the attack's rule: fv_attack_check_config in "
     "attacks/attack_api.h"},
    {"attack", "rounds", T_STRING, OFF(attack_rounds), "", 0, 0, NULL, NULL,
     "rounds to attack, ascending, e.g. 3,8 (empty: the last round; gan_active: every round); each "
     "must sample the client"},
    {"attack", "client", T_INT, OFF(attack_client), "0", 0, 1e6, NULL, NULL,
     "the victim client's id (< fl.clients); gan_active: the attacking client's id"},
    {"attack", "target", T_INT, OFF(attack_target), "0", 0, 255, NULL, NULL,
     "gan, gan_active: the class the generator aims at (gan: the victim must hold images of it)"},
    {"attack", "settings", T_STRING, OFF(attack_settings), "", 0, 0, NULL, NULL,
     "key=value,... passed to the attack (attacks/attack_api.h lists the keys; dlg's lr defaults "
     "to training.lr)"},

    {"dp", "enabled", T_BOOL, OFF(dp), "false", 0, 0, NULL, NULL,
     "DP-FedAvg (McMahan et al. 2018): the server clips each sampled client's update delta over "
     "the trainable parameters to L2 norm clip, averages with uniform weights (sum / clients per "
     "round) and adds Gaussian noise of std noise_multiplier * clip / (clients per round); "
     "batch-norm buffers are averaged plainly and are NOT privatised; metrics.jsonl gets the "
     "clipped fraction, the mean pre-clip norm and epsilon (RDP accountant, sampled Gaussian)"},
    {"dp", "clip", T_FLOAT, OFF(dp_clip), "1", 1e-12, 1e9, NULL, NULL,
     "L2 bound C on each client's update delta (upload - global, trainable parameters)"},
    {"dp", "noise_multiplier", T_FLOAT, OFF(dp_noise), "1", 0, 1e6, NULL, NULL,
     "noise multiplier z: per-coordinate noise std z * C / m (0: clipping only, epsilon infinite)"},
    {"dp", "delta", T_FLOAT, OFF(dp_delta), "1e-05", 1e-30, 0.5, NULL, NULL,
     "delta at which epsilon is reported (accounting only)"},

    {"adversary", "kind", T_ENUM, OFF(adv_kind), "none", 0, 0, ADV_KINDS, NULL,
     "simulated malicious clients, trained by the workers like any client (shared/fl/adversary.h): "
     "sign_flip (upload global - scale x delta), scale (global + scale x delta), noise (global + "
     "Gaussian noise, training discarded), huge (every trainable value huge_value), label_flip "
     "(train on label classes-1-y), backdoor (poison_fraction of the client's images carry a "
     "trigger and label target); the coordinator reports the malicious updates it aggregated "
     "and, for backdoor, the attack's success rate on triggered test images"},
    {"adversary", "fraction", T_FLOAT, OFF(adv_fraction), "0.1", 0, 1, NULL, NULL,
     "share of fl.clients that is malicious (round(fraction x clients) ids drawn from fl.seed); "
     "ignored when clients is set"},
    {"adversary", "clients", T_STRING, OFF(adv_clients), "", 0, 0, NULL, NULL,
     "the malicious client ids, ascending, e.g. 0,5,9 (empty: use fraction)"},
    {"adversary", "scale", T_FLOAT, OFF(adv_scale), "auto", 0, 1e6, NULL, "auto",
     "factor on the update's delta for sign_flip, scale, label_flip and backdoor (auto: 10 for "
     "scale, 1 otherwise)"},
    {"adversary", "noise_std", T_FLOAT, OFF(adv_noise_std), "1", 0, 1e6, NULL, NULL,
     "noise: standard deviation of the Gaussian noise per coordinate"},
    {"adversary", "huge_value", T_FLOAT, OFF(adv_huge_value), "3e+38", -3.4e38, 3.4e38, NULL, NULL,
     "huge: the value of every trainable coordinate of the upload"},
    {"adversary", "target", T_INT, OFF(adv_target), "0", 0, 255, NULL, NULL, "backdoor: the label triggered images get"},
    {"adversary", "trigger_size", T_INT, OFF(adv_trigger_size), "4", 1, 64, NULL, NULL,
     "backdoor: side of the checkerboard trigger, one pixel in from the bottom-right corner"},
    {"adversary", "poison_fraction", T_FLOAT, OFF(adv_poison_fraction), "0.5", 0, 1, NULL, NULL,
     "backdoor: share of a malicious client's images that carry the trigger"},

    {"secagg", "enabled", T_BOOL, OFF(sa), "false", 0, 0, NULL, NULL,
     "secure aggregation (Bonawitz et al. 2017, SecAgg+ neighbourhoods of Bell et al. 2020; "
     "docs/secagg.md): each client masks its fixed-point update with pairwise ChaCha20 masks agreed "
     "by X25519 and a self mask, and Shamir-shares its secrets with its neighbours, so the "
     "coordinator learns only the sum of the round's updates and still finishes a round whose "
     "clients drop after masking; needs aggregator = fedavg, no [dp], no fl.max_update_norm, "
     "opt_state = reset and mode = sync"},
    {"secagg", "neighbours", T_INT, OFF(sa_neighbours), "0", 0, 100000, NULL, NULL,
     "clients each client masks with and shares its secrets to, an even number (a random Harary "
     "graph per round, SecAgg+); 0: every other client of the round (the original protocol, cost "
     "quadratic in the cohort)"},
    {"secagg", "threshold", T_FLOAT, OFF(sa_threshold), "0.5", 0.5, 0.99, NULL, NULL,
     "Shamir threshold as a fraction of a client's h = k + 1 holders of shares (its neighbours and "
     "itself): t = floor(threshold x h) + 1 shares rebuild a secret (at 0.5, just over half: what "
     "keeps a server from getting both secrets of one client); a round fails when fewer than t of a "
     "client's holders survive"},
    {"secagg", "clip", T_FLOAT, OFF(sa_clip), "4", 1e-6, 1e6, NULL, NULL,
     "each coordinate of a client's update delta (upload - global) is clamped to [-clip, clip] "
     "before the 32-bit fixed-point encoding; the fractional bits follow from clip and the "
     "round's samples (metrics.jsonl: secagg.frac_bits, secagg.clamped)"},
    {"secagg", "attacker", T_ENUM, OFF(sa_attacker), "victim", 0, 0, SA_ATTACKERS, NULL,
     "what the curious server's inversion ([attack] kind = invert) takes the round's aggregate for: "
     "victim, the victim client's own update; cohort, one local step over the union of the "
     "survivors' images (exact for FedAvg with one full-batch step of plain SGD per client), all of "
     "which it reconstructs (at most 64) and is measured against"},

    {"distill", "student", T_STRING, OFF(kd_student), "", 0, 0, NULL, NULL,
     "after the last round the server distils the global model (the teacher) into this zoo model on "
     "public data (Hinton et al. 2015; docs/distillation.md): student.safetensors and a \"distill\" "
     "object in summary.json (empty: no student)"},
    {"distill", "dir", T_STRING, OFF(kd_dir), "", 0, 0, NULL, NULL,
     "folder of the public data, a copy of data.dataset's format (plain, or mixed by `fedvim mix`; "
     "empty: the run's own data folder, where the public images must lie past the clients' ones)"},
    {"distill", "first", T_INT, OFF(kd_first), "0", 0, 1e8, NULL, NULL,
     "index of the first public training image; in the run's own folder at least the clients' "
     "images (data.train_size; synthetic: ignored, the public set is a separate draw)"},
    {"distill", "images", T_INT, OFF(kd_images), "0", 0, 1e8, NULL, NULL,
     "number of public images from first (0: to the end of the split; synthetic: required)"},
    {"distill", "epochs", T_INT, OFF(kd_epochs), "1", 1, 10000, NULL, NULL, "the student's training epochs"},
    {"distill", "batch_size", T_INT, OFF(kd_batch), "64", 1, 65536, NULL, NULL, "the student's minibatch size"},
    {"distill", "optimizer", T_ENUM, OFF(kd_optimizer), "adam", 0, 0, OPTIMIZERS, NULL, "the student's optimizer"},
    {"distill", "lr", T_FLOAT, OFF(kd_lr), "0.001", 1e-12, 100, NULL, NULL, "the student's learning rate"},
    {"distill", "temperature", T_FLOAT, OFF(kd_temperature), "4", 0.05, 100, NULL, NULL,
     "softmax temperature T of the teacher's soft targets"},
    {"distill", "alpha", T_FLOAT, OFF(kd_alpha), "0.9", 0, 1, NULL, NULL,
     "weight of the soft (teacher) term; 1 - alpha weighs the public labels"},
    {"distill", "device", T_STRING, OFF(kd_device), "cpu", 0, 0, NULL, NULL,
     "where the coordinator computes the teacher's logits and trains the student: cpu, cuda or "
     "cuda:N (a device the coordinator's machine lacks is an error before round 1)"},

    {"output", "dir", T_STRING, OFF(out_dir), "results", 0, 0, NULL, NULL, "parent folder of results"},
    {"output", "name", T_STRING, OFF(name), "", 0, 0, NULL, NULL,
     "results folder name under dir (empty: the config file's name without .ini)"},
    {"output", "save_model", T_BOOL, OFF(save_model), "true", 0, 0, NULL, NULL,
     "write the final global model as model.safetensors"},
};

#define NKEYS ((int)(sizeof SCHEMA / sizeof SCHEMA[0]))

/* The [fl] keys of the aggregation rule: the resolved text lists them only for a robust rule, so
 * that a FedAvg run resolves to the same text (and config hash) as before they existed. */
static const size_t ROBUST_KEYS[] = {OFF(aggregator), OFF(trim_fraction), OFF(krum_f), OFF(multikrum_m),
                                     OFF(clip_norm)};

static int robust_key(int k) {
    for (size_t i = 0; i < sizeof ROBUST_KEYS / sizeof ROBUST_KEYS[0]; i++)
        if (SCHEMA[k].off == ROBUST_KEYS[i]) return 1;
    return 0;
}

/* The [fl] keys of the server optimizer: written only when it is not none, for the same reason. */
static const size_t SERVER_OPT_KEYS[] = {OFF(server_opt), OFF(server_lr), OFF(server_momentum), OFF(server_beta1),
                                         OFF(server_beta2), OFF(server_tau)};

static int server_opt_key(int k) {
    for (size_t i = 0; i < sizeof SERVER_OPT_KEYS / sizeof SERVER_OPT_KEYS[0]; i++)
        if (SCHEMA[k].off == SERVER_OPT_KEYS[i]) return 1;
    return 0;
}
/* The heterogeneity keys: written only when set away from their default, so that a run without a
 * trace resolves to the same text (and config hash) as before they existed. */
static const size_t HETERO_KEYS[] = {OFF(trace), OFF(deadline), OFF(comm_seconds), OFF(mode),
                                     OFF(buffer_size), OFF(concurrency), OFF(staleness)};

static int hetero_key(int k) {
    for (size_t i = 0; i < sizeof HETERO_KEYS / sizeof HETERO_KEYS[0]; i++)
        if (SCHEMA[k].off == HETERO_KEYS[i]) return 1;
    return 0;
}
_Static_assert(sizeof SCHEMA / sizeof SCHEMA[0] <= FV_CFG_MAX_KEYS, "raise FV_CFG_MAX_KEYS (config.h)");

static int find_key(const char *section, const char *key) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(SCHEMA[i].section, section) == 0 && strcmp(SCHEMA[i].key, key) == 0) return i;
    return -1;
}

static int section_known(const char *section) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(SCHEMA[i].section, section) == 0) return 1;
    return 0;
}

/* The entry of word v in tab, or NULL. */
static const choice *choice_find(const choice *tab, const char *v) {
    for (; tab->name; tab++)
        if (strcmp(tab->name, v) == 0) return tab;
    return NULL;
}

/* The word of value in tab; a value outside it is a programmer error. */
static const char *choice_name(const choice *tab, int value) {
    for (; tab->name; tab++)
        if (tab->value == value) return tab->name;
    FV_DIE("no word for value %d in a choice table", value);
}

/* "a|b|c" */
static void choice_list(const choice *tab, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; tab[i].name; i++) {
        strncat(out, i ? "|" : "", cap - strlen(out) - 1);
        strncat(out, tab[i].name, cap - strlen(out) - 1);
    }
}

const char *fv_config_attack_kind_name(fv_attack_kind k) { return choice_name(ATTACK_KINDS, (int)k); }
const char *fv_config_adv_kind_name(fv_adv_kind k) { return choice_name(ADV_KINDS, (int)k); }
const char *fv_config_server_opt_name(fv_server_opt k) { return choice_name(SERVER_OPTS, (int)k); }
const char *fv_config_staleness_name(fv_staleness k) { return choice_name(STALENESS, (int)k); }

int fv_config_choice_value(const char *section, const char *key, const char *word, int *value, fv_err *e) {
    int k = find_key(section, key);
    FV_ASSERT(k >= 0 && SCHEMA[k].type == T_ENUM);
    const choice *ch = choice_find(SCHEMA[k].choices, word);
    if (!ch) {
        char list[256];
        choice_list(SCHEMA[k].choices, list, sizeof list);
        return fv_err_set(e, "'%s' is not one of %s", word, list);
    }
    *value = ch->value;
    return 0;
}

int fv_config_text_check(const char *s, fv_err *e) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return fv_err_set(e, "control character 0x%02x at byte %zu", c, i);
            i++;
            continue;
        }
        /* the length of the sequence and the least code point it may encode (no overlong forms) */
        int n = c >= 0xc2 && c <= 0xdf ? 2 : (c & 0xf0) == 0xe0 ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        uint32_t cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
        for (int k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                n = 0;
                break;
            }
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        const uint32_t least = n == 3 ? 0x800 : n == 4 ? 0x10000 : 0x80;
        if (n == 0 || cp < least || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return fv_err_set(e, "invalid UTF-8 at byte %zu", i);
        if (cp <= 0x9f) return fv_err_set(e, "control character U+%04X at byte %zu", (unsigned)cp, i);
        i += (size_t)n;
    }
    return 0;
}

/* Set key k from text. `where` prefixes errors ("exp.ini:12" or "--set fl.rounds=0"). */
static int set_value(fv_config *c, int k, const char *v, const char *where, fv_err *e) {
    const key_def *d = &SCHEMA[k];
    char *dst = (char *)c + d->off;
    char what[128];
    snprintf(what, sizeof what, "%s: [%s] %s", where, d->section, d->key);
    switch (d->type) {
    case T_INT:
    case T_I64: {
        long x;
        char *end;
        errno = 0;
        if (!*v) return fv_err_set(e, "%s: expected an integer, got an empty value", what);
        long long ll = strtoll(v, &end, 10);
        if (*end || errno) return fv_err_set(e, "%s: expected an integer, got '%s'", what, v);
        if ((double)ll < d->lo || (double)ll > d->hi)
            return fv_err_set(e, "%s: %lld is out of range [%.0f, %.0f]", what, ll, d->lo, d->hi);
        x = (long)ll;
        if (d->type == T_INT) *(int *)dst = (int)x;
        else *(int64_t *)dst = (int64_t)ll;
        return 0;
    }
    case T_FLOAT: {
        char *end;
        errno = 0;
        if (d->keyword && strcmp(v, d->keyword) == 0) { /* the key's keyword, e.g. d_star = auto */
            *(double *)dst = FV_CFG_AUTO;
            return 0;
        }
        if (!*v) return fv_err_set(e, "%s: expected a number, got an empty value", what);
        double x = strtod(v, &end);
        if (*end || errno || !isfinite(x))
            return fv_err_set(e, "%s: expected a number%s%s, got '%s'", what, d->keyword ? " or " : "",
                              d->keyword ? d->keyword : "", v);
        if (x < d->lo || x > d->hi) return fv_err_set(e, "%s: %s is out of range [%g, %g]", what, v, d->lo, d->hi);
        *(double *)dst = x;
        return 0;
    }
    case T_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) *(int *)dst = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0")) *(int *)dst = 0;
        else return fv_err_set(e, "%s: expected true or false, got '%s'", what, v);
        return 0;
    case T_STRING: {
        size_t l = strlen(v);
        if (l >= FV_CFG_STR) return fv_err_set(e, "%s: longer than %d characters", what, FV_CFG_STR - 1);
        fv_err te;
        if (fv_config_text_check(v, &te) != 0)
            return fv_err_set(e, "%s: %s (text must be UTF-8 without control characters)", what, te.msg);
        if (strchr(v, ';')) return fv_err_set(e, "%s: ';' is not allowed (it starts a comment)", what);
        memcpy(dst, v, l + 1);
        return 0;
    }
    case T_ENUM:
    case T_WORD: {
        const choice *ch = choice_find(d->choices, v);
        if (!ch) {
            char list[256];
            choice_list(d->choices, list, sizeof list);
            return fv_err_set(e, "%s: '%s' is not one of %s", what, v, list);
        }
        if (d->type == T_WORD) memcpy(dst, ch->name, strlen(ch->name) + 1);
        else *(int *)dst = ch->value;
        return 0;
    }
    }
    return fv_err_set(e, "%s: internal: bad type", what);
}

void fv_config_defaults(fv_config *c) {
    memset(c, 0, sizeof *c);
    for (int k = 0; k < NKEYS; k++) {
        fv_err e;
        if (set_value(c, k, SCHEMA[k].def, "default", &e) != 0) FV_DIE("bad default: %s", e.msg);
    }
}

/* ---- INI parsing ---- */

typedef struct {
    fv_config *c;
    const char *name;
    const char *text;
    size_t len, pos;
    int line;        /* number of the line last handed to inih */
    int line_cap;    /* inih's line buffer (bytes, with the newline and the NUL) */
    int too_long;    /* the line that was too long, 0 when none */
    int nset;        /* keys the text set */
    int seen_line[FV_CFG_MAX_KEYS]; /* the line that set each key of SCHEMA */
    fv_err *e;
    int failed;
} parse_ctx;

/* A section header with text after its ']' ("[fl] junk"), which inih would ignore: an error
 * naming the line. Only blanks and a ';' comment may follow the header. */
static void check_header(parse_ctx *p, const char *line) {
    const char *s = line;
    if (p->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0) s += 3; /* a UTF-8 BOM (inih skips it) */
    while (*s == ' ' || *s == '\t') s++;
    if (*s != '[') return;
    const char *end = strchr(s, ']');
    if (!end) return; /* inih's syntax error */
    const char *t = end + 1;
    while (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n') t++;
    if (!*t || *t == ';') return;
    size_t tl = strcspn(t, "\r\n");
    p->failed = 1;
    fv_err_set(p->e, "%s:%d: text after the section header %.*s: '%.*s' (only a ; comment may follow it)", p->name,
               p->line, (int)(end + 1 - s), s, (int)(tl > 64 ? 64 : tl), t);
}

/* inih's reader: hands over one line at a time so we know its number; a line that does not fit
 * inih's buffer is an error of ours, not silently split. */
static char *reader(char *str, int num, void *stream) {
    parse_ctx *p = stream;
    if (p->pos >= p->len) return NULL;
    size_t s = p->pos, i = s;
    while (i < p->len && p->text[i] != '\n') i++;
    size_t l = i - s + (i < p->len ? 1 : 0);
    p->pos = s + l;
    p->line++;
    p->line_cap = num;
    if (l + 1 > (size_t)num) {
        if (!p->too_long) p->too_long = p->line;
        str[0] = '\n'; /* blank line to inih */
        str[1] = 0;
        return str;
    }
    memcpy(str, p->text + s, l);
    str[l] = 0;
    if (memchr(str, 0, l) && !p->too_long) p->too_long = -p->line; /* NUL byte */
    if (!p->failed && !p->too_long) check_header(p, str);
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
    parse_ctx *p = user;
    if (p->failed) return 1;
    char where[FV_CFG_STR + 32];
    snprintf(where, sizeof where, "%s:%d", p->name, p->line);
    if (!section_known(section)) {
        p->failed = 1;
        if (!*section)
            fv_err_set(p->e, "%s: '%s' is outside any [section]", where, name);
        else
            fv_err_set(p->e, "%s: unknown section [%s] (sections: data, partition, model, training, fl, "
                       "visualmixer, obfuscation, security, attack, adversary, dp, output)", where, section);
        return 1;
    }
    int k = find_key(section, name);
    if (k < 0) {
        p->failed = 1;
        fv_err_set(p->e, "%s: [%s] %s: unknown key (fedvim run --help-config lists them all)", where,
                   section, name);
        return 1;
    }
    if (p->seen_line[k]) {
        p->failed = 1;
        fv_err_set(p->e,
                   "%s: [%s] %s: set twice (first on line %d; an indented line continues the "
                   "previous value)",
                   where, section, name, p->seen_line[k]);
        return 1;
    }
    p->seen_line[k] = p->line;
    /* what fv_config_write writes must read back: "key = value" on one line of inih's buffer (a
     * value written tighter, "key=value", or continued on indented lines could be longer) */
    if (SCHEMA[k].type == T_STRING && p->line_cap > 0 && strlen(name) + strlen(value) + 5 > (size_t)p->line_cap) {
        p->failed = 1;
        fv_err_set(p->e, "%s: [%s] %s: the value is %zu bytes, at most %d here (the resolved config writes it "
                   "back as one line \"%s = ...\" of at most %d bytes)", where, section, name, strlen(value),
                   p->line_cap - 5 - (int)strlen(name), name, p->line_cap - 2);
        return 1;
    }
    if (set_value(p->c, k, value, where, p->e) != 0) {
        p->failed = 1;
        return 1;
    }
    p->c->origin_line[k] = p->line;
    p->nset++;
    return 1;
}

int fv_config_parse(fv_config *c, const char *name, const char *text, size_t len, fv_err *e) {
    parse_ctx p = {.c = c, .name = name, .text = text, .len = len, .e = e};
    snprintf(c->file, sizeof c->file, "%s", name);
    int r = ini_parse_stream(reader, &p, handler, &p);
    if (p.too_long > 0) return fv_err_set(e, "%s:%d: line too long", name, p.too_long);
    if (p.too_long < 0) return fv_err_set(e, "%s:%d: NUL byte in the line", name, -p.too_long);
    if (p.failed) return -1;
    if (r > 0) return fv_err_set(e, "%s:%d: syntax error (expected [section], key = value, or a ; comment)", name, r);
    if (r < 0) return fv_err_set(e, "%s: cannot parse (inih error %d)", name, r);
    if (p.nset == 0)
        return fv_err_set(e, "%s: sets no key (the file is empty or holds only comments and section headers)", name);
    return 0;
}

int fv_config_load(fv_config *c, const char *path, fv_err *e) {
    uint8_t *text = NULL;
    size_t len = 0;
    if (fv_read_file(path, 1 << 20, &text, &len, e) != 0) return -1;
    int rc = fv_config_parse(c, path, (const char *)text, len, e);
    free(text);
    return rc;
}

int fv_config_set(fv_config *c, const char *a, fv_err *e) {
    const char *dot = strchr(a, '.'), *eq = strchr(a, '=');
    if (!dot || !eq || dot > eq)
        return fv_err_set(e, "--set %s: expected section.key=value (for example fl.rounds=50)", a);
    char section[64], key[64];
    size_t sl = (size_t)(dot - a), kl = (size_t)(eq - dot - 1);
    if (sl >= sizeof section || kl >= sizeof key) return fv_err_set(e, "--set %s: name too long", a);
    memcpy(section, a, sl);
    section[sl] = 0;
    memcpy(key, dot + 1, kl);
    key[kl] = 0;
    char where[FV_CFG_STR + 16];
    snprintf(where, sizeof where, "--set %s", a);
    if (!section_known(section)) return fv_err_set(e, "%s: unknown section [%s]", where, section);
    int k = find_key(section, key);
    if (k < 0) return fv_err_set(e, "%s: [%s] %s: unknown key (fedvim run --help-config lists them all)", where, section, key);
    if (set_value(c, k, eq + 1, where, e) != 0) return -1;
    c->origin_line[k] = -1;
    return 0;
}

/* "exp.ini:12" / "--set" / "default" for key k. */
static void origin(const fv_config *c, int k, char *out, size_t cap) {
    int l = c->origin_line[k];
    if (l > 0) snprintf(out, cap, "%s:%d", c->file, l);
    else if (l < 0) snprintf(out, cap, "--set");
    else snprintf(out, cap, "default");
}

int fv_config_key_error(const fv_config *c, fv_err *e, const char *section, const char *key, const char *fmt, ...) {
    char msg[FV_ERR_MAX], where[FV_CFG_STR + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int k = find_key(section, key);
    FV_ASSERT(k >= 0); /* a key outside the schema is the caller's mistake */
    origin(c, k, where, sizeof where);
    return fv_err_set(e, "%s: [%s] %s: %s", where, section, key, msg);
}

int fv_config_client_keyed(const fv_config *c) { return c->vmix || c->obf_kind != FV_DEFENCE_NONE; }

int fv_config_clients_per_round(const fv_config *c) {
    long m = (long)floor(c->fraction * c->clients + 1e-9);
    if (m < 1) m = 1;
    if (m > c->clients) m = c->clients;
    return (int)m;
}

int fv_config_concurrency(const fv_config *c) { return c->concurrency < c->clients ? c->concurrency : c->clients; }

int fv_config_trim_count(double fraction, int k) { return (int)floor(fraction * k + 1e-9); }

int fv_config_krum_min(int f) { return 2 * f + 3; }

double fv_config_server_lr(const fv_config *c) {
    if (c->server_lr != FV_CFG_AUTO) return c->server_lr;
    switch (c->server_opt) {
    case FV_SOPT_FEDADAM:
    case FV_SOPT_FEDYOGI: return 1e-2;
    case FV_SOPT_FEDADAGRAD: return 1e-1;
    case FV_SOPT_NONE:
    case FV_SOPT_FEDAVGM: break;
    }
    return 1.0;
}

/* The server optimizer's parameters are written to the resolved config only with an optimizer
 * (fv_config_write): one set with server_opt = none would be silently dropped, so it is an error. */
static int check_server_opt(const fv_config *c, fv_err *e) {
    if (c->server_opt != FV_SOPT_NONE) return 0;
    for (size_t i = 1; i < sizeof SERVER_OPT_KEYS / sizeof SERVER_OPT_KEYS[0]; i++)
        for (int k = 0; k < NKEYS; k++)
            if (SCHEMA[k].off == SERVER_OPT_KEYS[i] && c->origin_line[k] != 0 &&
                !(SCHEMA[k].off == OFF(server_lr) &&
                  (c->aggregator == FV_AGGREGATOR_SCAFFOLD || c->mode == FV_MODE_ASYNC)))
                return fv_config_key_error(c, e, SCHEMA[k].section, SCHEMA[k].key,
                                           "has no effect with [fl] server_opt = none: choose a server optimizer "
                                           "or remove the key (server_lr alone is also SCAFFOLD's global step "
                                           "size, with aggregator = scaffold, and FedBuff's, with mode = async)");
    return 0;
}

/* FedNova normalises each delta by ||a_i||_1 of its local solver (aggregate.h): defined here for
 * SGD with heavy-ball momentum or with FedProx's proximal term, started fresh every round. */
static int check_fednova(const fv_config *c, fv_err *e) {
    if (c->optimizer != FV_OPT_SGD)
        return fv_config_key_error(c, e, "training", "optimizer",
                                   "%s with [fl] aggregator = fednova: FedNova normalises by the steps of local "
                                   "SGD (with momentum or FedProx); use optimizer = sgd",
                                   choice_name(OPTIMIZERS, (int)c->optimizer));
    if (c->nesterov)
        return fv_config_key_error(c, e, "training", "nesterov",
                                   "true with [fl] aggregator = fednova: its normalisation is for heavy-ball "
                                   "momentum; set nesterov = false");
    if (c->opt_state == FV_OPTSTATE_KEEP)
        return fv_config_key_error(c, e, "training", "opt_state",
                                   "keep with [fl] aggregator = fednova: its normalisation assumes each round "
                                   "starts with a zero momentum buffer; use opt_state = reset");
    if (c->momentum > 0 && c->prox_mu > 0)
        return fv_config_key_error(c, e, "training", "prox_mu",
                                   "%g together with momentum %g under [fl] aggregator = fednova: its "
                                   "normalisation covers momentum or the proximal term, not both",
                                   c->prox_mu, c->momentum);
    if (c->lr * c->prox_mu >= 1)
        return fv_config_key_error(c, e, "training", "prox_mu",
                                   "lr x prox_mu = %g x %g must be below 1 under [fl] aggregator = fednova (each "
                                   "local step shrinks towards the global model by that factor)",
                                   c->lr, c->prox_mu);
    return 0;
}

/* SCAFFOLD's control variates (aggregate.h): option II's c_i+ = c_i - c + (x - y) / (K lr) is the
 * mean corrected gradient of the round only when each of the K local steps is y -= lr (g + c - c_i):
 * plain SGD (Karimireddy et al. 2020, Algorithm 1). Momentum (heavy ball or Nesterov), Adam and
 * ST-Adam would make (x - y) / (K lr) something else, and FedProx's term would enter the control
 * variates; the paper defines none of these combinations. A norm bound that clips an update would
 * move the model by less than the control delta the client computed from it. */
static int check_scaffold(const fv_config *c, fv_err *e) {
    if (c->optimizer != FV_OPT_SGD)
        return fv_config_key_error(c, e, "training", "optimizer",
                                   "%s with [fl] aggregator = scaffold: SCAFFOLD's control variates are the "
                                   "mean gradient of plain local SGD steps; use optimizer = sgd",
                                   choice_name(OPTIMIZERS, (int)c->optimizer));
    if (c->momentum > 0)
        return fv_config_key_error(c, e, "training", "momentum",
                                   "%g with [fl] aggregator = scaffold: the paper's local step is plain SGD (its "
                                   "control variate, (x - y) / (K lr), is no mean gradient under momentum); set "
                                   "momentum = 0 (a server_opt such as fedavgm may add momentum at the server)",
                                   c->momentum);
    if (c->nesterov)
        return fv_config_key_error(c, e, "training", "nesterov",
                                   "true with [fl] aggregator = scaffold: the local step is plain SGD; set "
                                   "nesterov = false");
    if (c->prox_mu > 0)
        return fv_config_key_error(c, e, "training", "prox_mu",
                                   "%g with [fl] aggregator = scaffold: SCAFFOLD corrects client drift with "
                                   "control variates, the proximal term would enter them; set prox_mu = 0",
                                   c->prox_mu);
    if (c->max_update_norm > 0 && c->norm_action == FV_NORM_CLIP)
        return fv_config_key_error(c, e, "fl", "norm_action",
                                   "clip with [fl] aggregator = scaffold: a clipped update would no longer match "
                                   "the control delta its client computed from it; use norm_action = reject");
    return 0;
}

/* An aggregation rule other than FedAvg: not together with DP; FedNova and SCAFFOLD with a local
 * solver they are defined for; a robust rule with enough clients per round for its parameters. */
static int check_aggregator(const fv_config *c, fv_err *e) {
    if (c->aggregator == FV_AGGREGATOR_FEDAVG) return 0;
    const char *rule = choice_name(AGGREGATORS, (int)c->aggregator);
    if (c->dp)
        return fv_config_key_error(c, e, "fl", "aggregator",
                                   "%s together with [dp] enabled = true: DP-FedAvg is an aggregation rule of "
                                   "its own (clipped deltas, uniform mean, noise); use aggregator = fedavg with "
                                   "DP (a server_opt may step from its output), or disable DP",
                                   rule);
    if (c->aggregator == FV_AGGREGATOR_FEDNOVA) return check_fednova(c, e);
    if (c->aggregator == FV_AGGREGATOR_SCAFFOLD) return check_scaffold(c, e);
    int m = fv_config_clients_per_round(c);
    if (c->aggregator == FV_AGGREGATOR_TRIMMED_MEAN) {
        int t = fv_config_trim_count(c->trim_fraction, m);
        if (t < 1)
            return fv_config_key_error(c, e, "fl", "trim_fraction",
                                       "%g of the %d clients sampled per round trims no update (floor(%g x %d) "
                                       "= 0): raise it to at least 1/%d or use median",
                                       c->trim_fraction, m, c->trim_fraction, m, m);
        if (2 * t >= m)
            return fv_config_key_error(c, e, "fl", "trim_fraction",
                                       "%g trims %d updates per side of the %d sampled per round and leaves "
                                       "nothing: keep it below 0.5 (or use median)",
                                       c->trim_fraction, t, m);
    }
    if (c->aggregator == FV_AGGREGATOR_KRUM || c->aggregator == FV_AGGREGATOR_MULTIKRUM) {
        if (m < fv_config_krum_min(c->krum_f))
            return fv_config_key_error(c, e, "fl", "krum_f",
                                       "%s with f = %d Byzantine clients needs more than 2f + 2 = %d clients per "
                                       "round, the round samples %d (clients %d x fraction %g)",
                                       rule, c->krum_f, 2 * c->krum_f + 2, m, c->clients, c->fraction);
        if (c->aggregator == FV_AGGREGATOR_MULTIKRUM && c->multikrum_m > m - c->krum_f)
            return fv_config_key_error(c, e, "fl", "multikrum_m",
                                       "%d is more than the %d clients per round less krum_f = %d: at most %d "
                                       "updates can be trusted",
                                       c->multikrum_m, m, c->krum_f, m - c->krum_f);
    }
    return 0;
}

int fv_config_synthetic_shape(const char *s, int *ch, int *h, int *w) {
    char tail;
    if (sscanf(s, "%dx%dx%d%c", ch, h, w, &tail) != 3) return -1;
    if (*ch < 1 || *ch > 4 || *h < 1 || *h > 1024 || *w < 1 || *w > 1024) return -1;
    return 0;
}

/* Parses an ascending list of ids in [lo, hi] ("" gives 0) from text, the value of `key`; on
 * failure writes the reason into why. unit names one item ("round", "client"), bound the key
 * that sets hi. */
static int id_list(const char *text, int lo, int hi, const char *unit, const char *bound, int *out, int cap,
                   char *why, size_t wcap) {
    const char *s = text;
    int n = 0;
    while (*s == ' ') s++;
    if (!*s) return 0;
    for (;;) {
        char *end;
        errno = 0;
        long r = strtol(s, &end, 10);
        if (end == s || errno) return snprintf(why, wcap, "'%.255s' is not a list of %ss like 3,8", text, unit), -1;
        if (r < lo || r > hi)
            return snprintf(why, wcap, "%s %ld is out of range [%d, %d] (%s)", unit, r, lo, hi, bound), -1;
        if (n > 0 && r <= out[n - 1])
            return snprintf(why, wcap, "%s %ld after %s %d: list each %s once, ascending", unit, r, unit, out[n - 1],
                            unit), -1;
        if (n == cap) return snprintf(why, wcap, "more than %d %ss", cap, unit), -1;
        out[n++] = (int)r;
        s = end;
        while (*s == ' ') s++;
        if (!*s) return n;
        if (*s != ',') return snprintf(why, wcap, "'%.255s' is not a list of %ss like 3,8", text, unit), -1;
        s++;
        while (*s == ' ') s++;
    }
}

static int round_list(const fv_config *c, int *out, int cap, char *why, size_t wcap) {
    return id_list(c->attack_rounds, 1, c->rounds, "round", "fl.rounds", out, cap, why, wcap);
}

static int client_list(const fv_config *c, int *out, int cap, char *why, size_t wcap) {
    return id_list(c->adv_clients, 0, c->clients - 1, "client", "fl.clients", out, cap, why, wcap);
}

int fv_config_client_list(const fv_config *c, int *out, int cap) {
    char why[FV_CFG_STR + 96];
    return client_list(c, out, cap, why, sizeof why);
}

int fv_config_round_list(const fv_config *c, int *out, int cap) {
    char why[FV_CFG_STR + 96];
    return round_list(c, out, cap, why, sizeof why);
}

/* The heterogeneity keys: deadline, comm_seconds and async need a trace; async is FedBuff over
 * plain FedAvg uploads (no other aggregation rule, server optimizer, DP, kept optimizer state or
 * attack, whose rules are per round); DP's accounting assumes uniform sampling of fl.fraction, which
 * availability breaks. */
static int check_hetero(const fv_config *c, fv_err *e) {
    const int has_trace = c->trace[0] != 0;
    if (!has_trace) {
        if (c->deadline > 0)
            return fv_config_key_error(c, e, "fl", "deadline", "needs [fl] trace (the clients' speeds give the durations)");
        if (c->comm_seconds > 0)
            return fv_config_key_error(c, e, "fl", "comm_seconds", "needs [fl] trace (there is no virtual clock without one)");
        if (c->mode == FV_MODE_ASYNC)
            return fv_config_key_error(c, e, "fl", "mode", "async needs [fl] trace (its events run on the virtual clock)");
    }
    if (has_trace && c->dp)
        return fv_config_key_error(c, e, "fl", "trace",
                                   "cannot be combined with [dp] enabled = true: DP's accountant assumes uniform "
                                   "sampling of fl.fraction, which availability and deadlines break");
    if (c->mode != FV_MODE_ASYNC) return 0;
    if (c->aggregator != FV_AGGREGATOR_FEDAVG)
        return fv_config_key_error(c, e, "fl", "aggregator", "%s with [fl] mode = async: FedBuff aggregates plain "
                                   "updates; use aggregator = fedavg", choice_name(AGGREGATORS, (int)c->aggregator));
    if (c->server_opt != FV_SOPT_NONE)
        return fv_config_key_error(c, e, "fl", "server_opt", "%s with [fl] mode = async: FedBuff's server step is "
                                   "its own (server_lr sets it); use server_opt = none",
                                   choice_name(SERVER_OPTS, (int)c->server_opt));
    if (c->opt_state == FV_OPTSTATE_KEEP)
        return fv_config_key_error(c, e, "training", "opt_state", "keep with [fl] mode = async: use opt_state = reset");
    if (c->attack_kind != FV_ATTACK_NONE)
        return fv_config_key_error(c, e, "attack", "kind", "%s with [fl] mode = async: the attacks are per round; "
                                   "use mode = sync", choice_name(ATTACK_KINDS, (int)c->attack_kind));
    return 0;
}

/* [secagg]: the server sees only the sum, so every rule that needs one client's update is
 * refused, naming the key that asks for it. */
static int check_secagg(const fv_config *c, fv_err *e) {
    if (c->sa_neighbours % 2 != 0)
        return fv_config_key_error(c, e, "secagg", "neighbours", "%d is odd: a Harary graph needs an even degree",
                                   c->sa_neighbours);
    if (c->sa_attacker == FV_SA_ATTACK_COHORT && (!c->sa || c->attack_kind != FV_ATTACK_INVERT))
        return fv_config_key_error(c, e, "secagg", "attacker", "cohort needs [secagg] enabled = true and [attack] kind "
                                   "= invert (it is how the inversion reads the aggregate)");
    if (!c->sa) return 0;
    if (fv_config_clients_per_round(c) < 3)
        return fv_config_key_error(c, e, "fl", "fraction", "%g of %d clients is %d per round; [secagg] needs at least 3 "
                                   "(with 2, each learns the other's update from the sum)", c->fraction, c->clients,
                                   fv_config_clients_per_round(c));
    if (c->aggregator != FV_AGGREGATOR_FEDAVG)
        return fv_config_key_error(c, e, "fl", "aggregator", "%s with [secagg] enabled: the server sees only the "
                                   "sum of the updates; use aggregator = fedavg (a server optimizer is fine)",
                                   choice_name(AGGREGATORS, (int)c->aggregator));
    if (c->dp)
        return fv_config_key_error(c, e, "dp", "enabled", "with [secagg] enabled: DP-FedAvg clips each client's "
                                   "update at the server, which secure aggregation hides");
    if (c->max_update_norm > 0)
        return fv_config_key_error(c, e, "fl", "max_update_norm", "with [secagg] enabled: the server cannot see "
                                   "one update's norm ([secagg] clip bounds each coordinate instead)");
    if (c->opt_state == FV_OPTSTATE_KEEP)
        return fv_config_key_error(c, e, "training", "opt_state", "keep with [secagg] enabled: the kept state would "
                                   "travel to the server in the clear; use opt_state = reset");
    if (c->mode == FV_MODE_ASYNC)
        return fv_config_key_error(c, e, "fl", "mode", "async with [secagg] enabled: FedBuff aggregates updates "
                                   "one by one; use mode = sync");
    return 0;
}

/* [attack]'s values, checked with kind = none too (a bad value is an error even where no attack
 * runs); what a kind needs of the other sections is fv_attack_check_config's. */
static int check_attack(const fv_config *c, fv_err *e) {
    char why[FV_CFG_STR + 96];
    /* a cap as large as the rounds: only the syntax and range can fail */
    int *rs = fv_malloc(sizeof(int) * (size_t)c->rounds);
    int n = round_list(c, rs, c->rounds, why, sizeof why);
    free(rs);
    if (n < 0) return fv_config_key_error(c, e, "attack", "rounds", "%s", why);
    if (c->attack_client >= c->clients)
        return fv_config_key_error(c, e, "attack", "client", "%d is not a client id (fl.clients = %d: ids 0..%d)",
                                   c->attack_client, c->clients, c->clients - 1);
    if (strcmp(c->dataset, "synthetic") == 0 && c->attack_target >= c->synthetic_classes)
        return fv_config_key_error(c, e, "attack", "target", "class %d, but the synthetic set has %d classes",
                                   c->attack_target, c->synthetic_classes);
    return 0;
}

/* [adversary]: the client list is checked whatever the kind (unused keys are checked too); the
 * rest only matters when some client is malicious. */
static int check_adversary(const fv_config *c, fv_err *e) {
    char why[FV_CFG_STR + 96];
    int *ids = fv_malloc(sizeof(int) * (size_t)c->clients);
    int n = client_list(c, ids, c->clients, why, sizeof why);
    free(ids);
    if (n < 0) return fv_config_key_error(c, e, "adversary", "clients", "%s", why);
    if (c->adv_kind == FV_ADV_NONE) return 0;
    if (n == 0 && lround(c->adv_fraction * c->clients) < 1)
        return fv_config_key_error(c, e, "adversary", "fraction",
                                   "%g of %d clients is no malicious client (kind = %s needs at least one)",
                                   c->adv_fraction, c->clients, choice_name(ADV_KINDS, c->adv_kind));
    if (c->attack_kind == FV_ATTACK_GAN_ACTIVE)
        return fv_config_key_error(c, e, "adversary", "kind",
                                   "cannot be combined with [attack] kind = gan_active (both change a client's "
                                   "training)");
    if (strcmp(c->dataset, "synthetic") == 0 && c->adv_kind == FV_ADV_BACKDOOR && c->adv_target >= c->synthetic_classes)
        return fv_config_key_error(c, e, "adversary", "target", "class %d, but the synthetic set has %d classes",
                                   c->adv_target, c->synthetic_classes);
    return 0;
}

/* Every text key holds UTF-8 without control characters, including a value set outside the parser
 * (output.name derived from the file's name). */
static int check_text(const fv_config *c, fv_err *e) {
    for (int k = 0; k < NKEYS; k++) {
        fv_err te;
        if (SCHEMA[k].type == T_STRING && fv_config_text_check((const char *)c + SCHEMA[k].off, &te) != 0)
            return fv_config_key_error(c, e, SCHEMA[k].section, SCHEMA[k].key,
                                       "%s (text must be UTF-8 without control characters)", te.msg);
    }
    return 0;
}

/* 0 when name is a model of the zoo; else -1 with e naming section.key, the value and the models. */
static int known_model(const fv_config *c, fv_err *e, const char *section, const char *key, const char *name) {
    const char *const *names = fv_model_names();
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0) return 0;
    char list[512];
    fv_model_list(list, sizeof list);
    return fv_config_key_error(c, e, section, key, "unknown model '%s' (known: %s)", name, list);
}

/* [distill]: the student must be a model of the zoo, and public images taken from the run's own
 * folder must lie past the clients' ones (a privacy tool must not distil on the private data). */
static int check_distill(const fv_config *c, fv_err *e) {
    if (!c->kd_student[0]) return 0;
    if (known_model(c, e, "distill", "student", c->kd_student) != 0) return -1;
    int dev;
    fv_err de = {0};
    if (fv_device_parse(c->kd_device, &dev, &de) != 0)
        return fv_config_key_error(c, e, "distill", "device", "%s", de.msg);
    if (c->attack_kind == FV_ATTACK_GAN_ACTIVE)
        return fv_config_key_error(c, e, "distill", "student",
                                   "cannot be combined with [attack] kind = gan_active (its model has an extra fake "
                                   "class the public labels do not have)");
    if (strcmp(c->dataset, "synthetic") == 0) {
        if (c->kd_images < 1)
            return fv_config_key_error(c, e, "distill", "images",
                                       "must be set for synthetic data (the public set is its own draw of that many "
                                       "images)");
        return 0;
    }
    const int own = !c->kd_dir[0] || strcmp(c->kd_dir, c->data_dir) == 0;
    if (own && c->train_size == 0)
        return fv_config_key_error(c, e, "distill", "first",
                                   "the public images would come from the run's own folder, whose whole training split "
                                   "the clients hold (data.train_size = 0): set data.train_size to leave images out "
                                   "and first at or past it, or [distill] dir to another folder");
    if (own && c->kd_first < c->train_size)
        return fv_config_key_error(c, e, "distill", "first",
                                   "%d overlaps the clients' images 0..%d of the run's own folder: set first >= %d "
                                   "(data.train_size) or [distill] dir to another folder",
                                   c->kd_first, c->train_size - 1, c->train_size);
    return 0;
}

int fv_config_check(const fv_config *c, fv_err *e) {
    int m = fv_config_clients_per_round(c);
    if (c->min_clients > m)
        return fv_config_key_error(c, e, "fl", "min_clients",
                                   "%d is more than the %d clients sampled per round (clients %d x fraction %g)",
                                   c->min_clients, m, c->clients, c->fraction);
    if (known_model(c, e, "model", "name", c->model) != 0) return -1;
    int ch, h, w; /* checked for any data set: a bad value is an error even where it is not used */
    if (fv_config_synthetic_shape(c->synthetic_shape, &ch, &h, &w) != 0)
        return fv_config_key_error(c, e, "data", "synthetic_shape",
                                   "'%s' is not CxHxW with 1 <= C <= 4 and sides 1..1024", c->synthetic_shape);
    if (check_text(c, e) != 0) return -1;
    if (c->partition == FV_PART_SHARDS && c->shards_per_client < 1)
        return fv_config_key_error(c, e, "partition", "shards_per_client", "must be at least 1");
    if (c->heartbeat * 2 >= c->worker_timeout)
        return fv_config_key_error(c, e, "fl", "worker_timeout",
                                   "%g s must exceed twice the heartbeat interval (%g s)", c->worker_timeout,
                                   c->heartbeat);
    if (c->opt_state == FV_OPTSTATE_KEEP && c->optimizer == FV_OPT_SGD && c->momentum == 0)
        return fv_config_key_error(c, e, "training", "opt_state",
                                   "keep has nothing to keep: SGD without momentum has no state (set "
                                   "training.momentum or opt_state = reset)");
    for (const char *p = c->name; *p; p++)
        if (*p == '/' || (p == c->name && *p == '.'))
            return fv_config_key_error(c, e, "output", "name",
                                       "'%s' must be a plain folder name (no '/', no leading '.')", c->name);
    if (c->obf_kind != FV_DEFENCE_NONE && c->vmix)
        return fv_config_key_error(c, e, "obfuscation", "kind",
                                   "%s together with [visualmixer] enabled = true: a client trains behind one "
                                   "defence; set kind = none or disable VisualMixer",
                                   choice_name(OBF_KINDS, (int)c->obf_kind));
    if (check_aggregator(c, e) != 0) return -1;
    if (check_server_opt(c, e) != 0) return -1;
    if (check_hetero(c, e) != 0) return -1;
    if (check_attack(c, e) != 0) return -1;
    if (check_distill(c, e) != 0) return -1;
    if (check_secagg(c, e) != 0) return -1;
    return check_adversary(c, e);
}

void fv_config_fmt_double(char *out, size_t cap, double x) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, x);
        if (strtod(out, NULL) == x) return;
    }
}

static void value_text(const fv_config *c, int k, char *out, size_t cap) {
    const key_def *d = &SCHEMA[k];
    const char *src = (const char *)c + d->off;
    switch (d->type) {
    case T_INT: snprintf(out, cap, "%d", *(const int *)src); break;
    case T_I64: snprintf(out, cap, "%lld", (long long)*(const int64_t *)src); break;
    case T_FLOAT:
        if (d->keyword && *(const double *)src == FV_CFG_AUTO) snprintf(out, cap, "%s", d->keyword);
        else fv_config_fmt_double(out, cap, *(const double *)src);
        break;
    case T_BOOL: snprintf(out, cap, "%s", *(const int *)src ? "true" : "false"); break;
    case T_STRING:
    case T_WORD: snprintf(out, cap, "%s", src); break;
    case T_ENUM: snprintf(out, cap, "%s", choice_name(d->choices, *(const int *)src)); break;
    }
}

char *fv_config_write(const fv_config *c) {
    size_t cap = 16384, len = 0;
    char *buf = fv_malloc(cap);
    const char *cur = "";
    fv_config def;
    fv_config_defaults(&def);
    len += (size_t)snprintf(buf, cap, "; fedvim resolved experiment config: every key, as it ran\n");
    for (int k = 0; k < NKEYS; k++) {
        char val[FV_CFG_STR + 8], dval[FV_CFG_STR + 8];
        value_text(c, k, val, sizeof val);
        value_text(&def, k, dval, sizeof dval);
        const int at_default = strcmp(val, dval) == 0; /* an unused key set elsewhere is still written */
        if (c->attack_kind == FV_ATTACK_NONE && strcmp(SCHEMA[k].section, "attack") == 0 && at_default) continue;
        if (!c->dp && strcmp(SCHEMA[k].section, "dp") == 0 && at_default) continue;
        if (c->obf_kind == FV_DEFENCE_NONE && strcmp(SCHEMA[k].section, "obfuscation") == 0 && at_default) continue;
        if (c->adv_kind == FV_ADV_NONE && strcmp(SCHEMA[k].section, "adversary") == 0 && at_default) continue;
        if (!c->kd_student[0] && strcmp(SCHEMA[k].section, "distill") == 0 && at_default) continue;
        if (!c->sa && strcmp(SCHEMA[k].section, "secagg") == 0 && at_default) continue;
        if (c->aggregator == FV_AGGREGATOR_FEDAVG && robust_key(k) && at_default) continue;
        if (c->server_opt == FV_SOPT_NONE && server_opt_key(k) && at_default) continue;
        if (hetero_key(k) && at_default) continue;
        for (;;) {
            size_t need = strlen(SCHEMA[k].section) + strlen(SCHEMA[k].key) + strlen(val) + 16;
            if (len + need < cap) break;
            cap *= 2;
            buf = fv_realloc(buf, cap);
        }
        if (strcmp(cur, SCHEMA[k].section) != 0) {
            cur = SCHEMA[k].section;
            len += (size_t)snprintf(buf + len, cap - len, "\n[%s]\n", cur);
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s = %s\n", SCHEMA[k].key, val);
    }
    return buf;
}

void fv_config_print_schema(FILE *f) {
    const char *cur = "";
    fprintf(f, "Experiment config keys (INI; override any with --set section.key=value):\n");
    for (int k = 0; k < NKEYS; k++) {
        const key_def *d = &SCHEMA[k];
        if (strcmp(cur, d->section) != 0) {
            cur = d->section;
            fprintf(f, "\n[%s]\n", cur);
        }
        char range[96] = "";
        if (d->type == T_INT || d->type == T_I64) snprintf(range, sizeof range, ", %.0f..%.0f", d->lo, d->hi);
        else if (d->type == T_FLOAT && d->keyword) snprintf(range, sizeof range, ", %g..%g or %s", d->lo, d->hi, d->keyword);
        else if (d->type == T_FLOAT) snprintf(range, sizeof range, ", %g..%g", d->lo, d->hi);
        else if (d->type == T_ENUM || d->type == T_WORD) {
            char list[80];
            choice_list(d->choices, list, sizeof list);
            snprintf(range, sizeof range, ", one of %s", list);
        }
        static const char *const tn[] = {"int", "int", "number", "bool", "text", "choice", "choice"};
        fprintf(f, "  %-18s = %-18s (%s%s)\n      %s\n", d->key, *d->def ? d->def : "\"\"", tn[d->type], range,
                d->help);
    }
}

fv_config_bounds fv_config_range(const char *key) {
    const char *dot = strchr(key, '.');
    FV_ASSERT(dot);
    for (int k = 0; k < NKEYS; k++) {
        const key_def *d = &SCHEMA[k];
        if (strlen(d->section) == (size_t)(dot - key) && strncmp(d->section, key, (size_t)(dot - key)) == 0 &&
            strcmp(d->key, dot + 1) == 0) {
            if (d->type != T_INT && d->type != T_I64 && d->type != T_FLOAT)
                FV_DIE("config key %s is not a number", key);
            return (fv_config_bounds){d->lo, d->hi};
        }
    }
    FV_DIE("no config key %s", key);
}
