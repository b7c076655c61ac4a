/* test_optim.c: SGD, Adam and ST-Adam against the formulas written out in double precision,
 * the ST-Adam / Adam difference the spec asks for (visualmixer.md section 5), reset, the state
 * vector, configuration checks and the multi-threaded path.
 *
 * Tolerance: the optimizer works in float, the references in double (with the same float
 * hyper-parameters widened), so parameters of magnitude <= 2 agree to TOL = 2e-6 absolute
 * (a few float ulps after three steps). Every formula error these tests guard against (bias
 * correction, eps placement, Nesterov form, weight decay) moves a parameter by more than 1e-4.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "rng.h"

#define TOL 2e-6
#define NP 3
#define NSTEP 3

/* Parameters at the start and the gradient of each step (gradients do not depend on the
 * parameters here: the optimizer only sees numbers). Magnitudes span 1e-3 .. 1 so that eps
 * matters for some entries and not for others. */
static const float P0[NP] = {0.5f, -1.25f, 2.0f};
static const float G[NSTEP][NP] = {
    {0.2f, -0.003f, 1.0f},
    {-0.1f, 0.002f, 0.5f},
    {0.3f, 0.001f, -0.75f},
};

static void check_close(const float *got, const double *want, int n, double tol, const char *what,
                        int step) {
    for (int i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= tol)) fail_msg("%s step %d param %d: got %.9g want %.9g (|diff| %.3g > %.1g)",
                                  what, step, i, (double)got[i], want[i], d, tol);
    }
}

/* Runs NSTEP steps of cfg from P0 with G and compares each step with ref(). */
typedef void (*ref_step_fn)(double *p, double *s1, double *s2, double *s3, const float *g, int t,
                            const fv_opt_cfg *c);

static void run_against(const fv_opt_cfg *cfg, ref_step_fn ref, const char *what) {
    fv_opt *o = fv_opt_new(cfg, NP);
    float p[NP];
    double rp[NP], s1[NP] = {0}, s2[NP] = {0}, s3[NP] = {0};
    for (int i = 0; i < NP; i++) {
        p[i] = P0[i];
        rp[i] = P0[i];
    }
    for (int t = 1; t <= NSTEP; t++) {
        fv_opt_step(o, p, G[t - 1]);
        ref(rp, s1, s2, s3, G[t - 1], t, cfg);
        check_close(p, rp, NP, TOL, what, t);
        assert_int_equal(*fv_opt_step_count(o), t);
    }
    fv_opt_destroy(&o);
    assert_null(o);
}

/* PyTorch SGD, written out: d = g + wd p; b = (t == 1) ? d : mu b + d;
 * d = nesterov ? d + mu b : b; p = p - lr d. (s1 = b) */
static void ref_sgd(double *p, double *b, double *unused2, double *unused3, const float *g, int t,
                    const fv_opt_cfg *c) {
    double lr = c->lr, wd = c->wd, mu = c->momentum;
    for (int i = 0; i < NP; i++) {
        double d = (double)g[i] + wd * p[i];
        if (mu != 0) {
            b[i] = t == 1 ? d : mu * b[i] + d;
            d = c->nesterov ? d + mu * b[i] : b[i];
        }
        p[i] = p[i] - lr * d;
    }
}

/* PyTorch Adam, written out: d = g + wd p; m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d^2;
 * mhat = m / (1 - b1^t); vhat = v / (1 - b2^t); p = p - lr mhat / (sqrt(vhat) + eps). */
static void ref_adam(double *p, double *m, double *v, double *unused3, const float *g, int t,
                     const fv_opt_cfg *c) {
    double lr = c->lr, wd = c->wd, b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    for (int i = 0; i < NP; i++) {
        double d = (double)g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        double mhat = m[i] / (1 - pow(b1, t));
        double vhat = v[i] / (1 - pow(b2, t));
        p[i] = p[i] - lr * mhat / (sqrt(vhat) + eps);
    }
}

/* ST-Adam, visualmixer.md section 5, written out: d = g + wd p; m = b1 m + (1 - b1) d;
 * v = b2 v + (1 - b2) d^2; u = mu u + m / (sqrt(v) + eps); p = p - lr u. */
