/* test_wire.c: the message codec: round trips over a real ROUTER/DEALER pair (inproc), every
 * validation the decoder performs (sizes before use, counts, kinds, field lengths, protocol
 * version, malformed bytes; [secagg]'s phases, rounds, keys, seeds, boxes, reveal shares and
 * masked frames), update signing and every way an update can fail to open, and the NaN/Inf
 * scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fl/secagg.h"
#include "fl/wire.h"

static const fv_wire_limits LIM = {FV_WIRE_MAX_HEADER, 1000000};

/* Pack env (with declared frames) into a fresh buffer. */
static uint8_t *pack(Fedvim__Envelope *env, const Fedvim__FrameKind *kinds, const uint64_t *counts, int n,
                     size_t *len) {
    Fedvim__Frame fr[4], *frp[4];
    for (int i = 0; i < n; i++) {
        fedvim__frame__init(&fr[i]);
        fr[i].kind = kinds[i];
        fr[i].count = counts[i];
        frp[i] = &fr[i];
    }
    env->n_frames = (size_t)n;
    env->frames = n ? frp : NULL;
    *len = fedvim__envelope__get_packed_size(env);
    uint8_t *b = malloc(*len ? *len : 1);
    fedvim__envelope__pack(env, b);
    env->frames = NULL;
    env->n_frames = 0;
    return b;
}

static void expect_decode_error(Fedvim__Envelope *env, const Fedvim__FrameKind *kinds, const uint64_t *counts,
                                int ndecl, const size_t *bytes, int narrived, const char *frag) {
    size_t len;
    uint8_t *b = pack(env, kinds, counts, ndecl, &len);
    Fedvim__Envelope *out = NULL;
    fv_err e = {{0}};
    int rc = fv_wire_decode(b, len, bytes, narrived, &LIM, &out, &e);
    free(b);
    if (rc == 0) {
        fedvim__envelope__free_unpacked(out, NULL);
        fail_msg("accepted a message that should fail with '%s'", frag);
    }
    if (!strstr(e.msg, frag)) fail_msg("'%s' lacks '%s'", e.msg, frag);
    assert_null(out);
}

