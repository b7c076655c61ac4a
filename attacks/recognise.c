/* recognise.c: see recognise.h. */
#include "recognise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "fedsim.h"
#include "nn/models.h"
#include "nn/train.h"
#include "nn/trainer.h"
#include "oracle.h"

static const char *const ATTR_NAMES[FV_RECOG_ATTRS] = {"label", "fg", "bg"};

const char *fv_recog_attr_name(fv_recog_attr a) {
    FV_ASSERT((int)a >= 0 && (int)a < FV_RECOG_ATTRS);
    return ATTR_NAMES[a];
}

int fv_recog_attr_parse(const char *s, int on[FV_RECOG_ATTRS], fv_err *e) {
    memset(on, 0, sizeof(int) * FV_RECOG_ATTRS);
    if (!s || !*s) return fv_err_set(e, "empty attribute list (known: fg, bg, label, all)");
    const char *p = s;
    int any = 0;
    while (*p) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        int hit = -1;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            for (int a = 0; a < FV_RECOG_ATTRS; a++) on[a] = 1;
            hit = 0;
        }
        for (int a = 0; a < FV_RECOG_ATTRS && hit < 0; a++)
            if (strlen(ATTR_NAMES[a]) == len && strncmp(p, ATTR_NAMES[a], len) == 0) {
                on[a] = 1;
                hit = a;
            }
        if (hit < 0) return fv_err_set(e, "unknown attribute '%.*s' in '%s' (known: fg, bg, label, all)", (int)len, p, s);
        any = 1;
        p += len;
        if (*p == ',') p++;
    }
    if (!any) return fv_err_set(e, "empty attribute list '%s' (known: fg, bg, label, all)", s);
    return 0;
}

int fv_recog_colour_class(const int rgb[3], int bins) {
    FV_ASSERT(bins >= FV_RECOG_BINS_MIN && bins <= FV_RECOG_BINS_MAX);
    int k = 0, m = 1;
    for (int ch = 0; ch < 3; ch++) {
        FV_ASSERT(rgb[ch] >= 0 && rgb[ch] <= 255);
        k += rgb[ch] * bins / 256 * m;
        m *= bins;
    }
    return k;
}

int fv_recog_classes(fv_recog_attr a, int bins, const fv_dataset *d) {
    return a == FV_RECOG_LABEL ? d->classes : bins * bins * bins;
}

int fv_recog_attributes(uint8_t *y, const fv_dataset *d, int first, int n, fv_recog_attr a, int bins,
                        uint64_t cmnist_seed, fv_err *e) {
    FV_ASSERT(first >= 0 && n >= 0 && first + n <= d->n);
    if (a == FV_RECOG_LABEL) {
        memcpy(y, d->y + first, (size_t)n);
        return 0;
    }
    if (d->c != 3)
        return fv_err_set(e, "attribute '%s' needs Colored MNIST (--dataset cmnist); these images have %d channel%s",
                          fv_recog_attr_name(a), d->c, d->c == 1 ? "" : "s");
    size_t isz = (size_t)d->c * d->h * d->w, hw = (size_t)d->h * d->w;
    int off = 0;
    for (int i = 0; i < n; i++) {
        int fg[3], bg[3];
        fv_cmnist_colours(cmnist_seed, (uint64_t)(first + i), fg, bg);
        const uint8_t *px = d->x + (size_t)(first + i) * isz;
        for (int ch = 0; ch < 3; ch++) off += px[ch * hw] != bg[ch];
        y[i] = (uint8_t)fv_recog_colour_class(a == FV_RECOG_FG ? fg : bg, bins);
    }
    /* MNIST's top-left pixel is blank in every image, so it shows the background colour exactly;
     * allow 1% of channels off in case a data set has a few inked corners. */
    if (n > 0 && off > 3 * n / 100)
        return fv_err_set(e, "attribute '%s': %d of %d images' top-left pixels are not the Colored MNIST background "
                             "drawn with seed %llu: these are not the images fv_cmnist_make draws (a pre-coloured or "
                             "mixed folder?)",
                          fv_recog_attr_name(a), off, 3 * n, (unsigned long long)cmnist_seed);
    return 0;
}

