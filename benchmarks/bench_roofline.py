"""CPU roofline: the machine's attainable fp32 peak and bandwidth, and where each family's step sits.

    python benchmarks/bench_roofline.py [--quick] [--families vae,dcgan] [--fused-families vae,pix2pix]
                                        [--write benchmarks/RESULTS.md] [--figure benchmarks/figures/roofline.png]

In one run:
- peak: the best fp32 rate of ``torch.mm`` and of ``torch.nn.functional.conv2d`` (NCHW and
  channels-last) over a sweep of shapes, with one thread and with all of torch's threads; and the
  memory bandwidth of a large copy and of an add triad (``a = b + s * c``), in GB/s;
- per family (``bench_train.FAMILIES``, each at its defaults: image size, channels and batch size of
  ``gencli train MODEL`` without options, batches from the engine's BatchStream, memory format as
  the engine trains on the CPU): the FLOPs of one train step and of one sampling pass counted with
  ``torch.utils.flop_counter.FlopCounterMode``, the bytes their aten ops read and write (every op's
  input and output tensors, views excluded: an estimate with no cache reuse, so intensities are
  lower bounds), the median wall time after warm-up, the achieved rate as a fraction of the peak,
  and a ``torch.profiler`` breakdown of the step into convolutions (small and large by FLOPs per
  call), GEMMs (mm, addmm, bmm, attention), memory-bound ops (normalisation, activations,
  elementwise, losses, copies), the optimizer step, data, and overhead (wall time minus the self
  time of those: Python, autograd engine, dispatch);
- the optimizer path: each family's step with torch's single-tensor Adam loop (its default on the
  CPU) against ``foreach=True`` and ``fused=True`` Adam, in rotated rounds in the same process.

``--quick`` sweeps fewer shapes and times fewer steps (about two minutes on an idle 2-core machine);
its section says so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from bench_train import FAMILIES, GencliSide, family_config, producer  # benchmarks/bench_train.py, beside this script
from results import machine, publish, section_head  # benchmarks/results.py, beside this script
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from gencli.plugins import registry

HERE = Path(__file__).resolve().parent
SMALL_CONV_FLOPS = 20e6  # a convolution call below this many FLOPs counts as small
CATEGORIES = ["conv small", "conv large", "GEMM", "memory-bound", "optimizer", "data", "overhead"]


# ---------------------------------------------------------------------------------- the machine's peak
def best_seconds(fn, min_time: float, repeats: int = 3) -> float:
    """The best seconds per call of ``fn`` over ``repeats`` windows of at least ``min_time`` seconds."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def gemm_shapes(quick: bool) -> list[tuple[int, int, int]]:
    """(m, k, n) of ``torch.mm``."""
    if quick:
        return [(512, 512, 512), (1024, 1024, 1024)]
    return [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 512, 512),
            (8192, 256, 256)]


def conv_shapes(quick: bool) -> list[tuple[int, int, int, int, int]]:
    """(batch, in channels, out channels, size, kernel) of a stride-1 convolution padded to keep the size."""
    if quick:
        return [(32, 64, 64, 32, 3), (16, 256, 256, 8, 3)]
    return [(64, 64, 64, 32, 3), (32, 128, 128, 16, 3), (16, 256, 256, 8, 3), (64, 3, 64, 32, 3),
            (32, 256, 256, 16, 1), (16, 512, 512, 4, 3)]


def measure_bandwidth(threads: list[int], min_time: float) -> list[dict[str, Any]]:
    """GB/s of a copy and of an add triad over 128 MB tensors (far beyond the caches), per thread count."""
    items = 2**25
    a, b, c = torch.empty(items), torch.rand(items), torch.rand(items)
    nbytes = items * 4
    bandwidth = []
    for name, moved, fn in (("copy (a = b)", 2 * nbytes, lambda: a.copy_(b)),
                            ("triad (a = b + s * c)", 3 * nbytes, lambda: torch.add(b, c, alpha=3.0, out=a))):
        rates = {}
        for t in threads:
            torch.set_num_threads(t)
            rates[t] = moved / best_seconds(fn, min_time) / 1e9
        bandwidth.append({"kernel": name, "rates": rates})
    return bandwidth