static void test_decode_validation(void **state) {
    (void)state;
    uint8_t key[32] = {1}, hash[32] = {2}, sig[64] = {3};
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Task task = FEDVIM__TASK__INIT;
    task.round = 1;
    task.model_hash = (ProtobufCBinaryData){32, hash};
    env.body_case = FEDVIM__ENVELOPE__BODY_TASK;
    env.task = &task;
    env.protocol = FV_WIRE_PROTOCOL;
    Fedvim__FrameKind kp[2] = {FEDVIM__FRAME_KIND__FRAME_PARAMS, FEDVIM__FRAME_KIND__FRAME_OPT_STATE};
    uint64_t c10[2] = {10, 10};
    size_t b40[2] = {40, 40};

    /* a good task with both frames decodes */
    size_t len;
    uint8_t *b = pack(&env, kp, c10, 2, &len);
    Fedvim__Envelope *out;
    fv_err e = {{0}};
    assert_int_equal(fv_wire_decode(b, len, b40, 2, &LIM, &out, &e), 0);
    assert_int_equal(out->task->round, 1);
    fedvim__envelope__free_unpacked(out, NULL);
    /* header over the limit */
    fv_wire_limits tiny = {4, 100};
    assert_int_equal(fv_wire_decode(b, len, b40, 2, &tiny, &out, &e), -1);
    assert_non_null(strstr(e.msg, "exceeds the limit"));
    /* malformed bytes: truncated, and garbage */
    assert_int_equal(fv_wire_decode(b, len - 3, b40, 2, &LIM, &out, &e), -1);
    uint8_t junk[64];
    memset(junk, 0xff, sizeof junk);
    assert_int_equal(fv_wire_decode(junk, sizeof junk, b40, 0, &LIM, &out, &e), -1);
    assert_non_null(strstr(e.msg, "malformed"));
    free(b);

    expect_decode_error(&env, kp, c10, 2, b40, 1, "declares 2 payload frames but 1 arrived");
    size_t b39[2] = {39, 40};
    expect_decode_error(&env, kp, c10, 2, b39, 2, "has 39 bytes but declares 10");
    uint64_t big[2] = {2000000, 1};
    size_t bbig[2] = {8000000, 4};
    expect_decode_error(&env, kp, big, 2, bbig, 2, "allowed 1..1000000");
    uint64_t zero[1] = {0};
    size_t b0[1] = {0};
    expect_decode_error(&env, kp, zero, 1, b0, 1, "allowed 1..");
    Fedvim__FrameKind dup[2] = {FEDVIM__FRAME_KIND__FRAME_PARAMS, FEDVIM__FRAME_KIND__FRAME_PARAMS};
    expect_decode_error(&env, dup, c10, 2, b40, 2, "appears twice");
    Fedvim__FrameKind bad[1] = {(Fedvim__FrameKind)7};
    expect_decode_error(&env, bad, c10, 1, b40, 1, "unknown kind");
    size_t b3[3] = {40, 40, 40};
    expect_decode_error(&env, kp, c10, 2, b3, 3, "at most 2");
    task.round = 0;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "round is 0");
    task.round = 1;
    task.model_hash.len = 31;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "task.model_hash has 31 bytes");
    task.model_hash.len = 32;
    env.protocol = 99;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "protocol version 99");
    env.protocol = FV_WIRE_PROTOCOL;

    Fedvim__Join join = FEDVIM__JOIN__INIT;
    join.sign_public_key = (ProtobufCBinaryData){31, key};
    env.body_case = FEDVIM__ENVELOPE__BODY_JOIN;
    env.join = &join;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "join.sign_public_key has 31 bytes");
    join.sign_public_key.len = 32;
    expect_decode_error(&env, kp, c10, 1, b40, 1, "a join message carries no frames");
    char longname[FV_WIRE_MAX_TEXT + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    join.worker_name = longname;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "worker_name is longer");

    Fedvim__Update up = FEDVIM__UPDATE__INIT;
    up.body = (ProtobufCBinaryData){5, key};
    up.signature = (ProtobufCBinaryData){63, sig};
    env.body_case = FEDVIM__ENVELOPE__BODY_UPDATE;
    env.update = &up;
    expect_decode_error(&env, kp, c10, 1, b40, 1, "update.signature has 63 bytes");
    up.signature.len = 64;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "one parameter frame or one masked frame, got 0");
    up.body.len = 0;
    expect_decode_error(&env, kp, c10, 1, b40, 1, "empty body");

    env.body_case = FEDVIM__ENVELOPE__BODY__NOT_SET;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "no body");
}

/* Pack env with the declared frames and decode it; it must decode. */
static void expect_decode_ok(Fedvim__Envelope *env, const Fedvim__FrameKind *kinds, const uint64_t *counts, int n,
                             const size_t *bytes) {
    size_t len;
    uint8_t *b = pack(env, kinds, counts, n, &len);
    Fedvim__Envelope *out = NULL;
    fv_err e = {{0}};
    const int rc = fv_wire_decode(b, len, bytes, n, &LIM, &out, &e);
    free(b);
    if (rc != 0) fail_msg("refused a valid %s message: %s", fv_wire_body_name(env->body_case), e.msg);
    assert_int_equal(out->body_case, env->body_case);
    fedvim__envelope__free_unpacked(out, NULL);
}

