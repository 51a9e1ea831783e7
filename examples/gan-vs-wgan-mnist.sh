#!/usr/bin/env bash
# GAN vs WGAN on MNIST: the same PixelShuffle networks trained as a GAN (Adam) and as a WGAN with
# weight clipping (RMSprop, 5 critic steps), then one table of FID/KID and both loss curves.
# EPOCHS=2 bash examples/gan-vs-wgan-mnist.sh gives a first look; the users ran 10 and 300 epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
GAN_EPOCHS=${EPOCHS:-10}
WGAN_EPOCHS=${EPOCHS:-300}
# FID: FEATURES=net.pt (a TorchScript feature network) or FID_WEIGHTS=FILE (local Inception
# weights); without either on an offline machine the evaluations are skipped with a note.
. examples/lib/evaluate.sh

gencli train --config examples/gan-pixelshuffle-mnist.toml --epochs "$GAN_EPOCHS" --out "$RUNS/gan-mnist"
gencli train --config examples/wgan-mnist.toml --epochs "$WGAN_EPOCHS" --out "$RUNS/wgan-mnist"
evaluate "$RUNS/gan-mnist" --n 10000
evaluate "$RUNS/wgan-mnist" --n 10000
gencli eval --compare "$RUNS/gan-mnist" "$RUNS/wgan-mnist"
echo "loss curves: $RUNS/gan-mnist/losses.png $RUNS/wgan-mnist/losses.png"
