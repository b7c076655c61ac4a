/* test_aggregate.c: the aggregation rules (shared/fl/aggregate.h):
 *  - FedAvg against a hand-computed weighted average, with updates arriving out of order and a
 *    skipped slot; bitwise the same result for every arrival order (and the in-order double sum);
 *    an empty round leaves the model alone;
 *  - DP-FedAvg on hand cases: deltas clipped to the bound (and the statistics of it), the sum over
 *    the sampled m (not the arrived), buffers averaged uniformly; the bound holds for one client
 *    with a large update; the noise has std z C / m, comes from the documented stream, is the same
 *    for the same (seed, round) and differs for another round or seed;
 *  - the robust rules on hand-made updates with hand-computed results: coordinate-wise median (odd
 *    and even counts), trimmed mean, Krum and Multi-Krum (scores, ties broken by slot), norm
 *    clipping and centred clipping; an outlier update of huge finite values (3.4e38) that median, trimmed mean, Krum
 *    and the clips keep out and FedAvg does not; batch-norm buffers as documented; a round with fewer
 *    updates than the rule needs keeps the global model; every rule bitwise independent of the
 *    arrival order;
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

static fv_agg_rule dp_rule(size_t n_train, double clip, double z, uint64_t seed) {
    return (fv_agg_rule){.dp = 1, .n_train = n_train, .clip = clip, .noise_multiplier = z, .seed = seed};
}

/* A robust rule over models whose first n_train coordinates are trainable. */
static fv_agg_rule robust_rule(fv_aggregator kind, size_t n_train) {
    return (fv_agg_rule){.kind = kind, .n_train = n_train, .trim = 0.2, .krum_f = 1, .multikrum_m = 3, .clip_norm = 1};
}

/* The largest finite floats: an update meant to drag the model off. */
#define HUGE_F 3.4e38f

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

enum { ORD_N = 257, ORD_M = 5 };

/* Every arrival order of ORD_M updates (120 permutations) under rule gives the same model bitwise,
 * `want` (NULL: the model of the first order). */
static void check_any_order(const fv_agg_rule *rule, float x[ORD_M][ORD_N], const double *w, const float *g,
                            const float *want) {
    float first[ORD_N], out[ORD_N];
    fv_agg *a = fv_agg_new(ORD_N, rule);
    int perm[ORD_M] = {0, 1, 2, 3, 4}, count = 0;
    /* Heap's algorithm, iterative */
    int cnt[ORD_M] = {0};
    for (int k = 0;;) {
        fv_agg_begin(a, ORD_M, 1, g);
        for (int s = 0; s < ORD_M; s++) fv_agg_put(a, perm[s], x[perm[s]], w[perm[s]]);
        assert_int_equal(fv_agg_end(a, out), ORD_M);
        assert_int_equal(fv_agg_held(a), 0);
        if (count == 0) memcpy(first, want ? want : out, sizeof first);
        assert_memory_equal(out, first, sizeof out);
        count++;
        while (k < ORD_M && cnt[k] >= k) cnt[k++] = 0;
        if (k == ORD_M) break;
        int j = k % 2 ? cnt[k] : 0, t = perm[j];
        perm[j] = perm[k];
        perm[k] = t;
        cnt[k]++;
        k = 0;
    }
    assert_int_equal(count, 120);
    fv_agg_destroy(&a);
}

/* FedAvg: equal to the weighted sum accumulated in slot order in double and divided once. */
static void test_fedavg_any_order(void **state) {
    (void)state;
    float x[ORD_M][ORD_N], want[ORD_N];
    double w[ORD_M] = {3, 17, 1, 8, 250};
    fv_rng r;
    fv_rng_seed2(&r, 7, 1);
    for (int s = 0; s < ORD_M; s++)
        for (int i = 0; i < ORD_N; i++) x[s][i] = (float)fv_rng_normal(&r);
    for (int i = 0; i < ORD_N; i++) {
        double acc = 0, tw = 0;
        for (int s = 0; s < ORD_M; s++) acc += w[s] * (double)x[s][i], tw += w[s];
        want[i] = (float)(acc / tw);
    }
    fv_agg_rule rule = fv_agg_rule_fedavg();
    check_any_order(&rule, x, w, NULL, want);
}

