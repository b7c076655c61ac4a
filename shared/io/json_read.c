/* json_read.c: see json_read.h. Recursive descent over a bounded buffer. */
#include "io/json_read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    fv_err *e;
} parser;

static int fail(parser *p, const char *what) { return fv_err_set(p->e, "JSON: byte %zu: %s", p->pos, what); }

static void skip_ws(parser *p) {
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                               p->s[p->pos] == '\r'))
        p->pos++;
}

static int peek(parser *p) { return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1; }

static void free_tree(fv_jr *v) {
    if (v->type == FV_JR_STR) free(v->str);
    for (int i = 0; i < v->n; i++) {
        free_tree(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static int hex4(parser *p, unsigned *out) {
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad hex digit in \\u escape");
    }
    *out = v;
    return 0;
}

static size_t utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* At the opening quote. *out: fresh string (caller frees). */
static int parse_string(parser *p, char **out) {
    p->pos++;
    size_t cap = 16, n = 0;
    char *b = fv_malloc(cap);
    for (;;) {
        if (p->pos >= p->len) { free(b); return fail(p, "unterminated string"); }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (n + 5 > cap) { cap *= 2; b = realloc(b, cap); FV_ASSERT(b); }
        if (c == '"') break;
        if (c < 0x20) { free(b); p->pos--; return fail(p, "control character in string"); }
        if (c != '\\') { b[n++] = (char)c; continue; }
        if (p->pos >= p->len) { free(b); return fail(p, "truncated escape"); }
        char x = p->s[p->pos++];
        unsigned cp;
        switch (x) {
        case '"': b[n++] = '"'; break;
        case '\\': b[n++] = '\\'; break;
        case '/': b[n++] = '/'; break;
        case 'b': b[n++] = '\b'; break;
        case 'f': b[n++] = '\f'; break;
        case 'n': b[n++] = '\n'; break;
        case 'r': b[n++] = '\r'; break;
        case 't': b[n++] = '\t'; break;
        case 'u':
            if (hex4(p, &cp)) { free(b); return -1; }
            if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
                unsigned lo;
                if (p->len - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                    free(b);
                    return fail(p, "unpaired surrogate in \\u escape");
                }
                p->pos += 2;
                if (hex4(p, &lo)) { free(b); return -1; }
                if (lo < 0xdc00 || lo > 0xdfff) { free(b); return fail(p, "bad low surrogate"); }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                free(b);
                return fail(p, "unpaired surrogate in \\u escape");
            }
            if (cp == 0) { free(b); return fail(p, "\\u0000 in string"); }
            n += utf8(b + n, cp);
            break;
        default: free(b); p->pos--; return fail(p, "bad escape");
        }
    }
    b[n] = 0;
    *out = b;
    return 0;
}

static int parse_number(parser *p, double *out) {
    size_t st = p->pos;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
    } else if (peek(p) >= '1' && peek(p) <= '9') {
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    } else {
        return fail(p, "bad number");
    }
    if (peek(p) == '.') {
        p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "digit expected after '.'");
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "digit expected in exponent");
        while (peek(p) >= '0' && peek(p) <= '9') p->pos++;
    }
    char buf[64];
    size_t n = p->pos - st;
    if (n >= sizeof buf) return fail(p, "number too long");
    memcpy(buf, p->s + st, n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    return 0;
}

static int literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return fail(p, "unexpected character");
    p->pos += n;
    return 0;
}

static int parse_value(parser *p, fv_jr *v, int depth);

static void push(fv_jr *v, int *cap) {
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        v->items = realloc(v->items, sizeof(fv_jr) * (size_t)*cap);
        FV_ASSERT(v->items);
        if (v->type == FV_JR_OBJ) {
            v->keys = realloc(v->keys, sizeof(char *) * (size_t)*cap);
            FV_ASSERT(v->keys);
        }
    }
    memset(&v->items[v->n], 0, sizeof(fv_jr));
    if (v->keys) v->keys[v->n] = NULL;
}

static int parse_container(parser *p, fv_jr *v, int depth, int obj) {
    v->type = obj ? FV_JR_OBJ : FV_JR_ARR;
    int cap = 0;
    p->pos++;
    skip_ws(p);
    if (peek(p) == (obj ? '}' : ']')) { p->pos++; return 0; }
    for (;;) {
        skip_ws(p);
        push(v, &cap);
        if (obj) {
            if (peek(p) != '"') return fail(p, "object key expected");
            if (parse_string(p, &v->keys[v->n])) return -1;
            skip_ws(p);
            if (peek(p) != ':') { free(v->keys[v->n]); return fail(p, "':' expected"); }
            p->pos++;
        }
        v->n++; /* counted before parsing so that a failure frees it */
        if (parse_value(p, &v->items[v->n - 1], depth + 1)) return -1;
        skip_ws(p);
        int c = peek(p);
        p->pos++;
        if (c == ',') continue;
        if (c == (obj ? '}' : ']')) return 0;
        p->pos--;
        return fail(p, obj ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int parse_value(parser *p, fv_jr *v, int depth) {
    if (depth > MAX_DEPTH) return fail(p, "nested too deep (64 levels)");
    skip_ws(p);
    int c = peek(p);
    switch (c) {
    case '{': return parse_container(p, v, depth, 1);
    case '[': return parse_container(p, v, depth, 0);
    case '"': v->type = FV_JR_STR; return parse_string(p, &v->str);
    case 't': v->type = FV_JR_BOOL; v->num = 1; return literal(p, "true");
    case 'f': v->type = FV_JR_BOOL; return literal(p, "false");
    case 'n': v->type = FV_JR_NULL; return literal(p, "null");
    case -1: return fail(p, "unexpected end of input");
    default: v->type = FV_JR_NUM; return parse_number(p, &v->num);
    }
}

fv_jr *fv_jr_parse(const char *text, size_t len, fv_err *e) {
    parser p = {text, len, 0, e};
    fv_jr *v = fv_malloc(sizeof *v);
    memset(v, 0, sizeof *v);
    if (parse_value(&p, v, 0) == 0) {
        skip_ws(&p);
        if (p.pos == len) return v;
        fail(&p, "unexpected bytes after the value");
    }
    free_tree(v);
    free(v);
    return NULL;
}

void fv_jr_free(fv_jr **v) {
    if (!v || !*v) return;
    free_tree(*v);
    free(*v);
    *v = NULL;
}

const fv_jr *fv_jr_get(const fv_jr *v, const char *key) {
    if (!v || v->type != FV_JR_OBJ) return NULL;
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0) return &v->items[i];
    return NULL;
}

double fv_jr_num(const fv_jr *v, double dflt) { return v && v->type == FV_JR_NUM ? v->num : dflt; }
