/* test_server_opt.c: the server optimizers (shared/fl/server_opt.h), FedNova (shared/fl/aggregate.h),
 * their config keys (shared/fl/config.h) and the server state in checkpoints (coordinator/store.h):
 *  - FedAvgM, FedAdam, FedYogi and FedAdagrad on a hand-made model of 3 trainable coordinates and
 *    one batch-norm buffer, two rounds each against values computed by hand from the paper's
 *    equations (tolerance 1e-6: the state and the model are float32, each result rounded once);
 *    the buffer takes the aggregate; none leaves the aggregate alone; FedAvgM with lr 1 and
 *    momentum 0 is the aggregate (up to v's float rounding); a step undone restores the state, and a round without a
 *    step has nothing to undo; a step whose state overflows (huge finite aggregate: v = inf while
 *    the model stays finite) is reported unsound, and undone; a restored state with a non-finite
 *    value or a negative second moment is refused;
 *  - FedNova against a hand-computed round with unequal local steps (and its buffers' weighted
 *    mean), FedAvg when the steps are equal, the same result for any arrival order; the local step
 *    count is the one the trainer takes (a real epoch counted); ||a_i||_1 for momentum and FedProx;
 *  - the keys: words, ranges, auto, the errors (each naming the key and where it was set), what
 *    FedNova and DP refuse or allow, --help-config, and the resolved text (the keys only with an
 *    optimizer, so earlier runs resolve as before; a round trip gives the same config);
 *  - the checkpoint: the server state saved beside the model and read back exactly; a checkpoint
 *    without the state the config needs, or with a damaged one, is refused; for each optimizer,
 *    three rounds straight through equal one round, a checkpoint, a restore into a fresh
 *    optimizer and two more rounds, bitwise (the coordinator's --resume end to end, for FedAdam,
 *    is in test_fl_fedopt.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/synthetic.h"
#include "fl/aggregate.h"
#include "fl/config.h"
#include "fl/experiment.h"
#include "fl/server_opt.h"
#include "fl_harness.h"
#include "io/safetensors.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/train.h"
#include "rng.h"
#include "store.h"

#define TOL 1e-6

/* The hand case: global x = (1, 2, 3 | 10), the buffer after the bar. Round 1's aggregate is
 * x + D1, D1 = (0.5, -1, 0), buffer 20; round 2's is x1 + D2, D2 = (0.5, 0, -1), buffer 30. */
static const double D1[3] = {0.5, -1, 0}, D2[3] = {0.5, 0, -1};

/* Two steps of s from (1, 2, 3 | 10); x1, x2 get the models after each. */
static void two_rounds(fv_sopt *s, float x1[4], float x2[4]) {
    const float x0[4] = {1, 2, 3, 10};
    for (int i = 0; i < 3; i++) x1[i] = (float)(x0[i] + D1[i]);
    x1[3] = 20;
    fv_sopt_begin(s);
    fv_sopt_step(s, x0, x1);
    float g[4];
    memcpy(g, x1, sizeof g);
    for (int i = 0; i < 3; i++) x2[i] = (float)(g[i] + D2[i]);
    x2[3] = 30;
    fv_sopt_begin(s);
    fv_sopt_step(s, g, x2);
}

static void near3(const float *got, const double *want, const char *what) {
    for (int i = 0; i < 3; i++)
        if (fabs(got[i] - want[i]) > TOL) fail_msg("%s[%d] = %.9g, want %.9g", what, i, (double)got[i], want[i]);
}

static fv_sopt_rule rule(fv_server_opt kind, double lr) {
    return (fv_sopt_rule){.kind = kind, .n_train = 3, .lr = lr, .momentum = 0.5, .beta1 = 0.5, .beta2 = 0.75, .tau = 0.5};
}

/* FedAvgM, lr 2, momentum 0.5: v1 = D1, x1 = x + 2 v1 = (2, 0, 3); v2 = 0.5 v1 + D2 = (0.75, -0.5, -1),
 * x2 = x1 + 2 v2 = (3.5, -1, 1). */
