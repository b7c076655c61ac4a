/* test_data.c: the data layer. Small IDX (raw and gzip) and CIFAR-10 files are written to a
 * temporary folder and read back exactly, and so are files from the IDX writer (fv_idx_write,
 * fv_mnist_write: same bytes as an independent encoding, same data set back); every malformed input (bad magic, wrong element type,
 * truncated or over-long payload, image/label count mismatch, label out of range, zero or absurd
 * dimensions, corrupt gzip, missing file) must give -1 with a message that names the file;
 * Colored MNIST must be deterministic and keep foreground and background apart; the float
 * conversion must match the normalisation formula. The real MNIST and Fashion-MNIST sets are
 * checked when present (setup.sh puts MNIST in $FEDVIM_DATA/mnist) and skipped otherwise.
 *
 * Tolerance: float conversion is compared with the formula in double to 1e-6 absolute (values
 * are within [-3, 3]; the LUT holds the same float expression, so errors are a few ulps).
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/data.h"
#include "rng.h"

static char g_dir[256];

/* ---------------------------------------------------------------------------------------------
 * Helpers
 */

static const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", g_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* An IDX image of nd dims with the given payload (payload_len may differ from prod(dims) to
 * build bad files). Caller frees; *len set. */
static uint8_t *make_idx(uint8_t type, int nd, const uint32_t *dims, const uint8_t *payload, size_t payload_len,
                         size_t *len) {
    *len = 4 + 4 * (size_t)nd + payload_len;
    uint8_t *b = malloc(*len);
    b[0] = 0;
    b[1] = 0;
    b[2] = type;
    b[3] = (uint8_t)nd;
    for (int i = 0; i < nd; i++) {
        b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        b[7 + 4 * i] = (uint8_t)dims[i];
    }
    if (payload_len) memcpy(b + 4 + 4 * nd, payload, payload_len);
    return b;
}

/* gzip (one member) of data. Caller frees. */
static uint8_t *gzip_bytes(const uint8_t *data, size_t len, size_t *out_len) {
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void write_gz(const char *path, const uint8_t *data, size_t len) {
    size_t gl;
    uint8_t *g = gzip_bytes(data, len, &gl);
    write_bytes(path, g, gl);
    free(g);
}

static void write_idx(const char *path, int gz, uint8_t type, int nd, const uint32_t *dims, const uint8_t *payload,
                      size_t payload_len) {
    size_t len;
    uint8_t *b = make_idx(type, nd, dims, payload, payload_len, &len);
    if (gz)
        write_gz(path, b, len);
    else
        write_bytes(path, b, len);
    free(b);
}

static uint8_t *pattern(size_t n, uint64_t seed) {
    uint8_t *p = malloc(n ? n : 1);
    fv_rng r;
    fv_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)fv_rng_u64(&r);
    return p;
}