/* [secagg]'s messages and frames: the sizes fv_wire_decode checks before anyone reads them. */
static void test_decode_secagg(void **state) {
    (void)state;
    uint8_t key[FV_SA_KEY_BYTES] = {7}, box[FV_SA_BOX_BYTES + 1] = {8}, share[FV_SA_SHARE_BYTES + 1] = {9};
    uint8_t hash[32] = {2}, sig[64] = {3};
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    env.protocol = FV_WIRE_PROTOCOL;
    uint64_t c10[2] = {10, 10};
    size_t b40[2] = {40, 40};

    /* an update: exactly one of FRAME_PARAMS and FRAME_MASKED */
    Fedvim__Update up = FEDVIM__UPDATE__INIT;
    up.body = (ProtobufCBinaryData){5, key};
    up.signature = (ProtobufCBinaryData){64, sig};
    env.body_case = FEDVIM__ENVELOPE__BODY_UPDATE;
    env.update = &up;
    Fedvim__FrameKind both[2] = {FEDVIM__FRAME_KIND__FRAME_PARAMS, FEDVIM__FRAME_KIND__FRAME_MASKED};
    Fedvim__FrameKind masked[1] = {FEDVIM__FRAME_KIND__FRAME_MASKED};
    Fedvim__FrameKind opt[1] = {FEDVIM__FRAME_KIND__FRAME_OPT_STATE};
    expect_decode_error(&env, both, c10, 2, b40, 2, "one parameter frame or one masked frame, got 2");
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "one parameter frame or one masked frame, got 0");
    expect_decode_error(&env, opt, c10, 1, b40, 1, "one parameter frame or one masked frame, got 0");
    expect_decode_ok(&env, masked, c10, 1, b40);
    expect_decode_ok(&env, both, c10, 1, b40); /* FRAME_PARAMS alone */
    expect_decode_ok(&env, both + 1, c10, 1, b40);

    /* a task: frac bits up to 30; boxes of FV_SA_BOX_BYTES */
    Fedvim__Task task = FEDVIM__TASK__INIT;
    task.round = 1;
    task.model_hash = (ProtobufCBinaryData){32, hash};
    Fedvim__SecAggShare sh = FEDVIM__SEC_AGG_SHARE__INIT, *shp[1] = {&sh};
    sh.from = 3, sh.to = 4;
    sh.box = (ProtobufCBinaryData){FV_SA_BOX_BYTES, box};
    task.n_secagg_shares = 1, task.secagg_shares = shp;
    task.secagg_frac_bits = 30;
    env.body_case = FEDVIM__ENVELOPE__BODY_TASK;
    env.task = &task;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    task.secagg_frac_bits = 31;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "task.secagg_frac_bits 31 is over 30");
    task.secagg_frac_bits = 20;
    sh.box.len = FV_SA_BOX_BYTES - 1;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "task.secagg_shares has");
    sh.box.len = FV_SA_BOX_BYTES + 1;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "task.secagg_shares has");
    sh.box.len = 0;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "task.secagg_shares has 0 bytes");
    sh.box.len = FV_SA_BOX_BYTES;

    /* a request: phase KEYS..UNMASK, round >= 1, a 32-byte seed (or none), 32-byte roster keys */
    Fedvim__SecAggRequest q = FEDVIM__SEC_AGG_REQUEST__INIT;
    Fedvim__SecAggKeys k1 = FEDVIM__SEC_AGG_KEYS__INIT, k2 = FEDVIM__SEC_AGG_KEYS__INIT, *kp[2] = {&k1, &k2};
    k1.client = 3, k2.client = 4;
    k1.c_pk = k1.s_pk = k2.c_pk = k2.s_pk = (ProtobufCBinaryData){FV_SA_KEY_BYTES, key};
    uint32_t clients[2] = {3, 4};
    q.round = 2;
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS;
    q.n_clients = 2, q.clients = clients;
    env.body_case = FEDVIM__ENVELOPE__BODY_SECAGG_REQUEST;
    env.secagg_request = &q;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_SHARES;
    q.n_roster = 2, q.roster = kp;
    q.graph_seed = (ProtobufCBinaryData){FV_SA_KEY_BYTES, key};
    q.neighbours = 0, q.threshold = 2;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_UNMASK;
    q.n_survivors = 1, q.survivors = clients;
    q.n_dropped = 1, q.dropped = clients + 1;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    expect_decode_error(&env, masked, c10, 1, b40, 1, "a secagg request message carries no frames");
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_UNSPECIFIED;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request has unknown phase 0");
    q.phase = (Fedvim__SecAggPhase)4;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request has unknown phase 4");
    q.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_SHARES;
    q.round = 0;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request round is 0");
    q.round = 2;
    q.graph_seed.len = 31;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request graph_seed has 31 bytes");
    q.graph_seed = (ProtobufCBinaryData){33, box};
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request graph_seed has 33 bytes");
    q.graph_seed = (ProtobufCBinaryData){FV_SA_KEY_BYTES, key};
    k2.c_pk.len = 31;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request roster has 31 bytes");
    k2.c_pk.len = FV_SA_KEY_BYTES;
    k1.s_pk = (ProtobufCBinaryData){31, key};
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg request roster has 31 bytes");
    k1.s_pk.len = FV_SA_KEY_BYTES;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);

    /* a reply: keys with KEYS and only then, boxes and reveal shares of their sizes */
    Fedvim__SecAggReply r = FEDVIM__SEC_AGG_REPLY__INIT;
    r.round = 2;
    r.client = 3;
    r.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS;
    r.keys = &k1;
    env.body_case = FEDVIM__ENVELOPE__BODY_SECAGG_REPLY;
    env.secagg_reply = &r;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    k1.c_pk.len = 31;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply keys has 31 bytes");
    k1.c_pk.len = FV_SA_KEY_BYTES;
    r.keys = NULL;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "keys come with phase KEYS, and only then");
    r.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_SHARES;
    r.keys = &k1;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "keys come with phase KEYS, and only then");
    r.keys = NULL;
    r.n_shares = 1, r.shares = shp;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    sh.box.len = FV_SA_BOX_BYTES - 1;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply shares has");
    sh.box.len = FV_SA_BOX_BYTES;
    r.n_shares = 0, r.shares = NULL;
    r.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_UNMASK;
    Fedvim__SecAggReveal rv = FEDVIM__SEC_AGG_REVEAL__INIT, *rvp[1] = {&rv};
    rv.owner = 4, rv.self_mask = 1;
    rv.share = (ProtobufCBinaryData){FV_SA_SHARE_BYTES, share};
    r.n_reveals = 1, r.reveals = rvp;
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
    rv.share.len = FV_SA_SHARE_BYTES - 1;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply reveal has 39 bytes");
    rv.share.len = FV_SA_SHARE_BYTES + 1;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply reveal has 41 bytes");
    rv.share.len = 0;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply reveal has 0 bytes");
    rv.share.len = FV_SA_SHARE_BYTES;
    r.phase = (Fedvim__SecAggPhase)7;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply has unknown phase 7");
    r.phase = FEDVIM__SEC_AGG_PHASE__SECAGG_UNMASK;
    r.round = 0;
    expect_decode_error(&env, NULL, NULL, 0, NULL, 0, "secagg reply round is 0");
    r.round = 2;
    expect_decode_error(&env, masked, c10, 1, b40, 1, "a secagg reply message carries no frames");
    expect_decode_ok(&env, NULL, NULL, 0, NULL);
}

