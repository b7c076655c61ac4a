/* test_reassemble.c: the reassembly attack on mixed images (attacks/reassemble.h).
 * - the search-space size on hand-computed window maps (pixel and block units);
 * - the output permutes each window's units only (per channel multisets kept; spatial mode
 *   moves all channels together);
 * - the search is strong: on a smooth image it restores the original arrangement, and on MNIST
 *   digits its output is never rougher (in total variation) than the original, which is one of
 *   the arrangements it searched;
 * - invalid window maps are refused with a message naming the window;
 * - the window map unknown (fv_reasm_estimate_map): on MNIST digits mixed by Algorithm 1 with
 *   bounds 2..4 the estimated map is the true one for most images, and the reassembly with it is
 *   as good as with the true map; uniform windows (WS_min = WS_max) give the grid exactly; bad
 *   settings are refused with a message naming them, through the library and the command.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "fl_harness.h"
#include "metrics.h"
#include "reassemble.h"
#include "vmix/vmix.h"

static const uint8_t KEY[FV_VMIX_KEY_BYTES] = {7, 1, 2, 3};

/* Mix img with uniform windows of ws (ws_min = ws_max) and the given unit and mode. */
static fv_vmix_window *mix(uint8_t *out, int *nwin, const uint8_t *img, int c, int h, int w, int ws, int unit,
                           fv_vmix_mode mode, fv_vmix_work *work) {
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = p.ws_max = ws;
    p.unit = unit;
    p.mode = mode;
    fv_vmix_result r;
    fv_err e = {{0}};
    if (fv_vmix_image(out, &r, work, img, c, h, w, KEY, &p, &e)) fail_msg("%s", e.msg);
    fv_vmix_window *win = malloc(sizeof *win * (size_t)r.nwindows);
    memcpy(win, r.windows, sizeof *win * (size_t)r.nwindows);
    *nwin = r.nwindows;
    return win;
}

