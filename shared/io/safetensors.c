/* safetensors.c: safetensors files of float32 tensors (see safetensors.h for the format and the
 * validation rules). The header is written here (compact JSON of a fixed form) and read with
 * libjansson through io/json_read.h, then checked against the format: only what the format uses
 * (objects, strings, arrays of non-negative integers, read exactly as 64-bit integers). It is
 * strict on purpose: a header that the reference implementation would reject, or that this project
 * cannot represent, is an error naming the file, the byte (JSON syntax) or the tensor, and the
 * problem.
 * Not here: other dtypes (read or write), memory mapping, JSON numbers other than integers.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/json_read.h"

/* ---- small helpers ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void sb_reserve(strbuf *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    b->buf = fv_realloc(b->buf, cap);
    b->cap = cap;
}

static void sb_putc(strbuf *b, char c) {
    sb_reserve(b, 1);
    b->buf[b->len++] = c;
    b->buf[b->len] = 0;
}

static void sb_puts(strbuf *b, const char *s) {
    size_t n = strlen(s);
    sb_reserve(b, n);
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    FV_ASSERT(n >= 0);
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static int host_is_little_endian(void) {
    const uint16_t x = 1;
    return *(const uint8_t *)&x == 1;
}

static void swap32(void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++, b += 4) {
        uint8_t t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

static uint64_t get_le64(const uint8_t *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static void put_le64(uint8_t *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if it is not one (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static int utf8_seq(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    int len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static int utf8_valid(const char *s) {
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int k = utf8_seq(u + i, n - i);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* A JSON string literal for s (valid UTF-8): quotes, backslashes and control characters
 * escaped, everything else verbatim. */
static void json_put_string(strbuf *b, const char *s) {
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\f': sb_puts(b, "\\f"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20) sb_printf(b, "\\u%04x", *p);
            else sb_putc(b, (char)*p);
        }
    }
    sb_putc(b, '"');
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first string that occurs twice in s[0..n) (stride `stride` pointers apart), or NULL. */
static const char *find_duplicate(const char *const *s, int n, int stride) {
    if (n < 2) return NULL;
    const char **c = fv_malloc((size_t)n * sizeof *c);
    for (int i = 0; i < n; i++) c[i] = s[(size_t)i * stride];
    qsort(c, (size_t)n, sizeof *c, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(c[i - 1], c[i])) dup = c[i];
    free(c);
    return dup;
}

/* ---- writing ---- */

size_t fv_st_numel(const fv_st_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->dims[d];
    return n;
}

