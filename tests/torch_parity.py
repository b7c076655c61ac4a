#!/usr/bin/env python3
# torch_parity.py DIR: the PyTorch side of tests/test_torch_parity.c. Reads DIR/manifest.txt (model name,
# batch, input shape, optimizer, steps, then one line per tensor: name offset count), DIR/params.bin,
# DIR/x.bin, DIR/y.bin (raw little-endian float32 / int32) written by fedvim, builds the same model in
# PyTorch with fedvim's state-dict names, and writes DIR/torch.txt: the loss, the gradient of every
# trainable tensor (one line each: name then values), the loss after STEPS optimizer steps, and the
# eval-mode logits after those steps. Exit 77 if torch is missing.
import copy, os, sys
try:
    import numpy as np, torch, torch.nn.functional as F
except ImportError:
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import MASKS, build, load, load_masks  # noqa: E402
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

m = build(model, c, h, w)
P = np.fromfile(f'{d}/params.bin', np.float32)
X = torch.tensor(np.fromfile(f'{d}/x.bin', np.float32).reshape(batch, c, h, w))
Y = torch.tensor(np.fromfile(f'{d}/y.bin', np.int32).astype(np.int64))
load(m, P, tensors, 'torch_parity.py')
# The reference is float64, so the comparison measures fedvim's float32 error; the same model in
# float32 PyTorch gives, per tensor, the error a good float32 implementation makes (batch norm's
# backward cancels heavily: float32 PyTorch is up to ~2% off float64 on ResNet-20's first layer).
m32 = copy.deepcopy(m); m32.train()
MASKS[:] = load_masks(d, 0)
F.cross_entropy(m32(X), Y).backward()
assert not MASKS
g32 = {n: p.grad.numpy().astype(np.float64).ravel() for n, p in m32.named_parameters()}
m = m.double(); X = X.double()
m.train()
out = open(f'{d}/torch.txt', 'w')
MASKS[:] = load_masks(d, 0)
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
    MASKS[:] = load_masks(d, 1 + k)
    loss = F.cross_entropy(m(X), Y); opt.zero_grad(); loss.backward(); opt.step()
with torch.no_grad():
    MASKS[:] = load_masks(d, 1 + steps)
    out.write(f'after {F.cross_entropy(m(X), Y).item():.17g}\n')
    m.eval()
    MASKS[:] = load_masks(d, 2 + steps)
    out.write('eval ' + ' '.join(f'{v:.12g}' for v in m(X).numpy().ravel()) + '\n')
assert not MASKS
out.close()
