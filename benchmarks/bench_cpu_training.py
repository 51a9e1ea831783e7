"""CPU training step per model family: eager NCHW against channels-last and torch.compile.

    python benchmarks/bench_cpu_training.py [--rounds 4] [--steps 3] [--compile] [--models vae,dcgan]
                                            [--write benchmarks/RESULTS.md]

For each configuration one model per variant is built in the same process (same seed, same
batches from the engine's BatchStream over the built-in data):
- eager: NCHW, as the engine trains on the CPU;
- channels-last: the networks' weights (and so activations and gradients) channels-last, as the
  engine trains on CUDA;
- compile (``--compile``): ``torch.compile`` of each network as ``train --compile`` does (the
  networks a model names in ``eager_networks`` stay eager), timed after its compilation (the
  warm-up steps).
After the warm-up, each round times ``--steps`` train steps of every variant, variants in rotated
order; the table gives the median seconds per step and each variant's ratio to eager (above 1:
faster). The engine's choice on the CPU follows from these figures: see the section's last line.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_train import GencliSide  # benchmarks/bench_train.py, beside this script
from results import machine, publish, section_head, selected_configs

from gencli.plugins import registry

# name, model, image size, channels, batch size, hyperparameter overrides
CONFIGS = [
    ("vae-28", "vae", 28, 1, 128, {}),
    ("cvae-28", "cvae", 28, 1, 64, {}),
    ("dcgan-28", "dcgan", 28, 1, 64, {}),
    ("dcgan-64", "dcgan", 64, 3, 64, {}),
    ("stylegan-32", "stylegan", 32, 3, 32, {}),
    ("ddpm-32", "ddpm", 32, 3, 16, {}),
    ("cyclegan-64", "cyclegan", 64, 3, 1, {}),
    ("pix2pix-64", "pix2pix", 64, 3, 1, {}),
]


def bench(config, variants: list[str], rounds: int, steps: int, warmup: int) -> dict:
    name, model_name, size, channels, batch, overrides = config
    sides, first = {}, {}
    for v in variants:
        side = GencliSide(model_name, size, channels, batch, overrides, torch.device("cpu"),
                          channels_last=v == "channels-last", compile_=v == "compile")
        t = time.perf_counter()
        for _ in range(warmup):
            side.step()
        side.sync()
        first[v] = time.perf_counter() - t
        sides[v] = side
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[: r % len(variants)]:
            side = sides[v]
            t = time.perf_counter()
            for _ in range(steps):
                side.step()
            side.sync()
            times[v].append((time.perf_counter() - t) / steps)
        print(f"{name} round {r + 1}: " + ", ".join(f"{v} {times[v][-1]:.4f} s" for v in variants), flush=True)
    return {"name": name, "model": model_name, "batch": batch, "median": {v: statistics.median(x) for v, x in times.items()},
            "warmup_s": first}


def report(rows: list[dict], variants: list[str], argv: list[str], info: dict, rounds: int, steps: int) -> str:
    head = ("| config | batch | " + " | ".join(f"{v} s/step" for v in variants) + " | "
            + " | ".join(f"{v} / eager" for v in variants[1:]) + " |")
    lines = [
        *section_head("CPU training: memory format and compile", "bench_cpu_training.py", argv, info),
        (f"`train_step` on batches of the built-in data, one model per variant in one process; median seconds per step "
         f"over {rounds} rounds of {steps} steps, variants in rotated order. The ratio is eager's time over the "
         "variant's: above 1 the variant is faster."
         + (" Compile's warm-up (its compilation, seconds) in brackets." if "compile" in variants else "")),
        "",
        head,
        "|---|---:|" + "---:|" * (2 * len(variants) - 1),
    ]
    for r in rows:
        m = r["median"]
        cells = [f"{m[v]:.4f}" + (f" ({r['warmup_s'][v]:.0f} s)" if v == "compile" else "") for v in variants]
        ratios = [f"{m['eager'] / m[v]:.2f}x" for v in variants[1:]]
        lines.append(f"| {r['name']} | {r['batch']} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lines += ["", adopted(rows)]
    return "\n".join(lines) + "\n"


def adopted(rows: list[dict]) -> str:
    """What the engine does on the CPU, per model (``cpu_channels_last_training``), beside these figures."""
    models = registry().models
    on, off = [], []
    for r in rows:
        cls = registry().model_class(r["model"]) if r["model"] in models else None
        if cls is not None:
            (on if cls.cpu_channels_last_training else off).append(r["name"])
    return ("The engine trains channels-last on the CPU for " + (", ".join(on) or "none") + "; NCHW for "
            + (", ".join(off) or "none") + " (each model's `cpu_channels_last_training`). `--compile` stays a "
            "choice on the CPU: it is not faster for every model, and it costs its compilation first.")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="train steps per variant per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile on a CPU)")
    parser.add_argument("--models", default="", help="comma-separated configuration or model names")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    variants = ["eager", "channels-last"] + (["compile"] if args.compile else [])
    rows = [bench(config, variants, args.rounds, args.steps, args.warmup) for config in selected_configs(CONFIGS, args.models)]
    shown = [f"--rounds {args.rounds}", f"--steps {args.steps}"] + (["--compile"] if args.compile else []) + (
        [f"--models {args.models}"] if args.models else [])
    publish(report(rows, variants, shown, machine("cpu"), args.rounds, args.steps), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
