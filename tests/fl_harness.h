/* fl_harness.h: what the end-to-end federated tests share: a scratch folder, running the built
 * `fedvim` binary with a deadline, writing experiment files and reading results back.
 * Not here: any assertion about a case's results (each test states its own) beyond the checks
 * its helpers share (a run's model is the undisturbed one, a scene's processes exit cleanly).
 * Failures to run are cmocka failures of the calling test. */
#ifndef FV_FL_HARNESS_H
#define FV_FL_HARNESS_H
#include <stddef.h>

#include "fv_common.h"
#include "nn/net.h"

typedef struct {
    const char *bin; /* the fedvim binary ($FEDVIM_BIN) */
    char root[64];   /* the scratch folder, removed by fh_cleanup */
    const char *bind; /* where fh_coordinator binds; NULL: a free localhost TCP port */
} fh_ctx;

/* Find $FEDVIM_BIN and make a fresh /tmp/fv_<name>_XXXXXX. Returns 0; 77 (skip) when the binary
 * is missing; -1 when the folder cannot be made. */
int fh_init(fh_ctx *c, const char *name);
/* Remove the scratch folder. */
void fh_cleanup(fh_ctx *c);
/* out = root + "/" + printf(fmt, ...). */
void fh_path(const fh_ctx *c, char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Write text to path (fails the test on error). */
void fh_put(const char *path, const char *text);
/* The whole file as a fresh NUL-terminated string (caller frees); NULL if unreadable. */
char *fh_slurp(const char *path);
/* The file results/<name>/<file> of a run in c's scratch folder as a fresh string (caller
 * frees); NULL when it is unreadable (absent: a run that did not finish). */
char *fh_results_file(const fh_ctx *c, const char *name, const char *file);
/* The run's params_hash from its summary.json (64 hex digits) into out[65]; fails the test when
 * the summary or the hash is missing. */
void fh_params_hash(const fh_ctx *c, const char *name, char out[65]);
/* The run's final test accuracy (summary.json "test_accuracy"); fails the test without a summary. */
double fh_final_accuracy(const fh_ctx *c, const char *name);
/* Line i (0-based) of text as a fresh string (caller frees); NULL past the end. */
char *fh_line(const char *text, int i);
/* The python3 that imports torch and numpy (Debian's /usr/bin/python3 first, then PATH's), or
 * NULL when there is none: the PyTorch parity tests skip (77) then. */
const char *fh_torch_python(void);
/* Write bytes of p to dir/name (fails the test on error). */
void fh_dump(const char *dir, const char *name, const void *p, size_t bytes);
/* The ReLU masks of net's last forward (batch images), one byte per ReLU output (1: positive), in
 * node order, to dir/masks_K.bin; with k == 0 also the per-ReLU sizes, one per line, to
 * dir/masks.txt. The PyTorch references replay them (tests/torch_models.py load_masks), so both
 * sides take the same side of every kink. Fails the test on a write error. */
void fh_dump_relu_masks(const char *dir, const fv_net *net, int batch, int k);
/* Number of '\n' in text (0 for NULL). */
int fh_count_lines(const char *text);
/* The number after "key": in a flat JSON text; NAN when absent. */
double fh_json_num(const char *json, const char *key);
/* Run fedvim with the NULL-terminated arguments, stdout and stderr to `out`; kill it and fail the
 * test after `timeout` seconds. Returns the exit status (128 + signal when killed by one); prints
 * the output when non-zero. */
int fh_run(const fh_ctx *c, const char *out, double timeout, ...);
/* Write NAME.ini = base + "[output] dir = ROOT/results" + extra, run `fedvim run NAME.ini --quiet
 * --overwrite` with a 300 s deadline, output to NAME.out. Returns the exit status. */
int fh_run_exp(const fh_ctx *c, const char *name, const char *base, const char *extra);
/* A minimal valid config (synthetic data, 4 clients, 5 rounds, lr 0.1) of 7 lines: what the
 * config-error tests add their bad lines to (which then start on line 8). */
#define FH_SYNTH_INI "[data]\ndataset = synthetic\n[fl]\nclients = 4\nrounds = 5\n[training]\nlr = 0.1\n"
/* Whether the file at path holds needle (0 when it is unreadable). */
int fh_contains(const char *path, const char *needle);
/* fh_contains of the scratch folder's file rel. */
int fh_file_has(const fh_ctx *c, const char *rel, const char *needle);
/* Whether NAME.out (fh_run_exp's output) holds needle; when it does not, prints the output to
 * stderr so that the failing test shows what the run said instead. */
int fh_out_has(const fh_ctx *c, const char *name, const char *needle);
/* Whether files a and b both exist and hold the same bytes. */
int fh_same_file(const char *a, const char *b);
/* The string value of "key":"..." in a flat JSON text into out[cap] (truncated to fit). Returns 0;
 * -1 when the key is absent. */
FV_MUST_USE int fh_json_str(const char *json, const char *key, char *out, size_t cap);
/* params_hash of ROOT/results/<name>/summary.json into out[cap]; fails the test when it is absent. */
void fh_model_hash(const fh_ctx *c, const char *name, char *out, size_t cap);
/* Write ROOT/<name>.ini: the [data], [fl] and [training] section bodies given, [output] dir =
 * ROOT/results, then `extra` lines (NULL: none; later keys must not repeat earlier ones). */
void fh_config(const fh_ctx *c, const char *name, const char *data, const char *fl, const char *training,
               const char *extra);
/* `fedvim run ROOT/<name>.ini --quiet --overwrite a1 a2` (a1, a2: extra arguments, NULL for none; a2
 * only after a1), output to ROOT/<name>.out, failing the test after timeout s. Returns the exit
 * status (prints the output when non-zero). */
int fh_run_cfg(const fh_ctx *c, const char *name, double timeout, const char *a1, const char *a2);
/* What a test process does once before its cases: crypto initialised, SIGPIPE ignored (a peer
 * that closes early must not kill the test). A cmocka group setup; always returns 0. */
int fh_group_setup(void **state);
/* The [data] body of a small synthetic set: 1,600 training and 400 test images. */
#define FH_SYN_DATA "dataset = synthetic\ntrain_size = 1600\ntest_size = 400"
/* Parse base_ini + extra + "\n" as "t.ini" and check it: the config must be rejected with a
 * message holding n1 and, when not NULL, n2 (fails the test otherwise, and when the text does not
 * fit the 4 KiB buffer). */
void fh_expect_config_error(const char *base_ini, const char *extra, const char *n1, const char *n2);

/* ---- a rogue client with a valid key: a scripted fake worker speaking the wire protocol ---- */
#include <stdint.h>
#include <sys/types.h>

#include "crypto.h"
#include "fl/wire.h"

typedef struct {
    void *ctx, *sock;
    fv_identity id; /* fill with fv_identity_generate before fh_keys */
    fv_wire_limits lim;
    uint64_t session;
    size_t n_params;
    int slow; /* set before fh_fake_join: the smallest receive buffers (ZMQ_RCVHWM 1, ZMQ_RCVBUF 4096), so
               * that messages pile up at the coordinator as soon as the fake stops reading */
} fh_fake;

/* Start fedvim with the NULL-terminated arguments in the background, output to `out`. */
pid_t fh_spawn(const fh_ctx *c, const char *out, ...);
/* Start `fedvim run ini --quiet --overwrite` (output to out) and kill it with SIGKILL once the file
 * metrics holds k lines (its k-th round completed; the test fails after 120 s without), then wait
 * for it and give its workers (parent-death signal) time to follow. Returns the lines metrics holds
 * afterwards: the rounds completed before the kill, at least k. */
int fh_run_killed_after(const fh_ctx *c, const char *ini, const char *out, const char *metrics, int k);
/* The resume check's first half: experiment `name` (base + [output] + extra, as fh_run_exp writes
 * it) started and killed with SIGKILL once its second round completed (fh_run_killed_after); fails
 * the test unless it completed at least 2 and fewer than `rounds` rounds and left no summary.json.
 * Returns the rounds completed. */
int fh_cut(const fh_ctx *c, const char *name, const char *base, const char *extra, int rounds);
/* Its second half: `fedvim run --resume results/<name>`, which must end with `rounds` lines in
 * metrics.jsonl; then its params_hash must be results/<ref>'s. */
void fh_resume_matches(const fh_ctx *c, const char *name, int rounds, const char *ref);
/* Wait for pid's exit status; kill it and fail the test after timeout seconds. */
int fh_wait(pid_t pid, double timeout);
/* Keys through the CLI: ROOT/coord.key(.pub), ROOT/<name>.key for each worker name, and
 * ROOT/allow.txt listing those workers and, when not NULL, the fake's identity. */
void fh_keys(const fh_ctx *c, const char *const *workers, int n, const fv_identity *fake_id);
/* `fedvim coordinator ROOT/<cfg>.ini` on a free localhost port (or c->bind) with those keys;
 * returns its pid and writes the endpoint it printed to ep. */
pid_t fh_coordinator(const fh_ctx *c, const char *cfg, const char *out, char *ep, size_t cap);
/* Wait up to 60 s for the endpoint a coordinator printed ("listening on tcp://...") to its output
 * file out, into ep[cap]; fails the test when it never appears. */
void fh_endpoint_of(const char *out, char *ep, size_t cap);
/* `fedvim worker` named `name` (its key from fh_keys) connected to ep. */
pid_t fh_worker(const fh_ctx *c, const char *ep, const char *name, const char *out);
/* Connect the fake to ep (the coordinator's key ROOT/coord.key.pub), join, take the welcome and
 * say ready. */
void fh_fake_join(const fh_ctx *c, fh_fake *f, const char *ep);
/* Send env with the frames fr[0..nf) (fails the test when it cannot). */
void fh_fake_send(fh_fake *f, Fedvim__Envelope *env, const fv_wire_frame *fr, int nf);
/* Send a heartbeat. */
void fh_fake_heartbeat(fh_fake *f);
/* Wait up to timeout s for a message other than a heartbeat, answering with heartbeats; it stays
 * open in *m. Returns its body case, 0 on timeout. */
int fh_fake_next(fh_fake *f, fv_wire_msg *m, double timeout);
/* A signed update answering task t with params[n_params] and the task's sample count. */
void fh_fake_update(fh_fake *f, const Fedvim__Task *t, const float *params);
/* How a forged update departs from fh_fake_update's (all zero: it is that update). */
typedef struct {
    size_t count;     /* floats sent (0: n_params; params must hold min(count, n_params), zeros after) */
    int unsigned_;    /* sent without a signature */
    int tamper;       /* one float changed after signing */
    uint32_t round;   /* the round it claims (0: the task's) */
    uint64_t task_id; /* the task it claims (0: the task's) */
    const float *control; /* SCAFFOLD: a FRAME_CONTROL frame of control_count floats (NULL: none) */
    size_t control_count;
} fh_forgery;
void fh_fake_forged_update(fh_fake *f, const Fedvim__Task *t, const float *params, const fh_forgery *how);
/* An Error message (code, text) about task_id (0: none). */
void fh_fake_error(fh_fake *f, uint32_t code, uint64_t task_id, const char *text);
void fh_fake_close(fh_fake *f);

/* ---- the insider scene (test_fl_insider.c, test_fl_peers.c): a rogue beside an honest worker ---- */
/* ROOT/<name>.ini: 4 clients of FH_SYN_DATA, a tiny model, 2 rounds, `workers` worker
 * processes, tasks_per_worker 2, worker_timeout 10, round_timeout 120; `fl` adds [fl] keys (NULL:
 * none), `security` is the [security] body (NULL: max_strikes = 3). */
void fh_insider_cfg(const fh_ctx *c, const char *name, int workers, const char *fl, const char *security);
/* `fedvim run` of the undisturbed experiment (fh_insider_cfg "ref" with one honest worker): its
 * params_hash into out[cap]. The model does not depend on the scratch folder, so the first call's
 * run serves every later call of the process (kept in a static buffer). */
void fh_reference(const fh_ctx *c, char *out, size_t cap);
/* The largest difference, per coordinate, between the final models (model.safetensors) of runs a
 * and b of c. */
double fh_model_gap(const fh_ctx *c, const char *a, const char *b);
/* Fails the test unless run `name`'s params_hash is ref_hash. */
void fh_assert_same_model(const fh_ctx *c, const char *name, const char *ref_hash);
/* The scene of most insider cases: experiment `name` (fh_insider_cfg with 2 workers and the fl /
 * security extras) served by a coordinator, an allow-listed rogue (a fake worker with a fresh
 * identity, joined first) and one honest worker "honest". Fills *rogue (the caller closes it, or
 * fh_end_scene does), the coordinator's endpoint ep[cap] and both process ids. */
void fh_start_rogue_and_honest(const fh_ctx *c, const char *name, const char *fl, const char *security,
                               fh_fake *rogue, char *ep, size_t cap, pid_t *coord, pid_t *honest);
/* The scene's end: the coordinator (within 120 s) and the honest worker (60 s) both exit 0; the
 * rogue is closed. */
void fh_end_scene(fh_fake *rogue, pid_t coord, pid_t honest);

#endif
