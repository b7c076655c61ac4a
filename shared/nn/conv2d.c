/* conv2d.c: 2-D convolution on the CPU, forward and backward (see layers.h for the contract).
 *
 * Three paths, chosen from the shape alone:
 *  - general: im2col over a chunk of nb images, one cblas_sgemm per group, scatter to NCHW. The
 *    column matrix of a chunk is col[C*R*R x nb*OH*OW] (rows ordered c, ky, kx, so the rows of
 *    group g are one contiguous block); the GEMM is W_g[K/g x C/g*R*R] x col_g. Backward gathers
 *    dout into [K x nb*OH*OW], dw_g += dout_g col_g^T, dcol_g = W_g^T dout_g (into the col
 *    buffer) and col2im adds dcol into dinp. A chunk is about 256 KiB of scratch: two LeNet
 *    images, one ResNet-20 image; with one image the GEMM writes straight into out. With
 *    padding, im2col reads each input plane from a zero-bordered copy (one plane per thread, at
 *    the end of the scratch).
 *  - 1x1, stride 1, no padding: the input planes already are the column matrix; one GEMM per
 *    image and group straight on inp/out, no scratch.
 *  - depthwise (groups == C == K): a direct loop per plane; a GEMM with one row is all overhead.
 * Backward accumulates (+=) into dinp, dw and db like every kernel in layers.h.
 *
 * Threads: one OpenMP region per call splits the batch into contiguous image ranges, one per
 * thread, and each thread runs im2col, its GEMMs (single-threaded OpenBLAS) and the scatter or
 * col2im for its own images, in its own slice of the scratch, with no barrier in between. Weight
 * and bias gradients of threads 1.. go to per-thread buffers added in thread order at the end.
 * That needs OpenBLAS to run single-threaded (fv_set_threads does that); if it was given more
 * threads, the kernels here stay serial and let OpenBLAS thread the GEMMs instead.
 *
 * Determinism: every output element is written by one thread in a fixed order and the image
 * ranges depend only on the thread count, so results are bitwise reproducible for a fixed thread
 * count.
 * Not here: Winograd/FFT variants, dilation, non-square kernels, the CUDA twin (conv2d.cu), the
 * oneDNN path that net.c takes instead for some shapes (conv_dnnl.h).
 */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "fv_common.h"
#include "nn/layers.h"

/* Scratch of the general path is capped at this many floats (16 MiB): a LeNet batch of 64-128
 * images fits whole, and so do the per-thread chunks of up to 16 threads. */
#define CONV_SCRATCH_BUDGET ((size_t)4 << 20)
/* Each thread works through its images in chunks of about this many scratch floats (256 KiB), so
 * im2col's columns are still in L2 when the GEMM reads them, next to OpenBLAS's packed panels: on
 * ResNet-20's layers (batch 128, one thread) chunks of 256 KiB-1 MiB ran alike and 15-35% faster
 * than 16 MiB ones; LeNet's layers did not care. */
#define CONV_CHUNK_FLOATS ((size_t)1 << 16)
/* Below this many multiply-adds a call runs on one thread: forking costs more than it saves. */
#define CONV_PAR_MIN_MACS ((size_t)1 << 18)

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

static int is_pointwise(const fv_conv2d_shape *s) {
    return s->R == 1 && s->stride == 1 && s->pad == 0;
}

static int is_depthwise(const fv_conv2d_shape *s) { return s->groups == s->C && s->groups == s->K; }

static size_t out_plane(const fv_conv2d_shape *s) { return (size_t)s->OH * s->OW; }

/* Scratch floats per image of the general path: its im2col columns plus its K output rows. */
static size_t img_floats(const fv_conv2d_shape *s) {
    return ((size_t)s->C * s->R * s->R + (size_t)s->K) * out_plane(s);
}

/* Floats of one zero-padded input plane, (H + 2 pad) x (W + 2 pad); 0 without padding. */
static size_t pad_plane(const fv_conv2d_shape *s) {
    return s->pad ? (size_t)(s->H + 2 * s->pad) * (size_t)(s->W + 2 * s->pad) : 0;
}

