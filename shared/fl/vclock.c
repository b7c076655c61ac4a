/* vclock.c: see vclock.h. */
#include "fl/vclock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define STREAM_VCLOCK 0x76636c6f636bull /* "vclock": synchronous sampling */
#define STREAM_FEDBUFF 0x66656462756full /* "fedbuf": asynchronous dispatch */

double fv_vclock_duration(const fv_config *c, const fv_trace *t, int client, int n) {
    return (double)n * c->local_epochs / t->speed[client] + c->comm_seconds;
}

/* How a task of client started at `start` ends: its fate and when it leaves (vclock.h). */
static fv_vc_fate task_end(const fv_config *c, const fv_trace *t, const int *client_n, int client, double start,
                           double *leave) {
    const double finish = start + fv_vclock_duration(c, t, client, client_n[client]);
    const double off = fv_trace_avail_until(t, client, start); /* > start: the client is available */
    const double first = off < finish ? off : finish;
    if (c->deadline > 0 && first > start + c->deadline) {
        *leave = start + c->deadline;
        return FV_VC_STRAGGLER;
    }
    *leave = first;
    return off < finish ? FV_VC_OFFLINE : FV_VC_DONE;
}

/* Move k ids drawn uniformly without replacement from ids[0..n) to its front (partial
 * Fisher-Yates). */
