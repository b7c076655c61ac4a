/* transport.h: ZeroMQ sockets for fedvim's two roles, secured with CURVE, and the ZAP handler that
 * admits only allow-listed worker keys.
 *
 *  - Server side (coordinator): a ROUTER socket that is a CURVE server. Before it binds,
 *    fv_zap_start runs a ZAP handler thread on inproc://zeromq.zap.01 of the same context; every
 *    CURVE handshake is checked against the allow-list, and admitted connections carry the
 *    client's CURVE key (hex) as their ZAP User-Id, so each received message says which key sent
 *    it (fv_wire_msg.user_id). Denied handshakes are logged and counted.
 *  - fv_conn_watch logs why each connection that ZAP never sees was refused or dropped.
 *  - Client side (worker): a DEALER socket that is a CURVE client of the server's public key.
 *    A monitor reports a handshake the server refused, so a worker with an unknown key stops with
 *    a clear message instead of retrying forever.
 *  - Every socket gets ZMQ_MAXMSGSIZE (libzmq drops a peer that sends a larger part before
 *    allocating it), send timeouts and a short linger: no call blocks forever. The server also
 *    bounds what each peer may have queued (8 messages; beyond that TCP back-pressure), so its
 *    memory stays bounded whatever a peer sends, and its sends never wait: each peer's outgoing
 *    queue is bounded (64 messages) and a send to a full one fails at once (EAGAIN), so a peer
 *    that stops reading cannot stall the server.
 * With id == NULL a socket is plain (no CURVE): only for `security.enabled = false`, and the
 * caller must say so loudly.
 * Not here: message layout (wire.h), key files (crypto.h).
 */
#ifndef FV_TRANSPORT_H
#define FV_TRANSPORT_H
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "fv_common.h"

/* A log sink for a thread that has no other way to report: called with one complete line
 * (no trailing newline). Must be thread-safe. */
typedef void (*fv_log_fn)(void *ctx, const char *line);

typedef struct fv_zap fv_zap;

/* Start the ZAP handler for context zctx, admitting exactly the CURVE keys of `allow` (copied).
 * Must be called before the server socket binds. Returns NULL with e set when the inproc endpoint
 * is taken (one handler per context) or the thread cannot start. Caller owns the result. */
FV_MUST_USE fv_zap *fv_zap_start(void *zctx, const fv_allowlist *allow, fv_log_fn log, void *log_ctx, fv_err *e);

/* Deny this CURVE key from now on (new handshakes). Existing connections stay open: the caller
 * ignores their messages. */
void fv_zap_ban(fv_zap *z, const uint8_t curve_pk[FV_CURVE_KEY_BYTES]);

/* Number of handshakes denied so far. */
long fv_zap_denied(fv_zap *z);

/* Stop the thread, close its socket, free; sets *z to NULL. Accepts NULL. */
void fv_zap_stop(fv_zap **z);

/* A watcher of the server socket's connection events, in a thread of its own like the ZAP
 * handler: it logs a reason for every connection refused before ZAP sees it (a peer that does
 * not speak CURVE, or not ZMTP at all: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL; one that closes or
 * times out mid-handshake: _NO_DETAIL), for every accept that fails (descriptors exhausted), and
 * for every established connection that ends (its peer left, or libzmq dropped it for a frame
 * over the size limit or a protocol error: libzmq does not tell which), with the peer's address
 * as read at its accept ("?" when libzmq closed the connection before the watcher read it, or
 * when two failures come before their disconnects: libzmq's v1 events give a failure no
 * descriptor, so the watcher pairs each failure with the next disconnect). Refusals by ZAP
 * (_AUTH) are logged by the ZAP handler, which knows the key.
 * At most FV_WATCH_LINES_PER_S lines a second; the lines held back are counted in the next one,
 * so a flood of connections cannot flood the log. */
typedef struct fv_conn_watch fv_conn_watch;
#define FV_WATCH_LINES_PER_S 20

/* Start watching `sock` (a server socket of zctx, from fv_socket_server; call from the thread that
 * owns it, before peers connect). Returns NULL with e set when the monitor or the thread cannot
 * start. Caller owns the result; stop it before closing sock. */
FV_MUST_USE fv_conn_watch *fv_conn_watch_start(void *zctx, void *sock, fv_log_fn log, void *log_ctx, fv_err *e);

/* Stop monitoring (from the thread that owns the watched socket, before closing it), stop the
 * thread, close its monitor socket, free; sets *w to NULL. Accepts NULL. */
void fv_conn_watch_stop(fv_conn_watch **w);

/* A ROUTER socket bound to `endpoint` (for example tcp://0.0.0.0:5555, tcp://127.0.0.1:0 for any free port, ipc://PATH), CURVE
 * server with id's CURVE secret key when id != NULL. max_part bounds each received part (bytes).
 * The endpoint actually bound is written to bound (may be NULL). Returns the socket or NULL with
 * e set. */
FV_MUST_USE void *fv_socket_server(void *zctx, const char *endpoint, const fv_identity *id, size_t max_part,
                       char *bound, size_t bound_cap, fv_err *e);

/* A DEALER socket connected to `endpoint`, CURVE client of server_pk with id's keys when id !=
 * NULL (server_pk must then be given). When monitor != NULL, *monitor gets a monitor started
 * before the connection (see fv_socket_event). Returns the socket or NULL with e set. */
FV_MUST_USE void *fv_socket_client(void *zctx, const char *endpoint, const fv_identity *id,
                       const uint8_t *server_pk, size_t max_part, void **monitor, fv_err *e);

/* Start monitoring `sock` for connection events; returns a PAIR socket to pass to
 * fv_socket_event, or NULL with e set. Close it with zmq_close. */
FV_MUST_USE void *fv_socket_monitor(void *zctx, void *sock, fv_err *e);

/* Wait up to timeout_ms for one monitor event; returns the ZMQ_EVENT_* value, 0 when none. */
int fv_socket_event(void *monitor, int timeout_ms);

#endif
