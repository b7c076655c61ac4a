/* vmix_cli.c: see vmix_cli.h. */
#include "vmix_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/png_io.h"

int fv_vmixcli_load_pngs(fv_dataset *out, const char *const *pngs, int npng, fv_err *e) {
    memset(out, 0, sizeof *out);
    if (npng < 1) return fv_err_set(e, "no input images given");
    for (int i = 0; i < npng; i++) {
        uint8_t *pix = NULL;
        int w, h, c;
        if (fv_png_read(pngs[i], &pix, &w, &h, &c, e) != 0) {
            fv_dataset_free(out);
            return -1;
        }
        if (w < 1 || h < 1) {
            free(pix);
            fv_dataset_free(out);
            return fv_err_set(e, "%s: empty image (%d x %d)", pngs[i], w, h);
        }
        if (i == 0) {
            out->c = c;
            out->h = h;
            out->w = w;
            out->classes = 1;
            out->x = fv_malloc((size_t)npng * c * h * w);
            out->y = fv_calloc((size_t)npng, 1);
        } else if (c != out->c || h != out->h || w != out->w) {
            free(pix);
            int c0 = out->c, h0 = out->h, w0 = out->w;
            fv_dataset_free(out);
            return fv_err_set(e, "%s is %dx%dx%d (CxHxW) but %s is %dx%dx%d: all images must share one shape",
                              pngs[i], c, h, w, pngs[0], c0, h0, w0);
        }
        uint8_t *dst = out->x + (size_t)i * c * h * w;
        for (int ch = 0; ch < c; ch++)
            for (long k = 0; k < (long)h * w; k++) dst[(long)ch * h * w + k] = pix[k * c + ch];
        free(pix);
        out->n = i + 1;
    }
    return 0;
}

int fv_vmixcli_load_dataset(fv_dataset *out, const char *name, const char *dir, int train, int limit,
                            fv_err *e) {
    if (fv_dataset_load(name, dir, train, out, e) != 0) return -1;
    if (limit > 0 && limit < out->n) fv_dataset_truncate(out, limit);
    if (out->n < 1 || out->h < 1 || out->w < 1) {
        fv_dataset_free(out);
        return fv_err_set(e, "data set %s (%s split) holds no images", name, train ? "train" : "test");
    }
    return 0;
}

int fv_vmixcli_parse_shape(const char *s, int *c, int *h, int *w, fv_err *e) {
    int a, b, d;
    char extra;
    if (sscanf(s, "%dx%dx%d%c", &a, &b, &d, &extra) == 3 && a >= 1 && a <= 4 && b >= 1 && d >= 1 &&
        b <= 65535 && d <= 65535) {
        *c = a;
        *h = b;
        *w = d;
        return 0;
    }
    if (sscanf(s, "%dx%d%c", &b, &d, &extra) == 2 && b >= 1 && d >= 1 && b <= 65535 && d <= 65535) {
        *c = 1;
        *h = b;
        *w = d;
        return 0;
    }
    return fv_err_set(e, "--shape '%s' is not CxHxW or HxW with positive sizes (e.g. 1x28x28, 3x32x32)", s);
}

int fv_vmixcli_bounds_compute(fv_vmixcli_bounds *b, const fv_vmixcli_bcfg *cfg, int h, int w, fv_err *e) {
    memset(b, 0, sizeof *b);
    if (cfg->ws_min > 0) {
        b->ws_min = cfg->ws_min;
    } else {
        if (!(cfg->target > 0.0)) return fv_err_set(e, "give --target-vfe V (the privacy target) or --ws-min");
        if (fv_vmix_ws_min(&b->ws_min_model, b->rows, &b->nrows, h, w, cfg->block, cfg->unit, cfg->lambda,
                           cfg->target, cfg->alpha, e) != 0)
            return -1;
        b->ws_min = b->ws_min_model;
    }
    if (cfg->ws_max > 0) {
        b->ws_max = cfg->ws_max;
    } else {
        if (cfg->d_max >= 0.0) {
            if (fv_vmix_ws_max(&b->ws_max_model, b->dp, &b->ndp, h, w, cfg->d_max, &cfg->dp, e) != 0) return -1;
            b->d_max = cfg->d_max;
        } else {
            if (fv_vmix_ws_max_rel(&b->ws_max_model, &b->d_max, b->dp, &b->ndp, h, w, cfg->d_rel, &cfg->dp, e) != 0)
                return fv_err_prefix(e, "--d-rel: ");
        }
        b->ws_max = b->ws_max_model;
    }
    if (b->ws_min > b->ws_max) {
        if (cfg->prefer && strcmp(cfg->prefer, "privacy") == 0) {
            b->ws_max = b->ws_min;
            b->resolved = "privacy";
        } else if (cfg->prefer && strcmp(cfg->prefer, "utility") == 0) {
            b->ws_min = b->ws_max;
            b->resolved = "utility";
        } else {
            return fv_err_set(e, "WS_min = %d (privacy: V* = %g) > WS_max = %d (utility: d* = %g): the targets "
                              "conflict; lower --target-vfe, raise --d-max or --d-rel, or choose with --prefer "
                              "privacy|utility",
                              b->ws_min, cfg->target, b->ws_max, b->d_max);
        }
    }
    if (b->ws_min < cfg->unit)
        return fv_err_set(e, "WS = %d is smaller than the shuffle unit %d", b->ws_min, cfg->unit);
    return 0;
}