/* fv_idx_read must fail with a message containing `path` and `what`. */
static void expect_idx_error(const char *path, const char *what) {
    uint8_t *data = (uint8_t *)0x1;
    int dims[4], nd;
    fv_err e = {{0}};
    int r = fv_idx_read(path, &data, dims, &nd, &e);
    if (r != -1) fail_msg("%s: expected an error containing '%s', got success", path, what);
    if (!strstr(e.msg, path)) fail_msg("error does not name the file %s: %s", path, e.msg);
    if (what && !strstr(e.msg, what)) fail_msg("error for %s lacks '%s': %s", path, what, e.msg);
    assert_ptr_equal(data, (uint8_t *)0x1); /* untouched on failure */
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int group_setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/fedvim-test-data.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    return nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------------------------------------
 * IDX: good files
 */

static void check_idx_roundtrip(const char *name, int gz, int nd, const uint32_t *dims) {
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= dims[i];
    uint8_t *payload = pattern(n, 42 + (uint64_t)nd);
    const char *path = tpath(name);
    write_idx(path, gz, 0x08, nd, dims, payload, n);
    uint8_t *data = NULL;
    int d[4], got_nd;
    fv_err e = {{0}};
    if (fv_idx_read(path, &data, d, &got_nd, &e)) fail_msg("%s: %s", path, e.msg);
    assert_int_equal(got_nd, nd);
    for (int i = 0; i < nd; i++) assert_int_equal(d[i], (int)dims[i]);
    assert_memory_equal(data, payload, n);
    free(data);
    free(payload);
}

static void test_idx_raw_roundtrip(void **state) {
    (void)state;
    check_idx_roundtrip("a1.idx", 0, 1, (const uint32_t[]){17});
    check_idx_roundtrip("a3.idx", 0, 3, (const uint32_t[]){5, 4, 3});
    check_idx_roundtrip("a4.idx", 0, 4, (const uint32_t[]){2, 3, 4, 5});
}

/* fv_idx_write: the bytes are the IDX encoding built independently by make_idx, and
 * fv_idx_read gives back the same dimensions and payload. */
static void check_idx_write(const char *name, int nd, const int *dims) {
    size_t n = 1;
    uint32_t ud[4];
    for (int i = 0; i < nd; i++) n *= (size_t)dims[i], ud[i] = (uint32_t)dims[i];
    uint8_t *payload = pattern(n, 7 + (uint64_t)nd);
    const char *path = tpath(name);
    fv_err e = {{0}};
    if (fv_idx_write(path, payload, dims, nd, &e)) fail_msg("%s: %s", path, e.msg);
    size_t want_len, got_len;
    uint8_t *want = make_idx(0x08, nd, ud, payload, n, &want_len);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *got = malloc(want_len + 1);
    got_len = fread(got, 1, want_len + 1, f);
    fclose(f);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    uint8_t *data = NULL;
    int d[4], got_nd;
    if (fv_idx_read(path, &data, d, &got_nd, &e)) fail_msg("%s: %s", path, e.msg);
    assert_int_equal(got_nd, nd);
    for (int i = 0; i < nd; i++) assert_int_equal(d[i], dims[i]);
    assert_memory_equal(data, payload, n);
    free(data);
    free(got);
    free(want);
    free(payload);
}

static void expect_idx_write_error(const char *path, const int *dims, int nd, const char *what) {
    uint8_t byte = 0;
    fv_err e = {{0}};
    if (fv_idx_write(path, &byte, dims, nd, &e) == 0) fail_msg("%s: a bad IDX write succeeded", path);
    if (!strstr(e.msg, path) || !strstr(e.msg, what)) fail_msg("'%s' lacks '%s' or '%s'", e.msg, path, what);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* no file left */
}

static void test_idx_write(void **state) {
    (void)state;
    check_idx_write("w1.idx", 1, (const int[]){17});
    check_idx_write("w3.idx", 3, (const int[]){5, 4, 3});
    check_idx_write("w4.idx", 4, (const int[]){2, 3, 4, 5});
    check_idx_write("w4.idx", 2, (const int[]){256, 257}); /* overwrites, multi-byte dims */
    expect_idx_write_error(tpath("wzero.idx"), (const int[]){3, 0}, 2, "dimension 1 is 0");
    expect_idx_write_error(tpath("wneg.idx"), (const int[]){-1}, 1, "dimension 0 is -1");
    expect_idx_write_error(tpath("whuge.idx"), (const int[]){65536, 65536, 2}, 3, "limit");
    expect_idx_write_error(tpath("no-such-folder/w.idx"), (const int[]){1}, 1, "cannot create");
}

/* fv_mnist_write then fv_mnist_load: the same data set, grey (3-D images) and colour (4-D). */
static void test_mnist_write_roundtrip(void **state) {
    (void)state;
    const char *dir = tpath("mw");
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int c = 1; c <= 3; c += 2)
        for (int train = 0; train <= 1; train++) {
            fv_dataset d = {.n = 6, .c = c, .h = 4, .w = 5, .classes = 10};
            d.x = pattern((size_t)d.n * c * 4 * 5, 99 + (uint64_t)c);
            d.y = malloc((size_t)d.n);
            for (int i = 0; i < d.n; i++) d.y[i] = (uint8_t)((i * 7 + c) % 10);
            fv_err e = {{0}};
            if (fv_mnist_write(dir, train, &d, &e)) fail_msg("%s", e.msg);
            fv_dataset back;
            if (fv_mnist_load(dir, train, &back, &e)) fail_msg("%s", e.msg);
            assert_int_equal(back.n, d.n);
            assert_int_equal(back.c, c);
            assert_int_equal(back.h, d.h);
            assert_int_equal(back.w, d.w);
            assert_int_equal(back.classes, 10);
            assert_memory_equal(back.x, d.x, (size_t)d.n * c * 4 * 5);
            assert_memory_equal(back.y, d.y, (size_t)d.n);
            fv_dataset_free(&back);
            fv_dataset_free(&d);
        }
    fv_dataset d = {.n = 1, .c = 1, .h = 1, .w = 1, .classes = 10, .x = (uint8_t[]){1}, .y = (uint8_t[]){2}};
    fv_err e = {{0}};
    assert_int_equal(fv_mnist_write(tpath("mw/missing"), 1, &d, &e), -1);
    assert_non_null(strstr(e.msg, "mw/missing/train-images-idx3-ubyte"));
}

static void test_idx_gzip_roundtrip(void **state) {
    (void)state;
    check_idx_roundtrip("g3.idx.gz", 1, 3, (const uint32_t[]){7, 6, 5});
    /* gzip is recognised by its magic, not by the name */
    check_idx_roundtrip("g3-noext.idx", 1, 3, (const uint32_t[]){7, 6, 5});
    /* large enough to cross many inflate buffers */
    check_idx_roundtrip("big.idx.gz", 1, 3, (const uint32_t[]){300, 28, 28});
}

static void test_idx_gzip_multimember(void **state) {
    (void)state;
    /* gzip allows concatenated members: header+half the data in one, the rest in another */
    uint32_t dims[2] = {10, 9};
    uint8_t *payload = pattern(90, 7);
    size_t len, g1, g2;
    uint8_t *b = make_idx(0x08, 2, dims, payload, 90, &len);
    uint8_t *m1 = gzip_bytes(b, 40, &g1), *m2 = gzip_bytes(b + 40, len - 40, &g2);
    uint8_t *cat = malloc(g1 + g2);
    memcpy(cat, m1, g1);
    memcpy(cat + g1, m2, g2);
    const char *path = tpath("multi.gz");
    write_bytes(path, cat, g1 + g2);
    uint8_t *data;
    int d[4], nd;
    fv_err e;
    if (fv_idx_read(path, &data, d, &nd, &e)) fail_msg("%s", e.msg);
    assert_int_equal(nd, 2);
    assert_memory_equal(data, payload, 90);
    free(data);
    free(cat);
    free(m1);
    free(m2);
    free(b);
    free(payload);
}

/* ---------------------------------------------------------------------------------------------
 * IDX: bad files
 */

static void test_idx_bad_magic(void **state) {
    (void)state;
    uint8_t bytes[12] = {0x00, 0x01, 0x08, 0x01, 0, 0, 0, 4, 1, 2, 3, 4};
    write_bytes(tpath("magic.idx"), bytes, sizeof bytes);
    expect_idx_error(tpath("magic.idx"), "not an IDX file");
    const char *html = "<html><body>Not Found</body></html>";
    write_bytes(tpath("html.idx"), html, strlen(html));
    expect_idx_error(tpath("html.idx"), "not an IDX file");
    write_gz(tpath("magic.gz"), bytes, sizeof bytes);
    expect_idx_error(tpath("magic.gz"), "not an IDX file");
    write_bytes(tpath("empty.idx"), "", 0);
    expect_idx_error(tpath("empty.idx"), "too short");
    write_bytes(tpath("short.idx"), "\0\0\x08", 3);
    expect_idx_error(tpath("short.idx"), "too short");
}