int fv_st_write(const char *path, const fv_st_tensor *t, int n, const char *const *meta, int nmeta,
                fv_err *e) {
    FV_ASSERT(n >= 0 && nmeta >= 0 && (t || n == 0) && (meta || nmeta == 0));
    size_t data_bytes = 0;
    for (int i = 0; i < n; i++) {
        FV_ASSERT(t[i].name && t[i].ndim >= 0 && t[i].ndim <= FV_ST_MAX_DIMS);
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            FV_ASSERT(t[i].dims[d] >= 0);
            FV_ASSERT(!__builtin_mul_overflow(numel, (size_t)t[i].dims[d], &numel));
        }
        FV_ASSERT(t[i].data || numel == 0);
        FV_ASSERT(numel <= (SIZE_MAX - data_bytes) / 8);
        data_bytes += numel * 4;
        if (!t[i].name[0]) return fv_err_set(e, "writing %s: tensor %d has an empty name", path, i);
        if (!strcmp(t[i].name, "__metadata__"))
            return fv_err_set(e, "writing %s: '__metadata__' is reserved, not a tensor name", path);
        if (!utf8_valid(t[i].name))
            return fv_err_set(e, "writing %s: tensor %d's name is not valid UTF-8", path, i);
    }
    for (int i = 0; i < 2 * nmeta; i++) {
        FV_ASSERT(meta[i]);
        if (!utf8_valid(meta[i]))
            return fv_err_set(e, "writing %s: metadata %s %d is not valid UTF-8", path,
                              i % 2 ? "value" : "key", i / 2);
    }
    if (n > 1) {
        const char **names = fv_malloc((size_t)n * sizeof *names);
        for (int i = 0; i < n; i++) names[i] = t[i].name;
        const char *dup = find_duplicate(names, n, 1);
        if (dup) fv_err_set(e, "writing %s: tensor name '%s' occurs twice", path, dup);
        free(names);
        if (dup) return -1;
    }
    const char *dupk = find_duplicate(meta, nmeta, 2);
    if (dupk) return fv_err_set(e, "writing %s: metadata key '%s' occurs twice", path, dupk);

    strbuf h = {0};
    sb_putc(&h, '{');
    if (nmeta > 0) {
        sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) sb_putc(&h, ',');
            json_put_string(&h, meta[2 * i]);
            sb_putc(&h, ':');
            json_put_string(&h, meta[2 * i + 1]);
        }
        sb_putc(&h, '}');
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        if (i || nmeta > 0) sb_putc(&h, ',');
        json_put_string(&h, t[i].name);
        sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) sb_printf(&h, d ? ",%lld" : "%lld", (long long)t[i].dims[d]);
        uint64_t end = off + 4 * (uint64_t)fv_st_numel(&t[i]);
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)end);
        off = end;
    }
    sb_putc(&h, '}');
    while (h.len % 8) sb_putc(&h, ' ');
    if (h.len > FV_ST_HEADER_MAX) {
        free(h.buf);
        return fv_err_set(e, "writing %s: the header would be %zu bytes, over the %u-byte limit of "
                             "the format", path, h.len, FV_ST_HEADER_MAX);
    }

    size_t total = 8 + h.len + data_bytes;
    uint8_t *file = fv_malloc(total);
    put_le64(file, h.len);
    memcpy(file + 8, h.buf, h.len);
    free(h.buf);
    uint8_t *dst = file + 8 + h.len;
    for (int i = 0; i < n; i++) {
        size_t numel = fv_st_numel(&t[i]);
        if (numel) memcpy(dst, t[i].data, numel * 4);
        if (!host_is_little_endian()) swap32(dst, numel);
        dst += numel * 4;
    }
    int rc = fv_write_file_atomic(path, file, total, e);
    free(file);
    return rc;
}

int fv_safetensors_save(const char *path, const fv_net *net, const char *const *meta, int nmeta,
                        fv_err *e) {
    FV_ASSERT(net && net->params);
    fv_st_tensor *t = fv_calloc((size_t)net->n_tensors + 1, sizeof *t);
    for (int i = 0; i < net->n_tensors; i++) {
        const fv_tensor *nt = &net->tensors[i];
        FV_ASSERT(nt->ndim >= 0 && nt->ndim <= 4 && nt->off + nt->count <= net->n_params);
        t[i].name = nt->name;
        t[i].ndim = nt->ndim;
        for (int d = 0; d < nt->ndim; d++) t[i].dims[d] = nt->dims[d];
        t[i].data = net->params + nt->off;
        FV_ASSERT(fv_st_numel(&t[i]) == nt->count);
    }
    int rc = fv_st_write(path, t, net->n_tensors, meta, nmeta, e);
    free(t);
    return rc;
}

/* ---- the header, parsed by jansson (io/json_read.h) and checked against the format ---- */

