/* config.h: an experiment's configuration: INI files read with libinih against one schema table
 * (section, key, type, default, range, help), command-line overrides (`--set fl.rounds=50`), the
 * checks that tie keys together, and the resolved INI that records exactly what ran.
 *
 * Every error names its source and the key: "exp.ini:12: [fl] rounds: expected an integer, got
 * 'ten'", "--set fl.rounds=0: [fl] rounds: 0 is out of range [1, 1000000]". Unknown sections and
 * keys, keys given twice, wrong types and out-of-range values are all errors, and so are a file
 * that sets no key, text after a section header ("[fl] junk") and text that is not UTF-8 or holds
 * control characters; a key's value is checked even where the run does not use it ([attack] with
 * kind = none). Nothing is silently ignored.
 *
 * The resolved text (fv_config_write) lists every key of the schema with its value, so it can
 * be read back to the identical fv_config (numbers are written in their shortest exact form).
 * The coordinator sends it to each worker, which parses it with this same module.
 * Not here: what the keys do (coordinator/, worker/, cli/), nor what an [attack] kind needs of
 * the other sections (the attack's rule: fv_attack_check_config in attacks/attack_api.h).
 */
#ifndef FV_CONFIG_H
#define FV_CONFIG_H
#include <stdint.h>
#include <stdio.h>

#include "data/partition.h"
#include "fv_common.h"
#include "nn/optim.h"
#include "vmix/defence.h"
#include "vmix/vmix.h"
#include "vmix/vmix_bounds.h"

#define FV_CFG_STR 256
/* Keys the schema may hold (config.c asserts it): the size of the per-key line records. */
#define FV_CFG_MAX_KEYS 160
/* The stored value of a number key set to its keyword ("auto"); outside every key's range. */
#define FV_CFG_AUTO (-1.0)

typedef enum { FV_OPTSTATE_RESET, FV_OPTSTATE_KEEP } fv_optstate_policy;
/* What the coordinator does with an update over fl.max_update_norm. */
typedef enum { FV_NORM_REJECT, FV_NORM_CLIP } fv_norm_action;
/* [attack] kind: which attack runs (what each does: attacks/attack_api.h). */
typedef enum {
    FV_ATTACK_NONE,
    FV_ATTACK_GAN,
    FV_ATTACK_DLG,
    FV_ATTACK_MIA,
    FV_ATTACK_GAN_ACTIVE,
    FV_ATTACK_INVERT
} fv_attack_kind;
/* [adversary] kind: what the simulated malicious clients do (shared/fl/adversary.h). */
typedef enum {
    FV_ADV_NONE,
    FV_ADV_SIGN_FLIP,
    FV_ADV_SCALE,
    FV_ADV_NOISE,
    FV_ADV_HUGE,
    FV_ADV_LABEL_FLIP,
    FV_ADV_BACKDOOR
} fv_adv_kind;
/* [fl] aggregator: the server's aggregation rule (what each does: shared/fl/aggregate.h). */
typedef enum {
    FV_AGGREGATOR_FEDAVG,
    FV_AGGREGATOR_MEDIAN,
    FV_AGGREGATOR_TRIMMED_MEAN,
    FV_AGGREGATOR_KRUM,
    FV_AGGREGATOR_MULTIKRUM,
    FV_AGGREGATOR_CLIP,
    FV_AGGREGATOR_CENTERED_CLIP,
    FV_AGGREGATOR_FEDNOVA,
    FV_AGGREGATOR_SCAFFOLD
} fv_aggregator;
/* [fl] server_opt: the server optimizer stepping from each round's aggregate (shared/fl/server_opt.h). */
typedef enum { FV_SOPT_NONE, FV_SOPT_FEDAVGM, FV_SOPT_FEDADAM, FV_SOPT_FEDYOGI, FV_SOPT_FEDADAGRAD } fv_server_opt;
/* [fl] mode: synchronous rounds, or FedBuff's asynchronous buffered aggregation (docs/heterogeneity.md). */
typedef enum { FV_MODE_SYNC, FV_MODE_ASYNC } fv_fl_mode;
/* [secagg] attacker: what the in-run inversion ([attack] kind = invert) takes the round's
 * aggregate for: the victim's own update, or one step over the whole cohort's images. */
typedef enum { FV_SA_ATTACK_VICTIM, FV_SA_ATTACK_COHORT } fv_sa_attacker;

/* [fl] staleness: FedBuff's weight of an update s server steps stale (shared/fl/fedbuff.h). */
typedef enum { FV_STALE_SQRT, FV_STALE_INVERSE, FV_STALE_CONSTANT } fv_staleness;

