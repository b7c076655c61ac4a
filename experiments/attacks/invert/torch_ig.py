#!/usr/bin/env python3
# torch_ig.py: the PyTorch side of compare.py, the "Inverting Gradients" attack (Geiping et al.
# 2020) written directly with torch.autograd double backprop, on the protocol that `fedvim attack
# invert` runs: MNIST test images 0..N-1 normalised with (0.1307, 0.3081); LeNet-5 with PyTorch's
# default initialisation (seed 0), untrained or trained one epoch (Adam 1e-3, batch 64) on the
# first 10,000 training images; the client's update is the fedSGD gradient of the mean
# cross-entropy, or for fedAVG theta_0 - theta_E after E plain SGD steps (lr 0.01) on the batch.
# Attack: minimise 1 - cos(update(x), target) + tv * TV(x) (TV: mean absolute difference of
# vertical plus of horizontal neighbours) with Adam (lr 0.1) on the sign of the gradient, the step
# x0.1 at 3/8, 5/8 and 7/8 of the iterations, x clamped to the pixel box [0, 1] (in normalised
# units) after each step, start N(0, 1), labels known. Metrics as fedvim computes them
# (attacks/metrics.h): reconstructions in [0, 1] are matched to the originals by the best
# assignment on MSE, then PSNR and SSIM (11x11 Gaussian window, sigma 1.5, valid positions only,
# population statistics). Prints one JSON object per case. --save-weights FILE writes the attacked
# weights (after training, for the trained case) as safetensors with fedvim's tensor names, so
# `fedvim attack invert --weights FILE` attacks exactly the same model.
# usage: torch_ig.py MNIST_DIR --case untrained_b1|trained_b1|untrained_b4|fedavg_b4 [--iters 2000]
#        [--images 4] [--threads 1] [--tv 1e-4] [--local-epochs 5]
import argparse, gzip, itertools, json, os, struct, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument('mnist'); ap.add_argument('--case', required=True)
ap.add_argument('--iters', type=int, default=2000); ap.add_argument('--images', type=int, default=4)
ap.add_argument('--threads', type=int, default=1); ap.add_argument('--tv', type=float, default=1e-4)
ap.add_argument('--local-epochs', type=int, default=5)
ap.add_argument('--seed', type=int, default=123, help='noise start of the attack on images k.. is seed + k')
ap.add_argument('--save-weights', default=None, help='write the attacked weights here (safetensors, fedvim names)')
a = ap.parse_args()
torch.set_num_threads(a.threads)
MEAN, STD = 0.1307, 0.3081

def read_idx(path):
    if not os.path.exists(path): path += '.gz'
    raw = (gzip.open if path.endswith('.gz') else open)(path, 'rb').read()
    nd = raw[3]; dims = struct.unpack('>' + 'I' * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)

def images(split, n):
    x = read_idx(f'{a.mnist}/{split}-images-idx3-ubyte')[:n].astype(np.float32) / 255.0
    y = read_idx(f'{a.mnist}/{split}-labels-idx1-ubyte')[:n].astype(np.int64)
    return torch.tensor((x - MEAN) / STD).unsqueeze(1), torch.tensor(y)

def net(p, x):
    x = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1], padding=2)), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, p[2], p[3])), 2).flatten(1)
    x = F.relu(F.linear(x, p[4], p[5]))
    x = F.relu(F.linear(x, p[6], p[7]))
    return F.linear(x, p[8], p[9])

def fresh_weights():
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5), nn.Linear(400, 120), nn.Linear(120, 84),
              nn.Linear(84, 10)]
    return [t.detach().clone() for l in layers for t in (l.weight, l.bias)]

def train(p):
    x, y = images('train', 10000)
    p = [t.clone().requires_grad_(True) for t in p]
    opt = torch.optim.Adam(p, 1e-3)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    for i in range(0, len(x), 64):
        k = order[i:i + 64]
        opt.zero_grad(); F.cross_entropy(net(p, x[k]), y[k]).backward(); opt.step()
    return [t.detach() for t in p]

NAMES = [f'{l}.{k}' for l in ('conv1', 'conv2', 'fc1', 'fc2', 'fc3') for k in ('weight', 'bias')]
def save_safetensors(path, p):
    header, blobs, off = {}, [], 0
    for name, t in zip(NAMES, p):
        b = t.detach().contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h); f.write(b''.join(blobs))

