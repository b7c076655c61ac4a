/* cmd_worker.c: `fedvim worker --connect tcp://HOST:PORT ...`: serve a coordinator's clients from
 * this machine (multi-host runs; `fedvim run` starts local workers the same way). Also
 * `fedvim worker --gen-key FILE`: create this worker's identity (FILE secret, FILE.pub the line
 * to add to the coordinator's allow-list).
 * Not here: the worker logic (worker/worker.h).
 */
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "crypto.h"
#include "flags.h"
#include "worker.h"

int fv_cmd_worker(int argc, char **argv) {
    const char *connect = NULL, *key = NULL, *server_key = NULL, *client_keys = NULL, *data = NULL, *name = NULL,
               *gen = NULL, *device = "cpu";
    int threads = 0, insecure = 0, quiet = 0, max_mb = 2048;
    double timeout = 60;
    fv_flag flags[] = {
        {"connect", FV_FLAG_STRING, &connect, "coordinator endpoint, e.g. tcp://head-node:5555", 0, 0},
        {"key", FV_FLAG_STRING, &key, "this worker's identity key file (fedvim worker --gen-key)", 0, 0},
        {"server-key", FV_FLAG_STRING, &server_key, "the coordinator's public identity file (its KEY.pub)", 0, 0},
        {"client-keys", FV_FLAG_STRING, &client_keys,
         "VisualMixer master secret of the virtual clients (fedvim keygen --out FILE; same file on every worker)", 0, 0},
        {"data", FV_FLAG_STRING, &data, "data folder on this machine (overrides the config's data.dir)", 0, 0},
        {"name", FV_FLAG_STRING, &name, "name in the coordinator's logs (default host:pid)", 0, 0},
        {"threads", FV_FLAG_INT, &threads, "compute threads (0: the config's training.threads)", 0, 1024},
        {"device", FV_FLAG_STRING, &device, "cpu, or cuda[:N]: train on CUDA device N (a CUDA build)", 0, 0},
        {"connect-timeout", FV_FLAG_FLOAT, &timeout, "seconds to wait for the coordinator's welcome", 0.1, 86400},
        {"max-message-mb", FV_FLAG_INT, &max_mb, "largest message part accepted (MB)", 1, 1 << 20},
        {"insecure", FV_FLAG_BOOL, &insecure, "no CURVE, no signatures (only with security.enabled = false)", 0, 0},
        {"gen-key", FV_FLAG_STRING, &gen, "create an identity key file (and FILE.pub) and exit", 0, 0},
        {"quiet", FV_FLAG_BOOL, &quiet, "no log lines", 0, 0},
    };
    const char *pos[1];
    int npos;
    fv_err e = {{0}};
    const char *usage = "--connect tcp://HOST:PORT --key FILE --server-key FILE.pub [flags]\n"
                        "       fedvim worker --gen-key FILE";
    int r = fv_flags_parse("worker", usage, flags, sizeof flags / sizeof flags[0], argc, argv, pos, 0, &npos, &e);
    if (r == 1) return 0;
    if (r < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 2;
    }
    if (gen) {
        fv_identity id;
        fv_identity_generate(&id);
        int rc = fv_identity_save(gen, &id, &e);
        char line[FV_PUBID_STR_LEN + 1];
        fv_pubid_format(line, sizeof line, &id.pub);
        fv_identity_wipe(&id);
        if (rc != 0) {
            fprintf(stderr, "fedvim worker: %s\n", e.msg);
            return 1;
        }
        printf("%s\n", line);
        fprintf(stderr, "worker: wrote %s (secret, mode 0600) and %s.pub; add the line above to the "
                        "coordinator's allow-list\n", gen, gen);
        return 0;
    }
    if (!connect) {
        fprintf(stderr, "fedvim worker: --connect is required\n");
        return 2;
    }
    if (!insecure && (!key || !server_key)) {
        fprintf(stderr, "fedvim worker: --key and --server-key are required (or --insecure with security off)\n");
        return 2;
    }
    fv_identity id;
    fv_public_id server;
    if (!insecure && (fv_identity_load(key, &id, &e) != 0 || fv_pubid_load(server_key, &server, &e) != 0)) {
        fprintf(stderr, "fedvim worker: %s\n", e.msg);
        fv_identity_wipe(&id);
        return 1;
    }
    fv_worker_opts o = {
        .connect = connect,
        .id = insecure ? NULL : &id,
        .server_pk = insecure ? NULL : server.curve_pk,
        .client_keys = client_keys,
        .data_dir = data,
        .name = name,
        .threads = threads,
        .device = device,
        .connect_timeout = timeout,
        .max_message = (size_t)max_mb << 20,
        .quiet = quiet,
    };
    int rc = fv_worker_run(&o, &e);
    fv_identity_wipe(&id);
    if (rc != 0) {
        fprintf(stderr, "fedvim worker: %s\n", e.msg);
        return 1;
    }
    return 0;
}