/* DP with no noise on a hand case: global (1, 1 | 5), m = 3 sampled, two arrive. Client A's
 * delta (3, 4) has norm 5 and is clipped to (0.6, 0.8); client B's (0.3, -0.4) has norm 0.5 and
 * is kept. The model moves by the sum over m = 3: (0.3, 0.4 / 3), and its buffer (the
 * coordinate after n_train) is the uploads' uniform average, whatever their sample counts. */
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

/* Median: updates of 1 trainable coordinate pair and 1 buffer, one of them huge (3.4e38, of both
 * signs). Odd count: the middle value; even count: the mean of the two middle ones; the buffer
 * coordinate likewise. FedAvg of the same updates is dragged off by the outlier. */
static void test_median_hand(void **state) {
    (void)state;
    const float g[3] = {0, 0, 0};
    const float x0[3] = {1, 10, 5}, x1[3] = {2, 20, 6}, xb[3] = {HUGE_F, -HUGE_F, HUGE_F}, x3[3] = {4, 30, 7};
    fv_agg_rule rule = robust_rule(FV_AGGREGATOR_MEDIAN, 2);
    fv_agg *a = fv_agg_new(3, &rule);
    float out[3];
    fv_agg_begin(a, 4, 1, g);
    fv_agg_put(a, 2, xb, 1);
    fv_agg_put(a, 0, x0, 1);
    fv_agg_skip(a, 3);
    fv_agg_put(a, 1, x1, 1e6); /* sample counts do not matter */
    assert_int_equal(fv_agg_waiting(a), 0);
    assert_int_equal(fv_agg_end(a, out), 3);
    assert_int_equal(fv_agg_held(a), 0);
    assert_true(out[0] == 2 && out[1] == 10 && out[2] == 6); /* {1,2,H} {-H,10,20} {5,6,H} */
    fv_agg_begin(a, 4, 2, g);
    fv_agg_put(a, 3, x3, 1);
    fv_agg_put(a, 2, xb, 1);
    fv_agg_put(a, 1, x1, 1);
    fv_agg_put(a, 0, x0, 1);
    assert_int_equal(fv_agg_end(a, out), 4);
    assert_true(out[0] == 3 && out[1] == 15 && out[2] == 6.5f); /* (2+4)/2, (10+20)/2, (6+7)/2 */
    /* one update: its own values */
    fv_agg_begin(a, 4, 3, g);
    fv_agg_put(a, 1, x1, 1);
    assert_int_equal(fv_agg_end(a, out), 1);
    assert_memory_equal(out, x1, sizeof out);
    fv_agg_destroy(&a);

    fv_agg_rule fedavg = fv_agg_rule_fedavg();
    a = fv_agg_new(3, &fedavg);
    fv_agg_begin(a, 4, 1, NULL);
    fv_agg_put(a, 0, x0, 1);
    fv_agg_put(a, 1, x1, 1);
    fv_agg_put(a, 2, xb, 1);
    fv_agg_put(a, 3, x3, 1);
    assert_int_equal(fv_agg_end(a, out), 4);
    assert_true(out[0] > 8e37f && out[1] < -8e37f); /* a quarter of 3.4e38 */
    fv_agg_destroy(&a);
}

/* Trimmed mean: 5 updates, trim 0.2 drops 1 per side and coordinate (the outlier among them),
 * trim 0.4 drops 2 (the median). */
static void test_trimmed_mean_hand(void **state) {
    (void)state;
    const float g[2] = {0, 0};
    const float x[5][2] = {{1, 10}, {2, -HUGE_F}, {HUGE_F, 30}, {4, 20}, {3, 40}};
    float out[2];
    for (int k = 0; k < 2; k++) {
        fv_agg_rule rule = robust_rule(FV_AGGREGATOR_TRIMMED_MEAN, 1);
        rule.trim = k == 0 ? 0.2 : 0.4;
        fv_agg *a = fv_agg_new(2, &rule);
        fv_agg_begin(a, 5, 1, g);
        for (int s = 4; s >= 0; s--) fv_agg_put(a, s, x[s], 1 + s);
        assert_int_equal(fv_agg_end(a, out), 5);
        /* trim 0.2: mean(2, 3, 4), mean(10, 20, 30); trim 0.4: the middle ones, 3 and 20 */
        assert_true(out[0] == 3 && out[1] == 20);
        fv_agg_destroy(&a);
    }
    /* trim 0.3 of 5: floor(1.5) = 1 per side; the plain mean of {1, 2, 4} for coordinate 0 */
    const float y[5][2] = {{1, 0}, {2, 0}, {7, 0}, {4, 0}, {-9, 0}};
    fv_agg_rule rule = robust_rule(FV_AGGREGATOR_TRIMMED_MEAN, 2);
    rule.trim = 0.3;
    fv_agg *a = fv_agg_new(2, &rule);
    fv_agg_begin(a, 5, 1, g);
    for (int s = 0; s < 5; s++) fv_agg_put(a, s, y[s], 1);
    assert_int_equal(fv_agg_end(a, out), 5);
    assert_true(out[0] == (float)(7.0 / 3) && out[1] == 0);
    fv_agg_destroy(&a);
}