static void test_idx_wrong_dtype(void **state) {
    (void)state;
    float f[3] = {1, 2, 3};
    write_idx(tpath("float.idx"), 0, 0x0D, 1, (const uint32_t[]){3}, (const uint8_t *)f, sizeof f);
    expect_idx_error(tpath("float.idx"), "float");
    write_idx(tpath("sbyte.idx"), 0, 0x09, 1, (const uint32_t[]){3}, (const uint8_t *)"abc", 3);
    expect_idx_error(tpath("sbyte.idx"), "signed byte");
    write_idx(tpath("type77.idx"), 1, 0x77, 1, (const uint32_t[]){3}, (const uint8_t *)"abc", 3);
    expect_idx_error(tpath("type77.idx"), "not supported");
}

static void test_idx_bad_ndim(void **state) {
    (void)state;
    write_bytes(tpath("nd0.idx"), "\0\0\x08\0xyz", 7);
    expect_idx_error(tpath("nd0.idx"), "dimensions");
    uint32_t d5[5] = {1, 1, 1, 1, 2};
    write_idx(tpath("nd5.idx"), 0, 0x08, 5, d5, (const uint8_t *)"ab", 2);
    expect_idx_error(tpath("nd5.idx"), "dimensions");
    /* header cut inside the dimensions */
    write_bytes(tpath("cuthdr.idx"), "\0\0\x08\x03\0\0\0\x02\0\0", 10);
    expect_idx_error(tpath("cuthdr.idx"), "truncated IDX header");
}

static void test_idx_truncated(void **state) {
    (void)state;
    uint8_t *p = pattern(60, 1);
    write_idx(tpath("trunc.idx"), 0, 0x08, 3, (const uint32_t[]){5, 3, 4}, p, 59);
    expect_idx_error(tpath("trunc.idx"), "truncated");
    write_idx(tpath("trunc.idx.gz"), 1, 0x08, 3, (const uint32_t[]){5, 3, 4}, p, 59);
    expect_idx_error(tpath("trunc.idx.gz"), "truncated");
    /* no payload at all */
    write_idx(tpath("nopayload.idx"), 0, 0x08, 2, (const uint32_t[]){5, 3}, p, 0);
    expect_idx_error(tpath("nopayload.idx"), "truncated");
    /* a gzip file cut short: the stream itself is truncated */
    size_t len, gl;
    uint8_t *b = make_idx(0x08, 3, (const uint32_t[]){5, 3, 4}, p, 60, &len);
    uint8_t *g = gzip_bytes(b, len, &gl);
    for (size_t cut = 2; cut < gl; cut += (cut < 24 ? 1 : 7)) {
        write_bytes(tpath("cut.gz"), g, cut);
        expect_idx_error(tpath("cut.gz"), NULL);
    }
    /* only the 8-byte trailer (CRC, size) missing: the payload is complete but unverified */
    write_bytes(tpath("notrailer.gz"), g, gl - 8);
    expect_idx_error(tpath("notrailer.gz"), "truncated");
    free(g);
    free(b);
    free(p);
}

static void test_idx_trailing(void **state) {
    (void)state;
    uint8_t *p = pattern(61, 2);
    write_idx(tpath("trail.idx"), 0, 0x08, 3, (const uint32_t[]){5, 3, 4}, p, 61);
    expect_idx_error(tpath("trail.idx"), "unexpected bytes");
    write_idx(tpath("trail.idx.gz"), 1, 0x08, 3, (const uint32_t[]){5, 3, 4}, p, 61);
    expect_idx_error(tpath("trail.idx.gz"), "unexpected bytes");
    /* garbage after a complete gzip member */
    size_t len, gl;
    uint8_t *b = make_idx(0x08, 3, (const uint32_t[]){5, 3, 4}, p, 60, &len);
    uint8_t *g = gzip_bytes(b, len, &gl);
    uint8_t *gg = malloc(gl + 5);
    memcpy(gg, g, gl);
    memcpy(gg + gl, "JUNK!", 5);
    write_bytes(tpath("junk.gz"), gg, gl + 5);
    expect_idx_error(tpath("junk.gz"), "trailing garbage");
    free(gg);
    free(g);
    free(b);
    free(p);
}

static void test_idx_zero_and_absurd_dims(void **state) {
    (void)state;
    write_idx(tpath("zero.idx"), 0, 0x08, 3, (const uint32_t[]){0, 28, 28}, NULL, 0);
    expect_idx_error(tpath("zero.idx"), "dimension 0 is 0");
    write_idx(tpath("zero2.idx"), 1, 0x08, 2, (const uint32_t[]){3, 0}, NULL, 0);
    expect_idx_error(tpath("zero2.idx"), "dimension 1 is 0");
    /* product overflows 32 and 64 bits; must be refused before any allocation */
    write_idx(tpath("huge.idx"), 0, 0x08, 4, (const uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 3}, NULL, 0);
    expect_idx_error(tpath("huge.idx"), NULL);
    write_idx(tpath("huge2.idx"), 0, 0x08, 3, (const uint32_t[]){65536, 65536, 2}, NULL, 0);
    expect_idx_error(tpath("huge2.idx"), "2 GiB");
    /* within the 2 GiB limit but far more than the file holds: refused without allocating */
    write_idx(tpath("big.idx"), 0, 0x08, 3, (const uint32_t[]){1000000, 28, 28}, (const uint8_t *)"x", 1);
    expect_idx_error(tpath("big.idx"), "truncated");
    write_idx(tpath("big.idx.gz"), 1, 0x08, 3, (const uint32_t[]){1000000, 28, 28}, (const uint8_t *)"x", 1);
    expect_idx_error(tpath("big.idx.gz"), "truncated");
}

