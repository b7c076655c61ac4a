/* test_adversary.c: the simulated malicious clients (shared/fl/adversary.h) and their config:
 *  - who is malicious: round(fraction x clients) ids, the same for the same fl.seed and another
 *    set for another seed; an explicit list wins; none for kind = none;
 *  - the [adversary] keys: written to the resolved INI only when kind is not none (a run without
 *    one keeps its config text), read back to the same values; a malformed or out-of-range client
 *    list, a fraction that makes no malicious client, gan_active together, a backdoor target
 *    outside the synthetic classes and a trigger larger than the image are errors naming the key;
 *  - the trigger: the documented checkerboard at the documented place, every channel, nothing
 *    else touched;
 *  - data poisoning: label_flip maps y to classes - 1 - y; backdoor stamps and relabels exactly
 *    round(poison_fraction x n) images, the same ones for the same client and seed;
 *  - upload forging, exact to float rounding (tolerance 1 ulp of the double result): sign_flip,
 *    scale (auto = 10), label_flip/backdoor with scale 1 bit for bit untouched; noise with the
 *    stated std (within 5% on 20000 draws) and the same bits for the same (seed, round, client);
 *    huge; the batch-norm buffers after n_train never change;
 *  - the backdoor test set: every image of another class, triggered, labelled with the target. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fl/adversary.h"
#include "fl/config.h"
#include "fl_harness.h"

/* A checked config from INI text (fails the test when it does not parse and check). */
static fv_config cfg_of(const char *ini) {
    fv_config c;
    fv_config_defaults(&c);
    fv_err e = {{0}};
    if (fv_config_parse(&c, "t.ini", ini, strlen(ini), &e) != 0 || fv_config_check(&c, &e) != 0)
        fail_msg("config rejected: %s", e.msg);
    return c;
}

#define BASE "[data]\ndataset = synthetic\n[fl]\nclients = 20\nseed = 7\n"

static void test_who(void **state) {
    (void)state;
    uint8_t m1[20], m2[20], m3[20];
    fv_config c = cfg_of(BASE "[adversary]\nkind = scale\nfraction = 0.3\n");
    assert_int_equal(fv_adv_mask(&c, m1), 6);
    int n = 0;
    for (int i = 0; i < 20; i++) n += m1[i];
    assert_int_equal(n, 6);
    assert_int_equal(fv_adv_mask(&c, m2), 6);
    assert_memory_equal(m1, m2, 20);
    c.seed = 8;
    assert_int_equal(fv_adv_mask(&c, m3), 6);
    assert_memory_not_equal(m1, m3, 20);
    fv_config l = cfg_of(BASE "[adversary]\nkind = noise\nclients = 0, 5,19\nfraction = 0.5\n");
    assert_int_equal(fv_adv_mask(&l, m1), 3);
    for (int i = 0; i < 20; i++) assert_int_equal(m1[i], i == 0 || i == 5 || i == 19);
    fv_config none = cfg_of(BASE "[adversary]\nfraction = 0.5\n");
    assert_int_equal(fv_adv_mask(&none, m1), 0);
    for (int i = 0; i < 20; i++) assert_int_equal(m1[i], 0);
}

static void test_config(void **state) {
    (void)state;
    /* kind = none: the section is not written, so the config text (and hash) stays as before */
    fv_config c = cfg_of(BASE);
    char *t = fv_config_write(&c);
    assert_null(strstr(t, "[adversary]"));
    free(t);
    /* written and read back */
    fv_config b = cfg_of(BASE "[adversary]\nkind = backdoor\nclients = 2,3\ntarget = 4\ntrigger_size = 3\n"
                              "poison_fraction = 0.25\nscale = 2.5\n");
    t = fv_config_write(&b);
    assert_non_null(strstr(t, "[adversary]\nkind = backdoor\n"));
    fv_config r = cfg_of(t);
    free(t);
    assert_int_equal(r.adv_kind, FV_ADV_BACKDOOR);
    assert_string_equal(r.adv_clients, "2,3");
    assert_int_equal(r.adv_target, 4);
    assert_int_equal(r.adv_trigger_size, 3);
    assert_true(r.adv_poison_fraction == 0.25 && r.adv_scale == 2.5 && r.adv_fraction == b.adv_fraction);
    assert_true(fv_adv_scale(&r) == 2.5);
    fv_config a = cfg_of(BASE "[adversary]\nkind = scale\n");
    assert_true(fv_adv_scale(&a) == 10);
    a.adv_kind = FV_ADV_SIGN_FLIP;
    assert_true(fv_adv_scale(&a) == 1);
    assert_string_equal(fv_config_adv_kind_name(FV_ADV_LABEL_FLIP), "label_flip");
    /* errors name the key */
    fh_expect_config_error(BASE, "[adversary]\nkind = scale\nclients = 3,20\n", "[adversary] clients: client 20 is out of range", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = scale\nclients = 5,3\n", "ascending", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = scale\nclients = 1-2\n", "is not a list of clients", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = scale\nfraction = 0.01\n", "[adversary] fraction: 0.01 of 20 clients", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = teleport\n", "[adversary] kind", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = scale\nfraction = 1.5\n", "[adversary] fraction", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = backdoor\ntarget = 10\n", "[adversary] target: class 10", NULL);
    fh_expect_config_error(BASE, "[adversary]\nkind = scale\n[attack]\nkind = gan_active\nclient = 1\n", "gan_active", NULL);
    /* a trigger that does not fit the images */
    fv_config big = cfg_of(BASE "[adversary]\nkind = backdoor\ntrigger_size = 28\n");
    fv_dataset d = {.n = 1, .c = 1, .h = 28, .w = 28, .classes = 10};
    fv_err e = {{0}};
    assert_int_equal(fv_adv_check_data(&big, &d, &e), -1);
    assert_non_null(strstr(e.msg, "[adversary] trigger_size"));
    big.adv_trigger_size = 27;
    assert_int_equal(fv_adv_check_data(&big, &d, &e), 0);
    d.classes = 3;
    big.adv_target = 3;
    assert_int_equal(fv_adv_check_data(&big, &d, &e), -1);
    assert_non_null(strstr(e.msg, "[adversary] target"));
}

