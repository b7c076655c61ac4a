#!/usr/bin/env python3
# compare.py: `fedvim attack invert` beside torch_zoo_ig.py (PyTorch autograd, same attack) on
# ResNet-20 and VGG-11, Colored MNIST, batch 1 (test images 0 and 1, one attack each), 4 (images
# 0-3) and 16 (images 0-15), untrained (PyTorch's initialisation, seed 0) and trained (S Adam
# steps by torch_zoo_ig.py prepare), batch-norm statistics unknown (no prior: the attacker only
# has the train-mode batch statistics of its own candidates) and known (the prior of
# docs/attacks.md 7.2 with weight W towards the CLIENT'S TRUE per-layer batch mean / biased
# variance, written into the running statistics of the weights file fedvim loads). Both tools
# attack the same weights (safetensors written by PyTorch, fedvim --weights), the same images
# (checked: the originals row of every fedvim grid equals torch_zoo_ig.py's reproduction of
# fedvim's Colored MNIST), the same iterations, one restart, one thread each; the order of the two
# tools alternates from case to case. Writes OUT (results.json) after every case, grids under
# GRIDS (fedvim's invert_grid.png per attack) and prints a Markdown table.
# usage: compare.py FEDVIM_BIN MNIST_DIR [--iters 500] [--train-steps 300] [--bn-prior 0.01]
#        [--models vgg11,resnet20] [--batches 1,4,16] [--out results.json] [--grids DIR]
import argparse, json, os, platform, statistics, struct, subprocess, sys, tempfile, time, zlib
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument('fedvim'); ap.add_argument('mnist')
ap.add_argument('--iters', type=int, default=500); ap.add_argument('--train-steps', type=int, default=300)
ap.add_argument('--bn-prior', type=float, default=0.01); ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--models', default='vgg11,resnet20'); ap.add_argument('--batches', default='1,4,16')
ap.add_argument('--trained', default='0,1'); ap.add_argument('--bn', default='unknown,known')
ap.add_argument('--out', default='results.json'); ap.add_argument('--grids', default=None)
a = ap.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from torch_zoo_ig import cmnist_u8  # noqa: E402
env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OPENBLAS_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
PY = '/usr/bin/python3'
TZ = os.path.join(here, 'torch_zoo_ig.py')

def run(cmd):
    load = os.getloadavg()
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f'{" ".join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}')
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out['load_before'] = list(load); out['wall_seconds'] = time.time() - t0
    return out

def png_read(path):
    """8-bit RGB / grey, non-interlaced PNG (what fedvim writes) -> uint8 [H, W, C]."""
    raw = open(path, 'rb').read(); p = 8; idat = b''
    while p < len(raw):
        n = struct.unpack('>I', raw[p:p + 4])[0]; t = raw[p + 4:p + 8]; d = raw[p + 8:p + 8 + n]; p += 12 + n
        if t == b'IHDR': W, H, depth, ctype, _, _, inter = struct.unpack('>IIBBBBB', d)
        elif t == b'IDAT': idat += d
    assert depth == 8 and inter == 0 and ctype in (0, 2), (depth, ctype, inter)
    C = 3 if ctype == 2 else 1; stride = W * C
    data = zlib.decompress(idat); out = np.zeros((H, stride), np.int64); prev = np.zeros(stride, np.int64)
    for y in range(H):
        f = data[y * (stride + 1)]; line = np.frombuffer(data, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        cur = np.zeros(stride, np.int64)
        for i in range(stride):
            left = cur[i - C] if i >= C else 0; up = prev[i]; ul = prev[i - C] if i >= C else 0
            if f == 0: v = line[i]
            elif f == 1: v = line[i] + left
            elif f == 2: v = line[i] + up
            elif f == 3: v = line[i] + (left + up) // 2
            else:
                pa, pb, pc = abs(up - ul), abs(left - ul), abs(left + up - 2 * ul)
                v = line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else ul)
            cur[i] = v & 255
        out[y] = cur; prev = cur
    return out.reshape(H, W, C).astype(np.uint8)

def check_originals(grid, first, n):
    g = png_read(grid)
    mine, _ = cmnist_u8(a.mnist, 't10k', first, n)
    for k in range(n):
        cell = g[0:28, k * 29:k * 29 + 28].transpose(2, 0, 1)
        if not np.array_equal(cell, mine[k]):
            sys.exit(f'{grid}: original {k} (test image {first + k}) differs from torch_zoo_ig.py\'s Colored MNIST')
    return True

