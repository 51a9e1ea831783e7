"""Train-step and sampling throughput of each model at its reference configuration.

    python benchmarks/bench_train.py [--device cuda] [--steps 20] [--models dcgan,vae] [--write benchmarks/RESULTS.md]

For each configuration it reports seconds per training step, images per second and peak memory
on the device, in fp32 and (on CUDA) in bf16 and with torch.compile, plus sampling throughput.
Batches are drawn by the engine's BatchStream from the built-in data kept on the device, so the
figures include the data path the engine really uses. Each configuration and mode runs in a fresh
process, so on the CPU its peak memory is its own (the process's peak resident set). Models that
are not installed are skipped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from results import machine, machine_line, publish  # benchmarks/results.py, beside this script

from gencli.data.base import BatchStream, DataRequest, to_float
from gencli.data.resolve import load_dataset
from gencli.models import hparams
from gencli.plugins import registry
from gencli.training.engine import DEFAULT_DATA, compile_networks

# name, model, image size, channels, batch size, hyperparameter overrides
REFERENCE = [
    ("dcgan-64", "dcgan", 64, 3, 64, {}),
    ("cyclegan-128", "cyclegan", 128, 3, 1, {}),
    ("cyclegan-256", "cyclegan", 256, 3, 1, {}),
    ("pix2pix-256", "pix2pix", 256, 3, 1, {}),
    ("vae-28", "vae", 28, 1, 128, {}),
    ("ddpm-32", "ddpm", 32, 3, 16, {}),
]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class GencliSide:
    """A gencli model at a configuration and the engine's BatchStream over built-in data on the device.

    ``step()`` runs one ``train_step`` on the next batch; ``sync()`` reads the last losses and waits
    for the device, once at the end of a timed window, as the engine does at log time.
    """

    def __init__(self, model_name: str, size: int, channels: int, batch: int, overrides: dict, device: torch.device,
                 precision: str = "fp32", channels_last: bool | None = None, compile_: bool = False,
                 conditional: bool = True) -> None:
        cls = registry().model(model_name).load()
        hp = hparams.build(cls.Hyperparameters, overrides)
        request = DataRequest(size, channels, load_size=cls.load_size(hp, size), options={"size": max(4 * batch, 64)})
        self.data = load_dataset(DEFAULT_DATA[cls.data], request)
        self.load_size = request.load_size  # images are loaded this large and cropped (translation models)
        self.device = device
        torch.manual_seed(0)
        classes = self.data.classes if cls.conditional and conditional else None
        self.model = cls(hp, (channels, size, size), classes, device=device, precision=precision)
        if channels_last if channels_last is not None else device.type == "cuda":  # as the engine does
            for net in self.model.nets.values():
                net.to(memory_format=torch.channels_last)
        if compile_:
            compile_networks(self.model)
        self.stream = BatchStream(self.data, batch, device, crop_size=size if request.load_size else None,
                                  flip=cls.augment_flip)
        self.batches, self.epoch = iter(()), 0
        self.losses: dict[str, torch.Tensor] = {}
        self.model.train()

    def next_batch(self):
        for b in self.batches:
            return b
        self.epoch += 1
        self.batches = iter(self.stream.epoch(self.epoch))
        return next(self.batches)

    def step(self) -> None:
        self.losses = self.model.train_step(self.next_batch())

    def sync(self) -> None:
        for v in self.losses.values():
            float(v)
        sync(self.device)

    def parameter_counts(self) -> dict[str, int]:
        return self.model.parameter_count()

    def close(self) -> None:
        pass


def bench(model_name, size, channels, batch, overrides, device, precision, compile_, steps, warmup):
    side = GencliSide(model_name, size, channels, batch, overrides, device, precision, compile_=compile_)
    for _ in range(warmup):
        side.step()
    side.sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    for _ in range(steps):
        side.step()
    side.sync()
    per_step = (time.perf_counter() - t) / steps
    model, sample_rate, n = side.model, float("nan"), max(batch, 16)
    if model.can("sample"):
        def produce():
            return model.sample(n)
    elif model.can("translate"):
        images = side.stream.data.images[:n].to(device)
        images = to_float(images[..., :size, :size])

        def produce():
            return model.translate(images, "a2b")
    else:
        produce = None
    if produce is not None:
        model.eval()
        with torch.no_grad():
            produce()
            sync(device)
            t = time.perf_counter()
            produce()
            sync(device)
            sample_rate = n / (time.perf_counter() - t)
    return per_step, batch / per_step, peak_memory_mb(device), sample_rate


def bench_in_fresh_process(*args):
    """``bench(*args)`` in a new process: its peak memory is its own, and nothing carries over."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(bench, *args).result()


def _rate(x: float) -> str:
    return f"{x:,.1f}" if x >= 10 else f"{x:.3g}"


def report(rows: list[tuple], argv: list[str], info: dict, steps: int, warmup: int) -> str:
    command = " ".join(["python benchmarks/bench_train.py", *map(shlex.quote, argv)])
    memory = ("peak memory allocated on the GPU" if info["device"] != "CPU"
              else "peak resident memory of the process that ran only this configuration, torch's own included")
    lines = [
        "## Train step and sampling", "", f"`{command}`", "", machine_line(info), "",
        (f"Each configuration in a fresh process: {warmup} warm-up steps, then {steps} timed steps of `train_step` "
         "on batches the engine's BatchStream draws from the built-in data kept on the device, the losses read once "
         f"at the end as the engine reads them at log time. Memory: {memory}. Sampling: `model.sample` of a batch "
         "(DDIM with the model's default 50 steps for `ddpm`), or `model.translate` of as many images for the "
         "translation models, after one untimed call."),
        "",
        "| config | mode | s/step | images/s | peak memory (MB) | sampling or translation images/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, mode, per_step, rate, mem, sample_rate in rows:
        lines.append(f"| {name} | {mode} | {per_step:.4g} | {_rate(rate)} | {mem:,.0f} | {_rate(sample_rate)} |")
    if info["device"] == "CPU":
        lines += ["", "CPU run: fp32 only; the bf16 and compile rows are measured with `--device cuda`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated configuration names or model names")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    wanted = set(filter(None, args.models.split(",")))
    modes = [("fp32", False)] + ([("bf16", False), ("bf16", True)] if device.type == "cuda" else [])
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'config':<14} {'mode':<13} {'s/step':>9} {'img/s':>9} {'peak MB':>9} {'sample img/s':>13}")
    rows = []
    for name, model_name, size, channels, batch, overrides in REFERENCE:
        if wanted and name not in wanted and model_name not in wanted:
            continue
        if model_name not in registry().models:
            print(f"{name:<14} skipped: model {model_name!r} is not installed")
            continue
        for precision, compile_ in modes:
            mode = precision + (" compile" if compile_ else "")
            per_step, rate, mem, sample_rate = bench_in_fresh_process(
                model_name, size, channels, batch, overrides, device, precision, compile_, args.steps, args.warmup)
            print(f"{name:<14} {mode:<13} {per_step:>9.4f} {rate:>9.1f} {mem:>9.0f} {sample_rate:>13.1f}", flush=True)
            rows.append((name, mode, per_step, rate, mem, sample_rate))
    if args.write:
        publish(report(rows, argv, machine(device), args.steps, args.warmup), args.write)


if __name__ == "__main__":
    main()
