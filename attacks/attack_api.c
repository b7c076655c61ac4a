/* attack_api.c: see attack_api.h. Parses the settings, rebuilds what the server sees (the
 * upload as a model, the client's gradient), and calls the cores of attack_run.h. */
#include "attack_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack_run.h"
#include "cuda/net.h"
#include "rng.h"
#include "io/json.h"
#include "nn/models.h"

int fv_attack_model_classes(fv_attack_kind kind, int data_classes) {
    return data_classes + (kind == FV_ATTACK_GAN_ACTIVE);
}

int fv_attack_rounds(const fv_config *c, int *out, int cap) {
    int n = fv_config_round_list(c, out, cap);
    if (n != 0) return n;
    if (c->attack_kind == FV_ATTACK_GAN_ACTIVE) {
        if (cap < c->rounds) return -1;
        for (int r = 0; r < c->rounds; r++) out[r] = r + 1;
        return c->rounds;
    }
    if (cap < 1) return -1;
    out[0] = c->rounds;
    return 1;
}

/* ---- settings: "key=value,key=value" against a table; unknown keys are errors ---- */

typedef enum { S_INT, S_FLOAT, S_STR } stype;

typedef struct {
    const char *key;
    stype type;
    void *dst; /* int *, double *, const char ** (points into the parsed copy) */
    double lo, hi;
} setting;

