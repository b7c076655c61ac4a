/* cudnn_conv.cu: 2-D convolution through cuDNN's convolution API, forward and backward, as an
 * alternative to conv2d.cu's cuBLAS + im2col path (contract in cuda_layers.h). cuDNN's implicit-
 * GEMM and Winograd-style kernels never write the im2col matrix, which for ResNet-20's 3x3 convs
 * is nine times the activation and dominates the im2col path's memory traffic.
 *
 * A plan fixes one shape (batch size included): descriptors and the algorithms, chosen once from
 * cuDNN's heuristics (cudnnGet*Algorithm_v7: no trial runs, no allocation), keeping the first
 * one that succeeds, is DETERMINISTIC (so graph replays equal uncaptured steps bit for bit and
 * runs repeat) and needs at most ws_limit bytes of workspace. Math is FP32 FMA: cuDNN would
 * otherwise use TF32 tensor cores for float convolutions on Ampere and later, which round the
 * inputs to 10 mantissa bits. The bias is added with cudnnAddTensor; its gradient uses
 * fv_cuda_channel_sum_add (fixed-order reduction). Calls enqueue work on the ctx's stream and can
 * be captured in a CUDA graph once the plan exists.
 * In a build without cuDNN every plan fails with "this build has no cuDNN".
 * Not here: choosing between cuDNN and im2col (cuda_net.cu), depthwise convs (conv2d.cu), trial-
 * run autotuning (cudnnFind*).
 * TF32 (fv_cuda_ctx_set_tf32, an explicit opt-in): plans made while the ctx allows it take
 * CUDNN_DEFAULT_MATH, which lets cuDNN use TF32 tensor cores on Ampere and later, and may pick
 * tensor-op algorithms; everything else (determinism, workspace limit) is as above.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda/common.cuh"

int fv_cudnn_available(const fv_cuda_ctx *x, char *why, size_t cap) {
    if (x->dnn) return 1;
    if (why && cap) snprintf(why, cap, "%s", x->dnn_why);
    return 0;
}

#ifdef FEDVIM_HAVE_CUDNN

#define FV_CUDNN_CHECK(call)                                                                       \
    do {                                                                                           \
        cudnnStatus_t fv_d_ = (call);                                                              \
        if (fv_d_ != CUDNN_STATUS_SUCCESS)                                                         \
            fv_die_at(__FILE__, __LINE__, "cuda:%d: cuDNN error in %s: %s",                        \
                      fv_cuda_current_device(), #call, cudnnGetErrorString(fv_d_));                \
    } while (0)

struct fv_cudnn_conv {
    fv_conv2d_shape s;
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws;
};

void fv_cudnn_version(char *buf, size_t cap) {
    const size_t v = cudnnGetVersion(); /* major * 10000 + minor * 100 + patch in cuDNN 9 */
    snprintf(buf, cap, "%zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
}

