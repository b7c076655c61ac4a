/* vmix_key.h: a VisualMixer client's secret key file: 32 random bytes in crypto.h's key-file
 * format (magic and version line "fedvim-key 1", "kind vmix-secret", field "secret" in hex),
 * mode 0600. Everything the client mixes is reproducible from this secret (see vmix.h).
 * Not here: the key-file format itself (crypto.h) and the mixing (vmix.h).
 */
#ifndef FV_VMIX_KEY_H
#define FV_VMIX_KEY_H
#include <stdint.h>

#include "fv_common.h"
#include "vmix/vmix.h"

#define FV_VMIX_KEY_KIND "vmix-secret"

/* Create a fresh secret key file at path from libsodium's CSPRNG, mode 0600, atomically. An
 * existing path is never replaced unless force != 0 (the no-replace check is itself atomic:
 * link(2) of a finished temporary file). Returns 0, or -1 with e naming the path. */
FV_MUST_USE int fv_vmix_key_generate(const char *path, int force, fv_err *e);

/* Read the secret from a key file written by fv_vmix_key_generate. Missing, short, malformed,
 * wrong-kind or group/other-readable files are errors naming the path. secret is wiped on
 * failure. Returns 0 or -1. */
FV_MUST_USE int fv_vmix_key_load(const char *path, uint8_t secret[FV_VMIX_KEY_BYTES], fv_err *e);

#endif
