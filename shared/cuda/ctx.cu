/* cuda_ctx.cu: fv_cuda_ctx (a device, a stream, a cuBLAS handle with its own workspace) and the
 * device-memory helpers of cuda_layers.h.
 * Not here: kernels (one .cu per op family), the device model (cuda_net.cu).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda/common.cuh"

int fv_cuda_device_count(void) {
    int n = 0;
    cudaError_t r = cudaGetDeviceCount(&n);
    if (r != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n > 0 ? n : 0;
}

fv_cuda_ctx *fv_cuda_ctx_new(int device, fv_err *e) {
    int n = 0;
    const cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n <= 0) {
        /* the runtime's own reason first: "CUDA driver version is insufficient for CUDA runtime
         * version" (a driver older than this build's CUDA) must not read as "no GPU" */
        fv_err_set(e,
                   "cuda:%d: no CUDA device is available: the CUDA runtime says \"%s\" (no GPU, "
                   "no driver or one older than this build's CUDA, or CUDA_VISIBLE_DEVICES hides "
                   "them)",
                   device, rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices");
        (void)cudaGetLastError();
        return NULL;
    }
    if (device < 0 || device >= n) {
        fv_err_set(e, "cuda:%d: no such device (this machine has %d: cuda:0..cuda:%d)", device, n,
                   n - 1);
        return NULL;
    }
    cudaError_t r = cudaSetDevice(device);
    if (r == cudaSuccess) {
        /* Block in synchronising calls instead of spinning: several worker processes share one
         * GPU and each waits for it. Refused once the context exists (another ctx on this device
         * in this process set it already, or the caller did): keep whatever is in force. */
        cudaError_t f = cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync);
        if (f != cudaSuccess) (void)cudaGetLastError();
        r = cudaFree(0); /* create the context now, so that failures show here */
    }
    if (r != cudaSuccess) {
        fv_err_set(e, "cuda:%d: cannot initialise the device: %s", device, cudaGetErrorString(r));
        (void)cudaGetLastError();
        return NULL;
    }
    fv_cuda_ctx *x = (fv_cuda_ctx *)fv_calloc(1, sizeof *x);
    x->device = device;
    cudaDeviceProp prop;
    FV_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    x->sms = prop.multiProcessorCount;
    FV_CUDA_CHECK(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking));
    cublasStatus_t s = cublasCreate(&x->blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        fv_err_set(e, "cuda:%d: cannot initialise cuBLAS: %s", device, cublasGetStatusString(s));
        FV_CUDA_CHECK(cudaStreamDestroy(x->stream));
        free(x);
        return NULL;
    }
    x->blas_ws = fv_cuda_try_alloc(x, FV_CUBLAS_WS, "the cuBLAS workspace", e);
    if (!x->blas_ws) {
        cublasDestroy(x->blas);
        FV_CUDA_CHECK(cudaStreamDestroy(x->stream));
        free(x);
        return NULL;
    }
    FV_CUBLAS_CHECK(cublasSetStream(x->blas, x->stream));
    FV_CUBLAS_CHECK(cublasSetWorkspace(x->blas, x->blas_ws, FV_CUBLAS_WS));
    FV_CUBLAS_CHECK(cublasSetMathMode(x->blas, CUBLAS_DEFAULT_MATH));
    FV_CUBLAS_CHECK(cublasSetPointerMode(x->blas, CUBLAS_POINTER_MODE_HOST));
#ifdef FEDVIM_HAVE_CUDNN
    /* cuDNN is an accelerator, not a requirement: without it convolutions use cuBLAS */
    cudnnHandle_t h = NULL;
    cudnnStatus_t ds = cudnnCreate(&h);
    if (ds == CUDNN_STATUS_SUCCESS) ds = cudnnSetStream(h, x->stream);
    if (ds == CUDNN_STATUS_SUCCESS) {
        x->dnn = h;
    } else {
        if (h) cudnnDestroy(h);
        snprintf(x->dnn_why, sizeof x->dnn_why, "cuda:%d: cuDNN did not initialise: %s", device,
                 cudnnGetErrorString(ds));
        (void)cudaGetLastError();
    }