/* Parses text (may be NULL) into the table; *copy (caller frees) keeps the strings alive. */
static int parse_settings(const char *attack, const char *text, const setting *tab, int n, char **copy, fv_err *e) {
    *copy = fv_strdup(text ? text : "");
    char *save = NULL;
    for (char *tok = strtok_r(*copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (!*tok) continue;
        char *eq = strchr(tok, '=');
        if (!eq) return fv_err_set(e, "%s settings: '%s' is not key=value", attack, tok);
        *eq = 0;
        const char *val = eq + 1;
        int k = 0;
        while (k < n && strcmp(tab[k].key, tok) != 0) k++;
        if (k == n) {
            char known[512] = "";
            for (int i = 0; i < n; i++) {
                strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
                strncat(known, tab[i].key, sizeof known - strlen(known) - 1);
            }
            return fv_err_set(e, "%s settings: unknown key '%s' (known: %s)", attack, tok, known);
        }
        char flag[96];
        snprintf(flag, sizeof flag, "%s setting %s", attack, tok);
        if (tab[k].type == S_INT) {
            long v;
            if (fv_parse_int(flag, val, (long)tab[k].lo, (long)tab[k].hi, &v, e)) return -1;
            *(int *)tab[k].dst = (int)v;
        } else if (tab[k].type == S_FLOAT) {
            if (fv_parse_float(flag, val, tab[k].lo, tab[k].hi, (double *)tab[k].dst, e)) return -1;
        } else {
            *(const char **)tab[k].dst = val;
        }
    }
    return 0;
}

static fv_net *model_from_upload(const fv_attack_request *rq, fv_err *e) {
    fv_net *net = fv_model_new(rq->model, rq->input, rq->classes, 1, e);
    if (!net) return NULL;
    if (net->n_params != rq->n_params) {
        fv_err_set(e, "model %s has %zu parameters but the upload has %zu", rq->model, net->n_params, rq->n_params);
        fv_net_destroy(&net);
        return NULL;
    }
    memcpy(net->params, rq->upload, sizeof(float) * rq->n_params);
    return net;
}

/* Split the held-out images: the first half for "never held" originals (and the MIA attacker),
 * the second half for the oracle. */
static void split_heldout(const fv_attack_request *rq, const int **a, int *na, const int **b, int *nb) {
    *na = rq->n_heldout / 2;
    *a = rq->heldout_idx;
    *nb = rq->n_heldout - *na;
    *b = rq->heldout_idx + *na;
}

/* The gan settings (and gan_active's extra key "fake") parsed into a generator recipe. */
static int gan_settings(const fv_attack_request *rq, int active, fv_gan_attack_cfg *c, int *fake, char **copy,
                        fv_err *e) {
    int steps = 300, batch = 32, nz = 100, ch1 = 32, ch2 = 16, bn = 1, jitter = 2, samples = 64, refs = 200,
        oepochs = 2, nfake = 0;
    double lr = 1e-3, tv = 0, l2 = 0.3, div = 0;
    const char *omodel = "lenet5", *ocache = NULL;
    const setting tab[] = {
        {"steps", S_INT, &steps, 0, 1e7},       {"batch", S_INT, &batch, 1, 4096},
        {"lr", S_FLOAT, &lr, 1e-9, 10},         {"nz", S_INT, &nz, 1, 4096},
        {"ch1", S_INT, &ch1, 1, 1024},          {"ch2", S_INT, &ch2, 1, 1024},
        {"bn", S_INT, &bn, 0, 1},               {"tv", S_FLOAT, &tv, 0, 1e6},
        {"norm_prior", S_FLOAT, &l2, 0, 1e6},   {"diversity", S_FLOAT, &div, 0, 1e6},
        {"jitter", S_INT, &jitter, 0, 64},      {"samples", S_INT, &samples, 1, 100000},
        {"refs", S_INT, &refs, 1, 100000},      {"oracle_model", S_STR, &omodel, 0, 0},
        {"oracle_epochs", S_INT, &oepochs, 1, 1000}, {"oracle_cache", S_STR, &ocache, 0, 0},
        {"fake", S_INT, &nfake, 0, 1000000}, /* gan_active only: the last entry */
    };
    int n = sizeof tab / sizeof tab[0] - (active ? 0 : 1);
    if (parse_settings(active ? "gan_active" : "gan", rq->settings, tab, n, copy, e)) return -1;
    *c = fv_gan_attack_defaults();
    c->arch = (fv_gen_arch){nz, ch1, ch2, bn};
    c->gan.target = rq->target;
    c->gan.steps = steps;
    c->gan.batch = batch;
    c->gan.lr = (float)lr;
    c->gan.tv = (float)tv;
    c->gan.l2 = (float)l2;
    c->gan.diversity = (float)div;
    c->gan.jitter = jitter;
    c->gan.seed = rq->seed;
    c->gan.norm = rq->norm;
    c->samples = samples;
    c->refs = refs;
    c->oracle_model = omodel;
    c->oracle_epochs = oepochs;
    c->oracle_cache = ocache;
    *fake = nfake;
    return 0;
}

static int run_gan(const fv_attack_request *rq, int active, fv_json *j, fv_err *e) {
    char *copy = NULL;
    int rc = -1, nfake;
    fv_net *D = NULL;
    fv_gan *g = NULL;
    fv_gan_attack_cfg c;
    if (gan_settings(rq, active, &c, &nfake, &copy, e)) goto out;
    if (!rq->data || !rq->victim_idx || rq->n_victim < 1 || rq->n_heldout < 2) {
        fv_err_set(e, "gan: the evaluation needs the victim's images and held-out images");
        goto out;
    }
    if (!(D = model_from_upload(rq, e))) goto out;
    if (!(g = fv_gan_new(rq->input, &c.arch, rq->seed, e))) goto out;
    const int *never, *oidx;
    int nn, no;
    split_heldout(rq, &never, &nn, &oidx, &no);
    fv_attack_data ad = {rq->data, rq->victim_idx, rq->n_victim, rq->victim_mixed, never, nn, oidx, no,
                         "heldout", rq->test, rq->norm};
    fv_json_str(j, "discriminator_source", active ? "the global model the attacking client trained against"
                                                  : "the client's upload");
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s_", rq->tag ? rq->tag : "gan");
    rc = fv_gan_attack(j, NULL, g, 0, NULL, D, &c, &ad, rq->out_dir, prefix, e);
out:
    fv_gan_destroy(&g);
    fv_net_destroy(&D);
    free(copy);
    return rc;
}

uint64_t fv_attack_seed(uint64_t run_seed, int round, int client) {
    return run_seed * 0x9e3779b97f4a7c15ull ^ ((uint64_t)round << 32 | (uint32_t)client);
}

int fv_attack_active_samples(const fv_attack_request *rq, int n_own, float **out, int *n_out, char **json,
                             fv_err *e) {
    *out = NULL;
    *n_out = 0;
    *json = NULL;
    if (!rq->model || !rq->upload || rq->n_params == 0) return fv_err_set(e, "gan_active: no model given");
    if (rq->target < 0 || rq->target >= rq->classes - 1)
        return fv_err_set(e, "gan_active: target class %d out of range [0, %d)", rq->target, rq->classes - 1);
    char *copy = NULL;
    int rc = -1, nfake;
    fv_net *D = NULL;
    fv_gan *g = NULL;
    fv_gan_attack_cfg c;
    fv_gan_stats st;
    if (gan_settings(rq, 1, &c, &nfake, &copy, e)) goto out;
    if (!(D = model_from_upload(rq, e))) goto out;
    if (!(g = fv_gan_new(rq->input, &c.arch, rq->seed, e))) goto out;
    if (fv_gan_train(g, D, &c.gan, &st, e)) goto out;
    int n = nfake > 0 ? nfake : n_own > 0 ? n_own : 1;
    *out = fv_malloc(sizeof(float) * (size_t)n * rq->input.c * rq->input.h * rq->input.w);
    fv_gan_sample(g, *out, n, c.gan.seed + 99); /* the stream fv_gan_attack draws its grid from */
    *n_out = n;
    fv_json j;
    fv_json_begin(&j);
    fv_json_int(&j, "fake", n);
    fv_json_int(&j, "fake_class", rq->classes - 1);
    fv_json_int(&j, "steps", st.steps);
    fv_json_num(&j, "ce", st.ce);
    fv_json_num(&j, "p_target", st.p_target);
    fv_json_num(&j, "d_hits", st.d_hits);
    fv_json_num(&j, "seconds", st.seconds);
    *json = fv_strdup(fv_json_end(&j));
    fv_json_free(&j);
    rc = 0;
out:
    fv_gan_destroy(&g);
    fv_net_destroy(&D);
    free(copy);
    return rc;
}

/* The dlg settings; lr < 0 when not given (the coordinator prepends the run's). */
typedef struct {
    double lr, fd, target;
    int iters, restarts;
    const char *opt_name, *objective;
    fv_invert_cfg ac; /* the engine configuration they give */
} dlg_set;

static int dlg_settings(const char *text, dlg_set *d, char **copy, fv_err *e) {
    *d = (dlg_set){.lr = -1, .fd = FV_INVERT_FD_SCALE, .target = FV_INVERT_DLG_TARGET, .iters = 300, .restarts = 1,
                   .opt_name = "lbfgs", .objective = "l2", .ac = fv_invert_dlg_defaults()};
    const setting tab[] = {
        {"lr", S_FLOAT, &d->lr, 1e-12, 1e6},        {"iters", S_INT, &d->iters, 1, 1e7},
        {"restarts", S_INT, &d->restarts, 1, 1000}, {"optimizer", S_STR, &d->opt_name, 0, 0},
        {"fd_scale", S_FLOAT, &d->fd, 1e-9, 0.5},   {"objective", S_STR, &d->objective, 0, 0},
        {"target", S_FLOAT, &d->target, 0, 0.5},
    };
    if (parse_settings("dlg", text, tab, sizeof tab / sizeof tab[0], copy, e)) return -1;
    if (fv_invert_parse_dlg_choice(d->objective, d->opt_name, &d->ac, e)) return fv_err_prefix(e, "dlg settings: ");
    d->ac.iters = d->iters;
    d->ac.restarts = d->restarts;
    d->ac.target = d->target;
    return 0;
}

/* DLG / iDLG in a run: the engine's fedSGD configuration on the client's gradient
 * (global - upload) / lr, labels by the iDLG / count rule, through fv_invert_observed. */
static int run_dlg(const fv_attack_request *rq, fv_json *j, fv_err *e) {
    dlg_set d;
    char *copy = NULL;
    int rc = -1;
    fv_net *net = NULL;
    float *buf = NULL;
    int y[FV_DLG_MAX_BATCH];
    if (dlg_settings(rq->settings, &d, &copy, e)) goto out;
    const double lr = d.lr;
    if (lr <= 0) {
        fv_err_set(e, "dlg: the setting lr (the client's SGD step) is required to turn the update into a gradient");
        goto out;
    }
    if (strcmp(rq->model, "dlg_lenet") != 0) {
        fv_err_set(e, "dlg: the attack models the sigmoid LeNet \"dlg_lenet\"; the federation uses \"%s\"", rq->model);
        goto out;
    }
    if (!rq->global) {
        fv_err_set(e, "dlg: the global parameters the client started from are needed");
        goto out;
    }
    const int n = rq->n_victim;
    if (n < 1 || n > FV_DLG_MAX_BATCH || !rq->data || !rq->victim_idx) {
        fv_err_set(e, "dlg: the client must hold 1 to %d images (it holds %d)", FV_DLG_MAX_BATCH, n);
        goto out;
    }
    if (!(net = fv_model_new(rq->model, rq->input, rq->classes, 1, e))) goto out;
    if (net->n_params != rq->n_params) {
        fv_err_set(e, "dlg: the upload has %zu parameters, dlg_lenet %zu", rq->n_params, net->n_params);
        goto out;
    }
    memcpy(net->params, rq->global, sizeof(float) * rq->n_params);
    const size_t isz = fv_shape_size(rq->input), nt = net->n_train;
    buf = fv_malloc(sizeof(float) * (nt + isz * (size_t)n * 2));
    float *g = buf, *orig = g + nt, *trained = orig + isz * (size_t)n;
    for (size_t i = 0; i < nt; i++) g[i] = (float)(((double)rq->global[i] - rq->upload[i]) / lr);
    const fv_dataset *td = rq->victim_mixed ? rq->victim_mixed : rq->data;
    for (int i = 0; i < n; i++) {
        const size_t k = (size_t)rq->victim_idx[i];
        y[i] = rq->data->y[k];
        for (size_t p = 0; p < isz; p++) {
            orig[i * isz + p] = rq->data->x[k * isz + p] / 255.0f;
            trained[i * isz + p] = td->x[k * isz + p] / 255.0f;
        }
    }
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.n = n;
    uc.fd_scale = d.fd;
    d.ac.seed = rq->seed;
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s_", rq->tag ? rq->tag : "dlg");
    fv_json_num(j, "client_lr", lr);
    rc = fv_invert_observed(net, g, &uc, &d.ac, -1, 1, y, orig, rq->victim_mixed ? trained : NULL, NULL, rq->norm,
                            rq->out_dir, prefix, j, e);
out:
    fv_net_destroy(&net);
    free(buf);
    free(copy);
    return rc;
}

/* The invert settings. lr, epochs and batch describe the client's local training: the
 * coordinator prepends the run's (training.lr, local_epochs, batch_size); lr < 0 when not given. */
typedef struct {
    double lr, tv, step, fd, bn_prior;
    int epochs, batch, iters, restarts;
    int inv_epochs, inv_images; /* the chain's learned inverter: epochs (0: none) over that many held-out images */
    int inv_device;             /* ... trained and applied there (-1 the CPU; from inverter_device) */
    int device;                 /* the inversion engine's passes (-1 the CPU; from device) */
    const char *fd_mode, *labels, *inv_device_name, *device_name;
} invert_set;

static int invert_settings(const char *text, invert_set *d, char **copy, fv_err *e) {
    fv_invert_cfg ac = fv_invert_defaults();
    *d = (invert_set){.lr = -1, .tv = ac.tv, .step = ac.lr, .fd = FV_INVERT_FD_SCALE, .epochs = 1, .batch = 0,
                      .iters = 500, .restarts = 1, .inv_epochs = 0, .inv_images = 4000, .fd_mode = "central",
                      .labels = "inferred", .inv_device = -1, .inv_device_name = "cpu", .device = -1,
                      .device_name = "cpu"};
    setting tab[] = {{"lr", S_FLOAT, &d->lr, 1e-12, 100},          {"epochs", S_INT, &d->epochs, 1, 10000},
                     {"batch", S_INT, &d->batch, 1, 65536},         {"iters", S_INT, &d->iters, 1, 1000000},
                     {"restarts", S_INT, &d->restarts, 1, 1000},    {"tv", S_FLOAT, &d->tv, 0, 1e3},
                     {"step", S_FLOAT, &d->step, 1e-9, 1e3},        {"fd_scale", S_FLOAT, &d->fd, 1e-9, 0.5},
                     {"fd", S_STR, &d->fd_mode, 0, 0},              {"labels", S_STR, &d->labels, 0, 0},
                     {"bn_prior", S_FLOAT, &d->bn_prior, 0, 1e6},
                     {"inverter_epochs", S_INT, &d->inv_epochs, 0, 1000},
                     {"inverter_images", S_INT, &d->inv_images, 4, 1e7},
                     {"inverter_device", S_STR, &d->inv_device_name, 0, 0},
                     {"device", S_STR, &d->device_name, 0, 0}};
    if (parse_settings("invert", text, tab, sizeof tab / sizeof tab[0], copy, e)) return -1;
    if (strcmp(d->fd_mode, "central") != 0 && strcmp(d->fd_mode, "one-sided") != 0)
        return fv_err_set(e, "invert settings: fd '%s' is not central or one-sided", d->fd_mode);
    if (strcmp(d->labels, "inferred") != 0 && strcmp(d->labels, "known") != 0)
        return fv_err_set(e, "invert settings: labels '%s' is not inferred or known", d->labels);
    if (fv_device_parse(d->inv_device_name, &d->inv_device, e))
        return fv_err_prefix(e, "invert settings: inverter_device: ");
    if (fv_device_parse(d->device_name, &d->device, e)) return fv_err_prefix(e, "invert settings: device: ");
    return 0;
}

/* The chain's learned inverter (inverter.h): trained on the attacker's own images (the first
 * inverter_images of the held-out ones, which no client holds), mixed with a key of its own at the
 * federation's public settings, for inverter_epochs epochs; its figures go to j's "inverter"
 * object. Returns the net (caller frees), or NULL with e set. */
static fv_net *chain_inverter(const fv_attack_request *rq, const invert_set *d, fv_json *j, fv_err *e) {
    const int n = rq->n_heldout < d->inv_images ? rq->n_heldout : d->inv_images;
    if (n < 4) {
        fv_err_set(e, "invert: the chain's inverter needs at least 4 held-out images, %d are left", rq->n_heldout);
        return NULL;
    }
    const size_t isz = fv_shape_size(rq->input);
    fv_dataset own = {.n = n, .c = rq->input.c, .h = rq->input.h, .w = rq->input.w, .classes = rq->data->classes};
    own.x = fv_malloc(isz * (size_t)n);
    own.y = fv_malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        memcpy(own.x + isz * (size_t)i, rq->data->x + isz * (size_t)rq->heldout_idx[i], isz);
        own.y[i] = rq->data->y[rq->heldout_idx[i]];
    }
    fv_inverter_cfg ic = fv_inverter_defaults();
    ic.epochs = d->inv_epochs;
    ic.def.kind = FV_INV_DEF_VMIX;
    ic.def.vp = *rq->vp;
    ic.seed = rq->seed;
    ic.device = d->inv_device;
    fv_rng r; /* the attacker's own key, from the attack's seed (never the victim's) */
    fv_rng_seed2(&r, rq->seed, 0x696e76657274ull);
    for (int i = 0; i < FV_VMIX_KEY_BYTES; i++) ic.key[i] = (uint8_t)fv_rng_u64(&r);
    fv_inverter_stats st;
    fv_net *inv = fv_inverter_net_new(own.c, own.h, own.w, ic.width, ic.seed, e);
    if (inv && fv_inverter_train(inv, &own, &ic, &st, e) != 0) fv_net_destroy(&inv);
    fv_dataset_free(&own);
    if (!inv) return NULL;
    fv_json_obj_begin(j, "inverter");
    fv_json_int(j, "images", n);
    fv_json_int(j, "epochs", ic.epochs);
    fv_json_int(j, "width", ic.width);
    fv_json_str(j, "device", d->inv_device_name);
    fv_json_num(j, "final_loss", st.final_loss);
    fv_json_num(j, "seconds", st.seconds);
    fv_json_obj_end(j);
    return inv;
}

