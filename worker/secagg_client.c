/* secagg_client.c: see secagg_client.h. */
#include "secagg_client.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum { ST_KEYS = 1, ST_SHARED, ST_MASKED, ST_REVEALED };

/* One client's round. */
typedef struct {
    uint32_t id;
    int state;
    fv_sa_client k;
    int t;         /* the round's threshold */
    uint8_t own_b[FV_SA_SHARE_BYTES]; /* the client's own share of b (it is a holder too) */
    int nn;        /* neighbours (after shares) */
    uint32_t *nid; /* their ids, ascending ... */
    uint8_t *nc_pk, *ns_pk; /* ... and keys */
    int ns;        /* senders of the boxes opened at mask time */
    uint32_t *sid;
    uint8_t *sb, *ss; /* their shares of b and of s_sk (FV_SA_SHARE_BYTES each) */
} sa_entry;

struct fv_sa_worker {
    uint32_t round;
    sa_entry *e;
    int n, cap;
};

static void entry_wipe(sa_entry *x) {
    sodium_memzero(&x->k, sizeof x->k);
    sodium_memzero(x->own_b, sizeof x->own_b);
    if (x->sb) sodium_memzero(x->sb, (size_t)x->ns * FV_SA_SHARE_BYTES);
    if (x->ss) sodium_memzero(x->ss, (size_t)x->ns * FV_SA_SHARE_BYTES);
    free(x->nid), free(x->nc_pk), free(x->ns_pk), free(x->sid), free(x->sb), free(x->ss);
    memset(x, 0, sizeof *x);
}

static void table_clear(fv_sa_worker *w) {
    for (int i = 0; i < w->n; i++) entry_wipe(&w->e[i]);
    w->n = 0;
}

fv_sa_worker *fv_sa_worker_new(void) { return fv_calloc(1, sizeof(fv_sa_worker)); }

void fv_sa_worker_free(fv_sa_worker **w) {
    if (!*w) return;
    table_clear(*w);
    free((*w)->e);
    free(*w);
    *w = NULL;
}

static sa_entry *find(fv_sa_worker *w, uint32_t client) {
    for (int i = 0; i < w->n; i++)
        if (w->e[i].id == client) return &w->e[i];
    return NULL;
}

/* The entry of client in round in state `want`, or NULL with e saying why. */
static sa_entry *expect(fv_sa_worker *w, uint32_t round, uint32_t client, int want, const char *step, fv_err *e) {
    sa_entry *x = round == w->round ? find(w, client) : NULL;
    if (!x) {
        fv_err_set(e, "secagg %s for client %u of round %u: this worker holds no keys for it", step, client, round);
        return NULL;
    }
    if (x->state != want) {
        fv_err_set(e, "secagg %s for client %u of round %u: out of order (already done, or an earlier step missing)",
                   step, client, round);
        return NULL;
    }
    return x;
}

int fv_sa_worker_keys(fv_sa_worker *w, uint32_t round, uint32_t client, uint8_t c_pk[FV_SA_KEY_BYTES],
                      uint8_t s_pk[FV_SA_KEY_BYTES], fv_err *e) {
    if (round < w->round)
        return fv_err_set(e, "secagg keys for round %u: this worker is at round %u already", round, w->round);
    if (round > w->round) {
        table_clear(w);
        w->round = round;
    }
    if (find(w, client)) return fv_err_set(e, "secagg keys for client %u of round %u asked twice", client, round);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->e = fv_realloc(w->e, (size_t)w->cap * sizeof *w->e);
    }
    sa_entry *x = &w->e[w->n++];
    memset(x, 0, sizeof *x);
    x->id = client;
    x->state = ST_KEYS;
    fv_sa_client_init(&x->k);
    memcpy(c_pk, x->k.c_pk, FV_SA_KEY_BYTES);
    memcpy(s_pk, x->k.s_pk, FV_SA_KEY_BYTES);
    return 0;
}

