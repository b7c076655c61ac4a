/* coordinator.c: see coordinator.h.
 *
 * One thread runs everything (the ZAP handler has its own): an event loop polls the ROUTER
 * socket with short timeouts, so deadlines, heartbeats and stop requests are always honoured.
 * A round's state is an array of slots, one per sampled client in id order; each slot is
 * queued, assigned to a task, done, or dropped. Tasks get ids from one counter; every task ever
 * issued is remembered (round, client, worker, state) so an update can be matched exactly, and a
 * replayed, duplicated or misdirected one is recognised.
 * State is grouped by what changes together (struct fv_coord): the experiment (fixed after
 * setup), the log, the link (socket, security), the model and its aggregation rule, the test
 * sets, the workers and their tasks, the round in progress, stopping, and the history of
 * completed rounds. A round runs as begin_round, gather_updates (dispatch and pump),
 * aggregate (shared/fl/aggregate.h does the arithmetic, shared/fl/server_opt.h the server
 * optimizer's step, shared/fl/scaffold.h SCAFFOLD's control variate c), evaluate_round, model_sound (else
 * roll_back and the round's pending client states discarded), the attack, metrics_line (the one
 * writer of a metrics.jsonl object), SCAFFOLD's new c_i and the checkpoint (not of a rolled-back
 * round), record_round. Insiders: every misbehaviour of a worker is a
 * strike against it alone (strike); over_budget and join_record bound what one peer may send,
 * and the socket never waits on a send (shared/fl/transport.h).
 */
#include "coordinator.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "attack_api.h"
#include "fl/adversary.h"
#include "fl/aggregate.h"
#include "attacker.h"
#include "secagg_server.h"
#include "server_kd.h"
#include "data/data.h"
#include "fl/dp.h"
#include "fl/experiment.h"
#include "fl/fedbuff.h"
#include "fl/scaffold.h"
#include "fl/server_opt.h"
#include "io/json.h"
#include "nn/layers.h"
#include "nn/models.h"
#include "nn/net.h"
#include "io/safetensors.h"
#include "store.h"
#include "nn/train.h"
#include "fl/trace.h"
#include "fl/transport.h"
#include "fl/vclock.h"
#include "vmix/vfe.h"
#include "vmix/vmix.h"
#include "vmix/vmix_key.h"
#include "fl/wire.h"

#define POLL_MS 50
#define MAX_WORKERS 4096
#define MAX_TASK_ATTEMPTS 3
/* Per-peer budgets: a registered worker may send msg_budget() messages per BUDGET_WINDOW seconds
 * (beyond that they are dropped, a strike once per window) and join JOIN_BUDGET times per
 * JOIN_WINDOW seconds (each join beyond that is refused with a strike: a join costs a Welcome),
 * so a flood ends in a ban of that peer only. */
#define BUDGET_WINDOW 1.0
#define JOIN_WINDOW 10.0
#define JOIN_BUDGET 3

enum { TASK_ASSIGNED, TASK_DONE, TASK_CANCELLED };
enum { SLOT_QUEUED, SLOT_ASSIGNED, SLOT_DONE, SLOT_DROPPED };

typedef struct {
    uint32_t round;
    int32_t client, slot, worker;
    uint8_t state;
} task_rec;

typedef struct {
    int client;
    int state;
    uint64_t task;
    int attempts;
    int avoid[MAX_TASK_ATTEMPTS]; /* workers whose update for this client was rejected */
    int navoid;
    int worker;  /* SLOT_DONE: the worker whose update was accepted */
    int sa_worker;   /* [secagg]: the worker that holds this client's secrets for the round (-1: none) */
    int sa_answered; /* [secagg]: the client answered the phase in progress */
    double norm; /* SLOT_DONE: L2 norm of that update minus the global model (before any clip) */
} slot_t;

/* Log lines about dropped messages of one peer: the first in each BUDGET_WINDOW is logged, the
 * rest are counted and their number told in the next line, so a flood cannot flood the log. */
typedef struct {
    double t0;
    long held;
} drop_gate;

typedef struct {
    uint8_t route[FV_WIRE_MAX_ROUTE];
    size_t route_len;
    char user[2 * FV_CURVE_KEY_BYTES + 1]; /* CURVE key (hex) from ZAP; "" without security */
    uint8_t sign_pk[FV_SIGN_PK_BYTES];
    char name[96];
    long pid; /* as the worker said in its join (meaningful for local workers) */
    double last_seen;
    int alive, banned, strikes;
    double msg_t0, join_t0; /* starts of the current message and join budget windows */
    int msgs, joins;        /* messages and joins in them */
    drop_gate drops;        /* its dropped messages' log lines */
    double hb_reply;        /* when its last heartbeat was answered */
    int ready; /* a message arrived after the welcome: its data and model are loaded */
    uint8_t model_hash[FV_HASH_BYTES]; /* the global model this worker holds */
    int has_model;
    int outstanding;
    double busy; /* seconds of client work (mixing + training) in the current round */
} worker_t;

/* What one round has seen so far (cleared when it starts). */
typedef struct {
    int accepted, dropped, reassigned, rejected;
    int diverged;  /* clients whose local training diverged (reported by their worker; skipped) */
    int clipped;   /* updates scaled down to fl.max_update_norm */
    int malicious; /* accepted updates of [adversary]'s malicious clients (measurement only) */
    int sa_keys, sa_shares, sa_survivors, sa_dropped; /* [secagg]: |U1|, |U2|, |U3|, |U2 \ U3| */
    long sa_clamped;         /* [secagg]: delta coordinates the clients clamped to [secagg] clip */
    double sa_seconds;       /* [secagg]: the protocol's phases (keys, shares, unmask, finish) */
    uint64_t bytes_up, bytes_down;
    double loss_sum, acc_sum, vfe_sum, samples, max_train, mix_seconds;
    double t0;
} round_stats;

/* The log file (and stderr unless quiet); the ZAP and attack threads write to it too. */
typedef struct {
    FILE *f;
    pthread_mutex_t mu;
    int quiet;
} coord_log_t;

/* The ROUTER socket and who may speak on it (fixed after setup). */
typedef struct {
    void *zctx, *sock;
    fv_zap *zap;
    fv_conn_watch *watch; /* logs the connections refused before ZAP and those dropped */
    char endpoint[256];
    fv_wire_limits lim;
    int security;
    fv_allowlist allow;
    uint64_t session;
    drop_gate drops; /* log lines of messages dropped from peers that have not joined */
} coord_link;

/* The only global model and what turns updates into its next version. */
typedef struct {
    fv_net *net; /* net->params is the global model */
    size_t n_params, opt_len;
    uint8_t hash[FV_HASH_BYTES];
    float *prev;    /* the model before the round's aggregation (rolled back to when unsound) */
    float *scratch; /* a clipped update (fl.norm_action = clip) */
    fv_agg *agg; /* the aggregation rule (FedAvg, DP-FedAvg, FedNova or a robust one: shared/fl/aggregate.h) */
    fv_sopt *sopt; /* the server optimizer stepping from the aggregate (shared/fl/server_opt.h) */
    fv_scaffold *scaf; /* [fl] aggregator = scaffold: the control variate c and the round's dc_i; else NULL */
    int scaf_unsound;  /* this round's new c holds a non-finite value (rolled back like the model) */
    float *ctl;        /* SCAFFOLD: 2 n_train floats, a task's c then c_i */
    float *sstate;     /* the checkpoint's server state: the optimizer's, then SCAFFOLD's c */
    fv_sa_server *sa;  /* [secagg] enabled: the round's secure aggregation; else NULL */
    float *sa_io;      /* [secagg]: 2 (n_params + FV_SA_STATS) floats, the unmasking's base then its result */
    int sa_g;          /* [secagg]: the round's statistics bits (FV_SA_STATS) */
    int sa_phase;      /* the SecAggPhase in progress (0: none) */
    size_t sstate_len;
} coord_model;

/* The test sets the global model is evaluated on (fixed after setup). */
typedef struct {
    fv_dataset test, mixed;
    int has_mixed;
    double vfe, vfe_clean;    /* mean VFE of the mixed test images, and of the same images clean */
    fv_exp_bounds bounds;
    fv_vmix_params vp;        /* the mixing of the test images (visualmixer on) */
    fv_norm norm;
    /* [adversary] backdoor: the test images of other classes, triggered and labelled with the
     * target (the model's accuracy on them is the attack's success rate), and mixed like mixed */
    fv_dataset backdoor, backdoor_mixed;
    int has_backdoor;
} coord_eval;

/* The workers that ever joined, and every task ever issued (task id = index + 1). */
typedef struct {
    worker_t *w;
    int n;
    task_rec *tasks;
    uint64_t ntasks, cap;
} coord_workers;

/* The round in progress: its sampled clients (slots, in id order) and statistics. */
typedef struct {
    int round;
    slot_t *slots; /* [max(m, fv_config_concurrency) (async)] */
    int m;         /* clients per round (fv_config_clients_per_round) */
    int n;         /* slots in use: m, or fewer with a trace (the available clients), or an async batch */
    int sa_skip;   /* [secagg]: fewer than 3 clients sent keys: the round keeps the model (secagg_open) */
    round_stats st;
} coord_round;

/* A FedBuff update in flight (one per concurrency slot of the virtual clock). */
enum { PEND_FREE, PEND_LOST, PEND_UNTRAINED, PEND_TRAINED, PEND_FAILED };

/* Heterogeneity (docs/heterogeneity.md): the trace, the virtual clock and, with fl.mode = async,
 * FedBuff's updates in flight and buffer. Without a trace: on = 0 and nothing else is used. */
typedef struct {
    int on;
    fv_trace trace;
    double now;        /* virtual time at the end of the last completed round or server step */
    fv_vc_round plan;  /* sync: the round in progress */
    fv_fb_sched *sched; /* async: the event schedule; NULL in sync mode */
    float **pending;   /* [fv_config_concurrency] deltas of the updates in flight */
    int *pend_state;   /* [fv_config_concurrency] PEND_* */
    int *pend_client;  /* [fv_config_concurrency] the client of each */
    int *batch;        /* [fv_config_concurrency] rd slot -> concurrency slot, during a training batch */
    double *sum;       /* the buffer: sum of weighted deltas (n_params) */
    int nbuf, dispatched, batches; /* this step's buffered updates, dispatches, training batches */
    double stale_sum;
    long stale_max;
    char lost[1024];   /* this step's lost updates' clients, a JSON array body */
} coord_vc;

/* Stopping: the launcher's callback, and the reason once the run must stop. */
typedef struct {
    int (*should_stop)(void *, char *, size_t);
    void *ctx;
    int abort;
    int stopped; /* the abort is the run's end, not a failure: write a "stopped" summary */
    char why[FV_ERR_MAX];
} coord_ctl;

/* Completed rounds: per-round accuracies and the run's totals. */
typedef struct {
    double *acc, *mixed; /* rounds 1..n */
    int n;
    double vfe_sum, vfe_w;
    uint64_t bytes_up, bytes_down;
    long dropped, rejected, diverged, rolled_back;
    double bd_final, bd_final_m; /* [adversary] backdoor: the final model's success rate (clean, mixed) */
    double t_start;
} coord_history;

struct fv_coord {
    /* the experiment (fixed after setup) */
    fv_config cfg;
    char *config_text;
    uint8_t config_hash[FV_HASH_BYTES];
    char dir[1024];
    int resume, threads;
    int start_round; /* rounds completed before this run (resume) */
    int *client_n;   /* shard size of each client */
    fv_partition_stats pstats;
    fv_store *store;
    fv_attacker *attacker; /* NULL without [attack] */
    uint8_t *adv_mask;     /* fl.clients flags: [adversary]'s malicious clients (measurement only) */
    int adv_n;             /* their number */
    fv_server_kd kd;       /* [distill]: the server-side student of the final model */

    coord_log_t log;
    coord_link link;
    coord_model model;
    coord_eval eval;
    coord_workers wk;
    coord_round rd;
    coord_vc vc;
    coord_ctl ctl;
    coord_history hist;
    char *summary;
};

/* ---- logging ---- */

static void log_line(fv_coord *c, int to_stderr, const char *line) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char ts[16];
    strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    pthread_mutex_lock(&c->log.mu);
    if (c->log.f) {
        fprintf(c->log.f, "%s %s\n", ts, line);
        fflush(c->log.f);
    }
    if (to_stderr && !c->log.quiet) fprintf(stderr, "coordinator: %s\n", line);
    pthread_mutex_unlock(&c->log.mu);
}

static void coord_log(fv_coord *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void coord_log(fv_coord *c, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_line(c, 1, line);
}

static void zap_log(void *ctx, const char *line) { log_line(ctx, 1, line); }

/* Log why a message was dropped, through the peer's gate g. */
static void log_drop(fv_coord *c, drop_gate *g, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void log_drop(fv_coord *c, drop_gate *g, const char *fmt, ...) {
    double now = fv_now();
    if (g->t0 > 0 && now - g->t0 < BUDGET_WINDOW) {
        g->held++;
        return;
    }
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g->held) coord_log(c, "%s (and %ld more dropped from this peer since the last such line)", line, g->held);
    else coord_log(c, "%s", line);
    g->t0 = now;
    g->held = 0;
}

/* A CURVE key from its 64-digit hex form (the ZAP User-Id). Returns 0 or -1. */
static int unhex_key(const char *hex, uint8_t key[FV_CURVE_KEY_BYTES]) {
    size_t got = 0;
    if (strlen(hex) != 2 * FV_CURVE_KEY_BYTES) return -1;
    if (sodium_hex2bin(key, FV_CURVE_KEY_BYTES, hex, 2 * FV_CURVE_KEY_BYTES, NULL, &got, NULL) != 0) return -1;
    return got == FV_CURVE_KEY_BYTES ? 0 : -1;
}

/* "name (key 1a2b3c4d)" for log lines. */
static const char *who(const worker_t *w, char *buf, size_t cap) {
    if (*w->user) snprintf(buf, cap, "%s (key %.8s)", w->name, w->user);
    else snprintf(buf, cap, "%s", w->name);
    return buf;
}

/* ---- workers ---- */

static int find_worker_route(const fv_coord *c, const uint8_t *route, size_t len) {
    for (int i = 0; i < c->wk.n; i++)
        if (c->wk.w[i].route_len == len && memcmp(c->wk.w[i].route, route, len) == 0) return i;
    return -1;
}

static int find_worker_user(const fv_coord *c, const char *user) {
    if (!*user) return -1;
    for (int i = 0; i < c->wk.n; i++)
        if (strcmp(c->wk.w[i].user, user) == 0) return i;
    return -1;
}

static int alive_workers(const fv_coord *c) {
    int n = 0;
    for (int i = 0; i < c->wk.n; i++) n += c->wk.w[i].alive;
    return n;
}

static int ready_workers(const fv_coord *c) {
    int n = 0;
    for (int i = 0; i < c->wk.n; i++) n += c->wk.w[i].alive && c->wk.w[i].ready;
    return n;
}

static int send_msg(fv_coord *c, worker_t *w, Fedvim__Envelope *env, const fv_wire_frame *f, int nf) {
    size_t bytes = 0;
    fv_err e;
    if (fv_wire_send(c->link.sock, w->route, w->route_len, env, f, nf, &bytes, &e) != 0) {
        char b[160];
        coord_log(c, "cannot send %s to worker %s: %s", fv_wire_body_name(env->body_case), who(w, b, sizeof b), e.msg);
        return -1;
    }
    c->rd.st.bytes_down += bytes;
    return 0;
}

static void send_error(fv_coord *c, worker_t *w, uint32_t code, const char *msg) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Error er = FEDVIM__ERROR__INIT;
    er.code = code;
    er.message = (char *)msg;
    env.body_case = FEDVIM__ENVELOPE__BODY_ERROR;
    env.error = &er;
    send_msg(c, w, &env, NULL, 0);
}

static void send_shutdown(fv_coord *c, worker_t *w, const char *reason) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Shutdown sd = FEDVIM__SHUTDOWN__INIT;
    sd.reason = (char *)reason;
    env.body_case = FEDVIM__ENVELOPE__BODY_SHUTDOWN;
    env.shutdown = &sd;
    send_msg(c, w, &env, NULL, 0);
}

/* Put every task of worker wi back in the queue (worker dead, banned or re-joined). */
static void requeue_worker_tasks(fv_coord *c, int wi, const char *why) {
    for (int s = 0; s < c->rd.n; s++) {
        slot_t *sl = &c->rd.slots[s];
        if (sl->state != SLOT_ASSIGNED) continue;
        task_rec *t = &c->wk.tasks[sl->task - 1];
        if (t->worker != wi) continue;
        t->state = TASK_CANCELLED;
        sl->state = SLOT_QUEUED;
        c->rd.st.reassigned++;
        coord_log(c, "round %d: client %d goes back to the queue (%s)", c->rd.round, sl->client, why);
    }
    c->wk.w[wi].outstanding = 0;
}

