/* data.h: image data sets held as uint8 NCHW arrays with integer labels, and their loaders:
 * IDX (raw or .gz through zlib) for MNIST and Fashion-MNIST, the CIFAR-10 binary format, and a
 * deterministic Colored-MNIST generator; the IDX writer beside the reader (raw files, for data
 * sets fedvim produces). Also the conversion to normalised float batches.
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

/* Read one IDX file, raw or gzip (recognised by the gzip magic 1f 8b, whatever the name;
 * concatenated gzip members are allowed, other bytes after the gzip data are an error). Checks the
 * magic (0x00000800 | ndim, unsigned bytes only, 1 <= ndim <= 4), every dimension > 0, the
 * payload size prod(dims) <= 2 GiB, and that the payload is exactly prod(dims) bytes (truncated
 * and over-long files are errors; gzip CRC and length are verified). Nothing is allocated before
 * the header is validated against the file size. On success *data (caller frees), dims[0..*ndim)
 * are set (the rest zeroed). Returns 0, or -1 with e naming the file and the problem; *data is
 * untouched on failure. */
FV_MUST_USE int fv_idx_read(const char *path, uint8_t **data, int dims[4], int *ndim, fv_err *e);

/* Write one raw IDX file of unsigned bytes, atomically (fv_write_file_atomic): magic
 * 0x00000800 | ndim, the dimensions as big-endian uint32, then the prod(dims) bytes of data. It
 * writes only what fv_idx_read accepts: 1 <= ndim <= 4 (else programmer error, abort), and a zero
 * or negative dimension or a payload over the reader's 2 GiB limit is an error (no file is
 * written then). Returns 0, or -1 with e naming the file and the problem. */
FV_MUST_USE int fv_idx_write(const char *path, const uint8_t *data, const int *dims, int ndim, fv_err *e);

/* Write d in the MNIST layout that fv_mnist_load reads back: dir/<split>-images-idx3-ubyte with
 * dimensions (n, h, w) when d->c is 1, (n, c, h, w) otherwise, and dir/<split>-labels-idx1-ubyte
 * (n), split "train" when `train` else "t10k"; each file atomically. dir must exist. Returns 0,
 * or -1 with e naming the file (the images may then be written without their labels). */
FV_MUST_USE int fv_mnist_write(const char *dir, int train, const fv_dataset *d, fv_err *e);

/* Load an MNIST-layout data set from dir: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each raw
 * or with .gz appended (raw preferred when both exist). `train` selects the split. Images must be
 * 3-D (n, h, w), labels 1-D; labels must be < 10 (the error names the file and the index) and the
 * image and label counts must agree. Result: c = 1, classes = 10. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_mnist_load(const char *dir, int train, fv_dataset *out, fv_err *e);

/* Load CIFAR-10 binary batch files (each record: 1 label byte + 3072 pixel bytes, CHW).
 * `paths` (npaths >= 1) lists the files to concatenate. Each file's size must be a positive
 * multiple of 3073 and every label < 10 (the error names the file and the record). Result:
 * 3 x 32 x 32, classes = 10. Returns 0 or -1 with e set. */
FV_MUST_USE int fv_cifar10_load(const char *const *paths, int npaths, fv_dataset *out, fv_err *e);

/* Load CIFAR-10 from its standard folder layout: dir/data_batch_{1..5}.bin for train,
 * dir/test_batch.bin for test; dir/cifar-10-batches-bin/ (as the official archive extracts) is
 * also accepted. A missing file gives an error that says where to get the data. */
FV_MUST_USE int fv_cifar10_load_dir(const char *dir, int train, fv_dataset *out, fv_err *e);

/* Colored MNIST: each grey digit becomes an RGB image; per image, a foreground and a background
 * colour are drawn deterministically from (seed, image index) and the pixel value blends them:
 * out_c = round(bg_c + (fg_c - bg_c) * v / 255). Colours are uniform in the RGB cube, independent
 * of the label, and at least 160 apart (Euclidean, 0..255 units). Output is 3 x h x w, same
 * labels, caller frees with fv_dataset_free. Deterministic: image i depends on (seed, i, its grey
 * pixels) only, whatever the thread count. grey->c must be 1. */
void fv_cmnist_make(const fv_dataset *grey, uint64_t seed, fv_dataset *out);

/* The seeds fv_dataset_load gives fv_cmnist_make for Colored MNIST's training and test splits. */
#define FV_CMNIST_SEED_TRAIN 1
#define FV_CMNIST_SEED_TEST 2

/* The foreground fg[3] and background bg[3] colour (0..255 per channel) of Colored MNIST image
 * `index` drawn with `seed`: exactly the colours fv_cmnist_make gives that image (its one source),
 * so attacks can use them as hidden attributes. Cannot fail. */
void fv_cmnist_colours(uint64_t seed, uint64_t index, int fg[3], int bg[3]);

/* Per-channel normalisation constants used when converting to float. */
typedef struct {
    float mean[4];
    float std[4];
} fv_norm;

/* The conventional constants for a data set name: mnist 0.1307/0.3081, fashion 0.2860/0.3530,
 * cifar10 the training-set channel statistics (0.4914, 0.4822, 0.4465)/(0.2470, 0.2435, 0.2616),
 * cmnist 0.5/0.5 per channel (its colours are uniform: [0, 1] maps to [-1, 1]). Unknown names and
 * NULL give mean 0, std 1. Entries past a set's channel count repeat its last channel. */
fv_norm fv_norm_for(const char *dataset);

/* Convert images idx[0..count) (or start..start+count if idx is NULL) to float NCHW:
 * out = (x / 255 - mean_c) / std_c. `out` holds count*c*h*w floats. Indices out of range abort
 * (programmer error). Multi-threaded (OpenMP) for large batches. */
void fv_dataset_to_float(const fv_dataset *d, const int *idx, int start, int count, fv_norm norm,
                         float *out);

/* Gather labels likewise into int32. */
void fv_dataset_labels(const fv_dataset *d, const int *idx, int start, int count, int *out);

/* Keep the first n images only (0 <= n <= d->n). The arrays keep their size until
 * fv_dataset_free. */
void fv_dataset_truncate(fv_dataset *d, int n);

/* Keep images [first, first + n) only, moved to the front (0 <= first, 0 <= n, first + n <= d->n).
 * The arrays keep their size until fv_dataset_free. */
void fv_dataset_range(fv_dataset *d, int first, int n);

/* Load a data set by name: "mnist", "fashion", "cmnist" (Colored MNIST from MNIST, seed 1 for
 * train and 2 for test) or "cifar10", from `dir` (for cmnist: the MNIST folder). dir NULL: the
 * default location: $FEDVIM_DATA/<mnist|fashion|cifar10> when FEDVIM_DATA is set, else
 * ./data/<...>; fashion uses /usr/share/datasets/fashion-mnist (Debian package
 * dataset-fashion-mnist) when that folder does not exist; cmnist reads mnist's folder.
 * Returns 0 or -1 with e naming what is missing and how to get it (out is zeroed then). */
FV_MUST_USE int fv_dataset_load(const char *name, const char *dir, int train, fv_dataset *out, fv_err *e);

/* The folder fv_dataset_load(name, dir, ...) reads, into out[cap] (not checked for existence
 * beyond Fashion-MNIST's fallback). Returns 0; -1 with e set for an unknown name or a path too
 * long. */
FV_MUST_USE int fv_dataset_folder(const char *name, const char *dir, char *out, size_t cap, fv_err *e);

#endif
