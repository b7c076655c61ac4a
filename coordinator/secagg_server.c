/* secagg_server.c: see secagg_server.h. */
#include "secagg_server.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The shares revealed of one owner's secret: holder x coordinates and the shares. */
typedef struct {
    int n, cap;
    uint64_t *x;
    uint8_t *sh;
} reveal_set;

struct fv_sa_server {
    size_t n_params;
    uint32_t round;
    int n, k_cfg, f;
    double frac, clip;
    uint32_t *id;      /* [n] client ids */
    double *w;         /* [n] weights */
    int *level;        /* [n] 0, 1 (U1), 2 (U2), 3 (U3) */
    uint8_t *c_pk, *s_pk; /* [n * 32] */
    /* U1, compact (after end_keys) */
    int n1;
    uint32_t *u1_id;
    int *u1_slot, *slot_u1; /* U1 index -> slot, slot -> U1 index (-1) */
    uint8_t *u1_c_pk, *u1_s_pk;
    uint8_t seed[FV_SA_KEY_BYTES];
    int k, t;
    int *nb_off, *nb; /* neighbours of U1 index i: nb[nb_off[i] .. nb_off[i + 1]) (U1 indices) */
    uint8_t *boxes;   /* the box from U1 index i to its j-th neighbour at (nb_off[i] + j) * BOX */
    uint32_t *sum;    /* [n_params] */
    double total3;    /* the survivors' total weight (after finish) */
    reveal_set *rb, *rs; /* [n] revealed shares of each slot's b and s_sk */
    int *revealed;       /* [n] the slot's reveals arrived */
};

fv_sa_server *fv_sa_server_new(size_t n_params) {
    fv_sa_server *s = fv_calloc(1, sizeof *s);
    s->n_params = n_params;
    s->sum = fv_malloc(n_params * sizeof(uint32_t));
    return s;
}

static void round_free(fv_sa_server *s) {
    for (int i = 0; s->rb && i < s->n; i++) {
        free(s->rb[i].x), free(s->rb[i].sh), free(s->rs[i].x);
        if (s->rs[i].sh) sodium_memzero(s->rs[i].sh, (size_t)s->rs[i].cap * FV_SA_SHARE_BYTES);
        free(s->rs[i].sh);
    }
    free(s->id), free(s->w), free(s->level), free(s->c_pk), free(s->s_pk), free(s->u1_id), free(s->u1_slot);
    free(s->slot_u1), free(s->u1_c_pk), free(s->u1_s_pk), free(s->nb_off), free(s->nb), free(s->boxes);
    free(s->rb), free(s->rs), free(s->revealed);
    const size_t np = s->n_params;
    uint32_t *sum = s->sum;
    memset(s, 0, sizeof *s);
    s->n_params = np;
    s->sum = sum;
}

void fv_sa_server_free(fv_sa_server **s) {
    if (!*s) return;
    round_free(*s);
    free((*s)->sum);
    free(*s);
    *s = NULL;
}

int fv_sa_server_begin(fv_sa_server *s, uint32_t round, const int *ids, const double *w, int n, int k_cfg, double frac,
                       double clip, fv_err *e) {
    round_free(s);
    double total = 0;
    for (int i = 0; i < n; i++) total += w[i];
    s->f = fv_sa_frac_bits(clip, total);
    if (s->f < 0)
        return fv_err_set(e, "[secagg] clip = %g over %g samples leaves fewer than %d fractional bits in 32-bit fixed "
                          "point: lower clip or the clients per round", clip, total, FV_SA_MIN_FRAC);
    s->round = round, s->n = n, s->k_cfg = k_cfg, s->frac = frac, s->clip = clip;
    s->id = fv_malloc(sizeof(uint32_t) * (size_t)n);
    s->w = fv_malloc(sizeof(double) * (size_t)n);
    s->level = fv_calloc((size_t)n, sizeof(int));
    s->c_pk = fv_malloc((size_t)n * FV_SA_KEY_BYTES);
    s->s_pk = fv_malloc((size_t)n * FV_SA_KEY_BYTES);
    s->rb = fv_calloc((size_t)n, sizeof(reveal_set));
    s->rs = fv_calloc((size_t)n, sizeof(reveal_set));
    s->revealed = fv_calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) s->id[i] = (uint32_t)ids[i], s->w[i] = w[i];
    memset(s->sum, 0, s->n_params * sizeof(uint32_t));
    return 0;
}

