/* test_vmix.c: VisualMixer: the keyed shuffle, Algorithm 1, --verify, data-set mixing, the
 * window-size bounds and the client key file. Every property of docs/visualmixer.md sections
 * 2-4 that a test can state is checked here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rng.h"
#include "vmix/vfe.h"
#include "vmix/vmix.h"
#include "vmix/vmix_bounds.h"
#include "vmix/vmix_key.h"

static void key_from(uint8_t k[FV_VMIX_KEY_BYTES], uint64_t seed) {
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (int i = 0; i < FV_VMIX_KEY_BYTES; i++) k[i] = (uint8_t)fv_rng_u64(&r);
}

/* A test image: smooth background with a noisy square, so Algorithm 1 both splits and keeps
 * large windows. */
static void make_image(uint8_t *x, int c, int h, int w, uint64_t seed) {
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                int v = (xx * 3 + y * 2 + ch * 40) % 256;
                if (xx > w / 4 && xx < 3 * w / 4 && y > h / 4 && y < 3 * h / 4) v = (int)fv_rng_below(&r, 256);
                x[((long)ch * h + y) * w + xx] = (uint8_t)v;
            }
}

static int cmp_u8(const void *a, const void *b) { return *(const uint8_t *)a - *(const uint8_t *)b; }

/* Every window keeps its multiset of values per channel exactly; windows tile the image exactly
 * once; sizes lie in [WS_min, WS_max] except clipped edge windows. Both modes, pixel and block
 * units, an image whose sides are not multiples of the window sizes. */
static void test_multiset_and_tiling(void **state) {
    (void)state;
    enum { C = 3, H = 30, W = 27 };
    uint8_t in[C * H * W], out[C * H * W], a[256], b[256];
    uint8_t key[32];
    key_from(key, 1);
    make_image(in, C, H, W, 2);
    fv_vmix_work *wk = fv_vmix_work_new();
    const int units[2] = {1, 2};
    for (int mode = 0; mode < 2; mode++)
        for (int ui = 0; ui < 2; ui++) {
            fv_vmix_params p;
            fv_vmix_params_default(&p);
            p.ws_min = 2;
            p.ws_max = 16;
            p.unit = units[ui];
            p.mode = (fv_vmix_mode)mode;
            fv_vmix_result res;
            fv_err e = {{0}};
            assert_int_equal(fv_vmix_image(out, &res, wk, in, C, H, W, key, &p, &e), 0);
            static int cover[H * W];
            memset(cover, 0, sizeof cover);
            int split = 0, large = 0;
            for (int k = 0; k < res.nwindows; k++) {
                fv_vmix_window wi = res.windows[k];
                int edge = (wi.x + wi.w == W && wi.w < p.ws_max) || (wi.y + wi.h == H && wi.h < p.ws_max);
                if (!edge) {
                    assert_int_equal(wi.w, wi.h);
                    assert_true(wi.w >= p.ws_min && wi.w <= p.ws_max);
                }
                split += wi.w < p.ws_max && !edge;
                large += wi.w == p.ws_max;
                for (int y = wi.y; y < wi.y + wi.h; y++)
                    for (int x = wi.x; x < wi.x + wi.w; x++) cover[y * W + x]++;
                for (int ch = 0; ch < C; ch++) {
                    int n = 0;
                    for (int y = wi.y; y < wi.y + wi.h; y++)
                        for (int x = wi.x; x < wi.x + wi.w; x++, n++) {
                            a[n] = in[(ch * H + y) * W + x];
                            b[n] = out[(ch * H + y) * W + x];
                        }
                    qsort(a, (size_t)n, 1, cmp_u8);
                    qsort(b, (size_t)n, 1, cmp_u8);
                    assert_memory_equal(a, b, (size_t)n);
                }
            }
            for (int i = 0; i < H * W; i++) assert_int_equal(cover[i], 1);
            assert_true(split > 0 && large > 0); /* non-uniform windows really happened */
            assert_memory_not_equal(in, out, sizeof in);
        }
    fv_vmix_work_destroy(&wk);
    assert_null(wk);
}

