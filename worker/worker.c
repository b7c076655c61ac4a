/* worker.c: see worker.h. */
#include "worker.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "attack_api.h"
#include "fl/adversary.h"
#include "fl/config.h"
#include "cuda/net.h"
#include "data/data.h"
#include "fl/aggregate.h"
#include "fl/experiment.h"
#include "fl/scaffold.h"
#include "nn/layers.h"
#include "nn/net.h"
#include "nn/trainer.h"
#include "fl/transport.h"
#include "vmix/vmix.h"
#include "vmix/vmix_key.h"
#include "fl/wire.h"
#include "fv_thread.h"
#include "secagg_client.h"


typedef struct {
    fv_dataset mixed; /* the client's mixed shard (x, y) */
    int ready;
    double vfe;
    int ws_min, ws_max;
} client_cache;

typedef struct worker worker;

/* A task that passed accept_task. */
typedef struct {
    const Fedvim__Task *t;
    int client;
    int n;                  /* the client's images (its partition) */
    const float *opt_state; /* the client's optimizer state the task brought; NULL: a fresh one */
    const float *control;   /* SCAFFOLD: c then c_i (2 n_train floats) the task brought; else NULL */
} task_req;

/* What the client trains on: d[idx[0..n)] (idx NULL: all of d). */
typedef struct {
    const fv_dataset *d;
    const int *idx;
    int n;
    fv_dataset own;     /* gan_active: the shard plus G's samples (the caller frees it) */
    double mix_seconds; /* VisualMixer's offline mixing, when this task paid for it */
} task_set;

typedef struct {
    fv_epoch_stats es; /* the last local epoch's */
    double train_seconds;
    int64_t opt_steps; /* the optimizer's step count after training (with want_opt_state) */
    int control;       /* SCAFFOLD: the slot's control + n_train holds the client's control delta dc_i */
} task_result;

/* A training slot ([fl] worker_slots): its own model copy, trainer (on the worker's device: on a
 * GPU each trainer has its own stream) and shard, the buffers one task writes, and the task it
 * holds. With one slot, tasks run on the main thread (heartbeats from the training loop); with
 * more, each slot runs its task on its own pool thread while the main thread keeps the
 * connection. A slot thread touches only its slot, the read-only experiment (data, partition,
 * config) and the mixing cache under cache_mu; the main thread reads the slot after reaping it. */
typedef struct {
    worker *w;
    fv_net *net;              /* its params carry the task's update out */
    fv_trainer *tr;
    fv_trainer_shard *shard;
    float *global;            /* n_params: the model this slot's task starts from */
    float *opt_state;         /* opt_len floats: the optimizer state an update carries (NULL when 0) */
    float *control;           /* SCAFFOLD: 2 n_train floats, the task's correction c - c_i then the
                               * update's control delta dc_i (fl/scaffold.h); else NULL */
    fv_wire_msg m;            /* the task's message (slot threads: held until the answer is sent) */
    task_req rq;
    task_set set;
    task_result res;
    uint32_t code;            /* the error code to answer with when the task fails */
    fv_err e;
    long bad;                 /* after slot_seal: index of a non-finite value (the client diverged), or -1 */
    fv_wire_frame fr[FV_WIRE_MAX_FRAMES]; /* the packed update (pack_update): frames, */
    int nf;
    uint8_t *bb;              /* its signed body (NULL: nothing packed) */
    size_t bl;
    uint8_t sig[FV_SIG_BYTES];
} wslot;

struct worker {
    fv_worker_opts o;
    char name[96];
    void *zctx, *sock, *mon;
    fv_wire_limits lim;
    double last_heard, last_hb;
    double hb_interval, peer_timeout;
    uint64_t current_task;
    int joined;
    double join_sent; /* when the last join went out (a coordinator may ask more than once) */

    fv_config cfg;
    uint64_t session;
    fv_dataset train;
    fv_partition part;
    fv_norm norm;
    size_t n_params, n_train, opt_len; /* the model's sizes and its optimizer state's */
    wslot *slot;           /* nslots training slots, made at the welcome (the trainers on the CPU or
                              on the --device) */
    int nslots;
    fv_pool *pool;         /* nslots > 1: the slots' threads; else NULL (tasks on this thread) */
    fv_wire_msg *queue;    /* nslots > 1: tasks received, not yet given a slot (a ring of qcap) */
    int qhead, qlen, qcap;
    long tasks_run;        /* tasks trained since the welcome, and the most slots busy at once */
    int busy_peak;
    pthread_mutex_t cache_mu; /* the mixing cache, shared by the slot threads */
    float *global;         /* the model of the last task accepted (a slot copies it) */
    uint8_t global_hash[FV_HASH_BYTES];
    int have_global;
    uint8_t master[FV_VMIX_KEY_BYTES];
    int have_master;
    client_cache *cache;
    uint8_t *adv_mask;     /* fl.clients flags: the clients [adversary] makes malicious */
    fv_sa_worker *sa;      /* [secagg] enabled: the round's client secrets (secagg_client.h); else NULL */
    uint32_t *sa_y;        /* [secagg]: n_params + FV_SA_STATS words, a client's masked input */
};

static void wlog(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(worker *w, const char *fmt, ...) {
    if (w->o.quiet) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char ts[16];
    strftime(ts, sizeof ts, "%H:%M:%S", &tm);
    fprintf(stderr, "%s worker %s: %s\n", ts, w->name, line);
}

static int send_env(worker *w, Fedvim__Envelope *env, const fv_wire_frame *f, int nf, fv_err *e) {
    return fv_wire_send(w->sock, NULL, 0, env, f, nf, NULL, e);
}

static void send_heartbeat(worker *w) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Heartbeat hb = FEDVIM__HEARTBEAT__INIT;
    hb.busy = w->current_task != 0;
    hb.task_id = w->current_task;
    env.body_case = FEDVIM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    fv_err e;
    if (send_env(w, &env, NULL, 0, &e) != 0) wlog(w, "heartbeat not sent: %s", e.msg);
    w->last_hb = fv_now();
}

static void send_error(worker *w, uint32_t code, uint64_t task, const char *msg) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Error er = FEDVIM__ERROR__INIT;
    er.code = code;
    er.task_id = task;
    er.message = (char *)msg;
    env.body_case = FEDVIM__ENVELOPE__BODY_ERROR;
    env.error = &er;
    fv_err e;
    if (send_env(w, &env, NULL, 0, &e) != 0) wlog(w, "error report not sent: %s", e.msg);
}

static int send_join(worker *w, fv_err *e) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Join j = FEDVIM__JOIN__INIT;
    static const uint8_t zero[FV_SIGN_PK_BYTES];
    j.worker_name = w->name;
    j.pid = (uint32_t)getpid();
    j.sign_public_key = (ProtobufCBinaryData){FV_SIGN_PK_BYTES, (uint8_t *)(w->o.id ? w->o.id->pub.sign_pk : zero)};
    j.threads = (uint32_t)(w->o.threads > 0 ? w->o.threads : 0);
    env.body_case = FEDVIM__ENVELOPE__BODY_JOIN;
    env.join = &j;
    w->join_sent = fv_now();
    return send_env(w, &env, NULL, 0, e);
}

