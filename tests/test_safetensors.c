/* test_safetensors.c: safetensors round trips (raw tensor lists and whole nets), the exact bytes
 * of a tiny file checked by hand, every kind of corrupt input (each must give an error that names
 * the file and, where there is one, the tensor: never a crash), a random-corruption sweep, and
 * interoperability with Python: an independent reader/writer in Python's json + numpy when
 * python3 has numpy, and the reference safetensors package when it is importable (skipped
 * otherwise). Values are compared bit for bit (a round trip is exact).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/net.h"
#include "rng.h"
#include "io/safetensors.h"

static char g_dir[64];

static const char *tpath(const char *name) {
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int setup(void **st) {
    strcpy(g_dir, "/tmp/fv_test_st_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **st) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_bytes(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
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

/* A raw file image: u64 header length (hlen, or strlen(json) when hlen is UINT64_MAX), the
 * header text, then ndata data bytes (a counting pattern). Caller frees. */
static uint8_t *make_image(const char *json, uint64_t hlen, size_t ndata, size_t *len) {
    size_t j = strlen(json);
    if (hlen == UINT64_MAX) hlen = j;
    *len = 8 + j + ndata;
    uint8_t *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b + 8, json, j);
    for (size_t i = 0; i < ndata; i++) b[8 + j + i] = (uint8_t)i;
    return b;
}

static void assert_has(const char *msg, const char *want) {
    if (!strstr(msg, want)) fail_msg("error message '%s' lacks '%s'", msg, want);
}

/* The input must be rejected, from a file and from memory, with both substrings in the message
 * (want2 may be NULL). */
static void expect_bad_image(const uint8_t *img, size_t len, const char *want1, const char *want2) {
    const char *p = tpath("bad.safetensors");
    write_bytes(p, img, len);
    fv_err e;
    memset(&e, 0, sizeof e);
    fv_st_file *f = fv_st_read(p, &e);
    if (f) fail_msg("accepted a bad file (expected an error with '%s')", want1);
    assert_has(e.msg, p);
    assert_has(e.msg, want1);
    if (want2) assert_has(e.msg, want2);
    memset(&e, 0, sizeof e);
    f = fv_st_read_mem(img, len, "mem-input", &e);
    if (f) fail_msg("accepted a bad image (expected an error with '%s')", want1);
    assert_has(e.msg, "mem-input");
    assert_has(e.msg, want1);
    if (want2) assert_has(e.msg, want2);
}

static void expect_bad(const char *json, size_t ndata, const char *want1, const char *want2) {
    size_t len;
    uint8_t *img = make_image(json, UINT64_MAX, ndata, &len);
    expect_bad_image(img, len, want1, want2);
    free(img);
}

static void expect_good(const char *json, size_t ndata, int ntensors) {
    size_t len;
    uint8_t *img = make_image(json, UINT64_MAX, ndata, &len);
    fv_err e = {{0}};
    fv_st_file *f = fv_st_read_mem(img, len, "good", &e);
    if (!f) fail_msg("rejected a valid header %s: %s", json, e.msg);
    assert_int_equal(f->n, ntensors);
    fv_st_file_destroy(&f);
    assert_null(f);
    free(img);
}

/* ---- raw tensor lists ---- */

