/* linear.c: fully connected layer out[N,O] = inp[N,I] w[O,I]^T + b[O] (PyTorch's weight layout),
 * forward and backward through cblas_sgemm (see layers.h). Backward accumulates (beta = 1).
 *
 * Threads: like conv2d.c, the work is split over OpenMP threads, each calling single-threaded
 * OpenBLAS on its own rows: batch rows for out and dinp, output features for dw and db. No two
 * threads write the same element and no sum is split, so results are bitwise the same for any
 * thread count.
 * Not here: quantised weights, sparse inputs.
 */
#include <cblas.h>
#undef I /* cblas.h pulls in <complex.h>, whose I clashes with our sizes */
#include <omp.h>
#include <string.h>

#include "fv_common.h"
#include "layers.h"

/* Below this many multiply-adds one thread does the whole GEMM. */
#define LINEAR_PAR_MIN_MACS ((size_t)1 << 17)

static int plan_threads(int N, int I, int O) {
    if ((size_t)N * I * O < LINEAR_PAR_MIN_MACS || openblas_get_num_threads() > 1) return 1;
    return omp_get_max_threads();
}

/* This thread's share [*a, *b) of n rows. */
static void my_rows(int *a, int *b, int n) {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    *a = (int)((long)n * t / T), *b = (int)((long)n * (t + 1) / T);
}

void fv_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int I,
                       int O) {
    FV_ASSERT(N >= 1 && I >= 1 && O >= 1);
#pragma omp parallel num_threads(plan_threads(N, I, O))
    {
        int r0, r1;
        my_rows(&r0, &r1, N);
        if (r1 > r0) {
            if (b)
                for (int n = r0; n < r1; n++) memcpy(out + (size_t)n * O, b, (size_t)O * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, O, I, 1.0f,
                        inp + (size_t)r0 * I, I, w, I, b ? 1.0f : 0.0f, out + (size_t)r0 * O, O);
        }
    }
}

void fv_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int I, int O) {
    FV_ASSERT(N >= 1 && I >= 1 && O >= 1);
#pragma omp parallel num_threads(plan_threads(N, I, O))
    {
        int o0, o1, r0, r1;
        my_rows(&o0, &o1, O);
        my_rows(&r0, &r1, N);
        /* dw[o0:o1, :] += dout[:, o0:o1]^T inp */
        if (o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, I, N, 1.0f, dout + o0, O, inp,
                        I, 1.0f, dw + (size_t)o0 * I, I);
        /* db[o] += sum_n dout[n, o], rows in order */
        if (db)
            for (int n = 0; n < N; n++) {
                const float *g = dout + (size_t)n * O;
                for (int o = o0; o < o1; o++) db[o] += g[o];
            }
        /* dinp[r0:r1, :] += dout[r0:r1, :] w */
        if (dinp && r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, I, O, 1.0f,
                        dout + (size_t)r0 * O, O, w, I, 1.0f, dinp + (size_t)r0 * I, I);
    }
}
