/* test_mia.c: membership inference (attacks/mia.h).
 * - the figures on hand-made scores (perfect, reversed, tied);
 * - the loss-threshold scores are -loss;
 * - LiRA offline against a model that overfits its members (LeNet-5 trained for 20 epochs on 150
 *   synthetic images, a quarter of them mislabelled) separates members from non-members: the
 *   loss threshold reaches AUC > 0.6 and LiRA > 0.65 (chance 0.5);
 * - pooled versus per-example spread; refusals;
 * - the in-process FedAvg that produces standalone targets (attacks/fedsim.h): the global model is
 *   the sample-weighted mean of the last round's uploads, and with VisualMixer every client's
 *   images are mixed (each a permutation of its original's pixels).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "fedsim.h"
#include "nn/layers.h"
#include "mia.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "data/synthetic.h"
#include "nn/train.h"

static fv_norm unit_norm(void) {
    fv_norm n;
    for (int i = 0; i < 4; i++) {
        n.mean[i] = 0;
        n.std[i] = 1;
    }
    return n;
}

static void test_figures(void **st) {
    (void)st;
    fv_err e = {{0}};
    double s[6] = {3, 2, 1, -1, -2, -3};
    uint8_t m[6] = {1, 1, 1, 0, 0, 0};
    fv_mia_figures f;
    assert_int_equal(fv_mia_evaluate(&f, s, m, 6, &e), 0);
    assert_true(fabs(f.auc - 1.0) < 1e-12);
    assert_true(fabs(f.tpr_1pct - 1.0) < 1e-12);
    assert_true(fabs(f.balanced_acc - 1.0) < 1e-12);
    assert_int_equal(f.members, 3);
    assert_int_equal(f.nonmembers, 3);
    uint8_t rev[6] = {0, 0, 0, 1, 1, 1};
    assert_int_equal(fv_mia_evaluate(&f, s, rev, 6, &e), 0);
    assert_true(fabs(f.auc) < 1e-12);
    assert_true(fabs(f.tpr_1pct) < 1e-12);
    double tied[4] = {1, 1, 1, 1};
    uint8_t mt[4] = {1, 0, 1, 0};
    assert_int_equal(fv_mia_evaluate(&f, tied, mt, 4, &e), 0);
    assert_true(fabs(f.auc - 0.5) < 1e-12); /* ties count one half */
    uint8_t none[4] = {0, 0, 0, 0};
    assert_int_equal(fv_mia_evaluate(&f, tied, none, 4, &e), -1);
}

typedef struct {
    const fv_dataset *d;
    int epochs;
} recipe;

static fv_net *train_tiny(void *ctx, const int *idx, int n, uint64_t seed, fv_err *e) {
    const recipe *r = ctx;
    fv_net *net = fv_model_new("lenet5", (fv_shape){1, 16, 16}, r->d->classes, seed, e);
    if (!net) return NULL;
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    fv_opt *opt = fv_opt_new(&oc, net->n_train);
    fv_rng rng;
    fv_rng_seed(&rng, seed);
    fv_net_seed_dropout(net, seed);
    for (int ep = 0; ep < r->epochs; ep++)
        fv_train_epoch(net, opt, r->d, idx, n, 16, unit_norm(), &rng, 0, NULL, NULL, NULL, NULL);
    fv_opt_destroy(&opt);
    return net;
}

/* A synthetic world: images 0..149 are the target's members, 150..299 non-members (queries),
 * 300..899 the attacker's own. A quarter of all labels are random, so a model that fits its
 * members memorises them (the classic overfitting that membership inference detects). */
static void test_lira_separates_members(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_dataset d;
    fv_synthetic_make(&d, 900, 1, 16, 16, 10, 21, 0);
    fv_rng lr;
    fv_rng_seed(&lr, 5);
    for (int i = 0; i < d.n; i++)
        if (fv_rng_below(&lr, 4) == 0) d.y[i] = (uint8_t)fv_rng_below(&lr, 10);
    recipe rc = {&d, 20};
    int mem[150], q[300], own[600];
    uint8_t member[300];
    for (int i = 0; i < 150; i++) mem[i] = i;
    for (int i = 0; i < 300; i++) {
        q[i] = i;
        member[i] = i < 150;
    }
    for (int i = 0; i < 600; i++) own[i] = 300 + i;
    double t0 = fv_now();
    fv_net *target = train_tiny(&rc, mem, 150, 777, &e);
    assert_non_null(target);
    double loss[300], lira[300], mu[300], sd[300], acc;
    fv_mia_loss_scores(loss, target, &d, q, 300, unit_norm());
    float l1;
    fv_per_example(target, &d, q, 1, 1, unit_norm(), &l1, NULL);
    assert_true(fabs(loss[0] + l1) < 1e-6); /* score = -loss */
    fv_lira_cfg c = fv_lira_defaults();
    c.k = 6;
    c.seed = 3;
    assert_int_equal(fv_lira_fit(mu, sd, &acc, &c, train_tiny, &rc, own, 600, &d, q, 300, unit_norm(), &e), 0);
    for (int i = 1; i < 300; i++) assert_true(sd[i] == sd[0]); /* k < 16: pooled */
    assert_true(sd[0] >= 1e-3);
    fv_lira_scores(lira, target, mu, sd, &d, q, 300, unit_norm());
    fv_mia_figures fl, fr;
    assert_int_equal(fv_mia_evaluate(&fl, loss, member, 300, &e), 0);
    assert_int_equal(fv_mia_evaluate(&fr, lira, member, 300, &e), 0);
    printf("loss threshold AUC %.3f, LiRA offline AUC %.3f, TPR@1%%FPR %.3f (shadow accuracy %.3f, %.1f s)\n", fl.auc,
           fr.auc, fr.tpr_1pct, acc, fv_now() - t0);
    assert_true(fl.auc > 0.6);
    assert_true(fr.auc > 0.65); /* measured 0.72 with these seeds */
    /* per-example spreads differ between queries */
    c.per_example_sd = 1;
    c.k = 3;
    assert_int_equal(fv_lira_fit(mu, sd, &acc, &c, train_tiny, &rc, own, 600, &d, q, 20, unit_norm(), &e), 0);
    int differ = 0;
    for (int i = 1; i < 20; i++) differ += sd[i] != sd[0];
    assert_true(differ > 0);
    c.k = 1;
    assert_int_equal(fv_lira_fit(mu, sd, &acc, &c, train_tiny, &rc, own, 600, &d, q, 20, unit_norm(), &e), -1);
    assert_non_null(strstr(e.msg, "at least 2"));
    fv_net_destroy(&target);
    fv_dataset_free(&d);
}

