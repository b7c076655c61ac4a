/* net.c: see net.h. The graph is static (built once), executed in node order forward and in
 * reverse order backward; every backward kernel accumulates into its inputs' gradients, so a
 * node read by several consumers (residual connections) needs no special case. */
#include "nn/net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fv_common.h"
#include "nn/layers.h"
#ifdef FEDVIM_HAVE_DNNL
#include "nn/conv_dnnl.h"
#endif

fv_net *fv_net_new(fv_shape input) {
    FV_ASSERT(input.c > 0 && input.h > 0 && input.w > 0);
    fv_net *net = fv_calloc(1, sizeof *net);
    net->input = input;
    fv_node *n0 = &net->nodes[0];
    n0->op = FV_OP_INPUT;
    n0->in0 = n0->in1 = -1;
    n0->ishape = input;
    n0->oshape = input;
    net->n_nodes = 1;
    fv_rng_seed(&net->rng, 0);
    return net;
}

static void free_acts(fv_net *net) {
    for (int i = 0; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        if (i > 0) free(nd->out);
        free(nd->dout);
        free(nd->argmax);
        free(nd->mask);
        free(nd->saved);
        free(nd->cols);
        nd->cols = NULL;
        nd->cols_n = 0;
        nd->saved = NULL;
        nd->out = nd->dout = NULL;
        nd->argmax = NULL;
        nd->mask = NULL;
    }
    free(net->scratch);
    net->scratch = NULL;
    net->cap = 0;
}

/* Every conv node back on OpenBLAS; the oneDNN objects freed. */
static void conv_release(fv_net *net) {
#ifdef FEDVIM_HAVE_DNNL
    for (int i = 0; i < net->n_nodes; i++) fv_dnnl_conv_destroy(&net->nodes[i].dnnl);
    fv_dnnl_destroy(&net->dnnl);
#else
    (void)net;
#endif
}

void fv_net_destroy(fv_net **pnet) {
    if (!pnet || !*pnet) return;
    fv_net *net = *pnet;
    conv_release(net);
    free_acts(net);
    for (int i = 0; i < net->n_nodes; i++) {
        free(net->nodes[i].bn_mean);
        free(net->nodes[i].bn_invstd);
    }
    free(net->params);
    free(net->grads);
    free(net->prof);
    free(net);
    *pnet = NULL;
}

static fv_node *add_node(fv_net *net, fv_op op, int in0, int in1) {
    FV_ASSERT(!net->finished);
    FV_ASSERT(net->n_nodes < FV_MAX_NODES);
    FV_ASSERT(in0 >= 0 && in0 < net->n_nodes);
    FV_ASSERT(in1 < net->n_nodes);
    fv_node *nd = &net->nodes[net->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->op = op;
    nd->in0 = in0;
    nd->in1 = in1;
    nd->ishape = net->nodes[in0].oshape;
    nd->oshape = nd->ishape;
    net->nodes[in0].consumers++;
    if (in1 >= 0) net->nodes[in1].consumers++;
    return nd;
}

/* Register a tensor; state tensors get offsets relative to the state area until finish. */
static size_t add_tensor(fv_net *net, const char *prefix, const char *suffix, int trainable, int ndim,
                         const int *dims) {
    FV_ASSERT(net->n_tensors < FV_MAX_TENSORS);
    fv_tensor *t = &net->tensors[net->n_tensors++];
    int w = snprintf(t->name, sizeof t->name, "%s%s%s", prefix, *prefix ? "." : "", suffix);
    FV_ASSERT(w > 0 && (size_t)w < sizeof t->name);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = dims[i];
        t->count *= (size_t)dims[i];
    }
    t->trainable = trainable;
    if (trainable) {
        t->off = net->n_train;
        net->n_train += t->count;
    } else {
        t->off = net->n_state;
        net->n_state += t->count;
    }
    return t->off;
}

static int last(fv_net *net) { return net->n_nodes - 1; }

int fv_net_conv2d(fv_net *net, const char *name, int in, int out_ch, int k, int stride, int pad,
                  int groups, int bias) {
    fv_node *nd = add_node(net, FV_OP_CONV2D, in, -1);
    FV_ASSERT(groups >= 1 && nd->ishape.c % groups == 0 && out_ch % groups == 0 && k >= 1 && stride >= 1);
    int oh = (nd->ishape.h + 2 * pad - k) / stride + 1, ow = (nd->ishape.w + 2 * pad - k) / stride + 1;
    FV_ASSERT(oh >= 1 && ow >= 1);
    nd->k = k;
    nd->stride = stride;
    nd->pad = pad;
    nd->groups = groups;
    nd->bias = bias;
    nd->oshape = (fv_shape){out_ch, oh, ow};
    int wd[4] = {out_ch, nd->ishape.c / groups, k, k};
    nd->w_off = add_tensor(net, name, "weight", 1, 4, wd);
    if (bias) nd->b_off = add_tensor(net, name, "bias", 1, 1, &out_ch);
    return last(net);
}

int fv_net_linear(fv_net *net, const char *name, int in, int out_features, int bias) {
    fv_node *nd = add_node(net, FV_OP_LINEAR, in, -1);
    int fin = (int)fv_shape_size(nd->ishape);
    nd->bias = bias;
    nd->oshape = (fv_shape){out_features, 1, 1};
    int wd[2] = {out_features, fin};
    nd->w_off = add_tensor(net, name, "weight", 1, 2, wd);
    if (bias) nd->b_off = add_tensor(net, name, "bias", 1, 1, &out_features);
    return last(net);
}

int fv_net_batchnorm(fv_net *net, const char *name, int in) {
    fv_node *nd = add_node(net, FV_OP_BATCHNORM, in, -1);
    int c = nd->ishape.c;
    nd->momentum = 0.1f;
    nd->eps = 1e-5f;
    nd->w_off = add_tensor(net, name, "weight", 1, 1, &c);
    nd->b_off = add_tensor(net, name, "bias", 1, 1, &c);
    nd->rm_off = add_tensor(net, name, "running_mean", 0, 1, &c);
    nd->rv_off = add_tensor(net, name, "running_var", 0, 1, &c);
    nd->bn_mean = fv_calloc((size_t)c, sizeof(float));
    nd->bn_invstd = fv_calloc((size_t)c, sizeof(float));
    return last(net);
}

