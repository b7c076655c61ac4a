/* conv_dnnl.c: see conv_dnnl.h. oneDNN 2.6's C API: op descriptors, primitive descriptors with
 * "any" layouts, reorders between NCHW and what the kernels chose, user-managed scratchpads (one
 * buffer in the fv_dnnl, grown on demand, instead of an allocation per call).
 *
 * Per conv node and batch size (struct entry): the forward, backward-data and backward-weights
 * primitives, and the moves around them (struct reorder): NCHW input / weights / output-gradient
 * into each primitive's layout, its output back to NCHW; the gradient moves add into dinp and dw
 * (the accumulate convention of layers.h: += in fedvim's own transposes, a sum post-op on
 * oneDNN's reorders). A move between equal layouts is skipped, except those that add. The
 * activation-sized layouts share the fv_dnnl's buffers (nodes run one at a time); the
 * weight-sized ones belong to the entry.
 */
#include "nn/conv_dnnl.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Batch sizes whose primitives a node keeps: the training batch, the last partial batch of an
 * epoch, the evaluation batch, and one spare. The least recently used is replaced. */
#define DNNL_ENTRIES 4

/* A oneDNN call that cannot fail once the shape was accepted by fv_dnnl_conv_new (only out of
 * memory is left, and that aborts everywhere in fedvim). */
#define DN(call)                                                                                   \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) FV_DIE("oneDNN: %s: %s", #call, dnnl_status2str(st_));           \
    } while (0)

/* The fv_dnnl's activation-sized buffers (one user at a time: the node running now). */
enum { BUF_SRC, BUF_DST, BUF_DSRC, BUF_PAD, N_BUFS };

struct fv_dnnl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    float *buf[N_BUFS];
    size_t cap[N_BUFS]; /* bytes */
    int block;          /* fv_dnnl_block's answer; -1: not asked yet */
};

/* One primitive with the layouts of its arguments (fixed by oneDNN at creation). */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src, wei, dst; /* fwd: src, weights, dst; bwd-data: diff_src, weights,
                                         diff_dst; bwd-weights: src, diff_weights, diff_dst */
    size_t pad_bytes;                 /* its scratchpad */
} prim;

/* A move of an activation or weight tensor from one layout to another: nothing (equal layouts,
 * no sum), a plain add (equal layouts, sum), fedvim's own transpose between NCHW and
 * channel-blocked nChw8c / nChw16c (oneDNN 2.6's blocked-to-NCHW reorder ran 8-15x slower than
 * its NCHW-to-blocked one on ResNet-20's 16-channel maps here), or a oneDNN reorder (weights). */
typedef enum { MOVE_NONE, MOVE_ADD, MOVE_TO_BLOCKED, MOVE_FROM_BLOCKED, MOVE_ONEDNN } move_kind;

/* How a move meets its destination: overwrite it, add into it, or write 0 + value (the bits of
 * an add into a zeroed destination: backward data's "set" form, fv_dnnl_conv_backward). */
enum { SUM_NONE, SUM_ADD, SUM_SET };

typedef struct {
    move_kind kind;
    int sum;                /* SUM_NONE, SUM_ADD (add into the destination) or SUM_SET */
    int n, c, cb, block;    /* NCHW dims and channel blocks of the activation moves */
    size_t plane;           /* H * W; for MOVE_ADD, all floats of the tensor */
    dnnl_primitive_t prim;  /* MOVE_ONEDNN */
} reorder;

typedef struct {
    int n, threads;     /* batch size and OpenMP thread count it was made for; n 0: empty */
    unsigned long used; /* last use, for replacement */
    dnnl_memory_desc_t src, wei, dst, bias; /* the plain layouts: NCHW, (g)oihw, x */
    prim fwd, bwd_d, bwd_w;
    reorder src_f, wei_f, dst_f;              /* forward: inputs in, output out */
    reorder ddst_d, wei_d, dsrc_d;            /* backward data: dout and w in, dinp += out */
    reorder src_w, ddst_w, dwei_w;            /* backward weights: inp and dout in, dw += out */
    float *wbuf, *dwbuf, *dbias;              /* weights in fwd / bwd-data layout, dw in its own, db */
    float *src_keep;         /* a keep_src forward's input in fwd.src's layout, for backward weights */
    const float *src_keep_of; /* the input it was moved from; NULL: none kept */
} entry;

struct fv_dnnl_conv {
    fv_dnnl *d;
    fv_conv2d_shape s; /* per-sample; s.N unused */
    int bias;
    int in_block, out_block; /* the caller's activation layouts: 0 NCHW, B nChw<B>c */
    unsigned long clock;
    entry e[DNNL_ENTRIES];
};

/* ---- the rule of FV_CONV_AUTO ---- */

