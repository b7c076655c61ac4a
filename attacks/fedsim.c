/* fedsim.c: see fedsim.h. */
#include "fedsim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl/aggregate.h"
#include "nn/models.h"
#include "rng.h"
#include "nn/train.h"

fv_fedsim_cfg fv_fedsim_defaults(void) {
    fv_fedsim_cfg c;
    memset(&c, 0, sizeof c);
    c.model = "lenet5";
    c.clients = 5;
    c.rounds = 3;
    c.local_epochs = 1;
    c.batch = 32;
    c.opt = fv_opt_defaults(FV_OPT_ADAM);
    c.scheme = FV_PART_IID;
    c.alpha = 0.5;
    c.shards = 2;
    fv_vmix_params_default(&c.vp);
    for (int i = 0; i < 4; i++) c.norm.std[i] = 1.0f;
    c.seed = 1;
    return c;
}

void fv_fedsim_client_key(uint8_t key[FV_VMIX_KEY_BYTES], uint64_t seed, int client) {
    fv_rng r;
    fv_rng_seed2(&r, seed ^ 0x6b657973ULL, (uint64_t)client);
    for (int i = 0; i < FV_VMIX_KEY_BYTES; i += 8) {
        uint64_t v = fv_rng_u64(&r);
        memcpy(key + i, &v, 8);
    }
}