typedef struct {
    /* [data] */
    char dataset[FV_CFG_STR];      /* mnist | fashion | cmnist | cifar10 | synthetic */
    char data_dir[FV_CFG_STR];     /* "" = the data set's default folder */
    int train_size, test_size;     /* 0 = the whole split (synthetic: 6000 / 1000) */
    char synthetic_shape[FV_CFG_STR]; /* CxHxW of synthetic images */
    int synthetic_classes;
    /* [partition] */
    fv_part_scheme partition;
    double alpha;                  /* Dirichlet concentration */
    int shards_per_client;
    int min_samples;
    /* [model] */
    char model[FV_CFG_STR];
    /* [training] */
    fv_opt_kind optimizer;
    double lr, momentum, weight_decay, beta1, beta2, eps, stadam_mu, prox_mu;
    int nesterov;
    int local_epochs, batch_size;
    fv_optstate_policy opt_state;
    int threads;
    int tf32; /* [training] tf32: CUDA workers allow TF32 tensor cores (nn/trainer.h) */
    /* [fl] */
    int clients;
    double fraction;
    int rounds, min_clients, workers;
    int64_t seed;
    double round_timeout, worker_timeout, heartbeat, join_timeout;
    int eval_every, eval_batch, tasks_per_worker;
    int worker_slots; /* clients a worker trains at once (worker.h) */
    fv_aggregator aggregator;      /* FedAvg, FedNova, SCAFFOLD or a robust rule (shared/fl/aggregate.h) */
    double trim_fraction;          /* trimmed_mean: fraction trimmed per side */
    int krum_f, multikrum_m;       /* krum, multikrum: Byzantine clients assumed; multikrum: updates averaged */
    double clip_norm;              /* clip, centered_clip: L2 bound of each update's delta */
    fv_server_opt server_opt;      /* the server optimizer (shared/fl/server_opt.h) */
    double server_lr;              /* its learning rate; FV_CFG_AUTO: fv_config_server_lr */
    double server_momentum, server_beta1, server_beta2, server_tau;
    double max_update_norm;        /* L2 bound of update - global (0: off) */
    fv_norm_action norm_action;
    /* heterogeneity (docs/heterogeneity.md; shared/fl/trace.h, shared/fl/vclock.h) */
    char trace[FV_CFG_STR];        /* the clients' speed and availability trace ("": no virtual clock) */
    double deadline;               /* virtual seconds a client may take per task (0: none) */
    double comm_seconds;           /* virtual seconds added to every task (communication) */
    fv_fl_mode mode;               /* sync rounds or async (FedBuff) */
    int buffer_size, concurrency;  /* async: updates per server step K, clients training at once */
    fv_staleness staleness;        /* async: the staleness weighting */
    /* [visualmixer] */
    int vmix;                      /* enabled */
    double vmix_vfe_target, vmix_alpha, vmix_lambda, vmix_p;
    double vmix_d_star; /* FV_CFG_AUTO: d* = vmix_d_rel x the shard's d_p at the whole image */
    double vmix_d_rel;
    int vmix_block, vmix_unit, vmix_verify, vmix_trials;
    fv_vmix_mode vmix_mode;
    fv_vmix_conflict vmix_conflict;
    /* [obfuscation]: a baseline defence each client applies to its shard instead of VisualMixer
     * (shared/vmix/defence.h; made like the mixed shard: once, offline, with the client's key) */
    fv_defence_kind obf_kind; /* FV_DEFENCE_NONE (off), FV_DEFENCE_SHUFFLE or FV_DEFENCE_NOISE */
    int obf_window;           /* shuffle: window side in pixels */
    double obf_sigma;         /* noise: std on the [0, 1] pixel scale */
    /* [security] */
    int security;                  /* enabled: CURVE + ZAP allow-list + signed updates */
    int max_strikes;
    /* [attack] (the coordinator's passive attacker, or gan_active: a participating client;
     * docs/attacks.md, attacks/attack_api.h) */
    fv_attack_kind attack_kind;
    char attack_rounds[FV_CFG_STR]; /* "3,8" or "8"; "": the attack's default (fv_attack_rounds) */
    int attack_client, attack_target;
    char attack_settings[FV_CFG_STR]; /* "key=value,..." for the attack (attacks/attack_api.h) */
    /* [dp] (DP-FedAvg: clipped update deltas, uniform average, Gaussian noise; shared/fl/dp.h) */
    int dp;                        /* enabled */
    double dp_clip, dp_noise, dp_delta;
    /* [adversary] (simulated malicious clients, run by the workers; shared/fl/adversary.h) */
    fv_adv_kind adv_kind;
    double adv_fraction;           /* share of fl.clients that is malicious (when adv_clients is "") */
    char adv_clients[FV_CFG_STR];  /* "3,7" or "": the malicious ids, ascending */
    double adv_scale;              /* factor on the update's delta; FV_CFG_AUTO: the kind's own */
    double adv_noise_std, adv_huge_value, adv_poison_fraction;
    int adv_target, adv_trigger_size;
    /* [secagg] (secure aggregation: the coordinator learns only the sum; shared/fl/secagg.h) */
    int sa;                        /* enabled */
    int sa_neighbours;             /* SecAgg+ neighbourhood size k (even; 0: every other client) */
    double sa_threshold;           /* Shamir threshold as a fraction of k: t = floor(frac k) + 1 */
    double sa_clip;                /* per-coordinate range of a client's delta in the fixed point */
    fv_sa_attacker sa_attacker;    /* what [attack] invert takes the aggregate for */
    /* [distill] (the server-side student of the final global model; coordinator/server_kd.h) */
    char kd_student[FV_CFG_STR];   /* "": none */
    char kd_dir[FV_CFG_STR];       /* "": the run's own data folder */
    int kd_first, kd_images;       /* public training images [first, first + images); images 0: to the end */
    int kd_epochs, kd_batch;
    fv_opt_kind kd_optimizer;
    double kd_lr, kd_temperature, kd_alpha;
    char kd_device[FV_CFG_STR];    /* "cpu", "cuda" or "cuda:N" (fv_device_parse) */
    /* [output] */
    char out_dir[FV_CFG_STR];
    char name[FV_CFG_STR];
    int save_model;

    /* where each key was set: 0 default, else a 1-based line in `file` (-1: --set) */
    int origin_line[FV_CFG_MAX_KEYS];
    char file[FV_CFG_STR];
} fv_config;

