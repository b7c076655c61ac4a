#!/usr/bin/env python3
# torch_parity.py DIR: the PyTorch side of tests/test_torch_parity.c. Reads DIR/manifest.txt (model name,
# batch, input shape, optimizer, steps, then one line per tensor: name offset count), DIR/params.bin,
# DIR/x.bin, DIR/y.bin (raw little-endian float32 / int32) written by fedvim, builds the same model in
# PyTorch with fedvim's state-dict names, and writes DIR/torch.txt: the loss, the gradient of every
# trainable tensor (one line each: name then values), the loss after STEPS optimizer steps, and the
# eval-mode logits after those steps. Exit 77 if torch is missing.
import copy, os, sys
try:
    import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
except ImportError:
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_vit import ViT  # noqa: E402
torch.set_num_threads(1)
torch.backends.cudnn.deterministic = True
d = sys.argv[1]
lines = open(f'{d}/manifest.txt').read().split('\n')
model, batch, c, h, w, opt_name, steps = lines[0].split()
batch, c, h, w, steps = int(batch), int(c), int(h), int(w), int(steps)
tensors = [(l.split()[0], int(l.split()[1]), int(l.split()[2])) for l in lines[1:] if l.strip()]

# ReLU is not differentiable at 0: where fedvim's float32 and the float64 reference land on
# opposite sides of a kink (a pre-activation within rounding of 0), their gradients legitimately
# differ. So every forward of the reference uses fedvim's ReLU masks of the same pass (DIR/masks_K.bin
# for forward K, one byte per ReLU output, in the order fedvim's nodes run, which is also PyTorch's
# call order here); the comparison then measures rounding alone.
MASKS = []
def relu(x):
    if MASKS:
        m = MASKS.pop(0)
        assert m.numel() == x.numel(), 'mask size mismatch: the ReLU order differs'
        return x * m.reshape(x.shape).to(x.dtype)
    return F.relu(x)

def load_masks(k):
    raw = np.fromfile(f'{d}/masks_{k}.bin', np.uint8)
    sizes = [int(v) for v in open(f'{d}/masks.txt').read().split()]
    out, off = [], 0
    for n in sizes:
        out.append(torch.tensor(raw[off:off + n].astype(np.float64))); off += n
    assert off == len(raw)
    return out

class LeNet5(nn.Module):
    def __init__(s):
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
    def __init__(s):
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
    def __init__(s):
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

m = {'lenet5': LeNet5, 'resnet20': ResNet20, 'mobilenet': MobileNet, 'vit': lambda: ViT(c, h)}[model]()
P = np.fromfile(f'{d}/params.bin', np.float32)
X = torch.tensor(np.fromfile(f'{d}/x.bin', np.float32).reshape(batch, c, h, w))
Y = torch.tensor(np.fromfile(f'{d}/y.bin', np.int32).astype(np.int64))
sd = m.state_dict()
new = {k: v.clone() for k, v in sd.items()}
for name, off, cnt in tensors:
    if name not in sd:
        print(f'torch_parity.py: fedvim tensor {name} has no PyTorch counterpart', file=sys.stderr); sys.exit(1)
    new[name] = torch.tensor(P[off:off + cnt]).reshape(sd[name].shape)
missing = [k for k in sd if k not in dict((t[0], 0) for t in tensors) and not k.endswith('num_batches_tracked')]
if missing:
    print(f'torch_parity.py: PyTorch tensors missing from fedvim: {missing}', file=sys.stderr); sys.exit(1)
m.load_state_dict(new)
# The reference is float64, so the comparison measures fedvim's float32 error; the same model in
# float32 PyTorch gives, per tensor, the error a good float32 implementation makes (batch norm's
# backward cancels heavily: float32 PyTorch is up to ~2% off float64 on ResNet-20's first layer).
m32 = copy.deepcopy(m); m32.train()
MASKS[:] = load_masks(0)
F.cross_entropy(m32(X), Y).backward()
assert not MASKS
g32 = {n: p.grad.numpy().astype(np.float64).ravel() for n, p in m32.named_parameters()}
m = m.double(); X = X.double()
m.train()
out = open(f'{d}/torch.txt', 'w')
MASKS[:] = load_masks(0)
loss = F.cross_entropy(m(X), Y); loss.backward()
assert not MASKS
out.write(f'loss {loss.item():.17g}\n')
params = dict(m.named_parameters())
for name, off, cnt in tensors:
    if name in params:
        g = params[name].grad.numpy().ravel()
        err32 = float(np.abs(g32[name] - g).max())
        out.write(name + f' {err32:.9g} ' + ' '.join(f'{v:.12g}' for v in g) + '\n')
m.zero_grad()
opt = torch.optim.Adam(m.parameters(), 1e-3) if opt_name == 'adam' else torch.optim.SGD(m.parameters(), 0.05, momentum=0.9)
for k in range(steps):
    MASKS[:] = load_masks(1 + k)
    loss = F.cross_entropy(m(X), Y); opt.zero_grad(); loss.backward(); opt.step()
with torch.no_grad():
    MASKS[:] = load_masks(1 + steps)
    out.write(f'after {F.cross_entropy(m(X), Y).item():.17g}\n')
    m.eval()
    MASKS[:] = load_masks(2 + steps)
    out.write('eval ' + ' '.join(f'{v:.12g}' for v in m(X).numpy().ravel()) + '\n')
assert not MASKS
out.close()