static void test_idx_corrupt_gzip(void **state) {
    (void)state;
    uint8_t *p = pattern(3000, 3);
    size_t len, gl;
    uint8_t *b = make_idx(0x08, 2, (const uint32_t[]){30, 100}, p, 3000, &len);
    uint8_t *g = gzip_bytes(b, len, &gl);
    /* flip bits in the deflate data: an inflate error or a CRC mismatch, never success */
    for (size_t at = 12; at < gl - 8; at += 97) {
        uint8_t *c = malloc(gl);
        memcpy(c, g, gl);
        c[at] ^= 0x5A;
        write_bytes(tpath("flip.gz"), c, gl);
        expect_idx_error(tpath("flip.gz"), NULL);
        free(c);
    }
    /* a damaged CRC alone */
    g[gl - 6] ^= 1;
    write_bytes(tpath("crc.gz"), g, gl);
    expect_idx_error(tpath("crc.gz"), "corrupt gzip");
    /* a gzip magic followed by nonsense */
    write_bytes(tpath("nonsense.gz"), "\x1f\x8b\x08\x00garbagegarbage", 18);
    expect_idx_error(tpath("nonsense.gz"), NULL);
    free(g);
    free(b);
    free(p);
}

static void test_idx_missing(void **state) {
    (void)state;
    expect_idx_error(tpath("does-not-exist.idx"), "cannot open");
    expect_idx_error(g_dir, "folder");
}

/* ---------------------------------------------------------------------------------------------
 * MNIST layout
 */

/* A small MNIST-layout set in g_dir/<sub>: n images of h x w; images raw or gz. */
static void make_mnist_dir(const char *sub, const char *split, int n, int h, int w, int gz_images, uint64_t seed,
                           uint8_t **x_out, uint8_t **y_out) {
    char d[512], p[600];
    snprintf(d, sizeof d, "%s/%s", g_dir, sub);
    mkdir(d, 0755);
    uint8_t *x = pattern((size_t)n * h * w, seed);
    uint8_t *y = pattern((size_t)n, seed + 1);
    for (int i = 0; i < n; i++) y[i] %= 10;
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", d, split, gz_images ? ".gz" : "");
    write_idx(p, gz_images, 0x08, 3, (const uint32_t[]){(uint32_t)n, (uint32_t)h, (uint32_t)w}, x,
              (size_t)n * h * w);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", d, split);
    write_idx(p, 0, 0x08, 1, (const uint32_t[]){(uint32_t)n}, y, (size_t)n);
    if (x_out)
        *x_out = x;
    else
        free(x);
    if (y_out)
        *y_out = y;
    else
        free(y);
}

static void test_mnist_load(void **state) {
    (void)state;
    uint8_t *x, *y, *xt, *yt;
    make_mnist_dir("m1", "train", 13, 6, 5, 0, 100, &x, &y);
    make_mnist_dir("m1", "t10k", 4, 6, 5, 1, 200, &xt, &yt);
    fv_dataset d;
    fv_err e;
    if (fv_mnist_load(tpath("m1"), 1, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 13);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.h, 6);
    assert_int_equal(d.w, 5);
    assert_int_equal(d.classes, 10);
    assert_memory_equal(d.x, x, 13 * 30);
    assert_memory_equal(d.y, y, 13);
    fv_dataset_free(&d);
    assert_null(d.x);
    assert_int_equal(d.n, 0);
    fv_dataset_free(&d); /* a zeroed struct is fine */
    if (fv_mnist_load(tpath("m1"), 0, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 4);
    assert_memory_equal(d.x, xt, 4 * 30);
    assert_memory_equal(d.y, yt, 4);
    fv_dataset_free(&d);
    free(x);
    free(y);
    free(xt);
    free(yt);
}

/* fv_mnist_load(dir) must fail; the message must contain every string in want. */
static void expect_mnist_error(const char *dir, int train, const char *want1, const char *want2) {
    fv_dataset d = {0};
    fv_err e = {{0}};
    if (fv_mnist_load(dir, train, &d, &e) != -1) fail_msg("%s: expected an error", dir);
    if (want1 && !strstr(e.msg, want1)) fail_msg("error lacks '%s': %s", want1, e.msg);
    if (want2 && !strstr(e.msg, want2)) fail_msg("error lacks '%s': %s", want2, e.msg);
    assert_null(d.x);
}

static void test_mnist_errors(void **state) {
    (void)state;
    char p[600];
    /* count mismatch: 9 images, 8 labels */
    make_mnist_dir("m2", "train", 9, 4, 4, 0, 1, NULL, NULL);
    snprintf(p, sizeof p, "%s/m2/train-labels-idx1-ubyte", g_dir);
    write_idx(p, 0, 0x08, 1, (const uint32_t[]){8}, (const uint8_t *)"\1\2\3\4\5\6\7\0", 8);
    expect_mnist_error(tpath("m2"), 1, "9 images", "8 labels");
    expect_mnist_error(tpath("m2"), 1, "m2/train-images-idx3-ubyte", "m2/train-labels-idx1-ubyte");
    /* a label out of range, named with its index */
    write_idx(p, 0, 0x08, 1, (const uint32_t[]){9}, (const uint8_t *)"\1\2\3\4\5\6\x0a\0\1", 9);
    expect_mnist_error(tpath("m2"), 1, "m2/train-labels-idx1-ubyte", "label 10 at index 6");
    /* labels with two dimensions */
    write_idx(p, 0, 0x08, 2, (const uint32_t[]){9, 1}, (const uint8_t *)"\1\2\3\4\5\6\7\0\1", 9);
    expect_mnist_error(tpath("m2"), 1, "train-labels-idx1-ubyte", "dimensions");
    /* images with one dimension */
    make_mnist_dir("m3", "train", 9, 4, 4, 0, 1, NULL, NULL);
    snprintf(p, sizeof p, "%s/m3/train-images-idx3-ubyte", g_dir);
    write_idx(p, 0, 0x08, 1, (const uint32_t[]){9}, (const uint8_t *)"\1\2\3\4\5\6\7\0\1", 9);
    expect_mnist_error(tpath("m3"), 1, "train-images-idx3-ubyte", "dimensions");
    /* a bad file inside the set is reported with its name */
    write_bytes(p, "garbage-not-idx", 15);
    expect_mnist_error(tpath("m3"), 1, "m3/train-images-idx3-ubyte", "not an IDX");
    /* missing files */
    expect_mnist_error(tpath("m3"), 0, "t10k-images-idx3-ubyte", "missing");
    expect_mnist_error(tpath("no-such-dir"), 1, "no-such-dir", "missing");
}

/* Regression: `fedvim mix` writes 3-channel data as 4-dimensional IDX (count, channels, rows,
 * columns); the MNIST-layout loader must read it as it is, and cmnist must not re-colour it. */
static void test_mnist_four_dims(void **state) {
    (void)state;
    char p[600];
    make_mnist_dir("m4", "train", 5, 4, 4, 0, 1, NULL, NULL);
    snprintf(p, sizeof p, "%s/m4/train-images-idx3-ubyte", g_dir);
    uint8_t *px = pattern(5 * 3 * 4 * 6, 9);
    write_idx(p, 1, 0x08, 4, (const uint32_t[]){5, 3, 4, 6}, px, 5 * 3 * 4 * 6);
    fv_dataset d = {0};
    fv_err e = {{0}};
    assert_int_equal(fv_mnist_load(tpath("m4"), 1, &d, &e), 0);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 4);
    assert_int_equal(d.w, 6);
    assert_memory_equal(d.x, px, 5 * 3 * 4 * 6);
    fv_dataset_free(&d);
    assert_int_equal(fv_dataset_load("cmnist", tpath("m4"), 1, &d, &e), 0);
    assert_int_equal(d.c, 3);
    assert_memory_equal(d.x, px, 5 * 3 * 4 * 6); /* kept, not re-coloured */
    fv_dataset_free(&d);
    /* more than 4 channels is not an image set */
    free(px);
    px = pattern(5 * 5 * 4 * 6, 3);
    write_idx(p, 0, 0x08, 4, (const uint32_t[]){5, 5, 4, 6}, px, 5 * 5 * 4 * 6);
    expect_mnist_error(tpath("m4"), 1, "m4/train-images-idx3-ubyte", "more than 4 channels");
    free(px);
}

