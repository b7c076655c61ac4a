/* linear.c: fully connected layer out[N,O] = inp[N,I] w[O,I]^T + b[O] (PyTorch's weight layout),
 * forward and backward through cblas_sgemm (see layers.h). Backward accumulates (beta = 1).
 * Not here: bias-free variants beyond b == NULL, quantised weights.
 */
#include <cblas.h>
#undef I /* cblas.h pulls in <complex.h>, whose I clashes with our sizes */
#include <string.h>

#include "fv_common.h"
#include "layers.h"

void fv_linear_forward(float *out, const float *inp, const float *w, const float *b, int N, int I,
                       int O) {
    FV_ASSERT(N >= 1 && I >= 1 && O >= 1);
    if (b)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * O, b, (size_t)O * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, O, I, 1.0f, inp, I, w, I, b ? 1.0f : 0.0f,
                out, O);
}

void fv_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int N, int I, int O) {
    FV_ASSERT(N >= 1 && I >= 1 && O >= 1);
    /* dw[O x I] += dout[N x O]^T inp[N x I] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, N, 1.0f, dout, O, inp, I, 1.0f, dw, I);
    /* db[o] += sum_n dout[n, o], rows in order */
    if (db)
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * O;
            for (int o = 0; o < O; o++) db[o] += g[o];
        }
    /* dinp[N x I] += dout[N x O] w[O x I] */
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, I, O, 1.0f, dout, O, w, I, 1.0f,
                    dinp, I);
}