/* Derived from timings on the 2-core AVX-512 EPYC development box (experiments/bench/README.md,
 * "CPU convolutions"): each conv shape of the model zoo alone (forward + backward, both paths
 * alternating, best of 40, one thread), then whole models (bench train, 2 threads, alternating,
 * load 7-12):
 *  - dense convs with a kernel wider than 1 on inputs of 16 channels or more (ResNet-20's and
 *    VGG-11's 3x3): oneDNN 1.7-3.5x faster alone; ResNet-20 trains 1.3-1.4x faster with them;
 *  - the same with 1-6 input channels (the 3-channel stems, LeNet-5's 5x5; oneDNN then reads
 *    NCHW input and pads 6 output channels to 16): 1.1-1.5x alone, but slower in whole models at
 *    2 threads on the loaded box (LeNet-5 0.7-0.8x, the MobileNet stem about 0.75x): a oneDNN
 *    conv runs 8-11 OpenMP regions per training step (layout moves, weight reorders, kernels
 *    whose weight-gradient reduction waits at barriers) against fedvim's 2, and each waits for a
 *    thread the machine may have descheduled; a small conv has too little work to pay for that;
 *  - 1x1 and depthwise convs, which fedvim runs per image (one GEMM on NCHW data) or per plane
 *    (a direct loop): oneDNN 0.4-1.1x alone on maps of 16x16 and more, 1.5-3.4x on MobileNet's
 *    8x8 maps alone but no faster inside the model;
 *  - other grouped convs (none in the zoo): not measured. */
#define PREFER_MIN_CHANNELS 8 /* input channels: one 8-wide (AVX2) block at least */

int fv_dnnl_conv_prefer(const fv_conv2d_shape *s) {
    return s->groups == 1 && s->R > 1 && s->C >= PREFER_MIN_CHANNELS;
}

/* ---- engine and buffers ---- */

fv_dnnl *fv_dnnl_new(fv_err *e) {
    fv_dnnl *d = fv_calloc(1, sizeof *d);
    d->block = -1;
    dnnl_status_t st = dnnl_engine_create(&d->eng, dnnl_cpu, 0);
    if (st == dnnl_success) st = dnnl_stream_create(&d->stream, d->eng, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        fv_err_set(e, "oneDNN: cannot create a CPU engine and stream: %s", dnnl_status2str(st));
        fv_dnnl_destroy(&d);
        return NULL;
    }
    return d;
}

void fv_dnnl_destroy(fv_dnnl **pd) {
    if (!pd || !*pd) return;
    fv_dnnl *d = *pd;
    if (d->stream) dnnl_stream_destroy(d->stream);
    if (d->eng) dnnl_engine_destroy(d->eng);
    for (int i = 0; i < N_BUFS; i++) free(d->buf[i]);
    free(d);
    *pd = NULL;
}

/* Buffer i with at least `bytes` bytes (grown, never shrunk). */
static float *buf(fv_dnnl *d, int i, size_t bytes) {
    if (bytes > d->cap[i]) {
        free(d->buf[i]);
        d->buf[i] = fv_malloc(bytes);
        d->cap[i] = bytes;
    }
    return d->buf[i];
}

/* ---- descriptors ---- */

static void md_plain(dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    DN(dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, tag));
}

static dnnl_format_tag_t act_tag(int block) {
    return block == 16 ? dnnl_nChw16c : block == 8 ? dnnl_nChw8c : dnnl_nchw;
}

/* The caller's layouts of entry x for batch size n: activations NCHW or channel-blocked (the
 * conv's in_block / out_block), weights (g)oihw, bias x. */
static void plain_mds(entry *x, const fv_conv2d_shape *s, int n, int bias, int in_block, int out_block) {
    const int G = s->groups;
    dnnl_dims_t src = {n, s->C, s->H, s->W}, dst = {n, s->K, s->OH, s->OW}, b = {s->K};
    md_plain(&x->src, 4, src, act_tag(in_block));
    md_plain(&x->dst, 4, dst, act_tag(out_block));
    if (G == 1) {
        dnnl_dims_t w = {s->K, s->C, s->R, s->R};
        md_plain(&x->wei, 4, w, dnnl_oihw);
    } else {
        dnnl_dims_t w = {G, s->K / G, s->C / G, s->R, s->R};
        md_plain(&x->wei, 5, w, dnnl_goihw);
    }
    if (bias) md_plain(&x->bias, 1, b, dnnl_x);
    else memset(&x->bias, 0, sizeof x->bias);
}

/* "any" twins of the plain layouts, for oneDNN to choose. */
static dnnl_memory_desc_t md_any(const dnnl_memory_desc_t *plain) {
    dnnl_memory_desc_t md;
    DN(dnnl_memory_desc_init_by_tag(&md, plain->ndims, plain->dims, dnnl_f32, dnnl_format_tag_any));
    return md;
}

