# torch_models.py: fedvim's zoo rebuilt in PyTorch with fedvim's state-dict names, shared by the
# PyTorch sides of the parity tests (torch_parity.py, torch_invert.py). build(model, c, h, w) gives
# the module; load(m, P, tensors) copies fedvim's flat parameter buffer P into it (tensors: name,
# offset, count from the manifest) and fails loudly on any name either side lacks.
# MASKS: when it holds tensors, every relu() takes the next one as its mask (fedvim's ReLU masks
# of the same pass, so float32 and float64 take the same side of each kink); empty: plain ReLU.
import sys
import torch, torch.nn as nn, torch.nn.functional as F
from torch_vit import ViT  # noqa: E402  (beside this file)

MASKS = []
def load_masks(d, k):
    """fedvim's ReLU masks of forward k (tests/fl_harness.h fh_dump_relu_masks): one float64 0/1
    tensor per ReLU, in node order, ready for MASKS."""
    import numpy as np
    raw = np.fromfile(f'{d}/masks_{k}.bin', np.uint8)
    sizes = [int(v) for v in open(f'{d}/masks.txt').read().split()]
    out, off = [], 0
    for n in sizes:
        out.append(torch.tensor(raw[off:off + n].astype(np.float64))); off += n
    assert off == len(raw), f'{d}/masks_{k}.bin: {len(raw)} bytes, masks.txt sizes sum to {off}'
    return out

def relu(x):
    if MASKS:
        m = MASKS.pop(0)
        assert m.numel() == x.numel(), 'mask size mismatch: the ReLU order differs'
        return x * m.reshape(x.shape).to(x.dtype)
    return F.relu(x)

class LeNet5(nn.Module):
    def __init__(s, c, h, w):
        super().__init__()
        s.conv1 = nn.Conv2d(c, 6, 5, padding=2); s.conv2 = nn.Conv2d(6, 16, 5)
        n = 16 * ((h // 2 - 4) // 2) * ((w // 2 - 4) // 2)
        s.fc1 = nn.Linear(n, 120); s.fc2 = nn.Linear(120, 84); s.fc3 = nn.Linear(84, 10)
    def forward(s, x):
        x = F.max_pool2d(relu(s.conv1(x)), 2); x = F.max_pool2d(relu(s.conv2(x)), 2)
        return s.fc3(relu(s.fc2(relu(s.fc1(x.flatten(1))))))

class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.shortcut = nn.Sequential() if (st == 1 and i == o) else nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))
    def forward(s, x):
        y = s.bn2(s.conv2(relu(s.bn1(s.conv1(x)))))
        return relu(y + s.shortcut(x))

class ResNet20(nn.Module):
    def __init__(s, c, h, w):
        super().__init__()
        s.conv1 = nn.Conv2d(c, 16, 3, 1, 1, bias=False); s.bn1 = nn.BatchNorm2d(16)
        i = 16
        for si, o in enumerate([16, 32, 64]):
            blocks = []
            for k in range(3):
                blocks.append(Block(i, o, 2 if (k == 0 and si > 0) else 1)); i = o
            setattr(s, f'layer{si + 1}', nn.Sequential(*blocks))
        s.fc = nn.Linear(64, 10)
    def forward(s, x):
        x = relu(s.bn1(s.conv1(x)))
        x = s.layer3(s.layer2(s.layer1(x)))
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

class MobileNet(nn.Module):
    def __init__(s, c, h, w):
        super().__init__()
        s.stem = nn.Module(); s.stem.conv = nn.Conv2d(c, 32, 3, 1, 1, bias=False); s.stem.bn = nn.BatchNorm2d(32)
        s.blocks = nn.ModuleList(); i = 32
        for o, st in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1)]:
            b = nn.Module()
            b.dw = nn.Conv2d(i, i, 3, st, 1, groups=i, bias=False); b.bn_dw = nn.BatchNorm2d(i)
            b.pw = nn.Conv2d(i, o, 1, bias=False); b.bn_pw = nn.BatchNorm2d(o)
            s.blocks.append(b); i = o
        s.fc = nn.Linear(256, 10)
    def forward(s, x):
        x = relu(s.stem.bn(s.stem.conv(x)))
        for b in s.blocks:
            x = relu(b.bn_pw(b.pw(relu(b.bn_dw(b.dw(x))))))
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

class VGG11(nn.Module):
    # shared/nn/models.c build_vgg11; dropout is left out (fedvim's inversion engine switches it off)
    CFG = [16, -1, 32, -1, 64, 64, -1, 128, 128, -1, 128, 128]
    def __init__(s, c, h, w):
        super().__init__()
        s.features = nn.ModuleList(); i = c
        for o in [v for v in s.CFG if v > 0]:
            b = nn.Module(); b.conv = nn.Conv2d(i, o, 3, 1, 1, bias=False); b.bn = nn.BatchNorm2d(o)
            s.features.append(b); i = o
        s.classifier = nn.ModuleList([nn.Linear(128, 128), nn.Linear(128, 10)])
    def forward(s, x):
        k = 0
        for v in s.CFG:
            if v < 0: x = F.max_pool2d(x, 2); continue
            b = s.features[k]; k += 1
            x = relu(b.bn(b.conv(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return s.classifier[1](relu(s.classifier[0](x)))

MODELS = {'lenet5': LeNet5, 'resnet20': ResNet20, 'mobilenet': MobileNet, 'vgg11': VGG11,
          'vit': lambda c, h, w: ViT(c, h)}

def build(model, c, h, w):
    return MODELS[model](c, h, w)

def load(m, P, tensors, who):
    sd = m.state_dict()
    new = {k: v.clone() for k, v in sd.items()}
    for name, off, cnt in tensors:
        if name not in sd:
            print(f'{who}: fedvim tensor {name} has no PyTorch counterpart', file=sys.stderr); sys.exit(1)
        new[name] = torch.tensor(P[off:off + cnt]).reshape(sd[name].shape)
    missing = [k for k in sd if k not in dict((t[0], 0) for t in tensors) and not k.endswith('num_batches_tracked')]
    if missing:
        print(f'{who}: PyTorch tensors missing from fedvim: {missing}', file=sys.stderr); sys.exit(1)
    m.load_state_dict(new)
