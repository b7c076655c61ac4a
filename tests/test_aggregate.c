/* test_aggregate.c: the aggregation rules (shared/fl/aggregate.h):
 *  - FedAvg against a hand-computed weighted average, with updates arriving out of order and a
 *    skipped slot; bitwise the same result for every arrival order (and the in-order double sum);
 *    an empty round leaves the model alone;
 *  - DP-FedAvg on hand cases: deltas clipped to the bound (and the statistics of it), the sum over
 *    the sampled m (not the arrived), buffers averaged uniformly; the bound holds for one client
 *    with a large update; the noise has std z C / m, comes from the documented stream, is the same
 *    for the same (seed, round) and differs for another round or seed;
 *  - the rule an experiment's config selects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fl/aggregate.h"
#include "fl/config.h"
#include "fl/dp.h"
#include "rng.h"

static fv_agg_rule dp_rule(size_t n_private, double clip, double z, uint64_t seed) {
    return (fv_agg_rule){1, n_private, clip, z, seed};
}

static void test_fedavg_hand(void **state) {
    (void)state;
    fv_agg_rule rule = fv_agg_rule_fedavg();
    fv_agg *a = fv_agg_new(3, &rule);
    const float x0[3] = {1, 2, 3}, x1[3] = {4, 5, 6}, x2[3] = {0, 0, 9};
    fv_agg_begin(a, 3, 1, NULL);
    fv_agg_put(a, 2, x2, 3);
    assert_int_equal(fv_agg_waiting(a), 1);
    fv_agg_put(a, 0, x0, 1);
    assert_int_equal(fv_agg_waiting(a), 1); /* slot 2 still waits for slot 1 */
    fv_agg_put(a, 1, x1, 2);
    assert_int_equal(fv_agg_waiting(a), 0);
    float out[3];
    assert_int_equal(fv_agg_end(a, out), 3);
    /* (1*x0 + 2*x1 + 3*x2) / 6 = (9, 12, 42) / 6 */
    assert_true(out[0] == 1.5f && out[1] == 2.0f && out[2] == 7.0f);
    int clipped = -1;
    double norms = -1;
    fv_agg_dp_stats(a, &clipped, &norms);
    assert_true(clipped == 0 && norms == 0);

    /* slot 1 skipped, slot 0 never arrives: the average of slot 2 alone */
    fv_agg_begin(a, 3, 2, NULL);
    fv_agg_put(a, 2, x2, 3);
    fv_agg_skip(a, 1);
    assert_int_equal(fv_agg_end(a, out), 1);
    assert_true(out[0] == 0 && out[1] == 0 && out[2] == 9);

    /* nothing arrived: 0, out untouched */
    fv_agg_begin(a, 2, 3, NULL);
    fv_agg_skip(a, 0);
    assert_int_equal(fv_agg_end(a, out), 0);
    assert_true(out[0] == 0 && out[1] == 0 && out[2] == 9);
    fv_agg_destroy(&a);
    assert_null(a);
    fv_agg_destroy(&a); /* NULL is accepted */
}

/* Every arrival order of 5 updates (120 permutations) gives the same model bitwise, equal to the
 * weighted sum accumulated in slot order in double and divided once. */
static void test_fedavg_any_order(void **state) {
    (void)state;
    enum { N = 257, M = 5 };
    float x[M][N], want[N], out[N];
    double w[M] = {3, 17, 1, 8, 250};
    fv_rng r;
    fv_rng_seed2(&r, 7, 1);
    for (int s = 0; s < M; s++)
        for (int i = 0; i < N; i++) x[s][i] = (float)fv_rng_normal(&r);
    for (int i = 0; i < N; i++) {
        double acc = 0, tw = 0;
        for (int s = 0; s < M; s++) acc += w[s] * (double)x[s][i], tw += w[s];
        want[i] = (float)(acc / tw);
    }
    fv_agg_rule rule = fv_agg_rule_fedavg();
    fv_agg *a = fv_agg_new(N, &rule);
    int perm[M] = {0, 1, 2, 3, 4}, count = 0;
    /* Heap's algorithm, iterative */
    int cnt[M] = {0};
    for (int k = 0;;) {
        fv_agg_begin(a, M, 1, NULL);
        for (int s = 0; s < M; s++) fv_agg_put(a, perm[s], x[perm[s]], w[perm[s]]);
        assert_int_equal(fv_agg_end(a, out), M);
        assert_memory_equal(out, want, sizeof out);
        count++;
        while (k < M && cnt[k] >= k) cnt[k++] = 0;
        if (k == M) break;
        int j = k % 2 ? cnt[k] : 0, t = perm[j];
        perm[j] = perm[k];
        perm[k] = t;
        cnt[k]++;
        k = 0;
    }
    assert_int_equal(count, 120);
    fv_agg_destroy(&a);
}