static void ref_stadam(double *p, double *m, double *v, double *u, const float *g, int t,
                       const fv_opt_cfg *c) {
    double lr = c->lr, wd = c->wd, b1 = c->beta1, b2 = c->beta2, eps = c->eps, mu = c->mu;
    for (int i = 0; i < NP; i++) {
        double d = (double)g[i] + wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * d;
        v[i] = b2 * v[i] + (1 - b2) * d * d;
        u[i] = mu * u[i] + m[i] / (sqrt(v[i]) + eps);
        p[i] = p[i] - lr * u[i];
    }
}

static void test_sgd_plain(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_SGD);
    c.lr = 0.1f;
    run_against(&c, ref_sgd, "sgd");
    /* and one hand value: p0 = 0.5, g = 0.2, lr 0.1 -> 0.48 */
    fv_opt *o = fv_opt_new(&c, NP);
    float p[NP];
    memcpy(p, P0, sizeof p);
    fv_opt_step(o, p, G[0]);
    assert_float_equal(p[0], 0.48f, 1e-7);
    size_t len = 99;
    assert_null(fv_opt_state(o, &len));
    assert_int_equal(len, 0);
    fv_opt_destroy(&o);
}

static void test_sgd_wd(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_SGD);
    c.lr = 0.1f;
    c.wd = 0.05f;
    run_against(&c, ref_sgd, "sgd wd");
    /* hand value: d = 0.2 + 0.05 * 0.5 = 0.225, p = 0.5 - 0.0225 = 0.4775 */
    fv_opt *o = fv_opt_new(&c, NP);
    float p[NP];
    memcpy(p, P0, sizeof p);
    fv_opt_step(o, p, G[0]);
    assert_float_equal(p[0], 0.4775f, 1e-7);
    fv_opt_destroy(&o);
}

static void test_sgd_momentum(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_SGD);
    c.lr = 0.1f;
    c.momentum = 0.9f;
    c.wd = 0.01f;
    run_against(&c, ref_sgd, "sgd momentum");
    /* hand values for param 0 without wd: b1 = 0.2, p = 0.48; b2 = 0.9*0.2 - 0.1 = 0.08,
     * p = 0.472; b3 = 0.072 + 0.3 = 0.372, p = 0.4348 */
    c.wd = 0;
    fv_opt *o = fv_opt_new(&c, NP);
    float p[NP];
    memcpy(p, P0, sizeof p);
    const float want[NSTEP] = {0.48f, 0.472f, 0.4348f};
    for (int t = 0; t < NSTEP; t++) {
        fv_opt_step(o, p, G[t]);
        assert_float_equal(p[0], want[t], 1e-6);
    }
    size_t len = 0;
    float *s = fv_opt_state(o, &len);
    assert_int_equal(len, NP);
    assert_float_equal(s[0], 0.372f, 1e-6);
    fv_opt_destroy(&o);
}

static void test_sgd_nesterov(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_SGD);
    c.lr = 0.1f;
    c.momentum = 0.9f;
    c.nesterov = 1;
    c.wd = 0.05f;
    run_against(&c, ref_sgd, "sgd nesterov");
    /* hand values for param 0 without wd: b1 = 0.2, d = 0.2 + 0.18 = 0.38, p = 0.462;
     * b2 = 0.08, d = -0.1 + 0.072 = -0.028, p = 0.4648 */
    c.wd = 0;
    fv_opt *o = fv_opt_new(&c, NP);
    float p[NP];
    memcpy(p, P0, sizeof p);
    fv_opt_step(o, p, G[0]);
    assert_float_equal(p[0], 0.462f, 1e-6);
    fv_opt_step(o, p, G[1]);
    assert_float_equal(p[0], 0.4648f, 1e-6);
    fv_opt_destroy(&o);
}

