/* aggregate.h: the server's aggregation rules, the one place where client models become the next
 * global model (the coordinator and the attacks' in-process FedAvg, attacks/fedsim.h, both call
 * it):
 *  - FedAvg (McMahan et al. 2017): the average of the uploads weighted by their sample counts.
 *    FedProx uses it unchanged (its proximal term is the clients' local objective).
 *  - FedNova (Wang et al. 2020, "Tackling the Objective Inconsistency Problem in Heterogeneous
 *    Federated Optimization"): normalised averaging for unequal local work. Client i with n_i
 *    samples ran tau_i = fv_agg_local_steps(E, B, n_i) = E ceil(n_i / B) local steps (the
 *    trainer's epoch takes every batch, the last one partial: shared/nn/train.c); its local solver
 *    weighs its gradients by a vector a_i whose L1 norm is, for plain SGD, tau_i; for SGD with
 *    heavy-ball momentum rho (PyTorch's, buffer zeroed each round), sum_k (1 - rho^k) / (1 - rho)
 *    = (tau_i - rho (1 - rho^tau_i) / (1 - rho)) / (1 - rho); for FedProx's proximal term with
 *    alpha = lr mu (no momentum), (1 - (1 - alpha)^tau_i) / alpha (the paper's section 4 and the
 *    authors' code). Over the trainable coordinates the new global is
 *    global + tau_eff sum_i p_i (x_i - global) / ||a_i||_1, p_i = n_i / sum_arrived n,
 *    tau_eff = sum_i p_i ||a_i||_1 (the paper's choice for tau_eff); with equal ||a_i||_1 this is
 *    FedAvg. Batch-norm buffers get FedAvg's weighted mean (running statistics are not
 *    accumulated by local steps). The coordinator computes tau_i from the sample count it
 *    verified (an update's num_samples must equal the client's shard), not from a count the
 *    worker could claim: a smaller claimed tau_i would enlarge that client's step. Other local
 *    optimizers (Adam, Nesterov, kept optimizer state, momentum with FedProx) are refused by
 *    the config check. A server optimizer (server_opt.h) may step from FedNova's output (the
 *    paper's FedNova with server momentum).
 *  - SCAFFOLD (Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging for Federated
 *    Learning", option II): the clients' local steps carry the control variate correction
 *    (shared/fl/scaffold.h has the control variates, the client's and the server's arithmetic);
 *    here only the model's step: over the trainable coordinates global + eta_g (mean - global),
 *    mean the sample-weighted mean of the uploads as FedAvg's (the paper's uniform mean when the
 *    shards are equal), eta_g = rule.server_lr (fl.server_lr with server_opt = none, else 1 and the
 *    server optimizer steps from this output); with eta_g = 1 it is FedAvg bitwise. Batch-norm
 *    buffers get the weighted mean.
 *  - DP-FedAvg (McMahan et al. 2018): over the leading n_train coordinates (the trainable
 *    parameters) each client contributes its delta upload - global clipped to L2 norm `clip`
 *    (weight 1, whatever its size); the new global is global + sum(clipped deltas) / m plus
 *    N(0, (z clip / m)^2) per coordinate, m the round's sampled clients (arrived or not). The
 *    noise of round r is drawn from the stream (seed ^ FV_AGG_DP_NOISE_DOMAIN, r) (dp.h), so a run
 *    and its resumption give the same model bitwise. The coordinates after n_train (batch-norm
 *    buffers) get the uniform average of the uploads, not privatised.
 *  - Robust rules, for rounds where some clients may be Byzantine (send anything finite). Each
 *    keeps the round's uploads (m x n floats at most) and computes at fv_agg_end over the k
 *    arrived ones in slot order; none weighs by sample counts except clip (a Byzantine client
 *    could claim any count):
 *    - median: the coordinate-wise median (even k: the mean of the two middle values, in double).
 *      Tolerates fewer than k/2 arbitrary updates per coordinate. Cost O(n k log k).
 *    - trimmed_mean: per coordinate, drops the t = fv_config_trim_count(trim, k) smallest and t
 *      largest values and takes the plain mean of the other k - 2t (Yin et al. 2018). Tolerates t
 *      per side.
 *    - krum / multikrum (Blanchard et al. 2017), f assumed Byzantine: each update's score is the
 *      sum of its squared L2 distances (over the trainable coordinates) to its k - f - 2 closest
 *      others; krum returns the best-scored update, multikrum the plain mean of the multikrum_m
 *      best-scored (ties broken by the lower slot). Tolerates f when k > 2f + 2. Cost O(k^2 n).
 *    - clip: each update's delta upload - global over the trainable coordinates is clipped to L2
 *      norm clip_norm, then averaged weighted by sample counts (FedAvg of the clipped deltas):
 *      one client moves the model by at most clip_norm times its weight share. Cost O(k n).
 *    - centered_clip (Karimireddy et al. 2021): a centre v, from v = 0 (the global model), moves
 *      FV_AGG_CCLIP_ITERS times by the plain mean of the deltas' deviations from it, each clipped
 *      to L2 norm clip_norm (over the trainable coordinates, in double): v += mean_j(d_j - v)
 *      min(1, clip_norm / ||d_j - v||); the new model is global + v. Each client moves v by at
 *      most clip_norm / k per iteration, and v settles near the honest updates where plain
 *      clipping stays shrunk towards the global model. The paper starts v at the previous round's
 *      aggregate; this one keeps no history, so a run and its resumption give the same model.
 *      Cost O(FV_AGG_CCLIP_ITERS k n).
 *    Batch-norm buffers (the coordinates after n_train): median and trimmed_mean treat them like
 *    any coordinate; krum and multikrum take them from the selected updates with the rest; clip
 *    and centered_clip take their coordinate-wise median (a delta norm means nothing for running
 *    statistics, and a plain average would let one client set them).
 *    Too few: when fewer updates arrive than the rule needs (median, the clips: 1; trimmed_mean: k
 *    with 1 <= t < k / 2; krum: fv_config_krum_min(f) = 2f + 3; multikrum: that and
 *    multikrum_m + f), the round keeps the global model (out = global; fv_agg_held says so):
 *    a robust rule applies no round it cannot vouch for.
 *
 * Order: a round has m slots (its sampled clients, sorted by id). The result is computed in slot
 * order whatever order the updates arrive in, so it is bitwise the same for any number of
 * workers and any scheduling. An update for the next slot in order is accumulated at once
 * (acc += w * x in double precision); one that arrives early is copied and waits for its
 * predecessors; a slot that will never arrive (dropped client) is skipped. Memory: the double
 * accumulator plus the updates that arrived ahead of a missing predecessor (at most m - 1
 * vectors, usually none or one); DP adds one float vector of scratch; a robust rule keeps every
 * upload of the round.
 * Not here: validating updates (the coordinator), the DP primitives and the privacy accountant
 * (dp.h), client-side training, the server optimizer that may step from this output
 * (server_opt.h).
 */