void fv_vmixcli_bounds_print(FILE *f, const fv_vmixcli_bounds *b, const fv_vmixcli_bcfg *cfg) {
    if (b->nrows) {
        fprintf(f, "WS_min model (V* = %g, alpha = %g, block %d, unit %d):\n  %6s %8s %8s %10s %9s\n", cfg->target,
                cfg->alpha, cfg->block, cfg->unit, "WS", "k_in", "k_all", "quantile", "model_vfe");
        for (int i = 0; i < b->nrows; i++)
            fprintf(f, "  %6d %8ld %8ld %10.2f %9.4f%s\n", b->rows[i].ws, b->rows[i].k_in, b->rows[i].k_all,
                    b->rows[i].quantile, b->rows[i].model_vfe, b->rows[i].ws == b->ws_min_model ? "  <- WS_min" : "");
    }
    if (b->ndp) {
        char rel[64] = "";
        if (cfg->d_max < 0.0) snprintf(rel, sizeof rel, " = %g x d_p(whole image)", cfg->d_rel);
        fprintf(f, "WS_max Monte Carlo (d* = %.4g%s, conv %dx%d, pool %d, p = %g, %d trials, %s windows):\n  %6s %9s\n",
                b->d_max, rel, cfg->dp.kernel, cfg->dp.kernel, cfg->dp.pool, cfg->dp.p, cfg->dp.trials,
                cfg->dp.images ? "image" : "iid normal", "WS", "d_p");
        for (int i = 0; i < b->ndp; i++)
            fprintf(f, "  %6d %9.4f%s\n", 1 << i, b->dp[i], (1 << i) == b->ws_max_model ? "  <- WS_max" : "");
    }
    fprintf(f, "WS_min = %d, WS_max = %d%s%s\n", b->ws_min, b->ws_max, b->resolved ? ", conflict resolved for " : "",
            b->resolved ? b->resolved : "");
}

void fv_vmixcli_bounds_json(fv_json *j, const fv_vmixcli_bounds *b, const fv_vmixcli_bcfg *cfg) {
    fv_json_obj_begin(j, "bounds");
    fv_json_int(j, "ws_min", b->ws_min);
    fv_json_int(j, "ws_max", b->ws_max);
    if (b->resolved) fv_json_str(j, "conflict_resolved_for", b->resolved);
    if (b->nrows) {
        fv_json_obj_begin(j, "ws_min_model");
        fv_json_num(j, "target_vfe", cfg->target);
        fv_json_num(j, "alpha", cfg->alpha);
        fv_json_int(j, "block", cfg->block);
        fv_json_int(j, "unit", cfg->unit);
        fv_json_num(j, "lambda", cfg->lambda);
        fv_json_int(j, "ws_min", b->ws_min_model);
        double ws[16], kin[16], kall[16], q[16], mv[16];
        for (int i = 0; i < b->nrows; i++) {
            ws[i] = b->rows[i].ws;
            kin[i] = (double)b->rows[i].k_in;
            kall[i] = (double)b->rows[i].k_all;
            q[i] = b->rows[i].quantile;
            mv[i] = b->rows[i].model_vfe;
        }
        fv_json_num_array(j, "ws", ws, (size_t)b->nrows);
        fv_json_num_array(j, "k", kin, (size_t)b->nrows);
        fv_json_num_array(j, "k_all", kall, (size_t)b->nrows);
        fv_json_num_array(j, "quantile", q, (size_t)b->nrows);
        fv_json_num_array(j, "model_vfe", mv, (size_t)b->nrows);
        fv_json_obj_end(j);
    }
    if (b->ndp) {
        fv_json_obj_begin(j, "ws_max_model");
        fv_json_num(j, "d_max", b->d_max);
        if (cfg->d_max < 0.0) fv_json_num(j, "d_rel", cfg->d_rel);
        fv_json_int(j, "kernel", cfg->dp.kernel);
        fv_json_int(j, "pool", cfg->dp.pool);
        fv_json_num(j, "p", cfg->dp.p);
        fv_json_int(j, "trials", cfg->dp.trials);
        fv_json_int(j, "seed", (int64_t)cfg->dp.seed);
        fv_json_str(j, "windows", cfg->dp.images ? "images" : "iid_normal");
        fv_json_int(j, "ws_max", b->ws_max_model);
        double ws[16];
        for (int i = 0; i < b->ndp; i++) ws[i] = 1 << i;
        fv_json_num_array(j, "ws", ws, (size_t)b->ndp);
        fv_json_num_array(j, "d_p", b->dp, (size_t)b->ndp);
        fv_json_obj_end(j);
    }
    fv_json_obj_end(j);
}

