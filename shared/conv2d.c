/* conv2d.c: 2-D convolution on the CPU, forward and backward (see layers.h for the contract).
 *
 * Three paths, chosen from the shape alone:
 *  - general: im2col over a chunk of images, one cblas_sgemm per group, scatter to NCHW. The
 *    column matrix of a chunk is col[C*R*R x nb*OH*OW] (rows ordered c, ky, kx, so the rows of
 *    group g are one contiguous block); a chunk is as many images as fit the scratch budget, the
 *    whole batch for small models, so that each GEMM is large enough to thread well.
 *  - 1x1, stride 1, no padding: the input planes already are the column matrix; one GEMM per
 *    image and group straight on inp/out, no scratch.
 *  - depthwise (groups == C == K): a direct loop per plane; a GEMM with one row is all overhead.
 * Backward accumulates (+=) into dinp, dw and db like every kernel in layers.h.
 *
 * Determinism: OpenBLAS splits a GEMM over its output, never over the reduction, and the OpenMP
 * loops here give every output element to exactly one thread with a fixed summation order, so
 * results are bitwise reproducible for a fixed thread count.
 * Not here: Winograd/FFT variants, dilation, non-square kernels, the CUDA twin (conv2d.cu).
 */
#include <cblas.h>
#undef I /* cblas.h pulls in <complex.h>, whose I clashes with our sizes */
#include <string.h>

#include "fv_common.h"
#include "layers.h"

/* Scratch per chunk is capped at this many floats (16 MiB): big enough to hold a LeNet or small
 * CNN batch of 64-128 images in one GEMM, small enough to stay near the last-level cache. */
#define CONV_SCRATCH_BUDGET ((size_t)4 << 20)
/* Below this many floats of work an OpenMP loop costs more than it saves. */
#define CONV_OMP_MIN 16384

void fv_conv2d_shape_init(fv_conv2d_shape *s, int N, int C, int H, int W, int K, int R, int stride,
                          int pad, int groups) {
    FV_ASSERT(N >= 1 && C >= 1 && H >= 1 && W >= 1 && K >= 1 && R >= 1);
    FV_ASSERT(stride >= 1 && pad >= 0 && groups >= 1);
    FV_ASSERT(C % groups == 0 && K % groups == 0);
    FV_ASSERT(H + 2 * pad >= R && W + 2 * pad >= R);
    s->N = N, s->C = C, s->H = H, s->W = W, s->K = K, s->R = R;
    s->stride = stride, s->pad = pad, s->groups = groups;
    s->OH = (H + 2 * pad - R) / stride + 1;
    s->OW = (W + 2 * pad - R) / stride + 1;
}

static int is_pointwise(const fv_conv2d_shape *s) { return s->R == 1 && s->stride == 1 && s->pad == 0; }

static int is_depthwise(const fv_conv2d_shape *s) { return s->groups == s->C && s->groups == s->K; }

/* Images per chunk of the general path: as many as fit the budget, then evened out so the last
 * chunk is not a sliver. */
static int chunk_images(const fv_conv2d_shape *s) {
    size_t per_img = ((size_t)s->C * s->R * s->R + (size_t)s->K) * (size_t)s->OH * s->OW;
    size_t nb = CONV_SCRATCH_BUDGET / per_img;
    if (nb < 1) nb = 1;
    if (nb >= (size_t)s->N) return s->N;
    size_t nchunks = ((size_t)s->N + nb - 1) / nb;
    return (int)(((size_t)s->N + nchunks - 1) / nchunks);
}

/* col (reused as dcol in backward) plus the K rows of GEMM output / gathered dout, for the largest
 * chunk any batch of at most N images uses: callers size one buffer for their largest batch. */
size_t fv_conv2d_scratch_floats(const fv_conv2d_shape *s) {
    if (is_pointwise(s) || is_depthwise(s)) return 0;
    size_t per_img = ((size_t)s->C * s->R * s->R + (size_t)s->K) * (size_t)s->OH * s->OW;
    size_t nb = CONV_SCRATCH_BUDGET / per_img;
    if (nb < 1) nb = 1;
    if (nb > (size_t)s->N) nb = (size_t)s->N;
    return per_img * nb;
}

/* Output positions o in [*lo, *hi) whose input coordinate o*stride - pad + k lies in [0, size). */
static void valid_range(int *lo, int *hi, int k, int pad, int stride, int size, int out_size) {
    int a = pad - k;              /* o*stride >= a */
    int b = size - 1 + pad - k;   /* o*stride <= b */
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > out_size) h = out_size;
    if (l > h) l = h;
    *lo = l, *hi = h;
}

