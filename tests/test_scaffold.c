/* test_scaffold.c: SCAFFOLD (shared/fl/scaffold.h, [fl] aggregator = scaffold in aggregate.h and
 * config.h) without processes:
 *  - a hand-computed round: 2 of N = 4 clients (10 and 30 samples, batch 16: K = 1 and 2 local
 *    steps, lr 0.1) on a model of 3 trainable coordinates and one batch-norm buffer: the clients'
 *    corrections c - c_i and control deltas dc_i, the server's new c (c + (dc_0 + dc_1) / 4) and
 *    c_i, the model's step with eta_g = 1 (FedAvg's weighted mean, bitwise) and eta_g = 0.5, the
 *    buffer's weighted mean. Tolerance 1e-6: float32 values, each result rounded once from double;
 *  - the round's c is the same bitwise for any arrival order, a client that does not arrive adds
 *    nothing; an undone round restores c bitwise; deltas whose sum overflows float make the round
 *    unsound (and undoable); a restored c with a NaN is refused, naming the index;
 *  - the trainer's correction: one local step (K = 1, the whole shard in one batch) with correction
 *    v moves the parameters by exactly -lr v more than the uncorrected step (tolerance 1e-6 absolute
 *    on values of order 0.1: one float rounding of p - lr g), and the client's new c_i = c_i + dc_i
 *    is then the plain gradient at x (option II with K = 1; tolerance 1e-4 absolute: the float
 *    difference x - y divided by lr 0.05 magnifies its rounding 20 times);
 *  - the keys: aggregator = scaffold, server_lr as eta_g (written to the resolved text, read back
 *    the same), and the refusals, each naming the key: Adam, momentum, Nesterov, FedProx,
 *    norm_action = clip, DP; server_lr without SCAFFOLD or a server optimizer is still refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synthetic.h"
#include "fl/aggregate.h"
#include "fl/config.h"
#include "fl/scaffold.h"
#include "fl_harness.h"
#include "nn/models.h"
#include "nn/trainer.h"

#define TOL 1e-6

static void near(const float *x, const double *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (fabs((double)x[i] - want[i]) > TOL) fail_msg("[%zu] = %.9g, want %.9g", i, (double)x[i], want[i]);
}

/* The hand-computed round of the header: x = (1, 2, -1 | 0.5), c = (0.1, -0.2, 0), c_0 = (0, 0.1,
 * 0.2), c_1 = 0 (first round), y_0 = (0.9, 2.1, -1.2 | 0.6), y_1 = (1.2, 1.8, -0.8 | 0.2). */
static const float X[4] = {1, 2, -1, 0.5f}, C[3] = {0.1f, -0.2f, 0}, C0[3] = {0, 0.1f, 0.2f};
static const float Y0[4] = {0.9f, 2.1f, -1.2f, 0.6f}, Y1[4] = {1.2f, 1.8f, -0.8f, 0.2f};

static void test_client_side(void **state) {
    (void)state;
    assert_int_equal(fv_agg_local_steps(1, 16, 10), 1);
    assert_int_equal(fv_agg_local_steps(1, 16, 30), 2);
    float corr[3], dc0[3], dc1[3];
    fv_scaffold_correction(C, C0, 3, corr);
    near(corr, (const double[]){0.1, -0.3, -0.2}, 3);
    fv_scaffold_correction(C, NULL, 3, corr); /* first round: c_i = 0 */
    assert_memory_equal(corr, C, sizeof C);
    /* dc_0 = (x - y_0) / (1 x 0.1) - c = (1, -1, 2) - c; dc_1 = (x - y_1) / (2 x 0.1) - c = (-1, 1, -1) - c */
    fv_scaffold_client_delta(X, Y0, C, 3, 1, 0.1, dc0);
    near(dc0, (const double[]){0.9, -0.8, 2.0}, 3);
    fv_scaffold_client_delta(X, Y1, C, 3, 2, 0.1, dc1);
    near(dc1, (const double[]){-1.1, 1.2, -1.0}, 3);
    float ci[3];
    fv_scaffold_client_update(C0, dc0, 3, ci);
    near(ci, (const double[]){0.9, -0.7, 2.2}, 3);
    fv_scaffold_client_update(NULL, dc1, 3, ci);
    assert_memory_equal(ci, dc1, sizeof dc1);
}

