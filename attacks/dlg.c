/* dlg.c: see dlg.h. Convolutions run as im2col + dgemm (OpenBLAS), one sample at a time. */
#include "dlg.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "invert.h"
#include "lbfgs.h"
#include "rng.h"

#define KS 5  /* kernel size */
#define PAD 2

static int conv_out(int in, int stride) { return (in + 2 * PAD - KS) / stride + 1; }

int fv_dlg_model_init(fv_dlg_model *m, int c, int h, int w, int classes, fv_err *e) {
    memset(m, 0, sizeof *m);
    if (c < 1 || c > 4) return fv_err_set(e, "dlg model: %d input channels (expected 1 to 4)", c);
    if (h < 4 || w < 4 || h > 1024 || w > 1024)
        return fv_err_set(e, "dlg model: input %dx%d out of range (sides 4 to 1024)", h, w);
    if (classes < 2 || classes > 1000) return fv_err_set(e, "dlg model: %d classes (expected 2 to 1000)", classes);
    m->c = c;
    m->h = h;
    m->w = w;
    m->classes = classes;
    m->h1 = conv_out(h, 2);
    m->w1 = conv_out(w, 2);
    m->h2 = conv_out(m->h1, 2);
    m->w2 = conv_out(m->w1, 2);
    m->h3 = conv_out(m->h2, 1);
    m->w3 = conv_out(m->w2, 1);
    m->feat = FV_DLG_CH * m->h3 * m->w3;
    size_t o = 0;
    m->c1w = o, o += (size_t)FV_DLG_CH * c * KS * KS;
    m->c1b = o, o += FV_DLG_CH;
    m->c2w = o, o += (size_t)FV_DLG_CH * FV_DLG_CH * KS * KS;
    m->c2b = o, o += FV_DLG_CH;
    m->c3w = o, o += (size_t)FV_DLG_CH * FV_DLG_CH * KS * KS;
    m->c3b = o, o += FV_DLG_CH;
    m->fw = o, o += (size_t)classes * m->feat;
    m->fb = o, o += (size_t)classes;
    m->n_params = o;
    for (int i = 0; i < 4; i++) m->std[i] = 1.0;
    return 0;
}

void fv_dlg_init_params(const fv_dlg_model *m, double *theta, uint64_t seed) {
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < m->n_params; i++) theta[i] = fv_rng_uniform_d(&r) - 0.5;
}

struct fv_dlg_ws {
    fv_dlg_model m;
    int cap;
    double *xn;          /* [cap, c, h, w] normalised input */
    double *a1, *a2, *a3; /* [cap, 12, hk, wk] sigmoid outputs */
    double *d1, *d2, *d3; /* gradients w.r.t. the same, then w.r.t. the pre-activations */
    double *dxn;         /* [cap, c, h, w] */
    double *logits, *dlogits; /* [cap, classes] */
    double *cols, *dcols; /* im2col scratch, the largest of the three convs */
    double *block;       /* the one allocation everything above lives in */
};

fv_dlg_ws *fv_dlg_ws_new(const fv_dlg_model *m, int max_batch) {
    FV_ASSERT(max_batch >= 1 && m->n_params > 0);
    fv_dlg_ws *ws = fv_calloc(1, sizeof *ws);
    ws->m = *m;
    ws->cap = max_batch;
    size_t in = (size_t)m->c * m->h * m->w, s1 = (size_t)FV_DLG_CH * m->h1 * m->w1,
           s2 = (size_t)FV_DLG_CH * m->h2 * m->w2, s3 = (size_t)FV_DLG_CH * m->h3 * m->w3;
    size_t c1 = (size_t)m->c * KS * KS * m->h1 * m->w1, c2 = (size_t)FV_DLG_CH * KS * KS * m->h2 * m->w2,
           c3 = (size_t)FV_DLG_CH * KS * KS * m->h3 * m->w3;
    size_t cmax = c1 > c2 ? c1 : c2;
    if (c3 > cmax) cmax = c3;
    size_t n = (size_t)max_batch;
    size_t total = n * (2 * in + 2 * (s1 + s2 + s3) + 2 * (size_t)m->classes) + 2 * cmax;
    double *p = ws->block = fv_calloc(total, sizeof(double));
    ws->xn = p, p += n * in;
    ws->dxn = p, p += n * in;
    ws->a1 = p, p += n * s1;
    ws->a2 = p, p += n * s2;
    ws->a3 = p, p += n * s3;
    ws->d1 = p, p += n * s1;
    ws->d2 = p, p += n * s2;
    ws->d3 = p, p += n * s3;
    ws->logits = p, p += n * m->classes;
    ws->dlogits = p, p += n * m->classes;
    ws->cols = p, p += cmax;
    ws->dcols = p, p += cmax;
    FV_ASSERT((size_t)(p - ws->block) == total);
    return ws;
}