int fv_sa_worker_shares(fv_sa_worker *w, uint32_t round, uint32_t client, const uint32_t *ids, const uint8_t *c_pk,
                        const uint8_t *s_pk, int n, const uint8_t seed[FV_SA_KEY_BYTES], int k, int t, uint32_t **to,
                        uint8_t **boxes, int *nbox, fv_err *e) {
    *to = NULL, *boxes = NULL, *nbox = 0;
    sa_entry *x = expect(w, round, client, ST_KEYS, "shares", e);
    if (!x) return -1;
    int self = -1;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < j; i++)
            if (ids[i] == ids[j]) return fv_err_set(e, "secagg roster of round %u lists client %u twice", round, ids[j]);
        if (ids[j] == client) self = j;
    }
    if (self < 0) return fv_err_set(e, "secagg roster of round %u leaves out client %u", round, client);
    if (memcmp(c_pk + (size_t)self * FV_SA_KEY_BYTES, x->k.c_pk, FV_SA_KEY_BYTES) != 0 ||
        memcmp(s_pk + (size_t)self * FV_SA_KEY_BYTES, x->k.s_pk, FV_SA_KEY_BYTES) != 0)
        return fv_err_set(e, "secagg roster of round %u gives client %u keys it did not advertise", round, client);
    int *nb = fv_malloc(sizeof(int) * (size_t)(n > 1 ? n : 1));
    const int nn = fv_sa_neighbours(ids, n, seed, k, self, nb);
    if (nn < 0) {
        free(nb);
        return fv_err_set(e, "secagg roster of round %u: no neighbour graph of degree %d over %d clients", round, k, n);
    }
    /* t must exceed half of the nn + 1 holders: else a server that tells some holders the client
     * dropped and the others that it survived gets t shares of both its secrets (and its update) */
    if (2 * t <= nn + 1 || t > nn + 1) {
        free(nb);
        return fv_err_set(e, "secagg threshold %d is outside %d..%d: it must exceed half of client %u's %d holders of "
                          "shares (its %d neighbours and itself)", t, (nn + 1) / 2 + 1, nn + 1, client, nn + 1, nn);
    }
    x->t = t;
    x->nn = nn;
    x->nid = fv_malloc(sizeof(uint32_t) * (size_t)(nn + 1));
    x->nc_pk = fv_malloc((size_t)(nn + 1) * FV_SA_KEY_BYTES);
    x->ns_pk = fv_malloc((size_t)(nn + 1) * FV_SA_KEY_BYTES);
    uint64_t *xs = fv_malloc(sizeof(uint64_t) * (size_t)(nn + 1));
    for (int i = 0; i < nn; i++) {
        x->nid[i] = ids[nb[i]];
        xs[i] = (uint64_t)ids[nb[i]] + 1;
        memcpy(x->nc_pk + (size_t)i * FV_SA_KEY_BYTES, c_pk + (size_t)nb[i] * FV_SA_KEY_BYTES, FV_SA_KEY_BYTES);
        memcpy(x->ns_pk + (size_t)i * FV_SA_KEY_BYTES, s_pk + (size_t)nb[i] * FV_SA_KEY_BYTES, FV_SA_KEY_BYTES);
    }
    free(nb);
    /* the holders: the nn neighbours, then the client itself (as in Bonawitz et al.: a survivor
     * reveals its own share of b too); t of the nn + 1 shares rebuild a secret */
    xs[nn] = (uint64_t)client + 1;
    uint8_t *shb = fv_malloc((size_t)(nn + 1) * FV_SA_SHARE_BYTES), *shs = fv_malloc((size_t)(nn + 1) * FV_SA_SHARE_BYTES);
    fv_sa_share(x->k.b, t, nn + 1, xs, shb);
    fv_sa_share(x->k.s_sk, t, nn + 1, xs, shs);
    memcpy(x->own_b, shb + (size_t)nn * FV_SA_SHARE_BYTES, FV_SA_SHARE_BYTES);
    *to = fv_malloc(sizeof(uint32_t) * (size_t)(nn + 1));
    *boxes = fv_malloc((size_t)(nn + 1) * FV_SA_BOX_BYTES);
    int bad = -1;
    for (int i = 0; i < nn; i++) {
        (*to)[i] = x->nid[i];
        if (fv_sa_seal(&x->k, client, x->nid[i], round, x->nc_pk + (size_t)i * FV_SA_KEY_BYTES,
                       shb + (size_t)i * FV_SA_SHARE_BYTES, shs + (size_t)i * FV_SA_SHARE_BYTES,
                       *boxes + (size_t)i * FV_SA_BOX_BYTES) != 0 && bad < 0)
            bad = i;
    }
    sodium_memzero(shb, (size_t)(nn + 1) * FV_SA_SHARE_BYTES);
    sodium_memzero(shs, (size_t)(nn + 1) * FV_SA_SHARE_BYTES);
    free(shb), free(shs), free(xs);
    if (bad >= 0) {
        free(*to), free(*boxes);
        *to = NULL, *boxes = NULL;
        return fv_err_set(e, "secagg roster of round %u: client %u's encryption key is refused (low-order point)",
                          round, x->nid[bad]);
    }
    *nbox = nn;
    x->state = ST_SHARED;
    return 0;
}

static int neighbour_index(const sa_entry *x, uint32_t id) {
    for (int i = 0; i < x->nn; i++)
        if (x->nid[i] == id) return i;
    return -1;
}