static void mark_dead(fv_coord *c, int wi, const char *why) {
    worker_t *w = &c->wk.w[wi];
    if (!w->alive) return;
    char b[160];
    w->alive = 0;
    w->has_model = 0;
    coord_log(c, "worker %s lost: %s", who(w, b, sizeof b), why);
    requeue_worker_tasks(c, wi, why);
}

/* A rejected message: log it, count a strike, ban at security.max_strikes. */
static void strike(fv_coord *c, int wi, const char *what, const char *reason) {
    c->rd.st.rejected++;
    if (wi < 0) {
        coord_log(c, "security: rejected %s from an unregistered peer: %s", what, reason);
        return;
    }
    worker_t *w = &c->wk.w[wi];
    char b[160];
    w->strikes++;
    coord_log(c, "security: rejected %s from worker %s: %s (strike %d of %d)", what, who(w, b, sizeof b), reason,
         w->strikes, c->cfg.max_strikes);
    if (w->strikes >= c->cfg.max_strikes && !w->banned) {
        w->banned = 1;
        coord_log(c, "security: worker %s is banned; its clients are reassigned", who(w, b, sizeof b));
        uint8_t key[FV_CURVE_KEY_BYTES];
        if (c->link.zap && unhex_key(w->user, key) == 0) fv_zap_ban(c->link.zap, key);
        send_error(c, w, FV_WIRE_ERR_REJECTED, "banned after repeated rejected messages");
        mark_dead(c, wi, "banned");
    }
}

/* ---- joining ---- */

/* An Error to the sender of m, which is not (or no longer) a registered worker. */
static void send_error_to_peer(fv_coord *c, const fv_wire_msg *m, uint32_t code, const char *msg) {
    worker_t tmp = {0};
    memcpy(tmp.route, m->route, m->route_len);
    tmp.route_len = m->route_len;
    send_error(c, &tmp, code, msg);
}

/* Security on: the ZAP handler admitted the sender's CURVE key; the join's Ed25519 key must be
 * its allow-list twin. Returns 0, or -1 after logging (and answering) the refusal. */
static int check_join_identity(fv_coord *c, const fv_wire_msg *m, const char *name) {
    uint8_t key[FV_CURVE_KEY_BYTES];
    if (unhex_key(m->user_id, key) != 0) {
        coord_log(c, "security: join from %s without an authenticated key, refused", name);
        return -1;
    }
    int ai = fv_allowlist_find_curve(&c->link.allow, key);
    if (ai < 0 || !fv_ct_equal(c->link.allow.ids[ai].sign_pk, m->env->join->sign_public_key.data, FV_SIGN_PK_BYTES)) {
        c->rd.st.rejected++;
        coord_log(c, "security: rejected join from %s (key %.8s): its signing key is not the one the allow-list "
             "gives for its CURVE key", name, m->user_id);
        send_error_to_peer(c, m, FV_WIRE_ERR_REJECTED, "signing key does not match the allow-list");
        return -1;
    }
    return 0;
}

/* The worker record a join takes: the sender's own (found by key with security on, by route
 * without; its tasks go back to the queue) or a new one. -1 when refused (banned, over its join
 * budget: a strike, or MAX_WORKERS reached). */
static int join_record(fv_coord *c, const fv_wire_msg *m, const char *name) {
    int wi = c->link.security ? find_worker_user(c, m->user_id) : find_worker_route(c, m->route, m->route_len);
    if (wi >= 0 && c->wk.w[wi].banned) {
        char b[160];
        log_drop(c, &c->wk.w[wi].drops, "security: refused a join from banned worker %s", who(&c->wk.w[wi], b, sizeof b));
        send_error_to_peer(c, m, FV_WIRE_ERR_REJECTED, "this worker is banned");
        return -1;
    }
    if (wi >= 0) {
        worker_t *w = &c->wk.w[wi];
        double now = fv_now();
        if (now - w->join_t0 > JOIN_WINDOW) w->join_t0 = now, w->joins = 0;
        if (++w->joins > JOIN_BUDGET) {
            char why[96];
            snprintf(why, sizeof why, "more than %d joins in %g s", JOIN_BUDGET, JOIN_WINDOW);
            strike(c, wi, "a join", why);
            return -1;
        }
        if (w->alive) requeue_worker_tasks(c, wi, "its worker re-joined");
        return wi;
    }
    if (c->wk.n >= MAX_WORKERS) {
        coord_log(c, "join from %s refused: %d workers already", name, MAX_WORKERS);
        return -1;
    }
    c->wk.w = fv_realloc(c->wk.w, (size_t)(c->wk.n + 1) * sizeof *c->wk.w);
    wi = c->wk.n++;
    memset(&c->wk.w[wi], 0, sizeof c->wk.w[wi]);
    c->wk.w[wi].join_t0 = fv_now();
    c->wk.w[wi].joins = 1;
    return wi;
}

/* The Welcome for worker wi: session, the experiment's config and the heartbeat timing. */
static int send_welcome(fv_coord *c, int wi) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Welcome wel = FEDVIM__WELCOME__INIT;
    wel.session = c->link.session;
    wel.worker_index = (uint32_t)wi;
    wel.config_ini = c->config_text;
    wel.config_hash = (ProtobufCBinaryData){FV_HASH_BYTES, c->config_hash};
    wel.n_params = c->model.n_params;
    wel.heartbeat_interval = c->cfg.heartbeat;
    wel.peer_timeout = fmax(60.0, 4 * c->cfg.worker_timeout);
    env.body_case = FEDVIM__ENVELOPE__BODY_WELCOME;
    env.welcome = &wel;
    return send_msg(c, &c->wk.w[wi], &env, NULL, 0);
}

/* The name a join gives must pass the text rule (fv_config_text_check) before it reaches a log
 * line or summary.json. Returns 0, or -1 after logging (a strike for a known worker) and
 * answering the refusal. */
static int check_join_name(fv_coord *c, const fv_wire_msg *m, const char *shown) {
    fv_err te;
    if (fv_config_text_check(m->env->join->worker_name, &te) == 0) return 0;
    char why[FV_ERR_MAX + 32];
    snprintf(why, sizeof why, "its worker name '%.95s' is not valid text: %.200s", shown, te.msg);
    int wi = c->link.security ? find_worker_user(c, m->user_id) : find_worker_route(c, m->route, m->route_len);
    if (wi >= 0) {
        strike(c, wi, "a join", why);
    } else {
        c->rd.st.rejected++;
        coord_log(c, "security: rejected join from %s%.8s: %s", *m->user_id ? "key " : "an unregistered peer",
                  m->user_id, why);
    }
    send_error_to_peer(c, m, FV_WIRE_ERR_BAD_MESSAGE, "the worker name must be UTF-8 without control characters");
    return -1;
}

static void handle_join(fv_coord *c, const fv_wire_msg *m) {
    const Fedvim__Join *j = m->env->join;
    char name[96];
    fv_wire_sanitize(name, sizeof name, j->worker_name);
    if (c->link.security && check_join_identity(c, m, name) != 0) return;
    if (check_join_name(c, m, name) != 0) return;
    int wi = join_record(c, m, name);
    if (wi < 0) return;
    worker_t *w = &c->wk.w[wi];
    memcpy(w->route, m->route, m->route_len);
    w->route_len = m->route_len;
    snprintf(w->user, sizeof w->user, "%.64s", m->user_id);
    memcpy(w->sign_pk, j->sign_public_key.data, FV_SIGN_PK_BYTES);
    snprintf(w->name, sizeof w->name, "%s", *name ? name : "worker");
    w->pid = (long)j->pid;
    w->alive = 1;
    w->ready = 0;
    w->has_model = 0;
    w->outstanding = 0;
    w->last_seen = fv_now();
    char b[160];
    if (send_welcome(c, wi) == 0) {
        coord_log(c, "worker %s joined (%d alive)", who(w, b, sizeof b), alive_workers(c));
    } else {
        w->alive = 0;
        strike(c, wi, "a join", "the worker does not take its messages (send queue full or gone)");
    }
}

/* ---- updates ---- */

/* Sampling rate of the accountant: clients per round / clients. */
static double dp_q(const fv_coord *c) { return (double)c->rd.m / c->cfg.clients; }

/* Task t of worker wi failed (the worker reported an error, or its authenticated answer was
 * unusable): the client goes back to the queue, or is dropped after MAX_TASK_ATTEMPTS, at once
 * rather than at the round's deadline. rejected: the worker's update was refused, so the client
 * goes to another worker (pick_worker), never back to this one. */
static void fail_task(fv_coord *c, int wi, task_rec *t, int rejected) {
    slot_t *sl = &c->rd.slots[t->slot];
    t->state = TASK_CANCELLED;
    if (rejected && sl->navoid < MAX_TASK_ATTEMPTS) sl->avoid[sl->navoid++] = wi;
    c->wk.w[wi].outstanding--;
    /* [secagg]: only the worker that holds the client's secrets can mask its input, once */
    if (++sl->attempts >= MAX_TASK_ATTEMPTS || c->model.sa) {
        sl->state = SLOT_DROPPED;
        c->rd.st.dropped++;
        fv_agg_skip(c->model.agg, t->slot);
        coord_log(c, "round %d: client %d dropped after %d failed attempts", c->rd.round, sl->client, sl->attempts);
    } else {
        sl->state = SLOT_QUEUED;
        c->rd.st.reassigned++;
    }
}

/* The L2 norm of x - global (in double: finite for any finite floats). */
static double update_norm(const fv_coord *c, const float *x) {
    const float *g = c->model.net->params;
    double s = 0;
    for (size_t i = 0; i < c->model.n_params; i++) {
        double d = (double)x[i] - g[i];
        s += d * d;
    }
    return sqrt(s);
}

/* An update's frames: the parameters and, with fl.opt_state = keep, the optimizer state, or with
 * [fl] aggregator = scaffold, the control delta dc_i. */
typedef struct {
    const float *params, *opt, *ctl;
    const uint32_t *masked; /* [secagg]: the masked input, instead of params */
    size_t np, no, nc;
} update_frames;

/* Find the frames of m and check their shapes (cheap, and no hashing of a payload that cannot be
 * used). Returns 0, or -1 after a strike. */
static int check_frames(fv_coord *c, int wi, const fv_wire_msg *m, update_frames *f) {
    char why[FV_ERR_MAX + 64];
    *f = (update_frames){0};
    for (int i = 0; i < m->nframes; i++) {
        if (m->kind[i] == FEDVIM__FRAME_KIND__FRAME_PARAMS) f->params = m->frame[i], f->np = m->count[i];
        else if (m->kind[i] == FEDVIM__FRAME_KIND__FRAME_CONTROL) f->ctl = m->frame[i], f->nc = m->count[i];
        else if (m->kind[i] == FEDVIM__FRAME_KIND__FRAME_MASKED)
            f->masked = (const uint32_t *)(const void *)m->frame[i], f->np = m->count[i];
        else f->opt = m->frame[i], f->no = m->count[i];
    }
    if ((f->masked != NULL) != (c->model.sa != NULL)) {
        strike(c, wi, "update", c->model.sa ? "a plain update in a secure-aggregation run" : "a masked update in a run "
               "without secure aggregation");
        return -1;
    }
    const size_t want_np = c->model.n_params + (f->masked ? FV_SA_STATS : 0);
    if (f->np != want_np) {
        snprintf(why, sizeof why, "wrong shape: %zu %s, the model has %zu parameters%s", f->np,
                 f->masked ? "masked words" : "parameters", c->model.n_params,
                 f->masked ? " (plus the statistics words)" : "");
        strike(c, wi, "update", why);
        return -1;
    }
    int keep = c->cfg.opt_state == FV_OPTSTATE_KEEP;
    if (keep ? (!f->opt || f->no != c->model.opt_len) : f->opt != NULL) {
        snprintf(why, sizeof why, "wrong shape: optimizer state of %zu floats, expected %zu", f->no,
                 keep ? c->model.opt_len : 0);
        strike(c, wi, "update", why);
        return -1;
    }
    const size_t want_nc = c->model.scaf ? c->model.net->n_train : 0;
    if (f->nc != want_nc) {
        snprintf(why, sizeof why, "wrong shape: SCAFFOLD control delta of %zu floats, expected %zu", f->nc, want_nc);
        strike(c, wi, "update", why);
        return -1;
    }
    return 0;
}

/* The task an update body answers, when it is one of this round's tasks still assigned to wi
 * and its sample count and values are sound (finite; with fl.norm_action = reject, *norm, the L2
 * norm of update - global, within fl.max_update_norm); NULL otherwise (a strike for a replayed, forged or
 * unsound update, failing the task where it is still assigned; a log line for a late one). */
static task_rec *match_task(fv_coord *c, int wi, const Fedvim__UpdateBody *b, const update_frames *f,
                           double *norm) {
    char why[FV_ERR_MAX + 64];
    uint64_t tid = b->task_id;
    task_rec *t = tid >= 1 && tid <= c->wk.ntasks ? &c->wk.tasks[tid - 1] : NULL;
    if (b->session != c->link.session) {
        snprintf(why, sizeof why, "replayed update: session %016llx is not this run's",
                 (unsigned long long)b->session);
    } else if (!t) {
        snprintf(why, sizeof why, "replayed or forged update: task %llu was never issued", (unsigned long long)tid);
    } else if (t->worker != wi) {
        snprintf(why, sizeof why, "replayed update: task %llu was issued to another worker", (unsigned long long)tid);
    } else if (b->round != t->round || (int)b->client_id != t->client) {
        snprintf(why, sizeof why,
                 "replayed update: it says round %u client %u, task %llu is round %u client %d",
                 b->round, b->client_id, (unsigned long long)tid, t->round, t->client);
    } else if (t->state == TASK_DONE) {
        snprintf(why, sizeof why, "replayed update: task %llu (round %u, client %d) was already accepted",
                 (unsigned long long)tid, t->round, t->client);
    } else if (t->state == TASK_CANCELLED || (int)t->round != c->rd.round) {
        coord_log(c, "round %d: late update for task %llu (round %u, client %d) ignored: the client was reassigned "
             "or dropped", c->rd.round, (unsigned long long)tid, t->round, t->client);
        return NULL;
    } else {
        long bad = -1, bad2 = -1, bad3 = -1;
        if (b->num_samples != (uint64_t)c->client_n[t->client]) {
            snprintf(why, sizeof why, "client %d claims %llu samples, its shard has %d", t->client,
                     (unsigned long long)b->num_samples, c->client_n[t->client]);
        } else if (f->masked) { /* [secagg]: any words are a valid masked input */
            return t;
        } else if ((bad = fv_wire_first_nonfinite(f->params, f->np)) >= 0 ||
                   (f->opt && (bad2 = fv_wire_first_nonfinite(f->opt, f->no)) >= 0) ||
                   (f->ctl && (bad3 = fv_wire_first_nonfinite(f->ctl, f->nc)) >= 0)) {
            snprintf(why, sizeof why, "non-finite value (NaN or Inf) in the %s at index %ld",
                     bad >= 0 ? "parameters" : bad2 >= 0 ? "optimizer state" : "SCAFFOLD control delta",
                     bad >= 0 ? bad : bad2 >= 0 ? bad2 : bad3);
        } else if ((*norm = update_norm(c, f->params)) > c->cfg.max_update_norm && c->cfg.max_update_norm > 0 &&
                   c->cfg.norm_action == FV_NORM_REJECT) {
            snprintf(why, sizeof why, "update norm %.4g exceeds fl.max_update_norm = %g", *norm,
                     c->cfg.max_update_norm);
        } else {
            return t;
        }
        strike(c, wi, "update", why);
        if (t->state == TASK_ASSIGNED) fail_task(c, wi, t, 1);
        return NULL;
    }
    strike(c, wi, "update", why);
    return NULL;
}

/* Accept the update for task t (norm: its distance from the global model): keep the client's
 * optimizer state (fl.opt_state = keep: pending in the store until the round's checkpoint, discarded
 * if the round rolls back) or SCAFFOLD's control delta (applied to c and c_i once
 * the round is sound: commit_scaffold), let the curious server copy it, hand it to the
 * aggregation rule (scaled down to fl.max_update_norm with norm_action = clip) and count it. */