static int run_invert(const fv_attack_request *rq, fv_json *j, fv_err *e) {
    invert_set d;
    char *copy = NULL;
    int rc = -1;
    fv_net *net = NULL;
    float *buf = NULL;
    int *y = NULL;
    fv_invert_chain chain = fv_invert_chain_defaults();
    if (invert_settings(rq->settings, &d, &copy, e)) goto out;
    if (d.lr <= 0) {
        fv_err_set(e, "invert: the setting lr (the client's SGD step) is required to model its update");
        goto out;
    }
    if (!rq->global) {
        fv_err_set(e, "invert: the global parameters the client started from are needed");
        goto out;
    }
    const int n = rq->n_victim;
    if (n < 1 || n > FV_INVERT_MAX_IMAGES || !rq->data || !rq->victim_idx) {
        fv_err_set(e, "invert: the client must hold 1 to %d images (it holds %d)", FV_INVERT_MAX_IMAGES, n);
        goto out;
    }
    net = fv_model_new(rq->model, rq->input, rq->classes, 1, e);
    if (!net) goto out;
    if (net->n_params != rq->n_params) {
        fv_err_set(e, "invert: model %s has %zu parameters but the upload has %zu", rq->model, net->n_params,
                   rq->n_params);
        goto out;
    }
    memcpy(net->params, rq->global, sizeof(float) * rq->n_params);
    const size_t isz = fv_shape_size(rq->input), nt = net->n_train;
    buf = fv_malloc(sizeof(float) * (nt + isz * (size_t)n * 2));
    float *U = buf, *orig = U + nt, *trained = orig + isz * (size_t)n;
    for (size_t i = 0; i < nt; i++) U[i] = rq->global[i] - rq->upload[i];
    y = fv_malloc(sizeof(int) * (size_t)n);
    const fv_dataset *td = rq->victim_mixed ? rq->victim_mixed : rq->data;
    for (int i = 0; i < n; i++) {
        const size_t k = (size_t)rq->victim_idx[i];
        y[i] = rq->data->y[k];
        for (size_t p = 0; p < isz; p++) {
            orig[i * isz + p] = rq->data->x[k * isz + p] / 255.0f;
            trained[i * isz + p] = td->x[k * isz + p] / 255.0f;
        }
    }
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.kind = FV_INVERT_FEDAVG;
    uc.n = n;
    uc.batch = d.batch > 0 && d.batch < n ? d.batch : n;
    uc.epochs = d.epochs;
    uc.lr = (float)d.lr;
    uc.fd_scale = d.fd;
    uc.one_sided = strcmp(d.fd_mode, "one-sided") == 0;
    fv_invert_cfg ac = fv_invert_defaults();
    ac.iters = d.iters;
    ac.restarts = d.restarts;
    ac.lr = d.step;
    ac.tv = d.tv;
    ac.bn_prior = d.bn_prior;
    ac.seed = rq->seed;
    /* the engine replays the client's steps over its images in a fixed order: exact up to which
     * image is which when the shard is one batch or one epoch (the candidates absorb the order);
     * with several epochs over several batches the client reshuffled between epochs */
    fv_json_bool(j, "update_model_exact", uc.epochs == 1 || uc.batch >= n);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s_", rq->tag ? rq->tag : "invert");
    /* evaluation only: the chain, reassembly after inversion, when the victim's mixing is known */
    chain.vp_public = rq->vp;
    chain.vp_victim = rq->victim_vp;
    chain.inverter_device = d.inv_device;
    const int chained = rq->victim_mixed && rq->vp && rq->victim_vp;
    if (chained && d.inv_epochs > 0 && (chain.inverter = chain_inverter(rq, &d, j, e)) == NULL) goto out;
    rc = fv_invert_observed(net, U, &uc, &ac, d.device, strcmp(d.labels, "inferred") == 0, y, orig,
                            rq->victim_mixed ? trained : NULL, chained ? &chain : NULL, rq->norm, rq->out_dir,
                            prefix, j, e);
out:
    fv_net_destroy(&chain.inverter);
    fv_net_destroy(&net);
    free(buf);
    free(y);
    free(copy);
    return rc;
}