/* Images the scratch holds: as many as fit the budget, at least one, at most N. */
static int scratch_images(const fv_conv2d_shape *s) {
    size_t nb = CONV_SCRATCH_BUDGET / img_floats(s);
    if (nb < 1) nb = 1;
    if (nb > (size_t)s->N) nb = (size_t)s->N;
    return (int)nb;
}

/* Non-decreasing in N, so one buffer sized for the largest batch serves every smaller one. */
size_t fv_conv2d_scratch_floats(const fv_conv2d_shape *s) {
    if (is_pointwise(s) || is_depthwise(s)) return 0;
    return (img_floats(s) + pad_plane(s)) * (size_t)scratch_images(s);
}

/* This thread's padded plane: after the chunk slices (which never reach past scratch_images(s)
 * images, see chunk_cap), one per thread (at most scratch_images(s) threads, see plan_threads). */
static float *thread_plane(float *scratch, const fv_conv2d_shape *s) {
    return scratch + img_floats(s) * (size_t)scratch_images(s) +
           (size_t)omp_get_thread_num() * pad_plane(s);
}

/* Images per chunk of one thread when T threads share the scratch. */
static int chunk_cap(const fv_conv2d_shape *s, int T) {
    size_t cap = (size_t)scratch_images(s) / (size_t)T, want = CONV_CHUNK_FLOATS / img_floats(s);
    if (want < 1) want = 1;
    return (int)(cap < want ? cap : want);
}

/* Threads for one call: at most one per image (and per scratch slice), one for small work, and
 * one when OpenBLAS runs its own threads (nesting the two pools oversubscribes the cores). */
static int plan_threads(const fv_conv2d_shape *s, int max_images) {
    size_t macs = (size_t)s->N * s->K * out_plane(s) * (size_t)(s->C / s->groups) * s->R * s->R;
    int t = omp_get_max_threads();
    if (t > max_images) t = max_images;
    if (macs < CONV_PAR_MIN_MACS || openblas_get_num_threads() > 1) t = 1;
    return t < 1 ? 1 : t;
}

/* Output positions o in [*lo, *hi) whose input coordinate o*stride - pad + k lies in [0, size). */
static void valid_range(int *lo, int *hi, int k, int pad, int stride, int size, int out_size) {
    int a = pad - k;            /* o*stride >= a */
    int b = size - 1 + pad - k; /* o*stride <= b */
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > out_size) h = out_size;
    if (l > h) l = h;
    *lo = l, *hi = h;
}

static void zero(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = 0.0f;
}

/* col[C*R*R x nb*P] from inp[nb, C, H, W] (P = OH*OW). With padding, each input plane is first
 * copied into `plane` (pad_plane(s) floats) inside a zero border, so every column row is a plain
 * copy of OW floats with no edge cases: for each input row the R taps kx read the same source row
 * at offsets kx. On LeNet-5's layers this runs 1.7-1.9x faster than clipping each tap's rows to
 * the image (per-row bounds and zero fills dominated there: rows are 10-28 floats). A pure copy:
 * the columns are the same bits either way. */
static void im2col(float *col, const float *inp, int nb, const fv_conv2d_shape *s, float *plane) {
    const int C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW, Wp = W + 2 * pad;
    const size_t P = out_plane(s), ld = (size_t)nb * P;
    if (pad) zero(plane, pad_plane(s)); /* the border stays zero; the interior is rewritten */
    for (int n = 0; n < nb; n++) {
        for (int c = 0; c < C; c++) {
            const float *img = inp + ((size_t)n * C + c) * H * W;
            int iw = W;
            if (pad) {
                for (int y = 0; y < H; y++) {
                    float *d = plane + (size_t)(y + pad) * Wp + pad;
                    const float *src = img + (size_t)y * W;
#pragma omp simd
                    for (int x = 0; x < W; x++) d[x] = src[x];
                }
                img = plane, iw = Wp;
            }
            for (int ky = 0; ky < R; ky++) {
                float *d0 = col + (size_t)(c * R + ky) * R * ld + (size_t)n * P;
                for (int oy = 0; oy < OH; oy++) {
                    const float *row = img + (size_t)(oy * st + ky) * iw;
                    float *d = d0 + (size_t)oy * OW;
                    for (int kx = 0; kx < R; kx++, d += ld) {
                        const float *r = row + kx;
                        if (st == 1) {
#pragma omp simd
                            for (int i = 0; i < OW; i++) d[i] = r[i];
                        } else {
                            for (int i = 0; i < OW; i++) d[i] = r[i * st];
                        }
                    }
                }
            }
        }
    }
}