/* col[C*R*R x nb*P] from inp[nb, C, H, W] (P = OH*OW). */
static void im2col(float *col, const float *inp, int nb, const fv_conv2d_shape *s) {
    const int C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW;
    const size_t P = (size_t)OH * OW, ld = (size_t)nb * P;
    const int rows = C * R * R;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)rows * ld >= CONV_OMP_MIN)
    for (int row = 0; row < rows; row++) {
        for (int n = 0; n < nb; n++) {
            const int c = row / (R * R), ky = row / R % R, kx = row % R;
            const float *src = inp + ((size_t)n * C + c) * H * W;
            float *dst = col + (size_t)row * ld + (size_t)n * P;
            int oy0, oy1, ox0, ox1;
            valid_range(&oy0, &oy1, ky, pad, st, H, OH);
            valid_range(&ox0, &ox1, kx, pad, st, W, OW);
            if (ox0 == ox1) oy0 = oy1 = OH; /* this tap never sees the image: all zeros */
            memset(dst, 0, (size_t)oy0 * OW * sizeof(float));
            for (int oy = oy0; oy < oy1; oy++) {
                float *d = dst + (size_t)oy * OW;
                const float *srow = src + (size_t)(oy * st - pad + ky) * W + (ox0 * st - pad + kx);
                for (int ox = 0; ox < ox0; ox++) d[ox] = 0.0f;
                if (st == 1) {
                    memcpy(d + ox0, srow, (size_t)(ox1 - ox0) * sizeof(float));
                } else {
                    for (int i = 0; i < ox1 - ox0; i++) d[ox0 + i] = srow[i * st];
                }
                for (int ox = ox1; ox < OW; ox++) d[ox] = 0.0f;
            }
            memset(dst + (size_t)oy1 * OW, 0, (size_t)(OH - oy1) * OW * sizeof(float));
        }
    }
}

/* dinp[nb, C, H, W] += col2im(dcol[C*R*R x nb*P]). One thread per input plane. */
static void col2im_add(float *dinp, const float *dcol, int nb, const fv_conv2d_shape *s) {
    const int C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW;
    const size_t P = (size_t)OH * OW, ld = (size_t)nb * P;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)C * R * R * ld >= CONV_OMP_MIN)
    for (int n = 0; n < nb; n++) {
        for (int c = 0; c < C; c++) {
            float *dst = dinp + ((size_t)n * C + c) * H * W;
            for (int ky = 0; ky < R; ky++) {
                int oy0, oy1;
                valid_range(&oy0, &oy1, ky, pad, st, H, OH);
                for (int kx = 0; kx < R; kx++) {
                    int ox0, ox1;
                    valid_range(&ox0, &ox1, kx, pad, st, W, OW);
                    if (ox0 == ox1) continue;
                    const float *src = dcol + (size_t)((c * R + ky) * R + kx) * ld + (size_t)n * P;
                    for (int oy = oy0; oy < oy1; oy++) {
                        float *drow = dst + (size_t)(oy * st - pad + ky) * W + (ox0 * st - pad + kx);
                        const float *srow = src + (size_t)oy * OW + ox0;
                        if (st == 1) {
#pragma omp simd
                            for (int i = 0; i < ox1 - ox0; i++) drow[i] += srow[i];
                        } else {
                            for (int i = 0; i < ox1 - ox0; i++) drow[i * st] += srow[i];
                        }
                    }
                }
            }
        }
    }
}

/* out[nb, K, P] = tmp[K x nb*P] + b[K]. */
static void scatter_out(float *out, const float *tmp, const float *b, int nb, int K, size_t P) {
    const size_t ld = (size_t)nb * P;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)K * ld >= CONV_OMP_MIN)
    for (int n = 0; n < nb; n++) {
        for (int k = 0; k < K; k++) {
            float *d = out + ((size_t)n * K + k) * P;
            const float *src = tmp + (size_t)k * ld + (size_t)n * P;
            const float bk = b ? b[k] : 0.0f;
#pragma omp simd
            for (size_t p = 0; p < P; p++) d[p] = src[p] + bk;
        }
    }
}

/* dg[K x nb*P] from dout[nb, K, P]. */
static void gather_dout(float *dg, const float *dout, int nb, int K, size_t P) {
    const size_t ld = (size_t)nb * P;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)K * ld >= CONV_OMP_MIN)
    for (int k = 0; k < K; k++)
        for (int n = 0; n < nb; n++)
            memcpy(dg + (size_t)k * ld + (size_t)n * P, dout + ((size_t)n * K + k) * P,
                   P * sizeof(float));
}

/* out[n, k, :] += b[k] for every image and channel. */
static void add_bias(float *out, const float *b, int N, int K, size_t P) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * K * P >= CONV_OMP_MIN)
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            float *d = out + ((size_t)n * K + k) * P;
            const float bk = b[k];
#pragma omp simd
            for (size_t p = 0; p < P; p++) d[p] += bk;
        }
    }
}