/* The server's round over slots 0 and 1 (put in `order`), c from C. */
static fv_scaffold *server_round(const int *order, int k) {
    float dc[2][3];
    fv_scaffold_client_delta(X, Y0, C, 3, 1, 0.1, dc[0]);
    fv_scaffold_client_delta(X, Y1, C, 3, 2, 0.1, dc[1]);
    fv_scaffold *s = fv_scaffold_new(3, 4);
    memcpy(fv_scaffold_c(s), C, sizeof C);
    fv_scaffold_begin(s, 2);
    for (int i = 0; i < k; i++) fv_scaffold_put(s, order[i], dc[order[i]]);
    assert_int_equal(fv_scaffold_end(s), 0);
    return s;
}

static void test_server_side(void **state) {
    (void)state;
    /* c + (dc_0 + dc_1) / N = (0.1, -0.2, 0) + (-0.2, 0.4, 1.0) / 4 */
    fv_scaffold *s = server_round((const int[]){0, 1}, 2);
    assert_int_equal(fv_scaffold_len(s), 3);
    near(fv_scaffold_c(s), (const double[]){0.05, -0.1, 0.25}, 3);
    assert_non_null(fv_scaffold_delta(s, 0));
    /* any arrival order: the same c bitwise */
    fv_scaffold *r = server_round((const int[]){1, 0}, 2);
    assert_memory_equal(fv_scaffold_c(s), fv_scaffold_c(r), 3 * sizeof(float));
    fv_scaffold_destroy(&r);
    /* only client 1 arrived: c + dc_1 / 4, and slot 0 has no delta */
    r = server_round((const int[]){1}, 1);
    near(fv_scaffold_c(r), (const double[]){0.1 - 1.1 / 4, -0.2 + 1.2 / 4, -0.25}, 3);
    assert_null(fv_scaffold_delta(r, 0));
    fv_scaffold_destroy(&r);
    /* undo restores c bitwise; a second undo changes nothing */
    fv_scaffold_undo(s);
    assert_memory_equal(fv_scaffold_c(s), C, sizeof C);
    fv_scaffold_undo(s);
    assert_memory_equal(fv_scaffold_c(s), C, sizeof C);
    fv_scaffold_destroy(&s);
    assert_null(s);
    fv_scaffold_destroy(&s); /* NULL is fine */
}

static void test_unsound_and_check(void **state) {
    (void)state;
    fv_scaffold *s = fv_scaffold_new(2, 1);
    fv_scaffold_begin(s, 2);
    const float huge[2] = {3e38f, 1};
    fv_scaffold_put(s, 0, huge);
    fv_scaffold_put(s, 1, huge);
    assert_int_equal(fv_scaffold_end(s), -1); /* 6e38 does not fit a float */
    fv_scaffold_undo(s);
    assert_true(fv_scaffold_c(s)[0] == 0 && fv_scaffold_c(s)[1] == 0);
    fv_err e = {{0}};
    assert_int_equal(fv_scaffold_check(s, "ck.safetensors", &e), 0);
    fv_scaffold_c(s)[1] = NAN;
    assert_int_equal(fv_scaffold_check(s, "ck.safetensors", &e), -1);
    assert_non_null(strstr(e.msg, "ck.safetensors"));
    assert_non_null(strstr(e.msg, "index 1"));
    fv_scaffold_destroy(&s);
}

/* The model's step through the aggregation rule, weights 10 and 30 (p = 0.25, 0.75). */
static void aggregate(double eta, float *out) {
    fv_agg_rule r = {.kind = FV_AGGREGATOR_SCAFFOLD, .n_train = 3, .server_lr = eta};
    fv_agg *a = fv_agg_new(4, &r);
    fv_agg_begin(a, 2, 1, X);
    fv_agg_put(a, 1, Y1, 30);
    fv_agg_put(a, 0, Y0, 10);
    assert_int_equal(fv_agg_end(a, out), 2);
    fv_agg_destroy(&a);
}

