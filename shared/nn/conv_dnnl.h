/* conv_dnnl.h: 2-D convolutions on the CPU through oneDNN (Debian's libdnnl, threaded with the
 * same OpenMP as the rest of nn/), for the conv nodes of a net whose per-shape rule
 * (fv_dnnl_conv_prefer) or whose caller (fv_net_set_conv) picks it. Same contract as
 * fv_conv2d_forward / fv_conv2d_backward in layers.h: NCHW activations, weights K x C/g x R x R
 * (groups and depthwise included), forward SETS out, backward ACCUMULATES (+=) into dinp, dw and
 * db (dinp NULL: no input gradient; db NULL: no bias gradient).
 *
 * Objects: one fv_dnnl per net (the oneDNN engine and stream, and growable work buffers shared by
 * the net's conv nodes, which run one after another), one fv_dnnl_conv per conv node (its
 * per-sample shape, and the primitives for the last few batch sizes it saw: created on the first
 * call with a batch size and thread count, reused after; nothing is created per call except
 * oneDNN's small memory handles).
 * Layouts: each primitive is created with "any" layouts, so oneDNN picks its fastest kernel (on
 * AVX-512: direct JIT kernels on channel-blocked nChw16c data). The caller's activations are NCHW
 * unless fv_dnnl_conv_set_layout says a side is blocked (net.c keeps chains of batch norms, ReLUs
 * and adds between oneDNN convs blocked, fv_net_set_blocked); an NCHW side is moved into oneDNN's
 * layout and back on every call, as PyTorch 1.13 does on NCHW tensors. The gradients come back
 * through moves that add, which is what makes them accumulate.
 * Determinism: oneDNN 2.6 has no "deterministic" attribute (it came in 3.x); its CPU kernels split
 * work statically over the OpenMP threads and reduce weight gradients in a fixed order, so a fixed
 * thread count gives bitwise-identical results run to run (tests/test_conv_dnnl.c checks this
 * for the kernels and for ResNet-20 training steps). The primitives are tied to the thread count
 * they were created under (a different count creates new ones).
 * Not here: the im2col + OpenBLAS path (conv2d.c), batch norm (fedvim's own, batchnorm.c), the
 * CUDA twins. Built only with FEDVIM_HAVE_DNNL (CMake option FEDVIM_DNNL).
 */
#ifndef FV_CONV_DNNL_H
#define FV_CONV_DNNL_H
#include "fv_common.h"
#include "nn/layers.h"

typedef struct fv_dnnl fv_dnnl;
typedef struct fv_dnnl_conv fv_dnnl_conv;

/* A CPU engine and stream. NULL with e set when oneDNN cannot create them. Caller owns. */
FV_MUST_USE fv_dnnl *fv_dnnl_new(fv_err *e);
/* Free everything (every fv_dnnl_conv made from d must be destroyed first); sets *d to NULL.
 * Accepts NULL and *d == NULL. */
void fv_dnnl_destroy(fv_dnnl **d);

/* The rule of FV_CONV_AUTO: 1 when this per-sample shape (s->N is ignored) runs faster through
 * oneDNN than through the im2col + OpenBLAS path, 0 otherwise. A pure function of the shape,
 * fixed from measurements (conv_dnnl.c says which), so the choice never depends on timing. */
int fv_dnnl_conv_prefer(const fv_conv2d_shape *s);

/* A conv of per-sample shape s (s->N is ignored), with a bias when bias != 0, running on d (which
 * must outlive it). Checks that oneDNN has kernels for the shape; NULL with e set when it does
 * not. Caller owns. */
FV_MUST_USE fv_dnnl_conv *fv_dnnl_conv_new(fv_dnnl *d, const fv_conv2d_shape *s, int bias, fv_err *e);
/* Free the conv and its primitives; sets *c to NULL. Accepts NULL and *c == NULL. */
void fv_dnnl_conv_destroy(fv_dnnl_conv **c);

/* The channel block (16 with AVX-512, 8 with AVX2) of the layout oneDNN picks for ResNet-class
 * 16-channel maps, nChw<B>c: [N][C/B][H][W][B]; 0 when it picks something else (then nothing in
 * fedvim keeps activations blocked). Asked once per d. */
int fv_dnnl_block(fv_dnnl *d);
/* The layouts of c's activations from now on: in_block for inp / dinp, out_block for out / dout,
 * each 0 (NCHW, the default) or B (nChw<B>c, with C or K a multiple of B). A blocked side that is
 * the layout oneDNN's kernel chose needs no move (net.c keeps chains of batch norms, ReLUs and adds
 * between oneDNN convs blocked). Drops the primitives made so far when the layouts change. With a
 * blocked input, set_dinp (fv_dnnl_conv_backward) lets the kernel write dinp directly: each
 * element is the value, a -0 included (not 0 + value). */
void fv_dnnl_conv_set_layout(fv_dnnl_conv *c, int in_block, int out_block);
/* out[N,K,OH,OW] = conv(inp[N,C,H,W], w[K,C/g,R,R]) + b[K]. s must have the per-sample shape c
 * was made for (any N >= 1); b must be non-NULL exactly when c has a bias. Aborts if oneDNN fails
 * (out of memory: the shape itself was checked by fv_dnnl_conv_new). keep_src != 0 keeps inp as
 * moved into oneDNN's layout (one more buffer of inp's size per batch size), and the next
 * fv_dnnl_conv_backward with the same inp pointer and batch size uses it instead of moving inp
 * again: the caller promises inp's contents do not change in between (a training step's forward
 * and backward); 0 keeps nothing and forgets what was kept. */
void fv_dnnl_conv_forward(fv_dnnl_conv *c, float *out, const float *inp, const float *w, const float *b,
                          int keep_src, const fv_conv2d_shape *s);
/* dinp[N,C,H,W] += ..., dw[K,C/g,R,R] += ..., db[K] += ... from dout[N,K,OH,OW], as
 * fv_conv2d_backward. dinp and db may be NULL (db must be NULL when c has no bias); dw NULL (then
 * db NULL too) skips the backward-weights primitive: the input gradient only. set_dinp != 0
 * writes dinp instead of adding into it, each element exactly what += into a zeroed buffer gives
 * (for a caller that knows the conv is dinp's only writer: it then need not zero it). */
void fv_dnnl_conv_backward(fv_dnnl_conv *c, float *dinp, int set_dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const fv_conv2d_shape *s);

#endif