/* After shuffling a whole 8x8 region, E[VFE] = n / (n - 1) = 64/63 exactly. Over 3000 keys the
 * mean must be within 5 Monte Carlo standard errors (estimated from the sample) of it. */
static void test_mean_vfe_n_over_n_minus_1(void **state) {
    (void)state;
    enum { N = 3000 };
    uint8_t in[64], out[64], dk[32], ik[32], secret[32];
    fv_rng r;
    fv_rng_seed(&r, 7);
    for (int i = 0; i < 64; i++) in[i] = (uint8_t)(i < 32 ? i * 4 : 255 - (i - 32) * 3); /* smooth */
    (void)r;
    key_from(secret, 3);
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = p.ws_max = 8;
    fv_vmix_work *wk = fv_vmix_work_new();
    double s = 0.0, q = 0.0;
    for (int t = 0; t < N; t++) {
        fv_vmix_image_key(ik, dk, (uint64_t)t);
        fv_vmix_result res;
        assert_int_equal(fv_vmix_image(out, &res, wk, in, 1, 8, 8, ik, &p, NULL), 0);
        assert_int_equal(res.nwindows, 1);
        s += res.vfe;
        q += res.vfe * res.vfe;
    }
    double mean = s / N, sd = sqrt(q / N - mean * mean), se = sd / sqrt((double)N);
    print_message("mean VFE %.5f (expected %.5f, standard error %.5f)\n", mean, 64.0 / 63.0, se);
    assert_true(fabs(mean - 64.0 / 63.0) < 5.0 * se);
    fv_vmix_work_destroy(&wk);
}

/* Fisher-Yates is exactly uniform: the 24 orderings of a 2x2 window appear equally often.
 * 24000 keys; Pearson chi-square with 23 degrees of freedom must stay below 49.73 (p = 0.001). */
static void test_permutations_uniform(void **state) {
    (void)state;
    enum { N = 24000 };
    uint8_t in[4] = {10, 20, 30, 40}, out[4], dk[32], ik[32], secret[32];
    key_from(secret, 4);
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TEST);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = p.ws_max = 2;
    fv_vmix_work *wk = fv_vmix_work_new();
    int count[256] = {0};
    for (int t = 0; t < N; t++) {
        fv_vmix_image_key(ik, dk, (uint64_t)t);
        fv_vmix_result res;
        assert_int_equal(fv_vmix_image(out, &res, wk, in, 1, 2, 2, ik, &p, NULL), 0);
        int code = 0;
        for (int i = 0; i < 4; i++) code = code * 4 + (out[i] / 10 - 1);
        count[code]++;
    }
    int distinct = 0;
    double chi = 0.0, expct = N / 24.0;
    for (int i = 0; i < 256; i++)
        if (count[i]) {
            distinct++;
            chi += (count[i] - expct) * (count[i] - expct) / expct;
        }
    print_message("%d orderings, chi-square %.2f (23 df, limit 49.73)\n", distinct, chi);
    assert_int_equal(distinct, 24);
    assert_true(chi < 49.73);
    fv_vmix_work_destroy(&wk);
}

/* The one-draw path for 5..8 units: a clipped 3x2 window (6 units) over 72,000 keys shows all
 * 720 orderings with a chi-square below its p = 0.001 critical value (719 df). */