/* Heartbeats while a client trains (called after every batch). */
static void progress(void *ctx, long done, long total, double loss) {
    (void)done;
    (void)total;
    (void)loss;
    worker *w = ctx;
    if (fv_now() - w->last_hb >= w->hb_interval) send_heartbeat(w);
}

/* ---- the experiment ---- */

/* Free slot s's model, trainer and buffers (the task it held is closed by the caller). */
static void slot_free(wslot *s) {
    fv_trainer_shard_destroy(&s->shard);
    fv_trainer_destroy(&s->tr);
    fv_net_destroy(&s->net);
    free(s->global);
    free(s->opt_state);
    free(s->control);
    s->global = s->opt_state = s->control = NULL;
}

static void free_experiment(worker *w) {
    if (w->pool)
        wlog(w, "%ld tasks trained on %d slots, at most %d at once", w->tasks_run, w->nslots, w->busy_peak);
    w->tasks_run = w->busy_peak = 0;
    fv_pool_destroy(&w->pool); /* waits for tasks still training: their answers are dropped */
    for (int i = 0; w->slot && i < w->nslots; i++) {
        if (w->slot[i].m.env) fv_wire_msg_close(&w->slot[i].m);
        fv_dataset_free(&w->slot[i].set.own);
        free(w->slot[i].bb); /* packed, never sent */
        w->slot[i].bb = NULL;
        slot_free(&w->slot[i]);
    }
    free(w->slot);
    w->slot = NULL;
    w->nslots = 0;
    for (; w->qlen > 0; w->qlen--, w->qhead = (w->qhead + 1) % w->qcap) fv_wire_msg_close(&w->queue[w->qhead]);
    free(w->queue);
    w->queue = NULL;
    w->qhead = w->qcap = 0;
    if (w->cache) {
        for (int i = 0; i < w->cfg.clients; i++) fv_dataset_free(&w->cache[i].mixed);
        free(w->cache);
        w->cache = NULL;
    }
    fv_dataset_free(&w->train);
    fv_partition_free(&w->part);
    free(w->global);
    w->global = NULL;
    w->have_global = 0;
    free(w->adv_mask);
    w->adv_mask = NULL;
    fv_sa_worker_free(&w->sa);
    free(w->sa_y);
    w->sa_y = NULL;
}

static int setup_experiment(worker *w, const Fedvim__Welcome *wel, fv_err *e) {
    free_experiment(w);
    uint8_t h[FV_HASH_BYTES];
    size_t len = strlen(wel->config_ini);
    fv_hash(h, wel->config_ini, len);
    if (!fv_ct_equal(h, wel->config_hash.data, FV_HASH_BYTES))
        return fv_err_set(e, "the config in the welcome does not match its hash");
    fv_config_defaults(&w->cfg);
    if (fv_config_parse(&w->cfg, "welcome config", wel->config_ini, len, e) != 0 || fv_config_check(&w->cfg, e) != 0)
        return -1;
    w->session = wel->session;
    w->hb_interval = wel->heartbeat_interval;
    w->peer_timeout = wel->peer_timeout;
    int threads = w->o.threads > 0 ? w->o.threads : w->cfg.threads;
    fv_set_threads(threads);
    if (fv_exp_load_data(&w->cfg, w->o.data_dir, 1, &w->train, e) != 0) return -1;
    if (fv_exp_partition(&w->cfg, &w->train, &w->part, e) != 0) return -1;
    if (fv_adv_check_data(&w->cfg, &w->train, e) != 0) return -1;
    w->adv_mask = fv_malloc((size_t)w->cfg.clients);
    fv_adv_mask(&w->cfg, w->adv_mask);
    w->norm = fv_exp_norm(&w->cfg);
    /* parameters, gradients and optimizer state stay with each slot's trainer (on the device,
     * with --device cuda) for a whole task; the update vector comes back once (docs/cuda.md,
     * "Wiring the worker") */
    fv_trainer_cfg tc = {.device = -1, .max_batch = w->cfg.batch_size, .opt = fv_exp_opt_cfg(&w->cfg),
                         .norm = w->norm, .tf32 = w->cfg.tf32};
    if (w->o.device && fv_device_parse(w->o.device, &tc.device, e) != 0) return -1;
    w->nslots = w->cfg.worker_slots;
    w->slot = fv_calloc((size_t)w->nslots, sizeof *w->slot);
    for (int i = 0; i < w->nslots; i++) {
        wslot *s = &w->slot[i];
        s->w = w;
        s->net = fv_exp_model(&w->cfg, &w->train, fv_attack_model_classes(w->cfg.attack_kind, w->train.classes), e);
        if (!s->net) return -1;
        if (s->net->n_params != wel->n_params)
            return fv_err_set(e, "this worker builds %s with %zu parameters, the coordinator's has %llu (different "
                              "fedvim versions?)", w->cfg.model, s->net->n_params, (unsigned long long)wel->n_params);
        s->tr = fv_trainer_new(s->net, &tc, e);
        if (!s->tr) {
            if (tc.device >= 0) fv_err_prefix(e, "--device %s: ", w->o.device);
            return w->nslots > 1 ? fv_err_prefix(e, "[fl] worker_slots, slot %d of %d: ", i + 1, w->nslots) : -1;
        }
        s->shard = fv_trainer_shard_new(s->tr);
        w->n_params = s->net->n_params;
        w->n_train = s->net->n_train;
        w->opt_len = fv_trainer_opt_state_len(s->tr);
        s->opt_state = w->opt_len ? fv_malloc(w->opt_len * sizeof(float)) : NULL;
        s->global = fv_malloc(w->n_params * sizeof(float));
        if (w->cfg.aggregator == FV_AGGREGATOR_SCAFFOLD) s->control = fv_malloc(2 * w->n_train * sizeof(float));
    }
    w->global = fv_malloc(w->n_params * sizeof(float));
    size_t biggest = w->n_params > w->opt_len ? w->n_params : w->opt_len;
    if (w->cfg.aggregator == FV_AGGREGATOR_SCAFFOLD && 2 * w->n_train > biggest)
        biggest = 2 * w->n_train; /* a task's c and c_i */
    w->lim.max_count = biggest;
    if (w->nslots > 1) {
        /* the coordinator keeps at most fv_exp_worker_queue tasks here; the ring holds that many
         * and a few more (a task beyond it is answered with an error, never dropped silently) */
        w->qcap = fv_exp_worker_queue(&w->cfg) + 4;
        w->queue = fv_calloc((size_t)w->qcap, sizeof *w->queue);
        w->pool = fv_pool_new(w->nslots);
    }
    if (w->cfg.sa) {
        w->sa = fv_sa_worker_new();
        w->sa_y = fv_malloc((w->n_params + FV_SA_STATS) * sizeof(uint32_t));
    }
    if (fv_config_client_keyed(&w->cfg)) {
        if (!w->have_master)
            return fv_err_set(e, "%s is on but this worker has no client key file (--client-keys)",
                              w->cfg.vmix ? "visualmixer" : "obfuscation");
        w->cache = fv_calloc((size_t)w->cfg.clients, sizeof *w->cache);
    }
    return 0;
}

