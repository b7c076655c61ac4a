#!/usr/bin/env python3
# torch_zoo_ig.py: the PyTorch side of compare.py in this folder: "Inverting Gradients" (Geiping et
# al. 2020) by torch.autograd double backprop on fedvim's zoo models ResNet-20 and VGG-11
# (tests/torch_models.py, fedvim's tensor names), on Colored MNIST test images reproduced here
# exactly as fedvim builds them (shared/data/data.c fv_cmnist_make, seed 2 for the test split;
# compare.py checks them against the originals fedvim writes in its grid).
#
# Subcommands:
#   prepare MNIST_DIR --model M [--train-steps S] --out W.safetensors
#       PyTorch's initialisation of M (seed 0); with S > 0, S Adam steps (1e-3, batch 64, train
#       mode) on Colored MNIST training images 0..64 S - 1 (in order), then the test accuracy on
#       test images 0..1999 (eval mode, running statistics). Writes every tensor of the model
#       under fedvim's names (running statistics included, num_batches_tracked left out) and
#       prints one JSON line.
#   known MNIST_DIR --model M --weights W --first K --batch B --out WK.safetensors
#       The client's true batch-norm statistics: per batch-norm layer, the per-channel mean and
#       biased variance of its input over the client's batch (test images K..K+B-1) in the
#       train-mode forward at the given weights. Writes W with running_mean / running_var
#       replaced by them: fedvim's --bn-prior pulls towards the running statistics of the
#       weights it loads, so this file is "batch-norm statistics known" for fedvim. Running
#       statistics play no other part in a train-mode fedSGD gradient.
#   attack MNIST_DIR --model M --weights W --first K --batch B --iters N [--bn-prior X
#       --known WK.safetensors] [--seed S] [--restarts R] [--device cpu|cuda]
#       The client's update: the gradient of the mean cross-entropy over test images K..K+B-1,
#       batch norm in train mode (batch statistics), labels known. Attack: minimise
#       1 - cos(update(x), target) + tv TV(x) [+ X sum over batch-norm layers of
#       ||mu_B(x) - mu*||^2 + ||var_B(x) - var*||^2, mu_B / var_B the candidates' per-channel
#       batch mean / biased variance in the same train-mode forward, mu* / var* from WK's
#       running statistics] with Adam (lr 0.1) on the sign of the gradient, the step x0.1 at
#       3/8, 5/8, 7/8 of N, clamped to [-1, 1] (pixels [0, 1] under cmnist's 0.5 / 0.5
#       normalisation), start N(0, 1) from torch seed S. Metrics as attacks/metrics.h: matched by
#       the best assignment on MSE (exhaustive up to 8, fedvim's greedy rule above), PSNR on
#       all values (range 1), SSIM averaged over channels (11x11 Gaussian, sigma 1.5, valid
#       positions). Prints one JSON line. R restarts run one after another (restart r from torch
#       seed S + r), the lowest loss at the last iteration wins; seconds cover all of them.
#       --device cuda runs the model and the attack on the GPU (timed with synchronisation).
import argparse, gzip, itertools, json, os, struct, sys, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', '..', 'tests'))
from torch_models import build  # noqa: E402

M64 = (1 << 64) - 1

# ---- Colored MNIST exactly as shared/data/data.c and shared/rng.c make it ----
def splitmix(x):
    x = (x + 0x9e3779b97f4a7c15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
    return x, z ^ (z >> 31)

class Rng:
    def __init__(s, seed, stream):
        x = (seed ^ ((stream * 0xd1342543de82ef95 + 0x2545f4914f6cdd1d) & M64)) & M64
        _, y = splitmix(x); y ^= seed
        s.s = []
        for _ in range(4):
            y, z = splitmix(y); s.s.append(z)
    def u64(s):
        q = s.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64
        r = (rotl((q[1] * 5) & M64, 7) * 9) & M64
        t = (q[1] << 17) & M64
        q[2] ^= q[0]; q[3] ^= q[1]; q[1] ^= q[2]; q[0] ^= q[3]; q[2] ^= t; q[3] = rotl(q[3], 45)
        return r
    def below(s, n):
        m = s.u64() * n; lo = m & M64
        if lo < n:
            t = ((1 << 64) - n) % n
            while lo < t:
                m = s.u64() * n; lo = m & M64
        return m >> 64

def colours(seed, index):
    r = Rng(seed, index)
    for _ in range(64):
        fg = [r.below(256) for _ in range(3)]; bg = [r.below(256) for _ in range(3)]
        if sum((a - b) ** 2 for a, b in zip(fg, bg)) >= 160 * 160: return fg, bg
    return fg, [255 if v < 128 else 0 for v in fg]

def read_idx(path):
    if not os.path.exists(path): path += '.gz'
    raw = (gzip.open if path.endswith('.gz') else open)(path, 'rb').read()
    nd = raw[3]; dims = struct.unpack('>' + 'I' * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)

def cmnist_u8(mnist, split, first, n):
    """uint8 [n, 3, 28, 28] and labels of Colored MNIST images first..first+n-1 of split."""
    grey = read_idx(f'{mnist}/{split}-images-idx3-ubyte')[first:first + n].astype(np.int64)
    y = read_idx(f'{mnist}/{split}-labels-idx1-ubyte')[first:first + n].astype(np.int64)
    seed = 1 if split == 'train' else 2
    out = np.empty((n, 3, 28, 28), np.uint8)
    v = np.arange(256)
    for i in range(n):
        fg, bg = colours(seed, first + i)
        for ch in range(3):
            lut = (bg[ch] * (255 - v) + fg[ch] * v + 127) // 255
            out[i, ch] = lut[grey[i]]
    return out, y

def to_input(u8): return torch.tensor((u8.astype(np.float32) / 255.0 - 0.5) / 0.5)

# ---- safetensors with fedvim's names ----
def save_st(path, sd):
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        if name.endswith('num_batches_tracked'): continue
        b = t.detach().float().contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode(); h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h); f.write(b''.join(blobs))

