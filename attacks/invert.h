/* invert.h: gradient inversion on the models fedvim trains (docs/attacks.md, "Inverting
 * gradients"). Two layers:
 *
 * The ENGINE differentiates a client's update with respect to its images, for any model of the
 * zoo, using only fv_net_forward / fv_net_backward with input gradients. The update is either a
 * fedSGD gradient g(x, theta) = grad_theta L(x, theta), or a fedAVG update theta_0 - theta_T after
 * T = E * ceil(n / B) plain SGD steps theta_{t+1} = theta_t - lr g(x_b(t), theta_t) over the
 * client's n images in fixed order, batches of B. The gradient of <v, update(x)> with respect to x
 * is accumulated in reverse over the stored theta_t:
 *     a = dF/dtheta_T;  for t = T-1 .. 0:  gx_b(t) += -lr M_t a;  a -= lr H_t a
 * (fedSGD: gx = M_0 v), where M_t a = grad_x <a, g(x, theta_t)> (a mixed second derivative) and
 * H_t a the Hessian-vector product. Both come from ONE pair of input-gradient backward passes at
 * theta_t +- h a by the central difference
 *     M a ~ (grad_x L(theta + h a) - grad_x L(theta - h a)) / 2h,
 *     H a ~ (grad_theta L(theta + h a) - grad_theta L(theta - h a)) / 2h,
 * with h = fd_scale * ||theta_t|| / ||a|| (the perturbation is fd_scale of the weights' norm).
 * Both passes REPLAY the ReLU masks and max-pool argmaxes recorded by a forward at theta_t itself
 * (net.h, fv_kinks; the update pass records each step's and the engine keeps them): a kink
 * crossed between theta - h a and theta + h a would add its jump divided by 2h, an O(1) error
 * whatever h (measured: the result was 10x off on LeNet-5 without the replay). With the kinks held, the network is a smooth function of theta and the central
 * difference errs by O(h^2) plus float32 rounding / h; this is also what double backprop
 * computes (ReLU and max pool have zero second derivative). The error against torch.autograd is
 * measured per model in docs/attacks.md (tests/test_invert_parity.c).
 *
 * The ATTACK ("Inverting Gradients", Geiping et al. 2020) is one configuration of the engine:
 * minimise 1 - cos(update(x), target) + tv TV(x) with Adam on the signed gradient, steps x0.1 at
 * 3/8, 5/8, 7/8 of the iterations, x clamped to the image box after each step, restarts from
 * N(0, 1) noise (the lowest final matching loss wins).
 *
 * Conventions: images x are in the model's input units (normalised), NCHW; updates and targets
 * cover the n_train trainable parameters (batch-norm running statistics are not matched).
 * Batch norm runs in train mode (batch statistics, as the client trained); dropout is switched
 * off by the engine. Not here: data, metrics, PNG and JSON (attack_run.h), the attack inside a
 * federated run (attack_api.h "invert"), the passes themselves (nn/trainer.h, CPU and CUDA).
 */
#ifndef FV_INVERT_H
#define FV_INVERT_H
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"
#include "nn/net.h"

typedef enum { FV_INVERT_FEDSGD, FV_INVERT_FEDAVG } fv_invert_kind;

#define FV_INVERT_FD_SCALE 3e-4 /* default fd_scale: measured in docs/attacks.md */

typedef struct {
    fv_invert_kind kind;
    int n;           /* the client's images (all of them are attacked), >= 1 */
    int batch;       /* fedAVG local batch B in [1, n]; ignored for fedSGD (one batch of n) */
    int epochs;      /* fedAVG local epochs E >= 1; ignored for fedSGD */
    float lr;        /* fedAVG local SGD step (> 0); ignored for fedSGD */
    double fd_scale; /* central-difference step rule (see top), in (0, 1) */
    int one_sided;   /* 1: one-sided differences against the update pass's own gradients at
                      * theta_t (one perturbed pass instead of two; error O(h), measured in
                      * docs/attacks.md); 0 (default): central */
} fv_invert_update_cfg;

/* Defaults: fedSGD, n 1, batch 1, epochs 1, lr 0.01, fd_scale FV_INVERT_FD_SCALE, central. */
fv_invert_update_cfg fv_invert_update_defaults(void);

typedef struct fv_invert_engine fv_invert_engine;

/* An engine on net (borrowed: it must outlive the engine). net's current parameters are theta_0
 * (copied now). The engine switches net's dropout off (p = 0), its input gradients and its kept
 * im2col (net.h, keep_im2col: memory for one im2col per conv node) on, and
 * leaves net->params equal to theta_0 after every call. One allocation holds all its buffers
 * (the trajectory is T x n_train floats). Returns NULL with e set for a bad cfg (naming the
 * field) or a net without parameters. Free with fv_invert_engine_free. */