/* dinp[nb, C, H, W] += col2im(dcol[C*R*R x nb*P]). */
static void col2im_add(float *dinp, const float *dcol, int nb, const fv_conv2d_shape *s) {
    const int C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW;
    const size_t P = out_plane(s), ld = (size_t)nb * P;
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
                        float *drow =
                            dst + (size_t)(oy * st - pad + ky) * W + (ox0 * st - pad + kx);
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

/* out[nb, K, P] = tmp[K x nb*P] + b[K] (b may be NULL). */
static void scatter_out(float *out, const float *tmp, const float *b, int nb, int K, size_t P) {
    const size_t ld = (size_t)nb * P;
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
    for (int k = 0; k < K; k++) {
        for (int n = 0; n < nb; n++) {
            float *d = dg + (size_t)k * ld + (size_t)n * P;
            const float *src = dout + ((size_t)n * K + k) * P;
#pragma omp simd
            for (size_t p = 0; p < P; p++) d[p] = src[p];
        }
    }
}

/* out[n, k, :] += b[k] for nb images. */
static void add_bias(float *out, const float *b, int nb, int K, size_t P) {
    for (int n = 0; n < nb; n++) {
        for (int k = 0; k < K; k++) {
            float *d = out + ((size_t)n * K + k) * P;
            const float bk = b[k];
#pragma omp simd
            for (size_t p = 0; p < P; p++) d[p] += bk;
        }
    }
}

/* db[k] += sum of dg[k, 0..len) for K rows of stride ld (vectorised, fixed lane order). */
static void add_row_sums(float *db, const float *dg, int K, size_t len, size_t ld) {
    for (int k = 0; k < K; k++) {
        const float *d = dg + (size_t)k * ld;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (size_t p = 0; p < len; p++) acc += d[p];
        db[k] += acc;
    }
}

/* This thread's images [*n0, *n1) of N when the batch is split over the team. */
static void my_images(int *n0, int *n1, int N) {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    *n0 = (int)((long)N * t / T), *n1 = (int)((long)N * (t + 1) / T);
}

/* Per-thread parameter gradients: thread 0 accumulates into dw and db themselves, thread t >= 1
 * into its own zeroed slice of part, nw floats for dw then K for db, and the slices are added in
 * thread order at the end. part is NULL when T == 1. */
static float *parts_new(int T, size_t nw, int K, const float *dw) {
    return T > 1 && dw ? fv_calloc((size_t)(T - 1) * (nw + (size_t)K), sizeof(float)) : NULL;
}

/* This thread's dw and db (*dbt stays NULL when db is NULL). */
static void parts_mine(float **dwt, float **dbt, float *dw, float *db, float *part, size_t nw,
                       int K) {
    const int t = omp_get_thread_num();
    float *mine = t == 0 || !dw ? NULL : part + (size_t)(t - 1) * (nw + (size_t)K);
    *dwt = t == 0 || !dw ? dw : mine;
    *dbt = !db || !dw ? NULL : t == 0 ? db : mine + nw;
}

/* dw += slices' dw, db += slices' db, in thread order; frees part. */
static void parts_reduce(float *dw, float *db, float *part, int T, size_t nw, int K) {
    for (int t = 1; t < T && dw; t++) {
        const float *p = part + (size_t)(t - 1) * (nw + (size_t)K);
        for (size_t i = 0; i < nw; i++) dw[i] += p[i];
        if (db)
            for (int k = 0; k < K; k++) db[k] += p[nw + (size_t)k];
    }
    free(part);
}

/* ---- depthwise: one R x R filter per channel, weight [C, 1, R, R] ---- */

static void dw_forward(float *out, const float *inp, const float *w, const float *b,
                       const fv_conv2d_shape *s) {
    const int N = s->N, C = s->C, H = s->H, W = s->W, R = s->R, st = s->stride, pad = s->pad;
    const int OH = s->OH, OW = s->OW;
    const int T = (size_t)N * C * OH * OW * R * R >= CONV_PAR_MIN_MACS ? omp_get_max_threads() : 1;
#pragma omp parallel for collapse(2) schedule(static) num_threads(T)
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
                        const float *srow =
                            src + (size_t)(oy * st - pad + ky) * W + (ox0 * st - pad + kx);
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
    const int T = (size_t)N * C * OH * OW * R * R >= CONV_PAR_MIN_MACS ? omp_get_max_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(T)
    for (int c = 0; c < C; c++) {
        for (int n = 0; n < N; n++) {
            const float *src = inp + ((size_t)n * C + c) * H * W;
            const float *g = dout + ((size_t)n * C + c) * OH * OW;
            float *di = dinp ? dinp + ((size_t)n * C + c) * H * W : NULL;
            if (db && dw) {
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
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
                        const size_t off =
                            (size_t)(oy * st - pad + ky) * W + (size_t)(ox0 * st - pad + kx);
                        const float *srow = src + off;
                        const float *grow = g + (size_t)oy * OW + ox0;
                        float part = 0.0f;
                        if (dw && st == 1) {
#pragma omp simd reduction(+ : part)
                            for (int i = 0; i < ox1 - ox0; i++) part += grow[i] * srow[i];
                        } else if (dw) {
                            for (int i = 0; i < ox1 - ox0; i++) part += grow[i] * srow[i * st];
                        }
                        acc += part;
                        if (di) {
                            float *drow = di + off;
                            if (st == 1) {
#pragma omp simd
                                for (int i = 0; i < ox1 - ox0; i++) drow[i] += wv * grow[i];
                            } else {
                                for (int i = 0; i < ox1 - ox0; i++) drow[i * st] += wv * grow[i];
                            }
                        }
                    }
                    if (dw) dw[wi] += acc;
                }
            }
        }
    }
}

