/* attack_run.c: see attack_run.h. */
#include "attack_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "leakage.h"
#include "metrics.h"
#include "nn/models.h"
#include "oracle.h"
#include "io/png_io.h"
#include "io/safetensors.h"
#include "nn/optim.h"
#include "nn/train.h"

/* ---- helpers ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of n >= 1 sorted values. */
static double sorted_median(const double *s, int n) { return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]); }

/* The median of v[n], n >= 1 (v untouched). */
static double median_of(const double *v, int n) {
    double *t = fv_malloc(sizeof(double) * (size_t)n);
    memcpy(t, v, sizeof(double) * (size_t)n);
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    double m = sorted_median(t, n);
    free(t);
    return m;
}

/* {"mean", "median", "min", "max"} of v[n] as a nested object; +inf values are kept as "inf". */
static void json_stats(fv_json *j, const char *key, const double *v, int n) {
    fv_json_obj_begin(j, key);
    if (n > 0) {
        double *s = fv_malloc(sizeof(double) * (size_t)n), sum = 0;
        memcpy(s, v, sizeof(double) * (size_t)n);
        qsort(s, (size_t)n, sizeof(double), cmp_double);
        for (int i = 0; i < n; i++) sum += s[i];
        fv_json_num_or_inf(j, "mean", sum / n);
        fv_json_num_or_inf(j, "median", sorted_median(s, n));
        fv_json_num_or_inf(j, "min", s[0]);
        fv_json_num_or_inf(j, "max", s[n - 1]);
        free(s);
    }
    fv_json_obj_end(j);
}

/* Write rows[r] (cols images each, float CHW in [0, 1]) as one PNG grid, one row per kind. */
/* Pixels on [0, 1] to bytes, rounded and clamped. */
static void to_u8(uint8_t *out, const float *in, size_t n) {
    for (size_t p = 0; p < n; p++) {
        float v = in[p] * 255.0f + 0.5f;
        out[p] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

static int write_grid(const char *dir, const char *name, const float *const *rows, int nrows, int cols, int c, int h,
                      int w, fv_err *e) {
    if (!dir) return 0;
    if (fv_mkdirs(dir, e)) return -1;
    size_t isz = (size_t)c * h * w;
    int n = nrows * cols;
    uint8_t *buf = fv_malloc(isz * (size_t)n);
    const uint8_t **ptr = fv_malloc(sizeof(uint8_t *) * (size_t)n);
    for (int r = 0; r < nrows; r++)
        for (int k = 0; k < cols; k++) {
            uint8_t *d = buf + ((size_t)r * cols + k) * isz;
            to_u8(d, rows[r] + (size_t)k * isz, isz);
            ptr[r * cols + k] = d;
        }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = fv_png_grid(path, ptr, n, c, h, w, cols, e);
    free(ptr);
    free(buf);
    return rc;
}

static void to_float(float *out, const uint8_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] / 255.0f;
}

static void vmix_json(fv_json *j, const fv_vmix_params *vp) {
    fv_json_obj_begin(j, "vmix");
    fv_json_int(j, "ws_min", vp->ws_min);
    fv_json_int(j, "ws_max", vp->ws_max);
    fv_json_int(j, "unit", vp->unit);
    fv_json_str(j, "mode", fv_vmix_mode_name(vp->mode));
    fv_json_obj_end(j);
}

/* Mix one CHW image with the key of (seed, index): out and the window map (copied to *win, caller
 * frees). */
static int mix_one(uint8_t *out, fv_vmix_window **win, int *nwin, fv_vmix_work *work, const uint8_t *in, int c, int h,
                   int w, uint64_t seed, int index, const fv_vmix_params *vp, fv_err *e) {
    uint8_t secret[FV_VMIX_KEY_BYTES], dk[FV_VMIX_KEY_BYTES], ik[FV_VMIX_KEY_BYTES];
    fv_fedsim_client_key(secret, seed, 0);
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_image_key(ik, dk, (uint64_t)index);
    fv_vmix_result r;
    if (fv_vmix_image(out, &r, work, in, c, h, w, ik, vp, e)) return -1;
    if (win) {
        *win = fv_malloc(sizeof(fv_vmix_window) * (size_t)(r.nwindows ? r.nwindows : 1));
        memcpy(*win, r.windows, sizeof(fv_vmix_window) * (size_t)r.nwindows);
        *nwin = r.nwindows;
    }
    return 0;
}

/* The fraction of the h x w pixels whose window is the same in maps a[na] and b[nb]. */
static double map_agreement(const fv_vmix_window *a, int na, const fv_vmix_window *b, int nb, int h, int w) {
    int64_t *own = fv_calloc((size_t)h * w * 2, sizeof(int64_t)), *oa = own, *ob = own + (size_t)h * w;
    const fv_vmix_window *m[2] = {a, b};
    int nm[2] = {na, nb};
    int64_t *o[2] = {oa, ob};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < nm[t]; k++) {
            const fv_vmix_window *q = &m[t][k];
            int64_t id = 1 + (((int64_t)q->x * 8192 + q->y) * 8192 + q->w) * 8192 + q->h;
            for (int y = q->y; y < q->y + q->h && y < h; y++)
                for (int x = q->x; x < q->x + q->w && x < w; x++) o[t][(size_t)y * w + x] = id;
        }
    long same = 0;
    for (size_t p = 0; p < (size_t)h * w; p++) same += oa[p] == ob[p];
    free(own);
    return (double)same / ((double)h * w);
}

/* How many of the n inferred labels lab match the true labels y as multisets (used[n]: scratch). */
static int labels_agree(const int *lab, const int *y, int n, int *used) {
    int right = 0;
    for (int i = 0; i < n; i++) used[i] = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++)
            if (!used[k] && lab[k] == y[i]) {
                used[k] = 1, right++;
                break;
            }
    return right;
}

/* ---- DLG ---- */

int fv_dlg_measure(float *out, double *ssim_orig, double *ssim_trained, double *psnr_orig, double *psnr_trained,
                   const float *rec, const float *orig, const float *trained, int n, fv_shape s, fv_err *e) {
    FV_ASSERT(n >= 1);
    size_t isz = fv_shape_size(s);
    double *score = fv_malloc(sizeof(double) * (size_t)n * n);
    int *perm = fv_malloc(sizeof(int) * (size_t)n);
    int rc = -1;
    for (int a = 0; a < n; a++)
        for (int b = 0; b < n; b++)
            if (fv_ssim(&score[a * n + b], rec + a * isz, trained + b * isz, s.c, s.h, s.w, e)) goto out;
    fv_invert_assign(perm, score, n);
    for (int a = 0; a < n; a++) {
        int b = perm[a];
        float *dst = out + (size_t)b * isz;
        memcpy(dst, rec + a * isz, sizeof(float) * isz);
        if (fv_ssim(&ssim_orig[b], dst, orig + (size_t)b * isz, s.c, s.h, s.w, e)) goto out;
        ssim_trained[b] = score[a * n + b];
        psnr_orig[b] = fv_psnr(dst, orig + (size_t)b * isz, isz);
        psnr_trained[b] = fv_psnr(dst, trained + (size_t)b * isz, isz);
    }
    rc = 0;
out:
    free(perm);
    free(score);
    return rc;
}

const char *fv_invert_objective_name(fv_invert_objective o) { return o == FV_INVERT_L2 ? "l2" : "cosine"; }

const char *fv_invert_optimizer_name(fv_invert_optimizer o) {
    return o == FV_INVERT_LBFGS ? "lbfgs" : o == FV_INVERT_ADAM ? "adam" : "adam-signed";
}

int fv_invert_parse_dlg_choice(const char *objective, const char *optimizer, fv_invert_cfg *c, fv_err *e) {
    if (objective) {
        if (strcmp(objective, "l2") == 0) c->objective = FV_INVERT_L2;
        else if (strcmp(objective, "cosine") == 0) c->objective = FV_INVERT_COSINE;
        else return fv_err_set(e, "objective '%s' is not l2 or cosine", objective);
    }
    if (optimizer) {
        if (strcmp(optimizer, "lbfgs") == 0) c->opt = FV_INVERT_LBFGS;
        else if (strcmp(optimizer, "adam") == 0) c->opt = FV_INVERT_ADAM;
        else if (strcmp(optimizer, "adam-signed") == 0) c->opt = FV_INVERT_ADAM_SIGNED;
        else return fv_err_set(e, "optimizer '%s' is not lbfgs, adam or adam-signed", optimizer);
    }
    return 0;
}

fv_dlg_run_cfg fv_dlg_run_defaults(void) {
    fv_dlg_run_cfg c;
    memset(&c, 0, sizeof c);
    c.src.dataset = "mnist";
    c.runs = 1;
    c.batch = 1;
    c.atk = fv_invert_dlg_defaults();
    c.fd_scale = FV_INVERT_FD_SCALE;
    fv_vmix_params_default(&c.vp);
    c.seed = 1;
    return c;
}

int fv_dlg_run_check(const fv_dlg_run_cfg *c, fv_err *e) {
    if (c->runs < 1 || c->first < 0) return fv_err_set(e, "dlg: %d runs from image %d", c->runs, c->first);
    if (c->batch < 1 || c->batch > FV_DLG_MAX_BATCH)
        return fv_err_set(e, "dlg: batch %d is not in [1, %d]", c->batch, FV_DLG_MAX_BATCH);
    if (c->atk.iters < 1 || c->atk.restarts < 1)
        return fv_err_set(e, "dlg: --iters %d and --restarts %d must be at least 1", c->atk.iters, c->atk.restarts);
    if (!(c->atk.lr > 0)) return fv_err_set(e, "dlg: --lr %g is not positive", c->atk.lr);
    if (!(c->fd_scale > 0 && c->fd_scale < 1)) return fv_err_set(e, "dlg: --fd-scale %g is not in (0, 1)", c->fd_scale);
    if (!(c->atk.target >= 0 && c->atk.target < 1)) return fv_err_set(e, "dlg: --target %g is not in [0, 1)", c->atk.target);
    return 0;
}

/* The DLG reference initialisation: every trainable parameter U(-0.5, 0.5) from seed, drawn in
 * double as dlg.c drew it (so old results re-run on the same weights, rounded to float). */
static void dlg_init_params(fv_net *net, uint64_t seed) {
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < net->n_train; i++) net->params[i] = (float)(fv_rng_uniform_d(&r) - 0.5);
}

/* Batch 1: the largest difference between the last layer's input recovered analytically from the
 * gradient U (fv_invert_dense_features) and that of the reconstruction x (pixels); -1 if the
 * shortcut does not apply. feat: scratch of the layer's input size. */
static double dense_shortcut_error(fv_net *net, const float *U, const float *x, float *feat) {
    const fv_node *last = &net->nodes[net->n_nodes - 1];
    if (fv_invert_dense_features(net, U, feat)) return -1;
    fv_net_forward(net, x, 1, 0);
    const float *f = net->nodes[last->in0].out;
    double err = 0;
    for (size_t k = 0; k < fv_shape_size(last->ishape); k++) err = fmax(err, fabs((double)feat[k] - f[k]));
    return err;
}