FV_MUST_USE fv_invert_engine *fv_invert_engine_new(fv_net *net, const fv_invert_update_cfg *cfg, fv_err *e);
/* The same engine with its passes on `device` (-1: the CPU, as fv_invert_engine_new; N >= 0: CUDA
 * device N): the forward and backward passes, the images, the point and the recorded kinks live
 * in a trainer on that device (nn/trainer.h, fv_trainer_inv_*); the engine's vectors (trajectory,
 * direction, differences) stay on the host. On CUDA net is not modified after creation but the
 * dropout switch-off (its parameters stay theta_0 throughout); the results differ from the CPU's
 * by rounding only. Returns NULL with e set also when the device is missing or short of memory. */
FV_MUST_USE fv_invert_engine *fv_invert_engine_new_on(fv_net *net, const fv_invert_update_cfg *cfg, int device,
                                                      fv_err *e);
/* Free and set *eng to NULL; accepts NULL. */
void fv_invert_engine_free(fv_invert_engine **eng);
/* Local SGD steps of the fedAVG update (1 for fedSGD), and the trainable-parameter count. */
int fv_invert_steps(const fv_invert_engine *eng);
size_t fv_invert_n_train(const fv_invert_engine *eng);

/* The client's update on images x[n] (model input units) with labels[n] (in [0, classes)):
 * update[n_train] = g(x, theta_0) (fedSGD) or theta_0 - theta_T (fedAVG). Stores x, labels and
 * the trajectory for fv_invert_vjp. Returns the mean training loss of the first step. */
double fv_invert_update(fv_invert_engine *eng, const float *x, const int *labels, float *update);

/* gx[n, input] = d <v, update(x)> / dx at the x of the last fv_invert_update (which must have
 * been called since the last change of x; the kinks each local step's update pass recorded are
 * replayed), v[n_train]. 2T forward + backward passes (T one-sided); the passes of step 0 (all of
 * fedSGD's) run the input-only backward (net.h, skip_param_grad): H_0 a is never needed. */
void fv_invert_vjp(fv_invert_engine *eng, const float *v, float *gx);

/* Labels from the last layer's part of an update (gradient or fedAVG update; both have the sign
 * of the gradient): for the output linear layer's weight rows, the classes whose row sum is
 * negative are those present (non-negative features, as after a ReLU). n == 1: the most negative
 * row (iDLG). n > 1: every negative class once, the rest shared in proportion to -row sum
 * (largest remainder); if more than n are negative, the n most negative. labels[n] ascending.
 * Returns 0, or -1 with e set when the model's output node is not a linear layer or no row sum
 * is negative (the labels cannot be inferred). */
FV_MUST_USE int fv_invert_labels(const fv_net *net, const float *update, int n, int *labels, fv_err *e);

/* The count rule of fv_invert_labels on K row sums (shared with the DLG attack): writes
 * labels[n] ascending; returns the number of negative sums (0: nothing inferable; labels then
 * hold the single most negative class n times). */
int fv_labels_from_row_sums(const double *sum, int K, int n, int *labels);

/* The matching term: 1 - cos(U, T) (Inverting Gradients) or ||U - T||^2, the sum of squared
 * differences (DLG). */
typedef enum { FV_INVERT_COSINE, FV_INVERT_L2 } fv_invert_objective;
/* The optimiser: Adam on the signed gradient with x clamped to the box after each step
 * (Inverting Gradients); plain Adam (lbfgs.h fv_adam_minimize); or L-BFGS (lbfgs.h, strong Wolfe
 * line search; DLG). The last two run in double on the box mapped to [0, 1] per channel (x =
 * lo + u (hi - lo)), or on x itself when a bound is infinite. */
typedef enum { FV_INVERT_ADAM_SIGNED, FV_INVERT_ADAM, FV_INVERT_LBFGS } fv_invert_optimizer;

typedef struct {
    int iters;       /* optimiser iterations per restart (>= 1) */
    int restarts;    /* independent noise starts (>= 1) */
    double lr;       /* Adam step, model input units (ADAM: units of the [0, 1] box) (default 0.1) */
    double tv;       /* total-variation weight (default 1e-4) */
    float lo[4], hi[4]; /* per-channel box in model input units (pixel 0 and 1 normalised) */
    uint64_t seed;   /* noise starts */
    int verbose;     /* progress lines on stderr */
    fv_invert_objective objective; /* default COSINE */
    fv_invert_optimizer opt;       /* default ADAM_SIGNED */
    int max_evals;   /* L-BFGS objective evaluations per restart (0: 20 per iteration) */
    double target;   /* stop a restart (and skip the rest) once the relative matching term is at
                      * most this: ||U - T||^2 / ||T||^2 (L2) or 1 - cos (COSINE); 0: never */
    int uniform_start; /* 1: starts uniform in the box (DLG); 0: N(0, 1) in input units (IG) */
    double bn_prior; /* weight W of the batch-norm statistics prior (0: off): W times the sum over
                      * the model's batch-norm layers of ||mu_B - running_mean||^2 +
                      * ||var_B - running_var||^2, the per-channel mean and (biased) variance of
                      * the layer's input over all n candidates in one train-mode forward at
                      * theta_0; its gradient by one backward through the net. fedSGD
                      * evaluates it on the update pass's forward (no forward of its own); the
                      * fedAVG case runs one, and compares all n images at theta_0, not each
                      * local batch */
} fv_invert_cfg;