/* Krum and Multi-Krum, f = 1, on 5 updates of 1 trainable coordinate and 1 buffer. Trainable values
 * A = 0, B = 1, C = 3, D = 7 and an outlier E = 3.4e38; squared distances AB 1, AC 9, AD 49, BC 4,
 * BD 36, CD 16 (E: ~1e77). Each score sums the k - f - 2 = 2 smallest: A 10, B 5, C 13, D 52, E
 * huge. Krum picks B with its buffer; Multi-Krum with m = 3 averages B, A, C plainly (buffers
 * too). Slots: D, E, B, A, C. */
static void test_krum_hand(void **state) {
    (void)state;
    const float g[2] = {0, 0};
    const float x[5][2] = {{7, 70}, {HUGE_F, -HUGE_F}, {1, 10}, {0, 0}, {3, 30}};
    float out[2];
    fv_agg_rule rule = robust_rule(FV_AGGREGATOR_KRUM, 1);
    fv_agg *a = fv_agg_new(2, &rule);
    fv_agg_begin(a, 5, 1, g);
    for (int s = 0; s < 5; s++) fv_agg_put(a, s, x[s], s == 1 ? 1e9 : 1);
    assert_int_equal(fv_agg_end(a, out), 5);
    assert_true(out[0] == 1 && out[1] == 10);
    fv_agg_destroy(&a);
    rule = robust_rule(FV_AGGREGATOR_MULTIKRUM, 1);
    a = fv_agg_new(2, &rule);
    fv_agg_begin(a, 5, 1, g);
    for (int s = 0; s < 5; s++) fv_agg_put(a, s, x[s], 1);
    assert_int_equal(fv_agg_end(a, out), 5);
    assert_true(out[0] == (float)(4.0 / 3) && out[1] == (float)(40.0 / 3));
    fv_agg_destroy(&a);
    /* ties: f = 0, 3 updates 2, 0, 1 each 1 from its nearest: every score is 1, the lowest slot wins */
    const float t[3][2] = {{2, 0}, {0, 0}, {1, 0}};
    rule = robust_rule(FV_AGGREGATOR_KRUM, 1);
    rule.krum_f = 0;
    a = fv_agg_new(2, &rule);
    fv_agg_begin(a, 3, 1, g);
    fv_agg_put(a, 2, t[2], 1);
    fv_agg_put(a, 1, t[1], 1);
    fv_agg_put(a, 0, t[0], 1);
    assert_int_equal(fv_agg_end(a, out), 3);
    assert_true(out[0] == 2);
    fv_agg_destroy(&a);
}

/* clip on the DP hand case: global (1, 1 | 5); A's delta (3, 4) (norm 5) is clipped to (0.6, 0.8),
 * B's (0.3, -0.4) (norm 0.5) is kept; weights 1 and 3: the model moves by (0.6 + 0.9, 0.8 - 1.2) / 4;
 * the buffer is the median of (2, 4). An outlier of 3.4e38 everywhere with weight 1 moves it by
 * at most its clipped delta (0.7071, 0.7071) / 5, and the buffer median ignores it. */