int fv_sa_server_frac_bits(const fv_sa_server *s) { return s->f; }
const uint8_t *fv_sa_server_graph_seed(const fv_sa_server *s) { return s->seed; }
int fv_sa_server_k(const fv_sa_server *s) { return s->k; }
int fv_sa_server_t(const fv_sa_server *s) { return s->t; }
int fv_sa_server_in(const fv_sa_server *s, int slot, int level) {
    return slot >= 0 && slot < s->n && s->level[slot] >= level;
}

static int bad_slot(const fv_sa_server *s, int slot, int level, const char *what, fv_err *e) {
    if (slot < 0 || slot >= s->n) return fv_err_set(e, "secagg %s for slot %d: not in this round", what, slot);
    if (s->level[slot] != level)
        return fv_err_set(e, "secagg %s for client %u: %s", what, s->id[slot],
                          s->level[slot] > level ? "it came already" : "an earlier step of the client is missing");
    return 0;
}

int fv_sa_server_put_keys(fv_sa_server *s, int slot, const uint8_t c_pk[FV_SA_KEY_BYTES],
                          const uint8_t s_pk[FV_SA_KEY_BYTES], fv_err *e) {
    if (bad_slot(s, slot, 0, "keys", e)) return -1;
    if (s->u1_id) return fv_err_set(e, "secagg keys of client %u after the roster went out", s->id[slot]);
    memcpy(s->c_pk + (size_t)slot * FV_SA_KEY_BYTES, c_pk, FV_SA_KEY_BYTES);
    memcpy(s->s_pk + (size_t)slot * FV_SA_KEY_BYTES, s_pk, FV_SA_KEY_BYTES);
    s->level[slot] = 1;
    return 0;
}

int fv_sa_server_end_keys(fv_sa_server *s) {
    const int n = s->n;
    s->u1_id = fv_malloc(sizeof(uint32_t) * (size_t)(n + 1));
    s->u1_slot = fv_malloc(sizeof(int) * (size_t)(n + 1));
    s->slot_u1 = fv_malloc(sizeof(int) * (size_t)(n + 1));
    s->u1_c_pk = fv_malloc((size_t)(n + 1) * FV_SA_KEY_BYTES);
    s->u1_s_pk = fv_malloc((size_t)(n + 1) * FV_SA_KEY_BYTES);
    int m = 0;
    for (int i = 0; i < n; i++) {
        s->slot_u1[i] = -1;
        if (s->level[i] < 1) continue;
        s->slot_u1[i] = m;
        s->u1_slot[m] = i;
        s->u1_id[m] = s->id[i];
        memcpy(s->u1_c_pk + (size_t)m * FV_SA_KEY_BYTES, s->c_pk + (size_t)i * FV_SA_KEY_BYTES, FV_SA_KEY_BYTES);
        memcpy(s->u1_s_pk + (size_t)m * FV_SA_KEY_BYTES, s->s_pk + (size_t)i * FV_SA_KEY_BYTES, FV_SA_KEY_BYTES);
        m++;
    }
    s->n1 = m;
    randombytes_buf(s->seed, sizeof s->seed);
    s->k = s->k_cfg == 0 || s->k_cfg >= m - 1 ? (m > 1 ? m - 1 : 0) : s->k_cfg;
    s->t = fv_sa_threshold(s->k + 1, s->frac); /* of the k + 1 holders: the neighbours and the client */
    s->nb_off = fv_malloc(sizeof(int) * (size_t)(m + 1));
    s->nb = fv_malloc(sizeof(int) * ((size_t)m * (size_t)(s->k > 0 ? s->k : 1) + 1));
    s->nb_off[0] = 0;
    for (int i = 0; i < m; i++) {
        const int c = fv_sa_neighbours(s->u1_id, m, s->seed, s->k, i, s->nb + s->nb_off[i]);
        FV_ASSERT(c >= 0); /* distinct ids (the round's slots), an even k or every other client */
        s->nb_off[i + 1] = s->nb_off[i] + c;
    }
    s->boxes = fv_calloc((size_t)s->nb_off[m] + 1, FV_SA_BOX_BYTES);
    return m;
}

int fv_sa_server_roster(const fv_sa_server *s, const uint32_t **ids, const uint8_t **c_pk, const uint8_t **s_pk) {
    *ids = s->u1_id, *c_pk = s->u1_c_pk, *s_pk = s->u1_s_pk;
    return s->n1;
}

/* The position of U1 index v among U1 index u's neighbours, or -1. */
static int nb_pos(const fv_sa_server *s, int u, int v) {
    for (int j = s->nb_off[u]; j < s->nb_off[u + 1]; j++)
        if (s->nb[j] == v) return j - s->nb_off[u];
    return -1;
}

