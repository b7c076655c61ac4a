/* transport.c: see transport.h. */
#include "fl/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <zmq.h>

#include "fv_common.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define SEND_TIMEOUT_MS 30000
#define LINGER_MS 2000
/* Messages one peer may have waiting at the server. The receive side never drops: past this
 * libzmq stops reading that peer's connection (TCP back-pressure), so one peer can never make the
 * server hold more than about this many maximal messages. */
#define SERVER_RCVHWM 8
/* Messages the server may have queued for one peer. Its sends never wait: past this a send fails
 * at once (EAGAIN) and the caller treats the peer as one that does not read (a strike), so a
 * peer that stops reading can never stall the server's loop. */
#define SERVER_SNDHWM 64

struct fv_zap {
    void *sock;
    pthread_t thread;
    pthread_mutex_t mu;
    fv_allowlist allow;
    uint8_t (*banned)[FV_CURVE_KEY_BYTES];
    int nbanned;
    atomic_int stop;
    atomic_long denied;
    fv_log_fn log;
    void *log_ctx;
};

static void zap_log(fv_zap *z, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void zap_log(fv_zap *z, const char *fmt, ...) {
    if (!z->log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    z->log(z->log_ctx, line);
}

static void send_str(void *s, const char *str, int more) { zmq_send(s, str, strlen(str), more ? ZMQ_SNDMORE : 0); }

/* Decide on one ZAP request (RFC 27): frames version, request id, domain, address, identity,
 * mechanism, credentials... Answer 200 with the key as User-Id, or 400. */
static void zap_handle(fv_zap *z) {
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t t;
        zmq_msg_init(&t);
        if (zmq_msg_recv(&t, z->sock, 0) < 0) {
            zmq_msg_close(&t);
            for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
            return;
        }
        more = zmq_msg_more(&t);
        if (n < 8) part[n++] = t;
        else zmq_msg_close(&t);
    }
    const char *status = "400", *text = "denied";
    char user[2 * FV_CURVE_KEY_BYTES + 1] = "";
    char addr[64] = "?";
    if (n >= 6) {
        size_t al = zmq_msg_size(&part[3]);
        if (al >= sizeof addr) al = sizeof addr - 1;
        memcpy(addr, zmq_msg_data(&part[3]), al);
        addr[al] = 0;
        for (size_t i = 0; i < al; i++)
            if (addr[i] < 0x20 || addr[i] > 0x7e) addr[i] = '?';
    }
    int version_ok = n >= 6 && zmq_msg_size(&part[0]) == 3 && memcmp(zmq_msg_data(&part[0]), "1.0", 3) == 0;
    int is_curve = n >= 7 && zmq_msg_size(&part[5]) == 5 && memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0 &&
                   zmq_msg_size(&part[6]) == FV_CURVE_KEY_BYTES;
    if (version_ok && is_curve) {
        const uint8_t *key = zmq_msg_data(&part[6]);
        fv_hex(user, key, FV_CURVE_KEY_BYTES);
        pthread_mutex_lock(&z->mu);
        int idx = fv_allowlist_find_curve(&z->allow, key);
        int banned = 0;
        for (int i = 0; i < z->nbanned; i++) banned |= fv_ct_equal(z->banned[i], key, FV_CURVE_KEY_BYTES);
        pthread_mutex_unlock(&z->mu);
        if (idx >= 0 && !banned) {
            status = "200";
            text = "OK";
        } else {
            atomic_fetch_add(&z->denied, 1);
            zap_log(z, "security: refused connection from %s: %s CURVE key %.16s...", addr,
                    banned ? "banned" : "unknown", user);
            user[0] = 0;
        }
    } else if (version_ok) {
        atomic_fetch_add(&z->denied, 1);
        zap_log(z, "security: refused connection from %s: not a CURVE handshake", addr);
    }
    /* reply: version, request id, status, text, user id, metadata */
    if (n >= 2) {
        send_str(z->sock, "1.0", 1);
        zmq_send(z->sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        send_str(z->sock, status, 1);
        send_str(z->sock, text, 1);
        send_str(z->sock, user, 1);
        zmq_send(z->sock, "", 0, 0);
    }
    for (int i = 0; i < n; i++) zmq_msg_close(&part[i]);
}

static void *zap_main(void *arg) {
    fv_zap *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t it = {z->sock, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, 100);
        if (r < 0) {
            if (errno == ETERM) break;
            continue;
        }
        if (r > 0 && (it.revents & ZMQ_POLLIN)) zap_handle(z);
    }
    return NULL;
}

fv_zap *fv_zap_start(void *zctx, const fv_allowlist *allow, fv_log_fn log, void *log_ctx, fv_err *e) {
    fv_zap *z = fv_calloc(1, sizeof *z);
    z->log = log;
    z->log_ctx = log_ctx;
    pthread_mutex_init(&z->mu, NULL);
    for (int i = 0; i < allow->n; i++) fv_allowlist_add(&z->allow, &allow->ids[i], allow->labels[i]);
    z->sock = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (!z->sock) {
        fv_err_set(e, "cannot create the ZAP socket: %s", zmq_strerror(errno));
        goto fail;
    }
    zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        fv_err_set(e, "cannot bind the ZAP handler on %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&z->thread, NULL, zap_main, z) != 0) {
        fv_err_set(e, "cannot start the ZAP thread");
        goto fail;
    }
    return z;
fail:
    if (z->sock) zmq_close(z->sock);
    fv_allowlist_free(&z->allow);
    pthread_mutex_destroy(&z->mu);
    free(z);
    return NULL;
}

void fv_zap_ban(fv_zap *z, const uint8_t curve_pk[FV_CURVE_KEY_BYTES]) {
    pthread_mutex_lock(&z->mu);
    z->banned = fv_realloc(z->banned, (size_t)(z->nbanned + 1) * sizeof *z->banned);
    memcpy(z->banned[z->nbanned++], curve_pk, FV_CURVE_KEY_BYTES);
    pthread_mutex_unlock(&z->mu);
}

long fv_zap_denied(fv_zap *z) { return atomic_load(&z->denied); }

void fv_zap_stop(fv_zap **zp) {
    if (!zp || !*zp) return;
    fv_zap *z = *zp;
    atomic_store(&z->stop, 1);
    pthread_join(z->thread, NULL);
    zmq_close(z->sock);
    fv_allowlist_free(&z->allow);
    free(z->banned);
    pthread_mutex_destroy(&z->mu);
    free(z);
    *zp = NULL;
}

static int set_common(void *s, size_t max_part, fv_err *e) {
    int linger = LINGER_MS, sndtimeo = SEND_TIMEOUT_MS;
    int64_t maxmsg = (int64_t)max_part;
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0)
        return fv_err_set(e, "cannot set socket options: %s", zmq_strerror(errno));
    return 0;
}