static void test_search_bits(void **st) {
    (void)st;
    fv_vmix_window two[2] = {{0, 0, 2, 2}, {2, 0, 2, 2}};
    /* two windows of 4 pixels: 2 log2(4!) per channel */
    assert_true(fabs(fv_reasm_search_bits(two, 2, 1, 1, FV_VMIX_SPATIAL_CHROMATIC) - 2 * log2(24.0)) < 1e-9);
    assert_true(fabs(fv_reasm_search_bits(two, 2, 1, 3, FV_VMIX_SPATIAL_CHROMATIC) - 6 * log2(24.0)) < 1e-9);
    assert_true(fabs(fv_reasm_search_bits(two, 2, 1, 3, FV_VMIX_SPATIAL) - 2 * log2(24.0)) < 1e-9);
    /* a 5 x 5 window in units of 2: 4 full units, a right strip of 2 and a bottom strip of 2 */
    fv_vmix_window five = {0, 0, 5, 5};
    assert_true(fabs(fv_reasm_search_bits(&five, 1, 2, 1, FV_VMIX_SPATIAL) - (log2(24.0) + 1 + 1)) < 1e-9);
    /* an 8 x 8 pixel window: log2(64!) = 296.0 bits */
    fv_vmix_window eight = {0, 0, 8, 8};
    assert_true(fabs(fv_reasm_search_bits(&eight, 1, 1, 1, FV_VMIX_SPATIAL) - 295.995) < 1e-3);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_u8(const void *a, const void *b) { return *(const uint8_t *)a - *(const uint8_t *)b; }

/* Each window's multiset of unit contents per channel is kept: compare sorted pixel values of
 * every window and channel (pixel units), and all channels move together in spatial mode. */
static void test_permutes_within_windows(void **st) {
    (void)st;
    const int c = 3, h = 20, w = 20;
    uint8_t img[3 * 400], mixed[3 * 400], out[3 * 400];
    for (int i = 0; i < 3 * 400; i++) img[i] = (uint8_t)((i * 37 + (i / 20) * 11) % 251);
    fv_vmix_work *work = fv_vmix_work_new();
    int nwin;
    fv_vmix_window *win = mix(mixed, &nwin, img, c, h, w, 4, 1, FV_VMIX_SPATIAL_CHROMATIC, work);
    fv_reasm_cfg cfg = fv_reasm_defaults();
    cfg.anneal = 20000;
    fv_reasm_stats rs;
    fv_err e = {{0}};
    assert_int_equal(fv_reasm_image(out, &rs, mixed, c, h, w, win, nwin, &cfg, &e), 0);
    assert_true(rs.tv_final <= rs.tv_greedy + 1e-12);
    assert_true(fabs(rs.tv_final - fv_reasm_tv(out, c, h, w)) < 1e-9);
    for (int k = 0; k < nwin; k++)
        for (int ch = 0; ch < c; ch++) {
            uint8_t a[64], b[64];
            int n = 0;
            for (int y = win[k].y; y < win[k].y + win[k].h; y++)
                for (int x = win[k].x; x < win[k].x + win[k].w; x++, n++) {
                    a[n] = mixed[(ch * h + y) * w + x];
                    b[n] = out[(ch * h + y) * w + x];
                }
            qsort(a, (size_t)n, 1, cmp_u8);
            qsort(b, (size_t)n, 1, cmp_u8);
            assert_memory_equal(a, b, (size_t)n);
        }
    free(win);

    /* spatial mode on an image whose channels are equal: they stay equal */
    for (int i = 0; i < 400; i++) img[400 + i] = img[800 + i] = img[i];
    win = mix(mixed, &nwin, img, c, h, w, 4, 1, FV_VMIX_SPATIAL, work);
    cfg.mode = FV_VMIX_SPATIAL;
    assert_int_equal(fv_reasm_image(out, &rs, mixed, c, h, w, win, nwin, &cfg, &e), 0);
    assert_memory_equal(out, out + 400, 400);
    assert_memory_equal(out, out + 800, 400);
    free(win);
    fv_vmix_work_destroy(&work);
}

/* A smooth ramp shuffled in 4 x 4 pixel windows and in 8 x 8 windows of 2 x 2 blocks: the
 * search puts (almost) every value back. */
static void test_restores_smooth_image(void **st) {
    (void)st;
    const int h = 24, w = 24;
    uint8_t img[576], mixed[576], out[576];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) img[y * w + x] = (uint8_t)(8 * x + 2 * y + ((x * y) % 3 == 0 ? 1 : 0));
    fv_vmix_work *work = fv_vmix_work_new();
    int units[2] = {1, 2}, sizes[2] = {4, 8};
    for (int t = 0; t < 2; t++) {
        int nwin;
        fv_vmix_window *win = mix(mixed, &nwin, img, 1, h, w, sizes[t], units[t], FV_VMIX_SPATIAL_CHROMATIC, work);
        fv_reasm_cfg cfg = fv_reasm_defaults();
        cfg.unit = units[t];
        fv_reasm_stats rs;
        fv_err e = {{0}};
        assert_int_equal(fv_reasm_image(out, &rs, mixed, 1, h, w, win, nwin, &cfg, &e), 0);
        float fo[576], fm[576], fr[576];
        for (int i = 0; i < 576; i++) {
            fo[i] = img[i] / 255.f;
            fm[i] = mixed[i] / 255.f;
            fr[i] = out[i] / 255.f;
        }
        fv_reassembly ra = fv_reassembly_compute(fo, fm, fr, 576, 0);
        printf("ramp, windows %d, unit %d: in place %.3f (shuffled %.3f), TV %.3f -> %.3f (original %.3f), %.2f s\n",
               sizes[t], units[t], ra.correct, ra.baseline, rs.tv_mixed, rs.tv_final, fv_reasm_tv(img, 1, h, w),
               rs.seconds);
        if (!(ra.correct >= 0.95)) fail_msg("only %.3f of the pixels back in place", ra.correct);
        free(win);
    }
    fv_vmix_work_destroy(&work);
}

/* MNIST digits (if present) mixed in 2 x 2 and 4 x 4 windows: the output is at least as smooth as
 * the original (a feasible arrangement), and closer to it than the mixed input in PSNR. */