typedef struct {
    char *name;
    char dtype[16];
    int ndim;
    uint64_t dims[FV_ST_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

typedef struct {
    st_entry *t;
    int n;
    char **meta; /* key, value, ... */
    int nmeta;
} st_header;

static void st_header_free(st_header *h) {
    for (int i = 0; i < h->n; i++) free(h->t[i].name);
    for (int i = 0; i < 2 * h->nmeta; i++) free(h->meta[i]);
    free(h->t);
    free(h->meta);
    memset(h, 0, sizeof *h);
}

/* A header that is valid JSON but not what the format allows. ctx: the tensor name, or
 * "__metadata__", or NULL. */
static int hdr_fail(const char *label, const char *ctx, fv_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int hdr_fail(const char *label, const char *ctx, fv_err *e, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ctx) return fv_err_set(e, "%s: bad safetensors header: %s", label, msg);
    int meta = !strcmp(ctx, "__metadata__");
    return fv_err_set(e, "%s: bad safetensors header: %s%s%s: %s", label, meta ? "" : "tensor '", ctx,
                      meta ? "" : "'", msg);
}

/* What a JSON value is, for messages. */
static const char *kind_of(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* An array of at most max non-negative integers into out[0..*count). jansson keeps integers as
 * exact 64-bit values (json_int_t, never a double) and refuses ones beyond INT64_MAX at parse
 * time, so every value here is exact; negatives and reals (2.0, 1e3) are refused. */
static int hdr_uint_array(const json_t *a, const char *what, int max, uint64_t *out, int *count,
                          const char *label, const char *ctx, fv_err *e) {
    if (!json_is_array(a))
        return hdr_fail(label, ctx, e, "%s must be an array of integers, found %s", what, kind_of(a));
    if (json_array_size(a) > (size_t)max)
        return hdr_fail(label, ctx, e, "%s has %zu elements, more than %d", what, json_array_size(a), max);
    size_t i;
    const json_t *x;
    json_array_foreach(a, i, x) {
        if (json_is_real(x))
            return hdr_fail(label, ctx, e, "%s[%zu] is a real number (%.17g): must be an integer", what, i,
                            json_real_value(x));
        if (!json_is_integer(x))
            return hdr_fail(label, ctx, e, "%s[%zu] must be an integer, found %s", what, i, kind_of(x));
        json_int_t v = json_integer_value(x);
        if (v < 0) return hdr_fail(label, ctx, e, "%s[%zu] is %lld: must be non-negative", what, i, (long long)v);
        out[i] = (uint64_t)v;
    }
    *count = (int)json_array_size(a);
    return 0;
}

/* {"dtype": "...", "shape": [...], "data_offsets": [b, e]}, keys in any order (jansson has refused
 * duplicates), nothing else. */
static int hdr_entry(json_t *v, st_entry *t, const char *label, fv_err *e) {
    const char *ctx = t->name;
    if (!json_is_object(v))
        return hdr_fail(label, ctx, e, "the entry must be an object {\"dtype\", \"shape\", \"data_offsets\"}, found %s",
                        kind_of(v));
    if (json_object_size(v) == 0) return hdr_fail(label, ctx, e, "empty entry (needs dtype, shape, data_offsets)");
    int have_dtype = 0, have_shape = 0, have_off = 0;
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        if (!strcmp(key, "dtype")) {
            have_dtype = 1;
            if (!json_is_string(x)) return hdr_fail(label, ctx, e, "dtype must be a string, found %s", kind_of(x));
            const char *dt = json_string_value(x);
            if (strlen(dt) >= sizeof t->dtype) return hdr_fail(label, ctx, e, "unknown dtype '%.40s'", dt);
            strcpy(t->dtype, dt);
        } else if (!strcmp(key, "shape")) {
            have_shape = 1;
            if (hdr_uint_array(x, "shape", FV_ST_MAX_DIMS, t->dims, &t->ndim, label, ctx, e)) return -1;
        } else if (!strcmp(key, "data_offsets")) {
            uint64_t o[2];
            int c = 0;
            have_off = 1;
            if (hdr_uint_array(x, "data_offsets", 2, o, &c, label, ctx, e)) return -1;
            if (c != 2) return hdr_fail(label, ctx, e, "data_offsets must have 2 elements, has %d", c);
            t->begin = o[0];
            t->end = o[1];
        } else {
            return hdr_fail(label, ctx, e, "unknown key '%.60s' (expected dtype, shape, data_offsets)", key);
        }
    }
    if (!have_dtype) return hdr_fail(label, ctx, e, "entry lacks 'dtype'");
    if (!have_shape) return hdr_fail(label, ctx, e, "entry lacks 'shape'");
    if (!have_off) return hdr_fail(label, ctx, e, "entry lacks 'data_offsets'");
    return 0;
}

/* {"key": "value", ...} */
static int hdr_meta(json_t *v, st_header *h, const char *label, fv_err *e) {
    if (!json_is_object(v))
        return hdr_fail(label, "__metadata__", e, "must be an object of strings, found %s", kind_of(v));
    h->meta = fv_calloc(2 * json_object_size(v) + 1, sizeof *h->meta);
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
        if (!json_is_string(x))
            return hdr_fail(label, "__metadata__", e, "key '%.60s' holds %s (values must be strings)", key, kind_of(x));
        h->meta[2 * h->nmeta] = fv_strdup(key);
        h->meta[2 * h->nmeta + 1] = fv_strdup(json_string_value(x));
        h->nmeta++;
    }
    return 0;
}

/* The header text s[0..n) into h (tensors and metadata in header order). */
static int hdr_parse(const uint8_t *s, size_t n, st_header *h, const char *label, fv_err *e) {
    if (n == 0 || s[0] != '{')
        return fv_err_set(e, "%s: bad safetensors header: the header does not start with '{'", label);
    json_t *root = fv_jr_parse((const char *)s, n, e);
    if (!root) return fv_err_prefix(e, "%s: bad safetensors header of %zu bytes, at ", label, n);
    int rc = 0;
    h->t = fv_calloc(json_object_size(root) + 1, sizeof *h->t);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            rc = hdr_meta(v, h, label, e);
        } else {
            st_entry *t = &h->t[h->n++];
            t->name = fv_strdup(key);
            rc = hdr_entry(v, t, label, e);
        }
        if (rc) break;
    }
    json_decref(root);
    return rc;
}