def load_st(path):
    raw = open(path, 'rb').read(); hl = struct.unpack('<Q', raw[:8])[0]
    hdr = json.loads(raw[8:8 + hl]); base = 8 + hl; out = {}
    for k, v in hdr.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']
        out[k] = torch.tensor(np.frombuffer(raw[base + a:base + b], '<f4').reshape(v['shape']).copy())
    return out

def model_from(name, path):
    m = build(name, 3, 28, 28)
    sd = m.state_dict(); st = load_st(path)
    missing = [k for k in sd if k not in st and not k.endswith('num_batches_tracked')]
    extra = [k for k in st if k not in sd]
    if missing or extra: sys.exit(f'{path}: missing {missing}, unknown {extra}')
    sd.update(st); m.load_state_dict(sd)
    return m

# ---- batch norm in train mode, written out (batch 1 at 1x1 spatial is legal here, as in fedvim),
# recording each layer's input statistics for the prior ----
STATS = []
def bn_train(self, x):
    mu = x.mean((0, 2, 3)); var = x.var((0, 2, 3), unbiased=False)
    STATS.append((self, mu, var))
    s = (self.weight / torch.sqrt(var + self.eps))[None, :, None, None]
    return (x - mu[None, :, None, None]) * s + self.bias[None, :, None, None]

def ssim_img(a, b):
    k = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2); k /= k.sum()
    w = torch.tensor(np.outer(k, k))[None, None]
    A = torch.tensor(a)[:, None]; B = torch.tensor(b)[:, None]
    f = lambda z: F.conv2d(z, w)
    ma, mb = f(A), f(B)
    va, vb, cov = f(A * A) - ma * ma, f(B * B) - mb * mb, f(A * B) - ma * mb
    s = (2 * ma * mb + 1e-4) * (2 * cov + 9e-4) / ((ma * ma + mb * mb + 1e-4) * (va + vb + 9e-4))
    return float(s.mean((1, 2, 3)).mean())

def assign(score):  # fedvim's fv_invert_assign: exhaustive up to 8, greedy best pair first above
    n = len(score)
    if n <= 8:
        return list(max(itertools.permutations(range(n)), key=lambda pm: sum(score[i][pm[i]] for i in range(n))))
    perm, ru, u = [0] * n, [False] * n, [False] * n
    for _ in range(n):
        bi = bj = -1
        for i in range(n):
            if ru[i]: continue
            for j in range(n):
                if not u[j] and (bi < 0 or score[i][j] > score[bi][bj]): bi, bj = i, j
        perm[bi] = bj; ru[bi] = True; u[bj] = True
    return perm