static int pool(fv_net *net, fv_op op, int in, int k, int stride, int pad) {
    fv_node *nd = add_node(net, op, in, -1);
    FV_ASSERT(k >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= k);
    nd->k = k;
    nd->stride = stride;
    nd->pad = pad;
    int oh = (nd->ishape.h + 2 * pad - k) / stride + 1, ow = (nd->ishape.w + 2 * pad - k) / stride + 1;
    FV_ASSERT(oh >= 1 && ow >= 1);
    nd->oshape = (fv_shape){nd->ishape.c, oh, ow};
    return last(net);
}

int fv_net_maxpool(fv_net *net, int in, int k, int stride, int pad) { return pool(net, FV_OP_MAXPOOL, in, k, stride, pad); }
int fv_net_avgpool(fv_net *net, int in, int k, int stride, int pad) { return pool(net, FV_OP_AVGPOOL, in, k, stride, pad); }

int fv_net_gap(fv_net *net, int in) {
    fv_node *nd = add_node(net, FV_OP_GAP, in, -1);
    nd->oshape = (fv_shape){nd->ishape.c, 1, 1};
    return last(net);
}

int fv_net_relu(fv_net *net, int in) { add_node(net, FV_OP_RELU, in, -1); return last(net); }
int fv_net_sigmoid(fv_net *net, int in) { add_node(net, FV_OP_SIGMOID, in, -1); return last(net); }
int fv_net_tanh(fv_net *net, int in) { add_node(net, FV_OP_TANH, in, -1); return last(net); }

int fv_net_dropout(fv_net *net, int in, float p) {
    FV_ASSERT(p >= 0.0f && p < 1.0f);
    fv_node *nd = add_node(net, FV_OP_DROPOUT, in, -1);
    nd->p = p;
    return last(net);
}

int fv_net_flatten(fv_net *net, int in) {
    fv_node *nd = add_node(net, FV_OP_FLATTEN, in, -1);
    nd->oshape = (fv_shape){(int)fv_shape_size(nd->ishape), 1, 1};
    return last(net);
}

int fv_net_add(fv_net *net, int a, int b) {
    fv_node *nd = add_node(net, FV_OP_ADD, a, b);
    fv_shape sb = net->nodes[b].oshape;
    FV_ASSERT(sb.c == nd->ishape.c && sb.h == nd->ishape.h && sb.w == nd->ishape.w);
    return last(net);
}

int fv_net_upsample(fv_net *net, int in, int factor) {
    FV_ASSERT(factor >= 1);
    fv_node *nd = add_node(net, FV_OP_UPSAMPLE, in, -1);
    nd->k = factor;
    nd->oshape = (fv_shape){nd->ishape.c, nd->ishape.h * factor, nd->ishape.w * factor};
    return last(net);
}

/* ---- token ops (net.h, "Tokens") ---- */

int fv_net_tokens(fv_net *net, const char *name, int in) {
    fv_node *nd = add_node(net, FV_OP_TOKENS, in, -1);
    const int D = nd->ishape.c, T = 1 + nd->ishape.h * nd->ishape.w;
    nd->oshape = (fv_shape){T, D, 1};
    const int cd[3] = {1, 1, D}, pd[3] = {1, T, D};
    nd->w_off = add_tensor(net, name, "cls_token", 1, 3, cd);
    nd->b_off = add_tensor(net, name, "pos_embed", 1, 3, pd);
    return last(net);
}

int fv_net_layernorm(fv_net *net, const char *name, int in) {
    fv_node *nd = add_node(net, FV_OP_LAYERNORM, in, -1);
    const int D = nd->ishape.h * nd->ishape.w;
    nd->eps = 1e-5f;
    nd->w_off = add_tensor(net, name, "weight", 1, 1, &D);
    nd->b_off = add_tensor(net, name, "bias", 1, 1, &D);
    return last(net);
}

int fv_net_gelu(fv_net *net, int in) { add_node(net, FV_OP_GELU, in, -1); return last(net); }

int fv_net_token_linear(fv_net *net, const char *name, int in, int out_features, int bias) {
    fv_node *nd = add_node(net, FV_OP_TOKEN_LINEAR, in, -1);
    const int fin = nd->ishape.h * nd->ishape.w;
    FV_ASSERT(out_features >= 1);
    nd->bias = bias;
    nd->oshape = (fv_shape){nd->ishape.c, out_features, 1};
    const int wd[2] = {out_features, fin};
    nd->w_off = add_tensor(net, name, "weight", 1, 2, wd);
    if (bias) nd->b_off = add_tensor(net, name, "bias", 1, 1, &out_features);
    return last(net);
}

int fv_net_attention(fv_net *net, int in, int heads) {
    fv_node *nd = add_node(net, FV_OP_ATTENTION, in, -1);
    const int D3 = nd->ishape.h * nd->ishape.w;
    FV_ASSERT(heads >= 1 && D3 % 3 == 0 && (D3 / 3) % heads == 0);
    nd->heads = heads;
    nd->oshape = (fv_shape){nd->ishape.c, D3 / 3, 1};
    return last(net);
}

int fv_net_token_select(fv_net *net, int in, int t) {
    fv_node *nd = add_node(net, FV_OP_TOKEN_SELECT, in, -1);
    FV_ASSERT(t >= 0 && t < nd->ishape.c);
    nd->heads = t;
    nd->oshape = (fv_shape){nd->ishape.h * nd->ishape.w, 1, 1};
    return last(net);
}

