/* models.c: see models.h. Each builder mirrors a PyTorch module so that parameter counts and
 * state-dict names match (conv1.weight, layer1.0.bn1.running_mean, fc.bias, ...). */
#include "nn/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int conv_bn_relu(fv_net *net, const char *conv, const char *bn, int x, int out, int k, int stride,
                        int pad, int groups) {
    x = fv_net_conv2d(net, conv, x, out, k, stride, pad, groups, 0);
    x = fv_net_batchnorm(net, bn, x);
    return fv_net_relu(net, x);
}

static void build_lenet5(fv_net *net, int classes) {
    int x = fv_net_conv2d(net, "conv1", 0, 6, 5, 1, 2, 1, 1);
    x = fv_net_maxpool(net, fv_net_relu(net, x), 2, 2, 0);
    x = fv_net_conv2d(net, "conv2", x, 16, 5, 1, 0, 1, 1);
    x = fv_net_maxpool(net, fv_net_relu(net, x), 2, 2, 0);
    x = fv_net_flatten(net, x);
    x = fv_net_relu(net, fv_net_linear(net, "fc1", x, 120, 1));
    x = fv_net_relu(net, fv_net_linear(net, "fc2", x, 84, 1));
    fv_net_linear(net, "fc3", x, classes, 1);
}

static void build_fedavg_cnn(fv_net *net, int classes) {
    int x = fv_net_conv2d(net, "conv1", 0, 32, 5, 1, 2, 1, 1);
    x = fv_net_maxpool(net, fv_net_relu(net, x), 2, 2, 0);
    x = fv_net_conv2d(net, "conv2", x, 64, 5, 1, 2, 1, 1);
    x = fv_net_maxpool(net, fv_net_relu(net, x), 2, 2, 0);
    x = fv_net_flatten(net, x);
    x = fv_net_relu(net, fv_net_linear(net, "fc1", x, 512, 1));
    fv_net_linear(net, "fc2", x, classes, 1);
}

/* VGG-11 layout (8 convs: 1, M, 1, M, 2, M, 2, M, 2) with batch norm at a quarter of the original
 * widths; the fifth pool is replaced by global average pooling so 28x28 and 32x32 both work. */
static void build_vgg11(fv_net *net, int classes) {
    static const int cfg[] = {16, -1, 32, -1, 64, 64, -1, 128, 128, -1, 128, 128};
    int x = 0, i = 0;
    char cn[32], bn[32];
    for (size_t j = 0; j < sizeof cfg / sizeof cfg[0]; j++) {
        if (cfg[j] < 0) {
            x = fv_net_maxpool(net, x, 2, 2, 0);
            continue;
        }
        snprintf(cn, sizeof cn, "features.%d.conv", i);
        snprintf(bn, sizeof bn, "features.%d.bn", i);
        x = conv_bn_relu(net, cn, bn, x, cfg[j], 3, 1, 1, 1);
        i++;
    }
    x = fv_net_flatten(net, fv_net_gap(net, x));
    x = fv_net_dropout(net, fv_net_relu(net, fv_net_linear(net, "classifier.0", x, 128, 1)), 0.5f);
    fv_net_linear(net, "classifier.1", x, classes, 1);
}

static void build_resnet20(fv_net *net, int classes) {
    int x = conv_bn_relu(net, "conv1", "bn1", 0, 16, 3, 1, 1, 1);
    int in = 16;
    static const int outs[3] = {16, 32, 64};
    char a[64], b[64];
    for (int s = 0; s < 3; s++) {
        for (int k = 0; k < 3; k++) {
            int st = (k == 0 && s > 0) ? 2 : 1, o = outs[s];
            snprintf(a, sizeof a, "layer%d.%d.conv1", s + 1, k);
            snprintf(b, sizeof b, "layer%d.%d.bn1", s + 1, k);
            int y = conv_bn_relu(net, a, b, x, o, 3, st, 1, 1);
            snprintf(a, sizeof a, "layer%d.%d.conv2", s + 1, k);
            snprintf(b, sizeof b, "layer%d.%d.bn2", s + 1, k);
            y = fv_net_batchnorm(net, b, fv_net_conv2d(net, a, y, o, 3, 1, 1, 1, 0));
            int sc = x;
            if (st != 1 || in != o) {
                snprintf(a, sizeof a, "layer%d.%d.shortcut.0", s + 1, k);
                snprintf(b, sizeof b, "layer%d.%d.shortcut.1", s + 1, k);
                sc = fv_net_batchnorm(net, b, fv_net_conv2d(net, a, x, o, 1, st, 0, 1, 0));
            }
            x = fv_net_relu(net, fv_net_add(net, y, sc));
            in = o;
        }
    }
    x = fv_net_flatten(net, fv_net_gap(net, x));
    fv_net_linear(net, "fc", x, classes, 1);
}