/* db[k] += sum over images and positions of dout[n, k, :], in a fixed order per k. */
static void bias_grad(float *db, const float *dout, int N, int K, size_t P) {
#pragma omp parallel for schedule(static) if ((size_t)N * K * P >= CONV_OMP_MIN)
    for (int k = 0; k < K; k++) {
        float acc = 0.0f;
        for (int n = 0; n < N; n++) {
            const float *d = dout + ((size_t)n * K + k) * P;
            float part = 0.0f;
            for (size_t p = 0; p < P; p++) part += d[p];
            acc += part;
        }
        db[k] += acc;
    }
}

/* ---- depthwise: one R x R filter per channel, weight [C, 1, R, R] ---- */

static void dw_forward(float *out, const float *inp, const float *w, const float *b,
                       const fv_conv2d_shape *s) {
    const int N = s->N, C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW;
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * OH * OW * R * R >= CONV_OMP_MIN)
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const float *src = inp + ((size_t)n * C + c) * H * W;
            float *dst = out + ((size_t)n * C + c) * OH * OW;
            const float bc = b ? b[c] : 0.0f;
            for (size_t p = 0; p < (size_t)OH * OW; p++) dst[p] = bc;
            for (int ky = 0; ky < R; ky++) {
                int oy0, oy1;
                valid_range(&oy0, &oy1, ky, pad, st, H, OH);
                for (int kx = 0; kx < R; kx++) {
                    int ox0, ox1;
                    valid_range(&ox0, &ox1, kx, pad, st, W, OW);
                    if (ox0 == ox1) continue;
                    const float wv = w[((size_t)c * R + ky) * R + kx];
                    for (int oy = oy0; oy < oy1; oy++) {
                        const float *srow = src + (size_t)(oy * st - pad + ky) * W + (ox0 * st - pad + kx);
                        float *drow = dst + (size_t)oy * OW + ox0;
                        if (st == 1) {
#pragma omp simd
                            for (int i = 0; i < ox1 - ox0; i++) drow[i] += wv * srow[i];
                        } else {
                            for (int i = 0; i < ox1 - ox0; i++) drow[i] += wv * srow[i * st];
                        }
                    }
                }
            }
        }
    }
}

/* One thread per channel: it owns dw[c], db[c] and the dinp planes of channel c. */
static void dw_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const fv_conv2d_shape *s) {
    const int N = s->N, C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW;
#pragma omp parallel for schedule(static) if ((size_t)N * C * OH * OW * R * R >= CONV_OMP_MIN)
    for (int c = 0; c < C; c++) {
        for (int n = 0; n < N; n++) {
            const float *src = inp + ((size_t)n * C + c) * H * W;
            const float *g = dout + ((size_t)n * C + c) * OH * OW;
            float *di = dinp ? dinp + ((size_t)n * C + c) * H * W : NULL;
            if (db) {
                float acc = 0.0f;
                for (size_t p = 0; p < (size_t)OH * OW; p++) acc += g[p];
                db[c] += acc;
            }
            for (int ky = 0; ky < R; ky++) {
                int oy0, oy1;
                valid_range(&oy0, &oy1, ky, pad, st, H, OH);
                for (int kx = 0; kx < R; kx++) {
                    int ox0, ox1;
                    valid_range(&ox0, &ox1, kx, pad, st, W, OW);
                    if (ox0 == ox1) continue;
                    const size_t wi = ((size_t)c * R + ky) * R + kx;
                    const float wv = w[wi];
                    float acc = 0.0f;
                    for (int oy = oy0; oy < oy1; oy++) {
                        const size_t off = (size_t)(oy * st - pad + ky) * W + (size_t)(ox0 * st - pad + kx);
                        const float *srow = src + off;
                        const float *grow = g + (size_t)oy * OW + ox0;
                        for (int i = 0; i < ox1 - ox0; i++) acc += grow[i] * srow[i * st];
                        if (di) {
                            float *drow = di + off;
                            for (int i = 0; i < ox1 - ox0; i++) drow[i * st] += wv * grow[i];
                        }
                    }
                    dw[wi] += acc;
                }
            }
        }
    }
}

/* ---- 1x1, stride 1, no padding: per image out[n] (K x HW) = w (K x C) inp[n] (C x HW) ---- */

static void pw_forward(float *out, const float *inp, const float *w, const float *b,
                       const fv_conv2d_shape *s) {
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int P = s->H * s->W;
    for (int n = 0; n < s->N; n++) {
        for (int g = 0; g < G; g++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Kg, P, Cg, 1.0f,
                        w + (size_t)g * Kg * Cg, Cg, inp + ((size_t)n * s->C + (size_t)g * Cg) * P, P,
                        0.0f, out + ((size_t)n * s->K + (size_t)g * Kg) * P, P);
        }
    }
    if (b) add_bias(out, b, s->N, s->K, (size_t)P);
}