static void test_mnist_digits(void **st) {
    (void)st;
    fv_dataset d;
    fv_err e = {{0}};
    if (fv_dataset_load("mnist", NULL, 0, &d, &e)) {
        printf("skipped: %s\n", e.msg);
        return;
    }
    fv_vmix_work *work = fv_vmix_work_new();
    uint8_t mixed[784], out[784];
    for (int ws = 2; ws <= 4; ws *= 2)
        for (int i = 0; i < 3; i++) {
            const uint8_t *img = d.x + (size_t)i * 784;
            int nwin;
            fv_vmix_window *win = mix(mixed, &nwin, img, 1, 28, 28, ws, 1, FV_VMIX_SPATIAL_CHROMATIC, work);
            fv_reasm_cfg cfg = fv_reasm_defaults();
            fv_reasm_stats rs;
            assert_int_equal(fv_reasm_image(out, &rs, mixed, 1, 28, 28, win, nwin, &cfg, &e), 0);
            float fo[784], fm[784], fr[784];
            for (int k = 0; k < 784; k++) {
                fo[k] = img[k] / 255.f;
                fm[k] = mixed[k] / 255.f;
                fr[k] = out[k] / 255.f;
            }
            double tv0 = fv_reasm_tv(img, 1, 28, 28), pm = fv_psnr(fo, fm, 784), po = fv_psnr(fo, fr, 784);
            printf("mnist %d, windows %d: TV mixed %.2f -> %.2f (original %.2f), PSNR %.2f -> %.2f dB, %.2f s\n", i, ws,
                   rs.tv_mixed, rs.tv_final, tv0, pm, po, rs.seconds);
            if (!(rs.tv_final <= tv0 + 1e-9)) fail_msg("search too weak: TV %.3f above the original's %.3f", rs.tv_final, tv0);
            if (!(po > pm)) fail_msg("PSNR %.2f not above the mixed input's %.2f", po, pm);
            free(win);
        }
    fv_vmix_work_destroy(&work);
    fv_dataset_free(&d);
}

/* MNIST test digits 0..11 mixed by Algorithm 1 (bounds 2..4, pixel units, spatial+chromatic):
 * the map estimated from the bounds alone is exactly the true map in at least 9 of 12 images
 * (measured: 20 of 20 on test images 0..19 with bounds 2..4, 15 of 20 with 2..8, anneal 20,000), and
 * the median SSIM with the estimated map is within 0.02 of the known map's (measured: equal). With
 * WS_min = WS_max the estimate is the uniform grid, always. About 1 s. */
static void test_unknown_map(void **st) {
    (void)st;
    fv_dataset d;
    fv_err e = {{0}};
    if (fv_dataset_load("mnist", NULL, 0, &d, &e)) {
        printf("skipped: %s\n", e.msg);
        return;
    }
    enum { N = 12 };
    fv_vmix_work *work = fv_vmix_work_new();
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = 2;
    p.ws_max = 4;
    fv_reasm_cfg cfg = fv_reasm_defaults();
    cfg.anneal = 20000;
    uint8_t mixed[784], known[784], est_out[784];
    fv_vmix_window est[784];
    double s_known[N], s_est[N];
    int exact = 0;
    for (int i = 0; i < N; i++) {
        const uint8_t *img = d.x + (size_t)i * 784;
        uint8_t key[FV_VMIX_KEY_BYTES] = {(uint8_t)i, 9};
        fv_vmix_result r;
        if (fv_vmix_image(mixed, &r, work, img, 1, 28, 28, key, &p, &e)) fail_msg("%s", e.msg);
        int nwin = r.nwindows, nest = 0, rounds = 0;
        fv_vmix_window *win = malloc(sizeof *win * (size_t)nwin);
        memcpy(win, r.windows, sizeof *win * (size_t)nwin);
        fv_reasm_stats rs;
        assert_int_equal(fv_reasm_image(known, &rs, mixed, 1, 28, 28, win, nwin, &cfg, &e), 0);
        assert_int_equal(fv_reasm_estimate_map(est, &nest, est_out, &rounds, mixed, 1, 28, 28, &p, 3, &cfg, &e), 0);
        /* the same windows (Algorithm 1's order is a function of the map, so compare as lists) */
        exact += nest == nwin && memcmp(est, win, sizeof *win * (size_t)nwin) == 0;
        float fo[784], fk[784], fe[784];
        for (int k = 0; k < 784; k++) {
            fo[k] = img[k] / 255.f;
            fk[k] = known[k] / 255.f;
            fe[k] = est_out[k] / 255.f;
        }
        assert_int_equal(fv_ssim(&s_known[i], fk, fo, 1, 28, 28, &e), 0);
        assert_int_equal(fv_ssim(&s_est[i], fe, fo, 1, 28, 28, &e), 0);
        free(win);
    }
    qsort(s_known, N, sizeof(double), cmp_double);
    qsort(s_est, N, sizeof(double), cmp_double);
    double mk = 0.5 * (s_known[N / 2 - 1] + s_known[N / 2]), me = 0.5 * (s_est[N / 2 - 1] + s_est[N / 2]);
    printf("map unknown, bounds 2..4: exact in %d of %d; median SSIM %.4f (known map %.4f)\n", exact, N, me, mk);
    if (exact < 9) fail_msg("the estimated map is exact in only %d of %d images", exact, N);
    if (!(me >= mk - 0.02)) fail_msg("median SSIM %.4f with the estimated map, %.4f with the true one", me, mk);
    /* uniform windows: the grid, exactly */
    p.ws_min = p.ws_max = 4;
    fv_vmix_result r;
    if (fv_vmix_image(mixed, &r, work, d.x, 1, 28, 28, KEY, &p, &e)) fail_msg("%s", e.msg);
    int nest = 0;
    assert_int_equal(fv_reasm_estimate_map(est, &nest, NULL, NULL, mixed, 1, 28, 28, &p, 3, &cfg, &e), 0);
    assert_int_equal(nest, r.nwindows);
    assert_memory_equal(est, r.windows, sizeof *est * (size_t)nest);
    /* bad settings */
    assert_int_equal(fv_reasm_estimate_map(est, &nest, NULL, NULL, mixed, 1, 28, 28, &p, 0, &cfg, &e), -1);
    assert_non_null(strstr(e.msg, "0 map iterations"));
    p.ws_min = 8;
    assert_int_equal(fv_reasm_estimate_map(est, &nest, NULL, NULL, mixed, 1, 28, 28, &p, 3, &cfg, &e), -1);
    assert_non_null(strstr(e.msg, "WS_min = 8 > WS_max = 4"));
    fv_vmix_work_destroy(&work);
    fv_dataset_free(&d);
}

