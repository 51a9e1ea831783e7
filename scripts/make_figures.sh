#!/usr/bin/env bash
# Regenerate the figures of docs/models/*.md with the tool itself: short runs on the built-in
# shapes data sets at 16 px, on the CPU (a few minutes per model), then the sample, interpolate
# and figure commands the pages show. Image grids are enlarged twice (nearest neighbour) for
# reading; every file lands in docs/figures/ and is kept under 100 KB.
#
#   bash scripts/make_figures.sh                  # every family
#   bash scripts/make_figures.sh gan diffusion    # some: vae, gan, stylegan, translation, diffusion, report, digits
#
# Runs go to a temporary folder (WORK=DIR keeps them, and reuses finished ones). Same seed, same figures.
set -euo pipefail
cd "$(dirname "$0")/.."
FIGURES=docs/figures
WORK=${WORK:-$(mktemp -d)}
RAW="$WORK/figures"
export GENCLI_RUNS_DIR="$WORK/runs"
export GENCLI_DATA_DIR="${GENCLI_DATA_DIR:-$WORK/data}"
rm -rf "$RAW"
mkdir -p "$FIGURES" "$RAW"
families=("$@")
# digits (real handwriting, ~25 minutes on a CPU, needs scikit-learn) runs only when named
[ ${#families[@]} -eq 0 ] && families=(vae gan stylegan translation diffusion report)

# train NAME MODEL [OPTIONS...]: a short run into $WORK/NAME (kept when it finished with these options)
train() {
  local name=$1; shift
  if grep -qs '"status": "finished"' "$WORK/$name/run.json" && [ "$(cat "$WORK/$name.command" 2>/dev/null)" = "$*" ]; then
    return
  fi
  rm -rf "${WORK:?}/$name"
  echo "training $name: gencli train $*" >&2
  gencli -q train "$@" --out "$WORK/$name" --device cpu --seed 0 >/dev/null
  echo "$*" > "$WORK/$name.command"
}

# keep NAME FILE: take a run's file as figure NAME
keep() { cp "$2" "$RAW/$1"; }
# last_grid RUN: the newest sample grid of a run
last_grid() { find "$1/samples" -name 'step-*.png' | sort | tail -n 1; }

for family in "${families[@]}"; do
  case $family in
  vae)
    train vae vae --image-size 16 --steps 800 --sample-every 100
    keep vae-vae-progress.gif "$WORK/vae/progress.gif"
    keep vae-vae-losses.png "$WORK/vae/losses.png"
    gencli sample "$WORK/vae" --n 36 --seed 1 --out "$RAW/vae-vae-samples.png" --device cpu
    gencli interpolate "$WORK/vae" --frames 8 --seeds 1,2 --out "$RAW/vae-vae-interpolate.png" --device cpu
    rm -f "$RAW/vae-vae-interpolate.gif"
    train cvae2d cvae --image-size 16 --steps 800 --sample-every 100 --set latent_dim=2
    gencli sample "$WORK/cvae2d" --label ring --n 16 --seed 1 --out "$RAW/vae-cvae-ring.png" --device cpu
    gencli interpolate "$WORK/cvae2d" --latent-grid 8 --label triangle --out "$RAW/vae-cvae-latent-grid-triangle.png" --device cpu
    gencli sample "$WORK/cvae2d" --label all --n 6 --seed 1 --out "$RAW/vae-cvae-classes.png" --device cpu
    ;;
  gan)
    train dcgan dcgan --image-size 16 --batch-size 32 --steps 1500 --sample-every 150 --set g_width=32 --set d_width=32
    keep gan-dcgan-progress.gif "$WORK/dcgan/progress.gif"
    keep gan-dcgan-losses.png "$WORK/dcgan/losses.png"
    gencli sample "$WORK/dcgan" --n 36 --seed 1 --out "$RAW/gan-dcgan-samples.png" --device cpu
    gencli interpolate "$WORK/dcgan" --frames 8 --seeds 1,2 --out "$RAW/gan-dcgan-interpolate.png" --device cpu
    rm -f "$RAW/gan-dcgan-interpolate.gif"
    train cgan cgan --image-size 16 --batch-size 32 --steps 1500 --sample-every 150 --set g_width=32 --set d_width=32
    keep gan-cgan-progress.gif "$WORK/cgan/progress.gif"
    gencli sample "$WORK/cgan" --label ring --n 16 --seed 1 --out "$RAW/gan-cgan-ring.png" --device cpu
    gencli sample "$WORK/cgan" --label all --n 6 --seed 1 --out "$RAW/gan-cgan-classes.png" --device cpu
    train wgan-gp wgan-gp --image-size 16 --batch-size 32 --steps 400 --sample-every 50 --set g_width=32 --set d_width=32
    keep gan-wgan-gp-losses.png "$WORK/wgan-gp/losses.png"
    gencli sample "$WORK/wgan-gp" --n 36 --seed 1 --out "$RAW/gan-wgan-gp-samples.png" --device cpu
    ;;
  stylegan)
    train stylegan stylegan --image-size 16 --batch-size 16 --steps 900 --sample-every 100 --set z_dim=128 --set w_dim=128 --set mapping_layers=4
    keep stylegan-progress.gif "$WORK/stylegan/progress.gif"
    keep stylegan-losses.png "$WORK/stylegan/losses.png"
    gencli sample "$WORK/stylegan" --n 36 --seed 1 --out "$RAW/stylegan-samples.png" --device cpu
    gencli sample "$WORK/stylegan" --n 36 --seed 1 --set truncation=0.5 --out "$RAW/stylegan-truncation-0.5.png" --device cpu
    gencli sample "$WORK/stylegan" --figure style-mix --n 16 --seed 1 --out "$RAW/stylegan-style-mix.png" --device cpu
    gencli interpolate "$WORK/stylegan" --set space=w --frames 8 --out "$RAW/stylegan-interpolate-w.png" --device cpu
    rm -f "$RAW/stylegan-interpolate-w.gif"
    ;;
  translation)
    train cyclegan cyclegan --image-size 16 --batch-size 4 --steps 500 --sample-every 50
    keep translation-cyclegan-progress.gif "$WORK/cyclegan/progress.gif"
    keep translation-cyclegan-losses.png "$WORK/cyclegan/losses.png"
    keep translation-cyclegan-samples.png "$(last_grid "$WORK/cyclegan")"
    train pix2pix pix2pix --image-size 16 --batch-size 8 --steps 800 --sample-every 100
    keep translation-pix2pix-progress.gif "$WORK/pix2pix/progress.gif"
    keep translation-pix2pix-samples.png "$(last_grid "$WORK/pix2pix")"
    ;;
  diffusion)
    train ddpm ddpm --image-size 16 --batch-size 32 --steps 4000 --sample-every 500 --set lr=1e-3 --set ema_decay=0.999
    keep diffusion-ddpm-progress.gif "$WORK/ddpm/progress.gif"
    keep diffusion-ddpm-losses.png "$WORK/ddpm/losses.png"
    # the same initial noise with and without the class: what guidance does
    gencli sample "$WORK/ddpm" --label ring --set guidance=3 --set steps=50 --n 16 --seed 1 --out "$RAW/diffusion-ddpm-ring.png" --device cpu
    gencli sample "$WORK/ddpm" --set steps=50 --n 16 --seed 1 --out "$RAW/diffusion-ddpm-unconditional.png" --device cpu
    gencli sample "$WORK/ddpm" --figure forward-noise --n 4 --seed 1 --out "$RAW/diffusion-forward-noise.png" --device cpu
    ;;
  report)
    # two short runs that differ in one hyperparameter, on one `gencli report` page, as headless Chromium shows it
    command -v chromium >/dev/null || { echo "the report figure needs chromium (apt-get install chromium)" >&2; exit 2; }
    train report-latent-4 vae --image-size 16 --steps 300 --sample-every 50 --set latent_dim=4
    train report-latent-16 vae --image-size 16 --steps 300 --sample-every 50 --set latent_dim=16
    rm -f "$WORK/report.html"
    (cd "$WORK" && gencli -q report report-latent-4 report-latent-16 --out report.html >/dev/null)  # short folder names on the page
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
      --disable-component-update --disable-sync --user-data-dir="$WORK/chromium" --window-size=1280,1600 \
      --screenshot="$RAW/report.png" "file://$WORK/report.html" 2>/dev/null
    ;;
  digits)
    # Real data: scikit-learn's handwritten digits at 28 px grey (needs scikit-learn), the runs
    # of benchmarks/bench_quality.py with its step counts (40, 60 and 180 epochs); one row per class.
    [ -f "$WORK/digits-bench/judges/judges.json" ] || python benchmarks/bench_quality.py --work "$WORK/digits-bench" --prepare
    DIGITS="$WORK/digits-bench/digits"
    READER="$WORK/digits-bench/judges/classifier.pt"
    train cvae-digits cvae --data "$DIGITS" --image-size 28 --channels 1 --steps 880
    gencli sample "$WORK/cvae-digits" --label all --n 8 --seed 1 --out "$RAW/vae-cvae-digits.png" --device cpu
    gencli -q eval "$WORK/cvae-digits" --metrics accuracy --classifier "$READER" --n 1000 --device cpu >/dev/null
    keep vae-cvae-confusion.png "$WORK/cvae-digits/eval/confusion.png"
    # the earlier layout (label in the dense layers only) sampled from the prior itself
    train cvae-digits-before cvae --data "$DIGITS" --image-size 28 --channels 1 --steps 880 --set label_maps=false
    gencli -q eval "$WORK/cvae-digits-before" --metrics accuracy --classifier "$READER" --n 1000 --set temperature=1 --device cpu >/dev/null
    keep vae-cvae-confusion-before.png "$WORK/cvae-digits-before/eval/confusion.png"
    train cgan-digits cgan --data "$DIGITS" --image-size 28 --channels 1 --steps 1320
    gencli sample "$WORK/cgan-digits" --label all --n 8 --seed 1 --out "$RAW/gan-cgan-digits.png" --device cpu
    train dcgan-digits dcgan --data "$DIGITS" --image-size 28 --channels 1 --steps 4000
    gencli sample "$WORK/dcgan-digits" --n 64 --seed 1 --out "$RAW/gan-dcgan-digits.png" --device cpu
    ;;
  *)
    echo "unknown family $family (vae, gan, stylegan, translation, diffusion, report, digits)" >&2
    exit 2
    ;;
  esac
