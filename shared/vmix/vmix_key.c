/* vmix_key.c: see vmix_key.h. */
#include "vmix/vmix_key.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"

int fv_vmix_key_generate(const char *path, int force, fv_err *e) {
    fv_crypto_init();
    uint8_t secret[FV_VMIX_KEY_BYTES];
    fv_random_bytes(secret, sizeof secret);
    fv_keyfield f = {"secret", secret, sizeof secret};
    int rc;
    if (force) {
        rc = fv_keyfile_write(path, FV_VMIX_KEY_KIND, &f, 1, 1, e);
    } else {
        /* finish a private temporary file next to path, then link it into place: link(2) fails
         * with EEXIST atomically, so an existing key is never replaced */
        size_t pl = strlen(path);
        char *tmp = fv_malloc(pl + 48);
        uint8_t r[4];
        fv_random_bytes(r, sizeof r);
        snprintf(tmp, pl + 48, "%s.new.%ld.%02x%02x%02x%02x", path, (long)getpid(), r[0], r[1], r[2], r[3]);
        rc = fv_keyfile_write(tmp, FV_VMIX_KEY_KIND, &f, 1, 1, e);
        if (rc == 0) {
            if (link(tmp, path) != 0) {
                if (errno == EEXIST)
                    rc = fv_err_set(e, "key file %s already exists: refusing to overwrite it (use --force)", path);
                else
                    rc = fv_err_set(e, "cannot create key file %s: %s", path, strerror(errno));
            }
            unlink(tmp);
        }
        free(tmp);
    }
    sodium_memzero(secret, sizeof secret);
    return rc;
}

int fv_vmix_key_load(const char *path, uint8_t secret[FV_VMIX_KEY_BYTES], fv_err *e) {
    fv_crypto_init();
    fv_keyfield f = {"secret", secret, FV_VMIX_KEY_BYTES};
    if (fv_keyfile_read(path, FV_VMIX_KEY_KIND, &f, 1, 1, e) != 0) {
        sodium_memzero(secret, FV_VMIX_KEY_BYTES);
        return fv_err_prefix(e, "VisualMixer key: ");
    }
    return 0;
}
