/* activations.cu: element-wise ReLU, sigmoid, tanh and the residual add on the GPU, forward and
 * backward; the CUDA twin of activations.c. Backward takes the forward OUTPUT and accumulates into
 * dinp. One thread per element in a grid-stride loop, no reductions. The backward passes spell
 * their rounding out with IEEE intrinsics (__fmul_rn, __fadd_rn: nvcc never fuses those into an
 * FMA), in activations.c's order, so they round as the CPU does; what differs is the forward's
 * device expf / tanhf (a few ulps).
 * Not here: softmax (loss.cu), anything with parameters.
 */
#include "cuda/common.cuh"

static __global__ void relu_fwd_kernel(float *out, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}
static __global__ void relu_bwd_kernel(float *dinp, const float *dout, const float *out, size_t n) {
    FV_GRID_STRIDE(i, n) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}
/* Kinks (net.h, fv_kinks): RECORD keeps mask = out > 0 (as net.c's relu_record); REPLAY passes
 * the input where the recorded mask is on; a REPLAY forward's backward goes through the mask. */
static __global__ void relu_rec_kernel(float *out, uint8_t *mask, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) {
        const float v = inp[i] > 0.0f ? inp[i] : 0.0f;
        out[i] = v;
        mask[i] = v > 0.0f;
    }
}
static __global__ void relu_replay_kernel(float *out, const uint8_t *mask, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) out[i] = mask[i] ? inp[i] : 0.0f;
}
static __global__ void relu_bwd_mask_kernel(float *dinp, const float *dout, const uint8_t *mask, size_t n) {
    FV_GRID_STRIDE(i, n) dinp[i] += mask[i] ? dout[i] : 0.0f;
}
static __global__ void sigmoid_fwd_kernel(float *out, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}
static __global__ void sigmoid_bwd_kernel(float *dinp, const float *dout, const float *out, size_t n) {
    FV_GRID_STRIDE(i, n)
    dinp[i] = __fadd_rn(dinp[i], __fmul_rn(__fmul_rn(dout[i], out[i]), __fsub_rn(1.0f, out[i])));
}
static __global__ void tanh_fwd_kernel(float *out, const float *inp, size_t n) {
    FV_GRID_STRIDE(i, n) out[i] = tanhf(inp[i]);
}
static __global__ void tanh_bwd_kernel(float *dinp, const float *dout, const float *out, size_t n) {
    FV_GRID_STRIDE(i, n)
    dinp[i] = __fadd_rn(dinp[i], __fmul_rn(dout[i], __fsub_rn(1.0f, __fmul_rn(out[i], out[i]))));
}
static __global__ void add_fwd_kernel(float *out, const float *a, const float *b, size_t n) {
    FV_GRID_STRIDE(i, n) out[i] = a[i] + b[i];
}
/* da and db may alias: the same thread adds twice, in order. */
static __global__ void add_bwd_kernel(float *da, float *db, const float *g, size_t n) {
    FV_GRID_STRIDE(i, n) {
        const float v = g[i];
        if (da) da[i] += v;
        if (db) db[i] += v;
    }
}

/* The residual add and the ReLU after it in one kernel each way (net.cu's fusion,
 * fv_net_fusable_relu): the same roundings as add then ReLU. Backward: the add's gradient is
 * what ReLU's backward would have accumulated into its zeroed output gradient, 0 + (mask ?
 * dout : 0), spelled out so that a -0 becomes +0 exactly as there. */
static __global__ void add_relu_fwd_kernel(float *out, const float *a, const float *b, size_t n) {
    FV_GRID_STRIDE(i, n) {
        const float s = a[i] + b[i];
        out[i] = s > 0.0f ? s : 0.0f;
    }
}
static __global__ void add_relu_bwd_kernel(float *da, float *db, const float *dout, const float *out, size_t n) {
    FV_GRID_STRIDE(i, n) {
        const float v = __fadd_rn(0.0f, out[i] > 0.0f ? dout[i] : 0.0f);
        if (da) da[i] += v;
        if (db) db[i] += v;
    }
}

#define LAUNCH(kernel, n, ...)                                                                     \
    do {                                                                                           \
        if ((n) == 0) return;                                                                      \
        kernel<<<fv_grid(x, (n), FV_THREADS), FV_THREADS, 0, x->stream>>>(__VA_ARGS__, (n));       \
        FV_CUDA_LAUNCHED();                                                                        \
    } while (0)

void fv_cuda_relu_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n) {
    LAUNCH(relu_fwd_kernel, n, out, inp);
}
void fv_cuda_relu_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, const float *out,
                           size_t n) {
    if (dinp) LAUNCH(relu_bwd_kernel, n, dinp, dout, out);
}
void fv_cuda_relu_forward_record(const fv_cuda_ctx *x, float *out, uint8_t *mask, const float *inp, size_t n) {
    LAUNCH(relu_rec_kernel, n, out, mask, inp);
}
void fv_cuda_relu_forward_replay(const fv_cuda_ctx *x, float *out, const uint8_t *mask, const float *inp,
                                 size_t n) {
    LAUNCH(relu_replay_kernel, n, out, mask, inp);
}
void fv_cuda_relu_backward_mask(const fv_cuda_ctx *x, float *dinp, const float *dout, const uint8_t *mask,
                                size_t n) {
    if (dinp) LAUNCH(relu_bwd_mask_kernel, n, dinp, dout, mask);
}
void fv_cuda_sigmoid_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n) {
    LAUNCH(sigmoid_fwd_kernel, n, out, inp);
}
void fv_cuda_sigmoid_backward(const fv_cuda_ctx *x, float *dinp, const float *dout,
                              const float *out, size_t n) {
    if (dinp) LAUNCH(sigmoid_bwd_kernel, n, dinp, dout, out);
}
void fv_cuda_tanh_forward(const fv_cuda_ctx *x, float *out, const float *inp, size_t n) {
    LAUNCH(tanh_fwd_kernel, n, out, inp);
}
void fv_cuda_tanh_backward(const fv_cuda_ctx *x, float *dinp, const float *dout, const float *out,
                           size_t n) {
    if (dinp) LAUNCH(tanh_bwd_kernel, n, dinp, dout, out);
}
void fv_cuda_add_forward(const fv_cuda_ctx *x, float *out, const float *a, const float *b,
                         size_t n) {
    LAUNCH(add_fwd_kernel, n, out, a, b);
}
void fv_cuda_add_backward(const fv_cuda_ctx *x, float *da, float *db, const float *g, size_t n) {
    if (da || db) LAUNCH(add_bwd_kernel, n, da, db, g);
}
void fv_cuda_add_relu_forward(const fv_cuda_ctx *x, float *out, const float *a, const float *b, size_t n) {
    LAUNCH(add_relu_fwd_kernel, n, out, a, b);
}
void fv_cuda_add_relu_backward(const fv_cuda_ctx *x, float *da, float *db, const float *dout, const float *out,
                               size_t n) {
    if (da || db) LAUNCH(add_relu_bwd_kernel, n, da, db, dout, out);
}
