/* cuda_net.cu: the device twin of a net.h model (see cuda_net.h): memory plan, forward and
 * backward in node order (net.c's rules, node for node), the training step, its CUDA-graph
 * capture, epochs, evaluation and staged data shards.
 *
 * Memory: two allocations per net besides the ctx's cuBLAS workspace.
 *  - pmem: params[n_params] | grads[n_train] | opt_state[3 n_train] | prox_ref[n_train] |
 *    corr[n_train] (SCAFFOLD's correction) (256-byte
 *    aligned slices). Parameters, gradients and optimizer state never leave the device during
 *    training.
 *  - amem: for max_batch samples, the input batch, every node's output gradient (one contiguous
 *    block: one memset zeroes it for a full-capacity step), every node's output, maxpool argmax,
 *    dropout masks, batch-norm saved statistics, layer-norm mean and rstd per token row, each
 *    attention node's softmax probabilities [max_batch, H, T, T], the conv/batch-norm/attention
 *    scratch (one buffer: ops run one at a time on one stream), labels, per-row losses, the
 *    normalisation table and a small block of device scalars (optimizer step state, loss/hit
 *    accumulators, batch cursor, dropout seed and counter).
 *    A flatten node aliases its input's output and gradient (NCHW flattening moves no data).
 * The epoch's order (int32) lives in its own buffer that grows with the largest shard capacity.
 *
 * A training step (train_step) is: gather + normalise the batch at the device cursor, forward,
 * zero gradients, loss (writes d loss/d logits into the last node's gradient and adds to the
 * epoch accumulators), backward, FedProx term, SCAFFOLD correction, optimizer step (scalars on
 * the device), advance the cursor and the dropout counter. Nothing in it reads host memory or
 * waits for the host, so for a full batch it is captured once into a CUDA graph and replayed: one
 * launch per step instead of ~30 (LeNet-5) or ~200 (ResNet-20); the ViT's attention GEMMs are
 * cuBLAS calls on the same stream and workspace, captured like the rest. The graph is keyed by
 * what it bakes in: batch size, optimizer configuration, FedProx mu, whether a SCAFFOLD correction is
 * added (its values are in a device buffer, uploaded each epoch), and the shard and order
 * buffers' addresses; when it must be captured anew, the epoch's first full batch runs uncaptured
 * and the capture follows it.
 * Input gradients (fv_cuda_net_input_grad) run the same forward and backward uncaptured, with
 * backward's want_dx set: the ops reading node 0 then accumulate into node 0's output gradient
 * (allocated and zeroed with the others); training steps keep it off, so their kernels, and the
 * captured graph, are unchanged.
 * Pixel-loss steps (fv_cuda_net_train_pixel) run the same forward, backward and optimizer step
 * uncaptured on uploaded host floats, the loss kernel reading the target from the last node's
 * gradient buffer. Distillation steps (fv_cuda_net_train_kd) do the same with the teacher's logits
 * in that buffer and the KD loss kernel.
 * Not here: kernels (cuda_layers.h and the per-op .cu files), the CPU graph (net.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/common.cuh"
#include "cuda/net.h"

static_assert(sizeof(int) == sizeof(int32_t), "labels and orders are uploaded as int32");

/* Device scalars of one net. */
typedef struct {
    fv_cuda_opt_step_state ost;
    double train_loss;
    long long train_hits;
    double eval_loss;
    long long eval_hits;
    double tmp_loss;
    long long tmp_hits;
    uint64_t drop[2]; /* dropout seed, step counter */
    int32_t cursor;
    int32_t pad_;
} dev_misc;

/* Gradient-inversion state (fv_cuda_net_inv_*), NULL until fv_cuda_net_inv_open. One device
 * allocation: theta0[n_params] base[n_train] dir[n_train] x[n * input] labels[n] (int32), each
 * ReLU node's mask [cap * size] (uint8), the kinks' slots [slots * kbytes], stats[2 nch] and
 * coef[3 nch] (doubles, nch the batch-norm channels of all layers). */
typedef struct {
    int n, slots, slot_batch;
    size_t nch, kbytes;
    uint8_t *mem;
    float *theta0, *base, *dir, *x;
    int32_t *labels;
    uint8_t *rmask[FV_MAX_NODES];
    uint8_t *slot_mem;
    double *stats, *coef;
    size_t bn_off[FV_MAX_NODES]; /* channel offset of each batch-norm node in stats' order */
    int has_dir;
    fv_kinks kinks;   /* the running forward's mode (FREE outside a pass) */
    int kinks_n;      /* batch of the recorded (or loaded) kinks, 0: none */
    int last_replay, last_n, last_train; /* of the last forward */
    int skip_dw;      /* backward: input gradient only (no weight gradients of convs and linears) */
    int prior;        /* backward: add the batch-norm prior's terms (coef) */
    float *h_gth, *h_gx; /* host copies of the last pass's gradients */
} cuda_inv;

typedef struct {
    int batch;
    int prox;
    float prox_mu;
    int corr;
    long opt_gen;
    int cudnn;
    int fuse;
    const void *images, *labels, *order;
} graph_key;

struct fv_cuda_net {
    fv_cuda_ctx *x;
    int n_nodes;
    fv_node *nodes; /* host copy of the graph (its host pointers are not used) */
    fv_shape input;
    int K; /* outputs per sample */
    size_t n_train, n_state, n_params;
    int cap;
    /* parameters, gradients, optimizer state, FedProx reference */
    float *pmem, *params, *grads, *opt_state, *prox_ref, *corr;
    size_t pmem_bytes;
    /* activations and the rest */
    uint8_t *amem;
    size_t amem_bytes;
    float *out[FV_MAX_NODES], *dout[FV_MAX_NODES];
    int32_t *argmax[FV_MAX_NODES];
    uint8_t *mask[FV_MAX_NODES];
    float *bn_mean[FV_MAX_NODES], *bn_invstd[FV_MAX_NODES];
    /* layer norm: mean then rstd per token row (2 * cap * T floats); attention: the softmax
     * probabilities [cap, H, T, T] (net.c's nd->saved, node for node) */
    float *saved[FV_MAX_NODES];
    uint8_t *dout_base;
    size_t dout_bytes;
    float *scratch;
    size_t scratch_floats;
    int32_t *labels;
    double *row_loss;
    int32_t *row_hit;
    float *lut;
    dev_misc *misc;
    /* the epoch's order */
    int32_t *order;
    int order_cap;
    int *host_order;
    int host_order_cap;
    float host_lut[4 * 256];
    /* optimizer */
    fv_opt_cfg opt;
    int have_opt;
    size_t opt_len;
    long opt_gen;
    /* convolutions: cuDNN plans per conv node and batch size (index n), made on first use */
    int use_cudnn;
    fv_cudnn_conv **plans[FV_MAX_NODES];
    uint8_t *plan_failed[FV_MAX_NODES];
    /* fusion (fv_cuda_net_set_fuse): the pairs are the host graph's (nodes[i].fused_relu and
     * nodes[j].fused_into, net.h), n_fusable how many; fused_fwd whether the last forward fused
     * (its backward must match) */
    int fuse;
    int n_fusable;
    int fused_fwd;
    /* per-node timing (fv_cuda_net_profile): events ev[0..n_nodes] at the forward's node
     * boundaries, ev[n_nodes+1 ..] at the backward's, then two around the zeroing; prof the
     * accumulated milliseconds in net.h's prof layout (as seconds); prof_step: the running
     * training step records them */
    cudaEvent_t *ev;
    double *prof;
    int prof_step;
    /* graph */
    int graphs_on;
    int have_graph;
    cudaGraphExec_t exec;
    graph_key key;
    fv_cuda_net_info info;
    cuda_inv *inv; /* gradient inversion, NULL unless opened */
};

struct fv_cuda_shard {
    fv_cuda_net *cn;
    uint8_t *mem; /* images[cap_n * img] then labels[cap_n] */
    uint8_t *images, *labels;
    int cap_n;
    int n;
};

static void use_device(const fv_cuda_net *cn) { FV_CUDA_CHECK(cudaSetDevice(cn->x->device)); }

/* Workspace floats reserved for cuDNN (32 MiB): ResNet-20's and LeNet-5's deterministic algorithms
 * need far less; larger ones (FFT) are then skipped. */
#define FV_CUDNN_WS_FLOATS ((size_t)8 << 20)

static int is_depthwise(const fv_node *nd) {
    return nd->groups == nd->ishape.c && nd->groups == nd->oshape.c;
}

/* The cuDNN plan of conv node i for batch n, or NULL when that conv runs on the im2col path
 * (cuDNN off, a depthwise conv, or no algorithm fits: then the im2col path serves that shape). */
static const fv_cudnn_conv *plan_for(fv_cuda_net *cn, int i, int n) {
    const fv_node *nd = &cn->nodes[i];
    if (!cn->use_cudnn || is_depthwise(nd)) return NULL;
    if (!cn->plans[i]) {
        cn->plans[i] = (fv_cudnn_conv **)fv_calloc((size_t)cn->cap + 1, sizeof(fv_cudnn_conv *));
        cn->plan_failed[i] = (uint8_t *)fv_calloc((size_t)cn->cap + 1, 1);
    }
    if (!cn->plans[i][n] && !cn->plan_failed[i][n]) {
        fv_conv2d_shape s;
        fv_conv2d_shape_init(&s, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->oshape.c, nd->k,
                             nd->stride, nd->pad, nd->groups);
        fv_err e;
        cn->plans[i][n] = fv_cudnn_conv_new(cn->x, &s, cn->scratch_floats * sizeof(float), &e);
        if (!cn->plans[i][n]) {
            cn->plan_failed[i][n] = 1;
            cn->info.conv_fallbacks++;
        }
    }
    return cn->plans[i][n];
}

