/* experiment.c: see experiment.h. */
#include "fl/experiment.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "nn/models.h"
#include "data/synthetic.h"
#include "vmix/vmix_bounds.h"

/* Stream ids: each use of fl.seed gets its own generator. */
#define STREAM_SAMPLE 0x73616d706c65ull /* "sample" */
#define STREAM_CLIENT 0x636c69656e74ull /* "client" */

int fv_exp_load_data(const fv_config *c, const char *data_dir, int train, fv_dataset *out, fv_err *e) {
    memset(out, 0, sizeof *out);
    int want = train ? c->train_size : c->test_size;
    if (strcmp(c->dataset, "synthetic") == 0) {
        int ch, h, w;
        if (fv_config_synthetic_shape(c->synthetic_shape, &ch, &h, &w) != 0)
            return fv_err_set(e, "[data] synthetic_shape '%s' is not CxHxW", c->synthetic_shape);
        fv_synthetic_make(out, want ? want : (train ? 6000 : 1000), ch, h, w, c->synthetic_classes,
                          (uint64_t)c->seed, train ? 0 : 1);
        return 0;
    }
    const char *dir = data_dir ? data_dir : (*c->data_dir ? c->data_dir : NULL);
    if (fv_dataset_load(c->dataset, dir, train, out, e) != 0) return -1;
    if (want > out->n) {
        int have = out->n;
        fv_dataset_free(out);
        return fv_err_set(e, "[data] %s = %d asks for more images than the %s %s split has (%d)",
                          train ? "train_size" : "test_size", want, c->dataset, train ? "training" : "test", have);
    }
    if (want) fv_dataset_truncate(out, want);
    return 0;
}

fv_norm fv_exp_norm(const fv_config *c) {
    return fv_norm_for(strcmp(c->dataset, "synthetic") == 0 ? "cmnist" : c->dataset);
}

fv_net *fv_exp_model(const fv_config *c, const fv_dataset *d, int outputs, fv_err *e) {
    return fv_model_new(c->model, (fv_shape){d->c, d->h, d->w}, outputs, (uint64_t)c->seed, e);
}

fv_opt_cfg fv_exp_opt_cfg(const fv_config *c) {
    fv_opt_cfg o = fv_opt_defaults(c->optimizer);
    o.lr = (float)c->lr;
    o.momentum = (float)c->momentum;
    o.nesterov = c->nesterov;
    o.wd = (float)c->weight_decay;
    o.beta1 = (float)c->beta1;
    o.beta2 = (float)c->beta2;
    o.eps = (float)c->eps;
    o.mu = (float)c->stadam_mu;
    return o;
}

int fv_exp_worker_queue(const fv_config *c) { return c->tasks_per_worker + c->worker_slots - 1; }