/* The three op descriptors of shape s on the "any" twins of x's plain layouts (oneDNN chooses;
 * held to plain NCHW it falls back to im2col + GEMM kernels, which ran ResNet-20's convs 3x
 * (forward) to 10x (weight gradient) slower than the direct ones on blocked data here). */
static void op_descs(dnnl_convolution_desc_t *f, dnnl_convolution_desc_t *bd, dnnl_convolution_desc_t *bw,
                     const fv_conv2d_shape *s, const entry *x, int bias, dnnl_status_t *st) {
    dnnl_memory_desc_t src = md_any(&x->src), wei = md_any(&x->wei), dst = md_any(&x->dst), b = x->bias;
    const dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
    const dnnl_memory_desc_t *bp = bias ? &b : NULL;
    st[0] = dnnl_convolution_forward_desc_init(f, dnnl_forward_training, dnnl_convolution_direct, &src, &wei, bp,
                                               &dst, strides, pad, pad);
    st[1] = dnnl_convolution_backward_data_desc_init(bd, dnnl_convolution_direct, &src, &wei, &dst, strides, pad,
                                                     pad);
    st[2] = dnnl_convolution_backward_weights_desc_init(bw, dnnl_convolution_direct, &src, &wei, bp, &dst,
                                                        strides, pad, pad);
}

/* A primitive descriptor with a user-managed scratchpad. */
static dnnl_status_t pd_create(dnnl_primitive_desc_t *pd, const dnnl_convolution_desc_t *od, fv_dnnl *d,
                               const_dnnl_primitive_desc_t hint) {
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr));
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_status_t st = dnnl_primitive_desc_create(pd, od, attr, d->eng, hint);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Fill p from pd (which it keeps alive only through the primitive): the layouts of its three
 * tensor arguments and the scratchpad size. (DNNL_VERBOSE=1 names the kernels oneDNN picked.) */
static void prim_from(prim *p, dnnl_primitive_desc_t pd, int a_src, int a_wei, int a_dst) {
    p->src = *dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a_src);
    p->wei = *dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a_wei);
    p->dst = *dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a_dst);
    p->pad_bytes = dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    DN(dnnl_primitive_create(&p->prim, pd));
}

/* 1 when md is the channel-blocked twin (nChw<block>c) of the plain 4-D layout plain. */
static int is_blocked_of(const dnnl_memory_desc_t *md, const dnnl_memory_desc_t *plain, int block) {
    if (plain->ndims != 4) return 0;
    dnnl_memory_desc_t b;
    DN(dnnl_memory_desc_init_by_tag(&b, 4, plain->dims, dnnl_f32, block == 16 ? dnnl_nChw16c : dnnl_nChw8c));
    return dnnl_memory_desc_equal(md, &b);
}

/* The move from layout `from` to `to`; with sum != 0 it adds into the destination. One of the two
 * is the plain layout of the tensor (plain). */
static void reorder_make(reorder *r, fv_dnnl *d, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                         const dnnl_memory_desc_t *plain, int sum) {
    memset(r, 0, sizeof *r);
    r->sum = sum;
    if (dnnl_memory_desc_equal(from, to)) {
        r->kind = sum ? MOVE_ADD : MOVE_NONE;
        r->plane = dnnl_memory_desc_get_size(plain) / sizeof(float); /* MOVE_ADD: all of it */
        return;
    }
    const dnnl_memory_desc_t *other = dnnl_memory_desc_equal(from, plain) ? to : from;
    dnnl_memory_desc_t nchw;
    DN(dnnl_memory_desc_init_by_tag(&nchw, 4, plain->dims, dnnl_f32, dnnl_nchw));
    for (int block = 8; block <= 16 && plain->ndims == 4 && dnnl_memory_desc_equal(plain, &nchw); block += 8) {
        if (!is_blocked_of(other, plain, block)) continue;
        r->kind = other == to ? MOVE_TO_BLOCKED : MOVE_FROM_BLOCKED;
        r->n = (int)plain->dims[0], r->c = (int)plain->dims[1], r->block = block;
        r->cb = (r->c + block - 1) / block;
        r->plane = (size_t)plain->dims[2] * (size_t)plain->dims[3];
        return;
    }
    r->kind = MOVE_ONEDNN;
    dnnl_primitive_attr_t attr = NULL;
    if (sum) {
        dnnl_post_ops_t po;
        DN(dnnl_primitive_attr_create(&attr));
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_sum(po, 1.0f));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    DN(dnnl_reorder_primitive_desc_create(&pd, from, d->eng, to, d->eng, attr));
    DN(dnnl_primitive_create(&r->prim, pd));
    dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
}