static void test_fedavgm_hand(void **state) {
    (void)state;
    fv_sopt_rule r = rule(FV_SOPT_FEDAVGM, 2);
    fv_sopt *s = fv_sopt_new(&r);
    assert_int_equal(fv_sopt_state_len(s), 3);
    float x1[4], x2[4];
    two_rounds(s, x1, x2);
    /* the first round is computed from x1 as two_rounds set it: check it through the second */
    const double want2[3] = {3.5, -1, 1}, v2[3] = {0.75, -0.5, -1};
    near3(x2, want2, "x2");
    near3(fv_sopt_state(s), v2, "v2");
    assert_true(x2[3] == 30.0f); /* the buffer is the aggregate's */
    fv_sopt_destroy(&s);
    assert_null(s);
    /* one round alone: x1 = x + 2 D1 */
    s = fv_sopt_new(&r);
    float g[4] = {1, 2, 3, 10}, y[4] = {1.5f, 1, 3, 20};
    fv_sopt_begin(s);
    fv_sopt_step(s, g, y);
    const double want1[3] = {2, 0, 3};
    near3(y, want1, "x1");
    fv_sopt_destroy(&s);
    /* lr 1 and momentum 0: the aggregate, up to the float rounding of v = D */
    r.lr = 1;
    r.momentum = 0;
    s = fv_sopt_new(&r);
    float agg[4] = {1.1f, -2.7f, 3.3f, 4}, out[4];
    memcpy(out, agg, sizeof out);
    fv_sopt_begin(s);
    fv_sopt_step(s, g, out);
    for (int i = 0; i < 3; i++) assert_true(fabsf(out[i] - agg[i]) <= 1e-6f);
    assert_true(out[3] == agg[3]);
    fv_sopt_destroy(&s);
}

/* FedAdam (b1 0.5, b2 0.75, tau 0.5, lr 1; v0 = tau^2 = 0.25):
 * m1 = 0.5 D1 = (0.25, -0.5, 0), v1 = 0.75 v0 + 0.25 D1^2 = (0.25, 0.4375, 0.1875),
 * x1 = x + m1 / (sqrt(v1) + 0.5) = (1.25, 2 - 0.5 / (sqrt(0.4375) + 0.5), 3);
 * m2 = 0.5 m1 + 0.5 D2 = (0.375, -0.25, -0.5), v2 = 0.75 v1 + 0.25 D2^2 = (0.25, 0.328125, 0.390625),
 * x2 = x1 + m2 / (sqrt(v2) + 0.5) = (1.625, x1[1] - 0.25 / (sqrt(0.328125) + 0.5), 3 - 0.5 / 1.125). */
static void test_fedadam_hand(void **state) {
    (void)state;
    fv_sopt_rule r = rule(FV_SOPT_FEDADAM, 1);
    fv_sopt *s = fv_sopt_new(&r);
    assert_int_equal(fv_sopt_state_len(s), 6);
    const float *st = fv_sopt_state(s);
    for (int i = 0; i < 3; i++) assert_true(st[i] == 0 && st[3 + i] == 0.25f); /* m = 0, v = tau^2 */
    float x1[4], x2[4];
    two_rounds(s, x1, x2);
    const double x1_1 = 2 - 0.5 / (sqrt(0.4375) + 0.5);
    const double want1[3] = {1.25, x1_1, 3};
    near3(x1, want1, "x1");
    const double want2[3] = {1.625, x1_1 - 0.25 / (sqrt(0.328125) + 0.5), 3 - 0.5 / 1.125};
    near3(x2, want2, "x2");
    const double m2[3] = {0.375, -0.25, -0.5}, v2[3] = {0.25, 0.328125, 0.390625};
    near3(st, m2, "m2");
    near3(st + 3, v2, "v2");
    assert_true(x1[3] == 20.0f && x2[3] == 30.0f);
    fv_sopt_destroy(&s);
}

/* FedYogi (same constants): v <- v - 0.25 D^2 sign(v - D^2), from v0 = 0.25:
 * v1 = (0.25 [sign 0], 0.25 + 0.25 = 0.5 [sign -], 0.25 [D = 0]), x1 = (1.25, 2 - 0.5 / (sqrt(0.5) + 0.5), 3);
 * v2 = (0.25 [sign 0], 0.5 [D = 0], 0.25 + 0.25 = 0.5 [sign -]),
 * x2 = (1.625, x1[1] - 0.25 / (sqrt(0.5) + 0.5), 3 - 0.5 / (sqrt(0.5) + 0.5)). */