static void accept_update(fv_coord *c, int wi, task_rec *t, const Fedvim__UpdateBody *b, const update_frames *f,
                          double norm) {
    fv_err e = {{0}};
    if (c->cfg.opt_state == FV_OPTSTATE_KEEP &&
        fv_store_client_state_save(c->store, t->client, c->rd.round, f->opt, f->no, b->opt_steps, &e) != 0) {
        c->ctl.abort = 1;
        snprintf(c->ctl.why, sizeof c->ctl.why, "%s", e.msg);
        return;
    }
    worker_t *w = &c->wk.w[wi];
    slot_t *sl = &c->rd.slots[t->slot];
    if (f->masked && fv_sa_server_put_input(c->model.sa, t->slot, f->masked, &e) != 0) {
        strike(c, wi, "update", e.msg);
        fail_task(c, wi, t, 1);
        return;
    }
    if (c->model.scaf) fv_scaffold_put(c->model.scaf, t->slot, f->ctl);
    /* the curious server keeps a copy; the aggregate gets the upload untouched */
    if (!f->masked && fv_attacker_wants(c->attacker, c->rd.round, t->client))
        fv_attacker_capture(c->attacker, c->rd.round, f->params, c->model.net->params);
    t->state = TASK_DONE;
    sl->state = SLOT_DONE;
    sl->worker = wi;
    sl->norm = norm;
    w->outstanding--;
    double n = (double)b->num_samples;
    round_stats *st = &c->rd.st;
    const double bound = c->cfg.max_update_norm;
    const float *up = f->params;
    if (f->masked) { /* [secagg]: in the sum (fv_sa_server_put_input); nothing of it is seen alone */
    } else if (bound > 0 && norm > bound) { /* norm_action = clip (reject refused it in match_task) */
        const float *g = c->model.net->params;
        const double k = bound / norm;
        for (size_t i = 0; i < c->model.n_params; i++) c->model.scratch[i] = (float)(g[i] + k * ((double)f->params[i] - g[i]));
        up = c->model.scratch;
        st->clipped++;
        coord_log(c, "round %d: client %d's update (norm %.4g) clipped to fl.max_update_norm = %g", c->rd.round,
                  t->client, norm, bound);
    }
    if (!f->masked) fv_agg_put(c->model.agg, t->slot, up, n);
    if (c->vc.sched) { /* FedBuff: the delta waits for its virtual arrival */
        const int k = c->vc.batch[t->slot];
        fv_fedbuff_delta(c->vc.pending[k], up, c->model.net->params, c->model.n_params);
        c->vc.pend_state[k] = PEND_TRAINED;
    }
    st->accepted++;
    st->malicious += c->adv_mask[t->client];
    st->samples += n;
    st->loss_sum += n * b->train_loss;
    st->acc_sum += n * b->train_accuracy;
    st->vfe_sum += n * b->vfe;
    st->mix_seconds += b->mix_seconds;
    if (b->train_seconds > st->max_train) st->max_train = b->train_seconds;
    w->busy += b->train_seconds + b->mix_seconds;
}

/* An Update from live worker wi: shapes, then signature (security on) or decoding, then the
 * task it answers, then acceptance. Every refusal is a strike or a log line. */
static void handle_update(fv_coord *c, int wi, const fv_wire_msg *m) {
    update_frames f;
    if (check_frames(c, wi, m, &f) != 0) return;
    Fedvim__UpdateBody *b = NULL;
    fv_err e = {{0}};
    int rc = c->link.security
                 ? fv_wire_open_update(m, c->wk.w[wi].sign_pk, &b, &e)
                 : fv_wire_decode_update_body(m->env->update->body.data, m->env->update->body.len, &b, &e);
    if (rc != 0) {
        strike(c, wi, "update", e.msg);
        return;
    }
    double norm = 0;
    task_rec *t = match_task(c, wi, b, &f, &norm);
    if (t) accept_update(c, wi, t, b, &f, norm);
    fedvim__update_body__free_unpacked(b, NULL);
}

static void handle_worker_error(fv_coord *c, int wi, const Fedvim__Error *er) {
    worker_t *w = &c->wk.w[wi];
    char b[160], msg[256];
    fv_wire_sanitize(msg, sizeof msg, er->message);
    uint64_t tid = er->task_id;
    task_rec *t = tid >= 1 && tid <= c->wk.ntasks ? &c->wk.tasks[tid - 1] : NULL;
    if (er->code == FV_WIRE_ERR_CONFIG) {
        /* that worker's part ends (a strike: a peer that joins only to say so is banned); the
         * run goes on with the others, and stops (with a summary saying why) when none is left */
        char why[FV_ERR_MAX];
        snprintf(why, sizeof why, "worker %s cannot serve this experiment: %s", who(w, b, sizeof b), msg);
        strike(c, wi, "an error report", "it cannot serve this experiment");
        mark_dead(c, wi, why);
        if (alive_workers(c) == 0 && !c->ctl.abort) {
            c->ctl.abort = 1;
            c->ctl.stopped = 1;
            snprintf(c->ctl.why, sizeof c->ctl.why, "no worker left that can serve this experiment; the last: %.400s",
                     why);
        }
        return;
    }
    const int mine = t && t->worker == wi && t->state == TASK_ASSIGNED && (int)t->round == c->rd.round;
    if (er->code == FV_WIRE_ERR_DIVERGED && mine) {
        /* an honest signal, no strike: the client's update is lost for this round only */
        slot_t *sl = &c->rd.slots[t->slot];
        t->state = TASK_CANCELLED;
        w->outstanding--;
        sl->state = SLOT_DROPPED;
        fv_agg_skip(c->model.agg, t->slot);
        c->rd.st.diverged++;
        coord_log(c, "round %d: client %d diverged on worker %s (%s): its update is skipped this round",
                  c->rd.round, t->client, who(w, b, sizeof b), msg);
        return;
    }
    coord_log(c, "worker %s reports an error%s: %s", who(w, b, sizeof b), t ? " on a task" : "", msg);
    if (!mine) return;
    if (er->code == FV_WIRE_ERR_NO_MODEL) {
        t->state = TASK_CANCELLED;
        w->outstanding--;
        w->has_model = 0; /* resend the model with the next task */
        c->rd.slots[t->slot].state = SLOT_QUEUED;
        return;
    }
    fail_task(c, wi, t, 0);
}

/* The registered worker that sent m by its route, or -1 (with security on, a route now used by
 * another key is stale: -1). */
static int sender(const fv_coord *c, const fv_wire_msg *m) {
    int wi = find_worker_route(c, m->route, m->route_len);
    if (wi >= 0 && c->link.security && strcmp(c->wk.w[wi].user, m->user_id) != 0) return -1;
    return wi;
}

/* ---- secure aggregation's answers ([secagg]; the phases: secagg_open, secagg_close) ---- */

/* The round's slot of client, or -1. */
static int slot_of(const fv_coord *c, uint32_t client) {
    for (int s = 0; s < c->rd.n; s++)
        if ((uint32_t)c->rd.slots[s].client == client) return s;
    return -1;
}

/* Whether m is a SecAggReply that worker wi owes: the phase in progress, for a client of the
 * round whose secrets wi holds and that has not answered yet (*slot: its slot). */
static int sa_expected(const fv_coord *c, int wi, const fv_wire_msg *m, int *slot) {
    if (!c->model.sa || !c->model.sa_phase || m->env->body_case != FEDVIM__ENVELOPE__BODY_SECAGG_REPLY) return 0;
    const Fedvim__SecAggReply *r = m->env->secagg_reply;
    if (r->session != c->link.session || (int)r->round != c->rd.round || (int)r->phase != c->model.sa_phase) return 0;
    const int s = slot_of(c, r->client);
    if (s < 0 || c->rd.slots[s].sa_worker != wi || c->rd.slots[s].sa_answered) return 0;
    if (slot) *slot = s;
    return 1;
}

/* One client's answer to a phase: into the server's state (secagg_server.h checks it against the
 * round); a refused or unasked answer is a strike, a late one (an earlier phase or round of this
 * session) a log line. */
static void handle_secagg_reply(fv_coord *c, int wi, const fv_wire_msg *m) {
    const Fedvim__SecAggReply *r = m->env->secagg_reply;
    int s = -1;
    if (!sa_expected(c, wi, m, &s)) {
        if (c->model.sa && r->session == c->link.session &&
            ((int)r->round < c->rd.round || ((int)r->round == c->rd.round && (int)r->phase < c->model.sa_phase)))
            coord_log(c, "round %d: late secagg answer (round %u, phase %d) for client %u ignored", c->rd.round,
                      r->round, (int)r->phase, r->client);
        else
            strike(c, wi, "a secagg reply", "it answers no request of this worker's clients");
        return;
    }
    c->rd.slots[s].sa_answered = 1;
    fv_err e = {{0}};
    int rc = 0;
    if (r->phase == FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS) {
        rc = fv_sa_server_put_keys(c->model.sa, s, r->keys->c_pk.data, r->keys->s_pk.data, &e);
    } else if (r->phase == FEDVIM__SEC_AGG_PHASE__SECAGG_SHARES) {
        const int n = (int)r->n_shares;
        uint32_t *to = fv_malloc(sizeof(uint32_t) * (size_t)(n + 1));
        uint8_t *boxes = fv_malloc((size_t)(n + 1) * FV_SA_BOX_BYTES);
        for (int j = 0; j < n && rc == 0; j++) {
            if (r->shares[j]->from != r->client)
                rc = fv_err_set(&e, "client %u's shares include one from client %u", r->client, r->shares[j]->from);
            to[j] = r->shares[j]->to;
            memcpy(boxes + (size_t)j * FV_SA_BOX_BYTES, r->shares[j]->box.data, FV_SA_BOX_BYTES);
        }
        if (rc == 0) rc = fv_sa_server_put_shares(c->model.sa, s, to, boxes, n, &e);
        free(to), free(boxes);
    } else {
        const int n = (int)r->n_reveals;
        uint32_t *owner = fv_malloc(sizeof(uint32_t) * (size_t)(n + 1));
        int *self = fv_malloc(sizeof(int) * (size_t)(n + 1));
        uint8_t *sh = fv_malloc((size_t)(n + 1) * FV_SA_SHARE_BYTES);
        for (int j = 0; j < n; j++) {
            owner[j] = r->reveals[j]->owner;
            self[j] = r->reveals[j]->self_mask;
            memcpy(sh + (size_t)j * FV_SA_SHARE_BYTES, r->reveals[j]->share.data, FV_SA_SHARE_BYTES);
        }
        rc = fv_sa_server_put_reveals(c->model.sa, s, owner, self, sh, n, &e);
        sodium_memzero(sh, (size_t)(n + 1) * FV_SA_SHARE_BYTES);
        free(owner), free(self), free(sh);
    }
    if (rc != 0) strike(c, wi, "a secagg reply", e.msg);
}

/* Act on a well-formed message from worker wi (-1: an unregistered peer). */
static void route_message(fv_coord *c, int wi, const fv_wire_msg *m) {
    Fedvim__Envelope__BodyCase bc = m->env->body_case;
    if (bc == FEDVIM__ENVELOPE__BODY_JOIN) {
        handle_join(c, m);
    } else if (wi < 0 || !c->wk.w[wi].alive) {
        /* a worker of an earlier coordinator (resumed run) or one declared dead: it may join
         * again (with security on, only allow-listed keys got this far) */
        const char *again = "unknown or expired worker: join again";
        char b[160];
        const int answer = bc == FEDVIM__ENVELOPE__BODY_HEARTBEAT || bc == FEDVIM__ENVELOPE__BODY_UPDATE;
        if (wi < 0) {
            char key[32] = "";
            if (*m->user_id) snprintf(key, sizeof key, " (key %.8s)", m->user_id);
            log_drop(c, &c->link.drops, "dropped a %s message from a peer that has not joined%s%s", fv_wire_body_name(bc),
                     key, answer ? ": told to join" : "");
        } else
            log_drop(c, &c->wk.w[wi].drops, "dropped a %s message from worker %s, which is no longer alive%s",
                     fv_wire_body_name(bc), who(&c->wk.w[wi], b, sizeof b), answer ? ": told to join again" : "");
        if (answer && wi < 0) {
            send_error_to_peer(c, m, FV_WIRE_ERR_BAD_MESSAGE, again);
        } else if (answer && fv_now() - c->wk.w[wi].hb_reply >= c->cfg.heartbeat / 2) {
            /* like a live worker's heartbeats: answered at most twice per fl.heartbeat (the
             * heartbeats a cut link held back arrive together when it comes back) */
            c->wk.w[wi].hb_reply = fv_now();
            send_error(c, &c->wk.w[wi], FV_WIRE_ERR_BAD_MESSAGE, again);
        }
    } else if (bc == FEDVIM__ENVELOPE__BODY_HEARTBEAT) {
        /* answered at most twice per fl.heartbeat: a peer cannot make the server talk faster */
        worker_t *w = &c->wk.w[wi];
        double now = fv_now();
        if (now - w->hb_reply < c->cfg.heartbeat / 2) return;
        w->hb_reply = now;
        Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
        Fedvim__Heartbeat hb = FEDVIM__HEARTBEAT__INIT;
        env.body_case = FEDVIM__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        if (send_msg(c, &c->wk.w[wi], &env, NULL, 0) != 0)
            strike(c, wi, "a heartbeat", "the worker does not take its messages (send queue full or gone)");
    } else if (bc == FEDVIM__ENVELOPE__BODY_UPDATE) {
        handle_update(c, wi, m);
    } else if (bc == FEDVIM__ENVELOPE__BODY_SECAGG_REPLY) {
        handle_secagg_reply(c, wi, m);
    } else if (bc == FEDVIM__ENVELOPE__BODY_ERROR) {
        handle_worker_error(c, wi, m->env->error);
    } else {
        char why[96];
        snprintf(why, sizeof why, "a worker never sends %s messages", fv_wire_body_name(bc));
        strike(c, wi, "a message", why);
    }
}

/* Messages other than task answers a worker may send per BUDGET_WINDOW: its heartbeats and
 * room for re-joins and errors, several times over. */
static int msg_budget(const fv_coord *c) {
    return 32 + (int)(4 * BUDGET_WINDOW / c->cfg.heartbeat) + 4 * fv_exp_worker_queue(&c->cfg);
}

/* A message that answers a task: an Update (each one is matched to an issued task, or struck), a
 * SecAggReply that wi owes, or an Error about a task still assigned to wi. Bounded by the tasks issued, these are not counted
 * against the budget, however fast a worker trains. */
static int answers_task(const fv_coord *c, int wi, const fv_wire_msg *m) {
    if (m->env->body_case == FEDVIM__ENVELOPE__BODY_UPDATE) return 1;
    if (sa_expected(c, wi, m, NULL)) return 1; /* one per client and phase */
    if (m->env->body_case != FEDVIM__ENVELOPE__BODY_ERROR) return 0;
    uint64_t tid = m->env->error->task_id;
    return tid >= 1 && tid <= c->wk.ntasks && c->wk.tasks[tid - 1].worker == wi &&
           c->wk.tasks[tid - 1].state == TASK_ASSIGNED;
}

/* Count a message (rc: fv_wire_recv's result) from registered worker wi against its budget: 1
 * when over it (the message is to be dropped; the first one over counts a strike), 0 otherwise. */
static int over_budget(fv_coord *c, int wi, const fv_wire_msg *m, int rc) {
    if (rc == 0 && answers_task(c, wi, m)) return 0;
    worker_t *w = &c->wk.w[wi];
    double now = fv_now();
    if (now - w->msg_t0 > BUDGET_WINDOW) w->msg_t0 = now, w->msgs = 0;
    if (++w->msgs <= msg_budget(c)) return 0;
    if (w->msgs == msg_budget(c) + 1) {
        char why[96];
        snprintf(why, sizeof why, "more than %d messages in %g s", msg_budget(c), BUDGET_WINDOW);
        strike(c, wi, "a flood", why);
        w->drops.t0 = fv_now(); /* that line says why; the drops after it are counted in the next */
    } else {
        char b[160];
        log_drop(c, &w->drops, "security: dropped a message from worker %s: over its budget of %d messages in %g s",
                 who(w, b, sizeof b), msg_budget(c), BUDGET_WINDOW);
    }
    return 1;
}

/* Receive and handle one message: count its bytes, note the sender alive (and ready once past
 * its join), strike a malformed one, route a well-formed one. Banned workers are ignored, and so
 * is a worker over its message budget. */