def measure_peak(quick: bool, threads: list[int]) -> dict[str, Any]:
    min_time = 0.1 if quick else 0.3
    rows = []
    saved = torch.get_num_threads()
    try:
        for m, k, n in gemm_shapes(quick):
            a, b = torch.randn(m, k), torch.randn(k, n)
            rates = {}
            for t in threads:
                torch.set_num_threads(t)
                rates[t] = 2 * m * k * n / best_seconds(lambda a=a, b=b: torch.mm(a, b), min_time) / 1e9
            rows.append({"kernel": "GEMM (torch.mm)", "shape": f"{m}x{k} @ {k}x{n}", "layout": "", "rates": rates})
        for batch, cin, cout, size, kernel in conv_shapes(quick):
            w = torch.randn(cout, cin, kernel, kernel)
            x = torch.randn(batch, cin, size, size)
            flops = 2 * batch * cout * size * size * cin * kernel * kernel
            for layout in ("NCHW", "channels-last"):
                fmt = torch.channels_last if layout == "channels-last" else torch.contiguous_format
                xl, wl = x.contiguous(memory_format=fmt), w.contiguous(memory_format=fmt)
                rates = {}
                with torch.no_grad():
                    for t in threads:
                        torch.set_num_threads(t)
                        rates[t] = flops / best_seconds(
                            lambda xl=xl, wl=wl, pad=kernel // 2: F.conv2d(xl, wl, padding=pad), min_time) / 1e9
                rows.append({"kernel": f"conv2d {kernel}x{kernel}", "layout": layout, "rates": rates,
                             "shape": f"{batch}x{cin}x{size}x{size} -> {cout}"})
        bandwidth = measure_bandwidth(threads, min_time)
    finally:
        torch.set_num_threads(saved)
    top = max(threads)
    return {"rows": rows, "bandwidth": bandwidth, "threads": threads,
            "peak": max(r["rates"][top] for r in rows), "peak_1": max(r["rates"][min(threads)] for r in rows),
            "bw": max(r["rates"][top] for r in bandwidth)}


# ---------------------------------------------------------------------------------- counting a pass
class Traffic(TorchDispatchMode):
    """Bytes the aten ops read and write: every tensor argument and result, views excluded."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            leaves, _ = tree_flatten((args, kwargs, out))
            self.bytes += sum(t.numel() * t.element_size() for t in leaves if isinstance(t, torch.Tensor))
        return out


class _Global:
    """FlopCounterMode's module tracker, minus its module hooks: every count goes to "Global". The
    hooks break ``torch.autograd.grad`` on a leaf (wgan-gp's gradient penalty); only the total is used."""

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass


def counted(fn) -> tuple[int, int]:
    """(FLOPs, bytes) of one call of ``fn``."""
    flops = FlopCounterMode(display=False)
    flops.mod_tracker = _Global()
    with flops, Traffic() as traffic:
        fn()
    return flops.get_total_flops(), traffic.bytes


# ---------------------------------------------------------------------------------- the profile
CONV = {"aten::convolution", "aten::convolution_backward"}
CONV_WRAPPERS = {"aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::conv_transpose1d", "aten::conv_transpose2d",
                 "aten::conv_transpose3d"}
GEMM = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm", "aten::matmul", "aten::linear",
        "aten::scaled_dot_product_attention", "aten::_scaled_dot_product_flash_attention_for_cpu",
        "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}


def conv_call_flops(event) -> float:
    """FLOPs of one aten::convolution (forward) or aten::convolution_backward call, from its recorded
    shapes and arguments (the formulas of torch.utils.flop_counter)."""
    shapes = event.input_shapes
    concrete = getattr(event, "concrete_inputs", None) or []

    def arg(i, default):
        return concrete[i] if i < len(concrete) and concrete[i] is not None else default

    if event.name == "aten::convolution_backward":
        grad_out, x, w = shapes[0], shapes[1], shapes[2]
        transposed, mask = bool(arg(7, False)), arg(10, [True, True, True])
        return conv_flop_count(x, w, grad_out, transposed) * (int(bool(mask[0])) + int(bool(mask[1])))
    x, w = shapes[0], shapes[1]
    spatial = len(x) - 2
    stride, padding, dilation = arg(3, [1] * spatial), arg(4, [0] * spatial), arg(5, [1] * spatial)
    transposed, output_padding = bool(arg(6, False)), arg(7, [0] * spatial)
    out = list(x[:2])
    for i in range(spatial):
        k = w[2 + i]
        if transposed:
            out.append((x[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k - 1) + output_padding[i] + 1)
        else:
            out.append((x[2 + i] + 2 * padding[i] - dilation[i] * (k - 1) - 1) // stride[i] + 1)
    return conv_flop_count(x, w, out, transposed)


def categorise(events, wall: float) -> dict[str, Any]:
    """Seconds per category (``CATEGORIES``) of the profiled events, the FLOPs of the convolutions by
    size, and the ops with the most self time; overhead is ``wall`` minus the categorised self time."""
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    conv_flops = {"conv small": 0.0, "conv large": 0.0}
    by_op: dict[str, float] = {}
    flops_of: dict[int, float] = {}
    for e in events:
        anchor, scope = None, None
        node = e
        while node is not None:
            if node.name.startswith(("Optimizer.step", "Optimizer.zero_grad")):
                scope = "optimizer"
            elif node.name == "bench:data":
                scope = "data"
            elif node.name in CONV or node.name in GEMM:
                anchor = node  # the outermost one wins
            elif node.name in CONV_WRAPPERS and anchor is None:
                anchor = next((c for c in node.cpu_children if c.name == "aten::convolution"), node)
            node = node.cpu_parent
        self_s = e.self_cpu_time_total / 1e6
        if scope is not None:
            category = scope
        elif anchor is not None and anchor.name in CONV:
            key = id(anchor)
            if key not in flops_of:
                flops_of[key] = conv_call_flops(anchor)
                size = "conv small" if flops_of[key] < SMALL_CONV_FLOPS else "conv large"
                conv_flops[size] += flops_of[key]
            category = "conv small" if flops_of[key] < SMALL_CONV_FLOPS else "conv large"
        elif anchor is not None:
            category = "GEMM"
        elif e.name.startswith("aten::"):
            category = "memory-bound"
        else:
            continue  # autograd engine and other framework events: counted in the overhead
        seconds[category] += self_s
        if e.name.startswith("aten::"):
            by_op[e.name] = by_op.get(e.name, 0.0) + self_s
    seconds["overhead"] = max(0.0, wall - sum(seconds.values()))
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:4]
    return {"seconds": seconds, "conv_flops": conv_flops, "top": top, "wall": wall}


def profiled(run_once, passes: int) -> dict[str, Any]:
    """The breakdown of ``passes`` calls of ``run_once`` under torch.profiler, per call."""
    walls = []
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(passes):
            start = time.perf_counter()
            run_once()
            walls.append(time.perf_counter() - start)
    out = categorise(prof.events(), sum(walls))
    out["seconds"] = {k: v / passes for k, v in out["seconds"].items()}
    out["conv_flops"] = {k: v / passes for k, v in out["conv_flops"].items()}
    out["top"] = [(name, s / passes) for name, s in out["top"]]
    out["wall"] = sum(walls) / passes
    return out


# ---------------------------------------------------------------------------------- a family
def build_side(model_name: str) -> tuple[GencliSide, tuple]:
    config = family_config(model_name)
    _, _, size, channels, batch, overrides = config
    cls = registry().model_class(model_name)
    side = GencliSide(model_name, size, channels, batch, overrides, torch.device("cpu"),
                      channels_last=cls.cpu_channels_last_training)  # as the engine trains on the CPU
    return side, config


def train_once(side: GencliSide) -> None:
    with record_function("bench:data"):
        batch = side.next_batch()
    side.losses = side.model.train_step(batch)
    side.sync()


def measure_family(model_name: str, steps: int, warmup: int, passes: int, sample_n: int, sample_reps: int) -> dict:
    side, config = build_side(model_name)
    name, _, size, channels, batch, _ = config
    flops, moved = counted(lambda: train_once(side))  # also the first warm-up step
    for _ in range(warmup):
        train_once(side)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_once(side)
        times.append(time.perf_counter() - start)
    train = {"flops": flops, "bytes": moved, "seconds": statistics.median(times),
             "profile": profiled(lambda: train_once(side), passes)}
    optimizers = {k: (type(o).__name__, o.defaults.get("foreach"), o.defaults.get("fused"))
                  for k, o in side.model.optimizers.items()}
    sample = None
    produce = producer(side, sample_n, size)
    if produce is not None:
        side.model.eval()
        with torch.no_grad():
            s_flops, s_bytes = counted(produce)
            s_times = []
            for _ in range(sample_reps):
                start = time.perf_counter()
                produce()
                s_times.append(time.perf_counter() - start)
            sample = {"flops": s_flops, "bytes": s_bytes, "seconds": statistics.median(s_times), "n": sample_n,
                      "profile": profiled(produce, 1),
                      "kind": "sample" if side.model.can("sample") else "translate"}
    return {"name": name, "model": model_name, "size": size, "channels": channels, "batch": batch,
            "train": train, "sample": sample, "optimizers": optimizers}


# ---------------------------------------------------------------------------------- the optimizer path
def with_optimizer_flags(side: GencliSide, **flags) -> list[str]:
    """Rebuild the side's Adam/AdamW optimizers with ``flags`` (same parameter groups); their names."""
    swapped = []
    for key, opt in list(side.model.optimizers.items()):
        if type(opt) not in (torch.optim.Adam, torch.optim.AdamW):
            continue
        groups = [{k: v for k, v in g.items() if k not in ("foreach", "fused")} for g in opt.param_groups]
        side.model.optimizers[key] = type(opt)(groups, **flags)
        swapped.append(key)
    return swapped


def optimizer_ab(model_name: str, rounds: int, steps: int, warmup: int) -> dict[str, Any]:
    variants = {"default": {"foreach": False, "fused": False}, "foreach": {"foreach": True, "fused": False},
                "fused": {"foreach": False, "fused": True}}
    sides, swapped = {}, []
    for v, flags in variants.items():
        side, _ = build_side(model_name)
        swapped = with_optimizer_flags(side, **flags)
        for _ in range(warmup):
            train_once(side)
        sides[v] = side
    times: dict[str, list[float]] = {v: [] for v in variants}
    names = list(variants)
    for r in range(rounds):
        for v in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            for _ in range(steps):
                train_once(sides[v])
            times[v].append((time.perf_counter() - start) / steps)
    per_round = {v: [d / t for d, t in zip(times["default"], times[v])] for v in names}
    return {"model": model_name, "swapped": swapped, "median": {v: statistics.median(t) for v, t in times.items()},
            "ratio": {v: statistics.median(x) for v, x in per_round.items()}, "rounds": rounds, "steps": steps}


# ---------------------------------------------------------------------------------- report
def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def why(r: dict, peak: float, ridge: float) -> str:
    """One line, from the step's profile, on why it reaches less than half the peak."""
    t, prof = r["train"], r["train"]["profile"]
    shares = {k: v / prof["wall"] for k, v in prof["seconds"].items()}
    intensity = t["flops"] / max(t["bytes"], 1)
    parts = []
    big = sorted((k for k in CATEGORIES if k != "conv large"), key=lambda k: -shares[k])
    for k in big[:2]:
        if shares[k] >= 0.1:
            parts.append(f"{pct(shares[k])} of the step in {k}")
    large_s = prof["seconds"]["conv large"]
    if large_s > 0:
        rate = prof["conv_flops"]["conv large"] / large_s / 1e9
        parts.append(f"its large convolutions themselves run at {rate:.0f} GFLOP/s ({pct(rate / peak)} of peak)")
    bound = ("memory-bound by its intensity" if intensity < ridge
             else "compute-bound by its intensity, so the time goes to the work listed")
    top = ", ".join(f"{name.removeprefix('aten::')} {pct(s / prof['wall'])}" for name, s in prof["top"][:3])
    return (f"- {r['name']} ({pct(t['flops'] / t['seconds'] / 1e9 / peak)} of peak): " + "; ".join(parts)
            + f"; {intensity:.1f} FLOP/byte against a ridge of {ridge:.1f}: {bound}. Top ops: {top}.")


def report(peak: dict, rows: list[dict], ab: list[dict], argv: list[str], info: dict, args) -> str:
    threads = peak["threads"]
    top = max(threads)
    ridge = peak["peak"] / peak["bw"]
    lines = [*section_head("CPU roofline per family", "bench_roofline.py", argv, info)]
    if args.quick:
        lines += [("**Quick run** (`--quick`: fewer shapes, fewer steps, on a machine shared with other jobs): the "
                   "figures show the method works end to end; they are not the machine's. The full run, on an idle "
                   "machine: `python benchmarks/bench_roofline.py --write benchmarks/RESULTS.md`."), ""]
    lines += [
        (f"Peak: the best fp32 rate over a sweep of shapes, best of 3 windows each, with {' and '.join(map(str, threads))} "
         f"threads. Attainable peak with {top} threads: **{peak['peak']:.1f} GFLOP/s** ({peak['peak_1']:.1f} with "
         f"{min(threads)}); bandwidth **{peak['bw']:.1f} GB/s**; the ridge point (peak / bandwidth) is "
         f"{ridge:.1f} FLOP/byte."),
        "",
        "| kernel | shape | layout | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} GFLOP/s" for t in threads) + " |",
        "|---|---|---|" + "---:|" * len(threads),
    ]
    for r in peak["rows"]:
        lines.append(f"| {r['kernel']} | {r['shape']} | {r['layout']} | "
                     + " | ".join(f"{r['rates'][t]:.1f}" for t in threads) + " |")
    lines += ["", "| memory | " + " | ".join(f"{t} thread{'s' if t > 1 else ''} GB/s" for t in threads) + " |",
              "|---|" + "---:|" * len(threads)]
    for r in peak["bandwidth"]:
        lines.append(f"| {r['kernel']}, 128 MB | " + " | ".join(f"{r['rates'][t]:.1f}" for t in threads) + " |")
    lines += [
        "",
        (f"Families at their defaults (`gencli train MODEL` without options: image size, batch size, memory format "
         f"as the engine trains on the CPU), {torch.get_num_threads()} threads. FLOPs: `FlopCounterMode` "
         "(convolutions and matrix products, forward and backward); bytes: every aten op's inputs and outputs, "
         "views excluded (no cache reuse assumed, so the intensity is a lower bound); time: median of "
         f"{args.steps} steps after {args.warmup + 1} warm-up steps; sampling: `model.sample` (DDIM 50 steps for "
         "`ddpm`) or `model.translate` of the images in brackets, after one counted pass, median of "
         f"{1 if args.quick else 2} pass(es). Rate and % of the measured peak above."),
        "",
        "| family | image, batch | step s | GFLOP/step | GFLOP/s | % of peak | FLOP/byte | bound | "
        "sampling s (images) | sampling GFLOP/s | % of peak |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        t, s = r["train"], r["sample"]
        rate = t["flops"] / t["seconds"] / 1e9
        intensity = t["flops"] / max(t["bytes"], 1)
        cells = [f"| {r['name']} | {r['channels']}x{r['size']}x{r['size']}, {r['batch']} | {t['seconds']:.3f} | "
                 f"{t['flops'] / 1e9:.2f} | {rate:.1f} | {pct(rate / peak['peak'])} | {intensity:.1f} | "
                 f"{'memory' if intensity < ridge else 'compute'} |"]
        if s:
            s_rate = s["flops"] / s["seconds"] / 1e9
            cells.append(f" {s['seconds']:.3f} ({s['n']}) | {s_rate:.1f} | {pct(s_rate / peak['peak'])} |")
        else:
            cells.append(" - | - | - |")
        lines.append("".join(cells))
    lines += [
        "",
        (f"Where the train step's time goes (`torch.profiler`, {args.passes} profiled step(s), shares of the profiled "
         f"wall time, which the profiler lengthens): convolutions split at {SMALL_CONV_FLOPS / 1e6:.0f} MFLOP per "
         "call (forward or backward), GEMMs (mm, addmm, bmm, attention), memory-bound ops (normalisation, "
         "activations, elementwise, losses, copies), the optimizer's step and zero_grad, the data (BatchStream), "
         "and overhead: the wall time left, Python, the autograd engine and dispatch. Last column: the large "
         "convolutions' own rate."),
        "",
        "| family | pass | profiled s | " + " | ".join(CATEGORIES) + " | large conv GFLOP/s |",
        "|---|---|---:|" + "---:|" * (len(CATEGORIES) + 1),
    ]
    for r in rows:
        for kind, p in (("train", r["train"]["profile"]),
                        (r["sample"]["kind"] if r["sample"] else None, r["sample"]["profile"] if r["sample"] else None)):
            if p is None:
                continue
            large_s = p["seconds"]["conv large"]
            large = f"{p['conv_flops']['conv large'] / large_s / 1e9:.1f}" if large_s else "-"
            shares = " | ".join(pct(p["seconds"][k] / p["wall"]) for k in CATEGORIES)
            lines.append(f"| {r['name']} | {kind} | {p['wall']:.3f} | {shares} | {large} |")
    slow = [r for r in rows if r["train"]["flops"] / r["train"]["seconds"] / 1e9 < 0.5 * peak["peak"]]
    if slow:
        lines += ["", "Below half the peak, from each step's profile:", ""]
        lines += [why(r, peak["peak"], ridge) for r in slow]
    def kind(name: str, foreach, fused) -> str:
        return f"{name} ({'fused' if fused else 'foreach' if foreach else 'single-tensor loop'})"

    lines += ["", "Optimizers as each family builds them: " + "; ".join(
        f"{r['name']} " + ", ".join(f"{k} {kind(*v)}" for k, v in r["optimizers"].items()) for r in rows) + "."]
    if ab:
        lines += [
            "",
            (f"Adam's implementations on each family's default step (its Adam optimizers rebuilt with the same "
             f"parameter groups), one process per family, {ab[0]['rounds']} rounds of {ab[0]['steps']} steps in "
             "rotated order; ratio = the single-tensor loop's time / the variant's (above 1: faster), median of the "
             "rounds' ratios. The loop is torch's default on the CPU; `gencli.nn.optim.adam`, which the families "
             "build their Adam with, takes the fused kernel:"),
            "",
            "| family | optimizers | loop s/step | foreach | fused |",
            "|---|---|---:|---:|---:|",
            *(f"| {a['model']} | {', '.join(a['swapped'])} | {a['median']['default']:.4f} | {a['ratio']['foreach']:.2f}x "
              f"| **{a['ratio']['fused']:.2f}x** |" for a in ab),
        ]
    return "\n".join(lines) + "\n"


def figure(peak: dict, rows: list[dict], path: Path, quick: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r["name"], r["train"]["flops"] / max(r["train"]["bytes"], 1),
               r["train"]["flops"] / r["train"]["seconds"] / 1e9) for r in rows]
    xs = [p[1] for p in points] + [peak["peak"] / peak["bw"]]
    lo, hi = min(xs) / 4, max(xs) * 4
    fig, ax = plt.subplots(figsize=(7.5, 5))
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    ax.plot(grid, [min(peak["peak"], peak["bw"] * x) for x in grid], color="black",
            label=f"roof: {peak['peak']:.0f} GFLOP/s, {peak['bw']:.1f} GB/s ({max(peak['threads'])} threads)")
    ax.plot(grid, [min(peak["peak_1"], peak["bw"] * x) for x in grid], color="grey", linestyle="--",
            label=f"1 thread: {peak['peak_1']:.0f} GFLOP/s")
    for name, x, y in points:
        ax.scatter([x], [y], zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved, estimated)")
    ax.set_ylabel("GFLOP/s (fp32)")
    ax.set_title("CPU roofline: each family's default train step" + (" (quick run)" if quick else ""))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes and steps (about two minutes)")
    parser.add_argument("--families", default="", help=f"comma-separated, of: {', '.join(FAMILIES)} (default: all)")
    parser.add_argument("--fused-families", default="all", help="the families whose step times Adam's "
                        "implementations (comma-separated; default: every family measured)")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    parser.add_argument("--figure", type=Path, default=HERE / "figures" / "roofline.png")
    args = parser.parse_args(argv)
    quick = args.quick
    args.steps, args.warmup, args.passes = (2, 0, 1) if quick else (5, 2, 3)
    wanted = [f for f in args.families.split(",") if f] or FAMILIES
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown:
        parser.error(f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                     f"known: {', '.join(FAMILIES)}")
    started = time.perf_counter()
    threads = sorted({1, torch.get_num_threads()})
    peak = measure_peak(quick, threads)
    print(f"peak {peak['peak']:.1f} GFLOP/s ({peak['peak_1']:.1f} on 1 thread), bandwidth {peak['bw']:.1f} GB/s "
          f"[{time.perf_counter() - started:.0f} s]", flush=True)
    rows, failed = [], []
    for name in wanted:
        if name not in registry().models:
            print(f"{name}: skipped, not installed")
            continue
        try:
            rows.append(measure_family(name, args.steps, args.warmup, args.passes,
                                       sample_n=4 if quick else min(8, family_config(name)[4]),
                                       sample_reps=1 if quick else 2))
        except Exception as exc:  # one family that fails to build or step leaves the others measured
            print(f"{name}: failed: {type(exc).__name__}: {exc}", flush=True)
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
            continue
        t = rows[-1]["train"]
        print(f"{rows[-1]['name']}: {t['seconds']:.3f} s/step, {t['flops'] / 1e9:.2f} GFLOP, "
              f"{t['flops'] / t['seconds'] / 1e9:.1f} GFLOP/s [{time.perf_counter() - started:.0f} s]", flush=True)
    ab = []
    adam_families = [r["model"] for r in rows] if args.fused_families == "all" else \
        [f for f in args.fused_families.split(",") if f]
    for name in adam_families:
        if name not in registry().models:
            continue
        ab.append(optimizer_ab(name, rounds=3 if quick else 6, steps=2 if quick else 4, warmup=2))
        print(f"Adam on {name}: " + ", ".join(f"{v} {s:.4f} s ({ab[-1]['ratio'][v]:.2f}x)"
                                             for v, s in ab[-1]["median"].items()), flush=True)
    if rows:
        figure(peak, rows, args.figure, quick)
    shown = (["--quick"] if quick else []) + ([f"--families {args.families}"] if args.families else []) + (
        [f"--fused-families {args.fused_families}"] if args.fused_families != "all" else [])
    section = report(peak, rows, ab, shown, machine("cpu"), args)
    if failed:
        section += "\nNot measured, failed in this run: " + "; ".join(failed) + ".\n"
    publish(section, args.write)
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
