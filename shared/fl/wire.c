/* wire.c: see wire.h. */
#include "fl/wire.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "fl/secagg.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "fedvim's wire format is little-endian float32; this host is not little-endian"
#endif

const char *fv_wire_body_name(Fedvim__Envelope__BodyCase c) {
    switch (c) {
    case FEDVIM__ENVELOPE__BODY_JOIN: return "join";
    case FEDVIM__ENVELOPE__BODY_WELCOME: return "welcome";
    case FEDVIM__ENVELOPE__BODY_TASK: return "task";
    case FEDVIM__ENVELOPE__BODY_UPDATE: return "update";
    case FEDVIM__ENVELOPE__BODY_HEARTBEAT: return "heartbeat";
    case FEDVIM__ENVELOPE__BODY_ERROR: return "error";
    case FEDVIM__ENVELOPE__BODY_SHUTDOWN: return "shutdown";
    case FEDVIM__ENVELOPE__BODY_SECAGG_REQUEST: return "secagg request";
    case FEDVIM__ENVELOPE__BODY_SECAGG_REPLY: return "secagg reply";
    default: return "none";
    }
}

static int str_ok(const char *s, size_t max, const char *what, fv_err *e) {
    if (!s) return 0;
    size_t n = strnlen(s, max + 1);
    if (n > max) return fv_err_set(e, "%s is longer than %zu bytes", what, max);
    return 0;
}

static int bin_len(const ProtobufCBinaryData *b, size_t want, int allow_empty, const char *what,
                   fv_err *e) {
    if (b->len == want || (allow_empty && b->len == 0)) return 0;
    return fv_err_set(e, "%s has %zu bytes, expected %zu", what, b->len, want);
}

/* Which frame kinds each body may carry, and which it must. */
static int check_frames(const Fedvim__Envelope *env, fv_err *e) {
    int have[FV_WIRE_FRAME_KINDS] = {0};
    for (size_t i = 0; i < env->n_frames; i++) have[env->frames[i]->kind]++;
    const char *name = fv_wire_body_name(env->body_case);
    switch (env->body_case) {
    case FEDVIM__ENVELOPE__BODY_TASK:
        return 0; /* params when the worker lacks this model; opt state with the keep policy; control
                   * variates with SCAFFOLD (their lengths: the receiver's check, it knows the model) */
    case FEDVIM__ENVELOPE__BODY_UPDATE:
        if (have[FEDVIM__FRAME_KIND__FRAME_PARAMS] + have[FEDVIM__FRAME_KIND__FRAME_MASKED] != 1)
            return fv_err_set(e, "an update carries one parameter frame or one masked frame, got %d",
                              have[FEDVIM__FRAME_KIND__FRAME_PARAMS] + have[FEDVIM__FRAME_KIND__FRAME_MASKED]);
        return 0;
    default:
        if (env->n_frames) return fv_err_set(e, "a %s message carries no frames, got %zu", name, env->n_frames);
        return 0;
    }
}

static int check_keys(const Fedvim__SecAggKeys *k, const char *what, fv_err *e) {
    if (bin_len(&k->c_pk, FV_SA_KEY_BYTES, 0, what, e)) return -1;
    return bin_len(&k->s_pk, FV_SA_KEY_BYTES, 0, what, e);
}

static int check_shares(Fedvim__SecAggShare *const *s, size_t n, const char *what, fv_err *e) {
    for (size_t i = 0; i < n; i++)
        if (bin_len(&s[i]->box, FV_SA_BOX_BYTES, 0, what, e)) return -1;
    return 0;
}