static void test_roundtrip_raw(void **st) {
    float a[6] = {1.0f, -2.5f, 0.0f, -0.0f, INFINITY, 1e-40f /* subnormal */};
    float b = NAN;
    float c[24];
    for (int i = 0; i < 24; i++) c[i] = (float)i * 0.125f - 1.0f;
    fv_st_tensor t[4] = {
        {.name = "layer.0.weight", .ndim = 2, .dims = {2, 3}, .data = a},
        {.name = "scalar", .ndim = 0, .data = &b},
        {.name = "empty", .ndim = 2, .dims = {0, 5}, .data = NULL},
        {.name = "q\"uo\\te\n\x01 \xc2\xb5 \xf0\x9f\x98\x80", .ndim = 4, .dims = {1, 2, 3, 4}, .data = c},
    };
    const char *meta[] = {"format", "pt", "note", "tab\there \"quoted\" \\ /", "empty", ""};
    const char *p = tpath("rt.safetensors");
    fv_err e = {{0}};
    assert_int_equal(fv_st_write(p, t, 4, meta, 3, &e), 0);

    size_t len;
    uint8_t *img = slurp(p, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | img[i];
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(len, 8 + hlen + (6 + 1 + 0 + 24) * 4);
    free(img);

    fv_st_file *f = fv_st_read(p, &e);
    if (!f) fail_msg("%s", e.msg);
    assert_int_equal(f->n, 4);
    for (int i = 0; i < 4; i++) {
        const fv_st_tensor *r = &f->tensors[i];
        assert_string_equal(r->name, t[i].name);
        assert_int_equal(r->ndim, t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) assert_int_equal(r->dims[d], t[i].dims[d]);
        assert_int_equal(fv_st_numel(r), fv_st_numel(&t[i]));
        if (fv_st_numel(r)) assert_memory_equal(r->data, t[i].data, fv_st_numel(r) * 4);
        assert_ptr_equal(fv_st_find(f, t[i].name), r);
    }
    assert_null(fv_st_find(f, "nope"));
    assert_int_equal(f->nmeta, 3);
    for (int i = 0; i < 3; i++) assert_string_equal(fv_st_meta(f, meta[2 * i]), meta[2 * i + 1]);
    assert_null(fv_st_meta(f, "nope"));
    fv_st_file_destroy(&f);
    fv_st_file_destroy(&f); /* NULL is fine */

    /* no tensors, no metadata */
    assert_int_equal(fv_st_write(p, NULL, 0, NULL, 0, &e), 0);
    f = fv_st_read(p, &e);
    assert_non_null(f);
    assert_int_equal(f->n, 0);
    assert_int_equal(f->nmeta, 0);
    fv_st_file_destroy(&f);
}

/* The exact bytes of a tiny file, checked by hand: tensor "a" = [1, -2] and metadata k = v.
 * Header: {"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}
 * which is 79 bytes, padded with 1 space to 80 = 0x50; data 1.0f = 00 00 80 3f, -2.0f =
 * 00 00 00 c0. */
static void test_exact_bytes(void **st) {
    const float a[2] = {1.0f, -2.0f};
    fv_st_tensor t = {.name = "a", .ndim = 1, .dims = {2}, .data = a};
    const char *meta[] = {"k", "v"};
    const char *p = tpath("tiny.safetensors");
    fv_err e;
    assert_int_equal(fv_st_write(p, &t, 1, meta, 1, &e), 0);
    const char *json = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                       "\"data_offsets\":[0,8]}}";
    assert_int_equal(strlen(json), 79);
    uint8_t want[8 + 80 + 8];
    const uint8_t prefix[8] = {0x50, 0, 0, 0, 0, 0, 0, 0};
    memcpy(want, prefix, 8);
    memcpy(want + 8, json, 79);
    want[8 + 79] = ' ';
    const uint8_t data[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    memcpy(want + 88, data, 8);
    size_t len;
    uint8_t *got = slurp(p, &len);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    free(got);

    /* without metadata: {"a":{...}} is 54 bytes, padded with 2 spaces to 56 */
    assert_int_equal(fv_st_write(p, &t, 1, NULL, 0, &e), 0);
    got = slurp(p, &len);
    const char *json2 = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    assert_int_equal(strlen(json2), 54);
    assert_int_equal(len, 8 + 56 + 8);
    assert_int_equal(got[0], 56);
    assert_memory_equal(got + 8, json2, 54);
    assert_memory_equal(got + 8 + 54, "  ", 2);
    assert_memory_equal(got + 64, data, 8);
    free(got);
}

static void test_write_errors(void **st) {
    float x = 1;
    fv_err e;
    fv_st_tensor t[2] = {{.name = "w", .ndim = 1, .dims = {1}, .data = &x},
                         {.name = "w", .ndim = 1, .dims = {1}, .data = &x}};
    const char *p = tpath("werr.safetensors");
    assert_int_equal(fv_st_write(p, t, 2, NULL, 0, &e), -1);
    assert_has(e.msg, "'w' occurs twice");
    t[1].name = "__metadata__";
    assert_int_equal(fv_st_write(p, t, 2, NULL, 0, &e), -1);
    assert_has(e.msg, "reserved");
    t[1].name = "";
    assert_int_equal(fv_st_write(p, t, 2, NULL, 0, &e), -1);
    assert_has(e.msg, "empty name");
    t[1].name = "bad\xff";
    assert_int_equal(fv_st_write(p, t, 2, NULL, 0, &e), -1);
    assert_has(e.msg, "UTF-8");
    const char *meta[] = {"k", "1", "k", "2"};
    assert_int_equal(fv_st_write(p, t, 1, meta, 2, &e), -1);
    assert_has(e.msg, "'k' occurs twice");
    assert_int_equal(access(p, F_OK), -1); /* nothing was written */
    /* unwritable place: an error, no file */
    const char *q = tpath("no/such/dir/x.safetensors");
    assert_int_equal(fv_st_write(q, t, 1, NULL, 0, &e), -1);
    assert_has(e.msg, "no/such/dir");
    assert_int_equal(access(q, F_OK), -1);
}

/* ---- corrupt inputs ---- */

#define T_OK "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_valid_variants(void **st) {
    expect_good("{" T_OK "}", 8, 1);
    expect_good("{}", 0, 0);
    expect_good("{}      ", 0, 0);
    /* whitespace anywhere JSON allows it, keys in any order, escapes in the name */
    expect_good("{ \"w\\u00b5\\ud83d\\ude00\\/\" :\n{ \"shape\" : [ 2 ] , \"data_offsets\":[0 ,8],"
                "\t\"dtype\":\"F32\"}\r\n, \"__metadata__\":{}}  \n ",
                8, 1);
    /* zero-size and scalar tensors; data order differs from header order */
    expect_good("{\"b\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[8,12]},"
                "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]}," T_OK "}",
                12, 3);
}

static void test_bad_prefix(void **st) {
    /* shorter than the 8-byte length */
    for (size_t n = 0; n < 8; n++) {
        uint8_t b[8] = {0};
        expect_bad_image(b, n, "too short", NULL);
    }
    size_t len;
    uint8_t *img = make_image("{" T_OK "}", (uint64_t)200 * 1000 * 1000, 8, &len);
    expect_bad_image(img, len, "exceeds the limit", NULL);
    free(img);
    img = make_image("{" T_OK "}", UINT64_MAX - 1, 8, &len);
    expect_bad_image(img, len, "exceeds the limit", NULL);
    free(img);
    img = make_image("{" T_OK "}", 1000, 8, &len);
    expect_bad_image(img, len, "runs past the end of the file", NULL);
    free(img);
    img = make_image("{" T_OK "}", 0, 8, &len);
    expect_bad_image(img, len, "does not start with '{'", NULL);
    free(img);
    expect_bad(" {" T_OK "}", 8, "does not start with '{'", NULL);
    expect_bad("[]", 0, "does not start with '{'", NULL);
}

/* Every proper prefix of a valid file is rejected (truncation anywhere). */
static void test_truncated(void **st) {
    float a[3] = {1, 2, 3}, b[2] = {4, 5};
    fv_st_tensor t[2] = {{.name = "a", .ndim = 1, .dims = {3}, .data = a},
                         {.name = "b", .ndim = 2, .dims = {1, 2}, .data = b}};
    const char *meta[] = {"k", "v"};
    const char *p = tpath("trunc.safetensors");
    fv_err e;
    assert_int_equal(fv_st_write(p, t, 2, meta, 1, &e), 0);
    size_t len;
    uint8_t *img = slurp(p, &len);
    for (size_t n = 0; n < len; n++) {
        memset(&e, 0, sizeof e);
        fv_st_file *f = fv_st_read_mem(img, n, "cut", &e);
        if (f) fail_msg("accepted a file cut to %zu of %zu bytes", n, len);
        assert_true(strlen(e.msg) > 0);
    }
    /* cut inside the data: the message names the tensor and says truncated */
    write_bytes(p, img, len - 2);
    assert_null(fv_st_read(p, &e));
    assert_has(e.msg, "tensor 'b'");
    assert_has(e.msg, "truncated");
    free(img);
}

static void test_bad_json(void **st) {
    const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{" T_OK, "'}' expected near end of file"},
        {"{" T_OK ",}", "string or '}' expected"},
        {"{" T_OK "}}", "end of file expected"},
        {"{" T_OK "} x", "end of file expected near 'x'"},
        {"{w:{}}", "string or '}' expected near 'w'"},
        {"{\"w\" {}}", "':' expected"},
        {"{\"w", "premature end of input"},
        {"{\"w\\x\":{}}", "invalid escape near '\"w\\x'"},
        {"{\"w\\u12G4\":{}}", "invalid escape"},
        {"{\"w\\u12", "invalid escape"},
        {"{\"w\\ud800\":{}}", "invalid Unicode '\\uD800'"},
        {"{\"w\\ud800\\u0041\":{}}", "invalid Unicode '\\uD800\\u0041'"},
        {"{\"w\\udc00\":{}}", "invalid Unicode '\\uDC00'"},
        {"{\"w\\u0000\":{}}", "NUL byte in object key"},
        {"{\"w\x01\":{}}", "control character 0x1"},
        {"{\"w\xff\":{}}", "unable to decode byte 0xff"},
        {"{\"w\xc0\xaf\":{}}", "unable to decode byte 0xc0"},     /* overlong '/' */
        {"{\"w\xed\xa0\x80\":{}}", "unable to decode byte 0xed"}, /* encoded surrogate */
        {"{\"w\":{}}", "empty entry"},
        {"{\"w\":[]}", "tensor 'w': the entry must be an object"},
        {"{\"w\":\"F32\"}", "must be an object {\"dtype\", \"shape\", \"data_offsets\"}, found a string"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "lacks 'data_offsets'"},
        {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "lacks 'shape'"},
        {"{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "lacks 'dtype'"},
        {"{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "duplicate object key near '\"dtype\"'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}",
         "unknown key 'extra'"},
        {"{\"w\":{\"dtype\":F32,\"shape\":[2],\"data_offsets\":[0,8]}}", "invalid token near 'F'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", "must be an integer"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", "must be an integer"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", "shape[0] is -2: must be non-negative"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", "invalid token near '0'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "shape[0] must be an integer, found a string"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}", "unexpected token near ']'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2 3],\"data_offsets\":[0,8]}}", "']' expected near '3'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
         "shape has 9 elements, more than 8"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", "data_offsets has 3 elements, more than 2"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", "must have 2 elements"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
         "too big integer near '99999999999999999999'"},
        {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"__metadata__\":{\"k\":1}}",
         "values must be strings"},
        {"{\"__metadata__\":{\"k\":\"v\"},\"__metadata__\":{}," T_OK "}", "duplicate object key near '\"__metadata__\"'"},
        {"{\"__metadata__\":[]," T_OK "}", "__metadata__: must be an object of strings, found an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        print_message("bad json %zu: %s\n", i, cases[i].json);
        expect_bad(cases[i].json, 8, cases[i].want, NULL);
    }
    /* the tensor being parsed is named */
    expect_bad("{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
               "tensor 'conv1.weight'", "must have 2 elements");
    expect_bad("{\"__metadata__\":{\"k\":2}}", 0, "__metadata__", "values must be strings");
}

