/* fl_harness.h: what the end-to-end federated tests share: a scratch folder, running the built
 * `fedvim` binary with a deadline, writing experiment files and reading results back.
 * Not here: any assertion about results (each test states its own). Failures to run are cmocka
 * failures of the calling test. */
#ifndef FV_FL_HARNESS_H
#define FV_FL_HARNESS_H
#include <stddef.h>

typedef struct {
    const char *bin; /* the fedvim binary ($FEDVIM_BIN) */
    char root[64];   /* the scratch folder, removed by fh_cleanup */
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
/* Line i (0-based) of text as a fresh string (caller frees); NULL past the end. */
char *fh_line(const char *text, int i);
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
/* Parse base_ini + extra + "\n" as "t.ini" and check it: the config must be rejected with a
 * message holding n1 and, when not NULL, n2 (fails the test otherwise, and when the text does not
 * fit the 4 KiB buffer). */
void fh_expect_config_error(const char *base_ini, const char *extra, const char *n1, const char *n2);

#endif
