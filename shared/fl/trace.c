/* trace.c: see trace.h. */
#include "fl/trace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl/config.h"
#include "rng.h"

#define TRACE_HEADER "client,speed,on,off"
#define TRACE_MAX_BYTES (256u << 20)

void fv_trace_free(fv_trace *t) {
    free(t->speed);
    free(t->first);
    free(t->iv);
    *t = (fv_trace){0};
}

/* One field of a record as a number: a finite double, or with allow_inf also "inf". Returns 0,
 * or -1 with e naming where, the field and the text. */
static int field_num(const char *s, size_t len, int allow_inf, const char *where, const char *field, double *out,
                     fv_err *e) {
    char buf[64];
    if (len == 0) return fv_err_set(e, "%s: %s: empty", where, field);
    if (len >= sizeof buf) return fv_err_set(e, "%s: %s: '%.20s...' is not a number", where, field, s);
    memcpy(buf, s, len);
    buf[len] = 0;
    if (allow_inf && strcmp(buf, "inf") == 0) {
        *out = INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    double x = strtod(buf, &end);
    if (*end || errno || !isfinite(x) || end == buf)
        return fv_err_set(e, "%s: %s: '%s' is not a finite number%s", where, field, buf, allow_inf ? " or inf" : "");
    *out = x;
    return 0;
}

/* A record's client field: a decimal id in [0, clients). */
static int field_client(const char *s, size_t len, int clients, const char *where, int *out, fv_err *e) {
    double x;
    if (field_num(s, len, 0, where, "client", &x, e) != 0) return -1;
    if (x != floor(x) || x < 0 || strspn(s, "0123456789") != len)
        return fv_err_set(e, "%s: client: '%.*s' is not a client id (a whole number >= 0)", where, (int)len, s);
    if (x >= clients)
        return fv_err_set(e, "%s: client: %.0f, but there are %d clients (ids 0..%d)", where, x, clients, clients - 1);
    *out = (int)x;
    return 0;
}

typedef struct {
    int client, line;
    double speed, on, off;
} record;

/* Split line (without its newline) into the four fields of a record and check each. */
static int parse_record(const char *line, size_t len, int clients, const char *where, record *r, fv_err *e) {
    const char *f[4];
    size_t fl[4];
    int nf = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ',') continue;
        if (nf == 4) return fv_err_set(e, "%s: more than 4 fields (expected " TRACE_HEADER ")", where);
        f[nf] = line + start;
        fl[nf++] = i - start;
        start = i + 1;
    }
    if (nf != 4) return fv_err_set(e, "%s: %d field%s, expected 4 (" TRACE_HEADER ")", where, nf, nf == 1 ? "" : "s");
    if (field_client(f[0], fl[0], clients, where, &r->client, e) != 0) return -1;
    if (field_num(f[1], fl[1], 0, where, "speed", &r->speed, e) != 0) return -1;
    if (!(r->speed > 0)) return fv_err_set(e, "%s: speed: %.*s is not > 0 (images per virtual second)", where, (int)fl[1], f[1]);
    if (field_num(f[2], fl[2], 0, where, "on", &r->on, e) != 0) return -1;
    if (r->on < 0) return fv_err_set(e, "%s: on: %.*s is negative", where, (int)fl[2], f[2]);
    if (field_num(f[3], fl[3], 1, where, "off", &r->off, e) != 0) return -1;
    if (!(r->off > r->on)) return fv_err_set(e, "%s: off: %.*s is not after on (%.*s)", where, (int)fl[3], f[3], (int)fl[2], f[2]);
    return 0;
}

/* The record r against the one before it (prev, NULL for the first): client order, the same
 * speed, intervals ascending without overlap. */
static int check_order(const record *prev, const record *r, const char *where, fv_err *e) {
    if (!prev) return r->client == 0 ? 0 : fv_err_set(e, "%s: client: %d, but client 0 has no record before it (every "
                                                        "client has at least one, in id order)", where, r->client);
    if (r->client == prev->client) {
        if (r->speed != prev->speed)
            return fv_err_set(e, "%s: speed: %.17g differs from client %d's speed %.17g on line %d (one speed per client)",
                              where, r->speed, r->client, prev->speed, prev->line);
        if (r->on <= prev->off)
            return fv_err_set(e, "%s: on: %.17g overlaps or touches client %d's interval [%.17g, %.17g) on line %d "
                              "(intervals ascending, each starting after the previous one ends)",
                              where, r->on, r->client, prev->on, prev->off, prev->line);
        return 0;
    }
    if (r->client != prev->client + 1)
        return fv_err_set(e, "%s: client: %d after client %d (records in id order; client %d has no record)", where,
                          r->client, prev->client, r->client < prev->client ? r->client : prev->client + 1);
    return 0;
}