/* DP with no noise on a hand case: global (1, 1 | 5), m = 3 sampled, two arrive. Client A's
 * delta (3, 4) has norm 5 and is clipped to (0.6, 0.8); client B's (0.3, -0.4) has norm 0.5 and
 * is kept. The model moves by the sum over m = 3: (0.3, 0.4 / 3), and its buffer (the
 * coordinate after n_private) is the uploads' uniform average, whatever their sample counts. */
static void test_dp_hand(void **state) {
    (void)state;
    fv_agg_rule rule = dp_rule(2, 1.0, 0.0, 9);
    fv_agg *a = fv_agg_new(3, &rule);
    float g[3] = {1, 1, 5};
    const float ua[3] = {4, 5, 2}, ub[3] = {1.3f, 0.6f, 4};
    fv_agg_begin(a, 3, 1, g);
    fv_agg_put(a, 2, ub, 1000); /* arrives first, waits: its delta is taken now */
    fv_agg_put(a, 0, ua, 1);
    int clipped = 0;
    double norms = 0;
    fv_agg_dp_stats(a, &clipped, &norms);
    assert_int_equal(clipped, 1);
    assert_true(fabs(norms - 5.5) < 1e-6); /* 5 + 0.5, B's float inputs */
    float out[3];
    assert_int_equal(fv_agg_end(a, out), 2);
    assert_true(fabs(out[0] - (1 + (0.6 + 0.3) / 3)) < 1e-6);
    assert_true(fabs(out[1] - (1 + (0.8 - 0.4) / 3)) < 1e-6);
    assert_true(out[2] == 3.0f);
    /* the same round with the result written over the global itself (as the coordinator does) */
    fv_agg_begin(a, 3, 1, g);
    fv_agg_put(a, 2, ub, 1000);
    fv_agg_put(a, 0, ua, 1);
    assert_int_equal(fv_agg_end(a, g), 2);
    assert_memory_equal(g, out, sizeof out);
    fv_agg_destroy(&a);
}

/* One client with a large update: the model moves by at most the clip (no noise, m = 1). */
static void test_dp_bound(void **state) {
    (void)state;
    enum { N = 1000 };
    float g[N], u[N], out[N];
    fv_rng r;
    fv_rng_seed2(&r, 3, 2);
    for (int i = 0; i < N; i++) g[i] = (float)fv_rng_normal(&r), u[i] = g[i] + 10 * (float)fv_rng_normal(&r);
    for (int k = 0; k < 3; k++) {
        double clip = k == 0 ? 0.01 : k == 1 ? 1.0 : 50.0;
        fv_agg_rule rule = dp_rule(N, clip, 0.0, 1);
        fv_agg *a = fv_agg_new(N, &rule);
        fv_agg_begin(a, 1, 1, g);
        fv_agg_put(a, 0, u, 60);
        assert_int_equal(fv_agg_end(a, out), 1);
        double s = 0, s0 = 0;
        for (int i = 0; i < N; i++) {
            s += ((double)out[i] - g[i]) * ((double)out[i] - g[i]);
            s0 += ((double)u[i] - g[i]) * ((double)u[i] - g[i]);
        }
        /* float rounding of g + d: relative 1e-5 of the bound */
        assert_true(sqrt(s) <= clip * (1 + 1e-5) + 1e-6);
        if (clip < sqrt(s0)) assert_true(sqrt(s) > clip * (1 - 1e-3)); /* clipped to the bound, not below */
        else assert_true(fabs(sqrt(s) - sqrt(s0)) < 1e-3);               /* under the bound: unchanged */
        int clipped = 0;
        double norm = 0;
        fv_agg_dp_stats(a, &clipped, &norm);
        assert_int_equal(clipped, clip < sqrt(s0));
        assert_true(fabs(norm - sqrt(s0)) < 1e-6 * sqrt(s0));
        fv_agg_destroy(&a);
    }
}