static void test_model_step(void **state) {
    (void)state;
    float out[4], fedavg[4];
    aggregate(1.0, out);
    near(out, (const double[]){1.125, 1.875, -0.9, 0.3}, 4);
    fv_agg_rule r = fv_agg_rule_fedavg();
    fv_agg *a = fv_agg_new(4, &r);
    fv_agg_begin(a, 2, 1, NULL);
    fv_agg_put(a, 0, Y0, 10);
    fv_agg_put(a, 1, Y1, 30);
    assert_int_equal(fv_agg_end(a, fedavg), 2);
    fv_agg_destroy(&a);
    assert_memory_equal(out, fedavg, sizeof out); /* eta_g = 1 is FedAvg bitwise */
    /* eta_g = 0.5: x + 0.5 (mean - x) over the trainable coordinates, the buffer's mean as is */
    aggregate(0.5, out);
    near(out, (const double[]){1.0625, 1.9375, -0.95, 0.3}, 4);
}

/* One epoch of the tiny model over 24 synthetic images in one batch (K = 1) from the same start,
 * with correction corr (NULL: none), lr 0.05; the parameters after it into out. */
static void one_step(const float *x0, const float *corr, float *out, size_t n) {
    fv_dataset d;
    fv_synthetic_make(&d, 24, 1, 8, 8, 10, 3, 0);
    fv_err e = {{0}};
    fv_net *net = fv_model_new("tiny", (fv_shape){1, 8, 8}, 10, 5, &e);
    if (!net) fail_msg("%s", e.msg);
    assert_int_equal(net->n_params, n);
    memcpy(net->params, x0, n * sizeof(float));
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_SGD);
    oc.lr = 0.05f;
    const fv_trainer_cfg tc = {.device = -1, .max_batch = 24, .opt = oc, .norm = fv_norm_for("mnist")};
    fv_trainer *t = fv_trainer_new(net, &tc, &e);
    if (!t) fail_msg("%s", e.msg);
    fv_trainer_shard *sh = fv_trainer_shard_new(t);
    assert_int_equal(fv_trainer_shard_load(sh, &d, NULL, 0, &e), 0);
    fv_rng rng;
    fv_rng_seed(&rng, 11);
    (void)fv_trainer_train_epoch(t, sh, 24, &rng, 0, NULL, corr, NULL, NULL);
    fv_trainer_get_params(t, out);
    fv_trainer_shard_destroy(&sh);
    fv_trainer_destroy(&t);
    fv_net_destroy(&net);
    fv_dataset_free(&d);
}

static void test_trainer_correction(void **state) {
    (void)state;
    fv_err e = {{0}};
    fv_net *net = fv_model_new("tiny", (fv_shape){1, 8, 8}, 10, 5, &e);
    if (!net) fail_msg("%s", e.msg);
    const size_t n = net->n_params, nt = net->n_train;
    assert_int_equal(n, nt); /* the tiny model has no buffers */
    float *x = fv_malloc(n * sizeof(float)), *plain = fv_malloc(n * sizeof(float)),
          *corrected = fv_malloc(n * sizeof(float)), *c = fv_malloc(nt * sizeof(float)),
          *ci = fv_malloc(nt * sizeof(float)), *corr = fv_malloc(nt * sizeof(float)),
          *dc = fv_malloc(nt * sizeof(float));
    memcpy(x, net->params, n * sizeof(float));
    fv_net_destroy(&net);
    for (size_t i = 0; i < nt; i++) { /* control variates of the gradient's order */
        c[i] = 0.01f * (float)((int)(i % 7) - 3);
        ci[i] = 0.02f * (float)((int)(i % 5) - 2);
    }
    fv_scaffold_correction(c, ci, nt, corr);
    one_step(x, NULL, plain, n);
    one_step(x, corr, corrected, n);
    double worst = 0, worst_g = 0;
    for (size_t i = 0; i < nt; i++) {
        double d = fabs(((double)corrected[i] - plain[i]) - (-0.05 * corr[i]));
        worst = d > worst ? d : worst;
    }
    assert_true(worst < TOL);
    /* option II with K = 1: c_i + dc_i = the gradient at x = (x - y_plain) / lr */
    fv_scaffold_client_delta(x, corrected, c, nt, 1, 0.05, dc);
    fv_scaffold_client_update(ci, dc, nt, dc);
    for (size_t i = 0; i < nt; i++) {
        double g = ((double)x[i] - plain[i]) / 0.05, d = fabs(dc[i] - g);
        worst_g = d > worst_g ? d : worst_g;
    }
    print_message("correction: step off by %.3g, new c_i off the gradient by %.3g\n", worst, worst_g);
    assert_true(worst_g < 1e-4);
    free(x);
    free(plain);
    free(corrected);
    free(c);
    free(ci);
    free(corr);
    free(dc);
}