typedef struct {
    int shadows, epochs, batch, atk_images, queries;
    double lr;
} mia_set;

static int mia_settings(const char *text, mia_set *m, char **copy, fv_err *e) {
    *m = (mia_set){.shadows = 8, .epochs = 5, .batch = 32, .atk_images = 2000, .queries = 500, .lr = 1e-3};
    const setting tab[] = {
        {"shadows", S_INT, &m->shadows, 2, 100000}, {"epochs", S_INT, &m->epochs, 1, 100000},
        {"lr", S_FLOAT, &m->lr, 1e-9, 10},          {"batch", S_INT, &m->batch, 1, 65536},
        {"attacker_images", S_INT, &m->atk_images, 4, 1e8}, {"queries", S_INT, &m->queries, 1, 1e8},
    };
    return parse_settings("mia", text, tab, sizeof tab / sizeof tab[0], copy, e);
}

static int run_mia(const fv_attack_request *rq, fv_json *j, fv_err *e) {
    mia_set ms;
    char *copy = NULL;
    int rc = -1;
    fv_net *client = NULL, *global = NULL;
    if (mia_settings(rq->settings, &ms, &copy, e)) goto out;
    const int shadows = ms.shadows, epochs = ms.epochs, batch = ms.batch, atk_images = ms.atk_images,
              queries = ms.queries;
    const double lr = ms.lr;
    if (!rq->data || !rq->victim_idx || rq->n_victim < 1 || !rq->test || rq->n_heldout < 8) {
        fv_err_set(e, "mia: needs the client's images (members), a test split (non-members) and held-out images");
        goto out;
    }
    if (!(client = model_from_upload(rq, e))) goto out;
    if (rq->global) {
        if (!(global = fv_model_new(rq->model, rq->input, rq->classes, 1, e))) goto out;
        memcpy(global->params, rq->global, sizeof(float) * rq->n_params);
    }
    const int *atk, *unused;
    int na, nu;
    split_heldout(rq, &atk, &na, &unused, &nu);
    if (na > atk_images) na = atk_images;
    fv_mia_attack_cfg mc;
    memset(&mc, 0, sizeof mc);
    mc.model = rq->model;
    mc.opt = fv_opt_defaults(FV_OPT_ADAM);
    mc.opt.lr = (float)lr;
    mc.epochs = epochs;
    mc.batch = batch;
    mc.lira = fv_lira_defaults();
    mc.lira.k = shadows;
    mc.lira.seed = rq->seed;
    mc.queries = queries;
    mc.query_mixed = 1;
    mc.vp = rq->vp;
    mc.seed = rq->seed;
    fv_json_str(j, "members", "the client's images");
    rc = fv_mia_attack(j, client, global, &mc, rq->data, rq->victim_idx, rq->n_victim, rq->test, atk, na, rq->norm, e);
out:
    fv_net_destroy(&client);
    fv_net_destroy(&global);
    free(copy);
    return rc;
}