#ifndef FV_AGGREGATE_H
#define FV_AGGREGATE_H
#include <stddef.h>
#include <stdint.h>

#include "fl/config.h"

/* centered_clip's iterations of the centre per round. */
#define FV_AGG_CCLIP_ITERS 3

/* Domain separation of DP-FedAvg's noise seed from the run's other streams. */
#define FV_AGG_DP_NOISE_DOMAIN 0x64702d6e6f697365ull /* "dp-noise" */

typedef struct {
    fv_aggregator kind;      /* FedAvg (DP-FedAvg with dp), FedNova, SCAFFOLD or a robust rule */
    int dp;                  /* FedAvg only: 0 plain, 1 DP-FedAvg */
    size_t n_train;          /* leading coordinates that are trainable parameters (<= n): DP clips
                              * and noises them; krum measures distances and clip norms over them;
                              * the rest are batch-norm buffers */
    double clip;             /* DP: L2 bound of a client's delta, > 0 */
    double noise_multiplier; /* DP: z >= 0; the noise std is z clip / m */
    uint64_t seed;           /* DP: the run's seed (fl.seed) */
    double trim;             /* trimmed_mean: fraction trimmed per side, in [0, 0.5] */
    int krum_f;              /* krum, multikrum: Byzantine clients assumed, >= 0 */
    int multikrum_m;         /* multikrum: best-scored updates averaged, >= 1 */
    double clip_norm;        /* clip, centered_clip: L2 bound of a client's delta, > 0 */
    int local_epochs;        /* FedNova: E >= 1 */
    int batch_size;          /* FedNova: B >= 1 */
    double local_momentum;   /* FedNova: the clients' SGD momentum rho in [0, 1) */
    double local_prox;       /* FedNova: lr x prox_mu in [0, 1), 0 when rho > 0 */
    double server_lr;        /* SCAFFOLD: the global step size eta_g > 0 */
} fv_agg_rule;