static void test_adam(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_ADAM);
    c.lr = 0.01f;
    run_against(&c, ref_adam, "adam");
    /* eps of the size of the small gradients: placing eps before the bias correction of v
     * (or inside the square root) would move param 1 by ~1e-3. */
    c.eps = 1e-3f;
    c.wd = 0.1f;
    run_against(&c, ref_adam, "adam eps wd");
    c.beta1 = 0.5f;
    c.beta2 = 0.75f;
    c.wd = 0;
    run_against(&c, ref_adam, "adam betas");
    /* hand value: first step with eps 0 moves every parameter by lr * sign(g) */
    c = fv_opt_defaults(FV_OPT_ADAM);
    c.lr = 0.01f;
    c.eps = 0;
    fv_opt *o = fv_opt_new(&c, NP);
    float p[NP];
    memcpy(p, P0, sizeof p);
    fv_opt_step(o, p, G[0]);
    for (int i = 0; i < NP; i++)
        assert_float_equal(p[i], P0[i] - 0.01f * (G[0][i] > 0 ? 1.0f : -1.0f), 1e-6);
    fv_opt_destroy(&o);
}

static void test_stadam(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_STADAM);
    c.lr = 0.01f;
    run_against(&c, ref_stadam, "stadam");
    c.mu = 0.5f;
    c.wd = 0.01f;
    run_against(&c, ref_stadam, "stadam mu wd");
    c.eps = 1e-3f;
    c.mu = 0.9f;
    run_against(&c, ref_stadam, "stadam eps mu");
}

/* visualmixer.md section 5: with mu = 0 and wd = 0, ST-Adam is Adam minus bias correction.
 * Hand computation of step t (eps = 0): Adam moves p by lr * mhat / sqrt(vhat) =
 * lr * (m / (1 - b1^t)) / (sqrt(v) / sqrt(1 - b2^t)); ST-Adam by lr * m / sqrt(v). So
 * ST-Adam's step = Adam's step * (1 - b1^t) / sqrt(1 - b2^t): at t = 1 with the defaults that
 * is 0.1 / sqrt(0.001) = 3.16227766, and both start from the same m, v since their moment
 * updates are identical. */
static void test_stadam_vs_adam(void **st) {
    fv_opt_cfg ca = fv_opt_defaults(FV_OPT_ADAM), cs = fv_opt_defaults(FV_OPT_STADAM);
    ca.eps = cs.eps = 0;
    fv_opt *a = fv_opt_new(&ca, NP), *s = fv_opt_new(&cs, NP);
    float pa[NP], ps[NP];
    memcpy(pa, P0, sizeof pa);
    memcpy(ps, P0, sizeof ps);
    double b1 = ca.beta1, b2 = ca.beta2;
    for (int t = 1; t <= NSTEP; t++) {
        float qa[NP], qs[NP];
        memcpy(qa, pa, sizeof qa);
        memcpy(qs, ps, sizeof qs);
        fv_opt_step(a, pa, G[t - 1]);
        fv_opt_step(s, ps, G[t - 1]);
        double corr = (1 - pow(b1, t)) / sqrt(1 - pow(b2, t));
        /* 1e-4: the float betas 0.9f, 0.999f are 0.9 + 2.4e-8, 0.999 + 1.3e-8 */
        if (t == 1) assert_true(fabs(corr - 0.1 / sqrt(0.001)) < 1e-4);
        for (int i = 0; i < NP; i++) {
            double da = (double)qa[i] - pa[i], ds = (double)qs[i] - ps[i];
            /* steps are ~1e-3 to 3e-3; float rounding of p (~1e-7) limits the ratio to 1e-3
             * relative, while a missing or extra correction changes it by >= 180%. */
            double ratio = ds / da;
            if (fabs(ratio - corr) > 1e-3 * corr)
                fail_msg("step %d param %d: ST-Adam/Adam step ratio %.6f, want %.6f", t, i, ratio,
                         corr);
        }
        /* the moments are the same for both */
        size_t la, ls;
        float *sa = fv_opt_state(a, &la), *ss = fv_opt_state(s, &ls);
        assert_int_equal(la, 2 * NP);
        assert_int_equal(ls, 2 * NP);
        assert_memory_equal(sa, ss, 2 * NP * sizeof(float));
    }
    /* first step with the default eps, by hand for param 2 (g = 1): Adam moves it by
     * lr * 1 / (1 + 1e-8); ST-Adam by lr * 0.1 / (sqrt(0.001) + 1e-8). */
    ca.eps = cs.eps = 1e-8f;
    fv_opt_destroy(&a);
    fv_opt_destroy(&s);
    a = fv_opt_new(&ca, NP);
    s = fv_opt_new(&cs, NP);
    memcpy(pa, P0, sizeof pa);
    memcpy(ps, P0, sizeof ps);
    fv_opt_step(a, pa, G[0]);
    fv_opt_step(s, ps, G[0]);
    double want_a = 2.0 - 1e-3 * 1.0 / (1.0 + 1e-8);
    double want_s = 2.0 - 1e-3 * (double)(1 - ca.beta1) / (sqrt((double)(1 - ca.beta2)) + 1e-8);
    assert_true(fabs(pa[2] - want_a) < TOL);
    assert_true(fabs(ps[2] - want_s) < TOL);
    assert_true(fabs((2.0 - ps[2]) - 3.16227766e-3) < 1e-5);
    fv_opt_destroy(&a);
    fv_opt_destroy(&s);
}