static void handle_one(fv_coord *c) {
    fv_wire_msg m;
    fv_err e = {{0}};
    int rc = fv_wire_recv(c->link.sock, 1, &c->link.lim, &m, &e);
    if (rc == 1) {
        fv_wire_msg_close(&m);
        return;
    }
    c->rd.st.bytes_up += m.bytes;
    int wi = sender(c, &m);
    if (wi >= 0 && c->wk.w[wi].banned) {
        char b[160];
        log_drop(c, &c->wk.w[wi].drops, "security: dropped a message from banned worker %s",
                 who(&c->wk.w[wi], b, sizeof b));
        fv_wire_msg_close(&m);
        return;
    }
    if (wi >= 0 && over_budget(c, wi, &m, rc)) {
        fv_wire_msg_close(&m);
        return;
    }
    if (wi >= 0) c->wk.w[wi].last_seen = fv_now();
    if (wi >= 0 && rc == 0 && m.env->body_case != FEDVIM__ENVELOPE__BODY_JOIN) c->wk.w[wi].ready = 1;
    if (rc < 0) strike(c, wi, "a malformed message", e.msg);
    else route_message(c, wi, &m);
    fv_wire_msg_close(&m);
}

/* Poll for up to ms and handle everything that arrived; check liveness and stop requests. */
static void pump(fv_coord *c, int ms) {
    zmq_pollitem_t it = {c->link.sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, ms) > 0)
        for (int k = 0; k < 256; k++) { /* drain, but come up for air */
            int ev = 0;
            size_t el = sizeof ev;
            if (zmq_getsockopt(c->link.sock, ZMQ_EVENTS, &ev, &el) != 0 || !(ev & ZMQ_POLLIN)) break;
            handle_one(c);
        }
    double now = fv_now();
    for (int i = 0; i < c->wk.n; i++)
        if (c->wk.w[i].alive && now - c->wk.w[i].last_seen > c->cfg.worker_timeout) {
            char why[96];
            snprintf(why, sizeof why, "silent for %.1f s (fl.worker_timeout = %g)", now - c->wk.w[i].last_seen,
                     c->cfg.worker_timeout);
            mark_dead(c, i, why);
        }
    if (c->ctl.should_stop && !c->ctl.abort && c->ctl.should_stop(c->ctl.ctx, c->ctl.why, sizeof c->ctl.why))
        c->ctl.abort = 1;
}

/* ---- rounds ---- */

static uint64_t new_task(fv_coord *c, int slot, int wi) {
    if (c->wk.ntasks == c->wk.cap) {
        c->wk.cap = c->wk.cap ? 2 * c->wk.cap : 1024;
        c->wk.tasks = fv_realloc(c->wk.tasks, c->wk.cap * sizeof *c->wk.tasks);
    }
    task_rec *t = &c->wk.tasks[c->wk.ntasks++];
    t->round = (uint32_t)c->rd.round;
    t->client = c->rd.slots[slot].client;
    t->slot = slot;
    t->worker = wi;
    t->state = TASK_ASSIGNED;
    return c->wk.ntasks;
}

/* The least loaded live worker with room for another task for slot s (never one whose update for
 * that client was rejected), or -1. */
static int pick_worker(const fv_coord *c, int s) {
    const slot_t *sl = &c->rd.slots[s];
    if (c->model.sa) { /* [secagg]: the worker that holds the client's secrets, or none */
        const worker_t *w = &c->wk.w[sl->sa_worker];
        return w->alive && w->outstanding < fv_exp_worker_queue(&c->cfg) && sl->navoid == 0 ? sl->sa_worker : -1;
    }
    int best = -1;
    for (int i = 0; i < c->wk.n; i++) {
        const worker_t *w = &c->wk.w[i];
        if (!w->alive || w->outstanding >= fv_exp_worker_queue(&c->cfg)) continue;
        int avoided = 0;
        for (int k = 0; k < sl->navoid; k++) avoided |= sl->avoid[k] == i;
        if (avoided) continue;
        if (best < 0 || w->outstanding < c->wk.w[best].outstanding) best = i;
    }
    return best;
}

/* Send slot s's client to worker wi as a new task, with the global model when the worker does
 * not hold it and the client's optimizer state (fl.opt_state = keep) or SCAFFOLD's c and c_i (zero
 * before the client's first round). Returns 0; -1 when the run must stop (the state cannot be
 * read: ctl.abort set) or the worker is unreachable (marked
 * dead, the slot stays queued). */
static int send_task(fv_coord *c, int s, int wi) {
    slot_t *sl = &c->rd.slots[s];
    worker_t *w = &c->wk.w[wi];
    fv_wire_frame fr[2];
    int nf = 0;
    int send_model = !w->has_model || !fv_ct_equal(w->model_hash, c->model.hash, FV_HASH_BYTES);
    if (send_model)
        fr[nf++] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_PARAMS, c->model.net->params, c->model.n_params};
    float *state = NULL;
    size_t sn = 0;
    uint64_t steps = 0;
    fv_err e = {{0}};
    if (c->cfg.opt_state == FV_OPTSTATE_KEEP) {
        int r = fv_store_client_state_load(c->store, sl->client, &state, &sn, &steps, &e);
        if (r < 0 || (r == 0 && sn != c->model.opt_len)) {
            c->ctl.abort = 1;
            snprintf(c->ctl.why, sizeof c->ctl.why, "client %d's optimizer state: %.400s", sl->client,
                     r < 0 ? e.msg : "wrong size");
            free(state);
            return -1;
        }
        if (r == 0) fr[nf++] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_OPT_STATE, state, sn};
    }
    if (c->model.scaf) {
        const size_t nt = c->model.net->n_train;
        int r = fv_store_client_state_load(c->store, sl->client, &state, &sn, &steps, &e);
        if (r < 0 || (r == 0 && sn != nt)) {
            c->ctl.abort = 1;
            snprintf(c->ctl.why, sizeof c->ctl.why, "client %d's SCAFFOLD control variate: %.400s", sl->client,
                     r < 0 ? e.msg : "wrong size");
            free(state);
            return -1;
        }
        memcpy(c->model.ctl, fv_scaffold_c(c->model.scaf), nt * sizeof(float));
        if (r == 0) memcpy(c->model.ctl + nt, state, nt * sizeof(float));
        else memset(c->model.ctl + nt, 0, nt * sizeof(float));
        fr[nf++] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_CONTROL, c->model.ctl, 2 * nt};
    }
    uint64_t tid = new_task(c, s, wi);
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Task task = FEDVIM__TASK__INIT;
    task.session = c->link.session;
    task.task_id = tid;
    task.round = (uint32_t)c->rd.round;
    task.client_id = (uint32_t)sl->client;
    task.model_hash = (ProtobufCBinaryData){FV_HASH_BYTES, c->model.hash};
    task.want_opt_state = c->cfg.opt_state == FV_OPTSTATE_KEEP;
    task.expected_samples = (uint64_t)c->client_n[sl->client];
    task.opt_steps = steps;
    uint32_t *from = NULL;
    uint8_t *boxes = NULL;
    Fedvim__SecAggShare *sh = NULL, **shp = NULL;
    if (c->model.sa) { /* the shares sealed to the client; it masks with exactly their senders */
        const int nb = fv_sa_server_inbox(c->model.sa, s, &from, &boxes);
        sh = fv_calloc((size_t)nb + 1, sizeof *sh);
        shp = fv_calloc((size_t)nb + 1, sizeof *shp);
        for (int j = 0; j < nb; j++) {
            fedvim__sec_agg_share__init(&sh[j]);
            sh[j].from = from[j];
            sh[j].to = (uint32_t)sl->client;
            sh[j].box = (ProtobufCBinaryData){FV_SA_BOX_BYTES, boxes + (size_t)j * FV_SA_BOX_BYTES};
            shp[j] = &sh[j];
        }
        task.n_secagg_shares = (size_t)nb;
        task.secagg_shares = shp;
        task.secagg_frac_bits = (uint32_t)fv_sa_server_frac_bits(c->model.sa);
        task.secagg_stat_bits = (uint32_t)c->model.sa_g;
    }
    env.body_case = FEDVIM__ENVELOPE__BODY_TASK;
    env.task = &task;
    int rc = send_msg(c, w, &env, fr, nf);
    free(state);
    free(from), free(boxes), free(sh), free(shp);
    if (rc != 0) {
        c->wk.tasks[tid - 1].state = TASK_CANCELLED;
        strike(c, wi, "a task", "the worker does not take its messages (send queue full or gone)");
        mark_dead(c, wi, "unreachable");
        return -1;
    }
    if (send_model) {
        memcpy(w->model_hash, c->model.hash, FV_HASH_BYTES);
        w->has_model = 1;
    }
    sl->state = SLOT_ASSIGNED;
    sl->task = tid;
    w->outstanding++;
    return 0;
}

/* Give queued clients (in id order) to the least loaded live workers. */
static void dispatch(fv_coord *c) {
    for (int s = 0; s < c->rd.n; s++) {
        if (c->rd.slots[s].state != SLOT_QUEUED) continue;
        if (c->model.sa && !c->wk.w[c->rd.slots[s].sa_worker].alive) { /* its secrets died with it */
            c->rd.slots[s].state = SLOT_DROPPED;
            c->rd.st.dropped++;
            coord_log(c, "round %d: client %d dropped (the worker holding its secure-aggregation keys is gone)",
                      c->rd.round, c->rd.slots[s].client);
            continue;
        }
        int wi = pick_worker(c, s);
        if (wi < 0) continue;
        if (send_task(c, s, wi) != 0 && c->ctl.abort) return;
    }
}

static int round_open(const fv_coord *c) {
    for (int s = 0; s < c->rd.n; s++)
        if (c->rd.slots[s].state == SLOT_QUEUED || c->rd.slots[s].state == SLOT_ASSIGNED) return 1;
    return 0;
}

static void drop_unfinished(fv_coord *c, const char *why) {
    for (int s = 0; s < c->rd.n; s++) {
        slot_t *sl = &c->rd.slots[s];
        if (sl->state != SLOT_QUEUED && sl->state != SLOT_ASSIGNED) continue;
        if (sl->state == SLOT_ASSIGNED) {
            task_rec *t = &c->wk.tasks[sl->task - 1];
            t->state = TASK_CANCELLED;
            c->wk.w[t->worker].outstanding--;
        }
        sl->state = SLOT_DROPPED;
        c->rd.st.dropped++;
        fv_agg_skip(c->model.agg, s);
        coord_log(c, "round %d: client %d dropped (%s)", c->rd.round, sl->client, why);
    }
}

/* ---- secure aggregation's phases ([secagg], docs/secagg.md) ---- */

/* Whether slot s takes part in a phase that asks the clients at `level` (0: every client the
 * round still counts on; 1, 2, 3: U1, U2, U3 of secagg_server.h). */
static int sa_takes_part(const fv_coord *c, int s, int level) {
    const slot_t *sl = &c->rd.slots[s];
    if (sl->sa_worker < 0) return 0;
    return level == 0 ? sl->state != SLOT_DROPPED : fv_sa_server_in(c->model.sa, s, level);
}

/* Run one phase: q (its phase and phase-wide fields set) goes to every worker holding clients at
 * `level`, with their ids; then pump until each of those clients answered, its worker is gone,
 * fl.worker_timeout passed or the run must stop (a client that did not answer drops out of the
 * protocol at the next step). */
static void sa_phase(fv_coord *c, Fedvim__SecAggRequest *q, int level) {
    c->model.sa_phase = (int)q->phase;
    uint32_t *ids = fv_malloc(sizeof(uint32_t) * (size_t)(c->rd.n + 1));
    for (int s = 0; s < c->rd.n; s++) c->rd.slots[s].sa_answered = 0;
    for (int wi = 0; wi < c->wk.n; wi++) {
        if (!c->wk.w[wi].alive) continue;
        size_t k = 0;
        for (int s = 0; s < c->rd.n; s++)
            if (c->rd.slots[s].sa_worker == wi && sa_takes_part(c, s, level)) ids[k++] = (uint32_t)c->rd.slots[s].client;
        if (!k) continue;
        q->session = c->link.session;
        q->round = (uint32_t)c->rd.round;
        q->n_clients = k;
        q->clients = ids;
        Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
        env.body_case = FEDVIM__ENVELOPE__BODY_SECAGG_REQUEST;
        env.secagg_request = q;
        if (send_msg(c, &c->wk.w[wi], &env, NULL, 0) != 0) {
            strike(c, wi, "a secagg request", "the worker does not take its messages (send queue full or gone)");
            mark_dead(c, wi, "unreachable");
        }
    }
    free(ids);
    q->n_clients = 0, q->clients = NULL;
    const double end = fv_now() + c->cfg.worker_timeout;
    while (!c->ctl.abort && fv_now() < end) {
        int pending = 0;
        for (int s = 0; s < c->rd.n; s++)
            pending += sa_takes_part(c, s, level) && !c->rd.slots[s].sa_answered &&
                       c->wk.w[c->rd.slots[s].sa_worker].alive;
        if (!pending) break;
        pump(c, POLL_MS);
    }
    c->model.sa_phase = 0;
}

/* Secure aggregation's opening, after begin_round: each sampled client is pinned to a live worker
 * (the least loaded), which draws its keys (phase KEYS) and shares its secrets with its
 * neighbours (SHARES); the clients that did not get through both sit the round out. Returns 0, or
 * -1 with e set (no fixed point fits, the run must stop). */
static int secagg_open(fv_coord *c, fv_err *e) {
    const double t0 = fv_now();
    int *ids = fv_malloc(sizeof(int) * (size_t)(c->rd.n + 1)), *load = fv_calloc((size_t)c->wk.n + 1, sizeof(int));
    double *w = fv_malloc(sizeof(double) * (size_t)(c->rd.n + 1));
    for (int s = 0; s < c->rd.n; s++) {
        slot_t *sl = &c->rd.slots[s];
        ids[s] = sl->client;
        w[s] = c->client_n[sl->client];
        sl->sa_worker = -1;
        if (sl->state == SLOT_DROPPED) continue;
        for (int wi = 0; wi < c->wk.n; wi++)
            if (c->wk.w[wi].alive && (sl->sa_worker < 0 || load[wi] < load[sl->sa_worker])) sl->sa_worker = wi;
        if (sl->sa_worker >= 0) load[sl->sa_worker]++;
    }
    double total = 0;
    for (int s = 0; s < c->rd.n; s++) total += w[s];
    int rc = fv_sa_server_begin(c->model.sa, (uint32_t)c->rd.round, ids, w, c->rd.n, c->cfg.sa_neighbours,
                                c->cfg.sa_threshold, c->cfg.sa_clip, e);
    free(ids), free(load), free(w);
    if (rc != 0) return fv_err_prefix(e, "round %d: ", c->rd.round);
    if ((c->model.sa_g = fv_sa_frac_bits(FV_SA_LOSS_MAX, total)) < 0)
        return fv_err_set(e, "round %d: %g samples leave no 32-bit fixed point for the clients' summed training "
                          "statistics: lower the clients per round", c->rd.round, total);
    Fedvim__SecAggRequest q = FEDVIM__SEC_AGG_REQUEST__INIT;
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS;
    sa_phase(c, &q, 0);
    c->rd.st.sa_keys = fv_sa_server_end_keys(c->model.sa);
    /* the sum of two updates tells each of the two the other's (the new model is public): with
     * fewer than 3 clients (the virtual clock's stragglers, failed workers) the round keeps the model */
    c->rd.sa_skip = c->rd.st.sa_keys < 3;
    if (c->rd.sa_skip) {
        for (int s = 0; s < c->rd.n; s++)
            if (c->rd.slots[s].state != SLOT_DROPPED) {
                c->rd.slots[s].state = SLOT_DROPPED;
                c->rd.st.dropped++;
            }
        coord_log(c, "round %d: only %d clients sent secure-aggregation keys, 3 are needed: the round keeps the "
                  "model", c->rd.round, c->rd.st.sa_keys);
        c->rd.st.sa_seconds += fv_now() - t0;
        return 0;
    }
    const uint32_t *rid;
    const uint8_t *cpk, *spk;
    const int n1 = fv_sa_server_roster(c->model.sa, &rid, &cpk, &spk);
    Fedvim__SecAggKeys *keys = fv_calloc((size_t)n1 + 1, sizeof *keys), **kp = fv_calloc((size_t)n1 + 1, sizeof *kp);
    for (int j = 0; j < n1; j++) {
        fedvim__sec_agg_keys__init(&keys[j]);
        keys[j].client = rid[j];
        keys[j].c_pk = (ProtobufCBinaryData){FV_SA_KEY_BYTES, (uint8_t *)cpk + (size_t)j * FV_SA_KEY_BYTES};
        keys[j].s_pk = (ProtobufCBinaryData){FV_SA_KEY_BYTES, (uint8_t *)spk + (size_t)j * FV_SA_KEY_BYTES};
        kp[j] = &keys[j];
    }
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_SHARES;
    q.n_roster = (size_t)n1;
    q.roster = kp;
    q.graph_seed = (ProtobufCBinaryData){FV_SA_KEY_BYTES, (uint8_t *)fv_sa_server_graph_seed(c->model.sa)};
    q.neighbours = (uint32_t)fv_sa_server_k(c->model.sa);
    q.threshold = (uint32_t)fv_sa_server_t(c->model.sa);
    if (!c->ctl.abort) sa_phase(c, &q, 1);
    free(keys), free(kp);
    c->rd.st.sa_shares = fv_sa_server_end_shares(c->model.sa);
    if (c->rd.st.sa_shares < 3) { /* as with the keys: no sum of fewer than 3 */
        c->rd.sa_skip = 1;
        coord_log(c, "round %d: only %d clients sent their secure-aggregation shares, 3 are needed: the round keeps "
                  "the model", c->rd.round, c->rd.st.sa_shares);
    }
    for (int s = 0; s < c->rd.n; s++) {
        slot_t *sl = &c->rd.slots[s];
        if (sl->state == SLOT_DROPPED || (fv_sa_server_in(c->model.sa, s, 2) && !c->rd.sa_skip)) continue;
        sl->state = SLOT_DROPPED;
        c->rd.st.dropped++;
        fv_agg_skip(c->model.agg, s);
        if (!c->rd.sa_skip)
            coord_log(c, "round %d: client %d dropped (its secure-aggregation %s did not arrive)", c->rd.round,
                      sl->client, fv_sa_server_in(c->model.sa, s, 1) ? "shares" : "keys");
    }
    c->rd.st.sa_seconds += fv_now() - t0;
    if (c->ctl.abort) return fv_err_set(e, "round %d stopped: %.400s", c->rd.round, c->ctl.why);
    return 0;
}