/* Fill every key with its default. */
void fv_config_defaults(fv_config *c);

/* Read an INI file on top of c (normally fresh from fv_config_defaults). The file may set any
 * subset of keys. Returns 0 or -1 with e naming file:line, [section] key and the problem. */
FV_MUST_USE int fv_config_load(fv_config *c, const char *path, fv_err *e);

/* Same from text in memory; `name` stands for the file in messages. */
FV_MUST_USE int fv_config_parse(fv_config *c, const char *name, const char *text, size_t len, fv_err *e);

/* Apply one "section.key=value" override. Returns 0 or -1 with e naming the override. */
FV_MUST_USE int fv_config_set(fv_config *c, const char *assignment, fv_err *e);

/* Check the keys together (min_clients <= clients * fraction, known model, [attack]
 * rounds/client/target within fl.rounds, fl.clients and the synthetic classes, also with kind =
 * none; synthetic_shape also for other data sets; every text key by fv_config_text_check, also one
 * set outside the parser such as a derived output.name; FedNova's and SCAFFOLD's local solver,
 * server_* keys only with a server_opt (server_lr also with aggregator = scaffold)...). Errors
 * name the keys involved and where they were set. An entry point that runs an attack checks
 * fv_attack_check_config (attacks/attack_api.h) as well. */
FV_MUST_USE int fv_config_check(const fv_config *c, fv_err *e);

/* [adversary] clients as ascending ids into out[0..cap): their number (0 for ""), or -1 when
 * the list is malformed, not ascending, names an id >= fl.clients or holds more than cap. */
FV_MUST_USE int fv_config_client_list(const fv_config *c, int *out, int cap);

/* The one rule for text that reaches logs and JSON (config text keys, names a peer sends): valid
 * UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without control characters
 * (C0, DEL, C1). Returns 0, or -1 with e saying what is wrong at which byte offset (the caller
 * names the key or the peer). */
FV_MUST_USE int fv_config_text_check(const char *s, fv_err *e);

/* Set e to a problem with [section] key of c, in the style of every config error: where the key
 * was set ("exp.ini:12", "--set" or "default"), "[section] key: ", then fmt's text. For checks
 * outside this module that tie keys together. Returns -1 (as fv_err_set, for `return
 * fv_config_key_error(...)`); a key outside the schema is a programmer error (aborts). */