static void test_fedyogi_hand(void **state) {
    (void)state;
    fv_sopt_rule r = rule(FV_SOPT_FEDYOGI, 1);
    fv_sopt *s = fv_sopt_new(&r);
    float x1[4], x2[4];
    two_rounds(s, x1, x2);
    const double q = sqrt(0.5) + 0.5, x1_1 = 2 - 0.5 / q;
    const double want1[3] = {1.25, x1_1, 3}, want2[3] = {1.625, x1_1 - 0.25 / q, 3 - 0.5 / q};
    near3(x1, want1, "x1");
    near3(x2, want2, "x2");
    const double v2[3] = {0.25, 0.5, 0.5};
    near3(fv_sopt_state(s) + 3, v2, "v2");
    assert_true(x2[3] == 30.0f);
    fv_sopt_destroy(&s);
}

/* FedAdagrad (b1 0.5, tau 0.5, lr 1): v1 = v0 + D1^2 = (0.5, 1.25, 0.25),
 * x1 = (1 + 0.25 / (sqrt(0.5) + 0.5), 2 - 0.5 / (sqrt(1.25) + 0.5), 3); v2 = v1 + D2^2 = (0.75, 1.25, 1.25),
 * x2 = x1 + (0.375 / (sqrt(0.75) + 0.5), -0.25 / (sqrt(1.25) + 0.5), -0.5 / (sqrt(1.25) + 0.5)). */
static void test_fedadagrad_hand(void **state) {
    (void)state;
    fv_sopt_rule r = rule(FV_SOPT_FEDADAGRAD, 1);
    r.beta2 = 0.1; /* unused by Adagrad */
    fv_sopt *s = fv_sopt_new(&r);
    float x1[4], x2[4];
    two_rounds(s, x1, x2);
    const double q = sqrt(1.25) + 0.5;
    const double want1[3] = {1 + 0.25 / (sqrt(0.5) + 0.5), 2 - 0.5 / q, 3};
    near3(x1, want1, "x1");
    const double want2[3] = {want1[0] + 0.375 / (sqrt(0.75) + 0.5), want1[1] - 0.25 / q, 3 - 0.5 / q};
    near3(x2, want2, "x2");
    const double v2[3] = {0.75, 1.25, 1.25};
    near3(fv_sopt_state(s) + 3, v2, "v2");
    fv_sopt_destroy(&s);
}

/* none: no state, the aggregate untouched; undo after a step restores the state, and undo in a
 * round without a step (a robust rule held the model) changes nothing; restored state checked. */
static void test_none_undo_check(void **state) {
    (void)state;
    fv_sopt_rule r = rule(FV_SOPT_NONE, 1);
    fv_sopt *s = fv_sopt_new(&r);
    assert_int_equal(fv_sopt_state_len(s), 0);
    assert_null(fv_sopt_state(s));
    float g[4] = {1, 2, 3, 4}, y[4] = {5, 6, 7, 8}, keep[4];
    memcpy(keep, y, sizeof y);
    fv_sopt_begin(s);
    fv_sopt_step(s, g, y);
    assert_memory_equal(y, keep, sizeof y);
    fv_sopt_undo(s);
    fv_sopt_destroy(&s);

    r = rule(FV_SOPT_FEDADAM, 1);
    s = fv_sopt_new(&r);
    float x1[4], x2[4], after1[6];
    fv_sopt_begin(s);
    float g0[4] = {1, 2, 3, 10};
    for (int i = 0; i < 3; i++) x1[i] = (float)(g0[i] + D1[i]);
    x1[3] = 20;
    fv_sopt_step(s, g0, x1);
    memcpy(after1, fv_sopt_state(s), sizeof after1);
    fv_sopt_begin(s); /* round 2: stepped, then rolled back */
    memcpy(x2, x1, sizeof x2);
    x2[0] += 100;
    fv_sopt_step(s, x1, x2);
    assert_memory_not_equal(fv_sopt_state(s), after1, sizeof after1);
    fv_sopt_undo(s);
    assert_memory_equal(fv_sopt_state(s), after1, sizeof after1);
    fv_sopt_begin(s); /* round 3: held (no step), rolled back: nothing to undo */
    fv_sopt_undo(s);
    assert_memory_equal(fv_sopt_state(s), after1, sizeof after1);

    /* an aggregate of huge finite values: the model stays finite (D / sqrt(v) is about 1) but v =
     * D^2 overflows float; the step says so, and undo brings the state and soundness back */
    fv_sopt_begin(s);
    memcpy(x2, x1, sizeof x2);
    x2[1] = 3e38f;
    fv_sopt_step(s, x1, x2);
    assert_true(isfinite(x2[1]));
    assert_true(isinf(fv_sopt_state(s)[4]));
    assert_int_equal(fv_sopt_sound(s), 0);
    fv_sopt_undo(s);
    assert_int_equal(fv_sopt_sound(s), 1);
    assert_memory_equal(fv_sopt_state(s), after1, sizeof after1);
    fv_sopt_begin(s);
    assert_int_equal(fv_sopt_sound(s), 1);
    fv_err e = {{0}};
    assert_int_equal(fv_sopt_state_check(s, "ck", &e), 0);
    fv_sopt_state(s)[4] = -1.0f; /* a negative second moment */
    assert_int_equal(fv_sopt_state_check(s, "ck", &e), -1);
    assert_non_null(strstr(e.msg, "ck: server optimizer second moment 1 is negative"));
    fv_sopt_state(s)[4] = 0.0f;
    fv_sopt_state(s)[1] = NAN;
    assert_int_equal(fv_sopt_state_check(s, "ck", &e), -1);
    assert_non_null(strstr(e.msg, "value 1 is not finite"));
    fv_sopt_destroy(&s);
}

