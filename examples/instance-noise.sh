#!/usr/bin/env bash
# Instance noise on the discriminator's inputs (Sønderby et al. 2017): the same DCGAN trained with noise of
# strength 0.3, 0.1, 0.03, 0.003 and none, then one FID table. The users found 0.1 helped, 0.3 destroyed
# the data and 0.003 did nothing. DATA and STEPS choose the data set and length (default: MNIST, 3000 steps).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
DATA=${DATA:-mnist}
STEPS=${STEPS:-3000}
# FID: FEATURES=net.pt (a TorchScript feature network) or FID_WEIGHTS=FILE (local Inception
# weights); without either on an offline machine the evaluations are skipped with a note.
. examples/lib/evaluate.sh

runs=()
for noise in 0 0.003 0.03 0.1 0.3; do
  out="$RUNS/dcgan-noise-$noise"
  gencli train dcgan --data "$DATA" --image-size 28 --channels 1 --steps "$STEPS" \
    --set instance_noise="$noise" --set instance_noise_steps="$STEPS" --out "$out"
  evaluate "$out" --metrics fid --n 5000
  runs+=("$out")
done
gencli eval --compare "${runs[@]}"
