/* fuzz_text.c: libFuzzer harness for fedvim's text decoders: the experiment config (INI; a worker
 * parses the one its coordinator sends), key files and public identities. Byte 0 selects the
 * decoder, the rest is the input. Any crash, leak or sanitizer report is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fl/config.h"
#include "crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    fv_err e;
    switch (data[0] % 3) {
    case 0: {
        fv_config c;
        fv_config_defaults(&c);
        if (fv_config_parse(&c, "fuzz.ini", text, len, &e) == 0) {
            (void)fv_config_check(&c, &e);
            char *w = fv_config_write(&c);
            fv_config c2;
            fv_config_defaults(&c2);
            /* what we write must read back */
            if (fv_config_parse(&c2, "resolved", w, strlen(w), &e) != 0) abort();
            free(w);
        }
        break;
    }
    case 1: {
        uint8_t a[32], b[64];
        fv_keyfield f[2] = {{"curve-public", a, 32}, {"sign-secret", b, 64}};
        (void)fv_keyfile_parse("fuzz.key", text, len, "identity-secret", f, 2, &e);
        break;
    }
    default: {
        fv_public_id pub;
        (void)fv_pubid_parse(text, len, &pub, "fuzz", &e);
        break;
    }
    }
    return 0;
}