/* ---- FedNova ---- */

static fv_agg_rule nova_rule(size_t n_train, int epochs, int batch) {
    return (fv_agg_rule){.kind = FV_AGGREGATOR_FEDNOVA, .n_train = n_train, .local_epochs = epochs, .batch_size = batch};
}

/* E = 1, B = 2; client 0 has 2 images (tau 1), client 1 has 6 (tau 3); p = (0.25, 0.75).
 * global (0, 0 | 5), x0 = (1, 0 | 1), x1 = (3, 6 | 9): d0 = (1, 0) / 1, d1 = (3, 6) / 3 = (1, 2);
 * sum p d = (1, 1.5); tau_eff = 0.25 + 2.25 = 2.5; new = (2.5, 3.75); buffer (2 + 54) / 8 = 7.
 * (FedAvg would give (2.5, 4.5): the client with more steps pulls it further.) */
static void test_fednova_hand(void **state) {
    (void)state;
    fv_agg_rule r = nova_rule(2, 1, 2);
    const float g[3] = {0, 0, 5}, x0[3] = {1, 0, 1}, x1[3] = {3, 6, 9};
    float out[3];
    for (int order = 0; order < 2; order++) {
        fv_agg *a = fv_agg_new(3, &r);
        fv_agg_begin(a, 3, 1, g);
        if (order) {
            fv_agg_put(a, 2, x1, 6); /* waits for slots 0 and 1 */
            fv_agg_put(a, 0, x0, 2);
        } else {
            fv_agg_put(a, 0, x0, 2);
            fv_agg_put(a, 2, x1, 6);
        }
        fv_agg_skip(a, 1);
        assert_int_equal(fv_agg_end(a, out), 2);
        assert_true(out[0] == 2.5f && out[1] == 3.75f && out[2] == 7.0f);
        assert_int_equal(fv_agg_held(a), 0);
        fv_agg_destroy(&a);
    }
    /* equal steps: FedAvg's weighted mean (6 and 5 images at B = 4: 2 steps each) */
    r = nova_rule(2, 2, 4);
    fv_agg_rule fa = fv_agg_rule_fedavg();
    fv_agg *a = fv_agg_new(3, &r), *b = fv_agg_new(3, &fa);
    fv_agg_begin(a, 2, 1, g);
    fv_agg_begin(b, 2, 1, NULL);
    const float y0[3] = {0.5f, -1, 4}, y1[3] = {-0.25f, 2, 6};
    fv_agg_put(a, 0, y0, 6);
    fv_agg_put(a, 1, y1, 5);
    fv_agg_put(b, 0, y0, 6);
    fv_agg_put(b, 1, y1, 5);
    float oa[3], ob[3];
    assert_int_equal(fv_agg_end(a, oa), 2);
    assert_int_equal(fv_agg_end(b, ob), 2);
    for (int i = 0; i < 3; i++) assert_true(fabsf(oa[i] - ob[i]) <= 1e-6f);
    fv_agg_destroy(&a);
    fv_agg_destroy(&b);
}