static int check_body(const Fedvim__Envelope *env, fv_err *e) {
    switch (env->body_case) {
    case FEDVIM__ENVELOPE__BODY_JOIN: {
        const Fedvim__Join *j = env->join;
        if (str_ok(j->worker_name, FV_WIRE_MAX_TEXT, "join.worker_name", e)) return -1;
        if (bin_len(&j->sign_public_key, FV_SIGN_PK_BYTES, 0, "join.sign_public_key", e)) return -1;
        if (j->threads > 4096) return fv_err_set(e, "join.threads %u is out of range", j->threads);
        return 0;
    }
    case FEDVIM__ENVELOPE__BODY_WELCOME: {
        const Fedvim__Welcome *w = env->welcome;
        if (str_ok(w->config_ini, FV_WIRE_MAX_CONFIG, "welcome.config_ini", e)) return -1;
        if (bin_len(&w->config_hash, FV_HASH_BYTES, 0, "welcome.config_hash", e)) return -1;
        if (!(w->heartbeat_interval > 0 && w->heartbeat_interval <= 3600))
            return fv_err_set(e, "welcome.heartbeat_interval %g is out of range (0, 3600]", w->heartbeat_interval);
        if (!(w->peer_timeout > 0 && w->peer_timeout <= 86400))
            return fv_err_set(e, "welcome.peer_timeout %g is out of range (0, 86400]", w->peer_timeout);
        if (w->n_params == 0) return fv_err_set(e, "welcome.n_params is 0");
        return 0;
    }
    case FEDVIM__ENVELOPE__BODY_TASK: {
        const Fedvim__Task *t = env->task;
        if (t->round < 1) return fv_err_set(e, "task.round is 0 (rounds start at 1)");
        if (bin_len(&t->model_hash, FV_HASH_BYTES, 0, "task.model_hash", e)) return -1;
        if (t->secagg_frac_bits > 30) return fv_err_set(e, "task.secagg_frac_bits %u is over 30", t->secagg_frac_bits);
        if (t->secagg_stat_bits > 30) return fv_err_set(e, "task.secagg_stat_bits %u is over 30", t->secagg_stat_bits);
        return check_shares(t->secagg_shares, t->n_secagg_shares, "task.secagg_shares", e);
    }
    case FEDVIM__ENVELOPE__BODY_SECAGG_REQUEST: {
        const Fedvim__SecAggRequest *q = env->secagg_request;
        if (q->round < 1) return fv_err_set(e, "secagg request round is 0 (rounds start at 1)");
        if (q->phase < FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS || q->phase > FEDVIM__SEC_AGG_PHASE__SECAGG_UNMASK)
            return fv_err_set(e, "secagg request has unknown phase %d", (int)q->phase);
        if (bin_len(&q->graph_seed, FV_SA_KEY_BYTES, 1, "secagg request graph_seed", e)) return -1;
        for (size_t i = 0; i < q->n_roster; i++)
            if (check_keys(q->roster[i], "secagg request roster", e)) return -1;
        return 0;
    }
    case FEDVIM__ENVELOPE__BODY_SECAGG_REPLY: {
        const Fedvim__SecAggReply *r = env->secagg_reply;
        if (r->round < 1) return fv_err_set(e, "secagg reply round is 0 (rounds start at 1)");
        if (r->phase < FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS || r->phase > FEDVIM__SEC_AGG_PHASE__SECAGG_UNMASK)
            return fv_err_set(e, "secagg reply has unknown phase %d", (int)r->phase);
        if ((r->phase == FEDVIM__SEC_AGG_PHASE__SECAGG_KEYS) != (r->keys != NULL))
            return fv_err_set(e, "secagg reply: keys come with phase KEYS, and only then");
        if (r->keys && check_keys(r->keys, "secagg reply keys", e)) return -1;
        if (check_shares(r->shares, r->n_shares, "secagg reply shares", e)) return -1;
        for (size_t i = 0; i < r->n_reveals; i++)
            if (bin_len(&r->reveals[i]->share, FV_SA_SHARE_BYTES, 0, "secagg reply reveal", e)) return -1;
        return 0;
    }
    case FEDVIM__ENVELOPE__BODY_UPDATE: {
        const Fedvim__Update *u = env->update;
        if (u->body.len == 0) return fv_err_set(e, "update has an empty body");
        if (u->body.len > FV_WIRE_MAX_UPDATE_BODY)
            return fv_err_set(e, "update body has %zu bytes, limit %u", u->body.len, FV_WIRE_MAX_UPDATE_BODY);
        /* an empty signature is structurally valid: fv_wire_open_update reports "unsigned" */
        if (bin_len(&u->signature, FV_SIG_BYTES, 1, "update.signature", e)) return -1;
        return 0;
    }
    case FEDVIM__ENVELOPE__BODY_HEARTBEAT: return 0;
    case FEDVIM__ENVELOPE__BODY_ERROR:
        return str_ok(env->error->message, FV_WIRE_MAX_TEXT, "error.message", e);
    case FEDVIM__ENVELOPE__BODY_SHUTDOWN:
        return str_ok(env->shutdown->reason, FV_WIRE_MAX_TEXT, "shutdown.reason", e);
    default: return fv_err_set(e, "message has no body");
    }
}