#else
    snprintf(x->dnn_why, sizeof x->dnn_why, "this build has no cuDNN");
#endif
    return x;
}

void fv_cuda_ctx_destroy(fv_cuda_ctx **px) {
    if (!px || !*px) return;
    fv_cuda_ctx *x = *px;
    FV_CUDA_CHECK(cudaSetDevice(x->device));
    FV_CUDA_CHECK(cudaStreamSynchronize(x->stream));
#ifdef FEDVIM_HAVE_CUDNN
    if (x->dnn) cudnnDestroy((cudnnHandle_t)x->dnn);
#endif
    FV_CUBLAS_CHECK(cublasDestroy(x->blas));
    fv_cuda_free(x, x->blas_ws);
    FV_CUDA_CHECK(cudaStreamDestroy(x->stream));
    free(x);
    *px = NULL;
}

int fv_cuda_ctx_device(const fv_cuda_ctx *x) { return x->device; }

void fv_cuda_ctx_set_tf32(fv_cuda_ctx *x, int on) {
    FV_CUDA_CHECK(cudaSetDevice(x->device));
    x->tf32 = on != 0;
    FV_CUBLAS_CHECK(cublasSetMathMode(x->blas, x->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

int fv_cuda_ctx_tf32(const fv_cuda_ctx *x) { return x->tf32; }

void fv_cuda_ctx_sync(const fv_cuda_ctx *x) { FV_CUDA_CHECK(cudaStreamSynchronize(x->stream)); }

void fv_cuda_ctx_describe(const fv_cuda_ctx *x, char *buf, size_t cap) {
    cudaDeviceProp prop;
    FV_CUDA_CHECK(cudaGetDeviceProperties(&prop, x->device));
    snprintf(buf, cap, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

void *fv_cuda_try_alloc(const fv_cuda_ctx *x, size_t bytes, const char *what, fv_err *e) {
    void *p = NULL;
    cudaError_t r = cudaMalloc(&p, bytes ? bytes : 256);
    if (r != cudaSuccess) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) (void)cudaGetLastError();
        fv_err_set(e,
                   "cuda:%d: cannot allocate %.1f MiB for %s (%s; %.1f of %.1f MiB free: other "
                   "processes may share this GPU)",
                   x->device, (double)bytes / 1048576.0, what, cudaGetErrorString(r),
                   (double)fr / 1048576.0, (double)tot / 1048576.0);
        return NULL;
    }
    return p;
}

void *fv_cuda_alloc(const fv_cuda_ctx *x, size_t bytes) {
    fv_err e;
    void *p = fv_cuda_try_alloc(x, bytes, "a device buffer", &e);
    if (!p) FV_DIE("%s", e.msg);
    return p;
}

void fv_cuda_free(const fv_cuda_ctx *x, void *p) {
    if (!p) return;
    /* The contract says x's work is finished first; cudaFree waits in practice, but the runtime
     * documents no such guarantee, and callers (shard and order buffers) free memory that work
     * still in flight reads. cudaFree from this thread is allowed while another thread captures
     * a graph in cudaStreamCaptureModeThreadLocal (net.cu); a device-wide synchronisation is not. */
    FV_CUDA_CHECK(cudaSetDevice(x->device));
    FV_CUDA_CHECK(cudaStreamSynchronize(x->stream));
    FV_CUDA_CHECK(cudaFree(p));
}

void fv_cuda_upload(const fv_cuda_ctx *x, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    FV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, x->stream));
    FV_CUDA_CHECK(cudaStreamSynchronize(x->stream));
}

void fv_cuda_download(const fv_cuda_ctx *x, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    FV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, x->stream));
    FV_CUDA_CHECK(cudaStreamSynchronize(x->stream));
}

void fv_cuda_memset(const fv_cuda_ctx *x, void *dst, int byte, size_t bytes) {
    if (bytes) FV_CUDA_CHECK(cudaMemsetAsync(dst, byte, bytes, x->stream));
}

void fv_cuda_copy(const fv_cuda_ctx *x, void *dst, const void *src, size_t bytes) {
    if (bytes) FV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, x->stream));
}
