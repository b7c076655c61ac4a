#!/usr/bin/env bash
# run.sh [OUT]: the many-clients benchmark (README.md): the cohorts of cohort100.ini (100 clients of
# 600 images) and cohort1000.ini (1,000 clients of 60 images), FedAvg of LeNet-5 on MNIST for 5
# rounds, run by fedvim in several placements of the same clients, and by the PyTorch loop
# (torch_cohort.py) over the same cohort, one after another in the same call; then summary.json and
# a table: seconds per round (median of rounds 2-5, no evaluation in them), clients per second, the
# test accuracy after round 5, and each row's ratio to the PyTorch loop.
#
#   FEDVIM=build/fedvim bash experiments/cohort/run.sh /tmp/cohort
#
# Placements (PLACEMENTS, default "1x1x2 2x1x1 1x2x1"): WxSxT = W worker processes of S slots
# ([fl] worker_slots) with T threads each. DEVICE (default cpu): cpu, or cuda for the GPU form
# (then the default placements are "1x1x1 1x4x1 1x8x1 10x1x1" and the PyTorch loop runs on cuda).
# COHORTS (default "100 1000"); TORCH_THREADS (default "1 2" on the CPU, "1" with cuda): the
# PyTorch loop's thread counts, each a row; the fastest is the reference of the ratios. Needs the MNIST files
# (scripts/setup.sh) and Debian's python3-torch (scripts/setup.sh --test-deps; PYTHON picks another).
# fedvim runs whose summary.json exists are kept (a rerun completes a partial OUT).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${FEDVIM:-$root/build/fedvim}
out=${1:-/tmp/fedvim-cohort}
dev=${DEVICE:-cpu}
if [[ $dev == cpu ]]; then
  placements=${PLACEMENTS:-1x1x2 2x1x1 1x2x1}
  torch_threads=${TORCH_THREADS:-1 2}
else
  placements=${PLACEMENTS:-1x1x1 1x4x1 1x8x1 10x1x1}
  torch_threads=${TORCH_THREADS:-1}
fi
export FEDVIM_DATA=${FEDVIM_DATA:-$root/data}
# Debian's python3-torch lives in the system python; a python3 earlier on PATH may lack it
py=${PYTHON:-}
for cand in /usr/bin/python3 python3; do
  [[ -z $py ]] && env -u LD_LIBRARY_PATH "$cand" -c 'import torch, numpy' 2>/dev/null && py=$cand
done
[[ -n $py ]] || { echo "run.sh: no python3 with torch and numpy (scripts/setup.sh --test-deps)" >&2; exit 2; }
mkdir -p "$out"
for n in ${COHORTS:-100 1000}; do
  for p in $placements; do
    IFS=x read -r W S T <<< "$p"
    name=c${n}_${dev}_${p}
    ini=$out/$name.ini
    sed -e "s/^workers = .*/workers = $W\nworker_slots = $S/" -e "s|^dir = .*|dir = $out|" \
        -e "/^\[output\]/,\$ s/^name = .*/name = $name/" -e "s/^local_epochs = 1/local_epochs = 1\nthreads = $T/" \
        "$here/cohort$n.ini" > "$ini"
    [[ -s $out/$name/summary.json ]] && { echo "== fedvim $name: done before"; continue; }
    echo "== fedvim $name (load $(cut -d' ' -f1 /proc/loadavg))"
    "$bin" run "$ini" --quiet --overwrite ${dev:+--device $dev} > "$out/$name.log" 2>&1 ||
      { cat "$out/$name.log"; exit 1; }
  done
  for t in $torch_threads; do
    tj=$out/torch_c${n}_${dev}_t$t.jsonl
    [[ -s $tj ]] && grep -q seconds_per_round "$tj" && { echo "== pytorch c${n}_${dev}_t$t: done before"; continue; }
    echo "== pytorch c${n}_${dev}_t$t (load $(cut -d' ' -f1 /proc/loadavg))"
    env -u LD_LIBRARY_PATH OMP_NUM_THREADS=$t "$py" "$here/torch_cohort.py" \
        --data "$FEDVIM_DATA/mnist" --clients "$n" --threads "$t" --device "$dev" > "$tj"
  done
done
"$py" - "$out" "$dev" <<'EOF'
import glob, json, os, statistics, sys
out, dev = sys.argv[1], sys.argv[2]
rows = []
for n in sorted({int(os.path.basename(p).split('_')[1][1:]) for p in glob.glob(f'{out}/torch_c*_{dev}_t*.jsonl')}):
    for tj in sorted(glob.glob(f'{out}/torch_c{n}_{dev}_t*.jsonl')):
        t = json.loads(open(tj).read().strip().splitlines()[-1])
        rows.append({'tool': 'pytorch loop', 'clients': n, 'placement': f"1 process, {t['threads']} thread(s)",
                     'seconds_per_round': t['seconds_per_round'], 'test_accuracy': t['test_accuracy']})
    for d in sorted(glob.glob(f'{out}/c{n}_{dev}_*/metrics.jsonl')):
        name = os.path.basename(os.path.dirname(d))
        W, S, T = name.split('_')[-1].split('x')
        m = [json.loads(l) for l in open(d)]
        work = [r['seconds'] - r.get('eval_seconds', 0) for r in m[1:]] or [m[0]['seconds']]
        s = json.load(open(os.path.join(os.path.dirname(d), 'summary.json')))
        rows.append({'tool': 'fedvim', 'clients': n,
                     'placement': f'{W} worker(s) x {S} slot(s) x {T} thread(s)',
                     'seconds_per_round': statistics.median(work), 'test_accuracy': m[-1]['test_accuracy'],
                     'params_hash': s.get('params_hash')})
for r in rows:
    ref = min(x['seconds_per_round'] for x in rows if x['tool'] == 'pytorch loop' and x['clients'] == r['clients'])
    r['clients_per_second'] = round(r['clients'] / r['seconds_per_round'], 1)
    r['speed_vs_fastest_pytorch'] = round(ref / r['seconds_per_round'], 2)
json.dump({'device': dev, 'rows': rows}, open(f'{out}/summary.json', 'w'), indent=1)
print('| clients | tool | placement | s / round | clients / s | speed vs the fastest PyTorch loop | test accuracy after 5 rounds |')
print('| ---: | --- | --- | ---: | ---: | ---: | ---: |')
for r in rows:
    print(f"| {r['clients']} | {r['tool']} | {r['placement']} | {r['seconds_per_round']:.2f} | "
          f"{r['clients_per_second']} | {r['speed_vs_fastest_pytorch']}x | {100 * r['test_accuracy']:.2f}% |")
EOF