static const char *BASE = "[fl]\nclients = 10\naggregator = scaffold\n";

static void accepted(const char *text, fv_config *c) {
    fv_config_defaults(c);
    fv_err e = {{0}};
    if (fv_config_parse(c, "t.ini", text, strlen(text), &e) != 0 || fv_config_check(c, &e) != 0)
        fail_msg("refused: %s", e.msg);
}

static void test_config(void **state) {
    (void)state;
    fv_config c, back;
    accepted(BASE, &c);
    assert_int_equal(c.aggregator, FV_AGGREGATOR_SCAFFOLD);
    fv_agg_rule r = fv_agg_rule_from_config(&c, 5);
    assert_true(r.kind == FV_AGGREGATOR_SCAFFOLD && r.server_lr == 1.0); /* auto: eta_g = 1 */
    accepted("[fl]\nclients = 10\naggregator = scaffold\nserver_lr = 0.5\n[training]\nweight_decay = 0.001\n", &c);
    r = fv_agg_rule_from_config(&c, 5);
    assert_true(r.server_lr == 0.5);
    char *text = fv_config_write(&c);
    assert_non_null(strstr(text, "\naggregator = scaffold\n"));
    assert_non_null(strstr(text, "\nserver_lr = 0.5\n"));
    accepted(text, &back);
    char *again = fv_config_write(&back);
    assert_string_equal(text, again);
    free(text);
    free(again);
    /* with a server optimizer, server_lr is its own and SCAFFOLD's step is 1 */
    accepted("[fl]\nclients = 10\naggregator = scaffold\nserver_opt = fedavgm\nserver_lr = 0.5\n", &c);
    r = fv_agg_rule_from_config(&c, 5);
    assert_true(r.server_lr == 1.0);
    /* the refusals, each naming the key */
    fh_expect_config_error(BASE, "[training]\noptimizer = adam", "t.ini:5: [training] optimizer",
                           "aggregator = scaffold");
    fh_expect_config_error(BASE, "[training]\nmomentum = 0.9", "[training] momentum", "plain SGD");
    fh_expect_config_error(BASE, "[training]\nnesterov = true", "[training] nesterov", "plain SGD");
    fh_expect_config_error(BASE, "[training]\nprox_mu = 0.01", "[training] prox_mu", "aggregator = scaffold");
    fh_expect_config_error(BASE, "max_update_norm = 5\nnorm_action = clip", "[fl] norm_action",
                           "aggregator = scaffold");
    fh_expect_config_error(BASE, "[dp]\nenabled = true", "[fl] aggregator", "scaffold together with [dp]");
    fh_expect_config_error("[fl]\nclients = 10\n", "server_lr = 0.5", "[fl] server_lr", "server_opt = none");
    fh_expect_config_error("[fl]\nclients = 10\n", "aggregator = scafold", "[fl] aggregator", "scaffold");
    /* the reject action stays allowed */
    accepted("[fl]\nclients = 10\naggregator = scaffold\nmax_update_norm = 5\n", &c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_side),        cmocka_unit_test(test_server_side),
        cmocka_unit_test(test_unsound_and_check),  cmocka_unit_test(test_model_step),
        cmocka_unit_test(test_trainer_correction), cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