/* The client's mixed shard (VisualMixer) or obfuscated shard ([obfuscation]): made once, offline,
 * with the client's own key (and, mixing, its own bounds). */
static int ensure_mixed_locked(worker *w, int client, double *seconds, fv_err *e) {
    client_cache *cc = &w->cache[client];
    *seconds = 0;
    if (cc->ready) return 0;
    double t0 = fv_now();
    int n = fv_partition_size(&w->part, client);
    const int *idx = fv_partition_indices(&w->part, client);
    size_t per = (size_t)w->train.c * w->train.h * w->train.w;
    fv_dataset shard = w->train;
    shard.n = n;
    shard.x = fv_malloc((size_t)n * per);
    shard.y = fv_malloc((size_t)n);
    for (int i = 0; i < n; i++) {
        memcpy(shard.x + (size_t)i * per, w->train.x + (size_t)idx[i] * per, per);
        shard.y[i] = w->train.y[idx[i]];
    }
    if (w->adv_mask[client]) fv_adv_poison(&w->cfg, client, &shard); /* a malicious client poisons, then mixes */
    fv_exp_bounds b;
    fv_vmix_stats st;
    int threads = w->o.threads > 0 ? w->o.threads : w->cfg.threads;
    int rc = w->cfg.vmix ? fv_exp_client_mix(&w->cfg, &shard, client, w->master, threads, &cc->mixed, &st, &b, e)
                         : fv_exp_client_obfuscate(&w->cfg, &shard, client, w->master, &cc->mixed, e);
    fv_dataset_free(&shard);
    if (rc != 0) return -1;
    cc->ready = 1;
    if (w->cfg.vmix) {
        cc->vfe = st.vfe_mean;
        cc->ws_min = b.ws_min;
        cc->ws_max = b.ws_max;
    }
    *seconds = fv_now() - t0;
    return 0;
}

/* ensure_mixed_locked under the cache's mutex: slot threads may ask at once (one mixes, the
 * others wait; a client's shard, once ready, is only read, also by two tasks of the same client,
 * which a timed-out round can leave in flight together). */
static int ensure_mixed(worker *w, int client, double *seconds, fv_err *e) {
    pthread_mutex_lock(&w->cache_mu);
    const int rc = ensure_mixed_locked(w, client, seconds, e);
    pthread_mutex_unlock(&w->cache_mu);
    return rc;
}

/* ---- [attack] kind = gan_active: this worker trains the attacking client ---- */

typedef struct {
    const fv_attack_request *rq;
    int n_own, threads, rc, n;
    float *x;
    char *json;
    fv_err e;
} active_job;

static int active_job_run(void *arg) {
    active_job *j = arg;
    fv_set_threads(j->threads); /* OpenMP's thread count is per thread */
    return fv_attack_active_samples(j->rq, j->n_own, &j->x, &j->n, &j->json, &j->e);
}

/* The tick while G trains (fv_thread_run): a heartbeat whenever one is due. */
static void heartbeat_if_due(void *arg) {
    worker *w = arg;
    if (fv_now() - w->last_hb >= w->hb_interval) send_heartbeat(w);
}

/* The same on a slot thread, which must not touch the socket: the main thread heartbeats. */
static void no_tick(void *arg) { (void)arg; }

/* When client is the gan_active attacker and round one of its rounds: *out = the client's images
 * d[idx[0..n)] (idx NULL: d's first n) plus G's samples, trained against `global`, the model the
 * task brought, quantised to bytes and labelled with the fake class (the model's last output);
 * returns 1. Returns 0 when this is not an attacking task, -1 with e set when G fails. Heartbeats
 * go out while G trains. The coordinator replays the same G to judge it (attack_api.h). */
static int active_data(worker *w, const float *global, int client, int round, const fv_dataset *d, const int *idx,
                       int n, fv_dataset *out, fv_err *e) {
    const fv_config *c = &w->cfg;
    if (c->attack_kind != FV_ATTACK_GAN_ACTIVE || client != c->attack_client) return 0;
    int *rs = fv_malloc(sizeof(int) * (size_t)c->rounds);
    int nr = fv_attack_rounds(c, rs, c->rounds), in = 0;
    for (int i = 0; i < nr; i++) in |= rs[i] == round;
    free(rs);
    if (!in) return 0;
    fv_attack_request rq;
    memset(&rq, 0, sizeof rq);
    rq.attack = "gan_active";
    rq.settings = c->attack_settings;
    rq.model = c->model;
    rq.input = (fv_shape){w->train.c, w->train.h, w->train.w};
    rq.classes = fv_attack_model_classes(c->attack_kind, w->train.classes);
    rq.norm = w->norm;
    rq.upload = global;
    rq.n_params = w->n_params;
    rq.target = c->attack_target;
    rq.seed = fv_attack_seed((uint64_t)c->seed, round, client);
    active_job j = {.rq = &rq, .n_own = n, .threads = w->o.threads > 0 ? w->o.threads : c->threads};
    j.rc = fv_thread_run(active_job_run, &j, w->pool ? no_tick : heartbeat_if_due, w, 20);
    if (j.rc != 0) {
        *e = j.e;
        return fv_err_prefix(e, "gan_active, client %d: ", client);
    }
    size_t per = (size_t)d->c * d->h * d->w;
    *out = *d;
    out->n = n + j.n;
    out->classes = d->classes + 1;
    out->x = fv_malloc((size_t)out->n * per);
    out->y = fv_malloc((size_t)out->n);
    for (int i = 0; i < n; i++) {
        int k = idx ? idx[i] : i;
        memcpy(out->x + (size_t)i * per, d->x + (size_t)k * per, per);
        out->y[i] = d->y[k];
    }
    for (size_t i = 0; i < (size_t)j.n * per; i++) {
        float v = j.x[i] < 0 ? 0 : j.x[i] > 1 ? 1 : j.x[i];
        out->x[(size_t)n * per + i] = (uint8_t)lrintf(v * 255.0f);
    }
    for (int i = 0; i < j.n; i++) out->y[n + i] = (uint8_t)d->classes;
    wlog(w, "round %d: client %d (gan_active attacker) adds %d generated images of fake class %d: %s", round, client,
         j.n, d->classes, j.json);
    free(j.x);
    free(j.json);
    return 1;
}

/* ---- a task, step by step: accept, assemble the client's data, train, answer ---- */

