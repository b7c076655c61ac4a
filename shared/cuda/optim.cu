/* optim.cu: SGD, Adam and ST-Adam on the GPU over one contiguous parameter vector; the CUDA twin
 * of optim.c, same formulas and the same state layout. The per-step scalars (the scheduled lr,
 * Adam's bias corrections) are computed on the device by a one-thread kernel from the device step
 * count, in double as optim.c computes them, so a captured training step needs nothing from the
 * host. Every element is independent: one thread each, no reductions. Also FedProx's proximal
 * gradient term.
 * Rounding: every + - * / and sqrt is spelled as an IEEE round-to-nearest intrinsic (__fadd_rn,
 * __fmul_rn, ...), in optim.c's order of operations. nvcc would otherwise fuse a * b + c into one
 * FMA (its default --fmad=true) while the CPU (gcc, ISO C, no FMA) rounds the product first: a
 * parameter then lands one ulp away every few hundred updates, which is far more than an update
 * of size lr moves it. Spelled out, a step on the GPU is optim.c's step bit for bit (up to the
 * device's double cos/pow in the step's scalars, which round to the same float in practice), so
 * a state vector moves between the CPU and the GPU optimizers without drift.
 * Not here: schedules other than optim.c's cosine decay, gradient clipping, AMSGrad.
 */
#include <math.h>

#include "cuda/common.cuh"

/* optim.c's fv_opt_current_lr from the current t, then t++, then Adam's scalars. */
static __global__ void opt_scalars_kernel(fv_cuda_opt_step_state *st, float lr0, long decay_steps,
                                   long warmup_steps, float beta1, float beta2) {
    int64_t t = st->t;
    double lrd = lr0;
    if (decay_steps > 0) {
        const double f = (double)(t < decay_steps ? t : decay_steps) / (double)decay_steps;
        lrd = 0.5 * lr0 * (1.0 + cos(3.14159265358979323846 * f));
    }
    if (warmup_steps > 0 && t < warmup_steps) lrd = lrd * (double)(t + 1) / (double)warmup_steps;
    const float lr = (float)lrd;
    t++;
    st->t = t;
    st->lr = lr;
    const double bc1 = 1.0 - pow((double)beta1, (double)t);
    const double bc2 = 1.0 - pow((double)beta2, (double)t);
    st->step_size = (float)(lr / bc1);
    st->bc2_sqrt = (float)sqrt(bc2);
}

static __global__ void sgd_kernel(float *p, float *b, const float *g, const fv_cuda_opt_step_state *st,
                           float wd, float mu, int nesterov, size_t n) {
    const float lr = st->lr;
    FV_GRID_STRIDE(i, n) {
        float d = g[i];
        if (wd != 0) d = __fadd_rn(d, __fmul_rn(wd, p[i]));
        if (b) {
            b[i] = __fadd_rn(__fmul_rn(mu, b[i]), d);
            d = nesterov ? __fadd_rn(d, __fmul_rn(mu, b[i])) : b[i];
        }
        p[i] = __fsub_rn(p[i], __fmul_rn(lr, d));
    }
}

static __global__ void adam_kernel(float *p, float *m, float *v, const float *g,
                            const fv_cuda_opt_step_state *st, float wd, float b1, float b2,
                            float eps, size_t n) {
    const float step_size = st->step_size, bc2_sqrt = st->bc2_sqrt;
    FV_GRID_STRIDE(i, n) {
        float d = g[i];
        if (wd != 0) d = __fadd_rn(d, __fmul_rn(wd, p[i]));
        m[i] = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(__fsub_rn(1.0f, b1), d));
        v[i] = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), d), d));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v[i]), bc2_sqrt), eps);
        p[i] = __fsub_rn(p[i], __fdiv_rn(__fmul_rn(step_size, m[i]), denom));
    }
}

