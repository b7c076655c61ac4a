/* attack_run.h: complete standalone attack runs, as `fedvim attack dlg|invert|reassemble|gan|mia` performs
 * them: load the data, build the target (a client gradient, mixed images, or models trained by
 * the in-process FedAvg of fedsim.h, plain or with VisualMixer), run the attack, measure it with
 * the figures of docs/attacks.md section 5, write image grids, and add everything to a JSON
 * object. Each figure is reported against the original images and, with VisualMixer, against
 * the mixed images the model actually saw.
 * Not here: the attacks themselves (invert.h, reassemble.h, gan.h, mia.h), flag parsing (cli/).
 */
#ifndef FV_ATTACK_RUN_H
#define FV_ATTACK_RUN_H
#include <stdint.h>

#include "fedsim.h"
#include "fv_common.h"
#include "gan.h"
#include "invert.h"
#include "inverter.h"
#include "io/json.h"
#include "leakage.h"
#include "mia.h"
#include "reassemble.h"
#include "vmix/vmix.h"

/* Where images come from: a data set split and a range. */
typedef struct {
    const char *dataset;  /* "mnist", "fashion", "cmnist", "cifar10" */
    const char *data_dir; /* NULL: the data set's default place */
} fv_data_src;

/* ---- DLG / iDLG: configurations of the invert.h engine on the zoo's dlg_lenet ----
 * Each run: test images first + r * batch .. (mixed with VisualMixer if vmix), the model
 * dlg_lenet on pixels in [0, 1] (no normalisation) with every parameter U(-0.5, 0.5) from
 * seed * 7919 + r (the DLG reference initialisation, drawn as the removed double-precision
 * attacks/dlg.c drew it), the client's fedSGD gradient from the engine, then fv_invert_attack
 * with atk (box [0, 1]) against it, labels known or by the iDLG / count rule
 * (fv_invert_labels). */
#define FV_DLG_MAX_BATCH 8

typedef struct {
    fv_data_src src;
    int first;            /* first test-split image attacked */
    int runs;             /* independent attacks (each on the next batch of images) */
    int batch;            /* images per client gradient, 1..FV_DLG_MAX_BATCH */
    fv_invert_cfg atk;    /* the attack (fv_invert_dlg_defaults: L2, L-BFGS); the box is set here */
    double fd_scale;      /* the engine's finite-difference step (invert.h) */
    int vmix;             /* the client trains on mixed images */
    fv_vmix_params vp;
    int known_labels;     /* 1: the attacker is given the labels (else the iDLG rule) */
    uint64_t seed;        /* model initialisation (per run) and simulation keys */
    const char *out_dir;  /* grid PNG here (NULL: none) */
} fv_dlg_run_cfg;

fv_dlg_run_cfg fv_dlg_run_defaults(void);
/* Check cfg against itself (no data read): 0, or -1 with e naming the bad setting. */
FV_MUST_USE int fv_dlg_run_check(const fv_dlg_run_cfg *cfg, fv_err *e);
/* Returns 0 with the figures added to j, or -1 with e set. */
FV_MUST_USE int fv_dlg_run(const fv_dlg_run_cfg *cfg, fv_json *j, fv_err *e);

/* Names of the engine's choices as the JSON and the flags spell them: "l2" / "cosine";
 * "lbfgs" / "adam" / "adam-signed". */
const char *fv_invert_objective_name(fv_invert_objective o);
const char *fv_invert_optimizer_name(fv_invert_optimizer o);
/* Set c's objective and optimiser from those words (either may be NULL: unchanged). Returns 0, or
 * -1 with e naming the bad word. */
FV_MUST_USE int fv_invert_parse_dlg_choice(const char *objective, const char *optimizer, fv_invert_cfg *c, fv_err *e);

/* ---- Inverting Gradients on a zoo model (invert.h) ----
 * The attacked images are test-split images first .. first + images, in attacks of `batch`
 * images each: one client update per attack (fedSGD gradient, or fedAVG update of local_epochs
 * epochs over local_batch-image steps), computed by the engine on the true images with the
 * true labels. The model is the zoo model initialised from seed or loaded from weights, then
 * optionally trained for trained_epochs epochs (Adam 1e-3, batch 64) on the first train_images
 * training images. */
