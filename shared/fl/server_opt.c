/* server_opt.c: see server_opt.h. */
#include "fl/server_opt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fv_sopt {
    fv_sopt_rule rule;
    size_t len;   /* floats of state */
    float *state; /* fedavgm: v[n_train]; adaptive: m[n_train], v[n_train] */
    float *prev;  /* the state before this round's step */
    int stepped;  /* this round took a step (fv_sopt_undo has something to undo) */
    int sound;    /* this round's step left the state finite */
};

static int adaptive(fv_server_opt k) { return k == FV_SOPT_FEDADAM || k == FV_SOPT_FEDYOGI || k == FV_SOPT_FEDADAGRAD; }

fv_sopt_rule fv_sopt_rule_from_config(const fv_config *cfg, size_t n_train) {
    return (fv_sopt_rule){.kind = cfg->server_opt,
                          .n_train = n_train,
                          .lr = fv_config_server_lr(cfg),
                          .momentum = cfg->server_momentum,
                          .beta1 = cfg->server_beta1,
                          .beta2 = cfg->server_beta2,
                          .tau = cfg->server_tau};
}

fv_sopt *fv_sopt_new(const fv_sopt_rule *r) {
    FV_ASSERT(r->kind == FV_SOPT_NONE || r->lr > 0);
    FV_ASSERT(r->kind != FV_SOPT_FEDAVGM || (r->momentum >= 0 && r->momentum < 1));
    FV_ASSERT(!adaptive(r->kind) || (r->beta1 >= 0 && r->beta1 < 1 && r->beta2 >= 0 && r->beta2 < 1 && r->tau > 0));
    fv_sopt *s = fv_calloc(1, sizeof *s);
    s->rule = *r;
    s->len = r->kind == FV_SOPT_NONE ? 0 : r->kind == FV_SOPT_FEDAVGM ? r->n_train : 2 * r->n_train;
    if (s->len) {
        s->state = fv_calloc(s->len, sizeof(float));
        s->prev = fv_malloc(s->len * sizeof(float));
    }
    if (adaptive(r->kind)) {
        const float v0 = (float)(r->tau * r->tau);
        for (size_t i = 0; i < r->n_train; i++) s->state[r->n_train + i] = v0;
    }
    return s;
}

void fv_sopt_destroy(fv_sopt **sp) {
    if (!sp || !*sp) return;
    free((*sp)->state);
    free((*sp)->prev);
    free(*sp);
    *sp = NULL;
}

size_t fv_sopt_state_len(const fv_sopt *s) { return s->len; }

float *fv_sopt_state(fv_sopt *s) { return s->state; }

int fv_sopt_state_check(const fv_sopt *s, const char *what, fv_err *e) {
    size_t nt = s->rule.n_train;
    for (size_t i = 0; i < s->len; i++) {
        float x = s->state[i];
        if (!isfinite(x)) return fv_err_set(e, "%s: server optimizer state value %zu is not finite", what, i);
        if (adaptive(s->rule.kind) && i >= nt && x < 0)
            return fv_err_set(e, "%s: server optimizer second moment %zu is negative (%g)", what, i - nt, (double)x);
    }
    return 0;
}

void fv_sopt_begin(fv_sopt *s) {
    s->stepped = 0;
    s->sound = 1;
}

int fv_sopt_sound(const fv_sopt *s) { return s->sound; }

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static double sign(double x) { return (x > 0) - (x < 0); }

void fv_sopt_step(fv_sopt *s, const float *global, float *model) {
    const fv_sopt_rule *r = &s->rule;
    if (r->kind == FV_SOPT_NONE) return;
    FV_ASSERT(!s->stepped);
    memcpy(s->prev, s->state, s->len * sizeof(float));
    s->stepped = 1;
    size_t nt = r->n_train;
    if (r->kind == FV_SOPT_FEDAVGM) {
        float *v = s->state;
        for (size_t i = 0; i < nt; i++) {
            double x = global[i], d = (double)model[i] - x;
            v[i] = (float)(r->momentum * v[i] + d);
            model[i] = (float)(x + r->lr * v[i]);
        }
        s->sound = all_finite(s->state, s->len);
        return;
    }
    float *m = s->state, *v = s->state + nt;
    const double b1 = r->beta1, b2 = r->beta2;
    for (size_t i = 0; i < nt; i++) {
        double x = global[i], d = (double)model[i] - x, d2 = d * d;
        m[i] = (float)(b1 * m[i] + (1 - b1) * d);
        switch (r->kind) {
        case FV_SOPT_FEDADAM: v[i] = (float)(b2 * v[i] + (1 - b2) * d2); break;
        case FV_SOPT_FEDYOGI: v[i] = (float)(v[i] - (1 - b2) * d2 * sign(v[i] - d2)); break;
        case FV_SOPT_FEDADAGRAD: v[i] = (float)(v[i] + d2); break;
        case FV_SOPT_NONE:
        case FV_SOPT_FEDAVGM: FV_DIE("not an adaptive server optimizer: %d", (int)r->kind);
        }
        model[i] = (float)(x + r->lr * m[i] / (sqrt((double)v[i]) + r->tau));
    }
    s->sound = all_finite(s->state, s->len);
}

void fv_sopt_undo(fv_sopt *s) {
    if (!s->stepped) return;
    memcpy(s->state, s->prev, s->len * sizeof(float));
    s->stepped = 0;
    s->sound = 1;
}
