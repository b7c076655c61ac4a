/* invert.c: see invert.h. */
#include "invert.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_thread.h"
#include "lbfgs.h"
#include "nn/layers.h"
#include "nn/trainer.h"
#include "rng.h"

struct fv_invert_engine {
    fv_net *net;
    fv_trainer *t; /* the passes (trainer.h, fv_trainer_inv_*), on the engine's device */
    fv_invert_update_cfg cfg;
    int T, steps_per_epoch, classes, have_x;
    int masks_t; /* the local step whose kinks the trainer has recorded (-1: none) */
    const float *pt_base, *pt_dir; /* the point the trainer holds (point(); NULL base: unknown) */
    size_t nt, np, isz;
    long passes;
    /* one block: theta0[np] traj[T * nt] a[nt] gp[nt] gxp[n isz], and for one-sided
     * differences the gradients at each theta_t: gbase[T * nt] xbase[T * B * isz]. The minus
     * side of a central difference is read in place from the trainer's pass output. */
    float *block, *theta0, *traj, *a, *gp, *gxp, *gbase, *xbase;
    double *thn;   /* [T] ||theta_t||: t = 0 at creation, the others by fv_invert_update */
};

/* The sums over parameter-sized vectors in double, in DOT_LANES interleaved partial sums (element
 * i goes to lane i % DOT_LANES) added in lane order at the end: a fixed order, so the result does
 * not depend on the compiler's vectorisation or the thread count, and the lanes pipeline (one
 * running sum was bound by the latency of an add, about a quarter of the engine's own time). */
#define DOT_LANES 8

/* sum_i a[i] b[i] in double. */
static double dot_d(const float *a, const float *b, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0; /* the lanes, in registers */
    size_t i = 0;
    for (; i + DOT_LANES <= n; i += DOT_LANES) {
        const float *p = a + i, *q = b + i;
        s0 += (double)p[0] * q[0], s1 += (double)p[1] * q[1], s2 += (double)p[2] * q[2];
        s3 += (double)p[3] * q[3], s4 += (double)p[4] * q[4], s5 += (double)p[5] * q[5];
        s6 += (double)p[6] * q[6], s7 += (double)p[7] * q[7];
    }
    double s[DOT_LANES] = {s0, s1, s2, s3, s4, s5, s6, s7};
    for (int k = 0; i < n; i++, k++) s[k] += (double)a[i] * b[i];
    double r = 0;
    for (int k = 0; k < DOT_LANES; k++) r += s[k];
    return r;
}

static double norm2(const float *v, size_t n) { return sqrt(dot_d(v, v, n)); }

fv_invert_update_cfg fv_invert_update_defaults(void) {
    return (fv_invert_update_cfg){FV_INVERT_FEDSGD, 1, 1, 1, 0.01f, FV_INVERT_FD_SCALE, 0};
}

fv_invert_engine *fv_invert_engine_new(fv_net *net, const fv_invert_update_cfg *cfg, fv_err *e) {
    return fv_invert_engine_new_on(net, cfg, -1, e);
}

fv_invert_engine *fv_invert_engine_new_on(fv_net *net, const fv_invert_update_cfg *cfg, int device, fv_err *e) {
    if (!net || !net->finished || net->n_train == 0) {
        fv_err_set(e, "invert: the model has no trainable parameters");
        return NULL;
    }
    if (cfg->n < 1) {
        fv_err_set(e, "invert: %d images (need at least 1)", cfg->n);
        return NULL;
    }
    if (!(cfg->fd_scale > 0 && cfg->fd_scale < 1)) {
        fv_err_set(e, "invert: fd_scale %g is not in (0, 1)", cfg->fd_scale);
        return NULL;
    }
    int T = 1, spe = 1;
    if (cfg->kind == FV_INVERT_FEDAVG) {
        if (cfg->batch < 1 || cfg->batch > cfg->n) {
            fv_err_set(e, "invert: local batch %d is not in [1, %d] (the client's images)", cfg->batch, cfg->n);
            return NULL;
        }
        if (cfg->epochs < 1 || cfg->epochs > 10000) {
            fv_err_set(e, "invert: local epochs %d is not in [1, 10000]", cfg->epochs);
            return NULL;
        }
        if (!(cfg->lr > 0) || !isfinite(cfg->lr)) {
            fv_err_set(e, "invert: local learning rate %g is not positive", (double)cfg->lr);
            return NULL;
        }
        spe = (cfg->n + cfg->batch - 1) / cfg->batch;
        T = cfg->epochs * spe;
    } else if (cfg->kind != FV_INVERT_FEDSGD) {
        fv_err_set(e, "invert: unknown update kind %d", (int)cfg->kind);
        return NULL;
    }
    fv_invert_engine *g = fv_calloc(1, sizeof *g);
    g->net = net;
    g->cfg = *cfg;
    g->T = T;
    g->steps_per_epoch = spe;
    g->nt = net->n_train;
    g->np = net->n_params;
    g->isz = fv_shape_size(net->input);
    g->classes = (int)fv_shape_size(fv_net_output_shape(net));
    const size_t n = (size_t)cfg->n;
    const size_t bmax = cfg->kind == FV_INVERT_FEDAVG ? (size_t)cfg->batch : n;
    size_t total = g->np + (size_t)T * g->nt + 2 * g->nt + n * g->isz;
    if (cfg->one_sided) total += (size_t)T * (g->nt + bmax * g->isz);
    g->block = fv_malloc(total * sizeof(float));
    g->masks_t = -1;
    float *p = g->block;
    g->theta0 = p, p += g->np;
    g->traj = p, p += (size_t)T * g->nt;
    g->a = p, p += g->nt;
    g->gp = p, p += g->nt;
    g->gxp = p, p += n * g->isz;
    if (cfg->one_sided) {
        g->gbase = p, p += (size_t)T * g->nt;
        g->xbase = p;
    }
    g->thn = fv_malloc(sizeof(double) * (size_t)T);
    memcpy(g->theta0, net->params, g->np * sizeof(float));
    g->thn[0] = norm2(g->theta0, g->nt); /* theta_0 is the first step's theta whatever the images */
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].op == FV_OP_DROPOUT) net->nodes[i].p = 0.0f;
    net->keep_im2col = 1; /* every pass is a forward + backward on the same images */
    /* the passes' trainer: all n images at once (fedSGD, the fedAVG prior), no optimizer steps */
    fv_trainer_cfg tc = {.device = device, .max_batch = cfg->n, .opt = fv_opt_defaults(FV_OPT_SGD), .eager = 1};
    g->t = fv_trainer_new(net, &tc, e);
    if (!g->t || fv_trainer_inv_open(g->t, g->theta0, cfg->n, T, (int)bmax, e)) {
        fv_err_prefix(e, "invert: ");
        fv_invert_engine_free(&g);
        return NULL;
    }
    return g;
}

