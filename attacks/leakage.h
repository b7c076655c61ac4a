/* leakage.h: the figures reported for the images an attack produces (generated or
 * reconstructed), as docs/attacks.md section 5 defines them: recognisability by an oracle, best
 * SSIM / PSNR to the victim's originals of the target class (and to their mixed versions), and
 * victim-specific resemblance. Built on attacks/metrics.h (SSIM, PSNR) and oracle.h.
 * Not here: the attacks, the metric definitions themselves.
 */
#ifndef FV_LEAKAGE_H
#define FV_LEAKAGE_H
#include "data/data.h"
#include "fv_common.h"
#include "io/json.h"
#include "nn/net.h"

typedef struct {
    int n;                   /* samples judged */
    double recognisability;  /* fraction the oracle assigns to the target (NAN without oracle) */
    double oracle_p;         /* mean oracle probability of the target */
    double ssim_best_median; /* per sample: best SSIM to any victim original of the class */
    double ssim_best_mean;
    double psnr_best_median; /* per sample: best PSNR to any victim original of the class */
    double ssim_mixed_median; /* best SSIM to the victim's mixed images (NAN if none given) */
    double resemblance;      /* mean over samples of best SSIM to m victim originals minus best SSIM
                                to m originals of the class the victim never held,
                                m = min(victim, others) (NAN if either is empty) */
    double resemblance_pos;  /* fraction of samples with a positive difference */
} fv_leakage;

/* Judge samples[n, c, h, w] (pixels in [0, 1]) aimed at class target. oracle may be NULL (no
 * recognisability); victim[nv] are the victim's class-target originals, victim_mixed[nv] their
 * mixed versions (may be NULL), others[no] originals of the class the victim never held (may be
 * NULL). Images must be at least 11 x 11 (SSIM). Returns 0, or -1 with e set. */
FV_MUST_USE int fv_leakage_eval(fv_leakage *out, const float *samples, int n, fv_shape s, fv_net *oracle, fv_norm onorm,
                    int target, const float *victim, int nv, const float *victim_mixed, const float *others,
                    int no, fv_err *e);

/* Add the figures as keys of the JSON object being written (io/json.h). */
void fv_leakage_json(fv_json *j, const fv_leakage *l);
#endif
