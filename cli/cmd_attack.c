/* cmd_attack.c: `fedvim attack invert|gan|dlg|mia|reassemble|recognise|inverter`: the built-in privacy attacks run on their
 * own (docs/attacks.md). Each parses its flags, calls attacks/attack_run.h, prints the
 * headline figures on stderr, and with --json one JSON object on stdout; with --out the image grids
 * and result.json go to that folder. The attacks inside a federated run are reached through
 * attacks/attack_api.h instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack_run.h"
#include "cmds.h"
#include "cuda/net.h"
#include "fl/config.h"
#include "flags.h"
#include "io/json.h"
#include "nn/layers.h"
#include "recognise.h"
#include "nn/loss_pixel.h"

#define MAXF 64

/* Flags shared by the subcommands. */
typedef struct {
    const char *dataset, *data_dir, *out;
    int seed, threads, json, verbose;
} common_opts;

static int add_common(fv_flag *f, int n, common_opts *o) {
    f[n++] = (fv_flag){"dataset", FV_FLAG_STRING, &o->dataset, "data set: mnist, fashion, cmnist, cifar10", 0, 0};
    f[n++] = (fv_flag){"data-dir", FV_FLAG_STRING, &o->data_dir, "folder with the data set (default: its standard place)", 0, 0};
    f[n++] = (fv_flag){"out", FV_FLAG_STRING, &o->out, "folder for image grids and result.json (default: none)", 0, 0};
    f[n++] = (fv_flag){"seed", FV_FLAG_INT, &o->seed, "seed of models, noise and simulation keys", 0, 2147483647};
    f[n++] = (fv_flag){"threads", FV_FLAG_INT, &o->threads, "CPU threads", 1, 1024};
    f[n++] = (fv_flag){"json", FV_FLAG_BOOL, &o->json, "print one JSON object on stdout", 0, 0};
    f[n++] = (fv_flag){"verbose", FV_FLAG_BOOL, &o->verbose, "progress on stderr", 0, 0};
    return n;
}

/* VisualMixer flags. */
typedef struct {
    int on, ws_min, ws_max, unit;
    const char *mode;
} vmix_opts;

static int add_vmix(fv_flag *f, int n, vmix_opts *o, const char *what) {
    f[n++] = (fv_flag){"vmix", FV_FLAG_BOOL, &o->on, what, 0, 0};
    f[n++] = (fv_flag){"ws-min", FV_FLAG_INT, &o->ws_min, "VisualMixer WS_min (power of two)", 1, 4096};
    f[n++] = (fv_flag){"ws-max", FV_FLAG_INT, &o->ws_max, "VisualMixer WS_max (power of two)", 1, 4096};
    f[n++] = (fv_flag){"unit", FV_FLAG_INT, &o->unit, "VisualMixer shuffle unit (1: pixels)", 1, 4096};
    f[n++] = (fv_flag){"mode", FV_FLAG_STRING, &o->mode, "VisualMixer mode: spatial+chromatic or spatial", 0, 0};
    return n;
}

static int vmix_params(fv_vmix_params *p, const vmix_opts *o, fv_err *e) {
    fv_vmix_params_default(p);
    p->ws_min = o->ws_min;
    p->ws_max = o->ws_max;
    p->unit = o->unit;
    if (fv_vmix_mode_parse(o->mode, &p->mode, e)) return fv_err_prefix(e, "--mode: ");
    return 0;
}

/* Federation flags (GAN and MIA). */
typedef struct {
    const char *model, *optimizer, *partition;
    int clients, rounds, local_epochs, batch, images, heldout_from, oracle_from, victim;
    double lr, alpha;
} fl_opts;

static int add_fl(fv_flag *f, int n, fl_opts *o) {
    f[n++] = (fv_flag){"model", FV_FLAG_STRING, &o->model, "the federation's model (shared/nn/models.h name)", 0, 0};
    f[n++] = (fv_flag){"clients", FV_FLAG_INT, &o->clients, "clients", 1, 10000};
    f[n++] = (fv_flag){"rounds", FV_FLAG_INT, &o->rounds, "FedAvg rounds", 1, 100000};
    f[n++] = (fv_flag){"local-epochs", FV_FLAG_INT, &o->local_epochs, "local epochs per round", 1, 10000};
    f[n++] = (fv_flag){"fl-batch", FV_FLAG_INT, &o->batch, "local minibatch size", 1, 65536};
    f[n++] = (fv_flag){"fl-optimizer", FV_FLAG_STRING, &o->optimizer, "local optimizer: sgd, adam, stadam", 0, 0};
    f[n++] = (fv_flag){"fl-lr", FV_FLAG_FLOAT, &o->lr, "local learning rate (default: the optimizer's)", 0, 0};
    f[n++] = (fv_flag){"partition", FV_FLAG_STRING, &o->partition, "iid, dirichlet or shards", 0, 0};
    f[n++] = (fv_flag){"alpha", FV_FLAG_FLOAT, &o->alpha, "Dirichlet concentration", 1e-6, 1e6};
    f[n++] = (fv_flag){"fl-images", FV_FLAG_INT, &o->images, "clients' images: the first N of the training split", 1, 100000000};
    f[n++] = (fv_flag){"heldout-from", FV_FLAG_INT, &o->heldout_from, "start of the held-out training images", 1, 100000000};
    f[n++] = (fv_flag){"oracle-from", FV_FLAG_INT, &o->oracle_from, "start of the oracle's training images", 1, 100000000};
    f[n++] = (fv_flag){"victim", FV_FLAG_INT, &o->victim, "the client attacked", 0, 10000};
    return n;
}