static void test_trigger(void **state) {
    (void)state;
    fv_config c = cfg_of(BASE "[adversary]\nkind = backdoor\ntrigger_size = 3\n");
    enum { CH = 2, H = 6, W = 7 };
    uint8_t img[CH * H * W];
    memset(img, 7, sizeof img);
    fv_adv_stamp(&c, img, CH, H, W);
    for (int k = 0; k < CH; k++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int in = y >= H - 4 && y < H - 1 && x >= W - 4 && x < W - 1; /* one pixel in from the corner */
                int want = in ? (((y - (H - 4)) + (x - (W - 4))) % 2 == 0 ? 255 : 0) : 7;
                assert_int_equal(img[(k * H + y) * W + x], want);
            }
}

static fv_dataset toy_set(int n, int classes) {
    fv_dataset d = {.n = n, .c = 1, .h = 8, .w = 8, .classes = classes};
    d.x = malloc((size_t)n * 64);
    d.y = malloc((size_t)n);
    for (int i = 0; i < n * 64; i++) d.x[i] = (uint8_t)(i * 37 % 200);
    for (int i = 0; i < n; i++) d.y[i] = (uint8_t)(i % classes);
    return d;
}

static void test_poison(void **state) {
    (void)state;
    fv_config lf = cfg_of(BASE "[adversary]\nkind = label_flip\n");
    fv_dataset d = toy_set(30, 10);
    fv_adv_poison(&lf, 3, &d);
    for (int i = 0; i < 30; i++) assert_int_equal(d.y[i], 9 - i % 10);
    fv_dataset_free(&d);

    fv_config bd = cfg_of(BASE "[adversary]\nkind = backdoor\ntarget = 2\npoison_fraction = 0.3\n");
    fv_dataset a = toy_set(50, 10), b = toy_set(50, 10), o = toy_set(50, 10), other = toy_set(50, 10);
    fv_adv_poison(&bd, 3, &a);
    fv_adv_poison(&bd, 3, &b);
    fv_adv_poison(&bd, 4, &other);
    assert_memory_equal(a.x, b.x, 50 * 64);
    assert_memory_equal(a.y, b.y, 50);
    int changed = 0;
    uint8_t stamped[64];
    for (int i = 0; i < 50; i++) {
        memcpy(stamped, o.x + i * 64, 64);
        fv_adv_stamp(&bd, stamped, 1, 8, 8);
        int is = memcmp(a.x + i * 64, stamped, 64) == 0 && a.y[i] == 2;
        int clean = memcmp(a.x + i * 64, o.x + i * 64, 64) == 0 && a.y[i] == o.y[i];
        assert_true(is || clean);
        changed += is && !clean;
    }
    assert_int_equal(changed, 15); /* round(0.3 x 50) */
    assert_memory_not_equal(a.x, other.x, 50 * 64); /* another client poisons other images */
    fv_dataset_free(&a);
    fv_dataset_free(&b);
    fv_dataset_free(&o);
    fv_dataset_free(&other);
    /* model-poisoning kinds leave the data alone */
    fv_config sc = cfg_of(BASE "[adversary]\nkind = scale\n");
    fv_dataset s = toy_set(10, 10), s0 = toy_set(10, 10);
    fv_adv_poison(&sc, 0, &s);
    assert_memory_equal(s.x, s0.x, 640);
    assert_memory_equal(s.y, s0.y, 10);
    assert_false(fv_adv_poisons_data(&sc));
    assert_true(fv_adv_poisons_data(&bd) && fv_adv_poisons_data(&lf));
    fv_dataset_free(&s);
    fv_dataset_free(&s0);
}