/* tau = E ceil(n / B); ||a||_1 for momentum rho = 0.5 at tau 3: (0.5 + 0.75 + 0.875) / 0.5 = 4.25;
 * for FedProx alpha = 0.5 at tau 3: 1 + 0.5 + 0.25 = 1.75; plain SGD: tau. */
static void test_fednova_norms(void **state) {
    (void)state;
    assert_int_equal(fv_agg_local_steps(1, 2, 5), 3);
    assert_int_equal(fv_agg_local_steps(2, 32, 64), 4);
    assert_int_equal(fv_agg_local_steps(3, 32, 65), 9);
    assert_int_equal(fv_agg_local_steps(1, 100, 1), 1);
    fv_agg_rule r = nova_rule(1, 1, 2);
    assert_true(fv_agg_fednova_norm(&r, 5) == 3);
    r.local_momentum = 0.5;
    assert_true(fabs(fv_agg_fednova_norm(&r, 5) - 4.25) < 1e-12);
    r.local_momentum = 0;
    r.local_prox = 0.5;
    assert_true(fabs(fv_agg_fednova_norm(&r, 6) - 1.75) < 1e-12);
}

/* The step count FedNova assumes is the one a real local epoch takes (fv_train_epoch: every
 * batch, the last one partial), for a few (n, B). */