static void free_plans(fv_cuda_net *cn) {
    for (int i = 0; i < cn->n_nodes; i++) {
        if (cn->plans[i])
            for (int n = 0; n <= cn->cap; n++) fv_cudnn_conv_destroy(&cn->plans[i][n]);
        free(cn->plans[i]);
        free(cn->plan_failed[i]);
        cn->plans[i] = NULL;
        cn->plan_failed[i] = NULL;
    }
}

static void describe_conv(fv_cuda_net *cn) {
    char fused[40] = "";
    if (cn->fuse) snprintf(fused, sizeof fused, "; %d ReLUs fused", cn->n_fusable);
    if (cn->use_cudnn) {
        char v[32];
        fv_cudnn_version(v, sizeof v);
        snprintf(cn->info.conv, sizeof cn->info.conv, "cuDNN %s (%s, deterministic algorithms%s)",
                 v, cn->x->tf32 ? "TF32 allowed" : "FP32", fused);
    } else {
        snprintf(cn->info.conv, sizeof cn->info.conv, "cuBLAS SGEMM + im2col (%s%s)",
                 cn->x->tf32 ? "TF32 allowed" : "FP32", fused);
    }
    cn->info.relu_fused = cn->fuse ? cn->n_fusable : 0;
}

int fv_cuda_net_set_fuse(fv_cuda_net *cn, int on) {
    cn->fuse = on != 0;
    describe_conv(cn);
    return cn->fuse ? cn->n_fusable : 0;
}

int fv_cuda_net_fuse(const fv_cuda_net *cn) { return cn->fuse; }

int fv_cuda_net_set_conv(fv_cuda_net *cn, const char *impl, fv_err *e) {
    char why[200];
    if (strcmp(impl, "im2col") == 0) {
        cn->use_cudnn = 0;
    } else if (strcmp(impl, "cudnn") == 0) {
        if (!fv_cudnn_available(cn->x, why, sizeof why))
            return fv_err_set(e, "convolutions through cuDNN: %s", why);
        cn->use_cudnn = 1;
    } else {
        return fv_err_set(e, "convolution path '%s': expected cudnn or im2col", impl);
    }
    describe_conv(cn);
    return 0;
}

const char *fv_cuda_net_conv(const fv_cuda_net *cn) { return cn->use_cudnn ? "cudnn" : "im2col"; }

/* ---- memory plan ---- */

/* Reserve `bytes` at a 256-byte aligned offset of an arena being planned; returns the offset. */
static size_t take(size_t *top, size_t bytes) {
    const size_t o = (*top + 255) & ~(size_t)255;
    *top = o + bytes;
    return o;
}

static fv_conv2d_shape conv_shape(const fv_node *nd, int n) {
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->oshape.c, nd->k,
                         nd->stride, nd->pad, nd->groups);
    return s;
}

/* Plan amem (offsets, then pointers once allocated). Returns its size in bytes. */
static size_t plan_acts(fv_cuda_net *cn, size_t *off_out, size_t *off_dout, size_t *off_argmax,
                        size_t *off_mask, size_t *off_mean, size_t *off_invstd, size_t *off_saved,
                        size_t *off_misc) {
    size_t top = 0;
    const size_t cap = (size_t)cn->cap;
    /* output gradients first: one contiguous block, zeroed with one memset per step */
    for (int i = 0; i < cn->n_nodes; i++) {
        const fv_node *nd = &cn->nodes[i];
        if (nd->op == FV_OP_FLATTEN) continue;
        off_dout[i] = take(&top, cap * fv_shape_size(nd->oshape) * sizeof(float));
    }
    cn->dout_bytes = top;
    size_t scratch = 0;
    for (int i = 0; i < cn->n_nodes; i++) {
        const fv_node *nd = &cn->nodes[i];
        const size_t sz = cap * fv_shape_size(nd->oshape);
        if (nd->op != FV_OP_FLATTEN) off_out[i] = take(&top, sz * sizeof(float));
        if (nd->op == FV_OP_MAXPOOL) off_argmax[i] = take(&top, sz * sizeof(int32_t));
        if (nd->op == FV_OP_DROPOUT) off_mask[i] = take(&top, sz);
        if (nd->op == FV_OP_BATCHNORM) {
            off_mean[i] = take(&top, (size_t)nd->ishape.c * sizeof(float));
            off_invstd[i] = take(&top, (size_t)nd->ishape.c * sizeof(float));
            const size_t f = fv_cuda_batchnorm_scratch_floats(cn->cap, nd->ishape.c,
                                                              nd->ishape.h * nd->ishape.w);
            if (f > scratch) scratch = f;
        }
        if (nd->op == FV_OP_CONV2D) {
            const fv_conv2d_shape s = conv_shape(nd, cn->cap);
            const size_t f = fv_cuda_conv2d_scratch_floats(&s);
            if (f > scratch) scratch = f;
        }
        if (nd->op == FV_OP_LAYERNORM) /* mean and rstd of every token row */
            off_saved[i] = take(&top, 2 * cap * (size_t)nd->ishape.c * sizeof(float));
        if (nd->op == FV_OP_ATTENTION) {
            const size_t T = (size_t)nd->ishape.c, att = cap * (size_t)nd->heads * T * T;
            off_saved[i] = take(&top, att * sizeof(float));
            if (att > scratch) scratch = att; /* backward's softmax gradients */
        }
    }
    /* cuDNN's workspace is the same scratch (a conv uses one path or the other) */
    if (cn->use_cudnn && scratch < FV_CUDNN_WS_FLOATS) scratch = FV_CUDNN_WS_FLOATS;
    cn->scratch_floats = scratch;
    off_misc[0] = take(&top, (scratch ? scratch : 1) * sizeof(float));
    off_misc[1] = take(&top, cap * sizeof(int32_t));   /* labels */
    off_misc[2] = take(&top, cap * sizeof(double));    /* row_loss */
    off_misc[3] = take(&top, cap * sizeof(int32_t));   /* row_hit */
    off_misc[4] = take(&top, 4 * 256 * sizeof(float)); /* lut */
    off_misc[5] = take(&top, sizeof(dev_misc));
    return top;
}