/* Step 1: check a task against this worker's experiment (session, client, the model it names or
 * brings, the optimizer state's size, SCAFFOLD's control variates: present exactly when the run
 * uses them, 2 n_train finite floats; the client's sample count) and adopt the model it brings as
 * the global one. Returns 0 with *rq filled, or -1 after answering the coordinator with an error
 * (a task of another session is only logged). */
static int accept_task(worker *w, const fv_wire_msg *m, task_req *rq) {
    const Fedvim__Task *t = m->env->task;
    char msg[FV_ERR_MAX + 64];
    if (t->session != w->session) {
        wlog(w, "ignored a task of another session");
        return -1;
    }
    if (t->client_id >= (uint32_t)w->cfg.clients) {
        snprintf(msg, sizeof msg, "client %u does not exist (%d clients)", t->client_id, w->cfg.clients);
        send_error(w, FV_WIRE_ERR_TASK_FAILED, t->task_id, msg);
        return -1;
    }
    const float *pf = NULL, *of = NULL, *cf = NULL;
    size_t pn = 0, on = 0, cn = 0;
    for (int i = 0; i < m->nframes; i++) {
        if (m->kind[i] == FEDVIM__FRAME_KIND__FRAME_PARAMS) pf = m->frame[i], pn = m->count[i];
        else if (m->kind[i] == FEDVIM__FRAME_KIND__FRAME_CONTROL) cf = m->frame[i], cn = m->count[i];
        else of = m->frame[i], on = m->count[i];
    }
    const size_t want_cn = w->cfg.aggregator == FV_AGGREGATOR_SCAFFOLD ? 2 * w->n_train : 0;
    long badc = -1;
    if (cn != want_cn || (cf && (badc = fv_wire_first_nonfinite(cf, cn)) >= 0)) {
        if (badc >= 0)
            snprintf(msg, sizeof msg, "SCAFFOLD control variates hold a non-finite value at index %ld", badc);
        else
            snprintf(msg, sizeof msg, "SCAFFOLD control variates of %zu floats, this run's [fl] aggregator needs %zu",
                     cn, want_cn);
        send_error(w, FV_WIRE_ERR_TASK_FAILED, t->task_id, msg);
        return -1;
    }
    if (cf && t->want_opt_state) { /* an update has room for one frame beside the parameters */
        send_error(w, FV_WIRE_ERR_TASK_FAILED, t->task_id, "a SCAFFOLD task cannot ask for the optimizer state");
        return -1;
    }
    size_t np = w->n_params;
    if (pf) {
        uint8_t h[FV_HASH_BYTES];
        fv_hash(h, pf, pn * sizeof(float));
        if (pn != np || !fv_ct_equal(h, t->model_hash.data, FV_HASH_BYTES)) {
            send_error(w, FV_WIRE_ERR_TASK_FAILED, t->task_id, "the attached model does not match its size or hash");
            return -1;
        }
        memcpy(w->global, pf, np * sizeof(float));
        memcpy(w->global_hash, h, FV_HASH_BYTES);
        w->have_global = 1;
    } else if (!w->have_global || !fv_ct_equal(w->global_hash, t->model_hash.data, FV_HASH_BYTES)) {
        send_error(w, FV_WIRE_ERR_NO_MODEL, t->task_id, "this worker does not hold the model the task names");
        return -1;
    }
    if (of && on != w->opt_len) {
        send_error(w, FV_WIRE_ERR_TASK_FAILED, t->task_id, "optimizer state of the wrong size");
        return -1;
    }
    const int client = (int)t->client_id;
    const int n = fv_partition_size(&w->part, client);
    if ((uint64_t)n != t->expected_samples) {
        snprintf(msg, sizeof msg, "client %d holds %d images here but %llu at the coordinator: the data differ "
                 "(data.dir, data set version)", client, n, (unsigned long long)t->expected_samples);
        send_error(w, FV_WIRE_ERR_CONFIG, t->task_id, msg);
        return -1;
    }
    *rq = (task_req){t, client, n, of, cf};
    return 0;
}

/* A malicious client's own copy of its images, poisoned ([adversary] label_flip, backdoor). */
static void poisoned_data(worker *w, int client, task_set *set) {
    size_t per = (size_t)w->train.c * w->train.h * w->train.w;
    fv_dataset *d = &set->own;
    *d = w->train;
    d->n = set->n;
    d->x = fv_malloc((size_t)d->n * per);
    d->y = fv_malloc((size_t)d->n);
    for (int i = 0; i < d->n; i++) {
        memcpy(d->x + (size_t)i * per, w->train.x + (size_t)set->idx[i] * per, per);
        d->y[i] = w->train.y[set->idx[i]];
    }
    fv_adv_poison(&w->cfg, client, d);
    set->d = d;
    set->idx = NULL;
}

/* Step 2: the client's training set: its partition of the training images (poisoned for a
 * malicious client of a data-poisoning [adversary]), mixed with its own key when VisualMixer is
 * on or obfuscated with it under [obfuscation] (made once, cached), plus G's samples when it is the gan_active attacker this round.
 * Returns 0, or -1 with e set and *code the error code to answer with. */
static int task_data(worker *w, const float *global, const task_req *rq, task_set *set, uint32_t *code, fv_err *e) {
    set->d = &w->train;
    set->idx = fv_partition_indices(&w->part, rq->client);
    set->n = rq->n;
    const int keyed = fv_config_client_keyed(&w->cfg);
    if (!keyed && w->adv_mask[rq->client] && fv_adv_poisons_data(&w->cfg)) poisoned_data(w, rq->client, set);
    if (keyed) {
        if (ensure_mixed(w, rq->client, &set->mix_seconds, e) != 0) {
            *code = FV_WIRE_ERR_CONFIG;
            return -1;
        }
        set->d = &w->cache[rq->client].mixed;
        set->idx = NULL;
    }
    int na = active_data(w, global, rq->client, (int)rq->t->round, set->d, set->idx, set->n, &set->own, e);
    if (na < 0) {
        *code = FV_WIRE_ERR_TASK_FAILED;
        return -1;
    }
    if (na) {
        set->d = &set->own;
        set->idx = NULL;
        set->n = set->own.n;
    }
    return 0;
}

/* Step 3: the client's local training through slot s's trainer, on whichever device it runs: the
 * global model s->global, the client's optimizer state (or a fresh one), its own random stream
 * (the dropout seed first, then the data order), local_epochs epochs (with SCAFFOLD, each step's
 * gradient corrected by c - c_i), and the update back into s->net->params (and the optimizer
 * state into s->opt_state when the task wants it, SCAFFOLD's dc_i into s->control + n_train).
 * Heartbeats from the training loop only when the slot runs on the main thread. Returns 0, or -1
 * with e set (the device cannot stage the shard). */