int fv_sa_worker_mask(fv_sa_worker *w, uint32_t round, uint32_t client, const uint32_t *from, const uint8_t *boxes,
                      int nbox, uint32_t *y, size_t n, fv_err *e) {
    sa_entry *x = expect(w, round, client, ST_SHARED, "mask", e);
    if (!x) return -1;
    if (nbox + 1 < x->t)
        return fv_err_set(e, "secagg: client %u of round %u got shares from %d neighbours, fewer than the threshold %d "
                          "needs", client, round, nbox, x->t - 1);
    uint32_t *sid = fv_malloc(sizeof(uint32_t) * (size_t)(nbox + 1));
    uint8_t *sb = fv_malloc((size_t)(nbox + 1) * FV_SA_SHARE_BYTES), *ss = fv_malloc((size_t)(nbox + 1) * FV_SA_SHARE_BYTES);
    uint8_t *pk = fv_malloc((size_t)(nbox + 1) * FV_SA_KEY_BYTES);
    int rc = 0;
    for (int j = 0; j < nbox && rc == 0; j++) {
        const int i = neighbour_index(x, from[j]);
        int dup = 0;
        for (int q = 0; q < j; q++) dup |= from[q] == from[j];
        if (i < 0 || dup)
            rc = fv_err_set(e, "secagg: a share for client %u of round %u from client %u, %s", client, round, from[j],
                            dup ? "twice" : "which is not its neighbour");
        else if (fv_sa_open(&x->k, from[j], client, round, x->nc_pk + (size_t)i * FV_SA_KEY_BYTES,
                            boxes + (size_t)j * FV_SA_BOX_BYTES, sb + (size_t)j * FV_SA_SHARE_BYTES,
                            ss + (size_t)j * FV_SA_SHARE_BYTES) != 0)
            rc = fv_err_set(e, "secagg: the share for client %u of round %u from client %u does not open (forged or "
                            "misrouted)", client, round, from[j]);
        else {
            sid[j] = from[j];
            memcpy(pk + (size_t)j * FV_SA_KEY_BYTES, x->ns_pk + (size_t)i * FV_SA_KEY_BYTES, FV_SA_KEY_BYTES);
        }
    }
    if (rc == 0 && fv_sa_mask_input(y, n, &x->k, client, round, sid, pk, nbox) != 0)
        rc = fv_err_set(e, "secagg: client %u of round %u: a neighbour's mask key is refused (low-order point)", client,
                        round);
    free(pk);
    if (rc != 0) {
        sodium_memzero(sb, (size_t)(nbox + 1) * FV_SA_SHARE_BYTES);
        sodium_memzero(ss, (size_t)(nbox + 1) * FV_SA_SHARE_BYTES);
        free(sid), free(sb), free(ss);
        return -1;
    }
    x->ns = nbox, x->sid = sid, x->sb = sb, x->ss = ss;
    x->state = ST_MASKED;
    return 0;
}

static int listed(const uint32_t *l, int n, uint32_t id) {
    for (int i = 0; i < n; i++)
        if (l[i] == id) return 1;
    return 0;
}

int fv_sa_worker_unmask(fv_sa_worker *w, uint32_t round, uint32_t client, const uint32_t *surv, int ns,
                        const uint32_t *drop, int nd, uint32_t **owner, int **self_mask, uint8_t **shares, int *nrev,
                        fv_err *e) {
    *owner = NULL, *self_mask = NULL, *shares = NULL, *nrev = 0;
    sa_entry *x = expect(w, round, client, ST_MASKED, "unmask", e);
    if (!x) return -1;
    x->state = ST_REVEALED; /* one answer per round, even a refused one */
    if (!listed(surv, ns, client))
        return fv_err_set(e, "secagg unmask for client %u of round %u, which the request does not list as a survivor",
                          client, round);
    if (ns < 3)
        return fv_err_set(e, "secagg unmask of round %u lists %d survivors: a sum of fewer than 3 updates tells each "
                          "of them the others'", round, ns);
    for (int i = 0; i < nd; i++)
        if (listed(surv, ns, drop[i]))
            return fv_err_set(e, "secagg unmask of round %u lists client %u as survivor and as dropped", round, drop[i]);
    int alive = 1; /* itself */
    for (int j = 0; j < x->ns; j++) alive += listed(surv, ns, x->sid[j]);
    if (alive < x->t)
        return fv_err_set(e, "secagg unmask of round %u: only %d survivors in client %u's neighbourhood, the threshold is "
                          "%d", round, alive, client, x->t);
    *owner = fv_malloc(sizeof(uint32_t) * (size_t)(x->ns + 1));
    *self_mask = fv_malloc(sizeof(int) * (size_t)(x->ns + 1));
    *shares = fv_malloc((size_t)(x->ns + 1) * FV_SA_SHARE_BYTES);
    int k = 0;
    for (int j = 0; j < x->ns; j++) {
        const int s = listed(surv, ns, x->sid[j]), d = listed(drop, nd, x->sid[j]);
        if (!s && !d) continue;
        (*owner)[k] = x->sid[j];
        (*self_mask)[k] = s;
        memcpy(*shares + (size_t)k * FV_SA_SHARE_BYTES, (s ? x->sb : x->ss) + (size_t)j * FV_SA_SHARE_BYTES,
               FV_SA_SHARE_BYTES);
        k++;
    }
    (*owner)[k] = client; /* its own share of b: it survived */
    (*self_mask)[k] = 1;
    memcpy(*shares + (size_t)k * FV_SA_SHARE_BYTES, x->own_b, FV_SA_SHARE_BYTES);
    *nrev = k + 1;
    return 0;
}
