/* attacker.c: see attacker.h. */
#include "attacker.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack_api.h"
#include "fl/experiment.h"
#include "io/json.h"
#include "io/json_read.h"
#include "nn/layers.h"
#include "data/synthetic.h"
#include "fv_thread.h"
#include <sodium.h>
#include "vmix/vmix_key.h"

#define MAX_LINES_BYTES (64u << 20)

struct fv_attacker {
    fv_config cfg;
    char dir[1024], out_dir[1100];
    fv_dataset data;   /* the training set, then the held-out images */
    int n_train;
    int *heldout;      /* n_heldout indices into data */
    int n_heldout;
    fv_partition part;
    const fv_dataset *test;
    fv_norm norm;
    fv_vmix_params vp;
    int has_vp;
    fv_vmix_params victim_vp; /* evaluation only (with mixed): the victim's own mixing */
    int has_victim_vp;
    size_t n_params;
    int threads;
    int *rounds, n_rounds;
    int captured_round; /* the round whose upload is held, 0 when none */
    float *upload, *global;
    int *others, n_others; /* gan_active: the images of every client but the attacker (its victims) */
    int *cohort, n_cohort; /* [secagg]: the survivors of the captured round (fv_attacker_capture_sum) */
    fv_dataset mixed;   /* evaluation only (opts client_keys): data with the victim's images as it
                           trained on them (mixed with its own key); n == 0 when not made */
    char **lines;       /* attacks.jsonl */
    int nlines;
};

static int is_attack_round(const fv_attacker *a, int round) {
    for (int i = 0; i < a->n_rounds; i++)
        if (a->rounds[i] == round) return 1;
    return 0;
}

/* The training set plus held-out images in one data set (indices >= n_train are held out). */
static int load_heldout(fv_attacker *a, const fv_attacker_opts *o, fv_err *e) {
    fv_dataset *tr = o->train;
    a->n_train = tr->n;
    if (strcmp(a->cfg.dataset, "synthetic") == 0) {
        /* a third split (0 train, 1 test): same classes, images no client holds */
        fv_dataset h;
        fv_synthetic_make(&h, tr->n, tr->c, tr->h, tr->w, tr->classes, (uint64_t)a->cfg.seed, 2);
        size_t isz = (size_t)tr->c * tr->h * tr->w, n = (size_t)tr->n + h.n;
        a->data = *tr;
        a->data.n = (int)n;
        a->data.x = fv_malloc(n * isz);
        a->data.y = fv_malloc(n);
        memcpy(a->data.x, tr->x, (size_t)tr->n * isz);
        memcpy(a->data.x + (size_t)tr->n * isz, h.x, (size_t)h.n * isz);
        memcpy(a->data.y, tr->y, (size_t)tr->n);
        memcpy(a->data.y + tr->n, h.y, (size_t)h.n);
        fv_dataset_free(&h);
        fv_dataset_free(tr);
    } else {
        fv_config whole = a->cfg;
        whole.train_size = 0;
        if (fv_exp_load_data(&whole, o->data_dir, 1, &a->data, e) != 0) return -1;
        if (a->data.n < tr->n || a->data.c != tr->c || memcmp(a->data.x, tr->x, (size_t)tr->n * tr->c * tr->h * tr->w) ||
            memcmp(a->data.y, tr->y, (size_t)tr->n))
            return fv_err_set(e, "[attack]: the %s training split changed while it was read", a->cfg.dataset);
        fv_dataset_free(tr);
    }
    a->n_heldout = a->data.n - a->n_train;
    a->heldout = fv_malloc(sizeof(int) * (size_t)(a->n_heldout + 1));
    for (int i = 0; i < a->n_heldout; i++) a->heldout[i] = a->n_train + i;
    return 0;
}

/* gan_active: a->others = the indices of the images of every client but the attacker. */
static void others_fill(fv_attacker *a) {
    int total = 0;
    for (int k = 0; k < a->cfg.clients; k++)
        if (k != a->cfg.attack_client) total += fv_partition_size(&a->part, k);
    free(a->others);
    a->others = fv_malloc(sizeof(int) * (size_t)(total + 1));
    a->n_others = 0;
    for (int k = 0; k < a->cfg.clients; k++) {
        if (k == a->cfg.attack_client) continue;
        const int *idx = fv_partition_indices(&a->part, k);
        for (int i = 0, n = fv_partition_size(&a->part, k); i < n; i++) a->others[a->n_others++] = idx[i];
    }
}