static void test_bad_semantics(void **st) {
    /* dtypes */
    expect_bad("{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "tensor 'w'",
               "dtype F16 is not supported");
    expect_bad("{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "tensor 'w'",
               "dtype I64 is not supported");
    expect_bad("{\"w\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w'",
               "unknown dtype 'F33'");
    expect_bad("{\"w\":{\"dtype\":\"AVERYLONGDTYPENAME\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "tensor 'w'", "unknown dtype");
    /* shape vs offsets */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "tensor 'w'",
               "the shape needs 12");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
               8, "tensor 'w'", "overflows");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775808],\"data_offsets\":[0,0]}}",
               0, "too big integer near '9223372036854775808'", NULL); /* beyond int64: refused by the parser */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "tensor 'w'",
               "end before they begin");
    /* out of range */
    expect_bad("{" T_OK "}", 4, "tensor 'w'", "run past the end of the data section");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551608,0]}}", 8,
               "too big integer near '18446744073709551608'", NULL);
    /* overlap, gap, trailing bytes */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "tensor 'b'", "overlap tensor 'a'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               8, "overlap", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, "tensor 'b'", "to no tensor");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a'",
               "to no tensor");
    expect_bad("{" T_OK "}", 12, "trailing bytes", NULL);
    /* duplicates */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               8, "duplicate object key near '\"a\"'", NULL);
    expect_bad("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate object key near '\"k\"'", NULL);
}

