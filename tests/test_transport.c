/* test_transport.c: CURVE sockets and the ZAP allow-list over real TCP on localhost: an
 * allow-listed worker gets through and its messages carry its key as User-Id; an unknown key is
 * refused at the handshake (logged and counted, and the client's monitor reports it); a banned
 * key is refused from then on; a peer that sends a part above ZMQ_MAXMSGSIZE is cut off; a
 * 64 MB model frame crosses CURVE intact in both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fl/transport.h"
#include "fl/wire.h"

static const fv_wire_limits LIM = {FV_WIRE_MAX_HEADER, 1 << 20};
static atomic_int log_lines;

static void count_log(void *ctx, const char *line) {
    (void)ctx;
    if (strstr(line, "refused connection")) atomic_fetch_add(&log_lines, 1);
}

static void send_heartbeat(void *s) {
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Heartbeat hb = FEDVIM__HEARTBEAT__INIT;
    env.body_case = FEDVIM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    fv_err e;
    if (fv_wire_send(s, NULL, 0, &env, NULL, 0, NULL, &e) != 0) {
        /* may time out for a refused client: the tests judge what the server received */
    }
}

/* Receive on the server within timeout_ms: 0 and m filled, or 1 when nothing came. */
static int recv_within(void *server, fv_wire_msg *m, int timeout_ms) {
    zmq_pollitem_t it = {server, 0, ZMQ_POLLIN, 0};
    memset(m, 0, sizeof *m);
    if (zmq_poll(&it, 1, timeout_ms) <= 0) return 1;
    fv_err e;
    return fv_wire_recv(server, 1, &LIM, m, &e);
}

/* Wait for a given monitor event. */
static int saw_event(void *mon, int want, int timeout_ms) {
    double end = fv_now() + timeout_ms / 1000.0;
    while (fv_now() < end) {
        int ev = fv_socket_event(mon, 50);
        if (ev == want) return 1;
    }
    return 0;
}

static void test_curve_zap(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new();
    fv_identity server, good, bad;
    fv_identity_generate(&server);
    fv_identity_generate(&good);
    fv_identity_generate(&bad);
    fv_allowlist al = {0};
    fv_allowlist_add(&al, &good.pub, "good");
    fv_err e = {{0}};
    fv_zap *zap = fv_zap_start(ctx, &al, count_log, NULL, &e);
    assert_non_null(zap);
    /* one ZAP handler per context */
    assert_null(fv_zap_start(ctx, &al, NULL, NULL, &e));
    char ep[256];
    void *srv = fv_socket_server(ctx, "tcp://127.0.0.1:*", &server, 1 << 16, ep, sizeof ep, &e);
    assert_non_null(srv);
    assert_non_null(strstr(ep, "tcp://127.0.0.1:"));

    void *cg = fv_socket_client(ctx, ep, &good, server.pub.curve_pk, 1 << 16, NULL, &e);
    assert_non_null(cg);
    send_heartbeat(cg);
    fv_wire_msg m;
    assert_int_equal(recv_within(srv, &m, 5000), 0);
    char hex[65];
    fv_hex(hex, good.pub.curve_pk, 32);
    assert_string_equal(m.user_id, hex);
    fv_wire_msg_close(&m);

    void *mon = NULL;
    void *cb = fv_socket_client(ctx, ep, &bad, server.pub.curve_pk, 1 << 16, &mon, &e);
    assert_non_null(cb);
    assert_non_null(mon);
    assert_true(saw_event(mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, 5000));
    assert_int_equal(recv_within(srv, &m, 300), 1); /* nothing from the unknown key */
    assert_true(fv_zap_denied(zap) >= 1);
    assert_true(atomic_load(&log_lines) >= 1);

    /* a client that does not know the server's real key fails the handshake (no message) */
    fv_identity fake;
    fv_identity_generate(&fake);
    void *cf = fv_socket_client(ctx, ep, &good, fake.pub.curve_pk, 1 << 16, NULL, &e);
    int zero = 0;
    zmq_setsockopt(cf, ZMQ_SNDTIMEO, &zero, sizeof zero);
    send_heartbeat(cf);
    assert_int_equal(recv_within(srv, &m, 300), 1);

    /* ban the good key: a new connection with it is refused */
    fv_zap_ban(zap, good.pub.curve_pk);
    void *mon2 = NULL;
    void *cg2 = fv_socket_client(ctx, ep, &good, server.pub.curve_pk, 1 << 16, &mon2, &e);
    assert_true(saw_event(mon2, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, 5000));

    /* an oversized part from an admitted peer: libzmq drops the connection, nothing arrives */
    static uint8_t big[1 << 17];
    zmq_send(cg, big, sizeof big, 0);
    assert_int_equal(recv_within(srv, &m, 300), 1);

    zmq_close(mon);
    zmq_close(mon2);
    zmq_close(cg);
    zmq_close(cg2);
    zmq_close(cb);
    zmq_close(cf);
    zmq_close(srv);
    fv_zap_stop(&zap);
    assert_null(zap);
    fv_allowlist_free(&al);
    zmq_ctx_term(ctx);
}

