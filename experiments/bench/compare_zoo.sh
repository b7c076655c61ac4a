#!/usr/bin/env bash
# compare_zoo.sh [ROUNDS] [MODEL ...]: fedvim's CPU training rate with its convolutions through
# im2col + OpenBLAS (--conv blas), through the per-shape choice (--conv auto: oneDNN where the rule
# in shared/nn/conv_dnnl.c picks it) and PyTorch's (torch_zoo.py, Debian's python3-torch, which
# runs its convolutions through oneDNN too), alternating the three ROUNDS times (default 3) per
# model so drifting load hits all of them; 2 threads. Models (default all four): lenet5 (batch
# 64, 12,000 images), resnet20 (batch 128, 2,560 images: 20 timed steps, as PyTorch's reference
# loop times it; until 2026-12-05 it was 384), vgg11 and mobilenet (batch 64, 640
# images); vit on request (batch 64, 1,280 images: fedvim bench's 20 batches; its one conv, the
# patch embedding, stays on OpenBLAS in both fedvim columns). Prints each measurement with the load
# average, the medians and their ratios; writes results_zoo.json here, or the file ZOO_OUT names. Each tool runs with its own OpenMP default unless the caller sets
# OMP_WAIT_POLICY / GOMP_SPINCOUNT for both (as compare_pytorch.sh).
# The two fedvim columns are `--conv blas` and `--conv auto` unless ZOO_A / ZOO_B give other bench
# train flags, named ZOO_A_NAME / ZOO_B_NAME (JSON keys fedvim_NAME): e.g. the fusion's
#   ZOO_A="--fuse -1" ZOO_A_NAME=unfused ZOO_B="--fuse 1" ZOO_B_NAME=fused
set -euo pipefail
rounds=${1:-3}
shift || true
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(lenet5 resnet20 vgg11 mobilenet)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${FEDVIM_BIN:-$root/build/fedvim}
py=/usr/bin/python3
omp="${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=$OMP_WAIT_POLICY }${GOMP_SPINCOUNT:+GOMP_SPINCOUNT=$GOMP_SPINCOUNT}"
omp=${omp:-each its own default}
read -r -a fa <<<"${ZOO_A:---conv blas}"
read -r -a fb <<<"${ZOO_B:---conv auto}"
na=${ZOO_A_NAME:-blas} nb=${ZOO_B_NAME:-auto}
num() { grep -o "\"$1\": *[0-9.e+-]*" | head -1 | sed 's/.*: *//'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
json="{\"machine\": \"$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')\",
 \"commit\": \"$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)\",
 \"date\": \"$(date -u +%Y-%m-%dT%H:%MZ)\", \"rounds\": $rounds, \"threads\": 2, \"openmp\": \"$omp\",
 \"torch\": \"$("$py" -c 'import torch; print(torch.__version__)')\",
 \"columns\": {\"$na\": \"${fa[*]}\", \"$nb\": \"${fb[*]}\"}"
for m in "${models[@]}"; do
  case $m in
    lenet5) batch=64 images=12000 ;;
    resnet20) batch=128 images=2560 ;;
    vit) batch=64 images=1280 ;;
    *) batch=64 images=640 ;;
  esac
  declare -a b=() a=() t=() l=()
  for ((i = 0; i < rounds; i++)); do
    l+=("$(load)")
    b+=("$("$bin" bench train --model "$m" --batch $batch --images $images --threads 2 "${fa[@]}" --json 2>/dev/null | num images_per_second)")
    a+=("$("$bin" bench train --model "$m" --batch $batch --images $images --threads 2 "${fb[@]}" --json 2>/dev/null | num images_per_second)")
    t+=("$("$py" "$here/torch_zoo.py" "$m" $batch $images 2 2>/dev/null | num images_per_second)")
    echo "$m round $((i + 1)) (load ${l[i]}): fedvim $na ${b[i]}, fedvim $nb ${a[i]}, pytorch ${t[i]} images/s"
  done
  mb=$(printf '%s\n' "${b[@]}" | median); ma=$(printf '%s\n' "${a[@]}" | median)
  mt=$(printf '%s\n' "${t[@]}" | median); ml=$(printf '%s\n' "${l[@]}" | median)
  ra=$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.2f", a / b}')
  rt=$(awk -v a="$ma" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')
  rb=$(awk -v a="$mb" -v b="$mt" 'BEGIN {printf "%.2f", a / b}')
  echo "median $m: $na $mb, $nb $ma (${ra}x $na), pytorch $mt: $nb ${rt}x, $na ${rb}x pytorch"
  json+=",
 \"$m\": {\"batch\": $batch, \"images\": $images, \"load_median\": $ml, \"fedvim_$na\": $mb, \"fedvim_$nb\": $ma,
   \"pytorch\": $mt, \"${nb}_over_$na\": $ra, \"${nb}_over_pytorch\": $rt, \"${na}_over_pytorch\": $rb,
   \"runs\": {\"fedvim_$na\": [$(IFS=,; echo "${b[*]}")], \"fedvim_$nb\": [$(IFS=,; echo "${a[*]}")],
            \"pytorch\": [$(IFS=,; echo "${t[*]}")], \"load\": [$(IFS=,; echo "${l[*]}")]}}"
done
echo "$json}" > "${ZOO_OUT:-$here/results_zoo.json}"
