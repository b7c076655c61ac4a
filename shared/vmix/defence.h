/* defence.h: one entry point for the image defences a client can train behind, used by the
 * federated workers ([visualmixer], [obfuscation]: shared/fl/experiment.h, fv_exp_client_*) and
 * by the attacks that model them (attacks/inverter.h, the learned inverter; the invert attack's
 * evaluation against what the client trained on). Every rule that turns (images, key, stream)
 * into defended images lives here or in the module it names, so the worker's shard and the
 * attack's copy of it are made by the same code.
 * Threat model: the defence and its settings are public; only the key is secret.
 * Not here: VisualMixer's algorithm (vmix.h), the uniform-window shuffle (vmix_alloc.h), noise and
 * InstaHide (obfuscate.h), a federated client's key and bounds (shared/fl/experiment.h).
 */
#ifndef FV_DEFENCE_H
#define FV_DEFENCE_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "vmix/obfuscate.h"
#include "vmix/vmix.h"

typedef enum {
    FV_DEFENCE_NONE,      /* identity (a test and ablation setting) */
    FV_DEFENCE_VMIX,      /* VisualMixer (vmix.h): Algorithm 1 within vp's power-of-two bounds */
    FV_DEFENCE_SHUFFLE,   /* uniform window x window windows of any integer size (vmix_alloc.h) */
    FV_DEFENCE_NOISE,     /* Gaussian pixel noise of std sigma (obfuscate.h, fv_obf_noise) */
    FV_DEFENCE_INSTAHIDE, /* InstaHide inside the owner's own set (obfuscate.h, fv_obf_instahide) */
} fv_defence_kind;

/* Name ("none", "vmix", "shuffle", "noise", "instahide") of a kind ("unknown" out of range), and
 * its parser (-1 with e naming the word and the choices). */
const char *fv_defence_name(fv_defence_kind d);
FV_MUST_USE int fv_defence_parse(const char *s, fv_defence_kind *d, fv_err *e);

typedef struct {
    fv_defence_kind kind;
    fv_vmix_params vp;   /* VMIX: the (public) mixing settings */
    int window;          /* SHUFFLE: window side in pixels, >= 1 (edge windows clipped) */
    double sigma;        /* NOISE: std on the [0, 1] pixel scale, finite and >= 0 */
    fv_instahide_cfg ih; /* INSTAHIDE: k, coefficient bound, sign flips */
} fv_defence_cfg;

/* Check a defence's own settings (kind known, window >= 1, sigma finite >= 0, InstaHide k in
 * [1, FV_OBF_INSTAHIDE_KMAX] and upper in [1/k, 1]); with h, w > 0 also the mixing bounds
 * against that image size (VMIX). Errors name the setting ("shuffle window", "noise sigma", ...).
 * Returns 0 or -1 with e set. */
FV_MUST_USE int fv_defence_check(const fv_defence_cfg *d, int h, int w, fv_err *e);

/* Apply defence d to all images of in, into out (a fresh data set, same labels; caller frees).
 * Deterministic: randomness comes from key and stream only (a different stream gives fresh
 * permutations / noise / InstaHide partners and coefficients), never from threads or order.
 * VMIX mixes with the image keys of (key, domain = stream) (fv_vmix_dataset, one thread); the
 * other kinds draw from a 64-bit seed derived from (key, stream): SHUFFLE image i from
 * fv_vmix_alloc_seed_key(seed, 0, i), NOISE from fv_obf_noise's stream (seed, i).
 * InstaHide mixes each image with images of in itself (in->n >= k). Returns 0 or -1 with e set
 * (a bad setting, InstaHide's k above in->n); out is left empty on failure. */
FV_MUST_USE int fv_defence_apply(fv_dataset *out, const fv_dataset *in, const fv_defence_cfg *d,
                                 const uint8_t key[FV_VMIX_KEY_BYTES], uint64_t stream, fv_err *e);

#endif
