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

void fv_vmixcli_bounds_print(FILE *f, const fv_vmix_bounds *b, const fv_vmix_bounds_cfg *cfg) {
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
    int resolved = b->resolved != FV_VMIX_CONFLICT_ERROR;
    fprintf(f, "WS_min = %d, WS_max = %d%s%s\n", b->ws_min, b->ws_max, resolved ? ", conflict resolved for " : "",
            resolved ? fv_vmix_conflict_name(b->resolved) : "");
}

void fv_vmixcli_bounds_json(fv_json *j, const fv_vmix_bounds *b, const fv_vmix_bounds_cfg *cfg) {
    fv_json_obj_begin(j, "bounds");
    fv_json_int(j, "ws_min", b->ws_min);
    fv_json_int(j, "ws_max", b->ws_max);
    if (b->resolved != FV_VMIX_CONFLICT_ERROR) fv_json_str(j, "conflict_resolved_for", fv_vmix_conflict_name(b->resolved));
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
    fv_vmix_bounds_cfg_default(&cfg->b);
    cfg->b.words = (fv_vmix_bounds_words){"--target-vfe", "--d-max or --d-rel", "choose with --prefer privacy|utility",
                                          "--unit"};
    cfg->dp_seed = (int)cfg->b.dp.seed;
}

void fv_vmixcli_bound_flags(fv_flag *out, fv_vmixcli_bcfg *cfg) {
    fv_vmix_bounds_cfg *b = &cfg->b;
    const fv_flag f[FV_VMIXCLI_BOUND_FLAGS] = {
        {"target-vfe", FV_FLAG_FLOAT, &b->target, "privacy target V* (in units of lambda): sets WS_min", FV_VMIX_TARGET_LO, FV_VMIX_TARGET_HI},
        {"alpha", FV_FLAG_FLOAT, &b->alpha, "V* must be reached with probability 1 - alpha (model)", FV_VMIX_ALPHA_LO, FV_VMIX_ALPHA_HI},
        {"d-max", FV_FLAG_FLOAT, &b->d_max, "utility limit d*, the largest accepted output deviation: sets WS_max (default: --d-rel)", FV_VMIX_DMAX_LO, FV_VMIX_DMAX_HI},
        {"d-rel", FV_FLAG_FLOAT, &b->d_rel, "d* relative to d_p of the whole image, used without --d-max (the default selects WS_max 4 on MNIST, Fashion-MNIST and Colored MNIST; docs/visualmixer.md)", FV_VMIX_DREL_LO, FV_VMIX_DREL_HI},
        {"block", FV_FLAG_INT, &b->block, "VFE block size B", FV_VMIX_BLOCK_LO, FV_VMIX_BLOCK_HI},
        {"unit", FV_FLAG_INT, &b->unit, "shuffle unit u x u (1: pixel level), a power of two; a WS_min below it is an error", FV_VMIX_UNIT_LO, FV_VMIX_UNIT_HI},
        {"lambda", FV_FLAG_FLOAT, &b->lambda, "VFE scale lambda", FV_VMIX_LAMBDA_LO, FV_VMIX_LAMBDA_HI},
        {"kernel", FV_FLAG_INT, &b->dp.kernel, "WS_max model: convolution kernel CK", FV_VMIX_LAYER_LO, FV_VMIX_LAYER_HI},
        {"pool", FV_FLAG_INT, &b->dp.pool, "WS_max model: max-pool size PK (stride PK)", FV_VMIX_LAYER_LO, FV_VMIX_LAYER_HI},
        {"quantile", FV_FLAG_FLOAT, &b->dp.p, "WS_max model: quantile p of the output deviation", FV_VMIX_P_LO, FV_VMIX_P_HI},
        {"trials", FV_FLAG_INT, &b->dp.trials, "WS_max model: Monte Carlo trials per window size", FV_VMIX_TRIALS_LO, FV_VMIX_TRIALS_HI},
        {"seed", FV_FLAG_INT, &cfg->dp_seed, "WS_max model: Monte Carlo seed", 0, 2147483647},
        {"threads", FV_FLAG_INT, &b->dp.threads, "threads (0: all cores; results do not depend on it)", 0, 1024},
        {"prefer", FV_FLAG_STRING, &cfg->prefer, "who wins when WS_min > WS_max: privacy or utility (default: stop)", 0, 0},
    };
    memcpy(out, f, sizeof f);
}

int fv_vmixcli_bcfg_finish(fv_vmixcli_bcfg *cfg, fv_err *e) {
    cfg->b.conflict = FV_VMIX_CONFLICT_ERROR;
    if (cfg->prefer) {
        if (strcmp(cfg->prefer, fv_vmix_conflict_name(FV_VMIX_CONFLICT_PRIVACY)) == 0)
            cfg->b.conflict = FV_VMIX_CONFLICT_PRIVACY;
        else if (strcmp(cfg->prefer, fv_vmix_conflict_name(FV_VMIX_CONFLICT_UTILITY)) == 0)
            cfg->b.conflict = FV_VMIX_CONFLICT_UTILITY;
        else
            return fv_err_set(e, "--prefer must be privacy or utility, not '%s'", cfg->prefer);
    }
    cfg->b.dp.seed = (uint64_t)cfg->dp_seed;
    return 0;
}