/* Defaults (Inverting Gradients): iters 2000, restarts 1, lr 0.1, tv 1e-4, box [-inf, inf] (set
 * it), seed 1, cosine, Adam on the signed gradient, no target, N(0, 1) starts, no BN prior. */
fv_invert_cfg fv_invert_defaults(void);
/* DLG (Zhu et al. 2019) as a configuration of the same engine: L2 matching, L-BFGS (20
 * evaluations per iteration at most), no TV, uniform starts in the box, iters 300, target
 * FV_INVERT_DLG_TARGET. iDLG (Zhao et al. 2020) is DLG with labels from fv_invert_labels. */
fv_invert_cfg fv_invert_dlg_defaults(void);
/* The relative L2 matching loss at which DLG stops: float32 gradients carry a rounding noise of
 * about 1e-7 of their size, so ||U - T||^2 / ||T||^2 has a floor near 1e-13 (measured in
 * docs/attacks.md section 2); the double-precision dlg.c stopped at 1e-14. */
#define FV_INVERT_DLG_TARGET 1e-12

typedef struct {
    double loss;      /* final matching term + tv TV of the winning restart */
    double cos;       /* its cosine to the target */
    double match;     /* its matching term: 1 - cos or ||U - T||^2 */
    double rel_match; /* 1 - cos or ||U - T||^2 / ||T||^2 */
    double match0;    /* the matching term at its start */
    int restart;      /* which restart won */
    int iters, evals; /* its iterations and objective evaluations */
    const char *status; /* why its optimiser stopped ("max_iter", "target", lbfgs.h's names) */
    double seconds;   /* all restarts */
    long passes;      /* forward passes (all but kink records with a backward), all restarts */
} fv_invert_result;

/* Run the attack against target[n_train] with labels[n]: x_out[n, input] (model input units)
 * receives the winning reconstruction. Returns 0, or -1 with e set for a bad cfg (naming the
 * field) or a zero or non-finite target, before any pass. */
FV_MUST_USE int fv_invert_attack(fv_invert_engine *eng, const float *target, const int *labels,
                                 const fv_invert_cfg *cfg, float *x_out, fv_invert_result *res, fv_err *e);

/* fv_invert_attack with its restarts spread over m engines run concurrently, one thread each
 * (engine k takes restarts k, k + m, ...): on a GPU each engine's passes go to its own stream, so
 * the restarts' small kernels overlap. The engines must attack the same update: same update cfg,
 * weights and device, each on its own net (engine k's net copied from engine 0's). Restart r
 * starts from the same noise as in fv_invert_attack and the winner is chosen the same way (in
 * restart order, lowest loss, the target stopping the choice), so the result is the same up to
 * the devices' rounding; with a target every restart runs (the choice still stops where the
 * in-order attack would). Each thread runs the layer kernels with the caller's OpenMP thread
 * count (so on the CPU m engines use m times the threads). m == 1 is fv_invert_attack.
 * res->passes counts all engines. */
FV_MUST_USE int fv_invert_attack_multi(fv_invert_engine **engs, int m, const float *target, const int *labels,
                                       const fv_invert_cfg *cfg, float *x_out, fv_invert_result *res, fv_err *e);

/* The matching loss of cfg (objective, tv and bn_prior) at x against target: returns it, and with gx
 * (n * input floats, may be NULL) SETS gx to its gradient. For gradient checks and tests. */
double fv_invert_match(fv_invert_engine *eng, const float *x, const float *target, const int *labels,
                       const fv_invert_cfg *cfg, float *gx);

/* The analytic shortcut of a dense output layer with bias on a batch of one: for any class k
 * with db[k] != 0, dW[k, :] / db[k] is the layer's input exactly. From a fedSGD gradient
 * update[n_train], writes the input of net's last (linear) node, feat[in_features], using the
 * row with the largest |db|. Returns 0, or -1 when the last node is not a linear layer with
 * bias or every db is 0. */
int fv_invert_dense_features(const fv_net *net, const float *update, float *feat);

/* The best one-to-one assignment for n reconstructions: score[i * n + j] = similarity of
 * reconstruction i to original j (higher is better); perm[i] = the original matched to
 * reconstruction i. Exhaustive for n <= 8, greedy (best remaining pair first) above. */
void fv_invert_assign(int *perm, const double *score, int n);

#endif
