/* bench_mix.c: `fedvim bench mix`: VisualMixer throughput on one core (Algorithm 1 with the
 * per-image key derivation, the keyed shuffle and the measured VFE: everything fv_vmix_dataset
 * does per image) for 28x28x1, 32x32x3 and 224x224x3 synthetic images, next to a plain memcpy of
 * the same bytes. Synthetic images: a smooth gradient with a noisy square (so Algorithm 1 both
 * splits and keeps large windows). Rates are per core: images divided by the CPU time of the
 * benchmarking thread (CLOCK_THREAD_CPUTIME_ID), so a busy machine lowers them far less than it
 * lowers wall-clock rates (also reported). A benchmark, never a timed test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmds.h"
#include "flags.h"
#include "io/json.h"
#include "rng.h"
#include "vmix/vmix.h"

typedef struct {
    int c, h, w;
    double ips, memcpy_ips, mb_s, vfe, wall_ips;
    long windows;
} shape_result;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void synth(uint8_t *x, int c, int h, int w, fv_rng *r) {
    int ox = (int)fv_rng_below(r, (uint64_t)(w / 2 + 1)), oy = (int)fv_rng_below(r, (uint64_t)(h / 2 + 1));
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                int v = (xx * 255 / w + y * 128 / h + ch * 60) & 255;
                if (xx >= ox && xx < ox + w / 3 && y >= oy && y < oy + h / 3) v = (int)fv_rng_below(r, 256);
                x[((long)ch * h + y) * w + xx] = (uint8_t)v;
            }
}

static shape_result run_shape(int c, int h, int w, const fv_vmix_params *p, double seconds) {
    enum { NIMG = 32 };
    long per = (long)c * h * w;
    uint8_t *src = fv_malloc((size_t)NIMG * per), *dst = fv_malloc((size_t)per);
    fv_rng r;
    fv_rng_seed(&r, 7);
    for (int i = 0; i < NIMG; i++) synth(src + i * per, c, h, w, &r);
    uint8_t secret[FV_VMIX_KEY_BYTES], dk[FV_VMIX_KEY_BYTES], ik[FV_VMIX_KEY_BYTES];
    for (int i = 0; i < FV_VMIX_KEY_BYTES; i++) secret[i] = (uint8_t)i;
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_work *wk = fv_vmix_work_new();
    fv_vmix_result res;
    shape_result out = {c, h, w, 0, 0, 0, 0, 0, 0};
    /* warm-up, then timed rounds of NIMG images until `seconds` pass */
    for (int i = 0; i < NIMG; i++) {
        fv_vmix_image_key(ik, dk, (uint64_t)i);
        FV_ASSERT(fv_vmix_image(dst, &res, wk, src + i * per, c, h, w, ik, p, NULL) == 0);
    }
    long done = 0;
    double vsum = 0.0, t0 = cpu_now(), w0 = fv_now(), t;
    do {
        for (int i = 0; i < NIMG; i++, done++) {
            fv_vmix_image_key(ik, dk, (uint64_t)done);
            FV_ASSERT(fv_vmix_image(dst, &res, wk, src + i * per, c, h, w, ik, p, NULL) == 0);
            vsum += res.vfe;
            out.windows += res.nwindows;
        }
        t = cpu_now() - t0;
    } while (t < seconds);
    out.ips = done / t;
    out.wall_ips = done / (fv_now() - w0);
    out.vfe = vsum / done;
    out.windows /= done;
    out.mb_s = out.ips * per / 1e6;
    /* memcpy of the same bytes, image by image */
    long copies = 0;
    volatile uint8_t sink = 0;
    t0 = cpu_now();
    do {
        for (int k = 0; k < 64; k++)
            for (int i = 0; i < NIMG; i++, copies++) {
                memcpy(dst, src + i * per, (size_t)per);
                sink ^= dst[copies % per];
            }
        t = cpu_now() - t0;
    } while (t < seconds / 4);
    (void)sink;
    out.memcpy_ips = copies / t;
    fv_vmix_work_destroy(&wk);
    free(src);
    free(dst);
    return out;
}

int fv_bench_mix(int argc, char **argv) {
    int ws_min = 2, ws_max = 8, unit = 1, json = 0;
    double seconds = 1.0;
    const char *mode_s = "spatial+chromatic";
    fv_flag flags[] = {
        {"ws-min", FV_FLAG_INT, &ws_min, "WS_min", 1, 4096},
        {"ws-max", FV_FLAG_INT, &ws_max, "WS_max", 1, 4096},
        {"unit", FV_FLAG_INT, &unit, "shuffle unit", 1, 4096},
        {"mode", FV_FLAG_STRING, &mode_s, "spatial+chromatic or spatial", 0, 0},
        {"seconds", FV_FLAG_FLOAT, &seconds, "time per shape", 0.01, 3600},
        {"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0},
    };
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("bench mix", "[flags]", flags, sizeof flags / sizeof flags[0], argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = ws_min;
    p.ws_max = ws_max;
    p.unit = unit;
    if (fv_vmix_mode_parse(mode_s, &p.mode, &e) != 0 || fv_vmix_params_check(&p, 224, 224, &e) != 0) {
        fprintf(stderr, "fedvim bench mix: %s\n", e.msg);
        return 2;
    }
    const int shapes[3][3] = {{1, 28, 28}, {3, 32, 32}, {3, 224, 224}};
    shape_result res[3];
    for (int s = 0; s < 3; s++) {
        res[s] = run_shape(shapes[s][0], shapes[s][1], shapes[s][2], &p, seconds);
        fprintf(stderr, "bench mix: %dx%dx%d (CxHxW), WS %d..%d, %s: %.0f images/s per core (%.1f MB/s, %ld windows "
                        "per image, mean VFE %.3f; wall clock %.0f images/s); memcpy %.0f images/s; mix/memcpy time ratio %.0f\n",
                res[s].c, res[s].h, res[s].w, ws_min, ws_max, fv_vmix_mode_name(p.mode), res[s].ips, res[s].mb_s,
                res[s].windows, res[s].vfe, res[s].wall_ips, res[s].memcpy_ips, res[s].memcpy_ips / res[s].ips);
    }
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "bench", "mix");
        fv_json_int(&j, "threads", 1);
        fv_json_int(&j, "ws_min", ws_min);
        fv_json_int(&j, "ws_max", ws_max);
        fv_json_int(&j, "unit", unit);
        fv_json_str(&j, "mode", fv_vmix_mode_name(p.mode));
        for (int s = 0; s < 3; s++) {
            char name[32];
            snprintf(name, sizeof name, "%dx%dx%d", res[s].h, res[s].w, res[s].c);
            fv_json_obj_begin(&j, name);
            fv_json_num(&j, "images_per_second_per_core", res[s].ips);
            fv_json_num(&j, "wall_images_per_second", res[s].wall_ips);
            fv_json_num(&j, "megabytes_per_second", res[s].mb_s);
            fv_json_num(&j, "memcpy_images_per_second", res[s].memcpy_ips);
            fv_json_num(&j, "time_ratio_to_memcpy", res[s].memcpy_ips / res[s].ips);
            fv_json_int(&j, "windows_per_image", res[s].windows);
            fv_json_num(&j, "mean_vfe", res[s].vfe);
            fv_json_obj_end(&j);
        }
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    return 0;
}