def measure(rec, orig_u8):
    r = (rec.double() * 0.5 + 0.5).clamp(0, 1).numpy(); o = orig_u8.astype(np.float64) / 255.0
    r = r.astype(np.float32).astype(np.float64)  # fedvim measures float32 pixels
    n = len(o)
    mse = [[float(((r[i] - o[j]) ** 2).mean()) for j in range(n)] for i in range(n)]
    pm = assign([[-v for v in row] for row in mse])
    ps, ss = [0.0] * n, [0.0] * n
    for i in range(n):
        k = pm[i]; ps[k] = 10 * np.log10(1 / max(mse[i][k], 1e-12)); ss[k] = ssim_img(r[i], o[k])
    return ps, ss

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cmd', choices=['prepare', 'known', 'attack']); ap.add_argument('mnist')
    ap.add_argument('--model', required=True); ap.add_argument('--weights'); ap.add_argument('--known')
    ap.add_argument('--out'); ap.add_argument('--train-steps', type=int, default=0)
    ap.add_argument('--first', type=int, default=0); ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--iters', type=int, default=500); ap.add_argument('--tv', type=float, default=1e-4)
    ap.add_argument('--bn-prior', type=float, default=0.0); ap.add_argument('--seed', type=int, default=100)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--restarts', type=int, default=1); ap.add_argument('--device', default='cpu')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = {'tool': 'pytorch', 'torch': torch.__version__, 'cmd': a.cmd, 'model': a.model}
    if a.cmd == 'prepare':
        torch.manual_seed(0)
        m = build(a.model, 3, 28, 28)
        if a.train_steps > 0:
            xu, y = cmnist_u8(a.mnist, 'train', 0, 64 * a.train_steps); x = to_input(xu); y = torch.tensor(y)
            opt = torch.optim.Adam(m.parameters(), 1e-3); m.train(); t0 = time.time()
            for s in range(a.train_steps):
                opt.zero_grad(); F.cross_entropy(m(x[64 * s:64 * s + 64]), y[64 * s:64 * s + 64]).backward(); opt.step()
            out['train_seconds'] = time.time() - t0
            xt, yt = cmnist_u8(a.mnist, 't10k', 0, 2000); m.eval()
            with torch.no_grad():
                out['test_accuracy'] = float((m(to_input(xt)).argmax(1) == torch.tensor(yt)).float().mean())
        out['train_steps'] = a.train_steps
        save_st(a.out, m.state_dict()); out['weights'] = a.out
        print(json.dumps(out)); return
    nn.BatchNorm2d.forward = bn_train
    dev = torch.device(a.device)
    m = model_from(a.model, a.weights).to(dev)
    xu, y = cmnist_u8(a.mnist, 't10k', a.first, a.batch); X = to_input(xu).to(dev); Y = torch.tensor(y).to(dev)
    P = list(m.parameters())
    STATS.clear(); loss = F.cross_entropy(m(X), Y)
    target = [t.detach() for t in torch.autograd.grad(loss, P)]
    if a.cmd == 'known':
        sd = m.state_dict(); names = {mod: n for n, mod in m.named_modules()}
        for mod, mu, var in STATS:
            sd[names[mod] + '.running_mean'] = mu.detach().clone(); sd[names[mod] + '.running_var'] = var.detach().clone()
        save_st(a.out, sd); out['weights'] = a.out; out['bn_layers'] = len(STATS)
        print(json.dumps(out)); return
    prior = []
    if a.bn_prior > 0:
        ks = load_st(a.known); names = {mod: n for n, mod in m.named_modules()}
        prior = {mod: (ks[names[mod] + '.running_mean'].to(dev), ks[names[mod] + '.running_var'].to(dev))
                 for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)}
    tnorm = torch.sqrt(sum((t * t).sum() for t in target))
    def tv(z): return (z[:, :, 1:] - z[:, :, :-1]).abs().mean() + (z[:, :, :, 1:] - z[:, :, :, :-1]).abs().mean()
    def sync():
        if dev.type == 'cuda': torch.cuda.synchronize()
    sync(); t0 = time.time()
    best = None  # (last loss, restart, x, cosine): restarts one after another, the lowest last loss wins
    for r in range(a.restarts):
        torch.manual_seed(a.seed + r)
        x = torch.randn(a.batch, 3, 28, 28).to(dev).requires_grad_(True)
        opt = torch.optim.Adam([x], lr=0.1)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [a.iters * 3 // 8, a.iters * 5 // 8, a.iters * 7 // 8], 0.1)
        for _ in range(a.iters):
            STATS.clear()
            u = torch.autograd.grad(F.cross_entropy(m(x), Y), P, create_graph=True)
            dot = sum((ui * ti).sum() for ui, ti in zip(u, target)); unorm = torch.sqrt(sum((ui * ui).sum() for ui in u))
            cos = dot / (unorm * tnorm + 1e-12)
            L = 1 - cos + a.tv * tv(x)
            if prior:
                L = L + a.bn_prior * sum(((mu - prior[mod][0]) ** 2).sum() + ((var - prior[mod][1]) ** 2).sum()
                                         for mod, mu, var in STATS)
            g, = torch.autograd.grad(L, [x])
            opt.zero_grad(); x.grad = g.sign(); opt.step(); sched.step()
            with torch.no_grad(): x.clamp_(-1, 1)
        lv = float(L)
        if best is None or lv < best[0]: best = (lv, r, x.detach().clone(), float(cos))
    sync(); secs = time.time() - t0
    ps, ss = measure(best[2].cpu(), xu)
    out.update({'first': a.first, 'batch': a.batch, 'iters': a.iters, 'seed': a.seed, 'bn_prior': a.bn_prior,
                'restarts': a.restarts, 'restart': best[1], 'device': a.device,
                'psnr': ps, 'ssim': ss, 'seconds': [secs], 'cosine_final': best[3]})
    print(json.dumps(out))

if __name__ == '__main__':
    main()