void fv_recog_histogram_colours(const uint8_t *img, int h, int w, int fg[3], int bg[3]) {
    const size_t hw = (size_t)h * w;
    for (int ch = 0; ch < 3; ch++) {
        long cnt[256] = {0};
        const uint8_t *q = img + (size_t)ch * hw;
        for (size_t p = 0; p < hw; p++) cnt[q[p]]++;
        int mode = 0;
        for (int v = 1; v < 256; v++)
            if (cnt[v] > cnt[mode]) mode = v;
        int far = mode;
        for (int v = 0; v < 256; v++)
            if (cnt[v] && abs(v - mode) > abs(far - mode)) far = v;
        bg[ch] = mode;
        fg[ch] = far;
    }
}

double fv_recog_majority(const uint8_t *y, int n, int k, int *cls) {
    FV_ASSERT(n >= 1 && k >= 1 && k <= 256);
    long cnt[256] = {0};
    for (int i = 0; i < n; i++) {
        FV_ASSERT(y[i] < k);
        cnt[y[i]]++;
    }
    int best = 0;
    for (int c = 1; c < k; c++)
        if (cnt[c] > cnt[best]) best = c;
    if (cls) *cls = best;
    return (double)cnt[best] / n;
}

fv_recog_run_cfg fv_recog_run_defaults(void) {
    fv_recog_run_cfg c;
    memset(&c, 0, sizeof c);
    c.src.dataset = "cmnist";
    c.attacker_from = 30000;
    c.attacker_images = 4000;
    c.victim_first = 0;
    c.victim_images = 2000;
    fv_vmix_params_default(&c.vp);
    c.bins = 2;
    c.model = "lenet5";
    c.epochs = 3;
    c.batch = 64;
    c.lr = 3e-3f;
    c.seed = 1;
    c.device = -1;
    return c;
}

int fv_recog_run_check(const fv_recog_run_cfg *c, fv_err *e) {
    if (c->attacker_from < 0 || c->attacker_images < 1)
        return fv_err_set(e, "recognise: attacker images [%d, %d + %d): need a start >= 0 and at least one image",
                          c->attacker_from, c->attacker_from, c->attacker_images);
    if (c->victim_first < 0 || c->victim_images < 1)
        return fv_err_set(e, "recognise: victim images [%d, %d + %d): need a start >= 0 and at least one image",
                          c->victim_first, c->victim_first, c->victim_images);
    if (c->bins < FV_RECOG_BINS_MIN || c->bins > FV_RECOG_BINS_MAX)
        return fv_err_set(e, "recognise: --bins %d out of range [%d, %d]", c->bins, FV_RECOG_BINS_MIN, FV_RECOG_BINS_MAX);
    if (c->epochs < 1 || c->batch < 1 || !(c->lr > 0))
        return fv_err_set(e, "recognise: bad recipe (epochs %d, batch %d, lr %g)", c->epochs, c->batch, c->lr);
    if (fv_vmix_params_check(&c->vp, 1, 1, e)) return fv_err_prefix(e, "recognise: VisualMixer: ");
    for (int a = 1; a < FV_RECOG_ATTRS; a++)
        if (c->attrs[a] && !(c->src.dataset && strcmp(c->src.dataset, "cmnist") == 0))
            return fv_err_set(e, "recognise: attribute '%s' needs --dataset cmnist (Colored MNIST), not '%s'",
                              fv_recog_attr_name((fv_recog_attr)a), c->src.dataset ? c->src.dataset : "(none)");
    int known = 0;
    for (const char *const *m = fv_model_names(); *m && c->model; m++) known |= strcmp(*m, c->model) == 0;
    if (!known) {
        char list[256];
        return fv_err_set(e, "recognise: unknown model '%s' (known: %s)", c->model ? c->model : "(none)",
                          fv_model_list(list, sizeof list));
    }
    return 0;
}

