"""Train-step and sampling throughput of each model at its reference configuration.

    python benchmarks/bench_train.py [--device cuda] [--steps 20] [--models dcgan,vae] [--write benchmarks/RESULTS.md]
                                     [--defaults] [--modes fp32,bf16,fp16,bf16+compile] [--in-process] [--budget-s 120]

For each configuration it reports seconds per training step, images per second and peak memory
on the device, in fp32 and (on CUDA) in bf16 and with torch.compile, plus sampling throughput.
``--defaults`` runs every model family at its own defaults (image size, channels and batch size
of ``gencli train`` without options) instead of the reference configurations; ``--modes`` picks
the precisions (``+compile`` for torch.compile); ``--budget-s`` skips the configurations left once
that many seconds have passed (a prepared GPU script's time limit), naming them.
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
from gencli.training.device import compile_networks
from gencli.training.settings import DEFAULT_DATA

# name, model, image size, channels, batch size, hyperparameter overrides
REFERENCE = [
    ("dcgan-64", "dcgan", 64, 3, 64, {}),
    ("cyclegan-128", "cyclegan", 128, 3, 1, {}),
    ("cyclegan-256", "cyclegan", 256, 3, 1, {}),
    ("pix2pix-256", "pix2pix", 256, 3, 1, {}),
    ("vae-28", "vae", 28, 1, 128, {}),
    ("ddpm-32", "ddpm", 32, 3, 16, {}),
]

# One model per family, each trained by benchmarks at its defaults (``family_config``).
FAMILIES = ["vae", "cvae", "vqvae", "dcgan", "wgan-gp", "ssgan", "cgan", "stylegan", "cyclegan", "pix2pix", "ddpm"]


def family_config(model_name: str) -> tuple[str, str, int, int, int, dict]:
    """A configuration (name, model, image size, channels, batch size, overrides) at the model's own
    defaults: what ``gencli train MODEL`` without options trains on its default data."""
    d = registry().model_class(model_name).defaults
    return (f"{model_name}-{d.image_size}", model_name, d.image_size, d.channels, d.batch_size, {})


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


def producer(side: GencliSide, n: int, size: int):
    """The model's sampling pass as a function of no arguments: ``model.sample(n)``, or
    ``model.translate`` of ``n`` images of the side's data for the translation models; None when it
    does neither."""
    model, device = side.model, side.device
    if model.can("sample"):
        def produce():
            return model.sample(n)
        return produce
    if model.can("translate"):
        images = to_float(side.stream.data.images[:n].to(device)[..., :size, :size])

        def produce():
            return model.translate(images, "a2b")
        return produce
    return None


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
    produce = producer(side, n, size)
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


def report(rows: list[tuple], argv: list[str], info: dict, steps: int, warmup: int, defaults: bool = False,
           in_process: bool = False, skipped: list[str] | None = None) -> str:
    command = " ".join(["python benchmarks/bench_train.py", *map(shlex.quote, argv)])
    memory = ("peak memory allocated on the GPU" if info["device"] != "CPU"
              else "peak resident memory of the process that ran only this configuration, torch's own included"
              if not in_process else "peak resident memory of the process, which ran every configuration")
    title = "Train step and sampling per family at its defaults" if defaults else "Train step and sampling"
    where = "All configurations in one process" if in_process else "Each configuration in a fresh process"
    lines = [
        f"## {title}", "", f"`{command}`", "", machine_line(info), "",
        (f"{where}: {warmup} warm-up steps, then {steps} timed steps of `train_step` "
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
    if info["device"] == "CPU" and all(mode == "fp32" for _, mode, *_ in rows):
        lines += ["", "CPU run: fp32 only; the bf16 and compile rows are measured with `--device cuda`."]
    if skipped:
        lines += ["", f"Not measured: {'; '.join(skipped)}."]
    return "\n".join(lines) + "\n"


def parse_modes(text: str) -> list[tuple[str, bool]]:
    """``fp32,bf16,bf16+compile`` -> [(precision, compile), ...]."""
    modes = []
    for item in filter(None, text.split(",")):
        precision, _, extra = item.partition("+")
        if precision not in ("fp32", "bf16", "fp16") or extra not in ("", "compile"):
            raise argparse.ArgumentTypeError(f"unknown mode {item!r}: fp32, bf16 or fp16, optionally +compile")
        modes.append((precision, extra == "compile"))
    return modes


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated configuration names or model names")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    parser.add_argument("--defaults", action="store_true",
                        help="every model family at its own default image size and batch size (FAMILIES)")
    parser.add_argument("--modes", type=parse_modes, default=None,
                        help="comma-separated: fp32, bf16, fp16, each optionally +compile "
                             "(default: fp32; on CUDA also bf16 and bf16+compile)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every configuration in this process (on CUDA peak memory stays per run)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="skip the configurations left once this many seconds have passed")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    wanted = set(filter(None, args.models.split(",")))
    modes = args.modes or [("fp32", False)] + ([("bf16", False), ("bf16", True)] if device.type == "cuda" else [])
    run = bench if args.in_process else bench_in_fresh_process
    started, skipped = time.perf_counter(), []
    configs = REFERENCE
    if args.defaults:
        configs = []
        for m in FAMILIES:
            try:
                configs.append(family_config(m))
            except Exception as exc:  # a plugin that fails to load leaves the other families measured
                print(f"{m:<14} skipped: {exc}", flush=True)
                skipped.append(f"{m} ({exc})")
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'config':<14} {'mode':<13} {'s/step':>9} {'img/s':>9} {'peak MB':>9} {'sample img/s':>13}")
    rows = []
    for name, model_name, size, channels, batch, overrides in configs:
        if wanted and name not in wanted and model_name not in wanted:
            continue
        if model_name not in registry().models:
            print(f"{name:<14} skipped: model {model_name!r} is not installed")
            continue
        for precision, compile_ in modes:
            mode = precision + (" compile" if compile_ else "")
            if args.budget_s is not None and time.perf_counter() - started > args.budget_s:
                print(f"{name:<14} {mode:<13} skipped: the {args.budget_s:.0f} s budget is spent", flush=True)
                skipped.append(f"{name} {mode} (the time budget spent)")
                continue
            per_step, rate, mem, sample_rate = run(
                model_name, size, channels, batch, overrides, device, precision, compile_, args.steps, args.warmup)
            print(f"{name:<14} {mode:<13} {per_step:>9.4f} {rate:>9.1f} {mem:>9.0f} {sample_rate:>13.1f}", flush=True)
            rows.append((name, mode, per_step, rate, mem, sample_rate))
    if args.write:
        publish(report(rows, argv, machine(device), args.steps, args.warmup, args.defaults, args.in_process, skipped),
                args.write)


if __name__ == "__main__":
    main()
