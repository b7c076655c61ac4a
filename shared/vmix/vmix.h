/* vmix.h: VisualMixer, docs/visualmixer.md sections 2 and 4: the keyed shuffle of windows
 * (pixel or block units, `spatial+chromatic` or `spatial`), Algorithm 1 (VFE-guided
 * non-uniform windows between WS_min and WS_max), the --verify loop that guarantees a measured
 * VFE >= V*, and whole-data-set mixing in parallel.
 *
 * Keyed randomness (choice, see docs/visualmixer.md of this repo):
 *   domain key  K_d = crypto_kdf_derive_from_key(32, id = domain, ctx "fvvmdom1", secret)
 *   image key   K_i = crypto_kdf_derive_from_key(32, id = image index, ctx "fvvmimg1", K_d)
 *   stream      ChaCha20(key K_i, 8-byte nonce = LE64(mode << 32 | channel)), counter from 0
 * Both KDF levels take a 64-bit id directly, so distinct (domain, index) pairs can never share
 * a key. Each channel's stream (one stream for all channels in `spatial` mode) is consumed in
 * Algorithm 1's window order, which is a pure function of the image's pixels and the bounds:
 * the output depends only on (secret, domain, index, pixels, parameters), never on threads,
 * processing order or device. Fisher-Yates is exactly uniform: a window of n <= 8 units takes one
 * 16-bit draw in [0, n!) read as mixed-radix digits; larger windows take one 32-bit draw per two
 * steps (Lemire's multiply-shift with rejection on the product of the two ranges).
 *
 * Not here: the bounds WS_min / WS_max (vmix_bounds.h), VFE itself (vfe.h), key files
 * (vmix_key.h). Nothing is ever un-mixed: there is no inverse.
 */
#ifndef FV_VMIX_H
#define FV_VMIX_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"

#define FV_VMIX_KEY_BYTES 32
#define FV_VMIX_DOMAIN_TRAIN 0u /* training images of a client */
#define FV_VMIX_DOMAIN_TEST 1u  /* inference-time (test) images: a fresh key per image */

typedef enum {
    FV_VMIX_SPATIAL_CHROMATIC = 0, /* an independent permutation per channel (default) */
    FV_VMIX_SPATIAL = 1,           /* one permutation shared by all channels (ablations) */
} fv_vmix_mode;

typedef struct {
    int ws_min, ws_max; /* window bounds: powers of two, unit <= ws_min <= ws_max */
    int unit;           /* shuffle unit u x u (1 = pixel level), a power of two */
    int block;          /* VFE block size B for the measured VFE */
    double lambda;      /* VFE scale */
    fv_vmix_mode mode;
    int verify;         /* 1: re-mix with WS_min doubled until measured VFE >= target_vfe */
    double target_vfe;  /* V*, used when verify is set */
} fv_vmix_params;

typedef struct {
    int x, y, w, h; /* a shuffled window: top-left corner and size (clipped at image edges) */
} fv_vmix_window;

/* Defaults: ws 2..8 (a placeholder: callers set the bounds, fv_vmix_bounds_compute), unit, block
 * and lambda of vmix_defaults.h, spatial+chromatic, no verify. */
void fv_vmix_params_default(fv_vmix_params *p);

/* Validate p for an image of h x w. Errors name the values: WS_min > WS_max names both, a
 * non-power-of-two names the flag's value, unit > WS_min, block < 1, verify with V* <= 0. */
FV_MUST_USE int fv_vmix_params_check(const fv_vmix_params *p, int h, int w, fv_err *e);

/* "spatial+chromatic" / "spatial" <-> enum. Parse returns 0 or -1 naming the string. */
const char *fv_vmix_mode_name(fv_vmix_mode m);
FV_MUST_USE int fv_vmix_mode_parse(const char *s, fv_vmix_mode *m, fv_err *e);

/* Key derivation (see the header comment). out may not alias the input key. */
void fv_vmix_domain_key(uint8_t out[FV_VMIX_KEY_BYTES], const uint8_t secret[FV_VMIX_KEY_BYTES],
                        uint64_t domain);
void fv_vmix_image_key(uint8_t out[FV_VMIX_KEY_BYTES], const uint8_t domain_key[FV_VMIX_KEY_BYTES],
                       uint64_t index);

/* Reusable scratch space for one thread (window list, streams, buffers). */
typedef struct fv_vmix_work fv_vmix_work;
fv_vmix_work *fv_vmix_work_new(void);
void fv_vmix_work_destroy(fv_vmix_work **w);

typedef struct {
    double vfe;                    /* measured VFE of the output (Eq. 4, block B, lambda) */
    int ws_min_used;               /* WS_min of the returned attempt (verify may double it) */
    int attempts;                  /* Algorithm 1 runs made (1 without verify) */
    const fv_vmix_window *windows; /* window map, in shuffle order; owned by the work object,
                                      valid until its next use */
    int nwindows;
} fv_vmix_result;

/* Algorithm 1 on one CHW image in[c*h*w] -> out[c*h*w] (must not alias), keyed by image_key
 * (fv_vmix_image_key, or any fresh 32 random bytes for an inference image). Fills *res.
 * Returns 0, or -1 with e set when p is invalid or, with verify, when even WS_min = WS_max
 * leaves the measured VFE below V* (e names the VFE reached; res->vfe holds it, out holds that
 * last attempt). */
FV_MUST_USE int fv_vmix_image(uint8_t *out, fv_vmix_result *res, fv_vmix_work *work, const uint8_t *in, int c,
                  int h, int w, const uint8_t image_key[FV_VMIX_KEY_BYTES], const fv_vmix_params *p,
                  fv_err *e);

/* Window-size histogram bucket count: sizes 1, 2, 4, ..., 2^(FV_VMIX_SIZES-1). */
#define FV_VMIX_SIZES 16

typedef struct {
    long n;
    double vfe_mean, vfe_min, vfe_p5; /* mean, minimum, 5th percentile of the measured VFE */
    long vfe_min_index;
    long windows;                 /* all windows used */
    long by_size[FV_VMIX_SIZES];  /* square windows of side 2^k (edge tiles included when square) */
    long edge_windows;            /* other windows: clipped at the image's edge to a non-square */
    long remixed;                 /* images that needed more than one attempt (verify) */
    long ws_min_used[FV_VMIX_SIZES]; /* images whose accepted WS_min was 2^k */
} fv_vmix_stats;

/* Mix every image of `in` into `out` (allocated here, same shape and labels; caller frees with
 * fv_dataset_free). Image i uses fv_vmix_image_key(fv_vmix_domain_key(secret, domain), i).
 * vfe[in->n] (may be NULL) receives each image's measured VFE; st (may be NULL) the summary.
 * threads <= 0 uses OpenMP's default. Output is identical for any thread count.
 * Returns 0, or -1 with e set (bad parameters; with verify, the lowest-indexed image that cannot
 * reach V*, naming the image and the VFE reached); out is left empty on failure. */
FV_MUST_USE int fv_vmix_dataset(fv_dataset *out, float *vfe, fv_vmix_stats *st, const fv_dataset *in,
                    const uint8_t secret[FV_VMIX_KEY_BYTES], uint64_t domain,
                    const fv_vmix_params *p, int threads, fv_err *e);

#endif