static void entry_free(entry *x) {
    dnnl_primitive_t ps[] = {x->fwd.prim,  x->bwd_d.prim,  x->bwd_w.prim,  x->src_f.prim, x->wei_f.prim,
                             x->dst_f.prim, x->ddst_d.prim, x->wei_d.prim, x->dsrc_d.prim, x->src_w.prim,
                             x->ddst_w.prim, x->dwei_w.prim};
    /* (the prim of a move that is not MOVE_ONEDNN is NULL) */
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        if (ps[i]) dnnl_primitive_destroy(ps[i]);
    free(x->wbuf);
    free(x->dwbuf);
    free(x->dbias);
    free(x->src_keep);
    memset(x, 0, sizeof *x);
}

/* Create everything of entry x for batch size n; returns a oneDNN status (success, or the first
 * op or primitive descriptor oneDNN refused, x then empty). */
static dnnl_status_t entry_make(entry *x, fv_dnnl *d, const fv_conv2d_shape *s, int bias, int n, int in_block,
                                int out_block) {
    memset(x, 0, sizeof *x);
    plain_mds(x, s, n, bias, in_block, out_block);
    dnnl_convolution_desc_t of, obd, obw;
    dnnl_status_t st[3];
    op_descs(&of, &obd, &obw, s, x, bias, st);
    for (int i = 0; i < 3; i++)
        if (st[i] != dnnl_success) return st[i];
    dnnl_primitive_desc_t pf = NULL, pbd = NULL, pbw = NULL;
    dnnl_status_t r = pd_create(&pf, &of, d, NULL);
    if (r == dnnl_success) r = pd_create(&pbd, &obd, d, pf);
    if (r == dnnl_success) r = pd_create(&pbw, &obw, d, pf);
    if (r == dnnl_success) {
        prim_from(&x->fwd, pf, DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST);
        prim_from(&x->bwd_d, pbd, DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST);
        prim_from(&x->bwd_w, pbw, DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST);
        reorder_make(&x->src_f, d, &x->src, &x->fwd.src, &x->src, SUM_NONE);
        reorder_make(&x->wei_f, d, &x->wei, &x->fwd.wei, &x->wei, SUM_NONE);
        reorder_make(&x->dst_f, d, &x->fwd.dst, &x->dst, &x->dst, SUM_NONE);
        reorder_make(&x->ddst_d, d, &x->dst, &x->bwd_d.dst, &x->dst, SUM_NONE);
        reorder_make(&x->wei_d, d, &x->wei, &x->bwd_d.wei, &x->wei, SUM_NONE);
        reorder_make(&x->dsrc_d, d, &x->bwd_d.src, &x->src, &x->src, SUM_ADD);
        reorder_make(&x->src_w, d, &x->src, &x->bwd_w.src, &x->src, SUM_NONE);
        reorder_make(&x->ddst_w, d, &x->dst, &x->bwd_w.dst, &x->dst, SUM_NONE);
        reorder_make(&x->dwei_w, d, &x->bwd_w.wei, &x->wei, &x->wei, SUM_ADD);
        size_t wb = dnnl_memory_desc_get_size(&x->fwd.wei), wd = dnnl_memory_desc_get_size(&x->bwd_d.wei);
        x->wbuf = fv_malloc(wb > wd ? wb : wd);
        x->dwbuf = fv_malloc(dnnl_memory_desc_get_size(&x->bwd_w.wei));
        x->dbias = fv_calloc((size_t)s->K, sizeof(float));
        x->n = n;
        x->threads = omp_get_max_threads();
    }
    if (pf) dnnl_primitive_desc_destroy(pf);
    if (pbd) dnnl_primitive_desc_destroy(pbd);
    if (pbw) dnnl_primitive_desc_destroy(pbw);
    return r;
}

fv_dnnl_conv *fv_dnnl_conv_new(fv_dnnl *d, const fv_conv2d_shape *s, int bias, fv_err *e) {
    FV_ASSERT(d && s);
    fv_dnnl_conv *c = fv_calloc(1, sizeof *c);
    c->d = d;
    c->s = *s;
    c->bias = bias;
    /* Check the shape with batch size 1: descriptors only, no kernels generated. */
    entry x;
    memset(&x, 0, sizeof x);
    plain_mds(&x, s, 1, bias, 0, 0);
    dnnl_convolution_desc_t of, obd, obw;
    dnnl_status_t st[3];
    op_descs(&of, &obd, &obw, s, &x, bias, st);
    dnnl_status_t r = st[0] != dnnl_success ? st[0] : st[1] != dnnl_success ? st[1] : st[2];
    dnnl_primitive_desc_t pd[3] = {NULL, NULL, NULL};
    if (r == dnnl_success) r = pd_create(&pd[0], &of, d, NULL);
    if (r == dnnl_success) r = pd_create(&pd[1], &obd, d, pd[0]);
    if (r == dnnl_success) r = pd_create(&pd[2], &obw, d, pd[0]);
    for (int i = 0; i < 3; i++)
        if (pd[i]) dnnl_primitive_desc_destroy(pd[i]);
    if (r != dnnl_success) {
        fv_err_set(e, "oneDNN has no convolution for C %d, %dx%d, K %d, R %d, stride %d, pad %d, groups %d: %s",
                   s->C, s->H, s->W, s->K, s->R, s->stride, s->pad, s->groups, dnnl_status2str(r));
        free(c);
        return NULL;
    }
    return c;
}