static void test_fedsim(void **st) {
    (void)st;
    fv_err e = {{0}};
    fv_dataset d;
    fv_synthetic_make(&d, 203, 1, 16, 16, 4, 31, 0);
    fv_fedsim_cfg c = fv_fedsim_defaults();
    c.model = "tiny";
    c.clients = 3;
    c.rounds = 2;
    c.norm = unit_norm();
    fv_fedsim s;
    assert_int_equal(fv_fedsim_run(&s, &c, &d, 203, &e), 0);
    for (size_t i = 0; i < s.n_params; i++) {
        double acc = 0;
        for (int k = 0; k < 3; k++) acc += (double)s.uploads[(size_t)k * s.n_params + i] * fv_partition_size(&s.part, k);
        assert_true(fabs(acc / 203 - s.global->params[i]) < 1e-5 * (1 + fabs(acc / 203))); /* float rounding */
    }
    assert_true(memcmp(s.start, s.global->params, sizeof(float) * s.n_params) != 0);
    fv_fedsim_free(&s);
    c.vmix = 1;
    c.vp.ws_min = c.vp.ws_max = 4;
    assert_int_equal(fv_fedsim_run(&s, &c, &d, 203, &e), 0);
    int changed = 0;
    for (int i = 0; i < 203; i++) {
        uint8_t a[256], b[256];
        memcpy(a, d.x + (size_t)i * 256, 256);
        memcpy(b, s.mixed.x + (size_t)i * 256, 256);
        changed += memcmp(a, b, 256) != 0;
        long sa = 0, sb = 0;
        for (int p = 0; p < 256; p++) {
            sa += a[p];
            sb += b[p];
        }
        assert_int_equal(sa, sb); /* a permutation keeps the sum */
    }
    assert_true(changed > 190);
    fv_fedsim_free(&s);
    assert_int_equal(fv_fedsim_run(&s, &c, &d, 500, &e), -1);
    assert_non_null(strstr(e.msg, "500 training images"));
    fv_dataset_free(&d);
}

/* The ROC points handed to plots: at most FV_MIA_ROC_POINTS, from (0, 0) to (1, 1), monotone, and
 * exact for a small curve (3 members above 3 non-members: the curve passes through (0, 1)). */
static void test_roc_points(void **st) {
    (void)st;
    double score[6] = {0.9, 0.8, 0.7, 0.3, 0.2, 0.1};
    uint8_t member[6] = {1, 1, 1, 0, 0, 0};
    fv_mia_figures f;
    fv_err e = {{0}};
    assert_int_equal(fv_mia_evaluate(&f, score, member, 6, &e), 0);
    assert_int_equal(f.roc_n, 7); /* 6 distinct scores + 1 */
    assert_float_equal(f.roc_fpr[0], 0.0, 0.0);
    assert_float_equal(f.roc_tpr[0], 0.0, 0.0);
    assert_float_equal(f.roc_fpr[3], 0.0, 0.0);
    assert_float_equal(f.roc_tpr[3], 1.0, 0.0);
    assert_float_equal(f.roc_fpr[6], 1.0, 0.0);
    assert_float_equal(f.roc_tpr[6], 1.0, 0.0);
    double big[1000];
    uint8_t bm[1000];
    for (int i = 0; i < 1000; i++) big[i] = (double)((i * 7919) % 1000), bm[i] = (uint8_t)(i % 2);
    assert_int_equal(fv_mia_evaluate(&f, big, bm, 1000, &e), 0);
    assert_int_equal(f.roc_n, FV_MIA_ROC_POINTS);
    assert_float_equal(f.roc_fpr[0], 0.0, 0.0);
    assert_float_equal(f.roc_tpr[f.roc_n - 1], 1.0, 0.0);
    for (int k = 1; k < f.roc_n; k++) {
        assert_true(f.roc_fpr[k] >= f.roc_fpr[k - 1]);
        assert_true(f.roc_tpr[k] >= f.roc_tpr[k - 1]);
    }
}

int main(void) {
    fv_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_figures),
        cmocka_unit_test(test_roc_points),
        cmocka_unit_test(test_lira_separates_members),
        cmocka_unit_test(test_fedsim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