fv_cuda_net *fv_cuda_net_new(const fv_net *host, int device, int max_batch, fv_err *e) {
    FV_ASSERT(host && host->finished && max_batch >= 1);
    fv_cuda_ctx *x = fv_cuda_ctx_new(device, e);
    if (!x) return NULL;
    fv_cuda_net *cn = (fv_cuda_net *)fv_calloc(1, sizeof *cn);
    cn->x = x;
    cn->n_nodes = host->n_nodes;
    cn->nodes = (fv_node *)fv_malloc((size_t)host->n_nodes * sizeof(fv_node));
    memcpy(cn->nodes, host->nodes, (size_t)host->n_nodes * sizeof(fv_node));
    cn->input = host->input;
    cn->K = (int)fv_shape_size(fv_net_output_shape(host));
    cn->n_train = host->n_train;
    cn->n_state = host->n_state;
    cn->n_params = host->n_params;
    cn->cap = max_batch;
    cn->graphs_on = 1;
    for (int i = 1; i < cn->n_nodes; i++) cn->n_fusable += cn->nodes[i].fused_relu != 0;
    /* fusion: off unless FEDVIM_CUDA_FUSE=1 (a benchmarking knob, read once here) */
    {
        const char *env = getenv("FEDVIM_CUDA_FUSE");
        if (env && *env) {
            if (strcmp(env, "0") != 0 && strcmp(env, "1") != 0) {
                fv_err_set(e, "FEDVIM_CUDA_FUSE: '%s': expected 0 or 1", env);
                fv_cuda_net_destroy(&cn);
                return NULL;
            }
            cn->fuse = env[0] == '1';
        }
    }
    /* convolutions: cuDNN when this build and the device have it, unless FEDVIM_CUDA_CONV says
     * otherwise (im2col or cudnn: a benchmarking knob, read once here) */
    {
        const char *env = getenv("FEDVIM_CUDA_CONV");
        cn->use_cudnn = fv_cudnn_available(x, NULL, 0);
        if (env && *env && fv_cuda_net_set_conv(cn, env, e) != 0) {
            fv_err_prefix(e, "FEDVIM_CUDA_CONV: ");
            fv_cuda_net_destroy(&cn);
            return NULL;
        }
        describe_conv(cn);
    }

    /* parameters, gradients, optimizer state (at most 3 n_train), FedProx reference */
    size_t top = 0;
    const size_t o_p = take(&top, cn->n_params * sizeof(float));
    const size_t o_g = take(&top, cn->n_train * sizeof(float));
    const size_t o_s = take(&top, 3 * cn->n_train * sizeof(float));
    const size_t o_r = take(&top, cn->n_train * sizeof(float));
    const size_t o_c = take(&top, cn->n_train * sizeof(float));
    cn->pmem_bytes = top;
    cn->pmem =
        (float *)fv_cuda_try_alloc(x, top, "the parameters, gradients and optimizer state", e);
    if (!cn->pmem) goto fail;
    cn->params = (float *)((uint8_t *)cn->pmem + o_p);
    cn->grads = (float *)((uint8_t *)cn->pmem + o_g);
    cn->opt_state = (float *)((uint8_t *)cn->pmem + o_s);
    cn->prox_ref = (float *)((uint8_t *)cn->pmem + o_r);
    cn->corr = (float *)((uint8_t *)cn->pmem + o_c);

    {
        size_t off_out[FV_MAX_NODES] = {0}, off_dout[FV_MAX_NODES] = {0},
               off_am[FV_MAX_NODES] = {0}, off_mask[FV_MAX_NODES] = {0},
               off_mean[FV_MAX_NODES] = {0}, off_inv[FV_MAX_NODES] = {0},
               off_saved[FV_MAX_NODES] = {0}, off_misc[6] = {0};
        cn->amem_bytes = plan_acts(cn, off_out, off_dout, off_am, off_mask, off_mean, off_inv,
                                   off_saved, off_misc);
        char what[96];
        snprintf(what, sizeof what, "activations of %d samples", max_batch);
        cn->amem = (uint8_t *)fv_cuda_try_alloc(x, cn->amem_bytes, what, e);
        if (!cn->amem) goto fail;
        uint8_t *a = cn->amem;
        cn->dout_base = a;
        for (int i = 0; i < cn->n_nodes; i++) {
            const fv_node *nd = &cn->nodes[i];
            if (nd->op == FV_OP_FLATTEN) { /* alias: inputs come earlier in node order */
                cn->out[i] = cn->out[nd->in0];
                cn->dout[i] = cn->dout[nd->in0];
                continue;
            }
            cn->out[i] = (float *)(a + off_out[i]);
            cn->dout[i] = (float *)(a + off_dout[i]);
            if (nd->op == FV_OP_MAXPOOL) cn->argmax[i] = (int32_t *)(a + off_am[i]);
            if (nd->op == FV_OP_DROPOUT) cn->mask[i] = a + off_mask[i];
            if (nd->op == FV_OP_BATCHNORM) {
                cn->bn_mean[i] = (float *)(a + off_mean[i]);
                cn->bn_invstd[i] = (float *)(a + off_inv[i]);
            }
            if (nd->op == FV_OP_LAYERNORM || nd->op == FV_OP_ATTENTION)
                cn->saved[i] = (float *)(a + off_saved[i]);
        }
        cn->scratch = (float *)(a + off_misc[0]);
        cn->labels = (int32_t *)(a + off_misc[1]);
        cn->row_loss = (double *)(a + off_misc[2]);
        cn->row_hit = (int32_t *)(a + off_misc[3]);
        cn->lut = (float *)(a + off_misc[4]);
        cn->misc = (dev_misc *)(a + off_misc[5]);
    }
    cn->info.device_bytes = cn->pmem_bytes + cn->amem_bytes + FV_CUBLAS_WS;
    use_device(cn);
    /* everything zero (gradients, optimizer state, scalars), then the host's parameters */
    fv_cuda_memset(x, cn->pmem, 0, cn->pmem_bytes);
    fv_cuda_memset(x, cn->amem, 0, cn->amem_bytes);
    fv_cuda_net_set_params(cn, host->params);
    {
        fv_rng r = host->rng;
        fv_cuda_net_seed_dropout(cn, fv_rng_u64(&r));
    }
    return cn;
fail:
    fv_cuda_net_destroy(&cn);
    return NULL;
}

void fv_cuda_net_destroy(fv_cuda_net **pcn) {
    if (!pcn || !*pcn) return;
    fv_cuda_net *cn = *pcn;
    use_device(cn);
    fv_cuda_ctx_sync(cn->x);
    fv_cuda_net_profile(cn, 0);
    if (cn->have_graph) FV_CUDA_CHECK(cudaGraphExecDestroy(cn->exec));
    free_plans(cn);
    fv_cuda_free(cn->x, cn->order);
    fv_cuda_free(cn->x, cn->amem);
    fv_cuda_free(cn->x, cn->pmem);
    if (cn->inv) {
        fv_cuda_free(cn->x, cn->inv->mem);
        free(cn->inv->h_gth);
        free(cn->inv->h_gx);
        free(cn->inv);
    }
    fv_cuda_ctx_destroy(&cn->x);
    free(cn->host_order);
    free(cn->nodes);
    free(cn);
    *pcn = NULL;
}

void fv_cuda_net_describe(const fv_cuda_net *cn, char *buf, size_t cap) {
    char d[256];
    fv_cuda_ctx_describe(cn->x, d, sizeof d);
    snprintf(buf, cap, "cuda:%d %s", cn->x->device, d);
}

void fv_cuda_net_set_params(fv_cuda_net *cn, const float *params) {
    use_device(cn);
    fv_cuda_upload(cn->x, cn->params, params, cn->n_params * sizeof(float));
}

void fv_cuda_net_get_params(fv_cuda_net *cn, float *params) {
    use_device(cn);
    fv_cuda_download(cn->x, params, cn->params, cn->n_params * sizeof(float));
}

void fv_cuda_net_seed_dropout(fv_cuda_net *cn, uint64_t seed) {
    use_device(cn);
    const uint64_t v[2] = {seed, 0};
    fv_cuda_upload(cn->x, cn->misc->drop, v, sizeof v);
}

/* ---- optimizer ---- */

void fv_cuda_net_set_opt(fv_cuda_net *cn, const fv_opt_cfg *cfg) {
    fv_err e;
    if (fv_opt_cfg_check(cfg, &e) != 0)
        FV_DIE("fv_cuda_net_set_opt: invalid configuration: %s", e.msg);
    cn->opt = *cfg;
    cn->opt_len = fv_opt_state_len(cfg, cn->n_train);
    cn->have_opt = 1;
    cn->opt_gen++;
    fv_cuda_net_opt_reset(cn);
}

void fv_cuda_net_opt_reset(fv_cuda_net *cn) {
    use_device(cn);
    fv_cuda_memset(cn->x, cn->opt_state, 0, 3 * cn->n_train * sizeof(float));
    fv_cuda_memset(cn->x, &cn->misc->ost, 0, sizeof(fv_cuda_opt_step_state));
    fv_cuda_ctx_sync(cn->x);
}

size_t fv_cuda_net_opt_state_len(const fv_cuda_net *cn) { return cn->have_opt ? cn->opt_len : 0; }

void fv_cuda_net_get_opt_state(fv_cuda_net *cn, float *state, int64_t *steps) {
    use_device(cn);
    if (state)
        fv_cuda_download(cn->x, state, cn->opt_state,
                         fv_cuda_net_opt_state_len(cn) * sizeof(float));
    if (steps) fv_cuda_download(cn->x, steps, &cn->misc->ost.t, sizeof(int64_t));
}

void fv_cuda_net_set_opt_state(fv_cuda_net *cn, const float *state, int64_t steps) {
    use_device(cn);
    FV_ASSERT(cn->have_opt);
    if (state) fv_cuda_upload(cn->x, cn->opt_state, state, cn->opt_len * sizeof(float));
    fv_cuda_upload(cn->x, &cn->misc->ost.t, &steps, sizeof(int64_t));
}

void fv_cuda_net_set_graphs(fv_cuda_net *cn, int on) { cn->graphs_on = on != 0; }

void fv_cuda_net_set_tf32(fv_cuda_net *cn, int on) {
    use_device(cn);
    fv_cuda_ctx_sync(cn->x);
    fv_cuda_ctx_set_tf32(cn->x, on);
    free_plans(cn); /* remade on first use with the new math */
    if (cn->have_graph) { /* captured with the old math: the next full batch runs eagerly, then recaptures */
        FV_CUDA_CHECK(cudaGraphExecDestroy(cn->exec));
        cn->have_graph = 0;
    }
    describe_conv(cn);
}

int fv_cuda_net_tf32(const fv_cuda_net *cn) { return fv_cuda_ctx_tf32(cn->x); }

fv_cuda_net_info fv_cuda_net_info_get(const fv_cuda_net *cn) { return cn->info; }

/* ---- forward and backward: net.c's fv_net_forward / fv_net_backward on the device ---- */

