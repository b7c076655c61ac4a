/* fedsim.h: a small in-process FedAvg that produces the attack targets when an attack runs on
 * its own (`fedvim attack gan|mia`): K clients with a partition of the training images, each
 * optionally training on a VisualMixer-mixed copy of its images (its own simulation key), R
 * rounds of E local epochs from the current global model, aggregated by the coordinator's FedAvg
 * (shared/fl/aggregate.h: weighted by client size, in client order).
 * It keeps what an honest-but-curious server sees: every client's upload of the last round and
 * the global model before and after it.
 *
 * It is NOT the federated system: no wire, no peers, no failures, no client sampling. The real one
 * is coordinator/ + worker/, which reaches the attacks through attack_api.h. Simulation keys come
 * from the seed (reproducible, not secret).
 * Not here: the attacks, partitioning (shared/data/partition.h), mixing (shared/vmix/vmix.h).
 */
#ifndef FV_FEDSIM_H
#define FV_FEDSIM_H
#include <stdint.h>

#include "data/data.h"
#include "fv_common.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "data/partition.h"
#include "vmix/vmix.h"

typedef struct {
    const char *model;      /* shared/nn/models.h name (default "lenet5") */
    int clients;            /* K (default 5) */
    int rounds;             /* R (default 3) */
    int local_epochs;       /* E (default 1) */
    int batch;              /* local minibatch (default 32) */
    fv_opt_cfg opt;         /* local optimizer, fresh state each round (default Adam 1e-3) */
    fv_part_scheme scheme;  /* default IID */
    double alpha;           /* Dirichlet */
    int shards;             /* shards per client */
    int vmix;               /* 1: clients train on VisualMixer-mixed copies of their images */
    fv_vmix_params vp;      /* mixing parameters when vmix is set */
    fv_norm norm;           /* input normalisation */
    uint64_t seed;
    int verbose;            /* one line per round to stderr */
    int extra_classes;      /* model outputs beyond the data set's classes (active GAN: 1) */
    /* Optional: called for every client in every round before its local training, with net
     * holding the global model. Return 1 if the hook produced the client's upload itself (in net),
     * 0 for ordinary local training, -1 on failure (e set). A participating attacker is a hook. */
    int (*client_hook)(void *ctx, int round, int client, fv_net *net, fv_err *e);
    void *hook_ctx;
} fv_fedsim_cfg;

fv_fedsim_cfg fv_fedsim_defaults(void);

typedef struct {
    const fv_dataset *train; /* borrowed: the clients' original images (the first n used) */
    fv_dataset mixed;        /* vmix: the images as each client trains on them (same indices) */
    fv_partition part;
    fv_net *global;          /* the global model after the last round (owned) */
    float *start;            /* global parameters at the start of the last round [n_params] */
    float *uploads;          /* last round's uploads, [clients][n_params] */
    size_t n_params;
    int clients;
    double seconds;
} fv_fedsim;

/* Run FedAvg on the first n images of train. The simulation key of client k is derived from
 * (seed, k). Returns 0, or -1 with e set (bad model or partition, or mixing parameters). */
FV_MUST_USE int fv_fedsim_run(fv_fedsim *s, const fv_fedsim_cfg *cfg, const fv_dataset *train, int n, fv_err *e);

/* The simulation key of client k (32 bytes from the seed; the same as fv_fedsim_run uses). */
void fv_fedsim_client_key(uint8_t key[FV_VMIX_KEY_BYTES], uint64_t seed, int client);

/* Mix the images idx[0..n) of d (idx NULL: the first n) into out (a fresh data set of those images in
 * that order, caller frees) with key; domain as in vmix.h. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_fedsim_mix(fv_dataset *out, const fv_dataset *d, const int *idx, int n, const uint8_t key[FV_VMIX_KEY_BYTES],
                  uint64_t domain, const fv_vmix_params *vp, fv_err *e);

/* Copy images idx[0..n) of d (idx NULL: the first n) into a fresh data set (caller frees). */
void fv_fedsim_subset(fv_dataset *out, const fv_dataset *d, const int *idx, int n);

void fv_fedsim_free(fv_fedsim *s);

#endif