static void test_bad_maps(void **st) {
    (void)st;
    uint8_t img[64] = {0}, out[64];
    fv_reasm_cfg cfg = fv_reasm_defaults();
    fv_reasm_stats rs;
    fv_err e = {{0}};
    fv_vmix_window out_of_image = {6, 6, 4, 4};
    assert_int_equal(fv_reasm_image(out, &rs, img, 1, 8, 8, &out_of_image, 1, &cfg, &e), -1);
    assert_non_null(strstr(e.msg, "window 0"));
    fv_vmix_window overlap[2] = {{0, 0, 4, 4}, {2, 2, 4, 4}};
    assert_int_equal(fv_reasm_image(out, &rs, img, 1, 8, 8, overlap, 2, &cfg, &e), -1);
    assert_non_null(strstr(e.msg, "overlaps"));
    cfg.unit = 0;
    assert_int_equal(fv_reasm_image(out, &rs, img, 1, 8, 8, overlap, 1, &cfg, &e), -1);
    assert_non_null(strstr(e.msg, "unit"));
}

/* `fedvim attack reassemble --unknown-map` as a user runs it: a bad --map-rounds is refused
 * naming the flag; a small run reports the map figures beside the known-map ones. */
static void test_cli_unknown_map(void **st) {
    (void)st;
    fh_ctx c;
    int rc = fh_init(&c, "reasm");
    if (rc == 77) skip();
    assert_int_equal(rc, 0);
    char out[512];
    fh_path(&c, out, sizeof out, "bad.out");
    assert_int_equal(fh_run(&c, out, 30, "attack", "reassemble", "--unknown-map", "--map-rounds", "0", NULL), 2);
    assert_true(fh_contains(out, "--map-rounds: 0 is out of range"));
    fh_path(&c, out, sizeof out, "run.out");
    int st2 = fh_run(&c, out, 60, "attack", "reassemble", "--unknown-map", "--images", "3", "--ws-min", "2", "--ws-max",
                     "4", "--anneal", "2000", "--json", NULL);
    if (st2 != 0 && fh_contains(out, "not found")) {
        printf("skipped: no MNIST\n");
        fh_cleanup(&c);
        return;
    }
    assert_int_equal(st2, 0);
    assert_true(fh_contains(out, "\"unknown_map\":{"));
    assert_true(fh_contains(out, "\"map_exact_fraction\":"));
    assert_true(fh_contains(out, "reassemble, map unknown: map exact in"));
    fh_cleanup(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_bits),
        cmocka_unit_test(test_permutes_within_windows),
        cmocka_unit_test(test_restores_smooth_image),
        cmocka_unit_test(test_mnist_digits),
        cmocka_unit_test(test_bad_maps),
        cmocka_unit_test(test_unknown_map),
        cmocka_unit_test(test_cli_unknown_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
