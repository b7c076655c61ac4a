/* lbfgs.h: limited-memory BFGS in double precision, for the attacks' small smooth problems
 * (gradient inversion). The line search finds a step satisfying the strong Wolfe conditions by
 * bracketing and then zooming with safeguarded cubic interpolation (Nocedal & Wright 2006,
 * Algorithms 3.5 and 3.6). An optional box [lo, hi]^n is handled by projection: variables held
 * at a bound by their gradient are frozen for the iteration, the step follows the projected
 * path P(x + t d), and a curvature pair is stored only when s.y > 0.
 *
 * Also here: Adam on a box, for the same objective signature.
 * Not here: any model or attack logic; float32 optimizers for training (shared/nn/optim.h).
 */
#ifndef FV_LBFGS_H
#define FV_LBFGS_H

/* The objective: returns f(x) and SETS g[0..n) = grad f(x). x is never modified. A non-finite
 * return value is treated as "too far" by the line search. */
typedef double (*fv_lbfgs_fn)(void *ctx, const double *x, double *g, int n);

/* Optional progress hook, called after each iteration with the new value. Return nonzero to stop. */
typedef int (*fv_lbfgs_progress)(void *ctx, int iter, int evals, double f);

typedef struct {
    int m;              /* history pairs (default 10) */
    int max_iter;       /* iterations (default 500) */
    int max_evals;      /* objective evaluations (default 1.25 * max_iter + 20) */
    double gtol;        /* stop when max |projected gradient| <= gtol (default 1e-12) */
    double f_target;    /* stop when f <= f_target (default -HUGE_VAL: off) */
    double ftol_change; /* stop when |f_new - f| <= ftol_change * max(1, |f|) (default 1e-15) */
    double xtol;        /* stop when max |x_new - x| <= xtol (default 1e-14) */
    double c1, c2;      /* Wolfe constants (1e-4, 0.9) */
    int ls_max;         /* evaluations per line search (default 25) */
    int bounded;        /* 1: keep x in [lo, hi] */
    double lo, hi;
    fv_lbfgs_progress progress; /* may be NULL */
    void *progress_ctx;
} fv_lbfgs_cfg;

typedef enum {
    FV_LBFGS_GTOL = 0,     /* projected gradient small: converged */
    FV_LBFGS_TARGET,       /* f <= f_target */
    FV_LBFGS_FTOL,         /* no more progress in f */
    FV_LBFGS_XTOL,         /* no more progress in x */
    FV_LBFGS_MAX_ITER,
    FV_LBFGS_MAX_EVALS,
    FV_LBFGS_LS_FAIL,      /* no step decreased f along a descent direction, even after a restart */
    FV_LBFGS_STOPPED,      /* the progress hook asked to stop */
    FV_LBFGS_NONFINITE     /* f(x0) or grad f(x0) is not finite */
} fv_lbfgs_status;

typedef struct {
    fv_lbfgs_status status;
    int iters, evals;
    double f;     /* f at the returned x */
    double pgmax; /* max |projected gradient| at the returned x */
} fv_lbfgs_result;

/* The defaults listed above. */
fv_lbfgs_cfg fv_lbfgs_defaults(void);

/* A short name for a status ("gtol", "max_iter", ...). */
const char *fv_lbfgs_status_name(fv_lbfgs_status s);

/* Minimise f from x[0..n) (updated in place to the best point found; projected into the box
 * first if cfg->bounded). Never fails for a finite start: the status says why it stopped.
 * Workspace is allocated here (2 m n + 6 n doubles). */
fv_lbfgs_result fv_lbfgs_minimize(double *x, int n, fv_lbfgs_fn f, void *ctx, const fv_lbfgs_cfg *cfg);

typedef struct {
    int iters;          /* steps */
    double lr;          /* step size (default 0.1) */
    double beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    double lr_decay_at[3]; /* fractions of iters at which lr is multiplied by 0.1 (0: unused);
                              default 3/8, 5/8, 7/8 as common gradient-inversion schedules */
    int bounded;
    double lo, hi;
    double f_target;    /* stop when f <= f_target (default -HUGE_VAL) */
    fv_lbfgs_progress progress;
    void *progress_ctx;
} fv_adam_cfg;

fv_adam_cfg fv_adam_defaults(void);

/* Adam (bias-corrected) on x[0..n), clamping to the box after every step if bounded. x ends at
 * the best point seen. Returns the result with status MAX_ITER, TARGET, STOPPED or NONFINITE. */
fv_lbfgs_result fv_adam_minimize(double *x, int n, fv_lbfgs_fn f, void *ctx, const fv_adam_cfg *cfg);

#endif