/* |got - want| within one float ulp of want. */
static void near(float got, double want) {
    double tol = fabs(want) * 1.2e-7 + 1e-30;
    if (fabs(got - want) > tol) fail_msg("%.9g, want %.9g", (double)got, want);
}

static void test_forge(void **state) {
    (void)state;
    enum { N = 20000, NT = 19990 }; /* the last 10: batch-norm buffers */
    float *g = malloc(N * sizeof(float)), *p = malloc(N * sizeof(float)), *q = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) {
        g[i] = 0.01f * (float)(i % 97) - 0.3f;
        p[i] = g[i] + 0.001f * (float)(i % 13 - 6);
    }
    const char *kinds[] = {"sign_flip", "scale", "label_flip", "backdoor", "noise", "huge"};
    for (int k = 0; k < 6; k++) {
        char ini[256];
        snprintf(ini, sizeof ini, BASE "[adversary]\nkind = %s\n", kinds[k]);
        fv_config c = cfg_of(ini);
        memcpy(q, p, N * sizeof(float));
        fv_adv_forge(&c, 3, 5, g, q, NT);
        for (int i = NT; i < N; i++) assert_true(q[i] == p[i]); /* buffers untouched */
        if (c.adv_kind == FV_ADV_SIGN_FLIP)
            for (int i = 0; i < NT; i++) near(q[i], g[i] - ((double)p[i] - g[i]));
        if (c.adv_kind == FV_ADV_SCALE)
            for (int i = 0; i < NT; i++) near(q[i], g[i] + 10 * ((double)p[i] - g[i]));
        if (c.adv_kind == FV_ADV_LABEL_FLIP || c.adv_kind == FV_ADV_BACKDOOR)
            assert_memory_equal(q, p, N * sizeof(float)); /* scale auto = 1: the trained upload */
        if (c.adv_kind == FV_ADV_HUGE)
            for (int i = 0; i < NT; i++) assert_true(q[i] == 3e38f);
        if (c.adv_kind == FV_ADV_NOISE) {
            double s = 0, s2 = 0;
            for (int i = 0; i < NT; i++) {
                double d = (double)q[i] - g[i];
                s += d;
                s2 += d * d;
            }
            double mean = s / NT, sd = sqrt(s2 / NT - mean * mean);
            assert_true(fabs(mean) < 0.05 && fabs(sd - 1) < 0.05);
            float *r = malloc(N * sizeof(float));
            memcpy(r, p, N * sizeof(float));
            fv_adv_forge(&c, 3, 5, g, r, NT);
            assert_memory_equal(q, r, N * sizeof(float)); /* the same (seed, round, client): the same bits */
            memcpy(r, p, N * sizeof(float));
            fv_adv_forge(&c, 4, 5, g, r, NT);
            assert_memory_not_equal(q, r, NT * sizeof(float)); /* another round: other noise */
            free(r);
        }
    }
    /* an explicit scale on a data-poisoning kind boosts it */
    fv_config b = cfg_of(BASE "[adversary]\nkind = backdoor\nscale = 4\n");
    memcpy(q, p, N * sizeof(float));
    fv_adv_forge(&b, 1, 0, g, q, NT);
    for (int i = 0; i < NT; i++) near(q[i], g[i] + 4 * ((double)p[i] - g[i]));
    free(g);
    free(p);
    free(q);
}

static void test_backdoor_set(void **state) {
    (void)state;
    fv_config c = cfg_of(BASE "[adversary]\nkind = backdoor\ntarget = 3\n");
    fv_dataset t = toy_set(40, 10), out;
    fv_err e = {{0}};
    assert_int_equal(fv_adv_backdoor_set(&c, &t, &out, &e), 0);
    assert_int_equal(out.n, 36); /* the 4 images of class 3 are left out */
    int k = 0;
    uint8_t img[64];
    for (int i = 0; i < 40; i++) {
        if (t.y[i] == 3) continue;
        memcpy(img, t.x + i * 64, 64);
        fv_adv_stamp(&c, img, 1, 8, 8);
        assert_memory_equal(out.x + k * 64, img, 64);
        assert_int_equal(out.y[k], 3);
        k++;
    }
    fv_dataset_free(&out);
    for (int i = 0; i < 40; i++) t.y[i] = 3; /* nothing left to measure on */
    assert_int_equal(fv_adv_backdoor_set(&c, &t, &out, &e), -1);
    assert_non_null(strstr(e.msg, "[adversary] target 3"));
    fv_dataset_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_who),     cmocka_unit_test(test_config), cmocka_unit_test(test_trigger),
        cmocka_unit_test(test_poison),  cmocka_unit_test(test_forge),  cmocka_unit_test(test_backdoor_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
