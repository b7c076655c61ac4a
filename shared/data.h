/* data.h: image data sets held as uint8 NCHW arrays with integer labels, and their loaders:
 * IDX (raw or .gz through zlib) for MNIST and Fashion-MNIST, the CIFAR-10 binary format, and a
 * deterministic Colored-MNIST generator. Also the conversion to normalised float batches.
 * Every loader validates what it reads (magic numbers, dimensions, counts, label range,
 * truncation) and fails with an error that names the file and the problem; it never crashes.
 * Not here: partitioning among clients (partition.h) and obfuscation (vmix.h).
 */
#ifndef FV_DATA_H
#define FV_DATA_H
#include <stdint.h>

#include "fv_common.h"

typedef struct {
    int n;          /* number of images */
    int c, h, w;    /* channels, height, width */
    int classes;    /* number of label classes */
    uint8_t *x;     /* n*c*h*w pixels, NCHW, 0..255 (caller owns, free with fv_dataset_free) */
    uint8_t *y;     /* n labels in [0, classes) */
} fv_dataset;

/* Release the arrays and zero the struct. Accepts a zeroed struct. */
void fv_dataset_free(fv_dataset *d);

/* Read one IDX file (raw, or gzip when the name ends in .gz or the data starts with the gzip
 * magic). Checks the magic (0x00000800 | ndim for unsigned bytes), the dimensions, and that the
 * payload is exactly prod(dims) bytes. On success *data (caller frees), dims[0..*ndim) are set.
 * Returns 0, or -1 with e naming the file and the problem. */
int fv_idx_read(const char *path, uint8_t **data, int dims[4], int *ndim, fv_err *e);

/* Load an MNIST-layout data set from dir: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each raw
 * or with .gz appended. `train` selects the split. Labels must be < 10 and the image and label
 * counts must agree. Returns 0 or -1 with e set. */
int fv_mnist_load(const char *dir, int train, fv_dataset *out, fv_err *e);

/* Load CIFAR-10 binary batch files (each record: 1 label byte + 3072 pixel bytes, CHW).
 * `paths` lists the files to concatenate. Returns 0 or -1 (bad size, label >= 10...). */
int fv_cifar10_load(const char *const *paths, int npaths, fv_dataset *out, fv_err *e);

/* Load CIFAR-10 from its standard folder layout: dir/data_batch_{1..5}.bin for train,
 * dir/test_batch.bin for test. */
int fv_cifar10_load_dir(const char *dir, int train, fv_dataset *out, fv_err *e);

/* Colored MNIST: each grey digit becomes an RGB image; per image, a foreground and a background
 * colour are drawn deterministically from (seed, image index) and the pixel value blends them:
 * out_c = bg_c + (fg_c - bg_c) * v / 255. Foreground and background are kept visibly apart.
 * Output is 3 x h x w, same labels. Deterministic: same input and seed give the same bytes. */
void fv_cmnist_make(const fv_dataset *grey, uint64_t seed, fv_dataset *out);

/* Per-channel normalisation constants used when converting to float. */
typedef struct {
    float mean[4];
    float std[4];
} fv_norm;

/* The conventional constants for a data set name (mnist: 0.1307/0.3081, fashion: 0.2860/0.3530,
 * cifar10 and cmnist: per-channel 0.5/0.5 style); unknown names give mean 0, std 1. */
fv_norm fv_norm_for(const char *dataset);

/* Convert images idx[0..count) (or start..start+count if idx is NULL) to float NCHW:
 * out = (x / 255 - mean_c) / std_c. `out` holds count*c*h*w floats. */
void fv_dataset_to_float(const fv_dataset *d, const int *idx, int start, int count, fv_norm norm,
                         float *out);

/* Gather labels likewise into int32. */
void fv_dataset_labels(const fv_dataset *d, const int *idx, int start, int count, int *out);

/* Keep the first n images only (n <= d->n). */
void fv_dataset_truncate(fv_dataset *d, int n);

/* Load a data set by name: "mnist", "fashion", "cmnist" (Colored MNIST from MNIST, seed 1 for
 * train and 2 for test) or "cifar10", from `dir` (NULL: the default location for that name:
 * $FEDVIM_DATA/<name> or ./data/<name>; fashion defaults to /usr/share/datasets/fashion-mnist).
 * Returns 0 or -1 with e naming what is missing and how to get it. */
int fv_dataset_load(const char *name, const char *dir, int train, fv_dataset *out, fv_err *e);

#endif