int fv_wire_decode(const uint8_t *hdr, size_t hlen, const size_t *frame_bytes, int nframes,
                   const fv_wire_limits *lim, Fedvim__Envelope **out, fv_err *e) {
    *out = NULL;
    size_t maxh = lim->max_header < FV_WIRE_MAX_HEADER ? lim->max_header : FV_WIRE_MAX_HEADER;
    if (hlen > maxh) return fv_err_set(e, "header of %zu bytes exceeds the limit of %zu", hlen, maxh);
    if (nframes < 0 || nframes > FV_WIRE_MAX_FRAMES)
        return fv_err_set(e, "%d payload frames, at most %d allowed", nframes, FV_WIRE_MAX_FRAMES);
    Fedvim__Envelope *env = fedvim__envelope__unpack(NULL, hlen, hdr);
    if (!env) return fv_err_set(e, "malformed protobuf header (%zu bytes)", hlen);
    if (env->protocol != FV_WIRE_PROTOCOL) {
        fv_err_set(e, "protocol version %u, this fedvim speaks %d (run the same fedvim version everywhere)",
                   env->protocol, FV_WIRE_PROTOCOL);
        goto fail;
    }
    if (env->n_frames != (size_t)nframes) {
        fv_err_set(e, "header declares %zu payload frames but %d arrived", env->n_frames, nframes);
        goto fail;
    }
    int seen[FV_WIRE_FRAME_KINDS] = {0};
    for (int i = 0; i < nframes; i++) {
        const Fedvim__Frame *f = env->frames[i];
        if (f->kind < FEDVIM__FRAME_KIND__FRAME_PARAMS || f->kind >= FV_WIRE_FRAME_KINDS) {
            fv_err_set(e, "frame %d has unknown kind %d", i, (int)f->kind);
            goto fail;
        }
        if (seen[f->kind]++) {
            fv_err_set(e, "frame kind %d appears twice", (int)f->kind);
            goto fail;
        }
        if (f->count == 0 || f->count > lim->max_count) {
            fv_err_set(e, "frame %d declares %llu elements, allowed 1..%llu", i,
                       (unsigned long long)f->count, (unsigned long long)lim->max_count);
            goto fail;
        }
        if (f->count > SIZE_MAX / 4 || frame_bytes[i] != f->count * 4) {
            fv_err_set(e, "frame %d has %zu bytes but declares %llu float32 elements", i, frame_bytes[i],
                       (unsigned long long)f->count);
            goto fail;
        }
    }
    if (check_body(env, e) != 0 || check_frames(env, e) != 0) goto fail;
    *out = env;
    return 0;
fail:
    fedvim__envelope__free_unpacked(env, NULL);
    return -1;
}