void fv_dlg_ws_destroy(fv_dlg_ws **pws) {
    if (!pws || !*pws) return;
    free((*pws)->block);
    free(*pws);
    *pws = NULL;
}

/* cols[C*KS*KS, OH*OW] from inp[C, H, W] for stride s, pad PAD. */
static void im2col(double *cols, const double *inp, int C, int H, int W, int OH, int OW, int s) {
    int P = OH * OW;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < KS; ky++)
            for (int kx = 0; kx < KS; kx++) {
                double *row = cols + (size_t)((c * KS + ky) * KS + kx) * P;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * s - PAD + ky;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * s - PAD + kx;
                        row[oy * OW + ox] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? inp[((size_t)c * H + iy) * W + ix] : 0.0;
                    }
                }
            }
}

/* dinp[C, H, W] += col2im(dcols[C*KS*KS, OH*OW]). */
static void col2im(double *dinp, const double *dcols, int C, int H, int W, int OH, int OW, int s) {
    int P = OH * OW;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < KS; ky++)
            for (int kx = 0; kx < KS; kx++) {
                const double *row = dcols + (size_t)((c * KS + ky) * KS + kx) * P;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * s - PAD + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * s - PAD + kx;
                        if (ix >= 0 && ix < W) dinp[((size_t)c * H + iy) * W + ix] += row[oy * OW + ox];
                    }
                }
            }
}

/* out[K, OH*OW] = sigmoid(w[K, C*KS*KS] * im2col(inp) + b[K]) for one sample. */
static void conv_sigmoid_fwd(double *out, const double *inp, const double *w, const double *b, double *cols,
                             int C, int H, int W, int K, int OH, int OW, int s) {
    int P = OH * OW, CRR = C * KS * KS;
    im2col(cols, inp, C, H, W, OH, OW, s);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, P, CRR, 1.0, w, CRR, cols, P, 0.0, out, P);
    for (int k = 0; k < K; k++)
        for (int p = 0; p < P; p++) out[(size_t)k * P + p] = 1.0 / (1.0 + exp(-(out[(size_t)k * P + p] + b[k])));
}

/* One sample's conv backward from dpre[K, OH*OW] (gradient w.r.t. the pre-activation):
 * dw[K, CRR] += ..., db[K] += ... (both skipped if dw is NULL), dinp[C, H, W] += ... (if not NULL). */
static void conv_bwd(double *dinp, double *dw, double *db, const double *dpre, const double *inp, const double *w,
                     double *cols, double *dcols, int C, int H, int W, int K, int OH, int OW, int s) {
    int P = OH * OW, CRR = C * KS * KS;
    if (dw) {
        im2col(cols, inp, C, H, W, OH, OW, s);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, CRR, P, 1.0, dpre, P, cols, P, 1.0, dw, CRR);
        for (int k = 0; k < K; k++) {
            double acc = 0;
            for (int p = 0; p < P; p++) acc += dpre[(size_t)k * P + p];
            db[k] += acc;
        }
    }
    if (dinp) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRR, P, K, 1.0, w, CRR, dpre, P, 0.0, dcols, P);
        col2im(dinp, dcols, C, H, W, OH, OW, s);
    }
}

/* Turn d[n*size] (gradient w.r.t. a sigmoid's output a) into the gradient w.r.t. its input. */
static void sigmoid_bwd(double *d, const double *a, size_t size) {
    for (size_t i = 0; i < size; i++) d[i] *= a[i] * (1.0 - a[i]);
}