/* Images [first, first + n) of d mixed with secret (per-image keys, domain train) into out. */
static int mix_range(fv_dataset *out, const fv_dataset *d, int first, int n, const uint8_t secret[FV_VMIX_KEY_BYTES],
                     const fv_vmix_params *vp, fv_err *e) {
    int *idx = fv_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = first + i;
    fv_dataset sub;
    fv_fedsim_subset(&sub, d, idx, n);
    free(idx);
    int rc = fv_vmix_dataset(out, NULL, NULL, &sub, secret, FV_VMIX_DOMAIN_TRAIN, vp, 0, e);
    fv_dataset_free(&sub);
    return rc;
}

/* The accuracies of net on dv and du (in eval mode, batches of 256) through a trainer on device:
 * on the CPU exactly fv_evaluate(net, d, NULL, d->n, 256, norm). Returns 0 or -1 with e set. */
static int evaluate2(fv_net *net, int device, const fv_dataset *dv, const fv_dataset *du, fv_norm norm, double *acc_v,
                     double *acc_u, fv_err *e) {
    const fv_trainer_cfg tc = {.device = device, .max_batch = 256, .opt = fv_opt_defaults(FV_OPT_SGD), .norm = norm};
    fv_trainer *t = fv_trainer_new(net, &tc, e); /* an optimizer it never steps */
    if (!t) return -1;
    fv_trainer_shard *sh = fv_trainer_shard_new(t);
    int rc = fv_trainer_shard_load(sh, dv, NULL, 0, e);
    if (rc == 0) *acc_v = fv_trainer_evaluate(t, sh, 256).accuracy;
    if (rc == 0 && (rc = fv_trainer_shard_load(sh, du, NULL, 0, e)) == 0)
        *acc_u = fv_trainer_evaluate(t, sh, 256).accuracy;
    fv_trainer_shard_destroy(&sh);
    fv_trainer_destroy(&t);
    return rc;
}

/* d with its labels replaced by y[d->n] over k classes (a view: shares d's pixels). */
static fv_dataset relabel(const fv_dataset *d, uint8_t *y, int k) {
    fv_dataset v = *d;
    v.y = y;
    v.classes = k;
    return v;
}

