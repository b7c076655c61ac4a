/* defence.c: the image defences behind one entry point (see defence.h). */
#include "defence.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "vmix/vmix_alloc.h"

static const char *const DEF_NAMES[] = {"none", "vmix", "shuffle", "noise", "instahide"};
enum { N_DEFS = sizeof DEF_NAMES / sizeof DEF_NAMES[0] };

const char *fv_defence_name(fv_defence_kind d) { return (unsigned)d < N_DEFS ? DEF_NAMES[d] : "unknown"; }

int fv_defence_parse(const char *s, fv_defence_kind *d, fv_err *e) {
    for (int i = 0; s && i < N_DEFS; i++)
        if (strcmp(s, DEF_NAMES[i]) == 0) {
            *d = (fv_defence_kind)i;
            return 0;
        }
    return fv_err_set(e, "'%s' is not a defence (none, vmix, shuffle, noise or instahide)", s ? s : "(null)");
}

int fv_defence_check(const fv_defence_cfg *d, int h, int w, fv_err *e) {
    switch (d->kind) {
    case FV_DEFENCE_NONE: return 0;
    case FV_DEFENCE_VMIX:
        if (h > 0 && w > 0 && fv_vmix_params_check(&d->vp, h, w, e)) return fv_err_prefix(e, "mixing: ");
        return 0;
    case FV_DEFENCE_SHUFFLE:
        if (d->window < 1) return fv_err_set(e, "defence: shuffle window %d < 1", d->window);
        return 0;
    case FV_DEFENCE_NOISE:
        if (!(isfinite(d->sigma) && d->sigma >= 0))
            return fv_err_set(e, "defence: noise sigma %g is not a finite number >= 0", d->sigma);
        return 0;
    case FV_DEFENCE_INSTAHIDE:
        if (d->ih.k < 1 || d->ih.k > FV_OBF_INSTAHIDE_KMAX)
            return fv_err_set(e, "defence: InstaHide k = %d is not in [1, %d]", d->ih.k, FV_OBF_INSTAHIDE_KMAX);
        if (!(d->ih.upper >= 1.0 / d->ih.k - 1e-12 && d->ih.upper <= 1.0))
            return fv_err_set(e, "defence: InstaHide coefficient bound %g is not in [1/k, 1] for k = %d", d->ih.upper,
                              d->ih.k);
        return 0;
    }
    return fv_err_set(e, "defence: unknown defence %d", (int)d->kind);
}

/* The 64-bit seed of the noise / shuffle / InstaHide draws of (key, stream). */
static uint64_t defence_seed(const uint8_t key[FV_VMIX_KEY_BYTES], uint64_t stream) {
    uint64_t k = 0;
    for (int i = 0; i < 8; i++) k |= (uint64_t)key[i] << (8 * i);
    fv_rng r;
    fv_rng_seed2(&r, k, stream);
    return fv_rng_u64(&r);
}

/* A fresh copy of in (same shape, labels and pixels). */
static void copy_set(fv_dataset *out, const fv_dataset *in) {
    const size_t isz = (size_t)in->c * in->h * in->w, n = (size_t)(in->n > 0 ? in->n : 1);
    *out = *in;
    out->x = fv_malloc(isz * n);
    out->y = fv_malloc(n);
    if (in->n > 0) {
        memcpy(out->x, in->x, isz * (size_t)in->n);
        memcpy(out->y, in->y, (size_t)in->n);
    }
}

int fv_defence_apply(fv_dataset *out, const fv_dataset *in, const fv_defence_cfg *d,
                     const uint8_t key[FV_VMIX_KEY_BYTES], uint64_t stream, fv_err *e) {
    memset(out, 0, sizeof *out);
    if (fv_defence_check(d, in->h, in->w, e)) return -1;
    if (d->kind == FV_DEFENCE_VMIX) return fv_vmix_dataset(out, NULL, NULL, in, key, stream, &d->vp, 1, e);
    if (d->kind == FV_DEFENCE_INSTAHIDE && d->ih.k > in->n)
        return fv_err_set(e, "defence: InstaHide k = %d needs at least %d images, the set has %d", d->ih.k, d->ih.k,
                          in->n);
    copy_set(out, in);
    const uint64_t seed = defence_seed(key, stream);
    const size_t isz = (size_t)in->c * in->h * in->w;
    int rc = 0;
    switch (d->kind) {
    case FV_DEFENCE_SHUFFLE:
        for (int i = 0; i < in->n && !rc; i++) {
            uint8_t ik[FV_VMIX_ALLOC_KEY_BYTES];
            fv_vmix_alloc_seed_key(ik, seed, 0, (uint64_t)i);
            rc = fv_vmix_alloc_uniform(out->x + isz * i, in->x + isz * i, in->c, in->h, in->w, d->window, ik, e);
        }
        break;
    case FV_DEFENCE_NOISE: rc = fv_obf_noise(out->x, in, d->sigma, seed, e); break;
    case FV_DEFENCE_INSTAHIDE: {
        float *soft = fv_malloc(sizeof(float) * (size_t)in->n * (size_t)(in->classes > 0 ? in->classes : 1));
        rc = fv_obf_instahide(out->x, soft, NULL, NULL, in, &d->ih, seed, e);
        free(soft);
        break;
    }
    default: break; /* NONE: the copy */
    }
    if (rc) fv_dataset_free(out);
    return rc;
}