int fv_attack_run(const fv_attack_request *rq, char **json, fv_err *e) {
    *json = NULL;
    if (!rq->attack) return fv_err_set(e, "attack: no attack named (gan, dlg or mia)");
    if (!rq->model || !rq->upload || rq->n_params == 0) return fv_err_set(e, "attack: no model or upload given");
    fv_json j;
    fv_json_begin(&j);
    fv_json_str(&j, "attack", rq->attack);
    fv_json_str(&j, "model", rq->model);
    fv_json_str(&j, "settings", rq->settings ? rq->settings : "");
    if (rq->tag) fv_json_str(&j, "tag", rq->tag);
    int rc;
    if (strcmp(rq->attack, "gan") == 0) rc = run_gan(rq, 0, &j, e);
    else if (strcmp(rq->attack, "gan_active") == 0) rc = run_gan(rq, 1, &j, e);
    else if (strcmp(rq->attack, "dlg") == 0) rc = run_dlg(rq, &j, e);
    else if (strcmp(rq->attack, "mia") == 0) rc = run_mia(rq, &j, e);
    else if (strcmp(rq->attack, "invert") == 0) rc = run_invert(rq, &j, e);
    else rc = fv_err_set(e, "attack: unknown attack '%s' (gan, gan_active, dlg, mia or invert)", rq->attack);
    const char *s = fv_json_end(&j);
    if (rc == 0) *json = fv_strdup(s);
    fv_json_free(&j);
    return rc;
}