static void test_permutations_uniform_6(void **state) {
    (void)state;
    enum { N = 72000 };
    uint8_t in[6] = {0, 1, 2, 3, 4, 5}, out[6], dk[32], ik[32], secret[32];
    key_from(secret, 6);
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = p.ws_max = 4;
    fv_vmix_work *wk = fv_vmix_work_new();
    static int count[46656];
    memset(count, 0, sizeof count);
    for (int t = 0; t < N; t++) {
        fv_vmix_image_key(ik, dk, (uint64_t)t);
        fv_vmix_result res;
        assert_int_equal(fv_vmix_image(out, &res, wk, in, 1, 2, 3, ik, &p, NULL), 0);
        assert_int_equal(res.nwindows, 1);
        int code = 0;
        for (int i = 0; i < 6; i++) code = code * 6 + out[i];
        count[code]++;
    }
    int distinct = 0;
    double chi = 0.0, expct = N / 720.0;
    for (int i = 0; i < 46656; i++)
        if (count[i]) {
            distinct++;
            chi += (count[i] - expct) * (count[i] - expct) / expct;
        }
    double lim = fv_chi2_quantile(719, 0.999);
    print_message("%d orderings, chi-square %.1f (719 df, limit %.1f)\n", distinct, chi, lim);
    assert_int_equal(distinct, 720);
    assert_true(chi < lim);
    fv_vmix_work_destroy(&wk);
}

/* The per-element path (more than 8 units): in a 4x4 window every value lands on every position
 * equally often: 16,000 keys, chi-square of the 16 x 16 table below its p = 0.001 critical
 * value (225 df). */
static void test_positions_uniform_16(void **state) {
    (void)state;
    enum { N = 16000 };
    uint8_t in[16], out[16], dk[32], ik[32], secret[32];
    for (int i = 0; i < 16; i++) in[i] = (uint8_t)i;
    key_from(secret, 16);
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = p.ws_max = 4;
    fv_vmix_work *wk = fv_vmix_work_new();
    int count[16][16] = {{0}};
    for (int t = 0; t < N; t++) {
        fv_vmix_image_key(ik, dk, (uint64_t)t);
        fv_vmix_result res;
        assert_int_equal(fv_vmix_image(out, &res, wk, in, 1, 4, 4, ik, &p, NULL), 0);
        for (int i = 0; i < 16; i++) count[out[i]][i]++;
    }
    double chi = 0.0, expct = N / 16.0;
    for (int v = 0; v < 16; v++)
        for (int i = 0; i < 16; i++) chi += (count[v][i] - expct) * (count[v][i] - expct) / expct;
    double lim = fv_chi2_quantile(225, 0.999);
    print_message("chi-square %.1f (225 df, limit %.1f)\n", chi, lim);
    assert_true(chi < lim);
    fv_vmix_work_destroy(&wk);
}

/* Two Fisher-Yates steps share one draw for windows of more than 8 units: the joint law of
 * where two values land must be uniform over the 9 x 8 ordered pairs of positions of a 3x3
 * window: 72,000 keys, chi-square below its p = 0.001 critical value (71 df). */
static void test_pairs_uniform_9(void **state) {
    (void)state;
    enum { N = 72000 };
    uint8_t in[9], out[9], dk[32], ik[32], secret[32];
    for (int i = 0; i < 9; i++) in[i] = (uint8_t)i;
    key_from(secret, 9);
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_min = p.ws_max = 4; /* a 3x3 image: one clipped window of 9 units */
    fv_vmix_work *wk = fv_vmix_work_new();
    int count[9][9] = {{0}};
    for (int t = 0; t < N; t++) {
        fv_vmix_image_key(ik, dk, (uint64_t)t);
        fv_vmix_result res;
        assert_int_equal(fv_vmix_image(out, &res, wk, in, 1, 3, 3, ik, &p, NULL), 0);
        int p0 = -1, p1 = -1;
        for (int i = 0; i < 9; i++) {
            if (out[i] == 0) p0 = i;
            if (out[i] == 1) p1 = i;
        }
        count[p0][p1]++;
    }
    double chi = 0.0, expct = N / 72.0;
    for (int a = 0; a < 9; a++)
        for (int b = 0; b < 9; b++) {
            if (a == b) {
                assert_int_equal(count[a][b], 0);
                continue;
            }
            chi += (count[a][b] - expct) * (count[a][b] - expct) / expct;
        }
    double lim = fv_chi2_quantile(71, 0.999);
    print_message("chi-square %.1f (71 df, limit %.1f)\n", chi, lim);
    assert_true(chi < lim);
    fv_vmix_work_destroy(&wk);
}

