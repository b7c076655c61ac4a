/* net.h: a model as a small static graph of layer nodes in topological order (node 0 is the
 * input), with ALL parameters in one contiguous float buffer and all gradients in another.
 *
 * Parameter layout: net->params holds n_train trainable floats followed by n_state buffer floats
 * (batch-norm running statistics). net->grads holds n_train floats. A model update, as sent over
 * the wire, averaged, signed or attacked, is params[0 .. n_params) with n_params = n_train +
 * n_state. Each named tensor (PyTorch state-dict names such as "conv1.weight", "layer1.0.bn1.
 * running_mean") is a slice of params, listed in net->tensors.
 *
 * Usage:
 *   fv_net *net = fv_net_new((fv_shape){1, 28, 28});
 *   int x = 0;
 *   x = fv_net_conv2d(net, "conv1", x, 6, 5, 1, 2, 1, 1);
 *   x = fv_net_relu(net, x); ...
 *   fv_net_finish(net, seed);           // allocates and initialises parameters
 *   const float *logits = fv_net_forward(net, xbatch, n, 1);
 *   fv_softmax_xent(dlogits, logits, labels, n, classes, NULL);
 *   fv_net_backward(net, dlogits, n);   // net->grads = d loss / d params
 * Activation buffers grow on demand to the largest batch seen.
 * Not here: the layer kernels (layers.h), named architectures (models.h), optimizers (optim.h).
 */
#ifndef FV_NET_H
#define FV_NET_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fv_common.h"
#include "rng.h"

typedef struct {
    int c, h, w; /* per-sample shape; a vector of F features is {F, 1, 1} */
} fv_shape;

static inline size_t fv_shape_size(fv_shape s) { return (size_t)s.c * s.h * s.w; }

typedef enum {
    FV_OP_INPUT,
    FV_OP_CONV2D,
    FV_OP_LINEAR,
    FV_OP_BATCHNORM,
    FV_OP_MAXPOOL,
    FV_OP_AVGPOOL,
    FV_OP_GAP,
    FV_OP_RELU,
    FV_OP_SIGMOID,
    FV_OP_TANH,
    FV_OP_DROPOUT,
    FV_OP_FLATTEN,
    FV_OP_ADD,
    FV_OP_UPSAMPLE,
    FV_OP_LAYERNORM,    /* transformer token ops (see "Tokens" below) */
    FV_OP_GELU,
    FV_OP_TOKENS,
    FV_OP_TOKEN_LINEAR,
    FV_OP_ATTENTION,
    FV_OP_TOKEN_SELECT,
} fv_op;

#define FV_NAME_MAX 64
#define FV_MAX_NODES 256
#define FV_MAX_TENSORS 512

/* One named parameter or buffer tensor: a slice of net->params. */
typedef struct {
    char name[FV_NAME_MAX];
    int ndim;
    int dims[4];
    size_t off;   /* offset into params */
    size_t count; /* number of floats */
    int trainable;
} fv_tensor;

typedef struct {
    fv_op op;
    int in0, in1;        /* input node indices (in1 only for ADD; -1 otherwise) */
    fv_shape ishape, oshape; /* per-sample input and output shapes */
    int k, stride, pad, groups, bias; /* conv / pool / upsample (k = factor) attributes */
    float p;             /* dropout probability */
    float momentum, eps; /* batch norm */
    size_t w_off, b_off; /* trainable offsets (weight, bias / gamma, beta) into params */
    size_t rm_off, rv_off; /* batch-norm running mean / var offsets into params (state part) */
    int consumers;       /* number of nodes reading this node's output */
    int fused_relu;      /* batch norm or add: the ReLU node its training forward also computes
                            when the net fuses (fv_net_fusable_relu, fv_net_set_fuse), 0: none */
    int fused_into;      /* ReLU: the batch norm or add that computes it then, 0: none */
    int last_reader;     /* the highest index of a node reading this one (the first to send it a
                            gradient in backward, which zeroes its dout just before), 0: none */
    int blocked;         /* 0: out and dout are NCHW; B (8 or 16): channel-blocked nChw<B>c,
                            [N][C/B][H][W][B] (fv_net_set_blocked's chains) */
    /* activations, sized for `cap` samples */
    float *out, *dout;
    int32_t *argmax;     /* maxpool */
    uint8_t *mask;       /* dropout */
    float *bn_mean, *bn_invstd;
    int heads;           /* attention heads; token index for TOKEN_SELECT */
    float *saved;        /* layer norm: mean then rstd per token; attention: softmax probabilities */
    struct fv_dnnl_conv *dnnl; /* conv through oneDNN (conv_dnnl.h); NULL: im2col + OpenBLAS */
    float *cols;         /* conv with keep_im2col: the last forward's im2col (cap images) */
    int cols_n;          /* its batch size; 0: none valid */
    long long cols_key;  /* and its layout (fv_conv2d_cols_key) */
} fv_node;