static void test_roundtrip_router_dealer(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER), *dealer = zmq_socket(ctx, ZMQ_DEALER);
    assert_int_equal(zmq_bind(router, "inproc://wire-test"), 0);
    assert_int_equal(zmq_connect(dealer, "inproc://wire-test"), 0);
    float params[1000];
    for (int i = 0; i < 1000; i++) params[i] = (float)i * 0.5f;
    /* dealer -> router: a Heartbeat, no frames */
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    Fedvim__Heartbeat hb = FEDVIM__HEARTBEAT__INIT;
    hb.busy = 2;
    env.body_case = FEDVIM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    fv_err e = {{0}};
    size_t sent;
    assert_int_equal(fv_wire_send(dealer, NULL, 0, &env, NULL, 0, &sent, &e), 0);
    fv_wire_msg m;
    assert_int_equal(fv_wire_recv(router, 1, &LIM, &m, &e), 0);
    assert_int_equal(m.env->body_case, FEDVIM__ENVELOPE__BODY_HEARTBEAT);
    assert_int_equal(m.env->heartbeat->busy, 2);
    assert_int_equal(m.bytes, sent);
    assert_true(m.route_len > 0);
    uint8_t route[FV_WIRE_MAX_ROUTE];
    size_t rl = m.route_len;
    memcpy(route, m.route, rl);
    fv_wire_msg_close(&m);
    /* router -> dealer: a Task with a params frame */
    uint8_t hash[32];
    fv_hash(hash, params, sizeof params);
    Fedvim__Task task = FEDVIM__TASK__INIT;
    task.round = 3;
    task.client_id = 17;
    task.model_hash = (ProtobufCBinaryData){32, hash};
    env.body_case = FEDVIM__ENVELOPE__BODY_TASK;
    env.task = &task;
    fv_wire_frame fr = {FEDVIM__FRAME_KIND__FRAME_PARAMS, params, 1000};
    assert_int_equal(fv_wire_send(router, route, rl, &env, &fr, 1, &sent, &e), 0);
    assert_int_equal(fv_wire_recv(dealer, 0, &LIM, &m, &e), 0);
    assert_int_equal(m.env->task->client_id, 17);
    assert_int_equal(m.nframes, 1);
    assert_int_equal(m.count[0], 1000);
    assert_int_equal(m.kind[0], FEDVIM__FRAME_KIND__FRAME_PARAMS);
    assert_memory_equal(m.frame[0], params, sizeof params);
    assert_int_equal(m.bytes, sent);
    fv_wire_msg_close(&m);
    fv_wire_msg_close(&m); /* closing twice is harmless */
    /* a frame above the receiver's limit is refused after the whole message is consumed */
    fv_wire_limits small = {FV_WIRE_MAX_HEADER, 999};
    assert_int_equal(fv_wire_send(router, route, rl, &env, &fr, 1, NULL, &e), 0);
    assert_int_equal(fv_wire_recv(dealer, 0, &small, &m, &e), -1);
    assert_non_null(strstr(e.msg, "allowed 1..999"));
    fv_wire_msg_close(&m);
    /* raw garbage: a malformed header is an ordinary error, and the next message still decodes */
    zmq_send(dealer, "\x0a\xff\xff", 3, 0);
    assert_int_equal(fv_wire_recv(router, 1, &LIM, &m, &e), -1);
    assert_true(m.route_len > 0);
    fv_wire_msg_close(&m);
    env.body_case = FEDVIM__ENVELOPE__BODY_HEARTBEAT;
    assert_int_equal(fv_wire_send(dealer, NULL, 0, &env, NULL, 0, NULL, &e), 0);
    assert_int_equal(fv_wire_recv(router, 1, &LIM, &m, &e), 0);
    fv_wire_msg_close(&m);
    /* too many parts */
    zmq_send(dealer, "x", 1, ZMQ_SNDMORE);
    for (int i = 0; i < 5; i++) zmq_send(dealer, "abcd", 4, i < 4 ? ZMQ_SNDMORE : 0);
    assert_int_equal(fv_wire_recv(router, 1, &LIM, &m, &e), -1);
    assert_non_null(strstr(e.msg, "more than 2 payload frames"));
    fv_wire_msg_close(&m);
    /* nothing pending: 1 */
    int timeout = 10;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    assert_int_equal(fv_wire_recv(router, 1, &LIM, &m, &e), 1);
    fv_wire_msg_close(&m);
    zmq_close(router);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
}