/* ---- validation of the parsed header against the data section ---- */

static const char *const KNOWN_DTYPES[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16",
                                           "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64",
                                           "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64"};

static int st_entry_cmp(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int st_validate(st_header *h, uint64_t data_len, const char *label, fv_err *e) {
    for (int i = 0; i < h->n; i++) {
        st_entry *t = &h->t[i];
        if (strcmp(t->dtype, "F32") != 0) {
            int known = 0;
            for (size_t k = 0; k < sizeof KNOWN_DTYPES / sizeof *KNOWN_DTYPES; k++)
                known |= !strcmp(t->dtype, KNOWN_DTYPES[k]);
            if (known)
                return fv_err_set(e, "%s: tensor '%s': dtype %s is not supported (fedvim stores and "
                                     "reads F32 only; convert the tensor to float32)", label, t->name,
                                  t->dtype);
            return fv_err_set(e, "%s: tensor '%s': unknown dtype '%s'", label, t->name, t->dtype);
        }
        uint64_t numel = 1, bytes;
        for (int d = 0; d < t->ndim; d++)
            if (__builtin_mul_overflow(numel, t->dims[d], &numel) || numel > INT64_MAX)
                return fv_err_set(e, "%s: tensor '%s': shape overflows", label, t->name);
        if (__builtin_mul_overflow(numel, (uint64_t)4, &bytes))
            return fv_err_set(e, "%s: tensor '%s': shape overflows", label, t->name);
        if (t->end < t->begin)
            return fv_err_set(e, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                              label, t->name, (unsigned long long)t->begin,
                              (unsigned long long)t->end);
        if (t->end - t->begin != bytes)
            return fv_err_set(e, "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but "
                                 "the shape needs %llu (%llu F32 elements)", label, t->name,
                              (unsigned long long)t->begin, (unsigned long long)t->end,
                              (unsigned long long)(t->end - t->begin), (unsigned long long)bytes,
                              (unsigned long long)numel);
        if (t->end > data_len)
            return fv_err_set(e, "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the "
                                 "data section (%llu bytes; is the file truncated?)", label, t->name,
                              (unsigned long long)t->begin, (unsigned long long)t->end,
                              (unsigned long long)data_len);
    }
    /* Duplicate tensor names or metadata keys: jansson refused them while parsing. */

    /* The tensors must tile the data section: sorted by offset, each starts where the previous
     * one ends, the first at 0 and the last at the end. */
    const st_entry **s = fv_malloc(((size_t)h->n + 1) * sizeof *s);
    for (int i = 0; i < h->n; i++) s[i] = &h->t[i];
    qsort(s, (size_t)h->n, sizeof *s, st_entry_cmp);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < h->n && rc == 0; i++) {
        if (s[i]->begin < at)
            rc = fv_err_set(e, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                               "(which ends at %llu)", label, s[i]->name,
                            (unsigned long long)s[i]->begin, (unsigned long long)s[i]->end,
                            s[i - 1]->name, (unsigned long long)at);
        else if (s[i]->begin > at)
            rc = fv_err_set(e, "%s: tensor '%s': data_offsets start at %llu, leaving bytes [%llu, "
                               "%llu) of the data section to no tensor", label, s[i]->name,
                            (unsigned long long)s[i]->begin, (unsigned long long)at,
                            (unsigned long long)s[i]->begin);
        at = s[i]->end;
    }
    free(s);
    if (rc == 0 && at != data_len)
        rc = fv_err_set(e, "%s: the data section has %llu bytes but the tensors cover %llu (trailing "
                           "bytes)", label, (unsigned long long)data_len, (unsigned long long)at);
    return rc;
}

