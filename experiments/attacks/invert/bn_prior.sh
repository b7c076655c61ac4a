#!/bin/sh
# The batch-norm statistics prior (docs/attacks.md 7.2, --bn-prior) off and on, same budget:
# ResNet-20 on Colored MNIST, trained 1 epoch on 1,000 training images (its running statistics
# come from the data), fedSGD, one client batch of 4 test images (0-3), labels known, 300 signed-
# Adam iterations and 1,000, prior weight 0 and 0.01. Writes bn_prior_<iters>_<off|on>.json beside
# this script.
# Usage: sh experiments/attacks/invert/bn_prior.sh [fedvim binary] [threads]
set -e
BIN=${1:-build/fedvim}
T=${2:-2}
DIR=$(dirname "$0")
for it in 300 1000; do
    for w in 0 0.01; do
        name=off
        [ "$w" = 0 ] || name=on
        "$BIN" attack invert --model resnet20 --dataset cmnist --batch 4 --images 4 --iters "$it" \
            --trained-epochs 1 --train-images 1000 --threads "$T" --seed 1 --bn-prior "$w" --json \
            > "$DIR/bn_prior_${it}_$name.json"
    done
done
