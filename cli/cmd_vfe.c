/* cmd_vfe.c: `fedvim vfe`: the Visual Feature Entropy (docs/visualmixer.md section 1) of PNG
 * files or of a data set split: one line per image, then the mean (and min, 5th percentile,
 * max). Not here: mixing (`fedvim mix`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "flags.h"
#include "io/json.h"
#include "vmix/vfe.h"
#include "vmix_cli.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int fv_cmd_vfe(int argc, char **argv) {
    const char *dataset = NULL, *data_dir = NULL, *split = "train";
    int limit = 0, block = 8, json = 0, quiet = 0;
    double lambda = 1.0;
    fv_flag flags[] = {
        {"dataset", FV_FLAG_STRING, &dataset, "data set instead of PNG files: mnist, fashion, cmnist, cifar10", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder with the data set's files (default: its standard place)", 0, 0},
        {"split", FV_FLAG_STRING, &split, "train or test", 0, 0},
        {"limit", FV_FLAG_INT, &limit, "only the first N images of the data set (0: all)", 0, 100000000},
        {"block", FV_FLAG_INT, &block, "VFE block size B", 1, 65535},
        {"lambda", FV_FLAG_FLOAT, &lambda, "VFE scale lambda", 1e-9, 1e9},
        {"quiet", FV_FLAG_BOOL, &quiet, "print the summary only, no per-image lines", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout (per-image values in \"vfe\")", 0, 0},
    };
    enum { MAXPOS = 100000 };
    const char **pos = fv_malloc(MAXPOS * sizeof *pos);
    int npos = 0;
    fv_err e = {{0}};
    int r = fv_flags_parse("vfe", "[flags] [IMAGE.png ...]", flags, sizeof flags / sizeof flags[0], argc, argv,
                           pos, MAXPOS, &npos, &e);
    if (r != 0) {
        free(pos);
        if (r == 1) return 0;
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if ((dataset != NULL) == (npos > 0)) {
        fprintf(stderr, "fedvim vfe: give either PNG files or --dataset NAME (see fedvim vfe --help)\n");
        free(pos);
        return 2;
    }
    if (strcmp(split, "train") != 0 && strcmp(split, "test") != 0) {
        fprintf(stderr, "fedvim vfe: --split must be train or test, not '%s'\n", split);
        free(pos);
        return 2;
    }
    fv_dataset d;
    int rc = dataset ? fv_vmixcli_load_dataset(&d, dataset, data_dir, strcmp(split, "train") == 0, limit, &e)
                     : fv_vmixcli_load_pngs(&d, pos, npos, &e);
    if (rc != 0) {
        fprintf(stderr, "fedvim vfe: %s\n", e.msg);
        free(pos);
        return 1;
    }
    double t0 = fv_now();
    double *v = fv_malloc((size_t)d.n * sizeof(double)), *s = fv_malloc((size_t)d.n * sizeof(double));
    long per = (long)d.c * d.h * d.w;
    for (long i = 0; i < d.n; i++) v[i] = fv_vfe_image_u8(d.x + i * per, d.c, d.h, d.w, block, lambda);
    double secs = fv_now() - t0, sum = 0.0;
    for (long i = 0; i < d.n; i++) sum += v[i];
    memcpy(s, v, (size_t)d.n * sizeof(double));
    qsort(s, (size_t)d.n, sizeof(double), cmp_d);
    double mean = sum / d.n, p5 = s[(long)(0.05 * (d.n - 1))];
    if (!quiet)
        for (long i = 0; i < d.n; i++) {
            if (dataset) printf("%ld\t%.6f\n", i, v[i]);
            else printf("%s\t%.6f\n", pos[i], v[i]);
        }
    fprintf(stderr, "vfe: %d images of %dx%dx%d, block %d: mean %.4f, min %.4f, p5 %.4f, max %.4f (%.3f s)\n", d.n,
            d.c, d.h, d.w, block, mean, s[0], p5, s[d.n - 1], secs);
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "source", dataset ? dataset : "png");
        if (dataset) fv_json_str(&j, "split", split);
        fv_json_int(&j, "images", d.n);
        fv_json_int(&j, "channels", d.c);
        fv_json_int(&j, "height", d.h);
        fv_json_int(&j, "width", d.w);
        fv_json_int(&j, "block", block);
        fv_json_num(&j, "lambda", lambda);
        fv_json_num(&j, "mean", mean);
        fv_json_num(&j, "min", s[0]);
        fv_json_num(&j, "p5", p5);
        fv_json_num(&j, "max", s[d.n - 1]);
        if (!quiet) fv_json_num_array(&j, "vfe", v, (size_t)d.n);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    free(v);
    free(s);
    free(pos);
    fv_dataset_free(&d);
    return 0;
}
