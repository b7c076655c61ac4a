/* test_partition.c: IID, Dirichlet(alpha) and pathological-shard partitions: every image exactly
 * once, sizes, label skew as designed, determinism from the seed, and clear errors for
 * impossible splits. Also the Gamma sampler behind Dirichlet. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/partition.h"

#define N 6000
#define CLASSES 10

static uint8_t labels[N];

static int setup(void **state) {
    (void)state;
    /* balanced labels in a scrambled order, as in a real data set */
    fv_rng r;
    fv_rng_seed(&r, 7);
    int perm[N];
    for (int i = 0; i < N; i++) perm[i] = i;
    fv_rng_shuffle_int(&r, perm, N);
    for (int i = 0; i < N; i++) labels[perm[i]] = (uint8_t)(i % CLASSES);
    return 0;
}

static void assert_cover_once(const fv_partition *p) {
    assert_int_equal(p->offset[0], 0);
    assert_int_equal(p->offset[p->n_clients], N);
    uint8_t *seen = calloc(N, 1);
    for (int i = 0; i < N; i++) {
        assert_true(p->idx[i] >= 0 && p->idx[i] < N);
        assert_int_equal(seen[p->idx[i]], 0);
        seen[p->idx[i]] = 1;
    }
    free(seen);
}

static int same_partition(const fv_partition *a, const fv_partition *b) {
    return a->n_clients == b->n_clients &&
           memcmp(a->offset, b->offset, (size_t)(a->n_clients + 1) * sizeof(int)) == 0 &&
           memcmp(a->idx, b->idx, (size_t)N * sizeof(int)) == 0;
}

static void test_iid(void **state) {
    (void)state;
    fv_partition p, q, r;
    fv_err e = {{0}};
    assert_int_equal(fv_partition_make(&p, FV_PART_IID, labels, N, CLASSES, 7, 0, 0, 1, 42, &e), 0);
    assert_cover_once(&p);
    for (int c = 0; c < 7; c++) {
        int s = fv_partition_size(&p, c);
        assert_true(s == N / 7 || s == N / 7 + 1); /* sizes differ by at most one */
    }
    fv_partition_stats st = fv_partition_describe(&p, labels, CLASSES);
    assert_true(st.mean_labels == CLASSES);
    assert_int_equal(fv_partition_make(&q, FV_PART_IID, labels, N, CLASSES, 7, 0, 0, 1, 42, &e), 0);
    assert_true(same_partition(&p, &q));
    assert_int_equal(fv_partition_make(&r, FV_PART_IID, labels, N, CLASSES, 7, 0, 0, 1, 43, &e), 0);
    assert_false(same_partition(&p, &r));
    fv_partition_free(&p);
    fv_partition_free(&q);
    fv_partition_free(&r);
    assert_int_equal(fv_partition_make(&p, FV_PART_IID, labels, N, CLASSES, N + 1, 0, 0, 1, 1, &e), -1);
    assert_non_null(strstr(e.msg, "cannot give each"));
    assert_int_equal(fv_partition_make(&p, FV_PART_IID, labels, N, CLASSES, 1000, 0, 0, 7, 1, &e), -1);
    assert_non_null(strstr(e.msg, "min_samples"));
}

static void test_shards(void **state) {
    (void)state;
    fv_partition p;
    fv_err e = {{0}};
    assert_int_equal(fv_partition_make(&p, FV_PART_SHARDS, labels, N, CLASSES, 100, 0, 2, 1, 5, &e), 0);
    assert_cover_once(&p);
    /* 200 shards of 30 images, classes of 600: a shard never straddles two labels */
    uint8_t seen[CLASSES];
    int two = 0;
    for (int c = 0; c < 100; c++) {
        assert_int_equal(fv_partition_size(&p, c), 60);
        memset(seen, 0, sizeof seen);
        int distinct = 0;
        for (int i = 0; i < 60; i++) {
            int y = labels[fv_partition_indices(&p, c)[i]];
            distinct += !seen[y];
            seen[y] = 1;
        }
        assert_true(distinct >= 1 && distinct <= 2);
        two += distinct == 2;
    }
    assert_true(two > 70); /* two random shards share a label with probability ~0.1 */
    fv_partition_free(&p);
    assert_int_equal(fv_partition_make(&p, FV_PART_SHARDS, labels, N, CLASSES, 4000, 0, 2, 1, 5, &e), -1);
    assert_non_null(strstr(e.msg, "shards"));
}

static void test_dirichlet(void **state) {
    (void)state;
    fv_partition skew, flat, again;
    fv_err e = {{0}};
    assert_int_equal(fv_partition_make(&skew, FV_PART_DIRICHLET, labels, N, CLASSES, 20, 0.1, 0, 10, 3, &e), 0);
    assert_cover_once(&skew);
    assert_int_equal(fv_partition_make(&flat, FV_PART_DIRICHLET, labels, N, CLASSES, 20, 1000, 0, 10, 3, &e), 0);
    assert_cover_once(&flat);
    assert_int_equal(fv_partition_make(&again, FV_PART_DIRICHLET, labels, N, CLASSES, 20, 0.1, 0, 10, 3, &e), 0);
    assert_true(same_partition(&skew, &again));
    fv_partition_stats s = fv_partition_describe(&skew, labels, CLASSES);
    fv_partition_stats f = fv_partition_describe(&flat, labels, CLASSES);
    assert_true(s.min_size >= 10);
    /* alpha 1000 is close to IID: every client sees (nearly) every label; alpha 0.1 concentrates
     * each class on a few clients (expected distinct labels per client about 3). */
    assert_true(f.mean_labels > 9.5);
    assert_true(s.mean_labels < 6.0);
    /* sizes under alpha = 1000 stay near N/K = 300 (tolerance 25%) */
    assert_true(f.min_size > 225 && f.max_size < 375);
    fv_partition_free(&skew);
    fv_partition_free(&flat);
    fv_partition_free(&again);
    /* impossible: 50 clients with >= 100 images each out of 6000 under extreme skew */
    assert_int_equal(fv_partition_make(&skew, FV_PART_DIRICHLET, labels, N, CLASSES, 50, 0.001, 0, 100, 3, &e), -1);
    assert_non_null(strstr(e.msg, "raise partition.alpha"));
}

static void test_gamma_mean(void **state) {
    (void)state;
    const double shapes[] = {0.1, 0.5, 1.0, 3.0, 20.0};
    for (int s = 0; s < 5; s++) {
        fv_rng r;
        fv_rng_seed(&r, 11 + (uint64_t)s);
        double sum = 0, sum2 = 0;
        const int n = 40000;
        for (int i = 0; i < n; i++) {
            double g = fv_partition_gamma(&r, shapes[s]);
            assert_true(g >= 0 && isfinite(g));
            sum += g;
            sum2 += g * g;
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        /* Gamma(k, 1): mean k, variance k. Tolerance: 5 standard errors of the mean. */
        double se = sqrt(shapes[s] / n);
        if (fabs(mean - shapes[s]) > 5 * se) fail_msg("shape %g: mean %g", shapes[s], mean);
        if (fabs(var - shapes[s]) > 0.1 * shapes[s] + 5 * se) fail_msg("shape %g: var %g", shapes[s], var);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iid),
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_dirichlet),
        cmocka_unit_test(test_gamma_mean),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