/* After a reset an optimizer behaves bit for bit like a fresh one. */
static void test_reset(void **st) {
    fv_opt_kind kinds[3] = {FV_OPT_SGD, FV_OPT_ADAM, FV_OPT_STADAM};
    for (int k = 0; k < 3; k++) {
        fv_opt_cfg c = fv_opt_defaults(kinds[k]);
        c.momentum = 0.9f;
        c.mu = 0.5f;
        fv_opt *o = fv_opt_new(&c, NP), *f = fv_opt_new(&c, NP);
        float p[NP], q[NP];
        memcpy(p, P0, sizeof p);
        for (int t = 0; t < NSTEP; t++) fv_opt_step(o, p, G[t]);
        fv_opt_reset(o);
        assert_int_equal(*fv_opt_step_count(o), 0);
        size_t len;
        float *s = fv_opt_state(o, &len);
        for (size_t i = 0; i < len; i++) assert_true(s[i] == 0.0f);
        memcpy(p, P0, sizeof p);
        memcpy(q, P0, sizeof q);
        for (int t = 0; t < NSTEP; t++) {
            fv_opt_step(o, p, G[t]);
            fv_opt_step(f, q, G[t]);
        }
        assert_memory_equal(p, q, sizeof p);
        fv_opt_destroy(&o);
        fv_opt_destroy(&f);
    }
}

/* State layout and save / restore: m then v (then u); restoring the vector and the step count
 * into a new optimizer continues bit for bit. */
static void test_state(void **st) {
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_ADAM);
    assert_int_equal(fv_opt_state_len(&c, 10), 20);
    c.kind = FV_OPT_STADAM;
    assert_int_equal(fv_opt_state_len(&c, 10), 20);
    c.mu = 0.5f;
    assert_int_equal(fv_opt_state_len(&c, 10), 30);
    c = fv_opt_defaults(FV_OPT_SGD);
    assert_int_equal(fv_opt_state_len(&c, 10), 0);
    c.momentum = 0.9f;
    assert_int_equal(fv_opt_state_len(&c, 10), 10);

    /* Adam after one step: m = (1 - b1) g, v = (1 - b2) g^2 */
    c = fv_opt_defaults(FV_OPT_ADAM);
    fv_opt *o = fv_opt_new(&c, NP);
    float p[NP];
    memcpy(p, P0, sizeof p);
    fv_opt_step(o, p, G[0]);
    size_t len;
    float *s = fv_opt_state(o, &len);
    assert_int_equal(len, 2 * NP);
    for (int i = 0; i < NP; i++) {
        assert_float_equal(s[i], 0.1 * G[0][i], 1e-7); /* (1 - 0.9f) = 0.1 + 2.4e-8 */
        assert_float_equal(s[NP + i], 0.001 * G[0][i] * G[0][i], 2e-8); /* (1 - 0.999f) = 0.001 - 1.3e-8 */
    }
    fv_opt_destroy(&o);

    fv_opt_kind kinds[3] = {FV_OPT_SGD, FV_OPT_ADAM, FV_OPT_STADAM};
    for (int k = 0; k < 3; k++) {
        c = fv_opt_defaults(kinds[k]);
        c.momentum = 0.9f;
        c.mu = 0.5f;
        fv_opt *a = fv_opt_new(&c, NP);
        float pa[NP];
        memcpy(pa, P0, sizeof pa);
        fv_opt_step(a, pa, G[0]);
        fv_opt_step(a, pa, G[1]);
        size_t la;
        float *sa = fv_opt_state(a, &la);
        assert_int_equal(la, fv_opt_state_len(&c, NP));
        float *saved = malloc(la * sizeof(float));
        memcpy(saved, sa, la * sizeof(float));
        int64_t saved_t = *fv_opt_step_count(a);
        float pb[NP];
        memcpy(pb, pa, sizeof pb);

        fv_opt *b = fv_opt_new(&c, NP);
        size_t lb;
        float *sb = fv_opt_state(b, &lb);
        assert_int_equal(lb, la);
        memcpy(sb, saved, lb * sizeof(float));
        *fv_opt_step_count(b) = saved_t;
        fv_opt_step(a, pa, G[2]);
        fv_opt_step(b, pb, G[2]);
        assert_memory_equal(pa, pb, sizeof pa);
        free(saved);
        fv_opt_destroy(&a);
        fv_opt_destroy(&b);
    }
}