static void forward(fv_cuda_net *cn, int n, int train) {
    const fv_cuda_ctx *x = cn->x;
    float *p = cn->params;
    cuda_inv *v = cn->inv; /* kinks and their bookkeeping: inversion passes only */
    const fv_kinks kinks = v ? v->kinks : FV_KINKS_FREE;
    /* fusion: training forwards outside inversion passes (those record or replay ReLU kinks) */
    const int fuse = cn->fuse && train && !v;
    cn->fused_fwd = fuse;
    if (v) {
        if (kinks == FV_KINKS_REPLAY && v->kinks_n != n) FV_DIE("kink replay of batch %d without a recorded forward", n);
        v->last_replay = kinks == FV_KINKS_REPLAY, v->last_n = n, v->last_train = train;
        if (kinks != FV_KINKS_REPLAY) v->kinks_n = kinks == FV_KINKS_RECORD ? n : 0; /* FREE overwrote argmaxes */
    }
    for (int i = 1; i < cn->n_nodes; i++) {
        if (cn->prof_step) FV_CUDA_CHECK(cudaEventRecord(cn->ev[i], x->stream));
        const fv_node *nd = &cn->nodes[i];
        const float *in = cn->out[nd->in0];
        float *out = cn->out[i];
        const size_t isz = (size_t)n * fv_shape_size(nd->ishape);
        const int C = nd->ishape.c, H = nd->ishape.h, W = nd->ishape.w;
        switch (nd->op) {
        case FV_OP_CONV2D: {
            const fv_cudnn_conv *plan = plan_for(cn, i, n);
            const float *b = nd->bias ? p + nd->b_off : NULL;
            if (plan) {
                fv_cudnn_conv_forward(x, plan, out, in, p + nd->w_off, b, cn->scratch);
            } else {
                const fv_conv2d_shape s = conv_shape(nd, n);
                fv_cuda_conv2d_forward(x, out, in, p + nd->w_off, b, cn->scratch,
                                       cn->scratch_floats, &s);
            }
            break;
        }
        case FV_OP_LINEAR:
            fv_cuda_linear_forward(x, out, in, p + nd->w_off, nd->bias ? p + nd->b_off : NULL, n,
                                   (int)fv_shape_size(nd->ishape), nd->oshape.c);
            break;
        case FV_OP_BATCHNORM:
            if (fuse && nd->fused_relu)
                fv_cuda_batchnorm_forward_train_relu(
                    x, cn->out[nd->fused_relu], cn->bn_mean[i], cn->bn_invstd[i], p + nd->rm_off,
                    p + nd->rv_off, in, p + nd->w_off, p + nd->b_off, cn->scratch, n, C, H * W, nd->momentum,
                    nd->eps);
            else if (train)
                fv_cuda_batchnorm_forward_train(
                    x, out, cn->bn_mean[i], cn->bn_invstd[i], p + nd->rm_off, p + nd->rv_off, in,
                    p + nd->w_off, p + nd->b_off, cn->scratch, n, C, H * W, nd->momentum, nd->eps);
            else
                fv_cuda_batchnorm_forward_eval(x, out, in, p + nd->w_off, p + nd->b_off,
                                               p + nd->rm_off, p + nd->rv_off, n, C, H * W,
                                               nd->eps);
            break;
        case FV_OP_MAXPOOL:
            if (kinks == FV_KINKS_REPLAY)
                fv_cuda_maxpool_forward_replay(x, out, cn->argmax[i], in, n, C, H, W, nd->k, nd->stride, nd->pad);
            else
                fv_cuda_maxpool_forward(x, out, cn->argmax[i], in, n, C, H, W, nd->k, nd->stride,
                                        nd->pad);
            break;
        case FV_OP_AVGPOOL:
            fv_cuda_avgpool_forward(x, out, in, n, C, H, W, nd->k, nd->stride, nd->pad);
            break;
        case FV_OP_GAP:
            fv_cuda_gap_forward(x, out, in, n, C, H * W);
            break;
        case FV_OP_RELU:
            if (fuse && nd->fused_into)
                break; /* computed by its batch norm or add */
            if (kinks == FV_KINKS_RECORD)
                fv_cuda_relu_forward_record(x, out, v->rmask[i], in, isz);
            else if (kinks == FV_KINKS_REPLAY)
                fv_cuda_relu_forward_replay(x, out, v->rmask[i], in, isz);
            else
                fv_cuda_relu_forward(x, out, in, isz);
            break;
        case FV_OP_SIGMOID:
            fv_cuda_sigmoid_forward(x, out, in, isz);
            break;
        case FV_OP_TANH:
            fv_cuda_tanh_forward(x, out, in, isz);
            break;
        case FV_OP_DROPOUT:
            if (train && nd->p > 0.0f)
                fv_cuda_dropout_forward(x, out, cn->mask[i], in, isz, nd->p, (uint64_t)i,
                                        cn->misc->drop);
            else
                fv_cuda_copy(x, out, in, isz * sizeof(float));
            break;
        case FV_OP_FLATTEN:
            break; /* aliases its input */
        case FV_OP_ADD:
            if (fuse && nd->fused_relu)
                fv_cuda_add_relu_forward(x, cn->out[nd->fused_relu], in, cn->out[nd->in1], isz);
            else
                fv_cuda_add_forward(x, out, in, cn->out[nd->in1], isz);
            break;
        case FV_OP_UPSAMPLE:
            fv_cuda_upsample_forward(x, out, in, n, C, H, W, nd->k);
            break;
        /* token ops (net.h: {T, D, 1} per sample, rows of D features) */
        case FV_OP_LAYERNORM: {
            const int R = n * C;
            fv_cuda_layernorm_forward(x, out, cn->saved[i], cn->saved[i] + R, in, p + nd->w_off,
                                      p + nd->b_off, R, H * W, nd->eps);
            break;
        }
        case FV_OP_GELU:
            fv_cuda_gelu_forward(x, out, in, isz);
            break;
        case FV_OP_TOKENS:
            fv_cuda_tokens_forward(x, out, in, p + nd->w_off, p + nd->b_off, n, C, H * W);
            break;
        case FV_OP_TOKEN_LINEAR: /* nn.Linear over the n * T token rows: linear.cu */
            fv_cuda_linear_forward(x, out, in, p + nd->w_off, nd->bias ? p + nd->b_off : NULL, n * C,
                                   H * W, nd->oshape.h);
            break;
        case FV_OP_ATTENTION:
            fv_cuda_attention_forward(x, out, cn->saved[i], in, n, C, nd->oshape.h, nd->heads);
            break;
        case FV_OP_TOKEN_SELECT:
            fv_cuda_token_select_forward(x, out, in, n, C, H * W, nd->heads);
            break;
        case FV_OP_INPUT:
            FV_DIE("input node in the middle of the graph");
        }
    }
    if (cn->prof_step) FV_CUDA_CHECK(cudaEventRecord(cn->ev[cn->n_nodes], x->stream));
}

/* Gradient inversion's batch-norm prior: for each batch-norm node fed by `node`, its terms
 * (cn->inv->coef) added to node's output gradient once all its consumers have sent theirs (net.c's
 * backward_hook, as the CPU's inversion passes use it). */
static void prior_hook(fv_cuda_net *cn, int node, int n) {
    const cuda_inv *v = cn->inv;
    for (int j = 1; j < cn->n_nodes; j++) {
        const fv_node *bn = &cn->nodes[j];
        if (bn->op != FV_OP_BATCHNORM || bn->in0 != node) continue;
        fv_cuda_bn_prior_add(cn->x, cn->dout[node], cn->out[node], v->coef + 3 * v->bn_off[j], n, bn->ishape.c,
                             bn->ishape.h * bn->ishape.w);
    }
}

/* Expects the output gradients zeroed and d loss / d output in the last node's dout. want_dx != 0
 * also accumulates d loss / d input into dout[0] (net.c's want_input_grad: the ops reading node 0
 * get it as their input gradient); 0, as in every training step, skips it (the captured graph's
 * kernels: the ops reading node 0 compute no data gradient). With inversion state (cn->inv):
 * skip_dw leaves out the weight gradients of convolutions and linear layers, prior adds the
 * batch-norm prior's terms (prior_hook), and the backward of a REPLAY forward sends ReLU
 * gradients through the replayed masks. */