static void forward(fv_dlg_ws *ws, const double *theta, const double *x, int n) {
    const fv_dlg_model *m = &ws->m;
    size_t in = (size_t)m->c * m->h * m->w, hw = (size_t)m->h * m->w;
    size_t s1 = (size_t)FV_DLG_CH * m->h1 * m->w1, s2 = (size_t)FV_DLG_CH * m->h2 * m->w2,
           s3 = (size_t)FV_DLG_CH * m->h3 * m->w3;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < m->c; c++)
            for (size_t p = 0; p < hw; p++) {
                size_t k = i * in + c * hw + p;
                ws->xn[k] = (x[k] - m->mean[c]) / m->std[c];
            }
    for (int i = 0; i < n; i++) {
        conv_sigmoid_fwd(ws->a1 + i * s1, ws->xn + i * in, theta + m->c1w, theta + m->c1b, ws->cols, m->c, m->h, m->w,
                         FV_DLG_CH, m->h1, m->w1, 2);
        conv_sigmoid_fwd(ws->a2 + i * s2, ws->a1 + i * s1, theta + m->c2w, theta + m->c2b, ws->cols, FV_DLG_CH, m->h1,
                         m->w1, FV_DLG_CH, m->h2, m->w2, 2);
        conv_sigmoid_fwd(ws->a3 + i * s3, ws->a2 + i * s2, theta + m->c3w, theta + m->c3b, ws->cols, FV_DLG_CH, m->h2,
                         m->w2, FV_DLG_CH, m->h3, m->w3, 1);
    }
    /* logits[n, K] = a3[n, F] fw[K, F]^T + fb */
    int K = m->classes, F = m->feat;
    for (int i = 0; i < n; i++) memcpy(ws->logits + (size_t)i * K, theta + m->fb, sizeof(double) * K);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, K, F, 1.0, ws->a3, F, theta + m->fw, F, 1.0, ws->logits, K);
}

void fv_dlg_features(fv_dlg_ws *ws, const double *theta, const double *x, int n, double *feat) {
    FV_ASSERT(n >= 1 && n <= ws->cap);
    forward(ws, theta, x, n);
    memcpy(feat, ws->a3, sizeof(double) * n * ws->m.feat);
}