/* Unmask and decode the round: the survivors' weighted mean model into model.scratch, their summed
 * training statistics into the round's (FV_SA_STATS). Returns 0 or -1 with e set. */
static int secagg_decode(fv_coord *c, fv_err *e) {
    const size_t np = c->model.n_params, nw = np + FV_SA_STATS;
    float *base = c->model.sa_io, *out = base + nw;
    memcpy(base, c->model.net->params, np * sizeof(float));
    memset(base + np, 0, FV_SA_STATS * sizeof(float));
    if (fv_sa_server_finish(c->model.sa, base, out, e) != 0) return -1;
    memcpy(c->model.scratch, out, np * sizeof(float));
    double total;
    const uint32_t *sum = fv_sa_server_sum(c->model.sa, &total);
    const double scale = ldexp(1.0, c->model.sa_g) * total;
    round_stats *st = &c->rd.st;
    st->loss_sum = st->samples * (double)(int32_t)sum[np] / scale;
    st->acc_sum = st->samples * (double)(int32_t)sum[np + 1] / scale;
    st->sa_clamped = (long)sum[np + 2];
    return 0;
}

/* Secure aggregation's close, after gather_updates: the survivors reveal, for each of their
 * neighbours, the share of b (survived) or of s_sk (dropped after sending shares) (phase UNMASK);
 * the server rebuilds, unmasks and decodes the survivors' weighted mean into model.scratch.
 * Returns 0 (nothing to unmask when no input arrived), or -1 with e set. */
static int secagg_close(fv_coord *c, fv_err *e) {
    const double t0 = fv_now();
    uint32_t *surv, *drop;
    int ns, nd;
    fv_sa_server_end_inputs(c->model.sa, &surv, &ns, &drop, &nd);
    c->rd.st.sa_survivors = ns;
    c->rd.st.sa_dropped = nd;
    int rc = 0;
    if (ns < 3) { /* the clients refuse to unmask a sum of fewer than 3: the round keeps the model */
        c->rd.sa_skip = 1;
        coord_log(c, "round %d: only %d masked inputs arrived, 3 are needed to unmask a sum: the round keeps the model",
                  c->rd.round, ns);
    } else {
        Fedvim__SecAggRequest q = FEDVIM__SEC_AGG_REQUEST__INIT;
        q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_UNMASK;
        q.n_survivors = (size_t)ns, q.survivors = surv;
        q.n_dropped = (size_t)nd, q.dropped = drop;
        sa_phase(c, &q, 3);
        if (c->ctl.abort) rc = fv_err_set(e, "round %d stopped: %.400s", c->rd.round, c->ctl.why);
        else if (secagg_decode(c, e) != 0)
            rc = fv_err_prefix(e, "round %d failed: ", c->rd.round);
    }
    free(surv), free(drop);
    c->rd.st.sa_seconds += fv_now() - t0;
    return rc;
}

static void attack_idle(void *ctx) { pump(ctx, POLL_MS); }
static void attack_log(void *ctx, const char *line) { log_line(ctx, 1, line); }

/* What a completed round measured beyond its round_stats: the evaluation (NaN when not
 * evaluated, or without VisualMixer for the mixed figures) and the timings. */
typedef struct {
    int evaluated;
    int rolled_back;      /* the aggregate was unsound: the model is the previous round's */
    char culprits[256];   /* rolled back: the clients blamed, as a JSON array */
    double acc, loss, acc_m, loss_m;
    double bd, bd_m;      /* [adversary] backdoor: success rate on triggered test images (clean, mixed) */
    double seconds;       /* the whole round, evaluation included */
    double work_seconds;  /* the round without evaluation */
    double busy_max;      /* the busiest worker's summed client work, divided by its [fl] worker_slots
                           * (the slots train at once): the critical path of client work */
    double agg_seconds, eval_seconds;
} round_result;

/* One test set and where its figures go (loss NULL: not reported). */
typedef struct {
    const fv_dataset *d; /* NULL: the set does not exist in this run */
    double *acc, *loss;
} eval_set;

/* The model's figures on the test sets into res: clean, mixed (VisualMixer) and the backdoor's
 * success rate ([adversary] backdoor), NaN where a set does not exist. */
static void evaluate(fv_coord *c, round_result *res) {
    const eval_set sets[] = {{&c->eval.test, &res->acc, &res->loss},
                                       {c->eval.has_mixed ? &c->eval.mixed : NULL, &res->acc_m, &res->loss_m},
                                       {c->eval.has_backdoor ? &c->eval.backdoor : NULL, &res->bd, NULL},
                                       {c->eval.has_backdoor && c->eval.has_mixed ? &c->eval.backdoor_mixed : NULL,
                                        &res->bd_m, NULL}};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        fv_eval_stats st = {NAN, NAN, 0};
        if (sets[i].d) st = fv_evaluate(c->model.net, sets[i].d, NULL, 0, c->cfg.eval_batch, c->eval.norm);
        *sets[i].acc = st.accuracy;
        if (sets[i].loss) *sets[i].loss = st.loss;
    }
}

/* Clear the round's statistics and the workers' busy time (a round, or a FedBuff server step). */
static void clear_round_stats(fv_coord *c, int r) {
    c->rd.round = r;
    memset(&c->rd.st, 0, sizeof c->rd.st);
    c->rd.st.t0 = fv_now();
    for (int i = 0; i < c->wk.n; i++) c->wk.w[i].busy = 0;
}

/* Start round r: sample its clients into the slots (with a trace: the virtual clock's plan, whose
 * stragglers and offline clients are dropped at once, untrained), clear the statistics and the
 * aggregator. Returns 0, or -1 with e set (the trace ends). */
static int begin_round(fv_coord *c, int r, fv_err *e) {
    clear_round_stats(c, r);
    if (c->vc.on) {
        if (fv_vclock_plan(&c->cfg, &c->vc.trace, c->client_n, r, c->vc.now, &c->vc.plan, e) != 0) return -1;
        c->rd.n = c->vc.plan.n;
        for (int s = 0; s < c->rd.n; s++) c->rd.slots[s] = (slot_t){.client = c->vc.plan.client[s], .state = SLOT_QUEUED};
    } else {
        int *ids = fv_malloc((size_t)c->rd.m * sizeof(int));
        fv_exp_sample_clients(&c->cfg, r, ids);
        c->rd.n = c->rd.m;
        for (int s = 0; s < c->rd.m; s++) c->rd.slots[s] = (slot_t){.client = ids[s], .state = SLOT_QUEUED};
        free(ids);
    }
    fv_agg_begin(c->model.agg, c->rd.n, r, c->model.net->params);
    fv_sopt_begin(c->model.sopt);
    c->rd.sa_skip = 0;
    if (c->model.scaf) fv_scaffold_begin(c->model.scaf, c->rd.n);
    c->model.scaf_unsound = 0;
    for (int s = 0; c->vc.on && s < c->rd.n; s++)
        if (c->vc.plan.fate[s] != FV_VC_DONE) {
            c->rd.slots[s].state = SLOT_DROPPED;
            c->rd.st.dropped++;
            fv_agg_skip(c->model.agg, s);
        }
    return 0;
}

/* The clients of this round the virtual clock dropped with `fate`, as a JSON array. */
static void vc_clients_json(const fv_coord *c, fv_vc_fate fate, char *out, size_t cap) {
    size_t len = (size_t)snprintf(out, cap, "[");
    int k = 0;
    for (int s = 0; s < c->vc.plan.n && len + 16 < cap; s++)
        if (c->vc.plan.fate[s] == fate)
            len += (size_t)snprintf(out + len, cap - len, "%s%d", k++ ? "," : "", c->vc.plan.client[s]);
    snprintf(out + len, cap - len, "]");
}

/* The clients the virtual clock dropped this round (stragglers and offline). */
static int vc_dropped(const fv_coord *c) {
    int k = 0;
    for (int s = 0; c->vc.on && s < c->vc.plan.n; s++) k += c->vc.plan.fate[s] != FV_VC_DONE;
    return k;
}

/* Hand out the round's clients and gather their updates until every slot is done or dropped,
 * the round's deadline passes (the unfinished are dropped) or the run must stop. Returns 0, or
 * -1 with e set when the run stops or too few updates were accepted. */
static int gather_updates(fv_coord *c, fv_err *e) {
    int r = c->rd.round;
    double deadline = c->rd.st.t0 + c->cfg.round_timeout;
    while (round_open(c) && !c->ctl.abort) {
        dispatch(c);
        double left = deadline - fv_now();
        if (left <= 0) {
            char why[96];
            snprintf(why, sizeof why, "fl.round_timeout = %g s passed", c->cfg.round_timeout);
            drop_unfinished(c, why);
            break;
        }
        pump(c, left * 1000 < POLL_MS ? (int)(left * 1000) + 1 : POLL_MS);
    }
    if (c->ctl.abort) return fv_err_set(e, "round %d stopped: %.400s", r, c->ctl.why);
    /* the clients the virtual clock dropped do not fail the round (it keeps the model when none
     * arrives); FedBuff's batches have no minimum */
    const int vdrop = vc_dropped(c);
    int need = c->cfg.min_clients < c->rd.n - vdrop ? c->cfg.min_clients : c->rd.n - vdrop;
    if (c->vc.sched || c->rd.sa_skip) need = 0;
    if (c->rd.st.accepted < need)
        return fv_err_set(e,
                          "round %d failed: %d of %d sampled clients returned an accepted update (%d "
                          "dropped, fl.min_clients = %d); %s",
                          r, c->rd.st.accepted, c->rd.n, c->rd.st.dropped, c->cfg.min_clients,
                          r > 1 ? "the results folder holds the rounds before it" : "no round completed");
    return 0;
}

/* The round's timings once its new model is made (t: when the aggregation began): aggregation,
 * the round without evaluation, the busiest worker's client work. */
static void work_timings(const fv_coord *c, round_result *res, double t) {
    res->agg_seconds = fv_now() - t;
    res->work_seconds = fv_now() - c->rd.st.t0;
    res->busy_max = 0;
    for (int i = 0; i < c->wk.n; i++)
        if (c->wk.w[i].busy > res->busy_max) res->busy_max = c->wk.w[i].busy;
    res->busy_max /= c->cfg.worker_slots;
}

/* The aggregation rule turns the gathered updates into the next global model, the server
 * optimizer steps from it unless a robust rule kept the global model (the one before is kept in
 * model.prev, for a roll-back), and SCAFFOLD's c takes the round's control deltas. */
static void aggregate(fv_coord *c, round_result *res) {
    double t = fv_now();
    memcpy(c->model.prev, c->model.net->params, c->model.n_params * sizeof(float));
    if (c->model.sa && c->rd.sa_skip) { /* too few clients for a sum (secagg_open, secagg_close): the model stays */
    } else if (c->rd.st.accepted > 0 && c->model.sa) { /* the unmasked mean (secagg_close); only it can be attacked */
        memcpy(c->model.net->params, c->model.scratch, c->model.n_params * sizeof(float));
        int *surv = fv_malloc(sizeof(int) * (size_t)c->rd.n), ns = 0, wanted = 0;
        for (int s = 0; s < c->rd.n; s++)
            if (c->rd.slots[s].state == SLOT_DONE) {
                surv[ns++] = c->rd.slots[s].client;
                wanted |= fv_attacker_wants(c->attacker, c->rd.round, c->rd.slots[s].client);
            }
        if (wanted) fv_attacker_capture_sum(c->attacker, c->rd.round, c->model.net->params, c->model.prev, surv, ns);
        free(surv);
        fv_sopt_step(c->model.sopt, c->model.prev, c->model.net->params);
    } else if (c->rd.st.accepted > 0) { /* none only when the virtual clock dropped every client: the model stays */
        FV_ASSERT(fv_agg_end(c->model.agg, c->model.net->params) > 0);
        if (!fv_agg_held(c->model.agg)) fv_sopt_step(c->model.sopt, c->model.prev, c->model.net->params);
        if (c->model.scaf) c->model.scaf_unsound = fv_scaffold_end(c->model.scaf) != 0;
    }
    fv_hash(c->model.hash, c->model.net->params, c->model.n_params * sizeof(float));
    work_timings(c, res, t);
}

/* Evaluate the new global model when the round is due (fl.eval_every, and always the last). */
static void evaluate_round(fv_coord *c, round_result *res) {
    int r = c->rd.round;
    double t = fv_now();
    res->acc = res->loss = res->acc_m = res->loss_m = res->bd = res->bd_m = NAN;
    res->evaluated = r % c->cfg.eval_every == 0 || r == c->cfg.rounds;
    if (res->evaluated) evaluate(c, res);
    res->eval_seconds = fv_now() - t;
    res->seconds = fv_now() - c->rd.st.t0;
}

/* The new global model is sound: finite parameters, a finite server optimizer state (and SCAFFOLD's
 * c) and a finite test loss (the round's evaluation, or one evaluation batch when the round is not evaluated). */
static int model_sound(const fv_coord *c, const round_result *res) {
    if (fv_wire_first_nonfinite(c->model.net->params, c->model.n_params) >= 0) return 0;
    if (!fv_sopt_sound(c->model.sopt) || c->model.scaf_unsound) return 0;
    if (res->evaluated) return isfinite(res->loss);
    int k = c->eval.test.n < c->cfg.eval_batch ? c->eval.test.n : c->cfg.eval_batch;
    int *idx = fv_malloc((size_t)k * sizeof(int));
    for (int i = 0; i < k; i++) idx[i] = i;
    fv_eval_stats st = fv_evaluate(c->model.net, &c->eval.test, idx, k, c->cfg.eval_batch, c->eval.norm);
    free(idx);
    return isfinite(st.loss);
}

/* An unsound aggregate: back to the model before it (never checkpointed), and the clients that
 * caused it named and struck: those whose update norm is over 10 times the round's median, or
 * the largest one when none is. The evaluation is redone for the model kept. */
static void roll_back(fv_coord *c, round_result *res) {
    memcpy(c->model.net->params, c->model.prev, c->model.n_params * sizeof(float));
    fv_sopt_undo(c->model.sopt);
    if (c->model.scaf) fv_scaffold_undo(c->model.scaf);
    fv_hash(c->model.hash, c->model.net->params, c->model.n_params * sizeof(float));
    res->rolled_back = 1;
    int n = 0, top = -1;
    double *v = fv_malloc((size_t)c->rd.n * sizeof(double));
    for (int s = 0; s < c->rd.n; s++)
        if (c->rd.slots[s].state == SLOT_DONE) {
            v[n++] = c->rd.slots[s].norm;
            if (top < 0 || c->rd.slots[s].norm > c->rd.slots[top].norm) top = s;
        }
    for (int i = 1; i < n; i++) /* insertion sort: a round's few norms */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    double median = n ? v[(n - 1) / 2] : 0; /* the lower median: half the updates may be outliers */
    free(v);
    size_t len = (size_t)snprintf(res->culprits, sizeof res->culprits, "[");
    int named = 0;
    for (int s = 0; s < c->rd.n; s++) {
        const slot_t *sl = &c->rd.slots[s];
        if (sl->state != SLOT_DONE || !(sl->norm > 10 * median || (s == top && median * 10 >= c->rd.slots[top].norm)))
            continue;
        char why[160];
        snprintf(why, sizeof why, "client %d's update (norm %.4g, the round's median %.4g) made the global model "
                 "unsound: round %d rolled back", sl->client, sl->norm, median, c->rd.round);
        strike(c, sl->worker, "update", why);
        if (len + 16 < sizeof res->culprits)
            len += (size_t)snprintf(res->culprits + len, sizeof res->culprits - len, "%s%d", named++ ? "," : "",
                                    sl->client);
    }
    snprintf(res->culprits + len, sizeof res->culprits - len, "]");
    coord_log(c, "round %d: the aggregate is not sound (non-finite parameters or test loss): rolled back to the "
              "model before it, not checkpointed; blamed clients %s", c->rd.round, res->culprits);
    if (res->evaluated) evaluate(c, res);
}

