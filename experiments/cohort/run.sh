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
# PyTorch loop's thread counts, each a row; the fastest is the reference of the ratios.
# REPS (default 1): repeat the whole set, alternating the tools, and report medians. Needs the MNIST files
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
# GPU utilisation while a run trains (DEVICE=cuda and nvidia-smi present): samples every 200 ms into
# FILE until the run ends; the summary reports their mean
util_start() {
  util_pid=
  if [[ $dev != cpu ]] && command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$1" 2>/dev/null &
    util_pid=$!
  fi
}
util_stop() { [[ -n ${util_pid:-} ]] && kill "$util_pid" 2>/dev/null; wait "${util_pid:-}" 2>/dev/null || true; }
# REPS rounds of the whole set, each cohort's fedvim placements and PyTorch loops one after another,
# so both tools see the same load on average (the box may be shared); medians over REPS
for r in $(seq 1 "${REPS:-1}"); do
  for n in ${COHORTS:-100 1000}; do
    for p in $placements; do
      IFS=x read -r W S T <<< "$p"
      name=c${n}_${dev}_${p}_r$r
      ini=$out/$name.ini
      sed -e "s/^workers = .*/workers = $W\nworker_slots = $S/" -e "s|^dir = .*|dir = $out|" \
          -e "/^\[output\]/,\$ s/^name = .*/name = $name/" -e "s/^local_epochs = 1/local_epochs = 1\nthreads = $T/" \
          "$here/cohort$n.ini" > "$ini"
      [[ -s $out/$name/summary.json ]] && { echo "== fedvim $name: done before"; continue; }
      echo "== fedvim $name (load $(cut -d' ' -f1 /proc/loadavg))"
      util_start "$out/$name.util"
      "$bin" run "$ini" --quiet --overwrite --device "$dev" > "$out/$name.log" 2>&1 ||
        { util_stop; cat "$out/$name.log"; exit 1; }
      util_stop
      cut -d' ' -f1 /proc/loadavg > "$out/$name/load_after"
    done
    for t in $torch_threads; do
      tj=$out/torch_c${n}_${dev}_t${t}_r$r.jsonl
      [[ -s $tj ]] && grep -q seconds_per_round "$tj" && { echo "== pytorch ${tj##*/}: done before"; continue; }
      echo "== pytorch ${tj##*/} (load $(cut -d' ' -f1 /proc/loadavg))"
      util_start "${tj%.jsonl}.util"
      env -u LD_LIBRARY_PATH OMP_NUM_THREADS=$t "$py" "$here/torch_cohort.py" \
          --data "$FEDVIM_DATA/mnist" --clients "$n" --threads "$t" --device "$dev" > "$tj"
      util_stop
    done
  done
done
"$py" - "$out" "$dev" <<'EOF'
import glob, json, os, statistics, sys
out, dev = sys.argv[1], sys.argv[2]
rows = []
med = statistics.median
def util(paths):
    """Mean GPU utilisation (%) over the samples of the runs' .util files, or None."""
    v = []
    for p in paths:
        if os.path.exists(p):
            v += [float(x) for x in open(p).read().split() if x.replace('.', '', 1).isdigit()]
    return round(sum(v) / len(v), 1) if v else None
cohorts = sorted({int(os.path.basename(p).split('_')[1][1:]) for p in glob.glob(f'{out}/torch_c*_{dev}_t*_r*.jsonl')})
for n in cohorts:
    for t in sorted({p.split('_t')[-1].split('_')[0] for p in glob.glob(f'{out}/torch_c{n}_{dev}_t*_r*.jsonl')}, key=int):
        runs = [json.loads(open(f).read().strip().splitlines()[-1])
                for f in sorted(glob.glob(f'{out}/torch_c{n}_{dev}_t{t}_r*.jsonl'))]
        runs = [x for x in runs if 'seconds_per_round' in x]
        if runs:
            rows.append({'tool': 'pytorch loop', 'clients': n, 'placement': f'1 process, {t} thread(s)',
                         'gpu_util': util(glob.glob(f'{out}/torch_c{n}_{dev}_t{t}_r*.util')),
                         'seconds_per_round': med([x['seconds_per_round'] for x in runs]),
                         'reps': len(runs), 'test_accuracy': runs[0]['test_accuracy'],
                         'each_rep': [x['seconds_per_round'] for x in runs]})
    for p in sorted({os.path.basename(os.path.dirname(d)).split('_')[2]
                     for d in glob.glob(f'{out}/c{n}_{dev}_*_r*/metrics.jsonl')}):
        W, S, T = p.split('x')
        reps, acc, hashes = [], None, set()
        for d in sorted(glob.glob(f'{out}/c{n}_{dev}_{p}_r*/metrics.jsonl')):
            m = [json.loads(l) for l in open(d)]
            work = [r['seconds'] - r.get('eval_seconds', 0) for r in m[1:]] or [m[0]['seconds']]
            reps.append(med(work))
            acc = m[-1]['test_accuracy']
            hashes.add(json.load(open(os.path.join(os.path.dirname(d), 'summary.json'))).get('params_hash'))
        rows.append({'tool': 'fedvim', 'clients': n, 'placement': f'{W} worker(s) x {S} slot(s) x {T} thread(s)',
                     'gpu_util': util(glob.glob(f'{out}/c{n}_{dev}_{p}_r*.util')),
                     'seconds_per_round': med(reps), 'reps': len(reps), 'each_rep': reps, 'test_accuracy': acc,
                     'params_hashes': sorted(hashes)})
for r in rows:
    ref = min(x['seconds_per_round'] for x in rows if x['tool'] == 'pytorch loop' and x['clients'] == r['clients'])
    r['clients_per_second'] = round(r['clients'] / r['seconds_per_round'], 1)
    r['speed_vs_fastest_pytorch'] = round(ref / r['seconds_per_round'], 2)
json.dump({'device': dev, 'rows': rows}, open(f'{out}/summary.json', 'w'), indent=1)
print('| clients | tool | placement | s / round | clients / s | speed vs the fastest PyTorch loop | test accuracy after 5 rounds | GPU utilisation |')
print('| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |')
for r in rows:
    u = f"{r['gpu_util']}%" if r.get('gpu_util') is not None else ''
    print(f"| {r['clients']} | {r['tool']} | {r['placement']} | {r['seconds_per_round']:.2f} | "
          f"{r['clients_per_second']} | {r['speed_vs_fastest_pytorch']}x | {100 * r['test_accuracy']:.2f}% | {u} |")
EOF