/* Integers in the header are read exactly as 64-bit values, never through a double: above 2^53
 * a double would change them (2^53 + 1 becomes 2^53), and the messages and dims would show it. */
static void test_large_integers(void **st) {
    /* accepted: a zero-size tensor whose other dimension is 2^53 + 1 comes back exactly */
    size_t len;
    uint8_t *img = make_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740993],\"data_offsets\":[0,0]},"
                              "\"m\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807],\"data_offsets\":[0,0]}}",
                              UINT64_MAX, 0, &len);
    fv_err e = {{0}};
    fv_st_file *f = fv_st_read_mem(img, len, "big", &e);
    if (!f) fail_msg("%s", e.msg);
    assert_true(fv_st_find(f, "w")->dims[1] == 9007199254740993LL);
    assert_true(fv_st_find(f, "m")->dims[1] == INT64_MAX);
    fv_st_file_destroy(&f);
    free(img);
    /* offsets above 2^53 (and at INT64_MAX) are beyond any file: refused, with the exact values */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9007199254740993,9007199254740997]}}",
               8, "tensor 'w'", "data_offsets [9007199254740993, 9007199254740997] run past the end");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9223372036854775803,9223372036854775807]}}",
               8, "tensor 'w'", "[9223372036854775803, 9223372036854775807] run past the end");
    /* spans computed exactly: 2^53 + 1 .. 2^53 + 3 is 2 bytes, not the 4 a double would say */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[9007199254740993,9007199254740995]}}",
               8, "tensor 'w'", "span 2 bytes but the shape needs 4");
    /* negative, non-integer, beyond int64 */
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "tensor 'w'",
               "data_offsets[0] is -8: must be non-negative");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}", 8, "tensor 'w'",
               "data_offsets[1] is a real number (8): must be an integer");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}", 8, "tensor 'w'",
               "must be an integer");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9223372036854775808]}}", 8,
               "too big integer near '9223372036854775808'", "at byte 69");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,null]}}", 8, "tensor 'w'",
               "data_offsets[1] must be an integer, found null");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":0}}}", 8, "tensor 'w'",
               "data_offsets must be an array of integers, found an object");
    expect_bad("{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "tensor 'w'",
               "dtype must be a string, found an integer");
    /* deep nesting is a clear error, not a stack overflow */
    enum { DEEP = 5000 };
    char *deep = malloc(2 * DEEP + 16);
    strcpy(deep, "{\"w\":");
    memset(deep + 5, '[', DEEP);
    memset(deep + 5 + DEEP, ']', DEEP);
    strcpy(deep + 5 + 2 * DEEP, "}");
    expect_bad(deep, 0, "bad safetensors header", "depth");
    free(deep);
}