/* Checks that need the data and the partition (and the settings, which the config layer cannot
 * read: it knows no attack). */
static int check_victim(fv_attacker *a, fv_err *e) {
    const fv_config *c = &a->cfg;
    const char *kind = fv_config_attack_kind_name(c->attack_kind);
    if (fv_attack_settings_check(kind, c->attack_settings, e) != 0 ||
        fv_attack_devices_check(kind, c->attack_settings, e) != 0)
        return fv_err_prefix(e, "%s: [attack] settings: ", c->file);
    int victim = c->attack_client, nv = fv_partition_size(&a->part, victim);
    const int *idx = fv_partition_indices(&a->part, victim);
    int m = fv_config_clients_per_round(c);
    int *ids = fv_malloc(sizeof(int) * (size_t)m);
    for (int i = 0; i < a->n_rounds; i++) {
        fv_exp_sample_clients(c, a->rounds[i], ids);
        int in = 0;
        for (int k = 0; k < m; k++) in |= ids[k] == victim;
        if (!in) {
            char list[256] = "";
            for (int k = 0; k < m && strlen(list) < sizeof list - 16; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", k ? " " : "", ids[k]);
            free(ids);
            return fv_err_set(e, "%s: [attack] client: client %d is not sampled in round %d (sampled: %s%s); pick "
                              "a sampled client or round, or set fl.fraction = 1",
                              c->file, victim, a->rounds[i], list, m > 32 ? " ..." : "");
        }
    }
    free(ids);
    if (c->attack_kind == FV_ATTACK_GAN) {
        if (c->attack_target >= a->data.classes)
            return fv_err_set(e, "%s: [attack] target: class %d, but %s has %d classes", c->file, c->attack_target,
                              c->dataset, a->data.classes);
        int has = 0;
        for (int i = 0; i < nv; i++) has |= a->data.y[idx[i]] == c->attack_target;
        if (!has)
            return fv_err_set(e, "%s: [attack] target: client %d holds no image of class %d", c->file, victim,
                              c->attack_target);
    }
    if (c->attack_kind == FV_ATTACK_GAN_ACTIVE) {
        /* the attacker's victims are the other clients: the class must be theirs */
        if (c->attack_target >= a->data.classes)
            return fv_err_set(e, "%s: [attack] target: class %d, but %s has %d classes", c->file, c->attack_target,
                              c->dataset, a->data.classes);
        others_fill(a);
        int has = 0;
        for (int i = 0; i < a->n_others; i++) has |= a->data.y[a->others[i]] == c->attack_target;
        if (!has)
            return fv_err_set(e, "%s: [attack] target: no client but the attacker (client %d) holds an image of "
                              "class %d", c->file, victim, c->attack_target);
    }
    if (c->attack_kind == FV_ATTACK_DLG && (nv > 8 || nv > c->batch_size))
        return fv_err_set(e, "%s: [attack] client: client %d holds %d images; dlg needs its whole shard in one "
                          "step of at most 8 images (training.batch_size = %d)",
                          c->file, victim, nv, c->batch_size);
    if (c->attack_kind == FV_ATTACK_INVERT && nv > FV_INVERT_MAX_IMAGES)
        return fv_err_set(e, "%s: [attack] client: client %d holds %d images; invert attacks one update of at most "
                          "%d images (set data.train_size or fl.clients so that the client holds fewer)",
                          c->file, victim, nv, FV_INVERT_MAX_IMAGES);
    int gan = c->attack_kind == FV_ATTACK_GAN || c->attack_kind == FV_ATTACK_GAN_ACTIVE;
    if ((gan && a->n_heldout < 2) || (c->attack_kind == FV_ATTACK_MIA && a->n_heldout < 8))
        return fv_err_set(e, "%s: [data] train_size: only %d training images are held out beyond it; [attack] "
                          "kind = %s needs more", c->file, a->n_heldout, fv_config_attack_kind_name(c->attack_kind));
    return 0;
}

static int write_lines(fv_attacker *a, fv_err *e) {
    size_t len = 0;
    for (int i = 0; i < a->nlines; i++) len += strlen(a->lines[i]) + 1;
    char *text = fv_malloc(len + 1), *p = text;
    for (int i = 0; i < a->nlines; i++) {
        size_t l = strlen(a->lines[i]);
        memcpy(p, a->lines[i], l);
        p[l] = '\n';
        p += l + 1;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/attacks.jsonl", a->dir);
    int rc = fv_write_file_atomic(path, text, len, e);
    free(text);
    return rc;
}

/* Resume: keep the lines of rounds <= upto. Fresh: start empty, remove earlier grids. */
static int open_lines(fv_attacker *a, int resume, int upto, fv_err *e) {
    char path[1200];
    snprintf(path, sizeof path, "%s/attacks.jsonl", a->dir);
    if (!resume) {
        unlink(path);
        DIR *d = opendir(a->out_dir);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == 'r' && l > 4 && strcmp(de->d_name + l - 4, ".png") == 0) {
                    char p[1400];
                    snprintf(p, sizeof p, "%s/%s", a->out_dir, de->d_name);
                    unlink(p);
                }
            }
            closedir(d);
        }
        return 0;
    }
    if (access(path, F_OK) != 0) return 0;
    uint8_t *text = NULL;
    size_t len = 0;
    if (fv_read_file(path, MAX_LINES_BYTES, &text, &len, e) != 0) return -1;
    int rc = 0, lineno = 0, dropped = 0;
    char *save = NULL;
    text = fv_realloc(text, len + 1);
    text[len] = 0;
    for (char *l = strtok_r((char *)text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        lineno++;
        json_t *v = fv_jr_parse(l, strlen(l), e);
        double r = fv_jr_num(json_object_get(v, "round"), NAN);
        json_decref(v);
        if (!isfinite(r)) {
            rc = fv_err_set(e, "%s:%d: not an attacks.jsonl line of fedvim (expected {\"round\":N,...})", path, lineno);
            break;
        }
        if (r > upto) {
            dropped++;
            continue;
        }
        a->lines = fv_realloc(a->lines, sizeof(char *) * (size_t)(a->nlines + 1));
        a->lines[a->nlines++] = fv_strdup(l);
    }
    free(text);
    if (rc == 0 && dropped) rc = write_lines(a, e); /* those rounds run again */
    return rc;
}