static void test_keyed_determinism(void **state) {
    (void)state;
    enum { C = 3, H = 32, W = 32 };
    uint8_t in[C * H * W], o1[C * H * W], o2[C * H * W], o3[C * H * W], k1[32], k2[32];
    make_image(in, C, H, W, 5);
    key_from(k1, 10);
    key_from(k2, 11);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    fv_vmix_result r;
    fv_vmix_work *a = fv_vmix_work_new(), *b = fv_vmix_work_new();
    assert_int_equal(fv_vmix_image(o1, &r, a, in, C, H, W, k1, &p, NULL), 0);
    assert_int_equal(fv_vmix_image(o3, &r, a, in, C, H, W, k2, &p, NULL), 0); /* reuse of work */
    assert_int_equal(fv_vmix_image(o2, &r, b, in, C, H, W, k1, &p, NULL), 0);
    assert_memory_equal(o1, o2, sizeof o1);
    assert_memory_not_equal(o1, o3, sizeof o1);
    /* spatial+chromatic: channels get different permutations; spatial: the same one */
    uint8_t g[C * H * W], og[C * H * W];
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < H * W; i++) g[ch * H * W + i] = (uint8_t)(i * 7 % 251);
    assert_int_equal(fv_vmix_image(og, &r, a, g, C, H, W, k1, &p, NULL), 0);
    assert_memory_not_equal(og, og + H * W, H * W);
    p.mode = FV_VMIX_SPATIAL;
    assert_int_equal(fv_vmix_image(og, &r, a, g, C, H, W, k1, &p, NULL), 0);
    assert_memory_equal(og, og + H * W, H * W);
    assert_memory_equal(og, og + 2 * H * W, H * W);
    /* different domains (train vs test) give different keys for the same index */
    uint8_t d0[32], d1[32], i0[32], i1[32];
    fv_vmix_domain_key(d0, k1, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_domain_key(d1, k1, FV_VMIX_DOMAIN_TEST);
    fv_vmix_image_key(i0, d0, 0);
    fv_vmix_image_key(i1, d1, 0);
    assert_memory_not_equal(i0, i1, 32);
    fv_vmix_work_destroy(&a);
    fv_vmix_work_destroy(&b);
}

/* Whole data set: identical bytes and statistics for 1, 2 and 3 threads. */
static void test_dataset_thread_independent(void **state) {
    (void)state;
    fv_dataset d = {.n = 300, .c = 3, .h = 20, .w = 20, .classes = 10};
    d.x = malloc((size_t)d.n * 1200);
    d.y = malloc((size_t)d.n);
    for (int i = 0; i < d.n; i++) {
        make_image(d.x + (size_t)i * 1200, 3, 20, 20, 100 + (uint64_t)i);
        d.y[i] = (uint8_t)(i % 10);
    }
    uint8_t secret[32];
    key_from(secret, 42);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_max = 16;
    p.verify = 1;
    p.target_vfe = 0.6;
    fv_dataset o[3];
    fv_vmix_stats st[3];
    float *v[3];
    for (int t = 0; t < 3; t++) {
        v[t] = malloc((size_t)d.n * sizeof(float));
        fv_err e = {{0}};
        int rc = fv_vmix_dataset(&o[t], v[t], &st[t], &d, secret, FV_VMIX_DOMAIN_TRAIN, &p, t + 1, &e);
        if (rc) print_message("%s\n", e.msg);
        assert_int_equal(rc, 0);
    }
    for (int t = 1; t < 3; t++) {
        assert_memory_equal(o[0].x, o[t].x, (size_t)d.n * 1200);
        assert_memory_equal(o[0].y, d.y, (size_t)d.n);
        assert_memory_equal(v[0], v[t], (size_t)d.n * sizeof(float));
        assert_memory_equal(&st[0], &st[t], sizeof st[0]);
    }
    /* image i of the data set equals fv_vmix_image with key (secret, train, i) */
    uint8_t dk[32], ik[32], one[1200];
    fv_vmix_domain_key(dk, secret, FV_VMIX_DOMAIN_TRAIN);
    fv_vmix_image_key(ik, dk, 123);
    fv_vmix_work *wk = fv_vmix_work_new();
    fv_vmix_result r;
    assert_int_equal(fv_vmix_image(one, &r, wk, d.x + 123 * 1200, 3, 20, 20, ik, &p, NULL), 0);
    assert_memory_equal(one, o[0].x + 123 * 1200, 1200);
    assert_true(st[0].vfe_min >= 0.6);
    assert_true(st[0].vfe_mean >= st[0].vfe_min);
    print_message("mean VFE %.4f, min %.4f, %ld windows, %ld remixed\n", st[0].vfe_mean, st[0].vfe_min,
                  st[0].windows, st[0].remixed);
    fv_vmix_work_destroy(&wk);
    for (int t = 0; t < 3; t++) {
        fv_dataset_free(&o[t]);
        free(v[t]);
    }
    free(d.x);
    free(d.y);
}