# the binary's commit: a COMMIT file beside a frozen copy of it, else this checkout's HEAD
_cf = os.path.join(os.path.dirname(os.path.abspath(a.fedvim)), 'COMMIT')
commit = open(_cf).read().strip() if os.path.exists(_cf) else \
    subprocess.run(['git', '-C', here, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
res = {'machine': platform.node(), 'cpus': os.cpu_count(), 'fedvim_commit': commit, 'iters': a.iters, 'threads': a.threads,
       'train_steps': a.train_steps, 'bn_prior_weight': a.bn_prior, 'date_start': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
       'load_start': list(os.getloadavg()), 'models': {}, 'cases': {}}
tmp = tempfile.mkdtemp(prefix='fv_igzoo_')
grids = a.grids or os.path.join(tmp, 'grids')
case_no = 0
for model in a.models.split(','):
    for trained in [int(t) for t in a.trained.split(',')]:
        wt = os.path.join(tmp, f'{model}_{trained}.safetensors')
        prep = run([PY, TZ, 'prepare', a.mnist, '--model', model, '--train-steps', str(a.train_steps if trained else 0),
                    '--out', wt, '--threads', str(a.threads)])
        res['models'][f'{model}_{"trained" if trained else "untrained"}'] = prep
        print(f'{model} trained={trained}: {prep}', flush=True)
        for bn in a.bn.split(','):
            for B in [int(b) for b in a.batches.split(',')]:
                name = f'{model}/{"trained" if trained else "untrained"}/bn-{bn}/b{B}'
                firsts = [0, 1] if B == 1 else [0]
                runs = {'fedvim': [], 'pytorch': []}
                for first in firsts:
                    wk = os.path.join(tmp, f'{model}_{trained}_known_{first}_{B}.safetensors')
                    if bn == 'known':
                        run([PY, TZ, 'known', a.mnist, '--model', model, '--weights', wt, '--first', str(first),
                             '--batch', str(B), '--out', wk, '--threads', str(a.threads)])
                    prior = a.bn_prior if bn == 'known' else 0.0
                    gdir = os.path.join(grids, name.replace('/', '_') + f'_f{first}')
                    fv_cmd = [a.fedvim, 'attack', 'invert', '--model', model, '--dataset', 'cmnist', '--data-dir', a.mnist,
                              '--first', str(first), '--images', str(B), '--batch', str(B), '--iters', str(a.iters),
                              '--restarts', '1', '--threads', str(a.threads), '--json', '--tv', '1e-4', '--seed', '1',
                              '--weights', wk if bn == 'known' else wt, '--bn-prior', str(prior), '--out', gdir]
                    pt_cmd = [PY, TZ, 'attack', a.mnist, '--model', model, '--weights', wt, '--first', str(first),
                              '--batch', str(B), '--iters', str(a.iters), '--seed', str(100 + first), '--threads', str(a.threads),
                              '--bn-prior', str(prior)] + (['--known', wk] if bn == 'known' else [])
                    order = ['pytorch', 'fedvim'] if case_no % 2 == 0 else ['fedvim', 'pytorch']
                    for tool in order:
                        r = run(pt_cmd if tool == 'pytorch' else fv_cmd)
                        if tool == 'fedvim':
                            r['same_images_as_pytorch'] = check_originals(os.path.join(gdir, 'invert_grid.png'), first, B)
                        r['order'] = order
                        runs[tool].append(r)
                case_no += 1
                summ = {}
                for tool, rs in runs.items():
                    ps = [v for r in rs for v in r['psnr']]; ss = [v for r in rs for v in r['ssim']]
                    secs = [v for r in rs for v in r['seconds']]
                    summ[tool] = {'psnr_median': statistics.median(ps), 'ssim_median': statistics.median(ss),
                                  'seconds_per_attack': statistics.median(secs), 'images': len(ps), 'runs': rs}
                res['cases'][name] = summ
                res['date_end'] = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()); res['load_end'] = list(os.getloadavg())
                f, p = summ['fedvim'], summ['pytorch']
                print(f"{name}: fedvim {f['psnr_median']:.2f} dB {f['ssim_median']:.3f} {f['seconds_per_attack']:.2f} s | "
                      f"pytorch {p['psnr_median']:.2f} dB {p['ssim_median']:.3f} {p['seconds_per_attack']:.2f} s | "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
                json.dump(res, open(a.out, 'w'), indent=1)

print('\n| model | weights | BN statistics | batch | fedvim PSNR dB / SSIM | PyTorch PSNR dB / SSIM | fedvim s / attack | PyTorch s / attack | PyTorch / fedvim time |')
print('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for name, r in res['cases'].items():
    model, tr, bn, b = name.split('/')
    f, p = r['fedvim'], r['pytorch']
    print(f"| {model} | {tr} | {bn[3:]} | {b[1:]} | {f['psnr_median']:.1f} / {f['ssim_median']:.2f} | {p['psnr_median']:.1f} / {p['ssim_median']:.2f} | "
          f"{f['seconds_per_attack']:.2f} | {p['seconds_per_attack']:.2f} | {p['seconds_per_attack'] / f['seconds_per_attack']:.1f}x |")
