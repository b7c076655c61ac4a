/* test_distill.c: knowledge distillation (loss_soft.h fv_kd_loss, train_soft.h fv_train_epoch_kd
 * and fv_logits). The loss: its gradient against central differences of itself, alpha = 0 against
 * the hard-label loss, alpha = 1 with T = 1 against the soft-label loss, a student equal to its
 * teacher gets a zero soft gradient. The epoch: a student copied from its teacher does not move
 * under alpha = 1; a fresh student learns the teacher's decisions from the logits alone (alpha =
 * 1, labels unused) on synthetic data; two runs from one seed are bitwise equal. Through a
 * trainer: the CPU trainer's KD epoch is bitwise the direct loop, fv_kd_fit on the CPU (device -1)
 * bitwise the loop it ran before the trainer, and a missing CUDA device is an error naming it
 * (the GPU's numbers against the CPU's: test_cuda_trainer.c). The command's
 * flags are tested in test_cli_train.c (it holds the small data folder). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "data/synthetic.h"
#include "nn/layers.h"
#include "nn/loss_soft.h"
#include "nn/models.h"
#include "nn/optim.h"
#include "nn/train.h"
#include "nn/train_soft.h"
#include "nn/trainer.h"

enum { N = 5, K = 7 };

static void fill(float *v, int n, uint32_t seed, float scale) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = scale * ((float)(seed >> 8) / 16777216.0f - 0.5f);
    }
}

static const int Y[N] = {0, 3, 6, 2, 3};

/* d loss / d logits against central differences of the loss itself, for several T and alpha.
 * Tolerance: 2e-4 absolute on entries of size up to 1/N (the loss is a float; h = 1e-2 on logits
 * of size ~3 keeps both the truncation and the rounding error below 1e-4). */
static void test_gradient(void **st) {
    (void)st;
    float z[N * K], t[N * K], d[N * K];
    fill(z, N * K, 1, 6.0f);
    fill(t, N * K, 2, 6.0f);
    const float Ts[] = {1.0f, 2.0f, 4.0f, 20.0f}, As[] = {0.0f, 0.3f, 0.9f, 1.0f};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            fv_kd_loss(d, z, t, Y, N, K, Ts[a], As[b], NULL, NULL);
            for (int i = 0; i < N * K; i++) {
                const float h = 1e-2f, keep = z[i];
                z[i] = keep + h;
                const double up = fv_kd_loss(NULL, z, t, Y, N, K, Ts[a], As[b], NULL, NULL);
                z[i] = keep - h;
                const double dn = fv_kd_loss(NULL, z, t, Y, N, K, Ts[a], As[b], NULL, NULL);
                z[i] = keep;
                const double fd = (up - dn) / (2.0 * h);
                if (fabs(fd - d[i]) > 2e-4)
                    fail_msg("T %g alpha %g: d[%d] = %g, central difference %g", (double)Ts[a], (double)As[b], i,
                             (double)d[i], fd);
            }
        }
}

/* alpha = 0 is the hard-label loss; alpha = 1, T = 1 has the soft-label loss's gradient against
 * softmax(teacher), and its loss less the teacher's entropy; a teacher equal to the student
 * gives loss 0 and gradient 0 at alpha = 1 for every T. Tolerance 1e-6 (float rounding). */
static void test_special_cases(void **st) {
    (void)st;
    float z[N * K], t[N * K], d1[N * K], d2[N * K], q[N * K];
    fill(z, N * K, 3, 4.0f);
    fill(t, N * K, 4, 4.0f);
    float hard = -1;
    int c1 = -1, c2 = -2;
    const float l1 = fv_kd_loss(d1, z, t, Y, N, K, 3.0f, 0.0f, &hard, &c1);
    const float l2 = fv_softmax_xent(d2, z, Y, N, K, &c2);
    assert_true(fabsf(l1 - l2) < 1e-6f && fabsf(hard - l2) < 1e-6f);
    assert_int_equal(c1, c2);
    for (int i = 0; i < N * K; i++) assert_true(fabsf(d1[i] - d2[i]) < 1e-6f);

    double entropy = 0;
    for (int n = 0; n < N; n++) {
        double mx = t[n * K], se = 0;
        for (int k = 1; k < K; k++) mx = fmax(mx, t[n * K + k]);
        for (int k = 0; k < K; k++) se += exp(t[n * K + k] - mx);
        for (int k = 0; k < K; k++) {
            q[n * K + k] = (float)(exp(t[n * K + k] - mx) / se);
            entropy -= q[n * K + k] * log(q[n * K + k]) / N;
        }
    }
    const float l3 = fv_kd_loss(d1, z, t, Y, N, K, 1.0f, 1.0f, NULL, NULL);
    const float l4 = fv_softmax_xent_soft(d2, z, q, N, K, NULL);
    assert_true(fabs((double)l3 - ((double)l4 - entropy)) < 1e-5);
    for (int i = 0; i < N * K; i++) assert_true(fabsf(d1[i] - d2[i]) < 1e-6f);

    const float Ts[] = {0.5f, 1.0f, 7.0f};
    for (int a = 0; a < 3; a++) {
        const float l = fv_kd_loss(d1, z, z, Y, N, K, Ts[a], 1.0f, NULL, NULL);
        assert_true(fabsf(l) < 1e-6f);
        for (int i = 0; i < N * K; i++) assert_true(fabsf(d1[i]) < 1e-7f);
    }
}