/* Build a received-message view by hand for fv_wire_open_update. */
static void fake_msg(fv_wire_msg *m, Fedvim__Envelope *env, const float *params, size_t n) {
    memset(m, 0, sizeof *m);
    m->env = env;
    m->nframes = 1;
    m->frame[0] = params;
    m->count[0] = n;
    m->kind[0] = FEDVIM__FRAME_KIND__FRAME_PARAMS;
}

static void test_sign_and_open_update(void **state) {
    (void)state;
    fv_identity w, other;
    fv_identity_generate(&w);
    fv_identity_generate(&other);
    float params[256];
    for (int i = 0; i < 256; i++) params[i] = sinf((float)i);
    Fedvim__UpdateBody body = FEDVIM__UPDATE_BODY__INIT;
    body.session = 99;
    body.task_id = 5;
    body.round = 4;
    body.client_id = 12;
    body.num_samples = 600;
    body.train_loss = 0.5;
    fv_wire_frame fr = {FEDVIM__FRAME_KIND__FRAME_PARAMS, params, 256};
    uint8_t *bb, sig[64];
    size_t bl;
    fv_wire_pack_update(&body, &fr, 1, w.sign_sk, &bb, &bl, sig);
    Fedvim__Update up = FEDVIM__UPDATE__INIT;
    up.body = (ProtobufCBinaryData){bl, bb};
    up.signature = (ProtobufCBinaryData){64, sig};
    Fedvim__Envelope env = FEDVIM__ENVELOPE__INIT;
    env.body_case = FEDVIM__ENVELOPE__BODY_UPDATE;
    env.update = &up;
    fv_wire_msg m;
    fake_msg(&m, &env, params, 256);
    Fedvim__UpdateBody *out;
    fv_err e = {{0}};
    assert_int_equal(fv_wire_open_update(&m, w.pub.sign_pk, &out, &e), 0);
    assert_int_equal(out->round, 4);
    assert_int_equal(out->client_id, 12);
    assert_int_equal(out->task_id, 5);
    assert_int_equal(out->num_samples, 600);
    fedvim__update_body__free_unpacked(out, NULL);
    /* wrong key */
    assert_int_equal(fv_wire_open_update(&m, other.pub.sign_pk, &out, &e), -1);
    assert_non_null(strstr(e.msg, "bad signature"));
    /* tampered payload: one float changed after signing */
    float tampered[256];
    memcpy(tampered, params, sizeof params);
    tampered[100] += 1e-3f;
    fake_msg(&m, &env, tampered, 256);
    assert_int_equal(fv_wire_open_update(&m, w.pub.sign_pk, &out, &e), -1);
    assert_non_null(strstr(e.msg, "payload hash mismatch"));
    /* tampered body (say, the round) */
    fake_msg(&m, &env, params, 256);
    bb[3] ^= 1;
    assert_int_equal(fv_wire_open_update(&m, w.pub.sign_pk, &out, &e), -1);
    assert_non_null(strstr(e.msg, "bad signature"));
    bb[3] ^= 1;
    /* unsigned */
    up.signature.len = 0;
    assert_int_equal(fv_wire_open_update(&m, w.pub.sign_pk, &out, &e), -1);
    assert_non_null(strstr(e.msg, "unsigned"));
    up.signature.len = 64;
    /* a second, unsigned frame smuggled beside the signed one */
    m.nframes = 2;
    m.frame[1] = params;
    m.count[1] = 10;
    assert_int_equal(fv_wire_open_update(&m, w.pub.sign_pk, &out, &e), -1);
    assert_non_null(strstr(e.msg, "lists 1 frames but 2 arrived"));
    free(bb);
}

