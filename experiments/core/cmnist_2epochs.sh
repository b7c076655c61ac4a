#!/usr/bin/env bash
# cmnist_2epochs.sh: the foundation issue's check that ResNet-20, the VGG-style net and the MobileNet
# train on Colored MNIST (loss falls, test accuracy >= 95% within 2 epochs). CPU-sized: the first
# 20,000 training images, the full 10,000-image test set, Adam 1e-3, batch 64, seed 1, 2 threads.
# Writes one JSON line per model (fedvim train --json) to cmnist_2epochs.jsonl beside this script,
# and the per-epoch lines to cmnist_2epochs.log.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${FEDVIM_BIN:-$here/../../build/fedvim}
: > "$here/cmnist_2epochs.jsonl"
: > "$here/cmnist_2epochs.log"
for m in resnet20 vgg11 mobilenet; do
  "$bin" train --model "$m" --dataset cmnist --epochs 2 --batch 64 --optimizer adam --lr 1e-3 --seed 1 \
    --threads 2 --limit 20000 --json 2>>"$here/cmnist_2epochs.log" | tail -1 >> "$here/cmnist_2epochs.jsonl"
done