/* ---- 1x1, stride 1, no padding: per image out[n] (K x HW) = w (K x C) inp[n] (C x HW) ---- */

static void pw_forward(float *out, const float *inp, const float *w, const float *b,
                       const fv_conv2d_shape *s) {
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G, P = s->H * s->W;
    const int T = plan_threads(s, s->N);
#pragma omp parallel num_threads(T)
    {
        int n0, n1;
        my_images(&n0, &n1, s->N);
        for (int n = n0; n < n1; n++) {
            for (int g = 0; g < G; g++) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Kg, P, Cg, 1.0f,
                            w + (size_t)g * Kg * Cg, Cg,
                            inp + ((size_t)n * s->C + (size_t)g * Cg) * P, P, 0.0f,
                            out + ((size_t)n * s->K + (size_t)g * Kg) * P, P);
            }
            if (b) add_bias(out + (size_t)n * s->K * P, b, 1, s->K, (size_t)P);
        }
    }
}

static void pw_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, const fv_conv2d_shape *s) {
    const int G = s->groups, Cg = s->C / G, Kg = s->K / G, P = s->H * s->W;
    const int T = plan_threads(s, s->N);
    const size_t nw = (size_t)s->K * Cg;
    float *part = parts_new(T, nw, s->K, dw);
#pragma omp parallel num_threads(T)
    {
        int n0, n1;
        float *dwt, *dbt;
        my_images(&n0, &n1, s->N);
        parts_mine(&dwt, &dbt, dw, db, part, nw, s->K);
        for (int n = n0; n < n1; n++) {
            if (dbt) add_row_sums(dbt, dout + (size_t)n * s->K * P, s->K, (size_t)P, (size_t)P);
            for (int g = 0; g < G; g++) {
                const float *dg = dout + ((size_t)n * s->K + (size_t)g * Kg) * P;
                const size_t ioff = ((size_t)n * s->C + (size_t)g * Cg) * P;
                /* dw_g[Kg x Cg] += dout_g[Kg x P] inp_g[Cg x P]^T */
                if (dwt)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, Cg, P, 1.0f, dg, P,
                            inp + ioff, P, 1.0f, dwt + (size_t)g * Kg * Cg, Cg);
                /* dinp_g[Cg x P] += w_g[Kg x Cg]^T dout_g[Kg x P] */
                if (dinp)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cg, P, Kg, 1.0f,
                                w + (size_t)g * Kg * Cg, Cg, dg, P, 1.0f, dinp + ioff, P);
            }
        }
    }
    parts_reduce(dw, db, part, T, nw, s->K);
}