void *fv_socket_server(void *zctx, const char *endpoint, const fv_identity *id, size_t max_part,
                       char *bound, size_t bound_cap, fv_err *e) {
    void *s = zmq_socket(zctx, ZMQ_ROUTER);
    if (!s) {
        fv_err_set(e, "cannot create a socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int one = 1, hwm = SERVER_RCVHWM, shwm = SERVER_SNDHWM, nowait = 0;
    if (set_common(s, max_part, e) != 0) goto fail;
    if (zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 || zmq_setsockopt(s, ZMQ_SNDHWM, &shwm, sizeof shwm) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &nowait, sizeof nowait) != 0) {
        fv_err_set(e, "cannot set the server socket's queue limits: %s", zmq_strerror(errno));
        goto fail;
    }
    if (id) {
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, id->curve_sk, FV_CURVE_KEY_BYTES) != 0 ||
            zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "fedvim", 6) != 0) {
            fv_err_set(e, "cannot enable CURVE on the server socket: %s", zmq_strerror(errno));
            goto fail;
        }
    }
    if (zmq_bind(s, endpoint) != 0) {
        fv_err_set(e, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
        goto fail;
    }
    if (bound) {
        size_t bl = bound_cap;
        if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &bl) != 0) snprintf(bound, bound_cap, "%s", endpoint);
    }
    return s;
fail:
    zmq_close(s);
    return NULL;
}

void *fv_socket_client(void *zctx, const char *endpoint, const fv_identity *id,
                       const uint8_t *server_pk, size_t max_part, void **monitor, fv_err *e) {
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    if (!s) {
        fv_err_set(e, "cannot create a socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (set_common(s, max_part, e) != 0) goto fail;
    if (id) {
        FV_ASSERT(server_pk);
        if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pk, FV_CURVE_KEY_BYTES) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, id->pub.curve_pk, FV_CURVE_KEY_BYTES) != 0 ||
            zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, id->curve_sk, FV_CURVE_KEY_BYTES) != 0) {
            fv_err_set(e, "cannot enable CURVE on the client socket: %s", zmq_strerror(errno));
            goto fail;
        }
    }
    if (monitor && !(*monitor = fv_socket_monitor(zctx, s, e))) goto fail;
    if (zmq_connect(s, endpoint) != 0) {
        fv_err_set(e, "cannot connect to %s: %s", endpoint, zmq_strerror(errno));
        if (monitor) {
            zmq_close(*monitor);
            *monitor = NULL;
        }
        goto fail;
    }
    return s;