int fv_dlg_run(const fv_dlg_run_cfg *cfg, fv_json *j, fv_err *e) {
    if (fv_dlg_run_check(cfg, e)) return -1;
    fv_dataset te;
    if (fv_dataset_load(cfg->src.dataset, cfg->src.data_dir, 0, &te, e)) return -1;
    const int n = cfg->batch, total = cfg->runs * n;
    int rc = -1;
    fv_net *net = NULL;
    fv_invert_engine *g = NULL;
    if (cfg->first + total > te.n) {
        fv_err_set(e, "dlg: %d runs of batch %d from image %d do not fit the %d test images", cfg->runs, n, cfg->first,
                   te.n);
        fv_dataset_free(&te);
        return -1;
    }
    if (cfg->vmix && fv_vmix_params_check(&cfg->vp, te.h, te.w, e)) {
        fv_dataset_free(&te);
        return fv_err_prefix(e, "dlg: ");
    }
    /* the model sees pixels in [0, 1] (no normalisation), as in the DLG reference */
    net = fv_model_new("dlg_lenet", (fv_shape){te.c, te.h, te.w}, te.classes, cfg->seed, e);
    if (!net) {
        fv_dataset_free(&te);
        return -1;
    }
    const size_t isz = (size_t)te.c * te.h * te.w, nt = net->n_train;
    float *U = fv_malloc(sizeof(float) * (nt + isz * (size_t)n * 3));
    float *xc = U + nt, *xr = xc + isz * n, *feat = xr + isz * n;
    float *orig = fv_malloc(sizeof(float) * isz * total * 3), *mixd = orig + isz * total, *rec = mixd + isz * total;
    double *s_orig = fv_malloc(sizeof(double) * total * 4), *s_mix = s_orig + total, *p_orig = s_mix + total,
           *p_mix = p_orig + total;
    double *secs = fv_malloc(sizeof(double) * cfg->runs * 3), *rel = secs + cfg->runs, *ferr = rel + cfg->runs;
    uint8_t *mbuf = fv_malloc(isz);
    fv_vmix_work *work = fv_vmix_work_new();
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.n = n;
    uc.fd_scale = cfg->fd_scale;
    fv_invert_cfg ac = cfg->atk;
    for (int ch = 0; ch < 4; ch++) ac.lo[ch] = 0, ac.hi[ch] = 1;
    int labels_ok = 0, recovered = 0, evals = 0, iters = 0;
    for (int r = 0; r < cfg->runs; r++) {
        int y[FV_DLG_MAX_BATCH], lab[FV_DLG_MAX_BATCH], used[FV_DLG_MAX_BATCH];
        for (int i = 0; i < n; i++) {
            int k = cfg->first + r * n + i;
            const uint8_t *src = te.x + (size_t)k * isz;
            to_float(orig + ((size_t)r * n + i) * isz, src, isz);
            if (cfg->vmix) {
                if (mix_one(mbuf, NULL, NULL, work, src, te.c, te.h, te.w, cfg->seed, k, &cfg->vp, e)) goto out;
                src = mbuf;
            }
            to_float(mixd + ((size_t)r * n + i) * isz, src, isz);
            to_float(xc + i * isz, src, isz);
            y[i] = te.y[k];
        }
        /* the client's gradient on the images it trains on */
        dlg_init_params(net, cfg->seed * 7919u + (uint64_t)r);
        fv_invert_engine_free(&g);
        if (!(g = fv_invert_engine_new(net, &uc, e))) goto out;
        fv_invert_update(g, xc, y, U);
        if (cfg->known_labels) memcpy(lab, y, sizeof(int) * (size_t)n);
        else if (fv_invert_labels(net, U, n, lab, e)) goto out;
        ac.seed = cfg->seed + 1000u * (uint64_t)r;
        fv_invert_result res;
        if (fv_invert_attack(g, U, lab, &ac, xr, &res, e)) goto out;
        secs[r] = res.seconds;
        rel[r] = res.rel_match;
        evals += res.evals;
        iters += res.iters;
        labels_ok += labels_agree(lab, y, n, used);
        ferr[r] = n == 1 ? dense_shortcut_error(net, U, xr, feat) : -1;
        /* match reconstructions to the images trained on, then measure against both versions */
        size_t off = (size_t)r * n;
        if (fv_dlg_measure(rec + off * isz, s_orig + off, s_mix + off, p_orig + off, p_mix + off, xr, orig + off * isz,
                           mixd + off * isz, n, (fv_shape){te.c, te.h, te.w}, e))
            goto out;
        for (int a = 0; a < n; a++) recovered += s_orig[off + a] >= 0.9;
        fprintf(stderr, "dlg: run %d/%d: SSIM vs original %.4f%s, PSNR %.1f dB, %d iterations (%s), %.1f s\n", r + 1,
                cfg->runs, s_orig[r * n], cfg->vmix ? " (first image)" : "", p_orig[r * n], res.iters, res.status,
                res.seconds);
    }
    fv_json_str(j, "attack", "dlg");
    fv_json_str(j, "dataset", cfg->src.dataset);
    fv_json_str(j, "model", "dlg_lenet (float32, the invert.h engine; sigmoid, U(-0.5, 0.5))");
    fv_json_int(j, "batch", n);
    fv_json_int(j, "runs", cfg->runs);
    fv_json_int(j, "first_image", cfg->first);
    fv_json_str(j, "objective", fv_invert_objective_name(cfg->atk.objective));
    fv_json_str(j, "optimizer", fv_invert_optimizer_name(cfg->atk.opt));
    fv_json_int(j, "iterations", cfg->atk.iters);
    fv_json_int(j, "restarts", cfg->atk.restarts);
    fv_json_num(j, "fd_scale", cfg->fd_scale);
    fv_json_num(j, "target", cfg->atk.target);
    fv_json_str(j, "labels", cfg->known_labels ? "known" : "idlg");
    fv_json_bool(j, "visualmixer", cfg->vmix);
    if (cfg->vmix) vmix_json(j, &cfg->vp);
    json_stats(j, "ssim_original", s_orig, total);
    json_stats(j, "psnr_original", p_orig, total);
    if (cfg->vmix) {
        json_stats(j, "ssim_mixed", s_mix, total);
        json_stats(j, "psnr_mixed", p_mix, total);
    }
    fv_json_num(j, "recovered_fraction", (double)recovered / total); /* SSIM vs original >= 0.9 */
    fv_json_num(j, "label_accuracy", (double)labels_ok / total);
    json_stats(j, "relative_match_loss", rel, cfg->runs);
    json_stats(j, "seconds_per_run", secs, cfg->runs);
    /* batch 1: the dense layer's input recovered analytically from g* (dW row / db) against the
     * reconstruction's features: 0 when the reconstruction is exact */
    if (n == 1) json_stats(j, "dense_shortcut_feature_error", ferr, cfg->runs);
    fv_json_num(j, "mean_iterations", (double)iters / cfg->runs);
    fv_json_num(j, "mean_evaluations", (double)evals / cfg->runs);
    fv_json_num_array(j, "ssim_original_each", s_orig, (size_t)total);
    fv_json_num_array(j, "psnr_original_each", p_orig, (size_t)total);
    if (cfg->vmix) fv_json_num_array(j, "ssim_mixed_each", s_mix, (size_t)total);
    {
        int cols = total < 16 ? total : 16;
        const float *rows[3] = {orig, mixd, rec};
        const float *rows2[2] = {orig, rec};
        if (cfg->vmix ? write_grid(cfg->out_dir, "dlg_grid.png", rows, 3, cols, te.c, te.h, te.w, e)
                      : write_grid(cfg->out_dir, "dlg_grid.png", rows2, 2, cols, te.c, te.h, te.w, e))
            goto out;
        if (cfg->out_dir)
            fv_json_str(j, "grid", cfg->vmix ? "dlg_grid.png (rows: original, mixed, reconstruction)"
                                             : "dlg_grid.png (rows: original, reconstruction)");
    }
    rc = 0;
out:
    fv_invert_engine_free(&g);
    fv_net_destroy(&net);
    fv_vmix_work_destroy(&work);
    free(mbuf);
    free(secs);
    free(s_orig);
    free(orig);
    free(U);
    fv_dataset_free(&te);
    return rc;
}

/* ---- reassembly ---- */

/* ---- Inverting Gradients ---- */

fv_invert_run_cfg fv_invert_run_defaults(void) {
    fv_invert_run_cfg c;
    memset(&c, 0, sizeof c);
    c.src.dataset = "mnist";
    c.model = "lenet5";
    c.images = 4;
    c.batch = 1;
    c.kind = FV_INVERT_FEDSGD;
    c.local_epochs = 5;
    c.local_lr = 0.01;
    c.train_images = 10000;
    c.atk = fv_invert_defaults();
    c.fd_scale = FV_INVERT_FD_SCALE;
    c.seed = 1;
    c.device = -1;
    return c;
}

/* The engines fv_invert_run runs its restarts on (fv_invert_run_cfg.parallel). */
static int invert_engines(const fv_invert_run_cfg *c) {
    int m = c->parallel > 0 ? c->parallel : c->device >= 0 ? 8 : 1;
    return m < c->atk.restarts ? m : c->atk.restarts;
}

int fv_invert_run_check(const fv_invert_run_cfg *c, fv_err *e) {
    int known = 0;
    for (const char *const *m = fv_model_names(); *m; m++) known |= c->model && strcmp(*m, c->model) == 0;
    if (!known) return fv_err_set(e, "invert: --model: unknown model '%s'", c->model ? c->model : "(none)");
    if (c->images < 1 || c->first < 0) return fv_err_set(e, "invert: --images %d from %d", c->images, c->first);
    if (c->batch < 1 || c->batch > c->images)
        return fv_err_set(e, "invert: --batch %d is not in [1, --images %d]", c->batch, c->images);
    if (c->images % c->batch)
        return fv_err_set(e, "invert: --images %d is not a multiple of --batch %d", c->images, c->batch);
    if (c->kind == FV_INVERT_FEDAVG) {
        if (c->local_batch < 0 || c->local_batch > c->batch)
            return fv_err_set(e, "invert: --local-batch %d is above the client's --batch %d", c->local_batch, c->batch);
        if (c->local_epochs < 1) return fv_err_set(e, "invert: --local-epochs %d (need at least 1)", c->local_epochs);
        if (!(c->local_lr > 0)) return fv_err_set(e, "invert: --local-lr %g is not positive", c->local_lr);
    }
    if (c->trained_epochs < 0 || c->train_images < 1)
        return fv_err_set(e, "invert: --trained-epochs %d on %d images", c->trained_epochs, c->train_images);
    if (c->atk.iters < 1 || c->atk.restarts < 1)
        return fv_err_set(e, "invert: --iters %d and --restarts %d must be at least 1", c->atk.iters, c->atk.restarts);
    if (!(c->fd_scale > 0 && c->fd_scale < 1)) return fv_err_set(e, "invert: --fd-scale %g is not in (0, 1)", c->fd_scale);
    if (c->parallel < 0 || c->parallel > FV_INVERT_MAX_PARALLEL)
        return fv_err_set(e, "invert: --parallel %d is not in [0, %d]", c->parallel, FV_INVERT_MAX_PARALLEL);
    if (fv_device_check(c->device, e)) {
        fv_err_prefix(e, "invert: --device: ");
        return -1;
    }
    if (!(c->atk.bn_prior >= 0)) return fv_err_set(e, "invert: --bn-prior %g is negative", c->atk.bn_prior);
    if (c->oracle_from < 0 || (c->oracle_from > 0 && c->trained_epochs > 0 && c->oracle_from < c->train_images))
        return fv_err_set(e, "invert: --oracle-from %d overlaps the %d training images of --trained-epochs", c->oracle_from,
                          c->train_images);
    return 0;
}


/* Train net for epochs epochs (Adam 1e-3, batch 64) on the first n training images. */
static int invert_train(fv_net *net, const fv_invert_run_cfg *c, fv_norm norm, fv_json *j, fv_err *e) {
    fv_dataset tr;
    if (fv_dataset_load(c->src.dataset, c->src.data_dir, 1, &tr, e)) return -1;
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = 1e-3f;
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_rng rng;
    fv_rng_seed2(&rng, c->seed, 77);
    int n = c->train_images < tr.n ? c->train_images : tr.n;
    fv_dataset_truncate(&tr, n); /* fv_train_epoch takes every image when given no index list */
    double t0 = fv_now();
    for (int ep = 0; ep < c->trained_epochs; ep++)
        fv_train_epoch(net, opt, &tr, NULL, n, 64, norm, &rng, 0.0f, NULL, NULL, NULL, NULL);
    fv_json_num(j, "train_seconds", fv_now() - t0);
    fv_json_int(j, "train_images", n);
    fv_opt_destroy(&opt);
    fv_dataset_free(&tr);
    return 0;
}

/* Recognisability (section 5.3) of the reconstructions rec[images] and of the originals
 * orig[images] (test images first.., pixels in [0, 1]) by the oracle trained on training images
 * [oracle_from, end); added to j as "oracle". */
static int invert_oracle(const fv_invert_run_cfg *c, const fv_dataset *te, fv_norm norm, const float *orig,
                         const float *rec, fv_json *j, fv_err *e) {
    fv_dataset tr;
    if (fv_dataset_load(c->src.dataset, c->src.data_dir, 1, &tr, e)) return -1;
    if (c->oracle_from >= tr.n) {
        fv_dataset_free(&tr);
        return fv_err_set(e, "invert: --oracle-from %d is past the %d training images", c->oracle_from, tr.n);
    }
    const int no = tr.n - c->oracle_from;
    int *idx = fv_malloc(sizeof(int) * (size_t)no);
    for (int i = 0; i < no; i++) idx[i] = c->oracle_from + i;
    fv_oracle_cfg oc = fv_oracle_defaults();
    char tag[128];
    snprintf(tag, sizeof tag, "%s-train[%d:%d]", c->src.dataset, c->oracle_from, tr.n);
    oc.data_tag = tag;
    int trained = 0;
    fv_net *o = fv_oracle_get(c->oracle_cache, &oc, &tr, idx, no, norm, &trained, e);
    free(idx);
    fv_dataset_free(&tr);
    if (!o) return -1;
    const size_t isz = (size_t)te->c * te->h * te->w;
    int hit_rec = 0, hit_orig = 0;
    for (int i = 0; i < c->images; i++) {
        int y = te->y[c->first + i];
        hit_rec += fv_oracle_recognise(o, rec + (size_t)i * isz, 1, norm, y, NULL, NULL) > 0.5;
        hit_orig += fv_oracle_recognise(o, orig + (size_t)i * isz, 1, norm, y, NULL, NULL) > 0.5;
    }
    fv_json_obj_begin(j, "oracle");
    fv_json_str(j, "model", oc.model);
    fv_json_str(j, "data", tag);
    fv_json_bool(j, "trained_now", trained);
    fv_json_num(j, "recognisability", (double)hit_rec / c->images);
    fv_json_num(j, "originals", (double)hit_orig / c->images);
    fv_json_obj_end(j);
    fv_net_destroy(&o);
    return 0;
}