typedef struct {
    fv_dataset tr, te;
    fv_net *teacher;
    float *tl; /* teacher logits of tr */
} scene;

/* A tiny teacher trained on 600 synthetic 8x8 images of 4 classes (3 epochs of Adam). */
static void scene_make(scene *s) {
    fv_synthetic_make(&s->tr, 600, 1, 8, 8, 4, 11, 0);
    fv_synthetic_make(&s->te, 400, 1, 8, 8, 4, 11, 1);
    fv_err e = {{0}};
    s->teacher = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 5, &e);
    assert_non_null(s->teacher);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = 0.01f;
    fv_opt *o = fv_opt_new(&oc, s->teacher->n_train);
    fv_rng r;
    fv_rng_seed2(&r, 5, 1);
    for (int ep = 0; ep < 3; ep++) fv_train_epoch(s->teacher, o, &s->tr, NULL, 0, 32, fv_norm_for(NULL), &r, 0, NULL, NULL, NULL, NULL);
    fv_opt_destroy(&o);
    s->tl = malloc(sizeof(float) * 600 * 4);
    fv_logits(s->teacher, &s->tr, 64, fv_norm_for(NULL), s->tl);
}

static void scene_free(scene *s) {
    free(s->tl);
    fv_net_destroy(&s->teacher);
    fv_dataset_free(&s->tr);
    fv_dataset_free(&s->te);
}

/* Top-1 agreement of two nets on d. */
static double agreement(fv_net *a, fv_net *b, const fv_dataset *d) {
    float *za = malloc(sizeof(float) * d->n * 4), *zb = malloc(sizeof(float) * d->n * 4);
    fv_logits(a, d, 50, fv_norm_for(NULL), za);
    fv_logits(b, d, 50, fv_norm_for(NULL), zb);
    int same = 0;
    for (int i = 0; i < d->n; i++) {
        int x = 0, y = 0;
        for (int k = 1; k < 4; k++) {
            x = za[i * 4 + k] > za[i * 4 + x] ? k : x;
            y = zb[i * 4 + k] > zb[i * 4 + y] ? k : y;
        }
        same += x == y;
    }
    free(za);
    free(zb);
    return (double)same / d->n;
}

/* fv_logits in batches of 64 equals single-image eval forwards (no batch statistics in eval mode;
 * tolerance 1e-5 relative for the GEMMs' different blocking). */
static void test_logits(void **st) {
    (void)st;
    scene s;
    scene_make(&s);
    fv_dataset head = s.tr;
    head.n = 10;
    float a[40], b[40];
    fv_logits(s.teacher, &head, 64, fv_norm_for(NULL), a);
    fv_logits(s.teacher, &head, 1, fv_norm_for(NULL), b);
    for (int i = 0; i < 40; i++) assert_true(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(a[i])));
    scene_free(&s);
}

/* A student copied from its teacher does not move under alpha = 1 (zero gradient, so Adam's step
 * is 0/(0 + eps) = 0); a fresh one learns the teacher's decisions from its logits alone. Threshold:
 * at least 85% top-1 agreement with the teacher on the 400 test images after 15 epochs (measured
 * 0.950 when written, from 0.247 before training; 4 classes), and above the agreement before. */