static void test_fednova_steps_match_trainer(void **state) {
    (void)state;
    fv_dataset d;
    fv_synthetic_make(&d, 13, 1, 8, 8, 3, 7, 0);
    fv_config cfg;
    fv_config_defaults(&cfg);
    fv_err e = {{0}};
    fv_net *net = fv_model_new("tiny", (fv_shape){1, 8, 8}, 3, 1, &e);
    assert_non_null(net);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.01f;
    const int ns[] = {13, 12, 5, 1}, bs[] = {4, 4, 8, 3};
    int idx[13];
    for (int i = 0; i < 13; i++) idx[i] = 12 - i;
    for (int k = 0; k < 4; k++) {
        fv_opt *o = fv_opt_new(&oc, net->n_train);
        fv_rng rng;
        fv_rng_seed(&rng, 3);
        for (int ep = 0; ep < 2; ep++)
            (void)fv_train_epoch(net, o, &d, idx, ns[k], bs[k], fv_exp_norm(&cfg), &rng, 0, NULL, NULL, NULL, NULL);
        assert_int_equal(*fv_opt_step_count(o), fv_agg_local_steps(2, bs[k], ns[k]));
        fv_opt_destroy(&o);
    }
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

/* ---- the config keys ---- */

/* A config from INI text ("t.ini") that must parse and pass fv_config_check (fails the test
 * otherwise); the refusals go through the harness's fh_expect_config_error. */
static void accepted(const char *text, fv_config *c) {
    fv_config_defaults(c);
    fv_err e = {{0}};
    if (fv_config_parse(c, "t.ini", text, strlen(text), &e) != 0 || fv_config_check(c, &e) != 0)
        fail_msg("refused: %s\n%s", e.msg, text);
}

static void test_config_keys(void **state) {
    (void)state;
    fv_config c, back;
    fv_err e = {{0}};
    /* defaults: none, and the keys stay out of the resolved text */
    fv_config_defaults(&c);
    assert_int_equal(c.server_opt, FV_SOPT_NONE);
    char *w = fv_config_write(&c);
    assert_null(strstr(w, "server_"));
    assert_null(strstr(w, "aggregator"));
    free(w);
    /* words, auto and the round trip of every key */
    const char *words[] = {"fedavgm", "fedadam", "fedyogi", "fedadagrad"};
    const fv_server_opt kinds[] = {FV_SOPT_FEDAVGM, FV_SOPT_FEDADAM, FV_SOPT_FEDYOGI, FV_SOPT_FEDADAGRAD};
    const double auto_lr[] = {1, 0.01, 0.01, 0.1};
    for (int i = 0; i < 4; i++) {
        char text[256];
        snprintf(text, sizeof text, "[fl]\nserver_opt = %s\n", words[i]);
        accepted(text, &c);
        assert_int_equal(c.server_opt, kinds[i]);
        assert_true(c.server_lr == FV_CFG_AUTO && fv_config_server_lr(&c) == auto_lr[i]);
        assert_string_equal(fv_config_server_opt_name(kinds[i]), words[i]);
        w = fv_config_write(&c);
        assert_non_null(strstr(w, "\nserver_lr = auto\n"));
        fv_config_defaults(&back);
        if (fv_config_parse(&back, "resolved", w, strlen(w), &e) != 0) fail_msg("%s\n%s", e.msg, w);
        assert_int_equal(back.server_opt, kinds[i]);
        assert_true(back.server_lr == FV_CFG_AUTO);
        free(w);
    }
    accepted("[fl]\nserver_opt = fedyogi\nserver_lr = 0.0316\nserver_momentum = 0.8\n"
             "server_beta1 = 0.85\nserver_beta2 = 0.995\nserver_tau = 1e-05\n", &c);
    assert_true(fv_config_server_lr(&c) == 0.0316);
    w = fv_config_write(&c);
    fv_config_defaults(&back);
    assert_int_equal(fv_config_parse(&back, "resolved", w, strlen(w), &e), 0);
    assert_true(back.server_lr == 0.0316 && back.server_momentum == 0.8 && back.server_beta1 == 0.85 &&
                back.server_beta2 == 0.995 && back.server_tau == 1e-05);
    fv_sopt_rule sr = fv_sopt_rule_from_config(&back, 7);
    assert_true(sr.kind == FV_SOPT_FEDYOGI && sr.n_train == 7 && sr.lr == 0.0316 && sr.beta2 == 0.995);
    free(w);
    /* ranges and words, each error naming file:line and key */
    fh_expect_config_error("[fl]\n", "server_opt = adamw", "t.ini:2: [fl] server_opt",
                           "not one of none|fedavgm|fedadam|fedyogi|fedadagrad");
    fh_expect_config_error("[fl]\n", "server_lr = 0", "t.ini:2: [fl] server_lr", "out of range");
    fh_expect_config_error("[fl]\n", "server_lr = fast", "[fl] server_lr", "expected a number or auto");
    fh_expect_config_error("[fl]\n", "server_momentum = 1", "[fl] server_momentum", "out of range");
    fh_expect_config_error("[fl]\n", "server_beta1 = -0.1", "[fl] server_beta1", "out of range");
    fh_expect_config_error("[fl]\n", "server_beta2 = 1", "[fl] server_beta2", "out of range");
    fh_expect_config_error("[fl]\n", "server_tau = 0", "[fl] server_tau", "out of range");
    /* a parameter without an optimizer would be dropped from the resolved text: refused */
    fh_expect_config_error("[fl]\nrounds = 3\n", "server_beta1 = 0.5", "t.ini:3: [fl] server_beta1",
                           "server_opt = none");
    accepted("[fl]\nserver_opt = fedavgm\nserver_beta1 = 0.5\n", &c);
    /* DP-FedAvg with a server optimizer: allowed (post-processing); FedNova with DP: refused */
    accepted("[fl]\nserver_opt = fedadam\n[dp]\nenabled = true\n", &c);
    fh_expect_config_error("[fl]\naggregator = fednova\n", "[dp]\nenabled = true", "t.ini:2: [fl] aggregator",
                           "[dp]");
    /* a robust rule with a server optimizer */
    accepted("[fl]\naggregator = median\nserver_opt = fedavgm\n", &c);
}

static void test_config_fednova(void **state) {
    (void)state;
    fv_config c;
    const char *fn = "[fl]\naggregator = fednova\n";
    accepted(fn, &c);
    accepted("[fl]\naggregator = fednova\n[training]\nmomentum = 0.9\n", &c);
    accepted("[fl]\naggregator = fednova\n[training]\nprox_mu = 0.1\n", &c);
    accepted("[fl]\naggregator = fednova\nserver_opt = fedavgm\n", &c);
    fh_expect_config_error(fn, "[training]\noptimizer = adam", "t.ini:4: [training] optimizer",
                           "adam with [fl] aggregator = fednova");
    fh_expect_config_error(fn, "[training]\nmomentum = 0.9\nnesterov = true", "t.ini:5: [training] nesterov",
                           "heavy-ball");
    fh_expect_config_error(fn, "[training]\nmomentum = 0.9\nopt_state = keep", "t.ini:5: [training] opt_state",
                           "zero momentum buffer");
    fh_expect_config_error(fn, "[training]\nmomentum = 0.9\nprox_mu = 0.1", "t.ini:5: [training] prox_mu",
                           "not both");
    fh_expect_config_error(fn, "[training]\nlr = 0.5\nprox_mu = 2", "[training] prox_mu", "must be below 1");
    /* the rule carries what the normalisation needs */
    accepted("[fl]\naggregator = fednova\n[training]\nlocal_epochs = 3\nbatch_size = 16\nlr = 0.1\nprox_mu = 0.5\n",
             &c);
    fv_agg_rule r = fv_agg_rule_from_config(&c, 5);
    assert_true(r.kind == FV_AGGREGATOR_FEDNOVA && r.local_epochs == 3 && r.batch_size == 16 &&
                fabs(r.local_prox - 0.05) < 1e-15 && r.local_momentum == 0 && r.n_train == 5);
}

static void test_help_config(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fv_config_print_schema(f);
    fclose(f);
    const char *want[] = {"server_opt", "none|fedavgm|fedadam|fedyogi|fedadagrad", "server_lr", "1e-12..1000 or auto",
                          "server_momentum", "server_beta1", "server_beta2", "server_tau", "fednova"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(buf, want[i])) fail_msg("--help-config lacks '%s'", want[i]);
    free(buf);
}

/* ---- the checkpoint ---- */

static void test_checkpoint_state(void **state) {
    (void)state;
    char dir[] = "/tmp/fv_sopt_XXXXXX";
    assert_non_null(mkdtemp(dir));
    fv_err e = {{0}};
    uint8_t ch[FV_HASH_BYTES] = {1, 2, 3};
    const float params[5] = {1, 2, 3, 4, 5}, st[4] = {0.5f, -0.25f, 1e-6f, 2};
    fv_store *s = fv_store_open(dir, 2, &e);
    assert_non_null(s);
    assert_int_equal(fv_store_checkpoint(s, 3, params, 5, st, 4, ch, &e), 0);
    fv_store_close(&s);
    float p[5] = {0}, got[4] = {0};
    int round = 0;
    s = fv_store_open(dir, 2, &e);
    assert_int_equal(fv_store_resume(s, &round, p, 5, got, 4, ch, &e), 0);
    assert_int_equal(round, 3);
    assert_memory_equal(p, params, sizeof p);
    assert_memory_equal(got, st, sizeof got);
    /* the config needs another state size, or none */
    assert_int_equal(fv_store_resume(s, &round, p, 5, got, 6, ch, &e), -1);
    assert_non_null(strstr(e.msg, "server state of 4 floats, the config's [fl] server_opt and aggregator need 6"));
    assert_int_equal(fv_store_resume(s, &round, p, 5, NULL, 0, ch, &e), -1);
    assert_non_null(strstr(e.msg, "need 0"));
    fv_store_close(&s);
    /* a checkpoint without state, for a config that needs one */
    s = fv_store_open(dir, 2, &e);
    assert_int_equal(fv_store_checkpoint(s, 4, params, 5, NULL, 0, ch, &e), 0);
    assert_int_equal(fv_store_resume(s, &round, p, 5, got, 4, ch, &e), -1);
    assert_non_null(strstr(e.msg, "state of 0 floats"));
    assert_int_equal(fv_store_resume(s, &round, p, 5, NULL, 0, ch, &e), 0);
    assert_int_equal(round, 4);
    /* a damaged state: one value changed in the file */
    assert_int_equal(fv_store_checkpoint(s, 5, params, 5, st, 4, ch, &e), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    fv_st_file *f = fv_st_read(path, &e);
    assert_non_null(f);
    float bad[4];
    memcpy(bad, st, sizeof bad);
    bad[2] = 7;
    char rs[] = "5", chx[2 * FV_HASH_BYTES + 1];
    fv_hex(chx, ch, FV_HASH_BYTES);
    fv_st_tensor t[2] = {*fv_st_find(f, "global"), {.name = "server_state", .ndim = 1, .dims = {4}, .data = bad}};
    const char *meta[] = {"format", fv_st_meta(f, "format"), "version", fv_st_meta(f, "version"), "round", rs,
                          "config_hash", chx, "params_hash", fv_st_meta(f, "params_hash"), "server_state_hash",
                          fv_st_meta(f, "server_state_hash")};
    char tmp[280];
    snprintf(tmp, sizeof tmp, "%s.bad", path);
    assert_int_equal(fv_st_write(tmp, t, 2, meta, 6, &e), 0);
    fv_st_file_destroy(&f);
    assert_int_equal(rename(tmp, path), 0);
    assert_int_equal(fv_store_resume(s, &round, p, 5, got, 4, ch, &e), -1);
    assert_non_null(strstr(e.msg, "server state's hash does not check out"));
    fv_store_close(&s);
    unlink(path);
    char cs[256];
    snprintf(cs, sizeof cs, "%s/client_state", dir);
    rmdir(cs);
    rmdir(dir);
}

/* For each optimizer: three rounds straight through, against one round, a checkpoint, a fresh
 * optimizer restored from it (as --resume does) and the two rounds after: the same model and state
 * bitwise. */
static void test_resume_each_bitwise(void **state) {
    (void)state;
    const fv_server_opt kinds[] = {FV_SOPT_FEDAVGM, FV_SOPT_FEDADAM, FV_SOPT_FEDYOGI, FV_SOPT_FEDADAGRAD};
    char dir[] = "/tmp/fv_sopt_resume_XXXXXX";
    assert_non_null(mkdtemp(dir));
    uint8_t ch[FV_HASH_BYTES] = {9};
    fv_err e = {{0}};
    for (int k = 0; k < 4; k++) {
        fv_sopt_rule r = rule(kinds[k], 0.3);
        r.momentum = 0.9;
        r.beta1 = 0.9;
        r.beta2 = 0.99;
        r.tau = 1e-3;
        /* the aggregates: the global model plus a pseudo-gradient that changes each round */
        float straight[4] = {0.1f, -0.2f, 0.3f, 1}, resumed[4];
        memcpy(resumed, straight, sizeof resumed);
        fv_sopt *a = fv_sopt_new(&r), *b = fv_sopt_new(&r);
        for (int round = 1; round <= 3; round++) {
            if (round == 2) { /* b is checkpointed and a fresh optimizer restored in its place */
                fv_store *st = fv_store_open(dir, 1, &e);
                assert_non_null(st);
                const size_t ns = fv_sopt_state_len(b);
                assert_int_equal(fv_store_checkpoint(st, 1, resumed, 4, fv_sopt_state(b), ns, ch, &e), 0);
                fv_sopt_destroy(&b);
                b = fv_sopt_new(&r);
                int got = 0;
                float model[4];
                assert_int_equal(fv_store_resume(st, &got, model, 4, fv_sopt_state(b), ns, ch, &e), 0);
                assert_int_equal(fv_sopt_state_check(b, "ck", &e), 0);
                memcpy(resumed, model, sizeof model);
                fv_store_close(&st);
            }
            float *xs[2] = {straight, resumed};
            fv_sopt *os[2] = {a, b};
            for (int j = 0; j < 2; j++) {
                float g[4], y[4];
                memcpy(g, xs[j], sizeof g);
                for (int i = 0; i < 3; i++) y[i] = (float)(g[i] + 0.05 * (i + 1) * (round % 2 ? 1 : -0.5));
                y[3] = g[3] + 1;
                fv_sopt_begin(os[j]);
                fv_sopt_step(os[j], g, y);
                memcpy(xs[j], y, sizeof y);
            }
        }
        assert_memory_equal(straight, resumed, sizeof straight);
        assert_memory_equal(fv_sopt_state(a), fv_sopt_state(b), fv_sopt_state_len(a) * sizeof(float));
        fv_sopt_destroy(&a);
        fv_sopt_destroy(&b);
    }
    char p[256];
    snprintf(p, sizeof p, "%s/checkpoint.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/client_state", dir);
    rmdir(p);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fedavgm_hand),
        cmocka_unit_test(test_fedadam_hand),
        cmocka_unit_test(test_fedyogi_hand),
        cmocka_unit_test(test_fedadagrad_hand),
        cmocka_unit_test(test_none_undo_check),
        cmocka_unit_test(test_fednova_hand),
        cmocka_unit_test(test_fednova_norms),
        cmocka_unit_test(test_fednova_steps_match_trainer),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_config_fednova),
        cmocka_unit_test(test_help_config),
        cmocka_unit_test(test_checkpoint_state),
        cmocka_unit_test(test_resume_each_bitwise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