void fv_invert_engine_free(fv_invert_engine **eng) {
    if (!eng || !*eng) return;
    fv_trainer_destroy(&(*eng)->t);
    free((*eng)->block);
    free((*eng)->thn);
    free(*eng);
    *eng = NULL;
}

int fv_invert_steps(const fv_invert_engine *eng) { return eng->T; }
size_t fv_invert_n_train(const fv_invert_engine *eng) { return eng->nt; }

/* The trainer's point: base + h dir for the passes. The CPU reads the vectors at each pass; CUDA
 * uploads them, so a base the trainer already holds is not sent again (pt_base is reset whenever
 * the vector behind it changes); dir is always sent (the engine changes a between calls). */
static void point(fv_invert_engine *g, const float *base, const float *dir) {
    if (!dir && !g->pt_dir && base == g->pt_base) return;
    fv_trainer_inv_point(g->t, base == g->pt_base ? NULL : base, dir);
    g->pt_base = base, g->pt_dir = dir;
}

/* One training-mode forward + backward on images [start, start + cnt) at trainable parameters
 * theta + h dir (dir may be NULL) and theta_0's batch-norm state, its kinks as `kinks` says:
 * out->gth the parameter gradient when want_th (else the input-only backward), out->gx the input
 * gradient when want_x. */
static void pass_at(fv_invert_engine *g, const float *theta, const float *dir, double h, int start, int cnt,
                    fv_kinks kinks, int want_th, int want_x, fv_inv_pass_out *out) {
    point(g, theta, dir);
    fv_trainer_inv_pass(g->t, h, start, cnt, kinks, want_th, want_x, out);
    g->passes++;
}

/* pass_at, then gth[nt] (may be NULL) gets the parameter gradient and gx[cnt, isz] (may be
 * NULL) the input gradient. Returns the loss. */
static double grad_at(fv_invert_engine *g, const float *theta, const float *dir, double h, int start, int cnt,
                      fv_kinks kinks, float *gth, float *gx) {
    fv_inv_pass_out o;
    pass_at(g, theta, dir, h, start, cnt, kinks, gth != NULL, gx != NULL, &o);
    if (gth) memcpy(gth, o.gth, g->nt * sizeof(float));
    if (gx) memcpy(gx, o.gx, (size_t)cnt * g->isz * sizeof(float));
    return o.loss;
}

static void restore(fv_invert_engine *g) { fv_trainer_inv_restore(g->t); }

/* The images of local step t: start and count. */
static int step_batch(const fv_invert_engine *g, int t, int *cnt) {
    if (g->cfg.kind == FV_INVERT_FEDSGD) {
        *cnt = g->cfg.n;
        return 0;
    }
    int start = (t % g->steps_per_epoch) * g->cfg.batch;
    *cnt = g->cfg.n - start < g->cfg.batch ? g->cfg.n - start : g->cfg.batch;
    return start;
}

double fv_invert_update(fv_invert_engine *g, const float *x, const int *labels, float *update) {
    const int n = g->cfg.n;
    fv_trainer_inv_images(g->t, x, labels);
    g->have_x = 1;
    memcpy(g->traj, g->theta0, g->nt * sizeof(float)); /* the same bits every call */
    if (g->T > 1) g->pt_base = NULL;                   /* theta_1.. change with x */
    double loss0 = 0;
    const int os = g->cfg.one_sided;
    const size_t bstride = (size_t)(g->cfg.kind == FV_INVERT_FEDAVG ? g->cfg.batch : n) * g->isz;
    if (g->cfg.kind == FV_INVERT_FEDSGD) {
        loss0 = grad_at(g, g->traj, NULL, 0, 0, n, FV_KINKS_RECORD, update, os ? g->xbase : NULL);
        if (os) memcpy(g->gbase, update, g->nt * sizeof(float));
        fv_trainer_inv_kinks_save(g->t, 0);
    } else {
        const float lr = g->cfg.lr;
        for (int t = 0; t < g->T; t++) {
            int cnt, start = step_batch(g, t, &cnt);
            double l = grad_at(g, g->traj + (size_t)t * g->nt, NULL, 0, start, cnt, FV_KINKS_RECORD, g->gp,
                               os ? g->xbase + (size_t)t * bstride : NULL);
            if (os) memcpy(g->gbase + (size_t)t * g->nt, g->gp, g->nt * sizeof(float));
            fv_trainer_inv_kinks_save(g->t, t);
            if (t > 0) g->thn[t] = norm2(g->traj + (size_t)t * g->nt, g->nt);
            if (t == 0) loss0 = l;
            const float *cur = g->traj + (size_t)t * g->nt;
            float *next = t + 1 < g->T ? g->traj + (size_t)(t + 1) * g->nt : g->a;
            const float *gp = g->gp;
#pragma omp simd
            for (size_t i = 0; i < g->nt; i++) next[i] = cur[i] - lr * gp[i];
        }
        for (size_t i = 0; i < g->nt; i++) update[i] = g->theta0[i] - g->a[i];
    }
    g->masks_t = g->T - 1;
    restore(g);
    return loss0;
}

