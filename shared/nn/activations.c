/* activations.c: element-wise activations (ReLU, sigmoid, tanh) and the residual add, forward and
 * backward (see layers.h). Backward takes the forward OUTPUT and accumulates into dinp.
 * Every element is computed by exactly one thread with no reduction, so the results do not depend
 * on the thread count at all.
 * Not here: softmax (loss.c), anything with parameters.
 */
#include <math.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"

/* Below this many elements a parallel region costs more than the loop. The if clauses name
 * `parallel`: an unmodified if on `parallel for simd` also applies to the simd part (OpenMP 5.0),
 * and GCC then ran every loop below this size one element at a time. */
#define ACT_OMP_MIN ((size_t)1 << 15)

void fv_relu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void fv_relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (parallel : n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float g = dout[i]; /* loaded unconditionally so the select vectorises */
        dinp[i] += out[i] > 0.0f ? g : 0.0f;
    }
}

void fv_sigmoid_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}

void fv_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (parallel : n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void fv_tanh_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

void fv_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (parallel : n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void fv_add_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void fv_add_relu_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= ACT_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float s = a[i] + b[i];
        out[i] = s > 0.0f ? s : 0.0f;
    }
}

/* Per chunk of ADD_RELU_CHUNK elements (a stack buffer t): t = what ReLU's backward accumulates
 * into the add's zeroed output gradient (zero, then += out > 0 ? dout : 0: the same bits, a -0
 * becoming +0 as there; and the form GCC vectorises), then the add's backward: da += t, then
 * db += t (da == db: twice, in order), or da = t / db = t where set (t is never -0, so that is
 * what += into a zeroed buffer gives). Element-wise, so chunks and threads change no bit. */
#define ADD_RELU_CHUNK 1024
void fv_add_relu_backward(float *da, int set_a, float *db, int set_b, const float *dout, const float *out,
                          size_t n) {
    FV_ASSERT(!(da == db && da && (set_a || set_b)));
    if (!da && !db) return;
    const size_t chunks = (n + ADD_RELU_CHUNK - 1) / ADD_RELU_CHUNK;
#pragma omp parallel for schedule(static) if (n >= ACT_OMP_MIN)
    for (size_t k = 0; k < chunks; k++) {
        float t[ADD_RELU_CHUNK];
        const size_t a = k * ADD_RELU_CHUNK, len = n - a < ADD_RELU_CHUNK ? n - a : ADD_RELU_CHUNK;
        memset(t, 0, len * sizeof(float));
#pragma omp simd
        for (size_t i = 0; i < len; i++) {
            const float g = dout[a + i]; /* loaded unconditionally so the select vectorises */
            t[i] += out[a + i] > 0.0f ? g : 0.0f;
        }
        if (da && set_a) memcpy(da + a, t, len * sizeof(float));
        else if (da) {
#pragma omp simd
            for (size_t i = 0; i < len; i++) da[a + i] += t[i];
        }
        if (db && set_b) memcpy(db + a, t, len * sizeof(float));
        else if (db) {
#pragma omp simd
            for (size_t i = 0; i < len; i++) db[a + i] += t[i];
        }
    }
}