int fv_attack_settings_check(const char *kind, const char *settings, fv_err *e) {
    fv_attack_request rq;
    memset(&rq, 0, sizeof rq);
    rq.settings = settings;
    char *copy = NULL;
    int rc;
    if (strcmp(kind, "gan") == 0 || strcmp(kind, "gan_active") == 0) {
        fv_gan_attack_cfg c;
        int nfake;
        rc = gan_settings(&rq, strcmp(kind, "gan_active") == 0, &c, &nfake, &copy, e);
    } else if (strcmp(kind, "dlg") == 0) {
        dlg_set d;
        rc = dlg_settings(settings, &d, &copy, e);
    } else if (strcmp(kind, "mia") == 0) {
        mia_set m;
        rc = mia_settings(settings, &m, &copy, e);
    } else if (strcmp(kind, "invert") == 0) {
        invert_set d;
        rc = invert_settings(settings, &d, &copy, e);
    } else {
        rc = fv_err_set(e, "unknown attack '%s' (gan, gan_active, dlg, mia, invert)", kind);
    }
    free(copy);
    return rc;
}

int fv_attack_devices_check(const char *kind, const char *settings, fv_err *e) {
    if (strcmp(kind, "invert") != 0) return 0;
    invert_set d;
    char *copy = NULL;
    int rc = invert_settings(settings, &d, &copy, e);
    if (rc == 0 && d.inv_epochs > 0 && fv_device_check(d.inv_device, e) != 0)
        rc = fv_err_prefix(e, "invert settings: inverter_device: ");
    if (rc == 0 && fv_device_check(d.device, e) != 0) rc = fv_err_prefix(e, "invert settings: device: ");
    free(copy);
    return rc;
}