void fv_net_init_params(fv_net *net, uint64_t seed) {
    fv_rng rng;
    fv_rng_seed(&rng, seed);
    float *p = net->params;
    for (int i = 1; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        if (nd->op == FV_OP_CONV2D || nd->op == FV_OP_LINEAR || nd->op == FV_OP_TOKEN_LINEAR) {
            size_t fan_in = nd->op == FV_OP_CONV2D ? (size_t)(nd->ishape.c / nd->groups) * nd->k * nd->k
                          : nd->op == FV_OP_LINEAR ? fv_shape_size(nd->ishape)
                                                   : (size_t)nd->ishape.h * nd->ishape.w;
            const int nout = nd->op == FV_OP_TOKEN_LINEAR ? nd->oshape.h : nd->oshape.c;
            size_t nw = (size_t)nout * fan_in;
            float bound = 1.0f / sqrtf((float)fan_in);
            for (size_t j = 0; j < nw; j++) p[nd->w_off + j] = (2.0f * fv_rng_uniform(&rng) - 1.0f) * bound;
            if (nd->bias)
                for (int j = 0; j < nout; j++) p[nd->b_off + j] = (2.0f * fv_rng_uniform(&rng) - 1.0f) * bound;
        } else if (nd->op == FV_OP_LAYERNORM) {
            for (int j = 0; j < nd->ishape.h * nd->ishape.w; j++) {
                p[nd->w_off + j] = 1.0f;
                p[nd->b_off + j] = 0.0f;
            }
        } else if (nd->op == FV_OP_TOKENS) {
            const int D = nd->oshape.h, T = nd->oshape.c;
            for (int j = 0; j < D; j++) p[nd->w_off + j] = 0.02f * (float)fv_rng_normal(&rng);
            for (int j = 0; j < T * D; j++) p[nd->b_off + j] = 0.02f * (float)fv_rng_normal(&rng);
        } else if (nd->op == FV_OP_BATCHNORM) {
            for (int j = 0; j < nd->ishape.c; j++) {
                p[nd->w_off + j] = 1.0f;
                p[nd->b_off + j] = 0.0f;
                p[nd->rm_off + j] = 0.0f;
                p[nd->rv_off + j] = 1.0f;
            }
        }
    }
}

void fv_net_finish(fv_net *net, uint64_t seed) {
    FV_ASSERT(!net->finished && net->n_nodes > 1);
    net->n_params = net->n_train + net->n_state;
    for (int i = 0; i < net->n_tensors; i++)
        if (!net->tensors[i].trainable) net->tensors[i].off += net->n_train;
    for (int i = 1; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        if (nd->op == FV_OP_BATCHNORM) {
            nd->rm_off += net->n_train;
            nd->rv_off += net->n_train;
        }
    }
    net->params = fv_calloc(net->n_params ? net->n_params : 1, sizeof(float));
    net->grads = fv_calloc(net->n_train ? net->n_train : 1, sizeof(float));
    net->finished = 1;
    for (int j = 1; j < net->n_nodes; j++) {
        const fv_node *nd = &net->nodes[j];
        net->nodes[nd->in0].last_reader = j;
        if (nd->in1 >= 0) net->nodes[nd->in1].last_reader = j;
    }
    for (int i = 1; i < net->n_nodes; i++) {
        const int j = fv_net_fusable_relu(net, i);
        net->nodes[i].fused_relu = j;
        if (j) net->nodes[j].fused_into = i;
    }
    net->fuse = 1;
    fv_net_init_params(net, seed);
    if (fv_net_set_conv(net, FV_CONV_AUTO, NULL) != 0) FV_DIE("FV_CONV_AUTO failed");
}

void fv_net_seed_dropout(fv_net *net, uint64_t seed) { fv_rng_seed(&net->rng, seed); }

fv_shape fv_net_output_shape(const fv_net *net) { return net->nodes[net->n_nodes - 1].oshape; }

static fv_conv2d_shape conv_shape(const fv_node *nd, int n) {
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->oshape.c, nd->k, nd->stride, nd->pad,
                         nd->groups);
    return s;
}

static const char *const CONV_PATHS[] = {"auto", "blas", "dnnl"};

const char *fv_conv_path_name(fv_conv_path path) {
    FV_ASSERT(path >= FV_CONV_AUTO && path <= FV_CONV_DNNL);
    return CONV_PATHS[path];
}

int fv_conv_path_parse(const char *word, fv_conv_path *path, fv_err *e) {
    for (int i = 0; word && i <= (int)FV_CONV_DNNL; i++)
        if (strcmp(word, CONV_PATHS[i]) == 0) {
            *path = (fv_conv_path)i;
            return 0;
        }
    return fv_err_set(e, "'%s' is not a convolution path (auto, blas or dnnl)", word ? word : "(null)");
}

#ifdef FEDVIM_HAVE_DNNL
/* Whether node nd can read a blocked input and produce a blocked output (a GAP only reads one; a
 * conv only through oneDNN: `able` says whether it has or can have a oneDNN conv). */
static int blk_op(const fv_node *nd, int able) {
    switch (nd->op) {
    case FV_OP_CONV2D: return able;
    case FV_OP_BATCHNORM:
    case FV_OP_RELU:
    case FV_OP_ADD:
    case FV_OP_GAP: return 1;
    default: return 0;
    }
}

/* fv_net_set_blocked's plan, after the conv nodes got their paths: mark the blocked outputs, give
 * the convs touching them a oneDNN conv (made here if the path's rule did not: dense, grouped and
 * depthwise alike; one oneDNN refuses keeps its tensors NCHW) and tell every oneDNN conv its
 * layouts. */
static void plan_blocked(fv_net *net) {
    int cand[FV_MAX_NODES] = {0}, made[FV_MAX_NODES] = {0};
    const int last = net->n_nodes - 1, B = net->blocked_on && net->dnnl ? fv_dnnl_block(net->dnnl) : 0;
    for (int i = 1; i <= last && B; i++) { /* tentative oneDNN convs */
        fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_CONV2D || nd->dnnl) continue;
        fv_err e;
        fv_conv2d_shape s = conv_shape(nd, 1);
        made[i] = (nd->dnnl = fv_dnnl_conv_new(net->dnnl, &s, nd->bias, &e)) != NULL;
    }
    for (int i = 1; i < last && B; i++) {
        const fv_node *nd = &net->nodes[i];
        cand[i] = nd->op != FV_OP_GAP && blk_op(nd, nd->dnnl != NULL) && nd->oshape.c % B == 0 && nd->consumers > 0;
    }
    for (int j = 1; j <= last; j++) { /* every reader able */
        const fv_node *nd = &net->nodes[j];
        if (!blk_op(nd, nd->dnnl != NULL)) {
            cand[nd->in0] = 0;
            if (nd->in1 >= 0) cand[nd->in1] = 0;
        }
    }
    for (int changed = 1; changed;) { /* a batch norm's, ReLU's or add's tensors alike */
        changed = 0;
        for (int j = 1; j <= last; j++) {
            const fv_node *nd = &net->nodes[j];
            if (nd->op != FV_OP_BATCHNORM && nd->op != FV_OP_RELU && nd->op != FV_OP_ADD) continue;
            const int all = cand[j] && cand[nd->in0] && (nd->in1 < 0 || cand[nd->in1]);
            const int any = cand[j] || cand[nd->in0] || (nd->in1 >= 0 && cand[nd->in1]);
            if (all || !any) continue;
            cand[j] = cand[nd->in0] = 0;
            if (nd->in1 >= 0) cand[nd->in1] = 0;
            changed = 1;
        }
    }
    for (int i = 0; i <= last; i++) net->nodes[i].blocked = cand[i] ? B : 0;
    for (int i = 1; i <= last; i++) {
        fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_CONV2D || !nd->dnnl) continue;
        const int ib = net->nodes[nd->in0].blocked, ob = nd->blocked;
        if (made[i] && !ib && !ob) fv_dnnl_conv_destroy(&nd->dnnl); /* not needed: back to the path's rule */
        else fv_dnnl_conv_set_layout(nd->dnnl, ib, ob);
    }
}
#endif

