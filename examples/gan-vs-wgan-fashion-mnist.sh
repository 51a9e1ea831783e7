#!/usr/bin/env bash
# GAN vs WGAN on Fashion-MNIST: examples/gan-vs-wgan-mnist.sh on clothing. The same PixelShuffle
# networks trained as a GAN (Adam) and as a WGAN with weight clipping (RMSprop, 5 critic steps),
# then one table of FID/KID and both loss curves. EPOCHS=2 bash examples/gan-vs-wgan-fashion-mnist.sh
# gives a first look. Offline once the IDX files are local (apt-get install dataset-fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
GAN_EPOCHS=${EPOCHS:-10}
WGAN_EPOCHS=${EPOCHS:-300}
# FID: FEATURES=net.pt (a TorchScript feature network) or FID_WEIGHTS=FILE (local Inception
# weights); without either on an offline machine the evaluations are skipped with a note.
. examples/lib/evaluate.sh

gencli train --config examples/gan-pixelshuffle-fashion-mnist.toml --epochs "$GAN_EPOCHS" --out "$RUNS/gan-fashion-mnist"
gencli train --config examples/wgan-fashion-mnist.toml --epochs "$WGAN_EPOCHS" --out "$RUNS/wgan-fashion-mnist"
evaluate "$RUNS/gan-fashion-mnist" --n 10000
evaluate "$RUNS/wgan-fashion-mnist" --n 10000
gencli eval --compare "$RUNS/gan-fashion-mnist" "$RUNS/wgan-fashion-mnist"
echo "loss curves: $RUNS/gan-fashion-mnist/losses.png $RUNS/wgan-fashion-mnist/losses.png"
