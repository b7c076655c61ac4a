/* adversary.c: see adversary.h. */
#include "fl/adversary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

/* Stream ids: each use of fl.seed gets its own generator (experiment.c holds the others). */
#define STREAM_WHO 0x616476657273ull    /* "advers": who is malicious */
#define STREAM_POISON 0x706f69736f6eull /* "poison": a backdoor client's poisoned images */
#define STREAM_NOISE 0x6e6f697365ull    /* "noise": a noise client's upload */

/* kind = scale boosts by default; every other kind leaves Delta's size alone. */
#define SCALE_AUTO_SCALE 10.0
#define SCALE_AUTO_OTHER 1.0

int fv_adv_mask(const fv_config *c, uint8_t *mask) {
    int k = c->clients;
    memset(mask, 0, (size_t)k);
    if (c->adv_kind == FV_ADV_NONE) return 0;
    int *ids = fv_malloc((size_t)k * sizeof(int));
    int n = fv_config_client_list(c, ids, k);
    FV_ASSERT(n >= 0); /* fv_config_check passed */
    if (n == 0) {
        /* partial Fisher-Yates: the first n of a uniform permutation */
        n = (int)lround(c->adv_fraction * k);
        for (int i = 0; i < k; i++) ids[i] = i;
        fv_rng r;
        fv_rng_seed2(&r, (uint64_t)c->seed ^ STREAM_WHO, 0);
        for (int i = 0; i < n; i++) {
            int j = i + (int)fv_rng_below(&r, (uint64_t)(k - i));
            int t = ids[i];
            ids[i] = ids[j];
            ids[j] = t;
        }
    }
    for (int i = 0; i < n; i++) mask[ids[i]] = 1;
    free(ids);
    return n;
}

double fv_adv_scale(const fv_config *c) {
    if (c->adv_scale != FV_CFG_AUTO) return c->adv_scale;
    return c->adv_kind == FV_ADV_SCALE ? SCALE_AUTO_SCALE : SCALE_AUTO_OTHER;
}

int fv_adv_poisons_data(const fv_config *c) {
    return c->adv_kind == FV_ADV_LABEL_FLIP || c->adv_kind == FV_ADV_BACKDOOR;
}

int fv_adv_check_data(const fv_config *c, const fv_dataset *d, fv_err *e) {
    if (c->adv_kind != FV_ADV_BACKDOOR) return 0;
    if (c->adv_trigger_size + 1 > d->h || c->adv_trigger_size + 1 > d->w)
        return fv_config_key_error(c, e, "adversary", "trigger_size",
                                   "a %d-pixel trigger one pixel in from the corner does not fit %dx%d images",
                                   c->adv_trigger_size, d->h, d->w);
    if (c->adv_target >= d->classes)
        return fv_config_key_error(c, e, "adversary", "target", "class %d, but the data set has %d classes",
                                   c->adv_target, d->classes);
    return 0;
}

void fv_adv_stamp(const fv_config *c, uint8_t *img, int ch, int h, int w) {
    int s = c->adv_trigger_size;
    FV_ASSERT(s + 1 <= h && s + 1 <= w);
    int y0 = h - 1 - s, x0 = w - 1 - s;
    for (int k = 0; k < ch; k++)
        for (int i = 0; i < s; i++)
            for (int j = 0; j < s; j++) img[((size_t)k * h + y0 + i) * w + x0 + j] = (i + j) % 2 == 0 ? 255 : 0;
}

void fv_adv_poison(const fv_config *c, int client, fv_dataset *d) {
    if (c->adv_kind == FV_ADV_LABEL_FLIP) {
        for (int i = 0; i < d->n; i++) d->y[i] = (uint8_t)(d->classes - 1 - d->y[i]);
        return;
    }
    if (c->adv_kind != FV_ADV_BACKDOOR || d->n == 0) return;
    int n = (int)lround(c->adv_poison_fraction * d->n);
    int *idx = fv_malloc((size_t)d->n * sizeof(int));
    for (int i = 0; i < d->n; i++) idx[i] = i;
    fv_rng r;
    fv_rng_seed2(&r, (uint64_t)c->seed ^ STREAM_POISON, (uint64_t)(uint32_t)client);
    size_t per = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < n; i++) {
        int j = i + (int)fv_rng_below(&r, (uint64_t)(d->n - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        fv_adv_stamp(c, d->x + (size_t)idx[i] * per, d->c, d->h, d->w);
        d->y[idx[i]] = (uint8_t)c->adv_target;
    }
    free(idx);
}

void fv_adv_forge(const fv_config *c, int round, int client, const float *global, float *params, size_t n_train) {
    switch (c->adv_kind) {
    case FV_ADV_NONE: return;
    case FV_ADV_NOISE: {
        fv_rng r;
        fv_rng_seed2(&r, (uint64_t)c->seed ^ STREAM_NOISE, ((uint64_t)(uint32_t)round << 32) | (uint32_t)client);
        for (size_t i = 0; i < n_train; i++) params[i] = (float)(global[i] + c->adv_noise_std * fv_rng_normal(&r));
        return;
    }
    case FV_ADV_HUGE:
        for (size_t i = 0; i < n_train; i++) params[i] = (float)c->adv_huge_value;
        return;
    case FV_ADV_SIGN_FLIP:
    case FV_ADV_SCALE:
    case FV_ADV_LABEL_FLIP:
    case FV_ADV_BACKDOOR: {
        double s = fv_adv_scale(c) * (c->adv_kind == FV_ADV_SIGN_FLIP ? -1 : 1);
        if (s == 1) return; /* plain data poisoning: the trained upload, bit for bit */
        for (size_t i = 0; i < n_train; i++) params[i] = (float)(global[i] + s * ((double)params[i] - global[i]));
        return;
    }
    }
    FV_DIE("unknown [adversary] kind %d", (int)c->adv_kind);
}

int fv_adv_backdoor_set(const fv_config *c, const fv_dataset *test, fv_dataset *out, fv_err *e) {
    memset(out, 0, sizeof *out);
    if (fv_adv_check_data(c, test, e) != 0) return -1;
    int n = 0;
    for (int i = 0; i < test->n; i++) n += test->y[i] != c->adv_target;
    if (n == 0)
        return fv_err_set(e, "[adversary] target %d: every test image is of that class, so the backdoor cannot be "
                          "measured", c->adv_target);
    size_t per = (size_t)test->c * test->h * test->w;
    *out = *test;
    out->n = n;
    out->x = fv_malloc((size_t)n * per);
    out->y = fv_malloc((size_t)n);
    int k = 0;
    for (int i = 0; i < test->n; i++) {
        if (test->y[i] == c->adv_target) continue;
        memcpy(out->x + (size_t)k * per, test->x + (size_t)i * per, per);
        fv_adv_stamp(c, out->x + (size_t)k * per, test->c, test->h, test->w);
        out->y[k++] = (uint8_t)c->adv_target;
    }
    return 0;
}