void fv_dnnl_conv_destroy(fv_dnnl_conv **pc) {
    if (!pc || !*pc) return;
    for (int i = 0; i < DNNL_ENTRIES; i++) entry_free(&(*pc)->e[i]);
    free(*pc);
    *pc = NULL;
}

int fv_dnnl_block(fv_dnnl *d) {
    if (d->block >= 0) return d->block;
    d->block = 0;
    /* a ResNet-20 stage-1 shape at a small batch: what oneDNN picks for 16 channels */
    fv_conv2d_shape s;
    fv_conv2d_shape_init(&s, 1, 16, 8, 8, 16, 3, 1, 1, 1);
    entry x;
    memset(&x, 0, sizeof x);
    plain_mds(&x, &s, 8, 0, 0, 0);
    dnnl_convolution_desc_t of, obd, obw;
    dnnl_status_t st[3];
    op_descs(&of, &obd, &obw, &s, &x, 0, st);
    dnnl_primitive_desc_t pd = NULL;
    if (st[0] == dnnl_success && pd_create(&pd, &of, d, NULL) == dnnl_success) {
        const dnnl_memory_desc_t *dst = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_DST);
        const dnnl_memory_desc_t *src = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, DNNL_ARG_SRC);
        for (int b = 16; b >= 8 && !d->block; b -= 8)
            if (is_blocked_of(dst, &x.dst, b) && is_blocked_of(src, &x.src, b)) d->block = b;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    return d->block;
}

void fv_dnnl_conv_set_layout(fv_dnnl_conv *c, int in_block, int out_block) {
    FV_ASSERT((in_block == 0 || in_block == 8 || in_block == 16) && (out_block == 0 || out_block == 8 || out_block == 16));
    FV_ASSERT(c->s.C % (in_block ? in_block : 1) == 0 && c->s.K % (out_block ? out_block : 1) == 0);
    if (c->in_block == in_block && c->out_block == out_block) return;
    for (int i = 0; i < DNNL_ENTRIES; i++) entry_free(&c->e[i]);
    c->in_block = in_block, c->out_block = out_block;
}

/* The entry for batch size n under the current thread count, made if needed. */
static entry *entry_for(fv_dnnl_conv *c, int n) {
    FV_ASSERT(n >= 1);
    const int t = omp_get_max_threads();
    entry *old = &c->e[0];
    c->clock++;
    for (int i = 0; i < DNNL_ENTRIES; i++) {
        entry *x = &c->e[i];
        if (x->n == n && x->threads == t) {
            x->used = c->clock;
            return x;
        }
        if (x->used < old->used) old = x;
    }
    entry_free(old);
    dnnl_status_t st = entry_make(old, c->d, &c->s, c->bias, n, c->in_block, c->out_block);
    if (st != dnnl_success) FV_DIE("oneDNN refused a conv shape it accepted at batch size 1: %s", dnnl_status2str(st));
    old->used = c->clock;
    return old;
}

static void check_shape(const fv_dnnl_conv *c, const fv_conv2d_shape *s) {
    const fv_conv2d_shape *a = &c->s;
    FV_ASSERT(a->C == s->C && a->H == s->H && a->W == s->W && a->K == s->K && a->R == s->R &&
              a->stride == s->stride && a->pad == s->pad && a->groups == s->groups);
}

/* ---- execution ---- */

static dnnl_memory_t mem(fv_dnnl *d, const dnnl_memory_desc_t *md, const void *p) {
    dnnl_memory_t m;
    DN(dnnl_memory_create(&m, md, d->eng, (void *)p));
    return m;
}

/* Run a primitive on up to 5 (arg, layout, pointer) triples plus its scratchpad. */
typedef struct {
    int arg;
    const dnnl_memory_desc_t *md;
    const void *p;
} arg_t;

static void run(fv_dnnl *d, dnnl_primitive_t p, size_t pad_bytes, const arg_t *a, int na) {
    dnnl_exec_arg_t args[6];
    FV_ASSERT(na <= 5);
    for (int i = 0; i < na; i++) args[i] = (dnnl_exec_arg_t){a[i].arg, mem(d, a[i].md, a[i].p)};
    int n = na;
    if (pad_bytes) {
        dnnl_memory_desc_t pmd;
        dnnl_dims_t dim = {(dnnl_dim_t)pad_bytes};
        DN(dnnl_memory_desc_init_by_tag(&pmd, 1, dim, dnnl_u8, dnnl_x));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem(d, &pmd, buf(d, BUF_PAD, pad_bytes))};
    }
    DN(dnnl_primitive_execute(p, d->stream, n, args));
    for (int i = 0; i < n; i++) dnnl_memory_destroy(args[i].memory);
}