void fv_net_set_blocked(fv_net *net, int on) {
    FV_ASSERT(net->finished);
    net->blocked_on = on != 0;
    fv_err e;
    if (fv_net_set_conv(net, net->conv_path, &e) != 0) FV_DIE("fv_net_set_blocked: %s", e.msg);
}

int fv_net_blocked_count(const fv_net *net) {
    int k = 0;
    for (int i = 0; i < net->n_nodes; i++) k += net->nodes[i].blocked != 0;
    return k;
}

int fv_net_set_conv(fv_net *net, fv_conv_path path, fv_err *e) {
    FV_ASSERT(net->finished);
    FV_ASSERT(path >= FV_CONV_AUTO && path <= FV_CONV_DNNL);
    conv_release(net);
    for (int i = 0; i < net->n_nodes; i++) net->nodes[i].blocked = 0;
    net->conv_path = path;
#ifdef FEDVIM_HAVE_DNNL
    if (path == FV_CONV_BLAS) return 0;
    if (net->blocked_on && !net->dnnl) net->dnnl = fv_dnnl_new(&(fv_err){0});
    fv_err ignored, *ee = path == FV_CONV_DNNL ? e : &ignored;
    for (int i = 1; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_CONV2D) continue;
        fv_conv2d_shape s = conv_shape(nd, 1);
        if (path == FV_CONV_AUTO && !fv_dnnl_conv_prefer(&s)) continue;
        if (!net->dnnl && !(net->dnnl = fv_dnnl_new(ee))) break;
        if (!(nd->dnnl = fv_dnnl_conv_new(net->dnnl, &s, nd->bias, ee)) && path == FV_CONV_DNNL) break;
    }
    if (path == FV_CONV_AUTO) {
        plan_blocked(net);
        return 0;
    }
    for (int i = 1; i < net->n_nodes; i++)
        if (net->nodes[i].op == FV_OP_CONV2D && !net->nodes[i].dnnl) {
            conv_release(net);
            net->conv_path = FV_CONV_BLAS;
            return fv_err_prefix(e, "node %d: ", i);
        }
    plan_blocked(net);
    return 0;
#else
    if (path != FV_CONV_DNNL) return 0;
    net->conv_path = FV_CONV_BLAS;
    return fv_err_set(e, "this build has no oneDNN (libdnnl-dev; CMake option FEDVIM_DNNL)");
#endif
}

int fv_net_node_dnnl(const fv_net *net, int i) {
    FV_ASSERT(i >= 0 && i < net->n_nodes);
    return net->nodes[i].dnnl != NULL;
}

void fv_net_set_fuse(fv_net *net, int on) { net->fuse = on != 0; }

int fv_net_fusable_relu(const fv_net *net, int i) {
    FV_ASSERT(net->finished && i >= 0 && i < net->n_nodes);
    const fv_node *nd = &net->nodes[i];
    /* one read in all (an add of a node with itself counts twice), by the last reader */
    if ((nd->op != FV_OP_BATCHNORM && nd->op != FV_OP_ADD) || nd->consumers != 1) return 0;
    return net->nodes[nd->last_reader].op == FV_OP_RELU ? nd->last_reader : 0;
}

static void ensure_cap(fv_net *net, int n) {
    FV_ASSERT(net->finished && n >= 1);
    if (n <= net->cap) return;
    free_acts(net);
    size_t scratch = 0;
    for (int i = 0; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        size_t sz = (size_t)n * fv_shape_size(nd->oshape);
        if (i > 0) nd->out = fv_malloc(sz * sizeof(float));
        nd->dout = fv_malloc(sz * sizeof(float));
        if (nd->op == FV_OP_MAXPOOL) nd->argmax = fv_malloc(sz * sizeof(int32_t));
        if (nd->op == FV_OP_DROPOUT) nd->mask = fv_malloc(sz); /* ReLU masks: on the first RECORD */
        if (nd->op == FV_OP_LAYERNORM) nd->saved = fv_malloc(2 * (size_t)n * nd->ishape.c * sizeof(float));
        if (nd->op == FV_OP_ATTENTION) {
            const size_t T = (size_t)nd->ishape.c, att = (size_t)n * nd->heads * T * T;
            nd->saved = fv_malloc(att * sizeof(float));
            if (att > scratch) scratch = att; /* backward's softmax gradients */
        }
        if (nd->op == FV_OP_CONV2D) {
            fv_conv2d_shape s = conv_shape(nd, n);
            size_t f = fv_conv2d_scratch_floats(&s);
            if (f > scratch) scratch = f;
        }
    }
    net->scratch_floats = scratch;
    net->scratch = fv_malloc((scratch ? scratch : 1) * sizeof(float));
    net->input_grad = net->nodes[0].dout;
    net->cap = n;
    net->kinks_n = 0;
}

size_t fv_net_im2col_floats(const fv_net *net, int n) {
    size_t f = 0;
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        if (nd->op != FV_OP_CONV2D || nd->dnnl) continue;
        fv_conv2d_shape s = conv_shape(nd, n);
        f += fv_conv2d_cols_floats(&s);
    }
    return f;
}

void fv_net_set_kinks(fv_net *net, fv_kinks mode) { net->kinks = mode; }