/* Random byte corruption of a valid file: every result is a clean accept or reject (ASan/UBSan
 * builds check that nothing is read out of bounds). Accepted files must still be self-consistent. */
static void test_random_corruption(void **st) {
    float a[5] = {1, 2, 3, 4, 5};
    fv_st_tensor t[2] = {{.name = "a", .ndim = 1, .dims = {5}, .data = a},
                         {.name = "bb", .ndim = 2, .dims = {2, 2}, .data = a}};
    const char *meta[] = {"key", "value"};
    const char *p = tpath("fuzz.safetensors");
    fv_err e;
    assert_int_equal(fv_st_write(p, t, 2, meta, 1, &e), 0);
    size_t len;
    uint8_t *img = slurp(p, &len);
    uint8_t *mut = malloc(len);
    fv_rng r;
    fv_rng_seed(&r, 12345);
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(mut, img, len);
        int flips = 1 + (int)fv_rng_below(&r, 3);
        for (int k = 0; k < flips; k++) {
            size_t at = fv_rng_below(&r, len);
            mut[at] = fv_rng_below(&r, 2) ? (uint8_t)fv_rng_below(&r, 256) : (uint8_t)(mut[at] ^ 1);
        }
        size_t n = fv_rng_below(&r, 8) ? len : (size_t)fv_rng_below(&r, len + 1);
        fv_st_file *f = fv_st_read_mem(mut, n, "fuzz", &e);
        if (f) {
            accepted++;
            size_t total = 0;
            for (int i = 0; i < f->n; i++) total += fv_st_numel(&f->tensors[i]) * 4;
            uint64_t hlen = 0;
            for (int i = 7; i >= 0; i--) hlen = hlen << 8 | mut[i];
            assert_int_equal(8 + hlen + total, n);
            fv_st_file_destroy(&f);
        }
    }
    print_message("random corruption: %d of 20000 mutants accepted (data or padding bytes)\n",
                  accepted);
    assert_true(accepted > 0 && accepted < 20000);
    free(mut);
    free(img);
}

