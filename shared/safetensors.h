/* safetensors.h: checkpoints in the safetensors format (8-byte little-endian header length, JSON
 * header, raw little-endian data), with state-dict tensor names, so PyTorch users can call
 * safetensors.torch.load_file. Written atomically; validated on load (header syntax, dtypes,
 * shapes, offsets inside the file, no overlap, sizes matching the model).
 */
#ifndef FV_SAFETENSORS_H
#define FV_SAFETENSORS_H
#include "fv_common.h"
#include "net.h"

/* Save every tensor of net (trainable and buffers) as F32, plus optional string metadata
 * (pairs of key, value; may be NULL with nmeta 0). Returns 0 or -1 with e set. */
int fv_safetensors_save(const char *path, const fv_net *net, const char *const *meta, int nmeta,
                        fv_err *e);

/* Load into net: every tensor of net must be present with the same shape and dtype F32; extra
 * tensors in the file are an error. Returns 0 or -1 with e naming the file and the problem. */
int fv_safetensors_load(const char *path, fv_net *net, fv_err *e);

#endif
