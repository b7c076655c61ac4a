/* fv_thread.c: see fv_thread.h. A pthread, an atomic "done" flag the job's thread sets last, and
 * a tick-and-sleep loop on the caller's thread. */
#include "fv_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

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