typedef struct {
    fv_data_src src;
    const char *model;      /* shared/nn/models.h name */
    int first, images, batch;
    fv_invert_kind kind;
    int local_epochs, local_batch; /* fedAVG; local_batch 0: batch */
    double local_lr;        /* fedAVG local SGD step */
    const char *weights;    /* NULL, or a safetensors file with the model's tensors (fedvim's
                             * state-dict names), loaded instead of the seed's initialisation */
    int trained_epochs, train_images;
    int infer_labels;       /* 0: the attacker knows the labels; 1: iDLG / count rule */
    fv_invert_cfg atk;      /* iterations, restarts, lr, tv, seed (box set from the data) */
    double fd_scale;
    int one_sided;          /* one-sided differences (invert.h) instead of central */
    int oracle_from;        /* 0: no oracle; else recognisability by the section 5.3 oracle trained
                             * on training images [oracle_from, end) (after train_images) */
    const char *oracle_cache; /* its safetensors cache (NULL: none) */
    uint64_t seed;          /* model initialisation and training order */
    const char *out_dir;    /* invert_grid.png here (NULL: none) */
    int device;             /* the engine's passes: -1 the CPU (default), N >= 0 CUDA device N */
    int parallel;           /* engines running restarts concurrently (fv_invert_attack_multi), at
                             * most restarts and FV_INVERT_MAX_PARALLEL; 0 (default): 1 on the CPU,
                             * min(restarts, 8) on CUDA */
} fv_invert_run_cfg;

/* The most engines fv_invert_run runs restarts on (--parallel). */
#define FV_INVERT_MAX_PARALLEL 64

fv_invert_run_cfg fv_invert_run_defaults(void);
/* Check cfg against nothing but itself and the model list (no data read): 0, or -1 with e
 * naming the bad setting (batch above images, local batch above batch, unknown model, ...). */
FV_MUST_USE int fv_invert_run_check(const fv_invert_run_cfg *cfg, fv_err *e);
/* Run it (checks first); figures (per image PSNR / SSIM against the best-matching original,
 * medians, seconds per attack, labels) added to j. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_invert_run(const fv_invert_run_cfg *cfg, fv_json *j, fv_err *e);

/* ---- reassembly ---- */
typedef struct {
    fv_data_src src;
    int first, images;    /* test-split images first .. first + images */
    fv_vmix_params vp;    /* the mixing attacked */
    fv_reasm_cfg rc;      /* the search (unit and mode are taken from vp) */
    uint64_t seed;        /* simulation keys */
    const char *out_dir;
    int unknown_map;      /* 1: also attack with the window map estimated from the public bounds
                             (fv_reasm_estimate_map), reporting both and how often the map is right */
    int map_iters;        /* its rounds of re-deriving the map, at most (default 3) */
} fv_reasm_run_cfg;

fv_reasm_run_cfg fv_reasm_run_defaults(void);
FV_MUST_USE int fv_reasm_run(const fv_reasm_run_cfg *cfg, fv_json *j, fv_err *e);

/* ---- learned inverter (inverter.h) ----
 * The victim's images are test-split images first .. first + images, each mixed as
 * fv_reasm_run mixes them (the simulation key of client 0 from seed, so the same seed attacks the
 * same mixed images as `fedvim attack reassemble`). The attacker owns training-split images
 * attacker_from .. attacker_from + attacker_images of attacker_dataset (the victim's data set
 * when NULL: a slice disjoint from the attacked test images) and mixes them with its own secret
 * (the simulation key of client 1), never the victim's. */
typedef struct {
    fv_data_src src;            /* the victim's data set */
    const char *attacker_dataset; /* NULL: src.dataset */
    const char *attacker_data_dir; /* NULL: that data set's default place */
    int attacker_from, attacker_images;
    int first, images;          /* the victim's test images attacked */
    fv_inverter_cfg inv;        /* network and training; inv.def is the (public) defence attacked */
    int reassemble;             /* 1: also run the reassembly attack (reasm) on the same images (VisualMixer only) */
    fv_reasm_cfg reasm;         /* its search (unit and mode are taken from inv.vp) */
    uint64_t seed;              /* keys, network initialisation, batch order */
    const char *out_dir;        /* inverter_grid.png here (NULL: none) */
} fv_inverter_run_cfg;

fv_inverter_run_cfg fv_inverter_run_defaults(void);
/* Check the settings before any data is read (counts, ranges and the network's settings;
 * the image shape and the mixing settings are checked once the data is loaded). Returns 0 or -1
 * with e naming the setting. */
FV_MUST_USE int fv_inverter_run_check(const fv_inverter_run_cfg *cfg, fv_err *e);
/* Load both data sets, train the inverter on the attacker's pairs, apply it to the victim's mixed
 * images, and add to j: settings, training losses and time, and per-image PSNR and SSIM
 * statistics (mean, median, min, max) of the inverted and of the mixed images against the
 * originals (and of the reassembled ones with reassemble). Returns 0 or -1 with e set (missing
 * data, ranges beyond the splits, shapes that differ between the two data sets). */
FV_MUST_USE int fv_inverter_run(const fv_inverter_run_cfg *cfg, fv_json *j, fv_err *e);