def update(p, x, y, fedavg, graph):
    if not fedavg:
        return torch.autograd.grad(F.cross_entropy(net(p, x), y), p, create_graph=graph)
    q = list(p)
    for _ in range(a.local_epochs):
        g = torch.autograd.grad(F.cross_entropy(net(q, x), y), q, create_graph=graph)
        q = [qi - 0.01 * gi for qi, gi in zip(q, g)]
    return [pi - qi for pi, qi in zip(p, q)]

def tv(x):
    return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()

LO, HI = (0 - MEAN) / STD, (1 - MEAN) / STD
def invert(p, target, y, fedavg, n, seed):
    torch.manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [a.iters * 3 // 8, a.iters * 5 // 8, a.iters * 7 // 8], 0.1)
    pp = [t.clone().requires_grad_(True) for t in p]
    tnorm = torch.sqrt(sum((t * t).sum() for t in target))
    for _ in range(a.iters):
        u = update(pp, x, y, fedavg, True)
        dot = sum((ui * ti).sum() for ui, ti in zip(u, target))
        unorm = torch.sqrt(sum((ui * ui).sum() for ui in u))
        loss = 1 - dot / (unorm * tnorm + 1e-12) + a.tv * tv(x)
        g, = torch.autograd.grad(loss, [x])
        opt.zero_grad(); x.grad = g.sign(); opt.step(); sched.step()
        with torch.no_grad(): x.clamp_(LO, HI)
    return x.detach()

def gauss_window():
    k = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2); k /= k.sum()
    return np.outer(k, k)
WIN = gauss_window()
def ssim(a_, b_):
    h, w = a_.shape; vals = []
    for i in range(h - 10):
        for j in range(w - 10):
            pa, pb = a_[i:i + 11, j:j + 11], b_[i:i + 11, j:j + 11]
            ma, mb = (WIN * pa).sum(), (WIN * pb).sum()
            va, vb = (WIN * (pa - ma) ** 2).sum(), (WIN * (pb - mb) ** 2).sum()
            cov = (WIN * (pa - ma) * (pb - mb)).sum()
            vals.append((2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma * ma + mb * mb + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(vals))

def to_pixels(x): return (x * STD + MEAN).clamp(0, 1).squeeze(1).numpy().astype(np.float64)
def measure(rec, orig):
    r, o = to_pixels(rec), to_pixels(orig); n = len(o)
    mse = np.array([[((r[i] - o[j]) ** 2).mean() for j in range(n)] for i in range(n)])
    best = min(itertools.permutations(range(n)), key=lambda pm: sum(mse[i, pm[i]] for i in range(n)))
    return [(10 * np.log10(1 / max(mse[i, best[i]], 1e-12)), ssim(r[i], o[best[i]])) for i in range(n)]

case = a.case
batch = 4 if case.endswith('b4') else 1
fedavg = case.startswith('fedavg')
p = fresh_weights()
out = {'tool': 'pytorch', 'torch': torch.__version__, 'case': case, 'seed': a.seed, 'batch': batch, 'iters': a.iters,
       'threads': a.threads, 'tv': a.tv, 'update': 'fedavg' if fedavg else 'fedsgd'}
if case.startswith('trained'):
    t0 = time.time(); p = train(p); out['train_seconds'] = time.time() - t0
if a.save_weights: save_safetensors(a.save_weights, p)
X, Y = images('t10k', a.images)
scores, secs = [], []
for k in range(0, a.images, batch):
    x, y = X[k:k + batch], Y[k:k + batch]
    target = [t.detach() for t in update([t.clone().requires_grad_(True) for t in p], x, y, fedavg, False)]
    t0 = time.time(); rec = invert(p, target, y, fedavg, batch, a.seed + k); secs.append(time.time() - t0)
    scores += measure(rec, x)
out['psnr'] = [s[0] for s in scores]; out['ssim'] = [s[1] for s in scores]
out['psnr_median'] = float(np.median(out['psnr'])); out['ssim_median'] = float(np.median(out['ssim']))
out['seconds'] = secs; out['seconds_per_attack'] = float(np.median(secs))
print(json.dumps(out))