static void test_clip_hand(void **state) {
    (void)state;
    float g[3] = {1, 1, 5};
    const float ua[3] = {4, 5, 2}, ub[3] = {1.3f, 0.6f, 4}, uh[3] = {HUGE_F, HUGE_F, HUGE_F};
    fv_agg_rule rule = robust_rule(FV_AGGREGATOR_CLIP, 2);
    fv_agg *a = fv_agg_new(3, &rule);
    float out[3];
    fv_agg_begin(a, 3, 1, g);
    fv_agg_put(a, 2, ub, 3);
    fv_agg_put(a, 0, ua, 1);
    assert_int_equal(fv_agg_end(a, out), 2);
    assert_true(fabs(out[0] - (1 + 1.5 / 4)) < 1e-6 && fabs(out[1] - (1 - 0.4 / 4)) < 1e-6 && out[2] == 3);
    fv_agg_begin(a, 3, 2, g);
    fv_agg_put(a, 1, uh, 1);
    fv_agg_put(a, 2, ub, 3);
    fv_agg_put(a, 0, ua, 1);
    assert_int_equal(fv_agg_end(a, g), 3); /* over the global itself, as the coordinator does */
    double h = sqrt(0.5);
    assert_true(fabs(g[0] - (1 + (1.5 + h) / 5)) < 1e-6 && fabs(g[1] - (1 + (-0.4 + h) / 5)) < 1e-6 && g[2] == 4);
    fv_agg_destroy(&a);
}

/* centered_clip, clip_norm 1, on 1 trainable coordinate (global 0) and 1 buffer: deltas 0, 1, 2 and
 * an outlier 3.4e38 (k = 4, uniform weights whatever the sample counts). The centre v:
 *   v0 = 0:     deviations 0, 1, 2 -> 1, H -> 1:            v1 = 3/4
 *   v1 = 0.75:  -0.75, 0.25, 1.25 -> 1, H -> 1 (sum 1.5):   v2 = 0.75 + 1.5/4 = 1.125
 *   v2 = 1.125: -1.125 -> -1, -0.125, 0.875, H -> 1 (0.75): v3 = 1.125 + 0.75/4 = 1.3125
 * (all exact in binary); the buffer is the median of (10, 20, 30, H) = 25. */
static void test_centered_clip_hand(void **state) {
    (void)state;
    _Static_assert(FV_AGG_CCLIP_ITERS == 3, "the hand computation below runs 3 iterations");
    float g[2] = {0, 0};
    const float x[4][2] = {{0, 10}, {1, 20}, {2, 30}, {HUGE_F, HUGE_F}};
    fv_agg_rule rule = robust_rule(FV_AGGREGATOR_CENTERED_CLIP, 1);
    fv_agg *a = fv_agg_new(2, &rule);
    float out[2];
    fv_agg_begin(a, 4, 1, g);
    for (int s = 3; s >= 0; s--) fv_agg_put(a, s, x[s], s == 3 ? 1e9 : 1);
    assert_int_equal(fv_agg_end(a, out), 4);
    assert_true(out[0] == 1.3125f && out[1] == 25);
    /* the same round with a global of 1: every delta 1 less, so the model is 1 + v over deltas
     * -1, 0, 1, H: v1 = (-1 + 0 + 1 + 1) / 4 = 0.25; devs -1.25 -> -1, -0.25, 0.75, 1: v2 = 0.375;
     * devs -1.375 -> -1, -0.375, 0.625, 1: v3 = 0.375 + 0.25 / 4 = 0.4375 */
    g[0] = 1;
    fv_agg_begin(a, 4, 2, g);
    for (int s = 0; s < 4; s++) fv_agg_put(a, s, x[s], 1);
    assert_int_equal(fv_agg_end(a, g), 4);
    assert_true(g[0] == 1.4375f && g[1] == 25);
    fv_agg_destroy(&a);
}

/* Fewer arrived updates than the rule needs: the global model is kept (written to out), the slots
 * put are still returned, fv_agg_held says so; enough in the next round applies again. */
static void test_robust_too_few(void **state) {
    (void)state;
    const float g[2] = {5, 50};
    const float x[6][2] = {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}};
    struct {
        fv_aggregator kind;
        int arrived; /* slots 0..arrived-1 of 6 arrive */
        int held;
    } cases[] = {
        {FV_AGGREGATOR_KRUM, 4, 1},         /* f = 1 needs 2f + 3 = 5 */
        {FV_AGGREGATOR_KRUM, 5, 0},
        {FV_AGGREGATOR_MULTIKRUM, 4, 1},    /* m = 3, f = 1: needs 5 (and m + f = 4) */
        {FV_AGGREGATOR_MULTIKRUM, 5, 0},
        {FV_AGGREGATOR_TRIMMED_MEAN, 4, 1}, /* trim 0.2: floor(0.8) = 0 trims nothing */
        {FV_AGGREGATOR_TRIMMED_MEAN, 5, 0},
        {FV_AGGREGATOR_MEDIAN, 1, 0},
        {FV_AGGREGATOR_CLIP, 1, 0},
        {FV_AGGREGATOR_CENTERED_CLIP, 1, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fv_agg_rule rule = robust_rule(cases[c].kind, 1);
        fv_agg *a = fv_agg_new(2, &rule);
        float out[2] = {-1, -1};
        fv_agg_begin(a, 6, 1, g);
        for (int s = cases[c].arrived - 1; s >= 0; s--) fv_agg_put(a, s, x[s], 1);
        assert_int_equal(fv_agg_end(a, out), cases[c].arrived);
        assert_int_equal(fv_agg_held(a), cases[c].held);
        if (cases[c].held) assert_memory_equal(out, g, sizeof out);
        else assert_true(out[0] != g[0] && out[0] != -1);
        /* a later round with every update applies */
        fv_agg_begin(a, 6, 2, g);
        for (int s = 0; s < 6; s++) fv_agg_put(a, s, x[s], 1);
        assert_int_equal(fv_agg_end(a, out), 6);
        assert_int_equal(fv_agg_held(a), 0);
        fv_agg_destroy(&a);
    }
}