/* How the CPU runs conv nodes: im2col + OpenBLAS (conv2d.c), oneDNN (conv_dnnl.h), or per node
 * the faster of the two for its shape (fv_dnnl_conv_prefer, a fixed rule). Builds without
 * oneDNN run every conv through OpenBLAS whatever the setting (FV_CONV_DNNL is refused). */
typedef enum { FV_CONV_AUTO, FV_CONV_BLAS, FV_CONV_DNNL } fv_conv_path;

/* How the forward treats the kinks of ReLU and max pooling (fv_net_set_kinks). FREE: as usual.
 * RECORD: as usual, and each ReLU's on/off mask and each max pool's argmax are kept. REPLAY: each
 * ReLU and max pool applies the masks and argmaxes of the last RECORD forward (same batch size)
 * instead of comparing its inputs, so the network is the same smooth function of the parameters
 * on both sides of a kink; the backward of a REPLAY forward uses the same masks. Second
 * derivatives by finite differences of gradients need this: a kink crossed between the two
 * evaluations would add a jump divided by the step (attacks/invert.h). */
typedef enum { FV_KINKS_FREE, FV_KINKS_RECORD, FV_KINKS_REPLAY } fv_kinks;

typedef struct fv_net {
    fv_shape input;
    int n_nodes;
    fv_node nodes[FV_MAX_NODES];
    int n_tensors;
    fv_tensor tensors[FV_MAX_TENSORS];
    size_t n_train, n_state, n_params;
    float *params; /* n_params floats: trainable then state */
    float *grads;  /* n_train floats */
    int cap;       /* batch capacity of activation buffers */
    float *scratch;
    size_t scratch_floats;
    int want_input_grad; /* when set, backward also fills input_grad */
    int keep_im2col;     /* when set, each im2col conv node keeps its forward's im2col for the
                          * backward (layers.h, fv_conv2d_forward_cols): one im2col instead of two
                          * per forward + backward, for C R R OH OW floats per sample and conv node;
                          * bitwise the same results. 0 (default): recomputed */
    int skip_param_grad; /* when set (with want_input_grad), backward computes the input gradient
                          * only: conv (both paths) and linear nodes skip their weight-gradient
                          * work (im2col + GEMM, or oneDNN's backward-weights primitive), and
                          * net->grads is left unspecified. input_grad is bitwise the
                          * same as a full backward's. 0 (default): grads as documented */
    float *input_grad;   /* cap * input size floats (valid after backward if want_input_grad) */
    fv_rng rng;          /* dropout masks */
    int finished;
    int last_n, last_train; /* batch size and mode of the last forward */
    int fuse;               /* 1 (fv_net_finish's default): training forwards fuse each fused_relu
                             * pair (fv_net_set_fuse) */
    int last_fused;         /* the last forward fused (its backward follows it) */
    int blocked_on;         /* 0 (fv_net_finish's default): every activation NCHW; 1: chains
                             * between oneDNN convs stay blocked (fv_net_set_blocked) */
    double *prof; /* NULL, or per-node wall seconds while profiling (fv_net_profile) */
    fv_conv_path conv_path; /* as last set (fv_net_set_conv); FV_CONV_AUTO from fv_net_finish */
    fv_kinks kinks;         /* FV_KINKS_FREE unless set (fv_net_set_kinks) */
    int kinks_n;            /* batch size of the last RECORD forward (0: none) */
    int last_replay;        /* the last forward was a REPLAY one */
    struct fv_dnnl *dnnl;   /* oneDNN engine and buffers while a node uses it, else NULL */
    /* Optional (NULL: none): fv_net_backward calls it for node i from the output down to 1 just
     * before node i's own backward, when nodes[i].dout holds all its consumers sent, and for
     * node 0 at the end if want_input_grad; it may add to nodes[i].dout (the gradient of a loss
     * on an intermediate activation, e.g. attacks/invert.c's batch-norm prior). After a fused
     * forward (fv_net_set_fuse) the output gradient of a batch norm or add fused with its ReLU
     * is not read: add to the ReLU's instead. */
    void (*backward_hook)(void *ctx, struct fv_net *net, int node, int n);
    void *backward_hook_ctx;
} fv_net;

