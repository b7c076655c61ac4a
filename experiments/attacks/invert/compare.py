#!/usr/bin/env python3
# compare.py: `fedvim attack invert` beside its PyTorch reference (torch_ig.py, same protocol, same
# iteration budget, same thread count) on the four LeNet-5 cases, alternating the two tools case
# by case on the same machine. Both attack the SAME weights: torch_ig.py writes the model it
# attacks (PyTorch's initialisation, trained by PyTorch for the trained case) and fedvim loads it
# with --weights, so the figures differ only by the attack's implementation and random start.
# With --seeds S each tool attacks every case S times from different noise starts (fedvim --seed
# s, torch_ig.py --seed 100 s); the medians are over all images of all starts. Writes RESULTS (default results.json): per case and tool the
# medians, every image's PSNR / SSIM, seconds per attack, and the 1-minute load average before
# each run; prints a Markdown table.
# usage: compare.py FEDVIM_BIN MNIST_DIR [--iters 2000] [--images 4] [--threads 1] [--out results.json]
#        [--cases untrained_b1,trained_b1,untrained_b4,fedavg_b4]
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument('fedvim'); ap.add_argument('mnist')
ap.add_argument('--iters', type=int, default=2000); ap.add_argument('--images', type=int, default=4)
ap.add_argument('--threads', type=int, default=1); ap.add_argument('--out', default='results.json')
ap.add_argument('--cases', default='untrained_b1,trained_b1,untrained_b4,fedavg_b4')
ap.add_argument('--seeds', type=int, default=1)
ap.add_argument('--fd', default='central', help="fedvim's --fd (central or one-sided)")
a = ap.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), FEDVIM_DATA=os.path.dirname(os.path.abspath(a.mnist)))

def fedvim_args(case, weights, seed):
    b = 4 if case.endswith('b4') else 1
    args = ['attack', 'invert', '--model', 'lenet5', '--dataset', 'mnist', '--images', str(a.images), '--batch', str(b),
            '--iters', str(a.iters), '--threads', str(a.threads), '--json', '--tv', '1e-4', '--weights', weights, '--seed', str(seed), '--fd', a.fd]
    if case.startswith('fedavg'): args += ['--update', 'fedavg', '--local-epochs', '5', '--local-lr', '0.01']
    return args

def run(cmd):
    load = os.getloadavg()[0]
    t0 = time.time()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f'{cmd[0]} failed ({r.returncode}): {r.stderr[-2000:]}')
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out['load_before'] = load; out['wall_seconds'] = time.time() - t0
    return out

commit = subprocess.run(['git', '-C', here, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
res = {'machine': platform.node(), 'cpus': os.cpu_count(), 'commit': commit, 'iters': a.iters, 'images': a.images,
       'threads': a.threads, 'seeds': a.seeds, 'fd': a.fd, 'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'cases': {}}
tmp = tempfile.mkdtemp(prefix='fv_invert_cmp_')
for case in a.cases.split(','):
    weights = os.path.join(tmp, case + '.safetensors')
    runs = {'fedvim': [], 'pytorch': []}
    for seed in range(1, a.seeds + 1):
        pt = run(['/usr/bin/python3', os.path.join(here, 'torch_ig.py'), a.mnist, '--case', case, '--iters', str(a.iters),
                  '--images', str(a.images), '--threads', str(a.threads), '--save-weights', weights,
                  '--seed', str(100 * seed)])
        fv = run([a.fedvim] + fedvim_args(case, weights, seed))
        fv['weights'] = "PyTorch's (torch_ig.py --save-weights)"
        runs['pytorch'].append(pt); runs['fedvim'].append(fv)
    summ = {}
    for tool, rs in runs.items():
        ps = [v for r in rs for v in r['psnr']]; ss = [v for r in rs for v in r['ssim']]
        secs = [v for r in rs for v in r['seconds']]
        summ[tool] = {'psnr_median': statistics.median(ps), 'ssim_median': statistics.median(ss),
                      'seconds_per_attack': statistics.median(secs), 'images': len(ps), 'runs': rs}
    res['cases'][case] = summ
    fv, pt = summ['fedvim'], summ['pytorch']
    print(f"{case}: fedvim {fv['psnr_median']:.2f} dB {fv['ssim_median']:.3f} {fv['seconds_per_attack']:.2f} s | "
          f"pytorch {pt['psnr_median']:.2f} dB {pt['ssim_median']:.3f} {pt['seconds_per_attack']:.2f} s", flush=True)
    json.dump(res, open(a.out, 'w'), indent=1)

print('\n| case | fedvim PSNR / SSIM | PyTorch PSNR / SSIM | fedvim s / attack | PyTorch s / attack | speed-up |')
print('| --- | ---: | ---: | ---: | ---: | ---: |')
for case, r in res['cases'].items():
    f, p = r['fedvim'], r['pytorch']
    print(f"| {case} | {f['psnr_median']:.1f} / {f['ssim_median']:.2f} | {p['psnr_median']:.1f} / {p['ssim_median']:.2f} | "
          f"{f['seconds_per_attack']:.2f} | {p['seconds_per_attack']:.2f} | {p['seconds_per_attack'] / f['seconds_per_attack']:.1f}x |")
