#!/usr/bin/env bash
# compare_pytorch.sh PYTORCH_REF [ROUNDS]: fedvim's training throughput side by side with the PyTorch
# reference benchmark (pytorch_ref.py, given by path: it is not part of this repository), in the same
# run on the same machine, alternating the two ROUNDS times (default 3) so drifting load hits both.
# Workloads: LeNet-5 on MNIST, batch 64, Adam, 2 threads; ResNet-20 on 32x32x3, batch 128, SGD,
# 2 threads. Prints each measurement and the ratio of medians; writes results.json here.
# Each runs with its own OpenMP default unless the caller sets OMP_WAIT_POLICY / GOMP_SPINCOUNT
# for both: fedvim bounds its spin (GOMP_SPINCOUNT=10000, cli/main.c), PyTorch keeps libgomp's.
set -euo pipefail
ref=${1:?usage: compare_pytorch.sh PATH/TO/pytorch_ref.py [ROUNDS]}
rounds=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${FEDVIM_BIN:-$root/build/fedvim}
mnist=${FEDVIM_DATA:-$root/data}/mnist
py=/usr/bin/python3
omp="${OMP_WAIT_POLICY:+OMP_WAIT_POLICY=$OMP_WAIT_POLICY }${GOMP_SPINCOUNT:+GOMP_SPINCOUNT=$GOMP_SPINCOUNT}"
omp=${omp:-each its own default}
num() { grep -o "\"$1\": *[0-9.e+-]*" | head -1 | sed 's/.*: *//'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -a fl fr pl pr
for ((i = 0; i < rounds; i++)); do
  fl+=("$("$bin" bench train --model lenet5 --batch 64 --threads 2 --json 2>/dev/null | num images_per_second)")
  pl+=("$("$py" "$ref" "$mnist" lenet_cpu2 2>/dev/null | num lenet_mnist_cpu2_b64_img_s)")
  fr+=("$("$bin" bench train --model resnet20 --batch 128 --threads 2 --images 384 --json 2>/dev/null | num images_per_second)")
  pr+=("$("$py" "$ref" "$mnist" resnet_cpu2 2>/dev/null | num resnet20_cpu2_b128_img_s)")
  echo "round $((i + 1)): lenet5 fedvim ${fl[i]} pytorch ${pl[i]} | resnet20 fedvim ${fr[i]} pytorch ${pr[i]} (images/s)"
done
mfl=$(printf '%s\n' "${fl[@]}" | median); mpl=$(printf '%s\n' "${pl[@]}" | median)
mfr=$(printf '%s\n' "${fr[@]}" | median); mpr=$(printf '%s\n' "${pr[@]}" | median)
rl=$(awk -v a="$mfl" -v b="$mpl" 'BEGIN {printf "%.2f", a / b}')
rr=$(awk -v a="$mfr" -v b="$mpr" 'BEGIN {printf "%.2f", a / b}')
echo "median lenet5: fedvim $mfl, pytorch $mpl, ratio $rl"
echo "median resnet20: fedvim $mfr, pytorch $mpr, ratio $rr"
cat > "$here/results.json" <<JSON
{"machine": "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')",
 "date": "$(date -u +%Y-%m-%dT%H:%MZ)", "rounds": $rounds, "openmp": "$omp",
 "torch": "$("$py" -c 'import torch; print(torch.__version__)')",
 "lenet5_b64_2threads": {"fedvim": $mfl, "pytorch": $mpl, "ratio": $rl},
 "resnet20_b128_2threads": {"fedvim": $mfr, "pytorch": $mpr, "ratio": $rr}}
JSON
