/* png_io.c: see png_io.h. libpng reads from and writes to memory; files are written atomically
 * through fv_write_file_atomic. libpng reports errors by longjmp: every function that calls into
 * it sets a jump point first and keeps what must survive the jump in volatile locals.
 * Not here: any image processing.
 */
#include "io/png_io.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* PNG files we read are at most this big, and images at most this wide and high (libpng's own
 * default user limit): larger is a damaged or hostile file for this project. */
#define FV_PNG_MAX_FILE ((size_t)1 << 28)
#define FV_PNG_MAX_DIM 1000000

/* What libpng's callbacks touch. It lives on the heap so that its contents are well defined
 * after a longjmp (automatic objects changed after setjmp are not, unless volatile). */
typedef struct {
    char msg[200];
    uint8_t *out; /* write: encoded bytes */
    size_t len, cap;
    const uint8_t *in; /* read: the file */
    size_t in_len, pos;
} png_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* benign (e.g. a bad ancillary chunk): the image is still usable */
}

static void mem_write(png_structp png, png_bytep data, png_size_t n) {
    png_ctx *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        b->out = fv_realloc(b->out, cap);
        b->cap = cap;
    }
    memcpy(b->out + b->len, data, n);
    b->len += n;
}

static void mem_flush(png_structp png) { (void)png; }

int fv_png_write(const char *path, const uint8_t *hwc, int w, int h, int channels, fv_err *e) {
    if (channels != 1 && channels != 3)
        return fv_err_set(e, "%s: cannot write a PNG with %d channels (1 or 3)", path, channels);
    if (w < 1 || h < 1 || w > FV_PNG_MAX_DIM || h > FV_PNG_MAX_DIM)
        return fv_err_set(e, "%s: image size %d x %d is outside 1..%d", path, w, h, FV_PNG_MAX_DIM);
    png_ctx *ctx = fv_calloc(1, sizeof *ctx);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
    if (!png) FV_DIE("png_create_write_struct failed");
    png_infop info = png_create_info_struct(png);
    if (!info) FV_DIE("png_create_info_struct failed");
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        fv_err_set(e, "%s: cannot encode PNG: %s", path, ctx->msg);
        free(ctx->out);
        free(ctx);
        return -1;
    }
    png_set_write_fn(png, ctx, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    rows = fv_malloc((size_t)h * sizeof *rows);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)(hwc + (size_t)y * (size_t)w * (size_t)channels);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    int r = fv_write_file_atomic(path, ctx->out, ctx->len, e);
    free(ctx->out);
    free(ctx);
    return r;
}

static void mem_read(png_structp png, png_bytep out, png_size_t n) {
    png_ctx *s = png_get_io_ptr(png);
    if (n > s->in_len - s->pos) png_error(png, "file is truncated");
    memcpy(out, s->in + s->pos, n);
    s->pos += n;
}

int fv_png_read(const char *path, uint8_t **pix, int *w, int *h, int *channels, fv_err *e) {
    uint8_t *file = NULL;
    size_t len = 0;
    if (fv_read_file(path, FV_PNG_MAX_FILE, &file, &len, e)) return -1;
    if (len < 8 || png_sig_cmp(file, 0, 8) != 0) {
        free(file);
        return fv_err_set(e, "%s: not a PNG file (bad signature)", path);
    }
    png_ctx *ctx = fv_calloc(1, sizeof *ctx);
    ctx->in = file;
    ctx->in_len = len;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, on_error, on_warning);
    if (!png) FV_DIE("png_create_read_struct failed");
    png_infop info = png_create_info_struct(png);
    if (!info) FV_DIE("png_create_info_struct failed");
    uint8_t *volatile out = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        free(out);
        free(file);
        fv_err_set(e, "%s: malformed PNG: %s", path, ctx->msg);
        free(ctx);
        return -1;
    }
    png_set_read_fn(png, ctx, mem_read);
    png_set_user_limits(png, FV_PNG_MAX_DIM, FV_PNG_MAX_DIM);
    png_read_info(png, info);
    png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info);
    /* To 8-bit grey or RGB without alpha, whatever the source. */
    png_set_expand(png); /* palette -> RGB, low-bit grey -> 8 bit, tRNS -> alpha */
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    if (ch != 1 && ch != 3) png_error(png, "unexpected channel count after conversion");
    if ((ct & PNG_COLOR_MASK_COLOR) ? ch != 3 : ch != 1) png_error(png, "unexpected colour conversion");
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)pw * (size_t)ch) png_error(png, "unexpected row size after conversion");
    if ((uint64_t)stride * ph > (uint64_t)1 << 31) png_error(png, "image too large");
    out = fv_malloc(stride * ph);
    rows = fv_malloc((size_t)ph * sizeof *rows);
    for (png_uint_32 y = 0; y < ph; y++) rows[y] = out + (size_t)y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(file);
    free(ctx);
    *pix = out;
    *w = (int)pw;
    *h = (int)ph;
    *channels = ch;
    return 0;
}

int fv_png_grid(const char *path, const uint8_t *const *imgs, int n, int c, int h, int w, int cols, fv_err *e) {
    if (n < 1 || cols < 1) return fv_err_set(e, "%s: a grid needs at least one image and one column", path);
    if (c != 1 && c != 3) return fv_err_set(e, "%s: grid images have %d channels (1 or 3)", path, c);
    if (h < 1 || w < 1) return fv_err_set(e, "%s: grid images are %d x %d", path, w, h);
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int64_t gw = (int64_t)cols * w + (cols - 1), gh = (int64_t)rows * h + (rows - 1);
    if (gw > FV_PNG_MAX_DIM || gh > FV_PNG_MAX_DIM)
        return fv_err_set(e, "%s: grid of %lld x %lld pixels is too large", path, (long long)gw, (long long)gh);
    size_t W = (size_t)gw, H = (size_t)gh;
    uint8_t *g = fv_malloc(W * H * (size_t)c);
    memset(g, 255, W * H * (size_t)c); /* separators and empty cells are white */
    for (int k = 0; k < n; k++) {
        size_t x0 = (size_t)(k % cols) * (size_t)(w + 1), y0 = (size_t)(k / cols) * (size_t)(h + 1);
        const uint8_t *im = imgs[k];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    g[((y0 + (size_t)y) * W + x0 + (size_t)x) * (size_t)c + (size_t)ch] =
                        im[((size_t)ch * (size_t)h + (size_t)y) * (size_t)w + (size_t)x];
    }
    int r = fv_png_write(path, g, (int)W, (int)H, c, e);
    free(g);
    return r;
}