int fv_wire_decode_update_body(const uint8_t *b, size_t len, Fedvim__UpdateBody **out, fv_err *e) {
    *out = NULL;
    if (len > FV_WIRE_MAX_UPDATE_BODY)
        return fv_err_set(e, "update body of %zu bytes exceeds %u", len, FV_WIRE_MAX_UPDATE_BODY);
    Fedvim__UpdateBody *u = fedvim__update_body__unpack(NULL, len, b);
    if (!u) return fv_err_set(e, "malformed update body (%zu bytes)", len);
    if (u->n_frame_hash < 1 || u->n_frame_hash > FV_WIRE_MAX_FRAMES) {
        fv_err_set(e, "update body lists %zu frame hashes, expected 1..%d", u->n_frame_hash, FV_WIRE_MAX_FRAMES);
        goto fail;
    }
    for (size_t i = 0; i < u->n_frame_hash; i++)
        if (u->frame_hash[i].len != FV_HASH_BYTES) {
            fv_err_set(e, "frame hash %zu has %zu bytes, expected %d", i, u->frame_hash[i].len, FV_HASH_BYTES);
            goto fail;
        }
    if (u->round < 1) {
        fv_err_set(e, "update body round is 0");
        goto fail;
    }
    double stats[5] = {u->train_loss, u->train_accuracy, u->train_seconds, u->mix_seconds, u->vfe};
    for (int i = 0; i < 5; i++)
        if (!isfinite(stats[i]) || stats[i] < 0) {
            fv_err_set(e, "update statistics must be finite and >= 0");
            goto fail;
        }
    *out = u;
    return 0;
fail:
    fedvim__update_body__free_unpacked(u, NULL);
    return -1;
}

int fv_wire_send(void *sock, const uint8_t *route, size_t route_len, Fedvim__Envelope *env,
                 const fv_wire_frame *frames, int nframes, size_t *bytes, fv_err *e) {
    FV_ASSERT(nframes >= 0 && nframes <= FV_WIRE_MAX_FRAMES);
    Fedvim__Frame fr[FV_WIRE_MAX_FRAMES];
    Fedvim__Frame *frp[FV_WIRE_MAX_FRAMES];
    for (int i = 0; i < nframes; i++) {
        fedvim__frame__init(&fr[i]);
        fr[i].kind = frames[i].kind;
        fr[i].count = frames[i].count;
        frp[i] = &fr[i];
    }
    env->protocol = FV_WIRE_PROTOCOL;
    env->n_frames = (size_t)nframes;
    env->frames = nframes ? frp : NULL;
    size_t hlen = fedvim__envelope__get_packed_size(env);
    FV_ASSERT(hlen <= FV_WIRE_MAX_HEADER);
    uint8_t *hdr = fv_malloc(hlen);
    fedvim__envelope__pack(env, hdr);
    env->frames = NULL;
    env->n_frames = 0;
    size_t total = 0;
    int rc = 0;
    if (route && zmq_send(sock, route, route_len, ZMQ_SNDMORE) < 0) {
        rc = fv_err_set(e, "cannot send to peer: %s", zmq_strerror(errno));
        goto done;
    }
    if (zmq_send(sock, hdr, hlen, nframes ? ZMQ_SNDMORE : 0) < 0) {
        rc = fv_err_set(e, "cannot send %s message: %s", fv_wire_body_name(env->body_case), zmq_strerror(errno));
        goto done;
    }
    total += hlen;
    for (int i = 0; i < nframes; i++) {
        size_t nb = frames[i].count * sizeof(float);
        if (zmq_send(sock, frames[i].data, nb, i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0) {
            /* a partly sent multipart message is discarded by libzmq when the socket closes;
             * after a timeout mid-message the socket is not usable for this peer anyway */
            rc = fv_err_set(e, "cannot send frame %d (%zu bytes): %s", i, nb, zmq_strerror(errno));
            goto done;
        }
        total += nb;
    }
done:
    free(hdr);
    if (bytes) *bytes = rc == 0 ? total : 0;
    return rc;
}

void fv_wire_msg_close(fv_wire_msg *m) {
    if (!m) return;
    if (m->env) fedvim__envelope__free_unpacked(m->env, NULL);
    zmq_msg_t *parts = m->parts_;
    if (parts) {
        for (int i = 0; i < FV_WIRE_MAX_FRAMES; i++) zmq_msg_close(&parts[i]);
        free(parts);
    }
    for (int i = 0; i < FV_WIRE_MAX_FRAMES; i++) free(m->copy_[i]);
    memset(m, 0, sizeof *m);
}

static void drain(void *sock) {
    int more = 1;
    size_t ml = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
        zmq_msg_t t;
        zmq_msg_init(&t);
        if (zmq_msg_recv(&t, sock, 0) < 0) more = 0;
        zmq_msg_close(&t);
    }
}

