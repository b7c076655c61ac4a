/* cmd_mix.c: `fedvim mix`: VisualMixer a data set (or PNG files) with a client's secret key
 * (docs/visualmixer.md sections 2-4). Steps: load the key and the images; WS_min from
 * --target-vfe and WS_max from --d-max (or --ws-min / --ws-max); Algorithm 1 on every image in
 * parallel (optionally --verify); write the mixed set in MNIST's IDX layout
 * (train-images-idx3-ubyte / train-labels-idx1-ubyte, t10k-* for the test split; 3-channel
 * images as a 4-dim IDX n x c x h x w) so `fedvim train --data-dir OUT` reads it, plus
 * preview.png (originals next to their mixed versions). Test images use the key's test domain:
 * every inference image gets its own derived key. Not here: the algorithms (shared/vmix/vmix.h). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "flags.h"
#include "io/json.h"
#include "io/png_io.h"
#include "vmix/vmix.h"
#include "vmix_cli.h"
#include "vmix/vmix_key.h"

static int write_preview(const char *path, const fv_dataset *orig, const fv_dataset *mixed, int count, fv_err *e) {
    int n = count < orig->n ? count : orig->n;
    if (n < 1) return 0;
    const uint8_t **imgs = fv_malloc((size_t)2 * n * sizeof *imgs);
    long per = (long)orig->c * orig->h * orig->w;
    for (int i = 0; i < n; i++) {
        imgs[2 * i] = orig->x + i * per;
        imgs[2 * i + 1] = mixed->x + i * per;
    }
    int pairs = n < 8 ? n : 8;
    int rc = fv_png_grid(path, imgs, 2 * n, orig->c, orig->h, orig->w, 2 * pairs, e);
    free(imgs);
    return rc;
}

static void stats_json(fv_json *j, const char *key, const fv_vmix_stats *st, double secs) {
    fv_json_obj_begin(j, key);
    fv_json_int(j, "images", st->n);
    fv_json_num(j, "vfe_mean", st->vfe_mean);
    fv_json_num(j, "vfe_min", st->vfe_min);
    fv_json_num(j, "vfe_p5", st->vfe_p5);
    fv_json_int(j, "vfe_min_image", st->vfe_min_index);
    fv_json_int(j, "windows", st->windows);
    fv_json_obj_begin(j, "windows_by_size");
    for (int k = 0; k < FV_VMIX_SIZES; k++)
        if (st->by_size[k]) {
            char name[16];
            snprintf(name, sizeof name, "%d", 1 << k);
            fv_json_int(j, name, st->by_size[k]);
        }
    fv_json_obj_end(j);
    fv_json_int(j, "edge_windows", st->edge_windows);
    fv_json_int(j, "remixed", st->remixed);
    fv_json_num(j, "seconds", secs);
    fv_json_num(j, "images_per_second", st->n / (secs > 0 ? secs : 1e-9));
    fv_json_obj_end(j);
}

static void stats_print(const char *what, const fv_vmix_stats *st, double secs) {
    fprintf(stderr, "mix %s: %ld images, measured VFE mean %.4f, p5 %.4f, min %.4f (image %ld), %ld windows (", what, st->n,
            st->vfe_mean, st->vfe_p5, st->vfe_min, st->vfe_min_index, st->windows);
    for (int k = 0; k < FV_VMIX_SIZES; k++)
        if (st->by_size[k]) fprintf(stderr, "%dx%d: %ld, ", 1 << k, 1 << k, st->by_size[k]);
    fprintf(stderr, "edge: %ld), %ld re-mixed by --verify, %.2f s (%.0f images/s)\n", st->edge_windows, st->remixed,
            secs, st->n / (secs > 0 ? secs : 1e-9));
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int fv_cmd_mix(int argc, char **argv) {
    const char *dataset = NULL, *data_dir = NULL, *split = NULL, *key = NULL, *out = NULL;
    const char *mode_s = fv_vmix_mode_name(FV_VMIX_SPATIAL_CHROMATIC);
    int limit = 0, test_limit = 0, ws_min = 0, ws_max = 0, verify = 0, preview = 16, dp_limit = 10000, json = 0;
    fv_vmixcli_bcfg bc;
    fv_vmixcli_bcfg_default(&bc);
    const fv_flag own[] = {
        {"dataset", FV_FLAG_STRING, &dataset, "data set to mix: mnist, fashion, cmnist, cifar10 (or give PNG files)", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder with the data set's files (default: its standard place)", 0, 0},
        {"split", FV_FLAG_STRING, &split, "train, test or both (default: both; PNG files: train or test key domain, default train)", 0, 0},
        {"limit", FV_FLAG_INT, &limit, "only the first N training images (0: all)", 0, 100000000},
        {"test-limit", FV_FLAG_INT, &test_limit, "only the first N test images (0: all)", 0, 100000000},
        {"key", FV_FLAG_STRING, &key, "the client's secret key file (fedvim keygen) (required)", 0, 0},
        {"out", FV_FLAG_STRING, &out, "output folder (required)", 0, 0},
        {"ws-min", FV_FLAG_INT, &ws_min, "use this WS_min instead of the model's (power of two)", 0, 32768},
        {"ws-max", FV_FLAG_INT, &ws_max, "use this WS_max instead of the Monte Carlo's (power of two)", 0, 32768},
        {"mode", FV_FLAG_STRING, &mode_s, "spatial+chromatic or spatial", 0, 0},
        {"verify", FV_FLAG_BOOL, &verify, "guarantee measured VFE >= V* per image (re-mix with WS_min doubled) or fail", 0, 0},
        {"preview", FV_FLAG_INT, &preview, "images in preview.png (0: none)", 0, 1024},
        {"dp-limit", FV_FLAG_INT, &dp_limit, "WS_max model: draw windows from the first N images (0: all)", 0, 100000000},
    };
    enum { OWN = sizeof own / sizeof own[0] };
    fv_flag flags[OWN + FV_VMIXCLI_BOUND_FLAGS + 1];
    memcpy(flags, own, sizeof own);
    fv_vmixcli_bound_flags(flags + OWN, &bc);
    flags[OWN + FV_VMIXCLI_BOUND_FLAGS] = (fv_flag){"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0};
    enum { MAXPOS = 100000 };
    const char **pos = fv_malloc(MAXPOS * sizeof *pos);
    int npos = 0, ret = 1;
    fv_err e = {{0}};
    fv_dataset in[2] = {{0}}, mixed[2] = {{0}};
    int have[2] = {0, 0}; /* [0] train (or PNGs), [1] test */
    uint8_t secret[FV_VMIX_KEY_BYTES] = {0};
    int r = fv_flags_parse("mix", "--key FILE --out DIR [flags] (--dataset NAME | IMAGE.png ...)", flags,
                           sizeof flags / sizeof flags[0], argc, argv, pos, MAXPOS, &npos, &e);
    if (r != 0) {
        free(pos);
        if (r == 1) return 0;
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    const int unit = bc.b.unit, block = bc.b.block, threads = bc.b.dp.threads;
    const double lambda = bc.b.lambda, target = bc.b.target;
    fv_vmix_mode mode;
    const char *usage_err = NULL;
    char ubuf[FV_ERR_MAX + 16];
    if (!split) split = dataset ? "both" : "train";
    if ((dataset != NULL) == (npos > 0)) usage_err = "give either PNG files or --dataset NAME";
    else if (!key) usage_err = "--key FILE is required (create one with fedvim keygen --out FILE)";
    else if (!out) usage_err = "--out DIR is required";
    else if (strcmp(split, "train") && strcmp(split, "test") && (strcmp(split, "both") || !dataset))
        usage_err = dataset ? "--split must be train, test or both" : "--split must be train or test for PNG files";
    else if (fv_vmixcli_bcfg_finish(&bc, &e) != 0) {
        snprintf(ubuf, sizeof ubuf, "%s", e.msg);
        usage_err = ubuf;
    } else if (fv_vmix_mode_parse(mode_s, &mode, &e) != 0) {
        snprintf(ubuf, sizeof ubuf, "--mode: %s", e.msg);
        usage_err = ubuf;
    }
    if (usage_err) {
        fprintf(stderr, "fedvim mix: %s (see fedvim mix --help)\n", usage_err);
        free(pos);
        return 2;
    }
    if (fv_vmix_key_load(key, secret, &e) != 0) goto fail;
    if (dataset) {
        for (int s = 0; s < 2; s++) {
            if (strcmp(split, "both") && strcmp(split, s ? "test" : "train")) continue;
            if (fv_vmixcli_load_dataset(&in[s], dataset, data_dir, !s, s ? test_limit : limit, &e) != 0) goto fail;
            have[s] = 1;
        }
    } else {
        int s = strcmp(split, "test") == 0;
        if (fv_vmixcli_load_pngs(&in[s], pos, npos, &e) != 0) goto fail;
        have[s] = 1;
    }
    const fv_dataset *first = have[0] ? &in[0] : &in[1];
    /* bounds, once per client shard, from the client's own images */
    fv_dataset dpview = *first;
    if (dp_limit > 0 && dpview.n > dp_limit) dpview.n = dp_limit;
    bc.b.ws_min = ws_min;
    bc.b.ws_max = ws_max;
    bc.b.dp.images = &dpview;
    fv_vmix_bounds b;
    if (fv_vmix_bounds_compute(&b, &bc.b, first->h, first->w, &e) != 0) {
        if (b.nrows || b.ndp) fv_vmixcli_bounds_print(stderr, &b, &bc.b);
        goto fail;
    }
    fv_vmixcli_bounds_print(stderr, &b, &bc.b);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = b.ws_min;
    p.ws_max = b.ws_max;
    p.unit = unit;
    p.block = block;
    p.lambda = lambda;
    p.mode = mode;
    p.verify = verify;
    p.target_vfe = target;
    if (fv_mkdirs(out, &e) != 0) goto fail;
    fv_vmix_stats st[2];
    double secs[2] = {0, 0};
    for (int s = 0; s < 2; s++) {
        if (!have[s]) continue;
        double t0 = fv_now();
        if (fv_vmix_dataset(&mixed[s], NULL, &st[s], &in[s], secret, s ? FV_VMIX_DOMAIN_TEST : FV_VMIX_DOMAIN_TRAIN,
                            &p, threads, &e) != 0) {
            fv_err_prefix(&e, "%s%s: ", dataset ? (s ? "test split, " : "train split, ") : "",
                          dataset ? dataset : "PNG input");
            goto fail;
        }
        secs[s] = fv_now() - t0;
        stats_print(s ? "test" : "train", &st[s], secs[s]);
        if (dataset) {
            if (fv_mnist_write(out, !s, &mixed[s], &e) != 0) goto fail;
        } else {
            long per = (long)mixed[s].c * mixed[s].h * mixed[s].w, hw = (long)mixed[s].h * mixed[s].w;
            uint8_t *hwc = fv_malloc((size_t)per);
            for (int i = 0; i < mixed[s].n; i++) {
                const uint8_t *src = mixed[s].x + i * per;
                for (int ch = 0; ch < mixed[s].c; ch++)
                    for (long k = 0; k < hw; k++) hwc[k * mixed[s].c + ch] = src[ch * hw + k];
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", out, base_name(pos[i]));
                if (fv_png_write(path, hwc, mixed[s].w, mixed[s].h, mixed[s].c, &e) != 0) {
                    free(hwc);
                    goto fail;
                }
            }
            free(hwc);
        }
    }
    char prev[4096] = "";
    if (preview > 0) {
        snprintf(prev, sizeof prev, "%s/preview.png", out);
        int s = have[0] ? 0 : 1;
        if (write_preview(prev, &in[s], &mixed[s], preview, &e) != 0) goto fail;
    }
    fprintf(stderr, "mix: wrote %s%s%s\n", out, preview > 0 ? " and " : "", preview > 0 ? prev : "");
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "source", dataset ? dataset : "png");
        fv_json_str(&j, "out", out);
        fv_json_int(&j, "channels", first->c);
        fv_json_int(&j, "height", first->h);
        fv_json_int(&j, "width", first->w);
        fv_json_str(&j, "mode", fv_vmix_mode_name(mode));
        fv_json_int(&j, "unit", unit);
        fv_json_int(&j, "block", block);
        fv_json_bool(&j, "verify", verify);
        fv_json_num(&j, "target_vfe", target);
        fv_json_int(&j, "ws_min", b.ws_min);
        fv_json_int(&j, "ws_max", b.ws_max);
        fv_vmixcli_bounds_json(&j, &b, &bc.b);
        if (have[0]) stats_json(&j, dataset ? "train" : "images", &st[0], secs[0]);
        if (have[1]) stats_json(&j, dataset ? "test" : "images", &st[1], secs[1]);
        if (preview > 0) fv_json_str(&j, "preview", prev);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    ret = 0;
fail:
    if (ret) fprintf(stderr, "fedvim mix: %s\n", e.msg);
    sodium_memzero(secret, sizeof secret);
    for (int s = 0; s < 2; s++) {
        fv_dataset_free(&in[s]);
        fv_dataset_free(&mixed[s]);
    }
    free(pos);
    return ret;
}
