/* partition.c: see partition.h. */
#include "data/partition.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Distinct stream ids so the partition never shares random numbers with other users of seed. */
#define STREAM_PARTITION 0x7061727469ull /* "parti" */
#define DIRICHLET_MAX_DRAWS 1000

double fv_partition_gamma(fv_rng *r, double a) {
    FV_ASSERT(a > 0);
    if (a < 1) {
        /* Gamma(a) = Gamma(a + 1) * U^(1/a); done in logs to survive tiny a */
        double g = fv_partition_gamma(r, a + 1);
        double u = fv_rng_uniform_d(r);
        while (u <= 0) u = fv_rng_uniform_d(r);
        return exp(log(g) + log(u) / a);
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = fv_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0);
        v = v * v * v;
        double u = fv_rng_uniform_d(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

static void alloc_part(fv_partition *p, int n_clients, int n) {
    p->n_clients = n_clients;
    p->n = n;
    p->offset = fv_calloc((size_t)n_clients + 1, sizeof(int));
    p->idx = fv_malloc((size_t)(n ? n : 1) * sizeof(int));
}

void fv_partition_free(fv_partition *p) {
    if (!p) return;
    free(p->offset);
    free(p->idx);
    memset(p, 0, sizeof *p);
}

static int check_min(const fv_partition *p, int min_samples, const char *scheme, fv_err *e) {
    for (int c = 0; c < p->n_clients; c++)
        if (fv_partition_size(p, c) < min_samples)
            return fv_err_set(e,
                              "partition %s: client %d gets %d images, fewer than min_samples = %d "
                              "(%d images for %d clients)",
                              scheme, c, fv_partition_size(p, c), min_samples, p->n, p->n_clients);
    return 0;
}

static void make_iid(fv_partition *p, fv_rng *r) {
    int n = p->n, k = p->n_clients;
    for (int i = 0; i < n; i++) p->idx[i] = i;
    fv_rng_shuffle_int(r, p->idx, n);
    for (int c = 0; c <= k; c++) p->offset[c] = (int)((int64_t)c * n / k);
}

/* Indices of each class, in index order: cls_idx[cls_off[y] .. cls_off[y+1]). */
static void by_class(const uint8_t *labels, int n, int classes, int *cls_off, int *cls_idx) {
    memset(cls_off, 0, (size_t)(classes + 1) * sizeof(int));
    for (int i = 0; i < n; i++) cls_off[labels[i] + 1]++;
    for (int y = 0; y < classes; y++) cls_off[y + 1] += cls_off[y];
    int *fill = fv_malloc((size_t)classes * sizeof(int));
    memcpy(fill, cls_off, (size_t)classes * sizeof(int));
    for (int i = 0; i < n; i++) cls_idx[fill[labels[i]]++] = i;
    free(fill);
}

static void make_shards(fv_partition *p, const uint8_t *labels, int classes, int s, fv_rng *r) {
    int n = p->n, k = p->n_clients, ns = k * s;
    int *cls_off = fv_malloc((size_t)(classes + 1) * sizeof(int));
    int *sorted = fv_malloc((size_t)n * sizeof(int));
    by_class(labels, n, classes, cls_off, sorted);
    int *perm = fv_malloc((size_t)ns * sizeof(int));
    for (int i = 0; i < ns; i++) perm[i] = i;
    fv_rng_shuffle_int(r, perm, ns);
    int pos = 0;
    for (int c = 0; c < k; c++) {
        p->offset[c] = pos;
        for (int j = 0; j < s; j++) {
            int sh = perm[c * s + j];
            int a = (int)((int64_t)sh * n / ns), b = (int)((int64_t)(sh + 1) * n / ns);
            if (b > a) memcpy(p->idx + pos, sorted + a, (size_t)(b - a) * sizeof(int));
            pos += b - a;
        }
    }
    p->offset[k] = pos;
    FV_ASSERT(pos == n);
    free(perm);
    free(sorted);
    free(cls_off);
}

/* One Dirichlet draw of the whole partition into p. */
static void dirichlet_once(fv_partition *p, const int *cls_off, const int *cls_idx, int classes,
                           double alpha, fv_rng *r, int *count, int **lists, int *cap, int *tmp,
                           double *prop) {
    int n = p->n, k = p->n_clients;
    memset(count, 0, (size_t)k * sizeof(int));
    double fair = (double)n / k;
    for (int y = 0; y < classes; y++) {
        int m = cls_off[y + 1] - cls_off[y];
        if (m == 0) continue;
        memcpy(tmp, cls_idx + cls_off[y], (size_t)m * sizeof(int));
        fv_rng_shuffle_int(r, tmp, m);
        double sum = 0;
        for (int c = 0; c < k; c++) {
            double g = fv_partition_gamma(r, alpha);
            prop[c] = count[c] < fair ? g : 0; /* balance: full clients take no more */
            sum += prop[c];
        }
        if (!(sum > 0)) { /* every client full or all draws underflowed: spread uniformly */
            for (int c = 0; c < k; c++) prop[c] = 1;
            sum = k;
        }
        double acc = 0;
        int prev = 0;
        for (int c = 0; c < k; c++) {
            acc += prop[c] / sum;
            int cut = c == k - 1 ? m : (int)(acc * m);
            if (cut > m) cut = m;
            if (cut < prev) cut = prev;
            int take = cut - prev;
            if (count[c] + take > cap[c]) {
                while (count[c] + take > cap[c]) cap[c] = cap[c] ? cap[c] * 2 : 64;
                lists[c] = fv_realloc(lists[c], (size_t)cap[c] * sizeof(int));
            }
            if (take > 0) memcpy(lists[c] + count[c], tmp + prev, (size_t)take * sizeof(int));
            count[c] += take;
            prev = cut;
        }
    }
    int pos = 0;
    for (int c = 0; c < k; c++) {
        p->offset[c] = pos;
        if (count[c] > 0) memcpy(p->idx + pos, lists[c], (size_t)count[c] * sizeof(int));
        pos += count[c];
    }
    p->offset[k] = pos;
    FV_ASSERT(pos == n);
}

static int make_dirichlet(fv_partition *p, const uint8_t *labels, int classes, double alpha, int min_samples,
                          fv_rng *r, fv_err *e) {
    int n = p->n, k = p->n_clients;
    int *cls_off = fv_malloc((size_t)(classes + 1) * sizeof(int));
    int *cls_idx = fv_malloc((size_t)n * sizeof(int));
    by_class(labels, n, classes, cls_off, cls_idx);
    int *count = fv_calloc((size_t)k, sizeof(int));
    int *cap = fv_calloc((size_t)k, sizeof(int));
    int **lists = fv_calloc((size_t)k, sizeof(int *));
    int *tmp = fv_malloc((size_t)n * sizeof(int));
    double *prop = fv_malloc((size_t)k * sizeof(double));
    int rc = -1, draw, smallest = 0;
    for (draw = 0; draw < DIRICHLET_MAX_DRAWS; draw++) {
        dirichlet_once(p, cls_off, cls_idx, classes, alpha, r, count, lists, cap, tmp, prop);
        smallest = n;
        for (int c = 0; c < k; c++)
            if (count[c] < smallest) smallest = count[c];
        if (smallest >= min_samples) {
            rc = 0;
            break;
        }
    }
    if (rc != 0)
        fv_err_set(e,
                   "partition dirichlet: after %d draws some client still holds fewer than "
                   "min_samples = %d images (last draw: %d); raise partition.alpha (%g), lower "
                   "fl.clients (%d) or partition.min_samples",
                   DIRICHLET_MAX_DRAWS, min_samples, smallest, alpha, k);
    for (int c = 0; c < k; c++) free(lists[c]);
    free(lists);
    free(cap);
    free(count);
    free(tmp);
    free(prop);
    free(cls_idx);
    free(cls_off);
    return rc;
}

int fv_partition_make(fv_partition *p, fv_part_scheme scheme, const uint8_t *labels, int n, int classes,
                      int n_clients, double alpha, int shards_per_client, int min_samples, uint64_t seed,
                      fv_err *e) {
    memset(p, 0, sizeof *p);
    if (n_clients < 1) return fv_err_set(e, "partition: %d clients", n_clients);
    if (classes < 1 || classes > 256) return fv_err_set(e, "partition: %d classes", classes);
    for (int i = 0; i < n; i++)
        if (labels[i] >= classes) return fv_err_set(e, "partition: image %d has label %d >= %d classes", i, labels[i], classes);
    fv_rng r;
    fv_rng_seed2(&r, seed, STREAM_PARTITION);
    switch (scheme) {
    case FV_PART_IID:
        if (n < n_clients)
            return fv_err_set(e, "partition iid: %d images cannot give each of %d clients an image", n, n_clients);
        alloc_part(p, n_clients, n);
        make_iid(p, &r);
        if (check_min(p, min_samples, "iid", e) != 0) goto fail;
        return 0;
    case FV_PART_SHARDS:
        if (shards_per_client < 1 || (int64_t)n_clients * shards_per_client > n)
            return fv_err_set(e, "partition shards: %d clients x %d shards needs at least that many images, have %d",
                              n_clients, shards_per_client, n);
        alloc_part(p, n_clients, n);
        make_shards(p, labels, classes, shards_per_client, &r);
        if (check_min(p, min_samples, "shards", e) != 0) goto fail;
        return 0;
    case FV_PART_DIRICHLET:
        if (!(alpha > 0)) return fv_err_set(e, "partition dirichlet: alpha must be > 0, got %g", alpha);
        if ((int64_t)n_clients * min_samples > n)
            return fv_err_set(e, "partition dirichlet: %d clients x min_samples %d exceeds the %d images",
                              n_clients, min_samples, n);
        alloc_part(p, n_clients, n);
        if (make_dirichlet(p, labels, classes, alpha, min_samples, &r, e) != 0) goto fail;
        return 0;
    }
    return fv_err_set(e, "partition: unknown scheme %d", (int)scheme);
fail:
    fv_partition_free(p);
    return -1;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

fv_partition_stats fv_partition_describe(const fv_partition *p, const uint8_t *labels, int classes) {
    fv_partition_stats s = {0};
    int k = p->n_clients;
    int *sizes = fv_malloc((size_t)k * sizeof(int));
    uint8_t *seen = fv_malloc((size_t)classes);
    double labels_total = 0;
    for (int c = 0; c < k; c++) {
        sizes[c] = fv_partition_size(p, c);
        memset(seen, 0, (size_t)classes);
        int distinct = 0;
        const int *ix = fv_partition_indices(p, c);
        for (int i = 0; i < sizes[c]; i++)
            if (!seen[labels[ix[i]]]) {
                seen[labels[ix[i]]] = 1;
                distinct++;
            }
        labels_total += distinct;
    }
    qsort(sizes, (size_t)k, sizeof(int), cmp_int);
    s.min_size = sizes[0];
    s.median_size = sizes[k / 2];
    s.max_size = sizes[k - 1];
    s.mean_labels = labels_total / k;
    free(sizes);
    free(seen);
    return s;
}
