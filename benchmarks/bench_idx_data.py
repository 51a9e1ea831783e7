"""Data time against step time per epoch at 60,000 images: Fashion-MNIST read from its IDX files.

    python benchmarks/bench_idx_data.py                            # --data fashion-mnist (found locally)
    python benchmarks/bench_idx_data.py --data DIR --device cuda --write benchmarks/RESULTS.md

The dataset is looked up as `gencli train --data` does (a local copy of the IDX files before any
download). It measures, in one run and in a scratch data directory:
- the first load of the train split (decompress and check the IDX files, resize, write the
  prepared cache) and a later load (open the prepared cache, memory-mapped);
- one epoch of batches drawn by the engine's BatchStream, without a model: from host memory
  and, on CUDA, from the single tensor kept on the device (the path the engine takes for data
  under 1 GiB, which 60,000 small images are);
- the median train step of a model on those batches, times the steps of an epoch.
The data share is the epoch's batch drawing over the epoch's batch drawing plus its steps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from results import machine, publish, section_head  # benchmarks/results.py, beside this script

# name, model, image size, channels, batch size
CONFIGS = [
    ("vae-28", "vae", 28, 1, 128),
    ("dcgan-32", "dcgan", 32, 1, 64),
]


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(work, device) -> float:
    sync(device)
    start = time.perf_counter()
    work()
    sync(device)
    return time.perf_counter() - start


def timed_load(spec: str, request):
    """Seconds to resolve ``spec`` to images as training does, and the images."""
    from gencli.data.resolve import load_dataset

    start = time.perf_counter()
    data = load_dataset(spec, request)
    return time.perf_counter() - start, data


def draw_epoch(data, batch: int, device, keep_on_device: bool) -> tuple[float, int]:
    """Seconds to draw one epoch of batches (moved to ``device``, as floats); and the batch count."""
    from gencli.data.base import BatchStream

    stream = BatchStream(data, batch, device, keep_on_device=keep_on_device)
    for _ in stream.epoch(0):  # a first pass: page cache, allocator and device copy warmed
        break

    def work():
        for b in stream.epoch(1):
            b.images.sum()  # touch the batch as a step would

    return timed(work, device), len(stream)


def step_time(model_name: str, data, batch: int, device, steps: int, warmup: int) -> float:
    """Median seconds of one train step of ``model_name`` on batches of ``data``."""
    import torch

    from gencli.data.base import BatchStream
    from gencli.models import hparams
    from gencli.plugins import registry

    cls = registry().model(model_name).load()
    torch.manual_seed(0)
    classes = data.classes if cls.conditional else None
    model = cls(hparams.build(cls.Hyperparameters, {}), tuple(data.shape), classes, device=device)
    model.train()
    batches = BatchStream(data, batch, device).epoch(0)
    times = []
    for i in range(warmup + steps):
        b = next(batches)
        sync(device)
        start = time.perf_counter()
        losses = model.train_step(b)
        for v in losses.values():
            float(v)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(spec: str, device_name: str, steps: int, warmup: int, models: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gencli-bench-idx-"))
    os.environ["GENCLI_DATA_DIR"] = str(work / "data")  # a cold prepared cache; the user's is untouched

    import torch

    from gencli.data.base import DataRequest
    from gencli.plugins import registry

    torch.set_num_threads(1)  # on a busy machine more threads only add noise (see "CPU threads")
    device = torch.device(device_name)
    wanted = set(filter(None, models.split(",")))
    rows = []
    try:
        for name, model_name, size, channels, batch in CONFIGS:
            if wanted and name not in wanted and model_name not in wanted:
                continue
            if model_name not in registry().models:
                print(f"{name} skipped: model {model_name!r} is not installed")
                continue
            request = DataRequest(size, channels, "train")
            first, data = timed_load(spec, request)
            later = statistics.median(timed_load(spec, request)[0] for _ in range(3))
            host, n_batches = draw_epoch(data, batch, device, keep_on_device=False)
            on_device = draw_epoch(data, batch, device, keep_on_device=True)[0] if device.type == "cuda" else None
            step = step_time(model_name, data, batch, device, steps, warmup)
            rows.append({"name": name, "images": len(data), "batch": batch, "batches": n_batches,
                         "first_load": first, "later_load": later, "host": host, "on_device": on_device,
                         "step": step, "train_epoch": step * n_batches})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "info": machine(device), "device": device.type}


def report(result: dict, argv: list[str]) -> str:
    rows, on_cuda = result["rows"], result["device"] == "cuda"
    lines = [
        *section_head("Real data at 60,000 images: IDX files, prepared cache, data time against step time",
                      "bench_idx_data.py", argv, result["info"]),
        "Fashion-MNIST's train split from its four IDX files, found locally as `--data` finds it. *First "
        "load*: decompress and check the files, resize, write the prepared cache; *later load*: open "
        "that cache, memory-mapped (median of 3). *Data per epoch*: every batch of one epoch drawn by "
        "the engine's BatchStream and moved to the device, no model"
        + ("; from host memory, and from the single tensor kept on the device (the engine's path for "
           "data under 1 GiB)." if on_cuda else "; on the CPU the data stays in (mapped) host memory, "
                                                "so the on-device single-tensor path is the same path.")
        + " *Train per epoch*: the model's median train step times the epoch's steps.",
        "",
        "| config | images | batch | first load (s) | later load (ms) | data per epoch (s) "
        + ("| data per epoch, on device (s) " if on_cuda else "")
        + "| train per epoch (s) | data share |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if on_cuda else "") + "---:|---:|",
    ]
    for r in rows:
        data = r["on_device"] if on_cuda else r["host"]
        share = data / (data + r["train_epoch"])
        lines.append(f"| {r['name']} | {r['images']:,} | {r['batch']} | {r['first_load']:.2f} | {1000 * r['later_load']:.1f} "
                     f"| {r['host']:.2f} " + (f"| {r['on_device']:.2f} " if on_cuda else "")
                     + f"| {r['train_epoch']:.1f} | {100 * share:.1f}% |")
    lines += ["", "The data share counts the batch drawing the model waits on; the first load is paid once "
              "per size and channel count, not per epoch.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="fashion-mnist", help="a dataset name or IDX folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed train steps per model")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated configs or models (all when empty)")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    result = run(args.data, args.device, args.steps, args.warmup, args.models)
    shown = [a for a in argv if not a.startswith("--write") and a != str(args.write)]
    publish(report(result, shown), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
