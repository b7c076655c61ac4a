/* activations.c: element-wise activations (ReLU, sigmoid, tanh) and the residual add, forward and
 * backward (see layers.h). Backward takes the forward OUTPUT and accumulates into dinp.
 * Every element is computed by exactly one thread with no reduction, so the results do not depend
 * on the thread count at all.
 * Not here: softmax (loss.c), anything with parameters.
 */
#include <math.h>

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