int fv_config_key_error(const fv_config *c, fv_err *e, const char *section, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The resolved config as INI text (every key; caller frees). The [attack] section is written
 * only when attack.kind is not none, so a run without an attack resolves to the same text (and
 * config hash) as before the section existed, and its results folder still resumes; the same
 * holds for [dp], written only when dp.enabled is true, for [adversary], written only when its kind
 * is not none, for [fl] aggregator and its parameters
 * (trim_fraction, krum_f, multikrum_m, clip_norm), written only when aggregator is not fedavg, and
 * for [fl] server_opt and its parameters (server_lr, server_momentum, server_beta1, server_beta2,
 * server_tau), written only when server_opt is not none. A key of those left out is still written
 * when its value is not the default, so the text always reads back to the identical config. */
char *fv_config_write(const fv_config *c);

/* 1 when the clients transform their shards with a secret key of their own ([visualmixer]
 * enabled or an [obfuscation] kind), so the workers need the clients' key file; else 0. */
int fv_config_client_keyed(const fv_config *c);

/* Number of clients sampled per round: max(1, round(fraction * clients)). */
int fv_config_clients_per_round(const fv_config *c);

/* Clients training at once under [fl] mode = async: min(fl.concurrency, fl.clients). */
int fv_config_concurrency(const fv_config *c);

/* Updates trimmed_mean drops per side and coordinate from k arrived ones at `fraction`:
 * floor(fraction * k) (with 1e-9 of slack for the rounding of fraction * k). */
int fv_config_trim_count(double fraction, int k);

/* The server learning rate of c: fl.server_lr, or for auto the optimizer's own default (1 for
 * fedavgm, 10^-2 for fedadam and fedyogi, 10^-1 for fedadagrad, whose v only grows; 1 for none,
 * which takes no step, or which is SCAFFOLD's global step size eta_g with aggregator = scaffold). */
double fv_config_server_lr(const fv_config *c);

/* The fewest arrived updates Krum and Multi-Krum take with f assumed Byzantine clients: 2f + 3
 * (each score sums the distances to the k - f - 2 closest others, Blanchard et al. 2017). */
int fv_config_krum_min(int f);

/* Parse a synthetic_shape value "CxHxW" (1 <= C <= 4, sides 1..1024). Returns 0 or -1. */
int fv_config_synthetic_shape(const char *s, int *ch, int *h, int *w);

/* The rounds listed in [attack] rounds, ascending, into out[cap]. Returns the count: 0 for "" (no
 * list: what that means is the attack's rule, fv_attack_rounds in attacks/attack_api.h), or -1
 * when the list is malformed, out of [1, fl.rounds], repeated or longer than cap
 * (fv_config_check reports which). */
FV_MUST_USE int fv_config_round_list(const fv_config *c, int *out, int cap);

/* The enum value of `word` for the choice key [section] key, from that key's table (the one place
 * its words are written), for a command-line flag that offers the same choices. Returns 0, or -1
 * with e listing the words. A key that is no choice is a programmer error (aborts). */
FV_MUST_USE int fv_config_choice_value(const char *section, const char *key, const char *word, int *value, fv_err *e);

/* The word of [attack] kind for k ("gan_active" for FV_ATTACK_GAN_ACTIVE), from the key's table;
 * a value outside it is a programmer error and aborts. */
const char *fv_config_attack_kind_name(fv_attack_kind k);
/* The same for [adversary] kind ("backdoor" for FV_ADV_BACKDOOR). */
const char *fv_config_adv_kind_name(fv_adv_kind k);
/* The same for [fl] staleness ("sqrt" for FV_STALE_SQRT). */
const char *fv_config_staleness_name(fv_staleness k);
/* The same for [fl] server_opt ("fedadam" for FV_SOPT_FEDADAM). */
const char *fv_config_server_opt_name(fv_server_opt k);

/* x as the shortest text that reads back to exactly x (strtod), into out[cap] (32 bytes suffice);
 * the resolved config's numbers and trace files (trace.h) are written so. */
void fv_config_fmt_double(char *out, size_t cap, double x);

/* Print the schema (every section, key, type, default, range and help) to f. */
void fv_config_print_schema(FILE *f);

/* The inclusive range [lo, hi] of the number key `key` ("training.lr"), for a command-line flag
 * that sets the same quantity outside a config (fedvim train --lr), so that both accept the same
 * values from the schema's one bound. Aborts on an unknown key or one that is not a number
 * (callers name keys as constants: a programmer error). */
typedef struct {
    double lo, hi;
} fv_config_bounds;
fv_config_bounds fv_config_range(const char *key);

#endif
