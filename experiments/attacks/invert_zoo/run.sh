#!/bin/sh
# One command for everything in this folder: compare.py on VGG-11 and on ResNet-20, the two models
# as two processes side by side (one thread each; each process alternates fedvim and PyTorch
# case by case), 300 iterations, 200 training steps, prior weight 0.01; then the table of both.
# Usage: sh experiments/attacks/invert_zoo/run.sh [fedvim binary] [MNIST folder]
set -e
BIN=${1:-build/fedvim}
MNIST=${2:-data/mnist}
DIR=$(dirname "$0")
GRIDS=${GRIDS:-/tmp/fv_igzoo_grids}
for m in resnet20 vgg11; do
    /usr/bin/python3 "$DIR/compare.py" "$BIN" "$MNIST" --iters 300 --train-steps 200 --bn-prior 0.01 --models $m \
        --out "$DIR/results_$m.json" --grids "$GRIDS" > "$DIR/log_$m.txt" 2>&1 &
done
wait
/usr/bin/python3 "$DIR/table.py" "$DIR/results_vgg11.json" "$DIR/results_resnet20.json"
