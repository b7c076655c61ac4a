/* cmd_keygen.c: `fedvim keygen`: create a VisualMixer client secret key file (32 random bytes,
 * mode 0600, written atomically, never replacing an existing file without --force). Everything
 * `fedvim mix` produces is reproducible from this key; keep it private. Not here: worker
 * identities (Ed25519 and CURVE keys), which the federated system creates in the same key-file
 * format. */
#include <stdio.h>

#include "cmds.h"
#include "flags.h"
#include "io/json.h"
#include "vmix/vmix_key.h"

int fv_cmd_keygen(int argc, char **argv) {
    const char *out = NULL;
    int force = 0, json = 0;
    fv_flag flags[] = {
        {"out", FV_FLAG_STRING, &out, "key file to create (required)", 0, 0},
        {"force", FV_FLAG_BOOL, &force, "replace an existing key file (its old key is lost)", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print one JSON object last on stdout", 0, 0},
    };
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    int r = fv_flags_parse("keygen", "--out FILE [flags]", flags, sizeof flags / sizeof flags[0], argc, argv, pos, 0,
                           &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "fedvim keygen: --out FILE is required\n");
        return 2;
    }
    if (fv_vmix_key_generate(out, force, &e) != 0) {
        fprintf(stderr, "fedvim keygen: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "keygen: wrote VisualMixer secret key %s (mode 0600)\n", out);
    if (json) {
        fv_json j;
        fv_json_begin(&j);
        fv_json_str(&j, "key", out);
        fv_json_str(&j, "kind", FV_VMIX_KEY_KIND);
        printf("%s\n", fv_json_end(&j));
        fv_json_free(&j);
    }
    return 0;
}
