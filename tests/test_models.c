/* test_models.c: parameter counts equal the PyTorch equivalents, state-dict names and output
 * shapes are right, every model runs forward and backward, and bad requests get clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/net.h"
#include "nn/layers.h"
#include "nn/models.h"

static fv_net *make(const char *name, int c, int hw, int classes) {
    fv_err e = {{0}};
    fv_net *net = fv_model_new(name, (fv_shape){c, hw, hw}, classes, 1, &e);
    if (!net) fail_msg("%s: %s", name, e.msg);
    return net;
}

static void test_param_counts(void **st) {
    (void)st;
    /* Figures from PyTorch: sum(p.numel() for p in m.parameters()). */
    struct { const char *name; int c, hw; size_t want; } cases[] = {
        {"lenet5", 1, 28, 61706},       /* tests/torch_parity.py LeNet5 */
        {"fedavg_cnn", 1, 28, 1663370}, /* McMahan et al. 2017 */
        {"resnet20", 3, 32, 272474},    /* tests/torch_parity.py ResNet20 */
        {"vit", 1, 28, 2684554},        /* tests/torch_vit.py ViT(1, 28): 50 tokens */
        {"vit", 3, 32, 2693578},        /* tests/torch_vit.py ViT(3, 32): 65 tokens */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fv_net *net = make(cases[i].name, cases[i].c, cases[i].hw, 10);
        if (net->n_train != cases[i].want)
            fail_msg("%s: %zu parameters, PyTorch has %zu", cases[i].name, net->n_train, cases[i].want);
        fv_net_destroy(&net);
        assert_null(net);
    }
}

static void test_names_and_layout(void **st) {
    (void)st;
    fv_net *net = make("resnet20", 3, 32, 10);
    const fv_tensor *t = fv_net_tensor(net, "layer2.0.shortcut.0.weight");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->dims[0], 32);
    assert_int_equal(t->dims[1], 16);
    assert_int_equal(t->dims[2], 1);
    assert_non_null(fv_net_tensor(net, "layer1.0.bn1.running_var"));
    assert_null(fv_net_tensor(net, "layer1.0.shortcut.0.weight")); /* same shape: identity */
    const fv_tensor *rv = fv_net_tensor(net, "bn1.running_var");
    assert_false(rv->trainable);
    assert_true(rv->off >= net->n_train);
    assert_float_equal(net->params[rv->off], 1.0f, 0.0f);
    /* tensors tile params exactly once */
    size_t total = 0;
    for (int i = 0; i < net->n_tensors; i++) total += net->tensors[i].count;
    assert_int_equal(total, net->n_params);
    fv_net_destroy(&net);
    net = make("lenet5", 1, 28, 10);
    const char *names[] = {"conv1.weight", "conv1.bias", "conv2.weight", "fc1.weight", "fc3.bias"};
    for (size_t i = 0; i < 5; i++) assert_non_null(fv_net_tensor(net, names[i]));
    assert_int_equal(fv_net_tensor(net, "fc1.weight")->dims[1], 400);
    fv_net_destroy(&net);
}

static void test_every_model_runs(void **st) {
    (void)st;
    fv_set_threads(2);
    const char *const *names = fv_model_names();
    for (int i = 0; names[i]; i++) {
        for (int shape = 0; shape < 2; shape++) {
            int c = shape ? 3 : 1, hw = shape ? 32 : 28, n = 3;
            fv_net *net = make(names[i], c, hw, 10);
            fv_shape o = fv_net_output_shape(net);
            assert_int_equal(fv_shape_size(o), 10);
            size_t isz = (size_t)c * hw * hw;
            float *x = fv_malloc(n * isz * sizeof(float));
            fv_rng r;
            fv_rng_seed(&r, 3);
            for (size_t j = 0; j < n * isz; j++) x[j] = (float)fv_rng_normal(&r);
            const float *z = fv_net_forward(net, x, n, 1);
            float dl[30];
            int y[3] = {0, 1, 2};
            float loss = fv_softmax_xent(dl, z, y, n, 10, NULL);
            if (!isfinite(loss)) fail_msg("%s: non-finite loss", names[i]);
            fv_net_backward(net, dl, n);
            double g2 = 0;
            for (size_t j = 0; j < net->n_train; j++) g2 += (double)net->grads[j] * net->grads[j];
            if (!(g2 > 0) || !isfinite(g2)) fail_msg("%s %dx%d: gradient norm %g", names[i], c, hw, g2);
            free(x);
            fv_net_destroy(&net);
        }
    }
}