/* The noise of round r: std z C / m, from the stream (seed ^ FV_AGG_DP_NOISE_DOMAIN, r); the same
 * (seed, round) gives the same model bitwise, another round or seed does not. Every client
 * uploads the global model (zero deltas), so the model moves by the noise alone. */
static void dp_noise_round(float *out, size_t n, const float *g, uint64_t seed, int round) {
    fv_agg_rule rule = dp_rule(n, 2.0, 1.5, seed); /* std 1.5 * 2 / 4 = 0.75 */
    fv_agg *a = fv_agg_new(n, &rule);
    fv_agg_begin(a, 4, round, g);
    fv_agg_put(a, 1, g, 10);
    fv_agg_put(a, 3, g, 10);
    assert_int_equal(fv_agg_end(a, out), 2);
    fv_agg_destroy(&a);
}

static void test_dp_noise(void **state) {
    (void)state;
    size_t n = 1u << 18;
    float *g = calloc(n, sizeof *g), *x = calloc(n, sizeof *x), *y = calloc(n, sizeof *y);
    double *want = calloc(n, sizeof *want);
    assert_true(g && x && y && want);
    fv_agg_rule rule = dp_rule(n, 2.0, 1.5, 42), plain = fv_agg_rule_fedavg();
    assert_true(fv_agg_dp_noise_std(&rule, 4) == 0.75 && fv_agg_dp_noise_std(&plain, 4) == 0);
    dp_noise_round(x, n, g, 42, 3);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    double mean = s / n, sigma = 0.75;
    for (size_t i = 0; i < n; i++) s2 += (x[i] - mean) * (x[i] - mean);
    /* mean within 5 standard errors; std within 1% (its standard error is 0.14% of sigma) */
    assert_true(fabs(mean) < 5 * sigma / sqrt((double)n));
    assert_true(fabs(sqrt(s2 / (n - 1)) - sigma) / sigma < 0.01);
    /* exactly the documented stream */
    fv_dp_add_noise(want, n, 1.5 * 2.0 / 4, 42 ^ FV_AGG_DP_NOISE_DOMAIN, 3);
    for (size_t i = 0; i < n; i++) assert_true(x[i] == (float)want[i]);
    dp_noise_round(y, n, g, 42, 3);
    assert_memory_equal(x, y, n * sizeof *x);
    dp_noise_round(y, n, g, 42, 4);
    assert_true(memcmp(x, y, n * sizeof *x) != 0);
    dp_noise_round(y, n, g, 43, 3);
    assert_true(memcmp(x, y, n * sizeof *x) != 0);
    free(g);
    free(x);
    free(y);
    free(want);
}

static void test_rule_from_config(void **state) {
    (void)state;
    fv_config c;
    fv_err e;
    fv_config_defaults(&c);
    fv_agg_rule r = fv_agg_rule_from_config(&c, 10);
    assert_int_equal(r.dp, 0);
    const char *ini = "[fl]\nseed = 77\n[dp]\nenabled = true\nclip = 0.5\nnoise_multiplier = 1.2\n";
    assert_int_equal(fv_config_parse(&c, "x.ini", ini, strlen(ini), &e), 0);
    r = fv_agg_rule_from_config(&c, 10);
    assert_true(r.dp == 1 && r.n_private == 10 && r.clip == 0.5 && r.noise_multiplier == 1.2 && r.seed == 77);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fedavg_hand), cmocka_unit_test(test_fedavg_any_order),
        cmocka_unit_test(test_dp_hand),     cmocka_unit_test(test_dp_bound),
        cmocka_unit_test(test_dp_noise),    cmocka_unit_test(test_rule_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