/* Rows of a transpose tile: the tile (block x TILE floats each side) stays in L1. */
#define TILE 64
/* Moves of fewer floats run on one thread: each OpenMP region costs a fork and a join, and on a
 * loaded machine a join waits for a descheduled thread (LeNet-5's moves are 0.1-0.8 M floats). */
#define MOVE_PAR_MIN ((size_t)1 << 20)

static int move_threads(size_t floats) { return floats >= MOVE_PAR_MIN ? omp_get_max_threads() : 1; }

/* The transposes below move 4 channels x 4 pixels at a time through SSE registers (x86-64 always
 * has SSE2): a 4 x 4 block is read as four 4-pixel rows of consecutive channels, transposed in
 * registers, and written as four 4-channel rows (to_blocked), or the other way round. Channels of
 * a block past C (padding) and pixels past the last multiple of 4 take the scalar loop. Pure data
 * movement: the bits are those of the scalar loops (test_conv_dnnl checks the moves exactly).
 * Measured on ResNet-20's 16 x 32 x 28 x 28 maps, one thread: 3-5x faster than the scalar loops,
 * which wrote one float per 64-byte line in turn. */
#if defined(__SSE2__)
#include <xmmintrin.h>
#define FV_T4 1
#else
#define FV_T4 0
#endif

/* One tile of to_blocked: channels [c0, c0 + B) of image plane src_n (NCHW), pixels [p0, p1), into
 * o (the block's [P][B] floats). */
static void to_blocked_tile(float *o, const float *src_n, int c0, int B, int C, size_t P, size_t p0, size_t p1) {
    int ci = 0;
#if FV_T4
    const size_t p4 = p0 + ((p1 - p0) & ~(size_t)3);
    for (; ci + 4 <= B && c0 + ci + 4 <= C; ci += 4) {
        const float *i = src_n + (size_t)(c0 + ci) * P;
        for (size_t p = p0; p < p4; p += 4) {
            __m128 r0 = _mm_loadu_ps(i + p), r1 = _mm_loadu_ps(i + P + p), r2 = _mm_loadu_ps(i + 2 * P + p),
                   r3 = _mm_loadu_ps(i + 3 * P + p);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(o + p * B + ci, r0);
            _mm_storeu_ps(o + (p + 1) * B + ci, r1);
            _mm_storeu_ps(o + (p + 2) * B + ci, r2);
            _mm_storeu_ps(o + (p + 3) * B + ci, r3);
        }
        for (int k = 0; k < 4; k++)
            for (size_t p = p4; p < p1; p++) o[p * B + ci + k] = i[k * P + p];
    }
#endif
    for (; ci < B; ci++) {
        const int c = c0 + ci;
        if (c >= C) {
            for (size_t p = p0; p < p1; p++) o[p * B + ci] = 0.0f;
            continue;
        }
        const float *i = src_n + (size_t)c * P;
        for (size_t p = p0; p < p1; p++) o[p * B + ci] = i[p];
    }
}

/* dst[n][cb][p][ci] = src[n][cb*B+ci][p], zero for the padding channels c >= C. */
static void to_blocked(float *dst, const float *src, const reorder *r) {
    const int B = r->block, C = r->c, CB = r->cb;
    const size_t P = r->plane;
#pragma omp parallel for collapse(2) schedule(static) num_threads(move_threads((size_t)r->n * CB * B * P))
    for (int n = 0; n < r->n; n++)
        for (int cb = 0; cb < CB; cb++) {
            float *o = dst + ((size_t)n * CB + cb) * P * B;
            for (size_t p0 = 0; p0 < P; p0 += TILE)
                to_blocked_tile(o, src + (size_t)n * C * P, cb * B, B, C, P, p0, p0 + TILE < P ? p0 + TILE : P);
        }
}

/* One tile of from_blocked: the block's [P][B] floats i, pixels [p0, p1), into channels
 * [c0, min(c0 + B, C)) of image plane dst_n (NCHW): copied (sum 0), added (SUM_ADD) or written as
 * 0 + value (SUM_SET: the bits of an add into a zeroed destination, which then needs no zeroing). */