static int fl_setup(fv_fl_setup *s, const fl_opts *o, const common_opts *c, const vmix_opts *v, fv_err *e) {
    s->src.dataset = c->dataset;
    s->src.data_dir = c->data_dir;
    s->out_dir = c->out;
    s->fl_images = o->images;
    s->heldout_from = o->heldout_from;
    s->oracle_from = o->oracle_from;
    s->victim = o->victim;
    s->fl.model = o->model;
    s->fl.clients = o->clients;
    s->fl.rounds = o->rounds;
    s->fl.local_epochs = o->local_epochs;
    s->fl.batch = o->batch;
    s->fl.seed = (uint64_t)c->seed;
    s->fl.verbose = c->verbose;
    fv_opt_kind k;
    if (fv_opt_parse_kind(o->optimizer, &k, e)) return fv_err_prefix(e, "--fl-optimizer: ");
    s->fl.opt = fv_opt_defaults(k);
    if (o->lr > 0) s->fl.opt.lr = (float)o->lr;
    int scheme; /* the words of [partition] scheme */
    if (fv_config_choice_value("partition", "scheme", o->partition, &scheme, e)) return fv_err_prefix(e, "--partition: ");
    s->fl.scheme = scheme;
    s->fl.alpha = o->alpha;
    s->fl.vmix = v->on;
    return vmix_params(&s->fl.vp, v, e);
}

static void fl_defaults(fl_opts *o, const fv_fl_setup *d) {
    o->model = d->fl.model;
    o->optimizer = fv_opt_kind_name(d->fl.opt.kind);
    o->partition = "iid";
    o->clients = d->fl.clients;
    o->rounds = d->fl.rounds;
    o->local_epochs = d->fl.local_epochs;
    o->batch = d->fl.batch;
    o->images = d->fl_images;
    o->heldout_from = d->heldout_from;
    o->oracle_from = d->oracle_from;
    o->victim = d->victim;
    o->lr = -1;
    o->alpha = d->fl.alpha;
}

static void vmix_defaults(vmix_opts *v) {
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    v->on = 0;
    v->ws_min = p.ws_min;
    v->ws_max = p.ws_max;
    v->unit = p.unit;
    v->mode = fv_vmix_mode_name(p.mode);
}

static common_opts common_defaults(void) { return (common_opts){"mnist", NULL, NULL, 1, 1, 0, 0}; }

/* Parse, run fn, and print / save the JSON. */
typedef int (*run_fn)(const void *cfg, fv_json *j, fv_err *e);

static int finish(const char *name, run_fn fn, const void *cfg, const common_opts *c) {
    fv_err e = {{0}};
    fv_set_threads(c->threads);
    fv_json j;
    fv_json_begin(&j);
    int rc = fn(cfg, &j, &e);
    fv_json_int(&j, "seed", c->seed);
    const char *s = fv_json_end(&j);
    if (rc) {
        fprintf(stderr, "fedvim attack: %s\n", e.msg);
        fv_json_free(&j);
        return 1;
    }
    if (c->out) {
        char path[4096];
        snprintf(path, sizeof path, "%s/result.json", c->out);
        if (fv_mkdirs(c->out, &e) || fv_write_file_atomic(path, s, strlen(s), &e)) {
            fprintf(stderr, "fedvim attack %s: %s\n", name, e.msg);
            fv_json_free(&j);
            return 1;
        }
        fprintf(stderr, "fedvim attack %s: wrote %s\n", name, path);
    }
    if (c->json) printf("%s\n", s);
    fv_json_free(&j);
    return 0;
}

static int parse(const char *cmd, const fv_flag *f, int n, int argc, char **argv) {
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse(cmd, "[flags]", f, n, argc, argv, pos, 0, &npos, &e);
    if (r < 0) fprintf(stderr, "%s\n", e.msg);
    return r;
}

static int run_dlg(const void *c, fv_json *j, fv_err *e) { return fv_dlg_run(c, j, e); }
static int run_reasm(const void *c, fv_json *j, fv_err *e) { return fv_reasm_run(c, j, e); }
static int run_gan(const void *c, fv_json *j, fv_err *e) { return fv_gan_run(c, j, e); }
static int run_mia(const void *c, fv_json *j, fv_err *e) { return fv_mia_run(c, j, e); }