/* --verify: a reachable target doubles WS_min until met; an unreachable one fails naming the
 * VFE reached (and, for a data set, the image). */
static void test_verify(void **state) {
    (void)state;
    enum { H = 32, W = 32 };
    uint8_t in[H * W], out[H * W], key[32];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) in[y * W + x] = (uint8_t)(x * 8 + y); /* smooth: hard to mix */
    key_from(key, 8);
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    p.ws_max = 16;
    fv_vmix_work *wk = fv_vmix_work_new();
    fv_vmix_result r;
    assert_int_equal(fv_vmix_image(out, &r, wk, in, 1, H, W, key, &p, NULL), 0);
    double v2 = r.vfe;
    p.verify = 1;
    p.target_vfe = v2 + 0.1;
    fv_err e = {{0}};
    int rc = fv_vmix_image(out, &r, wk, in, 1, H, W, key, &p, &e);
    print_message("plain %.4f; verify: rc %d attempts %d ws_min %d vfe %.4f %s\n", v2, rc, r.attempts,
                  r.ws_min_used, r.vfe, e.msg);
    assert_int_equal(rc, 0);
    assert_true(r.attempts > 1 && r.ws_min_used > 2 && r.vfe >= p.target_vfe);
    p.target_vfe = 5.0;
    rc = fv_vmix_image(out, &r, wk, in, 1, H, W, key, &p, &e);
    assert_int_equal(rc, -1);
    char want[64];
    snprintf(want, sizeof want, "%.4f", r.vfe);
    assert_non_null(strstr(e.msg, want));
    assert_non_null(strstr(e.msg, "WS_max = 16"));
    fv_dataset d = {.n = 3, .c = 1, .h = H, .w = W, .classes = 1};
    d.x = calloc(3, H * W);
    d.y = calloc(3, 1);
    fv_rng g;
    fv_rng_seed(&g, 1);
    for (int i = 0; i < H * W; i++) d.x[i] = (uint8_t)fv_rng_below(&g, 256); /* image 0: noise */
    memcpy(d.x + H * W, in, H * W);                                            /* image 1: smooth */
    memcpy(d.x + 2 * H * W, in, H * W);
    p.target_vfe = 0.95;
    p.ws_max = 4; /* smooth content cannot reach 0.95 with windows of 4 (about 0.8) */
    fv_dataset o;
    rc = fv_vmix_dataset(&o, NULL, NULL, &d, key, 0, &p, 2, &e);
    print_message("%s\n", e.msg);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(e.msg, "image 1:"));
    assert_null(o.x);
    free(d.x);
    free(d.y);
    fv_vmix_work_destroy(&wk);
}