int fv_trace_parse(fv_trace *t, const char *name, const char *text, size_t len, int clients, fv_err *e) {
    *t = (fv_trace){0};
    if (clients < 1) return fv_err_set(e, "%s: a trace is for at least one client", name);
    if (memchr(text, 0, len)) return fv_err_set(e, "%s: NUL byte: not a text file", name);
    record *recs = NULL;
    size_t nrec = 0, cap = 0;
    int line = 0, header = 0;
    char where[FV_ERR_MAX / 2];
    for (size_t pos = 0; pos < len;) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        size_t l = end - pos;
        const char *s = text + pos;
        pos = end + 1;
        line++;
        if (l && s[l - 1] == '\r') l--;
        snprintf(where, sizeof where, "%.200s:%d", name, line);
        if (l == 0 || s[0] == '#') continue;
        if (!header) {
            if (l != strlen(TRACE_HEADER) || memcmp(s, TRACE_HEADER, l) != 0) {
                free(recs);
                return fv_err_set(e, "%s: expected the header '" TRACE_HEADER "', got '%.*s'", where,
                                  (int)(l > 60 ? 60 : l), s);
            }
            header = 1;
            continue;
        }
        if (nrec == cap) {
            cap = cap ? 2 * cap : 256;
            recs = fv_realloc(recs, cap * sizeof *recs);
        }
        record *r = &recs[nrec];
        r->line = line;
        if (parse_record(s, l, clients, where, r, e) != 0 || check_order(nrec ? r - 1 : NULL, r, where, e) != 0) {
            free(recs);
            return -1;
        }
        nrec++;
    }
    if (!header) return fv_err_set(e, "%s: no header '" TRACE_HEADER "' (the file holds no record)", name);
    int last = nrec ? recs[nrec - 1].client : -1;
    if (last != clients - 1) {
        free(recs);
        return fv_err_set(e, "%s: client %d has no record (the trace covers clients 0..%d, fl.clients = %d)", name,
                          last + 1, last, clients);
    }
    t->n = clients;
    t->niv = (int)nrec;
    t->speed = fv_malloc((size_t)clients * sizeof(double));
    t->first = fv_malloc((size_t)(clients + 1) * sizeof(int));
    t->iv = fv_malloc(nrec * sizeof(fv_trace_iv));
    for (size_t i = 0; i < nrec; i++) {
        if (i == 0 || recs[i].client != recs[i - 1].client) {
            t->first[recs[i].client] = (int)i;
            t->speed[recs[i].client] = recs[i].speed;
        }
        t->iv[i] = (fv_trace_iv){recs[i].on, recs[i].off};
    }
    t->first[clients] = (int)nrec;
    free(recs);
    return 0;
}

int fv_trace_load(fv_trace *t, const char *path, int clients, fv_err *e) {
    uint8_t *text = NULL;
    size_t len = 0;
    *t = (fv_trace){0};
    if (fv_read_file(path, TRACE_MAX_BYTES, &text, &len, e) != 0) return -1;
    int rc = fv_trace_parse(t, path, (const char *)text, len, clients, e);
    free(text);
    return rc;
}

/* The index of client's first interval ending after x (its off > x), or first[client + 1]. */
static int interval_after(const fv_trace *t, int client, double x) {
    int lo = t->first[client], hi = t->first[client + 1];
    while (lo < hi) { /* binary search: intervals ascend */
        int mid = lo + (hi - lo) / 2;
        if (t->iv[mid].off > x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

double fv_trace_avail_until(const fv_trace *t, int client, double x) {
    int i = interval_after(t, client, x);
    if (i == t->first[client + 1] || t->iv[i].on > x) return -1;
    return t->iv[i].off;
}

double fv_trace_next_on(const fv_trace *t, int client, double x) {
    int i = interval_after(t, client, x);
    if (i == t->first[client + 1]) return INFINITY;
    return t->iv[i].on > x ? t->iv[i].on : x;
}

/* A draw of Exp(mean) (mean > 0). */
static double exp_draw(fv_rng *r, double mean) { return -mean * log1p(-fv_rng_uniform_d(r)); }

/* Append printf text to *buf (len, cap grow). */
static void put(char **buf, size_t *len, size_t *cap, const char *a, const char *b, const char *c, const char *d) {
    size_t need = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 8;
    if (*len + need > *cap) {
        while (*len + need > *cap) *cap *= 2;
        *buf = fv_realloc(*buf, *cap);
    }
    *len += (size_t)snprintf(*buf + *len, *cap - *len, "%s,%s,%s,%s\n", a, b, c, d);
}

char *fv_trace_generate(const fv_trace_gen *g) {
    size_t cap = 4096, len = 0;
    char *buf = fv_malloc(cap);
    len += (size_t)snprintf(buf, cap, TRACE_HEADER "\n");
    for (int i = 0; i < g->clients; i++) {
        fv_rng r;
        fv_rng_seed2(&r, g->seed, (uint64_t)i);
        char id[16], sp[32], on[32], off[32];
        snprintf(id, sizeof id, "%d", i);
        fv_config_fmt_double(sp, sizeof sp, g->median * exp(g->sigma * fv_rng_normal(&r)));
        if (g->mean_off <= 0) {
            put(&buf, &len, &cap, id, sp, "0", "inf");
            continue;
        }
        int is_on = fv_rng_uniform_d(&r) < g->mean_on / (g->mean_on + g->mean_off);
        double x = 0;
        int wrote = 0;
        while (x < g->horizon || !wrote) {
            double nx = x + exp_draw(&r, is_on ? g->mean_on : g->mean_off);
            if (nx <= x) nx = nextafter(x, INFINITY); /* a period too short to show: one ulp */
            if (is_on) {
                fv_config_fmt_double(on, sizeof on, x);
                fv_config_fmt_double(off, sizeof off, nx);
                put(&buf, &len, &cap, id, sp, on, off);
                wrote = 1;
            }
            x = nx;
            is_on = !is_on;
        }
    }
    return buf;
}
