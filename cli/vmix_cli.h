/* vmix_cli.h: what `fedvim vfe`, `fedvim bounds` and `fedvim mix` share: loading their input
 * (PNG files of one shape, or a named data set split). IDX files are written by data.h.
 * Not here: any VisualMixer logic (shared/vmix.h, shared/vfe.h, shared/vmix_bounds.h).
 */
#ifndef FV_VMIX_CLI_H
#define FV_VMIX_CLI_H
#include "data/data.h"
#include "fv_common.h"

/* Load PNG files pngs[0..npng) into out (CHW, labels 0, classes 1). All must share one shape;
 * a malformed file or a shape mismatch is an error naming the file. Returns 0 or -1. */
FV_MUST_USE int fv_vmixcli_load_pngs(fv_dataset *out, const char *const *pngs, int npng, fv_err *e);

/* Load split `train` (1) or test (0) of data set `name` from dir (NULL: default place) and keep
 * its first `limit` images (0: all). Returns 0 or -1. */
FV_MUST_USE int fv_vmixcli_load_dataset(fv_dataset *out, const char *name, const char *dir, int train, int limit,
                            fv_err *e);

/* Parse "C x H x W" written as "CxHxW" (or "HxW" for one channel). Returns 0 or -1 naming s. */
FV_MUST_USE int fv_vmixcli_parse_shape(const char *s, int *c, int *h, int *w, fv_err *e);



/* ---- the bounds step shared by `fedvim bounds` and `fedvim mix` ---- */
#include "io/json.h"
#include "vmix/vmix_bounds.h"

typedef struct {
    double target, alpha, lambda; /* WS_min model: V*, alpha, lambda */
    int block, unit;
    double d_max;                 /* WS_max: d* (< 0: not given, then d_rel applies) */
    double d_rel;                 /* WS_max: d* = d_rel x d_p(whole image) when d_max < 0 */
    int dp_seed;                  /* --seed (copied into dp.seed) */
    fv_dp_cfg dp;                 /* WS_max Monte Carlo settings (images: the client's own) */
    int ws_min, ws_max;           /* > 0: given by the user, skip that bound's computation */
    const char *prefer;           /* NULL, "privacy" or "utility": who wins a conflict */
} fv_vmixcli_bcfg;

typedef struct {
    int ws_min, ws_max;           /* the bounds to use */
    int ws_min_model, ws_max_model; /* as computed (0: not computed) */
    fv_wsmin_row rows[16];
    int nrows;
    double dp[16];                /* d_p(2^k) */
    double d_max;                 /* the d* WS_max was computed with (given, or from d_rel) */
    int ndp;
    const char *resolved;         /* NULL, or "privacy"/"utility" when a conflict was resolved */
} fv_vmixcli_bounds;

/* Compute WS_min (model) and WS_max (Monte Carlo) for c x h x w images, unless given; resolve a
 * conflict WS_min > WS_max only when cfg->prefer says who wins, else fail naming both. */
FV_MUST_USE int fv_vmixcli_bounds_compute(fv_vmixcli_bounds *b, const fv_vmixcli_bcfg *cfg, int h, int w, fv_err *e);

/* Human-readable table on f, and the same figures as a nested JSON object "bounds". */
void fv_vmixcli_bounds_print(FILE *f, const fv_vmixcli_bounds *b, const fv_vmixcli_bcfg *cfg);
void fv_vmixcli_bounds_json(fv_json *j, const fv_vmixcli_bounds *b, const fv_vmixcli_bcfg *cfg);
/* Documented defaults (docs/visualmixer.md of this repo; the relative d*, FV_VMIX_DEFAULT_DREL
 * in vmix_bounds.h, from experiments/vmix/dstar_sweep*). */
#define FV_VMIX_DEFAULT_TARGET 0.5

/* ---- the bounds flags `fedvim bounds` and `fedvim mix` share ---- */
#include "flags.h"

/* Flags --target-vfe, --alpha, --d-max, --d-rel, --block, --unit, --lambda, --kernel, --pool,
 * --quantile, --trials, --seed, --threads and --prefer, bound to the fields of cfg (whose defaults
 * fv_vmixcli_bcfg_default sets; cfg->dp.threads doubles as the command's --threads). */
#define FV_VMIXCLI_BOUND_FLAGS 14

/* Documented defaults for every field the flags set; images NULL, ws_min = ws_max = 0. */
void fv_vmixcli_bcfg_default(fv_vmixcli_bcfg *cfg);

/* Write the FV_VMIXCLI_BOUND_FLAGS shared flags into out[0..), bound to cfg's fields. */
void fv_vmixcli_bound_flags(fv_flag *out, fv_vmixcli_bcfg *cfg);

/* After parsing: the checks the flag ranges cannot make (--prefer's value), and --seed into
 * cfg->dp.seed. Returns 0 or -1 naming the flag. */
FV_MUST_USE int fv_vmixcli_bcfg_finish(fv_vmixcli_bcfg *cfg, fv_err *e);
#endif