int fv_invert_run(const fv_invert_run_cfg *c, fv_json *j, fv_err *e) {
    if (fv_invert_run_check(c, e)) return -1;
    fv_dataset te;
    if (fv_dataset_load(c->src.dataset, c->src.data_dir, 0, &te, e)) return -1;
    int rc = -1;
    fv_net *net = NULL, *nets[FV_INVERT_MAX_PARALLEL] = {NULL};
    fv_invert_engine *g = NULL, *engs[FV_INVERT_MAX_PARALLEL] = {NULL};
    const int m = invert_engines(c);
    float *buf = NULL;
    double *fig = NULL;
    int *ibuf = NULL;
    if (c->first + c->images > te.n) {
        fv_err_set(e, "invert: images %d .. %d are past the %d test images", c->first, c->first + c->images, te.n);
        goto out;
    }
    const fv_norm norm = fv_norm_for(c->src.dataset);
    net = fv_model_new(c->model, (fv_shape){te.c, te.h, te.w}, te.classes, c->seed, e);
    if (!net) goto out;
    if (c->infer_labels && net->nodes[net->n_nodes - 1].op != FV_OP_LINEAR) {
        fv_err_set(e, "invert: labels cannot be inferred for %s: its output node is not a linear layer", c->model);
        goto out;
    }
    if (c->weights && fv_safetensors_load(c->weights, net, e)) goto out;
    fv_json_str(j, "model", c->model);
    fv_json_str(j, "weights", c->weights ? c->weights : "seed");
    fv_json_str(j, "dataset", c->src.dataset);
    fv_json_str(j, "update", c->kind == FV_INVERT_FEDSGD ? "fedsgd" : "fedavg");
    fv_json_int(j, "batch", c->batch);
    fv_json_int(j, "images", c->images);
    fv_json_int(j, "first", c->first);
    if (c->kind == FV_INVERT_FEDAVG) {
        fv_json_int(j, "local_epochs", c->local_epochs);
        fv_json_int(j, "local_batch", c->local_batch ? c->local_batch : c->batch);
        fv_json_num(j, "local_lr", c->local_lr);
    }
    fv_json_int(j, "iters", c->atk.iters);
    fv_json_int(j, "restarts", c->atk.restarts);
    fv_json_num(j, "tv", c->atk.tv);
    fv_json_num(j, "bn_prior", c->atk.bn_prior);
    fv_json_num(j, "lr", c->atk.lr);
    fv_json_num(j, "fd_scale", c->fd_scale);
    fv_json_str(j, "fd", c->one_sided ? "one-sided" : "central");
    fv_json_str(j, "labels", c->infer_labels ? "inferred" : "known");
    fv_json_int(j, "trained_epochs", c->trained_epochs);
    if (c->trained_epochs > 0) {
        if (invert_train(net, c, norm, j, e)) goto out;
        int ne = te.n < 2000 ? te.n : 2000;
        fv_json_num(j, "test_accuracy", fv_evaluate(net, &te, NULL, ne, 256, norm).accuracy);
    }
    const int B = c->batch, runs = c->images / B, N = c->images;
    const size_t isz = (size_t)te.c * te.h * te.w;
    fv_invert_update_cfg uc = fv_invert_update_defaults();
    uc.kind = c->kind;
    uc.n = B;
    uc.batch = c->local_batch ? c->local_batch : B;
    uc.epochs = c->local_epochs;
    uc.lr = (float)c->local_lr;
    uc.fd_scale = c->fd_scale;
    uc.one_sided = c->one_sided;
    /* engine 0 on net, the others on copies of it (the same weights), each with its own passes */
    engs[0] = g = fv_invert_engine_new_on(net, &uc, c->device, e);
    if (!g) goto out;
    for (int k = 1; k < m; k++) {
        nets[k] = fv_model_new(c->model, (fv_shape){te.c, te.h, te.w}, te.classes, c->seed, e);
        if (!nets[k]) goto out;
        memcpy(nets[k]->params, net->params, net->n_params * sizeof(float)); /* conv path: fv_model_new's, as net's */
        if (!(engs[k] = fv_invert_engine_new_on(nets[k], &uc, c->device, e))) goto out;
    }
    {
        char dev[16];
        fv_json_str(j, "device", fv_device_name(c->device, dev, sizeof dev));
        fv_json_int(j, "parallel", m);
    }
    const size_t nt = fv_invert_n_train(g);
    buf = fv_malloc(sizeof(float) * (isz * (size_t)(4 * B + 2 * N) + nt));
    float *x = buf, *rec = x + isz * B, *rp = rec + isz * B, *op = rp + isz * B, *orig_all = op + isz * B,
          *rec_all = orig_all + isz * N, *U = rec_all + isz * N;
    fig = fv_malloc(sizeof(double) * (size_t)(2 * N + 2 * runs + B * B));
    double *psnr = fig, *ssim = psnr + N, *secs = ssim + N, *cosv = secs + runs, *score = cosv + runs;
    ibuf = fv_malloc(sizeof(int) * (size_t)(4 * B));
    int *y = ibuf, *lab = y + B, *perm = lab + B, *used = perm + B;
    fv_invert_cfg ac = c->atk;
    for (int ch = 0; ch < 4; ch++) {
        ac.lo[ch] = (0.0f - norm.mean[ch]) / norm.std[ch];
        ac.hi[ch] = (1.0f - norm.mean[ch]) / norm.std[ch];
    }
    int labels_right = 0;
    long passes = 0;
    for (int r = 0; r < runs; r++) {
        const int start = c->first + r * B;
        fv_dataset_to_float(&te, NULL, start, B, norm, x);
        fv_dataset_labels(&te, NULL, start, B, y);
        fv_invert_update(g, x, y, U);
        if (c->infer_labels) {
            if (fv_invert_labels(net, U, B, lab, e)) goto out;
            labels_right += labels_agree(lab, y, B, used);
        } else {
            memcpy(lab, y, sizeof(int) * (size_t)B);
            labels_right += B;
        }
        ac.seed = c->atk.seed + 1000u * (uint64_t)r;
        fv_invert_result res;
        if (fv_invert_attack_multi(engs, m, U, lab, &ac, rec, &res, e)) goto out;
        secs[r] = res.seconds;
        cosv[r] = res.cos;
        passes += res.passes;
        for (size_t p = 0; p < isz * B; p++) {
            int ch = (int)((p / ((size_t)te.h * te.w)) % (size_t)te.c);
            float v = rec[p] * norm.std[ch] + norm.mean[ch];
            rp[p] = v < 0 ? 0 : v > 1 ? 1 : v;
            op[p] = te.x[(size_t)start * isz + p] / 255.0f;
        }
        for (int i = 0; i < B; i++)
            for (int k = 0; k < B; k++) score[i * B + k] = -fv_mse(rp + i * isz, op + k * isz, isz);
        fv_invert_assign(perm, score, B);
        for (int i = 0; i < B; i++) {
            int k = perm[i], gi = r * B + k;
            psnr[gi] = fv_psnr(rp + i * isz, op + k * isz, isz);
            if (fv_ssim(&ssim[gi], rp + i * isz, op + k * isz, te.c, te.h, te.w, e)) goto out;
            memcpy(rec_all + (size_t)gi * isz, rp + i * isz, isz * sizeof(float));
            memcpy(orig_all + (size_t)gi * isz, op + k * isz, isz * sizeof(float));
        }
        if (c->atk.verbose)
            fprintf(stderr, "invert: attack %d/%d: %.2f s, cosine %.4f\n", r + 1, runs, res.seconds, res.cos);
    }
    fv_json_num_or_inf(j, "psnr_median", median_of(psnr, N));
    fv_json_num(j, "ssim_median", median_of(ssim, N));
    fv_json_num(j, "seconds_per_attack", median_of(secs, runs));
    fv_json_num(j, "cosine_median", median_of(cosv, runs));
    fv_json_num_array(j, "psnr", psnr, (size_t)N);
    fv_json_num_array(j, "ssim", ssim, (size_t)N);
    fv_json_num_array(j, "seconds", secs, (size_t)runs);
    fv_json_num(j, "labels_correct", (double)labels_right / N);
    fv_json_int(j, "passes", passes);
    fv_json_int(j, "local_steps", fv_invert_steps(g));
    if (c->oracle_from > 0 && invert_oracle(c, &te, norm, orig_all, rec_all, j, e)) goto out;
    const float *rows[2] = {orig_all, rec_all};
    if (write_grid(c->out_dir, "invert_grid.png", rows, 2, N, te.c, te.h, te.w, e)) goto out;
    if (c->out_dir) fv_json_str(j, "grid", "invert_grid.png (rows: original, reconstruction)");
    fprintf(stderr, "invert %s %s batch %d: median PSNR %.2f dB, SSIM %.3f, %.2f s per attack\n", c->model,
            c->kind == FV_INVERT_FEDSGD ? "fedSGD" : "fedAVG", B, median_of(psnr, N), median_of(ssim, N),
            median_of(secs, runs));
    rc = 0;
out:
    for (int k = 0; k < FV_INVERT_MAX_PARALLEL; k++) {
        fv_invert_engine_free(&engs[k]);
        fv_net_destroy(&nets[k]);
    }
    fv_net_destroy(&net);
    free(buf);
    free(fig);
    free(ibuf);
    fv_dataset_free(&te);
    return rc;
}

fv_invert_chain fv_invert_chain_defaults(void) {
    fv_invert_chain c;
    memset(&c, 0, sizeof c);
    c.reasm = fv_reasm_defaults();
    c.map_iters = 3;
    c.inverter_device = -1;
    return c;
}

/* One step of the chain: the figures of img[n] against the originals orig[n] and the mixed
 * images mixed[n] (pixels on [0, 1]), as the object `key` of j. Returns 0 or -1 as fv_ssim. */
static int chain_step(fv_json *j, const char *key, const float *img, const float *orig, const float *mixed, int n,
                      fv_shape s, fv_err *e) {
    const size_t isz = fv_shape_size(s);
    double *f = fv_malloc(sizeof(double) * (size_t)n * 4), *so = f, *sm = so + n, *po = sm + n, *pm = po + n;
    for (int i = 0; i < n; i++) {
        const float *x = img + (size_t)i * isz, *o = orig + (size_t)i * isz, *m = mixed + (size_t)i * isz;
        po[i] = fv_psnr(x, o, isz);
        pm[i] = fv_psnr(x, m, isz);
        if (fv_ssim(&so[i], x, o, s.c, s.h, s.w, e) || fv_ssim(&sm[i], x, m, s.c, s.h, s.w, e)) {
            free(f);
            return -1;
        }
    }
    fv_json_obj_begin(j, key);
    fv_json_num(j, "ssim_original_median", median_of(so, n));
    fv_json_num_or_inf(j, "psnr_original_median", median_of(po, n));
    fv_json_num(j, "ssim_mixed_median", median_of(sm, n));
    fv_json_num_or_inf(j, "psnr_mixed_median", median_of(pm, n));
    fv_json_num_array(j, "ssim_original", so, (size_t)n);
    fv_json_num_array(j, "ssim_mixed", sm, (size_t)n);
    fv_json_obj_end(j);
    free(f);
    return 0;
}

static int cmp_u8(const void *a, const void *b) { return (int)*(const uint8_t *)a - (int)*(const uint8_t *)b; }

/* Whether mixed[c*h*w] is orig rearranged inside each window of win[nwin], channel by channel
 * (the same values in every window): the check that a map is the one the mixing used. */
static int map_explains(const uint8_t *orig, const uint8_t *mixed, int c, int h, int w, const fv_vmix_window *win,
                        int nwin) {
    uint8_t *a = fv_malloc((size_t)h * w * 2), *b = a + (size_t)h * w;
    int ok = 1;
    for (int k = 0; k < nwin && ok; k++)
        for (int ch = 0; ch < c && ok; ch++) {
            size_t m = 0;
            for (int y = win[k].y; y < win[k].y + win[k].h; y++)
                for (int x = win[k].x; x < win[k].x + win[k].w; x++, m++) {
                    a[m] = orig[((size_t)ch * h + y) * w + x];
                    b[m] = mixed[((size_t)ch * h + y) * w + x];
                }
            qsort(a, m, 1, cmp_u8);
            qsort(b, m, 1, cmp_u8);
            ok = memcmp(a, b, m) == 0;
        }
    free(a);
    return ok;
}

