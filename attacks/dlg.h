/* dlg.h: gradient inversion (DLG, Zhu et al. 2019; iDLG, Zhao et al. 2020) against the DLG
 * sigmoid LeNet, in double precision, as docs/attacks.md section 2 describes.
 *
 * The model is re-implemented here in double precision (forward, parameter gradient, input
 * gradient), with exactly the parameter layout of shared/nn/models.h's "dlg_lenet" (body.0, body.2,
 * body.4: 5x5 convs of 12 channels, strides 2, 2, 1, pad 2, sigmoid; fc.0: one dense layer), so a
 * float update from the federated system converts element by element.
 *
 * The attacker holds g* = grad_theta L(x, y; theta) of one client step (mean cross-entropy over a
 * batch of 1..8). It recovers labels by the iDLG rule and images by minimising the matching loss
 * D(x') = ||grad_theta L(x', y'; theta) - g*||^2 over x' in [0, 1], with L-BFGS or Adam. No
 * autograd: grad_x D = 2 J^T r with r = grad_theta L(x') - g*, and J^T r is the derivative of the
 * input gradient when the weights move along r, taken by a central finite difference with
 * h = fd_scale / ||r||.
 *
 * Not here: image metrics (attacks/metrics.h), the float model used for training (shared/nn/net.h),
 * the command line (cli/cmd_attack.c).
 */
#ifndef FV_DLG_H
#define FV_DLG_H
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

#define FV_DLG_MAX_BATCH 8
#define FV_DLG_CH 12 /* channels of every conv */

/* The architecture and parameter layout for one input shape. Offsets index theta. */
typedef struct {
    int c, h, w, classes;
    int h1, w1, h2, w2, h3, w3; /* spatial size after conv 1, 2, 3 */
    int feat;                   /* inputs of the dense layer: 12 * h3 * w3 */
    size_t c1w, c1b, c2w, c2b, c3w, c3b, fw, fb; /* offsets of body.0.weight ... fc.0.bias */
    size_t n_params;
    double mean[4], std[4]; /* the model sees (x - mean_c) / std_c; x is in pixel units [0, 1] */
} fv_dlg_model;

/* Fill m for inputs c x h x w (c in 1..4, h and w in 4..1024) and `classes` outputs (2..1000),
 * with no input normalisation (mean 0, std 1). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_dlg_model_init(fv_dlg_model *m, int c, int h, int w, int classes, fv_err *e);

/* theta[n_params] ~ U(-0.5, 0.5), deterministic in seed (the DLG reference initialisation). */
void fv_dlg_init_params(const fv_dlg_model *m, double *theta, uint64_t seed);

/* Scratch space for batches of up to max_batch samples. Caller owns; free with fv_dlg_ws_destroy. */
typedef struct fv_dlg_ws fv_dlg_ws;
fv_dlg_ws *fv_dlg_ws_new(const fv_dlg_model *m, int max_batch);
void fv_dlg_ws_destroy(fv_dlg_ws **ws);

/* Mean cross-entropy of x[n, c, h, w] (pixel units) with labels y[n] under theta; returns it.
 * If gtheta (n_params) is not NULL it is SET to dL/dtheta; if gx (n*c*h*w) is not NULL it is SET
 * to dL/dx. If logits (n*classes) is not NULL it receives the logits. 1 <= n <= max_batch. */
double fv_dlg_loss_grad(fv_dlg_ws *ws, const double *theta, const double *x, const int *y, int n,
                        double *gtheta, double *gx, double *logits);

/* iDLG label recovery from g*. For n = 1: the class whose row of the dense weight gradient sums
 * to a negative value (the most negative if several). For n > 1 (an extension): classes with
 * negative row sums are present; if there are fewer than n, the rest are allotted to them in
 * proportion to -sum (largest remainder); if more, the n most negative are taken. labels[n] are
 * written in increasing class order. Returns the number of classes with a negative row sum. */
int fv_dlg_labels(const fv_dlg_model *m, const double *gstar, int n, int *labels);