static int u1_of_id(const fv_sa_server *s, uint32_t id) {
    for (int i = 0; i < s->n1; i++)
        if (s->u1_id[i] == id) return i;
    return -1;
}

int fv_sa_server_put_shares(fv_sa_server *s, int slot, const uint32_t *to, const uint8_t *boxes, int n, fv_err *e) {
    if (!s->u1_id) return fv_err_set(e, "secagg shares before the roster");
    if (bad_slot(s, slot, 1, "shares", e)) return -1;
    const int u = s->slot_u1[slot];
    const int deg = s->nb_off[u + 1] - s->nb_off[u];
    if (n != deg)
        return fv_err_set(e, "secagg shares of client %u: %d boxes, it has %d neighbours", s->id[slot], n, deg);
    uint8_t *got = fv_calloc((size_t)deg + 1, 1);
    for (int j = 0; j < n; j++) {
        const int v = u1_of_id(s, to[j]);
        const int p = v >= 0 ? nb_pos(s, u, v) : -1;
        if (p < 0 || got[p]) {
            free(got);
            return fv_err_set(e, "secagg shares of client %u: a box to client %u, %s", s->id[slot], to[j],
                              p < 0 ? "which is not its neighbour" : "twice");
        }
        got[p] = 1;
    }
    for (int j = 0; j < n; j++) {
        const int p = nb_pos(s, u, u1_of_id(s, to[j]));
        memcpy(s->boxes + (size_t)(s->nb_off[u] + p) * FV_SA_BOX_BYTES, boxes + (size_t)j * FV_SA_BOX_BYTES,
               FV_SA_BOX_BYTES);
    }
    free(got);
    s->level[slot] = 2;
    return 0;
}

int fv_sa_server_end_shares(fv_sa_server *s) {
    int k = 0;
    for (int i = 0; i < s->n; i++) k += s->level[i] >= 2;
    return k;
}

int fv_sa_server_inbox(const fv_sa_server *s, int slot, uint32_t **from, uint8_t **boxes) {
    const int v = s->slot_u1[slot];
    const int deg = s->nb_off[v + 1] - s->nb_off[v];
    *from = fv_malloc(sizeof(uint32_t) * (size_t)(deg + 1));
    *boxes = fv_malloc((size_t)(deg + 1) * FV_SA_BOX_BYTES);
    int k = 0;
    for (int j = s->nb_off[v]; j < s->nb_off[v + 1]; j++) {
        const int u = s->nb[j];
        if (s->level[s->u1_slot[u]] < 2) continue;
        const int p = nb_pos(s, u, v); /* the graph is symmetric: v is u's neighbour */
        FV_ASSERT(p >= 0);
        (*from)[k] = s->u1_id[u];
        memcpy(*boxes + (size_t)k * FV_SA_BOX_BYTES, s->boxes + (size_t)(s->nb_off[u] + p) * FV_SA_BOX_BYTES,
               FV_SA_BOX_BYTES);
        k++;
    }
    return k;
}

int fv_sa_server_put_input(fv_sa_server *s, int slot, const uint32_t *y, fv_err *e) {
    if (bad_slot(s, slot, 2, "input", e)) return -1;
    for (size_t i = 0; i < s->n_params; i++) s->sum[i] += y[i];
    s->level[slot] = 3;
    return 0;
}

void fv_sa_server_end_inputs(fv_sa_server *s, uint32_t **surv, int *ns, uint32_t **drop, int *nd) {
    *surv = fv_malloc(sizeof(uint32_t) * (size_t)(s->n + 1));
    *drop = fv_malloc(sizeof(uint32_t) * (size_t)(s->n + 1));
    *ns = *nd = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->level[i] == 3) (*surv)[(*ns)++] = s->id[i];
        else if (s->level[i] == 2) (*drop)[(*nd)++] = s->id[i];
    }
}

static void reveal_add(reveal_set *r, uint64_t x, const uint8_t *share) {
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->x = fv_realloc(r->x, sizeof(uint64_t) * (size_t)r->cap);
        r->sh = fv_realloc(r->sh, (size_t)r->cap * FV_SA_SHARE_BYTES);
    }
    r->x[r->n] = x;
    memcpy(r->sh + (size_t)r->n * FV_SA_SHARE_BYTES, share, FV_SA_SHARE_BYTES);
    r->n++;
}

