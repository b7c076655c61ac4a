/* store.c: see store.h. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"

#define CKPT_FORMAT "fedvim-checkpoint"
#define CKPT_VERSION "1"

struct fv_store {
    char *dir;
    int n_clients;
    char **lines;
    int nlines, cap;
    int *cur;     /* newest committed state version per client, -1 none */
    int *pending; /* version written in the current round, -1 none */
};

static char *path_of(const fv_store *s, const char *name) {
    size_t l = strlen(s->dir) + strlen(name) + 2;
    char *p = fv_malloc(l);
    snprintf(p, l, "%s/%s", s->dir, name);
    return p;
}

static void state_path(const fv_store *s, int client, int round, char *out, size_t cap) {
    snprintf(out, cap, "%s/client_state/c%d_r%d.safetensors", s->dir, client, round);
}

fv_store *fv_store_open(const char *dir, int n_clients, fv_err *e) {
    fv_store *s = fv_calloc(1, sizeof *s);
    s->dir = fv_strdup(dir);
    s->n_clients = n_clients;
    s->cur = fv_malloc((size_t)n_clients * sizeof(int));
    s->pending = fv_malloc((size_t)n_clients * sizeof(int));
    for (int i = 0; i < n_clients; i++) s->cur[i] = s->pending[i] = -1;
    char *cs = path_of(s, "client_state");
    int rc = fv_mkdirs(cs, e);
    free(cs);
    if (rc != 0) {
        fv_store_close(&s);
        return NULL;
    }
    return s;
}

void fv_store_close(fv_store **sp) {
    if (!sp || !*sp) return;
    fv_store *s = *sp;
    for (int i = 0; i < s->nlines; i++) free(s->lines[i]);
    free(s->lines);
    free(s->cur);
    free(s->pending);
    free(s->dir);
    free(s);
    *sp = NULL;
}

static int rewrite_metrics(fv_store *s, fv_err *e) {
    size_t total = 0;
    for (int i = 0; i < s->nlines; i++) total += strlen(s->lines[i]) + 1;
    char *buf = fv_malloc(total + 1);
    size_t o = 0;
    for (int i = 0; i < s->nlines; i++) {
        size_t l = strlen(s->lines[i]);
        memcpy(buf + o, s->lines[i], l);
        buf[o + l] = '\n';
        o += l + 1;
    }
    char *p = path_of(s, "metrics.jsonl");
    int rc = fv_write_file_atomic(p, buf, o, e);
    free(p);
    free(buf);
    return rc;
}

static void push_line(fv_store *s, const char *line, size_t len) {
    if (s->nlines == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->lines = fv_realloc(s->lines, (size_t)s->cap * sizeof(char *));
    }
    char *l = fv_malloc(len + 1);
    memcpy(l, line, len);
    l[len] = 0;
    s->lines[s->nlines++] = l;
}

int fv_store_metrics_add(fv_store *s, const char *line, fv_err *e) {
    push_line(s, line, strlen(line));
    return rewrite_metrics(s, e);
}

int fv_store_metrics_count(const fv_store *s) { return s->nlines; }
const char *fv_store_metrics_line(const fv_store *s, int i) { return s->lines[i]; }

int fv_store_metrics_load(fv_store *s, int upto, fv_err *e) {
    char *p = path_of(s, "metrics.jsonl");
    uint8_t *buf = NULL;
    size_t len = 0;
    if (access(p, F_OK) != 0) {
        free(p);
        return 0;
    }
    int rc = fv_read_file(p, (size_t)1 << 30, &buf, &len, e);
    if (rc != 0) {
        free(p);
        return -1;
    }
    size_t i = 0;
    int lineno = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && buf[j] != '\n') j++;
        lineno++;
        int round;
        if (j > i) {
            char head[48];
            size_t hl = j - i < sizeof head - 1 ? j - i : sizeof head - 1;
            memcpy(head, buf + i, hl);
            head[hl] = 0;
            if (sscanf(head, "{\"round\":%d", &round) != 1) {
                rc = fv_err_set(e, "%s:%d: not a metrics line of fedvim (expected {\"round\":N,...})", p, lineno);
                break;
            }
            if (round <= upto) push_line(s, (const char *)buf + i, j - i);
        }
        i = j + 1;
    }
    free(buf);
    free(p);
    if (rc == 0 && s->nlines != upto)
        return fv_err_set(e, "metrics.jsonl in %s holds %d rounds up to the checkpoint's round %d", s->dir,
                          s->nlines, upto);
    return rc;
}

/* The hex BLAKE2b of x[n] into out. */
static void hash_hex(char out[2 * FV_HASH_BYTES + 1], const float *x, size_t n) {
    uint8_t h[FV_HASH_BYTES];
    fv_hash(h, x, n * sizeof(float));
    fv_hex(out, h, FV_HASH_BYTES);
}

