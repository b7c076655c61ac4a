#!/usr/bin/env python3
# ceiling.py: how fast fedvim's Inverting Gradients attack could be beside PyTorch's on ResNet-20 and
# VGG-11 if everything but the convolutions took no time at all (issue 14's speed goal: 3x
# PyTorch's seconds per attack at equal threads).
#
# Both tools run their convolutions in oneDNN 2.6's JIT kernels (fedvim through shared/nn/conv_dnnl.c,
# PyTorch 1.13 through mkldnn). Per case this script runs, one thread each and in alternating order:
#   - fedvim's attack under `perf record` (cpu-clock samples): its loop seconds (result.json) and the
#     CPU seconds it spent in JIT-compiled code (perf's "[JIT]" objects: oneDNN's convolution kernels
#     and its weight reorders; fedvim's own layout transposes, batch norm and the rest are in the
#     fedvim binary and do not count);
#   - PyTorch's attack (torch_zoo_ig.py, autograd double backprop): its loop seconds.
# ceiling = PyTorch's seconds / fedvim's JIT seconds: the ratio fedvim would reach if the rest of
# its work (batch norm, ReLU, residual adds, layout moves, the optimiser) cost nothing. Where the
# ceiling is near or below 3, the goal cannot be met with the convolutions both tools share; only
# fewer convolution passes could (docs/attacks.md 7.1 counts them).
#
# usage: ceiling.py FEDVIM_BIN MNIST_DIR [--iters 40] [--models resnet20,vgg11] [--batches 1,4,16]
#        [--out ceiling.json]    (needs Debian's linux-perf and perf_event_paranoid <= 2, or root)
import argparse, json, os, platform, re, shutil, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument('fedvim'); ap.add_argument('mnist')
ap.add_argument('--iters', type=int, default=40); ap.add_argument('--models', default='resnet20,vgg11')
ap.add_argument('--batches', default='1,4,16'); ap.add_argument('--repeats', type=int, default=2)
ap.add_argument('--freq', type=int, default=999); ap.add_argument('--out', default='ceiling.json')
a = ap.parse_args()
if not shutil.which('perf'):
    sys.exit('ceiling.py: needs perf (Debian: apt install linux-perf)')
here = os.path.dirname(os.path.abspath(__file__))
env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
PY = '/usr/bin/python3'
TZ = os.path.join(here, 'torch_zoo_ig.py')
tmp = tempfile.mkdtemp(prefix='fv_igceil_')


def run(cmd):
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f'{" ".join(cmd)} failed ({r.returncode}): {r.stderr[-2000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])


def jit_seconds(data):
    """CPU seconds of the samples perf attributes to JIT-compiled code, and of all samples."""
    r = subprocess.run(['perf', 'report', '-i', data, '--no-children', '--sort', 'dso', '-n', '--stdio'],
                       capture_output=True, text=True)
    jit = total = 0
    for line in r.stdout.splitlines():
        m = re.match(r'\s*[\d.]+%\s+(\d+)\s+(.*)$', line)
        if m:
            total += int(m.group(1))
            jit += int(m.group(1)) if m.group(2).startswith('[JIT]') else 0
    if total == 0:
        sys.exit(f'perf report of {data} has no samples: {r.stderr[-500:]}')
    return jit / a.freq, total / a.freq


_cf = os.path.join(os.path.dirname(os.path.abspath(a.fedvim)), 'COMMIT')
commit = open(_cf).read().strip() if os.path.exists(_cf) else \
    subprocess.run(['git', '-C', here, 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
res = {'machine': platform.node(), 'cpu': next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
                                               if l.startswith('model name')), '?'),
       'fedvim_commit': commit, 'iters': a.iters, 'threads': 1, 'perf_freq': a.freq,
       'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'load_start': list(os.getloadavg()), 'cases': {}}
k = 0
for model in a.models.split(','):
    wt = os.path.join(tmp, f'{model}.safetensors')
    run([PY, TZ, 'prepare', a.mnist, '--model', model, '--train-steps', '0', '--out', wt, '--threads', '1'])
    for B in [int(b) for b in a.batches.split(',')]:
        fv_cmd = [a.fedvim, 'attack', 'invert', '--model', model, '--dataset', 'cmnist', '--data-dir', a.mnist,
                  '--first', '0', '--images', str(B), '--batch', str(B), '--iters', str(a.iters), '--restarts', '1',
                  '--threads', '1', '--json', '--tv', '1e-4', '--seed', '1', '--weights', wt]
        pt_cmd = [PY, TZ, 'attack', a.mnist, '--model', model, '--weights', wt, '--first', '0', '--batch', str(B),
                  '--iters', str(a.iters), '--seed', '100', '--threads', '1', '--bn-prior', '0']
        fv, pt = [], []
        for rep in range(a.repeats):
            order = ('fv', 'pt') if (k + rep) % 2 == 0 else ('pt', 'fv')
            for tool in order:
                if tool == 'pt':
                    pt.append(statistics.median(run(pt_cmd)['seconds']))
                    continue
                data = os.path.join(tmp, f'perf_{model}_{B}_{rep}.data')
                out = run(['perf', 'record', '-q', '-F', str(a.freq), '-o', data, '--'] + fv_cmd)
                jit, cpu = jit_seconds(data)
                fv.append({'seconds': statistics.median(out['seconds']), 'jit_seconds': jit, 'cpu_seconds': cpu})
        k += 1
        f = min(fv, key=lambda r: r['seconds'])  # each tool's fastest repeat (least disturbed)
        p = min(pt)
        c = {'fedvim_seconds': f['seconds'], 'fedvim_jit_seconds': f['jit_seconds'],
             'fedvim_process_cpu_seconds': f['cpu_seconds'], 'pytorch_seconds': p,
             'ratio': p / f['seconds'], 'ceiling': p / f['jit_seconds'], 'runs': {'fedvim': fv, 'pytorch': pt}}
        res['cases'][f'{model}/b{B}'] = c
        print(f'{model} batch {B}: fedvim {f["seconds"]:.2f} s (conv kernels {f["jit_seconds"]:.2f} s), '
              f'PyTorch {p:.2f} s: ratio {c["ratio"]:.2f}x, ceiling {c["ceiling"]:.2f}x', flush=True)
res['load_end'] = list(os.getloadavg())
json.dump(res, open(a.out, 'w'), indent=1)
print('\n| model | batch | fedvim s | of which oneDNN JIT s | PyTorch s | PyTorch / fedvim | ceiling (PyTorch / fedvim JIT) |')
print('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for name, c in res['cases'].items():
    m, b = name.split('/b')
    print(f'| {m} | {b} | {c["fedvim_seconds"]:.2f} | {c["fedvim_jit_seconds"]:.2f} | {c["pytorch_seconds"]:.2f} | '
          f'{c["ratio"]:.2f}x | {c["ceiling"]:.2f}x |')