/* ---------------------------------------------------------------------------------------------
 * CIFAR-10
 */

/* A CIFAR-10 batch file with n records; returns labels and pixels (caller frees). */
static void make_cifar(const char *path, int n, uint64_t seed, uint8_t **x_out, uint8_t **y_out) {
    uint8_t *rec = malloc((size_t)n * 3073);
    uint8_t *x = pattern((size_t)n * 3072, seed), *y = pattern((size_t)n, seed + 1);
    for (int i = 0; i < n; i++) {
        y[i] %= 10;
        rec[(size_t)i * 3073] = y[i];
        memcpy(rec + (size_t)i * 3073 + 1, x + (size_t)i * 3072, 3072);
    }
    write_bytes(path, rec, (size_t)n * 3073);
    free(rec);
    if (x_out)
        *x_out = x;
    else
        free(x);
    if (y_out)
        *y_out = y;
    else
        free(y);
}

static void test_cifar_load(void **state) {
    (void)state;
    uint8_t *x1, *y1, *x2, *y2;
    make_cifar(tpath("c1.bin"), 3, 10, &x1, &y1);
    make_cifar(tpath("c2.bin"), 2, 20, &x2, &y2);
    const char *paths[2] = {tpath("c1.bin"), tpath("c2.bin")};
    fv_dataset d;
    fv_err e;
    if (fv_cifar10_load(paths, 2, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.c, 3);
    assert_int_equal(d.h, 32);
    assert_int_equal(d.w, 32);
    assert_int_equal(d.classes, 10);
    assert_memory_equal(d.x, x1, 3 * 3072);
    assert_memory_equal(d.x + 3 * 3072, x2, 2 * 3072);
    assert_memory_equal(d.y, y1, 3);
    assert_memory_equal(d.y + 3, y2, 2);
    fv_dataset_free(&d);
    free(x1);
    free(y1);
    free(x2);
    free(y2);
}

static void expect_cifar_error(const char *path, const char *want) {
    fv_dataset d = {0};
    fv_err e = {{0}};
    const char *pp[1] = {path};
    if (fv_cifar10_load(pp, 1, &d, &e) != -1) fail_msg("%s: expected an error", path);
    if (!strstr(e.msg, path)) fail_msg("error does not name %s: %s", path, e.msg);
    if (want && !strstr(e.msg, want)) fail_msg("error lacks '%s': %s", want, e.msg);
    assert_null(d.x);
}

static void test_cifar_errors(void **state) {
    (void)state;
    uint8_t *rec = pattern(3 * 3073, 5);
    for (int i = 0; i < 3; i++) rec[i * 3073] %= 10;
    write_bytes(tpath("short.bin"), rec, 3 * 3073 - 1);
    expect_cifar_error(tpath("short.bin"), "multiple");
    write_bytes(tpath("long.bin"), rec, 2 * 3073 + 1);
    expect_cifar_error(tpath("long.bin"), "multiple");
    write_bytes(tpath("empty.bin"), rec, 0);
    expect_cifar_error(tpath("empty.bin"), "multiple");
    rec[2 * 3073] = 10;
    write_bytes(tpath("label.bin"), rec, 3 * 3073);
    expect_cifar_error(tpath("label.bin"), "label 10 of record 2");
    expect_cifar_error(tpath("none.bin"), "cannot open");
    free(rec);
}

static void test_cifar_dir(void **state) {
    (void)state;
    char d[512], p[600];
    /* the layout of the official archive: <dir>/cifar-10-batches-bin/ */
    snprintf(d, sizeof d, "%s/cifar", g_dir);
    mkdir(d, 0755);
    snprintf(d, sizeof d, "%s/cifar/cifar-10-batches-bin", g_dir);
    mkdir(d, 0755);
    uint8_t *ys[5];
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", d, i + 1);
        make_cifar(p, i + 1, 100 + (uint64_t)i, NULL, &ys[i]);
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", d);
    make_cifar(p, 2, 300, NULL, NULL);
    fv_dataset ds;
    fv_err e;
    if (fv_cifar10_load_dir(tpath("cifar"), 1, &ds, &e)) fail_msg("%s", e.msg);
    assert_int_equal(ds.n, 15);
    for (int i = 0, k = 0; i < 5; i++)
        for (int j = 0; j <= i; j++, k++) assert_int_equal(ds.y[k], ys[i][j]);
    fv_dataset_free(&ds);
    if (fv_cifar10_load_dir(tpath("cifar"), 0, &ds, &e)) fail_msg("%s", e.msg);
    assert_int_equal(ds.n, 2);
    fv_dataset_free(&ds);
    /* an incomplete set names the missing batch */
    snprintf(p, sizeof p, "%s/data_batch_4.bin", d);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(fv_cifar10_load_dir(tpath("cifar"), 1, &ds, &e), -1);
    if (!strstr(e.msg, "data_batch_4.bin")) fail_msg("%s", e.msg);
    assert_int_equal(fv_cifar10_load_dir(tpath("no-cifar"), 1, &ds, &e), -1);
    if (!strstr(e.msg, "no-cifar") || !strstr(e.msg, "cifar-10-binary.tar.gz")) fail_msg("%s", e.msg);
    for (int i = 0; i < 5; i++) free(ys[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Colored MNIST
 */

/* n grey 8x8 images with pixel 0 = 0 (pure background), pixel 1 = 255 (pure foreground). */
static fv_dataset grey_set(int n) {
    fv_dataset g = {.n = n, .c = 1, .h = 8, .w = 8, .classes = 10};
    g.x = pattern((size_t)n * 64, 77);
    g.y = pattern((size_t)n, 78);
    for (int i = 0; i < n; i++) {
        g.y[i] %= 10;
        g.x[i * 64] = 0;
        g.x[i * 64 + 1] = 255;
    }
    return g;
}

static void test_cmnist(void **state) {
    (void)state;
    const int n = 600; /* > 256: the OpenMP path runs */
    fv_dataset g = grey_set(n), a, b, c;
    fv_cmnist_make(&g, 1, &a);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    fv_cmnist_make(&g, 1, &b); /* same bytes whatever the thread count */
    omp_set_num_threads(threads);
    fv_cmnist_make(&g, 2, &c);
    assert_int_equal(a.n, n);
    assert_int_equal(a.c, 3);
    assert_int_equal(a.h, 8);
    assert_int_equal(a.w, 8);
    assert_int_equal(a.classes, 10);
    assert_memory_equal(a.y, g.y, (size_t)n);
    assert_memory_equal(a.x, b.x, (size_t)n * 3 * 64);
    size_t same = 0;
    for (size_t i = 0; i < (size_t)n * 3 * 64; i++) same += a.x[i] == c.x[i];
    if (same > (size_t)n * 3 * 64 / 10) fail_msg("seeds 1 and 2 agree on %zu of %d bytes", same, n * 3 * 64);
    int distinct_fg = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *im = a.x + (size_t)i * 192;
        int bg[3], fg[3], d2 = 0;
        for (int ch = 0; ch < 3; ch++) {
            bg[ch] = im[ch * 64 + 0];
            fg[ch] = im[ch * 64 + 1];
            d2 += (fg[ch] - bg[ch]) * (fg[ch] - bg[ch]);
        }
        /* fg and bg at least 160 apart in RGB (the generator's minimum) */
        if (d2 < 160 * 160) fail_msg("image %d: fg (%d,%d,%d) and bg (%d,%d,%d) too close", i, fg[0], fg[1], fg[2],
                                     bg[0], bg[1], bg[2]);
        /* every pixel is the blend of the two colours, rounded */
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 64; p++) {
                int v = g.x[i * 64 + p];
                double want = bg[ch] + (fg[ch] - bg[ch]) * v / 255.0;
                if (fabs(im[ch * 64 + p] - want) > 0.5 + 1e-9)
                    fail_msg("image %d ch %d px %d: %d, want %.2f", i, ch, p, im[ch * 64 + p], want);
            }
        if (i) {
            const uint8_t *prev = a.x + (size_t)(i - 1) * 192;
            distinct_fg += fg[0] != prev[1] || fg[1] != prev[65] || fg[2] != prev[129];
        }
    }
    if (distinct_fg < n / 2) fail_msg("foreground colours barely vary (%d changes in %d images)", distinct_fg, n);
    /* the colour of image i depends on (seed, i) only, not on the other images */
    fv_dataset g2 = grey_set(n), d;
    fv_dataset_truncate(&g2, 10);
    fv_cmnist_make(&g2, 1, &d);
    assert_memory_equal(d.x, a.x, 10 * 192);
    fv_dataset_free(&d);
    fv_dataset_free(&g2);
    fv_dataset_free(&a);
    fv_dataset_free(&b);
    fv_dataset_free(&c);
    fv_dataset_free(&g);
}

/* ---------------------------------------------------------------------------------------------
 * Normalisation, float batches, labels, truncate
 */

static void test_norm_for(void **state) {
    (void)state;
    fv_norm m = fv_norm_for("mnist"), f = fv_norm_for("fashion"), c = fv_norm_for("cifar10"),
            cm = fv_norm_for("cmnist"), u = fv_norm_for("nonsense"), nul = fv_norm_for(NULL);
    for (int i = 0; i < 4; i++) {
        assert_float_equal(m.mean[i], 0.1307f, 0);
        assert_float_equal(m.std[i], 0.3081f, 0);
        assert_float_equal(f.mean[i], 0.2860f, 0);
        assert_float_equal(f.std[i], 0.3530f, 0);
        assert_float_equal(cm.mean[i], 0.5f, 0);
        assert_float_equal(cm.std[i], 0.5f, 0);
        assert_float_equal(u.mean[i], 0.0f, 0);
        assert_float_equal(u.std[i], 1.0f, 0);
        assert_float_equal(nul.std[i], 1.0f, 0);
    }
    assert_float_equal(c.mean[0], 0.4914f, 0);
    assert_float_equal(c.mean[2], 0.4465f, 0);
    assert_float_equal(c.std[1], 0.2435f, 0);
}

static void test_to_float_and_labels(void **state) {
    (void)state;
    fv_dataset d = {.n = 6, .c = 3, .h = 2, .w = 3, .classes = 10};
    d.x = pattern(6 * 18, 9);
    d.y = malloc(6);
    for (int i = 0; i < 6; i++) d.y[i] = (uint8_t)(9 - i);
    d.x[0] = 0;
    d.x[1] = 255;
    d.x[2] = 128;
    fv_norm nm = fv_norm_for("cifar10");
    float out[4 * 18];
    /* a range */
    fv_dataset_to_float(&d, NULL, 1, 4, nm, out);
    for (int k = 0; k < 4; k++)
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 6; p++) {
                double want = (d.x[(1 + k) * 18 + ch * 6 + p] / 255.0 - nm.mean[ch]) / nm.std[ch];
                assert_float_equal(out[k * 18 + ch * 6 + p], want, 1e-6);
            }
    /* an index list, with repeats */
    int idx[4] = {5, 0, 0, 3};
    fv_dataset_to_float(&d, idx, 0, 4, nm, out);
    for (int k = 0; k < 4; k++)
        for (int ch = 0; ch < 3; ch++)
            for (int p = 0; p < 6; p++) {
                double want = (d.x[idx[k] * 18 + ch * 6 + p] / 255.0 - nm.mean[ch]) / nm.std[ch];
                assert_float_equal(out[k * 18 + ch * 6 + p], want, 1e-6);
            }
    /* the exact end points for MNIST constants */
    fv_norm mn = fv_norm_for("mnist");
    fv_dataset_to_float(&d, NULL, 0, 1, mn, out);
    assert_float_equal(out[0], -0.1307 / 0.3081, 1e-6);
    assert_float_equal(out[1], (1.0 - 0.1307) / 0.3081, 1e-6);
    assert_float_equal(out[2], (128 / 255.0 - 0.1307) / 0.3081, 1e-6);
    int lab[4];
    fv_dataset_labels(&d, NULL, 2, 3, lab);
    assert_int_equal(lab[0], 7);
    assert_int_equal(lab[1], 6);
    assert_int_equal(lab[2], 5);
    fv_dataset_labels(&d, idx, 0, 4, lab);
    assert_int_equal(lab[0], 4);
    assert_int_equal(lab[1], 9);
    assert_int_equal(lab[3], 6);
    fv_dataset_truncate(&d, 2);
    assert_int_equal(d.n, 2);
    fv_dataset_free(&d);
}

static void test_to_float_large_parallel(void **state) {
    (void)state;
    /* big enough for the OpenMP path; compare against a plain loop */
    fv_dataset d = {.n = 2000, .c = 1, .h = 28, .w = 28, .classes = 10};
    d.x = pattern((size_t)2000 * 784, 11);
    d.y = calloc(2000, 1);
    float *out = malloc(sizeof(float) * 2000 * 784);
    fv_norm nm = fv_norm_for("fashion");
    fv_dataset_to_float(&d, NULL, 0, 2000, nm, out);
    for (size_t i = 0; i < (size_t)2000 * 784; i++) {
        double want = (d.x[i] / 255.0 - 0.2860) / 0.3530;
        if (fabs(out[i] - want) > 1e-6) fail_msg("pixel %zu: %g want %g (tol 1e-6)", i, out[i], want);
    }
    free(out);
    fv_dataset_free(&d);
}

/* ---------------------------------------------------------------------------------------------
 * By name
 */

static void test_load_by_name(void **state) {
    (void)state;
    fv_dataset d;
    fv_err e;
    assert_int_equal(fv_dataset_load("imagenet", NULL, 1, &d, &e), -1);
    if (!strstr(e.msg, "imagenet") || !strstr(e.msg, "mnist")) fail_msg("%s", e.msg);
    /* an empty FEDVIM_DATA: errors say what is missing and how to get it */
    const char *old = getenv("FEDVIM_DATA");
    char *saved = old ? strdup(old) : NULL;
    char empty[600];
    snprintf(empty, sizeof empty, "%s/emptydata", g_dir);
    mkdir(empty, 0755);
    setenv("FEDVIM_DATA", empty, 1);
    assert_int_equal(fv_dataset_load("mnist", NULL, 1, &d, &e), -1);
    if (!strstr(e.msg, "emptydata/mnist/train-images-idx3-ubyte") || !strstr(e.msg, "scripts/setup.sh"))
        fail_msg("%s", e.msg);
    assert_int_equal(fv_dataset_load("cmnist", NULL, 0, &d, &e), -1);
    if (!strstr(e.msg, "t10k-labels-idx1-ubyte") || !strstr(e.msg, "scripts/setup.sh")) fail_msg("%s", e.msg);
    assert_int_equal(fv_dataset_load("cifar10", NULL, 1, &d, &e), -1);
    if (!strstr(e.msg, "emptydata/cifar10") || !strstr(e.msg, "cifar-10-binary")) fail_msg("%s", e.msg);
    /* FEDVIM_DATA/fashion takes precedence over the system package */
    make_mnist_dir("emptydata/fashion", "t10k", 5, 28, 28, 1, 3, NULL, NULL);
    assert_int_equal(fv_dataset_load("fashion", NULL, 1, &d, &e), -1);
    if (!strstr(e.msg, "emptydata/fashion/train-images") || !strstr(e.msg, "dataset-fashion-mnist"))
        fail_msg("%s", e.msg);
    if (fv_dataset_load("fashion", NULL, 0, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 5);
    fv_dataset_free(&d);
    /* an explicit folder; cmnist is built from the MNIST files there */
    uint8_t *x, *y;
    make_mnist_dir("named", "train", 7, 4, 4, 0, 50, &x, &y);
    if (fv_dataset_load("mnist", tpath("named"), 1, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 7);
    assert_memory_equal(d.x, x, 7 * 16);
    fv_dataset_free(&d);
    if (fv_dataset_load("cmnist", tpath("named"), 1, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.c, 3);
    assert_memory_equal(d.y, y, 7);
    fv_dataset grey = {.n = 7, .c = 1, .h = 4, .w = 4, .classes = 10, .x = x, .y = y}, want;
    fv_cmnist_make(&grey, 1, &want); /* train split uses seed 1 */
    assert_memory_equal(d.x, want.x, 7 * 48);
    fv_dataset_free(&want);
    fv_dataset_free(&d);
    free(x);
    free(y);
    if (saved) {
        setenv("FEDVIM_DATA", saved, 1);
        free(saved);
    } else {
        unsetenv("FEDVIM_DATA");
    }
}

/* ---------------------------------------------------------------------------------------------
 * The real data sets, when installed
 */

static void check_counts(const fv_dataset *d, const int *want, const char *what) {
    int c[10] = {0};
    for (int i = 0; i < d->n; i++) c[d->y[i]]++;
    for (int k = 0; k < 10; k++)
        if (c[k] != want[k]) fail_msg("%s: class %d has %d images, expected %d", what, k, c[k], want[k]);
}

static void test_real_mnist(void **state) {
    (void)state;
    const char *root = getenv("FEDVIM_DATA");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/mnist", root ? root : "");
    struct stat st;
    if (!root || stat(probe, &st) != 0) {
        print_message("FEDVIM_DATA/mnist not present: real MNIST check skipped (run scripts/setup.sh)\n");
        skip();
    }
    static const int train_counts[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    static const int test_counts[10] = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
    fv_dataset d;
    fv_err e;
    if (fv_dataset_load("mnist", NULL, 1, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 60000);
    assert_int_equal(d.h, 28);
    assert_int_equal(d.w, 28);
    check_counts(&d, train_counts, "MNIST train");
    /* the mean pixel matches the conventional normalisation constant (to 1e-3) */
    double s = 0;
    for (size_t i = 0; i < (size_t)d.n * 784; i++) s += d.x[i];
    assert_float_equal(s / ((double)d.n * 784 * 255), 0.1307, 1e-3);
    fv_dataset_free(&d);
    if (fv_dataset_load("mnist", NULL, 0, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 10000);
    check_counts(&d, test_counts, "MNIST test");
    fv_dataset_free(&d);
}

static void test_real_fashion(void **state) {
    (void)state;
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &st) != 0) {
        print_message("dataset-fashion-mnist not installed: check skipped\n");
        skip();
    }
    int want[10];
    for (int k = 0; k < 10; k++) want[k] = 1000;
    fv_dataset d;
    fv_err e;
    /* the test split only: the gzip path on a real file, fast enough for CI */
    if (fv_dataset_load("fashion", "/usr/share/datasets/fashion-mnist", 0, &d, &e)) fail_msg("%s", e.msg);
    assert_int_equal(d.n, 10000);
    assert_int_equal(d.h, 28);
    check_counts(&d, want, "Fashion-MNIST test");
    fv_dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_raw_roundtrip),
        cmocka_unit_test(test_idx_gzip_roundtrip),
        cmocka_unit_test(test_idx_write),
        cmocka_unit_test(test_mnist_write_roundtrip),
        cmocka_unit_test(test_idx_gzip_multimember),
        cmocka_unit_test(test_idx_bad_magic),
        cmocka_unit_test(test_idx_wrong_dtype),
        cmocka_unit_test(test_idx_bad_ndim),
        cmocka_unit_test(test_idx_truncated),
        cmocka_unit_test(test_idx_trailing),
        cmocka_unit_test(test_idx_zero_and_absurd_dims),
        cmocka_unit_test(test_idx_corrupt_gzip),
        cmocka_unit_test(test_idx_missing),
        cmocka_unit_test(test_mnist_load),
        cmocka_unit_test(test_mnist_errors),
        cmocka_unit_test(test_mnist_four_dims),
        cmocka_unit_test(test_cifar_load),
        cmocka_unit_test(test_cifar_errors),
        cmocka_unit_test(test_cifar_dir),
        cmocka_unit_test(test_cmnist),
        cmocka_unit_test(test_norm_for),
        cmocka_unit_test(test_to_float_and_labels),
        cmocka_unit_test(test_to_float_large_parallel),
        cmocka_unit_test(test_load_by_name),
        cmocka_unit_test(test_real_mnist),
        cmocka_unit_test(test_real_fashion),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