/* ---- whole nets ---- */

static fv_net *small_net(uint64_t seed) {
    fv_net *net = fv_net_new((fv_shape){1, 8, 8});
    int x = fv_net_conv2d(net, "conv1", 0, 4, 3, 1, 1, 1, 1);
    x = fv_net_batchnorm(net, "bn1", x);
    x = fv_net_relu(net, x);
    x = fv_net_maxpool(net, x, 2, 2, 0);
    x = fv_net_flatten(net, x);
    x = fv_net_linear(net, "fc", x, 10, 1);
    fv_net_finish(net, seed);
    for (size_t i = net->n_train; i < net->n_params; i++) net->params[i] = 0.5f + (float)i; /* BN stats */
    return net;
}

static void test_net_roundtrip(void **st) {
    fv_net *a = small_net(1), *b = small_net(2);
    assert_true(memcmp(a->params, b->params, a->n_params * sizeof(float)) != 0);
    const char *p = tpath("net.safetensors");
    const char *meta[] = {"model", "small", "round", "3"};
    fv_err e;
    assert_int_equal(fv_safetensors_save(p, a, meta, 2, &e), 0);
    if (fv_safetensors_load(p, b, &e) != 0) fail_msg("%s", e.msg);
    assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));

    /* the file holds the state-dict names and shapes */
    fv_st_file *f = fv_st_read(p, &e);
    assert_non_null(f);
    assert_int_equal(f->n, a->n_tensors);
    const fv_st_tensor *w = fv_st_find(f, "conv1.weight");
    assert_non_null(w);
    assert_int_equal(w->ndim, 4);
    assert_int_equal(w->dims[0], 4);
    assert_int_equal(w->dims[1], 1);
    assert_int_equal(w->dims[2], 3);
    assert_int_equal(w->dims[3], 3);
    assert_non_null(fv_st_find(f, "bn1.running_var"));
    const fv_st_tensor *fc = fv_st_find(f, "fc.weight");
    assert_non_null(fc);
    assert_int_equal(fc->ndim, 2);
    assert_int_equal(fc->dims[0], 10);
    assert_int_equal(fc->dims[1], 64);
    assert_string_equal(fv_st_meta(f, "round"), "3");
    fv_st_file_destroy(&f);
    fv_net_destroy(&a);
    fv_net_destroy(&b);
}

/* Build a file from net a's tensors with one change, and check that loading it into b fails with
 * the given message and leaves b untouched. */
static void expect_net_reject(fv_net *a, fv_net *b, const char *drop, const char *rename_from,
                              const char *rename_to, const char *extra, int reshape,
                              const char *want1, const char *want2) {
    fv_st_tensor t[FV_MAX_TENSORS + 1];
    int n = 0;
    float dummy[4] = {0};
    for (int i = 0; i < a->n_tensors; i++) {
        const fv_tensor *nt = &a->tensors[i];
        if (drop && !strcmp(nt->name, drop)) continue;
        fv_st_tensor *o = &t[n++];
        memset(o, 0, sizeof *o);
        o->name = rename_from && !strcmp(nt->name, rename_from) ? rename_to : nt->name;
        o->ndim = nt->ndim;
        for (int d = 0; d < nt->ndim; d++) o->dims[d] = nt->dims[d];
        o->data = a->params + nt->off;
        if (reshape && !strcmp(nt->name, "fc.weight")) { /* same count, other shape */
            o->dims[0] = nt->dims[1];
            o->dims[1] = nt->dims[0];
        }
    }
    if (extra) t[n++] = (fv_st_tensor){.name = extra, .ndim = 1, .dims = {4}, .data = dummy};
    const char *p = tpath("netbad.safetensors");
    fv_err e;
    assert_int_equal(fv_st_write(p, t, n, NULL, 0, &e), 0);
    float *before = malloc(b->n_params * sizeof(float));
    memcpy(before, b->params, b->n_params * sizeof(float));
    memset(&e, 0, sizeof e);
    assert_int_equal(fv_safetensors_load(p, b, &e), -1);
    assert_has(e.msg, p);
    assert_has(e.msg, want1);
    if (want2) assert_has(e.msg, want2);
    assert_memory_equal(before, b->params, b->n_params * sizeof(float));
    free(before);
}