/* Evaluation only: the victim's images as its worker mixed or obfuscated them (same key, bounds
 * and domain: fv_exp_client_mix, fv_exp_client_obfuscate), for the gradient-inversion attacks,
 * whose reconstructions show what the client trained on. Made when VisualMixer or [obfuscation]
 * is on and the simulator handed over the clients' key file; otherwise a->mixed stays empty and
 * the attacks measure against the originals only. */
static int victim_mixed(fv_attacker *a, const fv_attacker_opts *o, fv_err *e) {
    const fv_attack_kind k = a->cfg.attack_kind;
    if (!fv_config_client_keyed(&a->cfg) || !o->client_keys || (k != FV_ATTACK_INVERT && k != FV_ATTACK_DLG))
        return 0;
    uint8_t master[FV_VMIX_KEY_BYTES];
    if (fv_vmix_key_load(o->client_keys, master, e) != 0) return fv_err_prefix(e, "attack evaluation: ");
    const int victim = a->cfg.attack_client, nv = fv_partition_size(&a->part, victim);
    const int *idx = fv_partition_indices(&a->part, victim);
    const size_t isz = (size_t)a->data.c * a->data.h * a->data.w;
    fv_dataset shard = a->data, mixed;
    shard.n = nv;
    shard.x = fv_malloc(isz * (size_t)(nv > 0 ? nv : 1));
    shard.y = fv_malloc((size_t)(nv > 0 ? nv : 1));
    for (int i = 0; i < nv; i++) {
        memcpy(shard.x + (size_t)i * isz, a->data.x + (size_t)idx[i] * isz, isz);
        shard.y[i] = a->data.y[idx[i]];
    }
    fv_exp_bounds b = {0};
    int rc = a->cfg.vmix ? fv_exp_client_mix(&a->cfg, &shard, victim, master, a->threads, &mixed, NULL, &b, e)
                         : fv_exp_client_obfuscate(&a->cfg, &shard, victim, master, &mixed, e);
    sodium_memzero(master, sizeof master);
    fv_dataset_free(&shard);
    if (rc != 0) return fv_err_prefix(e, "attack evaluation: ");
    a->mixed = a->data;
    a->mixed.x = fv_malloc(isz * (size_t)a->data.n);
    a->mixed.y = fv_malloc((size_t)a->data.n);
    memcpy(a->mixed.x, a->data.x, isz * (size_t)a->data.n);
    memcpy(a->mixed.y, a->data.y, (size_t)a->data.n);
    for (int i = 0; i < nv; i++) memcpy(a->mixed.x + (size_t)idx[i] * isz, mixed.x + (size_t)i * isz, isz);
    fv_dataset_free(&mixed);
    if (a->cfg.vmix && a->has_vp) { /* the victim's own settings: the federation's, with the bounds from its shard */
        a->victim_vp = a->vp;
        a->victim_vp.ws_min = b.ws_min;
        a->victim_vp.ws_max = b.ws_max;
        a->has_victim_vp = 1;
    }
    return 0;
}