/* Without a key the body is packed by the same function: the same bytes as the signed one
 * (frame hashes listed), the signature buffer untouched. (The worker once packed unsigned bodies
 * itself.) */
static void test_pack_update_unsigned(void **state) {
    (void)state;
    fv_identity w;
    fv_identity_generate(&w);
    float params[64], st[32];
    for (int i = 0; i < 64; i++) params[i] = cosf((float)i);
    for (int i = 0; i < 32; i++) st[i] = (float)i;
    Fedvim__UpdateBody body = FEDVIM__UPDATE_BODY__INIT;
    body.session = 7;
    body.round = 2;
    body.num_samples = 10;
    fv_wire_frame fr[2] = {{FEDVIM__FRAME_KIND__FRAME_PARAMS, params, 64},
                           {FEDVIM__FRAME_KIND__FRAME_OPT_STATE, st, 32}};
    uint8_t *signed_b, *plain_b, sig[FV_SIG_BYTES], untouched[FV_SIG_BYTES];
    memset(sig, 0xa5, sizeof sig);
    memcpy(untouched, sig, sizeof sig);
    size_t signed_l, plain_l;
    fv_wire_pack_update(&body, fr, 2, NULL, &plain_b, &plain_l, sig);
    assert_memory_equal(sig, untouched, sizeof sig);
    assert_int_equal(body.n_frame_hash, 0);
    fv_wire_pack_update(&body, fr, 2, w.sign_sk, &signed_b, &signed_l, sig);
    assert_int_equal(plain_l, signed_l);
    assert_memory_equal(plain_b, signed_b, plain_l);
    Fedvim__UpdateBody *out;
    fv_err e = {{0}};
    assert_int_equal(fv_wire_decode_update_body(plain_b, plain_l, &out, &e), 0);
    assert_int_equal(out->n_frame_hash, 2);
    uint8_t h[FV_HASH_BYTES];
    fv_hash(h, st, sizeof st);
    assert_memory_equal(out->frame_hash[1].data, h, FV_HASH_BYTES);
    assert_int_equal(out->round, 2);
    fedvim__update_body__free_unpacked(out, NULL);
    free(plain_b);
    free(signed_b);
}

