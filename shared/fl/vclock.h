/* vclock.h: the virtual clock of heterogeneous clients (docs/heterogeneity.md): who trains and
 * when, in virtual seconds, from a trace (trace.h) and the config, never from real time. Both
 * schedules below depend only on the trace, the config (fl.seed, fl.deadline, fl.comm_seconds,
 * training.local_epochs, the async keys) and the shard sizes, not on any model: the coordinator
 * replays them exactly on resume.
 *
 * A task of client i takes  d_i = n_i x training.local_epochs / speed_i + fl.comm_seconds.
 *
 * Synchronous rounds (fv_vclock_plan): round r starts at the end of round r - 1 (0 for round 1),
 * or, when no client is available then, at the earliest time one becomes available. It samples
 * min(clients per round, available) clients uniformly among those available at its start (seeded by
 * fl.seed and r). A sampled client leaves at
 *   start + fl.deadline  when min(start + d_i, its interval's end) > start + deadline (deadline > 0):
 *                        a straggler, dropped;
 *   its interval's end   when that comes before start + d_i: offline, dropped;
 *   start + d_i          otherwise: done, its update is aggregated.
 * The round ends when the last sampled client leaves (the server learns of a departure at once; it
 * waits for a straggler until the deadline).
 *
 * Asynchronous FedBuff (fv_fb_sched): at most fv_config_concurrency clients train at once. Whenever a
 * slot is free and some client is available and idle, one of those is chosen uniformly (one
 * random stream of fl.seed, drawn in event order) and starts at once from the current model
 * version; it leaves like a synchronous client (deadline counted from its own start), its update
 * arriving at start + d_i or being lost. Events are handled in time order (ties: the earlier
 * dispatch first); a dispatch comes before any arrival at the same instant only when a slot is
 * free. With no idle available client the clock jumps to the next event (an arrival, or a client
 * becoming available).
 * Not here: training, the buffer's arithmetic (fedbuff.h), the wire (coordinator/).
 */
#ifndef FV_VCLOCK_H
#define FV_VCLOCK_H
#include <stddef.h>
#include <stdint.h>

#include "fl/config.h"
#include "fl/trace.h"

/* A client's virtual duration for one task: n images x local_epochs / speed + comm_seconds. */
double fv_vclock_duration(const fv_config *c, const fv_trace *t, int client, int n);

typedef enum { FV_VC_DONE, FV_VC_STRAGGLER, FV_VC_OFFLINE } fv_vc_fate;

/* One synchronous round's plan. */
typedef struct {
    double start, end; /* virtual seconds */
    int n;             /* clients sampled (<= clients per round) */
    int *client;       /* [cap] ascending ids */
    double *leave;     /* [cap] when each leaves (see above) */
    fv_vc_fate *fate;  /* [cap] */
    int cap;
} fv_vc_round;

/* Allocate a plan for up to cap clients (fv_config_clients_per_round). */
void fv_vc_round_init(fv_vc_round *p, int cap);
void fv_vc_round_free(fv_vc_round *p);

/* Plan round r (1-based) starting no earlier than now: fills p. client_n: every client's shard
 * size. Returns 0, or -1 with e set when no client is ever available again (the trace ends). */
FV_MUST_USE int fv_vclock_plan(const fv_config *c, const fv_trace *t, const int *client_n, int round, double now,
                               fv_vc_round *p, fv_err *e);

/* ---- asynchronous (FedBuff) ---- */

typedef enum { FV_FB_DISPATCH, FV_FB_ARRIVE, FV_FB_LOST } fv_fb_kind;

typedef struct {
    fv_fb_kind kind;
    int client;
    int slot;        /* the concurrency slot it holds, in [0, fv_config_concurrency) */
    long version;    /* the model version it started from */
    double time;     /* virtual time of the event */
    fv_vc_fate fate; /* DISPATCH: how it will end (DONE: it arrives) */
} fv_fb_event;

typedef struct fv_fb_sched fv_fb_sched;

/* A schedule at time 0, version 0, nothing in flight. t, c and client_n are borrowed. */
fv_fb_sched *fv_fb_sched_new(const fv_config *c, const fv_trace *t, const int *client_n);

/* The next event; the clock advances to its time. Returns 0, or -1 with e set when nothing is in
 * flight and no client is ever available again. */
FV_MUST_USE int fv_fb_sched_next(fv_fb_sched *s, fv_fb_event *ev, fv_err *e);

/* The server stepped: the model version goes up by one (later dispatches start from it). */
void fv_fb_sched_step(fv_fb_sched *s);

double fv_fb_sched_now(const fv_fb_sched *s);
long fv_fb_sched_version(const fv_fb_sched *s);

void fv_fb_sched_free(fv_fb_sched **s);

/* The schedule's whole state as 64-bit words, for a checkpoint: time, version, dispatch counter,
 * the random stream and each slot (busy, client, version, leave time, fate, dispatch order); the
 * clients' busy flags follow from the slots. fv_fb_sched_state_len words. */
size_t fv_fb_sched_state_len(const fv_fb_sched *s);
void fv_fb_sched_save(const fv_fb_sched *s, uint64_t *w);

/* Restore a state fv_fb_sched_save wrote, into a schedule made by fv_fb_sched_new for the same
 * config and trace (it then continues exactly as the saved one would). Returns 0, or -1 with e set
 * when the words cannot be such a state (length, a time that is not finite or goes back, a slot's
 * client out of range or in two slots, a fate or version out of range); s is unchanged then. */
FV_MUST_USE int fv_fb_sched_load(fv_fb_sched *s, const uint64_t *w, size_t n, fv_err *e);

#endif