fv_attacker *fv_attacker_new(const fv_attacker_opts *o, fv_err *e) {
    FV_ASSERT(o->cfg->attack_kind != FV_ATTACK_NONE && o->train && o->part && o->test);
    fv_attacker *a = fv_calloc(1, sizeof *a);
    a->cfg = *o->cfg;
    snprintf(a->dir, sizeof a->dir, "%s", o->dir);
    snprintf(a->out_dir, sizeof a->out_dir, "%s/attacks", o->dir);
    a->part = *o->part;
    memset(o->part, 0, sizeof *o->part);
    a->test = o->test;
    a->norm = o->norm;
    if (o->vp) {
        a->vp = *o->vp;
        a->has_vp = 1;
    }
    a->n_params = o->n_params;
    a->threads = o->threads > 0 ? o->threads : 1;
    a->rounds = fv_malloc(sizeof(int) * (size_t)a->cfg.rounds);
    a->n_rounds = fv_attack_rounds(&a->cfg, a->rounds, a->cfg.rounds);
    FV_ASSERT(a->n_rounds >= 1); /* fv_config_check passed */
    a->upload = fv_malloc(sizeof(float) * a->n_params * 2);
    a->global = a->upload + a->n_params;
    /* the attack's own rules, checked here too: a coordinator may be handed a config that no
     * CLI resolved, and this runs before any worker joins */
    if (fv_attack_check_config(&a->cfg, e) != 0 || load_heldout(a, o, e) != 0 || check_victim(a, e) != 0 ||
        victim_mixed(a, o, e) != 0 || fv_mkdirs(a->out_dir, e) != 0 ||
        open_lines(a, o->resume, o->start_round, e) != 0) {
        fv_attacker_destroy(&a);
        return NULL;
    }
    return a;
}

int fv_attacker_wants(const fv_attacker *a, int round, int client) {
    return a && client == a->cfg.attack_client && is_attack_round(a, round);
}

void fv_attacker_capture(fv_attacker *a, int round, const float *upload, const float *global) {
    memcpy(a->upload, upload, sizeof(float) * a->n_params);
    memcpy(a->global, global, sizeof(float) * a->n_params);
    a->captured_round = round;
    a->n_cohort = 0;
}

void fv_attacker_capture_sum(fv_attacker *a, int round, const float *aggregate, const float *global,
                             const int *clients, int n) {
    fv_attacker_capture(a, round, aggregate, global);
    a->cohort = fv_realloc(a->cohort, sizeof(int) * (size_t)(n > 0 ? n : 1));
    memcpy(a->cohort, clients, sizeof(int) * (size_t)n);
    a->n_cohort = n;
}

/* [secagg] attacker = cohort: the union of the captured cohort's images into *idx (caller frees),
 * their number, or -1 with e set when it exceeds what invert reconstructs. */
