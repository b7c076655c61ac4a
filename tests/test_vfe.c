/* test_vfe.c: VFE (Eq. 1-4) against hand-computed values and its stated properties. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "rng.h"
#include "vmix/vfe.h"

/* 2x2 checkerboard 0/1: four pairs each with g = 1, s2 = 1/4, |P| = 4 -> 4 / (2 * 0.25 * 4) = 2. */
static void test_region_by_hand(void **state) {
    (void)state;
    uint8_t u[4] = {0, 255, 255, 0};
    float f[4] = {0.f, 1.f, 1.f, 0.f};
    assert_true(fabs(fv_vfe_region_u8(u, 2, 2, 2) - 2.0) < 1e-12);
    assert_true(fabs(fv_vfe_region_f32(f, 2, 2, 2) - 2.0) < 1e-12);
    /* a 3x1 ramp 0, 1, 2 (x 100): G = 2 * 100^2, s2 = 2/3 * 100^2, |P| = 2 -> 2 / (2 * 2/3 * 2) = 0.75 */
    uint8_t r[3] = {0, 100, 200};
    assert_true(fabs(fv_vfe_region_u8(r, 3, 3, 1) - 0.75) < 1e-12);
    /* stride is honoured: the same ramp as the middle column of a 3x3 array, read vertically */
    uint8_t m[9] = {9, 0, 9, 9, 100, 9, 9, 200, 9};
    assert_true(fabs(fv_vfe_region_u8(m + 1, 3, 1, 3) - 0.75) < 1e-12);
}

static void test_flat_excluded(void **state) {
    (void)state;
    uint8_t flat[16];
    for (int i = 0; i < 16; i++) flat[i] = 77;
    assert_true(fv_vfe_region_u8(flat, 4, 4, 4) == FV_VFE_FLAT);
    assert_true(fv_vfe_region_u8(flat, 4, 1, 1) == FV_VFE_FLAT); /* one pixel: no pairs */
    float ff[16];
    for (int i = 0; i < 16; i++) ff[i] = 0.3f;
    assert_true(fv_vfe_region_f32(ff, 4, 4, 4) == FV_VFE_FLAT);
    /* an all-flat image has VFE = lambda */
    assert_true(fabs(fv_vfe_channel_u8(flat, 4, 4, 2, 2.5) - 2.5) < 1e-12);
    /* 16 x 8 image: left 8x8 block noise, right 8x8 block flat: Eq. 3 is the left block alone */
    uint8_t img[128];
    fv_rng r;
    fv_rng_seed(&r, 5);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 16; x++) img[y * 16 + x] = x < 8 ? (uint8_t)fv_rng_below(&r, 256) : 40;
    double left = fv_vfe_region_u8(img, 16, 8, 8);
    assert_true(left > 0.0);
    assert_true(fabs(fv_vfe_channel_u8(img, 8, 16, 8, 1.0) - left) < 1e-12);
    assert_true(fabs(fv_vfe_channel_u8(img, 8, 16, 8, 3.0) - 3.0 * left) < 1e-12);
}

/* Edge blocks are clipped: a 10 x 10 image with B = 8 has blocks 8x8, 2x8, 8x2, 2x2. */
static void test_edge_blocks(void **state) {
    (void)state;
    uint8_t img[100];
    fv_rng r;
    fv_rng_seed(&r, 9);
    for (int i = 0; i < 100; i++) img[i] = (uint8_t)fv_rng_below(&r, 256);
    double want = (fv_vfe_region_u8(img, 10, 8, 8) + fv_vfe_region_u8(img + 8, 10, 2, 8) +
                   fv_vfe_region_u8(img + 80, 10, 8, 2) + fv_vfe_region_u8(img + 88, 10, 2, 2)) / 4.0;
    assert_true(fabs(fv_vfe_channel_u8(img, 10, 10, 8, 1.0) - want) < 1e-12);
}

/* uint8 and float paths agree on x / 255 (tolerance 1e-9 relative: float rounding of x/255). */
static void test_u8_matches_f32(void **state) {
    (void)state;
    enum { C = 3, H = 20, W = 13 };
    uint8_t u[C * H * W];
    float f[C * H * W];
    fv_rng r;
    fv_rng_seed(&r, 11);
    for (int i = 0; i < C * H * W; i++) {
        u[i] = (uint8_t)(i % 7 == 0 ? 0 : fv_rng_below(&r, 256));
        f[i] = u[i] / 255.0f;
    }
    double a = fv_vfe_image_u8(u, C, H, W, 8, 1.0), b = fv_vfe_image_f32(f, C, H, W, 8, 1.0);
    assert_true(fabs(a - b) < 1e-6 * a);
    /* Eq. 4 is the mean of the channels */
    double m = 0.0;
    for (int c = 0; c < C; c++) m += fv_vfe_channel_u8(u + c * H * W, H, W, 8, 1.0);
    assert_true(fabs(a - m / C) < 1e-12);
}