void fv_invert_vjp(fv_invert_engine *g, const float *v, float *gx) {
    FV_ASSERT(g->have_x);
    const size_t isz = g->isz;
    memset(gx, 0, (size_t)g->cfg.n * isz * sizeof(float));
    /* a = dF/dtheta_T: v for the gradient itself, -v for theta_0 - theta_T */
    const double sa = g->cfg.kind == FV_INVERT_FEDSGD ? 1.0 : -1.0;
    const double lr = g->cfg.kind == FV_INVERT_FEDSGD ? -1.0 : g->cfg.lr; /* fedSGD: gx = +M v */
    for (size_t i = 0; i < g->nt; i++) g->a[i] = (float)(sa * v[i]);
    for (int t = g->T - 1; t >= 0; t--) {
        const float *th = g->traj + (size_t)t * g->nt;
        double na = norm2(g->a, g->nt);
        if (na == 0) break; /* nothing flows back any more */
        double nth = g->thn[t];
        double h = g->cfg.fd_scale * (nth > 0 ? nth : 1.0) / na;
        int cnt, start = step_batch(g, t, &cnt);
        int need_h = t > 0;
        if (g->masks_t != t) { /* the kinks of step t, as its update pass recorded them */
            fv_trainer_inv_kinks_load(g->t, t, cnt);
            g->masks_t = t;
        }
        /* the minus side is read in place from the last pass's output */
        fv_inv_pass_out o;
        const float *gxm, *gm;
        if (g->cfg.one_sided) { /* the other side is theta_t itself, from the update pass */
            const size_t bstride = (size_t)g->cfg.batch * isz;
            gxm = g->xbase + (size_t)t * (g->cfg.kind == FV_INVERT_FEDAVG ? bstride : 0);
            gm = g->gbase + (size_t)t * g->nt;
            pass_at(g, th, g->a, h, start, cnt, FV_KINKS_REPLAY, need_h, 1, &o);
        } else {
            grad_at(g, th, g->a, h, start, cnt, FV_KINKS_REPLAY, need_h ? g->gp : NULL, g->gxp);
            pass_at(g, th, g->a, -h, start, cnt, FV_KINKS_REPLAY, need_h, 1, &o);
            gxm = o.gx, gm = o.gth;
        }
        /* the plus side: the copy, or in place for one-sided differences */
        const float *gxp = g->cfg.one_sided ? o.gx : g->gxp;
        const float *gp = g->cfg.one_sided ? o.gth : g->gp;
        const double c = -lr / (2 * h) * (g->cfg.one_sided ? 2 : 1);
        float *dst = gx + (size_t)start * isz, *av = g->a;
#pragma omp simd
        for (size_t i = 0; i < (size_t)cnt * isz; i++) dst[i] += (float)(c * ((double)gxp[i] - gxm[i]));
        if (need_h) {
#pragma omp simd
            for (size_t i = 0; i < g->nt; i++) av[i] += (float)(c * ((double)gp[i] - gm[i]));
        }
    }
    restore(g);
}

