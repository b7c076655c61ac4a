/* partition.h: how a training set is split among federated clients.
 *
 *  - IID: a uniformly random permutation cut into K nearly equal parts (sizes differ by <= 1).
 *  - Dirichlet(alpha) over labels (Hsu et al. 2019, as in NIID-Bench): for each class, the
 *    class's images are shuffled and split among the clients in proportions p ~ Dir(alpha, ...,
 *    alpha); a client that already holds N/K images gets no more (balance). The whole draw is
 *    repeated until every client holds at least min_samples images (at most 1000 draws, then an
 *    error suggests a larger alpha or fewer clients).
 *  - Pathological shards (McMahan et al. 2017): images sorted by label (stable), cut into K * s
 *    contiguous shards of nearly equal size, shards dealt to clients by a random permutation, s
 *    per client. With s = 2, most clients see two labels.
 * Every scheme covers each image exactly once and depends only on (labels, K, parameters, seed):
 * the coordinator and every worker compute the same partition independently.
 * Not here: loading data (data.h), drawing clients per round (the coordinator).
 */
#ifndef FV_PARTITION_H
#define FV_PARTITION_H
#include <stdint.h>

#include "fv_common.h"
#include "rng.h"

typedef enum { FV_PART_IID, FV_PART_DIRICHLET, FV_PART_SHARDS } fv_part_scheme;

typedef struct {
    int n_clients;
    int n;       /* images covered (the data set's size) */
    int *offset; /* n_clients + 1 offsets into idx */
    int *idx;    /* n image indices; client c holds idx[offset[c] .. offset[c+1]) */
} fv_partition;

/* Split n images with labels[n] (values < classes) among n_clients. alpha is used by
 * FV_PART_DIRICHLET, shards_per_client by FV_PART_SHARDS, min_samples by all (a client with fewer
 * images is an error for IID and shards, a redraw for Dirichlet). On success p owns its arrays
 * (fv_partition_free). Returns 0 or -1 with e saying which parameter makes the split
 * impossible. */
FV_MUST_USE int fv_partition_make(fv_partition *p, fv_part_scheme scheme, const uint8_t *labels, int n, int classes,
                      int n_clients, double alpha, int shards_per_client, int min_samples, uint64_t seed,
                      fv_err *e);

void fv_partition_free(fv_partition *p);

static inline int fv_partition_size(const fv_partition *p, int client) {
    return p->offset[client + 1] - p->offset[client];
}
static inline const int *fv_partition_indices(const fv_partition *p, int client) {
    return p->idx + p->offset[client];
}

/* Summary statistics: client sizes (min, median, max) and the mean number of distinct labels per
 * client, for logs and summary.json. */
typedef struct {
    int min_size, median_size, max_size;
    double mean_labels;
} fv_partition_stats;

fv_partition_stats fv_partition_describe(const fv_partition *p, const uint8_t *labels, int classes);

/* One Gamma(shape, 1) draw from the project RNG (Marsaglia-Tsang; shape > 0), exposed for tests. */
double fv_partition_gamma(fv_rng *rng, double shape);

#endif
