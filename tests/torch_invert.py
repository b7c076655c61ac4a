#!/usr/bin/env python3
# torch_invert.py DIR: the PyTorch side of tests/test_invert_parity.c. Reads DIR/manifest.txt (first
# line: model n c h w kind batch epochs lr; then one line per tensor: name offset count),
# DIR/params.bin, DIR/x.bin, DIR/y.bin and DIR/v.bin (v over the trainable parameters, fedvim's
# layout), all raw little-endian float32 / int32 written by fedvim. Rebuilds the model
# (torch_models.py) in float64, train mode, and computes by double backprop (torch.autograd) the
# gradient with respect to x of <v, update(x)>, where update is the fedSGD gradient of the mean
# cross-entropy over the n images (kind fedsgd) or theta_0 - theta_T after E epochs of plain SGD
# steps over the images in fixed order, batches of B (kind fedavg), as attacks/invert.h defines it.
# When DIR/masks.txt exists, the forward of step t (fedSGD: the one forward) takes fedvim's ReLU
# masks DIR/masks_t.bin (fedvim's float32 pass at the unperturbed weights, the kinks its engine
# records and replays), so both sides differentiate the same piecewise-linear branch.
# Writes DIR/gx.bin (float64, n*c*h*w). Exit 77 if torch is missing.
import os, sys
try:
    import numpy as np, torch, torch.nn.functional as F
    from torch.nn.utils.stateless import functional_call
except ImportError:
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import MASKS, build, load, load_masks  # noqa: E402
torch.set_num_threads(1)
d = sys.argv[1]
lines = open(f'{d}/manifest.txt').read().split('\n')
model, n, c, h, w, kind, batch, epochs, lr = lines[0].split()
n, c, h, w, batch, epochs, lr = int(n), int(c), int(h), int(w), int(batch), int(epochs), float(lr)
tensors = [(l.split()[0], int(l.split()[1]), int(l.split()[2])) for l in lines[1:] if l.strip()]
m = build(model, c, h, w)
P = np.fromfile(f'{d}/params.bin', np.float32)
load(m, P, tensors, 'torch_invert.py')
m = m.double().train()
V = np.fromfile(f'{d}/v.bin', np.float32).astype(np.float64)
X = torch.tensor(np.fromfile(f'{d}/x.bin', np.float32).reshape(n, c, h, w).astype(np.float64), requires_grad=True)
Y = torch.tensor(np.fromfile(f'{d}/y.bin', np.int32).astype(np.int64))
offs = {name: (off, cnt) for name, off, cnt in tensors}
p0 = dict(m.named_parameters())
vt = {k: torch.tensor(V[offs[k][0]:offs[k][0] + offs[k][1]]).reshape(p.shape) for k, p in p0.items()}
masked = os.path.exists(f'{d}/masks.txt')
def grads(q, lo, hi, t=0):
    if masked:
        MASKS[:] = load_masks(d, t)
    loss = F.cross_entropy(functional_call(m, q, (X[lo:hi],)), Y[lo:hi])
    assert not MASKS, 'fedvim has more ReLUs than the PyTorch model'
    return dict(zip(q.keys(), torch.autograd.grad(loss, list(q.values()), create_graph=True)))
if kind == 'fedsgd':
    upd = grads(p0, 0, n)
else:
    q = dict(p0); spe = (n + batch - 1) // batch
    for t in range(epochs * spe):
        lo = (t % spe) * batch; g = grads(q, lo, min(n, lo + batch), t)
        q = {k: q[k] - lr * g[k] for k in q}
    upd = {k: p0[k] - q[k] for k in q}
Fv = sum((upd[k] * vt[k]).sum() for k in upd)
gx, = torch.autograd.grad(Fv, [X])
gx.detach().numpy().astype(np.float64).tofile(f'{d}/gx.bin')