static void test_bad_input(void **state) {
    (void)state;
    uint8_t in[64] = {1, 2, 3}, out[64], key[32] = {0};
    fv_vmix_params p;
    fv_vmix_params_default(&p);
    fv_vmix_work *wk = fv_vmix_work_new();
    fv_vmix_result r;
    fv_err e = {{0}};
    assert_int_equal(fv_vmix_image(out, &r, wk, in, 1, 0, 8, key, &p, &e), -1);
    assert_non_null(strstr(e.msg, "empty image"));
    assert_int_equal(fv_vmix_image(out, &r, wk, in, 0, 8, 8, key, &p, &e), -1);
    p.ws_min = 8;
    p.ws_max = 4;
    assert_int_equal(fv_vmix_image(out, &r, wk, in, 1, 8, 8, key, &p, &e), -1);
    assert_non_null(strstr(e.msg, "WS_min = 8"));
    assert_non_null(strstr(e.msg, "WS_max = 4"));
    p.ws_min = 3;
    p.ws_max = 8;
    assert_int_equal(fv_vmix_image(out, &r, wk, in, 1, 8, 8, key, &p, &e), -1);
    assert_non_null(strstr(e.msg, "power of two"));
    fv_dataset d = {0};
    fv_vmix_params_default(&p);
    assert_int_equal(fv_vmix_dataset(&d, NULL, NULL, &d, key, 0, &p, 1, &e), -1);
    assert_non_null(strstr(e.msg, "empty data set"));
    fv_vmix_work_destroy(&wk);
}

/* ---- bounds ---- */

static void test_quantiles(void **state) {
    (void)state;
    /* reference values: standard normal and chi-square tables */
    assert_true(fabs(fv_norm_quantile(0.975) - 1.959963985) < 1e-8);
    assert_true(fabs(fv_norm_quantile(0.05) + 1.644853627) < 1e-8);
    assert_true(fabs(fv_chi2_quantile(10, 0.05) - 3.940299) < 0.01 * 3.940299);  /* WH: 1% */
    assert_true(fabs(fv_chi2_quantile(100, 0.05) - 77.92947) < 0.002 * 77.92947);
    assert_true(fabs(fv_chi2_quantile(2000, 0.05) - 1897.123) < 0.002 * 1897.123); /* normal */
    assert_true(fv_chi2_quantile(0, 0.05) == 0.0);
}

/* The spec's example: B = 8, pixel level, an 8x8 image: WS 2 keeps 64 of 112 pairs, 4 keeps 96,
 * 8 keeps all. At block level u = 2 with WS = 4, pairs inside a unit are not randomised. */
static void test_pairs_in(void **state) {
    (void)state;
    long all;
    assert_int_equal(fv_vmix_pairs_in(8, 8, 8, 2, 1, &all), 64);
    assert_int_equal(all, 112);
    assert_int_equal(fv_vmix_pairs_in(8, 8, 8, 4, 1, &all), 96);
    assert_int_equal(fv_vmix_pairs_in(8, 8, 8, 8, 1, &all), 112);
    assert_int_equal(fv_vmix_pairs_in(8, 8, 8, 16, 1, &all), 112);
    /* u = 2, WS = 4: per row, pairs (1,2) of each 4-window: 2 per row x 8 rows x 2 axes = 32 */
    assert_int_equal(fv_vmix_pairs_in(8, 8, 8, 4, 2, &all), 32);
}

static void test_ws_min_monotone(void **state) {
    (void)state;
    fv_wsmin_row rows[16];
    int n, prev = 0;
    fv_err e = {{0}};
    for (double t = 0.05; t <= 0.925; t += 0.025) {
        int ws;
        assert_int_equal(fv_vmix_ws_min(&ws, rows, &n, 28, 28, 8, 1, 1.0, t, 0.05, &e), 0);
        assert_true(ws >= prev);
        assert_true(ws >= 2 && (ws & (ws - 1)) == 0);
        prev = ws;
    }
    assert_true(prev >= 8); /* the highest targets need the largest windows */
    int ws;
    assert_int_equal(fv_vmix_ws_min(&ws, rows, &n, 28, 28, 8, 1, 1.0, 0.99, 0.05, &e), -1);
    double best = 0.0;
    for (int i = 0; i < n; i++) best = rows[i].model_vfe > best ? rows[i].model_vfe : best;
    char want[32];
    snprintf(want, sizeof want, "largest reachable is %.4f", best);
    print_message("%s\n", e.msg);
    assert_non_null(strstr(e.msg, want));
    /* model example of the spec (8x8, B = 8): WS 2 about 0.57 minus the alpha margin */
    assert_int_equal(fv_vmix_ws_min(&ws, rows, &n, 8, 8, 8, 1, 1.0, 0.3, 0.05, &e), 0);
    assert_int_equal(rows[0].ws, 2);
    assert_int_equal(rows[0].k_in, 64);
    assert_true(rows[0].model_vfe < 64.0 / 112.0 && rows[0].model_vfe > 0.3);
}