/* MobileNet-v1 style: a 3x3 stem, then depthwise-separable blocks (3x3 depthwise + BN + ReLU,
 * 1x1 pointwise + BN + ReLU), sized for 28x28 and 32x32 inputs. */
static void build_mobilenet(fv_net *net, int classes) {
    static const int blocks[][2] = {{64, 1}, {128, 2}, {128, 1}, {256, 2}, {256, 1}};
    int x = conv_bn_relu(net, "stem.conv", "stem.bn", 0, 32, 3, 1, 1, 1);
    int in = 32;
    char a[64], b[64];
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        snprintf(a, sizeof a, "blocks.%zu.dw", i);
        snprintf(b, sizeof b, "blocks.%zu.bn_dw", i);
        x = conv_bn_relu(net, a, b, x, in, 3, blocks[i][1], 1, in);
        snprintf(a, sizeof a, "blocks.%zu.pw", i);
        snprintf(b, sizeof b, "blocks.%zu.bn_pw", i);
        x = conv_bn_relu(net, a, b, x, blocks[i][0], 1, 1, 0, 1);
        in = blocks[i][0];
    }
    x = fv_net_flatten(net, fv_net_gap(net, x));
    fv_net_linear(net, "fc", x, classes, 1);
}

/* The DLG reference LeNet: sigmoid activations, strides 2, 2, 1, weights U(-0.5, 0.5). */
static void build_dlg_lenet(fv_net *net, int classes) {
    int x = fv_net_sigmoid(net, fv_net_conv2d(net, "body.0", 0, 12, 5, 2, 2, 1, 1));
    x = fv_net_sigmoid(net, fv_net_conv2d(net, "body.2", x, 12, 5, 2, 2, 1, 1));
    x = fv_net_sigmoid(net, fv_net_conv2d(net, "body.4", x, 12, 5, 1, 2, 1, 1));
    fv_net_linear(net, "fc.0", fv_net_flatten(net, x), classes, 1);
}

static void build_tiny(fv_net *net, int classes) {
    int x = fv_net_relu(net, fv_net_conv2d(net, "conv1", 0, 4, 3, 1, 1, 1, 1));
    x = fv_net_flatten(net, fv_net_maxpool(net, x, 4, 4, 0));
    fv_net_linear(net, "fc", x, classes, 1);
}

/* A Vision Transformer (Dosovitskiy et al. 2021) sized for 28x28 and 32x32 inputs: 4x4 patches
 * embedded by a conv (kernel = stride = 4), a class token and learned position embedding, VIT_DEPTH
 * pre-norm blocks (x += attn(norm1(x)); x += mlp(norm2(x))) of width VIT_DIM with VIT_HEADS heads
 * and a GELU MLP of VIT_MLP, a final layer norm and a linear head on the class token. Names follow
 * timm's VisionTransformer (patch_embed.proj, cls_token, pos_embed, blocks.i.norm1, .attn.qkv,
 * .attn.proj, .norm2, .mlp.fc1, .mlp.fc2, norm, head). Dropout p (after the attention projection
 * and each MLP linear, timm's proj_drop / mlp drop) is VIT_DROPOUT: none by default. */
#define VIT_PATCH 4
#define VIT_DIM 192
#define VIT_DEPTH 6
#define VIT_HEADS 3
#define VIT_MLP 768
#define VIT_DROPOUT 0.0f

static int maybe_dropout(fv_net *net, int x, float p) { return p > 0.0f ? fv_net_dropout(net, x, p) : x; }