static int train_client(wslot *s, const task_req *rq, const task_set *set, task_result *res, fv_err *e) {
    worker *w = s->w;
    fv_rng rng;
    fv_exp_client_rng(&w->cfg, (int)rq->t->round, rq->client, &rng);
    const uint64_t dropout_seed = fv_rng_u64(&rng); /* drawn once either way: the data order follows */
    const double t0 = fv_now();
    fv_trainer_set_params(s->tr, s->global);
    if (rq->opt_state) fv_trainer_set_opt_state(s->tr, rq->opt_state, (int64_t)rq->t->opt_steps);
    else fv_trainer_reset_opt(s->tr);
    fv_trainer_seed_dropout(s->tr, dropout_seed);
    if (fv_trainer_shard_load(s->shard, set->d, set->idx, set->n, e) != 0) return -1;
    const size_t nt = w->n_train;
    float *corr = NULL;
    if (rq->control) { /* SCAFFOLD: every local step adds c - c_i to its gradient */
        corr = s->control;
        fv_scaffold_correction(rq->control, rq->control + nt, nt, corr);
    }
    for (int ep = 0; ep < w->cfg.local_epochs; ep++)
        res->es = fv_trainer_train_epoch(s->tr, s->shard, w->cfg.batch_size, &rng, (float)w->cfg.prox_mu,
                                         w->cfg.prox_mu > 0 ? s->global : NULL, corr, w->pool ? NULL : progress, w);
    fv_trainer_get_params(s->tr, s->net->params);
    if (rq->t->want_opt_state) fv_trainer_get_opt_state(s->tr, s->opt_state, &res->opt_steps);
    if (rq->control && set->n > 0) { /* dc_i = (x - y) / (K lr) - c over the K steps just taken */
        const int64_t steps = fv_agg_local_steps(w->cfg.local_epochs, w->cfg.batch_size, set->n);
        fv_scaffold_client_delta(s->global, s->net->params, rq->control, nt, steps, w->cfg.lr, s->control + nt);
        res->control = 1;
    }
    res->train_seconds = fv_now() - t0;
    return 0;
}

/* Step 4, its first half: slot s's update packed into the slot (s->fr, s->nf, s->bb, s->bl,
 * s->sig): the body (statistics, VisualMixer's figures), the parameters (under [secagg], the
 * masked input) and, when asked, the optimizer state (with SCAFFOLD: the control delta dc_i
 * instead), hashed and signed by the wire module (signed when this worker has an identity). It
 * reads only the slot and the read-only experiment, so a slot thread may run it; send_packed
 * sends it. A send failure is logged: the coordinator's timeout covers a lost update. */
static void pack_update(wslot *s) {
    worker *w = s->w;
    const task_req *rq = &s->rq;
    const task_set *set = &s->set;
    const task_result *res = &s->res;
    const Fedvim__Task *t = rq->t;
    Fedvim__UpdateBody body = FEDVIM__UPDATE_BODY__INIT;
    body.session = w->session;
    body.task_id = t->task_id;
    body.round = t->round;
    body.client_id = t->client_id;
    body.num_samples = (uint64_t)rq->n;
    body.train_loss = isfinite(res->es.loss) && res->es.loss >= 0 ? res->es.loss : 0;
    body.train_accuracy = res->es.accuracy;
    body.train_seconds = res->train_seconds;
    body.mix_seconds = set->mix_seconds;
    if (w->cfg.vmix) {
        body.vfe = w->cache[rq->client].vfe;
        body.ws_min = (uint32_t)w->cache[rq->client].ws_min;
        body.ws_max = (uint32_t)w->cache[rq->client].ws_max;
    }
    fv_wire_frame *fr = s->fr;
    fr[0] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_PARAMS, s->net->params, w->n_params};
    if (w->sa) { /* the masked input (fv_sa_worker_mask), 4-byte words like a parameter frame */
        fr[0] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_MASKED, (const float *)(const void *)w->sa_y,
                                w->n_params + FV_SA_STATS};
        body.train_loss = body.train_accuracy = 0; /* inside the masked input */
    }
    int nf = 1;
    if (t->want_opt_state) {
        fr[nf++] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_OPT_STATE, s->opt_state, w->opt_len};
        body.opt_steps = (uint64_t)res->opt_steps;
    }
    if (res->control) /* SCAFFOLD's dc_i (the config refuses it with a kept optimizer state) */
        fr[nf++] = (fv_wire_frame){FEDVIM__FRAME_KIND__FRAME_CONTROL, s->control + w->n_train, w->n_train};
    s->nf = nf;
    free(s->bb);
    s->bb = NULL;
    s->bl = 0;
    fv_wire_pack_update(&body, fr, nf, w->o.id ? w->o.id->sign_sk : NULL, &s->bb, &s->bl, s->sig);
}

/* Send the update pack_update made for slot s (on the main thread: the socket's), then drop it. */
static void send_packed(wslot *s) {
    worker *w = s->w;
    Fedvim__Update up = FEDVIM__UPDATE__INIT;
    up.body = (ProtobufCBinaryData){s->bl, s->bb};
    if (w->o.id) up.signature = (ProtobufCBinaryData){FV_SIG_BYTES, s->sig};
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    env.body_case = FEDVIM__ENVELOPE__BODY_UPDATE;
    env.update = &up;
    fv_err e;
    if (send_env(w, &env, s->fr, s->nf, &e) != 0) wlog(w, "update for client %d not sent: %s", s->rq.client, e.msg);
    free(s->bb);
    s->bb = NULL;
    s->bl = 0;
}

/* [secagg] The client's update and training statistics (FV_SA_STATS), encoded in fixed point
 * (weight: its sample count, against the model slot s started from) and masked with the shares
 * the task brought (secagg_client.h) into w->sa_y. Returns 0, or -1 after answering the coordinator with an error (the client then drops
 * out of the round's sum). */