static __global__ void stadam_kernel(float *p, float *m, float *v, float *u, const float *g,
                              const fv_cuda_opt_step_state *st, float wd, float b1, float b2,
                              float eps, float mu, size_t n) {
    const float lr = st->lr;
    FV_GRID_STRIDE(i, n) {
        float d = g[i];
        if (wd != 0) d = __fadd_rn(d, __fmul_rn(wd, p[i]));
        m[i] = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(__fsub_rn(1.0f, b1), d));
        v[i] = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), d), d));
        float step = __fdiv_rn(m[i], __fadd_rn(__fsqrt_rn(v[i]), eps));
        if (u) {
            u[i] = __fadd_rn(__fmul_rn(mu, u[i]), step);
            step = u[i];
        }
        p[i] = __fsub_rn(p[i], __fmul_rn(lr, step));
    }
}

static __global__ void prox_kernel(float *g, const float *p, const float *ref, float mu, size_t n) {
    FV_GRID_STRIDE(i, n) g[i] = __fadd_rn(g[i], __fmul_rn(mu, __fsub_rn(p[i], ref[i])));
}

void fv_cuda_opt_step(const fv_cuda_ctx *x, float *params, float *state, const float *grads,
                      fv_cuda_opt_step_state *ost, const fv_opt_cfg *c, size_t n) {
    fv_err e;
    if (fv_opt_cfg_check(c, &e) != 0) FV_DIE("fv_cuda_opt_step: invalid configuration: %s", e.msg);
    const size_t sl = fv_opt_state_len(c, n);
    FV_ASSERT(sl == 0 || state);
    opt_scalars_kernel<<<1, 1, 0, x->stream>>>(ost, c->lr, c->decay_steps, c->warmup_steps, c->beta1, c->beta2);
    FV_CUDA_LAUNCHED();
    if (!n) return;
    const unsigned grid = fv_grid(x, n, FV_THREADS);
    switch (c->kind) {
    case FV_OPT_SGD:
        sgd_kernel<<<grid, FV_THREADS, 0, x->stream>>>(params, sl ? state : NULL, grads, ost, c->wd,
                                                       c->momentum, c->nesterov, n);
        break;
    case FV_OPT_ADAM:
        adam_kernel<<<grid, FV_THREADS, 0, x->stream>>>(params, state, state + n, grads, ost, c->wd,
                                                        c->beta1, c->beta2, c->eps, n);
        break;
    case FV_OPT_STADAM:
        stadam_kernel<<<grid, FV_THREADS, 0, x->stream>>>(
            params, state, state + n, sl == 3 * n ? state + 2 * n : NULL, grads, ost, c->wd,
            c->beta1, c->beta2, c->eps, c->mu, n);
        break;
    }
    FV_CUDA_LAUNCHED();
}

static __global__ void corr_kernel(float *g, const float *corr, size_t n) {
    FV_GRID_STRIDE(i, n) g[i] = __fadd_rn(g[i], corr[i]);
}

void fv_cuda_corr_grad(const fv_cuda_ctx *x, float *grads, const float *corr, size_t n) {
    if (!n) return;
    corr_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(grads, corr, n);
    FV_CUDA_LAUNCHED();
}

void fv_cuda_prox_grad(const fv_cuda_ctx *x, float *grads, const float *params, const float *ref,
                       float mu, size_t n) {
    if (!n) return;
    prox_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(grads, params, ref, mu, n);
    FV_CUDA_LAUNCHED();
}

/* p[i] = base[i] + (float)(h * dir[i]) in double before the one rounding, as the CPU's
 * inversion passes (nn/trainer.c) set their parameters. */
static __global__ void inv_point_kernel(float *p, const float *base, const float *dir, double h, size_t n) {
    FV_GRID_STRIDE(i, n) p[i] = base[i] + (float)(h * (double)dir[i]);
}

void fv_cuda_inv_point(const fv_cuda_ctx *x, float *p, const float *base, const float *dir, double h, size_t n) {
    if (n == 0) return;
    inv_point_kernel<<<fv_grid(x, n, FV_THREADS), FV_THREADS, 0, x->stream>>>(p, base, dir, h, n);
    FV_CUDA_LAUNCHED();
}
