/* oracle.c: see oracle.h. */
#include "oracle.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/models.h"
#include "nn/optim.h"
#include "rng.h"
#include "io/safetensors.h"
#include "nn/train.h"
#include "nn/trainer.h"

fv_oracle_cfg fv_oracle_defaults(void) {
    fv_oracle_cfg c;
    memset(&c, 0, sizeof c);
    c.model = "fedavg_cnn";
    c.epochs = 3;
    c.batch = 64;
    c.lr = 1e-3f;
    c.seed = 77;
    c.data_tag = "";
    c.device = -1;
    return c;
}

fv_net *fv_oracle_train(const fv_oracle_cfg *cfg, const fv_dataset *d, const int *idx, int n, fv_norm norm,
                        double *acc, fv_err *e) {
    if (!idx) n = d->n;
    if (n < 1) {
        fv_err_set(e, "oracle: no training images");
        return NULL;
    }
    if (cfg->epochs < 1 || cfg->batch < 1 || !(cfg->lr > 0)) {
        fv_err_set(e, "oracle: bad recipe (epochs %d, batch %d, lr %g)", cfg->epochs, cfg->batch, cfg->lr);
        return NULL;
    }
    fv_net *net = fv_model_new(cfg->model, (fv_shape){d->c, d->h, d->w}, d->classes, cfg->seed, e);
    if (!net) {
        fv_err_prefix(e, "oracle: ");
        return NULL;
    }
    fv_opt_cfg oc = fv_opt_defaults(FV_OPT_ADAM);
    oc.lr = cfg->lr;
    const fv_trainer_cfg tc = {.device = cfg->device, .max_batch = cfg->batch, .opt = oc, .norm = norm};
    fv_trainer *t = fv_trainer_new(net, &tc, e);
    if (!t) {
        fv_err_prefix(e, "oracle: ");
        fv_net_destroy(&net);
        return NULL;
    }
    fv_trainer_shard *sh = fv_trainer_shard_new(t);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x6f72);
    fv_trainer_seed_dropout(t, cfg->seed);
    int *all = NULL;
    if (!idx) {
        all = fv_malloc(sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) all[i] = i;
        idx = all;
    }
    fv_epoch_stats st = {0};
    const int ok = fv_trainer_shard_load(sh, d, idx, n, e) == 0;
    if (ok) {
        for (int ep = 0; ep < cfg->epochs; ep++)
            st = fv_trainer_train_epoch(t, sh, cfg->batch, &rng, 0, NULL, NULL, NULL, NULL);
        fv_trainer_get_params(t, net->params); /* the CPU trainer trained them in place: no copy */
    }
    if (acc) *acc = st.accuracy;
    free(all);
    fv_trainer_shard_destroy(&sh);
    fv_trainer_destroy(&t);
    if (!ok) {
        fv_err_prefix(e, "oracle: ");
        fv_net_destroy(&net);
    }
    return net;
}

/* Metadata identifying what an oracle was trained on. */
static void oracle_meta(char vals[8][128], const fv_oracle_cfg *cfg, const fv_dataset *d, int n) {
    snprintf(vals[0], 128, "%s", cfg->model);
    snprintf(vals[1], 128, "%dx%dx%d", d->c, d->h, d->w);
    snprintf(vals[2], 128, "%d", d->classes);
    snprintf(vals[3], 128, "%d", cfg->epochs);
    snprintf(vals[4], 128, "%llu", (unsigned long long)cfg->seed);
    snprintf(vals[5], 128, "%.120s", cfg->data_tag ? cfg->data_tag : "");
    snprintf(vals[6], 128, "%d", n);
    snprintf(vals[7], 128, "%g/%d", cfg->lr, cfg->batch);
}

static const char *const META_KEYS[8] = {"oracle_model", "shape", "classes", "epochs", "seed", "data", "images", "lr_batch"};

fv_net *fv_oracle_get(const char *cache_path, const fv_oracle_cfg *cfg, const fv_dataset *d, const int *idx, int n,
                      fv_norm norm, int *trained, fv_err *e) {
    if (!idx) n = d->n;
    char vals[8][128];
    oracle_meta(vals, cfg, d, n);
    if (trained) *trained = 0;
    if (cache_path && access(cache_path, R_OK) == 0) {
        fv_err e2 = {{0}};
        fv_st_file *f = fv_st_read(cache_path, &e2);
        int match = f != NULL;
        for (int k = 0; k < 8 && match; k++) {
            const char *v = fv_st_meta(f, META_KEYS[k]);
            match = v && strcmp(v, vals[k]) == 0;
        }
        fv_st_file_destroy(&f);
        if (match) {
            fv_net *net = fv_model_new(cfg->model, (fv_shape){d->c, d->h, d->w}, d->classes, cfg->seed, e);
            if (!net) return NULL;
            if (fv_safetensors_load(cache_path, net, e) == 0) return net;
            fv_net_destroy(&net);
            return NULL;
        }
    }
    fv_net *net = fv_oracle_train(cfg, d, idx, n, norm, NULL, e);
    if (!net) return NULL;
    if (trained) *trained = 1;
    if (cache_path) {
        const char *meta[16];
        for (int k = 0; k < 8; k++) {
            meta[2 * k] = META_KEYS[k];
            meta[2 * k + 1] = vals[k];
        }
        if (fv_safetensors_save(cache_path, net, meta, 8, e)) {
            fv_err_prefix(e, "oracle cache: ");
            fv_net_destroy(&net);
            return NULL;
        }
    }
    return net;
}

double fv_oracle_recognise(fv_net *oracle, const float *imgs, int n, fv_norm norm, int target, int *pred,
                           float *p_target) {
    FV_ASSERT(n >= 1);
    fv_shape s = oracle->input;
    int K = (int)fv_shape_size(fv_net_output_shape(oracle));
    FV_ASSERT(target >= 0 && target < K);
    size_t isz = fv_shape_size(s), hw = (size_t)s.h * s.w;
    const int chunk = 128;
    float *x = fv_malloc(sizeof(float) * chunk * isz);
    int hits = 0;
    for (int b0 = 0; b0 < n; b0 += chunk) {
        int b = n - b0 < chunk ? n - b0 : chunk;
        for (int i = 0; i < b; i++)
            for (int c = 0; c < s.c; c++)
                for (size_t p = 0; p < hw; p++) {
                    size_t k = (size_t)i * isz + c * hw + p;
                    x[k] = (imgs[(size_t)b0 * isz + k] - norm.mean[c]) / norm.std[c];
                }
        const float *logits = fv_net_forward(oracle, x, b, 0);
        for (int i = 0; i < b; i++) {
            const float *z = logits + (size_t)i * K;
            int arg = 0;
            for (int k = 1; k < K; k++)
                if (z[k] > z[arg]) arg = k;
            hits += arg == target;
            if (pred) pred[b0 + i] = arg;
            if (p_target) {
                double se = 0;
                for (int k = 0; k < K; k++) se += exp((double)(z[k] - z[arg]));
                p_target[b0 + i] = (float)(exp((double)(z[target] - z[arg])) / se);
            }
        }
    }
    free(x);
    return (double)hits / n;
}
