/* attack_api.h: the one narrow interface through which the coordinator (the honest-but-curious
 * server) runs the built-in attacks on what it sees during a federated run: a client's uploaded
 * parameter vector at a chosen round. One request in, one JSON object of figures out.
 *
 *  - "gan": the passive GAN attacker (gan.h) with the client's upload as the fixed discriminator;
 *  - "dlg": DLG / iDLG, a configuration of the gradient-inversion engine (invert.h: L2 matching,
 *    L-BFGS, labels by the iDLG / count rule) on the client's gradient (global - upload) / lr,
 *    exact when the client made one plain SGD step (model "dlg_lenet", one batch of 1..8 images);
 *  - "mia": membership inference (mia.h) against the upload and against the global model;
 *  - "invert": Inverting Gradients (invert.h) on the federation's own model: the update
 *    global - upload is matched by images pushed through the client's local plain-SGD steps
 *    (E epochs over batches of B, step lr), labels inferred from the update; any zoo model whose
 *    output is a linear layer, a client of 1..FV_INVERT_MAX_IMAGES images;
 *  - "gan_active": Hitaj's active attacker, a participating client. Its worker calls
 *    fv_attack_active_samples (G trained against the global model it received, as `upload`;
 *    the model has classes + 1 outputs, the last the fake class) and trains on G's samples
 *    labelled fake; the coordinator's fv_attack_run("gan_active") replays that G (same recipe,
 *    discriminator and seed fv_attack_seed; bit-identical when both run single-threaded) and
 *    judges it exactly as "gan" does.
 * The attacks use only the upload, the global model and public knowledge (labels, the data
 * domain, the recipe). The data fields below serve the EVALUATION only (the victim's originals
 * for SSIM, held-out images for the oracle and the shadows), as a simulator may.
 *
 * Settings are "key=value" pairs separated by commas; unknown keys are errors. Keys:
 *   gan: steps (300), batch (32), lr (1e-3), nz (100), ch1 (32), ch2 (16), bn (1), tv (0),
 *        norm_prior (0.3), diversity (0), jitter (2), samples (64), refs (200),
 *        oracle_model (lenet5), oracle_epochs (2), oracle_cache (none)
 *   gan_active: the gan keys, plus fake (0: as many generated samples as the attacker's own
 *        images per attacked round)
 *   dlg: lr (the client's SGD step, required), iters (300), restarts (1),
 *        optimizer (lbfgs|adam|adam-signed), objective (l2|cosine), fd_scale (3e-4: invert.h's
 *        step rule), target (1e-12: stop at this relative matching loss; 0: never)
 *   mia: shadows (8), epochs (5), lr (1e-3), batch (32), attacker_images (2000), queries (500)
 *   invert: lr, epochs, batch (the client's SGD step, local epochs and batch size: the coordinator
 *        supplies the run's), iters (500), restarts (1), step (0.1: the attack's Adam step),
 *        tv (1e-4), fd_scale (3e-4), fd (central|one-sided), labels (inferred|known),
 *        bn_prior (0: off; the batch-norm statistics prior's weight, models with batch norm),
 *        inverter_epochs (0: no learned inverter in the chain), inverter_images (4000),
 *        inverter_device (cpu|cuda|cuda:N: where the chain's inverter trains and runs),
 *        device (cpu|cuda|cuda:N: where the inversion engine's passes run, docs/attacks.md 7.5)
 * The attack rules a federated run needs outside this folder live here too, so that the config
 * layer and the model constructor know no attack: what an attack needs of the rest of the config
 * (fv_attack_check_config), the model's outputs under an attack (fv_attack_model_classes) and the
 * rounds an attack acts in (fv_attack_rounds).
 * Not here: parsing [attack] (shared/fl/config.h), the attacks themselves.
 */
#ifndef FV_ATTACK_API_H
#define FV_ATTACK_API_H
#include <stddef.h>
#include <stdint.h>

#include "data/data.h"
#include "fl/config.h"
#include "fv_common.h"
#include "nn/net.h"
#include "vmix/vmix.h"

/* The most images of one client that "invert" attacks in a run (one update, all its images). */
#define FV_INVERT_MAX_IMAGES 64

