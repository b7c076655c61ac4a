/* fv_thread.h: run one long job on its own thread while the calling thread keeps a connection
 * alive: the caller's tick callback (send a heartbeat when one is due, answer messages) runs
 * repeatedly until the job has finished. Used by the worker (the gan_active generator) and the
 * coordinator's attacker (the attack), which must keep ZeroMQ heartbeats going meanwhile.
 * Not here: thread pools, cancelling a job, OpenMP settings (a job that needs a thread count sets
 * it itself: OpenMP's is per thread), anything about ZeroMQ.
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

#endif