/* The analytic shortcut for a dense layer with bias and a batch of one: for any row i with
 * db[i] != 0, dW[i, :] / db[i] is the layer's input exactly. Writes in[in_features] from the row
 * with the largest |db[i]| and returns 0; -1 if every db[i] is 0. dW is [out, in] (PyTorch). */
int fv_dlg_dense_invert(double *in, const double *dW, const double *db, int out_features, int in_features);

/* The dense-layer input (sigmoid features of conv 3) for x[n] under theta: feat[n, feat]. */
void fv_dlg_features(fv_dlg_ws *ws, const double *theta, const double *x, int n, double *feat);

/* The matching loss and its gradient for the attack: D(x) = ||grad_theta L(x, y) - g*||^2 and
 * gx = grad_x D by the central finite difference of input gradients (see top). */
typedef struct {
    fv_dlg_ws *ws;
    const fv_dlg_model *m;
    const double *theta, *gstar;
    const int *labels;
    int n;
    double fd_scale; /* h = fd_scale / ||r|| (default 1e-3) */
    double *gth, *tp, *gxp, *gxm; /* scratch: n_params, n_params, n*input, n*input */
    long evals;
} fv_dlg_match;

/* Set up mt (allocates its scratch; free with fv_dlg_match_free). */
void fv_dlg_match_init(fv_dlg_match *mt, fv_dlg_ws *ws, const fv_dlg_model *m, const double *theta,
                       const double *gstar, const int *labels, int n, double fd_scale);
void fv_dlg_match_free(fv_dlg_match *mt);
/* D(x); gx (n*input, may be NULL) SET to grad_x D. Matches the fv_lbfgs_fn signature through
 * fv_dlg_match_fn. */
double fv_dlg_match_eval(fv_dlg_match *mt, const double *x, double *gx);
double fv_dlg_match_fn(void *ctx, const double *x, double *g, int n);

typedef enum { FV_DLG_LBFGS, FV_DLG_ADAM } fv_dlg_optimizer;

typedef struct {
    int n;                 /* batch size, 1..FV_DLG_MAX_BATCH */
    fv_dlg_optimizer opt;
    int iters;             /* L-BFGS iterations or Adam steps */
    int max_evals;         /* L-BFGS objective evaluations (0: 20 per iteration, as the reference) */
    double lr;             /* Adam step (default 0.1) */
    int restarts;          /* independent noise starts; the lowest matching loss wins (default 1) */
    double fd_scale;       /* default 1e-3 */
    double target;         /* stop when D <= target (default 1e-14 * ||g*||^2) */
    const int *labels;     /* known labels[n], or NULL for the iDLG rule */
    uint64_t seed;         /* noise start */
    int verbose;           /* progress lines to stderr */
} fv_dlg_cfg;

fv_dlg_cfg fv_dlg_defaults(void);

typedef struct {
    double match;          /* final D(x') */
    double match0;         /* D at the noise start of the winning restart */
    double rel_match;      /* D / ||g*||^2 */
    int iters, evals;      /* of the winning restart */
    const char *status;    /* why the optimiser stopped */
    double seconds;        /* all restarts */
    int labels[FV_DLG_MAX_BATCH];
    int negative_rows;     /* classes with a negative dense-gradient row sum */
    double feat_err;       /* batch 1: max |dense-shortcut features - features of x'| (else -1) */
} fv_dlg_result;

/* Run the attack: x_out[n, c, h, w] in [0, 1] receives the reconstruction. Returns 0, or -1 with
 * e set for an invalid configuration (batch size, iterations) or g* of the wrong length. */
FV_MUST_USE int fv_dlg_attack(const fv_dlg_model *m, const double *theta, const double *gstar, size_t gstar_len,
                  const fv_dlg_cfg *cfg, double *x_out, fv_dlg_result *res, fv_err *e);

/* The best one-to-one assignment of reconstructions to originals for a batch (n <= 8) given
 * score[i * n + j] = similarity of reconstruction i to original j (higher is better):
 * perm[i] = the original matched to reconstruction i. Exhaustive over n! orderings. */
void fv_dlg_best_assignment(int *perm, const double *score, int n);

#endif