double fv_dlg_loss_grad(fv_dlg_ws *ws, const double *theta, const double *x, const int *y, int n,
                        double *gtheta, double *gx, double *logits) {
    FV_ASSERT(n >= 1 && n <= ws->cap);
    const fv_dlg_model *m = &ws->m;
    int K = m->classes, F = m->feat;
    forward(ws, theta, x, n);
    if (logits) memcpy(logits, ws->logits, sizeof(double) * n * K);
    double loss = 0;
    for (int i = 0; i < n; i++) {
        FV_ASSERT(y[i] >= 0 && y[i] < K);
        const double *z = ws->logits + (size_t)i * K;
        double *dz = ws->dlogits + (size_t)i * K;
        double zmax = z[0];
        for (int k = 1; k < K; k++) zmax = fmax(zmax, z[k]);
        double s = 0;
        for (int k = 0; k < K; k++) s += exp(z[k] - zmax);
        double lse = zmax + log(s);
        loss += lse - z[y[i]];
        for (int k = 0; k < K; k++) dz[k] = (exp(z[k] - lse) - (k == y[i])) / n;
    }
    loss /= n;
    if (!gtheta && !gx) return loss;

    size_t in = (size_t)m->c * m->h * m->w, hw = (size_t)m->h * m->w;
    size_t s1 = (size_t)FV_DLG_CH * m->h1 * m->w1, s2 = (size_t)FV_DLG_CH * m->h2 * m->w2, s3 = (size_t)F;
    if (gtheta) {
        memset(gtheta, 0, sizeof(double) * m->n_params);
        /* fw[K, F] = dlogits^T a3; fb = column sums of dlogits */
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, F, n, 1.0, ws->dlogits, K, ws->a3, F, 0.0,
                    gtheta + m->fw, F);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < K; k++) gtheta[m->fb + k] += ws->dlogits[(size_t)i * K + k];
    }
    /* d3[n, F] = dlogits[n, K] fw[K, F] */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, F, K, 1.0, ws->dlogits, K, theta + m->fw, F, 0.0, ws->d3, F);
    sigmoid_bwd(ws->d3, ws->a3, n * s3);
    memset(ws->d2, 0, sizeof(double) * n * s2);
    memset(ws->d1, 0, sizeof(double) * n * s1);
    if (gx) memset(ws->dxn, 0, sizeof(double) * n * in);
    double *g = gtheta;
    for (int i = 0; i < n; i++)
        conv_bwd(ws->d2 + i * s2, g ? g + m->c3w : NULL, g ? g + m->c3b : NULL, ws->d3 + i * s3, ws->a2 + i * s2,
                 theta + m->c3w, ws->cols, ws->dcols, FV_DLG_CH, m->h2, m->w2, FV_DLG_CH, m->h3, m->w3, 1);
    sigmoid_bwd(ws->d2, ws->a2, n * s2);
    for (int i = 0; i < n; i++)
        conv_bwd(ws->d1 + i * s1, g ? g + m->c2w : NULL, g ? g + m->c2b : NULL, ws->d2 + i * s2, ws->a1 + i * s1,
                 theta + m->c2w, ws->cols, ws->dcols, FV_DLG_CH, m->h1, m->w1, FV_DLG_CH, m->h2, m->w2, 2);
    sigmoid_bwd(ws->d1, ws->a1, n * s1);
    for (int i = 0; i < n; i++)
        conv_bwd(gx ? ws->dxn + i * in : NULL, g ? g + m->c1w : NULL, g ? g + m->c1b : NULL, ws->d1 + i * s1,
                 ws->xn + i * in, theta + m->c1w, ws->cols, ws->dcols, m->c, m->h, m->w, FV_DLG_CH, m->h1, m->w1, 2);
    if (gx)
        for (int i = 0; i < n; i++)
            for (int c = 0; c < m->c; c++)
                for (size_t p = 0; p < hw; p++) {
                    size_t k = i * in + c * hw + p;
                    gx[k] = ws->dxn[k] / m->std[c];
                }
    return loss;
}

int fv_dlg_labels(const fv_dlg_model *m, const double *gstar, int n, int *labels) {
    FV_ASSERT(n >= 1 && n <= FV_DLG_MAX_BATCH);
    int K = m->classes;
    double *sum = fv_malloc(sizeof(double) * K);
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int f = 0; f < m->feat; f++) s += gstar[m->fw + (size_t)k * m->feat + f];
        sum[k] = s;
    }
    int neg = fv_labels_from_row_sums(sum, K, n, labels);
    free(sum);
    return neg;
}

int fv_dlg_dense_invert(double *in, const double *dW, const double *db, int out_features, int in_features) {
    int best = -1;
    for (int i = 0; i < out_features; i++)
        if (db[i] != 0 && (best < 0 || fabs(db[i]) > fabs(db[best]))) best = i;
    if (best < 0) return -1;
    for (int j = 0; j < in_features; j++) in[j] = dW[(size_t)best * in_features + j] / db[best];
    return 0;
}

void fv_dlg_match_init(fv_dlg_match *mt, fv_dlg_ws *ws, const fv_dlg_model *m, const double *theta,
                       const double *gstar, const int *labels, int n, double fd_scale) {
    FV_ASSERT(n >= 1 && n <= ws->cap && fd_scale > 0);
    memset(mt, 0, sizeof *mt);
    mt->ws = ws;
    mt->m = m;
    mt->theta = theta;
    mt->gstar = gstar;
    mt->labels = labels;
    mt->n = n;
    mt->fd_scale = fd_scale;
    size_t in = (size_t)n * m->c * m->h * m->w;
    mt->gth = fv_malloc(sizeof(double) * (2 * m->n_params + 2 * in));
    mt->tp = mt->gth + m->n_params;
    mt->gxp = mt->tp + m->n_params;
    mt->gxm = mt->gxp + in;
}

