/* transformer.c: the token ops of a Vision Transformer, forward and backward (see layers.h):
 * layer norm, GELU, patch tokens (class token + position embedding), multi-head self-attention
 * and class-token selection. Tokens are [N, T, D] row-major (one row of D features per token).
 *
 * Threads: every op splits its work over OpenMP threads so that no element is written by two
 * threads and no sum is split between threads: row-wise work goes by rows, parameter-gradient
 * reductions go by columns (each column summed over rows in row order), attention goes by
 * (sample, head) pairs, each calling single-threaded OpenBLAS. Results are therefore bitwise
 * identical for any thread count.
 * Not here: the token-wise linear layer (linear.c over N*T rows), residual adds (activations.c),
 * masks (causal or padding), dropout inside attention.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"

/* Below this many floats of work a parallel region costs more than the loop. */
#define TF_OMP_MIN ((size_t)1 << 15)

/* This thread's share [*a, *b) of n items. */
static void my_share(int *a, int *b, int n) {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    *a = (int)((long)n * t / T), *b = (int)((long)n * (t + 1) / T);
}

/* ---- layer norm ---- */

void fv_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                          const float *b, int R, int D, float eps) {
    FV_ASSERT(R >= 1 && D >= 1);
#pragma omp parallel for schedule(static) if ((size_t)R * D >= TF_OMP_MIN)
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * D;
        float *o = out + (size_t)r * D;
        float m = 0.0f, v = 0.0f;
        for (int d = 0; d < D; d++) m += x[d];
        m /= (float)D;
        for (int d = 0; d < D; d++) {
            const float c = x[d] - m;
            v += c * c;
        }
        v /= (float)D;
        const float s = 1.0f / sqrtf(v + eps);
        for (int d = 0; d < D; d++) o[d] = (x[d] - m) * s * w[d] + b[d];
        mean[r] = m;
        rstd[r] = s;
    }
}

void fv_layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *mean, const float *rstd, const float *w, int R, int D) {
    FV_ASSERT(R >= 1 && D >= 1);
    const int par = (size_t)R * D >= TF_OMP_MIN;
    /* dw[d] += sum_r dout[r,d] xhat[r,d], db[d] += sum_r dout[r,d]: by columns, rows in order */
#pragma omp parallel if (par)
    {
        int d0, d1;
        my_share(&d0, &d1, D);
        for (int r = 0; r < R; r++) {
            const float *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
            const float m = mean[r], s = rstd[r];
            for (int d = d0; d < d1; d++) {
                dw[d] += g[d] * (x[d] - m) * s;
                db[d] += g[d];
            }
        }
    }
    if (!dinp) return;
    /* dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w */
#pragma omp parallel for schedule(static) if (par)
    for (int r = 0; r < R; r++) {
        const float *x = inp + (size_t)r * D, *g = dout + (size_t)r * D;
        float *dx = dinp + (size_t)r * D;
        const float m = mean[r], s = rstd[r];
        float a = 0.0f, bxh = 0.0f;
        for (int d = 0; d < D; d++) {
            const float dxh = g[d] * w[d];
            a += dxh;
            bxh += dxh * (x[d] - m) * s;
        }
        a /= (float)D;
        bxh /= (float)D;
        for (int d = 0; d < D; d++) dx[d] += s * (g[d] * w[d] - a - (x[d] - m) * s * bxh);
    }
}

/* ---- GELU (exact): x * Phi(x) ---- */

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT2PI 0.39894228040143267794f

void fv_gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static) if (n >= TF_OMP_MIN)
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * INV_SQRT2));
}

void fv_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (n >= TF_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float x = inp[i];
        const float g = 0.5f * (1.0f + erff(x * INV_SQRT2)) + x * INV_SQRT2PI * expf(-0.5f * x * x);
        dinp[i] += dout[i] * g;
    }
}

/* ---- patch tokens: class token, transpose, position embedding ---- */

void fv_tokens_forward(float *out, const float *inp, const float *cls, const float *pos, int N,
                       int D, int P) {
    FV_ASSERT(N >= 1 && D >= 1 && P >= 1);
    const int T = P + 1;
#pragma omp parallel for schedule(static) if ((size_t)N * T * D >= TF_OMP_MIN)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * T * D;
        const float *x = inp + (size_t)n * D * P;
        for (int d = 0; d < D; d++) o[d] = cls[d] + pos[d];
        for (int p = 0; p < P; p++) {
            float *op = o + (size_t)(1 + p) * D;
            const float *pp = pos + (size_t)(1 + p) * D;
            for (int d = 0; d < D; d++) op[d] = x[(size_t)d * P + p] + pp[d];
        }
    }
}

