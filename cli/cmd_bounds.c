/* cmd_bounds.c: `fedvim bounds`: VisualMixer's window-size bounds for one image shape
 * (docs/visualmixer.md section 3): WS_min from the chi-square VFE model and WS_max from the
 * Monte Carlo output bias of conv + max-pool, with the figures behind each (k, quantile and
 * model VFE per WS; d_p per WS). Windows for d_p come from a data set when one is given (the
 * client's own images), i.i.d. normal pixels otherwise. Not here: mixing (`fedvim mix`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "flags.h"
#include "io/json.h"
#include "vmix_cli.h"

int fv_cmd_bounds(int argc, char **argv) {
    const char *shape = NULL, *dataset = NULL, *data_dir = NULL;
    int limit = 10000, json = 0;
    fv_vmixcli_bcfg cfg;
    fv_vmixcli_bcfg_default(&cfg);
    const fv_flag own[] = {
        {"shape", FV_FLAG_STRING, &shape, "image shape CxHxW (default: the data set's, else 1x28x28)", 0, 0},
        {"dataset", FV_FLAG_STRING, &dataset, "draw d_p windows from this data set (the client's images)", 0, 0},
        {"data-dir", FV_FLAG_STRING, &data_dir, "folder with the data set's files", 0, 0},
        {"limit", FV_FLAG_INT, &limit, "images of the data set to draw windows from (0: all)", 0, 100000000},
    };
    enum { OWN = sizeof own / sizeof own[0] };
    fv_flag flags[OWN + FV_VMIXCLI_BOUND_FLAGS + 1];
    memcpy(flags, own, sizeof own);
    fv_vmixcli_bound_flags(flags + OWN, &cfg);
    flags[OWN + FV_VMIXCLI_BOUND_FLAGS] = (fv_flag){"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0};
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("bounds", "[flags]", flags, sizeof flags / sizeof flags[0], argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (fv_vmixcli_bcfg_finish(&cfg, &e) != 0) {
        fprintf(stderr, "fedvim bounds: %s\n", e.msg);
        return 2;
    }
    int c = 1, h = 28, w = 28;
    if (shape && fv_vmixcli_parse_shape(shape, &c, &h, &w, &e) != 0) {
        fprintf(stderr, "fedvim bounds: %s\n", e.msg);
        return 2;
    }
    fv_dataset d = {0};
    if (dataset) {
        if (fv_vmixcli_load_dataset(&d, dataset, data_dir, 1, limit, &e) != 0) {
            fprintf(stderr, "fedvim bounds: %s\n", e.msg);
            return 1;
        }
        if (shape && (d.c != c || d.h != h || d.w != w)) {
            fprintf(stderr, "fedvim bounds: --shape %s does not match data set %s (%dx%dx%d)\n", shape, dataset, d.c,
                    d.h, d.w);
            fv_dataset_free(&d);
            return 2;
        }
        c = d.c;
        h = d.h;
        w = d.w;
    }
    cfg.b.dp.images = dataset ? &d : NULL;
    fv_vmix_bounds b;
    double t0 = fv_now();
    int rc = fv_vmix_bounds_compute(&b, &cfg.b, h, w, &e);
    double secs = fv_now() - t0;
    if (rc != 0) {
        /* still show what was computed: the figures behind the conflict */
        if (b.nrows || b.ndp) fv_vmixcli_bounds_print(stderr, &b, &cfg.b);
        fprintf(stderr, "fedvim bounds: %s\n", e.msg);
        fv_dataset_free(&d);
        return 1;
    }
    fv_vmixcli_bounds_print(stderr, &b, &cfg.b);
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_int(&j, "channels", c);
        fv_json_int(&j, "height", h);
        fv_json_int(&j, "width", w);
        if (dataset) fv_json_str(&j, "dataset", dataset);
        fv_json_int(&j, "ws_min", b.ws_min);
        fv_json_int(&j, "ws_max", b.ws_max);
        fv_vmixcli_bounds_json(&j, &b, &cfg.b);
        fv_json_num(&j, "seconds", secs);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    } else {
        printf("WS_min %d\nWS_max %d\n", b.ws_min, b.ws_max);
    }
    fv_dataset_free(&d);
    return 0;
}