void fv_dlg_match_free(fv_dlg_match *mt) {
    free(mt->gth);
    mt->gth = mt->tp = mt->gxp = mt->gxm = NULL;
}

double fv_dlg_match_eval(fv_dlg_match *mt, const double *x, double *gx) {
    const fv_dlg_model *m = mt->m;
    size_t np = m->n_params, in = (size_t)mt->n * m->c * m->h * m->w;
    fv_dlg_loss_grad(mt->ws, mt->theta, x, mt->labels, mt->n, mt->gth, NULL, NULL);
    mt->evals++;
    double d = 0;
    for (size_t i = 0; i < np; i++) {
        mt->gth[i] -= mt->gstar[i]; /* gth now holds r */
        d += mt->gth[i] * mt->gth[i];
    }
    if (!gx) return d;
    if (d == 0 || !isfinite(d)) {
        for (size_t i = 0; i < in; i++) gx[i] = d == 0 ? 0.0 : NAN;
        return d;
    }
    double h = mt->fd_scale / sqrt(d);
    for (size_t i = 0; i < np; i++) mt->tp[i] = mt->theta[i] + h * mt->gth[i];
    fv_dlg_loss_grad(mt->ws, mt->tp, x, mt->labels, mt->n, NULL, mt->gxp, NULL);
    for (size_t i = 0; i < np; i++) mt->tp[i] = mt->theta[i] - h * mt->gth[i];
    fv_dlg_loss_grad(mt->ws, mt->tp, x, mt->labels, mt->n, NULL, mt->gxm, NULL);
    /* grad_x D = 2 J^T r = 2 (gx(theta + h r) - gx(theta - h r)) / (2 h) */
    for (size_t i = 0; i < in; i++) gx[i] = (mt->gxp[i] - mt->gxm[i]) / h;
    return d;
}

double fv_dlg_match_fn(void *ctx, const double *x, double *g, int n) {
    (void)n;
    return fv_dlg_match_eval(ctx, x, g);
}

fv_dlg_cfg fv_dlg_defaults(void) {
    fv_dlg_cfg c;
    memset(&c, 0, sizeof c);
    c.n = 1;
    c.opt = FV_DLG_LBFGS;
    c.iters = 1000;
    c.lr = 0.1;
    c.restarts = 1;
    c.fd_scale = 1e-3;
    c.target = -1; /* derived from ||g*|| */
    c.seed = 1;
    return c;
}

typedef struct {
    int verbose, restart;
    double t0;
} progress_ctx;

static int progress(void *ctx, int iter, int evals, double f) {
    progress_ctx *p = ctx;
    if (p->verbose && iter % 50 == 0)
        fprintf(stderr, "dlg: restart %d iter %d evals %d match %.6g (%.1f s)\n", p->restart, iter, evals, f,
                fv_now() - p->t0);
    return 0;
}

