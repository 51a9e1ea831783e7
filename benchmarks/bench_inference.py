"""Sampling and translation throughput per model family: eager NCHW against channels-last and torch.compile.

    python benchmarks/bench_inference.py [--rounds 3] [--compile] [--models vae,dcgan] [--write benchmarks/RESULTS.md]

Each configuration builds its model through the registry (weights as initialised: the work does
not depend on their values), in eval mode, and times what `gencli sample` and `gencli translate`
call: ``model.sample(n)`` (DDIM with 10 steps for ``ddpm``), or ``model.translate(x)`` of n
images. Variants, each after one untimed call, in rotated order per round:
- eager: the networks as trained, NCHW, under ``torch.no_grad``: the naive loop a user writes
  around the generator, and what gencli has always run;
- channels-last: the networks' weights (and so their activations) channels-last;
- compile (``--compile``): ``torch.compile`` of each network, timed after its compilation.
The table gives median images/s over the rounds and each variant's ratio to eager.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from results import machine, publish, section_head, selected_configs  # benchmarks/results.py, beside this script

from gencli.data.base import DataRequest, to_float
from gencli.data.resolve import load_dataset
from gencli.models import hparams
from gencli.plugins import registry
from gencli.training.settings import DEFAULT_DATA

# name, model, image size, channels, images per call, hyperparameter overrides, sample options
CONFIGS = [
    ("vae-32", "vae", 32, 3, 64, {}, {}),
    ("dcgan-64", "dcgan", 64, 3, 64, {}, {}),
    ("stylegan-32", "stylegan", 32, 3, 32, {}, {}),
    ("ddpm-32 (DDIM 10)", "ddpm", 32, 3, 16, {}, {"steps": 10}),
    ("cyclegan-128", "cyclegan", 128, 3, 4, {}, {}),
    ("pix2pix-256", "pix2pix", 256, 3, 4, {}, {}),
]


def build(model_name: str, size: int, channels: int, overrides: dict):
    cls = registry().model(model_name).load()
    hp = hparams.build(cls.Hyperparameters, overrides)
    torch.manual_seed(0)
    data = load_dataset(DEFAULT_DATA[cls.data], DataRequest(size, channels, options={"size": 64}))
    classes = data.classes if cls.conditional else None
    model = cls(hp, (channels, size, size), classes, device="cpu")
    model.eval()
    return model, data


def workload(model, data, n: int, size: int, options: dict):
    if model.can("sample"):
        return lambda: model.sample(n, **options)
    x = to_float(data.images[:n][..., :size, :size])
    return lambda: model.translate(x, "a2b")


def variant(model, name: str) -> None:
    for net in model.nets.values():
        if name == "channels-last":
            net.to(memory_format=torch.channels_last)
        elif name == "compile":
            net.compile()


def bench(config, rounds: int, variants: list[str]) -> dict:
    name, model_name, size, channels, n, overrides, options = config
    models = {}
    for v in variants:  # one model per variant, so no variant inherits another's layout
        model, data = build(model_name, size, channels, overrides)
        variant(model, v)
        run = workload(model, data, n, size, options)
        started = time.perf_counter()
        with torch.no_grad():
            run()  # warm-up; for compile, the compilation
        models[v] = (run, time.perf_counter() - started)
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:
            run = models[v][0]
            with torch.no_grad():
                t = time.perf_counter()
                run()
                rates[v].append(n / (time.perf_counter() - t))
        print(f"{name} round {r + 1}: " + ", ".join(f"{v} {rates[v][-1]:.3g}" for v in variants), flush=True)
    return {"name": name, "n": n, "median": {v: statistics.median(x) for v, x in rates.items()},
            "first_call_s": {v: models[v][1] for v in variants}}


def report(rows: list[dict], variants: list[str], info: dict, rounds: int, argv: list[str]) -> str:
    head = "| config | images per call | " + " | ".join(f"{v} images/s" for v in variants) + " | " + " | ".join(
        f"{v} / eager" for v in variants[1:]) + " |"
    lines = [
        *section_head("Sampling and translation on the CPU: memory format and compile", "bench_inference.py", argv, info),
        ("What `gencli sample` and `gencli translate` call, `model.sample(n)` (DDIM with 10 steps for `ddpm`) or "
         "`model.translate(x)`, on networks as initialised, in eval mode under `torch.no_grad`; eager NCHW is the "
         "naive loop around the generator (what gencli ran before loading models channels-last); channels-last converts the networks' weights"
         + (", compile is `torch.compile` of each network, timed after its compilation (the first call's seconds in "
            "brackets)" if "compile" in variants else "")
         + f". Median images/s over {rounds} rounds, variants in rotated order."),
        "",
        head,
        "|---|---:|" + "---:|" * (2 * len(variants) - 1),
    ]
    for r in rows:
        m = r["median"]
        cells = []
        for v in variants:
            cell = f"{m[v]:,.1f}" if m[v] >= 10 else f"{m[v]:.3g}"
            if v == "compile":
                cell += f" ({r['first_call_s'][v]:.0f} s)"
            cells.append(cell)
        ratios = [f"{m[v] / m['eager']:.2f}x" for v in variants[1:]]
        lines.append(f"| {r['name']} | {r['n']} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    laid_out = {name: registry().model_class(model).cpu_channels_last for name, model, *_ in CONFIGS
                if any(r["name"] == name for r in rows)}
    lines += ["", "Trained models loaded on the CPU run channels-last for "
              + (", ".join(k for k, v in laid_out.items() if v) or "none") + "; NCHW for "
              + (", ".join(k for k, v in laid_out.items() if not v) or "none") + " (each model's `cpu_channels_last`). "
              "Compile is not used for sampling: its first call (seconds, even with inductor's kernels cached on "
              "disk) costs more than a `gencli sample` of 64 images takes."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on a CPU)")
    parser.add_argument("--models", default="", help="comma-separated configuration or model names")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    variants = ["eager", "channels-last"] + (["compile"] if args.compile else [])
    rows = [bench(config, args.rounds, variants) for config in selected_configs(CONFIGS, args.models)]
    shown = [f"--rounds {args.rounds}"] + (["--compile"] if args.compile else []) + ([f"--models {args.models}"] if args.models else [])
    publish(report(rows, variants, machine("cpu"), args.rounds, shown), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
