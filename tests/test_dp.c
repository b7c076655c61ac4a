/* test_dp.c: DP-FedAvg's pieces (shared/fl/dp.h): the RDP accountant of the sampled Gaussian
 * mechanism against closed forms (q = 1 is the Gaussian mechanism, alpha/(2 z^2); alpha = 2 is
 * log(1 + q^2 (e^(1/z^2) - 1))) and against a direct summation, its monotonicity in T, z and q,
 * clipping on hand cases, and the noise's statistics and determinism. Also the [dp] config keys.
 * DP-FedAvg's aggregation rule is tested with the aggregator (test_aggregate.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fl/config.h"
#include "fl/dp.h"

/* relative difference */
static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

static void test_rdp_closed_forms(void **state) {
    (void)state;
    const double zs[] = {0.5, 0.8, 1.0, 1.5, 4.0};
    for (int i = 0; i < 5; i++)
        for (int a = 2; a <= FV_DP_MAX_ORDER; a++) {
            /* q = 1: the plain Gaussian mechanism, alpha / (2 z^2); tolerance 1e-12 relative */
            double g = a / (2 * zs[i] * zs[i]);
            assert_true(rel(fv_dp_rdp(1.0, zs[i], a), g) < 1e-12);
            /* subsampling never hurts */
            assert_true(fv_dp_rdp(0.3, zs[i], a) <= g * (1 + 1e-12));
        }
    const double qs[] = {1e-3, 0.01, 0.1, 0.5, 0.9};
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 5; k++) {
            double q = qs[i], z = zs[k];
            double want = log1p(q * q * expm1(1 / (z * z)));
            assert_true(rel(fv_dp_rdp(q, z, 2), want) < 1e-10);
        }
    assert_true(fv_dp_rdp(0.0, 1.0, 10) == 0);
    assert_true(isinf(fv_dp_rdp(0.1, 0.0, 10)));
}

/* Direct summation of A_alpha in long double (no log space), for small alpha. */
static double rdp_direct(double q, double z, int a) {
    long double A = 0, bin = 1;
    for (int k = 0; k <= a; k++) {
        if (k > 0) bin = bin * (a - k + 1) / k;
        A += bin * powl(1 - q, a - k) * powl(q, k) * expl(((long double)k * k - k) / (2.0L * z * z));
    }
    return (double)(logl(A) / (a - 1));
}

static void test_rdp_direct(void **state) {
    (void)state;
    const double qs[] = {0.01, 0.1, 0.5};
    const double zs[] = {0.7, 1.1, 2.0};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            for (int a = 2; a <= 20; a++) /* 1e-9 relative: long double against log-space double */
                assert_true(rel(fv_dp_rdp(qs[i], zs[k], a), rdp_direct(qs[i], zs[k], a)) < 1e-9);
}

static void test_epsilon(void **state) {
    (void)state;
    int order = 0;
    /* T = 0: only the conversion term, smallest at the largest order */
    assert_true(rel(fv_dp_epsilon(0.1, 1.0, 0, 1e-5, &order), log(1e5) / (FV_DP_MAX_ORDER - 1)) < 1e-12);
    assert_int_equal(order, FV_DP_MAX_ORDER);
    /* q = 1, one round: the Gaussian mechanism's RDP bound minimised by hand over the orders */
    double best = INFINITY;
    for (int a = 2; a <= FV_DP_MAX_ORDER; a++) best = fmin(best, a / (2.0 * 4) + log(1e5) / (a - 1));
    assert_true(rel(fv_dp_epsilon(1.0, 2.0, 1, 1e-5, NULL), best) < 1e-12);
    /* monotone: more rounds cost more, more noise costs less, a larger sampling rate costs more */
    double prev = 0;
    for (long T = 1; T <= 1000; T *= 10) {
        double e = fv_dp_epsilon(0.05, 1.0, T, 1e-5, NULL);
        assert_true(e > prev);
        prev = e;
    }
    prev = INFINITY;
    for (double z = 0.5; z <= 8; z *= 2) {
        double e = fv_dp_epsilon(0.05, z, 100, 1e-5, NULL);
        assert_true(e < prev);
        prev = e;
    }
    assert_true(fv_dp_epsilon(0.01, 1.0, 100, 1e-5, NULL) < fv_dp_epsilon(0.1, 1.0, 100, 1e-5, NULL));
    /* a smaller delta costs more */
    assert_true(fv_dp_epsilon(0.01, 1.0, 100, 1e-7, NULL) > fv_dp_epsilon(0.01, 1.0, 100, 1e-5, NULL));
    assert_true(isinf(fv_dp_epsilon(0.1, 0.0, 3, 1e-5, NULL)));
}