static int cohort_images(const fv_attacker *a, int **idx, fv_err *e) {
    int n = 0;
    for (int k = 0; k < a->n_cohort; k++) n += fv_partition_size(&a->part, a->cohort[k]);
    if (n > FV_INVERT_MAX_IMAGES)
        return fv_err_set(e, "[secagg] attacker = cohort: the %d survivors hold %d images, invert reconstructs at most "
                          "%d", a->n_cohort, n, FV_INVERT_MAX_IMAGES);
    *idx = fv_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int k = 0; k < a->n_cohort; k++) {
        const int *ci = fv_partition_indices(&a->part, a->cohort[k]);
        for (int i = 0; i < fv_partition_size(&a->part, a->cohort[k]); i++) (*idx)[m++] = ci[i];
    }
    return n;
}

/* ---- the attack's own thread ---- */

typedef struct {
    const fv_attack_request *rq;
    int threads;
    char *json;
    fv_err e;
    int rc;
} job;

static int attack_job(void *arg) {
    job *j = arg;
    fv_set_threads(j->threads); /* OpenMP's thread count is per thread */
    return fv_attack_run(j->rq, &j->json, &j->e);
}

/* The headline figures of an attack's JSON (the full object is in attacks.jsonl). */
static void headline(fv_json *h, fv_attack_kind kind, const json_t *r) {
    if (kind == FV_ATTACK_GAN || kind == FV_ATTACK_GAN_ACTIVE) {
        const json_t *l = json_object_get(r, "leakage");
        fv_json_num(h, "target_class", fv_jr_num(json_object_get(r, "target_class"), NAN));
        fv_json_num(h, "recognisability", fv_jr_num(json_object_get(l, "recognisability"), NAN));
        fv_json_num(h, "ssim_best_median", fv_jr_num(json_object_get(l, "ssim_best_median"), NAN));
        const json_t *p = json_object_get(l, "psnr_best_median");
        fv_json_num_or_inf(h, "psnr_best_median", json_is_string(p) ? INFINITY : fv_jr_num(p, NAN));
        fv_json_num(h, "victim_resemblance", fv_jr_num(json_object_get(l, "victim_resemblance"), NAN));
        const json_t *o = json_object_get(r, "oracle");
        fv_json_num(h, "oracle_accuracy", fv_jr_num(json_object_get(o, "test_accuracy"), NAN));
    } else if (kind == FV_ATTACK_DLG) {
        fv_json_num(h, "label_accuracy", fv_jr_num(json_object_get(r, "label_accuracy"), NAN));
        const char *keys[] = {"ssim_original", "psnr_original"};
        const char *outs[] = {"ssim_original_mean", "psnr_original_mean"};
        for (int k = 0; k < 2; k++) {
            const json_t *v = json_object_get(r, keys[k]), *x;
            double s = 0;
            size_t i;
            json_array_foreach(v, i, x) s += json_is_string(x) ? INFINITY : fv_jr_num(x, NAN);
            size_t n = json_array_size(v);
            fv_json_num_or_inf(h, outs[k], n ? s / (double)n : NAN);
        }
        fv_json_num(h, "relative_match_loss", fv_jr_num(json_object_get(r, "relative_match_loss"), NAN));
    } else if (kind == FV_ATTACK_INVERT) {
        fv_json_num(h, "label_accuracy", fv_jr_num(json_object_get(r, "label_accuracy"), NAN));
        const char *keys[] = {"psnr_original_median", "ssim_original_median", "psnr_mixed_median", "ssim_mixed_median"};
        for (int k = 0; k < 4; k++) {
            const json_t *v = json_object_get(r, keys[k]);
            if (!v) continue;
            fv_json_num_or_inf(h, keys[k], json_is_string(v) ? INFINITY : fv_jr_num(v, NAN));
        }
        fv_json_num(h, "cosine", fv_jr_num(json_object_get(r, "cosine"), NAN));
    } else {
        const json_t *q = json_object_get(r, "queries_original");
        const json_t *cm = json_object_get(q, "client_model"), *gm = json_object_get(q, "global_model");
        const json_t *cl = json_object_get(cm, "lira_offline"), *ct = json_object_get(cm, "loss_threshold");
        fv_json_num(h, "client_lira_auc", fv_jr_num(json_object_get(cl, "auc"), NAN));
        fv_json_num(h, "client_lira_tpr_at_1pct_fpr", fv_jr_num(json_object_get(cl, "tpr_at_1pct_fpr"), NAN));
        fv_json_num(h, "client_loss_auc", fv_jr_num(json_object_get(ct, "auc"), NAN));
        fv_json_num(h, "global_lira_auc", fv_jr_num(json_object_get(json_object_get(gm, "lira_offline"), "auc"), NAN));
    }
}