int fv_recog_run(const fv_recog_run_cfg *cfg, fv_recog_result *res, fv_json *j, fv_err *e) {
    if (res) memset(res, 0, sizeof(fv_recog_result) * FV_RECOG_ATTRS);
    if (fv_recog_run_check(cfg, e)) return -1;
    fv_dataset tr = {0}, te = {0}, atk_mix = {0}, vic = {0}, vic_mix = {0};
    uint8_t *ybuf = NULL;
    int rc = -1;
    if (fv_dataset_load(cfg->src.dataset, cfg->src.data_dir, 1, &tr, e) ||
        fv_dataset_load(cfg->src.dataset, cfg->src.data_dir, 0, &te, e))
        goto out;
    const int M = cfg->attacker_images, N = cfg->victim_images;
    if ((long)cfg->attacker_from + M > tr.n) {
        fv_err_set(e, "recognise: attacker images [%d, %ld) exceed the %d training images", cfg->attacker_from,
                   (long)cfg->attacker_from + M, tr.n);
        goto out;
    }
    if ((long)cfg->victim_first + N > te.n) {
        fv_err_set(e, "recognise: victim images [%d, %ld) exceed the %d test images", cfg->victim_first,
                   (long)cfg->victim_first + N, te.n);
        goto out;
    }
    if (fv_vmix_params_check(&cfg->vp, tr.h, tr.w, e)) {
        fv_err_prefix(e, "recognise: VisualMixer: ");
        goto out;
    }
    const int is_cmnist = strcmp(cfg->src.dataset, "cmnist") == 0;
    int on[FV_RECOG_ATTRS];
    int any = 0;
    for (int a = 0; a < FV_RECOG_ATTRS; a++) any |= on[a] = cfg->attrs[a];
    if (!any) /* every attribute the data set has */
        for (int a = 0; a < FV_RECOG_ATTRS; a++) on[a] = a == FV_RECOG_LABEL || is_cmnist;
    /* The attacker's and the victim's secrets: distinct simulation keys of the seed; each image is
     * mixed with its own key derived from the secret and its index (vmix.h). */
    uint8_t atk_key[FV_VMIX_KEY_BYTES], vic_key[FV_VMIX_KEY_BYTES];
    fv_fedsim_client_key(vic_key, cfg->seed, 0);
    fv_fedsim_client_key(atk_key, cfg->seed, 1);
    double t0 = fv_now();
    {
        int *idx = fv_malloc(sizeof(int) * (size_t)N);
        for (int i = 0; i < N; i++) idx[i] = cfg->victim_first + i;
        fv_fedsim_subset(&vic, &te, idx, N);
        free(idx);
    }
    if (mix_range(&atk_mix, &tr, cfg->attacker_from, M, atk_key, &cfg->vp, e) ||
        mix_range(&vic_mix, &te, cfg->victim_first, N, vic_key, &cfg->vp, e)) {
        fv_err_prefix(e, "recognise: mixing: ");
        goto out;
    }
    double t_mix = fv_now() - t0;
    const fv_norm norm = fv_norm_for(cfg->src.dataset);
    ybuf = fv_malloc((size_t)M + (size_t)N);
    uint8_t *ya = ybuf, *yv = ybuf + M;

    fv_json_str(j, "attack", "recognise");
    fv_json_str(j, "dataset", cfg->src.dataset);
    fv_json_obj_begin(j, "vmix");
    fv_json_int(j, "ws_min", cfg->vp.ws_min);
    fv_json_int(j, "ws_max", cfg->vp.ws_max);
    fv_json_int(j, "unit", cfg->vp.unit);
    fv_json_str(j, "mode", fv_vmix_mode_name(cfg->vp.mode));
    fv_json_obj_end(j);
    fv_json_obj_begin(j, "attacker");
    fv_json_str(j, "split", "train");
    fv_json_int(j, "from", cfg->attacker_from);
    fv_json_int(j, "images", M);
    fv_json_str(j, "keys", "its own secret, a fresh key per image");
    fv_json_obj_end(j);
    fv_json_obj_begin(j, "victim");
    fv_json_str(j, "split", "test");
    fv_json_int(j, "first", cfg->victim_first);
    fv_json_int(j, "images", N);
    fv_json_obj_end(j);
    fv_json_obj_begin(j, "recogniser");
    fv_json_str(j, "model", cfg->model);
    fv_json_int(j, "epochs", cfg->epochs);
    fv_json_int(j, "batch", cfg->batch);
    fv_json_num(j, "lr", cfg->lr);
    char dev[16];
    fv_json_str(j, "device", fv_device_name(cfg->device, dev, sizeof dev));
    fv_json_obj_end(j);
    fv_json_int(j, "bins", cfg->bins);
    fv_json_num(j, "mix_seconds", t_mix);
    fprintf(stderr,
            "recognise %s: VisualMixer ws %d..%d unit %d %s; %s, %d epoch%s on %d attacker images (train [%d, %d)); "
            "victim test [%d, %d)\n",
            cfg->src.dataset, cfg->vp.ws_min, cfg->vp.ws_max, cfg->vp.unit, fv_vmix_mode_name(cfg->vp.mode), cfg->model,
            cfg->epochs, cfg->epochs == 1 ? "" : "s", M, cfg->attacker_from, cfg->attacker_from + M,
            cfg->victim_first, cfg->victim_first + N);
    fprintf(stderr, "  %-9s %7s %7s %13s %15s %15s %15s\n", "attribute", "classes", "chance", "victim mixed",
            "victim unmixed", "attacker train", "histogram rule");
    fv_json_obj_begin(j, "attributes");
    for (int a = 0; a < FV_RECOG_ATTRS; a++) {
        if (!on[a]) continue;
        fv_recog_attr at = (fv_recog_attr)a;
        double ta = fv_now();
        const int k = fv_recog_classes(at, cfg->bins, &tr);
        if (fv_recog_attributes(ya, &tr, cfg->attacker_from, M, at, cfg->bins, FV_CMNIST_SEED_TRAIN, e) ||
            fv_recog_attributes(yv, &te, cfg->victim_first, N, at, cfg->bins, FV_CMNIST_SEED_TEST, e)) {
            fv_err_prefix(e, "recognise: ");
            goto out; /* j is discarded on failure */
        }
        fv_dataset da = relabel(&atk_mix, ya, k), dv = relabel(&vic_mix, yv, k), du = relabel(&vic, yv, k);
        fv_oracle_cfg oc = fv_oracle_defaults();
        oc.model = cfg->model;
        oc.epochs = cfg->epochs;
        oc.batch = cfg->batch;
        oc.lr = cfg->lr;
        oc.seed = cfg->seed * 7919u + (uint64_t)a;
        oc.device = cfg->device;
        fv_recog_result r = {.on = 1, .classes = k};
        fv_net *net = fv_oracle_train(&oc, &da, NULL, M, norm, &r.train_accuracy, e);
        if (!net) {
            fv_err_prefix(e, "recognise: ");
            goto out; /* j is discarded on failure */
        }
        r.chance = fv_recog_majority(yv, N, k, NULL);
        if (evaluate2(net, cfg->device, &dv, &du, norm, &r.victim_mixed, &r.victim_unmixed, e)) {
            fv_net_destroy(&net);
            fv_err_prefix(e, "recognise: ");
            goto out;
        }
        if (at != FV_RECOG_LABEL) { /* the histogram rule on the same mixed images */
            const size_t isz = (size_t)vic_mix.c * vic_mix.h * vic_mix.w;
            int hits = 0, exact = 0;
            for (int i = 0; i < N; i++) {
                int fg[3], bg[3], tf[3], tb[3];
                fv_recog_histogram_colours(vic_mix.x + (size_t)i * isz, vic_mix.h, vic_mix.w, fg, bg);
                fv_cmnist_colours(FV_CMNIST_SEED_TEST, (uint64_t)(cfg->victim_first + i), tf, tb);
                const int *est = at == FV_RECOG_FG ? fg : bg, *tru = at == FV_RECOG_FG ? tf : tb;
                hits += fv_recog_colour_class(est, cfg->bins) == yv[i];
                exact += est[0] == tru[0] && est[1] == tru[1] && est[2] == tru[2];
            }
            r.hist_mixed = (double)hits / N;
            r.hist_exact = (double)exact / N;
        }
        r.seconds = fv_now() - ta;
        fv_net_destroy(&net);
        if (res) res[a] = r;
        fv_json_obj_begin(j, fv_recog_attr_name(at));
        fv_json_int(j, "classes", k);
        fv_json_num(j, "chance", r.chance);
        fv_json_num(j, "attacker_majority", fv_recog_majority(ya, M, k, NULL));
        fv_json_num(j, "victim_mixed_accuracy", r.victim_mixed);
        fv_json_num(j, "victim_unmixed_accuracy", r.victim_unmixed);
        fv_json_num(j, "attacker_train_accuracy", r.train_accuracy);
        if (at != FV_RECOG_LABEL) {
            fv_json_num(j, "histogram_rule_mixed_accuracy", r.hist_mixed);
            fv_json_num(j, "histogram_rule_mixed_exact_colour", r.hist_exact);
        }
        fv_json_num(j, "seconds", r.seconds);
        fv_json_obj_end(j);
        char hist[32] = "-";
        if (at != FV_RECOG_LABEL) snprintf(hist, sizeof hist, "%.3f", r.hist_mixed);
        fprintf(stderr, "  %-9s %7d %7.3f %13.3f %15.3f %15.3f %15s\n", fv_recog_attr_name(at), k, r.chance, r.victim_mixed,
                r.victim_unmixed, r.train_accuracy, hist);
        if (cfg->verbose) fprintf(stderr, "  (%s: %.1f s)\n", fv_recog_attr_name(at), r.seconds);
    }
    fv_json_obj_end(j);
    rc = 0;
out:
    free(ybuf);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    fv_dataset_free(&atk_mix);
    fv_dataset_free(&vic);
    fv_dataset_free(&vic_mix);
    return rc;
}