fail:
    zmq_close(s);
    return NULL;
}

void *fv_socket_monitor(void *zctx, void *sock, fv_err *e) {
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://fv-monitor-%p", sock);
    if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_ALL) != 0) {
        fv_err_set(e, "cannot monitor the socket: %s", zmq_strerror(errno));
        return NULL;
    }
    void *m = zmq_socket(zctx, ZMQ_PAIR);
    int linger = 0;
    zmq_setsockopt(m, ZMQ_LINGER, &linger, sizeof linger);
    if (!m || zmq_connect(m, ep) != 0) {
        fv_err_set(e, "cannot connect the socket monitor: %s", zmq_strerror(errno));
        if (m) zmq_close(m);
        return NULL;
    }
    return m;
}

int fv_socket_event(void *monitor, int timeout_ms) {
    zmq_pollitem_t it = {monitor, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0) return 0;
    zmq_msg_t a, b;
    zmq_msg_init(&a);
    zmq_msg_init(&b);
    int ev = 0;
    if (zmq_msg_recv(&a, monitor, 0) >= 6) {
        uint16_t v;
        memcpy(&v, zmq_msg_data(&a), 2);
        ev = v;
    }
    if (zmq_msg_more(&a)) zmq_msg_recv(&b, monitor, 0); /* the endpoint frame */
    zmq_msg_close(&a);
    zmq_msg_close(&b);
    return ev;
}

/* ---- the connection watcher ---- */

/* Accepted connections remembered for their address (the newest ones; an older one's address is
 * then "?"). */
#define WATCH_PEERS 256

struct fv_conn_watch {
    void *sock; /* the watched socket (its owner's thread only: to stop the monitor) */
    void *mon;  /* the monitor's PAIR socket, used only by the thread after start */
    pthread_t thread;
    atomic_int stop;
    fv_log_fn log;
    void *log_ctx;
    struct {
        int fd;
        char addr[64];
    } peer[WATCH_PEERS];
    long npeer;           /* entries written so far (the ring's next slot is npeer % WATCH_PEERS) */
    char pending[160];    /* the reason of the last handshake failure, "" when none */
    int pending_auth;     /* that failure was ZAP's (logged by the ZAP handler) */
    double window;        /* start of the current one-second log window */
    int lines, held;      /* lines logged in it, lines held back since the last one logged */
};

static void watch_log(fv_conn_watch *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void watch_log(fv_conn_watch *w, const char *fmt, ...) {
    if (!w->log) return;
    double now = fv_now();
    if (now - w->window >= 1.0) w->window = now, w->lines = 0;
    if (w->lines >= FV_WATCH_LINES_PER_S) {
        w->held++;
        return;
    }
    w->lines++;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (w->held > 0 && n >= 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n, " (and %d connection events not shown, over %d lines a second)",
                 w->held, FV_WATCH_LINES_PER_S);
    w->held = 0;
    w->log(w->log_ctx, line);
}

/* The address of connected socket fd as "host:port" (or the path of a unix socket), "?" when it
 * cannot be had. */
static void peer_addr(int fd, char *out, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(out, cap, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) return;
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        snprintf(out, cap, "a local (ipc) peer");
    }
}

/* The remembered address of fd, taken out of the table; "?" when it is not there. */
static void take_peer(fv_conn_watch *w, int fd, char *out, size_t cap) {
    snprintf(out, cap, "?");
    long n = w->npeer < WATCH_PEERS ? w->npeer : WATCH_PEERS;
    for (long k = 1; k <= n; k++) { /* newest first: a descriptor number is reused */
        long i = (w->npeer - k) % WATCH_PEERS;
        if (w->peer[i].fd == fd) {
            snprintf(out, cap, "%s", w->peer[i].addr);
            w->peer[i].fd = -1;
            return;
        }
    }
}

