/* wire.h: fedvim's messages on ZeroMQ: one protobuf Envelope (proto/fedvim.proto) followed by
 * binary tensor frames (little-endian float32), plus the signing of updates.
 *
 * Every size is bounded and checked before it is used: libzmq refuses any part larger than the
 * socket's ZMQ_MAXMSGSIZE (transport.h), and fv_wire_decode checks the header length, the part
 * count, each frame's declared element count against the receiver's limit and against its byte
 * length, and every field of the body (key, hash and signature lengths, string lengths, ranges)
 * before the caller sees the message. A message that fails any check is an ordinary error
 * (-1 and a message), never a crash.
 *
 * Update signing: the worker serialises an UpdateBody (which lists the BLAKE2b-256 hash of each
 * payload frame), signs FV_UPDATE_SIGN_TAG || body with its Ed25519 key, and sends body and
 * signature in an Update (fv_wire_pack_update; without security the same body goes unsigned);
 * fv_wire_open_update checks the signature, decodes the body and checks
 * the frame hashes, so round, client id, task id, session, sample count and payload are all
 * covered.
 * Not here: sockets, CURVE and the ZAP handler (transport.h); keys (crypto.h); what a role does
 * with a message (coordinator/, worker/).
 */
#ifndef FV_WIRE_H
#define FV_WIRE_H
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "fedvim.pb-c.h"
#include "fv_common.h"

#define FV_WIRE_PROTOCOL 1
#define FV_WIRE_MAX_FRAMES 2            /* payload frames per message */
#define FV_WIRE_FRAME_KINDS 5           /* FrameKind values 0..4 (0: unspecified, never valid) */
#define FV_WIRE_MAX_HEADER (1u << 20)   /* bytes of one protobuf Envelope */
#define FV_WIRE_MAX_CONFIG (256u << 10) /* bytes of Welcome.config_ini */
#define FV_WIRE_MAX_TEXT 1024           /* names, error messages, reasons */
#define FV_WIRE_MAX_UPDATE_BODY 4096    /* bytes of a serialised UpdateBody */
#define FV_WIRE_MAX_ROUTE 255           /* ZeroMQ routing ids are at most 255 bytes */
#define FV_UPDATE_SIGN_TAG "fedvim-update-v1"

/* Error codes carried in Error.code. */
enum {
    FV_WIRE_ERR_PROTOCOL = 1,   /* protocol version mismatch */
    FV_WIRE_ERR_BAD_MESSAGE = 2,/* the peer could not decode or accept a message */
    FV_WIRE_ERR_REJECTED = 3,   /* the coordinator refuses this worker (not allowed, banned) */
    FV_WIRE_ERR_TASK_FAILED = 4,/* a worker could not run a task (message says why) */
    FV_WIRE_ERR_CONFIG = 5,     /* a worker cannot serve this experiment (data, model, memory) */
    FV_WIRE_ERR_NO_MODEL = 6,   /* a task named a model the worker does not hold: send it again */
    FV_WIRE_ERR_DIVERGED = 7,   /* the client's local training diverged (non-finite parameters):
                                 * an honest outcome, not a fault; the client sits the round out */
};

/* Receiver limits. */
typedef struct {
    size_t max_header;   /* bytes of the Envelope (<= FV_WIRE_MAX_HEADER) */
    uint64_t max_count;  /* float32 elements per frame */
} fv_wire_limits;

/* A payload frame to send. */
typedef struct {
    Fedvim__FrameKind kind;
    const float *data;
    size_t count; /* elements */
} fv_wire_frame;

/* A received, decoded message. The frame pointers stay valid until fv_wire_msg_close. */
typedef struct {
    Fedvim__Envelope *env;                  /* decoded header (owned) */
    int nframes;
    const float *frame[FV_WIRE_MAX_FRAMES]; /* 4-byte aligned views of the payload frames */
    size_t count[FV_WIRE_MAX_FRAMES];       /* elements */
    Fedvim__FrameKind kind[FV_WIRE_MAX_FRAMES];
    uint8_t route[FV_WIRE_MAX_ROUTE];       /* sender's routing id (ROUTER sockets only) */
    size_t route_len;
    char user_id[128];                      /* ZAP User-Id of the connection ("" when none) */
    size_t bytes;                           /* total bytes received, routing id excluded */
    /* internal */
    void *parts_;                           /* zmq_msg_t[FV_WIRE_MAX_FRAMES] */
    float *copy_[FV_WIRE_MAX_FRAMES];       /* aligned copies when a part was unaligned */
} fv_wire_msg;