int fv_attack_check_config(const fv_config *c, fv_err *e) {
    if (c->attack_kind == FV_ATTACK_NONE) return 0;
    int judged = c->attack_kind == FV_ATTACK_GAN || c->attack_kind == FV_ATTACK_MIA ||
                 c->attack_kind == FV_ATTACK_GAN_ACTIVE;
    if (judged && strcmp(c->dataset, "synthetic") != 0 && c->train_size == 0)
        return fv_config_key_error(c, e, "data", "train_size",
                                   "0 (the whole split) leaves no held-out images for [attack] kind = %s (its oracle, "
                                   "shadows and never-held originals use the training images beyond train_size): "
                                   "set train_size below the split's size",
                                   fv_config_attack_kind_name(c->attack_kind));
    if (c->attack_kind == FV_ATTACK_DLG) {
        /* the client's gradient is (global - upload) / lr only after one plain SGD step */
        if (strcmp(c->model, "dlg_lenet") != 0)
            return fv_config_key_error(c, e, "model", "name",
                                       "'%s': [attack] kind = dlg models the sigmoid LeNet dlg_lenet", c->model);
        if (c->optimizer != FV_OPT_SGD || c->momentum != 0 || c->weight_decay != 0 || c->prox_mu != 0)
            return fv_config_key_error(c, e, "training", "optimizer",
                                       "[attack] kind = dlg needs plain SGD (no momentum, weight_decay or prox_mu) "
                                       "so that an update is one gradient step");
        if (c->local_epochs != 1)
            return fv_config_key_error(c, e, "training", "local_epochs",
                                       "%d: [attack] kind = dlg needs one local step", c->local_epochs);
    }
    if (c->attack_kind == FV_ATTACK_INVERT) {
        /* the engine replays the client's local steps: plain SGD, nothing added to the gradient */
        if (c->optimizer != FV_OPT_SGD || c->momentum != 0 || c->weight_decay != 0 || c->prox_mu != 0)
            return fv_config_key_error(c, e, "training", "optimizer",
                                       "[attack] kind = invert models the client's local steps as plain SGD (no "
                                       "momentum, weight_decay or prox_mu)");
        if (c->aggregator == FV_AGGREGATOR_SCAFFOLD)
            return fv_config_key_error(c, e, "fl", "aggregator",
                                       "scaffold: [attack] kind = invert does not model SCAFFOLD's control variates "
                                       "in the client's steps");
    }
    return 0;
}
