"""The FID Inception on the CPU, one change at a time: milliseconds per image and agreement with pytorch-fid.

    python benchmarks/bench_inception.py [--images 48] [--rounds 3] [--write benchmarks/RESULTS.md]

In one process, on the same random 32 px images (resized to 299 inside, as in FID), each variant
runs once untimed, then ``--rounds`` times in rotated order:
- pytorch-fid's network as it is published: batch norms, NCHW, one pass over all images;
- batch norms folded into the convolutions;
- folded, channels-last;
- folded, channels-last, in passes of ``--passes`` images each (gencli's pass size,
  ``InceptionFeatures.cpu_batch``, marked), to tune the pass size to the machine's cache.
Weights: pytorch-fid's real ones when torch's cache holds them, otherwise random (He-initialised
convolutions, batch norms with random statistics, so folding them is exercised); the work is the same.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from results import machine, machine_line, publish  # benchmarks/results.py, beside this script
from torch import nn


def network() -> tuple[nn.Module, str]:
    from gencli.metrics.inception import (
        FIDInception,
        cached_weights_path,
        fid_inception_architecture,
        load_fid_inception,
        randomise,
    )

    if cached_weights_path().is_file():
        return load_fid_inception(cached_weights_path()), "pytorch-fid's"
    return FIDInception(randomise(fid_inception_architecture(), batch_norms=True)).eval(), "random (same architecture)"


def variants(base: nn.Module, pass_sizes: list[int], n: int) -> dict:
    from gencli.metrics.features import InceptionFeatures
    from gencli.metrics.inception import fold_batchnorm

    folded = fold_batchnorm(copy.deepcopy(base))
    last = copy.deepcopy(base).optimise_for_cpu()

    def whole(net):
        return lambda x: net(x)

    def passes(net, size):
        return lambda x: torch.cat([net(part) for part in x.tensor_split(-(-len(x) // size))])

    out = {
        "pytorch-fid's network (batch norms, NCHW)": whole(base),
        "batch norms folded": whole(folded),
        f"folded, channels-last, one pass of {n}": whole(last),
    }
    for size in pass_sizes:
        if size < n:
            gencli = " (gencli)" if size == InceptionFeatures.cpu_batch else ""
            out[f"folded, channels-last, passes of {size}{gencli}"] = passes(last, size)
    return out


def run(n: int, rounds: int, pass_sizes: list[int]) -> dict:
    base, weights = network()
    runs = variants(base, pass_sizes, n)
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    names = list(runs)
    times: dict[str, list[float]] = {k: [] for k in names}
    out = {}
    with torch.inference_mode():
        for k in names:
            out[k] = runs[k](x)  # untimed warm-up, and the features to compare
        for r in range(rounds):
            for k in names[r % len(names):] + names[: r % len(names)]:
                t = time.perf_counter()
                runs[k](x)
                times[k].append((time.perf_counter() - t) / n * 1000)
            print(f"round {r + 1}: " + ", ".join(f"{times[k][-1]:.0f}" for k in names), flush=True)
    ref = out[names[0]]
    diff = {k: float((v - ref).abs().max() / ref.abs().max()) for k, v in out.items()}
    return {"n": n, "rounds": rounds, "passes": pass_sizes, "weights": weights, "ms": {k: statistics.median(v) for k, v in times.items()},
            "diff": diff, **machine("cpu")}


def report(r: dict) -> str:
    names = list(r["ms"])
    base = r["ms"][names[0]]
    rows = [f"| {k} | {r['ms'][k]:.0f} | {base / r['ms'][k]:.2f}x | {r['diff'][k]:.1e} |" for k in names]
    return "\n".join([
        "## FID Inception on the CPU",
        "",
        f"`python benchmarks/bench_inception.py --images {r['n']} --rounds {r['rounds']} "
        f"--passes {','.join(map(str, r['passes']))}`",
        "",
        machine_line(r),
        "",
        f"{r['n']} random 32 px images through the FID Inception (resized to 299 px inside), weights: {r['weights']}; "
        f"median of {r['rounds']} rounds, variants in rotated order, in one process. Difference: the largest "
        "absolute difference of the 2048-d features from pytorch-fid's network, relative to the largest feature.",
        "",
        "| network | ms per image | speed-up | difference |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--passes", default="4,8,16,24", help="pass sizes to time (comma-separated)")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    publish(report(run(args.images, args.rounds, [int(v) for v in args.passes.split(",")])), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
