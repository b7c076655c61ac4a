/* cmd_coordinator.c: `fedvim coordinator EXP.ini --bind tcp://0.0.0.0:PORT --key FILE --allow FILE`:
 * the server of a multi-host run; workers join with `fedvim worker --connect`. Results go to
 * output.dir/output.name as with `fedvim run`; `--resume DIR` continues a stopped run. Also
 * `fedvim coordinator --gen-key FILE` creates the coordinator's identity (FILE.pub is what
 * workers pass as --server-key).
 * Not here: the coordinator logic (coordinator/coordinator.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "fl/config.h"
#include "coordinator.h"
#include "crypto.h"
#include "fl_cli.h"
#include "flags.h"

int fv_cmd_coordinator(int argc, char **argv) {
    const char *bind = NULL, *key = NULL, *allow_path = NULL, *resume = NULL, *eval_key = NULL, *data = NULL,
               *gen = NULL, *client_keys = NULL;
    int json = 0, quiet = 0, overwrite = 0, threads = 1;
    fv_flag flags[] = {
        {"bind", FV_FLAG_STRING, &bind, "endpoint to listen on, e.g. tcp://*:5555", 0, 0},
        {"key", FV_FLAG_STRING, &key, "the coordinator's identity key file (--gen-key)", 0, 0},
        {"allow", FV_FLAG_STRING, &allow_path, "allow-list: one worker public identity (fvid1 line) per line", 0, 0},
        {"eval-key", FV_FLAG_STRING, &eval_key, "VisualMixer secret for mixing test images (fedvim keygen)", 0, 0},
        {"client-keys", FV_FLAG_STRING, &client_keys,
         "evaluation only: the clients' VisualMixer key file, so that [attack] dlg / invert also measure "
         "against the images the victim trained on (a simulator holds it; a real server does not)", 0, 0},
        {"resume", FV_FLAG_STRING, &resume, "continue the stopped run in this results folder", 0, 0},
        {"overwrite", FV_FLAG_BOOL, &overwrite, "replace the results of an earlier run of the same name", 0, 0},
        {"data", FV_FLAG_STRING, &data, "data folder (overrides data.dir)", 0, 0},
        {"threads", FV_FLAG_INT, &threads, "evaluation threads", 1, 1024},
        {"gen-key", FV_FLAG_STRING, &gen, "create an identity key file (and FILE.pub) and exit", 0, 0},
        {"json", FV_FLAG_BOOL, &json, "print the summary as one JSON object last on stdout", 0, 0},
        {"quiet", FV_FLAG_BOOL, &quiet, "no progress lines", 0, 0},
    };
    const char *usage = "EXP.ini --bind tcp://*:PORT --key FILE --allow FILE [--set section.key=value ...] [flags]\n"
                        "       fedvim coordinator --resume RESULTS_DIR --bind ... --key ... --allow ...\n"
                        "       fedvim coordinator --gen-key FILE";
    const char *sets[FV_FLCLI_MAX_SETS];
    int nsets = 0;
    fv_err e = {{0}};
    if (fv_flcli_take_sets(&argc, argv, sets, &nsets, &e) != 0) {
        fprintf(stderr, "fedvim coordinator: %s\n", e.msg);
        return 2;
    }
    const char *pos[1];
    int npos = 0;
    int r = fv_flags_parse("coordinator", usage, flags, sizeof flags / sizeof flags[0], argc, argv, pos, 1, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (gen) {
        fv_identity id;
        fv_identity_generate(&id);
        int rc = fv_identity_save(gen, &id, &e);
        fv_identity_wipe(&id);
        if (rc != 0) {
            fprintf(stderr, "fedvim coordinator: %s\n", e.msg);
            return 1;
        }
        fprintf(stderr, "coordinator: wrote %s (secret, mode 0600) and %s.pub (give it to workers as --server-key)\n",
                gen, gen);
        return 0;
    }
    if (!bind || (resume ? npos != 0 : npos != 1)) {
        fv_flags_help(stderr, "coordinator", usage, flags, sizeof flags / sizeof flags[0]);
        return 2;
    }
    if (resume && nsets) {
        fprintf(stderr, "fedvim coordinator: --resume takes no --set: the run continues exactly as it started\n");
        return 2;
    }
    fv_config cfg;
    char dir[1024];
    char *text = NULL;
    if (resume) {
        r = fv_flcli_reopen(resume, &cfg, &text, &e);
        if (r == 1) {
            fprintf(stderr, "fedvim coordinator: %s already completed all its rounds\n", resume);
            free(text);
            return 1;
        }
        snprintf(dir, sizeof dir, "%s", resume);
    } else {
        r = fv_flcli_prepare(pos[0], sets, nsets, overwrite, &cfg, dir, sizeof dir, &text, &e);
    }
    if (r < 0) {
        fprintf(stderr, "fedvim coordinator: %s\n", e.msg);
        return 1;
    }
    fv_identity id;
    fv_allowlist allow = {0};
    if (cfg.security) {
        if (!key || !allow_path) {
            fprintf(stderr, "fedvim coordinator: security is on: --key and --allow are required\n");
            free(text);
            return 2;
        }
        if (fv_identity_load(key, &id, &e) != 0 || fv_allowlist_load(allow_path, 100000, &allow, &e) != 0) {
            fprintf(stderr, "fedvim coordinator: %s\n", e.msg);
            fv_identity_wipe(&id);
            free(text);
            return 1;
        }
    }
    if (cfg.vmix && !eval_key) {
        fprintf(stderr, "fedvim coordinator: visualmixer is on: --eval-key FILE is required (fedvim keygen --out FILE)\n");
        free(text);
        return 2;
    }
    fv_coord_opts o = {
        .cfg = &cfg,
        .config_text = text,
        .bind = bind,
        .id = cfg.security ? &id : NULL,
        .allow = cfg.security ? &allow : NULL,
        .dir = dir,
        .resume = resume != NULL,
        .eval_key = eval_key,
        .data_dir = data,
        .client_keys = client_keys,
        .threads = threads,
        .quiet = quiet,
    };
    fv_coord *c = fv_coord_new(&o, &e);
    fv_identity_wipe(&id);
    fv_allowlist_free(&allow);
    int rc = c ? fv_coord_run(c, &e) : -1;
    if (rc != 0) fprintf(stderr, "fedvim coordinator: %s\n", e.msg);
    else if (json) printf("%s\n", fv_coord_summary(c));
    else if (!quiet) fv_flcli_print_summary(stderr, fv_coord_summary(c));
    fv_coord_destroy(&c);
    free(text);
    return rc == 0 ? 0 : 1;
}