static void pick_uniform(fv_rng *r, int *ids, int n, int k) {
    for (int i = 0; i < k; i++) {
        int j = i + (int)fv_rng_below(r, (uint64_t)(n - i));
        int x = ids[i];
        ids[i] = ids[j];
        ids[j] = x;
    }
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void fv_vc_round_init(fv_vc_round *p, int cap) {
    *p = (fv_vc_round){.cap = cap};
    p->client = fv_malloc((size_t)cap * sizeof(int));
    p->leave = fv_malloc((size_t)cap * sizeof(double));
    p->fate = fv_malloc((size_t)cap * sizeof(fv_vc_fate));
}

void fv_vc_round_free(fv_vc_round *p) {
    free(p->client);
    free(p->leave);
    free(p->fate);
    *p = (fv_vc_round){0};
}

/* The earliest time >= now at which some client of the trace is available (INFINITY: never). */
static double first_available(const fv_trace *t, double now) {
    double best = INFINITY;
    for (int i = 0; i < t->n; i++) {
        double x = fv_trace_next_on(t, i, now);
        if (x < best) best = x;
    }
    return best;
}

int fv_vclock_plan(const fv_config *c, const fv_trace *t, const int *client_n, int round, double now,
                   fv_vc_round *p, fv_err *e) {
    const double start = first_available(t, now);
    if (isinf(start))
        return fv_err_set(e, "round %d: no client is available at or after virtual time %.6g s: the trace %s ends "
                          "(generate a longer one: fedvim trace --horizon)", round, now, c->trace);
    int *ids = fv_malloc((size_t)t->n * sizeof(int));
    int na = 0;
    for (int i = 0; i < t->n; i++)
        if (fv_trace_avail_until(t, i, start) > start) ids[na++] = i;
    const int m = fv_config_clients_per_round(c);
    p->n = na < m ? na : m;
    FV_ASSERT(p->n <= p->cap);
    fv_rng r;
    fv_rng_seed2(&r, (uint64_t)c->seed ^ STREAM_VCLOCK, (uint64_t)round);
    pick_uniform(&r, ids, na, p->n);
    memcpy(p->client, ids, (size_t)p->n * sizeof(int));
    free(ids);
    qsort(p->client, (size_t)p->n, sizeof(int), cmp_int);
    p->start = p->end = start;
    for (int s = 0; s < p->n; s++) {
        p->fate[s] = task_end(c, t, client_n, p->client[s], start, &p->leave[s]);
        if (p->leave[s] > p->end) p->end = p->leave[s];
    }
    return 0;
}

/* ---- asynchronous ---- */

typedef struct {
    int busy, client;
    long version;
    double leave;
    fv_vc_fate fate;
    uint64_t seq; /* dispatch order: ties in leave time go to the earlier dispatch */
} fb_slot;

struct fv_fb_sched {
    const fv_config *c;
    const fv_trace *t;
    const int *client_n;
    double now;
    long version;
    uint64_t seq;
    fv_rng rng;
    fb_slot *slot; /* [nslot] */
    int nslot;     /* fv_config_concurrency */
    uint8_t *busy; /* [clients] */
    int *ids;      /* [clients] scratch */
};

fv_fb_sched *fv_fb_sched_new(const fv_config *c, const fv_trace *t, const int *client_n) {
    fv_fb_sched *s = fv_calloc(1, sizeof *s);
    s->c = c;
    s->t = t;
    s->client_n = client_n;
    fv_rng_seed2(&s->rng, (uint64_t)c->seed ^ STREAM_FEDBUFF, 0);
    s->nslot = fv_config_concurrency(c);
    s->slot = fv_calloc((size_t)s->nslot, sizeof *s->slot);
    s->busy = fv_calloc((size_t)t->n, 1);
    s->ids = fv_malloc((size_t)t->n * sizeof(int));
    return s;
}

void fv_fb_sched_free(fv_fb_sched **sp) {
    fv_fb_sched *s = *sp;
    if (!s) return;
    free(s->slot);
    free(s->busy);
    free(s->ids);
    free(s);
    *sp = NULL;
}

#define FB_HEAD_WORDS 7 /* now, version, seq, rng s[4] */
#define FB_SLOT_WORDS 6 /* busy, client, version, leave, fate, seq */

static uint64_t dbits(double x) {
    uint64_t w;
    memcpy(&w, &x, sizeof w);
    return w;
}

static double bitsd(uint64_t w) {
    double x;
    memcpy(&x, &w, sizeof x);
    return x;
}

size_t fv_fb_sched_state_len(const fv_fb_sched *s) { return FB_HEAD_WORDS + FB_SLOT_WORDS * (size_t)s->nslot; }

void fv_fb_sched_save(const fv_fb_sched *s, uint64_t *w) {
    w[0] = dbits(s->now);
    w[1] = (uint64_t)s->version;
    w[2] = s->seq;
    memcpy(w + 3, s->rng.s, sizeof s->rng.s);
    for (int k = 0; k < s->nslot; k++) {
        const fb_slot *sl = &s->slot[k];
        uint64_t *q = w + FB_HEAD_WORDS + FB_SLOT_WORDS * (size_t)k;
        q[0] = (uint64_t)sl->busy, q[1] = (uint64_t)(int64_t)sl->client, q[2] = (uint64_t)sl->version;
        q[3] = dbits(sl->leave), q[4] = (uint64_t)sl->fate, q[5] = sl->seq;
    }
}

int fv_fb_sched_load(fv_fb_sched *s, const uint64_t *w, size_t n, fv_err *e) {
    if (n != fv_fb_sched_state_len(s))
        return fv_err_set(e, "FedBuff schedule state of %zu words, this config's has %zu", n, fv_fb_sched_state_len(s));
    const double now = bitsd(w[0]);
    const int64_t version = (int64_t)w[1];
    if (!isfinite(now) || now < 0 || version < 0 || version > (int64_t)1 << 40)
        return fv_err_set(e, "FedBuff schedule state: time %g or version %lld out of range", now, (long long)version);
    uint8_t *busy = fv_calloc((size_t)s->t->n, 1);
    for (int k = 0; k < s->nslot; k++) {
        const uint64_t *q = w + FB_HEAD_WORDS + FB_SLOT_WORDS * (size_t)k;
        const int64_t client = (int64_t)q[1], v = (int64_t)q[2];
        const double leave = bitsd(q[3]);
        if (q[0] > 1 || (q[0] && (client < 0 || client >= s->t->n || busy[client] || v < 0 || v > version ||
                                  !(leave >= 0) || isinf(leave) || q[4] > FV_VC_OFFLINE || q[5] >= w[2]))) {
            free(busy);
            return fv_err_set(e, "FedBuff schedule state: slot %d is not a state this schedule can be in", k);
        }
        if (q[0]) busy[client] = 1;
    }
    s->now = now, s->version = (long)version, s->seq = w[2];
    memcpy(s->rng.s, w + 3, sizeof s->rng.s);
    memcpy(s->busy, busy, (size_t)s->t->n);
    free(busy);
    for (int k = 0; k < s->nslot; k++) {
        const uint64_t *q = w + FB_HEAD_WORDS + FB_SLOT_WORDS * (size_t)k;
        fb_slot *sl = &s->slot[k];
        sl->busy = (int)q[0];
        sl->client = q[0] ? (int)(int64_t)q[1] : 0;
        sl->version = (long)(int64_t)q[2];
        sl->leave = bitsd(q[3]);
        sl->fate = (fv_vc_fate)q[4];
        sl->seq = q[5];
    }
    return 0;
}

void fv_fb_sched_step(fv_fb_sched *s) { s->version++; }
double fv_fb_sched_now(const fv_fb_sched *s) { return s->now; }
long fv_fb_sched_version(const fv_fb_sched *s) { return s->version; }

/* Start an idle available client in free slot k now, if there is one: 1 with ev filled, else 0. */
static int try_dispatch(fv_fb_sched *s, int k, fv_fb_event *ev) {
    int n = 0;
    for (int i = 0; i < s->t->n; i++)
        if (!s->busy[i] && fv_trace_avail_until(s->t, i, s->now) > s->now) s->ids[n++] = i;
    if (n == 0) return 0;
    pick_uniform(&s->rng, s->ids, n, 1);
    fb_slot *sl = &s->slot[k];
    sl->busy = 1;
    sl->client = s->ids[0];
    sl->version = s->version;
    sl->seq = s->seq++;
    sl->fate = task_end(s->c, s->t, s->client_n, sl->client, s->now, &sl->leave);
    s->busy[sl->client] = 1;
    *ev = (fv_fb_event){FV_FB_DISPATCH, sl->client, k, sl->version, s->now, sl->fate};
    return 1;
}

int fv_fb_sched_next(fv_fb_sched *s, fv_fb_event *ev, fv_err *e) {
    for (;;) {
        int free_slot = -1, next = -1;
        for (int k = 0; k < s->nslot; k++) {
            const fb_slot *sl = &s->slot[k];
            if (!sl->busy) {
                if (free_slot < 0) free_slot = k;
            } else if (next < 0 || sl->leave < s->slot[next].leave ||
                       (sl->leave == s->slot[next].leave && sl->seq < s->slot[next].seq)) {
                next = k;
            }
        }
        if (free_slot >= 0 && try_dispatch(s, free_slot, ev)) return 0;
        /* nothing to start now: the next arrival, or the next time an idle client comes on */
        double wake = INFINITY;
        if (free_slot >= 0)
            for (int i = 0; i < s->t->n; i++)
                if (!s->busy[i]) {
                    double x = fv_trace_next_on(s->t, i, s->now);
                    if (x < wake) wake = x;
                }
        if (next >= 0 && s->slot[next].leave <= wake) {
            fb_slot *sl = &s->slot[next];
            s->now = sl->leave;
            sl->busy = 0;
            s->busy[sl->client] = 0;
            *ev = (fv_fb_event){sl->fate == FV_VC_DONE ? FV_FB_ARRIVE : FV_FB_LOST, sl->client, next, sl->version,
                                s->now, sl->fate};
            return 0;
        }
        if (isinf(wake))
            return fv_err_set(e, "virtual time %.6g s: no client is training and none is available again: the "
                              "trace %s ends (generate a longer one: fedvim trace --horizon)", s->now, s->c->trace);
        s->now = wake;
    }
}