int fv_labels_from_row_sums(const double *sum, int K, int n, int *labels) {
    FV_ASSERT(K >= 1 && n >= 1);
    int *order = fv_malloc(sizeof(int) * (size_t)K * 2), *cnt = order + K;
    double *rem = fv_malloc(sizeof(double) * (size_t)K);
    for (int k = 0; k < K; k++) order[k] = k, cnt[k] = 0;
    /* order classes by row sum, most negative first (insertion sort: K is small) */
    for (int i = 1; i < K; i++) {
        int v = order[i], j = i;
        while (j > 0 && sum[order[j - 1]] > sum[v]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
    int neg = 0;
    for (int k = 0; k < K; k++) neg += sum[k] < 0;
    int used = neg < n ? (neg > 0 ? neg : 1) : n;
    for (int j = 0; j < used; j++) cnt[j] = 1;
    int rest = n - used;
    if (rest > 0) {
        /* allot the remaining samples to the negative classes in proportion to -sum */
        double tot = 0;
        for (int j = 0; j < used; j++) tot += -sum[order[j]];
        int given = 0;
        for (int j = 0; j < used; j++) {
            double q = tot > 0 ? rest * (-sum[order[j]]) / tot : (double)rest / used;
            int fl = (int)floor(q);
            cnt[j] += fl;
            given += fl;
            rem[j] = q - fl;
        }
        while (given < rest) {
            int b = 0;
            for (int j = 1; j < used; j++)
                if (rem[j] > rem[b]) b = j;
            cnt[b]++;
            rem[b] = -1;
            given++;
        }
    }
    int w = 0;
    for (int j = 0; j < used; j++)
        for (int r = 0; r < cnt[j]; r++) labels[w++] = order[j];
    FV_ASSERT(w == n);
    for (int i = 1; i < n; i++) { /* ascending class order */
        int v = labels[i], j = i;
        while (j > 0 && labels[j - 1] > v) {
            labels[j] = labels[j - 1];
            j--;
        }
        labels[j] = v;
    }
    free(order);
    free(rem);
    return neg;
}

int fv_invert_labels(const fv_net *net, const float *update, int n, int *labels, fv_err *e) {
    const fv_node *last = &net->nodes[net->n_nodes - 1];
    if (last->op != FV_OP_LINEAR)
        return fv_err_set(e, "invert: labels cannot be inferred: the model's output node is %s, not a linear layer",
                          fv_net_op_name(net, net->n_nodes - 1));
    const int K = last->oshape.c;
    const size_t in = fv_shape_size(last->ishape);
    double *sum = fv_malloc(sizeof(double) * (size_t)K);
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (size_t f = 0; f < in; f++) s += update[last->w_off + (size_t)k * in + f];
        sum[k] = s;
    }
    int neg = fv_labels_from_row_sums(sum, K, n, labels);
    free(sum);
    if (neg == 0)
        return fv_err_set(e, "invert: labels cannot be inferred: no class has a negative last-layer row sum "
                             "(give the labels instead)");
    return 0;
}

fv_invert_cfg fv_invert_defaults(void) {
    fv_invert_cfg c = {2000, 1, 0.1, 1e-4, {0}, {0}, 1, 0, FV_INVERT_COSINE, FV_INVERT_ADAM_SIGNED, 0, 0.0, 0, 0.0};
    for (int i = 0; i < 4; i++) c.lo[i] = -INFINITY, c.hi[i] = INFINITY;
    return c;
}

fv_invert_cfg fv_invert_dlg_defaults(void) {
    fv_invert_cfg c = fv_invert_defaults();
    c.iters = 300;
    c.tv = 0;
    c.objective = FV_INVERT_L2;
    c.opt = FV_INVERT_LBFGS;
    c.target = FV_INVERT_DLG_TARGET;
    c.uniform_start = 1;
    return c;
}

/* TV(x) as the mean absolute difference of vertical neighbours plus that of horizontal ones
 * (over all images and channels); if gx is not NULL, adds w * dTV/dx to it. */
static double tv_loss(const float *x, int n, int c, int h, int w, double wt, float *gx) {
    const size_t cv = (size_t)n * c * (h - 1) * w, ch = (size_t)n * c * h * (w - 1);
    double sv = 0, sh = 0;
    const double kv = cv ? wt / cv : 0, kh = ch ? wt / ch : 0;
    for (size_t p = 0; p < (size_t)n * c; p++) {
        const float *s = x + p * h * w;
        float *d = gx ? gx + p * h * w : NULL;
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                size_t o = (size_t)i * w + j;
                if (i + 1 < h) {
                    float df = s[o + w] - s[o];
                    sv += fabsf(df);
                    if (d && df != 0) {
                        float sg = (float)(df > 0 ? kv : -kv);
                        d[o + w] += sg, d[o] -= sg;
                    }
                }
                if (j + 1 < w) {
                    float df = s[o + 1] - s[o];
                    sh += fabsf(df);
                    if (d && df != 0) {
                        float sg = (float)(df > 0 ? kh : -kh);
                        d[o + 1] += sg, d[o] -= sg;
                    }
                }
            }
    }
    return (cv ? sv / cv : 0) + (ch ? sh / ch : 0);
}

/* ---- the batch-norm statistics prior ---- */

/* The prior's value at the engine's x (all n candidates, train mode, theta_0); with gx != NULL
 * adds its gradient to gx:
 *     d/dh W (||mu - rm||^2 + ||var - rv||^2) = W (2 (mu - rm) + 4 (var - rv) (h - mu)) / M
 * at each batch-norm layer's input h (M = n H W values per channel), by one input-only backward
 * (trainer.h, fv_trainer_inv_bn_backward). One forward (and one backward with gx); with
 * forward == 0 no forward: the caller guarantees that the trainer's last pass was that very one
 * (a fedSGD update pass at x just ran; its backward leaves the forward's activations as they
 * were), so the value and the gradient are the same bits as with the forward. */
static double bn_prior(fv_invert_engine *g, double w, float *gx, int forward) {
    const fv_net *net = g->net;
    const int n = g->cfg.n;
    if (forward) {
        fv_inv_pass_out o;
        pass_at(g, g->theta0, NULL, 0, 0, n, FV_KINKS_FREE, 0, 0, &o);
    }
    size_t nch = 0;
    fv_trainer_inv_bn_layers(g->t, &nch);
    double *stats = fv_malloc(sizeof(double) * 5 * nch), *coef = stats + 2 * nch, *st = stats, *cf = coef;
    fv_trainer_inv_bn_stats(g->t, stats);
    double r = 0;
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_BATCHNORM) continue;
        const int C = nd->ishape.c, HW = nd->ishape.h * nd->ishape.w;
        const float *rm = g->theta0 + nd->rm_off, *rv = g->theta0 + nd->rv_off;
        const double M = (double)n * HW;
        for (int c = 0; c < C; c++, st += 2, cf += 3) {
            r += (st[0] - rm[c]) * (st[0] - rm[c]) + (st[1] - rv[c]) * (st[1] - rv[c]);
            cf[0] = w * 2 * (st[0] - rm[c]) / M, cf[1] = w * 4 * (st[1] - rv[c]) / M, cf[2] = st[0];
        }
    }
    if (gx) {
        const float *pg = fv_trainer_inv_bn_backward(g->t, coef);
        for (size_t i = 0; i < (size_t)n * g->isz; i++) gx[i] += pg[i];
    }
    free(stats);
    g->masks_t = -1; /* a forward here does not record the update's kinks */
    restore(g);
    return w * r;
}

