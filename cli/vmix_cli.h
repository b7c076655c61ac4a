/* vmix_cli.h: what `fedvim vfe`, `fedvim bounds` and `fedvim mix` share: loading their input
 * (PNG files of one shape, or a named data set split). IDX files are written by data/data.h.
 * Not here: any VisualMixer logic or default (shared/vmix/: vmix.h, vfe.h, vmix_bounds.h,
 * vmix_defaults.h).
 */
#ifndef FV_VMIX_CLI_H
#define FV_VMIX_CLI_H
#include <stdio.h>

#include "data/data.h"
#include "flags.h"
#include "fv_common.h"
#include "io/json.h"
#include "vmix/vmix_bounds.h"

/* Load PNG files pngs[0..npng) into out (CHW, labels 0, classes 1). All must share one shape;
 * a malformed file or a shape mismatch is an error naming the file. Returns 0 or -1. */
FV_MUST_USE int fv_vmixcli_load_pngs(fv_dataset *out, const char *const *pngs, int npng, fv_err *e);

/* Load split `train` (1) or test (0) of data set `name` from dir (NULL: default place) and keep
 * its first `limit` images (0: all). Returns 0 or -1. */
FV_MUST_USE int fv_vmixcli_load_dataset(fv_dataset *out, const char *name, const char *dir, int train, int limit,
                            fv_err *e);

/* Parse "C x H x W" written as "CxHxW" (or "HxW" for one channel). Returns 0 or -1 naming s. */
FV_MUST_USE int fv_vmixcli_parse_shape(const char *s, int *c, int *h, int *w, fv_err *e);

/* ---- the bounds `fedvim bounds` and `fedvim mix` share (the rule: fv_vmix_bounds_compute) ---- */
typedef struct {
    fv_vmix_bounds_cfg b;         /* what the flags set (defaults: vmix_defaults.h) */
    int dp_seed;                  /* --seed (copied into b.dp.seed) */
    const char *prefer;           /* --prefer: NULL, "privacy" or "utility" (into b.conflict) */
} fv_vmixcli_bcfg;

/* Human-readable table on f, and the same figures as a nested JSON object "bounds". */
void fv_vmixcli_bounds_print(FILE *f, const fv_vmix_bounds *b, const fv_vmix_bounds_cfg *cfg);
void fv_vmixcli_bounds_json(fv_json *j, const fv_vmix_bounds *b, const fv_vmix_bounds_cfg *cfg);

/* Flags --target-vfe, --alpha, --d-max, --d-rel, --block, --unit, --lambda, --kernel, --pool,
 * --quantile, --trials, --seed, --threads and --prefer, bound to the fields of cfg (whose defaults
 * fv_vmixcli_bcfg_default sets; cfg->b.dp.threads doubles as the command's --threads). Ranges
 * come from vmix_defaults.h, as the config's. */
#define FV_VMIXCLI_BOUND_FLAGS 14

/* fv_vmix_bounds_cfg_default, errors worded with the flags; images NULL, ws_min = ws_max = 0. */
void fv_vmixcli_bcfg_default(fv_vmixcli_bcfg *cfg);

/* Write the FV_VMIXCLI_BOUND_FLAGS shared flags into out[0..), bound to cfg's fields. */
void fv_vmixcli_bound_flags(fv_flag *out, fv_vmixcli_bcfg *cfg);

/* After parsing: --prefer into cfg->b.conflict (an error naming it unless privacy or utility),
 * --seed into cfg->b.dp.seed. Returns 0 or -1 naming the flag. */
FV_MUST_USE int fv_vmixcli_bcfg_finish(fv_vmixcli_bcfg *cfg, fv_err *e);
#endif