/* ---- the held-out data of GAN and MIA runs ----
 * Training split: images [0, fl_images) are the clients' (fedsim); images [heldout_from, end)
 * are held out: no client holds them. The oracle trains on [oracle_from, end); the "never held"
 * originals of victim-specific resemblance and the MIA attacker's own data come from
 * [heldout_from, oracle_from). */
typedef struct {
    fv_data_src src;
    int fl_images;        /* clients' images (first of the training split) */
    int heldout_from;     /* start of the held-out range */
    int oracle_from;      /* start of the oracle's range */
    fv_fedsim_cfg fl;     /* the federation that produces the target models */
    int victim;           /* client attacked */
    const char *out_dir;
} fv_fl_setup;

/* ---- cores shared with attack_api.h ---- */

/* Match n reconstructions rec[n] (float CHW, pixels in [0, 1]) to the images the client trained on
 * (trained[n], float) by the best SSIM assignment (fv_invert_assign: exhaustive up to 8 images,
 * greedy above); out[n] receives the reconstructions in the trained-on order; ssim_* and psnr_*
 * (n each) the figures against the originals orig[n] and against the trained-on images. Returns
 * 0 or -1 with e set. */
FV_MUST_USE int fv_dlg_measure(float *out, double *ssim_orig, double *ssim_trained, double *psnr_orig, double *psnr_trained,
                   const float *rec, const float *orig, const float *trained, int n, fv_shape s, fv_err *e);

/* The chain against VisualMixer (evaluation only, docs/attacks.md 7.4): after the inversion of
 * an update of a client that trained on mixed images, the reassembly attack (reassemble.h) on
 * each reconstruction, with the window map estimated from the public settings vp_public
 * (fv_reasm_estimate_map, map_iters rounds: what a real attacker can do) and, as an upper bound,
 * with the victim's true map: Algorithm 1's map of the original under the victim's own settings
 * vp_victim (the map is a function of the pixels and the bounds, not of the key; exact with
 * verify off). reasm: the search (its unit and mode are taken from the settings). */
typedef struct {
    const fv_vmix_params *vp_public; /* the federation's settings, as the attacker knows them */
    const fv_vmix_params *vp_victim; /* the victim's own (its bounds from its shard) */
    fv_reasm_cfg reasm;
    int map_iters;                   /* default 3 */
    fv_net *inverter;                /* NULL: none; else a learned inverter (inverter.h) trained on the
                                      * attacker's own images mixed at vp_public, applied to the
                                      * reconstructions and, as the chain's other ceiling, to the
                                      * victim's mixed images */
    int inverter_device;             /* where the inverter runs: -1 the CPU (default), N CUDA device N */
} fv_invert_chain;

/* reasm = fv_reasm_defaults(), map_iters 3, inverter_device -1, no settings. */
fv_invert_chain fv_invert_chain_defaults(void);

/* Inverting Gradients against one observed client update (the attack inside a federated run,
 * attack_api.h "invert"): net holds theta_0, the global model the client started from (borrowed;
 * its dropout is switched off); update[n_train] is theta_0 - theta_T as the client uploaded it;
 * uc describes the client's local training as the engine models it (kind fedAVG: uc->n images,
 * batch, epochs, lr; plain SGD). Labels: inferred from the update (infer: fv_invert_labels) or
 * the true ones y[n]. uc->kind fedSGD: update is the client's gradient. ac: the attack (its box is
 * set here from norm; DLG is ac = fv_invert_dlg_defaults()). The reconstructions (pixels in [0, 1] through norm) are matched to the
 * trained-on images trained[n] (NULL: orig) and measured against them and the originals orig[n]
 * (fv_dlg_measure); the figures (per image and medians, label agreement, cosine, relative
 * matching loss, optimiser iterations, seconds) go to
 * j, and with out_dir a grid <prefix>invert_grid.png (rows: original, [trained-on,]
 * reconstruction). With trained and chain (may be NULL: none) also the chain (fv_invert_chain):
 * j's object "chain" holds, per step (recovered, reassembled_estimated_map, reassembled_true_map,
 * and mixed_reassembled_true_map: the true mixed images reassembled, the ceiling of the chain;
 * with chain->inverter also inverter, the reconstructions through it, and mixed_inverter, the
 * victim's mixed images through it),
 * median SSIM and PSNR against the originals and the mixed images, and the grid two more rows
 * (the reassemblies with the estimated and the true map). The engine's passes run on device (-1
 * the CPU, N CUDA device N: fv_invert_engine_new_on). Returns 0, or -1 with e set (a bad uc or ac,
 * labels that cannot be inferred, bad chain settings, a device that cannot be used). */