/* d_p never decreases with WS (i.i.d. normal windows and windows from images), d_p(1) = 0. */
static void test_dp_monotone(void **state) {
    (void)state;
    fv_dp_cfg cfg;
    fv_dp_cfg_default(&cfg);
    cfg.trials = 1000;
    double dp[16];
    int n, wsmax;
    fv_err e = {{0}};
    assert_int_equal(fv_vmix_ws_max(&wsmax, dp, &n, 32, 32, 1e9, &cfg, &e), 0);
    assert_int_equal(wsmax, 32);
    assert_int_equal(n, 6);
    assert_true(dp[0] == 0.0);
    for (int i = 1; i < n; i++) {
        print_message("iid: d_p(%d) = %.3f\n", 1 << i, dp[i]);
        assert_true(dp[i] > dp[i - 1]);
    }
    /* WS_max is the largest WS under d*: between d_p(4) and d_p(8) gives 4 */
    assert_int_equal(fv_vmix_ws_max(&wsmax, dp, &n, 32, 32, 0.5 * (dp[2] + dp[3]), &cfg, &e), 0);
    assert_int_equal(wsmax, 4);
    assert_int_equal(fv_vmix_ws_max(&wsmax, dp, &n, 32, 32, 0.0, &cfg, &e), 0);
    assert_int_equal(wsmax, 1);
    /* same figures for another thread count */
    double dq[16];
    cfg.threads = 1;
    assert_int_equal(fv_vmix_ws_max(&wsmax, dq, &n, 32, 32, 1e9, &cfg, &e), 0);
    cfg.threads = 2;
    assert_int_equal(fv_vmix_ws_max(&wsmax, dp, &n, 32, 32, 1e9, &cfg, &e), 0);
    assert_memory_equal(dp, dq, (size_t)n * sizeof(double));
    fv_dataset d = {.n = 50, .c = 3, .h = 24, .w = 24, .classes = 1};
    d.x = malloc((size_t)d.n * 3 * 24 * 24);
    for (int i = 0; i < d.n; i++) make_image(d.x + (size_t)i * 3 * 576, 3, 24, 24, (uint64_t)i);
    cfg.images = &d;
    assert_int_equal(fv_vmix_ws_max(&wsmax, dp, &n, 24, 24, 1e9, &cfg, &e), 0);
    assert_int_equal(n, 6);
    for (int i = 1; i < n; i++) {
        print_message("images: d_p(%d) = %.3f\n", 1 << i, dp[i]);
        assert_true(dp[i] >= dp[i - 1]);
    }
    assert_int_equal(fv_vmix_ws_max(&wsmax, dp, &n, 24, 24, -1.0, &cfg, &e), -1);
    free(d.x);
}

/* Relative d*: every d_p up to the whole image, d* = rel x the last, and WS_max as the absolute
 * scan gives for that d* (same Monte Carlo streams, so exactly). */