/* Checks the 8-byte prefix against the input's total size; *hlen is the header length. */
static int st_check_prefix(const uint8_t first8[8], uint64_t total, const char *label,
                           uint64_t *hlen, fv_err *e) {
    uint64_t n = get_le64(first8);
    if (n > FV_ST_HEADER_MAX)
        return fv_err_set(e, "%s: header length %llu exceeds the limit of %u bytes (not a safetensors "
                             "file, or corrupt)", label, (unsigned long long)n, FV_ST_HEADER_MAX);
    if (n > total - 8)
        return fv_err_set(e, "%s: header length %llu runs past the end of the file (%llu bytes; "
                             "truncated?)", label, (unsigned long long)n, (unsigned long long)total);
    *hlen = n;
    return 0;
}

/* Parses and validates a header; on success h holds the entries. */
static int st_parse(const uint8_t *hdr, size_t hlen, uint64_t data_len, const char *label,
                    st_header *h, fv_err *e) {
    memset(h, 0, sizeof *h);
    if (hdr_parse(hdr, hlen, h, label, e) != 0 || st_validate(h, data_len, label, e) != 0) {
        st_header_free(h);
        return -1;
    }
    return 0;
}

/* Builds the file object from a validated header, with room for data_len bytes of data at
 * *data (64-byte aligned) for the caller to fill. Takes the strings out of h. */
static fv_st_file *st_build(st_header *h, uint64_t data_len, uint8_t **data) {
    size_t strings = 0;
    for (int i = 0; i < h->n; i++) strings += strlen(h->t[i].name) + 1;
    for (int i = 0; i < 2 * h->nmeta; i++) strings += strlen(h->meta[i]) + 1;
    size_t dbytes = ((size_t)data_len + 63) / 64 * 64;
    uint8_t *mem = fv_malloc(dbytes + strings);
    char *sp = (char *)mem + dbytes;

    fv_st_file *f = fv_calloc(1, sizeof *f);
    f->n = h->n;
    f->tensors = fv_calloc((size_t)h->n + 1, sizeof *f->tensors);
    f->nmeta = h->nmeta;
    f->meta = fv_calloc(2 * (size_t)h->nmeta + 1, sizeof *f->meta);
    f->mem_ = mem;
    for (int i = 0; i < h->n; i++) {
        const st_entry *t = &h->t[i];
        fv_st_tensor *o = &f->tensors[i];
        size_t l = strlen(t->name) + 1;
        memcpy(sp, t->name, l);
        o->name = sp;
        sp += l;
        o->ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) o->dims[d] = (int64_t)t->dims[d];
        o->data = (const float *)(mem + t->begin);
    }
    for (int i = 0; i < 2 * h->nmeta; i++) {
        size_t l = strlen(h->meta[i]) + 1;
        memcpy(sp, h->meta[i], l);
        f->meta[i] = sp;
        sp += l;
    }
    st_header_free(h);
    *data = mem;
    return f;
}

fv_st_file *fv_st_read_mem(const uint8_t *buf, size_t len, const char *label, fv_err *e) {
    if (len < 8) {
        fv_err_set(e, "%s: %zu bytes is too short for a safetensors file (needs at least 8)", label,
                   len);
        return NULL;
    }
    uint64_t hlen;
    if (st_check_prefix(buf, len, label, &hlen, e) != 0) return NULL;
    uint64_t data_len = len - 8 - hlen;
    st_header h;
    if (st_parse(buf + 8, (size_t)hlen, data_len, label, &h, e) != 0) return NULL;
    uint8_t *data;
    fv_st_file *f = st_build(&h, data_len, &data);
    if (data_len) memcpy(data, buf + 8 + hlen, (size_t)data_len);
    if (!host_is_little_endian()) swap32(data, (size_t)data_len / 4);
    return f;
}