void fv_fedsim_subset(fv_dataset *out, const fv_dataset *d, const int *idx, int n) {
    size_t isz = (size_t)d->c * d->h * d->w;
    out->n = n;
    out->c = d->c;
    out->h = d->h;
    out->w = d->w;
    out->classes = d->classes;
    out->x = fv_malloc(isz * (size_t)(n ? n : 1));
    out->y = fv_malloc((size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        int k = idx ? idx[i] : i;
        memcpy(out->x + (size_t)i * isz, d->x + (size_t)k * isz, isz);
        out->y[i] = d->y[k];
    }
}

int fv_fedsim_mix(fv_dataset *out, const fv_dataset *d, const int *idx, int n, const uint8_t key[FV_VMIX_KEY_BYTES],
                  uint64_t domain, const fv_vmix_params *vp, fv_err *e) {
    fv_dataset sub;
    FV_ASSERT(n >= 0 && (idx || n <= d->n));
    fv_fedsim_subset(&sub, d, idx, n);
    int rc = fv_vmix_dataset(out, NULL, NULL, &sub, key, domain, vp, 1, e);
    fv_dataset_free(&sub);
    return rc;
}

int fv_fedsim_run(fv_fedsim *s, const fv_fedsim_cfg *cfg, const fv_dataset *train, int n, fv_err *e) {
    memset(s, 0, sizeof *s);
    if (n < 1 || n > train->n) return fv_err_set(e, "fedsim: %d training images requested, %d available", n, train->n);
    if (cfg->clients < 1 || cfg->rounds < 1 || cfg->local_epochs < 1 || cfg->batch < 1)
        return fv_err_set(e, "fedsim: clients, rounds, local epochs and batch must be >= 1");
    double t0 = fv_now();
    s->train = train;
    s->clients = cfg->clients;
    if (fv_partition_make(&s->part, cfg->scheme, train->y, n, train->classes, cfg->clients, cfg->alpha, cfg->shards, 1,
                          cfg->seed, e))
        return fv_err_prefix(e, "fedsim: partition: ");
    if (cfg->extra_classes < 0 || cfg->extra_classes > 16) {
        fv_partition_free(&s->part);
        return fv_err_set(e, "fedsim: %d extra classes (0 to 16)", cfg->extra_classes);
    }
    fv_net *net = fv_model_new(cfg->model, (fv_shape){train->c, train->h, train->w},
                               train->classes + cfg->extra_classes, cfg->seed, e);
    if (!net) {
        fv_partition_free(&s->part);
        return fv_err_prefix(e, "fedsim: ");
    }
    const fv_dataset *src = train;
    if (cfg->vmix) {
        /* each client's images, mixed with its own key, scattered back to their original indices */
        size_t isz = (size_t)train->c * train->h * train->w;
        fv_fedsim_subset(&s->mixed, train, NULL, n);
        for (int k = 0; k < cfg->clients; k++) {
            uint8_t key[FV_VMIX_KEY_BYTES];
            fv_fedsim_client_key(key, cfg->seed, k);
            fv_dataset mk;
            const int *ix = fv_partition_indices(&s->part, k);
            int nk = fv_partition_size(&s->part, k);
            if (fv_fedsim_mix(&mk, train, ix, nk, key, FV_VMIX_DOMAIN_TRAIN, &cfg->vp, e)) {
                fv_net_destroy(&net);
                fv_fedsim_free(s);
                return fv_err_prefix(e, "fedsim: client %d: ", k);
            }
            for (int i = 0; i < nk; i++) memcpy(s->mixed.x + (size_t)ix[i] * isz, mk.x + (size_t)i * isz, isz);
            fv_dataset_free(&mk);
        }
        src = &s->mixed;
    }
    size_t np = net->n_params, nt = net->n_train;
    s->n_params = np;
    s->start = fv_malloc(sizeof(float) * np);
    s->uploads = fv_malloc(sizeof(float) * np * cfg->clients);
    fv_agg_rule fedavg = fv_agg_rule_fedavg();
    fv_agg *agg = fv_agg_new(np, &fedavg);
    fv_opt *opt = fv_opt_new(&cfg->opt, nt);
    fv_rng rng;
    fv_rng_seed2(&rng, cfg->seed, 0x66656473);
    fv_net_seed_dropout(net, cfg->seed);
    for (int r = 0; r < cfg->rounds; r++) {
        memcpy(s->start, net->params, sizeof(float) * np);
        fv_agg_begin(agg, cfg->clients, r + 1, NULL);
        double loss = 0;
        for (int k = 0; k < cfg->clients; k++) {
            memcpy(net->params, s->start, sizeof(float) * np);
            fv_opt_reset(opt);
            int nk = fv_partition_size(&s->part, k);
            fv_epoch_stats st = {0};
            int hooked = cfg->client_hook ? cfg->client_hook(cfg->hook_ctx, r, k, net, e) : 0;
            if (hooked < 0) {
                fv_opt_destroy(&opt);
                fv_agg_destroy(&agg);
                fv_net_destroy(&net);
                fv_fedsim_free(s);
                return fv_err_prefix(e, "fedsim: round %d, client %d: ", r + 1, k);
            }
            for (int ep = 0; ep < cfg->local_epochs && !hooked; ep++)
                st = fv_train_epoch(net, opt, src, fv_partition_indices(&s->part, k), nk, cfg->batch, cfg->norm, &rng, 0,
                                    NULL, NULL, NULL, NULL);
            loss += st.loss * nk;
            memcpy(s->uploads + (size_t)k * np, net->params, sizeof(float) * np);
            fv_agg_put(agg, k, net->params, nk);
        }
        FV_ASSERT(fv_agg_end(agg, net->params) == cfg->clients); /* weights sum to n: each image in one shard */
        if (cfg->verbose)
            fprintf(stderr, "fedsim: round %d/%d: mean local loss %.4f (%.1f s)\n", r + 1, cfg->rounds, loss / n,
                    fv_now() - t0);
    }
    fv_opt_destroy(&opt);
    fv_agg_destroy(&agg);
    s->global = net;
    s->seconds = fv_now() - t0;
    return 0;
}

void fv_fedsim_free(fv_fedsim *s) {
    fv_net_destroy(&s->global);
    fv_dataset_free(&s->mixed);
    fv_partition_free(&s->part);
    free(s->start);
    free(s->uploads);
    memset(s, 0, sizeof *s);
}