/* One attack's objective: the matching term of cfg at x plus tv TV(x), and its gradient. */
typedef struct {
    fv_invert_engine *g;
    const fv_invert_cfg *cfg;
    const float *target;
    const int *labels;
    double tnorm;   /* ||T|| */
    float *U, *v;   /* [nt] scratch: the update at x, dLoss/dU */
    float *xf, *gf; /* [n * isz] scratch for the double optimisers */
    float *pgx;     /* [n * isz] the batch-norm prior's gradient (fedSGD with bn_prior), or NULL */
    double cosv, matchv; /* at the last evaluation */
    int box;        /* the double optimisers work on u in [0, 1]: x = lo + u (hi - lo) */
    int evals;
} objective;

/* The loss at x; with gx != NULL also SETS gx to its gradient. */
static double obj_eval(objective *o, const float *x, float *gx) {
    fv_invert_engine *g = o->g;
    const float *T = o->target;
    float *U = o->U, *v = o->v;
    o->evals++;
    fv_invert_update(g, x, o->labels, U);
    /* fedSGD: the update pass was the prior's own forward (theta_0, train mode, all n candidates
     * at x), so the prior runs now, on it, and saves a forward per evaluation; its gradient
     * waits in pgx and is added last, in the order of a separate pass, so the sum is the same */
    const int bn_now = o->cfg->bn_prior > 0 && g->cfg.kind == FV_INVERT_FEDSGD;
    float *pgx = bn_now && gx ? o->pgx : NULL;
    if (pgx) memset(pgx, 0, (size_t)g->cfg.n * g->isz * sizeof(float));
    double bn = bn_now ? bn_prior(g, o->cfg->bn_prior, pgx, 0) : 0;
    const double dot = dot_d(U, T, g->nt), uu = dot_d(U, U, g->nt);
    double d2 = 0; /* ||U - T||^2: the L2 objective only */
    if (o->cfg->objective == FV_INVERT_L2) {
        double s[DOT_LANES] = {0};
        size_t i = 0;
        for (; i + DOT_LANES <= g->nt; i += DOT_LANES) {
#pragma omp simd
            for (int k = 0; k < DOT_LANES; k++) {
                const double r = (double)U[i + k] - T[i + k];
                s[k] += r * r;
            }
        }
        for (int k = 0; i < g->nt; i++, k++) s[k] += ((double)U[i] - T[i]) * ((double)U[i] - T[i]);
        for (int k = 0; k < DOT_LANES; k++) d2 += s[k];
    }
    double un = sqrt(uu), den = un * o->tnorm + 1e-12;
    o->cosv = dot / den;
    o->matchv = o->cfg->objective == FV_INVERT_L2 ? d2 : 1.0 - o->cosv;
    if (gx) {
        if (o->cfg->objective == FV_INVERT_L2) { /* d ||U - T||^2 / dU = 2 (U - T) */
#pragma omp simd
            for (size_t i = 0; i < g->nt; i++) v[i] = (float)(2.0 * ((double)U[i] - T[i]));
        } else { /* d(1 - dot / (|U||T|)) / dU = -T / (|U||T|) + dot U / (|U|^3 |T|) */
            double a = -1.0 / den, b = un > 0 ? dot / (uu * un * o->tnorm) : 0;
#pragma omp simd
            for (size_t i = 0; i < g->nt; i++) v[i] = (float)(a * T[i] + b * U[i]);
        }
        fv_invert_vjp(g, v, gx);
    }
    const fv_shape s = g->net->input;
    double tv = o->cfg->tv > 0 ? o->cfg->tv * tv_loss(x, g->cfg.n, s.c, s.h, s.w, o->cfg->tv, gx) : 0;
    if (pgx)
        for (size_t i = 0; i < (size_t)g->cfg.n * g->isz; i++) gx[i] += pgx[i];
    else if (o->cfg->bn_prior > 0 && !bn_now)
        bn = bn_prior(g, o->cfg->bn_prior, gx, 1);
    return o->matchv + tv + bn;
}

double fv_invert_match(fv_invert_engine *g, const float *x, const float *target, const int *labels,
                       const fv_invert_cfg *cfg, float *gx) {
    const size_t nx = (size_t)g->cfg.n * g->isz;
    float *buf = fv_malloc(sizeof(float) * (2 * g->nt + nx));
    objective o = {g, cfg, target, labels, norm2(target, g->nt), buf, buf + g->nt, NULL, NULL, buf + 2 * g->nt,
                   0, 0, 0, 0};
    double l = obj_eval(&o, x, gx);
    free(buf);
    return l;
}

/* The channel of element i of an NCHW batch. */
static int chan_of(const fv_invert_engine *g, size_t i) {
    const fv_shape s = g->net->input;
    int c = (int)((i / ((size_t)s.h * s.w)) % (size_t)s.c);
    return c < 4 ? c : 3;
}

/* The lbfgs.h objective: u (box coordinates, or x itself) to x, and the gradient back. */
static double obj_fn(void *ctx, const double *u, double *gu, int n) {
    objective *o = ctx;
    const fv_invert_cfg *c = o->cfg;
    for (int i = 0; i < n; i++) {
        int ch = chan_of(o->g, (size_t)i);
        o->xf[i] = o->box ? (float)(c->lo[ch] + u[i] * ((double)c->hi[ch] - c->lo[ch])) : (float)u[i];
    }
    double l = obj_eval(o, o->xf, o->gf);
    for (int i = 0; i < n; i++) {
        int ch = chan_of(o->g, (size_t)i);
        gu[i] = o->box ? (double)o->gf[i] * ((double)c->hi[ch] - c->lo[ch]) : o->gf[i];
    }
    return l;
}

typedef struct {
    const objective *o;
    int restart;
} progress_ctx;

static int progress(void *ctx, int iter, int evals, double f) {
    const progress_ctx *p = ctx;
    if (p->o->cfg->verbose && iter % 50 == 0)
        fprintf(stderr, "invert: restart %d iteration %d evaluations %d loss %.6g cos %.6f\n", p->restart, iter, evals,
                f, p->o->cosv);
    return 0;
}