/* A new empty graph taking samples of shape `input`. Caller owns; free with fv_net_destroy. */
fv_net *fv_net_new(fv_shape input);
/* Free everything and set *net to NULL. Accepts NULL and *net == NULL. */
void fv_net_destroy(fv_net **net);

/* Builders: each returns the new node's index. `name` is the state-dict prefix of the node's
 * tensors ("conv1" gives "conv1.weight" and "conv1.bias"). Shapes are checked; an impossible
 * architecture aborts (programmer error). PyTorch's default initialisation is used:
 * conv/linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), BN gamma 1, beta 0. */
int fv_net_conv2d(fv_net *net, const char *name, int in, int out_ch, int k, int stride, int pad,
                  int groups, int bias);
int fv_net_linear(fv_net *net, const char *name, int in, int out_features, int bias);
int fv_net_batchnorm(fv_net *net, const char *name, int in);
int fv_net_maxpool(fv_net *net, int in, int k, int stride, int pad);
int fv_net_avgpool(fv_net *net, int in, int k, int stride, int pad);
int fv_net_gap(fv_net *net, int in);
int fv_net_relu(fv_net *net, int in);
int fv_net_sigmoid(fv_net *net, int in);
int fv_net_tanh(fv_net *net, int in);
int fv_net_dropout(fv_net *net, int in, float p);
int fv_net_flatten(fv_net *net, int in);
int fv_net_add(fv_net *net, int a, int b);
int fv_net_upsample(fv_net *net, int in, int factor);

/* Tokens (Vision Transformer). A sequence of T tokens of D features is the per-sample shape
 * {c = T, h = D, w = 1}: memory [N, T, D] row-major, one contiguous row per token, so token-wise
 * ops are ops on N * T rows. Element-wise nodes (gelu, dropout, add) take tokens as they are.
 *  - fv_net_tokens: a patch conv's output {D, OH, OW} to {1 + OH*OW, D, 1}: a learned class token
 *    first, then the patches in row-major order, plus a learned position embedding. Tensors
 *    "<name>.cls_token" [1, 1, D] and "<name>.pos_embed" [1, T, D] (name "" gives the top-level
 *    "cls_token" and "pos_embed" of timm/PyTorch ViTs), initialised N(0, 0.02^2).
 *  - fv_net_layernorm: nn.LayerNorm(D) (eps 1e-5) on every token; weight 1, bias 0.
 *  - fv_net_token_linear: nn.Linear(D, out) on every token: {T, D, 1} to {T, out, 1}.
 *  - fv_net_attention: multi-head self-attention core on a fused qkv projection {T, 3D, 1} to
 *    {T, D, 1} (layers.h, fv_attention_forward, for the column layout); D % heads == 0. No
 *    parameters: the qkv and output projections are token_linear nodes around it.
 *  - fv_net_token_select: token t of {T, D, 1} as a vector {D, 1, 1} (t = 0: the class token).
 * The CUDA backend runs them too (shared/cuda/transformer.cu; the token-wise linear is its
 * linear layer over N * T rows). */