int fv_store_checkpoint(fv_store *s, int round, const float *params, size_t n, const float *state, size_t ns,
                        const uint8_t config_hash[FV_HASH_BYTES], fv_err *e) {
    char rs[32], ch[2 * FV_HASH_BYTES + 1], ph[2 * FV_HASH_BYTES + 1], sh[2 * FV_HASH_BYTES + 1];
    snprintf(rs, sizeof rs, "%d", round);
    fv_hex(ch, config_hash, FV_HASH_BYTES);
    hash_hex(ph, params, n);
    const char *meta[] = {"format", CKPT_FORMAT, "version", CKPT_VERSION, "round", rs, "config_hash", ch,
                          "params_hash", ph, "server_state_hash", sh};
    fv_st_tensor t[2] = {{.name = "global", .ndim = 1, .dims = {(int64_t)n}, .data = params},
                         {.name = "server_state", .ndim = 1, .dims = {(int64_t)ns}, .data = state}};
    if (ns) hash_hex(sh, state, ns);
    char *p = path_of(s, "checkpoint.safetensors");
    int rc = fv_st_write(p, t, ns ? 2 : 1, meta, ns ? 6 : 5, e);
    free(p);
    if (rc != 0) return -1;
    /* the checkpoint is committed: the new client states replace the old ones */
    for (int c = 0; c < s->n_clients; c++) {
        if (s->pending[c] < 0) continue;
        FV_ASSERT(s->pending[c] == round); /* an older one is a rolled-back round's, never discarded */
        if (s->cur[c] >= 0) {
            char old[1200];
            state_path(s, c, s->cur[c], old, sizeof old);
            unlink(old);
        }
        s->cur[c] = s->pending[c];
        s->pending[c] = -1;
    }
    return 0;
}

/* Scan client_state/: delete versions newer than upto, keep the newest <= upto per client
 * (deleting older leftovers). */
static int recover_states(fv_store *s, int upto, fv_err *e) {
    char *dp = path_of(s, "client_state");
    DIR *d = opendir(dp);
    if (!d) {
        fv_err_set(e, "cannot open %s: %s", dp, strerror(errno));
        free(dp);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        int c, r;
        char tail[32];
        if (sscanf(de->d_name, "c%d_r%d.%31s", &c, &r, tail) != 3 || strcmp(tail, "safetensors") != 0) continue;
        char full[1200];
        snprintf(full, sizeof full, "%s/%s", dp, de->d_name);
        if (c < 0 || c >= s->n_clients || r > upto) {
            unlink(full);
            continue;
        }
        if (r > s->cur[c]) {
            if (s->cur[c] >= 0) {
                char old[1200];
                state_path(s, c, s->cur[c], old, sizeof old);
                unlink(old);
            }
            s->cur[c] = r;
        } else if (r < s->cur[c]) {
            unlink(full);
        }
    }
    closedir(d);
    free(dp);
    return 0;
}

/* Whether b[0..n) holds the text t. */
static int holds(const uint8_t *b, size_t n, const char *t) {
    const size_t k = strlen(t);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, t, k) == 0) return 1;
    return 0;
}

/* With no checkpoint: 0 when metrics.jsonl shows no round that was checkpointed, -1 with e set when
 * it does (the checkpoint is lost: starting over would silently discard those rounds). A round
 * was checkpointed when it was not rolled back and a later round followed it; the last line may
 * be a round that died between its metrics line and its checkpoint. */
static int check_no_rounds(fv_store *s, fv_err *e) {
    char *p = path_of(s, "metrics.jsonl");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = 0;
    if (access(p, F_OK) != 0) goto done;
    if (fv_read_file(p, (size_t)1 << 30, &buf, &len, e) != 0) {
        rc = -1;
        goto done;
    }
    int lines = 0, kept = 0; /* kept: the last non-empty line seen is a round whose model was kept */
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && buf[j] != '\n') j++;
        if (j > i) {
            if (kept) {
                rc = fv_err_set(e, "%s holds completed rounds (metrics.jsonl line %d follows a round whose model was "
                                "checkpointed) but no checkpoint.safetensors: resuming would start over and lose "
                                "them; restore the checkpoint, or start over with --overwrite",
                                s->dir, lines + 1);
                break;
            }
            lines++;
            kept = !holds(buf + i, j - i, "\"rolled_back\":true");
        }
        i = j + 1;
    }
done:
    free(buf);
    free(p);
    return rc;
}

