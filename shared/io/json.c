/* json.c: see json.h. */
#include "io/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"

static void put(fv_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(fv_json *j, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(j->buf + j->len, j->cap - j->len, fmt, ap);
        va_end(ap);
        FV_ASSERT(n >= 0);
        if ((size_t)n < j->cap - j->len) {
            j->len += (size_t)n;
            return;
        }
        j->cap = (j->cap + (size_t)n + 1) * 2;
        j->buf = fv_realloc(j->buf, j->cap);
    }
}

static void put_str(fv_json *j, const char *s) {
    put(j, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') put(j, "\\%c", *p);
        else if (*p == '\n') put(j, "\\n");
        else if (*p < 0x20) put(j, "\\u%04x", *p);
        else put(j, "%c", *p);
    }
    put(j, "\"");
}

static void key(fv_json *j, const char *k) {
    if (j->need_comma) put(j, ",");
    put_str(j, k);
    put(j, ":");
    j->need_comma = 1;
}

static void num(fv_json *j, double v) {
    if (isfinite(v)) put(j, "%.9g", v);
    else put(j, "null");
}

void fv_json_begin(fv_json *j) {
    memset(j, 0, sizeof *j);
    j->cap = 256;
    j->buf = fv_malloc(j->cap);
    j->buf[0] = 0;
    put(j, "{");
}

const char *fv_json_end(fv_json *j) {
    put(j, "}");
    return j->buf;
}

void fv_json_free(fv_json *j) {
    free(j->buf);
    memset(j, 0, sizeof *j);
}

void fv_json_num(fv_json *j, const char *k, double v) {
    key(j, k);
    num(j, v);
}

void fv_json_num_or_inf(fv_json *j, const char *k, double v) {
    key(j, k);
    if (isinf(v) && v > 0) put(j, "\"inf\"");
    else num(j, v);
}

void fv_json_int(fv_json *j, const char *k, int64_t v) {
    key(j, k);
    put(j, "%lld", (long long)v);
}

void fv_json_str(fv_json *j, const char *k, const char *v) {
    key(j, k);
    put_str(j, v ? v : "");
}

void fv_json_bool(fv_json *j, const char *k, int v) {
    key(j, k);
    put(j, v ? "true" : "false");
}

void fv_json_num_array(fv_json *j, const char *k, const double *v, size_t n) {
    key(j, k);
    put(j, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) put(j, ",");
        num(j, v[i]);
    }
    put(j, "]");
}

void fv_json_float_array(fv_json *j, const char *k, const float *v, size_t n) {
    key(j, k);
    put(j, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) put(j, ",");
        num(j, v[i]);
    }
    put(j, "]");
}

void fv_json_obj_begin(fv_json *j, const char *k) {
    key(j, k);
    put(j, "{");
    j->need_comma = 0;
}

void fv_json_obj_end(fv_json *j) {
    put(j, "}");
    j->need_comma = 1;
}

void fv_json_raw(fv_json *j, const char *k, const char *raw) {
    key(j, k);
    put(j, "%s", raw);
}