static void backward(fv_cuda_net *cn, int n, int train, int want_dx) {
    const fv_cuda_ctx *x = cn->x;
    float *p = cn->params, *g = cn->grads;
    const cuda_inv *v = cn->inv;
    const int skip_dw = v && v->skip_dw, prior = v && v->prior, mask_bwd = v && v->last_replay;
    const int fuse = cn->fused_fwd; /* as the forward ran */
    cudaEvent_t *evb = cn->ev ? cn->ev + cn->n_nodes + 1 : NULL; /* evb[i] before node i, evb[0] at the end */
    for (int i = cn->n_nodes - 1; i >= 1; i--) {
        if (cn->prof_step) FV_CUDA_CHECK(cudaEventRecord(evb[i], x->stream));
        const fv_node *nd = &cn->nodes[i];
        const float *in = cn->out[nd->in0];
        const float *dout = cn->dout[i];
        float *din = nd->in0 == 0 && !want_dx ? NULL : cn->dout[nd->in0];
        if (prior) prior_hook(cn, i, n);
        const size_t isz = (size_t)n * fv_shape_size(nd->ishape);
        const int C = nd->ishape.c, H = nd->ishape.h, W = nd->ishape.w;
        switch (nd->op) {
        case FV_OP_CONV2D: {
            const fv_cudnn_conv *plan = plan_for(cn, i, n);
            float *db = nd->bias && !skip_dw ? g + nd->b_off : NULL;
            float *dw = skip_dw ? NULL : g + nd->w_off;
            if (plan) {
                fv_cudnn_conv_backward(x, plan, din, dw, db, dout, in, p + nd->w_off, cn->scratch);
            } else {
                const fv_conv2d_shape s = conv_shape(nd, n);
                fv_cuda_conv2d_backward(x, din, dw, db, dout, in, p + nd->w_off, cn->scratch,
                                        cn->scratch_floats, &s);
            }
            break;
        }
        case FV_OP_LINEAR:
            fv_cuda_linear_backward(x, din, skip_dw ? NULL : g + nd->w_off,
                                    nd->bias && !skip_dw ? g + nd->b_off : NULL, dout, in, p + nd->w_off, n,
                                    (int)fv_shape_size(nd->ishape), nd->oshape.c);
            break;
        case FV_OP_BATCHNORM:
            FV_ASSERT(train);
            if (fuse && nd->fused_relu) {
                const int j = nd->fused_relu;
                fv_cuda_batchnorm_backward_relu(x, din, g + nd->w_off, g + nd->b_off, cn->dout[j], cn->out[j], in,
                                                cn->bn_mean[i], cn->bn_invstd[i], p + nd->w_off, cn->scratch,
                                                n, C, H * W);
            } else {
                fv_cuda_batchnorm_backward(x, din, g + nd->w_off, g + nd->b_off, dout, in, cn->bn_mean[i],
                                           cn->bn_invstd[i], p + nd->w_off, cn->scratch, n, C, H * W);
            }
            break;
        case FV_OP_MAXPOOL:
            fv_cuda_maxpool_backward(x, din, dout, cn->argmax[i], n, C, H, W, nd->k, nd->stride,
                                     nd->pad);
            break;
        case FV_OP_AVGPOOL:
            fv_cuda_avgpool_backward(x, din, dout, n, C, H, W, nd->k, nd->stride, nd->pad);
            break;
        case FV_OP_GAP:
            fv_cuda_gap_backward(x, din, dout, n, C, H * W);
            break;
        case FV_OP_RELU:
            if (fuse && nd->fused_into)
                break; /* its batch norm or add takes the gradient through it */
            if (mask_bwd) /* a REPLAY forward: through its mask, as net.c */
                fv_cuda_relu_backward_mask(x, din, dout, v->rmask[i], isz);
            else
                fv_cuda_relu_backward(x, din, dout, cn->out[i], isz);
            break;
        case FV_OP_SIGMOID:
            fv_cuda_sigmoid_backward(x, din, dout, cn->out[i], isz);
            break;
        case FV_OP_TANH:
            fv_cuda_tanh_backward(x, din, dout, cn->out[i], isz);
            break;
        case FV_OP_DROPOUT:
            if (train && nd->p > 0.0f)
                fv_cuda_dropout_backward(x, din, dout, cn->mask[i], isz, nd->p);
            else
                fv_cuda_add_backward(x, din, NULL, dout, isz);
            break;
        case FV_OP_FLATTEN:
            break; /* its gradient is its input's: consumers accumulated there */
        case FV_OP_ADD: {
            float *din1 = nd->in1 == 0 && !want_dx ? NULL : cn->dout[nd->in1];
            if (fuse && nd->fused_relu)
                fv_cuda_add_relu_backward(x, din, din1, cn->dout[nd->fused_relu], cn->out[nd->fused_relu], isz);
            else
                fv_cuda_add_backward(x, din, din1, dout, isz);
            break;
        }
        case FV_OP_UPSAMPLE:
            fv_cuda_upsample_backward(x, din, dout, n, C, H, W, nd->k);
            break;
        /* token ops: parameter gradients always (as net.c), input gradients into din unless NULL */
        case FV_OP_LAYERNORM: {
            const int R = n * C;
            fv_cuda_layernorm_backward(x, din, g + nd->w_off, g + nd->b_off, dout, in, cn->saved[i],
                                       cn->saved[i] + R, p + nd->w_off, R, H * W);
            break;
        }
        case FV_OP_GELU:
            fv_cuda_gelu_backward(x, din, dout, in, isz);
            break;
        case FV_OP_TOKENS:
            fv_cuda_tokens_backward(x, din, g + nd->w_off, g + nd->b_off, dout, n, C, H * W);
            break;
        case FV_OP_TOKEN_LINEAR:
            /* dw and dinp through linear.cu; the bias gradient sums n * T rows: a column sum with
             * 32 threads per column instead of linear.cu's one */
            fv_cuda_linear_backward(x, din, g + nd->w_off, NULL, dout, in, p + nd->w_off, n * C,
                                    H * W, nd->oshape.h);
            if (nd->bias) fv_cuda_col_sum_add(x, g + nd->b_off, dout, (size_t)n * C, nd->oshape.h);
            break;
        case FV_OP_ATTENTION:
            if (din)
                fv_cuda_attention_backward(x, din, dout, in, cn->saved[i], cn->scratch, n, C,
                                           nd->oshape.h, nd->heads);
            break;
        case FV_OP_TOKEN_SELECT:
            fv_cuda_token_select_backward(x, din, dout, n, C, H * W, nd->heads);
            break;
        case FV_OP_INPUT:
            FV_DIE("input node in the middle of the graph");
        }
    }
    if (prior && want_dx) prior_hook(cn, 0, n);
    if (cn->prof_step) FV_CUDA_CHECK(cudaEventRecord(evb[0], x->stream));
}

/* Zero the output gradients of n samples: the whole block in one memset for a full-capacity
 * batch, else node by node (a block sized for max_batch would be mostly untouched memory). */
static void zero_douts(fv_cuda_net *cn, int n) {
    if (n == cn->cap) {
        fv_cuda_memset(cn->x, cn->dout_base, 0, cn->dout_bytes);
        return;
    }
    for (int i = 0; i < cn->n_nodes; i++)
        if (cn->nodes[i].op != FV_OP_FLATTEN)
            fv_cuda_memset(cn->x, cn->dout[i], 0,
                           (size_t)n * fv_shape_size(cn->nodes[i].oshape) * sizeof(float));
}

/* Zero the gradients (node 0's output gradient included), then the loss of the forward's logits
 * against cn->labels: d loss / d logits into the last node's gradient, row losses and hits added
 * to (acc_loss, acc_hits), then backward (want_dx: backward's). */
static void loss_and_backward(fv_cuda_net *cn, int n, double *acc_loss, long long *acc_hits,
                              int want_dx) {
    const fv_cuda_ctx *x = cn->x;
    const int last = cn->n_nodes - 1;
    cudaEvent_t *evz = cn->ev ? cn->ev + 2 * (cn->n_nodes + 1) : NULL;
    if (cn->prof_step) FV_CUDA_CHECK(cudaEventRecord(evz[0], x->stream));
    fv_cuda_memset(x, cn->grads, 0, cn->n_train * sizeof(float));
    zero_douts(cn, n);
    if (cn->prof_step) FV_CUDA_CHECK(cudaEventRecord(evz[1], x->stream));
    fv_cuda_softmax_xent(x, cn->dout[last], cn->row_loss, cn->row_hit, acc_loss, acc_hits,
                         cn->out[last], cn->labels, n, cn->K);
    backward(cn, n, 1, want_dx);
}

/* One training step of b samples from shard s at the device cursor. Capturable. */
static void train_step(fv_cuda_net *cn, const fv_cuda_shard *s, int b, int prox, float prox_mu, int corr) {
    const fv_cuda_ctx *x = cn->x;
    dev_misc *m = cn->misc;
    fv_cuda_gather_batch(x, cn->out[0], cn->labels, s->images, s->labels, cn->order, &m->cursor, 0,
                         cn->lut, b, cn->input.c, cn->input.h * cn->input.w);
    forward(cn, b, 1);
    loss_and_backward(cn, b, &m->train_loss, &m->train_hits, 0);
    if (prox) fv_cuda_prox_grad(x, cn->grads, cn->params, cn->prox_ref, prox_mu, cn->n_train);
    if (corr) fv_cuda_corr_grad(x, cn->grads, cn->corr, cn->n_train);
    fv_cuda_opt_step(x, cn->params, cn->opt_state, cn->grads, &m->ost, &cn->opt, cn->n_train);
    fv_cuda_advance(x, &m->cursor, b, &m->drop[1]);
}

/* The elapsed milliseconds from event a to event b (both completed). */
static double ev_ms(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0.0f;
    FV_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    return (double)ms;
}

/* An uncaptured training step; while profiling, its nodes' times are added to cn->prof (it then
 * waits for the step: profiling runs one step at a time). */
static void profiled_step(fv_cuda_net *cn, const fv_cuda_shard *s, int b, int prox, float prox_mu, int corr) {
    if (!cn->prof) {
        train_step(cn, s, b, prox, prox_mu, corr);
        return;
    }
    cn->prof_step = 1;
    train_step(cn, s, b, prox, prox_mu, corr);
    cn->prof_step = 0;
    const int nn = cn->n_nodes;
    cudaEvent_t *ev = cn->ev, *evb = cn->ev + nn + 1, *evz = cn->ev + 2 * (nn + 1);
    FV_CUDA_CHECK(cudaEventSynchronize(evb[0]));
    for (int i = 1; i < nn; i++) {
        cn->prof[i] += 1e-3 * ev_ms(ev[i], ev[i + 1]);
        cn->prof[nn + i] += 1e-3 * ev_ms(evb[i], evb[i - 1]);
    }
    cn->prof[nn] += 1e-3 * ev_ms(evz[0], evz[1]);
}

void fv_cuda_net_profile(fv_cuda_net *cn, int on) {
    use_device(cn);
    if (cn->ev) {
        for (int i = 0; i < 2 * (cn->n_nodes + 1) + 2; i++) FV_CUDA_CHECK(cudaEventDestroy(cn->ev[i]));
        free(cn->ev);
        cn->ev = NULL;
    }
    free(cn->prof);
    cn->prof = NULL;
    if (!on) return;
    const int ne = 2 * (cn->n_nodes + 1) + 2;
    cn->ev = (cudaEvent_t *)fv_malloc((size_t)ne * sizeof(cudaEvent_t));
    for (int i = 0; i < ne; i++) FV_CUDA_CHECK(cudaEventCreate(&cn->ev[i]));
    cn->prof = (double *)fv_calloc(2 * (size_t)cn->n_nodes, sizeof(double));
}

const double *fv_cuda_net_profile_times(const fv_cuda_net *cn) { return cn->prof; }