static void test_clip(void **state) {
    (void)state;
    float d[2] = {3, 4};
    assert_true(fv_dp_clip(d, 2, 1.0) == 5.0);
    assert_true(fabs(d[0] - 0.6f) < 1e-7 && fabs(d[1] - 0.8f) < 1e-7); /* float rounding */
    float e[2] = {3, 4};
    assert_true(fv_dp_clip(e, 2, 10.0) == 5.0);
    assert_true(e[0] == 3 && e[1] == 4); /* under the bound: untouched */
    float f[3] = {0, 0, 0};
    assert_true(fv_dp_clip(f, 3, 1.0) == 0);
    assert_true(f[0] == 0 && f[1] == 0 && f[2] == 0);
}

static void test_noise(void **state) {
    (void)state;
    size_t n = 1u << 20;
    double z = 1.0, C = 2.0, m = 4, sigma = z * C / m;
    double *x = calloc(n, sizeof *x), *y = calloc(n, sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    fv_dp_add_noise(x, n, sigma, 42, 3);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    double mean = s / n;
    for (size_t i = 0; i < n; i++) s2 += (x[i] - mean) * (x[i] - mean);
    double sd = sqrt(s2 / (n - 1));
    /* mean: within 5 standard errors (5 sigma / sqrt(n) = 0.0024); std: within 1% (the standard
     * error of the sample std is sigma / sqrt(2n), 0.07% of sigma) */
    assert_true(fabs(mean) < 5 * sigma / sqrt((double)n));
    assert_true(fabs(sd - sigma) / sigma < 0.01);
    /* determinism: the same (seed, stream) adds the same noise bitwise; another stream does not */
    fv_dp_add_noise(y, n, sigma, 42, 3);
    assert_memory_equal(x, y, n * sizeof *x);
    memset(y, 0, n * sizeof *y);
    fv_dp_add_noise(y, n, sigma, 42, 4);
    assert_true(memcmp(x, y, n * sizeof *x) != 0);
    free(x);
    free(y);
}

static void test_config(void **state) {
    (void)state;
    fv_config c;
    fv_err e;
    fv_config_defaults(&c);
    assert_int_equal(c.dp, 0);
    char *t = fv_config_write(&c);
    assert_null(strstr(t, "[dp]")); /* off: not written, old configs keep their hash */
    free(t);
    const char *ini = "[dp]\nenabled = true\nclip = 0.5\nnoise_multiplier = 1.2\n";
    assert_int_equal(fv_config_parse(&c, "x.ini", ini, strlen(ini), &e), 0);
    assert_true(c.dp && c.dp_clip == 0.5 && c.dp_noise == 1.2 && c.dp_delta == 1e-5);
    t = fv_config_write(&c);
    assert_non_null(strstr(t, "[dp]\nenabled = true\nclip = 0.5\nnoise_multiplier = 1.2\ndelta = 1e-05\n"));
    fv_config d;
    fv_config_defaults(&d);
    assert_int_equal(fv_config_parse(&d, "r.ini", t, strlen(t), &e), 0);
    assert_true(d.dp == 1 && d.dp_clip == 0.5 && d.dp_noise == 1.2);
    free(t);
    fv_config_defaults(&c);
    const char *bad = "[dp]\nenabled = true\nclip = 0\n";
    assert_int_equal(fv_config_parse(&c, "bad.ini", bad, strlen(bad), &e), -1);
    assert_non_null(strstr(e.msg, "bad.ini:3: [dp] clip"));
    const char *bad2 = "[dp]\nnoise_multiplier = -1\n";
    assert_int_equal(fv_config_parse(&c, "bad.ini", bad2, strlen(bad2), &e), -1);
    assert_non_null(strstr(e.msg, "bad.ini:2: [dp] noise_multiplier"));
    assert_int_equal(fv_config_set(&c, "dp.delta=1", &e), -1);
    assert_non_null(strstr(e.msg, "[dp] delta"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rdp_closed_forms), cmocka_unit_test(test_rdp_direct), cmocka_unit_test(test_epsilon),
        cmocka_unit_test(test_clip),             cmocka_unit_test(test_noise),      cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
