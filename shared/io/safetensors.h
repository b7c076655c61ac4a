/* safetensors.h: checkpoints in the safetensors format (8-byte little-endian header length, JSON
 * header, raw little-endian data), with state-dict tensor names, so PyTorch users can call
 * safetensors.torch.load_file. Written atomically; validated on load (header syntax, dtypes,
 * shapes, offsets inside the file, no overlap, sizes matching the model).
 *
 * Two levels:
 *  - fv_safetensors_save / _load move a whole fv_net (every tensor of net->tensors);
 *  - fv_st_write / fv_st_read move any list of named F32 tensors (optimizer state, raw update
 *    vectors, per-client state) for modules that have no fv_net.
 *
 * File layout written: u64 N (little-endian), then N bytes of compact JSON
 *   {"__metadata__":{"k":"v",...},"name":{"dtype":"F32","shape":[d0,...],"data_offsets":[b,e]},...}
 * ("__metadata__" only when there is metadata; tensors in the order given, their data packed
 * back to back in that order) padded with spaces to a multiple of 8, then the data.
 *
 * What a reader accepts (strict; anything else is an error naming the file and the tensor, or for
 * JSON syntax the byte): header length <= FV_ST_HEADER_MAX and inside the file; header starting
 * with '{'; RFC 8259 JSON (libjansson, io/json_read.h: UTF-8, no duplicate keys, followed only by
 * whitespace) restricted to what the format uses (objects, strings, non-negative integers in
 * arrays, read exactly as 64-bit integers, never through a double, at most INT64_MAX); per
 * tensor exactly the keys dtype, shape, data_offsets; dtype F32 (other dtypes are named in the error: this
 * project stores float32 only); shape of at most FV_ST_MAX_DIMS dimensions; data_offsets whose
 * length is 4 * the element count, together covering the data section exactly, contiguously and
 * without overlap (the rule of the reference implementation); "__metadata__" string to string.
 * Not here: other dtypes, memory mapping, lazy loading.
 */
#ifndef FV_SAFETENSORS_H
#define FV_SAFETENSORS_H
#include <stdint.h>

#include "fv_common.h"
#include "nn/net.h"

/* Save every tensor of net (trainable and buffers) as F32, plus optional string metadata
 * (pairs of key, value; may be NULL with nmeta 0). Returns 0 or -1 with e set. */
FV_MUST_USE int fv_safetensors_save(const char *path, const fv_net *net, const char *const *meta, int nmeta,
                        fv_err *e);

/* Load into net: every tensor of net must be present with the same shape and dtype F32; extra
 * tensors in the file are an error. Returns 0 or -1 with e naming the file and the problem. */
FV_MUST_USE int fv_safetensors_load(const char *path, fv_net *net, fv_err *e);

/* ---- Lower level: lists of named float32 tensors ---- */

#define FV_ST_MAX_DIMS 8
#define FV_ST_HEADER_MAX (100u * 1000u * 1000u) /* bytes of JSON header accepted (as reference) */

/* One named F32 tensor. For fv_st_write the caller owns name and data; in an fv_st_file they
 * belong to the file object. ndim 0 is a scalar (one float); a zero dimension is allowed (no
 * data). */
typedef struct {
    const char *name;
    int ndim;
    int64_t dims[FV_ST_MAX_DIMS];
    const float *data; /* fv_st_numel(t) floats */
} fv_st_tensor;

/* Number of elements: the product of dims (1 for a scalar). */
size_t fv_st_numel(const fv_st_tensor *t);

/* Write n tensors t[0..n) and nmeta metadata pairs (meta[2i] key, meta[2i+1] value; meta may be
 * NULL when nmeta is 0) to path, atomically. Names must be unique, non-empty, valid UTF-8 and not
 * "__metadata__"; metadata keys unique; all strings valid UTF-8. Returns 0, or -1 with e set
 * (bad name, or the file cannot be written; then no file is left at path). A NULL name or data
 * pointer, negative dims or ndim outside [0, FV_ST_MAX_DIMS] is a programmer error (abort). */
FV_MUST_USE int fv_st_write(const char *path, const fv_st_tensor *t, int n, const char *const *meta, int nmeta,
                fv_err *e);

/* The contents of a safetensors file. All memory belongs to the object: the tensors' names and
 * data, and the metadata strings. Read-only for the caller. */
typedef struct {
    int n;                  /* tensors, in the order of the JSON header */
    fv_st_tensor *tensors;
    int nmeta;              /* metadata pairs */
    const char **meta;      /* 2 * nmeta strings: key, value, key, value ... (header order) */
    void *mem_;             /* internal: the data section, names and strings */
} fv_st_file;

/* Read and validate path (rules in the file comment). Returns a new object (caller frees with
 * fv_st_file_destroy), or NULL with e naming the file, the tensor and what is wrong. */
FV_MUST_USE fv_st_file *fv_st_read(const char *path, fv_err *e);

/* The same on a file image already in memory (buf[0..len), e.g. from a message). label names the
 * input in errors. The result does not point into buf. */
FV_MUST_USE fv_st_file *fv_st_read_mem(const uint8_t *buf, size_t len, const char *label, fv_err *e);

/* Free f and set *f to NULL. Accepts NULL and *f == NULL. */
void fv_st_file_destroy(fv_st_file **f);

/* The tensor called name, or NULL. */
const fv_st_tensor *fv_st_find(const fv_st_file *f, const char *name);

/* The metadata value for key, or NULL. */
const char *fv_st_meta(const fv_st_file *f, const char *key);

#endif