FV_MUST_USE int fv_invert_observed(fv_net *net, const float *update, const fv_invert_update_cfg *uc,
                                   const fv_invert_cfg *ac, int device, int infer, const int *y, const float *orig,
                                   const float *trained, const fv_invert_chain *chain, fv_norm norm,
                                   const char *out_dir, const char *prefix, fv_json *j, fv_err *e);

typedef struct {
    fv_gen_arch arch;
    fv_gan_cfg gan;           /* target class, steps, priors; norm is taken from the data */
    int samples;              /* generated samples judged (default 64) */
    int refs;                 /* victim originals compared, at most (default 200) */
    const char *oracle_model; /* default "fedavg_cnn" */
    int oracle_epochs;        /* default 2 */
    const char *oracle_cache; /* NULL: no cache */
} fv_gan_attack_cfg;

fv_gan_attack_cfg fv_gan_attack_defaults(void);

/* The data an attack is judged with. All indices are into data. */
typedef struct {
    const fv_dataset *data;
    const int *victim_idx;          /* the victim's images */
    int n_victim;
    const fv_dataset *victim_mixed; /* as the victim trained on them (same indices), or NULL */
    const int *never_idx;           /* images no client holds: "never held" originals */
    int n_never;
    const int *oracle_idx;          /* the oracle's training images (held out too) */
    int n_oracle;
    const char *oracle_tag;         /* names them in the oracle cache */
    const fv_dataset *test;         /* the oracle's reported accuracy (may be NULL) */
    fv_norm norm;
} fv_attack_data;

/* Passive GAN attack on discriminator D and its evaluation. Unless g_trained (the active attack
 * trained g already; `given` then holds its last statistics), g is trained against D first.
 * Adds "target_class", "generator", "priors", "discriminator", "oracle" and "leakage" to j and
 * writes <prefix>gan_grid.png and <prefix>gan_samples.png to out_dir (NULL: none). res (may be
 * NULL) receives the leakage figures. */
FV_MUST_USE int fv_gan_attack(fv_json *j, fv_leakage *res, fv_gan *g, int g_trained, const fv_gan_stats *given, fv_net *D,
                  const fv_gan_attack_cfg *cfg, const fv_attack_data *ad, const char *out_dir, const char *prefix,
                  fv_err *e);

typedef struct {
    const char *model;        /* shadow architecture (the target's) */
    fv_opt_cfg opt;           /* shadow recipe: optimizer, epochs, batch */
    int epochs, batch;
    fv_lira_cfg lira;
    int queries;              /* members and non-members, each, at most */
    int query_mixed;          /* with vp: also query with mixed versions (fresh keys) */
    const fv_vmix_params *vp; /* the federation's mixing, NULL: none (shadows then train on the
                                 attacker's images mixed with its own key) */
    uint64_t seed;
} fv_mia_attack_cfg;

/* Membership inference against client (and global, may be NULL): members are data[member_idx]
 * (the first `queries`), non-members the first `queries` images of test, the attacker's own data
 * data[atk_idx]. Adds "shadows" and "queries_original" (and "queries_mixed_fresh_key") to j. */
FV_MUST_USE int fv_mia_attack(fv_json *j, fv_net *client, fv_net *global, const fv_mia_attack_cfg *cfg, const fv_dataset *data,
                  const int *member_idx, int n_member, const fv_dataset *test, const int *atk_idx, int n_atk,
                  fv_norm norm, fv_err *e);

/* ---- GAN ---- */
typedef struct {
    fv_fl_setup s;
    fv_gan_attack_cfg a;
    int all_targets;      /* 1: attack every class in turn on the same federation (passive) */
    int active;           /* 1: Hitaj's active attack: the last client is the attacker */
    int active_steps;     /* generator steps per round in the active attack */
} fv_gan_run_cfg;

fv_gan_run_cfg fv_gan_run_defaults(void);
FV_MUST_USE int fv_gan_run(const fv_gan_run_cfg *cfg, fv_json *j, fv_err *e);

/* ---- membership inference ---- */
typedef struct {
    fv_fl_setup s;
    fv_lira_cfg lira;     /* shadows */
    int attacker_images;  /* the attacker's own images (from the held-out range; default 2000) */
    int queries;          /* members and non-members queried, each (default 500) */
    int query_mixed;      /* with VisualMixer: also query with mixed versions (fresh keys) */
} fv_mia_run_cfg;

fv_mia_run_cfg fv_mia_run_defaults(void);
FV_MUST_USE int fv_mia_run(const fv_mia_run_cfg *cfg, fv_json *j, fv_err *e);

/* Default held-out layout and federation for the GAN and MIA runs. */
fv_fl_setup fv_fl_setup_defaults(void);

#endif
