/* test_vmix_alloc.c: uniform windows of any size (vmix_alloc.h): every window keeps its multiset
 * of values per channel and nothing crosses a window border; s = 1 is the identity; the output is
 * a function of the key; channels are permuted independently; a pixel lands uniformly in its
 * window (chi-square); s < 1 is an error. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmix/vmix_alloc.h"

/* Every window of size s: same sorted values in and out, per channel. */
static void check_windows(const uint8_t *in, const uint8_t *out, int c, int h, int w, int s) {
    uint8_t a[4096], b[4096];
    for (int ch = 0; ch < c; ch++)
        for (int y0 = 0; y0 < h; y0 += s)
            for (int x0 = 0; x0 < w; x0 += s) {
                int n = 0;
                for (int y = y0; y < h && y < y0 + s; y++)
                    for (int x = x0; x < w && x < x0 + s; x++, n++) {
                        a[n] = in[(ch * h + y) * w + x];
                        b[n] = out[(ch * h + y) * w + x];
                    }
                int ca[256] = {0}, cb[256] = {0};
                for (int i = 0; i < n; i++) {
                    ca[a[i]]++;
                    cb[b[i]]++;
                }
                assert_memory_equal(ca, cb, sizeof ca);
            }
}

static void test_multiset_and_borders(void **st) {
    (void)st;
    const int c = 3, h = 29, w = 31; /* edge windows are clipped for every s below */
    uint8_t in[3 * 29 * 31], out[3 * 29 * 31], key[32];
    for (int i = 0; i < c * h * w; i++) in[i] = (uint8_t)(i * 7 + i / 5);
    fv_vmix_alloc_seed_key(key, 1, 0, 0);
    fv_err e = {{0}};
    for (int s = 1; s <= 9; s++) {
        assert_int_equal(fv_vmix_alloc_uniform(out, in, c, h, w, s, key, &e), 0);
        check_windows(in, out, c, h, w, s);
        if (s == 1) assert_memory_equal(in, out, sizeof in);
        if (s >= 3) assert_memory_not_equal(in, out, sizeof in);
    }
    assert_int_equal(fv_vmix_alloc_uniform(out, in, c, h, w, 0, key, &e), -1);
    assert_non_null(strstr(e.msg, ">= 1"));
}

static void test_keyed(void **st) {
    (void)st;
    uint8_t in[2 * 16 * 16], a[2 * 16 * 16], b[2 * 16 * 16], k1[32], k2[32];
    for (int i = 0; i < 512; i++) in[i] = (uint8_t)i;
    fv_vmix_alloc_seed_key(k1, 5, 0, 3);
    fv_vmix_alloc_seed_key(k2, 5, 0, 4);
    fv_err e = {{0}};
    assert_int_equal(fv_vmix_alloc_uniform(a, in, 2, 16, 16, 3, k1, &e), 0);
    assert_int_equal(fv_vmix_alloc_uniform(b, in, 2, 16, 16, 3, k1, &e), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(fv_vmix_alloc_uniform(b, in, 2, 16, 16, 3, k2, &e), 0);
    assert_memory_not_equal(a, b, sizeof a);
    /* channels get independent permutations: channel 1 is channel 0 + 256 in value order, so the
     * same permutation would give out1 == out0 + 256 (mod 256: equal bytes) everywhere */
    int same = 0;
    for (int i = 0; i < 256; i++) same += a[i] == a[256 + i];
    assert_true(same < 128);
    uint8_t k3[32];
    fv_vmix_alloc_seed_key(k3, 5, 1, 3); /* the split is part of the key */
    assert_memory_not_equal(k1, k3, 32);
}

/* The top-left pixel of a 3 x 3 window lands on each of the 9 positions with probability 1/9:
 * 18,000 keys, chi-square with 8 degrees of freedom below 26.1 (p = 0.001). */
static void test_uniform_position(void **st) {
    (void)st;
    uint8_t in[9], out[9], key[32];
    for (int i = 0; i < 9; i++) in[i] = (uint8_t)i;
    long cnt[9] = {0};
    const int trials = 18000;
    fv_err e = {{0}};
    for (int t = 0; t < trials; t++) {
        fv_vmix_alloc_seed_key(key, 77, 0, (uint64_t)t);
        assert_int_equal(fv_vmix_alloc_uniform(out, in, 1, 3, 3, 3, key, &e), 0);
        for (int p = 0; p < 9; p++)
            if (out[p] == 0) cnt[p]++;
    }
    double chi = 0, ex = trials / 9.0;
    for (int p = 0; p < 9; p++) chi += (cnt[p] - ex) * (cnt[p] - ex) / ex;
    assert_true(chi < 26.1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multiset_and_borders),
        cmocka_unit_test(test_keyed),
        cmocka_unit_test(test_uniform_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