static void build_vit(fv_net *net, int classes) {
    int x = fv_net_conv2d(net, "patch_embed.proj", 0, VIT_DIM, VIT_PATCH, VIT_PATCH, 0, 1, 1);
    x = fv_net_tokens(net, "", x);
    char a[64];
    for (int i = 0; i < VIT_DEPTH; i++) {
        snprintf(a, sizeof a, "blocks.%d.norm1", i);
        int y = fv_net_layernorm(net, a, x);
        snprintf(a, sizeof a, "blocks.%d.attn.qkv", i);
        y = fv_net_attention(net, fv_net_token_linear(net, a, y, 3 * VIT_DIM, 1), VIT_HEADS);
        snprintf(a, sizeof a, "blocks.%d.attn.proj", i);
        y = maybe_dropout(net, fv_net_token_linear(net, a, y, VIT_DIM, 1), VIT_DROPOUT);
        x = fv_net_add(net, x, y);
        snprintf(a, sizeof a, "blocks.%d.norm2", i);
        y = fv_net_layernorm(net, a, x);
        snprintf(a, sizeof a, "blocks.%d.mlp.fc1", i);
        y = maybe_dropout(net, fv_net_gelu(net, fv_net_token_linear(net, a, y, VIT_MLP, 1)), VIT_DROPOUT);
        snprintf(a, sizeof a, "blocks.%d.mlp.fc2", i);
        y = maybe_dropout(net, fv_net_token_linear(net, a, y, VIT_DIM, 1), VIT_DROPOUT);
        x = fv_net_add(net, x, y);
    }
    x = fv_net_token_select(net, fv_net_layernorm(net, "norm", x), 0);
    fv_net_linear(net, "head", x, classes, 1);
}

typedef struct {
    const char *name;
    void (*build)(fv_net *, int);
    int min_hw; /* smallest input height/width the architecture takes */
} model_entry;

static const model_entry MODELS[] = {
    {"lenet5", build_lenet5, 16},    {"fedavg_cnn", build_fedavg_cnn, 8}, {"vgg11", build_vgg11, 16},
    {"resnet20", build_resnet20, 8}, {"mobilenet", build_mobilenet, 8},   {"dlg_lenet", build_dlg_lenet, 4},
    {"tiny", build_tiny, 4},         {"vit", build_vit, VIT_PATCH},
};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

const char *const *fv_model_names(void) {
    static const char *const names[N_MODELS + 1] = {"lenet5", "fedavg_cnn", "vgg11", "resnet20",
                                                    "mobilenet", "dlg_lenet", "tiny", "vit", NULL};
    return names;
}

const char *fv_model_list(char *buf, size_t cap) {
    FV_ASSERT(buf && cap > 0);
    buf[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < N_MODELS && len < cap; i++) {
        const int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", MODELS[i].name);
        if (w < 0) break;
        len += (size_t)w;
    }
    return buf;
}

fv_net *fv_model_new(const char *name, fv_shape in, int classes, uint64_t seed, fv_err *e) {
    const model_entry *m = NULL;
    for (size_t i = 0; i < N_MODELS; i++)
        if (strcmp(MODELS[i].name, name) == 0) m = &MODELS[i];
    if (!m) {
        char list[256];
        fv_err_set(e, "unknown model '%s' (known: %s)", name, fv_model_list(list, sizeof list));
        return NULL;
    }
    if (in.c < 1 || in.c > 4 || in.h < m->min_hw || in.w < m->min_hw || in.h > 4096 || in.w > 4096) {
        fv_err_set(e, "model %s cannot take %dx%dx%d inputs (needs 1-4 channels and sides >= %d)", name, in.c,
                   in.h, in.w, m->min_hw);
        return NULL;
    }
    if (classes < 2 || classes > 100000) {
        fv_err_set(e, "model %s: %d classes is out of range [2, 100000]", name, classes);
        return NULL;
    }
    fv_net *net = fv_net_new(in);
    m->build(net, classes);
    fv_net_finish(net, seed);
    const char *conv = getenv("FEDVIM_CPU_CONV");
    fv_conv_path path;
    if (conv && (fv_conv_path_parse(conv, &path, e) != 0 || fv_net_set_conv(net, path, e) != 0)) {
        fv_err_prefix(e, "FEDVIM_CPU_CONV: ");
        fv_net_destroy(&net);
        return NULL;
    }
    if (strcmp(name, "dlg_lenet") == 0) {
        fv_rng r;
        fv_rng_seed(&r, seed);
        for (size_t i = 0; i < net->n_train; i++) net->params[i] = fv_rng_uniform(&r) - 0.5f;
    }
    return net;
}
