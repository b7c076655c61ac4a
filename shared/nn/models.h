/* models.h: the named architectures, built on net.h. Parameter counts equal the PyTorch
 * equivalents (tests/test_models.c pins them).
 *  - "lenet5": conv5x5 6 pad 2, maxpool 2, conv5x5 16, maxpool 2, fc 120, fc 84, fc classes, ReLU
 *    (61,706 parameters on 1x28x28 with 10 classes; as the PyTorch LeNet5 of tests/torch_parity.py).
 *  - "fedavg_cnn": McMahan et al. 2017 MNIST CNN (1,663,370 on 1x28x28).
 *  - "vgg11": VGG-11-style with batch norm, channels 64-128-256-256-512-512-512-512 scaled by 1/4,
 *    for 28x28 and 32x32 inputs.
 *  - "resnet20": CIFAR-style ResNet-20 with 1x1-conv shortcuts where the shape changes
 *    (272,474 on 3x32x32 with 10 classes).
 *  - "mobilenet": MobileNet-v1-style depthwise-separable blocks.
 *  - "dlg_lenet": the DLG sigmoid LeNet (three 5x5 convs of 12 channels, strides 2, 2, 1, pad 2,
 *    sigmoid, one dense layer), weights U(-0.5, 0.5).
 *  - "tiny": a very small CNN for smoke tests.
 *  - "vit": a small Vision Transformer (patch 4, width 192, 6 pre-norm blocks, 3 heads, MLP 768,
 *    GELU, class token, learned position embedding; timm's state-dict names): 2,684,554
 *    parameters on 1x28x28 and 2,693,578 on 3x32x32 with 10 classes (tests/torch_vit.py). Runs
 *    on the CPU and on the CUDA backend (shared/cuda/transformer.cu).
 */
#ifndef FV_MODELS_H
#define FV_MODELS_H
#include "fv_common.h"
#include "nn/net.h"

/* Build and initialise model `name` for inputs `in` and `classes` outputs. Its conv nodes run on
 * the path the environment variable FEDVIM_CPU_CONV names (auto, blas or dnnl; unset: auto; see
 * fv_net_set_conv), so benchmarks and comparisons can force one for every role. Returns NULL with
 * e set for an unknown name, an input shape the model cannot take, or a FEDVIM_CPU_CONV that is
 * not a path or not available. Caller owns the result. */
FV_MUST_USE fv_net *fv_model_new(const char *name, fv_shape in, int classes, uint64_t seed, fv_err *e);

/* The list of model names, NULL-terminated. */
const char *const *fv_model_names(void);

/* The model names as one line for help texts and errors: "lenet5, fedavg_cnn, ..., vit"
 * (truncated to fit cap, always NUL-terminated). Returns buf. */
const char *fv_model_list(char *buf, size_t cap);

#endif