static void test_net_rejects(void **st) {
    fv_net *a = small_net(1), *b = small_net(2);
    expect_net_reject(a, b, "bn1.running_mean", NULL, NULL, NULL, 0, "'bn1.running_mean'",
                      "missing from the file");
    expect_net_reject(a, b, NULL, NULL, NULL, "fc.extra", 0, "'fc.extra'", "not in the model");
    expect_net_reject(a, b, NULL, "conv1.bias", "conv1.b", NULL, 0, "'conv1.b'", "not in the model");
    expect_net_reject(a, b, NULL, NULL, NULL, NULL, 1, "'fc.weight' has shape [64, 10] in the file",
                      "[10, 64] in the model");
    /* a net of another width */
    fv_net *c = fv_net_new((fv_shape){1, 8, 8});
    int x = fv_net_conv2d(c, "conv1", 0, 5, 3, 1, 1, 1, 1);
    x = fv_net_flatten(c, x);
    fv_net_linear(c, "fc", x, 10, 1);
    fv_net_finish(c, 3);
    const char *p = tpath("c.safetensors");
    fv_err e;
    assert_int_equal(fv_safetensors_save(p, c, NULL, 0, &e), 0);
    assert_int_equal(fv_safetensors_load(p, b, &e), -1);
    assert_has(e.msg, "'conv1.weight' has shape [5, 1, 3, 3] in the file but [4, 1, 3, 3]");
    /* a corrupt file reaches the caller as the reader's error */
    write_bytes(p, "\x10\0\0\0\0\0\0\0{}", 10);
    assert_int_equal(fv_safetensors_load(p, b, &e), -1);
    assert_has(e.msg, "runs past the end");
    assert_int_equal(fv_safetensors_load(tpath("missing.safetensors"), b, &e), -1);
    assert_has(e.msg, "cannot open");
    fv_net_destroy(&a);
    fv_net_destroy(&b);
    fv_net_destroy(&c);
}

/* ---- Python interoperability ---- */

/* The first Python that can import module: $FEDVIM_PYTHON, python3 on PATH, /usr/bin/python3
 * (Debian's, where python3-numpy lives when PATH leads to another Python). NULL if none. */
static const char *python_with(const char *module) {
    const char *env = getenv("FEDVIM_PYTHON");
    const char *cands[] = {env && *env ? env : "python3", "python3", "/usr/bin/python3"};
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "'%s' -c 'import %s' >/dev/null 2>&1", cands[i], module);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

/* Python's own json and numpy read our file and write one for us (different key order, spaces,
 * metadata last): an implementation independent of this one. */