/* The ViT's timm names and shapes, its token layout, and the CUDA backend taking it. */
static void test_vit_layout(void **st) {
    (void)st;
    fv_net *net = make("vit", 3, 32, 10);
    static const struct { const char *name; int ndim, d0, d1, d2; } want[] = {
        {"patch_embed.proj.weight", 4, 192, 3, 4}, {"cls_token", 3, 1, 1, 192},
        {"pos_embed", 3, 1, 65, 192},              {"blocks.0.norm1.weight", 1, 192, 0, 0},
        {"blocks.0.attn.qkv.weight", 2, 576, 192, 0}, {"blocks.5.attn.proj.bias", 1, 192, 0, 0},
        {"blocks.3.mlp.fc1.weight", 2, 768, 192, 0}, {"blocks.5.mlp.fc2.weight", 2, 192, 768, 0},
        {"norm.bias", 1, 192, 0, 0},               {"head.weight", 2, 10, 192, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const fv_tensor *t = fv_net_tensor(net, want[i].name);
        if (!t) fail_msg("vit: no tensor %s", want[i].name);
        assert_int_equal(t->ndim, want[i].ndim);
        assert_int_equal(t->dims[0], want[i].d0);
        if (t->ndim > 1) assert_int_equal(t->dims[1], want[i].d1);
        if (t->ndim > 2) assert_int_equal(t->dims[2], want[i].d2);
    }
    assert_null(fv_net_tensor(net, "blocks.6.norm1.weight"));
    assert_int_equal(net->n_tensors, 4 + 6 * 12 + 4);
    assert_int_equal(net->n_state, 0);
    char buf[64];
    int tok = -1;
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].op == FV_OP_TOKENS) tok = i;
    assert_true(tok > 0);
    assert_string_equal(fv_net_op_name(net, tok), "tokens");
    assert_string_equal(fv_net_node_prefix(net, tok, buf, sizeof buf), "");
    assert_int_equal(net->nodes[tok].oshape.c, 65); /* {T, D, 1} */
    assert_int_equal(net->nodes[tok].oshape.h, 192);
    assert_string_equal(fv_net_node_prefix(net, tok + 2, buf, sizeof buf), "blocks.0.attn.qkv");
    /* layer norm weight 1 and bias 0; class token and position embedding small and not zero */
    assert_float_equal(net->params[fv_net_tensor(net, "blocks.2.norm2.weight")->off + 7], 1.0f, 0.0f);
    const fv_tensor *pe = fv_net_tensor(net, "pos_embed");
    double s2 = 0;
    for (size_t j = 0; j < pe->count; j++) s2 += (double)net->params[pe->off + j] * net->params[pe->off + j];
    assert_true(fabs(sqrt(s2 / pe->count) - 0.02) < 0.002);
    /* the CUDA backend takes the token ops: a device twin opens where there is a device; without
     * one (or without the backend) the refusal names that, not the ops */
    fv_err e = {{0}};
    fv_cuda_net *cn = fv_cuda_net_new(net, 0, 8, &e);
    if (fv_cuda_device_count() > 0) {
        if (!cn) fail_msg("vit on cuda:0: %s", e.msg);
    } else {
        assert_null(cn);
        assert_non_null(strstr(e.msg, fv_cuda_built() ? "no CUDA device" : "no CUDA backend"));
    }
    fv_cuda_net_destroy(&cn);
    fv_net_destroy(&net);
}

static void test_bad_requests(void **st) {
    (void)st;
    fv_err e = {{0}};
    assert_null(fv_model_new("lenet6", (fv_shape){1, 28, 28}, 10, 1, &e));
    assert_non_null(strstr(e.msg, "lenet6"));
    assert_non_null(strstr(e.msg, "lenet5")); /* lists the known names */
    assert_null(fv_model_new("lenet5", (fv_shape){1, 4, 4}, 10, 1, &e));
    assert_non_null(strstr(e.msg, "4x4"));
    assert_null(fv_model_new("lenet5", (fv_shape){1, 28, 28}, 1, 1, &e));
    assert_non_null(strstr(e.msg, "classes"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_names_and_layout),
        cmocka_unit_test(test_every_model_runs),
        cmocka_unit_test(test_vit_layout),
        cmocka_unit_test(test_bad_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