static int secagg_mask(wslot *s, const task_req *rq, const task_result *res) {
    worker *w = s->w;
    const Fedvim__Task *t = rq->t;
    const size_t np = w->n_params;
    fv_err e = {{0}};
    int rc = 0;
    if (t->secagg_frac_bits < FV_SA_MIN_FRAC || t->secagg_stat_bits < FV_SA_MIN_FRAC || rq->n < 1 ||
        w->cfg.sa_clip * rq->n * ldexp(1, (int)t->secagg_frac_bits) > 2147483647.0 ||
        FV_SA_LOSS_MAX * rq->n * ldexp(1, (int)t->secagg_stat_bits) > 2147483647.0) {
        rc = fv_err_set(&e, "secagg: the task's %u and %u fractional bits do not fit client %d's %d samples at "
                        "[secagg] clip = %g and a loss of at most %g (at least %d bits, and range x samples x 2^bits "
                        "below 2^31)", t->secagg_frac_bits, t->secagg_stat_bits, rq->client, rq->n, w->cfg.sa_clip,
                        FV_SA_LOSS_MAX, FV_SA_MIN_FRAC);
    } else {
        const size_t clamped = fv_sa_encode(s->net->params, s->global, np, (double)rq->n, w->cfg.sa_clip,
                                            (int)t->secagg_frac_bits, w->sa_y);
        const float stats[2] = {isfinite(res->es.loss) && res->es.loss >= 0 ? (float)res->es.loss : 0,
                                (float)res->es.accuracy}, zero[2] = {0, 0};
        (void)fv_sa_encode(stats, zero, 2, (double)rq->n, FV_SA_LOSS_MAX, (int)t->secagg_stat_bits, w->sa_y + np);
        w->sa_y[np + 2] = (uint32_t)clamped; /* summed mod 2^32, read back unsigned */
        const int nb = (int)t->n_secagg_shares;
        uint32_t *from = fv_malloc(sizeof(uint32_t) * (size_t)(nb + 1));
        uint8_t *boxes = fv_malloc((size_t)(nb + 1) * FV_SA_BOX_BYTES);
        for (int j = 0; j < nb && rc == 0; j++) {
            if (t->secagg_shares[j]->to != t->client_id)
                rc = fv_err_set(&e, "secagg: the task for client %u brings a share for client %u", t->client_id,
                                t->secagg_shares[j]->to);
            from[j] = t->secagg_shares[j]->from;
            memcpy(boxes + (size_t)j * FV_SA_BOX_BYTES, t->secagg_shares[j]->box.data, FV_SA_BOX_BYTES);
        }
        if (rc == 0)
            rc = fv_sa_worker_mask(w->sa, t->round, t->client_id, from, boxes, nb, w->sa_y, np + FV_SA_STATS, &e);
        free(from), free(boxes);
    }
    if (rc != 0) {
        wlog(w, "%s", e.msg);
        send_error(w, FV_WIRE_ERR_TASK_FAILED, t->task_id, e.msg);
    }
    return rc;
}

/* One phase of secure aggregation for the clients a request names: one SecAggReply each (their
 * public keys, their sealed shares or their reveals: secagg_client.h), or an Error saying why a
 * client cannot answer (it then drops out of the round's sum). */
static void run_secagg(worker *w, const Fedvim__SecAggRequest *q) {
    if (q->session != w->session) {
        wlog(w, "ignored a secagg request of another session");
        return;
    }
    if (!w->sa) {
        send_error(w, FV_WIRE_ERR_BAD_MESSAGE, 0, "a secagg request in a run without [secagg] enabled");
        return;
    }
    const int n = (int)q->n_roster;
    uint32_t *ids = fv_malloc(sizeof(uint32_t) * (size_t)(n + 1));
    uint8_t *cpk = fv_malloc((size_t)(n + 1) * FV_SA_KEY_BYTES), *spk = fv_malloc((size_t)(n + 1) * FV_SA_KEY_BYTES);
    for (int j = 0; j < n; j++) {
        ids[j] = q->roster[j]->client;
        memcpy(cpk + (size_t)j * FV_SA_KEY_BYTES, q->roster[j]->c_pk.data, FV_SA_KEY_BYTES);
        memcpy(spk + (size_t)j * FV_SA_KEY_BYTES, q->roster[j]->s_pk.data, FV_SA_KEY_BYTES);
    }
    for (size_t i = 0; i < q->n_clients; i++) {
        const uint32_t client = q->clients[i];
        Fedvim__SecAggReply r = FEDVIM__SEC_AGG_REPLY__INIT;
        Fedvim__SecAggKeys keys = FEDVIM__SEC_AGG_KEYS__INIT;
        Fedvim__SecAggShare *sh = NULL, **shp = NULL;
        Fedvim__SecAggReveal *rv = NULL, **rvp = NULL;
        uint8_t c_pk[FV_SA_KEY_BYTES], s_pk[FV_SA_KEY_BYTES];
        uint32_t *to = NULL, *owner = NULL;
        uint8_t *boxes = NULL, *shares = NULL;
        int *self = NULL, cnt = 0, rc;
        fv_err e = {{0}};
        r.session = w->session, r.round = q->round, r.phase = q->phase, r.client = client;
        if (q->phase == FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS) {
            rc = fv_sa_worker_keys(w->sa, q->round, client, c_pk, s_pk, &e);
            keys.client = client;
            keys.c_pk = (ProtobufCBinaryData){FV_SA_KEY_BYTES, c_pk};
            keys.s_pk = (ProtobufCBinaryData){FV_SA_KEY_BYTES, s_pk};
            r.keys = &keys;
        } else if (q->phase == FEDVIM__SEC_AGG_PHASE__SECAGG_SHARES) {
            rc = q->graph_seed.len != FV_SA_KEY_BYTES
                     ? fv_err_set(&e, "secagg shares request without a graph seed")
                     : fv_sa_worker_shares(w->sa, q->round, client, ids, cpk, spk, n, q->graph_seed.data,
                                           (int)q->neighbours, (int)q->threshold, &to, &boxes, &cnt, &e);
            sh = fv_calloc((size_t)cnt + 1, sizeof *sh);
            shp = fv_calloc((size_t)cnt + 1, sizeof *shp);
            for (int j = 0; j < cnt; j++) {
                fedvim__sec_agg_share__init(&sh[j]);
                sh[j].from = client;
                sh[j].to = to[j];
                sh[j].box = (ProtobufCBinaryData){FV_SA_BOX_BYTES, boxes + (size_t)j * FV_SA_BOX_BYTES};
                shp[j] = &sh[j];
            }
            r.n_shares = (size_t)cnt, r.shares = shp;
        } else {
            rc = fv_sa_worker_unmask(w->sa, q->round, client, q->survivors, (int)q->n_survivors, q->dropped,
                                     (int)q->n_dropped, &owner, &self, &shares, &cnt, &e);
            rv = fv_calloc((size_t)cnt + 1, sizeof *rv);
            rvp = fv_calloc((size_t)cnt + 1, sizeof *rvp);
            for (int j = 0; j < cnt; j++) {
                fedvim__sec_agg_reveal__init(&rv[j]);
                rv[j].owner = owner[j];
                rv[j].self_mask = self[j];
                rv[j].share = (ProtobufCBinaryData){FV_SA_SHARE_BYTES, shares + (size_t)j * FV_SA_SHARE_BYTES};
                rvp[j] = &rv[j];
            }
            r.n_reveals = (size_t)cnt, r.reveals = rvp;
        }
        if (rc != 0) {
            wlog(w, "%s", e.msg);
            send_error(w, FV_WIRE_ERR_TASK_FAILED, 0, e.msg);
        } else {
            Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
            env.body_case = FEDVIM__ENVELOPE__BODY_SECAGG_REPLY;
            env.secagg_reply = &r;
            fv_err se;
            if (send_env(w, &env, NULL, 0, &se) != 0) wlog(w, "secagg answer for client %u not sent: %s", client, se.msg);
        }
        if (shares) sodium_memzero(shares, (size_t)cnt * FV_SA_SHARE_BYTES);
        free(sh), free(shp), free(rv), free(rvp), free(to), free(owner), free(boxes), free(shares), free(self);
    }
    free(ids), free(cpk), free(spk);
}