static void from_blocked_tile(float *dst_n, const float *i, int c0, int B, int C, size_t P, size_t p0, size_t p1,
                              int sum) {
    int ci = 0;
#if FV_T4
    const size_t p4 = p0 + ((p1 - p0) & ~(size_t)3);
    for (; ci + 4 <= B && c0 + ci + 4 <= C; ci += 4) {
        float *o = dst_n + (size_t)(c0 + ci) * P;
        for (size_t p = p0; p < p4; p += 4) {
            __m128 r0 = _mm_loadu_ps(i + p * B + ci), r1 = _mm_loadu_ps(i + (p + 1) * B + ci),
                   r2 = _mm_loadu_ps(i + (p + 2) * B + ci), r3 = _mm_loadu_ps(i + (p + 3) * B + ci);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            if (sum) {
                const int set = sum == SUM_SET;
                const __m128 z = _mm_setzero_ps();
                r0 = _mm_add_ps(set ? z : _mm_loadu_ps(o + p), r0);
                r1 = _mm_add_ps(set ? z : _mm_loadu_ps(o + P + p), r1);
                r2 = _mm_add_ps(set ? z : _mm_loadu_ps(o + 2 * P + p), r2);
                r3 = _mm_add_ps(set ? z : _mm_loadu_ps(o + 3 * P + p), r3);
            }
            _mm_storeu_ps(o + p, r0);
            _mm_storeu_ps(o + P + p, r1);
            _mm_storeu_ps(o + 2 * P + p, r2);
            _mm_storeu_ps(o + 3 * P + p, r3);
        }
        for (int k = 0; k < 4; k++)
            for (size_t p = p4; p < p1; p++) {
                float *d = o + k * P + p;
                const float v = i[p * B + ci + k];
                *d = sum == SUM_ADD ? *d + v : sum == SUM_SET ? 0.0f + v : v;
            }
    }
#endif
    for (; ci < B && c0 + ci < C; ci++) {
        float *o = dst_n + (size_t)(c0 + ci) * P;
        if (sum == SUM_ADD)
            for (size_t p = p0; p < p1; p++) o[p] += i[p * B + ci];
        else if (sum == SUM_SET)
            for (size_t p = p0; p < p1; p++) o[p] = 0.0f + i[p * B + ci];
        else
            for (size_t p = p0; p < p1; p++) o[p] = i[p * B + ci];
    }
}

/* dst[n][c][p] = (or +=, with sum) src[n][c/B][p][c%B]. */
static void from_blocked(float *dst, const float *src, const reorder *r) {
    const int B = r->block, C = r->c, CB = r->cb, sum = r->sum;
    const size_t P = r->plane;
#pragma omp parallel for collapse(2) schedule(static) num_threads(move_threads((size_t)r->n * CB * B * P))
    for (int n = 0; n < r->n; n++)
        for (int cb = 0; cb < CB; cb++) {
            const float *i = src + ((size_t)n * CB + cb) * P * B;
            for (size_t p0 = 0; p0 < P; p0 += TILE)
                from_blocked_tile(dst + (size_t)n * C * P, i, cb * B, B, C, P, p0, p0 + TILE < P ? p0 + TILE : P, sum);
        }
}

/* Move p (layout from) through r into layout `to`: returns p itself for MOVE_NONE, else dst
 * (which it fills, or adds into). */
static const void *through(fv_dnnl *d, const reorder *r, const dnnl_memory_desc_t *from, const void *p,
                           const dnnl_memory_desc_t *to, void *dst) {
    switch (r->kind) {
    case MOVE_NONE: return p;
    case MOVE_ADD: {
        float *o = dst;
        const float *i = p;
        if (r->sum == SUM_SET) {
#pragma omp parallel for simd schedule(static) num_threads(move_threads(r->plane))
            for (size_t k = 0; k < r->plane; k++) o[k] = 0.0f + i[k];
            return dst;
        }
#pragma omp parallel for simd schedule(static) num_threads(move_threads(r->plane))
        for (size_t k = 0; k < r->plane; k++) o[k] += i[k];
        return dst;
    }
    case MOVE_TO_BLOCKED: to_blocked(dst, p, r); return dst;
    case MOVE_FROM_BLOCKED: from_blocked(dst, p, r); return dst;
    case MOVE_ONEDNN: {
        arg_t a[2] = {{DNNL_ARG_FROM, from, p}, {DNNL_ARG_TO, to, dst}};
        run(d, r->prim, 0, a, 2);
        return dst;
    }
    }
    FV_DIE("bad move kind %d", (int)r->kind);
}