/* The chain of fv_invert_observed: rec[n] the reconstructions matched to orig[n] and mixed[n];
 * rows[3][n] receive the reassemblies (estimated map, true map, and the true mixed images with the
 * true map); the figures go to j's object "chain". Returns 0, or -1 with e set. */
static int invert_chain(float *rows, const float *rec, const float *orig, const float *mixed, int n, fv_shape s,
                        const fv_invert_chain *ch, uint64_t seed, fv_json *j, fv_err *e) {
    const size_t isz = fv_shape_size(s), hw = (size_t)s.h * s.w;
    float *est = rows, *tru = est + isz * (size_t)n, *mtru = tru + isz * (size_t)n;
    uint8_t *u8 = fv_malloc(isz * 3), *src = u8, *dst = u8 + isz, *tmp = dst + isz;
    fv_vmix_window *ew = fv_malloc(sizeof(fv_vmix_window) * hw), *tw = NULL;
    double *agree = fv_malloc(sizeof(double) * (size_t)n);
    fv_vmix_work *work = fv_vmix_work_new();
    fv_reasm_cfg rp = ch->reasm, rv = ch->reasm;
    rp.unit = ch->vp_public->unit, rp.mode = ch->vp_public->mode;
    rv.unit = ch->vp_victim->unit, rv.mode = ch->vp_victim->mode;
    fv_reasm_stats st;
    int rc = -1, exact = 0, explained = 0;
    const double t0 = fv_now();
    for (int i = 0; i < n; i++) {
        const size_t off = (size_t)i * isz;
        int nest = 0, ntw = 0, rounds = 0;
        rp.seed = rv.seed = seed + (uint64_t)i;
        to_u8(src, rec + off, isz);
        if (fv_reasm_estimate_map(ew, &nest, dst, &rounds, src, s.c, s.h, s.w, ch->vp_public, ch->map_iters, &rp, e))
            goto out;
        to_float(est + off, dst, isz);
        /* the true map: Algorithm 1's, a function of the original's pixels and the victim's bounds */
        to_u8(tmp, orig + off, isz);
        free(tw);
        tw = NULL;
        if (mix_one(dst, &tw, &ntw, work, tmp, s.c, s.h, s.w, seed, i, ch->vp_victim, e)) goto out;
        agree[i] = map_agreement(tw, ntw, ew, nest, s.h, s.w);
        exact += agree[i] == 1.0;
        if (fv_reasm_image(dst, &st, src, s.c, s.h, s.w, tw, ntw, &rv, e)) goto out;
        to_float(tru + off, dst, isz);
        to_u8(src, mixed + off, isz);
        explained += map_explains(tmp, src, s.c, s.h, s.w, tw, ntw);
        if (fv_reasm_image(dst, &st, src, s.c, s.h, s.w, tw, ntw, &rv, e)) goto out;
        to_float(mtru + off, dst, isz);
    }
    fv_json_obj_begin(j, "chain");
    fv_json_str(j, "estimated_map", "fv_reasm_estimate_map from the federation's public settings (vmix_public)");
    fv_json_str(j, "true_map", "Algorithm 1's map of the original under the victim's own bounds (vmix_victim)");
    vmix_json(j, ch->vp_public);
    fv_json_obj_begin(j, "vmix_victim");
    fv_json_int(j, "ws_min", ch->vp_victim->ws_min);
    fv_json_int(j, "ws_max", ch->vp_victim->ws_max);
    fv_json_obj_end(j);
    fv_json_int(j, "map_iters", ch->map_iters);
    fv_json_int(j, "anneal", ch->reasm.anneal);
    fv_json_num(j, "map_agreement_median", median_of(agree, n));
    fv_json_int(j, "maps_exact", exact);
    fv_json_int(j, "true_maps_explain_mixing", explained); /* of n: the mixed image is the original
                                                               rearranged inside the true map's windows */
    if (chain_step(j, "recovered", rec, orig, mixed, n, s, e) ||
        chain_step(j, "reassembled_estimated_map", est, orig, mixed, n, s, e) ||
        chain_step(j, "reassembled_true_map", tru, orig, mixed, n, s, e) ||
        chain_step(j, "mixed_reassembled_true_map", mtru, orig, mixed, n, s, e))
        goto out;
    if (ch->inverter) { /* the learned inverter on what the inversion recovered, and on the real mixed images */
        float *inv = fv_malloc(sizeof(float) * isz * (size_t)n * 2), *minv = inv + isz * (size_t)n;
        const int bad = fv_inverter_apply(ch->inverter, inv, rec, n, 64, ch->inverter_device, e) ||
                        fv_inverter_apply(ch->inverter, minv, mixed, n, 64, ch->inverter_device, e) ||
                        chain_step(j, "inverter", inv, orig, mixed, n, s, e) ||
                        chain_step(j, "mixed_inverter", minv, orig, mixed, n, s, e);
        free(inv);
        if (bad) goto out;
    }
    fv_json_num(j, "seconds", fv_now() - t0);
    fv_json_obj_end(j);
    rc = 0;
out:
    fv_vmix_work_destroy(&work);
    free(agree);
    free(tw);
    free(ew);
    free(u8);
    return rc;
}