char *fv_attacker_round(fv_attacker *a, int round, void (*idle)(void *ctx), void *ctx,
                        void (*log)(void *lctx, const char *line), void *lctx) {
    if (!a || !is_attack_round(a, round)) return NULL;
    const fv_config *c = &a->cfg;
    fv_attack_kind kind = c->attack_kind;
    const char *kname = fv_config_attack_kind_name(kind);
    int victim = c->attack_client;
    char tag[64], msg[FV_ERR_MAX + 128];
    snprintf(tag, sizeof tag, "r%d_c%d", round, victim);
    fv_json line, h;
    fv_json_begin(&line);
    fv_json_begin(&h);
    fv_json_int(&line, "round", round);
    fv_json_int(&line, "client", victim);
    fv_json_str(&line, "kind", kname);
    fv_json_str(&h, "kind", kname);
    fv_json_int(&h, "client", victim);
    /* [secagg]: the capture is the round's aggregate; with attacker = cohort, invert reconstructs
     * the union of the survivors' images from it as one step over all of them */
    const int cohort = c->sa && c->sa_attacker == FV_SA_ATTACK_COHORT && kind == FV_ATTACK_INVERT;
    int *cidx = NULL, cn = 0;
    fv_err ce = {{0}};
    if (c->sa && a->captured_round == round) {
        fv_json_str(&line, "upload", cohort ? "aggregate as one step over the cohort's images" : "aggregate as the victim's update");
        fv_json_int(&line, "cohort", a->n_cohort);
    }
    if (a->captured_round == round && cohort && (cn = cohort_images(a, &cidx, &ce)) < 0) {
        snprintf(msg, sizeof msg, "round %d: no %s attack: %s", round, kname, ce.msg);
        log(lctx, msg);
        fv_json_str(&line, "status", "failed");
        fv_json_str(&line, "error", ce.msg);
        fv_json_str(&h, "status", "failed");
    } else if (a->captured_round != round) {
        snprintf(msg, sizeof msg, "round %d: no %s attack: client %d's update was not accepted this round", round,
                 kname, victim);
        log(lctx, msg);
        fv_json_str(&line, "status", "skipped");
        fv_json_str(&line, "reason", "the client's update was not accepted (dropped)");
        fv_json_str(&h, "status", "skipped");
    } else {
        /* dlg, invert: the client's step size (invert: also its local epochs and batch size) are
         * the run's unless the settings say otherwise (later keys win) */
        size_t sl = strlen(c->attack_settings) + 128;
        char *settings = fv_malloc(sl);
        if (kind == FV_ATTACK_DLG) snprintf(settings, sl, "lr=%.17g,%s", c->lr, c->attack_settings);
        else if (cohort) /* one step over the union: its size is the batch */
            snprintf(settings, sl, "lr=%.17g,epochs=1,%s%sbatch=%d", c->lr, c->attack_settings,
                     *c->attack_settings ? "," : "", cn);
        else if (kind == FV_ATTACK_INVERT)
            snprintf(settings, sl, "lr=%.17g,epochs=%d,batch=%d,%s", c->lr, c->local_epochs, c->batch_size,
                     c->attack_settings);
        else snprintf(settings, sl, "%s", c->attack_settings);
        fv_attack_request rq;
        memset(&rq, 0, sizeof rq);
        rq.attack = kname;
        rq.settings = settings;
        rq.model = c->model;
        rq.input = (fv_shape){a->data.c, a->data.h, a->data.w};
        int active = kind == FV_ATTACK_GAN_ACTIVE;
        rq.classes = fv_attack_model_classes(kind, a->data.classes);
        rq.norm = a->norm;
        rq.upload = active ? a->global : a->upload; /* gan_active: the D the attacker's G trained on */
        rq.global = a->global;
        rq.n_params = a->n_params;
        rq.target = c->attack_target;
        rq.data = &a->data;
        rq.victim_idx = active ? a->others : cohort ? cidx : fv_partition_indices(&a->part, victim);
        rq.n_victim = active ? a->n_others : cohort ? cn : fv_partition_size(&a->part, victim);
        /* evaluation only (the server attacks without it); the victim's alone, so not for a cohort */
        rq.victim_mixed = a->mixed.n && !cohort ? &a->mixed : NULL;
        rq.vp = a->has_vp ? &a->vp : NULL;
        rq.victim_vp = a->has_victim_vp ? &a->victim_vp : NULL;
        rq.heldout_idx = a->heldout;
        rq.n_heldout = a->n_heldout;
        rq.test = a->test;
        rq.out_dir = a->out_dir;
        rq.tag = tag;
        rq.seed = fv_attack_seed((uint64_t)c->seed, round, victim);
        snprintf(msg, sizeof msg, "round %d: %s attack %s client %d%s (%s)", round, kname, active ? "by" : "on",
                 victim, active ? ": replaying its generator" : "'s upload", *settings ? settings : "default settings");
        log(lctx, msg);
        job j = {.rq = &rq, .threads = a->threads};
        double t0 = fv_now();
        j.rc = fv_thread_run(attack_job, &j, idle, ctx, 0); /* idle waits by itself (a poll) */
        double secs = fv_now() - t0;
        free(settings);
        fv_json_num(&line, "seconds", secs);
        fv_json_num(&h, "seconds", secs);
        json_t *r = NULL;
        if (j.rc == 0 && !(r = fv_jr_parse(j.json, strlen(j.json), &j.e))) j.rc = -1;
        if (j.rc != 0) {
            snprintf(msg, sizeof msg, "round %d: the %s attack on client %d failed: %s", round, kname, victim,
                     j.e.msg);
            log(lctx, msg);
            fv_json_str(&line, "status", "failed");
            fv_json_str(&line, "error", j.e.msg);
            fv_json_str(&h, "status", "failed");
        } else {
            fv_json_str(&line, "status", "ok");
            fv_json_raw(&line, "result", j.json);
            fv_json_str(&h, "status", "ok");
            headline(&h, kind, r);
            if (kind == FV_ATTACK_GAN || active || kind == FV_ATTACK_INVERT) {
                char grid[96];
                snprintf(grid, sizeof grid, "attacks/%s_%s_grid.png", tag, kind == FV_ATTACK_INVERT ? "invert" : "gan");
                fv_json_str(&h, "grid", grid);
            }
            snprintf(msg, sizeof msg, "round %d: %s attack on client %d done in %.1f s (attacks.jsonl)", round,
                     kname, victim, secs);
            log(lctx, msg);
        }
        json_decref(r);
        free(j.json);
    }
    free(cidx);
    a->lines = fv_realloc(a->lines, sizeof(char *) * (size_t)(a->nlines + 1));
    a->lines[a->nlines++] = fv_strdup(fv_json_end(&line));
    fv_json_free(&line);
    fv_err e;
    if (write_lines(a, &e) != 0) {
        snprintf(msg, sizeof msg, "round %d: cannot record the attack: %s", round, e.msg);
        log(lctx, msg);
    }
    char *out = fv_strdup(fv_json_end(&h));
    fv_json_free(&h);
    return out;
}

void fv_attacker_destroy(fv_attacker **ap) {
    if (!ap || !*ap) return;
    fv_attacker *a = *ap;
    fv_dataset_free(&a->data);
    fv_dataset_free(&a->mixed);
    fv_partition_free(&a->part);
    free(a->heldout);
    free(a->rounds);
    free(a->others);
    free(a->cohort);
    free(a->upload);
    for (int i = 0; i < a->nlines; i++) free(a->lines[i]);
    free(a->lines);
    free(a);
    *ap = NULL;
}