static void test_parse_and_check(void **st) {
    fv_opt_kind k;
    fv_err e;
    assert_int_equal(fv_opt_parse_kind("sgd", &k, &e), 0);
    assert_int_equal(k, FV_OPT_SGD);
    assert_int_equal(fv_opt_parse_kind("adam", &k, &e), 0);
    assert_int_equal(k, FV_OPT_ADAM);
    assert_int_equal(fv_opt_parse_kind("stadam", &k, &e), 0);
    assert_int_equal(k, FV_OPT_STADAM);
    assert_int_equal(fv_opt_parse_kind("ST-Adam", &k, &e), 0);
    assert_int_equal(k, FV_OPT_STADAM);
    const char *bad[] = {"", "adamw", "sgd ", "st_adam", "rmsprop"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        k = FV_OPT_ADAM;
        memset(&e, 0, sizeof e);
        assert_int_equal(fv_opt_parse_kind(bad[i], &k, &e), -1);
        assert_int_equal(k, FV_OPT_ADAM);
        assert_non_null(strstr(e.msg, "unknown optimizer"));
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_non_null(strstr(e.msg, quoted));
    }
    assert_int_equal(fv_opt_parse_kind("x", &k, NULL), -1); /* e may be NULL */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fv_opt_parse_kind(fv_opt_kind_name((fv_opt_kind)i), &k, &e), 0);
        assert_int_equal(k, i);
    }

    fv_opt_cfg c = fv_opt_defaults(FV_OPT_ADAM);
    assert_float_equal(c.lr, 1e-3f, 0);
    assert_float_equal(c.beta1, 0.9f, 0);
    assert_float_equal(c.beta2, 0.999f, 0);
    assert_float_equal(c.eps, 1e-8f, 0);
    assert_float_equal(fv_opt_defaults(FV_OPT_SGD).lr, 0.01f, 0);
    assert_int_equal(fv_opt_cfg_check(&c, &e), 0);
    struct {
        fv_opt_kind kind;
        size_t field;
        float value;
        const char *word;
    } cases[] = {
        {FV_OPT_ADAM, offsetof(fv_opt_cfg, lr), -1e-3f, "lr"},
        {FV_OPT_ADAM, offsetof(fv_opt_cfg, lr), NAN, "lr"},
        {FV_OPT_SGD, offsetof(fv_opt_cfg, wd), -0.1f, "weight decay"},
        {FV_OPT_SGD, offsetof(fv_opt_cfg, momentum), -0.5f, "momentum"},
        {FV_OPT_ADAM, offsetof(fv_opt_cfg, beta1), 1.0f, "beta1"},
        {FV_OPT_ADAM, offsetof(fv_opt_cfg, beta2), -0.1f, "beta2"},
        {FV_OPT_STADAM, offsetof(fv_opt_cfg, eps), -1e-8f, "eps"},
        {FV_OPT_STADAM, offsetof(fv_opt_cfg, mu), INFINITY, "mu"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        c = fv_opt_defaults(cases[i].kind);
        memcpy((char *)&c + cases[i].field, &cases[i].value, sizeof(float));
        memset(&e, 0, sizeof e);
        assert_int_equal(fv_opt_cfg_check(&c, &e), -1);
        if (!strstr(e.msg, cases[i].word)) fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].word);
    }
    c = fv_opt_defaults(FV_OPT_SGD);
    c.nesterov = 1;
    assert_int_equal(fv_opt_cfg_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "Nesterov"));
    c.momentum = 0.9f;
    assert_int_equal(fv_opt_cfg_check(&c, &e), 0);
}

