/* fl_cli.h: what `fedvim run`, `fedvim coordinator` and `fedvim worker` share: collecting the
 * repeatable --set flags, resolving an experiment config into its results folder (or reopening
 * one to resume), the local key set of a run, and printing summaries and comparison tables.
 * Not here: federated logic (coordinator/, worker/).
 */
#ifndef FV_FL_CLI_H
#define FV_FL_CLI_H
#include <stddef.h>
#include <stdio.h>

#include "fl/config.h"
#include "crypto.h"
#include "fv_common.h"

#define FV_FLCLI_MAX_SETS 256

/* Move every "--set X" / "--set=X" out of argv (argc updated) into sets[0..*nsets). Returns 0, or
 * -1 with e set (missing value, too many). */
FV_MUST_USE int fv_flcli_take_sets(int *argc, char **argv, const char **sets, int *nsets, fv_err *e);

/* Resolve an experiment: defaults, the file at config_path, the overrides, checks (the config's,
 * fv_config_check, and the attack's, fv_attack_check_config, before anything is written); the
 * results folder is output.dir/output.name (name defaults to the file's base name without .ini).
 * An existing folder that holds results is refused unless overwrite (then its results are
 * removed). Writes config.resolved.ini there. On success *text is the resolved INI (caller
 * frees). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_flcli_prepare(const char *config_path, const char *const *sets, int nsets, int overwrite,
                     fv_config *cfg, char *dir, size_t dir_cap, char **text, fv_err *e);

/* Reopen a results folder to resume: its config.resolved.ini becomes cfg and *text, checked as
 * fv_flcli_prepare checks a new one. Returns 0, 1 when the run there already completed
 * (summary.json exists; *text still set), -1 with e set. */
FV_MUST_USE int fv_flcli_reopen(const char *dir, fv_config *cfg, char **text, fv_err *e);

/* The key set of a local run under dir/keys/ (mode 0700), created when missing and reused when
 * present (resume): coordinator.key, worker-<i>.key for i < nworkers, allow.txt listing the
 * workers' public identities, and with VisualMixer clients.vmix.key (the workers' master secret
 * for client keys; the coordinator never opens it) and eval.vmix.key (mixing test images).
 * Returns 0 or -1 with e set. */
FV_MUST_USE int fv_flcli_local_keys(const char *dir, int nworkers, int vmix, fv_err *e);

/* Print "name: key value" lines of a summary JSON object in a readable form on f. */
void fv_flcli_print_summary(FILE *f, const char *summary_json);

/* One run's figures for the comparison table. */
typedef struct {
    const char *name;
    const double *acc, *acc_mixed; /* per round; NaN where not evaluated */
    int rounds;
    int vmix;
    double vfe_clients, vfe_test, vfe_clean; /* mixed shards, mixed test images, clean test images */
} fv_flcli_result;

/* Accuracy per round side by side, the final gap to the first run, and the measured VFE. */
void fv_flcli_print_comparison(FILE *f, const fv_flcli_result *r, int n);

#endif