int fv_net_tokens(fv_net *net, const char *name, int in);
int fv_net_layernorm(fv_net *net, const char *name, int in);
int fv_net_gelu(fv_net *net, int in);
int fv_net_token_linear(fv_net *net, const char *name, int in, int out_features, int bias);
int fv_net_attention(fv_net *net, int in, int heads);
int fv_net_token_select(fv_net *net, int in, int t);

/* Allocate the parameter buffers and initialise them from `seed` (deterministic). The last node
 * added is the output. Call once, after the last builder. */
void fv_net_finish(fv_net *net, uint64_t seed);

/* Run the conv nodes on `path` from now on (fv_net_finish sets FV_CONV_AUTO; call after it).
 * Both paths compute the same convolution; their float results differ in rounding, so the path
 * is part of what makes a run reproducible: the same path (and for AUTO, the same build), seed
 * and thread count give bitwise-identical results. FV_CONV_AUTO never fails: a shape oneDNN
 * refuses stays on OpenBLAS. Returns -1 with e set (and every node on OpenBLAS) for
 * FV_CONV_DNNL in a build without oneDNN or when oneDNN refuses a node's shape. */
FV_MUST_USE int fv_net_set_conv(fv_net *net, fv_conv_path path, fv_err *e);
/* 1 when conv node i runs through oneDNN, else 0 (also for nodes that are not convs). */
int fv_net_node_dnnl(const fv_net *net, int i);
/* The ReLU a device backend may compute in one kernel with node i: when node i is a batch norm
 * or an add whose only consumer is a ReLU node j (so nothing but j reads i's output or sends i a
 * gradient, and i is not the net's output), returns j; otherwise 0. The CUDA backend's fusion
 * (shared/cuda/net.cu) takes exactly these pairs. */
int fv_net_fusable_relu(const fv_net *net, int i);
/* Fuse (on != 0, fv_net_finish's default) or not each batch norm or add with the ReLU that is its
 * only consumer (nodes[i].fused_relu) in training forwards with free kinks and their backward:
 * one pass over the activation (layers.h, the _relu kernels) instead of two each way, the ReLU's
 * output written directly (the batch norm's or add's own output is then not written: read the
 * ReLU's). The same bits either way (tests/test_net.c); off exists to check that. Evaluation
 * forwards and forwards that record or replay kinks never fuse. */
void fv_net_set_fuse(fv_net *net, int on);
/* Keep activations in oneDNN's channel-blocked layout (on != 0) where every op touching them can
 * take it, or NCHW everywhere (0, fv_net_finish's default). A node output is blocked when its
 * channels are a multiple of oneDNN's block B (fv_dnnl_block), its producer is a conv oneDNN
 * accepts (dense, grouped or depthwise), a batch norm, a ReLU or an add, and each reader is one of
 * those or a global average pool, with a batch norm's, ReLU's or add's inputs and output all alike
 * (chains between convs: ResNet-20 and MobileNet from the stem to the pooling). Convs touching a
 * blocked output run through oneDNN whatever the path's per-shape rule (FV_CONV_AUTO;
 * FV_CONV_BLAS keeps every activation NCHW), without moving their activations in or out. Batch norm then sums in another
 * order (layers.h, the _blk kernels): results agree with NCHW within float rounding, and are
 * reproducible as ever (same seed, path, setting and thread count: same bits). A reader of
 * nodes[i].out or .dout must check nodes[i].blocked (the net's input and output are never
 * blocked). Needs a build with oneDNN; a no-op without. Call after fv_net_finish. */
void fv_net_set_blocked(fv_net *net, int on);
/* The number of node outputs kept blocked (0 when off). */
int fv_net_blocked_count(const fv_net *net);
/* "auto", "blas" or "dnnl" to a path; -1 with e set for anything else (NULL included). The
 * environment variable FEDVIM_CPU_CONV takes these words (read by fv_model_new). */