/* Every fast path of the uint8 region (2, 4, 8, 16 wide squares: unrolled and SSE2) gives the
 * float reference's value (relative 1e-9), at random positions including the last row and
 * column, on content with flat runs and full-range jumps. */
static void test_region_fast_paths(void **state) {
    (void)state;
    enum { S = 40 };
    static uint8_t u[S * S];
    static float f[S * S];
    fv_rng r;
    fv_rng_seed(&r, 17);
    const int sizes[6] = {2, 4, 8, 16, 5, 12};
    for (int t = 0; t < 3000; t++) {
        for (int i = 0; i < S * S; i++) {
            u[i] = (uint8_t)(fv_rng_below(&r, 3) ? fv_rng_below(&r, 256) : (fv_rng_below(&r, 2) ? 255 : 0));
            f[i] = u[i];
        }
        int w = sizes[t % 6];
        int x = (int)fv_rng_below(&r, (uint64_t)(S - w + 1)), y = (int)fv_rng_below(&r, (uint64_t)(S - w + 1));
        if (t % 7 == 0) x = y = S - w; /* touching the buffer's end */
        double a = fv_vfe_region_u8(u + y * S + x, S, w, w), b = fv_vfe_region_f32(f + y * S + x, S, w, w);
        assert_true((a == FV_VFE_FLAT) == (b == FV_VFE_FLAT));
        if (a != FV_VFE_FLAT) assert_true(fabs(a - b) <= 1e-9 * b);
    }
}

/* VFE is invariant to a * x + b for a > 0 (tolerance 1e-9 relative, double accumulation of
 * float inputs). */
static void test_affine_invariance(void **state) {
    (void)state;
    enum { H = 24, W = 24 };
    float x[H * W], y[H * W];
    fv_rng r;
    fv_rng_seed(&r, 3);
    for (int i = 0; i < H * W; i++) {
        int px = i % W, py = i / W;
        x[i] = 0.5f * sinf(px * 0.3f) * cosf(py * 0.2f) + 0.1f * fv_rng_uniform(&r);
    }
    const float as[3] = {0.01f, 1.0f, 37.0f}, bs[3] = {-5.0f, 0.0f, 0.25f};
    double ref = fv_vfe_image_f32(x, 1, H, W, 8, 1.0);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < H * W; i++) y[i] = as[k] * x[i] + bs[k];
        double v = fv_vfe_image_f32(y, 1, H, W, 8, 1.0);
        /* float storage of a*x+b rounds each value: relative 1e-5 covers it */
        assert_true(fabs(v - ref) < 1e-5 * ref);
    }
}

/* Smooth content scores far below 1, i.i.d. noise about 1 (expected 64/63 per 8x8 block; 64
 * blocks of a 64x64 image: tolerance 0.1, about 6 standard errors). */
static void test_smooth_low_noise_one(void **state) {
    (void)state;
    enum { H = 64, W = 64 };
    uint8_t s[H * W], n[H * W];
    fv_rng r;
    fv_rng_seed(&r, 21);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            s[y * W + x] = (uint8_t)(2 * x + y);
            n[y * W + x] = (uint8_t)fv_rng_below(&r, 256);
        }
    double vs = fv_vfe_image_u8(s, 1, H, W, 8, 1.0), vn = fv_vfe_image_u8(n, 1, H, W, 8, 1.0);
    print_message("smooth ramp VFE %.4f, noise VFE %.4f\n", vs, vn);
    assert_true(vs < 0.1);
    assert_true(fabs(vn - 64.0 / 63.0) < 0.1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_by_hand),     cmocka_unit_test(test_flat_excluded),
        cmocka_unit_test(test_edge_blocks),        cmocka_unit_test(test_u8_matches_f32),
        cmocka_unit_test(test_region_fast_paths),
        cmocka_unit_test(test_affine_invariance),  cmocka_unit_test(test_smooth_low_noise_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
