/* server_opt.h: the server optimizers of Reddi et al. 2021 ("Adaptive Federated Optimization",
 * Algorithm 2) and FedAvgM (Hsu et al. 2019). The round's aggregate y (FedAvg's weighted mean,
 * DP-FedAvg's noisy mean, FedNova's or a robust rule's output: aggregate.h) and the global model x
 * it started from define the pseudo-gradient D = y - x; the server then steps, per trainable
 * coordinate (the first n_train; batch-norm buffers take y as is: running statistics are no
 * descent direction):
 *  - none:       x <- y (no state);
 *  - fedavgm:    v <- momentum v + D;                        x <- x + lr v          (v starts at 0);
 *  - fedadam:    m <- b1 m + (1 - b1) D;  v <- b2 v + (1 - b2) D^2;
 *  - fedyogi:    m as fedadam;            v <- v - (1 - b2) D^2 sign(v - D^2);
 *  - fedadagrad: m as fedadam;            v <- v + D^2;
 *    the three adaptive ones then x <- x + lr m / (sqrt(v) + tau), from m = 0 and v = tau^2 (the
 *    paper's v_{-1} >= tau^2), without bias correction (as the paper).
 * Defaults (config.c's schema, the one place): momentum 0.9, b1 0.9, b2 0.99, tau 1e-3 (the
 * paper's), lr (fv_config_server_lr) 1 for fedavgm, 1e-2 for fedadam and fedyogi, 1e-1 for
 * fedadagrad, whose v only grows (the paper tunes lr per task over a grid of powers of ten; these
 * are starting points, not its tuned values). With lr = 1 and momentum 0, fedavgm is the aggregate up
 * to the rounding of v = D to float.
 * Arithmetic: each coordinate in double from the float state and models, each result rounded once
 * to float (state and model are float32, as checkpoints store them), so a run and its resumption
 * from the checkpointed state give the same model bitwise.
 * State: fv_sopt_state_len floats (fedavgm: v; adaptive: m then v; none: 0), saved with every
 * checkpoint (coordinator/store.h) and restored by --resume. A round's step can be undone (the
 * coordinator rolls back an unsound aggregate): fv_sopt_begin, fv_sopt_step, fv_sopt_undo.
 * Not here: the aggregation (aggregate.h), the files (coordinator/store.h).
 */
#ifndef FV_SERVER_OPT_H
#define FV_SERVER_OPT_H
#include <stddef.h>

#include "fl/config.h"
#include "fv_common.h"

typedef struct {
    fv_server_opt kind;
    size_t n_train;  /* the trainable coordinates, the first of the model */
    double lr;       /* > 0 */
    double momentum; /* fedavgm, in [0, 1) */
    double beta1;    /* adaptive, in [0, 1) */
    double beta2;    /* fedadam, fedyogi, in [0, 1) */
    double tau;      /* adaptive, > 0 */
} fv_sopt_rule;

/* The rule of [fl] server_opt and its keys (server_lr resolved by fv_config_server_lr) for a model
 * whose first n_train coordinates are trainable. */
fv_sopt_rule fv_sopt_rule_from_config(const fv_config *cfg, size_t n_train);

typedef struct fv_sopt fv_sopt;

/* A server optimizer with fresh state (see above) under rule (copied; parameters outside the
 * ranges above are a programmer error: the config checks them). Aborts only on out-of-memory.
 * Caller owns; free with fv_sopt_destroy. */
fv_sopt *fv_sopt_new(const fv_sopt_rule *rule);

/* Free s and set *s to NULL; accepts NULL and a NULL *s. */
void fv_sopt_destroy(fv_sopt **s);

/* Floats of state: 0 (none), n_train (fedavgm) or 2 n_train (adaptive: m, then v). */
size_t fv_sopt_state_len(const fv_sopt *s);

/* The state itself, fv_sopt_state_len floats (NULL when 0), owned by s: read to checkpoint it,
 * written to restore one; then check it with fv_sopt_state_check. */
float *fv_sopt_state(fv_sopt *s);

/* Whether the state (as restored from a file) can be s's: every value finite and every v >= 0
 * (adaptive). Returns 0, or -1 with e naming the first bad value and `what` (the file). */
FV_MUST_USE int fv_sopt_state_check(const fv_sopt *s, const char *what, fv_err *e);

/* Start a round: forget the last step's undo record. */
void fv_sopt_begin(fv_sopt *s);

/* One step: global[n] the model the round started from, model[n] (n >= n_train) its aggregate on
 * entry and the new global model on return (its coordinates from n_train on untouched). Keeps the
 * state before the step for fv_sopt_undo. Under none: nothing. At most once per round. */
void fv_sopt_step(fv_sopt *s, const float *global, float *model);

/* Put the state back to what it was before this round's step (nothing when the round took none). */
void fv_sopt_undo(fv_sopt *s);

/* 1 when this round's step left every state value finite (or the round took none), else 0. A
 * finite model can hide a state that overflowed (an update of huge finite values makes D^2, and so
 * v, infinite in float: every later step would then be 0, the run silently stalled), so the
 * coordinator counts such a round as unsound and rolls it back like a non-finite model. */
int fv_sopt_sound(const fv_sopt *s);

#endif
