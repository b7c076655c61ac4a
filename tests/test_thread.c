/* test_thread.c: fv_thread_run (fv_thread.h): the job's result comes back, what the job wrote is
 * visible after the return, the tick runs on the calling thread while the job runs (the job here
 * waits until it has seen three ticks, so a helper that never ticks fails by timeout), tick_ms
 * spaces the ticks, and a job that is done at once needs no tick. Each case waits at most a few
 * seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks_while_the_job_runs),
        cmocka_unit_test(test_job_done_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
