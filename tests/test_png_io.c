/* test_png_io.c: PNG write/read round trips (grey and RGB, exact), conversion of palette, alpha
 * and 16-bit inputs, grid geometry and tile placement, atomic writes (no stray temporary file,
 * no partial file), and malformed input: every truncation of a valid file, a flipped byte, a
 * non-PNG and a missing file give -1 with a message naming the file, never a crash.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/png_io.h"
#include "rng.h"

static char g_dir[256];

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static uint8_t *pattern(size_t n, uint64_t seed) {
    uint8_t *p = malloc(n ? n : 1);
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)fv_rng_u64(&r);
    return p;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Files in g_dir whose name contains `part`. */
static int count_files(const char *part) {
    DIR *d = opendir(g_dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, part)) n++;
    closedir(d);
    return n;
}

static void expect_read_error(const char *path, const char *what) {
    uint8_t *pix = (uint8_t *)0x1;
    int w, h, c;
    fv_err e = {{0}};
    if (fv_png_read(path, &pix, &w, &h, &c, &e) != -1) fail_msg("%s: expected an error", path);
    if (!strstr(e.msg, path)) fail_msg("error does not name %s: %s", path, e.msg);
    if (what && !strstr(e.msg, what)) fail_msg("error for %s lacks '%s': %s", path, what, e.msg);
    assert_ptr_equal(pix, (uint8_t *)0x1);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/fedvim-test-png.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    return nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void roundtrip(int w, int h, int c, uint64_t seed) {
    uint8_t *img = pattern((size_t)w * h * c, seed);
    char name[64];
    snprintf(name, sizeof name, "rt_%dx%dx%d.png", w, h, c);
    fv_err e;
    if (fv_png_write(tpath(name), img, w, h, c, &e)) fail_msg("%s", e.msg);
    uint8_t *pix;
    int rw, rh, rc;
    if (fv_png_read(tpath(name), &pix, &rw, &rh, &rc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rw, w);
    assert_int_equal(rh, h);
    assert_int_equal(rc, c);
    assert_memory_equal(pix, img, (size_t)w * h * c);
    free(pix);
    free(img);
}

static void test_roundtrip(void **state) {
    (void)state;
    roundtrip(7, 5, 1, 1);
    roundtrip(6, 4, 3, 2);
    roundtrip(1, 1, 1, 3);
    roundtrip(1, 1, 3, 4);
    roundtrip(300, 17, 3, 5);
    /* overwriting an existing file works and leaves no temporary file behind */
    roundtrip(6, 4, 3, 6);
    assert_int_equal(count_files(".tmp"), 0);
}

static void test_write_errors(void **state) {
    (void)state;
    uint8_t px[12] = {0};
    fv_err e;
    assert_int_equal(fv_png_write(tpath("no-such-dir/x.png"), px, 2, 2, 3, &e), -1);
    if (!strstr(e.msg, "no-such-dir")) fail_msg("%s", e.msg);
    assert_int_equal(fv_png_write(tpath("bad.png"), px, 2, 2, 2, &e), -1);
    if (!strstr(e.msg, "bad.png") || !strstr(e.msg, "channels")) fail_msg("%s", e.msg);
    assert_int_equal(fv_png_write(tpath("bad.png"), px, 0, 2, 1, &e), -1);
    if (!strstr(e.msg, "bad.png")) fail_msg("%s", e.msg);
    assert_int_equal(count_files("bad.png"), 0);
    /* the final rename fails (a folder has the name): an error, and no temporary file is left */
    assert_int_equal(mkdir(tpath("adir.png"), 0755), 0);
    assert_int_equal(fv_png_write(tpath("adir.png"), px, 2, 2, 3, &e), -1);
    if (!strstr(e.msg, "adir.png")) fail_msg("%s", e.msg);
    assert_int_equal(count_files(".tmp"), 0);
}

/* Write with libpng's simplified API (independent of the code under test) and read back. */
static void write_simplified(const char *path, png_uint_32 format, int w, int h, const void *px,
                             const png_color *cmap, int ncmap) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = format;
    im.colormap_entries = (png_uint_32)ncmap;
    if (!png_image_write_to_file(&im, path, 0, px, 0, cmap)) fail_msg("libpng: %s", im.message);
}

static void test_read_conversions(void **state) {
    (void)state;
    const int w = 5, h = 3;
    uint8_t *pix;
    int rw, rh, rc;
    fv_err e;
    /* RGBA -> RGB, alpha dropped */
    uint8_t *rgba = pattern((size_t)w * h * 4, 10);
    for (int i = 0; i < w * h; i++) rgba[i * 4 + 3] = 255; /* opaque, so no premultiplication */
    write_simplified(tpath("rgba.png"), PNG_FORMAT_RGBA, w, h, rgba, NULL, 0);
    if (fv_png_read(tpath("rgba.png"), &pix, &rw, &rh, &rc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rc, 3);
    for (int i = 0; i < w * h; i++)
        for (int k = 0; k < 3; k++) assert_int_equal(pix[i * 3 + k], rgba[i * 4 + k]);
    free(pix);
    /* grey + alpha -> grey */
    uint8_t ga[2 * 5 * 3];
    for (int i = 0; i < w * h; i++) {
        ga[2 * i] = (uint8_t)(i * 17);
        ga[2 * i + 1] = 255;
    }
    write_simplified(tpath("ga.png"), PNG_FORMAT_GA, w, h, ga, NULL, 0);
    if (fv_png_read(tpath("ga.png"), &pix, &rw, &rh, &rc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rc, 1);
    for (int i = 0; i < w * h; i++) assert_int_equal(pix[i], ga[2 * i]);
    free(pix);
    /* palette -> RGB */
    uint8_t idx[5 * 3];
    png_color cmap[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
    for (int i = 0; i < w * h; i++) idx[i] = (uint8_t)(i % 4);
    write_simplified(tpath("pal.png"), PNG_FORMAT_RGB_COLORMAP, w, h, idx, cmap, 4);
    if (fv_png_read(tpath("pal.png"), &pix, &rw, &rh, &rc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rc, 3);
    for (int i = 0; i < w * h; i++) {
        const png_color *c = &cmap[i % 4];
        assert_int_equal(pix[i * 3 + 0], c->red);
        assert_int_equal(pix[i * 3 + 1], c->green);
        assert_int_equal(pix[i * 3 + 2], c->blue);
    }
    free(pix);
    /* 16-bit grey -> 8-bit grey (values go through the sRGB curve: check order and range only) */
    uint16_t g16[5 * 3];
    for (int i = 0; i < w * h; i++) g16[i] = (uint16_t)(i * 4000);
    write_simplified(tpath("g16.png"), PNG_FORMAT_LINEAR_Y, w, h, g16, NULL, 0);
    if (fv_png_read(tpath("g16.png"), &pix, &rw, &rh, &rc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(rc, 1);
    assert_int_equal(rw, w);
    assert_int_equal(pix[0], 0);
    for (int i = 1; i < w * h; i++) assert_true(pix[i] > pix[i - 1]);
    free(pix);
    free(rgba);
}

static void test_grid(void **state) {
    (void)state;
    const int n = 5, c = 3, h = 3, w = 4, cols = 3;
    uint8_t *imgs[5];
    for (int k = 0; k < n; k++) imgs[k] = pattern((size_t)c * h * w, 100 + (uint64_t)k);
    fv_err e;
    if (fv_png_grid(tpath("grid.png"), (const uint8_t *const *)imgs, n, c, h, w, cols, &e)) fail_msg("%s", e.msg);
    uint8_t *pix;
    int gw, gh, gc;
    if (fv_png_read(tpath("grid.png"), &pix, &gw, &gh, &gc, &e)) fail_msg("%s", e.msg);
    /* 3 columns and 2 rows of 4x3 tiles with 1-pixel separators */
    assert_int_equal(gw, 3 * 4 + 2);
    assert_int_equal(gh, 2 * 3 + 1);
    assert_int_equal(gc, 3);
    for (int k = 0; k < n; k++) {
        int x0 = (k % cols) * (w + 1), y0 = (k / cols) * (h + 1);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    assert_int_equal(pix[((y0 + y) * gw + x0 + x) * 3 + ch], imgs[k][(ch * h + y) * w + x]);
    }
    /* separators and the empty cell are white */
    for (int y = 0; y < gh; y++)
        for (int ch = 0; ch < 3; ch++) {
            assert_int_equal(pix[(y * gw + 4) * 3 + ch], 255);
            assert_int_equal(pix[(y * gw + 9) * 3 + ch], 255);
        }
    for (int x = 0; x < gw; x++) assert_int_equal(pix[(3 * gw + x) * 3], 255);
    for (int y = 4; y < gh; y++)
        for (int x = 10; x < gw; x++) assert_int_equal(pix[(y * gw + x) * 3 + 1], 255);
    free(pix);
    /* grey tiles give a grey grid; more columns than images shrinks to one row */
    if (fv_png_grid(tpath("grid1.png"), (const uint8_t *const *)imgs, 2, 1, h, w, 10, &e)) fail_msg("%s", e.msg);
    if (fv_png_read(tpath("grid1.png"), &pix, &gw, &gh, &gc, &e)) fail_msg("%s", e.msg);
    assert_int_equal(gw, 2 * 4 + 1);
    assert_int_equal(gh, 3);
    assert_int_equal(gc, 1);
    assert_memory_equal(pix, imgs[0], 4); /* first row of tile 0 (channel 0) */
    free(pix);
    assert_int_equal(fv_png_grid(tpath("grid2.png"), (const uint8_t *const *)imgs, 0, 1, h, w, 3, &e), -1);
    if (!strstr(e.msg, "grid2.png")) fail_msg("%s", e.msg);
    assert_int_equal(fv_png_grid(tpath("grid2.png"), (const uint8_t *const *)imgs, 2, 2, h, w, 3, &e), -1);
    for (int k = 0; k < n; k++) free(imgs[k]);
}

static void test_malformed(void **state) {
    (void)state;
    uint8_t *img = pattern(9 * 7 * 3, 50);
    fv_err e;
    if (fv_png_write(tpath("good.png"), img, 9, 7, 3, &e)) fail_msg("%s", e.msg);
    size_t len;
    uint8_t *file = slurp(tpath("good.png"), &len);
    /* every truncation is an error */
    for (size_t cut = 0; cut < len; cut++) {
        write_bytes(tpath("cut.png"), file, cut);
        expect_read_error(tpath("cut.png"), cut < 8 ? "not a PNG" : NULL);
    }
    /* a flipped byte in IHDR, IDAT or their CRCs is an error (CRC mismatch or bad data) */
    for (size_t at = 8; at < len - 12; at++) {
        uint8_t *c = malloc(len);
        memcpy(c, file, len);
        c[at] ^= 0x40;
        write_bytes(tpath("flip.png"), c, len);
        expect_read_error(tpath("flip.png"), NULL);
        free(c);
    }
    write_bytes(tpath("text.png"), "this is not a picture", 21);
    expect_read_error(tpath("text.png"), "not a PNG");
    expect_read_error(tpath("missing.png"), "cannot open");
    /* a valid signature followed by an absurd IHDR (width 0) */
    static const uint8_t bad_ihdr[] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                       0, 0, 0, 0, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0, 0, 0, 0};
    write_bytes(tpath("ihdr.png"), bad_ihdr, sizeof bad_ihdr);
    expect_read_error(tpath("ihdr.png"), "malformed");
    free(file);
    free(img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_read_conversions),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