static int cmd_dlg(int argc, char **argv) {
    fv_dlg_run_cfg cfg = fv_dlg_run_defaults();
    common_opts c = common_defaults();
    vmix_opts v;
    vmix_defaults(&v);
    const char *opt = "lbfgs", *objective = "l2";
    int known = 0;
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    n = add_vmix(f, n, &v, "the client trains on VisualMixer-mixed images");
    f[n++] = (fv_flag){"first", FV_FLAG_INT, &cfg.first, "first test image attacked", 0, 100000000};
    f[n++] = (fv_flag){"runs", FV_FLAG_INT, &cfg.runs, "attacks, each on the next batch of images", 1, 100000};
    f[n++] = (fv_flag){"batch", FV_FLAG_INT, &cfg.batch, "images per client gradient (1 to 8)", 1, FV_DLG_MAX_BATCH};
    f[n++] = (fv_flag){"optimizer", FV_FLAG_STRING, &opt, "lbfgs (DLG), adam, or adam-signed (Inverting Gradients')", 0, 0};
    f[n++] = (fv_flag){"objective", FV_FLAG_STRING, &objective, "l2 (DLG: squared gradient distance) or cosine", 0, 0};
    f[n++] = (fv_flag){"iters", FV_FLAG_INT, &cfg.atk.iters, "L-BFGS iterations or Adam steps", 1, 10000000};
    f[n++] = (fv_flag){"max-evals", FV_FLAG_INT, &cfg.atk.max_evals, "L-BFGS evaluations (0: 20 per iteration)", 0, 100000000};
    f[n++] = (fv_flag){"lr", FV_FLAG_FLOAT, &cfg.atk.lr, "Adam step", 1e-9, 100};
    f[n++] = (fv_flag){"restarts", FV_FLAG_INT, &cfg.atk.restarts, "noise restarts (lowest matching loss wins)", 1, 1000};
    f[n++] = (fv_flag){"fd-scale", FV_FLAG_FLOAT, &cfg.fd_scale,
                       "finite-difference step of the engine: fd_scale of the weights' norm (invert.h)", 1e-9, 0.5};
    f[n++] = (fv_flag){"target", FV_FLAG_FLOAT, &cfg.atk.target,
                       "stop at this relative matching loss (L2: ||U - T||^2 / ||T||^2; 0: never)", 0, 0.5};
    f[n++] = (fv_flag){"known-labels", FV_FLAG_BOOL, &known, "give the attacker the labels (default: iDLG rule)", 0, 0};
    int r = parse("attack dlg", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    fv_err e = {{0}};
    if (fv_invert_parse_dlg_choice(objective, opt, &cfg.atk, &e) || vmix_params(&cfg.vp, &v, &e) ||
        fv_dlg_run_check(&cfg, &e)) { /* before any data is read */
        fprintf(stderr, "fedvim attack dlg: %s\n", e.msg);
        return 2;
    }
    cfg.vmix = v.on;
    cfg.known_labels = known;
    cfg.atk.verbose = c.verbose;
    cfg.src.dataset = c.dataset;
    cfg.src.data_dir = c.data_dir;
    cfg.seed = (uint64_t)c.seed;
    cfg.out_dir = c.out;
    return finish("dlg", run_dlg, &cfg, &c);
}

static int run_invert(const void *c, fv_json *j, fv_err *e) { return fv_invert_run(c, j, e); }

static int cmd_invert(int argc, char **argv) {
    fv_invert_run_cfg cfg = fv_invert_run_defaults();
    common_opts c = common_defaults();
    const char *update = "fedsgd", *labels = "known", *fd = "central";
    double lr = cfg.atk.lr, tv = cfg.atk.tv;
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    f[n++] = (fv_flag){"model", FV_FLAG_STRING, &cfg.model, "the attacked model (shared/nn/models.h name)", 0, 0};
    f[n++] = (fv_flag){"first", FV_FLAG_INT, &cfg.first, "first test image attacked", 0, 100000000};
    f[n++] = (fv_flag){"images", FV_FLAG_INT, &cfg.images, "test images attacked in all (a multiple of --batch)", 1, 100000};
    f[n++] = (fv_flag){"batch", FV_FLAG_INT, &cfg.batch, "images per client update (one attack each)", 1, 4096};
    f[n++] = (fv_flag){"update", FV_FLAG_STRING, &update, "fedsgd (one gradient) or fedavg (local SGD epochs)", 0, 0};
    f[n++] = (fv_flag){"local-epochs", FV_FLAG_INT, &cfg.local_epochs, "fedavg: local epochs", 1, 10000};
    f[n++] = (fv_flag){"local-batch", FV_FLAG_INT, &cfg.local_batch, "fedavg: local minibatch (0: --batch)", 0, 4096};
    f[n++] = (fv_flag){"local-lr", FV_FLAG_FLOAT, &cfg.local_lr, "fedavg: local SGD step", 1e-9, 100};
    f[n++] = (fv_flag){"weights", FV_FLAG_STRING, &cfg.weights, "safetensors file of the model's tensors (default: --seed's init)", 0, 0};
    f[n++] = (fv_flag){"trained-epochs", FV_FLAG_INT, &cfg.trained_epochs, "train the model first (0: untrained)", 0, 1000};
    f[n++] = (fv_flag){"train-images", FV_FLAG_INT, &cfg.train_images, "training images for --trained-epochs", 1, 100000000};
    f[n++] = (fv_flag){"labels", FV_FLAG_STRING, &labels, "known, or infer (iDLG for batch 1, counts above)", 0, 0};
    f[n++] = (fv_flag){"iters", FV_FLAG_INT, &cfg.atk.iters, "signed-Adam steps per restart", 1, 10000000};
    f[n++] = (fv_flag){"restarts", FV_FLAG_INT, &cfg.atk.restarts, "noise restarts (lowest matching loss wins)", 1, 1000};
    f[n++] = (fv_flag){"lr", FV_FLAG_FLOAT, &lr, "Adam step in model input units", 1e-9, 100};
    f[n++] = (fv_flag){"tv", FV_FLAG_FLOAT, &tv, "total-variation weight", 0, 1e6};
    f[n++] = (fv_flag){"fd-scale", FV_FLAG_FLOAT, &cfg.fd_scale, "finite-difference step as a fraction of ||theta||", 1e-9, 0.5};
    f[n++] = (fv_flag){"oracle-from", FV_FLAG_INT, &cfg.oracle_from, "recognisability by an oracle trained on training images from N on (0: none)", 0, 100000000};
    f[n++] = (fv_flag){"oracle-cache", FV_FLAG_STRING, &cfg.oracle_cache, "safetensors cache of that oracle (default: none)", 0, 0};
    f[n++] = (fv_flag){"fd", FV_FLAG_STRING, &fd, "central, or one-sided (fewer passes, O(h) error: docs/attacks.md 7.1)", 0, 0};
    f[n++] = (fv_flag){"bn-prior", FV_FLAG_FLOAT, &cfg.atk.bn_prior,
                       "weight of the batch-norm statistics prior (0: off; models with batch norm)", 0, 1e6};
    const char *device = "cpu";
    f[n++] = (fv_flag){"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: the engine's passes on CUDA device N (a CUDA build)", 0, 0};
    f[n++] = (fv_flag){"parallel", FV_FLAG_INT, &cfg.parallel,
                       "engines running restarts concurrently (0: 1 on the CPU, up to 8 on CUDA)", 0,
                       FV_INVERT_MAX_PARALLEL};
    int r = parse("attack invert", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    {
        fv_err de = {{0}};
        if (fv_device_parse(device, &cfg.device, &de)) {
            fprintf(stderr, "fedvim attack invert: --device: %s\n", de.msg);
            return 2;
        }
    }
    if (strcmp(update, "fedsgd") == 0) cfg.kind = FV_INVERT_FEDSGD;
    else if (strcmp(update, "fedavg") == 0) cfg.kind = FV_INVERT_FEDAVG;
    else {
        fprintf(stderr, "fedvim attack invert: --update: '%s' is not fedsgd or fedavg\n", update);
        return 2;
    }
    if (strcmp(fd, "central") == 0) cfg.one_sided = 0;
    else if (strcmp(fd, "one-sided") == 0) cfg.one_sided = 1;
    else {
        fprintf(stderr, "fedvim attack invert: --fd: '%s' is not central or one-sided\n", fd);
        return 2;
    }
    if (strcmp(labels, "known") == 0) cfg.infer_labels = 0;
    else if (strcmp(labels, "infer") == 0) cfg.infer_labels = 1;
    else {
        fprintf(stderr, "fedvim attack invert: --labels: '%s' is not known or infer\n", labels);
        return 2;
    }
    cfg.atk.lr = lr;
    cfg.atk.tv = tv;
    cfg.atk.verbose = c.verbose;
    cfg.atk.seed = (uint64_t)c.seed;
    cfg.src.dataset = c.dataset;
    cfg.src.data_dir = c.data_dir;
    cfg.seed = (uint64_t)c.seed;
    cfg.out_dir = c.out;
    fv_err e = {{0}};
    if (fv_invert_run_check(&cfg, &e)) { /* before any data is read */
        fprintf(stderr, "fedvim attack %s\n", e.msg);
        return 2;
    }
    return finish("invert", run_invert, &cfg, &c);
}

static int cmd_reassemble(int argc, char **argv) {
    fv_reasm_run_cfg cfg = fv_reasm_run_defaults();
    common_opts c = common_defaults();
    vmix_opts v;
    vmix_defaults(&v);
    int no_greedy = 0;
    int anneal_i = (int)cfg.rc.anneal;
    double t_end = cfg.rc.t_end;
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    n = add_vmix(f, n, &v, "(ignored: reassembly always attacks mixed images)");
    f[n++] = (fv_flag){"first", FV_FLAG_INT, &cfg.first, "first test image", 0, 100000000};
    f[n++] = (fv_flag){"images", FV_FLAG_INT, &cfg.images, "images attacked", 1, 100000000};
    f[n++] = (fv_flag){"anneal", FV_FLAG_INT, &anneal_i, "annealing proposals per channel (0: greedy only)", 0, 2000000000};
    f[n++] = (fv_flag){"t-end", FV_FLAG_FLOAT, &t_end, "final annealing temperature / initial", 1e-12, 1};
    f[n++] = (fv_flag){"no-greedy", FV_FLAG_BOOL, &no_greedy, "skip the greedy placement and swap descent", 0, 0};
    f[n++] = (fv_flag){"unknown-map", FV_FLAG_BOOL, &cfg.unknown_map, "also attack with the window map estimated from the public bounds", 0, 0};
    f[n++] = (fv_flag){"map-rounds", FV_FLAG_INT, &cfg.map_iters, "--unknown-map: rounds of re-deriving the map, at most", 1, 100};
    int r = parse("attack reassemble", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    fv_err e = {{0}};
    if (vmix_params(&cfg.vp, &v, &e)) {
        fprintf(stderr, "fedvim attack reassemble: %s\n", e.msg);
        return 2;
    }
    cfg.rc.anneal = anneal_i;
    cfg.rc.t_end = t_end;
    cfg.rc.greedy = !no_greedy;
    cfg.rc.seed = (uint64_t)c.seed;
    cfg.src.dataset = c.dataset;
    cfg.src.data_dir = c.data_dir;
    cfg.seed = (uint64_t)c.seed;
    cfg.out_dir = c.out;
    return finish("reassemble", run_reasm, &cfg, &c);
}

/* ---- recognise (attacks/recognise.h) ---- */

static int run_recog(const void *c, fv_json *j, fv_err *e) { return fv_recog_run(c, NULL, j, e); }

static int cmd_recognise(int argc, char **argv) {
    fv_recog_run_cfg cfg = fv_recog_run_defaults();
    common_opts c = common_defaults();
    c.dataset = cfg.src.dataset;
    vmix_opts v;
    vmix_defaults(&v);
    const char *attrs = "auto";
    double lr = cfg.lr;
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    n = add_vmix(f, n, &v, "(ignored: the attacker always mixes, at --ws-min/--ws-max/--unit/--mode)");
    f[n++] = (fv_flag){"attacker-from", FV_FLAG_INT, &cfg.attacker_from, "the attacker's images: training split from N on", 0, 100000000};
    f[n++] = (fv_flag){"attacker-images", FV_FLAG_INT, &cfg.attacker_images, "the attacker's images, each mixed with a fresh key of its own", 1, 100000000};
    f[n++] = (fv_flag){"victim-first", FV_FLAG_INT, &cfg.victim_first, "the victim's images: test split from N on", 0, 100000000};
    f[n++] = (fv_flag){"victim-images", FV_FLAG_INT, &cfg.victim_images, "the victim's images, mixed with its secret key", 1, 100000000};
    f[n++] = (fv_flag){"attributes", FV_FLAG_STRING, &attrs, "fg, bg, label (comma-separated), all, or auto (those the data set has)", 0, 0};
    f[n++] = (fv_flag){"bins", FV_FLAG_INT, &cfg.bins, "colour levels per channel: classes = bins^3 (2: RGB octants)", FV_RECOG_BINS_MIN, FV_RECOG_BINS_MAX};
    f[n++] = (fv_flag){"model", FV_FLAG_STRING, &cfg.model, "recogniser architecture (shared/nn/models.h name)", 0, 0};
    f[n++] = (fv_flag){"epochs", FV_FLAG_INT, &cfg.epochs, "recogniser training epochs", 1, 1000};
    f[n++] = (fv_flag){"batch", FV_FLAG_INT, &cfg.batch, "recogniser minibatch", 1, 65536};
    f[n++] = (fv_flag){"lr", FV_FLAG_FLOAT, &lr, "recogniser Adam step", 1e-9, 10};
    const char *device = "cpu";
    f[n++] = (fv_flag){"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: train and evaluate the recogniser on CUDA device N (a CUDA build)", 0, 0};
    int r = parse("attack recognise", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    fv_err e = {{0}};
    if (fv_device_parse(device, &cfg.device, &e)) {
        fprintf(stderr, "fedvim attack recognise: %s\n", e.msg);
        return 2;
    }
    if (fv_device_check(cfg.device, &e)) { /* before the data load and the mixing */
        fprintf(stderr, "fedvim attack recognise: --device %s: %s\n", device, e.msg);
        return 1;
    }
    if (vmix_params(&cfg.vp, &v, &e)) {
        fprintf(stderr, "fedvim attack recognise: %s\n", e.msg);
        return 2;
    }
    if (strcmp(attrs, "auto") != 0 && fv_recog_attr_parse(attrs, cfg.attrs, &e)) {
        fprintf(stderr, "fedvim attack recognise: --attributes: %s\n", e.msg);
        return 2;
    }
    cfg.lr = (float)lr;
    cfg.src.dataset = c.dataset;
    cfg.src.data_dir = c.data_dir;
    cfg.seed = (uint64_t)c.seed;
    cfg.verbose = c.verbose;
    if (fv_recog_run_check(&cfg, &e)) { /* before any data is read */
        fprintf(stderr, "fedvim attack %s\n", e.msg);
        return 2;
    }
    return finish("recognise", run_recog, &cfg, &c);
}

/* ---- learned inverter ---- */

static int run_inverter(const void *c, fv_json *j, fv_err *e) { return fv_inverter_run(c, j, e); }

static int cmd_inverter(int argc, char **argv) {
    fv_inverter_run_cfg cfg = fv_inverter_run_defaults();
    common_opts c = common_defaults();
    vmix_opts v;
    vmix_defaults(&v);
    const char *loss = fv_pixel_loss_name(cfg.inv.loss);
    double lr = cfg.inv.lr, t_end = cfg.reasm.t_end;
    int no_remix = 0, anneal_i = (int)cfg.reasm.anneal;
    const char *defence = fv_inverter_defence_name(cfg.inv.def.kind);
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    n = add_vmix(f, n, &v, "(ignored: set the defence with --defence)");
    f[n++] = (fv_flag){"defence", FV_FLAG_STRING, &defence, "the victim's defence: vmix (--ws-min/--ws-max/--unit/--mode), shuffle (--window), noise (--sigma), instahide (--instahide-k), none", 0, 0};
    f[n++] = (fv_flag){"window", FV_FLAG_INT, &cfg.inv.def.window, "--defence shuffle: uniform window side in pixels, any size", 1, 4096};
    f[n++] = (fv_flag){"sigma", FV_FLAG_FLOAT, &cfg.inv.def.sigma, "--defence noise: Gaussian pixel noise std on the [0, 1] scale", 0, 100};
    f[n++] = (fv_flag){"instahide-k", FV_FLAG_INT, &cfg.inv.def.ih.k, "--defence instahide: images per mixture (coefficient bound 0.65, sign flips)", 1, FV_OBF_INSTAHIDE_KMAX};
    f[n++] = (fv_flag){"attacker-dataset", FV_FLAG_STRING, &cfg.attacker_dataset, "the attacker's own data set (default: --dataset's training split)", 0, 0};
    f[n++] = (fv_flag){"attacker-data-dir", FV_FLAG_STRING, &cfg.attacker_data_dir, "folder of --attacker-dataset (default: its standard place)", 0, 0};
    f[n++] = (fv_flag){"attacker-from", FV_FLAG_INT, &cfg.attacker_from, "first training image the attacker owns", 0, 100000000};
    f[n++] = (fv_flag){"attacker-images", FV_FLAG_INT, &cfg.attacker_images, "training images the attacker owns (pairs per epoch)", 1, 100000000};
    f[n++] = (fv_flag){"first", FV_FLAG_INT, &cfg.first, "first victim test image", 0, 100000000};
    f[n++] = (fv_flag){"images", FV_FLAG_INT, &cfg.images, "victim test images attacked", 1, 100000000};
    f[n++] = (fv_flag){"width", FV_FLAG_INT, &cfg.inv.width, "inverter channels of the first level (then 2x, 4x)", 1, 256};
    f[n++] = (fv_flag){"epochs", FV_FLAG_INT, &cfg.inv.epochs, "training epochs over the attacker's images", 0, 100000};
    f[n++] = (fv_flag){"batch", FV_FLAG_INT, &cfg.inv.batch, "training minibatch", 1, 65536};
    f[n++] = (fv_flag){"lr", FV_FLAG_FLOAT, &lr, "Adam step", 1e-9, 10};
    f[n++] = (fv_flag){"loss", FV_FLAG_STRING, &loss, "pixel loss: mse or l1", 0, 0};
    f[n++] = (fv_flag){"no-remix", FV_FLAG_BOOL, &no_remix, "mix the attacker's images once (default: fresh keys each epoch)", 0, 0};
    f[n++] = (fv_flag){"reassemble", FV_FLAG_BOOL, &cfg.reassemble, "also run the reassembly attack on the same images", 0, 0};
    f[n++] = (fv_flag){"anneal", FV_FLAG_INT, &anneal_i, "with --reassemble: annealing proposals per channel", 0, 2000000000};
    f[n++] = (fv_flag){"t-end", FV_FLAG_FLOAT, &t_end, "with --reassemble: final annealing temperature / initial", 1e-12, 1};
    const char *device = "cpu";
    f[n++] = (fv_flag){"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: train and apply the inverter on CUDA device N (a CUDA build)", 0, 0};
    int r = parse("attack inverter", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    fv_err e = {{0}};
    if (fv_device_parse(device, &cfg.inv.device, &e)) {
        fprintf(stderr, "fedvim attack inverter: %s\n", e.msg);
        return 2;
    }
    if (fv_device_check(cfg.inv.device, &e)) { /* before the data load, the mixing and the reassembly */
        fprintf(stderr, "fedvim attack inverter: --device %s: %s\n", device, e.msg);
        return 1;
    }
    if (vmix_params(&cfg.inv.def.vp, &v, &e)) {
        fprintf(stderr, "fedvim attack inverter: %s\n", e.msg);
        return 2;
    }
    if (fv_inverter_defence_parse(defence, &cfg.inv.def.kind, &e)) {
        fprintf(stderr, "fedvim attack inverter: --defence: %s\n", e.msg);
        return 2;
    }
    cfg.inv.def.ih = fv_instahide_defaults(cfg.inv.def.ih.k);
    if (fv_pixel_loss_parse(loss, &cfg.inv.loss, &e)) {
        fprintf(stderr, "fedvim attack inverter: --loss: %s\n", e.msg);
        return 2;
    }
    cfg.inv.lr = (float)lr;
    cfg.inv.remix = !no_remix;
    cfg.inv.verbose = c.verbose;
    cfg.reasm.anneal = anneal_i;
    cfg.reasm.t_end = t_end;
    cfg.reasm.seed = (uint64_t)c.seed;
    cfg.src.dataset = c.dataset;
    cfg.src.data_dir = c.data_dir;
    cfg.seed = (uint64_t)c.seed;
    cfg.out_dir = c.out;
    if (fv_inverter_run_check(&cfg, &e)) { /* before any data is read */
        fprintf(stderr, "fedvim attack %s\n", e.msg);
        return 2;
    }
    return finish("inverter", run_inverter, &cfg, &c);
}

static int cmd_gan(int argc, char **argv) {
    fv_gan_run_cfg cfg = fv_gan_run_defaults();
    common_opts c = common_defaults();
    vmix_opts v;
    vmix_defaults(&v);
    fl_opts fo;
    fl_defaults(&fo, &cfg.s);
    int no_bn = 0;
    double lr = cfg.a.gan.lr, tv = 0, l2 = 0, div = 0;
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    n = add_vmix(f, n, &v, "clients train on VisualMixer-mixed images");
    n = add_fl(f, n, &fo);
    f[n++] = (fv_flag){"target", FV_FLAG_INT, &cfg.a.gan.target, "the class the attacker aims at", 0, 1000};
    f[n++] = (fv_flag){"all-targets", FV_FLAG_BOOL, &cfg.all_targets, "attack every class in turn (passive)", 0, 0};
    f[n++] = (fv_flag){"steps", FV_FLAG_INT, &cfg.a.gan.steps, "generator steps", 0, 10000000};
    f[n++] = (fv_flag){"gan-batch", FV_FLAG_INT, &cfg.a.gan.batch, "noise samples per generator step", 1, 4096};
    f[n++] = (fv_flag){"gan-lr", FV_FLAG_FLOAT, &lr, "generator Adam step", 1e-9, 10};
    f[n++] = (fv_flag){"nz", FV_FLAG_INT, &cfg.a.arch.nz, "noise dimension", 1, 4096};
    f[n++] = (fv_flag){"ch1", FV_FLAG_INT, &cfg.a.arch.ch1, "generator channels after the dense layer", 1, 1024};
    f[n++] = (fv_flag){"ch2", FV_FLAG_INT, &cfg.a.arch.ch2, "generator channels after the first convolution", 1, 1024};
    f[n++] = (fv_flag){"no-bn", FV_FLAG_BOOL, &no_bn, "generator without batch norm", 0, 0};
    f[n++] = (fv_flag){"tv", FV_FLAG_FLOAT, &tv, "total-variation prior weight (0: off)", 0, 1e6};
    f[n++] = (fv_flag){"norm-prior", FV_FLAG_FLOAT, &l2, "image-norm prior weight (0: off)", 0, 1e6};
    f[n++] = (fv_flag){"diversity", FV_FLAG_FLOAT, &div, "diversity term weight (0: off)", 0, 1e6};
    f[n++] = (fv_flag){"jitter", FV_FLAG_INT, &cfg.a.gan.jitter, "random shifts before D, in pixels (0: off)", 0, 64};
    f[n++] = (fv_flag){"samples", FV_FLAG_INT, &cfg.a.samples, "generated samples judged", 1, 100000};
    f[n++] = (fv_flag){"refs", FV_FLAG_INT, &cfg.a.refs, "victim originals compared (at most)", 1, 100000};
    f[n++] = (fv_flag){"oracle-model", FV_FLAG_STRING, &cfg.a.oracle_model, "oracle architecture", 0, 0};
    f[n++] = (fv_flag){"oracle-epochs", FV_FLAG_INT, &cfg.a.oracle_epochs, "oracle training epochs", 1, 1000};
    f[n++] = (fv_flag){"oracle-cache", FV_FLAG_STRING, &cfg.a.oracle_cache, "oracle safetensors cache file", 0, 0};
    f[n++] = (fv_flag){"active", FV_FLAG_BOOL, &cfg.active, "Hitaj's active attack: the last client injects a fake class", 0, 0};
    f[n++] = (fv_flag){"active-steps", FV_FLAG_INT, &cfg.active_steps, "generator steps per round (active)", 1, 10000000};
    int r = parse("attack gan", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    fv_err e = {{0}};
    if (fl_setup(&cfg.s, &fo, &c, &v, &e)) {
        fprintf(stderr, "fedvim attack gan: %s\n", e.msg);
        return 2;
    }
    cfg.a.arch.bn = !no_bn;
    cfg.a.gan.lr = (float)lr;
    cfg.a.gan.tv = (float)tv;
    cfg.a.gan.l2 = (float)l2;
    cfg.a.gan.diversity = (float)div;
    cfg.a.gan.seed = (uint64_t)c.seed;
    cfg.a.gan.verbose = c.verbose;
    return finish("gan", run_gan, &cfg, &c);
}

static int cmd_mia(int argc, char **argv) {
    fv_mia_run_cfg cfg = fv_mia_run_defaults();
    common_opts c = common_defaults();
    vmix_opts v;
    vmix_defaults(&v);
    fl_opts fo;
    fl_defaults(&fo, &cfg.s);
    int no_qm = 0;
    const char *sd = "auto";
    fv_flag f[MAXF];
    int n = add_common(f, 0, &c);
    n = add_vmix(f, n, &v, "clients train on VisualMixer-mixed images");
    n = add_fl(f, n, &fo);
    f[n++] = (fv_flag){"shadows", FV_FLAG_INT, &cfg.lira.k, "shadow models (LiRA offline)", 2, 100000};
    f[n++] = (fv_flag){"sd", FV_FLAG_STRING, &sd, "OUT spread: per (example), pooled, or auto (per when shadows >= 16)", 0, 0};
    f[n++] = (fv_flag){"attacker-images", FV_FLAG_INT, &cfg.attacker_images, "the attacker's own images (held out)", 4, 100000000};
    f[n++] = (fv_flag){"queries", FV_FLAG_INT, &cfg.queries, "members and non-members queried, each", 1, 100000000};
    f[n++] = (fv_flag){"no-query-mixed", FV_FLAG_BOOL, &no_qm, "with --vmix, skip queries mixed with fresh keys", 0, 0};
    int r = parse("attack mia", f, n, argc, argv);
    if (r) return r == 1 ? 0 : 2;
    fv_err e = {{0}};
    if (fl_setup(&cfg.s, &fo, &c, &v, &e)) {
        fprintf(stderr, "fedvim attack mia: %s\n", e.msg);
        return 2;
    }
    if (strcmp(sd, "per") == 0) cfg.lira.per_example_sd = 1;
    else if (strcmp(sd, "pooled") == 0) cfg.lira.per_example_sd = 0;
    else if (strcmp(sd, "auto") == 0) cfg.lira.per_example_sd = -1;
    else {
        fprintf(stderr, "fedvim attack mia: --sd: '%s' is not per, pooled or auto\n", sd);
        return 2;
    }
    cfg.query_mixed = !no_qm;
    cfg.lira.seed = (uint64_t)c.seed;
    cfg.lira.verbose = c.verbose;
    return finish("mia", run_mia, &cfg, &c);
}

int fv_cmd_attack(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *what;
    } SUB[] = {
        {"invert", cmd_invert, "Inverting Gradients on a zoo model's fedSGD gradient or fedAVG update"},
        {"dlg", cmd_dlg, "DLG/iDLG (the invert engine: L2, L-BFGS) on one client step of the sigmoid LeNet"},
        {"reassemble", cmd_reassemble, "reassembly of VisualMixer-mixed images by total-variation search"},
        {"gan", cmd_gan, "GAN leakage attacker (Hitaj et al.), passive or --active, on a FedAvg run"},
        {"mia", cmd_mia, "membership inference (loss threshold, LiRA offline) on a FedAvg run"},
        {"recognise", cmd_recognise, "recogniser trained on mixed images: hidden attributes (colours) through VisualMixer"},
        {"inverter", cmd_inverter, "learned inverter: a network trained on the attacker's own mixed images"},
    };
    const int ns = sizeof SUB / sizeof SUB[0];
    if (argc >= 2)
        for (int i = 0; i < ns; i++)
            if (strcmp(argv[1], SUB[i].name) == 0) return SUB[i].fn(argc - 1, argv + 1);
    int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) fprintf(stderr, "fedvim attack: unknown attack '%s'\n", argv[1]);
    fprintf(f, "usage: fedvim attack <attack> [flags]   (fedvim attack <attack> --help for its flags)\n\nattacks:\n");
    for (int i = 0; i < ns; i++) fprintf(f, "  %-12s %s\n", SUB[i].name, SUB[i].what);
    return help ? 0 : 2;
}