static int same_key(const graph_key *a, const graph_key *b) {
    return a->batch == b->batch && a->prox == b->prox && a->prox_mu == b->prox_mu && a->corr == b->corr &&
           a->opt_gen == b->opt_gen && a->images == b->images && a->labels == b->labels &&
           a->order == b->order && a->cudnn == b->cudnn && a->fuse == b->fuse;
}

static graph_key key_of(const fv_cuda_net *cn, const fv_cuda_shard *s, int batch, int prox,
                        float prox_mu, int corr) {
    graph_key k;
    memset(&k, 0, sizeof k);
    k.batch = batch;
    k.prox = prox;
    k.prox_mu = prox ? prox_mu : 0.0f;
    k.corr = corr;
    k.opt_gen = cn->opt_gen;
    k.images = s->images;
    k.labels = s->labels;
    k.order = cn->order;
    k.cudnn = cn->use_cudnn;
    k.fuse = cn->fuse;
    return k;
}

/* Capture one full-batch step for key k (replacing the current graph). The caller has run at
 * least one step of this shape uncaptured since the process started, so every kernel module is
 * loaded and cuBLAS has chosen its algorithms outside the capture. */
static void capture(fv_cuda_net *cn, const fv_cuda_shard *s, const graph_key *k) {
    if (cn->have_graph) {
        FV_CUDA_CHECK(cudaGraphExecDestroy(cn->exec));
        cn->have_graph = 0;
    }
    cudaGraph_t graph;
    FV_CUDA_CHECK(cudaStreamBeginCapture(cn->x->stream, cudaStreamCaptureModeThreadLocal));
    train_step(cn, s, k->batch, k->prox, k->prox_mu, k->corr);
    FV_CUDA_CHECK(cudaStreamEndCapture(cn->x->stream, &graph));
    FV_CUDA_CHECK(cudaGraphInstantiate(&cn->exec, graph, 0));
    FV_CUDA_CHECK(cudaGraphDestroy(graph));
    cn->key = *k;
    cn->have_graph = 1;
    cn->info.captures++;
}

/* The table data.c's fv_dataset_to_float uses, bitwise. */
static void build_lut(float *lut, fv_norm norm, int C) {
    for (int c = 0; c < C; c++) {
        FV_ASSERT(norm.std[c] > 0.0f);
        for (int v = 0; v < 256; v++)
            lut[c * 256 + v] = ((float)v / 255.0f - norm.mean[c]) / norm.std[c];
    }
}

static void read_misc(fv_cuda_net *cn, dev_misc *h) {
    fv_cuda_download(cn->x, h, cn->misc, sizeof *h);
}

fv_epoch_stats fv_cuda_train_epoch(fv_cuda_net *cn, const fv_cuda_shard *s, int batch, fv_norm norm,
                                   fv_rng *rng, float prox_mu, const float *prox_ref, const float *corr,
                                   fv_progress_fn progress, void *ctx) {
    const double t0 = fv_now();
    if (!cn->have_opt) FV_DIE("fv_cuda_train_epoch: no optimizer (call fv_cuda_net_set_opt first)");
    FV_ASSERT(s && s->cn == cn);
    if (batch < 1 || batch > cn->cap)
        FV_DIE("fv_cuda_train_epoch: batch %d outside 1..%d (the net's max_batch)", batch, cn->cap);
    use_device(cn);
    const fv_cuda_ctx *x = cn->x;
    const int n = s->n;
    /* the order: fv_train_epoch's draws for n items, over shard-local positions */
    if (n > cn->host_order_cap) {
        free(cn->host_order);
        cn->host_order = (int *)fv_malloc((size_t)n * sizeof(int));
        cn->host_order_cap = n;
    }
    for (int i = 0; i < n; i++) cn->host_order[i] = i;
    fv_rng_shuffle_int(rng, cn->host_order, n);
    /* sized by the shard's capacity, not its size: a worker's smaller clients then keep the
     * buffer, and with it the captured graph */
    if (s->cap_n > cn->order_cap) {
        fv_cuda_free(x, cn->order); /* x's stream is synchronised: it waits for the work still reading it */
        cn->order = (int32_t *)fv_cuda_alloc(x, (size_t)s->cap_n * sizeof(int32_t));
        cn->order_cap = s->cap_n;
    }
    /* Host sources below stay untouched until this call returns, and the call ends with a
     * blocking read, so the copies need no pinned staging of their own. */
    if (n)
        FV_CUDA_CHECK(cudaMemcpyAsync(cn->order, cn->host_order, (size_t)n * sizeof(int32_t),
                                      cudaMemcpyHostToDevice, x->stream));
    build_lut(cn->host_lut, norm, cn->input.c);
    FV_CUDA_CHECK(cudaMemcpyAsync(cn->lut, cn->host_lut, sizeof cn->host_lut,
                                  cudaMemcpyHostToDevice, x->stream));
    const int prox = prox_mu > 0.0f && prox_ref;
    if (prox)
        FV_CUDA_CHECK(cudaMemcpyAsync(cn->prox_ref, prox_ref, cn->n_train * sizeof(float),
                                      cudaMemcpyHostToDevice, x->stream));
    const int use_corr = corr != NULL;
    if (use_corr)
        FV_CUDA_CHECK(cudaMemcpyAsync(cn->corr, corr, cn->n_train * sizeof(float), cudaMemcpyHostToDevice,
                                      x->stream));
    dev_misc *m = cn->misc;
    fv_cuda_memset(x, &m->train_loss, 0, sizeof m->train_loss);
    fv_cuda_memset(x, &m->train_hits, 0, sizeof m->train_hits);
    fv_cuda_memset(x, &m->cursor, 0, sizeof m->cursor);

    const int full = n / batch, rem = n % batch;
    /* Full batches replay the graph. When it must be (re)captured, the first full batch runs
     * uncaptured (warming kernels and cuBLAS outside the capture) and the capture follows it. */
    const graph_key key = key_of(cn, s, batch, prox, prox_mu, use_corr);
    const int graphs = cn->graphs_on && !cn->prof; /* profiling times uncaptured steps */
    int ready = graphs && cn->have_graph && same_key(&cn->key, &key);
    double last = fv_now();
    dev_misc h;
    for (int k = 0; k < full; k++) {
        if (graphs && !ready && k > 0) {
            capture(cn, s, &key);
            ready = 1;
        }
        if (ready) {
            FV_CUDA_CHECK(cudaGraphLaunch(cn->exec, x->stream));
            cn->info.graph_steps++;
        } else {
            profiled_step(cn, s, batch, prox, prox_mu, use_corr);
            cn->info.eager_steps++;
        }
        if (progress && k + 1 < full && fv_now() - last >= 0.25) {
            read_misc(cn, &h);
            const long done = (long)(k + 1) * batch;
            progress(ctx, done, n, h.train_loss / (double)done);
            last = fv_now();
        }
    }
    if (rem) {
        profiled_step(cn, s, rem, prox, prox_mu, use_corr);
        cn->info.eager_steps++;
    }
    read_misc(cn, &h);
    if (progress) progress(ctx, n, n, n ? h.train_loss / n : 0.0);
    fv_epoch_stats st = {n ? h.train_loss / n : 0.0, n ? (double)h.train_hits / n : 0.0, n,
                         fv_now() - t0};
    return st;
}

fv_eval_stats fv_cuda_evaluate(fv_cuda_net *cn, const fv_cuda_shard *s, int batch, fv_norm norm) {
    FV_ASSERT(s && s->cn == cn && batch >= 1);
    use_device(cn);
    const fv_cuda_ctx *x = cn->x;
    const int n = s->n, b = batch < cn->cap ? batch : cn->cap;
    build_lut(cn->host_lut, norm, cn->input.c);
    FV_CUDA_CHECK(cudaMemcpyAsync(cn->lut, cn->host_lut, sizeof cn->host_lut,
                                  cudaMemcpyHostToDevice, x->stream));
    dev_misc *m = cn->misc;
    fv_cuda_memset(x, &m->eval_loss, 0, sizeof m->eval_loss);
    fv_cuda_memset(x, &m->eval_hits, 0, sizeof m->eval_hits);
    const int last = cn->n_nodes - 1;
    for (int s0 = 0; s0 < n; s0 += b) {
        const int bb = n - s0 < b ? n - s0 : b;
        fv_cuda_gather_batch(x, cn->out[0], cn->labels, s->images, s->labels, NULL, NULL, s0,
                             cn->lut, bb, cn->input.c, cn->input.h * cn->input.w);
        forward(cn, bb, 0);
        fv_cuda_softmax_xent(x, NULL, cn->row_loss, cn->row_hit, &m->eval_loss, &m->eval_hits,
                             cn->out[last], cn->labels, bb, cn->K);
    }
    dev_misc h;
    read_misc(cn, &h);
    fv_eval_stats st = {n ? h.eval_loss / n : 0.0, n ? (double)h.eval_hits / n : 0.0, n};
    return st;
}

/* fv_cuda_net_grad and fv_cuda_net_input_grad: upload x and labels, one training-mode forward,
 * loss and backward (want_dx: backward's), advance the dropout counter as a training step does,
 * download what was asked for. */