/* ---- general path ---- */

/* Forward of images [n0, n1) in chunks of at most cap images, in scratch slice scr; with cols
 * (may be NULL) the im2col of the chunk at image i goes to cols + i C R R P and stays there. */
static void gen_forward_range(float *out, const float *inp, const float *w, const float *b,
                              float *scr, float *plane, int cap, int n0, int n1, float *cols,
                              const fv_conv2d_shape *s) {
    const int G = s->groups, Kg = s->K / G, CRR = s->C / G * s->R * s->R;
    const size_t P = out_plane(s), in_img = (size_t)s->C * s->H * s->W;
    for (int i = n0; i < n1; i += cap) {
        const int nb = n1 - i < cap ? n1 - i : cap;
        const size_t ld = (size_t)nb * P;
        float *col = cols ? cols + (size_t)i * s->C * s->R * s->R * P : scr,
              *tmp = scr + (size_t)s->C * s->R * s->R * ld;
        im2col(col, inp + (size_t)i * in_img, nb, s, plane);
        /* With one image the GEMM output already is the NCHW output: write it in place. */
        float *dst = nb == 1 ? out + (size_t)i * s->K * P : tmp;
        for (int g = 0; g < G; g++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Kg, (int)ld, CRR, 1.0f,
                        w + (size_t)g * Kg * CRR, CRR, col + (size_t)g * CRR * ld, (int)ld, 0.0f,
                        dst + (size_t)g * Kg * ld, (int)ld);
        }
        if (nb > 1)
            scatter_out(out + (size_t)i * s->K * P, tmp, b, nb, s->K, P);
        else if (b)
            add_bias(dst, b, 1, s->K, P);
    }
}

/* Backward of images [n0, n1): dinp += ..., dwt += ..., dbt += ... (dinp, dbt may be NULL; a NULL
 * dwt skips the weight and bias gradients and their im2col). With cols (may be NULL) the im2col is
 * read from there, as gen_forward_range left it, instead of recomputed. */
static void gen_backward_range(float *dinp, float *dwt, float *dbt, const float *dout,
                               const float *inp, const float *w, float *scr, float *plane, int cap,
                               int n0, int n1, const float *cols, const fv_conv2d_shape *s) {
    const int G = s->groups, Kg = s->K / G, CRR = s->C / G * s->R * s->R;
    const size_t P = out_plane(s), in_img = (size_t)s->C * s->H * s->W;
    for (int i = n0; i < n1; i += cap) {
        const int nb = n1 - i < cap ? n1 - i : cap;
        const size_t ld = (size_t)nb * P;
        float *col = scr; /* im2col of the chunk, then reused for dcol */
        const float *dg = dout + (size_t)i * s->K * P;
        if (nb > 1) {
            float *buf = scr + (size_t)s->C * s->R * s->R * ld;
            gather_dout(buf, dg, nb, s->K, P);
            dg = buf;
        }
        if (dbt) add_row_sums(dbt, dg, s->K, ld, ld);
        const float *xc = cols ? cols + (size_t)i * s->C * s->R * s->R * P : col;
        if (dwt && !cols) im2col(col, inp + (size_t)i * in_img, nb, s, plane);
        /* dw_g[Kg x CRR] += dout_g[Kg x ld] col_g[CRR x ld]^T */
        for (int g = 0; g < G && dwt; g++) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Kg, CRR, (int)ld, 1.0f,
                        dg + (size_t)g * Kg * ld, (int)ld, xc + (size_t)g * CRR * ld, (int)ld,
                        1.0f, dwt + (size_t)g * Kg * CRR, CRR);
        }
        if (!dinp) continue;
        /* dcol_g[CRR x ld] = w_g[Kg x CRR]^T dout_g[Kg x ld], into the col buffer */
        for (int g = 0; g < G; g++) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRR, (int)ld, Kg, 1.0f,
                        w + (size_t)g * Kg * CRR, CRR, dg + (size_t)g * Kg * ld, (int)ld, 0.0f,
                        col + (size_t)g * CRR * ld, (int)ld);
        }
        col2im_add(dinp + (size_t)i * in_img, col, nb, s);
    }
}