FV_MUST_USE int fv_conv_path_parse(const char *word, fv_conv_path *path, fv_err *e);
const char *fv_conv_path_name(fv_conv_path path);

/* The floats keep_im2col holds for batches of n: one im2col per conv node on the OpenBLAS path
 * (0 for oneDNN, depthwise and 1x1 nodes, which keep none). */
size_t fv_net_im2col_floats(const fv_net *net, int n);

/* Set how later forwards treat ReLU and max-pool kinks (see fv_kinks). A REPLAY forward needs the
 * last non-REPLAY forward to have been a RECORD one of the same batch size (a FREE forward
 * overwrites the argmaxes); anything else is a programmer error (the forward aborts). */
void fv_net_set_kinks(fv_net *net, fv_kinks mode);

/* Keep the kinks of several RECORD forwards and replay any of them later (attacks/invert.c keeps
 * one per local step). fv_net_kinks_bytes: the bytes that hold the kinks of a batch of n (every
 * ReLU's mask and every max pool's argmaxes). fv_net_kinks_save copies the kinks of the last
 * forward, which must have been a RECORD one (or a REPLAY of one), into buf
 * (fv_net_kinks_bytes(net, net->kinks_n) bytes). fv_net_kinks_load makes buf, saved from a
 * batch of n, the recorded kinks: later REPLAY forwards of batch n apply them exactly as if the
 * forward that saved them had just run. */
size_t fv_net_kinks_bytes(const fv_net *net, int n);
/* The bytes node nd adds to that layout for n samples: a ReLU's mask (one byte per value), a max
 * pool's argmaxes (int32 per value), 0 for every other op. The one rule of the layout, which the
 * CUDA inversion state (cuda/net.cu) follows too. */
size_t fv_node_kink_bytes(const fv_node *nd, int n);
void fv_net_kinks_save(const fv_net *net, void *buf);
void fv_net_kinks_load(fv_net *net, const void *buf, int n);

/* Re-initialise all parameters from `seed` (same result as a fresh fv_net_finish). */
void fv_net_init_params(fv_net *net, uint64_t seed);

/* Seed the dropout stream. */
void fv_net_seed_dropout(fv_net *net, uint64_t seed);

/* Output shape (per sample) and the number of logits. */
fv_shape fv_net_output_shape(const fv_net *net);

/* Forward n samples x[n, input] (NCHW). train != 0 uses batch statistics and dropout.
 * Returns the output activations [n, out] (owned by net, valid until the next forward). */
const float *fv_net_forward(fv_net *net, const float *x, int n, int train);

/* Backward from dout[n, out] = d loss / d output of the last forward (which must have had
 * train != 0 or no dropout/BN in eval). Overwrites net->grads (unless skip_param_grad: then
 * they are unspecified), and net->input_grad if want_input_grad is set. */
void fv_net_backward(fv_net *net, const float *dout, int n);

/* Find a tensor by its state-dict name; NULL if absent. */
const fv_tensor *fv_net_tensor(const fv_net *net, const char *name);

/* Start (on != 0) or stop timing each node. While on, every forward adds each node's wall seconds
 * to net->prof[i] and every backward adds them to net->prof[n_nodes + i]; prof[n_nodes] (the
 * input node's backward slot) takes the backward's zeroing of the gradient buffers. Switching on
 * allocates 2 * n_nodes zeroed doubles; switching off frees them. The CPU path only: a net run
 * through cuda_net.h is not timed here. */
void fv_net_profile(fv_net *net, int on);

/* The op of node i as a word ("conv2d", "relu", ...), and the state-dict prefix of its tensors
 * ("conv1", "layer1.0.bn1") or NULL for a node without parameters. */
const char *fv_net_op_name(const fv_net *net, int i);
const char *fv_net_node_prefix(const fv_net *net, int i, char *buf, size_t len);

/* Print a one-line-per-node summary with shapes and parameter counts to f. */
void fv_net_print(const fv_net *net, FILE *f);

#endif