static void grad_run(fv_cuda_net *cn, const float *xh, const int *labels, int n, int want_dx,
                     float *dx, float *loss, float *logits, float *grads) {
    FV_ASSERT(n >= 1 && n <= cn->cap);
    FV_ASSERT(!want_dx == !dx);
    for (int i = 0; i < n; i++) FV_ASSERT(labels[i] >= 0 && labels[i] < cn->K);
    use_device(cn);
    const fv_cuda_ctx *x = cn->x;
    dev_misc *m = cn->misc;
    const size_t in_floats = (size_t)n * fv_shape_size(cn->input);
    fv_cuda_upload(x, cn->out[0], xh, in_floats * sizeof(float));
    fv_cuda_upload(x, cn->labels, labels, (size_t)n * sizeof(int32_t));
    fv_cuda_memset(x, &m->tmp_loss, 0, sizeof m->tmp_loss);
    forward(cn, n, 1);
    loss_and_backward(cn, n, &m->tmp_loss, NULL, want_dx);
    fv_cuda_advance(x, &m->cursor, 0, &m->drop[1]);
    const int last = cn->n_nodes - 1;
    if (dx) fv_cuda_download(x, dx, cn->dout[0], in_floats * sizeof(float));
    if (logits) fv_cuda_download(x, logits, cn->out[last], (size_t)n * cn->K * sizeof(float));
    if (grads) fv_cuda_download(x, grads, cn->grads, cn->n_train * sizeof(float));
    double l = 0.0;
    fv_cuda_download(x, &l, &m->tmp_loss, sizeof l);
    if (loss) *loss = (float)(l / n);
}

void fv_cuda_net_grad(fv_cuda_net *cn, const float *xh, const int *labels, int n, float *loss,
                      float *logits, float *grads) {
    grad_run(cn, xh, labels, n, 0, NULL, loss, logits, grads);
}

void fv_cuda_net_input_grad(fv_cuda_net *cn, const float *xh, const int *labels, int n, float *dx,
                            float *loss, float *grads) {
    FV_ASSERT(dx);
    grad_run(cn, xh, labels, n, 1, dx, loss, NULL, grads);
}

/* The part of a step on host floats before its loss (fv_cuda_net_train_pixel, _kd): upload x,
 * training-mode forward, gradients and output gradients zeroed, then `target` (n rows of the
 * output) uploaded into the last node's output gradient, where the loss kernel reads it and
 * writes d loss / d output over it. */
static void host_step_begin(fv_cuda_net *cn, const float *xh, const float *target, int n) {
    const fv_cuda_ctx *x = cn->x;
    const size_t in_floats = (size_t)n * fv_shape_size(cn->input), out_floats = (size_t)n * cn->K;
    fv_cuda_upload(x, cn->out[0], xh, in_floats * sizeof(float));
    forward(cn, n, 1);
    fv_cuda_memset(x, cn->grads, 0, cn->n_train * sizeof(float));
    zero_douts(cn, n);
    fv_cuda_upload(x, cn->dout[cn->n_nodes - 1], target, out_floats * sizeof(float));
}

/* ... and after it: backward, optimizer step, the dropout counter advanced; then the loss the
 * kernel left in tmp_loss (and, when hits is not NULL, tmp_hits) downloaded. */
static void host_step_end(fv_cuda_net *cn, int n, double *loss, long long *hits) {
    const fv_cuda_ctx *x = cn->x;
    dev_misc *m = cn->misc;
    backward(cn, n, 1, 0);
    fv_cuda_opt_step(x, cn->params, cn->opt_state, cn->grads, &m->ost, &cn->opt, cn->n_train);
    fv_cuda_advance(x, &m->cursor, 0, &m->drop[1]);
    fv_cuda_download(x, loss, &m->tmp_loss, sizeof *loss);
    if (hits) fv_cuda_download(x, hits, &m->tmp_hits, sizeof *hits);
}

/* fv_cuda_net_train_pixel: the pixel loss reads the target from the last node's output gradient
 * (uploaded there after the zeroing) and overwrites it with d loss / d output in place. */
void fv_cuda_net_train_pixel(fv_cuda_net *cn, const float *xh, const float *target, int n,
                             fv_pixel_loss_kind kind, float *loss) {
    if (!cn->have_opt) FV_DIE("fv_cuda_net_train_pixel: no optimizer (call fv_cuda_net_set_opt first)");
    FV_ASSERT(xh && target && n >= 1 && n <= cn->cap);
    use_device(cn);
    const int last = cn->n_nodes - 1;
    host_step_begin(cn, xh, target, n);
    fv_cuda_pixel_loss(cn->x, cn->dout[last], &cn->misc->tmp_loss, cn->out[last], cn->dout[last],
                       (size_t)n * cn->K, kind);
    double l = 0.0;
    host_step_end(cn, n, &l, NULL);
    if (loss) *loss = (float)l;
}

/* fv_cuda_net_train_kd: as fv_cuda_net_train_pixel, the teacher's logits uploaded into the last
 * node's output gradient, which the KD loss overwrites with d loss / d logits in place. */
void fv_cuda_net_train_kd(fv_cuda_net *cn, const float *xh, const float *teacher, const int *labels, int n,
                          float T, float alpha, float *loss, int *correct) {
    if (!cn->have_opt) FV_DIE("fv_cuda_net_train_kd: no optimizer (call fv_cuda_net_set_opt first)");
    FV_ASSERT(xh && teacher && labels && n >= 1 && n <= cn->cap);
    FV_ASSERT(T > 0.0f && alpha >= 0.0f && alpha <= 1.0f);
    for (int i = 0; i < n; i++) FV_ASSERT(labels[i] >= 0 && labels[i] < cn->K);
    use_device(cn);
    const int last = cn->n_nodes - 1;
    fv_cuda_upload(cn->x, cn->labels, labels, (size_t)n * sizeof(int32_t));
    host_step_begin(cn, xh, teacher, n);
    fv_cuda_kd_loss(cn->x, cn->dout[last], cn->row_loss, cn->row_hit, &cn->misc->tmp_loss, &cn->misc->tmp_hits,
                    cn->out[last], cn->dout[last], cn->labels, n, cn->K, T, alpha);
    double l = 0.0;
    long long h = 0;
    host_step_end(cn, n, &l, &h);
    if (loss) *loss = (float)l;
    if (correct) *correct = (int)h;
}

void fv_cuda_net_forward(fv_cuda_net *cn, const float *xh, int n, float *y) {
    FV_ASSERT(xh && y && n >= 1 && n <= cn->cap);
    use_device(cn);
    const fv_cuda_ctx *x = cn->x;
    fv_cuda_upload(x, cn->out[0], xh, (size_t)n * fv_shape_size(cn->input) * sizeof(float));
    forward(cn, n, 0);
    fv_cuda_download(x, y, cn->out[cn->n_nodes - 1], (size_t)n * cn->K * sizeof(float));
}

/* ---- gradient-inversion passes (nn/trainer.h's fv_trainer_inv_*) ---- */

/* Bytes of the kinks of a batch of n: every ReLU's mask and every max pool's argmaxes, in node
 * order (the CPU's layout, fv_node_kink_bytes). */
static size_t kinks_bytes(const fv_cuda_net *cn, int n) {
    size_t b = 0;
    for (int i = 1; i < cn->n_nodes; i++) b += fv_node_kink_bytes(&cn->nodes[i], n);
    return b;
}

int fv_cuda_net_inv_open(fv_cuda_net *cn, const float *theta0, int n, int slots, int slot_batch, fv_err *e) {
    FV_ASSERT(!cn->inv && n >= 1 && n <= cn->cap && slots >= 1 && slot_batch >= 1 && slot_batch <= n);
    use_device(cn);
    cuda_inv *v = (cuda_inv *)fv_calloc(1, sizeof *v);
    v->n = n, v->slots = slots, v->slot_batch = slot_batch;
    const size_t isz = fv_shape_size(cn->input);
    size_t nch = 0;
    for (int i = 1; i < cn->n_nodes; i++)
        if (cn->nodes[i].op == FV_OP_BATCHNORM) v->bn_off[i] = nch, nch += (size_t)cn->nodes[i].ishape.c;
    v->nch = nch;
    v->kbytes = kinks_bytes(cn, slot_batch);
    size_t top = 0, o_mask[FV_MAX_NODES] = {0};
    const size_t o_t0 = take(&top, cn->n_params * sizeof(float));
    const size_t o_b = take(&top, cn->n_train * sizeof(float));
    const size_t o_d = take(&top, cn->n_train * sizeof(float));
    const size_t o_x = take(&top, (size_t)n * isz * sizeof(float));
    const size_t o_l = take(&top, (size_t)n * sizeof(int32_t));
    for (int i = 1; i < cn->n_nodes; i++)
        if (cn->nodes[i].op == FV_OP_RELU) o_mask[i] = take(&top, (size_t)cn->cap * fv_shape_size(cn->nodes[i].oshape));
    const size_t o_s = take(&top, (size_t)slots * v->kbytes + 1);
    const size_t o_st = take(&top, (2 * nch + 1) * sizeof(double));
    const size_t o_cf = take(&top, (3 * nch + 1) * sizeof(double));
    v->mem = (uint8_t *)fv_cuda_try_alloc(cn->x, top, "the gradient-inversion passes", e);
    if (!v->mem) {
        free(v);
        return -1;
    }
    v->theta0 = (float *)(v->mem + o_t0), v->base = (float *)(v->mem + o_b), v->dir = (float *)(v->mem + o_d);
    v->x = (float *)(v->mem + o_x), v->labels = (int32_t *)(v->mem + o_l);
    for (int i = 1; i < cn->n_nodes; i++)
        if (cn->nodes[i].op == FV_OP_RELU) v->rmask[i] = v->mem + o_mask[i];
    v->slot_mem = v->mem + o_s;
    v->stats = (double *)(v->mem + o_st), v->coef = (double *)(v->mem + o_cf);
    v->h_gth = (float *)fv_malloc(cn->n_train * sizeof(float));
    v->h_gx = (float *)fv_malloc((size_t)n * isz * sizeof(float));
    v->kinks = FV_KINKS_FREE;
    fv_cuda_upload(cn->x, v->theta0, theta0, cn->n_params * sizeof(float));
    fv_cuda_copy(cn->x, v->base, v->theta0, cn->n_train * sizeof(float));
    cn->inv = v;
    cn->info.device_bytes += top;
    return 0;
}