/* Models of at least 50 MB: a 64 MB parameter frame travels both ways over CURVE, arrives intact,
 * and the receiver's limit is exactly the model size. */
static void test_large_model(void **state) {
    (void)state;
    const size_t n = 16u << 20; /* 16 M floats = 64 MB */
    void *ctx = zmq_ctx_new();
    fv_identity server, worker;
    fv_identity_generate(&server);
    fv_identity_generate(&worker);
    fv_allowlist al = {0};
    fv_allowlist_add(&al, &worker.pub, "w");
    fv_err e = {{0}};
    fv_zap *zap = fv_zap_start(ctx, &al, NULL, NULL, &e);
    assert_non_null(zap);
    char ep[256];
    size_t max_part = n * sizeof(float) + 4096;
    void *srv = fv_socket_server(ctx, "tcp://127.0.0.1:*", &server, max_part, ep, sizeof ep, &e);
    void *cli = fv_socket_client(ctx, ep, &worker, server.pub.curve_pk, max_part, NULL, &e);
    assert_non_null(srv);
    assert_non_null(cli);
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 9973) * 0.25f;
    uint8_t h[FV_HASH_BYTES], h2[FV_HASH_BYTES];
    fv_hash(h, x, n * sizeof(float));
    /* worker -> coordinator: an update-sized frame (a heartbeat header is enough for transport) */
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Task task = FEDVIM__TASK__INIT;
    task.round = 1;
    task.model_hash = (ProtobufCBinaryData){FV_HASH_BYTES, h};
    env.body_case = FEDVIM__ENVELOPE__BODY_TASK;
    env.task = &task;
    fv_wire_frame fr = {FEDVIM__FRAME_KIND__FRAME_PARAMS, x, n};
    double t0 = fv_now();
    assert_int_equal(fv_wire_send(cli, NULL, 0, &env, &fr, 1, NULL, &e), 0);
    fv_wire_limits lim = {FV_WIRE_MAX_HEADER, n};
    fv_wire_msg m;
    zmq_pollitem_t it = {srv, 0, ZMQ_POLLIN, 0};
    assert_true(zmq_poll(&it, 1, 60000) == 1);
    assert_int_equal(fv_wire_recv(srv, 1, &lim, &m, &e), 0);
    assert_int_equal(m.count[0], n);
    fv_hash(h2, m.frame[0], n * sizeof(float));
    assert_memory_equal(h, h2, FV_HASH_BYTES);
    /* and back to the worker (the coordinator's task direction) */
    assert_int_equal(fv_wire_send(srv, m.route, m.route_len, &env, &fr, 1, NULL, &e), 0);
    fv_wire_msg_close(&m);
    it.socket = cli;
    assert_true(zmq_poll(&it, 1, 60000) == 1);
    assert_int_equal(fv_wire_recv(cli, 0, &lim, &m, &e), 0);
    fv_hash(h2, m.frame[0], n * sizeof(float));
    assert_memory_equal(h, h2, FV_HASH_BYTES);
    fv_wire_msg_close(&m);
    print_message("64 MB each way over CURVE in %.2f s\n", fv_now() - t0);
    /* one element over the receiver's limit is refused */
    lim.max_count = n - 1;
    assert_int_equal(fv_wire_send(cli, NULL, 0, &env, &fr, 1, NULL, &e), 0);
    it.socket = srv;
    assert_true(zmq_poll(&it, 1, 60000) == 1);
    assert_int_equal(fv_wire_recv(srv, 1, &lim, &m, &e), -1);
    fv_wire_msg_close(&m);
    free(x);
    zmq_close(cli);
    zmq_close(srv);
    fv_zap_stop(&zap);
    fv_allowlist_free(&al);
    zmq_ctx_term(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_curve_zap), cmocka_unit_test(test_large_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