static void test_update_body_validation(void **state) {
    (void)state;
    uint8_t h[32] = {0};
    ProtobufCBinaryData hb = {32, h};
    Fedvim__UpdateBody body = FEDVIM__UPDATE_BODY__INIT;
    body.round = 1;
    body.n_frame_hash = 1;
    body.frame_hash = &hb;
    body.train_loss = NAN;
    uint8_t buf[256];
    size_t n = fedvim__update_body__pack(&body, buf);
    Fedvim__UpdateBody *out;
    fv_err e = {{0}};
    assert_int_equal(fv_wire_decode_update_body(buf, n, &out, &e), -1);
    assert_non_null(strstr(e.msg, "finite"));
    body.train_loss = 1;
    hb.len = 16;
    n = fedvim__update_body__pack(&body, buf);
    assert_int_equal(fv_wire_decode_update_body(buf, n, &out, &e), -1);
    assert_non_null(strstr(e.msg, "16 bytes"));
    hb.len = 32;
    body.n_frame_hash = 0;
    n = fedvim__update_body__pack(&body, buf);
    assert_int_equal(fv_wire_decode_update_body(buf, n, &out, &e), -1);
    body.n_frame_hash = 1;
    n = fedvim__update_body__pack(&body, buf);
    assert_int_equal(fv_wire_decode_update_body(buf, n, &out, &e), 0);
    fedvim__update_body__free_unpacked(out, NULL);
}

static void test_nonfinite_and_sanitize(void **state) {
    (void)state;
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = (float)i - 500.0f;
    x[3] = 3.4e38f;
    assert_int_equal(fv_wire_first_nonfinite(x, 1000), -1);
    x[777] = NAN;
    assert_int_equal(fv_wire_first_nonfinite(x, 1000), 777);
    x[10] = -INFINITY;
    assert_int_equal(fv_wire_first_nonfinite(x, 1000), 10);
    assert_int_equal(fv_wire_first_nonfinite(x, 0), -1);
    char out[8];
    fv_wire_sanitize(out, sizeof out, "a\x1b[2Jzzzzzz");
    assert_string_equal(out, "a?[2Jzz");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_validation),
        cmocka_unit_test(test_decode_secagg),
        cmocka_unit_test(test_roundtrip_router_dealer),
        cmocka_unit_test(test_sign_and_open_update),
        cmocka_unit_test(test_pack_update_unsigned),
        cmocka_unit_test(test_update_body_validation),
        cmocka_unit_test(test_nonfinite_and_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