/* ---- public entry points ---- */

long long fv_conv2d_cols_key(const fv_conv2d_shape *s) {
    const int T = plan_threads(s, scratch_images(s));
    return ((long long)T << 32) | (long long)chunk_cap(s, T);
}

size_t fv_conv2d_cols_floats(const fv_conv2d_shape *s) {
    if (is_depthwise(s) || is_pointwise(s)) return 0;
    return (size_t)s->C * s->R * s->R * out_plane(s) * (size_t)s->N;
}

void fv_conv2d_forward(float *out, const float *inp, const float *w, const float *b, float *scratch,
                       const fv_conv2d_shape *s) {
    fv_conv2d_forward_cols(out, NULL, inp, w, b, scratch, s);
}

void fv_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, float *scratch, const fv_conv2d_shape *s) {
    fv_conv2d_backward_cols(dinp, dw, db, dout, inp, NULL, w, scratch, s);
}

void fv_conv2d_forward_cols(float *out, float *cols, const float *inp, const float *w, const float *b,
                            float *scratch, const fv_conv2d_shape *s) {
    if (is_depthwise(s)) {
        dw_forward(out, inp, w, b, s);
        return;
    }
    if (is_pointwise(s)) {
        pw_forward(out, inp, w, b, s);
        return;
    }
    FV_ASSERT(scratch != NULL);
    const int T = plan_threads(s, scratch_images(s)), cap = chunk_cap(s, T);
#pragma omp parallel num_threads(T)
    {
        int n0, n1;
        my_images(&n0, &n1, s->N);
        float *scr = scratch + (size_t)omp_get_thread_num() * (size_t)cap * img_floats(s);
        gen_forward_range(out, inp, w, b, scr, thread_plane(scratch, s), cap, n0, n1, cols, s);
    }
}

void fv_conv2d_backward_cols(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                             const float *cols, const float *w, float *scratch, const fv_conv2d_shape *s) {
    if (is_depthwise(s)) {
        dw_backward(dinp, dw, db, dout, inp, w, s);
        return;
    }
    if (is_pointwise(s)) {
        pw_backward(dinp, dw, db, dout, inp, w, s);
        return;
    }
    FV_ASSERT(scratch != NULL);
    const int T = plan_threads(s, scratch_images(s)), cap = chunk_cap(s, T);
    const size_t nw = (size_t)s->K * (s->C / s->groups) * s->R * s->R;
    float *part = parts_new(T, nw, s->K, dw);
#pragma omp parallel num_threads(T)
    {
        int n0, n1;
        float *dwt, *dbt;
        my_images(&n0, &n1, s->N);
        parts_mine(&dwt, &dbt, dw, db, part, nw, s->K);
        float *scr = scratch + (size_t)omp_get_thread_num() * (size_t)cap * img_floats(s);
        gen_backward_range(dinp, dwt, dbt, dout, inp, w, scr, thread_plane(scratch, s), cap, n0,
                           n1, cols, s);
    }
    parts_reduce(dw, db, part, T, nw, s->K);
}
