/* test_thread.c: fv_thread_run (fv_thread.h): the job's result comes back, what the job wrote is
 * visible after the return, the tick runs on the calling thread while the job runs (the job here
 * waits until it has seen three ticks, so a helper that never ticks fails by timeout), tick_ms
 * spaces the ticks, and a job that is done at once needs no tick. fv_pool: jobs on several slots
 * run at the same time (each job waits until all are running), each result comes back once with
 * its slot, the descriptor is readable exactly while a result waits, a slot is reused many times,
 * and destroying a pool waits for a running job. Each case waits at most a few seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "fv_common.h"
#include "fv_thread.h"

#define WAIT_MAX_S 10.0 /* a job that waits for ticks gives up after this */

typedef struct {
    atomic_int ticks;        /* incremented by the tick */
    int ticks_wanted;        /* the job returns once it has seen this many ticks */
    int result;              /* what the job returns */
    int written;             /* written by the job, read by the test after the return */
    pthread_t caller;        /* the thread that called fv_thread_run */
    atomic_int tick_elsewhere; /* set if a tick ran on another thread than the caller's */
} state;

static int job_wait_for_ticks(void *arg) {
    state *s = arg;
    double t0 = fv_now();
    while (atomic_load(&s->ticks) < s->ticks_wanted && fv_now() - t0 < WAIT_MAX_S) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    s->written = atomic_load(&s->ticks) >= s->ticks_wanted ? 1234 : -1;
    return s->result;
}

static int job_at_once(void *arg) {
    state *s = arg;
    s->written = 99;
    return s->result;
}

static void tick(void *ctx) {
    state *s = ctx;
    if (!pthread_equal(pthread_self(), s->caller)) atomic_store(&s->tick_elsewhere, 1);
    atomic_fetch_add(&s->ticks, 1);
}

static void test_ticks_while_the_job_runs(void **st) {
    (void)st;
    for (int tick_ms = 0; tick_ms <= 20; tick_ms += 20) {
        state s = {.ticks_wanted = 3, .result = -7, .caller = pthread_self()};
        atomic_init(&s.ticks, 0);
        atomic_init(&s.tick_elsewhere, 0);
        double t0 = fv_now();
        assert_int_equal(fv_thread_run(job_wait_for_ticks, &s, tick, &s, tick_ms), -7);
        double secs = fv_now() - t0;
        assert_int_equal(s.written, 1234); /* saw its ticks, and its write is visible */
        assert_true(atomic_load(&s.ticks) >= 3);
        assert_int_equal(atomic_load(&s.tick_elsewhere), 0);
        /* three ticks 20 ms apart: at least 40 ms (two sleeps) before the job can see the third */
        if (tick_ms) assert_true(secs >= 0.04);
    }
}

static void test_job_done_at_once(void **st) {
    (void)st;
    state s = {.result = 5, .caller = pthread_self()};
    atomic_init(&s.ticks, 0);
    atomic_init(&s.tick_elsewhere, 0);
    assert_int_equal(fv_thread_run(job_at_once, &s, tick, &s, 1), 5);
    assert_int_equal(s.written, 99);
    assert_int_equal(atomic_load(&s.tick_elsewhere), 0);
    /* many runs in a row: each joins its thread (no leak, no interference) */
    for (int i = 0; i < 200; i++) {
        s.result = i;
        assert_int_equal(fv_thread_run(job_at_once, &s, tick, &s, 0), i);
    }
}

/* ---- fv_pool ---- */

typedef struct {
    atomic_int *running; /* jobs started and not yet returned, over the whole pool */
    int need;            /* the job waits until this many run at once (or WAIT_MAX_S) */
    int id, result, saw_all;
    pthread_t thread;    /* the thread the job ran on */
} pool_job;

static int job_meet(void *arg) {
    pool_job *j = arg;
    atomic_fetch_add(j->running, 1);
    double t0 = fv_now();
    int peak = 0;
    while ((peak = atomic_load(j->running)) < j->need && fv_now() - t0 < WAIT_MAX_S) {
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    j->saw_all = peak >= j->need;
    j->thread = pthread_self();
    /* stay counted until every job has seen the others: the last one out does not strand them */
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_sub(j->running, 1);
    return j->result;
}

static int readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Block until the pool's descriptor is readable (at most WAIT_MAX_S). */
static void wait_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, (int)(WAIT_MAX_S * 1000)), 1);
}

static void test_pool_slots_run_together(void **st) {
    (void)st;
    enum { K = 4 };
    fv_pool *p = fv_pool_new(K);
    assert_int_equal(fv_pool_size(p), K);
    atomic_int running;
    atomic_init(&running, 0);
    pool_job j[K];
    int rc = 0;
    assert_int_equal(fv_pool_reap(p, &rc), -1);
    assert_false(readable(fv_pool_fd(p)));
    for (int i = 0; i < K; i++) {
        j[i] = (pool_job){.running = &running, .need = K, .id = i, .result = 100 + i};
        fv_pool_submit(p, i, job_meet, &j[i]);
        assert_true(fv_pool_busy(p, i));
    }
    int seen[K] = {0}, got = 0;
    while (got < K) {
        wait_readable(fv_pool_fd(p));
        int i;
        while ((i = fv_pool_reap(p, &rc)) >= 0) {
            assert_int_equal(rc, 100 + i);
            assert_int_equal(seen[i], 0);
            seen[i] = 1;
            got++;
            assert_false(fv_pool_busy(p, i));
        }
    }
    assert_false(readable(fv_pool_fd(p))); /* every byte read by its reap */
    for (int i = 0; i < K; i++) {
        assert_true(j[i].saw_all); /* all K ran at once */
        for (int k = 0; k < i; k++) assert_false(pthread_equal(j[i].thread, j[k].thread));
    }
    /* a slot reused: the same thread, each result once */
    pthread_t first = j[1].thread;
    for (int r = 0; r < 100; r++) {
        pool_job one = {.running = &running, .need = 1, .result = r};
        fv_pool_submit(p, 1, job_meet, &one);
        fv_pool_wait(p, 1);
        assert_true(fv_pool_busy(p, 1)); /* finished, not yet reaped */
        assert_true(readable(fv_pool_fd(p)));
        assert_int_equal(fv_pool_reap(p, &rc), 1);
        assert_int_equal(rc, r);
        assert_true(pthread_equal(one.thread, first));
    }
    /* destroy waits for a running job, whose write is then visible */
    pool_job last = {.running = &running, .need = 1, .result = 7};
    fv_pool_submit(p, 0, job_meet, &last);
    fv_pool_destroy(&p);
    assert_null(p);
    assert_true(last.saw_all);
    fv_pool_destroy(&p); /* NULL is accepted */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_while_the_job_runs),
        cmocka_unit_test(test_job_done_at_once),
        cmocka_unit_test(test_pool_slots_run_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