/* Why a handshake failed, from the event and its value. */
static void handshake_reason(int ev, uint32_t value, char *out, size_t cap) {
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            snprintf(out, cap, "not a CURVE client (its ZMTP security mechanism is another, or it does not speak ZMTP)");
        else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
            snprintf(out, cap, "CURVE handshake failed (wrong server key, or a forged or replayed handshake)");
        else if (value >= ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED && value < ZMQ_PROTOCOL_ERROR_WS_UNSPECIFIED)
            snprintf(out, cap, "the authentication handler failed (ZAP protocol error 0x%08x)", value);
        else snprintf(out, cap, "ZMTP protocol error 0x%08x in the handshake (malformed or unexpected command)", value);
    } else if (value == 0) {
        snprintf(out, cap, "the handshake did not finish (the peer closed the connection or timed out)");
    } else {
        snprintf(out, cap, "the handshake did not finish: %s", zmq_strerror((int)value));
    }
}

/* Act on one monitor event (two parts: event id and value, then the endpoint). */
static void watch_event(fv_conn_watch *w) {
    zmq_msg_t a, b;
    zmq_msg_init(&a);
    zmq_msg_init(&b);
    int got = zmq_msg_recv(&a, w->mon, 0);
    if (got >= 0 && zmq_msg_more(&a)) zmq_msg_recv(&b, w->mon, 0);
    if (got < 6) goto done;
    uint16_t ev;
    uint32_t value;
    memcpy(&ev, zmq_msg_data(&a), 2);
    memcpy(&value, (const uint8_t *)zmq_msg_data(&a) + 2, 4);
    char addr[64];
    switch (ev) {
    case ZMQ_EVENT_ACCEPTED: {
        long i = w->npeer++ % WATCH_PEERS;
        w->peer[i].fd = (int)value;
        peer_addr((int)value, w->peer[i].addr, sizeof w->peer[i].addr);
        break;
    }
    case ZMQ_EVENT_ACCEPT_FAILED:
        watch_log(w, "security: could not accept a connection: %s", zmq_strerror((int)value));
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        /* the connection's DISCONNECTED follows at once (libzmq's engine reports both as it ends) */
        if (*w->pending && !w->pending_auth) watch_log(w, "security: refused connection from ?: %s", w->pending);
        w->pending_auth = ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
        if (w->pending_auth) snprintf(w->pending, sizeof w->pending, "refused by ZAP");
        else handshake_reason(ev, value, w->pending, sizeof w->pending);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        take_peer(w, (int)value, addr, sizeof addr);
        if (*w->pending && !w->pending_auth) watch_log(w, "security: refused connection from %s: %s", addr, w->pending);
        else if (!*w->pending)
            watch_log(w, "connection from %s closed (the peer left, or libzmq dropped it for a frame over the size "
                      "limit or a protocol error)", addr);
        w->pending[0] = 0;
        w->pending_auth = 0;
        break;
    default: break;
    }
done:
    zmq_msg_close(&a);
    zmq_msg_close(&b);
}

static void *watch_main(void *arg) {
    fv_conn_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        zmq_pollitem_t it = {w->mon, 0, ZMQ_POLLIN, 0};
        int r = zmq_poll(&it, 1, 100);
        if (r < 0) {
            if (errno == ETERM) break;
            continue;
        }
        if (r > 0 && (it.revents & ZMQ_POLLIN)) watch_event(w);
    }
    return NULL;
}

fv_conn_watch *fv_conn_watch_start(void *zctx, void *sock, fv_log_fn log, void *log_ctx, fv_err *e) {
    fv_conn_watch *w = fv_calloc(1, sizeof *w);
    w->log = log;
    w->log_ctx = log_ctx;
    for (int i = 0; i < WATCH_PEERS; i++) w->peer[i].fd = -1;
    w->sock = sock;
    w->mon = fv_socket_monitor(zctx, sock, e);
    if (!w->mon) {
        free(w);
        return NULL;
    }
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        fv_err_set(e, "cannot start the connection watcher thread");
        zmq_close(w->mon);
        free(w);
        return NULL;
    }
    return w;
}

void fv_conn_watch_stop(fv_conn_watch **wp) {
    if (!wp || !*wp) return;
    fv_conn_watch *w = *wp;
    /* the monitor stops before its reader: libzmq leaks an event sent to a closed reader */
    zmq_socket_monitor(w->sock, NULL, 0);
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    zmq_close(w->mon);
    free(w);
    *wp = NULL;
}