int fv_sa_server_put_reveals(fv_sa_server *s, int slot, const uint32_t *owner, const int *self_mask,
                             const uint8_t *shares, int n, fv_err *e) {
    if (bad_slot(s, slot, 3, "reveals", e)) return -1;
    if (s->revealed[slot]) return fv_err_set(e, "secagg reveals of client %u came twice", s->id[slot]);
    const int h = s->slot_u1[slot];
    int *os = fv_malloc(sizeof(int) * (size_t)(n + 1));
    for (int j = 0; j < n; j++) {
        const int u = u1_of_id(s, owner[j]);
        const int os_ = u >= 0 ? s->u1_slot[u] : -1;
        const char *why = NULL;
        if (u < 0 || (u != h && nb_pos(s, h, u) < 0) || s->level[os_] < 2) why = "which sealed it no share";
        else if (self_mask[j] != (s->level[os_] == 3)) why = self_mask[j] ? "a share of b for a dropped client"
                                                                             : "a share of s_sk for a survivor";
        for (int q = 0; q < j && !why; q++)
            if (owner[q] == owner[j]) why = "twice";
        if (why) {
            free(os);
            return fv_err_set(e, "secagg reveals of client %u: client %u, %s", s->id[slot], owner[j], why);
        }
        os[j] = os_;
    }
    for (int j = 0; j < n; j++)
        reveal_add(self_mask[j] ? &s->rb[os[j]] : &s->rs[os[j]], (uint64_t)s->id[slot] + 1,
                   shares + (size_t)j * FV_SA_SHARE_BYTES);
    free(os);
    s->revealed[slot] = 1;
    return 0;
}

/* The threshold a client used: t (of its degree + 1 holders: its neighbours and itself). */
static int used_t(const fv_sa_server *s, int u) {
    const int deg = s->nb_off[u + 1] - s->nb_off[u];
    return s->t <= deg + 1 ? s->t : deg + 1;
}

int fv_sa_server_finish(fv_sa_server *s, const float *base, float *out, fv_err *e) {
    double total = 0;
    int n3 = 0;
    uint8_t secret[FV_SA_KEY_BYTES];
    uint32_t *sid = fv_malloc(sizeof(uint32_t) * (size_t)(s->n + 1));
    uint8_t *spk = fv_malloc((size_t)(s->n + 1) * FV_SA_KEY_BYTES);
    int rc = 0;
    for (int i = 0; i < s->n && rc == 0; i++) {
        if (s->level[i] < 2) continue;
        const int u = s->slot_u1[i], t = used_t(s, u);
        const int surv = s->level[i] == 3;
        const reveal_set *r = surv ? &s->rb[i] : &s->rs[i];
        if (t < 1 || r->n < t) {
            rc = fv_err_set(e, "secagg: %d shares of client %u's %s arrived, %d needed", r->n, s->id[i],
                            surv ? "self mask" : "mask key (it dropped)", t < 1 ? 1 : t);
        } else if (fv_sa_reconstruct(r->x, r->sh, r->n, t, secret) != 0) {
            rc = fv_err_set(e, "secagg: the shares of client %u's %s do not rebuild it", s->id[i],
                            surv ? "self mask" : "mask key");
        } else if (surv) {
            fv_sa_unmask_self(s->sum, s->n_params, secret);
            total += s->w[i];
            n3++;
        } else { /* its masks with the neighbours that survived */
            int m = 0;
            for (int j = s->nb_off[u]; j < s->nb_off[u + 1]; j++) {
                const int v = s->u1_slot[s->nb[j]];
                if (s->level[v] != 3) continue;
                sid[m] = s->id[v];
                memcpy(spk + (size_t)m * FV_SA_KEY_BYTES, s->s_pk + (size_t)v * FV_SA_KEY_BYTES, FV_SA_KEY_BYTES);
                m++;
            }
            if (fv_sa_unmask_dropped(s->sum, s->n_params, secret, s->s_pk + (size_t)i * FV_SA_KEY_BYTES, s->id[i],
                                     s->round, sid, spk, m) != 0)
                rc = fv_err_set(e, "secagg: the mask key rebuilt for dropped client %u does not match its public key "
                                "(a bad share)", s->id[i]);
        }
    }
    sodium_memzero(secret, sizeof secret);
    free(sid), free(spk);
    if (rc == 0 && n3 == 0) rc = fv_err_set(e, "secagg: no client's masked input arrived");
    if (rc != 0) return -1;
    s->total3 = total;
    fv_sa_decode(s->sum, s->n_params, s->f, total, base, out);
    return 0;
}

const uint32_t *fv_sa_server_sum(const fv_sa_server *s, double *total_weight) {
    *total_weight = s->total3;
    return s->sum;
}
