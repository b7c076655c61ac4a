/* fv_thread.h: jobs on threads while the calling thread keeps a connection alive.
 *  - fv_thread_run: one long job on its own thread; the caller's tick callback (send a heartbeat
 *    when one is due, answer messages) runs repeatedly until the job has finished. Used by the
 *    worker (the gan_active generator) and the coordinator's attacker (the attack).
 *  - fv_pool: k persistent threads ("slots"), one job at a time each, with a file descriptor that
 *    becomes readable when a job has finished, so an event loop (zmq_poll) can wait on sockets and
 *    on finished jobs together. Used by the worker to train several clients at once
 *    ([fl] worker_slots). The threads persist so each keeps its OpenMP team between jobs.
 * Not here: cancelling a job, OpenMP settings (a job that needs a thread count sets it itself:
 * OpenMP's is per thread), anything about ZeroMQ.
 */
#ifndef FV_THREAD_H
#define FV_THREAD_H
#include "fv_common.h"

/* The job: runs once on the new thread; its return value is handed back by fv_thread_run. */
typedef int (*fv_thread_job)(void *arg);
/* The tick: runs on the calling thread while the job runs. */
typedef void (*fv_thread_tick)(void *ctx);

/* Start job(arg) on a new thread; until it has returned, call tick(ctx) and then sleep tick_ms
 * milliseconds (tick_ms 0: no sleep, for a tick that waits by itself, e.g. a poll with a
 * timeout), again and again; then join the thread and return the job's result. tick is not
 * called when the job is done before the first check, and is called at least once otherwise;
 * everything the job wrote is visible to the caller on return. arg and ctx belong to the caller
 * and must stay valid until return; job and tick must not share unsynchronised state. A thread
 * that cannot be started aborts (resource exhaustion, as for an allocation); tick_ms < 0 is a
 * programmer error. Carries FV_MUST_USE: the job's result is its verdict (a job that fails
 * returns -1 with its own fv_err set). */
FV_MUST_USE int fv_thread_run(fv_thread_job job, void *arg, fv_thread_tick tick, void *ctx, int tick_ms);

/* A pool of k >= 1 slot threads (k above 256 or a thread that cannot start: abort, as for an
 * allocation). Each slot runs the jobs submitted to it, one at a time, in its own thread. */
typedef struct fv_pool fv_pool;
FV_MUST_USE fv_pool *fv_pool_new(int k);
/* Wait for the running jobs to return, stop the threads, free the pool and set *p to NULL.
 * Accepts NULL and *p == NULL. Results not yet reaped are dropped. */
void fv_pool_destroy(fv_pool **p);
/* Slots of the pool. */
int fv_pool_size(const fv_pool *p);
/* Run job(arg) on slot i, which must be idle (not submitted, or reaped since): misuse aborts.
 * arg belongs to the caller and must stay valid until the slot is reaped. */
void fv_pool_submit(fv_pool *p, int i, fv_thread_job job, void *arg);
/* 1 while slot i has a job submitted and not yet reaped (running or finished), else 0. */
int fv_pool_busy(const fv_pool *p, int i);
/* A file descriptor that is readable while a finished job waits to be reaped (for poll(2) or a
 * zmq_pollitem_t's fd); only fv_pool_reap reads it. */
int fv_pool_fd(const fv_pool *p);
/* One finished job: its slot index, with its return value in *rc, and the slot idle again;
 * everything the job wrote is visible to the caller. Returns -1 when no job has finished. Never
 * blocks. */
int fv_pool_reap(fv_pool *p, int *rc);
/* Block until slot i's job (if any) has finished (it stays to be reaped). */
void fv_pool_wait(fv_pool *p, int i);

#endif