/* One restart from x (filled with its start) by the double optimisers of lbfgs.h; x ends at the
 * best point found. */
static fv_lbfgs_result run_double(objective *o, float *x, size_t nx, double target_abs, int restart) {
    const fv_invert_cfg *c = o->cfg;
    double *u = fv_malloc(sizeof(double) * nx);
    for (size_t i = 0; i < nx; i++) {
        int ch = chan_of(o->g, i);
        u[i] = o->box ? ((double)x[i] - c->lo[ch]) / ((double)c->hi[ch] - c->lo[ch]) : x[i];
    }
    progress_ctx pc = {o, restart};
    fv_lbfgs_result r;
    if (c->opt == FV_INVERT_LBFGS) {
        fv_lbfgs_cfg lc = fv_lbfgs_defaults();
        lc.max_iter = c->iters;
        lc.max_evals = c->max_evals > 0 ? c->max_evals : 20 * c->iters;
        lc.bounded = o->box;
        lc.lo = 0, lc.hi = 1;
        lc.f_target = target_abs;
        lc.progress = progress, lc.progress_ctx = &pc;
        r = fv_lbfgs_minimize(u, (int)nx, obj_fn, o, &lc);
    } else {
        fv_adam_cfg ac = fv_adam_defaults();
        ac.iters = c->iters;
        ac.lr = c->lr;
        ac.bounded = o->box;
        ac.lo = 0, ac.hi = 1;
        ac.f_target = target_abs;
        ac.progress = progress, ac.progress_ctx = &pc;
        r = fv_adam_minimize(u, (int)nx, obj_fn, o, &ac);
    }
    for (size_t i = 0; i < nx; i++) {
        int ch = chan_of(o->g, i);
        x[i] = o->box ? (float)(c->lo[ch] + u[i] * ((double)c->hi[ch] - c->lo[ch])) : (float)u[i];
    }
    free(u);
    return r;
}

/* One restart of Adam on the signed gradient (Inverting Gradients) from x. */
static fv_lbfgs_result run_signed(objective *o, float *x, float *m1, float *m2, float *gx, size_t nx, int r,
                                  double target_abs) {
    const fv_invert_cfg *cfg = o->cfg;
    const int m1s = cfg->iters * 3 / 8, m2s = cfg->iters * 5 / 8, m3s = cfg->iters * 7 / 8;
    memset(m1, 0, nx * sizeof(float));
    memset(m2, 0, nx * sizeof(float));
    double b1t = 1, b2t = 1;
    const size_t plane = (size_t)o->g->net->input.h * o->g->net->input.w;
    fv_lbfgs_result res = {FV_LBFGS_MAX_ITER, cfg->iters, 0, 0, 0};
    for (int it = 0; it < cfg->iters; it++) {
        double l = obj_eval(o, x, gx);
        if (cfg->target > 0 && o->matchv <= target_abs) {
            res.status = FV_LBFGS_TARGET, res.iters = it;
            break;
        }
        double lr = cfg->lr * (it >= m1s ? 0.1 : 1) * (it >= m2s ? 0.1 : 1) * (it >= m3s ? 0.1 : 1);
        b1t *= 0.9, b2t *= 0.999;
        const double step = lr / (1 - b1t), bc2 = sqrt(1 - b2t);
        for (size_t p0 = 0; p0 < nx; p0 += plane) { /* one channel plane at a time */
            const int c = chan_of(o->g, p0);
            const float lo = cfg->lo[c], hi = cfg->hi[c];
#pragma omp simd
            for (size_t i = p0; i < p0 + plane; i++) {
                float sg = (float)((gx[i] > 0) - (gx[i] < 0));
                m1[i] = 0.9f * m1[i] + 0.1f * sg;
                m2[i] = 0.999f * m2[i] + 0.001f * sg * sg;
                double xi = x[i] - step * m1[i] / (sqrt(m2[i]) / bc2 + 1e-8);
                x[i] = (float)(xi < lo ? lo : xi > hi ? hi : xi);
            }
        }
        if (cfg->verbose && (it % (cfg->iters / 10 > 0 ? cfg->iters / 10 : 1) == 0))
            fprintf(stderr, "invert: restart %d iteration %d loss %.6f cos %.6f\n", r, it, l, o->cosv);
    }
    return res;
}