size_t fv_node_kink_bytes(const fv_node *nd, int n) {
    const size_t osz = (size_t)n * fv_shape_size(nd->oshape);
    return nd->op == FV_OP_RELU ? osz : nd->op == FV_OP_MAXPOOL ? osz * sizeof(int32_t) : 0;
}

size_t fv_net_kinks_bytes(const fv_net *net, int n) {
    size_t b = 0;
    for (int i = 1; i < net->n_nodes; i++) b += fv_node_kink_bytes(&net->nodes[i], n);
    return b;
}

void fv_net_kinks_save(const fv_net *net, void *buf) {
    FV_ASSERT(net->kinks_n > 0 && net->last_n == net->kinks_n);
    uint8_t *d = buf;
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        const size_t kb = fv_node_kink_bytes(nd, net->kinks_n);
        if (kb) memcpy(d, nd->op == FV_OP_RELU ? (const void *)nd->mask : (const void *)nd->argmax, kb), d += kb;
    }
}

void fv_net_kinks_load(fv_net *net, const void *buf, int n) {
    ensure_cap(net, n);
    const uint8_t *s = buf;
    for (int i = 1; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        const size_t kb = fv_node_kink_bytes(nd, n);
        if (!kb) continue;
        if (nd->op == FV_OP_RELU && !nd->mask) nd->mask = fv_malloc((size_t)net->cap * fv_shape_size(nd->oshape));
        memcpy(nd->op == FV_OP_RELU ? (void *)nd->mask : (void *)nd->argmax, s, kb), s += kb;
    }
    net->kinks_n = n;
}

/* REPLAY forwards (fv_kinks): ReLU through the recorded mask, max pooling through the recorded
 * argmax (-1: a window entirely in the padding gives 0). */
static void relu_replay(float *out, const float *in, const uint8_t *mask, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float v = in[i]; /* loaded unconditionally so the select vectorises */
        out[i] = mask[i] ? v : 0.0f;
    }
}
static void relu_replay_backward(float *din, const float *dout, const uint8_t *mask, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        const float g = dout[i];
        din[i] += mask[i] ? g : 0.0f;
    }
}
static void relu_record(uint8_t *mask, const float *out, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) mask[i] = out[i] > 0.0f;
}
static void maxpool_replay(float *out, const int32_t *argmax, const float *in, int NC, int HW, int OHW) {
    for (int p = 0; p < NC; p++)
        for (int j = 0; j < OHW; j++) {
            int32_t a = argmax[(size_t)p * OHW + j];
            out[(size_t)p * OHW + j] = a >= 0 ? in[(size_t)p * HW + a] : 0.0f;
        }
}

