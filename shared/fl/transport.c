/* transport.c: see transport.h. */
#include "fl/transport.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

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