/* After training: s->bad, the first non-finite value of what the update would carry (-1: none);
 * then, for a client that did not diverge, a simulated malicious client's forged upload and
 * (without [secagg], whose masking needs the main thread's secrets) the update packed and signed.
 * Reads only the slot and the read-only experiment: with several slots it runs on the slot's
 * thread, so the main thread only sends (at 1,000 clients of 60 images, hashing and signing every
 * update on one thread was what held a worker back). */
static void slot_seal(wslot *s) {
    worker *w = s->w;
    const task_req *rq = &s->rq;
    long bad = fv_wire_first_nonfinite(s->net->params, w->n_params);
    if (bad < 0 && rq->t->want_opt_state) bad = fv_wire_first_nonfinite(s->opt_state, w->opt_len);
    if (bad < 0 && s->res.control) bad = fv_wire_first_nonfinite(s->control + w->n_train, w->n_train);
    s->bad = bad;
    if (bad >= 0) return;
    if (w->adv_mask[rq->client]) /* a simulated malicious client: its upload, forged */
        fv_adv_forge(&w->cfg, (int)rq->t->round, rq->client, s->global, s->net->params, w->n_train);
    if (!w->sa) pack_update(s);
}

/* Steps 2 and 3 for the task slot s holds (accepted, its model in s->global): the client's data,
 * then its training (and, on a slot thread, slot_seal). On a slot thread (fv_pool job) or on the
 * main thread. Returns 0, or -1 with s->e and s->code set. */
static int slot_run(void *arg) {
    wslot *s = arg;
    worker *w = s->w;
    if (w->pool) fv_set_threads(w->o.threads > 0 ? w->o.threads : w->cfg.threads); /* per thread */
    s->code = FV_WIRE_ERR_TASK_FAILED;
    int rc = task_data(w, s->global, &s->rq, &s->set, &s->code, &s->e);
    if (rc == 0) rc = train_client(s, &s->rq, &s->set, &s->res, &s->e);
    if (rc == 0 && w->pool) slot_seal(s);
    return rc;
}

/* Step 4 on the main thread, once slot s's task has run with result rc: the answer (an error, a
 * diverged client reported as FV_WIRE_ERR_DIVERGED, or the update, forged for a simulated
 * malicious client and masked under [secagg]); the slot is then free. */
static void slot_answer(wslot *s, int rc) {
    worker *w = s->w;
    const task_req *rq = &s->rq;
    fv_dataset_free(&s->set.own);
    if (rc != 0) {
        send_error(w, s->code, rq->t->task_id, s->e.msg);
        return;
    }
    /* a diverged client is an honest outcome, told as such (the coordinator skips the client for
     * this round, with no strike): its non-finite parameters are never sent */
    if (!w->pool) slot_seal(s);
    if (s->bad >= 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "client %d diverged: non-finite values after local training (last epoch's loss %g)",
                 rq->client, s->res.es.loss);
        wlog(w, "%s", msg);
        send_error(w, FV_WIRE_ERR_DIVERGED, rq->t->task_id, msg);
        return;
    }
    if (w->sa) { /* masked against the slot's model, then packed, here: the secrets are this thread's */
        if (secagg_mask(s, rq, &s->res) != 0) return;
        pack_update(s);
    }
    send_packed(s);
}

/* Step 1 for slot s: accept the task of message m (answering an error when it is refused) and
 * give the slot its model. Returns 0 when the slot now holds the task, -1 when it was refused. */
static int slot_take(worker *w, wslot *s, const fv_wire_msg *m) {
    if (accept_task(w, m, &s->rq) != 0) return -1;
    memcpy(s->global, w->global, w->n_params * sizeof(float));
    memset(&s->set, 0, sizeof s->set);
    memset(&s->res, 0, sizeof s->res);
    memset(&s->e, 0, sizeof s->e);
    return 0;
}

/* One client's local training for one round on the main thread (one slot): accept, data, train,
 * answer. */
static void run_task(worker *w, const fv_wire_msg *m) {
    wslot *s = &w->slot[0];
    if (slot_take(w, s, m) != 0) return;
    w->current_task = s->rq.t->task_id;
    const int rc = slot_run(s);
    w->current_task = 0;
    slot_answer(s, rc);
}

/* ---- several slots: a ring of waiting tasks, the slots' threads ---- */

/* Give waiting tasks to idle slots, in the order they came (each accepted only now, as one slot
 * would have: a task that names the model rather than bringing it names the last one accepted). */
static void dispatch(worker *w) {
    for (int i = 0; i < w->nslots && w->qlen > 0; i++) {
        wslot *s = &w->slot[i];
        if (s->m.env) continue; /* holds a task */
        while (w->qlen > 0 && !s->m.env) {
            fv_wire_msg m = w->queue[w->qhead];
            w->qhead = (w->qhead + 1) % w->qcap;
            w->qlen--;
            if (slot_take(w, s, &m) != 0) {
                fv_wire_msg_close(&m);
                continue;
            }
            s->m = m;
            s->rq.t = s->m.env->task; /* the message moved: its decoded body did not */
            w->current_task = s->rq.t->task_id;
            fv_pool_submit(w->pool, i, slot_run, s);
            int busy = 0;
            for (int k = 0; k < w->nslots; k++) busy += w->slot[k].m.env != NULL;
            if (busy > w->busy_peak) w->busy_peak = busy;
        }
    }
}

/* Answer every slot whose task has finished, then refill the slots. */
static void reap(worker *w) {
    int rc, i;
    while ((i = fv_pool_reap(w->pool, &rc)) >= 0) {
        wslot *s = &w->slot[i];
        slot_answer(s, rc);
        w->tasks_run++;
        fv_wire_msg_close(&s->m);
        memset(&s->m, 0, sizeof s->m);
    }
    w->current_task = 0;
    for (int k = 0; k < w->nslots; k++)
        if (w->slot[k].m.env) w->current_task = w->slot[k].rq.t->task_id;
    dispatch(w);
}

/* A task message for a worker with several slots: into the ring (taking over *m), then to a slot
 * if one is idle. A ring already full (a coordinator that ignores [fl] worker_slots) gets an
 * error for the task, which is not run. */
static void queue_task(worker *w, fv_wire_msg *m) {
    if (w->qlen == w->qcap) {
        char msg[160];
        snprintf(msg, sizeof msg, "this worker already holds %d tasks (at most worker_slots + tasks_per_worker - 1 "
                 "= %d are expected)", w->qlen + w->nslots, fv_exp_worker_queue(&w->cfg));
        send_error(w, FV_WIRE_ERR_TASK_FAILED, m->env->task->task_id, msg);
        return; /* the caller closes m */
    }
    w->queue[(w->qhead + w->qlen) % w->qcap] = *m;
    w->qlen++;
    memset(m, 0, sizeof *m);
    dispatch(w);
}