/* The round's metrics.jsonl object (coordinator.h lists the keys), attack the attacker's JSON
 * object or NULL. Returns the line; caller frees. */
static char *metrics_line(const fv_coord *c, const round_result *res, const char *attack) {
    int r = c->rd.round;
    const round_stats *st = &c->rd.st;
    double n = st->samples;
    fv_json j;
    fv_json_begin(&j);
    fv_json_int(&j, "round", r);
    fv_json_num(&j, "test_accuracy", res->acc);
    fv_json_num(&j, "test_loss", res->loss);
    if (c->cfg.vmix) {
        fv_json_num(&j, "test_accuracy_mixed", res->acc_m);
        fv_json_num(&j, "test_loss_mixed", res->loss_m);
        fv_json_num(&j, "vfe_clients", st->vfe_sum / n);
    }
    fv_json_int(&j, "clients", st->accepted);
    fv_json_int(&j, "samples", (int64_t)n);
    fv_json_int(&j, "sampled", c->vc.sched ? c->vc.dispatched : c->rd.n);
    fv_json_int(&j, "dropped", st->dropped);
    fv_json_int(&j, "reassigned", st->reassigned);
    fv_json_int(&j, "rejected", st->rejected);
    fv_json_int(&j, "diverged", st->diverged);
    fv_json_int(&j, "clipped", st->clipped);
    fv_json_bool(&j, "rolled_back", res->rolled_back);
    if (res->rolled_back) fv_json_raw(&j, "rolled_back_clients", res->culprits);
    fv_json_int(&j, "bytes_up", (int64_t)st->bytes_up);
    fv_json_int(&j, "bytes_down", (int64_t)st->bytes_down);
    fv_json_num(&j, "seconds", res->seconds);
    fv_json_num(&j, "train_loss", st->loss_sum / n);
    fv_json_num(&j, "train_accuracy", st->acc_sum / n);
    fv_json_num(&j, "client_seconds_max", st->max_train);
    fv_json_num(&j, "worker_busy_max", res->busy_max);
    fv_json_num(&j, "overhead_seconds", res->work_seconds - res->busy_max);
    fv_json_num(&j, "aggregate_seconds", res->agg_seconds);
    fv_json_num(&j, "eval_seconds", res->eval_seconds);
    fv_json_num(&j, "mix_seconds", st->mix_seconds);
    fv_json_int(&j, "workers", alive_workers(c));
    if (c->vc.sched) {
        char lost[sizeof c->vc.lost + 4];
        snprintf(lost, sizeof lost, "[%s]", c->vc.lost);
        fv_json_num(&j, "virtual_time", fv_fb_sched_now(c->vc.sched));
        fv_json_int(&j, "buffered", c->vc.nbuf);
        fv_json_num(&j, "staleness_mean", c->vc.stale_sum / c->vc.nbuf);
        fv_json_int(&j, "staleness_max", c->vc.stale_max);
        fv_json_raw(&j, "lost_clients", lost);
        fv_json_int(&j, "batches", c->vc.batches);
    } else if (c->vc.on) {
        char ids[2][1024];
        vc_clients_json(c, FV_VC_STRAGGLER, ids[0], sizeof ids[0]);
        vc_clients_json(c, FV_VC_OFFLINE, ids[1], sizeof ids[1]);
        fv_json_num(&j, "virtual_start", c->vc.plan.start);
        fv_json_num(&j, "virtual_time", c->vc.plan.end);
        fv_json_raw(&j, "stragglers", ids[0]);
        fv_json_raw(&j, "offline", ids[1]);
    }
    if (c->cfg.adv_kind != FV_ADV_NONE) {
        fv_json_int(&j, "malicious", st->malicious);
        if (c->eval.has_backdoor) fv_json_num(&j, "backdoor_success", res->bd);
        if (c->eval.has_backdoor && c->cfg.vmix) fv_json_num(&j, "backdoor_success_mixed", res->bd_m);
    }
    if (c->cfg.dp) {
        int order = 0, clipped = 0;
        double norm_sum = 0;
        fv_agg_dp_stats(c->model.agg, &clipped, &norm_sum);
        fv_json_num(&j, "dp_clip", c->cfg.dp_clip);
        fv_json_num(&j, "dp_noise_multiplier", c->cfg.dp_noise);
        fv_json_num(&j, "dp_q", dp_q(c));
        fv_json_num(&j, "dp_clipped_fraction", (double)clipped / st->accepted);
        fv_json_num(&j, "dp_norm_mean", norm_sum / st->accepted);
        fv_json_num(&j, "dp_delta", c->cfg.dp_delta);
        fv_json_num(&j, "dp_epsilon", fv_dp_epsilon(dp_q(c), c->cfg.dp_noise, r, c->cfg.dp_delta, &order));
        fv_json_int(&j, "dp_order", order);
    }
    if (c->model.sa) {
        char o[256];
        snprintf(o, sizeof o, "{\"keys\":%d,\"shares\":%d,\"survivors\":%d,\"dropped_after_shares\":%d,"
                 "\"neighbours\":%d,\"threshold\":%d,\"frac_bits\":%d,\"clamped\":%ld,\"seconds\":%.6g}",
                 st->sa_keys, st->sa_shares, st->sa_survivors, st->sa_dropped, fv_sa_server_k(c->model.sa),
                 fv_sa_server_t(c->model.sa), fv_sa_server_frac_bits(c->model.sa), st->sa_clamped, st->sa_seconds);
        fv_json_raw(&j, "secagg", o);
    }
    if (attack) fv_json_raw(&j, "attack", attack);
    char *line = fv_strdup(fv_json_end(&j));
    fv_json_free(&j);
    return line;
}

/* Add the completed round to the history and the run's totals. */
static void record_round(fv_coord *c, const round_result *res) {
    int r = c->rd.round;
    const round_stats *st = &c->rd.st;
    c->hist.acc = fv_realloc(c->hist.acc, (size_t)r * sizeof(double));
    c->hist.mixed = fv_realloc(c->hist.mixed, (size_t)r * sizeof(double));
    c->hist.acc[r - 1] = res->acc;
    c->hist.mixed[r - 1] = res->acc_m;
    c->hist.n = r;
    c->hist.vfe_sum += st->vfe_sum;
    c->hist.vfe_w += st->samples;
    c->hist.bytes_up += st->bytes_up;
    c->hist.bytes_down += st->bytes_down;
    c->hist.dropped += st->dropped;
    c->hist.rejected += st->rejected;
    c->hist.diverged += st->diverged;
    c->hist.rolled_back += res->rolled_back;
}

/* The round's progress line on stderr (unless quiet) and in the log. */
static void report_round(fv_coord *c, const round_result *res) {
    int r = c->rd.round;
    const round_stats *st = &c->rd.st;
    char accs[64] = "";
    if (res->evaluated && c->eval.has_mixed)
        snprintf(accs, sizeof accs, "acc %.2f%% (mixed %.2f%%)", 100 * res->acc, 100 * res->acc_m);
    else if (res->evaluated) snprintf(accs, sizeof accs, "acc %.2f%%  loss %.4f", 100 * res->acc, res->loss);
    else snprintf(accs, sizeof accs, "train loss %.4f", st->loss_sum / st->samples);
    if (!c->log.quiet)
        fprintf(stderr, "round %d/%d  %s  clients %d/%d  dropped %d  up %.2f MB  down %.2f MB  %.2f s\n", r,
                c->cfg.rounds, accs, st->accepted, c->rd.n, st->dropped, st->bytes_up / 1e6, st->bytes_down / 1e6,
                res->seconds);
    char logl[256];
    snprintf(logl, sizeof logl, "round %d done: %s, %d/%d clients, %d dropped, %d rejected, %.2f s", r, accs,
             st->accepted, c->rd.n, st->dropped, st->rejected, res->seconds);
    log_line(c, 0, logl);
}

/* SCAFFOLD, a sound round: each arrived client's new c_i = c_i + dc_i, written as its client state
 * of round r (pending until this round's checkpoint commits it, store.h). Returns 0 or -1 with e
 * set (a file that cannot be read or written: the run stops). */
static int commit_scaffold(fv_coord *c, int r, fv_err *e) {
    const size_t nt = c->model.net->n_train;
    for (int s = 0; s < c->rd.n; s++) {
        const float *dc = fv_scaffold_delta(c->model.scaf, s);
        if (!dc) continue;
        const int client = c->rd.slots[s].client;
        float *ci = NULL;
        size_t n = 0;
        uint64_t steps = 0;
        int rc = fv_store_client_state_load(c->store, client, &ci, &n, &steps, e);
        if (rc < 0 || (rc == 0 && n != nt)) {
            if (rc == 0)
                fv_err_set(e, "client %d's SCAFFOLD control variate has %zu floats, expected %zu", client, n, nt);
            free(ci);
            return -1;
        }
        if (rc == 1) ci = fv_calloc(nt, sizeof(float));
        fv_scaffold_client_update(ci, dc, nt, ci);
        rc = fv_store_client_state_save(c->store, client, r, ci, nt, 0, e);
        free(ci);
        if (rc != 0) return -1;
    }
    return 0;
}

/* The checkpoint's server state: the server optimizer's, then SCAFFOLD's c (model.sstate). */
/* FedBuff's part of the checkpoint's server state (fl.mode = async): for each of the K = concurrency
 * updates in flight its state and client (small integers, exact in float), then its delta (n_params
 * floats, zero unless trained), then the schedule's words (fv_fb_sched_save) as 16-bit limbs, four
 * floats each (exact). Its length in floats. */
static size_t async_state_len(const fv_coord *c) {
    if (!c->vc.sched) return 0;
    const size_t k = (size_t)fv_config_concurrency(&c->cfg);
    return 2 * k + k * c->model.n_params + 4 * fv_fb_sched_state_len(c->vc.sched);
}

static void async_state_save(const fv_coord *c, float *out) {
    const size_t k = (size_t)fv_config_concurrency(&c->cfg), np = c->model.n_params;
    for (size_t i = 0; i < k; i++) {
        out[i] = (float)c->vc.pend_state[i];
        out[k + i] = (float)c->vc.pend_client[i];
        float *d = out + 2 * k + i * np;
        if (c->vc.pend_state[i] == PEND_TRAINED) memcpy(d, c->vc.pending[i], np * sizeof(float));
        else memset(d, 0, np * sizeof(float));
    }
    const size_t nw = fv_fb_sched_state_len(c->vc.sched);
    uint64_t *w = fv_malloc(nw * sizeof(uint64_t));
    fv_fb_sched_save(c->vc.sched, w);
    float *l = out + 2 * k + k * np;
    for (size_t j = 0; j < nw; j++)
        for (int q = 0; q < 4; q++) l[4 * j + (size_t)q] = (float)((w[j] >> (16 * q)) & 0xffff);
    free(w);
}

/* Restore FedBuff's part (async_state_save) from a checkpoint. Returns 0, or -1 with e naming what
 * is wrong (the checkpoint was not written by this config's run). */
static int async_state_load(fv_coord *c, const float *in, fv_err *e) {
    const size_t k = (size_t)fv_config_concurrency(&c->cfg), np = c->model.n_params;
    for (size_t i = 0; i < k; i++) {
        const float st = in[i], cl = in[k + i];
        if (!(st == PEND_FREE || st == PEND_LOST || st == PEND_TRAINED || st == PEND_FAILED) || !(cl >= 0) ||
            cl >= (float)c->cfg.clients || cl != floorf(cl))
            return fv_err_set(e, "checkpoint.safetensors: FedBuff update in flight %zu has state %g, client %g", i, st, cl);
        const float *d = in + 2 * k + i * np;
        if (st == PEND_TRAINED && fv_wire_first_nonfinite(d, np) >= 0)
            return fv_err_set(e, "checkpoint.safetensors: FedBuff update in flight %zu holds a non-finite value", i);
    }
    const size_t nw = fv_fb_sched_state_len(c->vc.sched);
    uint64_t *w = fv_calloc(nw, sizeof(uint64_t));
    const float *l = in + 2 * k + k * np;
    for (size_t j = 0; j < nw; j++)
        for (int q = 0; q < 4; q++) {
            const float x = l[4 * j + (size_t)q];
            if (!(x >= 0 && x <= 65535 && x == floorf(x))) {
                free(w);
                return fv_err_set(e, "checkpoint.safetensors: the FedBuff schedule's word %zu is not 16-bit limbs", j);
            }
            w[j] |= (uint64_t)x << (16 * q);
        }
    int rc = fv_fb_sched_load(c->vc.sched, w, nw, e);
    free(w);
    if (rc != 0) return fv_err_prefix(e, "checkpoint.safetensors: ");
    for (size_t i = 0; i < k; i++) {
        c->vc.pend_state[i] = (int)in[i];
        c->vc.pend_client[i] = (int)in[k + i];
        memcpy(c->vc.pending[i], in + 2 * k + i * np, np * sizeof(float));
    }
    return 0;
}

static const float *server_state(fv_coord *c) {
    size_t no = fv_sopt_state_len(c->model.sopt);
    if (no) memcpy(c->model.sstate, fv_sopt_state(c->model.sopt), no * sizeof(float));
    if (c->model.scaf)
        memcpy(c->model.sstate + no, fv_scaffold_c(c->model.scaf), fv_scaffold_len(c->model.scaf) * sizeof(float));
    if (c->vc.sched) async_state_save(c, c->model.sstate + c->model.sstate_len - async_state_len(c));
    return c->model.sstate;
}

/* FedBuff: train every update dispatched but not yet trained (all from the current model) as
 * one batch of tasks on the workers; an update a worker could not deliver is lost at its arrival.
 * Returns 0, or -1 with e set (the run stops). */
static int async_train(fv_coord *c, fv_err *e) {
    int n = 0;
    for (int k = 0; k < fv_config_concurrency(&c->cfg); k++)
        if (c->vc.pend_state[k] == PEND_UNTRAINED) {
            c->rd.slots[n] = (slot_t){.client = -1, .state = SLOT_QUEUED};
            c->vc.batch[n++] = k;
        }
    if (n == 0) return 0;
    c->rd.n = n;
    for (int s = 0; s < n; s++) c->rd.slots[s].client = c->vc.pend_client[c->vc.batch[s]];
    fv_agg_begin(c->model.agg, n, c->rd.round, c->model.net->params);
    if (gather_updates(c, e) != 0) return -1;
    for (int s = 0; s < n; s++)
        if (c->vc.pend_state[c->vc.batch[s]] == PEND_UNTRAINED) c->vc.pend_state[c->vc.batch[s]] = PEND_FAILED;
    c->vc.batches++;
    return 0;
}

/* Append client to the step's lost updates (a JSON array body). */
static void async_lost(fv_coord *c, int client) {
    size_t len = strlen(c->vc.lost);
    if (len + 16 < sizeof c->vc.lost)
        snprintf(c->vc.lost + len, sizeof c->vc.lost - len, "%s%d", len ? "," : "", client);
}

/* FedBuff server step r: handle the virtual clock's events (dispatches, arrivals into the buffer,
 * lost updates), training dispatched updates in batches when an arrival needs one, until
 * fl.buffer_size updates are buffered; then the server steps. Returns 0, or -1 with e set. */