int fv_invert_observed(fv_net *net, const float *update, const fv_invert_update_cfg *uc, const fv_invert_cfg *ac,
                       int device, int infer, const int *y, const float *orig, const float *trained,
                       const fv_invert_chain *chain, fv_norm norm, const char *out_dir, const char *prefix,
                       fv_json *j, fv_err *e) {
    const int n = uc->n;
    const fv_shape in = net->nodes[0].oshape;
    const size_t isz = fv_shape_size(in);
    if (infer && net->nodes[net->n_nodes - 1].op != FV_OP_LINEAR)
        return fv_err_set(e, "invert: labels cannot be inferred: the model's output node is not a linear layer");
    fv_invert_engine *g = fv_invert_engine_new_on(net, uc, device, e);
    if (!g) return -1;
    {
        char dev[16];
        fv_json_str(j, "device", fv_device_name(device, dev, sizeof dev));
    }
    int rc = -1;
    int *ib = fv_malloc(sizeof(int) * (size_t)n * 2), *lab = ib, *used = ib + n;
    float *x = fv_malloc(sizeof(float) * isz * (size_t)n * 2), *out = x + isz * (size_t)n;
    float *rec = fv_malloc(sizeof(float) * isz * (size_t)n);
    double *fig = fv_malloc(sizeof(double) * (size_t)n * 4), *so = fig, *st = so + n, *po = st + n, *pt = po + n;
    float *crows = NULL;
    if (infer) {
        if (fv_invert_labels(net, update, n, lab, e)) goto out;
    } else {
        memcpy(lab, y, sizeof(int) * (size_t)n);
    }
    fv_invert_cfg a = *ac;
    for (int ch = 0; ch < 4; ch++) {
        a.lo[ch] = (0.0f - norm.mean[ch]) / norm.std[ch];
        a.hi[ch] = (1.0f - norm.mean[ch]) / norm.std[ch];
    }
    fv_invert_result res;
    if (fv_invert_attack(g, update, lab, &a, x, &res, e)) goto out;
    for (size_t p = 0; p < isz * (size_t)n; p++) {
        int ch = (int)((p / ((size_t)in.h * in.w)) % (size_t)in.c);
        float v = x[p] * norm.std[ch] + norm.mean[ch];
        rec[p] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    if (fv_dlg_measure(out, so, st, po, pt, rec, orig, trained ? trained : orig, n, in, e)) goto out;
    fv_json_str(j, "update", uc->kind == FV_INVERT_FEDSGD ? "fedsgd" : "fedavg");
    fv_json_int(j, "batch", n);
    if (uc->kind == FV_INVERT_FEDAVG) { /* fedSGD: the caller names the step it divided by */
        fv_json_int(j, "local_batch", uc->batch);
        fv_json_int(j, "local_epochs", uc->epochs);
        fv_json_num(j, "client_lr", uc->lr);
        fv_json_int(j, "local_steps", fv_invert_steps(g));
    }
    fv_json_int(j, "iters", a.iters);
    fv_json_int(j, "restarts", a.restarts);
    fv_json_num(j, "tv", a.tv);
    if (a.bn_prior > 0) fv_json_num(j, "bn_prior", a.bn_prior);
    fv_json_num(j, "lr", a.lr);
    fv_json_num(j, "fd_scale", uc->fd_scale);
    fv_json_str(j, "fd", uc->one_sided ? "one-sided" : "central");
    fv_json_str(j, "labels", infer ? "inferred" : "known");
    fv_json_num(j, "label_accuracy", (double)labels_agree(lab, y, n, used) / n);
    fv_json_str(j, "objective", fv_invert_objective_name(a.objective));
    fv_json_str(j, "optimizer", fv_invert_optimizer_name(a.opt));
    fv_json_int(j, "iterations", res.iters);
    fv_json_int(j, "evaluations", res.evals);
    fv_json_str(j, "stopped", res.status);
    fv_json_num(j, "relative_match_loss", res.rel_match);
    fv_json_num(j, "cosine", res.cos);
    fv_json_num_or_inf(j, "psnr_original_median", median_of(po, n));
    fv_json_num(j, "ssim_original_median", median_of(so, n));
    fv_json_num_array(j, "ssim_original", so, (size_t)n);
    fv_json_num_array(j, "psnr_original", po, (size_t)n);
    if (trained) {
        /* the do-nothing baseline of the chain: how close the mixed images already are */
        double *base = fv_malloc(sizeof(double) * (size_t)n);
        for (int i = 0; i < n; i++)
            if (fv_ssim(&base[i], trained + (size_t)i * isz, orig + (size_t)i * isz, in.c, in.h, in.w, e)) {
                free(base);
                goto out;
            }
        fv_json_num(j, "ssim_mixed_to_original_median", median_of(base, n));
        free(base);
        fv_json_num_or_inf(j, "psnr_mixed_median", median_of(pt, n));
        fv_json_num(j, "ssim_mixed_median", median_of(st, n));
        fv_json_num_array(j, "ssim_mixed", st, (size_t)n);
        fv_json_num_array(j, "psnr_mixed", pt, (size_t)n);
    }
    fv_json_num(j, "seconds", res.seconds);
    fv_json_int(j, "passes", res.passes);
    const int chained = trained && chain;
    if (chained) {
        crows = fv_malloc(sizeof(float) * isz * (size_t)n * 3);
        if (invert_chain(crows, out, orig, trained, n, in, chain, a.seed, j, e)) goto out;
    }
    if (out_dir) {
        char name[256];
        snprintf(name, sizeof name, "%sinvert_grid.png", prefix ? prefix : "");
        const float *rows[5] = {orig, trained ? trained : out, out, crows, crows + isz * (size_t)n};
        if (write_grid(out_dir, name, rows, chained ? 5 : trained ? 3 : 2, n, in.c, in.h, in.w, e)) goto out;
        char what[400];
        snprintf(what, sizeof what, "%s (rows: original, %sreconstruction%s)", name, trained ? "mixed, " : "",
                 chained ? ", reassembled with the estimated map, reassembled with the true map" : "");
        fv_json_str(j, "grid", what);
    }
    rc = 0;
out:
    fv_invert_engine_free(&g);
    free(crows);
    free(fig);
    free(rec);
    free(x);
    free(ib);
    return rc;
}

fv_reasm_run_cfg fv_reasm_run_defaults(void) {
    fv_reasm_run_cfg c;
    memset(&c, 0, sizeof c);
    c.src.dataset = "mnist";
    c.images = 10;
    fv_vmix_params_default(&c.vp);
    c.rc = fv_reasm_defaults();
    c.seed = 1;
    c.map_iters = 3;
    return c;
}

/* ---- reassembly with the window map unknown (fv_reasm_estimate_map) ---- */

typedef struct {
    double *psnr, *ssim, *agree, *secs, *rounds; /* [n] each */
    float *out;                                  /* [n][isz]: the reassemblies, pixels on [0, 1] */
    int exact;
} reasm_unknown;

/* Image i: estimate the map of mix (true map win[nwin]), reassemble with it into u->out's image i,
 * measure against the original o (float). */
static int reasm_unknown_one(reasm_unknown *u, int i, const uint8_t *mix, const fv_vmix_window *win, int nwin,
                             const float *o, const fv_dataset *te, const fv_reasm_run_cfg *cfg,
                             const fv_reasm_cfg *rcfg, fv_err *e) {
    size_t isz = (size_t)te->c * te->h * te->w;
    fv_vmix_window *est = fv_malloc(sizeof(fv_vmix_window) * (size_t)te->h * te->w);
    uint8_t *out = fv_malloc(isz);
    float *x = u->out + isz * (size_t)i;
    int nest = 0, rc = -1;
    double t0 = fv_now();
    int rounds = 0;
    if (fv_reasm_estimate_map(est, &nest, out, &rounds, mix, te->c, te->h, te->w, &cfg->vp, cfg->map_iters, rcfg, e))
        goto out;
    u->rounds[i] = rounds;
    u->secs[i] = fv_now() - t0;
    u->agree[i] = map_agreement(win, nwin, est, nest, te->h, te->w);
    u->exact += u->agree[i] == 1.0;
    to_float(x, out, isz);
    u->psnr[i] = fv_psnr(x, o, isz);
    if (fv_ssim(&u->ssim[i], x, o, te->c, te->h, te->w, e)) goto out;
    rc = 0;
out:
    free(out);
    free(est);
    return rc;
}

int fv_reasm_run(const fv_reasm_run_cfg *cfg, fv_json *j, fv_err *e) {
    fv_dataset te;
    if (fv_dataset_load(cfg->src.dataset, cfg->src.data_dir, 0, &te, e)) return -1;
    int N = cfg->images, rc = -1;
    if (N < 1 || cfg->first < 0 || cfg->first + N > te.n) {
        fv_err_set(e, "reassemble: %d images from %d do not fit the %d test images", N, cfg->first, te.n);
        fv_dataset_free(&te);
        return -1;
    }
    if (fv_vmix_params_check(&cfg->vp, te.h, te.w, e)) {
        fv_dataset_free(&te);
        return fv_err_prefix(e, "reassemble: ");
    }
    size_t isz = (size_t)te.c * te.h * te.w;
    uint8_t *mix = fv_malloc(isz * 2), *out = mix + isz;
    float *fo = fv_malloc(sizeof(float) * isz * N * 3), *fm = fo + isz * N, *fr = fm + isz * N;
    double *v = fv_malloc(sizeof(double) * N * 12);
    double *psnr_out = v, *psnr_mix = v + N, *ssim_out = v + 2 * N, *ssim_mix = v + 3 * N, *correct = v + 4 * N,
           *base = v + 5 * N, *restored = v + 6 * N, *bits = v + 7 * N, *secs = v + 8 * N, *tv_out = v + 9 * N,
           *tv_orig = v + 10 * N, *tv_mix = v + 11 * N;
    double *uv = fv_malloc(sizeof(double) * N * 5);
    reasm_unknown un = {uv, uv + N, uv + 2 * N, uv + 3 * N, uv + 4 * N, NULL, 0};
    if (cfg->unknown_map) un.out = fv_malloc(sizeof(float) * isz * N);
    fv_vmix_work *work = fv_vmix_work_new();
    fv_reasm_cfg rcfg = cfg->rc;
    rcfg.unit = cfg->vp.unit;
    rcfg.mode = cfg->vp.mode;
    for (int i = 0; i < N; i++) {
        int k = cfg->first + i;
        const uint8_t *img = te.x + (size_t)k * isz;
        fv_vmix_window *win = NULL;
        int nwin = 0;
        if (mix_one(mix, &win, &nwin, work, img, te.c, te.h, te.w, cfg->seed, k, &cfg->vp, e)) goto out;
        fv_reasm_stats st;
        rcfg.seed = cfg->rc.seed + (uint64_t)k;
        int r = fv_reasm_image(out, &st, mix, te.c, te.h, te.w, win, nwin, &rcfg, e);
        float *o = fo + (size_t)i * isz, *m = fm + (size_t)i * isz, *x = fr + (size_t)i * isz;
        to_float(o, img, isz);
        if (!r && cfg->unknown_map) r = reasm_unknown_one(&un, i, mix, win, nwin, o, &te, cfg, &rcfg, e);
        free(win);
        if (r) goto out;
        to_float(m, mix, isz);
        to_float(x, out, isz);
        psnr_out[i] = fv_psnr(x, o, isz);
        psnr_mix[i] = fv_psnr(m, o, isz);
        if (fv_ssim(&ssim_out[i], x, o, te.c, te.h, te.w, e) || fv_ssim(&ssim_mix[i], m, o, te.c, te.h, te.w, e)) goto out;
        fv_reassembly ra = fv_reassembly_compute(o, m, x, isz, 0);
        correct[i] = ra.correct;
        base[i] = ra.baseline;
        restored[i] = ra.restored;
        bits[i] = st.search_bits;
        secs[i] = st.seconds;
        tv_out[i] = st.tv_final;
        tv_mix[i] = st.tv_mixed;
        tv_orig[i] = fv_reasm_tv(img, te.c, te.h, te.w);
    }
    fv_json_str(j, "attack", "reassemble");
    fv_json_str(j, "dataset", cfg->src.dataset);
    fv_json_int(j, "images", N);
    fv_json_int(j, "first_image", cfg->first);
    vmix_json(j, &cfg->vp);
    fv_json_obj_begin(j, "search");
    fv_json_bool(j, "greedy", cfg->rc.greedy);
    fv_json_int(j, "anneal_proposals", cfg->rc.anneal);
    fv_json_num(j, "t_end", cfg->rc.t_end);
    fv_json_str(j, "window_map", "known (worst case)");
    fv_json_obj_end(j);
    json_stats(j, "psnr_output_vs_original", psnr_out, N);
    json_stats(j, "psnr_mixed_vs_original", psnr_mix, N);
    json_stats(j, "ssim_output_vs_original", ssim_out, N);
    json_stats(j, "ssim_mixed_vs_original", ssim_mix, N);
    int exact = 0;
    for (int i = 0; i < N; i++) exact += correct[i] == 1.0;
    fv_json_num(j, "exactly_restored_fraction", (double)exact / N); /* output == original */
    json_stats(j, "pixels_in_place_output", correct, N);
    json_stats(j, "pixels_in_place_mixed", base, N);
    json_stats(j, "displaced_pixels_restored", restored, N);
    json_stats(j, "search_space_bits", bits, N);
    json_stats(j, "tv_original", tv_orig, N);
    json_stats(j, "tv_mixed", tv_mix, N);
    json_stats(j, "tv_output", tv_out, N);
    json_stats(j, "seconds_per_image", secs, N);
    if (cfg->unknown_map) {
        fv_json_obj_begin(j, "unknown_map");
        fv_json_str(j, "estimate", "Algorithm 1 re-run on a reassembly, from the coarsest map (fv_reasm_estimate_map)");
        fv_json_int(j, "max_rounds", cfg->map_iters);
        json_stats(j, "rounds", un.rounds, N);
        fv_json_num(j, "map_exact_fraction", (double)un.exact / N);
        json_stats(j, "pixels_in_right_window", un.agree, N);
        json_stats(j, "psnr_output_vs_original", un.psnr, N);
        json_stats(j, "ssim_output_vs_original", un.ssim, N);
        json_stats(j, "seconds_per_image", un.secs, N);
        fv_json_obj_end(j);
        fprintf(stderr, "reassemble, map unknown: map exact in %d of %d images; median SSIM %.3f (known map %.3f), "
                        "PSNR %.2f dB (known map %.2f)\n",
                un.exact, N, median_of(un.ssim, N), median_of(ssim_out, N), median_of(un.psnr, N),
                median_of(psnr_out, N));
    }
    {
        int cols = N < 16 ? N : 16;
        const float *rows[4] = {fo, fm, fr, un.out};
        if (write_grid(cfg->out_dir, "reassemble_grid.png", rows, un.out ? 4 : 3, cols, te.c, te.h, te.w, e)) goto out;
        if (cfg->out_dir)
            fv_json_str(j, "grid", un.out ? "reassemble_grid.png (rows: original, mixed, reassembled, reassembled "
                                            "with the estimated map)"
                                          : "reassemble_grid.png (rows: original, mixed, reassembled)");
    }
    rc = 0;
out:
    fv_vmix_work_destroy(&work);
    free(un.out);
    free(uv);
    free(v);
    free(fo);
    free(mix);
    fv_dataset_free(&te);
    return rc;
}

/* ---- learned inverter ---- */

fv_inverter_run_cfg fv_inverter_run_defaults(void) {
    fv_inverter_run_cfg c;
    memset(&c, 0, sizeof c);
    c.src.dataset = "mnist";
    c.attacker_from = 0;
    c.attacker_images = 4000;
    c.images = 200;
    c.inv = fv_inverter_defaults();
    c.reasm = fv_reasm_defaults();
    c.seed = 1;
    return c;
}

int fv_inverter_run_check(const fv_inverter_run_cfg *c, fv_err *e) {
    if (c->attacker_from < 0) return fv_err_set(e, "inverter: --attacker-from %d < 0", c->attacker_from);
    if (c->attacker_images < 1) return fv_err_set(e, "inverter: --attacker-images %d < 1", c->attacker_images);
    if (c->first < 0) return fv_err_set(e, "inverter: --first %d < 0", c->first);
    if (c->images < 1) return fv_err_set(e, "inverter: --images %d < 1", c->images);
    if (c->reassemble && c->inv.def.kind != FV_INV_DEF_VMIX)
        return fv_err_set(e, "inverter: --reassemble needs the window map of VisualMixer (--defence vmix), not --defence %s",
                          fv_inverter_defence_name(c->inv.def.kind));
    if (c->inv.def.kind == FV_INV_DEF_INSTAHIDE && (c->images < c->inv.def.ih.k || c->attacker_images < c->inv.def.ih.k))
        return fv_err_set(e, "inverter: InstaHide k = %d needs at least k victim images (--images %d) and attacker images (--attacker-images %d)",
                          c->inv.def.ih.k, c->images, c->attacker_images);
    return fv_inverter_check(&c->inv, 0, 0, 0, e);
}

/* The attacker's images: training split [from, from + n) of its data set, checked against the
 * victim's image shape. */
static int inverter_own(fv_dataset *own, const fv_inverter_run_cfg *c, const fv_dataset *te, const char *name,
                        fv_err *e) {
    fv_dataset tr;
    const char *dir = c->attacker_dataset ? c->attacker_data_dir : c->src.data_dir;
    if (fv_dataset_load(name, dir, 1, &tr, e)) return fv_err_prefix(e, "inverter: the attacker's data: ");
    int rc = -1;
    if (c->attacker_from + (long)c->attacker_images > tr.n)
        fv_err_set(e, "inverter: %d attacker images from %d do not fit the %d training images of %s", c->attacker_images,
                   c->attacker_from, tr.n, name);
    else if (tr.c != te->c || tr.h != te->h || tr.w != te->w)
        fv_err_set(e, "inverter: the attacker's %s images are %d x %d x %d, the victim's %s images %d x %d x %d", name, tr.c,
                   tr.h, tr.w, c->src.dataset, te->c, te->h, te->w);
    else {
        int *idx = fv_malloc(sizeof(int) * (size_t)c->attacker_images);
        for (int i = 0; i < c->attacker_images; i++) idx[i] = c->attacker_from + i;
        fv_fedsim_subset(own, &tr, idx, c->attacker_images);
        free(idx);
        rc = 0;
    }
    fv_dataset_free(&tr);
    return rc;
}

int fv_inverter_run(const fv_inverter_run_cfg *cfg, fv_json *j, fv_err *e) {
    if (fv_inverter_run_check(cfg, e)) return -1;
    fv_dataset te, own;
    memset(&own, 0, sizeof own);
    if (fv_dataset_load(cfg->src.dataset, cfg->src.data_dir, 0, &te, e)) return fv_err_prefix(e, "inverter: the victim's data: ");
    const int N = cfg->images;
    if (cfg->first + (long)N > te.n) {
        fv_err_set(e, "inverter: %d images from %d do not fit the %d test images", N, cfg->first, te.n);
        fv_dataset_free(&te);
        return -1;
    }
    const char *aname = cfg->attacker_dataset ? cfg->attacker_dataset : cfg->src.dataset;
    fv_inverter_cfg ic = cfg->inv;
    ic.seed = cfg->seed;
    fv_fedsim_client_key(ic.key, cfg->seed, 1); /* the attacker's own secret; the victim is client 0 */
    const int vmix = ic.def.kind == FV_INV_DEF_VMIX;
    if (fv_inverter_check(&ic, te.c, te.h, te.w, e) || inverter_own(&own, cfg, &te, aname, e)) {
        fv_dataset_free(&te);
        return -1;
    }
    const size_t isz = (size_t)te.c * te.h * te.w;
    int rc = -1;
    uint8_t *mix = fv_malloc(isz * 2), *rout = mix + isz;
    float *fo = fv_malloc(sizeof(float) * isz * N * 4), *fm = fo + isz * N, *fi = fm + isz * N, *fr = fi + isz * N;
    double *v = fv_malloc(sizeof(double) * N * 6);
    double *psnr_inv = v, *psnr_mix = v + N, *ssim_inv = v + 2 * N, *ssim_mix = v + 3 * N, *psnr_re = v + 4 * N,
           *ssim_re = v + 5 * N;
    fv_vmix_work *work = fv_vmix_work_new();
    fv_dataset vic, vdef; /* the victim's images and, for the defences other than VisualMixer, their defended copies */
    memset(&vdef, 0, sizeof vdef);
    fv_fedsim_subset(&vic, &te, NULL, 0);
    fv_net *net = fv_inverter_net_new(te.c, te.h, te.w, ic.width, cfg->seed, e);
    if (!net) goto out;
    if (!vmix) { /* the victim's secret stream: its client key, stream 1 (the attacker's streams are 2, 3, ...) */
        uint8_t vkey[FV_VMIX_KEY_BYTES];
        fv_fedsim_client_key(vkey, cfg->seed, 0);
        int *idx = fv_malloc(sizeof(int) * (size_t)N);
        for (int i = 0; i < N; i++) idx[i] = cfg->first + i;
        fv_dataset_free(&vic);
        fv_fedsim_subset(&vic, &te, idx, N);
        free(idx);
        if (fv_defence_apply(&vdef, &vic, &ic.def, vkey, 1, e)) {
            fv_err_prefix(e, "inverter: defending the victim's images: ");
            goto out;
        }
    }
    /* the victim's defended images (and with VisualMixer the reassembly attack on them, given the window map) */
    double re_secs = fv_now();
    fv_reasm_cfg rcfg = cfg->reasm;
    rcfg.unit = ic.def.vp.unit;
    rcfg.mode = ic.def.vp.mode;
    for (int i = 0; i < N; i++) {
        const int k = cfg->first + i;
        const uint8_t *img = te.x + (size_t)k * isz;
        fv_vmix_window *win = NULL;
        int nwin = 0;
        if (!vmix) memcpy(mix, vdef.x + (size_t)i * isz, isz);
        else if (mix_one(mix, cfg->reassemble ? &win : NULL, &nwin, work, img, te.c, te.h, te.w, cfg->seed, k, &ic.def.vp, e))
            goto out;
        to_float(fo + (size_t)i * isz, img, isz);
        to_float(fm + (size_t)i * isz, mix, isz);
        if (cfg->reassemble) {
            fv_reasm_stats st;
            rcfg.seed = cfg->reasm.seed + (uint64_t)k;
            int r = fv_reasm_image(rout, &st, mix, te.c, te.h, te.w, win, nwin, &rcfg, e);
            free(win);
            if (r) goto out;
            to_float(fr + (size_t)i * isz, rout, isz);
        }
    }
    re_secs = fv_now() - re_secs;
    fv_inverter_stats ts;
    if (fv_inverter_train(net, &own, &ic, &ts, e)) goto out;
    double t_apply = fv_now();
    if (fv_inverter_apply(net, fi, fm, N, 64, ic.device, e)) goto out;
    t_apply = fv_now() - t_apply;
    for (int i = 0; i < N; i++) {
        const float *o = fo + (size_t)i * isz, *m = fm + (size_t)i * isz, *x = fi + (size_t)i * isz;
        psnr_inv[i] = fv_psnr(x, o, isz);
        psnr_mix[i] = fv_psnr(m, o, isz);
        if (fv_ssim(&ssim_inv[i], x, o, te.c, te.h, te.w, e) || fv_ssim(&ssim_mix[i], m, o, te.c, te.h, te.w, e)) goto out;
        if (cfg->reassemble) {
            const float *r = fr + (size_t)i * isz;
            psnr_re[i] = fv_psnr(r, o, isz);
            if (fv_ssim(&ssim_re[i], r, o, te.c, te.h, te.w, e)) goto out;
        }
    }
    fv_json_str(j, "attack", "inverter");
    fv_json_str(j, "dataset", cfg->src.dataset);
    fv_json_str(j, "attacker_dataset", aname);
    fv_json_int(j, "attacker_from", cfg->attacker_from);
    fv_json_int(j, "attacker_images", cfg->attacker_images);
    fv_json_int(j, "images", N);
    fv_json_int(j, "first_image", cfg->first);
    fv_json_str(j, "defence", fv_inverter_defence_name(ic.def.kind));
    if (vmix) vmix_json(j, &ic.def.vp);
    else if (ic.def.kind == FV_INV_DEF_SHUFFLE) fv_json_int(j, "shuffle_window", ic.def.window);
    else if (ic.def.kind == FV_INV_DEF_NOISE) fv_json_num(j, "noise_sigma", ic.def.sigma);
    else if (ic.def.kind == FV_INV_DEF_INSTAHIDE) {
        fv_json_obj_begin(j, "instahide");
        fv_json_int(j, "k", ic.def.ih.k);
        fv_json_num(j, "upper", ic.def.ih.upper);
        fv_json_bool(j, "sign_flip", ic.def.ih.sign_flip);
        fv_json_obj_end(j);
    }
    fv_json_obj_begin(j, "inverter");
    fv_json_int(j, "width", ic.width);
    fv_json_int(j, "params", (long)net->n_train);
    fv_json_int(j, "epochs", ic.epochs);
    fv_json_int(j, "batch", ic.batch);
    fv_json_num(j, "lr", ic.lr);
    fv_json_str(j, "loss", fv_pixel_loss_name(ic.loss));
    char dev[16];
    fv_json_str(j, "device", fv_device_name(ic.device, dev, sizeof dev));
    fv_json_bool(j, "remix_each_epoch", ic.remix);
    fv_json_float_array(j, "epoch_loss", ts.loss, (size_t)(ts.epochs < 64 ? ts.epochs : 64));
    fv_json_num(j, "train_seconds", ts.seconds);
    fv_json_num(j, "apply_seconds", t_apply);
    fv_json_obj_end(j);
    json_stats(j, "psnr_inverted_vs_original", psnr_inv, N);
    json_stats(j, "psnr_mixed_vs_original", psnr_mix, N);
    json_stats(j, "ssim_inverted_vs_original", ssim_inv, N);
    json_stats(j, "ssim_mixed_vs_original", ssim_mix, N);
    if (cfg->reassemble) {
        fv_json_obj_begin(j, "reassemble");
        fv_json_str(j, "window_map", "known (worst case)");
        fv_json_bool(j, "greedy", cfg->reasm.greedy);
        fv_json_int(j, "anneal_proposals", cfg->reasm.anneal);
        fv_json_num(j, "seconds", re_secs);
        fv_json_obj_end(j);
        json_stats(j, "psnr_reassembled_vs_original", psnr_re, N);
        json_stats(j, "ssim_reassembled_vs_original", ssim_re, N);
    }
    fprintf(stderr, "inverter (%s): %d %s images, attacker %d %s images: median PSNR %.2f dB inverted vs %.2f dB defended; median SSIM %.3f vs %.3f",
            fv_inverter_defence_name(ic.def.kind), N, cfg->src.dataset, cfg->attacker_images, aname, median_of(psnr_inv, N), median_of(psnr_mix, N),
            median_of(ssim_inv, N), median_of(ssim_mix, N));
    if (cfg->reassemble)
        fprintf(stderr, "; reassembled %.2f dB, SSIM %.3f", median_of(psnr_re, N), median_of(ssim_re, N));
    fprintf(stderr, "\n");
    {
        int cols = N < 16 ? N : 16;
        const float *rows[4] = {fo, fm, fi, fr};
        if (write_grid(cfg->out_dir, "inverter_grid.png", rows, cfg->reassemble ? 4 : 3, cols, te.c, te.h, te.w, e)) goto out;
        if (cfg->out_dir)
            fv_json_str(j, "grid", cfg->reassemble ? "inverter_grid.png (rows: original, mixed, inverted, reassembled)"
                                                   : "inverter_grid.png (rows: original, defended, inverted)");
    }
    rc = 0;
out:
    fv_net_destroy(&net);
    fv_vmix_work_destroy(&work);
    free(v);
    free(fo);
    free(mix);
    fv_dataset_free(&vic);
    fv_dataset_free(&vdef);
    fv_dataset_free(&own);
    fv_dataset_free(&te);
    return rc;
}

/* ---- the federation behind GAN and MIA runs ---- */

fv_fl_setup fv_fl_setup_defaults(void) {
    fv_fl_setup s;
    memset(&s, 0, sizeof s);
    s.src.dataset = "mnist";
    s.fl_images = 12000;
    s.heldout_from = 30000;
    s.oracle_from = 40000;
    s.fl = fv_fedsim_defaults();
    s.victim = 0;
    return s;
}

static int check_setup(const fv_fl_setup *s, const fv_dataset *tr, fv_err *e) {
    if (s->fl_images < s->fl.clients || s->fl_images > s->heldout_from || s->heldout_from >= s->oracle_from ||
        s->oracle_from >= tr->n)
        return fv_err_set(e, "data layout: need clients' images [0, %d) <= held-out [%d, %d) < oracle [%d, %d) "
                             "within the %d training images",
                          s->fl_images, s->heldout_from, s->oracle_from, s->oracle_from, tr->n, tr->n);
    if (s->victim < 0 || s->victim >= s->fl.clients)
        return fv_err_set(e, "victim client %d out of range [0, %d)", s->victim, s->fl.clients);
    if (s->fl.vmix && fv_vmix_params_check(&s->fl.vp, tr->h, tr->w, e)) return fv_err_prefix(e, "VisualMixer: ");
    return 0;
}

static void fl_json(fv_json *j, const fv_fl_setup *s, const fv_fedsim *sim, const fv_dataset *te, fv_norm norm) {
    fv_json_obj_begin(j, "federation");
    fv_json_str(j, "simulator", "attacks/fedsim (in-process FedAvg)");
    fv_json_str(j, "model", s->fl.model);
    fv_json_int(j, "clients", s->fl.clients);
    fv_json_int(j, "rounds", s->fl.rounds);
    fv_json_int(j, "local_epochs", s->fl.local_epochs);
    fv_json_int(j, "batch", s->fl.batch);
    fv_json_str(j, "optimizer", fv_opt_kind_name(s->fl.opt.kind));
    fv_json_num(j, "lr", s->fl.opt.lr);
    fv_json_int(j, "images", s->fl_images);
    fv_json_int(j, "victim", s->victim);
    fv_json_int(j, "victim_images", fv_partition_size(&sim->part, s->victim));
    fv_json_bool(j, "visualmixer", s->fl.vmix);
    if (s->fl.vmix) vmix_json(j, &s->fl.vp);
    int nt = te->n < 2000 ? te->n : 2000;
    fv_eval_stats ev = fv_evaluate(sim->global, te, NULL, nt, 256, norm);
    fv_json_num(j, "global_test_accuracy_original", ev.accuracy);
    if (s->fl.vmix) {
        /* as the model is used: test images mixed with fresh keys */
        uint8_t key[FV_VMIX_KEY_BYTES];
        fv_dataset tm;
        fv_err e2 = {{0}};
        fv_fedsim_client_key(key, s->fl.seed ^ 0x74657374ULL, 0);
        if (fv_fedsim_mix(&tm, te, NULL, nt, key, FV_VMIX_DOMAIN_TEST, &s->fl.vp, &e2) == 0) {
            fv_json_num(j, "global_test_accuracy_mixed", fv_evaluate(sim->global, &tm, NULL, nt, 256, norm).accuracy);
            fv_dataset_free(&tm);
        }
    }
    fv_json_num(j, "seconds", sim->seconds);
    fv_json_obj_end(j);
}

/* ---- GAN ---- */

fv_gan_attack_cfg fv_gan_attack_defaults(void) {
    fv_gan_attack_cfg c;
    memset(&c, 0, sizeof c);
    c.arch = fv_gen_arch_default();
    c.gan = fv_gan_cfg_default();
    c.gan.target = 3;
    c.samples = 64;
    c.refs = 200;
    c.oracle_model = "fedavg_cnn";
    c.oracle_epochs = 2;
    return c;
}

int fv_gan_attack(fv_json *j, fv_leakage *res, fv_gan *g, int g_trained, const fv_gan_stats *given, fv_net *D,
                  const fv_gan_attack_cfg *cfg, const fv_attack_data *ad, const char *out_dir, const char *prefix,
                  fv_err *e) {
    const fv_dataset *d = ad->data;
    fv_shape shape = {d->c, d->h, d->w};
    size_t isz = fv_shape_size(shape);
    int target = cfg->gan.target, rc = -1;
    if (cfg->samples < 1 || cfg->refs < 1) return fv_err_set(e, "gan: samples and refs must be >= 1");
    if (target < 0 || target >= d->classes)
        return fv_err_set(e, "gan: target class %d out of range [0, %d)", target, d->classes);
    if (ad->n_oracle < 1) return fv_err_set(e, "gan: no held-out images to train the oracle on");
    fv_net *oracle = NULL;
    float *smp = NULL, *vic = NULL, *vmx = NULL, *oth = NULL;
    /* the oracle */
    fv_oracle_cfg oc = fv_oracle_defaults();
    oc.model = cfg->oracle_model;
    oc.epochs = cfg->oracle_epochs;
    oc.data_tag = ad->oracle_tag ? ad->oracle_tag : "";
    int trained = 0;
    double t0 = fv_now();
    oracle = fv_oracle_get(cfg->oracle_cache, &oc, d, ad->oracle_idx, ad->n_oracle, ad->norm, &trained, e);
    if (!oracle) return -1;
    double oacc = NAN;
    if (ad->test) oacc = fv_evaluate(oracle, ad->test, NULL, ad->test->n < 2000 ? ad->test->n : 2000, 256, ad->norm).accuracy;
    fprintf(stderr, "gan: oracle %s (%s, %.1f s): test accuracy %.4f\n", oc.model, trained ? "trained" : "cached",
            fv_now() - t0, oacc);
    /* the attack */
    fv_gan_cfg gc = cfg->gan;
    gc.norm = ad->norm;
    fv_gan_stats gs;
    memset(&gs, 0, sizeof gs);
    if (g_trained) {
        if (given) gs = *given;
    } else if (fv_gan_train(g, D, &gc, &gs, e)) {
        goto out;
    }
    smp = fv_malloc(sizeof(float) * isz * cfg->samples);
    fv_gan_sample(g, smp, cfg->samples, cfg->gan.seed + 99);
    /* the victim's class-c images (original and as trained on), and as many never held */
    int nv = 0, nh = 0;
    vic = fv_malloc(sizeof(float) * isz * cfg->refs);
    vmx = fv_malloc(sizeof(float) * isz * cfg->refs);
    for (int i = 0; i < ad->n_victim && nv < cfg->refs; i++) {
        int k = ad->victim_idx[i];
        if (d->y[k] != target) continue;
        to_float(vic + (size_t)nv * isz, d->x + (size_t)k * isz, isz);
        if (ad->victim_mixed) to_float(vmx + (size_t)nv * isz, ad->victim_mixed->x + (size_t)k * isz, isz);
        nv++;
    }
    if (nv == 0) {
        fv_err_set(e, "gan: the victim holds no image of class %d", target);
        goto out;
    }
    oth = fv_malloc(sizeof(float) * isz * nv);
    for (int i = 0; i < ad->n_never && nh < nv; i++) {
        int k = ad->never_idx[i];
        if (d->y[k] == target) to_float(oth + (size_t)nh++ * isz, d->x + (size_t)k * isz, isz);
    }
    fv_leakage L;
    if (fv_leakage_eval(&L, smp, cfg->samples, shape, oracle, ad->norm, target, vic, nv, ad->victim_mixed ? vmx : NULL,
                        oth, nh, e))
        goto out;
    char desc[512];
    fv_gan_describe(g, &gc, desc, sizeof desc);
    fprintf(stderr, "gan: %s\n", desc);
    fprintf(stderr, "gan: class %d: recognisability %.3f, median best SSIM %.3f, resemblance %+.4f\n", target,
            L.recognisability, L.ssim_best_median, L.resemblance);
    if (res) *res = L;
    fv_json_int(j, "target_class", target);
    fv_json_str(j, "generator", desc);
    fv_json_obj_begin(j, "priors");
    fv_json_num(j, "tv", gc.tv);
    fv_json_num(j, "norm", gc.l2);
    fv_json_num(j, "diversity", gc.diversity);
    fv_json_int(j, "jitter", gc.jitter);
    fv_json_obj_end(j);
    fv_json_obj_begin(j, "discriminator");
    fv_json_num(j, "ce_final", gs.ce);
    fv_json_num(j, "p_target", gs.p_target);
    fv_json_num(j, "hits", gs.d_hits);
    fv_json_num(j, "seconds", gs.seconds);
    fv_json_obj_end(j);
    fv_json_obj_begin(j, "oracle");
    fv_json_str(j, "model", oc.model);
    fv_json_str(j, "data", oc.data_tag);
    fv_json_num(j, "test_accuracy", oacc);
    fv_json_obj_end(j);
    fv_json_obj_begin(j, "leakage");
    fv_leakage_json(j, &L);
    fv_json_int(j, "victim_originals", nv);
    fv_json_int(j, "never_held_originals", nh);
    fv_json_obj_end(j);
    if (out_dir) {
        char name[256];
        int cols = 16 < cfg->samples ? 16 : cfg->samples;
        if (cols > nv) cols = nv;
        const float *rows[3] = {smp, vic, vmx};
        snprintf(name, sizeof name, "%sgan_grid.png", prefix ? prefix : "");
        if (write_grid(out_dir, name, rows, ad->victim_mixed ? 3 : 2, cols, d->c, d->h, d->w, e)) goto out;
        fv_json_str(j, "grid", ad->victim_mixed ? "rows: generated, victim originals, victim mixed"
                                                : "rows: generated, victim originals");
        int all = cfg->samples < 64 ? cfg->samples : 64, acol = all < 8 ? all : 8;
        const float *srow[1] = {smp};
        snprintf(name, sizeof name, "%sgan_samples.png", prefix ? prefix : "");
        if (write_grid(out_dir, name, srow, 1, all - all % acol, d->c, d->h, d->w, e)) goto out;
    }
    rc = 0;
out:
    free(smp);
    free(vic);
    free(vmx);
    free(oth);
    fv_net_destroy(&oracle);
    return rc;
}

fv_gan_run_cfg fv_gan_run_defaults(void) {
    fv_gan_run_cfg c;
    memset(&c, 0, sizeof c);
    c.s = fv_fl_setup_defaults();
    c.a = fv_gan_attack_defaults();
    c.active_steps = 100;
    return c;
}

typedef struct {
    const fv_gan_run_cfg *cfg;
    fv_gan *g;
    const fv_dataset *own;   /* the attacker's images */
    const fv_partition *part;
    int attacker;
    fv_norm norm;
    fv_gan_stats last;
} active_ctx;

static int active_hook(void *vctx, int round, int client, fv_net *net, fv_err *e) {
    active_ctx *a = vctx;
    if (client != a->attacker) return 0;
    fv_gan_cfg gc = a->cfg->a.gan;
    gc.steps = a->cfg->active_steps;
    gc.norm = a->norm;
    gc.seed = a->cfg->a.gan.seed + 7u * (uint64_t)round;
    fv_gan_active_cfg ac;
    memset(&ac, 0, sizeof ac);
    ac.fake_class = (int)fv_shape_size(fv_net_output_shape(net)) - 1;
    ac.n_fake = fv_partition_size(a->part, client);
    ac.epochs = a->cfg->s.fl.local_epochs;
    ac.batch = a->cfg->s.fl.batch;
    ac.lr = 0.05f;
    ac.norm = a->norm;
    ac.seed = gc.seed;
    /* its own images without the target class: the attacker holds none of the victim's class */
    int n = fv_partition_size(a->part, client), m = 0;
    const int *ix = fv_partition_indices(a->part, client);
    int *own = fv_malloc(sizeof(int) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        if (a->own->y[ix[i]] != a->cfg->a.gan.target) own[m++] = ix[i];
    int rc = fv_gan_active_round(a->g, net, a->own, own, m, &gc, &ac, &a->last, e);
    free(own);
    return rc < 0 ? -1 : 1;
}

/* The federation's training and test splits; on failure neither is left allocated. */
static int load_splits(const fv_fl_setup *s, fv_dataset *tr, fv_dataset *te, fv_err *e) {
    if (fv_dataset_load(s->src.dataset, s->src.data_dir, 1, tr, e) == 0 &&
        fv_dataset_load(s->src.dataset, s->src.data_dir, 0, te, e) == 0)
        return 0;
    fv_dataset_free(tr);
    return -1;
}

int fv_gan_run(const fv_gan_run_cfg *cfg, fv_json *j, fv_err *e) {
    const fv_fl_setup *s = &cfg->s;
    fv_dataset tr = {0}, te = {0};
    if (load_splits(s, &tr, &te, e)) return -1;
    int rc = -1;
    fv_fedsim sim;
    memset(&sim, 0, sizeof sim);
    fv_gan *g = NULL;
    fv_net *D = NULL;
    int *never = NULL, *oidx = NULL;
    if (check_setup(s, &tr, e)) goto out;
    if (cfg->active && cfg->all_targets) {
        fv_err_set(e, "gan: the active attacker aims at one class per federation; drop --all-targets");
        goto out;
    }
    if (cfg->active && s->victim == s->fl.clients - 1) {
        fv_err_set(e, "gan: in the active attack the last client is the attacker; choose another victim");
        goto out;
    }
    fv_norm norm = fv_norm_for(s->src.dataset);
    fv_shape shape = {tr.c, tr.h, tr.w};
    g = fv_gan_new(shape, &cfg->a.arch, cfg->a.gan.seed, e);
    if (!g) goto out;
    fv_fedsim_cfg fl = s->fl;
    fl.norm = norm;
    active_ctx actx;
    memset(&actx, 0, sizeof actx);
    if (cfg->active) {
        actx.cfg = cfg;
        actx.g = g;
        actx.own = &tr; /* the attacker trains on original images (it runs no VisualMixer) */
        actx.part = &sim.part;
        actx.attacker = s->fl.clients - 1;
        actx.norm = norm;
        fl.extra_classes = 1;
        fl.client_hook = active_hook;
        fl.hook_ctx = &actx;
    }
    if (fv_fedsim_run(&sim, &fl, &tr, s->fl_images, e)) goto out;
    fprintf(stderr, "gan: federation done in %.1f s\n", sim.seconds);
    /* the discriminator: the victim's upload of the last round */
    D = fv_model_new(s->fl.model, shape, tr.classes + fl.extra_classes, 1, e);
    if (!D) goto out;
    memcpy(D->params, sim.uploads + (size_t)s->victim * sim.n_params, sizeof(float) * sim.n_params);
    int nn = s->oracle_from - s->heldout_from, no = tr.n - s->oracle_from;
    never = fv_malloc(sizeof(int) * (size_t)nn);
    oidx = fv_malloc(sizeof(int) * (size_t)no);
    for (int i = 0; i < nn; i++) never[i] = s->heldout_from + i;
    for (int i = 0; i < no; i++) oidx[i] = s->oracle_from + i;
    char tag[128];
    snprintf(tag, sizeof tag, "%s-train[%d:%d]", s->src.dataset, s->oracle_from, tr.n);
    fv_attack_data ad = {&tr, fv_partition_indices(&sim.part, s->victim), fv_partition_size(&sim.part, s->victim),
                         s->fl.vmix ? &sim.mixed : NULL, never, nn, oidx, no, tag, &te, norm};
    fv_json_str(j, "attack", cfg->active ? "gan_active" : "gan_passive");
    fv_json_str(j, "dataset", s->src.dataset);
    fl_json(j, s, &sim, &te, norm);
    fv_json_str(j, "discriminator_source", cfg->active ? "the generator trained each round against the shared model"
                                                        : "the victim's upload of the last round");
    if (!cfg->all_targets) {
        if (fv_gan_attack(j, NULL, g, cfg->active, &actx.last, D, &cfg->a, &ad, s->out_dir, "", e)) goto out;
    } else {
        /* every class in turn, a fresh generator each, on the same federation and oracle */
        double *v = fv_malloc(sizeof(double) * 4 * tr.classes);
        double *rec = v, *ssim = v + tr.classes, *res = v + 2 * tr.classes, *mix = v + 3 * tr.classes;
        int ok = 1;
        fv_json_obj_begin(j, "targets");
        for (int t = 0; t < tr.classes && ok; t++) {
            fv_gan_attack_cfg a = cfg->a;
            a.gan.target = t;
            fv_gan_destroy(&g);
            g = fv_gan_new(shape, &a.arch, a.gan.seed + (uint64_t)t, e);
            char key[32], prefix[32];
            snprintf(key, sizeof key, "class_%d", t);
            snprintf(prefix, sizeof prefix, "class%d_", t);
            fv_leakage L;
            fv_json_obj_begin(j, key);
            ok = g && fv_gan_attack(j, &L, g, 0, NULL, D, &a, &ad, s->out_dir, prefix, e) == 0;
            fv_json_obj_end(j);
            if (ok) {
                rec[t] = L.recognisability;
                ssim[t] = L.ssim_best_median;
                res[t] = L.resemblance;
                mix[t] = L.ssim_mixed_median;
            }
        }
        fv_json_obj_end(j);
        if (ok) {
            fv_json_obj_begin(j, "over_classes");
            json_stats(j, "recognisability", rec, tr.classes);
            json_stats(j, "ssim_best_median", ssim, tr.classes);
            json_stats(j, "victim_resemblance", res, tr.classes);
            if (s->fl.vmix) json_stats(j, "ssim_best_mixed_median", mix, tr.classes);
            fv_json_obj_end(j);
        }
        free(v);
        if (!ok) goto out;
    }
    rc = 0;
out:
    free(never);
    free(oidx);
    fv_gan_destroy(&g);
    fv_net_destroy(&D);
    fv_fedsim_free(&sim);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    return rc;
}

/* ---- membership inference ---- */

/* The shadow recipe: central training of the target's architecture with the given optimizer for
 * `epochs` on the attacker's images (as its shadows see them). */
typedef struct {
    const fv_mia_attack_cfg *cfg;
    const fv_dataset *data;
    fv_norm norm;
} shadow_ctx;

static fv_net *shadow_train(void *vctx, const int *idx, int n, uint64_t seed, fv_err *e) {
    shadow_ctx *c = vctx;
    fv_net *net = fv_model_new(c->cfg->model, (fv_shape){c->data->c, c->data->h, c->data->w}, c->data->classes, seed, e);
    if (!net) return NULL;
    fv_opt *opt = fv_opt_new(&c->cfg->opt, net->n_train);
    fv_rng rng;
    fv_rng_seed2(&rng, seed, 0x736864);
    fv_net_seed_dropout(net, seed);
    for (int ep = 0; ep < c->cfg->epochs; ep++)
        fv_train_epoch(net, opt, c->data, idx, n, c->cfg->batch, c->norm, &rng, 0, NULL, NULL, NULL, NULL);
    fv_opt_destroy(&opt);
    return net;
}

/* Scores of one target on one query set, added to j under key. */
static int mia_target_json(fv_json *j, const char *key, fv_net *target, const double *mu, const double *sd,
                           const fv_dataset *q, const int *qidx, const uint8_t *member, int nq, fv_norm norm,
                           fv_err *e) {
    double *sc = fv_malloc(sizeof(double) * (size_t)nq);
    fv_mia_figures f;
    fv_json_obj_begin(j, key);
    fv_mia_loss_scores(sc, target, q, qidx, nq, norm);
    if (fv_mia_evaluate(&f, sc, member, nq, e)) {
        free(sc);
        return -1;
    }
    fv_json_obj_begin(j, "loss_threshold");
    fv_json_num(j, "auc", f.auc);
    fv_json_num(j, "tpr_at_1pct_fpr", f.tpr_1pct);
    fv_json_num(j, "tpr_at_0.1pct_fpr", f.tpr_01pct);
    fv_json_num(j, "balanced_accuracy", f.balanced_acc);
    fv_json_num_array(j, "roc_fpr", f.roc_fpr, (size_t)f.roc_n);
    fv_json_num_array(j, "roc_tpr", f.roc_tpr, (size_t)f.roc_n);
    fv_json_obj_end(j);
    double auc_loss = f.auc;
    fv_lira_scores(sc, target, mu, sd, q, qidx, nq, norm);
    if (fv_mia_evaluate(&f, sc, member, nq, e)) {
        free(sc);
        return -1;
    }
    fv_json_obj_begin(j, "lira_offline");
    fv_json_num(j, "auc", f.auc);
    fv_json_num(j, "tpr_at_1pct_fpr", f.tpr_1pct);
    fv_json_num(j, "tpr_at_0.1pct_fpr", f.tpr_01pct);
    fv_json_num(j, "balanced_accuracy", f.balanced_acc);
    fv_json_num_array(j, "roc_fpr", f.roc_fpr, (size_t)f.roc_n);
    fv_json_num_array(j, "roc_tpr", f.roc_tpr, (size_t)f.roc_n);
    fv_json_obj_end(j);
    fv_json_int(j, "members", f.members);
    fv_json_int(j, "nonmembers", f.nonmembers);
    fv_eval_stats ev = fv_evaluate(target, q, qidx, f.members, 256, norm);
    fv_eval_stats ev2 = fv_evaluate(target, q, qidx + f.members, f.nonmembers, 256, norm);
    fv_json_num(j, "accuracy_members", ev.accuracy);
    fv_json_num(j, "accuracy_nonmembers", ev2.accuracy);
    fv_json_obj_end(j);
    fprintf(stderr, "mia: %s: loss AUC %.4f, LiRA AUC %.4f, TPR@1%%FPR %.4f\n", key, auc_loss, f.auc, f.tpr_1pct);
    free(sc);
    return 0;
}

int fv_mia_attack(fv_json *j, fv_net *client, fv_net *global, const fv_mia_attack_cfg *cfg, const fv_dataset *data,
                  const int *member_idx, int n_member, const fv_dataset *test, const int *atk_idx, int n_atk,
                  fv_norm norm, fv_err *e) {
    int nm = cfg->queries < n_member ? cfg->queries : n_member, nn = cfg->queries < test->n ? cfg->queries : test->n;
    if (nm < 1 || nn < 1) return fv_err_set(e, "mia: no queries (%d members, %d non-members)", n_member, test->n);
    if (n_atk < 4) return fv_err_set(e, "mia: the attacker has %d images (need at least 4)", n_atk);
    if (cfg->epochs < 1 || cfg->batch < 1) return fv_err_set(e, "mia: shadow epochs and batch must be >= 1");
    int rc = -1, nq = nm + nn;
    size_t isz = (size_t)data->c * data->h * data->w;
    /* queries: members first, then non-members, in one data set */
    fv_dataset pool = {nq, data->c, data->h, data->w, data->classes, fv_malloc(isz * nq), fv_malloc((size_t)nq)};
    fv_dataset atk = {0}, atk_mixed = {0}, qfresh = {0};
    uint8_t *member = fv_malloc((size_t)nq);
    int *qidx = fv_malloc(sizeof(int) * (size_t)nq), *own = fv_malloc(sizeof(int) * (size_t)n_atk);
    double *mu = fv_malloc(sizeof(double) * (size_t)nq * 2), *sd = mu + nq;
    for (int i = 0; i < nq; i++) {
        const fv_dataset *d = i < nm ? data : test;
        int k = i < nm ? member_idx[i] : i - nm;
        memcpy(pool.x + (size_t)i * isz, d->x + (size_t)k * isz, isz);
        pool.y[i] = d->y[k];
        member[i] = i < nm;
        qidx[i] = i;
    }
    fv_fedsim_subset(&atk, data, atk_idx, n_atk);
    for (int i = 0; i < n_atk; i++) own[i] = i;
    shadow_ctx sc = {cfg, &atk, norm};
    if (cfg->vp) {
        uint8_t key[FV_VMIX_KEY_BYTES];
        fv_fedsim_client_key(key, cfg->seed ^ 0xa77ac4e5ULL, 0);
        if (fv_fedsim_mix(&atk_mixed, &atk, NULL, atk.n, key, FV_VMIX_DOMAIN_TRAIN, cfg->vp, e)) goto out;
        sc.data = &atk_mixed;
        /* queries mixed with fresh keys, as the model is used at inference */
        fv_fedsim_client_key(key, cfg->seed ^ 0x71657279ULL, 0);
        if (fv_fedsim_mix(&qfresh, &pool, NULL, pool.n, key, FV_VMIX_DOMAIN_TEST, cfg->vp, e)) goto out;
    }
    fv_json_obj_begin(j, "shadows");
    fv_json_int(j, "k", cfg->lira.k);
    fv_json_int(j, "attacker_images", n_atk);
    fv_json_str(j, "model", cfg->model);
    fv_json_int(j, "epochs", cfg->epochs);
    fv_json_str(j, "optimizer", fv_opt_kind_name(cfg->opt.kind));
    fv_json_num(j, "lr", cfg->opt.lr);
    fv_json_str(j, "data", cfg->vp ? "halves of the attacker's images, mixed with its own key"
                                   : "halves of the attacker's images");
    fv_json_str(j, "sd", (cfg->lira.per_example_sd < 0 ? cfg->lira.k >= 16 : cfg->lira.per_example_sd) ? "per example"
                                                                                                     : "pooled");
    fv_json_obj_end(j);
    for (int version = 0; version < (cfg->vp && cfg->query_mixed ? 2 : 1); version++) {
        const fv_dataset *q = version ? &qfresh : &pool;
        double sacc = 0;
        if (fv_lira_fit(mu, sd, &sacc, &cfg->lira, shadow_train, &sc, own, n_atk, q, qidx, nq, norm, e)) goto out;
        fv_json_obj_begin(j, version ? "queries_mixed_fresh_key" : "queries_original");
        fv_json_num(j, "shadow_query_accuracy", sacc);
        if (mia_target_json(j, "client_model", client, mu, sd, q, qidx, member, nq, norm, e)) goto out;
        if (global && mia_target_json(j, "global_model", global, mu, sd, q, qidx, member, nq, norm, e)) goto out;
        fv_json_obj_end(j);
    }
    rc = 0;
out:
    free(mu);
    free(qidx);
    free(own);
    free(member);
    fv_dataset_free(&pool);
    fv_dataset_free(&atk);
    fv_dataset_free(&atk_mixed);
    fv_dataset_free(&qfresh);
    return rc;
}

fv_mia_run_cfg fv_mia_run_defaults(void) {
    fv_mia_run_cfg c;
    memset(&c, 0, sizeof c);
    c.s = fv_fl_setup_defaults();
    c.s.fl_images = 2500;
    c.s.fl.rounds = 5;
    c.s.fl.local_epochs = 2;
    c.lira = fv_lira_defaults();
    c.attacker_images = 2000;
    c.queries = 500;
    c.query_mixed = 1;
    return c;
}

int fv_mia_run(const fv_mia_run_cfg *cfg, fv_json *j, fv_err *e) {
    const fv_fl_setup *s = &cfg->s;
    fv_dataset tr = {0}, te = {0};
    if (load_splits(s, &tr, &te, e)) return -1;
    int rc = -1;
    fv_fedsim sim;
    memset(&sim, 0, sizeof sim);
    fv_net *victim = NULL;
    int *atk = NULL;
    if (check_setup(s, &tr, e)) goto out;
    if (cfg->attacker_images < 4 || s->heldout_from + cfg->attacker_images > s->oracle_from) {
        fv_err_set(e, "mia: %d attacker images do not fit the held-out range [%d, %d)", cfg->attacker_images,
                   s->heldout_from, s->oracle_from);
        goto out;
    }
    fv_norm norm = fv_norm_for(s->src.dataset);
    fv_fedsim_cfg fl = s->fl;
    fl.norm = norm;
    if (fv_fedsim_run(&sim, &fl, &tr, s->fl_images, e)) goto out;
    fprintf(stderr, "mia: federation done in %.1f s\n", sim.seconds);
    victim = fv_model_new(s->fl.model, (fv_shape){tr.c, tr.h, tr.w}, tr.classes, 1, e);
    if (!victim) goto out;
    memcpy(victim->params, sim.uploads + (size_t)s->victim * sim.n_params, sizeof(float) * sim.n_params);
    atk = fv_malloc(sizeof(int) * (size_t)cfg->attacker_images);
    for (int i = 0; i < cfg->attacker_images; i++) atk[i] = s->heldout_from + i;
    fv_mia_attack_cfg mc;
    memset(&mc, 0, sizeof mc);
    mc.model = s->fl.model;
    mc.opt = s->fl.opt;
    mc.epochs = s->fl.rounds * s->fl.local_epochs;
    mc.batch = s->fl.batch;
    mc.lira = cfg->lira;
    mc.queries = cfg->queries;
    mc.query_mixed = cfg->query_mixed;
    mc.vp = s->fl.vmix ? &s->fl.vp : NULL;
    mc.seed = s->fl.seed;
    fv_json_str(j, "attack", "membership_inference");
    fv_json_str(j, "dataset", s->src.dataset);
    fl_json(j, s, &sim, &te, norm);
    fv_json_str(j, "members", "the victim client's images (members of its model and of the global model)");
    if (fv_mia_attack(j, victim, sim.global, &mc, &tr, fv_partition_indices(&sim.part, s->victim),
                      fv_partition_size(&sim.part, s->victim), &te, atk, cfg->attacker_images, norm, e))
        goto out;
    rc = 0;
out:
    free(atk);
    fv_net_destroy(&victim);
    fv_fedsim_free(&sim);
    fv_dataset_free(&tr);
    fv_dataset_free(&te);
    return rc;
}