const float *fv_net_forward(fv_net *net, const float *x, int n, int train) {
    ensure_cap(net, n);
    net->nodes[0].out = (float *)x; /* read-only: node 0 is never written */
    const fv_kinks kinks = net->kinks;
    if (kinks == FV_KINKS_REPLAY && net->kinks_n != n) FV_DIE("kink replay of batch %d without a recorded forward", n);
    float *p = net->params;
    const int fuse = net->fuse && train && kinks == FV_KINKS_FREE;
    for (int i = 1; i < net->n_nodes; i++) {
        fv_node *nd = &net->nodes[i];
        const float *in = net->nodes[nd->in0].out;
        size_t isz = (size_t)n * fv_shape_size(nd->ishape), osz = (size_t)n * fv_shape_size(nd->oshape);
        const double t0 = net->prof ? fv_now() : 0.0;
        switch (nd->op) {
        case FV_OP_CONV2D: {
            fv_conv2d_shape s = conv_shape(nd, n);
#ifdef FEDVIM_HAVE_DNNL
            if (nd->dnnl) {
                /* a training forward keeps its moved input for the backward's weight gradient */
                fv_dnnl_conv_forward(nd->dnnl, nd->out, in, p + nd->w_off, nd->bias ? p + nd->b_off : NULL, train, &s);
                break;
            }
#endif
            nd->cols_n = 0;
            if (net->keep_im2col && fv_conv2d_cols_floats(&s) > 0) {
                if (!nd->cols) {
                    fv_conv2d_shape sc = conv_shape(nd, net->cap);
                    nd->cols = fv_malloc(fv_conv2d_cols_floats(&sc) * sizeof(float));
                }
                nd->cols_n = n, nd->cols_key = fv_conv2d_cols_key(&s);
            }
            fv_conv2d_forward_cols(nd->out, nd->cols_n ? nd->cols : NULL, in, p + nd->w_off,
                                   nd->bias ? p + nd->b_off : NULL, net->scratch, &s);
            break;
        }
        case FV_OP_LINEAR:
            fv_linear_forward(nd->out, in, p + nd->w_off, nd->bias ? p + nd->b_off : NULL, n,
                              (int)fv_shape_size(nd->ishape), nd->oshape.c);
            break;
        case FV_OP_BATCHNORM:
            if (nd->blocked) {
                const int C = nd->ishape.c, HW = nd->ishape.h * nd->ishape.w, fr = fuse && nd->fused_relu;
                if (train)
                    fv_batchnorm_forward_train_blk(fr ? net->nodes[nd->fused_relu].out : nd->out, nd->bn_mean,
                                                   nd->bn_invstd, p + nd->rm_off, p + nd->rv_off, in, p + nd->w_off,
                                                   p + nd->b_off, n, C, HW, nd->blocked, nd->momentum, nd->eps, fr);
                else
                    fv_batchnorm_forward_eval_blk(nd->out, in, p + nd->w_off, p + nd->b_off, p + nd->rm_off,
                                                  p + nd->rv_off, n, C, HW, nd->blocked, nd->eps);
            } else if (fuse && nd->fused_relu)
                fv_batchnorm_forward_train_relu(net->nodes[nd->fused_relu].out, nd->bn_mean, nd->bn_invstd,
                                                p + nd->rm_off, p + nd->rv_off, in, p + nd->w_off, p + nd->b_off, n,
                                                nd->ishape.c, nd->ishape.h * nd->ishape.w, nd->momentum, nd->eps);
            else if (train)
                fv_batchnorm_forward_train(nd->out, nd->bn_mean, nd->bn_invstd, p + nd->rm_off, p + nd->rv_off,
                                           in, p + nd->w_off, p + nd->b_off, n, nd->ishape.c,
                                           nd->ishape.h * nd->ishape.w, nd->momentum, nd->eps);
            else
                fv_batchnorm_forward_eval(nd->out, in, p + nd->w_off, p + nd->b_off, p + nd->rm_off,
                                          p + nd->rv_off, n, nd->ishape.c, nd->ishape.h * nd->ishape.w, nd->eps);
            break;
        case FV_OP_MAXPOOL:
            if (kinks == FV_KINKS_REPLAY)
                maxpool_replay(nd->out, nd->argmax, in, n * nd->ishape.c, nd->ishape.h * nd->ishape.w,
                               nd->oshape.h * nd->oshape.w);
            else
                fv_maxpool_forward(nd->out, nd->argmax, in, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->k,
                                   nd->stride, nd->pad);
            break;
        case FV_OP_AVGPOOL:
            fv_avgpool_forward(nd->out, in, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->k, nd->stride, nd->pad);
            break;
        case FV_OP_GAP:
            if (net->nodes[nd->in0].blocked)
                fv_gap_forward_blk(nd->out, in, n, nd->ishape.c, nd->ishape.h * nd->ishape.w, net->nodes[nd->in0].blocked);
            else
                fv_gap_forward(nd->out, in, n, nd->ishape.c, nd->ishape.h * nd->ishape.w);
            break;
        case FV_OP_RELU:
            if (fuse && nd->fused_into) break; /* its batch norm or add wrote it */
            if (kinks == FV_KINKS_REPLAY) {
                relu_replay(nd->out, in, nd->mask, isz);
                break;
            }
            fv_relu_forward(nd->out, in, isz);
            if (kinks == FV_KINKS_RECORD) {
                if (!nd->mask) nd->mask = fv_malloc((size_t)net->cap * fv_shape_size(nd->oshape));
                relu_record(nd->mask, nd->out, isz);
            }
            break;
        case FV_OP_SIGMOID: fv_sigmoid_forward(nd->out, in, isz); break;
        case FV_OP_TANH: fv_tanh_forward(nd->out, in, isz); break;
        case FV_OP_DROPOUT:
            if (train && nd->p > 0.0f) fv_dropout_forward(nd->out, nd->mask, in, isz, nd->p, &net->rng);
            else memcpy(nd->out, in, isz * sizeof(float));
            break;
        case FV_OP_FLATTEN: memcpy(nd->out, in, isz * sizeof(float)); break;
        case FV_OP_ADD:
            if (fuse && nd->fused_relu) fv_add_relu_forward(net->nodes[nd->fused_relu].out, in, net->nodes[nd->in1].out, osz);
            else fv_add_forward(nd->out, in, net->nodes[nd->in1].out, osz);
            break;
        case FV_OP_UPSAMPLE: fv_upsample_forward(nd->out, in, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->k); break;
        case FV_OP_LAYERNORM: {
            const int R = n * nd->ishape.c;
            fv_layernorm_forward(nd->out, nd->saved, nd->saved + R, in, p + nd->w_off, p + nd->b_off, R,
                                 nd->ishape.h * nd->ishape.w, nd->eps);
            break;
        }
        case FV_OP_GELU: fv_gelu_forward(nd->out, in, isz); break;
        case FV_OP_TOKENS:
            fv_tokens_forward(nd->out, in, p + nd->w_off, p + nd->b_off, n, nd->ishape.c, nd->ishape.h * nd->ishape.w);
            break;
        case FV_OP_TOKEN_LINEAR:
            fv_linear_forward(nd->out, in, p + nd->w_off, nd->bias ? p + nd->b_off : NULL, n * nd->ishape.c,
                              nd->ishape.h * nd->ishape.w, nd->oshape.h);
            break;
        case FV_OP_ATTENTION:
            fv_attention_forward(nd->out, nd->saved, in, n, nd->ishape.c, nd->oshape.h, nd->heads);
            break;
        case FV_OP_TOKEN_SELECT:
            fv_token_select_forward(nd->out, in, n, nd->ishape.c, nd->ishape.h * nd->ishape.w, nd->heads);
            break;
        case FV_OP_INPUT: FV_DIE("input node in the middle of the graph");
        }
        if (net->prof) net->prof[i] += fv_now() - t0;
    }
    net->last_train = train;
    net->last_fused = fuse;
    net->last_n = n;
    net->last_replay = kinks == FV_KINKS_REPLAY;
    if (kinks != FV_KINKS_REPLAY) net->kinks_n = kinks == FV_KINKS_RECORD ? n : 0; /* FREE overwrote argmaxes */
    return net->nodes[net->n_nodes - 1].out;
}