void fv_tokens_backward(float *dinp, float *dcls, float *dpos, const float *dout, int N, int D,
                        int P) {
    FV_ASSERT(N >= 1 && D >= 1 && P >= 1);
    const int T = P + 1;
    /* dpos[t,d] += sum_n dout[n,t,d] (n in order), by elements; dcls = the t = 0 row of that sum */
    const size_t TD = (size_t)T * D;
#pragma omp parallel if (N * TD >= TF_OMP_MIN)
    {
        int e0, e1;
        my_share(&e0, &e1, (int)TD);
        for (int n = 0; n < N; n++) {
            const float *g = dout + (size_t)n * TD;
            for (int e = e0; e < e1; e++) dpos[e] += g[e];
            for (int e = e0; e < e1 && e < D; e++) dcls[e] += g[e];
        }
    }
    if (!dinp) return;
#pragma omp parallel for schedule(static) if (N * TD >= TF_OMP_MIN)
    for (int n = 0; n < N; n++) {
        const float *g = dout + (size_t)n * TD;
        float *dx = dinp + (size_t)n * D * P;
        for (int p = 0; p < P; p++)
            for (int d = 0; d < D; d++) dx[(size_t)d * P + p] += g[(size_t)(1 + p) * D + d];
    }
}

/* ---- class-token selection ---- */

void fv_token_select_forward(float *out, const float *inp, int N, int T, int D, int t) {
    FV_ASSERT(t >= 0 && t < T);
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * D, inp + ((size_t)n * T + t) * D, (size_t)D * sizeof(float));
}

void fv_token_select_backward(float *dinp, const float *dout, int N, int T, int D, int t) {
    FV_ASSERT(t >= 0 && t < T);
    if (!dinp) return;
    for (int n = 0; n < N; n++) {
        float *dx = dinp + ((size_t)n * T + t) * D;
        const float *g = dout + (size_t)n * D;
        for (int d = 0; d < D; d++) dx[d] += g[d];
    }
}

/* ---- multi-head self-attention ---- */

/* One OpenMP thread per (sample, head) share unless OpenBLAS threads its own GEMMs. */
static int attn_threads(int N, int H, int T, int dh) {
    if ((size_t)N * H * T * T * dh < ((size_t)1 << 16) || openblas_get_num_threads() > 1) return 1;
    return omp_get_max_threads();
}

void fv_attention_forward(float *out, float *att, const float *qkv, int N, int T, int D, int H) {
    FV_ASSERT(N >= 1 && T >= 1 && H >= 1 && D % H == 0);
    const int dh = D / H, ld = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
#pragma omp parallel for schedule(static) num_threads(attn_threads(N, H, T, dh))
    for (int nh = 0; nh < N * H; nh++) {
        const int n = nh / H, h = nh % H;
        const float *q = qkv + (size_t)n * T * ld + (size_t)h * dh, *k = q + D, *v = q + 2 * D;
        float *a = att + (size_t)nh * T * T;
        /* a = scale * q k^T, then a row-wise softmax */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, scale, q, ld, k, ld, 0.0f, a, T);
        for (int i = 0; i < T; i++) {
            float *row = a + (size_t)i * T, mx = row[0], s = 0.0f;
            for (int j = 1; j < T; j++) mx = row[j] > mx ? row[j] : mx;
            for (int j = 0; j < T; j++) {
                row[j] = expf(row[j] - mx);
                s += row[j];
            }
            const float inv = 1.0f / s;
            for (int j = 0; j < T; j++) row[j] *= inv;
        }
        /* out[:, h*dh:(h+1)*dh] = a v */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.0f, a, T, v, ld, 0.0f,
                    out + (size_t)n * T * D + (size_t)h * dh, D);
    }
}

void fv_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                           float *scratch, int N, int T, int D, int H) {
    FV_ASSERT(N >= 1 && T >= 1 && H >= 1 && D % H == 0);
    const int dh = D / H, ld = 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
#pragma omp parallel for schedule(static) num_threads(attn_threads(N, H, T, dh))
    for (int nh = 0; nh < N * H; nh++) {
        const int n = nh / H, h = nh % H;
        const size_t o = (size_t)n * T * ld + (size_t)h * dh;
        const float *q = qkv + o, *k = q + D, *v = q + 2 * D;
        float *dq = dqkv + o, *dk = dq + D, *dv = dq + 2 * D;
        const float *a = att + (size_t)nh * T * T;
        const float *g = dout + (size_t)n * T * D + (size_t)h * dh;
        float *ds = scratch + (size_t)nh * T * T;
        /* dv += a^T g; da = g v^T */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.0f, a, T, g, D, 1.0f, dv, ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.0f, g, D, v, ld, 0.0f, ds, T);
        /* softmax backward: ds = a * (da - sum_j da * a) */
        for (int i = 0; i < T; i++) {
            float *r = ds + (size_t)i * T, s = 0.0f;
            const float *ar = a + (size_t)i * T;
            for (int j = 0; j < T; j++) s += r[j] * ar[j];
            for (int j = 0; j < T; j++) r[j] = ar[j] * (r[j] - s);
        }
        /* dq += scale ds k; dk += scale ds^T q */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, scale, ds, T, k, ld, 1.0f, dq, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, scale, ds, T, q, ld, 1.0f, dk, ld);
    }
}