/* Whether an algorithm's math type is allowed: FP32 FMA only, unless the ctx allows TF32. */
static int math_ok(const fv_cuda_ctx *x, cudnnMathType_t m) {
    return x->tf32 || (m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

void fv_cudnn_conv_destroy(fv_cudnn_conv **pc) {
    if (!pc || !*pc) return;
    fv_cudnn_conv *c = *pc;
    if (c->xd) cudnnDestroyTensorDescriptor(c->xd);
    if (c->yd) cudnnDestroyTensorDescriptor(c->yd);
    if (c->bd) cudnnDestroyTensorDescriptor(c->bd);
    if (c->wd) cudnnDestroyFilterDescriptor(c->wd);
    if (c->cd) cudnnDestroyConvolutionDescriptor(c->cd);
    free(c);
    *pc = NULL;
}

fv_cudnn_conv *fv_cudnn_conv_new(const fv_cuda_ctx *x, const fv_conv2d_shape *s, size_t ws_limit,
                                 fv_err *e) {
    if (!x->dnn) {
        fv_err_set(e, "%s", x->dnn_why);
        return NULL;
    }
    cudnnHandle_t h = (cudnnHandle_t)x->dnn;
    fv_cudnn_conv *c = (fv_cudnn_conv *)fv_calloc(1, sizeof *c);
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    const char *failed = NULL;
    int on = 0, oc = 0, oh = 0, ow = 0, got = 0, ok = 0;
    size_t need = 0;
/* A shape cuDNN refuses is not fatal: the caller falls back to the im2col path. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((st = (call)) != CUDNN_STATUS_SUCCESS) {                                               \
            failed = #call;                                                                        \
            goto refused;                                                                          \
        }                                                                                          \
    } while (0)
    c->s = *s;
    TRY(cudnnCreateTensorDescriptor(&c->xd));
    TRY(cudnnCreateTensorDescriptor(&c->yd));
    TRY(cudnnCreateTensorDescriptor(&c->bd));
    TRY(cudnnCreateFilterDescriptor(&c->wd));
    TRY(cudnnCreateConvolutionDescriptor(&c->cd));
    TRY(cudnnSetTensor4dDescriptor(c->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->C, s->H,
                                   s->W));
    TRY(cudnnSetTensor4dDescriptor(c->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->K, s->OH,
                                   s->OW));
    TRY(cudnnSetTensor4dDescriptor(c->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, s->K, 1, 1));
    TRY(cudnnSetFilter4dDescriptor(c->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->K,
                                   s->C / s->groups, s->R, s->R));
    TRY(cudnnSetConvolution2dDescriptor(c->cd, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    TRY(cudnnSetConvolutionGroupCount(c->cd, s->groups));
    TRY(cudnnSetConvolutionMathType(c->cd, x->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    TRY(cudnnGetConvolution2dForwardOutputDim(c->cd, c->xd, c->wd, &on, &oc, &oh, &ow));
    FV_ASSERT(on == s->N && oc == s->K && oh == s->OH && ow == s->OW);

    {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        TRY(cudnnGetConvolutionForwardAlgorithm_v7(h, c->xd, c->wd, c->cd, c->yd,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
        for (int i = 0; i < got && !ok; i++) {
            const cudnnConvolutionFwdAlgoPerf_t *p = &perf[i];
            if (p->status != CUDNN_STATUS_SUCCESS || p->determinism != CUDNN_DETERMINISTIC ||
                !math_ok(x, p->mathType))
                continue;
            if (cudnnGetConvolutionForwardWorkspaceSize(h, c->xd, c->wd, c->cd, c->yd, p->algo,
                                                        &need) != CUDNN_STATUS_SUCCESS ||
                need > ws_limit)
                continue;
            c->fwd = p->algo, ok = 1;
            if (need > c->ws) c->ws = need;
        }
    }
    if (ok) {
        ok = 0;
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(
            h, c->wd, c->yd, c->cd, c->xd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, perf));
        for (int i = 0; i < got && !ok; i++) {
            const cudnnConvolutionBwdDataAlgoPerf_t *p = &perf[i];
            if (p->status != CUDNN_STATUS_SUCCESS || p->determinism != CUDNN_DETERMINISTIC ||
                !math_ok(x, p->mathType))
                continue;
            if (cudnnGetConvolutionBackwardDataWorkspaceSize(h, c->wd, c->yd, c->cd, c->xd, p->algo,
                                                             &need) != CUDNN_STATUS_SUCCESS ||
                need > ws_limit)
                continue;
            c->bwd_data = p->algo, ok = 1;
            if (need > c->ws) c->ws = need;
        }
    }
    if (ok) {
        ok = 0;
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            h, c->xd, c->yd, c->cd, c->wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, perf));
        for (int i = 0; i < got && !ok; i++) {
            const cudnnConvolutionBwdFilterAlgoPerf_t *p = &perf[i];
            if (p->status != CUDNN_STATUS_SUCCESS || p->determinism != CUDNN_DETERMINISTIC ||
                !math_ok(x, p->mathType))
                continue;
            if (cudnnGetConvolutionBackwardFilterWorkspaceSize(
                    h, c->xd, c->yd, c->cd, c->wd, p->algo, &need) != CUDNN_STATUS_SUCCESS ||
                need > ws_limit)
                continue;
            c->bwd_filter = p->algo, ok = 1;
            if (need > c->ws) c->ws = need;
        }
    }
    if (!ok) {
        fv_err_set(e,
                   "cuDNN has no deterministic FP32 algorithm within %zu bytes of workspace for "
                   "conv %dx%dx%dx%d -> %d, %dx%d stride %d pad %d groups %d",
                   ws_limit, s->N, s->C, s->H, s->W, s->K, s->R, s->R, s->stride, s->pad,
                   s->groups);
        fv_cudnn_conv_destroy(&c);
        return NULL;
    }
    return c;
refused:
    fv_err_set(e,
               "cuDNN refused conv %dx%dx%dx%d -> %d, %dx%d stride %d pad %d groups %d: %s in %s",
               s->N, s->C, s->H, s->W, s->K, s->R, s->R, s->stride, s->pad, s->groups,
               cudnnGetErrorString(st), failed);
    fv_cudnn_conv_destroy(&c);
    return NULL;
#undef TRY
}

size_t fv_cudnn_conv_workspace(const fv_cudnn_conv *c) { return c->ws; }

void fv_cudnn_conv_forward(const fv_cuda_ctx *x, const fv_cudnn_conv *c, float *out,
                           const float *inp, const float *w, const float *b, void *ws) {
    cudnnHandle_t h = (cudnnHandle_t)x->dnn;
    const float one = 1.0f, zero = 0.0f;
    FV_CUDNN_CHECK(cudnnConvolutionForward(h, &one, c->xd, inp, c->wd, w, c->cd, c->fwd, ws, c->ws,
                                           &zero, c->yd, out));
    if (b) FV_CUDNN_CHECK(cudnnAddTensor(h, &one, c->bd, b, &one, c->yd, out));
}

void fv_cudnn_conv_backward(const fv_cuda_ctx *x, const fv_cudnn_conv *c, float *dinp, float *dw,
                            float *db, const float *dout, const float *inp, const float *w,
                            void *ws) {
    cudnnHandle_t h = (cudnnHandle_t)x->dnn;
    const float one = 1.0f;
    const fv_conv2d_shape *s = &c->s;
    if (db) fv_cuda_channel_sum_add(x, db, dout, s->N, s->K, (size_t)s->OH * s->OW);
    if (dw)
        FV_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, c->xd, inp, c->yd, dout, c->cd,
                                                      c->bwd_filter, ws, c->ws, &one, c->wd, dw));
    if (dinp)
        FV_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, c->wd, w, c->yd, dout, c->cd,
                                                    c->bwd_data, ws, c->ws, &one, c->xd, dinp));
}

#else /* no cuDNN in this build */

struct fv_cudnn_conv {
    int unused;
};

void fv_cudnn_version(char *buf, size_t cap) { snprintf(buf, cap, "none"); }

fv_cudnn_conv *fv_cudnn_conv_new(const fv_cuda_ctx *x, const fv_conv2d_shape *s, size_t ws_limit,
                                 fv_err *e) {
    fv_err_set(e, "%s", x->dnn_why);
    return NULL;
}

void fv_cudnn_conv_destroy(fv_cudnn_conv **c) {
    if (c) *c = NULL;
}

size_t fv_cudnn_conv_workspace(const fv_cudnn_conv *c) { return 0; }

void fv_cudnn_conv_forward(const fv_cuda_ctx *x, const fv_cudnn_conv *c, float *out,
                           const float *inp, const float *w, const float *b, void *ws) {
    FV_DIE("this build has no cuDNN");
}

void fv_cudnn_conv_backward(const fv_cuda_ctx *x, const fv_cudnn_conv *c, float *dinp, float *dw,
                            float *db, const float *dout, const float *inp, const float *w,
                            void *ws) {
    FV_DIE("this build has no cuDNN");
}

#endif