done

# Grids and GIFs narrower than 256 px are enlarged twice (loss plots, and figures gencli already
# drew at a readable size, are left as they are); a GIF over the size budget is drawn with fewer
# colours (down to 16), then loses every other frame, keeping the last, until it fits.
python - "$RAW" "$FIGURES" <<'PYTHON'
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image

LIMIT = 100_000
READABLE = 256
raw, figures = Path(sys.argv[1]), Path(sys.argv[2])


def enlarge(image: np.ndarray, frames: bool = False) -> np.ndarray:
    """Repeat every pixel 2x2 of an HxW(xC) image or a stack of them, unless already readable."""
    colour = image.shape[-1] in (3, 4) and image.ndim >= (4 if frames else 3)
    h, w = (-3, -2) if colour else (-2, -1)
    if image.shape[w] >= READABLE:
        return image
    return image.repeat(2, axis=h).repeat(2, axis=w)


for source in sorted(raw.iterdir()):
    target = figures / source.name
    if source.name == "report.png":  # a screenshot of a page: text and flat colours fit a small palette
        Image.open(source).convert("RGB").quantize(64).save(target, optimize=True)
    elif source.suffix == ".png" and source.stem.endswith("-losses"):
        target.write_bytes(source.read_bytes())
        if target.stat().st_size > LIMIT:  # line plots lose nothing visible in a 64-colour palette
            Image.open(source).convert("RGB").quantize(64).save(target, optimize=True)
    elif source.suffix == ".png":
        iio.imwrite(target, enlarge(iio.imread(source)), extension=".png")
    elif source.suffix == ".gif":
        frames = enlarge(iio.imread(source, index=None), frames=True)
        iio.imwrite(target, list(frames), extension=".gif", duration=400, loop=0)
        colours = 64
        while target.stat().st_size > LIMIT and colours > 16:  # fewer colours first: every frame stays
            colours //= 2
            pictures = [Image.fromarray(f).convert("RGB").quantize(colours) for f in frames]
            pictures[0].save(target, format="GIF", save_all=True, append_images=pictures[1:], duration=400, loop=0,
                             optimize=True)
        while target.stat().st_size > LIMIT and len(frames) > 2:
            frames = np.concatenate([frames[:-1:2], frames[-1:]])
            pictures = [Image.fromarray(f).convert("RGB").quantize(colours) for f in frames]
            pictures[0].save(target, format="GIF", save_all=True, append_images=pictures[1:], duration=400, loop=0,
                             optimize=True)
    size = target.stat().st_size
    print(f"{target}  {size / 1000:.0f} KB" + ("  (over 100 KB)" if size > LIMIT else ""))
PYTHON
