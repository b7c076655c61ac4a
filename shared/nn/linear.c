/* linear.c: fully connected layer out[N,Out] = inp[N,In] w[Out,In]^T + b[Out] (PyTorch's weight
 * layout), forward and backward through cblas_sgemm (see layers.h). Backward accumulates.
 *
 * Threads: like conv2d.c, the work is split over OpenMP threads, each calling single-threaded
 * OpenBLAS on its own rows: batch rows for out and dinp, output features for dw and db. No two
 * threads write the same element and no sum is split across threads, so results are bitwise
 * reproducible for a fixed thread count.
 * Not here: quantised weights, sparse inputs.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"

/* Below this many multiply-adds one thread does the whole GEMM. */
#define LINEAR_PAR_MIN_MACS ((size_t)1 << 17)

static int plan_threads(int N, int In, int Out) {
    if ((size_t)N * In * Out < LINEAR_PAR_MIN_MACS || openblas_get_num_threads() > 1) return 1;
    return omp_get_max_threads();
}

/* This thread's share [*a, *b) of n rows. */
static void my_rows(int *a, int *b, int n) {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    *a = (int)((long)n * t / T), *b = (int)((long)n * (t + 1) / T);
}

void fv_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int In,
                       int Out) {
    FV_ASSERT(N >= 1 && In >= 1 && Out >= 1);
#pragma omp parallel num_threads(plan_threads(N, In, Out))
    {
        int r0, r1;
        my_rows(&r0, &r1, N);
        if (r1 > r0) {
            if (b)
                for (int n = r0; n < r1; n++)
                    memcpy(out + (size_t)n * Out, b, (size_t)Out * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, Out, In, 1.0f,
                        inp + (size_t)r0 * In, In, w, In, b ? 1.0f : 0.0f, out + (size_t)r0 * Out,
                        Out);
        }
    }
}

void fv_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int In, int Out) {
    FV_ASSERT(N >= 1 && In >= 1 && Out >= 1);
#pragma omp parallel num_threads(plan_threads(N, In, Out))
    {
        int o0, o1, r0, r1;
        my_rows(&o0, &o1, Out);
        my_rows(&r0, &r1, N);
        /* dw[o0:o1, :] += dout[:, o0:o1]^T inp */
        if (dw && o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, In, N, 1.0f, dout + o0,
                        Out, inp, In, 1.0f, dw + (size_t)o0 * In, In);
        /* db[o] += sum_n dout[n, o], rows in order */
        if (db && dw)
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * Out;
                for (int o = o0; o < o1; o++) db[o] += g[o];
            }
        /* dinp[r0:r1, :] += dout[r0:r1, :] w */
        if (dinp && r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, In, Out, 1.0f,
                        dout + (size_t)r0 * Out, Out, w, In, 1.0f, dinp + (size_t)r0 * In, In);
    }
}