/* The checks of fv_invert_attack, before any pass: 0, or -1 with e set. *box: the box is finite. */
static int attack_check(const fv_invert_engine *g, const float *target, const int *labels, const fv_invert_cfg *cfg,
                        int *box, double *tnorm, fv_err *e) {
    if (cfg->iters < 1) return fv_err_set(e, "invert: iterations %d (need at least 1)", cfg->iters);
    if (cfg->restarts < 1) return fv_err_set(e, "invert: restarts %d (need at least 1)", cfg->restarts);
    if (!(cfg->lr > 0) || !(cfg->tv >= 0)) return fv_err_set(e, "invert: lr %g or tv %g out of range", cfg->lr, cfg->tv);
    if (cfg->objective != FV_INVERT_COSINE && cfg->objective != FV_INVERT_L2)
        return fv_err_set(e, "invert: unknown objective %d", (int)cfg->objective);
    if (cfg->opt != FV_INVERT_ADAM_SIGNED && cfg->opt != FV_INVERT_ADAM && cfg->opt != FV_INVERT_LBFGS)
        return fv_err_set(e, "invert: unknown optimizer %d", (int)cfg->opt);
    if (cfg->max_evals < 0) return fv_err_set(e, "invert: max_evals %d is negative", cfg->max_evals);
    if (!(cfg->target >= 0 && cfg->target < 1)) return fv_err_set(e, "invert: target %g is not in [0, 1)", cfg->target);
    if (!(cfg->bn_prior >= 0) || !isfinite(cfg->bn_prior))
        return fv_err_set(e, "invert: bn_prior %g is not a non-negative weight", cfg->bn_prior);
    if (cfg->bn_prior > 0 && fv_trainer_inv_bn_layers(g->t, NULL) == 0)
        return fv_err_set(e, "invert: bn_prior %g needs a model with batch norm", cfg->bn_prior);
    const fv_shape s = g->net->input;
    *box = 1;
    for (int c = 0; c < s.c && c < 4; c++) {
        if (!(cfg->lo[c] < cfg->hi[c]) && isfinite(cfg->lo[c]) && isfinite(cfg->hi[c]))
            return fv_err_set(e, "invert: the box of channel %d is empty ([%g, %g])", c, cfg->lo[c], cfg->hi[c]);
        *box &= isfinite(cfg->lo[c]) && isfinite(cfg->hi[c]);
    }
    if (cfg->uniform_start && !*box) return fv_err_set(e, "invert: uniform starts need a finite box");
    for (int i = 0; i < g->cfg.n; i++)
        if (labels[i] < 0 || labels[i] >= g->classes)
            return fv_err_set(e, "invert: label %d of image %d is not in [0, %d)", labels[i], i, g->classes);
    *tnorm = norm2(target, g->nt);
    if (!(*tnorm > 0) || !isfinite(*tnorm)) return fv_err_set(e, "invert: the target update is zero or not finite");
    return 0;
}

/* What one restart leaves. */
typedef struct {
    double loss, cos, match, match0;
    int iters, evals;
    fv_lbfgs_status status;
} restart_out;

/* The target as an absolute matching term (-inf: none). */
static double target_abs_of(const fv_invert_cfg *cfg, double tnorm) {
    return !(cfg->target > 0)                ? -HUGE_VAL
           : cfg->objective == FV_INVERT_L2 ? cfg->target * tnorm * tnorm
                                            : cfg->target;
}

/* Scratch floats of one restart (one_restart's buf). */
static size_t restart_floats(const fv_invert_engine *g) { return 5 * (size_t)g->cfg.n * g->isz + 2 * g->nt; }

/* Restart r of the attack on engine g from its own noise start (seed, r): x[n, input] receives its
 * end point, *ro its figures. buf: restart_floats(g) floats of scratch. */
static void one_restart(fv_invert_engine *g, const fv_invert_cfg *cfg, const float *target, const int *labels,
                        double tnorm, int box, int r, float *x, float *buf, restart_out *ro) {
    const size_t nx = (size_t)g->cfg.n * g->isz;
    float *m1 = buf, *m2 = m1 + nx, *gx = m2 + nx, *xf = gx + nx, *pgx = xf + nx, *U = pgx + nx, *v = U + g->nt;
    objective o = {g, cfg, target, labels, tnorm, U, v, xf, gx, pgx, 0, 0, box, 0};
    const double target_abs = target_abs_of(cfg, tnorm);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, (uint64_t)r);
    for (size_t i = 0; i < nx; i++) {
        int c = chan_of(g, i);
        x[i] = cfg->uniform_start ? (float)(cfg->lo[c] + fv_rng_uniform_d(&rng) * ((double)cfg->hi[c] - cfg->lo[c]))
                                  : (float)fv_rng_normal(&rng);
    }
    obj_eval(&o, x, NULL);
    const double m0 = o.matchv;
    fv_lbfgs_result lr = cfg->opt == FV_INVERT_ADAM_SIGNED ? run_signed(&o, x, m1, m2, gx, nx, r, target_abs)
                                                          : run_double(&o, x, nx, target_abs, r);
    double l = obj_eval(&o, x, NULL);
    if (cfg->verbose)
        fprintf(stderr, "invert: restart %d stopped (%s) after %d iterations, %d evaluations: loss %.6g cos %.6f\n", r,
                fv_lbfgs_status_name(lr.status), lr.iters, o.evals, l, o.cosv);
    *ro = (restart_out){l, o.cosv, o.matchv, m0, lr.iters, o.evals, lr.status};
}

/* Take restart r's figures into res when it wins (the lowest loss; restart 0 always first). */
static int take_restart(fv_invert_result *res, const restart_out *ro, int r, const fv_invert_cfg *cfg, double tnorm) {
    if (!(ro->loss < res->loss) && r != 0) return 0;
    res->loss = ro->loss, res->cos = ro->cos, res->match = ro->match, res->match0 = ro->match0, res->restart = r;
    res->rel_match = cfg->objective == FV_INVERT_L2 ? ro->match / (tnorm * tnorm) : ro->match;
    res->iters = ro->iters, res->evals = ro->evals, res->status = fv_lbfgs_status_name(ro->status);
    return 1;
}

int fv_invert_attack(fv_invert_engine *g, const float *target, const int *labels, const fv_invert_cfg *cfg,
                     float *x_out, fv_invert_result *res, fv_err *e) {
    return fv_invert_attack_multi(&g, 1, target, labels, cfg, x_out, res, e);
}

/* One engine's share of fv_invert_attack_multi: restarts k, k + m, ... */
typedef struct {
    fv_invert_engine *g;
    const fv_invert_cfg *cfg;
    const float *target;
    const int *labels;
    double tnorm;
    int box, k, m;
    int threads;     /* the caller's OpenMP threads (a new thread starts with the default) */
    float *xs;       /* [restarts * nx] every restart's end point */
    restart_out *ro; /* [restarts] */
} share;