fv_st_file *fv_st_read(const char *path, fv_err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fv_err_set(e, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    uint8_t first8[8], *hdr = NULL;
    uint64_t hlen = 0;
    fv_st_file *f = NULL;
    if (fstat(fileno(fp), &sb) != 0) {
        fv_err_set(e, "cannot stat %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        fv_err_set(e, "%s is not a regular file", path);
        goto out;
    }
    uint64_t total = (uint64_t)sb.st_size;
    if (total < 8) {
        fv_err_set(e, "%s: %llu bytes is too short for a safetensors file (needs at least 8)", path,
                   (unsigned long long)total);
        goto out;
    }
    if (fread(first8, 1, 8, fp) != 8) {
        fv_err_set(e, "cannot read %s: %s", path, ferror(fp) ? strerror(errno) : "file shrank");
        goto out;
    }
    if (st_check_prefix(first8, total, path, &hlen, e) != 0) goto out;
    hdr = fv_malloc((size_t)hlen);
    if (hlen && fread(hdr, 1, (size_t)hlen, fp) != hlen) {
        fv_err_set(e, "cannot read %s: %s", path, ferror(fp) ? strerror(errno) : "file shrank");
        goto out;
    }
    uint64_t data_len = total - 8 - hlen;
    if (data_len > SIZE_MAX / 2) {
        fv_err_set(e, "%s: data section of %llu bytes is too large for this machine", path,
                   (unsigned long long)data_len);
        goto out;
    }
    st_header h;
    if (st_parse(hdr, (size_t)hlen, data_len, path, &h, e) != 0) goto out;
    uint8_t *data;
    f = st_build(&h, data_len, &data);
    if (data_len && fread(data, 1, (size_t)data_len, fp) != data_len) {
        fv_err_set(e, "cannot read %s: %s", path, ferror(fp) ? strerror(errno) : "file shrank");
        fv_st_file_destroy(&f);
        goto out;
    }
    if (!host_is_little_endian()) swap32(data, (size_t)data_len / 4);
out:
    free(hdr);
    fclose(fp);
    return f;
}

void fv_st_file_destroy(fv_st_file **f) {
    if (!f || !*f) return;
    free((*f)->tensors);
    free((*f)->meta);
    free((*f)->mem_);
    free(*f);
    *f = NULL;
}

const fv_st_tensor *fv_st_find(const fv_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *fv_st_meta(const fv_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

/* ---- loading a net ---- */

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *dims) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && at < cap; d++)
        at += (size_t)snprintf(buf + at, cap - at, d ? ", %lld" : "%lld", (long long)dims[d]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

int fv_safetensors_load(const char *path, fv_net *net, fv_err *e) {
    FV_ASSERT(net && net->params);
    fv_st_file *f = fv_st_read(path, e);
    if (!f) return -1;
    int rc = 0;
    /* index of each file tensor in net->tensors */
    int *map = fv_malloc(((size_t)f->n + 1) * sizeof *map);
    for (int i = 0; i < f->n && rc == 0; i++) {
        const fv_st_tensor *t = &f->tensors[i];
        map[i] = -1;
        for (int j = 0; j < net->n_tensors; j++)
            if (!strcmp(net->tensors[j].name, t->name)) {
                map[i] = j;
                break;
            }
        if (map[i] < 0) {
            rc = fv_err_set(e, "%s: tensor '%s' is not in the model (extra tensor; is this "
                               "checkpoint for another architecture?)", path, t->name);
            break;
        }
        const fv_tensor *nt = &net->tensors[map[i]];
        int same = nt->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = nt->dims[d] == t->dims[d];
        if (!same) {
            char fs[160], ms[160];
            int64_t md[4];
            for (int d = 0; d < nt->ndim; d++) md[d] = nt->dims[d];
            shape_str(fs, sizeof fs, t->ndim, t->dims);
            shape_str(ms, sizeof ms, nt->ndim, md);
            rc = fv_err_set(e, "%s: tensor '%s' has shape %s in the file but %s in the model", path,
                            t->name, fs, ms);
        }
    }
    for (int j = 0; j < net->n_tensors && rc == 0; j++)
        if (!fv_st_find(f, net->tensors[j].name))
            rc = fv_err_set(e, "%s: tensor '%s' of the model is missing from the file", path,
                            net->tensors[j].name);
    if (rc == 0) /* all checked: only now touch the model */
        for (int i = 0; i < f->n; i++) {
            const fv_tensor *nt = &net->tensors[map[i]];
            if (nt->count) memcpy(net->params + nt->off, f->tensors[i].data, nt->count * sizeof(float));
        }
    free(map);
    fv_st_file_destroy(&f);
    return rc;
}