static int async_step(fv_coord *c, int r, fv_err *e) {
    coord_vc *v = &c->vc;
    clear_round_stats(c, r);
    v->nbuf = v->dispatched = v->batches = 0;
    v->stale_sum = 0;
    v->stale_max = 0;
    v->lost[0] = 0;
    memset(v->sum, 0, c->model.n_params * sizeof(double));
    fv_sopt_begin(c->model.sopt); /* none: takes no step, but model_sound asks it */
    c->model.scaf_unsound = 0;
    while (v->nbuf < c->cfg.buffer_size) {
        fv_fb_event ev;
        if (fv_fb_sched_next(v->sched, &ev, e) != 0) return -1;
        if (ev.kind == FV_FB_DISPATCH) {
            v->dispatched++;
            v->pend_client[ev.slot] = ev.client;
            v->pend_state[ev.slot] = ev.fate == FV_VC_DONE ? PEND_UNTRAINED : PEND_LOST; /* never trained */
            continue;
        }
        if (v->pend_state[ev.slot] == PEND_UNTRAINED && async_train(c, e) != 0) return -1;
        if (ev.kind == FV_FB_LOST || v->pend_state[ev.slot] != PEND_TRAINED) {
            c->rd.st.dropped++;
            async_lost(c, ev.client);
        } else {
            const long st = fv_fb_sched_version(v->sched) - ev.version;
            fv_fedbuff_add(v->sum, v->pending[ev.slot], fv_fedbuff_weight(c->cfg.staleness, st), c->model.n_params);
            v->nbuf++;
            v->stale_sum += (double)st;
            if (st > v->stale_max) v->stale_max = st;
        }
        v->pend_state[ev.slot] = PEND_FREE;
    }
    /* the updates dispatched at this version train from the model before the step */
    return async_train(c, e);
}

/* FedBuff's server step after async_step (the model before it kept in model.prev, for a roll-back). */
static void async_apply(fv_coord *c, round_result *res) {
    double t = fv_now();
    memcpy(c->model.prev, c->model.net->params, c->model.n_params * sizeof(float));
    fv_fedbuff_apply(c->model.net->params, c->vc.sum, fv_config_server_lr(&c->cfg), c->cfg.buffer_size,
                     c->model.n_params);
    fv_fb_sched_step(c->vc.sched);
    fv_hash(c->model.hash, c->model.net->params, c->model.n_params * sizeof(float));
    work_timings(c, res, t);
}

/* Round r (or FedBuff's server step r) from sampling to checkpoint. Returns 0, or -1 with e set
 * (the run stops). */
static int run_round(fv_coord *c, int r, fv_err *e) {
    round_result res = {0};
    if (c->vc.sched) {
        if (async_step(c, r, e) != 0) return -1;
        async_apply(c, &res);
    } else {
        if (begin_round(c, r, e) != 0) return -1;
        if (c->model.sa && secagg_open(c, e) != 0) return -1;
        if (gather_updates(c, e) != 0) return -1;
        if (c->model.sa && c->rd.st.accepted > 0 && secagg_close(c, e) != 0) return -1;
        aggregate(c, &res);
    }
    evaluate_round(c, &res);
    if (!model_sound(c, &res)) {
        roll_back(c, &res);
        /* the clients' optimizer states of this round were trained for the discarded model */
        if (fv_store_client_state_discard(c->store, e) != 0) return -1;
    }
    /* the attack (not counted in the round's seconds): the workers are idle, heartbeats answered */
    char *attack = fv_attacker_round(c->attacker, r, attack_idle, c, attack_log, c);
    char *line = metrics_line(c, &res, attack);
    free(attack);
    int rc = fv_store_metrics_add(c->store, line, e);
    free(line);
    if (rc != 0) return -1;
    if (!res.rolled_back && c->model.scaf && commit_scaffold(c, r, e) != 0) return -1;
    if (!res.rolled_back && fv_store_checkpoint(c->store, r, c->model.net->params, c->model.n_params, server_state(c),
                                                c->model.sstate_len, c->config_hash, e) != 0)
        return -1;
    record_round(c, &res);
    report_round(c, &res);
    if (c->vc.on && !c->vc.sched) c->vc.now = c->vc.plan.end;
    return 0;
}

static void shutdown_workers(fv_coord *c, const char *reason) {
    for (int i = 0; i < c->wk.n; i++)
        if (c->wk.w[i].alive) {
            send_shutdown(c, &c->wk.w[i], reason);
            c->wk.w[i].alive = 0;
        }
}

static int wait_for_workers(fv_coord *c, fv_err *e) {
    double end = fv_now() + c->cfg.join_timeout;
    /* ready: joined and loaded (their first heartbeat follows the setup), so round 1's time is
     * the round's, not the workers' start-up */
    while (ready_workers(c) < c->cfg.workers && fv_now() < end && !c->ctl.abort) pump(c, POLL_MS);
    if (c->ctl.abort) return fv_err_set(e, "stopped before round 1: %.400s", c->ctl.why);
    int n = ready_workers(c);
    if (n == 0) return fv_err_set(e, "no worker joined within fl.join_timeout = %g s", c->cfg.join_timeout);
    if (n < c->cfg.workers)
        coord_log(c, "%d of %d workers joined within fl.join_timeout = %g s; starting with them", n, c->cfg.workers,
             c->cfg.join_timeout);
    return 0;
}

/* model.safetensors with its metadata (output.save_model), hh the parameter hash in hex. */
static int save_model(const fv_coord *c, const char *hh, fv_err *e) {
    char path[1200], rounds[16], seed[32];
    snprintf(rounds, sizeof rounds, "%d", c->cfg.rounds);
    snprintf(seed, sizeof seed, "%lld", (long long)c->cfg.seed);
    const char *meta[] = {"producer", "fedvim", "model", c->cfg.model, "dataset", c->cfg.dataset,
                          "rounds", rounds, "seed", seed, "params_hash", hh};
    snprintf(path, sizeof path, "%s/model.safetensors", c->dir);
    return fv_safetensors_save(path, c->model.net, meta, 6, e);
}

/* The summary JSON object (coordinator.h) of the completed run, or of a stopped one (stop_reason
 * not NULL: status "stopped" and the reason), hh the parameter hash in hex. Caller frees. */
static char *summary_json(const fv_coord *c, double seconds, const char *hh, const char *stop_reason) {
    double last_acc = NAN, last_m = NAN, best = NAN;
    int nlines = fv_store_metrics_count(c->store);
    /* final accuracies come from the last round (always evaluated) */
    if (c->hist.n == c->cfg.rounds) {
        last_acc = c->hist.acc[c->hist.n - 1];
        last_m = c->hist.mixed[c->hist.n - 1];
        for (int i = 0; i < c->hist.n; i++)
            if (isfinite(c->hist.acc[i]) && !(best >= c->hist.acc[i])) best = c->hist.acc[i];
    }
    fv_json j;
    fv_json_begin(&j);
    fv_json_str(&j, "name", c->cfg.name);
    fv_json_str(&j, "dir", c->dir);
    fv_json_str(&j, "status", stop_reason ? "stopped" : "complete");
    if (stop_reason) fv_json_str(&j, "stop_reason", stop_reason);
    fv_json_int(&j, "rounds", c->cfg.rounds);
    fv_json_int(&j, "rounds_this_run", c->cfg.rounds - c->start_round);
    fv_json_bool(&j, "resumed", c->start_round > 0);
    fv_json_num(&j, "test_accuracy", last_acc);
    fv_json_num(&j, "best_test_accuracy", best);
    if (c->cfg.vmix) {
        fv_json_num(&j, "test_accuracy_mixed", last_m);
        fv_json_num(&j, "vfe_clients", c->hist.vfe_w > 0 ? c->hist.vfe_sum / c->hist.vfe_w : NAN);
        fv_json_num(&j, "vfe_test", c->eval.vfe);
        fv_json_num(&j, "vfe_test_clean", c->eval.vfe_clean);
        fv_json_int(&j, "test_ws_min", c->eval.bounds.ws_min);
        fv_json_int(&j, "test_ws_max", c->eval.bounds.ws_max);
        fv_json_num(&j, "test_d_star", c->eval.bounds.d_star);
    }
    fv_json_str(&j, "model", c->cfg.model);
    fv_json_str(&j, "dataset", c->cfg.dataset);
    fv_json_int(&j, "n_params", (int64_t)c->model.n_params);
    fv_json_int(&j, "clients", c->cfg.clients);
    fv_json_int(&j, "clients_per_round", c->rd.m);
    fv_json_obj_begin(&j, "partition");
    fv_json_int(&j, "min_size", c->pstats.min_size);
    fv_json_int(&j, "median_size", c->pstats.median_size);
    fv_json_int(&j, "max_size", c->pstats.max_size);
    fv_json_num(&j, "mean_labels", c->pstats.mean_labels);
    fv_json_obj_end(&j);
    fv_json_int(&j, "dropped", c->hist.dropped);
    fv_json_int(&j, "rejected", c->hist.rejected);
    fv_json_int(&j, "diverged", c->hist.diverged);
    fv_json_int(&j, "rolled_back", c->hist.rolled_back);
    fv_json_int(&j, "bytes_up", (int64_t)c->hist.bytes_up);
    fv_json_int(&j, "bytes_down", (int64_t)c->hist.bytes_down);
    fv_json_num(&j, "seconds", seconds);
    fv_json_bool(&j, "security", c->link.security);
    if (c->cfg.dp) {
        fv_json_num(&j, "dp_clip", c->cfg.dp_clip);
        fv_json_num(&j, "dp_noise_multiplier", c->cfg.dp_noise);
        fv_json_num(&j, "dp_q", dp_q(c));
        fv_json_num(&j, "dp_delta", c->cfg.dp_delta);
        fv_json_num(&j, "dp_epsilon", fv_dp_epsilon(dp_q(c), c->cfg.dp_noise, c->cfg.rounds, c->cfg.dp_delta, NULL));
    }
    if (c->cfg.adv_kind != FV_ADV_NONE) {
        fv_json_obj_begin(&j, "adversary");
        fv_json_str(&j, "kind", fv_config_adv_kind_name(c->cfg.adv_kind));
        fv_json_int(&j, "malicious_clients", c->adv_n);
        if (c->eval.has_backdoor) fv_json_num(&j, "backdoor_success", c->hist.bd_final);
        if (c->eval.has_backdoor && c->cfg.vmix) fv_json_num(&j, "backdoor_success_mixed", c->hist.bd_final_m);
        fv_json_obj_end(&j);
    }
    fv_server_kd_json(&c->cfg, &c->kd, &j);
    fv_json_str(&j, "params_hash", hh);
    fv_json_int(&j, "metrics_lines", nlines);
    char *text = fv_strdup(fv_json_end(&j));
    fv_json_free(&j);
    return text;
}

/* After the last round: the model file and summary.json (also kept as c->summary); for a stopped
 * run (stop_reason not NULL) summary.json alone. */
static int write_final(fv_coord *c, double seconds, const char *stop_reason, fv_err *e) {
    uint8_t h[FV_HASH_BYTES];
    char hh[2 * FV_HASH_BYTES + 1];
    fv_hash(h, c->model.net->params, c->model.n_params * sizeof(float));
    fv_hex(hh, h, FV_HASH_BYTES);
    if (!stop_reason && c->cfg.save_model && save_model(c, hh, e) != 0) return -1;
    if (c->eval.has_backdoor) { /* the final model's, like test_accuracy */
        round_result fin;
        evaluate(c, &fin);
        c->hist.bd_final = fin.bd;
        c->hist.bd_final_m = fin.bd_m;
    }
    if (!stop_reason && c->kd.on && !c->kd.done) { /* the workers wait, answered, meanwhile */
        coord_log(c, "distilling the final model into a %s student on %d public images", c->cfg.kd_student,
                  c->kd.pub.n);
        if (fv_server_kd_run(&c->cfg, &c->kd, c->model.net, &c->eval.test, c->eval.has_mixed ? &c->eval.mixed : NULL,
                             c->eval.norm, c->dir, attack_idle, c, e) != 0)
            return -1;
        coord_log(c, "student %s: test accuracy %.4f (teacher %.4f), agreement %.4f", c->cfg.kd_student,
                  c->kd.test.student_acc, c->kd.test.teacher_acc, c->kd.test.agreement);
    }
    free(c->summary);
    c->summary = summary_json(c, seconds, hh, stop_reason);
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", c->dir);
    size_t l = strlen(c->summary);
    char *text = fv_malloc(l + 2);
    memcpy(text, c->summary, l);
    text[l] = '\n';
    int rc = fv_write_file_atomic(path, text, l + 1, e);
    free(text);
    return rc;
}

int fv_coord_run(fv_coord *c, fv_err *e) {
    c->hist.t_start = fv_now();
    int rc = 0;
    if (c->start_round >= c->cfg.rounds) {
        coord_log(c, "all %d rounds are already done", c->cfg.rounds);
    } else {
        rc = wait_for_workers(c, e);
        for (int r = c->start_round + 1; rc == 0 && r <= c->cfg.rounds; r++) rc = run_round(c, r, e);
    }
    if (rc == 0) rc = write_final(c, fv_now() - c->hist.t_start, NULL, e);
    if (rc != 0) coord_log(c, "%s", e->msg);
    if (rc != 0 && c->ctl.stopped) {
        fv_err e2 = {{0}};
        if (write_final(c, fv_now() - c->hist.t_start, c->ctl.why, &e2) != 0) coord_log(c, "%s", e2.msg);
    }
    shutdown_workers(c, rc == 0 ? "the experiment is complete" : "the experiment stopped");
    return rc;
}

/* ---- setup ---- */

static int setup_mixed_test(fv_coord *c, const char *key_path, fv_err *e) {
    uint8_t secret[FV_VMIX_KEY_BYTES];
    if (!key_path) return fv_err_set(e, "visualmixer is on but no key for mixing test images was given");
    if (fv_vmix_key_load(key_path, secret, e) != 0) return -1;
    fv_vmix_params p;
    double t0 = fv_now();
    if (fv_exp_vmix_params(&c->cfg, &c->eval.test, (uint64_t)c->cfg.seed ^ 0x74657374ull, c->threads, &p,
                           &c->eval.bounds, e) != 0)
        goto fail;
    c->eval.vp = p;
    fv_vmix_stats st;
    if (fv_vmix_dataset(&c->eval.mixed, NULL, &st, &c->eval.test, secret, FV_VMIX_DOMAIN_TEST, &p, c->threads, e) != 0)
        goto fail;
    c->eval.has_mixed = 1;
    c->eval.vfe = st.vfe_mean;
    fv_vmix_stats sb;
    if (c->eval.has_backdoor && fv_vmix_dataset(&c->eval.backdoor_mixed, NULL, &sb, &c->eval.backdoor, secret,
                                                FV_VMIX_DOMAIN_TEST, &p, c->threads, e) != 0)
        goto fail;
    /* the same figure on the clean images, for comparison */
    double sum = 0;
    size_t per = (size_t)c->eval.test.c * c->eval.test.h * c->eval.test.w;
    for (int i = 0; i < c->eval.test.n; i++)
        sum += fv_vfe_image_u8(c->eval.test.x + (size_t)i * per, c->eval.test.c, c->eval.test.h, c->eval.test.w,
                               c->cfg.vmix_block, c->cfg.vmix_lambda);
    c->eval.vfe_clean = c->eval.test.n ? sum / c->eval.test.n : NAN;
    coord_log(c, "mixed %d test images (WS %d..%d, d* %.4g%s, mean VFE %.3f; clean images %.3f) in %.1f s",
              c->eval.test.n, c->eval.bounds.ws_min, c->eval.bounds.ws_max, c->eval.bounds.d_star,
              c->eval.bounds.resolved ? ", conflict resolved" : "", st.vfe_mean, c->eval.vfe_clean, fv_now() - t0);
    sodium_memzero(secret, sizeof secret);
    return 0;
fail:
    sodium_memzero(secret, sizeof secret);
    return -1;
}

/* The data, the partition's sizes and statistics, the model and the aggregation rule. train and
 * part are the caller's (the attacker may need them), freed by the caller. */