static void test_python_json_numpy(void **st) {
    const char *py = python_with("numpy");
    if (!py) {
        print_message("python3 with numpy not available: skipped\n");
        skip();
    }
    float v[12];
    for (int i = 0; i < 12; i++) v[i] = (float)i * 0.25f - 1.5f;
    fv_st_tensor t[2] = {{.name = "x.weight", .ndim = 2, .dims = {3, 4}, .data = v},
                         {.name = "s", .ndim = 0, .data = v + 5}};
    const char *meta[] = {"who", "fedvim"};
    const char *ours = tpath("ours.safetensors"), *theirs = tpath("theirs.safetensors");
    const char *script = tpath("check.py");
    fv_err e;
    assert_int_equal(fv_st_write(ours, t, 2, meta, 1, &e), 0);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs("import json, struct, sys\n"
          "import numpy as np\n"
          "ours, theirs = sys.argv[1], sys.argv[2]\n"
          "b = open(ours, 'rb').read()\n"
          "n = struct.unpack('<Q', b[:8])[0]\n"
          "assert n % 8 == 0\n"
          "h = json.loads(b[8:8 + n].decode('utf-8'))\n"
          "assert h.pop('__metadata__') == {'who': 'fedvim'}\n"
          "data = b[8 + n:]\n"
          "want = (np.arange(12, dtype=np.float32) * 0.25 - 1.5).astype(np.float32)\n"
          "w = h['x.weight']\n"
          "assert w['dtype'] == 'F32' and w['shape'] == [3, 4], w\n"
          "a = np.frombuffer(data[w['data_offsets'][0]:w['data_offsets'][1]], dtype='<f4')\n"
          "assert np.array_equal(a.reshape(3, 4), want.reshape(3, 4)), a\n"
          "s = h['s']\n"
          "assert s['shape'] == []\n"
          "assert np.frombuffer(data[s['data_offsets'][0]:s['data_offsets'][1]], '<f4')[0] == want[5]\n"
          "# a file written by Python: sorted keys, spaces after separators, metadata last\n"
          "y = np.linspace(-1, 1, 6, dtype=np.float32)\n"
          "z = np.array([7.0], dtype=np.float32)\n"
          "hdr = {'y': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [4, 28]},\n"
          "       'z': {'dtype': 'F32', 'shape': [1], 'data_offsets': [0, 4]},\n"
          "       '__metadata__': {'format': 'pt', 'caf\\u00e9': '\\u2713'}}\n"
          "j = json.dumps(hdr, sort_keys=True, indent=1).encode('utf-8')\n"
          "j += b' ' * ((8 - len(j) % 8) % 8)\n"
          "open(theirs, 'wb').write(struct.pack('<Q', len(j)) + j + z.tobytes() + y.tobytes())\n",
          f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s'", py, script, ours, theirs);
    assert_int_equal(system(cmd), 0);
    fv_st_file *r = fv_st_read(theirs, &e);
    if (!r) fail_msg("%s", e.msg);
    const fv_st_tensor *y = fv_st_find(r, "y"), *z = fv_st_find(r, "z");
    assert_non_null(y);
    assert_non_null(z);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->dims[1], 3);
    for (int i = 0; i < 6; i++) assert_true(y->data[i] == (float)(-1.0 + 0.4 * i));
    assert_true(z->data[0] == 7.0f);
    assert_string_equal(fv_st_meta(r, "caf\xc3\xa9"), "\xe2\x9c\x93");
    fv_st_file_destroy(&r);
}

/* The reference implementation, when python3 has it. */
static void test_python_safetensors(void **st) {
    const char *py = python_with("safetensors.numpy");
    if (!py) {
        print_message("python3 module safetensors not available: skipped\n");
        skip();
    }
    fv_net *a = small_net(5);
    const char *ours = tpath("ref_ours.safetensors"), *theirs = tpath("ref_theirs.safetensors");
    const char *vals = tpath("ref_vals.bin"), *script = tpath("ref.py");
    fv_err e;
    const char *meta[] = {"format", "pt"};
    assert_int_equal(fv_safetensors_save(ours, a, meta, 1, &e), 0);
    write_bytes(vals, a->params, a->n_params * sizeof(float));
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs("import sys\n"
          "import numpy as np\n"
          "from safetensors.numpy import load_file, save_file\n"
          "from safetensors import safe_open\n"
          "ours, vals, theirs = sys.argv[1], sys.argv[2], sys.argv[3]\n"
          "d = load_file(ours)\n"
          "flat = np.fromfile(vals, dtype='<f4')\n"
          "got = np.concatenate([d[k].ravel() for k in sys.argv[4:]])\n"
          "assert np.array_equal(got, flat), 'values differ'\n"
          "with safe_open(ours, framework='numpy') as g:\n"
          "    assert g.metadata() == {'format': 'pt'}\n"
          "save_file({k: d[k] * 2 for k in d}, theirs, metadata={'by': 'python'})\n",
          f);
    fclose(f);
    char cmd[8192];
    int at = snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' '%s'", py, script, ours, vals, theirs);
    for (int i = 0; i < a->n_tensors; i++)
        at += snprintf(cmd + at, sizeof cmd - (size_t)at, " '%s'", a->tensors[i].name);
    assert_int_equal(system(cmd), 0);
    fv_net *b = small_net(6);
    if (fv_safetensors_load(theirs, b, &e) != 0) fail_msg("%s", e.msg);
    for (size_t i = 0; i < a->n_params; i++) assert_true(b->params[i] == 2 * a->params[i]);
    fv_net_destroy(&a);
    fv_net_destroy(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_raw),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_valid_variants),
        cmocka_unit_test(test_bad_prefix),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_semantics),
        cmocka_unit_test(test_large_integers),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_net_roundtrip),
        cmocka_unit_test(test_net_rejects),
        cmocka_unit_test(test_python_json_numpy),
        cmocka_unit_test(test_python_safetensors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