int fv_wire_recv(void *sock, int router, const fv_wire_limits *lim, fv_wire_msg *m, fv_err *e) {
    memset(m, 0, sizeof *m);
    zmq_msg_t first;
    zmq_msg_init(&first);
    if (zmq_msg_recv(&first, sock, 0) < 0) {
        int err = errno;
        zmq_msg_close(&first);
        if (err == EAGAIN || err == EINTR) return 1;
        return fv_err_set(e, "receive failed: %s", zmq_strerror(err));
    }
    if (router) {
        size_t rl = zmq_msg_size(&first);
        if (rl > FV_WIRE_MAX_ROUTE) rl = FV_WIRE_MAX_ROUTE;
        memcpy(m->route, zmq_msg_data(&first), rl);
        m->route_len = rl;
        int more = zmq_msg_more(&first);
        zmq_msg_close(&first);
        if (!more) return fv_err_set(e, "message has a routing id but no header");
        zmq_msg_init(&first);
        if (zmq_msg_recv(&first, sock, 0) < 0) {
            zmq_msg_close(&first);
            return fv_err_set(e, "receive failed after the routing id: %s", zmq_strerror(errno));
        }
    }
    /* first = header; its metadata carries the ZAP User-Id (the routing-id part has none) */
    const char *uid = zmq_msg_gets(&first, "User-Id");
    if (uid) snprintf(m->user_id, sizeof m->user_id, "%s", uid);
    zmq_msg_t *parts = fv_calloc(FV_WIRE_MAX_FRAMES, sizeof(zmq_msg_t));
    for (int i = 0; i < FV_WIRE_MAX_FRAMES; i++) zmq_msg_init(&parts[i]);
    m->parts_ = parts;
    m->bytes = zmq_msg_size(&first);
    int more = zmq_msg_more(&first);
    int n = 0;
    while (more) {
        if (n == FV_WIRE_MAX_FRAMES) {
            drain(sock);
            zmq_msg_close(&first);
            return fv_err_set(e, "message has more than %d payload frames", FV_WIRE_MAX_FRAMES);
        }
        if (zmq_msg_recv(&parts[n], sock, 0) < 0) {
            zmq_msg_close(&first);
            return fv_err_set(e, "receive failed in a multipart message: %s", zmq_strerror(errno));
        }
        m->bytes += zmq_msg_size(&parts[n]);
        more = zmq_msg_more(&parts[n]);
        n++;
    }
    size_t fb[FV_WIRE_MAX_FRAMES] = {0};
    for (int i = 0; i < n; i++) fb[i] = zmq_msg_size(&parts[i]);
    int rc = fv_wire_decode(zmq_msg_data(&first), zmq_msg_size(&first), fb, n, lim, &m->env, e);
    zmq_msg_close(&first);
    if (rc != 0) return -1;
    m->nframes = n;
    for (int i = 0; i < n; i++) {
        const Fedvim__Frame *f = m->env->frames[i];
        void *d = zmq_msg_data(&parts[i]);
        m->count[i] = (size_t)f->count;
        m->kind[i] = f->kind;
        if (((uintptr_t)d & (sizeof(float) - 1)) != 0) {
            m->copy_[i] = fv_malloc(fb[i]);
            memcpy(m->copy_[i], d, fb[i]);
            m->frame[i] = m->copy_[i];
        } else {
            m->frame[i] = d;
        }
    }
    return 0;
}