/* The learning-rate schedule, by hand: cosine decay over D steps, a linear warm-up over W steps
 * multiplying it (step t = 1..W at t/W), both, and the step counts checked. Tolerance 1e-7
 * relative (float rounding of a double formula). */
static void test_schedule(void **st) {
    (void)st;
    const double pi = 3.14159265358979323846;
    fv_opt_cfg c = fv_opt_defaults(FV_OPT_SGD);
    c.lr = 0.1f, c.momentum = 0;
    float p = 0, g = 0;
    for (int mode = 0; mode < 3; mode++) {
        c.decay_steps = mode != 1 ? 10 : 0;
        c.warmup_steps = mode != 0 ? 4 : 0;
        fv_opt *o = fv_opt_new(&c, 1);
        for (int t = 0; t < 14; t++) { /* t: steps already taken */
            double want = 0.1;
            if (c.decay_steps) want = 0.05 * (1.0 + cos(pi * (t < 10 ? t : 10) / 10.0));
            if (c.warmup_steps && t < 4) want *= (t + 1) / 4.0;
            const double got = fv_opt_current_lr(o);
            if (fabs(got - want) > 1e-7 * 0.1) fail_msg("mode %d step %d: lr %.9g, want %.9g", mode, t, got, want);
            fv_opt_step(o, &p, &g);
        }
        fv_opt_destroy(&o);
    }
    fv_err e = {{0}};
    c.warmup_steps = -1;
    assert_int_equal(fv_opt_cfg_check(&c, &e), -1);
    assert_non_null(strstr(e.msg, "warm-up"));
}

/* The multi-threaded path (n above the threshold) gives the same bits as small serial chunks. */
static void test_parallel_matches_serial(void **st) {
    enum { N = 100000, CH = 1000 };
    fv_rng r;
    fv_rng_seed(&r, 7);
    float *p = malloc(N * sizeof(float)), *q = malloc(N * sizeof(float));
    float *g = malloc(NSTEP * N * sizeof(float));
    for (int i = 0; i < N; i++) p[i] = q[i] = (float)fv_rng_normal(&r);
    for (int i = 0; i < NSTEP * N; i++) g[i] = (float)fv_rng_normal(&r) * 0.1f;
    fv_opt_kind kinds[3] = {FV_OPT_SGD, FV_OPT_ADAM, FV_OPT_STADAM};
    for (int k = 0; k < 3; k++) {
        fv_opt_cfg c = fv_opt_defaults(kinds[k]);
        c.momentum = 0.9f;
        c.nesterov = 1;
        c.wd = 1e-4f;
        c.mu = 0.5f;
        fv_opt *big = fv_opt_new(&c, N);
        fv_opt *small[N / CH];
        for (int j = 0; j < N / CH; j++) small[j] = fv_opt_new(&c, CH);
        for (int t = 0; t < NSTEP; t++) {
            fv_opt_step(big, p, g + (size_t)t * N);
            for (int j = 0; j < N / CH; j++) fv_opt_step(small[j], q + j * CH, g + (size_t)t * N + j * CH);
        }
        assert_memory_equal(p, q, N * sizeof(float));
        fv_opt_destroy(&big);
        for (int j = 0; j < N / CH; j++) fv_opt_destroy(&small[j]);
    }
    free(p);
    free(q);
    free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_sgd_wd),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_stadam),
        cmocka_unit_test(test_stadam_vs_adam),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_parse_and_check),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_parallel_matches_serial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