int fv_dlg_attack(const fv_dlg_model *m, const double *theta, const double *gstar, size_t gstar_len,
                  const fv_dlg_cfg *cfg, double *x_out, fv_dlg_result *res, fv_err *e) {
    memset(res, 0, sizeof *res);
    if (cfg->n < 1 || cfg->n > FV_DLG_MAX_BATCH)
        return fv_err_set(e, "dlg: batch size %d out of range 1..%d", cfg->n, FV_DLG_MAX_BATCH);
    if (cfg->iters < 1) return fv_err_set(e, "dlg: iterations must be >= 1 (got %d)", cfg->iters);
    if (cfg->restarts < 1) return fv_err_set(e, "dlg: restarts must be >= 1 (got %d)", cfg->restarts);
    if (!(cfg->fd_scale > 0)) return fv_err_set(e, "dlg: fd_scale must be > 0");
    if (gstar_len != m->n_params)
        return fv_err_set(e, "dlg: the gradient has %zu values but the model has %zu parameters", gstar_len,
                          m->n_params);
    double gg = 0;
    for (size_t i = 0; i < m->n_params; i++) gg += gstar[i] * gstar[i];
    if (!isfinite(gg) || gg == 0) return fv_err_set(e, "dlg: the gradient is zero or not finite");
    const int n = cfg->n;
    if (cfg->labels) {
        for (int i = 0; i < n; i++) {
            if (cfg->labels[i] < 0 || cfg->labels[i] >= m->classes)
                return fv_err_set(e, "dlg: label %d out of range [0, %d)", cfg->labels[i], m->classes);
            res->labels[i] = cfg->labels[i];
        }
        res->negative_rows = -1;
    } else {
        res->negative_rows = fv_dlg_labels(m, gstar, n, res->labels);
    }
    double t0 = fv_now();
    size_t in = (size_t)n * m->c * m->h * m->w;
    fv_dlg_ws *ws = fv_dlg_ws_new(m, n);
    fv_dlg_match mt;
    fv_dlg_match_init(&mt, ws, m, theta, gstar, res->labels, n, cfg->fd_scale);
    double *x = fv_malloc(sizeof(double) * in);
    double target = cfg->target >= 0 ? cfg->target : 1e-14 * gg;
    res->match = HUGE_VAL;
    for (int r = 0; r < cfg->restarts; r++) {
        fv_rng rng;
        fv_rng_seed2(&rng, cfg->seed, (uint64_t)r);
        for (size_t i = 0; i < in; i++) x[i] = fv_rng_uniform_d(&rng);
        double d0 = fv_dlg_match_eval(&mt, x, NULL);
        progress_ctx pc = {cfg->verbose, r, t0};
        fv_lbfgs_result lr;
        if (cfg->opt == FV_DLG_LBFGS) {
            fv_lbfgs_cfg lc = fv_lbfgs_defaults();
            lc.max_iter = cfg->iters;
            lc.max_evals = cfg->max_evals > 0 ? cfg->max_evals : 20 * cfg->iters;
            lc.bounded = 1;
            lc.lo = 0;
            lc.hi = 1;
            lc.f_target = target;
            lc.progress = progress;
            lc.progress_ctx = &pc;
            lr = fv_lbfgs_minimize(x, (int)in, fv_dlg_match_fn, &mt, &lc);
        } else {
            fv_adam_cfg ac = fv_adam_defaults();
            ac.iters = cfg->iters;
            ac.lr = cfg->lr;
            ac.bounded = 1;
            ac.lo = 0;
            ac.hi = 1;
            ac.f_target = target;
            ac.progress = progress;
            ac.progress_ctx = &pc;
            lr = fv_adam_minimize(x, (int)in, fv_dlg_match_fn, &mt, &ac);
        }
        if (cfg->verbose)
            fprintf(stderr, "dlg: restart %d stopped (%s) after %d iterations, %d evaluations: match %.6g\n", r,
                    fv_lbfgs_status_name(lr.status), lr.iters, lr.evals, lr.f);
        if (lr.f < res->match) {
            res->match = lr.f;
            res->match0 = d0;
            res->iters = lr.iters;
            res->evals = lr.evals;
            res->status = fv_lbfgs_status_name(lr.status);
            memcpy(x_out, x, sizeof(double) * in);
        }
        if (res->match <= target) break;
    }
    res->rel_match = res->match / gg;
    res->feat_err = -1;
    if (n == 1) {
        double *fa = fv_malloc(sizeof(double) * 2 * m->feat), *fb = fa + m->feat;
        if (fv_dlg_dense_invert(fa, gstar + m->fw, gstar + m->fb, m->classes, m->feat) == 0) {
            fv_dlg_features(ws, theta, x_out, 1, fb);
            double err = 0;
            for (int j = 0; j < m->feat; j++) err = fmax(err, fabs(fa[j] - fb[j]));
            res->feat_err = err;
        }
        free(fa);
    }
    res->seconds = fv_now() - t0;
    free(x);
    fv_dlg_match_free(&mt);
    fv_dlg_ws_destroy(&ws);
    return 0;
}

void fv_dlg_best_assignment(int *perm, const double *score, int n) {
    FV_ASSERT(n >= 1 && n <= FV_DLG_MAX_BATCH);
    fv_invert_assign(perm, score, n);
}