static void pw_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const fv_conv2d_shape *s) {
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int P = s->H * s->W;
    for (int n = 0; n < s->N; n++) {
        for (int g = 0; g < G; g++) {
            const float *dg = dout + ((size_t)n * s->K + (size_t)g * Kg) * P;
            const size_t ioff = ((size_t)n * s->C + (size_t)g * Cg) * P;
            /* dw_g[Kg x Cg] += dout_g[Kg x P] inp_g[Cg x P]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, Cg, P, 1.0f, dg, P, inp + ioff, P,
                        1.0f, dw + (size_t)g * Kg * Cg, Cg);
            /* dinp_g[Cg x P] += w_g[Kg x Cg]^T dout_g[Kg x P] */
            if (dinp)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cg, P, Kg, 1.0f,
                            w + (size_t)g * Kg * Cg, Cg, dg, P, 1.0f, dinp + ioff, P);
        }
    }
}

/* ---- public entry points ---- */

void fv_conv2d_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                       const fv_conv2d_shape *s) {
    if (is_depthwise(s)) {
        dw_forward(out, inp, w, b, s);
        return;
    }
    if (is_pointwise(s)) {
        pw_forward(out, inp, w, b, s);
        return;
    }
    FV_ASSERT(scratch != NULL);
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G, RR = s->R * s->R;
    const int CRR = Cg * RR; /* GEMM reduction length per group */
    const size_t P = (size_t)s->OH * s->OW, in_img = (size_t)s->C * s->H * s->W;
    const int nb_max = chunk_images(s);
    float *col = scratch;
    float *tmp = scratch + (size_t)s->C * RR * nb_max * P;
    for (int n0 = 0; n0 < s->N; n0 += nb_max) {
        const int nb = s->N - n0 < nb_max ? s->N - n0 : nb_max;
        const size_t ld = (size_t)nb * P;
        im2col(col, inp + (size_t)n0 * in_img, nb, s);
        /* With one image the GEMM output already is the NCHW output: write it in place. */
        float *dst = nb == 1 ? out + (size_t)n0 * s->K * P : tmp;
        for (int g = 0; g < G; g++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Kg, (int)ld, CRR, 1.0f,
                        w + (size_t)g * Kg * CRR, CRR, col + (size_t)g * CRR * ld, (int)ld, 0.0f,
                        dst + (size_t)g * Kg * ld, (int)ld);
        }
        if (nb == 1) {
            if (b) add_bias(dst, b, 1, s->K, P);
        } else {
            scatter_out(out + (size_t)n0 * s->K * P, tmp, b, nb, s->K, P);
        }
    }
}

void fv_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, float *scratch, const fv_conv2d_shape *s) {
    const size_t P = (size_t)s->OH * s->OW;
    if (is_depthwise(s)) {
        dw_backward(dinp, dw, db, dout, inp, w, s);
        return;
    }
    if (db) bias_grad(db, dout, s->N, s->K, P);
    if (is_pointwise(s)) {
        pw_backward(dinp, dw, dout, inp, w, s);
        return;
    }
    FV_ASSERT(scratch != NULL);
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G, RR = s->R * s->R;
    const int CRR = Cg * RR;
    const size_t in_img = (size_t)s->C * s->H * s->W;
    const int nb_max = chunk_images(s);
    float *col = scratch; /* im2col of the chunk, then reused for dcol */
    float *dgbuf = scratch + (size_t)s->C * RR * nb_max * P;
    for (int n0 = 0; n0 < s->N; n0 += nb_max) {
        const int nb = s->N - n0 < nb_max ? s->N - n0 : nb_max;
        const size_t ld = (size_t)nb * P;
        const float *dg = dout + (size_t)n0 * s->K * P;
        if (nb > 1) {
            gather_dout(dgbuf, dg, nb, s->K, P);
            dg = dgbuf;
        }
        im2col(col, inp + (size_t)n0 * in_img, nb, s);
        /* dw_g[Kg x CRR] += dout_g[Kg x ld] col_g[CRR x ld]^T */
        for (int g = 0; g < G; g++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, CRR, (int)ld, 1.0f,
                        dg + (size_t)g * Kg * ld, (int)ld, col + (size_t)g * CRR * ld, (int)ld, 1.0f,
                        dw + (size_t)g * Kg * CRR, CRR);
        }
        if (!dinp) continue;
        /* dcol_g[CRR x ld] = w_g[Kg x CRR]^T dout_g[Kg x ld], into the col buffer */
        for (int g = 0; g < G; g++) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRR, (int)ld, Kg, 1.0f,
                        w + (size_t)g * Kg * CRR, CRR, dg + (size_t)g * Kg * ld, (int)ld, 0.0f,
                        col + (size_t)g * CRR * ld, (int)ld);
        }
        col2im_add(dinp + (size_t)n0 * in_img, col, nb, s);
    }
}