int fv_store_resume(fv_store *s, int *round, float *params, size_t n, float *state, size_t ns,
                    const uint8_t config_hash[FV_HASH_BYTES], fv_err *e) {
    char *p = path_of(s, "checkpoint.safetensors");
    if (access(p, F_OK) != 0) {
        free(p);
        *round = 0;
        if (check_no_rounds(s, e) != 0) return -1;
        if (recover_states(s, 0, e) != 0) return -1;
        return 1;
    }
    fv_st_file *f = fv_st_read(p, e);
    int rc = -1;
    if (!f) goto done;
    const char *fmt = fv_st_meta(f, "format"), *ver = fv_st_meta(f, "version"), *rs = fv_st_meta(f, "round"),
               *ch = fv_st_meta(f, "config_hash"), *ph = fv_st_meta(f, "params_hash");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
        fv_err_set(e, "%s is not a fedvim checkpoint", p);
        goto done;
    }
    if (!ver || strcmp(ver, CKPT_VERSION) != 0) {
        fv_err_set(e, "%s has checkpoint version %s, this fedvim reads %s (resume with the fedvim that wrote it)",
                   p, ver ? ver : "?", CKPT_VERSION);
        goto done;
    }
    char want[2 * FV_HASH_BYTES + 1];
    fv_hex(want, config_hash, FV_HASH_BYTES);
    if (!ch || strcmp(ch, want) != 0) {
        fv_err_set(e, "%s was written for another config than %s/config.resolved.ini", p, s->dir);
        goto done;
    }
    const fv_st_tensor *t = fv_st_find(f, "global");
    if (!t || t->ndim != 1 || fv_st_numel(t) != n) {
        fv_err_set(e, "%s holds no global model of %zu parameters", p, n);
        goto done;
    }
    char got[2 * FV_HASH_BYTES + 1];
    hash_hex(got, t->data, n);
    char *end = NULL;
    long r = rs ? strtol(rs, &end, 10) : -1;
    if (!ph || strcmp(ph, got) != 0 || !end || *end || r < 1) {
        fv_err_set(e, "%s is damaged (parameter hash or round does not check out)", p);
        goto done;
    }
    const fv_st_tensor *st = fv_st_find(f, "server_state");
    const char *sh = fv_st_meta(f, "server_state_hash");
    if (!ns != !st || (st && (st->ndim != 1 || fv_st_numel(st) != ns))) {
        fv_err_set(e, "%s holds a server state of %zu floats, the config's [fl] server_opt and aggregator need %zu", p,
                   st ? fv_st_numel(st) : 0, ns);
        goto done;
    }
    if (st) {
        hash_hex(got, st->data, ns);
        if (!sh || strcmp(sh, got) != 0) {
            fv_err_set(e, "%s is damaged (the server state's hash does not check out)", p);
            goto done;
        }
        memcpy(state, st->data, ns * sizeof(float));
    }
    memcpy(params, t->data, n * sizeof(float));
    *round = (int)r;
    rc = recover_states(s, *round, e) != 0 ? -1 : 0;
done:
    fv_st_file_destroy(&f);
    free(p);
    return rc;
}

int fv_store_client_state_save(fv_store *s, int client, int round, const float *state, size_t n,
                               uint64_t steps, fv_err *e) {
    FV_ASSERT(client >= 0 && client < s->n_clients);
    char path[1200], st[32];
    state_path(s, client, round, path, sizeof path);
    snprintf(st, sizeof st, "%llu", (unsigned long long)steps);
    const char *meta[] = {"steps", st};
    fv_st_tensor t = {.name = "state", .ndim = 1, .dims = {(int64_t)n}, .data = state};
    if (fv_st_write(path, &t, 1, meta, 1, e) != 0) return -1;
    s->pending[client] = round;
    return 0;
}

int fv_store_client_state_discard(fv_store *s, fv_err *e) {
    for (int c = 0; c < s->n_clients; c++) {
        if (s->pending[c] < 0) continue;
        char path[1200];
        state_path(s, c, s->pending[c], path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            return fv_err_set(e, "cannot delete %s (a rolled-back round's client state): %s", path, strerror(errno));
        s->pending[c] = -1;
    }
    return 0;
}

int fv_store_client_state_load(fv_store *s, int client, float **state, size_t *n, uint64_t *steps,
                               fv_err *e) {
    FV_ASSERT(client >= 0 && client < s->n_clients);
    if (s->cur[client] < 0) return 1;
    char path[1200];
    state_path(s, client, s->cur[client], path, sizeof path);
    fv_st_file *f = fv_st_read(path, e);
    if (!f) return -1;
    const fv_st_tensor *t = fv_st_find(f, "state");
    const char *st = fv_st_meta(f, "steps");
    if (!t || !st) {
        fv_st_file_destroy(&f);
        return fv_err_set(e, "%s: no client state", path);
    }
    *n = fv_st_numel(t);
    *state = fv_malloc((*n ? *n : 1) * sizeof(float));
    memcpy(*state, t->data, *n * sizeof(float));
    *steps = strtoull(st, NULL, 10);
    fv_st_file_destroy(&f);
    return 0;
}