static void test_epoch(void **st) {
    (void)st;
    scene s;
    scene_make(&s);
    fv_err e = {{0}};
    fv_net *copy = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 5, &e);
    memcpy(copy->params, s.teacher->params, sizeof(float) * copy->n_params);
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = 0.01f;
    fv_opt *o = fv_opt_new(&oc, copy->n_train);
    fv_rng r;
    fv_rng_seed2(&r, 9, 1);
    fv_train_epoch_kd(copy, o, &s.tr, s.tl, 4, 2.0f, 1.0f, 32, fv_norm_for(NULL), &r, NULL, NULL);
    assert_memory_equal(copy->params, s.teacher->params, sizeof(float) * copy->n_train);
    fv_opt_destroy(&o);
    fv_net_destroy(&copy);

    float *first = NULL;
    for (int run = 0; run < 2; run++) {
        fv_net *stu = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e);
        const double before = agreement(stu, s.teacher, &s.te);
        o = fv_opt_new(&oc, stu->n_train);
        fv_rng_seed2(&r, 9, 1);
        fv_epoch_stats es = {0};
        for (int ep = 0; ep < 15; ep++)
            es = fv_train_epoch_kd(stu, o, &s.tr, s.tl, 4, 4.0f, 1.0f, 32, fv_norm_for(NULL), &r, NULL, NULL);
        const double after = agreement(stu, s.teacher, &s.te);
        if (run == 0) fprintf(stderr, "agreement with the teacher: %.3f before, %.3f after (loss %.4f)\n", before,
                              after, es.loss);
        assert_true(isfinite(es.loss) && after >= 0.85 && after > before);
        if (run == 0) {
            first = malloc(sizeof(float) * stu->n_params);
            memcpy(first, stu->params, sizeof(float) * stu->n_params);
        } else {
            assert_memory_equal(first, stu->params, sizeof(float) * stu->n_params);
        }
        fv_opt_destroy(&o);
        fv_net_destroy(&stu);
    }
    free(first);
    scene_free(&s);
}

/* The KD epoch as train_soft.c wrote it before the trainer: shuffle, then per batch
 * fv_net_forward(train 1), fv_kd_loss, fv_net_backward, fv_opt_step. */
static fv_epoch_stats direct_epoch(fv_net *net, fv_opt *opt, const fv_dataset *d, const float *tl, float T,
                                   float alpha, int batch, fv_rng *rng) {
    const int n = d->n;
    int *order = malloc(sizeof(int) * n), *y = malloc(sizeof(int) * batch);
    for (int i = 0; i < n; i++) order[i] = i;
    fv_rng_shuffle_int(rng, order, n);
    float *x = malloc(sizeof(float) * batch * 64), *t = malloc(sizeof(float) * batch * 4),
          *dl = malloc(sizeof(float) * batch * 4);
    double loss_sum = 0;
    long correct = 0;
    for (int s = 0; s < n; s += batch) {
        const int b = n - s < batch ? n - s : batch;
        fv_dataset_to_float(d, order + s, 0, b, fv_norm_for(NULL), x);
        for (int i = 0; i < b; i++) memcpy(t + i * 4, tl + order[s + i] * 4, sizeof(float) * 4);
        fv_dataset_labels(d, order + s, 0, b, y);
        const float *logits = fv_net_forward(net, x, b, 1);
        int c = 0;
        const float l = fv_kd_loss(dl, logits, t, y, b, 4, T, alpha, NULL, &c);
        fv_net_backward(net, dl, b);
        fv_opt_step(opt, net->params, net->grads);
        loss_sum += (double)l * b;
        correct += c;
    }
    free(order);
    free(y);
    free(x);
    free(t);
    free(dl);
    fv_epoch_stats st = {loss_sum / n, (double)correct / n, n, 0};
    return st;
}

/* Two epochs (batch 32 over 600 images: a partial last batch) of the CPU trainer's KD epoch
 * (fv_train_epoch_kd_trainer over fv_trainer_train_kd_batch), of fv_train_epoch_kd and of the
 * direct loop from one seed: the same parameters, buffers and statistics, bit for bit. */
static void test_trainer_epoch(void **st) {
    (void)st;
    scene s;
    scene_make(&s);
    fv_err e = {{0}};
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = 0.01f;
    fv_net *a = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e), *b = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e),
           *c = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e);
    assert_true(a && b && c);
    fv_opt *oa = fv_opt_new(&oc, a->n_train), *ob = fv_opt_new(&oc, b->n_train);
    const fv_trainer_cfg tc = {.device = -1, .max_batch = 32, .opt = oc, .norm = fv_norm_for(NULL)};
    fv_trainer *t = fv_trainer_new(c, &tc, &e);
    assert_non_null(t);
    fv_rng ra, rb, rc;
    fv_rng_seed2(&ra, 9, 1);
    fv_rng_seed2(&rb, 9, 1);
    fv_rng_seed2(&rc, 9, 1);
    for (int ep = 0; ep < 2; ep++) {
        const fv_epoch_stats sa = direct_epoch(a, oa, &s.tr, s.tl, 3.0f, 0.7f, 32, &ra);
        const fv_epoch_stats sb = fv_train_epoch_kd(b, ob, &s.tr, s.tl, 4, 3.0f, 0.7f, 32, fv_norm_for(NULL), &rb,
                                                    NULL, NULL);
        const fv_epoch_stats sc = fv_train_epoch_kd_trainer(t, &s.tr, s.tl, 4, 3.0f, 0.7f, 32, fv_norm_for(NULL),
                                                            &rc, NULL, NULL);
        assert_true(sa.loss == sb.loss && sa.loss == sc.loss && isfinite(sa.loss));
        assert_true(sa.accuracy == sb.accuracy && sa.accuracy == sc.accuracy);
    }
    float *pc = malloc(sizeof(float) * c->n_params);
    fv_trainer_get_params(t, pc);
    assert_memory_equal(a->params, b->params, sizeof(float) * a->n_params);
    assert_memory_equal(a->params, pc, sizeof(float) * a->n_params);
    assert_memory_equal(a->params, c->params, sizeof(float) * a->n_params);
    free(pc);
    fv_trainer_destroy(&t);
    fv_opt_destroy(&oa);
    fv_opt_destroy(&ob);
    fv_net_destroy(&a);
    fv_net_destroy(&b);
    fv_net_destroy(&c);
    scene_free(&s);
}

