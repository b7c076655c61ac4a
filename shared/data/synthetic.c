/* synthetic.c: see synthetic.h. */
#include "data/synthetic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define BLOBS 4
#define STREAM_PROTO 0x70726f746full /* "proto" */

void fv_synthetic_make(fv_dataset *out, int n, int c, int h, int w, int classes, uint64_t seed, int split) {
    FV_ASSERT(n > 0 && c > 0 && h > 0 && w > 0 && classes > 1 && classes <= 256);
    memset(out, 0, sizeof *out);
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    out->classes = classes;
    size_t per = (size_t)c * h * w;
    out->x = fv_malloc((size_t)n * per);
    out->y = fv_malloc((size_t)n);
    /* prototypes: classes x c x h x w floats in [0, 1] */
    float *proto = fv_calloc((size_t)classes * per, sizeof(float));
    fv_rng r;
    fv_rng_seed2(&r, seed, STREAM_PROTO);
    for (int k = 0; k < classes; k++)
        for (int ch = 0; ch < c; ch++) {
            float *pl = proto + ((size_t)k * c + ch) * h * w;
            for (int b = 0; b < BLOBS; b++) {
                double cy = (0.15 + 0.7 * fv_rng_uniform_d(&r)) * h;
                double cx = (0.15 + 0.7 * fv_rng_uniform_d(&r)) * w;
                double sg = (0.06 + 0.10 * fv_rng_uniform_d(&r)) * (h < w ? h : w);
                double amp = 0.5 + 0.5 * fv_rng_uniform_d(&r);
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++) {
                        double d2 = ((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * sg * sg);
                        pl[y * w + x] += (float)(amp * exp(-d2));
                    }
            }
            for (int i = 0; i < h * w; i++)
                if (pl[i] > 1) pl[i] = 1;
        }
    fv_rng lab;
    fv_rng_seed2(&lab, seed, 0x6c6162656c00ull + (uint64_t)split);
    int *perm = fv_malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) perm[i] = i;
    fv_rng_shuffle_int(&lab, perm, n);
    for (int i = 0; i < n; i++) out->y[perm[i]] = (uint8_t)(i % classes);
    free(perm);
    for (int i = 0; i < n; i++) {
        fv_rng g;
        fv_rng_seed2(&g, seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(split + 1)), (uint64_t)i);
        int k = out->y[i];
        int dy = (int)fv_rng_below(&g, 5) - 2, dx = (int)fv_rng_below(&g, 5) - 2;
        double contrast = 0.6 + 0.4 * fv_rng_uniform_d(&g);
        uint8_t *img = out->x + (size_t)i * per;
        for (int ch = 0; ch < c; ch++) {
            const float *pl = proto + ((size_t)k * c + ch) * h * w;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int sy = y - dy, sx = x - dx;
                    double v = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? pl[sy * w + sx] : 0;
                    v = contrast * v + 0.15 * fv_rng_normal(&g);
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    img[((size_t)ch * h + y) * w + x] = (uint8_t)lrint(v * 255);
                }
        }
    }
    free(proto);
}