static void test_ws_max_relative(void **state) {
    (void)state;
    fv_dp_cfg cfg;
    fv_dp_cfg_default(&cfg);
    cfg.trials = 500;
    double dp[16], dq[16], dstar = -1;
    int n, m, ws, ws_abs;
    fv_err e = {{0}};
    assert_int_equal(fv_vmix_ws_max_rel(&ws, &dstar, dp, &n, 28, 28, 0.55, &cfg, &e), 0);
    assert_int_equal(n, 6); /* WS 1..32, 32 clipped to the 28 x 28 image */
    assert_true(fabs(dstar - 0.55 * dp[5]) < 1e-12);
    assert_int_equal(fv_vmix_ws_max(&ws_abs, dq, &m, 28, 28, dstar, &cfg, &e), 0);
    assert_int_equal(ws, ws_abs);
    assert_memory_equal(dp, dq, (size_t)m * sizeof(double));
    print_message("iid 28x28: d* = %.3f (0.55 x %.3f), WS_max %d\n", dstar, dp[5], ws);
    assert_int_equal(ws, 4); /* iid normal windows: d_p(4) / d_p(32) about 0.48, d_p(8) / d_p(32) about 0.66 */
    assert_int_equal(fv_vmix_ws_max_rel(&ws, &dstar, dp, &n, 28, 28, 1.0, &cfg, &e), 0);
    assert_int_equal(ws, 32);
    assert_int_equal(fv_vmix_ws_max_rel(&ws, &dstar, dp, &n, 28, 28, 1e-6, &cfg, &e), 0);
    assert_int_equal(ws, 1);
    const double bad[] = {0.0, -0.5, 1.5, NAN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = 0;
        assert_int_equal(fv_vmix_ws_max_rel(&ws, &dstar, dp, &n, 28, 28, bad[i], &cfg, &e), -1);
        assert_non_null(strstr(e.msg, "relative d*"));
        assert_int_equal(ws, 0);
    }
}

/* ---- key file ---- */

static void test_key_file(void **state) {
    (void)state;
    char dir[] = "/tmp/fv_vmix_keyXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], p2[256];
    snprintf(path, sizeof path, "%s/client.key", dir);
    snprintf(p2, sizeof p2, "%s/other.key", dir);
    fv_err e = {{0}};
    uint8_t a[32], b[32];
    assert_int_equal(fv_vmix_key_load(path, a, &e), -1); /* missing */
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(fv_vmix_key_generate(path, 0, &e), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fv_vmix_key_load(path, a, &e), 0);
    assert_int_equal(fv_vmix_key_generate(path, 0, &e), -1); /* no overwrite */
    assert_non_null(strstr(e.msg, "already exists"));
    assert_int_equal(fv_vmix_key_load(path, b, &e), 0);
    assert_memory_equal(a, b, 32);
    assert_int_equal(fv_vmix_key_generate(path, 1, &e), 0); /* --force */
    assert_int_equal(fv_vmix_key_load(path, b, &e), 0);
    assert_memory_not_equal(a, b, 32);
    /* short (truncated) file */
    FILE *f = fopen(path, "rb");
    char buf[512];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(p2, "wb");
    fwrite(buf, 1, len - 9, f);
    fclose(f);
    chmod(p2, 0600);
    assert_int_equal(fv_vmix_key_load(p2, b, &e), -1);
    print_message("short: %s\n", e.msg);
    assert_non_null(strstr(e.msg, p2));
    /* readable by others */
    chmod(path, 0644);
    assert_int_equal(fv_vmix_key_load(path, b, &e), -1);
    assert_non_null(strstr(e.msg, "chmod 600"));
    unlink(path);
    unlink(p2);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multiset_and_tiling),
        cmocka_unit_test(test_mean_vfe_n_over_n_minus_1),
        cmocka_unit_test(test_permutations_uniform),
        cmocka_unit_test(test_permutations_uniform_6),
        cmocka_unit_test(test_positions_uniform_16),
        cmocka_unit_test(test_pairs_uniform_9),
        cmocka_unit_test(test_keyed_determinism),
        cmocka_unit_test(test_dataset_thread_independent),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_pairs_in),
        cmocka_unit_test(test_ws_min_monotone),
        cmocka_unit_test(test_dp_monotone),
        cmocka_unit_test(test_ws_max_relative),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