static int setup_model(fv_coord *c, const char *data_dir, fv_dataset *train, fv_partition *part, fv_err *e) {
    if (fv_exp_load_data(&c->cfg, data_dir, 1, train, e) != 0 ||
        fv_exp_load_data(&c->cfg, data_dir, 0, &c->eval.test, e) != 0)
        return -1;
    c->eval.norm = fv_exp_norm(&c->cfg);
    if (fv_exp_partition(&c->cfg, train, part, e) != 0) return -1;
    c->client_n = fv_malloc((size_t)c->cfg.clients * sizeof(int));
    for (int i = 0; i < c->cfg.clients; i++) c->client_n[i] = fv_partition_size(part, i);
    c->pstats = fv_partition_describe(part, train->y, train->classes);
    c->model.net = fv_exp_model(&c->cfg, train, fv_attack_model_classes(c->cfg.attack_kind, train->classes), e);
    if (!c->model.net) return -1;
    c->model.n_params = c->model.net->n_params;
    fv_opt_cfg oc = fv_exp_opt_cfg(&c->cfg);
    c->model.opt_len = fv_opt_state_len(&oc, c->model.net->n_train);
    c->rd.m = fv_config_clients_per_round(&c->cfg);
    const int conc = c->cfg.mode == FV_MODE_ASYNC ? fv_config_concurrency(&c->cfg) : 0;
    const int nslots = conc > c->rd.m ? conc : c->rd.m;
    c->rd.slots = fv_calloc((size_t)nslots, sizeof *c->rd.slots);
    fv_agg_rule rule = fv_agg_rule_from_config(&c->cfg, c->model.net->n_train);
    c->model.agg = fv_agg_new(c->model.n_params, &rule);
    fv_sopt_rule srule = fv_sopt_rule_from_config(&c->cfg, c->model.net->n_train);
    c->model.sopt = fv_sopt_new(&srule);
    c->model.sstate_len = fv_sopt_state_len(c->model.sopt);
    if (c->cfg.aggregator == FV_AGGREGATOR_SCAFFOLD) {
        c->model.scaf = fv_scaffold_new(c->model.net->n_train, c->cfg.clients);
        c->model.ctl = fv_malloc(2 * c->model.net->n_train * sizeof(float));
        c->model.sstate_len += c->model.net->n_train;
        coord_log(c, "SCAFFOLD: control variates over %zu trainable floats (c in the checkpoint, each c_i in "
                  "client_state/), global step size %g", c->model.net->n_train, rule.server_lr);
    }
    c->model.sstate = fv_malloc((c->model.sstate_len ? c->model.sstate_len : 1) * sizeof(float));
    if (c->cfg.sa) {
        c->model.sa = fv_sa_server_new(c->model.n_params + FV_SA_STATS);
        c->model.sa_io = fv_malloc(2 * (c->model.n_params + FV_SA_STATS) * sizeof(float));
        coord_log(c, "secure aggregation: %s, threshold %g of each neighbourhood, deltas clamped to +-%g in 32-bit "
                  "fixed point; the server sees only each round's sum",
                  c->cfg.sa_neighbours ? "SecAgg+ neighbourhoods" : "every pair of clients masks",
                  c->cfg.sa_threshold, c->cfg.sa_clip);
    }
    c->model.prev = fv_malloc(c->model.n_params * sizeof(float));
    c->model.scratch = fv_malloc(c->model.n_params * sizeof(float));
    c->adv_mask = fv_malloc((size_t)c->cfg.clients);
    c->adv_n = fv_adv_mask(&c->cfg, c->adv_mask);
    if (c->cfg.adv_kind == FV_ADV_BACKDOOR) {
        if (fv_adv_backdoor_set(&c->cfg, &c->eval.test, &c->eval.backdoor, e) != 0) return -1;
        c->eval.has_backdoor = 1;
    }
    if (c->adv_n > 0) {
        char ids[256] = "";
        int len = 0;
        for (int i = 0; i < c->cfg.clients && len < (int)sizeof ids - 16; i++)
            if (c->adv_mask[i]) len += snprintf(ids + len, sizeof ids - (size_t)len, "%s%d", len ? "," : "", i);
        coord_log(c, "[adversary] %s: %d malicious clients (%s%s), simulated by the workers; measured here only%s",
                  fv_config_adv_kind_name(c->cfg.adv_kind), c->adv_n, ids, len >= (int)sizeof ids - 16 ? ",..." : "",
                  c->eval.has_backdoor ? " (backdoor success on triggered test images)" : "");
    }
    if (c->cfg.dp)
        coord_log(c, "DP-FedAvg: clip %g, noise multiplier %g (noise std %g per coordinate), q = %d/%d; %zu "
                  "batch-norm buffer floats averaged without noise", c->cfg.dp_clip, c->cfg.dp_noise,
                  fv_agg_dp_noise_std(&rule, c->rd.m), c->rd.m, c->cfg.clients,
                  c->model.n_params - c->model.net->n_train);
    if (c->cfg.server_opt != FV_SOPT_NONE)
        coord_log(c, "server optimizer %s: lr %g over %zu trainable floats (batch-norm buffers take the aggregate)",
                  fv_config_server_opt_name(c->cfg.server_opt), srule.lr, srule.n_train);
    return 0;
}

/* With [fl] trace: the trace (its errors name the file and line), the virtual clock's plan and,
 * with fl.mode = async, FedBuff's schedule and buffers (checkpointed with the updates in flight as
 * part of the server state: async_state_save). Returns 0, or -1 with e set. */
static int setup_vclock(fv_coord *c, fv_err *e) {
    if (!c->cfg.trace[0]) return 0;
    if (fv_trace_load(&c->vc.trace, c->cfg.trace, c->cfg.clients, e) != 0) return -1;
    c->vc.on = 1;
    fv_vc_round_init(&c->vc.plan, c->rd.m);
    if (c->cfg.mode != FV_MODE_ASYNC) return 0;
    const size_t k = (size_t)fv_config_concurrency(&c->cfg);
    c->vc.sched = fv_fb_sched_new(&c->cfg, &c->vc.trace, c->client_n);
    c->vc.pending = fv_calloc(k, sizeof(float *));
    for (size_t i = 0; i < k; i++) c->vc.pending[i] = fv_malloc(c->model.n_params * sizeof(float));
    c->vc.pend_state = fv_calloc(k, sizeof(int));
    c->vc.pend_client = fv_calloc(k, sizeof(int));
    c->vc.batch = fv_calloc(k, sizeof(int));
    c->vc.sum = fv_malloc(c->model.n_params * sizeof(double));
    /* the checkpoint's server state carries the updates in flight and the schedule (async_state_save) */
    c->model.sstate_len += async_state_len(c);
    c->model.sstate = fv_realloc(c->model.sstate, c->model.sstate_len * sizeof(float));
    coord_log(c, "FedBuff: buffer %d, concurrency %d, staleness %s, server lr %g, on the virtual clock of %s",
              c->cfg.buffer_size, fv_config_concurrency(&c->cfg), fv_config_staleness_name(c->cfg.staleness),
              fv_config_server_lr(&c->cfg), c->cfg.trace);
    return 0;
}

/* Resuming: the checkpoint's model and round, the metrics of the rounds before it and, from them,
 * the history (accuracies, the clients' VFE). */
static int restore(fv_coord *c, fv_err *e) {
    int r = fv_store_resume(c->store, &c->start_round, c->model.net->params, c->model.n_params, c->model.sstate,
                            c->model.sstate_len, c->config_hash, e);
    if (r < 0) return -1;
    if (r == 0) { /* the server state: the optimizer's, then SCAFFOLD's c */
        size_t no = fv_sopt_state_len(c->model.sopt);
        if (no) memcpy(fv_sopt_state(c->model.sopt), c->model.sstate, no * sizeof(float));
        if (c->model.scaf)
            memcpy(fv_scaffold_c(c->model.scaf), c->model.sstate + no, fv_scaffold_len(c->model.scaf) * sizeof(float));
        if (fv_sopt_state_check(c->model.sopt, "checkpoint.safetensors", e) != 0 ||
            (c->model.scaf && fv_scaffold_check(c->model.scaf, "checkpoint.safetensors", e) != 0))
            return -1;
        /* FedBuff: the updates in flight and the schedule continue where the checkpoint left them */
        if (c->vc.sched && async_state_load(c, c->model.sstate + c->model.sstate_len - async_state_len(c), e) != 0)
            return -1;
    }
    if (fv_store_metrics_load(c->store, c->start_round, e) != 0) return -1;
    /* the synchronous virtual clock is a pure function of the trace, the config and the round: replayed */
    for (int i = 1; c->vc.on && !c->vc.sched && i <= c->start_round; i++) {
        if (fv_vclock_plan(&c->cfg, &c->vc.trace, c->client_n, i, c->vc.now, &c->vc.plan, e) != 0) return -1;
        c->vc.now = c->vc.plan.end;
    }
    c->hist.acc = fv_malloc((size_t)(c->start_round + 1) * sizeof(double));
    c->hist.mixed = fv_malloc((size_t)(c->start_round + 1) * sizeof(double));
    for (int i = 0; i < c->start_round; i++) {
        const char *l = fv_store_metrics_line(c->store, i);
        const char *a = strstr(l, "\"test_accuracy\":"), *am = strstr(l, "\"test_accuracy_mixed\":");
        c->hist.acc[i] = a && strncmp(a + 16, "null", 4) ? strtod(a + 16, NULL) : NAN;
        c->hist.mixed[i] = am && strncmp(am + 22, "null", 4) ? strtod(am + 22, NULL) : NAN;
        const char *v = strstr(l, "\"vfe_clients\":");
        const char *ns = strstr(l, "\"samples\":");
        if (v && ns && strncmp(v + 14, "null", 4)) {
            double n = strtod(ns + 10, NULL);
            c->hist.vfe_sum += n * strtod(v + 14, NULL);
            c->hist.vfe_w += n;
        }
    }
    c->hist.n = c->start_round;
    if (r == 0) coord_log(c, "resuming after round %d of %d", c->start_round, c->cfg.rounds);
    else coord_log(c, "no completed round to resume from: starting at round 1");
    return 0;
}

/* The receive limits, the ZMQ context, the ZAP handler (security on) and the bound socket. */
static int setup_link(fv_coord *c, const fv_coord_opts *o, fv_err *e) {
    /* receive limits: the largest frame is the model or the optimizer state */
    c->link.lim.max_header = FV_WIRE_MAX_HEADER;
    c->link.lim.max_count = c->model.n_params > c->model.opt_len ? c->model.n_params : c->model.opt_len;
    if (c->cfg.sa && c->link.lim.max_count < c->model.n_params + FV_SA_STATS) /* a masked input's words */
        c->link.lim.max_count = c->model.n_params + FV_SA_STATS;
    size_t max_part = c->link.lim.max_count * sizeof(float) + 4096;
    c->link.zctx = zmq_ctx_new();
    if (c->link.security) {
        for (int i = 0; i < o->allow->n; i++) fv_allowlist_add(&c->link.allow, &o->allow->ids[i], o->allow->labels[i]);
        c->link.zap = fv_zap_start(c->link.zctx, &c->link.allow, zap_log, c, e);
        if (!c->link.zap) return -1;
    } else {
        coord_log(c, "WARNING: security.enabled = false: no encryption, no authentication, unsigned updates");
    }
    c->link.sock = fv_socket_server(c->link.zctx, o->bind, c->link.security ? o->id : NULL, max_part,
                                    c->link.endpoint, sizeof c->link.endpoint, e);
    if (!c->link.sock) return -1;
    c->link.watch = fv_conn_watch_start(c->link.zctx, c->link.sock, zap_log, c, e);
    if (!c->link.watch) return -1;
    char sec[64];
    if (c->link.security) snprintf(sec, sizeof sec, "CURVE, allow-list of %d keys", c->link.allow.n);
    else snprintf(sec, sizeof sec, "no security");
    coord_log(c, "listening on %s (%s); %d clients, %d per round, model %s with %zu parameters", c->link.endpoint,
              sec, c->cfg.clients, c->rd.m, c->cfg.model, c->model.n_params);
    return 0;
}

fv_coord *fv_coord_new(const fv_coord_opts *o, fv_err *e) {
    fv_coord *c = fv_calloc(1, sizeof *c);
    /* the training set and the partition stay until setup ends only when an attack needs them */
    fv_dataset train = {0};
    fv_partition part = {0};
    pthread_mutex_init(&c->log.mu, NULL);
    c->cfg = *o->cfg;
    c->config_text = fv_strdup(o->config_text);
    fv_hash(c->config_hash, c->config_text, strlen(c->config_text));
    snprintf(c->dir, sizeof c->dir, "%s", o->dir);
    c->resume = o->resume;
    c->log.quiet = o->quiet;
    c->threads = o->threads > 0 ? o->threads : 1;
    c->link.security = c->cfg.security;
    FV_ASSERT(!c->link.security || (o->id && o->allow));
    fv_random_bytes(&c->link.session, sizeof c->link.session);
    char path[1200];
    snprintf(path, sizeof path, "%s/coordinator.log", c->dir);
    c->log.f = fopen(path, "a");
    if (!c->log.f) {
        fv_err_set(e, "cannot open %s for writing", path);
        goto fail;
    }
    fv_set_threads(c->threads);
    if (setup_model(c, o->data_dir, &train, &part, e) != 0) goto fail;
    if (setup_vclock(c, e) != 0) goto fail;
    c->store = fv_store_open(c->dir, c->cfg.clients, e);
    if (!c->store) goto fail;
    if (c->resume && restore(c, e) != 0) goto fail;
    fv_hash(c->model.hash, c->model.net->params, c->model.n_params * sizeof(float));
    if (c->cfg.vmix && setup_mixed_test(c, o->eval_key, e) != 0) goto fail;
    if (c->cfg.attack_kind != FV_ATTACK_NONE) {
        fv_attacker_opts ao = {&c->cfg, c->dir, o->data_dir, c->resume, c->start_round, &train, &part, &c->eval.test,
                               c->eval.norm, c->cfg.vmix ? &c->eval.vp : NULL, c->model.n_params, c->threads,
                               o->client_keys};
        if (!(c->attacker = fv_attacker_new(&ao, e))) goto fail;
    }
    fv_dataset_free(&train);
    fv_partition_free(&part);
    if (fv_server_kd_prepare(&c->cfg, o->data_dir, &c->eval.test, &c->kd, e) != 0) goto fail;
    if (setup_link(c, o, e) != 0) goto fail;
    return c;
fail:
    fv_dataset_free(&train);
    fv_partition_free(&part);
    fv_coord_destroy(&c);
    return NULL;
}

const char *fv_coord_endpoint(const fv_coord *c) { return c->link.endpoint; }

void fv_coord_set_stop(fv_coord *c, int (*should_stop)(void *ctx, char *why, size_t cap), void *ctx) {
    c->ctl.should_stop = should_stop;
    c->ctl.ctx = ctx;
}
const char *fv_coord_summary(const fv_coord *c) { return c->summary; }

void fv_coord_history(const fv_coord *c, const double **acc, const double **acc_mixed, int *n) {
    *acc = c->hist.acc;
    *acc_mixed = c->hist.mixed;
    *n = c->hist.n;
}

void fv_coord_vfe(const fv_coord *c, double *clients, double *test, double *test_clean) {
    *clients = c->cfg.vmix && c->hist.vfe_w > 0 ? c->hist.vfe_sum / c->hist.vfe_w : NAN;
    *test = c->eval.has_mixed ? c->eval.vfe : NAN;
    *test_clean = c->eval.has_mixed ? c->eval.vfe_clean : NAN;
}

void fv_coord_worker_exited(fv_coord *c, long pid) {
    for (int i = 0; i < c->wk.n; i++)
        if (c->wk.w[i].alive && c->wk.w[i].pid == pid) mark_dead(c, i, "its process exited");
}

void fv_coord_destroy(fv_coord **cp) {
    if (!cp || !*cp) return;
    fv_coord *c = *cp;
    fv_conn_watch_stop(&c->link.watch);
    if (c->link.sock) zmq_close(c->link.sock);
    fv_zap_stop(&c->link.zap);
    if (c->link.zctx) zmq_ctx_term(c->link.zctx);
    fv_allowlist_free(&c->link.allow);
    fv_store_close(&c->store);
    fv_agg_destroy(&c->model.agg);
    fv_sopt_destroy(&c->model.sopt);
    fv_scaffold_destroy(&c->model.scaf);
    fv_sa_server_free(&c->model.sa);
    free(c->model.sa_io);
    free(c->model.ctl);
    free(c->model.sstate);
    fv_attacker_destroy(&c->attacker);
    fv_server_kd_free(&c->kd);
    fv_net_destroy(&c->model.net);
    free(c->model.prev);
    free(c->model.scratch);
    fv_dataset_free(&c->eval.test);
    fv_dataset_free(&c->eval.mixed);
    fv_dataset_free(&c->eval.backdoor);
    fv_dataset_free(&c->eval.backdoor_mixed);
    fv_trace_free(&c->vc.trace);
    fv_vc_round_free(&c->vc.plan);
    fv_fb_sched_free(&c->vc.sched);
    for (int i = 0; c->vc.pending && i < fv_config_concurrency(&c->cfg); i++) free(c->vc.pending[i]);
    free(c->vc.pending);
    free(c->vc.pend_state);
    free(c->vc.pend_client);
    free(c->vc.batch);
    free(c->vc.sum);
    free(c->adv_mask);
    free(c->client_n);
    free(c->rd.slots);
    free(c->wk.w);
    free(c->wk.tasks);
    free(c->hist.acc);
    free(c->hist.mixed);
    free(c->summary);
    free(c->config_text);
    if (c->log.f) fclose(c->log.f);
    pthread_mutex_destroy(&c->log.mu);
    free(c);
    *cp = NULL;
}
