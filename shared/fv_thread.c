/* fv_thread.c: see fv_thread.h. fv_thread_run: a pthread, an atomic "done" flag the job's thread
 * sets last, and a tick-and-sleep loop on the caller's thread. fv_pool: below. */
#include "fv_thread.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    fv_thread_job job;
    void *arg;
    int rc;
    atomic_int done;
} run_state;

static void *run_job(void *p) {
    run_state *s = p;
    s->rc = s->job(s->arg);
    atomic_store(&s->done, 1);
    return NULL;
}

int fv_thread_run(fv_thread_job job, void *arg, fv_thread_tick tick, void *ctx, int tick_ms) {
    FV_ASSERT(job && tick && tick_ms >= 0);
    run_state s = {.job = job, .arg = arg};
    atomic_init(&s.done, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, run_job, &s) != 0) FV_DIE("cannot start a job thread");
    while (!atomic_load(&s.done)) {
        tick(ctx);
        if (tick_ms > 0) {
            struct timespec ts = {tick_ms / 1000, (long)(tick_ms % 1000) * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (pthread_join(th, NULL) != 0) FV_DIE("cannot join a job thread");
    return s.rc;
}

/* ---- fv_pool: k slot threads, a mutex and condition for the slots' states, a pipe that holds
 * one byte per finished, unreaped job ---- */

enum { SLOT_IDLE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE };

typedef struct {
    fv_thread_job job;
    void *arg;
    int rc, state;
} pool_slot;

struct fv_pool {
    int k, quit;
    pthread_t *th;
    pool_slot *s;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot was queued, a job finished, or quit */
    int fds[2];        /* the done pipe: read end (non-blocking), write end */
    struct pool_arg {
        fv_pool *p;
        int i;
    } *args;
};

static void *pool_main(void *v) {
    struct pool_arg *a = v;
    fv_pool *p = a->p;
    pool_slot *s = &p->s[a->i];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && s->state != SLOT_QUEUED) pthread_cond_wait(&p->cv, &p->mu);
        if (s->state != SLOT_QUEUED) break; /* quit with nothing queued */
        s->state = SLOT_RUNNING;
        pthread_mutex_unlock(&p->mu);
        const int rc = s->job(s->arg);
        pthread_mutex_lock(&p->mu);
        s->rc = rc;
        s->state = SLOT_DONE;
        pthread_cond_broadcast(&p->cv);
        const char b = 1;
        ssize_t wr;
        do wr = write(p->fds[1], &b, 1);
        while (wr < 0 && errno == EINTR);
        if (wr != 1) FV_DIE("fv_pool: cannot signal a finished job");
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

fv_pool *fv_pool_new(int k) {
    FV_ASSERT(k >= 1 && k <= 256);
    fv_pool *p = fv_calloc(1, sizeof *p);
    p->k = k;
    p->th = fv_calloc((size_t)k, sizeof *p->th);
    p->s = fv_calloc((size_t)k, sizeof *p->s);
    p->args = fv_calloc((size_t)k, sizeof *p->args);
    if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->cv, NULL)) FV_DIE("fv_pool: cannot make a mutex");
    if (pipe(p->fds) != 0) FV_DIE("fv_pool: cannot make a pipe");
    if (fcntl(p->fds[0], F_SETFL, fcntl(p->fds[0], F_GETFL) | O_NONBLOCK) != 0) FV_DIE("fv_pool: fcntl failed");
    for (int i = 0; i < k; i++) {
        p->args[i] = (struct pool_arg){p, i};
        if (pthread_create(&p->th[i], NULL, pool_main, &p->args[i]) != 0) FV_DIE("cannot start a pool thread");
    }
    return p;
}

void fv_pool_destroy(fv_pool **pp) {
    if (!pp || !*pp) return;
    fv_pool *p = *pp;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->k; i++)
        if (pthread_join(p->th[i], NULL) != 0) FV_DIE("cannot join a pool thread");
    close(p->fds[0]);
    close(p->fds[1]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p->s);
    free(p->args);
    free(p);
    *pp = NULL;
}

int fv_pool_size(const fv_pool *p) { return p->k; }

void fv_pool_submit(fv_pool *p, int i, fv_thread_job job, void *arg) {
    FV_ASSERT(i >= 0 && i < p->k && job);
    pthread_mutex_lock(&p->mu);
    FV_ASSERT(p->s[i].state == SLOT_IDLE && !p->quit);
    p->s[i] = (pool_slot){job, arg, 0, SLOT_QUEUED};
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int fv_pool_busy(const fv_pool *p, int i) {
    FV_ASSERT(i >= 0 && i < p->k);
    fv_pool *q = (fv_pool *)p; /* the mutex only */
    pthread_mutex_lock(&q->mu);
    const int busy = p->s[i].state != SLOT_IDLE;
    pthread_mutex_unlock(&q->mu);
    return busy;
}

int fv_pool_fd(const fv_pool *p) { return p->fds[0]; }

int fv_pool_reap(fv_pool *p, int *rc) {
    pthread_mutex_lock(&p->mu);
    int found = -1;
    for (int i = 0; i < p->k && found < 0; i++)
        if (p->s[i].state == SLOT_DONE) found = i;
    if (found >= 0) {
        char b;
        if (read(p->fds[0], &b, 1) != 1) FV_DIE("fv_pool: a finished job without its byte");
        *rc = p->s[found].rc;
        p->s[found].state = SLOT_IDLE;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

void fv_pool_wait(fv_pool *p, int i) {
    FV_ASSERT(i >= 0 && i < p->k);
    pthread_mutex_lock(&p->mu);
    while (p->s[i].state == SLOT_QUEUED || p->s[i].state == SLOT_RUNNING) pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
