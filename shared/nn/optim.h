/* optim.h: optimizers over one contiguous parameter vector: SGD (momentum, Nesterov, weight
 * decay; PyTorch semantics), Adam (PyTorch semantics, bias-corrected) and ST-Adam exactly as
 * docs/visualmixer.md section 5 (Adam without bias correction, weight decay, and a
 * momentum term mu on the update). All optimizer state lives in one allocation.
 */
#ifndef FV_OPTIM_H
#define FV_OPTIM_H
#include <stddef.h>
#include <stdint.h>

#include "fv_common.h"

typedef enum { FV_OPT_SGD, FV_OPT_ADAM, FV_OPT_STADAM } fv_opt_kind;

typedef struct {
    fv_opt_kind kind;
    float lr;
    float momentum;  /* SGD */
    int nesterov;    /* SGD */
    float wd;        /* all: L2 weight decay added to the gradient */
    float beta1, beta2, eps; /* Adam, ST-Adam */
    float mu;        /* ST-Adam update momentum */
    long decay_steps; /* 0: constant lr; > 0: cosine decay of lr to 0 over this many steps */
    long warmup_steps; /* 0: none; W > 0: step t = 1..W runs at t/W of the rate above (a linear
                          warm-up multiplying the schedule, as timm's and PyTorch's LinearLR) */
} fv_opt_cfg;

/* Defaults for a kind: SGD lr 0.01; Adam and ST-Adam lr 1e-3, betas 0.9/0.999, eps 1e-8. */
fv_opt_cfg fv_opt_defaults(fv_opt_kind kind);
/* Check a configuration a user assembled (flags, INI), with PyTorch's rules: every value finite,
 * lr >= 0, wd >= 0, momentum >= 0, Nesterov only with momentum > 0; for Adam and ST-Adam betas
 * in [0, 1) and eps >= 0; mu >= 0. Returns 0, or -1 with e naming the bad field. fv_opt_new aborts
 * on a configuration that fails this check (a caller that skipped it has a bug). */
FV_MUST_USE int fv_opt_cfg_check(const fv_opt_cfg *cfg, fv_err *e);
/* Length in floats of the state vector of an optimizer for n parameters (see fv_opt_state):
 * SGD n with momentum (the momentum buffer) else 0; Adam 2n (m then v); ST-Adam 2n (m, v), or
 * 3n (m, v, u) when mu != 0. */
size_t fv_opt_state_len(const fv_opt_cfg *cfg, size_t n);
/* Parse "sgd", "adam", "stadam" (also "st-adam"). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_opt_parse_kind(const char *s, fv_opt_kind *out, fv_err *e);
const char *fv_opt_kind_name(fv_opt_kind k);

typedef struct fv_opt fv_opt;

/* An optimizer for n parameters. Caller owns; free with fv_opt_destroy. */
fv_opt *fv_opt_new(const fv_opt_cfg *cfg, size_t n);
void fv_opt_destroy(fv_opt **o);
/* One step: params[0..n) updated from grads[0..n). */
void fv_opt_step(fv_opt *o, float *params, const float *grads);
/* Zero the state (moments, step count). */
void fv_opt_reset(fv_opt *o);
/* The state as one float vector (for saving per-client state); *len floats, laid out as in
 * fv_opt_state_len. The pointer is into o (not a copy) and writable: copying a saved vector
 * (and the step count) back restores the optimizer exactly. NULL with *len 0 when stateless. */
float *fv_opt_state(fv_opt *o, size_t *len);
/* The learning rate the next step will use (after the schedule). */
float fv_opt_current_lr(const fv_opt *o);
/* Step counter (Adam bias correction). */
int64_t *fv_opt_step_count(fv_opt *o);

#endif