void fv_dnnl_conv_forward(fv_dnnl_conv *c, float *out, const float *inp, const float *w, const float *b,
                          int keep_src, const fv_conv2d_shape *s) {
    check_shape(c, s);
    FV_ASSERT((b != NULL) == (c->bias != 0));
    fv_dnnl *d = c->d;
    entry *x = entry_for(c, s->N);
    const size_t sbytes = dnnl_memory_desc_get_size(&x->fwd.src);
    /* kept when it is a move that backward weights would make again into the same layout */
    const int keep = keep_src && x->src_f.kind == MOVE_TO_BLOCKED && x->src_w.kind == MOVE_TO_BLOCKED &&
                     dnnl_memory_desc_equal(&x->fwd.src, &x->bwd_w.src);
    if (keep && !x->src_keep) x->src_keep = fv_malloc(sbytes);
    const void *src = through(d, &x->src_f, &x->src, inp, &x->fwd.src, keep ? x->src_keep : buf(d, BUF_SRC, sbytes));
    x->src_keep_of = keep ? inp : NULL;
    const void *wei = through(d, &x->wei_f, &x->wei, w, &x->fwd.wei, x->wbuf);
    void *dst = x->dst_f.kind != MOVE_NONE ? buf(d, BUF_DST, dnnl_memory_desc_get_size(&x->fwd.dst)) : out;
    arg_t a[4] = {{DNNL_ARG_SRC, &x->fwd.src, src}, {DNNL_ARG_WEIGHTS, &x->fwd.wei, wei},
                  {DNNL_ARG_DST, &x->fwd.dst, dst}, {DNNL_ARG_BIAS, &x->bias, b}};
    run(d, x->fwd.prim, x->fwd.pad_bytes, a, b ? 4 : 3);
    through(d, &x->dst_f, &x->fwd.dst, dst, &x->dst, out);
    DN(dnnl_stream_wait(d->stream));
}

void fv_dnnl_conv_backward(fv_dnnl_conv *c, float *dinp, int set_dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const fv_conv2d_shape *s) {
    check_shape(c, s);
    FV_ASSERT(!db || c->bias);
    fv_dnnl *d = c->d;
    entry *x = entry_for(c, s->N);
    const void *g = NULL; /* dout in the layout of backward data, when that ran */
    if (dinp) {
        g = through(d, &x->ddst_d, &x->dst, dout, &x->bwd_d.dst,
                    buf(d, BUF_DST, dnnl_memory_desc_get_size(&x->bwd_d.dst)));
        const void *wei = through(d, &x->wei_d, &x->wei, w, &x->bwd_d.wei, x->wbuf);
        /* set_dinp into a blocked dinp of oneDNN's own layout: the primitive writes dinp itself
         * (a -0 then stays -0, where 0 + value gives +0; an NCHW dinp keeps the exact form) */
        const int direct = set_dinp && c->in_block && x->dsrc_d.kind == MOVE_ADD;
        void *ds = direct ? dinp : buf(d, BUF_DSRC, dnnl_memory_desc_get_size(&x->bwd_d.src));
        arg_t a[3] = {{DNNL_ARG_DIFF_DST, &x->bwd_d.dst, g}, {DNNL_ARG_WEIGHTS, &x->bwd_d.wei, wei},
                      {DNNL_ARG_DIFF_SRC, &x->bwd_d.src, ds}};
        run(d, x->bwd_d.prim, x->bwd_d.pad_bytes, a, 3);
        reorder r = x->dsrc_d; /* dinp +=, or with set_dinp = 0 + */
        if (direct)
            r.kind = MOVE_NONE;
        else if (set_dinp && r.kind == MOVE_ONEDNN) /* its sum post-op adds: into zeros */
            memset(dinp, 0, dnnl_memory_desc_get_size(&x->src));
        else if (set_dinp)
            r.sum = SUM_SET;
        through(d, &r, &x->bwd_d.src, ds, &x->src, dinp);
    }
    if (!dw) { /* the input gradient only (an inversion's perturbed passes): no backward-weights pass */
        FV_ASSERT(!db);
        DN(dnnl_stream_wait(d->stream));
        return;
    }
    const void *src = x->src_keep_of == inp ? x->src_keep
                                            : through(d, &x->src_w, &x->src, inp, &x->bwd_w.src,
                                                      buf(d, BUF_SRC, dnnl_memory_desc_get_size(&x->bwd_w.src)));
    if (!g || !dnnl_memory_desc_equal(&x->bwd_d.dst, &x->bwd_w.dst))
        g = through(d, &x->ddst_w, &x->dst, dout, &x->bwd_w.dst,
                    buf(d, BUF_DST, dnnl_memory_desc_get_size(&x->bwd_w.dst)));
    arg_t a[4] = {{DNNL_ARG_SRC, &x->bwd_w.src, src}, {DNNL_ARG_DIFF_DST, &x->bwd_w.dst, g},
                  {DNNL_ARG_DIFF_WEIGHTS, &x->bwd_w.wei, x->dwbuf}, {DNNL_ARG_DIFF_BIAS, &x->bias, x->dbias}};
    run(d, x->bwd_w.prim, x->bwd_w.pad_bytes, a, c->bias ? 4 : 3);
    through(d, &x->dwei_w, &x->bwd_w.wei, x->dwbuf, &x->wei, dw); /* dw += */
    DN(dnnl_stream_wait(d->stream));
    if (db)
        for (int k = 0; k < s->K; k++) db[k] += x->dbias[k];
}