/* ---- main loop ---- */

int fv_worker_run(const fv_worker_opts *o, fv_err *e) {
    worker *w = fv_calloc(1, sizeof *w);
    w->o = *o;
    if (pthread_mutex_init(&w->cache_mu, NULL) != 0) FV_DIE("worker: cannot make a mutex");
    int rc = -1;
    fv_err te;
    if (o->name && fv_config_text_check(o->name, &te) != 0) {
        fv_err_set(e, "--name: %s (a worker name must be UTF-8 without control characters)", te.msg);
        goto out;
    }
    if (o->name && strlen(o->name) >= sizeof w->name) {
        fv_err_set(e, "--name: longer than %zu bytes", sizeof w->name - 1);
        goto out;
    }
    if (o->name) {
        snprintf(w->name, sizeof w->name, "%s", o->name);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(w->name, sizeof w->name, "%s:%ld", host, (long)getpid());
    }
    if (o->client_keys) {
        if (fv_vmix_key_load(o->client_keys, w->master, e) != 0) goto out;
        w->have_master = 1;
    }
    w->lim.max_header = FV_WIRE_MAX_HEADER;
    w->lim.max_count = 1; /* until the welcome says how big the model is: no frames before it */
    w->hb_interval = 1;
    w->peer_timeout = o->connect_timeout > 0 ? o->connect_timeout : 60;
    w->zctx = zmq_ctx_new();
    /* libzmq's cap must cover the largest frame of any model this worker may be asked to train;
     * the welcome then gives the exact model size, and fv_wire_decode checks every frame against
     * it before the worker uses a byte. */
    w->sock = fv_socket_client(w->zctx, o->connect, o->id, o->server_pk,
                               o->max_message ? o->max_message : (size_t)2 << 30, &w->mon, e);
    if (!w->sock) goto out;
    if (send_join(w, e) != 0) goto out;
    w->last_heard = fv_now();
    double connect_deadline = fv_now() + (o->connect_timeout > 0 ? o->connect_timeout : 60);
    wlog(w, "connecting to %s%s", o->connect, o->id ? " (CURVE)" : " (no security)");
    for (;;) {
        zmq_pollitem_t it[3] = {{w->sock, 0, ZMQ_POLLIN, 0}, {w->mon, 0, ZMQ_POLLIN, 0}, {NULL, -1, ZMQ_POLLIN, 0}};
        if (w->pool) it[2].fd = fv_pool_fd(w->pool); /* a slot finished its task */
        int pr = zmq_poll(it, w->pool ? 3 : 2, (long)(w->hb_interval * 1000 / 2) + 1);
        if (pr < 0 && errno != EINTR) {
            fv_err_set(e, "poll failed: %s", zmq_strerror(errno));
            goto out;
        }
        if (it[1].revents & ZMQ_POLLIN) {
            int ev = fv_socket_event(w->mon, 0);
            if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
                fv_err_set(e, "the coordinator at %s refused this worker's key: add this worker's public "
                           "identity (its key file's .pub) to the coordinator's allow-list", o->connect);
                goto out;
            }
        }
        double now = fv_now();
        if (it[0].revents & ZMQ_POLLIN) {
            fv_wire_msg m;
            fv_err me = {{0}};
            int r = fv_wire_recv(w->sock, 0, &w->lim, &m, &me);
            if (r == 0) {
                w->last_heard = now;
                switch (m.env->body_case) {
                case FEDVIM__ENVELOPE__BODY_WELCOME:
                    if (setup_experiment(w, m.env->welcome, e) != 0) {
                        send_error(w, FV_WIRE_ERR_CONFIG, 0, e->msg);
                        fv_wire_msg_close(&m);
                        goto out;
                    }
                    w->joined = 1;
                    wlog(w, "joined as worker %u: %s on %s, %d clients", m.env->welcome->worker_index,
                         w->cfg.model, w->cfg.dataset, w->cfg.clients);
                    send_heartbeat(w); /* tells the coordinator this worker is ready */
                    break;
                case FEDVIM__ENVELOPE__BODY_TASK:
                    if (!w->joined) wlog(w, "ignored a task that came before the welcome");
                    else if (w->pool) queue_task(w, &m);
                    else run_task(w, &m);
                    break;
                case FEDVIM__ENVELOPE__BODY_SECAGG_REQUEST:
                    if (w->joined) run_secagg(w, m.env->secagg_request);
                    else wlog(w, "ignored a secagg request that came before the welcome");
                    break;
                case FEDVIM__ENVELOPE__BODY_HEARTBEAT: break;
                case FEDVIM__ENVELOPE__BODY_SHUTDOWN: {
                    char reason[256];
                    fv_wire_sanitize(reason, sizeof reason, m.env->shutdown->reason);
                    wlog(w, "shutdown: %s", reason);
                    fv_wire_msg_close(&m);
                    rc = 0;
                    goto out;
                }
                case FEDVIM__ENVELOPE__BODY_ERROR: {
                    char msg[256];
                    fv_wire_sanitize(msg, sizeof msg, m.env->error->message);
                    if (m.env->error->code == FV_WIRE_ERR_REJECTED) {
                        fv_err_set(e, "the coordinator refused this worker: %s", msg);
                        fv_wire_msg_close(&m);
                        goto out;
                    }
                    wlog(w, "coordinator says: %s", msg);
                    if (m.env->error->code == FV_WIRE_ERR_BAD_MESSAGE && strstr(msg, "join again") &&
                        fv_now() - w->join_sent > 2 * w->hb_interval) {
                        fv_err je;
                        if (send_join(w, &je) != 0) wlog(w, "join not sent: %s", je.msg);
                    }
                    break;
                }
                default: wlog(w, "ignored a %s message", fv_wire_body_name(m.env->body_case));
                }
            } else if (r < 0) {
                wlog(w, "rejected a message from the coordinator: %s", me.msg);
            }
            fv_wire_msg_close(&m);
        }
        if (w->pool) reap(w);
        now = fv_now();
        if (!w->joined && now > connect_deadline) {
            fv_err_set(e, "no welcome from %s within %.0f s (is the address right, is --server-key the "
                       "coordinator's public key, is this worker's key on its allow-list?)",
                       o->connect, connect_deadline - w->last_heard);
            goto out;
        }
        if (w->joined && now - w->last_hb >= w->hb_interval) send_heartbeat(w);
        if (w->joined && now - w->last_heard > w->peer_timeout) {
            fv_err_set(e, "the coordinator has been silent for %.0f s: giving up", now - w->last_heard);
            goto out;
        }
    }
out:
    free_experiment(w);
    sodium_memzero(w->master, sizeof w->master);
    if (w->mon) zmq_close(w->mon);
    if (w->sock) zmq_close(w->sock);
    if (w->zctx) zmq_ctx_term(w->zctx);
    pthread_mutex_destroy(&w->cache_mu);
    free(w);
    return rc;
}