void fv_vmixcli_bcfg_default(fv_vmixcli_bcfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->target = FV_VMIX_DEFAULT_TARGET;
    cfg->alpha = 0.05;
    cfg->lambda = 1.0;
    cfg->block = 8;
    cfg->unit = 1;
    cfg->d_max = -1.0; /* not given: d_rel applies */
    cfg->d_rel = FV_VMIX_DEFAULT_DREL;
    fv_dp_cfg_default(&cfg->dp);
    cfg->dp_seed = (int)cfg->dp.seed;
    cfg->dp.threads = 0;
}

void fv_vmixcli_bound_flags(fv_flag *out, fv_vmixcli_bcfg *cfg) {
    const fv_flag f[FV_VMIXCLI_BOUND_FLAGS] = {
        {"target-vfe", FV_FLAG_FLOAT, &cfg->target, "privacy target V* (in units of lambda): sets WS_min", 1e-9, 1e9},
        {"alpha", FV_FLAG_FLOAT, &cfg->alpha, "V* must be reached with probability 1 - alpha (model)", 1e-9, 0.999999},
        {"d-max", FV_FLAG_FLOAT, &cfg->d_max, "utility limit d*, the largest accepted output deviation: sets WS_max (default: --d-rel)", 0, 1e9},
        {"d-rel", FV_FLAG_FLOAT, &cfg->d_rel, "d* relative to d_p of the whole image, used without --d-max (0.55: WS_max 4 on MNIST, Fashion-MNIST and Colored MNIST; docs/visualmixer.md)", 1e-6, 1},
        {"block", FV_FLAG_INT, &cfg->block, "VFE block size B", 1, 65535},
        {"unit", FV_FLAG_INT, &cfg->unit, "shuffle unit u x u (1: pixel level)", 1, 4096},
        {"lambda", FV_FLAG_FLOAT, &cfg->lambda, "VFE scale lambda", 1e-9, 1e9},
        {"kernel", FV_FLAG_INT, &cfg->dp.kernel, "WS_max model: convolution kernel CK", 1, 64},
        {"pool", FV_FLAG_INT, &cfg->dp.pool, "WS_max model: max-pool size PK (stride PK)", 1, 64},
        {"quantile", FV_FLAG_FLOAT, &cfg->dp.p, "WS_max model: quantile p of the output deviation", 1e-6, 0.999999},
        {"trials", FV_FLAG_INT, &cfg->dp.trials, "WS_max model: Monte Carlo trials per window size", 1, 10000000},
        {"seed", FV_FLAG_INT, &cfg->dp_seed, "WS_max model: Monte Carlo seed", 0, 2147483647},
        {"threads", FV_FLAG_INT, &cfg->dp.threads, "threads (0: all cores; results do not depend on it)", 0, 1024},
        {"prefer", FV_FLAG_STRING, &cfg->prefer, "who wins when WS_min > WS_max: privacy or utility (default: stop)", 0, 0},
    };
    memcpy(out, f, sizeof f);
}

int fv_vmixcli_bcfg_finish(fv_vmixcli_bcfg *cfg, fv_err *e) {
    if (cfg->prefer && strcmp(cfg->prefer, "privacy") != 0 && strcmp(cfg->prefer, "utility") != 0)
        return fv_err_set(e, "--prefer must be privacy or utility, not '%s'", cfg->prefer);
    cfg->dp.seed = (uint64_t)cfg->dp_seed;
    return 0;
}
