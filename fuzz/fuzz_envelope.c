/* fuzz_envelope.c: libFuzzer harness for the wire decoders a peer can reach: fv_wire_decode (the
 * protobuf Envelope with its declared payload frames) and, for updates, fv_wire_open_update and
 * fv_wire_decode_update_body. Input layout: byte 0 = number of payload frames (mod 4), then per
 * frame a 2-byte little-endian length, then a 2-byte header length, the header, and the frames'
 * bytes (short input is zero-padded). Any crash, leak or sanitizer report is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fl/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t take(const uint8_t **p, size_t *left, void *out, size_t n) {
    size_t k = n < *left ? n : *left;
    memset(out, 0, n);
    memcpy(out, *p, k);
    *p += k;
    *left -= k;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data;
    size_t left = size;
    uint8_t nf = 0;
    take(&p, &left, &nf, 1);
    nf %= 4; /* up to one more than allowed, so the count check is exercised */
    size_t fl[4] = {0};
    for (int i = 0; i < nf; i++) {
        uint8_t b[2];
        take(&p, &left, b, 2);
        fl[i] = (size_t)(b[0] | b[1] << 8) % 4097;
    }
    uint8_t hb[2];
    take(&p, &left, hb, 2);
    size_t hlen = (size_t)(hb[0] | hb[1] << 8);
    if (hlen > left) hlen = left;
    uint8_t *hdr = malloc(hlen ? hlen : 1);
    take(&p, &left, hdr, hlen);
    float *frames[4] = {0};
    for (int i = 0; i < nf; i++) {
        frames[i] = malloc(fl[i] ? fl[i] : 1);
        take(&p, &left, frames[i], fl[i]);
    }
    fv_wire_limits lim = {FV_WIRE_MAX_HEADER, 1024};
    Fedvim__Envelope *env = NULL;
    fv_err e;
    if (fv_wire_decode(hdr, hlen, fl, nf, &lim, &env, &e) == 0) {
        if (env->body_case == FEDVIM__ENVELOPE__BODY_UPDATE) {
            fv_wire_msg m;
            memset(&m, 0, sizeof m);
            m.env = env;
            m.nframes = nf;
            for (int i = 0; i < nf; i++) {
                m.frame[i] = frames[i];
                m.count[i] = fl[i] / 4;
                m.kind[i] = env->frames[i]->kind;
            }
            static const uint8_t pk[FV_SIGN_PK_BYTES] = {1};
            Fedvim__UpdateBody *b = NULL;
            if (fv_wire_open_update(&m, pk, &b, &e) == 0) fedvim__update_body__free_unpacked(b, NULL);
            if (fv_wire_decode_update_body(env->update->body.data, env->update->body.len, &b, &e) == 0)
                fedvim__update_body__free_unpacked(b, NULL);
        }
        for (int i = 0; i < nf; i++)
            if (fl[i] >= 4) (void)fv_wire_first_nonfinite(frames[i], fl[i] / 4);
        char s[64];
        if (env->body_case == FEDVIM__ENVELOPE__BODY_JOIN) fv_wire_sanitize(s, sizeof s, env->join->worker_name);
        fedvim__envelope__free_unpacked(env, NULL);
    }
    for (int i = 0; i < nf; i++) free(frames[i]);
    free(hdr);
    return 0;
}