typedef struct {
    const char *attack;       /* "gan", "gan_active", "dlg", "mia" or "invert" */
    const char *settings;     /* "key=value,..." (NULL or "": defaults) */
    /* what the server sees */
    const char *model;        /* shared/nn/models.h name of the federation's model */
    fv_shape input;
    int classes;
    fv_norm norm;             /* the federation's input normalisation */
    const float *upload;      /* the client's uploaded parameters [n_params] */
    const float *global;      /* the global parameters the client started from [n_params] (dlg, mia) */
    size_t n_params;
    int target;               /* gan: the class aimed at */
    /* evaluation only */
    const fv_dataset *data;   /* the training split the clients' images come from */
    const int *victim_idx;    /* the client's images in data */
    int n_victim;
    const fv_dataset *victim_mixed; /* the images as the client trained on them, same indices as
                                       data; NULL without VisualMixer */
    const fv_vmix_params *vp; /* the federation's mixing (NULL: none); mia shadows and fresh-key
                                 queries use it */
    const fv_vmix_params *victim_vp; /* the victim's own mixing (its bounds; NULL: unknown), with
                                        victim_mixed: invert's chain reassembles with its true map */
    const int *heldout_idx;   /* images of data that no client holds */
    int n_heldout;
    const fv_dataset *test;   /* mia: non-members */
    /* output */
    const char *out_dir;      /* grids (NULL: none) */
    const char *tag;          /* file-name prefix, e.g. "r5_c0" (NULL: the attack's name) */
    uint64_t seed;
} fv_attack_request;

/* What c's [attack] kind needs of the rest of c, checked after fv_config_check passed: gan, mia
 * and gan_active judge with held-out images, so a named data set needs data.train_size below the
 * split (0 takes it all); dlg recovers the gradient as (global - upload) / lr, so it needs the
 * model dlg_lenet, plain SGD (no momentum, weight_decay or prox_mu) and one local epoch. Errors
 * name the offending key where it was set, like every config error (fv_config_key_error).
 * Enforced where a run is resolved (cli/fl_cli.c: fv_flcli_prepare, fv_flcli_reopen) and again
 * by the coordinator's attacker (fv_attacker_new), before any worker joins; workers get the
 * config from that coordinator and need not check it. Returns 0 (also for kind none) or -1. */
FV_MUST_USE int fv_attack_check_config(const fv_config *c, fv_err *e);

/* The outputs of the federation's model for data of data_classes classes under [attack] kind:
 * data_classes, plus one under gan_active (the attacker's "fake" class, the last output). */
int fv_attack_model_classes(fv_attack_kind kind, int data_classes);

/* The rounds c's attack acts in, ascending, into out[cap]: [attack] rounds as listed, or, when
 * none are listed, the attack's default: the last round (fl.rounds), but every round 1..fl.rounds
 * for gan_active (the attacking client acts from the start). Returns the count (>= 1), or -1
 * when the list is malformed (fv_config_check names the problem) or longer than cap. */
FV_MUST_USE int fv_attack_rounds(const fv_config *c, int *out, int cap);

/* Run the attack. On success *json (caller frees) holds one JSON object with the settings used
 * and the figures; returns 0. Returns -1 with e set for an unknown attack or setting, a bad
 * value, a model or shape that does not match the upload, or missing evaluation data. */
FV_MUST_USE int fv_attack_run(const fv_attack_request *rq, char **json, fv_err *e);

/* The seed of the attack on client at round of a run seeded run_seed (both sides of gan_active
 * derive the same generator from it). */
uint64_t fv_attack_seed(uint64_t run_seed, int round, int client);

/* Whether settings ("key=value,...", NULL or "" for the defaults) are valid for the attack named
 * kind: "gan", "gan_active", "dlg", "mia" or "invert": every key known, every value in range (dlg's
 * and invert's lr, invert's epochs and batch may be left out: the coordinator supplies the run's). The coordinator checks them before round 1, so
 * that no attack fails on its settings mid-run. Returns 0, or -1 with e naming the key. */
FV_MUST_USE int fv_attack_settings_check(const char *kind, const char *settings, fv_err *e);

/* Whether the devices the settings name exist on this machine (fv_device_check): invert's device,
 * and its inverter_device when the chain's inverter runs (inverter_epochs > 0); the other kinds
 * name none.
 * The coordinator asks after fv_attack_settings_check and before round 1, so that a missing GPU is
 * reported at the start, not when the attack first runs. Returns 0, or -1 with e naming the device. */
FV_MUST_USE int fv_attack_devices_check(const char *kind, const char *settings, fv_err *e);

/* gan_active, the attacking client's side: trains G (rq->settings, rq->seed) against the model
 * rq->upload (the global model it received; rq->classes counts the fake class) aiming at
 * rq->target, and returns *n_out samples *out[n, c, h, w] in [0, 1] (the "fake" setting, or n_own
 * when 0) and *json, G's training figures (caller frees both). Only rq's model, input, classes,
 * norm, upload, n_params, target, settings and seed are read. Returns -1 with e set for a bad
 * setting, target or model (nothing to free). */
FV_MUST_USE int fv_attack_active_samples(const fv_attack_request *rq, int n_own, float **out, int *n_out, char **json,
                             fv_err *e);

#endif