/* Decode and validate an Envelope from hdr[0..hlen) that arrived with nframes payload frames of
 * frame_bytes[i] bytes. Checks: hlen <= lim->max_header; protobuf syntax; protocol version;
 * a body is set; the Envelope declares exactly nframes frames, each of a known kind, at most
 * once per kind, count <= lim->max_count, frame_bytes == 4 * count; the body's fields (lengths of
 * keys, hashes, signatures and strings; round >= 1). On success *out is owned by the caller
 * (free with fedvim__envelope__free_unpacked(*out, NULL)). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_wire_decode(const uint8_t *hdr, size_t hlen, const size_t *frame_bytes, int nframes,
                   const fv_wire_limits *lim, Fedvim__Envelope **out, fv_err *e);

/* Decode and validate a serialised UpdateBody (at most FV_WIRE_MAX_UPDATE_BODY bytes, at most
 * FV_WIRE_MAX_FRAMES hashes of FV_HASH_BYTES, finite statistics). Caller frees *out with
 * fedvim__update_body__free_unpacked. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_wire_decode_update_body(const uint8_t *b, size_t len, Fedvim__UpdateBody **out, fv_err *e);

/* Send env (its `protocol` and `frames` fields are filled here) and the frames, preceded by the
 * routing id when route != NULL (ROUTER sockets). Blocks at most the socket's ZMQ_SNDTIMEO.
 * *bytes (may be NULL) gets the bytes sent, routing id excluded. Returns 0 or -1 with e set
 * (peer unreachable, timeout). */
FV_MUST_USE int fv_wire_send(void *sock, const uint8_t *route, size_t route_len, Fedvim__Envelope *env,
                 const fv_wire_frame *frames, int nframes, size_t *bytes, fv_err *e);

/* Receive one whole message (all parts, even on failure) and decode it. `router` != 0 expects
 * a routing-id part first. Returns 0 with *m filled; 1 when nothing arrived (non-blocking socket
 * or ZMQ_RCVTIMEO); -1 with e set when the message was malformed (m->route, m->user_id and
 * m->bytes are still filled so the caller can say who sent it, and m must still be closed).
 * Always call fv_wire_msg_close afterwards. */
FV_MUST_USE int fv_wire_recv(void *sock, int router, const fv_wire_limits *lim, fv_wire_msg *m, fv_err *e);

/* Release a received message. Accepts a zeroed or already closed message. */
void fv_wire_msg_close(fv_wire_msg *m);

/* Pack an Update's body, signed or not: fills *body_out (the serialised UpdateBody, caller frees
 * with free()) from `body` with its frame_hash list computed here from frames[0..nframes)
 * (1 <= nframes <= FV_WIRE_MAX_FRAMES; body's frame_hash fields are left empty afterwards). With
 * sign_sk, sig gets the Ed25519 signature (FV_SIG_BYTES) of FV_UPDATE_SIGN_TAG || body; with
 * sign_sk NULL (no security) the body is the same bytes, unsigned, and sig is not touched (may be
 * NULL). The one place an UpdateBody is packed, so signed and unsigned updates list their frames
 * the same way. */
void fv_wire_pack_update(Fedvim__UpdateBody *body, const fv_wire_frame *frames, int nframes,
                         const uint8_t *sign_sk, uint8_t **body_out, size_t *body_len,
                         uint8_t *sig);

/* Open a received Update message m (body case UPDATE): check that it is signed, that the
 * signature verifies with sign_pk, decode the body and check that its frame hashes match the
 * frames that arrived. On success *body is owned by the caller. Returns 0 or -1 with e saying
 * which check failed ("unsigned", "bad signature", "payload hash mismatch", ...). */
FV_MUST_USE int fv_wire_open_update(const fv_wire_msg *m, const uint8_t sign_pk[FV_SIGN_PK_BYTES],
                        Fedvim__UpdateBody **body, fv_err *e);

/* Index of the first non-finite value in x[0..n), or -1 when all are finite. */
long fv_wire_first_nonfinite(const float *x, size_t n);

/* Copy a peer-supplied string for a log line: at most cap-1 bytes, every byte outside printable
 * ASCII replaced by '?', so a peer cannot inject terminal escapes or fake log lines. */
void fv_wire_sanitize(char *dst, size_t cap, const char *src);

/* The name of a body case ("join", "task", ...), for logs. */
const char *fv_wire_body_name(Fedvim__Envelope__BodyCase c);

#endif
