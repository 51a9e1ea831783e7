#!/usr/bin/env bash
# The 2-D latent figures of a VAE and a CVAE on MNIST: loss curves, latent scatter coloured by digit,
# 8x8 latent grids (the CVAE's at label 8), samples across training, inputs over reconstructions,
# and the CVAE's samples one row per digit.
# EPOCHS=1 bash examples/vae-cvae-mnist-2d.sh gives a first look in a few minutes on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
EPOCHS=${EPOCHS:-10}

gencli train --config examples/vae-mnist-2d.toml --epochs "$EPOCHS" --out "$RUNS/vae-mnist-2d"
gencli train --config examples/cvae-mnist-2d.toml --epochs "$EPOCHS" --out "$RUNS/cvae-mnist-2d"
for run in vae-mnist-2d cvae-mnist-2d; do
  gencli eval "$RUNS/$run" --n 5000                       # metrics, reconstructions grid, latent scatter
done
gencli interpolate "$RUNS/vae-mnist-2d" --latent-grid 8 --out "$RUNS/vae-mnist-2d/latent-grid.png"
gencli interpolate "$RUNS/cvae-mnist-2d" --latent-grid 8 --label 8 --out "$RUNS/cvae-mnist-2d/latent-grid-8.png"
gencli sample "$RUNS/cvae-mnist-2d" --label 8 --n 64 --out "$RUNS/cvae-mnist-2d/eights.png"
gencli sample "$RUNS/cvae-mnist-2d" --label all --out "$RUNS/cvae-mnist-2d/digits.png"   # one labelled row per digit
echo "figures: $RUNS/*-mnist-2d/{losses.png,progress.gif,eval/,latent-grid*.png} $RUNS/cvae-mnist-2d/{eights,digits}.png"