void fv_cuda_net_inv_images(fv_cuda_net *cn, const float *xh, const int *labels) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v);
    use_device(cn);
    fv_cuda_upload(cn->x, v->x, xh, (size_t)v->n * fv_shape_size(cn->input) * sizeof(float));
    fv_cuda_upload(cn->x, v->labels, labels, (size_t)v->n * sizeof(int32_t));
}

void fv_cuda_net_inv_point(fv_cuda_net *cn, const float *base, const float *dir) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v);
    use_device(cn);
    if (base) fv_cuda_upload(cn->x, v->base, base, cn->n_train * sizeof(float));
    if (dir) fv_cuda_upload(cn->x, v->dir, dir, cn->n_train * sizeof(float));
    v->has_dir = dir != NULL;
}

void fv_cuda_net_inv_pass(fv_cuda_net *cn, double h, int start, int cnt, fv_kinks kinks, int want_th, int want_x,
                          double *loss, const float **gth, const float **gx) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v && start >= 0 && cnt >= 1 && start + cnt <= v->n);
    use_device(cn);
    const fv_cuda_ctx *x = cn->x;
    dev_misc *m = cn->misc;
    const size_t isz = fv_shape_size(cn->input);
    /* the point, and theta0's buffers (the last forward moved the running statistics) */
    if (v->has_dir)
        fv_cuda_inv_point(x, cn->params, v->base, v->dir, h, cn->n_train);
    else
        fv_cuda_copy(x, cn->params, v->base, cn->n_train * sizeof(float));
    fv_cuda_copy(x, cn->params + cn->n_train, v->theta0 + cn->n_train, cn->n_state * sizeof(float));
    fv_cuda_copy(x, cn->out[0], v->x + (size_t)start * isz, (size_t)cnt * isz * sizeof(float));
    fv_cuda_copy(x, cn->labels, v->labels + start, (size_t)cnt * sizeof(int32_t));
    v->kinks = kinks;
    forward(cn, cnt, 1);
    v->kinks = FV_KINKS_FREE;
    *loss = 0.0;
    *gth = NULL, *gx = NULL;
    if (!want_th && !want_x) return;
    fv_cuda_memset(x, &m->tmp_loss, 0, sizeof m->tmp_loss);
    v->skip_dw = want_x && !want_th;
    loss_and_backward(cn, cnt, &m->tmp_loss, NULL, want_x);
    v->skip_dw = 0;
    if (want_th) fv_cuda_download(x, v->h_gth, cn->grads, cn->n_train * sizeof(float)), *gth = v->h_gth;
    if (want_x) fv_cuda_download(x, v->h_gx, cn->dout[0], (size_t)cnt * isz * sizeof(float)), *gx = v->h_gx;
    double l = 0.0;
    fv_cuda_download(x, &l, &m->tmp_loss, sizeof l);
    *loss = l / cnt;
}

/* Copy the recorded kinks of a batch of kn between the nodes' buffers and slot `slot`. */
static void kinks_move(fv_cuda_net *cn, int slot, int kn, int save) {
    cuda_inv *v = cn->inv;
    uint8_t *d = v->slot_mem + (size_t)slot * v->kbytes;
    for (int i = 1; i < cn->n_nodes; i++) {
        const fv_node *nd = &cn->nodes[i];
        const size_t bytes = fv_node_kink_bytes(nd, kn);
        if (!bytes) continue;
        uint8_t *buf = nd->op == FV_OP_RELU ? v->rmask[i] : (uint8_t *)cn->argmax[i];
        if (save) fv_cuda_copy(cn->x, d, buf, bytes);
        else fv_cuda_copy(cn->x, buf, d, bytes);
        d += bytes;
    }
}

void fv_cuda_net_inv_kinks_save(fv_cuda_net *cn, int slot) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v && slot >= 0 && slot < v->slots);
    FV_ASSERT(v->kinks_n > 0 && v->last_n == v->kinks_n && v->kinks_n <= v->slot_batch);
    use_device(cn);
    kinks_move(cn, slot, v->kinks_n, 1);
}

void fv_cuda_net_inv_kinks_load(fv_cuda_net *cn, int slot, int cnt) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v && slot >= 0 && slot < v->slots && cnt >= 1 && cnt <= v->slot_batch);
    use_device(cn);
    kinks_move(cn, slot, cnt, 0);
    v->kinks_n = cnt;
}

void fv_cuda_net_inv_bn_stats(fv_cuda_net *cn, double *stats) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v && v->last_n == v->n && v->last_train && !v->last_replay);
    use_device(cn);
    for (int i = 1; i < cn->n_nodes; i++) {
        const fv_node *nd = &cn->nodes[i];
        if (nd->op != FV_OP_BATCHNORM) continue;
        fv_cuda_bn_channel_stats(cn->x, v->stats + 2 * v->bn_off[i], cn->out[nd->in0], v->n, nd->ishape.c,
                                 nd->ishape.h * nd->ishape.w);
    }
    fv_cuda_download(cn->x, stats, v->stats, 2 * v->nch * sizeof(double));
}

const float *fv_cuda_net_inv_bn_backward(fv_cuda_net *cn, const double *coef) {
    cuda_inv *v = cn->inv;
    FV_ASSERT(v && v->last_n == v->n && v->last_train && !v->last_replay);
    use_device(cn);
    const fv_cuda_ctx *x = cn->x;
    fv_cuda_upload(x, v->coef, coef, 3 * v->nch * sizeof(double));
    zero_douts(cn, v->n); /* a zero loss gradient; the prior's terms come in at the layers' inputs */
    v->prior = 1, v->skip_dw = 1;
    backward(cn, v->n, 1, 1);
    v->prior = 0, v->skip_dw = 0;
    fv_cuda_download(x, v->h_gx, cn->dout[0], (size_t)v->n * fv_shape_size(cn->input) * sizeof(float));
    return v->h_gx;
}

/* ---- shards ---- */

fv_cuda_shard *fv_cuda_shard_new(fv_cuda_net *cn) {
    fv_cuda_shard *s = (fv_cuda_shard *)fv_calloc(1, sizeof *s);
    s->cn = cn;
    return s;
}

void fv_cuda_shard_destroy(fv_cuda_shard **ps) {
    if (!ps || !*ps) return;
    fv_cuda_shard *s = *ps;
    use_device(s->cn);
    fv_cuda_free(s->cn->x, s->mem);
    free(s);
    *ps = NULL;
}

int fv_cuda_shard_size(const fv_cuda_shard *s) { return s->n; }

int fv_cuda_shard_load(fv_cuda_shard *s, const fv_dataset *d, const int *idx, int n, fv_err *e) {
    fv_cuda_net *cn = s->cn;
    if (!idx) n = d->n;
    FV_ASSERT(n >= 0);
    if (d->c != cn->input.c || d->h != cn->input.h || d->w != cn->input.w)
        return fv_err_set(
            e, "staging data on cuda:%d: images are %dx%dx%d but the model takes %dx%dx%d",
            cn->x->device, d->c, d->h, d->w, cn->input.c, cn->input.h, cn->input.w);
    const size_t img = fv_shape_size(cn->input);
    uint8_t *host = (uint8_t *)fv_malloc((size_t)n * (img + 1) + 1);
    for (int k = 0; k < n; k++) {
        const int i = idx ? idx[k] : k;
        FV_ASSERT(i >= 0 && i < d->n);
        if (d->y[i] >= cn->K) {
            free(host);
            return fv_err_set(e,
                              "staging data on cuda:%d: image %d has label %d but the model has %d "
                              "outputs",
                              cn->x->device, i, d->y[i], cn->K);
        }
        memcpy(host + (size_t)k * img, d->x + (size_t)i * img, img);
        host[(size_t)n * img + k] = d->y[i];
    }
    use_device(cn);
    if (n > s->cap_n) {
        fv_cuda_free(cn->x, s->mem); /* waits for the training still reading it */
        s->mem = NULL;
        s->cap_n = 0;
        s->n = 0;
        char what[96];
        snprintf(what, sizeof what, "a data shard of %d images", n);
        s->mem = (uint8_t *)fv_cuda_try_alloc(cn->x, (size_t)n * (img + 1), what, e);
        if (!s->mem) {
            free(host);
            return -1;
        }
        s->cap_n = n;
    }
    s->images = s->mem;
    s->labels = s->mem + (size_t)s->cap_n * img;
    fv_cuda_upload(cn->x, s->images, host, (size_t)n * img);
    fv_cuda_upload(cn->x, s->labels, host + (size_t)n * img, (size_t)n);
    s->n = n;
    free(host);
    return 0;
}

int fv_cuda_built(void) { return 1; }