static int run_share(void *arg) {
    share *s = arg;
    fv_set_threads(s->threads); /* the same kernels' split as on the caller's thread: the same bits */
    float *buf = fv_malloc(sizeof(float) * restart_floats(s->g));
    const size_t nx = (size_t)s->g->cfg.n * s->g->isz;
    for (int r = s->k; r < s->cfg->restarts; r += s->m)
        one_restart(s->g, s->cfg, s->target, s->labels, s->tnorm, s->box, r, s->xs + (size_t)r * nx, buf, &s->ro[r]);
    free(buf);
    return 0;
}

int fv_invert_attack_multi(fv_invert_engine **engs, int m, const float *target, const int *labels,
                           const fv_invert_cfg *cfg, float *x_out, fv_invert_result *res, fv_err *e) {
    FV_ASSERT(engs && m >= 1);
    fv_invert_engine *g = engs[0];
    for (int k = 1; k < m; k++)
        FV_ASSERT(engs[k]->cfg.n == g->cfg.n && engs[k]->nt == g->nt && engs[k]->isz == g->isz &&
                  engs[k]->net != g->net);
    int box = 1;
    double tnorm = 0;
    if (attack_check(g, target, labels, cfg, &box, &tnorm, e)) return -1;
    const size_t nx = (size_t)g->cfg.n * g->isz;
    const double target_abs = target_abs_of(cfg, tnorm);
    double t0 = fv_now();
    long p0 = 0;
    const int m_all = m;
    for (int k = 0; k < m_all; k++) p0 += engs[k]->passes;
    memset(res, 0, sizeof *res);
    res->loss = INFINITY;
    if (m == 1) { /* in order, stopping once a restart meets the target */
        float *buf = fv_malloc(sizeof(float) * (restart_floats(g) + nx));
        float *x = buf + restart_floats(g);
        for (int r = 0; r < cfg->restarts; r++) {
            restart_out ro;
            one_restart(g, cfg, target, labels, tnorm, box, r, x, buf, &ro);
            if (take_restart(res, &ro, r, cfg, tnorm)) memcpy(x_out, x, nx * sizeof(float));
            if (cfg->target > 0 && res->match <= target_abs) break;
        }
        free(buf);
    } else { /* every restart, engine k taking k, k + m, ...; then the same choice as in order */
        if (m > cfg->restarts) m = cfg->restarts;
        float *xs = fv_malloc(sizeof(float) * nx * (size_t)cfg->restarts);
        restart_out *ro = fv_malloc(sizeof(restart_out) * (size_t)cfg->restarts);
        share *sh = fv_malloc(sizeof(share) * (size_t)m);
        fv_pool *pool = fv_pool_new(m);
        for (int k = 0; k < m; k++) {
            sh[k] = (share){engs[k], cfg, target, labels, tnorm, box, k, m, omp_get_max_threads(), xs, ro};
            fv_pool_submit(pool, k, run_share, &sh[k]);
        }
        for (int k = 0; k < m; k++) fv_pool_wait(pool, k);
        int rc;
        while (fv_pool_reap(pool, &rc) >= 0) {}
        fv_pool_destroy(&pool);
        for (int r = 0; r < cfg->restarts; r++) {
            if (take_restart(res, &ro[r], r, cfg, tnorm)) memcpy(x_out, xs + (size_t)r * nx, nx * sizeof(float));
            if (cfg->target > 0 && res->match <= target_abs) break;
        }
        free(sh);
        free(ro);
        free(xs);
    }
    res->seconds = fv_now() - t0;
    long p1 = 0;
    for (int k = 0; k < m_all; k++) p1 += engs[k]->passes;
    res->passes = p1 - p0;
    return 0;
}

int fv_invert_dense_features(const fv_net *net, const float *update, float *feat) {
    const fv_node *last = &net->nodes[net->n_nodes - 1];
    if (last->op != FV_OP_LINEAR || !last->bias) return -1;
    const int K = last->oshape.c;
    const size_t in = fv_shape_size(last->ishape);
    const float *dW = update + last->w_off, *db = update + last->b_off;
    int best = -1;
    for (int k = 0; k < K; k++)
        if (db[k] != 0 && (best < 0 || fabsf(db[k]) > fabsf(db[best]))) best = k;
    if (best < 0) return -1;
    for (size_t f = 0; f < in; f++) feat[f] = (float)((double)dW[(size_t)best * in + f] / db[best]);
    return 0;
}

static void assign_rec(int *cur, int *used, int k, int n, const double *score, double acc, double *best, int *perm) {
    if (k == n) {
        if (acc > *best) {
            *best = acc;
            memcpy(perm, cur, sizeof(int) * n);
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        if (used[j]) continue;
        used[j] = 1;
        cur[k] = j;
        assign_rec(cur, used, k + 1, n, score, acc + score[k * n + j], best, perm);
        used[j] = 0;
    }
}

void fv_invert_assign(int *perm, const double *score, int n) {
    FV_ASSERT(n >= 1);
    int *cur = fv_malloc(sizeof(int) * (size_t)n * 3), *used = cur + n, *rused = used + n;
    for (int i = 0; i < n; i++) perm[i] = i, used[i] = 0, rused[i] = 0;
    if (n <= 8) {
        double best = -HUGE_VAL;
        assign_rec(cur, used, 0, n, score, 0.0, &best, perm);
    } else {
        for (int k = 0; k < n; k++) { /* greedy: the best remaining pair first */
            int bi = -1, bj = -1;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n && !rused[i]; j++)
                    if (!used[j] && (bi < 0 || score[i * n + j] > score[bi * n + bj])) bi = i, bj = j;
            perm[bi] = bj, rused[bi] = 1, used[bj] = 1;
        }
    }
    free(cur);
}
