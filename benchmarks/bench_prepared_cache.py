"""Epoch time on a JPEG folder: decoding every image each epoch vs the memory-mapped prepared cache.

Builds a folder of JPEGs the size of the cats-vs-dogs photos (about 400x330, two classes), then
measures in one run:
- on the fly: every epoch decodes and resizes every JPEG (gencli's threaded decoder, with JPEG
  draft decoding), then draws the epoch's batches, as a per-image loader would;
- prepared: the one-time preparation of the uint8 cache, then every epoch opens the cache
  (fingerprint of the folder + memory map) and draws the same batches.
The ratio of the two epoch times is the speed-up. The page cache is warm for both (the JPEGs
and the cache were just written), which favours the on-the-fly side if anything.

    python benchmarks/bench_prepared_cache.py                  # 2,000 images at 64 px, 3 epochs
    python benchmarks/bench_prepared_cache.py --images 5000 --size 128 --write benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import publish  # benchmarks/results.py, beside this script


def make_jpegs(root: Path, count: int, seed: int = 0) -> int:
    """Write ``count`` photo-like JPEGs into root/cat and root/dog; return their total bytes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        w, h = int(rng.integers(320, 500)), int(rng.integers(260, 400))
        # smooth colour fields plus grain: compresses like a photo, not like noise or flat colour
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
        grain = rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
        arr = np.clip(base + grain, 0, 255).astype(np.uint8)
        folder = root / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(arr).save(path, "JPEG", quality=90)
        total += path.stat().st_size
    return total


def epoch(load, batch_size: int, index: int) -> tuple[float, float]:
    """Return (seconds to get the images, seconds to draw the epoch's batches from them)."""
    from gencli.data.base import BatchStream

    start = time.perf_counter()
    data = load()
    loaded = time.perf_counter()
    for _ in BatchStream(data, batch_size, seed=0).epoch(index):
        pass
    return loaded - start, time.perf_counter() - loaded


def run(images: int, size: int, epochs: int, batch_size: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gencli-bench-cache-"))
    os.environ["GENCLI_DATA_DIR"] = str(work / "data")  # keep the user's cache untouched

    import torch

    from gencli.data.base import DataRequest
    from gencli.data.folders import load_folder

    # One intra-op thread: on a busy small machine torch's thread pool spins against other
    # processes and makes the (identical) batch drawing of both sides noisy by 10x and more.
    torch.set_num_threads(1)
    folder = work / "jpegs"
    request = DataRequest(size, 3)
    try:
        jpeg_bytes = make_jpegs(folder, images)
        on_the_fly = [epoch(lambda: load_folder(folder, request, cache=False), batch_size, e) for e in range(epochs)]
        start = time.perf_counter()
        load_folder(folder, request)  # the one-time preparation
        preparation = time.perf_counter() - start
        prepared = [epoch(lambda: load_folder(folder, request), batch_size, e) for e in range(epochs)]
        cache_bytes = sum(f.stat().st_size for f in (work / "data" / "prepared").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    fly = {"load": median(on_the_fly, 0), "batches": median(on_the_fly, 1)}
    mapped = {"load": median(prepared, 0), "batches": median(prepared, 1)}
    fly["epoch"] = fly["load"] + fly["batches"]
    mapped["epoch"] = mapped["load"] + mapped["batches"]
    return {
        "images": images, "size": size, "epochs": epochs, "batch_size": batch_size,
        "jpeg_mb": jpeg_bytes / 1e6, "cache_mb": cache_bytes / 1e6,
        "on_the_fly": fly, "prepared": mapped, "preparation_s": preparation,
        "ratio": fly["epoch"] / mapped["epoch"], "load_ratio": fly["load"] / mapped["load"],
        "cpus": os.cpu_count(), "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "python": platform.python_version(), "torch": torch.__version__,
        "machine": f"{platform.system()} {platform.machine()}",
    }


def report(r: dict) -> str:
    return "\n".join([
        "## Prepared dataset cache",
        "",
        f"`python benchmarks/bench_prepared_cache.py --images {r['images']} --size {r['size']} "
        f"--epochs {r['epochs']} --batch-size {r['batch_size']}`",
        "",
        f"{r['images']:,} photo-like JPEGs of about 400x330 in two class folders ({r['jpeg_mb']:.0f} MB), "
        f"prepared at {r['size']} px, 3 channels; {r['machine']}, {r['cpus']} CPU cores, "
        f"Python {r['python']}, torch {r['torch']} (1 intra-op thread; JPEG decoding on {r['cpus']} threads). "
        f"Medians of {r['epochs']} epochs; page cache warm; load average {r['load']:.1f} at the end of the run.",
        "",
        "| per epoch | get the images (s) | draw the batches (s) | epoch (s) | images/s |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {t['load']:.3f} | {t['batches']:.3f} | {t['epoch']:.3f} | {r['images'] / t['epoch']:,.0f} |"
          for label, t in (("decode every JPEG (threaded, JPEG draft mode)", r["on_the_fly"]),
                           (f"memory-mapped prepared cache ({r['cache_mb']:.0f} MB)", r["prepared"]))),
        "",
        f"Speed-up per epoch: **{r['ratio']:.1f}x** ({r['load_ratio']:.0f}x on getting the images; drawing the "
        f"batches, the same work on both sides, is the rest), measured in this run. The one-time preparation "
        f"took {r['preparation_s']:.2f} s ({r['preparation_s'] / r['on_the_fly']['epoch']:.1f}x an on-the-fly "
        f"epoch); later runs open the cache without decoding anything.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    result = run(args.images, args.size, args.epochs, args.batch_size)
    section = report(result)
    publish(section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