void fv_wire_pack_update(Fedvim__UpdateBody *body, const fv_wire_frame *frames, int nframes,
                         const uint8_t *sign_sk, uint8_t **body_out, size_t *body_len,
                         uint8_t *sig) {
    FV_ASSERT(nframes >= 1 && nframes <= FV_WIRE_MAX_FRAMES && (!sign_sk || sig));
    uint8_t hashes[FV_WIRE_MAX_FRAMES][FV_HASH_BYTES];
    ProtobufCBinaryData hb[FV_WIRE_MAX_FRAMES];
    for (int i = 0; i < nframes; i++) {
        fv_hash(hashes[i], frames[i].data, frames[i].count * sizeof(float));
        hb[i].data = hashes[i];
        hb[i].len = FV_HASH_BYTES;
    }
    body->n_frame_hash = (size_t)nframes;
    body->frame_hash = hb;
    size_t len = fedvim__update_body__get_packed_size(body);
    FV_ASSERT(len <= FV_WIRE_MAX_UPDATE_BODY);
    uint8_t *buf = fv_malloc(len ? len : 1);
    fedvim__update_body__pack(body, buf);
    body->n_frame_hash = 0;
    body->frame_hash = NULL;
    if (sign_sk) fv_sign(sig, FV_UPDATE_SIGN_TAG, buf, len, sign_sk);
    *body_out = buf;
    *body_len = len;
}

int fv_wire_open_update(const fv_wire_msg *m, const uint8_t sign_pk[FV_SIGN_PK_BYTES],
                        Fedvim__UpdateBody **body, fv_err *e) {
    *body = NULL;
    FV_ASSERT(m->env && m->env->body_case == FEDVIM__ENVELOPE__BODY_UPDATE);
    const Fedvim__Update *u = m->env->update;
    if (u->signature.len == 0) return fv_err_set(e, "unsigned update");
    if (u->signature.len != FV_SIG_BYTES) return fv_err_set(e, "update signature has a wrong length");
    if (fv_verify(u->signature.data, FV_UPDATE_SIGN_TAG, u->body.data, u->body.len, sign_pk) != 0)
        return fv_err_set(e, "bad signature (tampered update or wrong key)");
    Fedvim__UpdateBody *b;
    if (fv_wire_decode_update_body(u->body.data, u->body.len, &b, e) != 0) return -1;
    if (b->n_frame_hash != (size_t)m->nframes) {
        fv_err_set(e, "signed body lists %zu frames but %d arrived", b->n_frame_hash, m->nframes);
        goto fail;
    }
    for (int i = 0; i < m->nframes; i++) {
        uint8_t h[FV_HASH_BYTES];
        fv_hash(h, m->frame[i], m->count[i] * sizeof(float));
        if (!fv_ct_equal(h, b->frame_hash[i].data, FV_HASH_BYTES)) {
            fv_err_set(e, "payload hash mismatch in frame %d (tampered payload)", i);
            goto fail;
        }
    }
    *body = b;
    return 0;
fail:
    fedvim__update_body__free_unpacked(b, NULL);
    return -1;
}

long fv_wire_first_nonfinite(const float *x, size_t n) {
    /* exponent bits all ones <=> Inf or NaN; a branch-free OR-reduction first, then locate */
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        acc |= ((u & 0x7f800000u) == 0x7f800000u);
    }
    if (!acc) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (long)i;
    return -1;
}

void fv_wire_sanitize(char *dst, size_t cap, const char *src) {
    FV_ASSERT(cap > 0);
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = 0;
}