/* Zero n floats at p: one memset, or one per thread on chunks of 256 KiB when p is large. */
static void zero_floats(float *p, size_t n) {
    const size_t chunk = (size_t)1 << 16, k = (n + chunk - 1) / chunk;
    if (k < 4) {
        memset(p, 0, n * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < k; c++) memset(p + c * chunk, 0, (c + 1 < k ? chunk : n - c * chunk) * sizeof(float));
}

/* Whether node j's backward writes the gradient of its input `slot` (0: in0, 1: in1) instead of
 * adding to it, so that buffer is never zeroed: when j is that input's only reader and j's kernel
 * has the "set" form (each element exactly what += into a zeroed buffer gives): a batch norm
 * (fv_batchnorm_backward_set), a conv through oneDNN (fv_dnnl_conv_backward's set_dinp) and an
 * add, either side (fv_add_relu_backward's set flags, set_or_acc). */
static int sets_input_grad(const fv_net *net, int j, int slot) {
    const fv_node *nd = &net->nodes[j];
    const int in = slot ? nd->in1 : nd->in0;
    if (in < 0 || net->nodes[in].consumers != 1) return 0;
    switch (nd->op) {
    case FV_OP_BATCHNORM: return slot == 0;
    case FV_OP_CONV2D: return slot == 0 && nd->dnnl != NULL;
    case FV_OP_ADD: return 1;
    default: return 0;
    }
}

/* Zero the output gradients of node j's inputs that j is the last reader of: j's backward is the
 * first to send them a gradient, so their buffers are zeroed just before (while the cache may
 * still hold them for j's accumulation), not all at once at the start. None is needed by a node
 * fused with its ReLU (its gradient is read from the ReLU's), nor by one whose only reader writes
 * its gradient (sets_input_grad). */
static void zero_input_grads(fv_net *net, int j, int n) {
    const fv_node *nd = &net->nodes[j];
    const int in[2] = {nd->in0, nd->in1};
    for (int k = 0; k < 2; k++) {
        if (in[k] < 0 || (k == 1 && in[1] == in[0]) || sets_input_grad(net, j, k)) continue;
        fv_node *src = &net->nodes[in[k]];
        if (src->last_reader != j || (net->last_fused && src->fused_relu)) continue;
        zero_floats(src->dout, (size_t)n * fv_shape_size(src->oshape));
    }
}

static void acc(float *dst, const float *src, size_t n) {
    /* simd: without it -O2 keeps this loop scalar (it cannot rule out overlap); dst and src are
     * different nodes' buffers, and an elementwise add has the same bits either way */
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* acc, or with set dst = 0 + src (the bits of acc into a zeroed dst: sets_input_grad). */
static void set_or_acc(float *dst, const float *src, size_t n, int set) {
    if (!set) {
        acc(dst, src, n);
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = 0.0f + src[i];
}

/* 1 when every node with parameters can skip its parameter gradient: conv nodes (both paths),
 * linear and token-linear nodes (fv_net_backward then leaves net->grads untouched). */
static int param_grad_skippable(const fv_net *net) {
    for (int i = 1; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        if (nd->op == FV_OP_BATCHNORM || nd->op == FV_OP_LAYERNORM || nd->op == FV_OP_TOKENS) return 0;
    }
    return 1;
}

void fv_net_backward(fv_net *net, const float *dout, int n) {
    FV_ASSERT(n == net->last_n && n <= net->cap);
    float *p = net->params, *g = net->grads;
    const double tz = net->prof ? fv_now() : 0.0;
    /* input-only: conv (im2col + OpenBLAS, or oneDNN) and linear nodes get NULL weight gradients;
     * other parameter nodes (their input gradient needs the same sums) still write theirs, into a
     * zeroed buffer as usual */
    const int skip = net->skip_param_grad;
    if (!skip || !param_grad_skippable(net)) memset(g, 0, net->n_train * sizeof(float));
    const int fuse = net->last_fused;
    fv_node *lastn = &net->nodes[net->n_nodes - 1];
    memcpy(lastn->dout, dout, (size_t)n * fv_shape_size(lastn->oshape) * sizeof(float));
    if (net->prof) net->prof[net->n_nodes] += fv_now() - tz;
    for (int i = net->n_nodes - 1; i >= 1; i--) {
        fv_node *nd = &net->nodes[i];
        const float *in = net->nodes[nd->in0].out;
        float *din = (nd->in0 == 0 && !net->want_input_grad) ? NULL : net->nodes[nd->in0].dout;
        size_t isz = (size_t)n * fv_shape_size(nd->ishape);
        if (net->backward_hook) net->backward_hook(net->backward_hook_ctx, net, i, n);
        const double tzi = net->prof ? fv_now() : 0.0;
        zero_input_grads(net, i, n);
        const double t0 = net->prof ? fv_now() : 0.0;
        if (net->prof) net->prof[net->n_nodes] += t0 - tzi;
        switch (nd->op) {
        case FV_OP_CONV2D: {
            fv_conv2d_shape s = conv_shape(nd, n);
#ifdef FEDVIM_HAVE_DNNL
            if (nd->dnnl) {
                fv_dnnl_conv_backward(nd->dnnl, din, sets_input_grad(net, i, 0), skip ? NULL : g + nd->w_off, nd->bias && !skip ? g + nd->b_off : NULL,
                                      nd->dout, in, p + nd->w_off, &s);
                break;
            }
#endif
            const float *cols = nd->cols_n == n && nd->cols_key == fv_conv2d_cols_key(&s) ? nd->cols : NULL;
            fv_conv2d_backward_cols(din, skip ? NULL : g + nd->w_off, nd->bias && !skip ? g + nd->b_off : NULL,
                                    nd->dout, in, cols, p + nd->w_off, net->scratch, &s);
            break;
        }
        case FV_OP_LINEAR:
            fv_linear_backward(din, skip ? NULL : g + nd->w_off, nd->bias && !skip ? g + nd->b_off : NULL, nd->dout,
                               in, p + nd->w_off, n, (int)fv_shape_size(nd->ishape), nd->oshape.c);
            break;
        case FV_OP_BATCHNORM:
            FV_ASSERT(net->last_train);
            if (!din) din = net->nodes[nd->in0].dout;
            {
                const fv_node *r = fuse && nd->fused_relu ? &net->nodes[nd->fused_relu] : NULL;
                const float *go = r ? r->dout : nd->dout;
                const int C = nd->ishape.c, HW = nd->ishape.h * nd->ishape.w;
                if (nd->blocked)
                    fv_batchnorm_backward_blk(din, sets_input_grad(net, i, 0), g + nd->w_off, g + nd->b_off, go,
                                              r ? r->out : NULL, in, nd->bn_mean, nd->bn_invstd, p + nd->w_off, n, C,
                                              HW, nd->blocked);
                else if (sets_input_grad(net, i, 0))
                    fv_batchnorm_backward_set(din, g + nd->w_off, g + nd->b_off, go, r ? r->out : NULL, in, nd->bn_mean,
                                              nd->bn_invstd, p + nd->w_off, n, C, HW);
                else if (r)
                    fv_batchnorm_backward_relu(din, g + nd->w_off, g + nd->b_off, go, r->out, in, nd->bn_mean,
                                               nd->bn_invstd, p + nd->w_off, n, C, HW);
                else
                    fv_batchnorm_backward(din, g + nd->w_off, g + nd->b_off, go, in, nd->bn_mean, nd->bn_invstd,
                                          p + nd->w_off, n, C, HW);
            }
            break;
        case FV_OP_LAYERNORM: {
            const int R = n * nd->ishape.c;
            fv_layernorm_backward(din, g + nd->w_off, g + nd->b_off, nd->dout, in, nd->saved, nd->saved + R,
                                  p + nd->w_off, R, nd->ishape.h * nd->ishape.w);
            break;
        }
        case FV_OP_TOKENS:
            fv_tokens_backward(din, g + nd->w_off, g + nd->b_off, nd->dout, n, nd->ishape.c,
                               nd->ishape.h * nd->ishape.w);
            break;
        case FV_OP_TOKEN_LINEAR:
            fv_linear_backward(din, skip ? NULL : g + nd->w_off, nd->bias && !skip ? g + nd->b_off : NULL, nd->dout,
                               in, p + nd->w_off, n * nd->ishape.c, nd->ishape.h * nd->ishape.w, nd->oshape.h);
            break;
        case FV_OP_ADD: {
            /* each input independently: either may be the input node, whose gradient is optional */
            float *din1 = nd->in1 != 0 || net->want_input_grad ? net->nodes[nd->in1].dout : NULL;
            const int set0 = sets_input_grad(net, i, 0), set1 = sets_input_grad(net, i, 1);
            if (fuse && nd->fused_relu) {
                const fv_node *r = &net->nodes[nd->fused_relu];
                fv_add_relu_backward(din, set0, din1, set1, r->dout, r->out, isz);
                break;
            }
            if (din) set_or_acc(din, nd->dout, isz, set0);
            if (din1) set_or_acc(din1, nd->dout, isz, set1);
            break;
        }
        default:
            /* parameter-free ops: nothing to do when nobody needs the input gradient */
            if (!din) break;
            switch (nd->op) {
            case FV_OP_MAXPOOL:
                fv_maxpool_backward(din, nd->dout, nd->argmax, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->k, nd->stride, nd->pad);
                break;
            case FV_OP_AVGPOOL:
                fv_avgpool_backward(din, nd->dout, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->k, nd->stride, nd->pad);
                break;
            case FV_OP_GAP:
                if (net->nodes[nd->in0].blocked)
                    fv_gap_backward_blk(din, nd->dout, n, nd->ishape.c, nd->ishape.h * nd->ishape.w,
                                        net->nodes[nd->in0].blocked);
                else
                    fv_gap_backward(din, nd->dout, n, nd->ishape.c, nd->ishape.h * nd->ishape.w);
                break;
            case FV_OP_RELU:
                if (fuse && nd->fused_into) break; /* its batch norm or add takes the gradient through it */
                if (net->last_replay) relu_replay_backward(din, nd->dout, nd->mask, isz);
                else fv_relu_backward(din, nd->dout, nd->out, isz);
                break;
            case FV_OP_SIGMOID: fv_sigmoid_backward(din, nd->dout, nd->out, isz); break;
            case FV_OP_TANH: fv_tanh_backward(din, nd->dout, nd->out, isz); break;
            case FV_OP_DROPOUT:
                if (net->last_train && nd->p > 0.0f) fv_dropout_backward(din, nd->dout, nd->mask, isz, nd->p);
                else acc(din, nd->dout, isz);
                break;
            case FV_OP_FLATTEN: acc(din, nd->dout, isz); break;
            case FV_OP_UPSAMPLE: fv_upsample_backward(din, nd->dout, n, nd->ishape.c, nd->ishape.h, nd->ishape.w, nd->k); break;
            case FV_OP_GELU: fv_gelu_backward(din, nd->dout, in, isz); break;
            case FV_OP_ATTENTION:
                fv_attention_backward(din, nd->dout, in, nd->saved, net->scratch, n, nd->ishape.c, nd->oshape.h,
                                      nd->heads);
                break;
            case FV_OP_TOKEN_SELECT:
                fv_token_select_backward(din, nd->dout, n, nd->ishape.c, nd->ishape.h * nd->ishape.w, nd->heads);
                break;
            default: FV_DIE("unhandled op %d", (int)nd->op);
            }
        }
        if (net->prof) net->prof[net->n_nodes + i] += fv_now() - t0;
    }
    if (net->backward_hook && net->want_input_grad) net->backward_hook(net->backward_hook_ctx, net, 0, n);
}

void fv_net_profile(fv_net *net, int on) {
    free(net->prof);
    net->prof = on ? fv_calloc(2 * (size_t)net->n_nodes, sizeof(double)) : NULL;
}

const fv_tensor *fv_net_tensor(const fv_net *net, const char *name) {
    for (int i = 0; i < net->n_tensors; i++)
        if (strcmp(net->tensors[i].name, name) == 0) return &net->tensors[i];
    return NULL;
}

static const char *op_name(fv_op op) {
    static const char *const names[] = {"input", "conv2d", "linear", "batchnorm", "maxpool", "avgpool", "gap",
                                        "relu", "sigmoid", "tanh", "dropout", "flatten", "add", "upsample",
                                        "layernorm", "gelu", "tokens", "token_linear", "attention",
                                        "token_select"};
    return names[op];
}

const char *fv_net_op_name(const fv_net *net, int i) {
    FV_ASSERT(i >= 0 && i < net->n_nodes);
    return op_name(net->nodes[i].op);
}

const char *fv_net_node_prefix(const fv_net *net, int i, char *buf, size_t len) {
    FV_ASSERT(i >= 0 && i < net->n_nodes && len > 0);
    const fv_node *nd = &net->nodes[i];
    if (nd->op != FV_OP_CONV2D && nd->op != FV_OP_LINEAR && nd->op != FV_OP_BATCHNORM && nd->op != FV_OP_LAYERNORM &&
        nd->op != FV_OP_TOKENS && nd->op != FV_OP_TOKEN_LINEAR)
        return NULL;
    for (int t = 0; t < net->n_tensors; t++) {
        const fv_tensor *tn = &net->tensors[t];
        if (!tn->trainable || tn->off != nd->w_off) continue;
        const char *dot = strrchr(tn->name, '.');
        size_t k = dot ? (size_t)(dot - tn->name) : 0; /* "cls_token": top level, prefix "" */
        if (k >= len) k = len - 1;
        memcpy(buf, tn->name, k);
        buf[k] = '\0';
        return buf;
    }
    return NULL;
}

void fv_net_print(const fv_net *net, FILE *f) {
    for (int i = 0; i < net->n_nodes; i++) {
        const fv_node *nd = &net->nodes[i];
        fprintf(f, "%3d %-9s in=%d%s%s -> %dx%dx%d\n", i, op_name(nd->op), nd->in0, nd->in1 >= 0 ? "," : "",
                nd->in1 >= 0 ? "+" : "", nd->oshape.c, nd->oshape.h, nd->oshape.w);
    }
    fprintf(f, "parameters: %zu trainable, %zu buffer floats\n", net->n_train, net->n_state);
}