/* fv_kd_fit on the CPU (device -1) against the loop it ran before the trainer: a fresh optimizer,
 * the order from seed2(seed, 1), fv_train_epoch_kd epochs on the student itself, the student's
 * top-1 from fv_logits in batches of 500: the same parameters and figures, bit for bit. */
static void test_fit_cpu(void **st) {
    (void)st;
    scene s;
    scene_make(&s);
    fv_err e = {{0}};
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = 0.01f;
    const fv_kd_cfg kc = {.opt = oc, .T = 4.0f, .alpha = 0.9f, .epochs = 2, .batch = 32, .seed = 21,
                          .norm = fv_norm_for(NULL), .device = -1};
    fv_net *a = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e), *b = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e);
    fv_kd_result ra;
    assert_int_equal(fv_kd_fit(s.teacher, a, &s.tr, &s.te, &kc, NULL, NULL, &ra, &e), 0);

    fv_opt *o = fv_opt_new(&oc, b->n_train);
    fv_rng r;
    fv_rng_seed2(&r, 21, 1);
    fv_epoch_stats last = {0};
    for (int ep = 0; ep < 2; ep++)
        last = fv_train_epoch_kd(b, o, &s.tr, s.tl, 4, 4.0f, 0.9f, 32, fv_norm_for(NULL), &r, NULL, NULL);
    fv_kd_result rb;
    memset(&rb, 0, sizeof rb);
    fv_kd_compare(s.teacher, b, &s.te, fv_norm_for(NULL), &rb);
    assert_memory_equal(a->params, b->params, sizeof(float) * a->n_params);
    assert_true(ra.last.loss == last.loss && ra.last.accuracy == last.accuracy);
    assert_true(ra.student_acc == rb.student_acc && ra.agreement == rb.agreement && ra.teacher_acc == rb.teacher_acc);
    fv_opt_destroy(&o);
    fv_net_destroy(&a);
    fv_net_destroy(&b);
    scene_free(&s);
}

/* A CUDA device this machine lacks: fv_kd_fit returns -1 with an error naming it, and leaves the
 * student untouched (cuda:1023 anywhere; cuda:0 too where no device is visible). */
static void test_fit_missing_device(void **st) {
    (void)st;
    scene s;
    scene_make(&s);
    fv_err e = {{0}};
    fv_net *a = fv_model_new("tiny", (fv_shape){1, 8, 8}, 4, 77, &e);
    float *before = malloc(sizeof(float) * a->n_params);
    memcpy(before, a->params, sizeof(float) * a->n_params);
    const int devs[2] = {1023, 0};
    for (int i = 0; i < (fv_cuda_device_count() == 0 ? 2 : 1); i++) {
        const fv_kd_cfg kc = {.opt = fv_opt_defaults(FV_OPT_ADAM), .T = 4.0f, .alpha = 0.9f, .epochs = 1, .batch = 32,
                              .seed = 1, .norm = fv_norm_for(NULL), .device = devs[i]};
        char want[16];
        snprintf(want, sizeof want, "cuda:%d", devs[i]);
        fv_kd_result r;
        memset(&e, 0, sizeof e);
        assert_int_equal(fv_kd_fit(s.teacher, a, &s.tr, &s.te, &kc, NULL, NULL, &r, &e), -1);
        if (!strstr(e.msg, want)) fail_msg("%s: the error does not name it: %s", want, e.msg);
    }
    assert_memory_equal(before, a->params, sizeof(float) * a->n_params);
    free(before);
    fv_net_destroy(&a);
    scene_free(&s);
}

int main(void) {
    fv_set_threads(1);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gradient), cmocka_unit_test(test_special_cases),
                                       cmocka_unit_test(test_logits), cmocka_unit_test(test_epoch),
                                       cmocka_unit_test(test_trainer_epoch), cmocka_unit_test(test_fit_cpu),
                                       cmocka_unit_test(test_fit_missing_device)};
    return cmocka_run_group_tests_name("distill", tests, NULL, NULL) != 0 ? 1 : 0;
}
