/* worker.h: a worker process serves many virtual clients in turn. It connects to the coordinator
 * (DEALER, CURVE client), joins, receives the experiment config, loads its own copy of the
 * data, computes the same partition as the coordinator, and then runs tasks: one client's local
 * training for one round, started from the global model the task names, with the client's own
 * random stream (seed, round, client id), and answered with a signed update. Results do not
 * depend on which worker runs a client.
 *
 * VisualMixer: each client mixes its own shard once, offline (at its first task), with its own
 * key and with window bounds computed from its own images. Client keys derive from a master
 * secret that only workers hold (crypto_kdf, subkey id = client id): in a real deployment each
 * client would hold its own key; in the simulator the workers stand in for the clients, and the
 * coordinator never sees a key. Mixed shards are cached (at most one copy of the training set
 * per worker).
 *
 * Liveness: heartbeats every fl.heartbeat seconds, also during training; the worker quits when
 * the coordinator has been silent for the welcome's peer_timeout, on Shutdown, or when it is
 * refused (unknown key, banned).
 * Not here: the coordinator (coordinator/), launching processes (cli/).
 */
#ifndef FV_WORKER_H
#define FV_WORKER_H
#include <stdint.h>

#include "crypto.h"
#include "fv_common.h"

typedef struct {
    const char *connect;         /* coordinator endpoint, e.g. tcp://host:5555 */
    const fv_identity *id;       /* this worker's identity; NULL: no security (both sides) */
    const uint8_t *server_pk;    /* the coordinator's CURVE public key (with id) */
    const char *client_keys;     /* VisualMixer master secret file (needed when mixing is on) */
    const char *data_dir;        /* overrides the config's data.dir (NULL: keep) */
    const char *name;            /* shown in the coordinator's logs (NULL: host:pid) */
    int threads;                 /* compute threads; 0: the config's training.threads */
    const char *device;          /* NULL or "cpu": train on the CPU; "cuda" or "cuda:N": on CUDA device
                                    N (a build with the CUDA backend; docs/cuda.md) */
    double connect_timeout;      /* seconds to wait for the coordinator's welcome */
    size_t max_message;          /* bytes: the largest message part accepted (libzmq cuts a peer
                                    that sends more before allocating); 0: 2 GiB */
    int quiet;                   /* no log lines on stderr */
} fv_worker_opts;

/* Serve until the coordinator says Shutdown (returns 0) or something fails (returns -1 with e
 * set: refused key, silent coordinator, data or config this worker cannot serve). */
FV_MUST_USE int fv_worker_run(const fv_worker_opts *o, fv_err *e);

#endif