int fv_exp_partition(const fv_config *c, const fv_dataset *d, fv_partition *p, fv_err *e) {
    if (fv_partition_make(p, c->partition, d->y, d->n, d->classes, c->clients, c->alpha,
                          c->shards_per_client, c->min_samples, (uint64_t)c->seed, e) != 0)
        return fv_err_prefix(e, "[partition] ");
    return 0;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void fv_exp_sample_clients(const fv_config *c, int round, int *out) {
    int k = c->clients, m = fv_config_clients_per_round(c);
    if (m == k) {
        for (int i = 0; i < k; i++) out[i] = i;
        return;
    }
    /* partial Fisher-Yates over all ids: the first m are a uniform sample without replacement */
    int *ids = fv_malloc((size_t)k * sizeof(int));
    for (int i = 0; i < k; i++) ids[i] = i;
    fv_rng r;
    fv_rng_seed2(&r, (uint64_t)c->seed ^ STREAM_SAMPLE, (uint64_t)round);
    for (int i = 0; i < m; i++) {
        int j = i + (int)fv_rng_below(&r, (uint64_t)(k - i));
        int t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    memcpy(out, ids, (size_t)m * sizeof(int));
    free(ids);
    qsort(out, (size_t)m, sizeof(int), cmp_int);
}

void fv_exp_client_rng(const fv_config *c, int round, int client, fv_rng *r) {
    fv_rng_seed2(r, (uint64_t)c->seed ^ STREAM_CLIENT, ((uint64_t)(uint32_t)round << 32) | (uint32_t)client);
}

void fv_exp_vmix_bounds_cfg(const fv_config *c, fv_vmix_bounds_cfg *bc) {
    fv_vmix_bounds_cfg_default(bc);
    bc->target = c->vmix_vfe_target;
    bc->alpha = c->vmix_alpha;
    bc->lambda = c->vmix_lambda;
    bc->block = c->vmix_block;
    bc->unit = c->vmix_unit;
    bc->d_max = c->vmix_d_star == FV_CFG_AUTO ? FV_VMIX_DMAX_REL : c->vmix_d_star;
    bc->d_rel = c->vmix_d_rel;
    bc->dp.p = c->vmix_p;
    bc->dp.trials = c->vmix_trials;
    bc->conflict = c->vmix_conflict;
    bc->words = (fv_vmix_bounds_words){"vfe_target", "d_star (or d_star_relative with d_star = auto)",
                                       "set conflict = privacy or utility", "unit"};
}

int fv_exp_vmix_params(const fv_config *c, const fv_dataset *own, uint64_t mc_seed, int threads,
                       fv_vmix_params *p, fv_exp_bounds *b, fv_err *e) {
    memset(b, 0, sizeof *b);
    fv_vmix_params_default(p);
    p->unit = c->vmix_unit;
    p->block = c->vmix_block;
    p->lambda = c->vmix_lambda;
    p->mode = c->vmix_mode;
    p->verify = c->vmix_verify;
    p->target_vfe = c->vmix_vfe_target;
    fv_vmix_bounds_cfg bc;
    fv_exp_vmix_bounds_cfg(c, &bc);
    bc.dp.seed = mc_seed;
    bc.dp.threads = threads;
    bc.dp.images = own;
    fv_vmix_bounds vb;
    if (fv_vmix_bounds_compute(&vb, &bc, own->h, own->w, e) != 0) return fv_err_prefix(e, "[visualmixer] ");
    b->ws_min = vb.ws_min;
    b->ws_max = vb.ws_max;
    b->ws_min_model = vb.ws_min_model;
    b->ws_max_model = vb.ws_max_model;
    b->d_star = vb.d_max;
    b->resolved = vb.resolved == FV_VMIX_CONFLICT_ERROR ? NULL : fv_vmix_conflict_name(vb.resolved);
    p->ws_min = b->ws_min;
    p->ws_max = b->ws_max;
    if (fv_vmix_params_check(p, own->h, own->w, e) != 0) return fv_err_prefix(e, "[visualmixer] ");
    return 0;
}

#define CLIENT_KDF_CTX "fvclient" /* 8 bytes: libsodium KDF context of the clients' keys */

/* Client `client`'s own key from the master secret: the one rule behind VisualMixer's and
 * [obfuscation]'s draws (the caller wipes it). */
static void client_key(uint8_t key[FV_VMIX_KEY_BYTES], int client, const uint8_t master[FV_VMIX_KEY_BYTES]) {
    crypto_kdf_derive_from_key(key, FV_VMIX_KEY_BYTES, (uint64_t)client, CLIENT_KDF_CTX, master);
}

int fv_exp_client_mix(const fv_config *c, const fv_dataset *shard, int client, const uint8_t master[FV_VMIX_KEY_BYTES],
                      int threads, fv_dataset *mixed, fv_vmix_stats *st, fv_exp_bounds *b, fv_err *e) {
    uint8_t key[FV_VMIX_KEY_BYTES];
    client_key(key, client, master);
    fv_vmix_params p;
    fv_exp_bounds bb;
    fv_vmix_stats ss;
    int rc = fv_exp_vmix_params(c, shard, (uint64_t)c->seed ^ ((uint64_t)client << 20), threads, &p, &bb, e);
    if (rc == 0) rc = fv_vmix_dataset(mixed, NULL, &ss, shard, key, FV_VMIX_DOMAIN_TRAIN, &p, threads, e);
    sodium_memzero(key, sizeof key);
    if (rc != 0) return fv_err_prefix(e, "client %d: ", client);
    if (st) *st = ss;
    if (b) *b = bb;
    return 0;
}

void fv_exp_obf_cfg(const fv_config *c, fv_defence_cfg *d) {
    memset(d, 0, sizeof *d);
    d->kind = c->obf_kind;
    d->window = c->obf_window;
    d->sigma = c->obf_sigma;
}

int fv_exp_client_obfuscate(const fv_config *c, const fv_dataset *shard, int client,
                            const uint8_t master[FV_VMIX_KEY_BYTES], fv_dataset *out, fv_err *e) {
    uint8_t key[FV_VMIX_KEY_BYTES];
    client_key(key, client, master);
    fv_defence_cfg d;
    fv_exp_obf_cfg(c, &d);
    int rc = fv_defence_apply(out, shard, &d, key, FV_VMIX_DOMAIN_TRAIN, e);
    sodium_memzero(key, sizeof key);
    return rc ? fv_err_prefix(e, "client %d: ", client) : 0;
}