/* The rule an experiment asks for: [fl] aggregator with its parameters, DP-FedAvg with [dp]'s
 * clip and noise multiplier and fl.seed when dp.enabled (with fedavg: fv_config_check refuses DP
 * with any other rule); n_train: the model's trainable parameters, its first coordinates. SCAFFOLD's
 * eta_g is fv_config_server_lr with server_opt = none, else 1. */
fv_agg_rule fv_agg_rule_from_config(const fv_config *cfg, size_t n_train);

/* Local SGD steps of a client with `samples` >= 1 images, E = epochs >= 1 and B = batch >= 1:
 * E ceil(samples / B). */
int64_t fv_agg_local_steps(int epochs, int batch, int64_t samples);

/* FedNova's ||a_i||_1 for a client with `samples` >= 1 images under rule (see above). */
double fv_agg_fednova_norm(const fv_agg_rule *rule, double samples);

/* Plain FedAvg. */
fv_agg_rule fv_agg_rule_fedavg(void);

/* DP-FedAvg's noise std per private coordinate for a round of m >= 1 sampled clients:
 * noise_multiplier * clip / m (0 under FedAvg). */
double fv_agg_dp_noise_std(const fv_agg_rule *rule, int m);

typedef struct fv_agg fv_agg;

/* An aggregator for models of n floats under rule (copied; it needs n_train <= n, and for DP
 * clip > 0 and noise_multiplier >= 0, for a robust rule no DP and its parameters in the ranges
 * above: a programmer error otherwise, the config checks them). Aborts
 * only on out-of-memory. Caller owns; free with fv_agg_destroy. */
fv_agg *fv_agg_new(size_t n, const fv_agg_rule *rule);

/* Free a and set *a to NULL; accepts NULL and a NULL *a. */
void fv_agg_destroy(fv_agg **a);

/* Start round `round` (>= 1: DP's noise stream) of m >= 0 slots: clears the accumulator, any
 * waiting update and the round's statistics. global[n] is the model the clients started from,
 * borrowed until fv_agg_end and unchanged until then (DP, FedNova, SCAFFOLD and the robust rules
 * read it; FedAvg may pass NULL). */
void fv_agg_begin(fv_agg *a, int m, int round, const float *global);

/* The upload x[n] of slot s (0 <= s < m), from a client with `samples` > 0 images. FedAvg and
 * SCAFFOLD weigh it by samples; FedNova weighs its delta by samples / ||a_i||_1; DP clips its delta (at once, so
 * the pre-clip norm is known) and weighs it 1; a robust rule keeps a copy (and its samples) for
 * fv_agg_end. Each slot is given at most once (put or skip; a second one aborts: the caller checks
 * duplicates first). x is only read during the call. */
void fv_agg_put(fv_agg *a, int s, const float *x, double samples);

/* Slot s will not arrive. */
void fv_agg_skip(fv_agg *a, int s);

/* Close the round: every slot not yet put or skipped counts as skipped. Writes the new global
 * model to out[n] under the rule (out may be the global given to fv_agg_begin) and returns the
 * number of slots put; returns 0 and leaves out untouched when none was. A robust rule with fewer
 * than it needs writes the global model to out (see above) and still returns the slots put. */
int fv_agg_end(fv_agg *a, float *out);

/* The current round's DP figures so far: *clipped gets the updates whose delta norm exceeded the
 * clip, *norm_sum the sum of their pre-clip delta norms (in arrival order). Both 0 under FedAvg. */
void fv_agg_dp_stats(const fv_agg *a, int *clipped, double *norm_sum);

/* 1 when the last fv_agg_end of a robust rule kept the global model for want of updates, else 0. */
int fv_agg_held(const fv_agg *a);

/* Updates currently waiting for a predecessor (for tests and logs). */
int fv_agg_waiting(const fv_agg *a);

/* The accumulation kernel alone: acc[i] += w * x[i] for i < n (for benchmarks). */
void fv_agg_axpy(double *acc, const float *x, double w, size_t n);

#endif