/* Every robust rule gives the same model bitwise for every arrival order (random updates with
 * distinct values and sample counts, 200 trainable coordinates and 57 buffer floats). */
static void test_robust_any_order(void **state) {
    (void)state;
    float x[ORD_M][ORD_N], g[ORD_N];
    double w[ORD_M] = {3, 17, 1, 8, 250};
    fv_rng r;
    fv_rng_seed2(&r, 11, 4);
    for (int i = 0; i < ORD_N; i++) g[i] = (float)fv_rng_normal(&r);
    for (int s = 0; s < ORD_M; s++)
        for (int i = 0; i < ORD_N; i++) x[s][i] = g[i] + (float)fv_rng_normal(&r) * (float)(s + 1);
    const fv_aggregator kinds[] = {FV_AGGREGATOR_MEDIAN, FV_AGGREGATOR_TRIMMED_MEAN, FV_AGGREGATOR_KRUM,
                                   FV_AGGREGATOR_MULTIKRUM, FV_AGGREGATOR_CLIP, FV_AGGREGATOR_CENTERED_CLIP};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fv_agg_rule rule = robust_rule(kinds[k], 200);
        check_any_order(&rule, x, w, g, NULL);
    }
}

static void test_rule_from_config(void **state) {
    (void)state;
    fv_config c;
    fv_err e;
    fv_config_defaults(&c);
    fv_agg_rule r = fv_agg_rule_from_config(&c, 10);
    assert_true(r.kind == FV_AGGREGATOR_FEDAVG && r.dp == 0);
    const char *ini = "[fl]\nseed = 77\n[dp]\nenabled = true\nclip = 0.5\nnoise_multiplier = 1.2\n";
    assert_int_equal(fv_config_parse(&c, "x.ini", ini, strlen(ini), &e), 0);
    r = fv_agg_rule_from_config(&c, 10);
    assert_true(r.kind == FV_AGGREGATOR_FEDAVG && r.dp == 1 && r.n_train == 10 && r.clip == 0.5 &&
                r.noise_multiplier == 1.2 && r.seed == 77);
    const char *robust = "[fl]\naggregator = multikrum\ntrim_fraction = 0.25\nkrum_f = 2\nmultikrum_m = 4\n"
                         "clip_norm = 3.5\n";
    fv_config_defaults(&c);
    assert_int_equal(fv_config_parse(&c, "x.ini", robust, strlen(robust), &e), 0);
    r = fv_agg_rule_from_config(&c, 7);
    assert_true(r.kind == FV_AGGREGATOR_MULTIKRUM && r.dp == 0 && r.n_train == 7 && r.trim == 0.25 &&
                r.krum_f == 2 && r.multikrum_m == 4 && r.clip_norm == 3.5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fedavg_hand), cmocka_unit_test(test_fedavg_any_order),
        cmocka_unit_test(test_dp_hand),     cmocka_unit_test(test_dp_bound),
        cmocka_unit_test(test_dp_noise),    cmocka_unit_test(test_median_hand),
        cmocka_unit_test(test_trimmed_mean_hand), cmocka_unit_test(test_krum_hand),
        cmocka_unit_test(test_clip_hand),   cmocka_unit_test(test_centered_clip_hand),
        cmocka_unit_test(test_robust_too_few),
        cmocka_unit_test(test_robust_any_order), cmocka_unit_test(test_rule_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
