"""gencli's train step against re-implementations of the reference training loops, same architecture.

    python benchmarks/bench_reference.py [--device cuda] [--steps 3] [--warmup 2] [--rounds 6]
                                         [--configs dcgan-64,ddpm-32] [--compile] [--write benchmarks/RESULTS.md]

For each configuration, in one process: gencli's model built through the registry with the
hyperparameter overrides that give it the reference's architecture, its batches drawn by the
engine's BatchStream from the built-in data kept on the device (as benchmarks/bench_train.py
does), and the reference's training iteration from benchmarks/reference_impl.py, fed by a
DataLoader over the same images as the original scripts feed theirs. Both sides get the same
warm-up steps, then ``--rounds`` rounds of ``--steps`` timed steps each, rotating which side
goes first, so machine load falls on both alike; each side's median seconds per step is reported
with the ratio reference / gencli (above 1: gencli is faster), the median of the rounds' ratios.
Both run in fp32 with the default memory format; on CUDA a third side, gencli in bf16 autocast
with channels_last (and torch.compile with ``--compile``), runs in the same rounds against the
same fp32 reference. Parameter counts of both sides are printed, and checked where the
architectures are meant to be identical.
"""

from __future__ import annotations

import argparse
import gc
import shlex
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reference_impl as ref
import torch
from bench_train import GencliSide  # benchmarks/bench_train.py, beside this script
from results import machine, machine_line, publish  # benchmarks/results.py, beside this script

from gencli.plugins import registry

# The CycleGAN, pix2pix and DDPM scripts default to 4 loader workers; on a 2-core machine torch warns every time.
warnings.filterwarnings("ignore", message="This DataLoader will create")


# ---------------------------------------------------------------------------------- configurations
@dataclass
class Config:
    name: str
    title: str
    model: str  # gencli model
    size: int
    batch: int
    overrides: dict[str, Any]  # gencli hyperparameters giving the reference architecture
    build_reference: Callable[..., ref.Reference]  # (data, size, load_size, batch, device, epoch_items)
    reference: str  # what the reference side is, for the report
    # Parameters gencli has beyond the reference, by role; {} when the architectures are identical.
    expected_extra: dict[str, int] = field(default_factory=dict)
    conditional: bool = True  # whether gencli gets the data's class names (if its model is conditional)
    extra_work: str = ""  # what gencli's step computes that the reference's does not, for the summary


def _dcgan(data, size, load_size, batch, device, epoch_items):
    return ref.DCGANReference(data.images, batch, device, workers=2, image_size=size, epoch_items=epoch_items)


def _cyclegan(data, size, load_size, batch, device, epoch_items):
    return ref.CycleGANReference(data.images, data.targets, size, load_size or size, device, batch_size=batch,
                                 workers=4, epoch_items=epoch_items)


def _pix2pix(data, size, load_size, batch, device, epoch_items):
    return ref.Pix2PixReference(data.images, data.targets, size, load_size or size, device, batch_size=batch,
                                workers=4, epoch_items=epoch_items)


def _ddpm(data, size, load_size, batch, device, epoch_items, scale_shift=True):
    return ref.DDPMReference(data.images, batch, device, workers=4, ch=128, ch_mult=(1, 2, 2, 2), attn=(1,),
                             num_res_blocks=2, dropout=0.1, scale_shift=scale_shift, epoch_items=epoch_items)


def _ddpm_additive(data, size, load_size, batch, device, epoch_items):
    return _ddpm(data, size, load_size, batch, device, epoch_items, scale_shift=False)


CYCLEGAN = {"ngf": 64, "ndf": 64, "d_layers": 3, "norm": "instance", "dropout": 0.0, "gan_mode": "lsgan",
            "lambda_cycle": 10.0, "lambda_identity": 0.5, "pool_size": 50}
DDPM = {"base_width": 128, "channel_mults": (1, 2, 2, 2), "res_blocks": 2, "attention_levels": (1,),
        "attention_heads": 1, "dropout": 0.1, "schedule": "linear", "timesteps": 1000, "beta_start": 1e-4,
        "beta_end": 0.02, "prediction": "epsilon", "lr": 2e-4, "grad_clip": 1.0}

CONFIGS = [
    Config("dcgan-64", "DCGAN 64 px, batch 64", "dcgan", 64, 64,
           {"z_dim": 100, "g_width": 64, "d_width": 64, "depth": 0, "upsample": "transpose", "d_norm": "batch",
            "loss": "ns", "lr": 2e-4, "beta1": 0.5, "beta2": 0.999},
           _dcgan, "PyTorch examples' DCGAN",
           # gencli: a bias on G's output layer (3) and on D's first conv (64), a linear head with a bias (1)
           expected_extra={"G": 3, "D": 65},
           extra_work="the EMA update of G"),
    Config("cyclegan-128", "CycleGAN 128 px, 6 blocks, batch 1", "cyclegan", 128, 1, {**CYCLEGAN, "blocks": 6},
           _cyclegan, "CycleGAN (cycle_gan model)"),
    Config("cyclegan-256", "CycleGAN 256 px, 9 blocks, batch 1", "cyclegan", 256, 1, {**CYCLEGAN, "blocks": 9},
           _cyclegan, "CycleGAN (cycle_gan model)"),
    Config("pix2pix-256", "pix2pix 256 px, unet_256, batch 1", "pix2pix", 256, 1,
           {"ngf": 64, "ndf": 64, "depth": 8, "d_layers": 3, "norm": "batch", "dropout": 0.5, "dropout_layers": 3,
            "gan_mode": "ns", "lambda_l1": 100.0},
           _pix2pix, "pix2pix (pix2pix model)"),
    Config("ddpm-32", "DDPM 32 px, 128 wide, batch 16", "ddpm", 32, 16, DDPM, _ddpm,
           "DDPM trainer, scale-shift embedding", conditional=False),
    # Not run by default: Ho et al.'s additive time embedding on the reference side (2.56M fewer parameters).
    Config("ddpm-32-additive", "DDPM 32 px, reference with Ho's additive embedding", "ddpm", 32, 16, DDPM,
           _ddpm_additive, "DDPM trainer, additive embedding", expected_extra={"U-Net": 2_560_896}, conditional=False),
]
DEFAULT_CONFIGS = ["dcgan-64", "cyclegan-128", "cyclegan-256", "pix2pix-256", "ddpm-32"]


def role(name: str) -> str | None:
    """Group a network under G, D or U-Net; None for EMA copies, which are not trained by gradients."""
    if name in ("G_ema", "ema"):
        return None
    if name == "unet":
        return "U-Net"
    return name[0]


def counts_by_role(counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in counts.items():
        r = role(name)
        if r is not None:
            out[r] = out.get(r, 0) + n
    return out


# ---------------------------------------------------------------------------------- the two sides
def settle(seconds: float = 0.5) -> None:
    """Pause between timed windows: the reference's loader workers finish the batches they are
    prefetching instead of running during the next side's window (on few cores every process running
    beside a training step slows it)."""
    time.sleep(seconds)


def timed(side, steps: int) -> float:
    """Seconds per step over ``steps`` steps (the side's own data fetching included)."""
    side.sync()
    start = time.perf_counter()
    for _ in range(steps):
        side.step()
    side.sync()
    return (time.perf_counter() - start) / steps


def run_config(config: Config, device: torch.device, steps: int, warmup: int, rounds: int,
               fast_mode: str | None) -> dict[str, Any]:
    def gencli_side(precision: str = "fp32", channels_last: bool = False, compile_: bool = False) -> GencliSide:
        return GencliSide(config.model, config.size, 3, config.batch, config.overrides, device, precision,
                          channels_last, compile_, config.conditional)

    sides: dict[str, Any] = {"gencli": gencli_side()}
    data = sides["gencli"].data
    load_size = sides["gencli"].load_size
    torch.manual_seed(0)
    epoch_items = config.batch * (warmup + rounds * steps + 8)  # one epoch for the whole run
    sides["reference"] = config.build_reference(data, config.size, load_size, config.batch, device, epoch_items)
    if fast_mode:
        sides[fast_mode] = gencli_side("bf16", channels_last=True, compile_="compile" in fast_mode)

    counts = {"gencli": counts_by_role(sides["gencli"].parameter_counts()),
              "reference": counts_by_role(sides["reference"].parameter_counts())}
    extra = {k: counts["gencli"].get(k, 0) - counts["reference"].get(k, 0) for k in counts["gencli"]}
    expected = {k: config.expected_extra.get(k, 0) for k in counts["gencli"]}
    assert counts["gencli"].keys() == counts["reference"].keys(), (config.name, counts)
    assert extra == expected, f"{config.name}: gencli has {extra} parameters beyond the reference, expected {expected}"
    print(f"{config.name}: parameters gencli {counts['gencli']}, reference {counts['reference']}", flush=True)

    names = list(sides)
    # Warm-up, not timed; the reference first: its first batch forks the loader's workers, and until
    # each side has written its memory once after that fork, every page it writes is copied (a
    # one-time cost of seconds for a large model that must not fall into a timed window).
    for name in ["reference", *[n for n in names if n != "reference"]]:
        for _ in range(warmup):
            sides[name].step()
        sides[name].sync()
        settle()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
        for name in order:
            times[name].append(timed(sides[name], steps))
            settle()
        print(f"  round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.4f} s/step" for n in names), flush=True)
    # Ratios pair the two sides' windows of the same round (close in time, so under the same load).
    per_round = {n: [a / b for a, b in zip(times["reference"], times[n])] for n in names if n != "reference"}
    result = {"config": config, "counts": counts, "times": times, "per_round": per_round,
              "ratio": {n: statistics.median(v) for n, v in per_round.items()},
              "median": {n: statistics.median(t) for n, t in times.items()}}
    for side in sides.values():
        side.close()
    del sides, data
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


# ---------------------------------------------------------------------------------- report
def fmt_params(n: int) -> str:
    return f"{n:,}"


def report(results: list[dict[str, Any]], argv: list[str], info: dict[str, Any], args, fast_mode: str | None) -> str:
    command = " ".join(["python benchmarks/bench_reference.py", *map(shlex.quote, argv)])
    lines = [
        "## Reference implementations",
        "",
        f"`{command}`",
        "",
        machine_line(info),
        "",
        ("gencli's `train_step` against re-implementations of the training iterations people use, written for this "
         "benchmark from the published code (benchmarks/reference_impl.py, plain torch): PyTorch examples' DCGAN, "
         "the `cycle_gan` and `pix2pix` models of pytorch-CycleGAN-and-pix2pix, and a common DDPM trainer (Ho et "
         "al.'s CIFAR-10 U-Net layout). Each gencli model is built through the registry with hyperparameter "
         "overrides that give it the reference's architecture (listed below); its batches come from the engine's "
         "BatchStream over the built-in data kept on the device, as in `gencli train`. The reference fetches each "
         "batch as its script does: a DataLoader with the script's default workers (2 for DCGAN, 4 for the others, "
         "sharing the machine's cores with the training step as they do when the scripts run; kept alive across "
         "this benchmark's short epochs) over the same images held in memory as PIL images, per-item torchvision "
         "transforms, then `.to(device)`; no file decoding on either side. "
         f"Both sides run in fp32, {args.warmup} warm-up steps each, then {args.rounds} rounds of {args.steps} timed "
         "steps in one process, the order of the sides rotating every round so machine load falls on both alike; "
         "the table gives each side's median seconds per step over the rounds and the ratio reference / gencli "
         "(above 1: gencli is faster) as the median of the rounds' ratios, each round's pair of windows having run "
         "back to back, with the lowest and highest per-round ratio in brackets."),
        "",
    ]
    header = "| configuration | gencli s/step | reference s/step | ratio (per-round range) | gencli faster in |"
    sep = "|---|---:|---:|---:|---:|"
    if fast_mode:
        header += f" gencli {fast_mode} s/step | ratio vs fp32 reference |"
        sep += "---:|---:|"
    lines += [header, sep]
    for r in results:
        c, med, per_round = r["config"], r["median"], r["per_round"]["gencli"]
        row = (f"| {c.title} | {med['gencli']:.4g} | {med['reference']:.4g} | "
               f"**{r['ratio']['gencli']:.2f}x** ({min(per_round):.2f}-{max(per_round):.2f}) | "
               f"{sum(x > 1 for x in per_round)} of {len(per_round)} rounds |")
        if fast_mode:
            row += f" {med[fast_mode]:.4g} | **{r['ratio'][fast_mode]:.2f}x** |"
        lines.append(row)
    if not fast_mode:
        lines += ["", ("CPU run: fp32 only. The bf16 autocast + channels_last rows (and `--compile`) need a GPU "
                       "(`--device cuda`) and remain to be measured there.")]
    lines += ["", "Parameters (trained networks; EMA copies not counted):", "",
              "| configuration | network | gencli | reference | difference |", "|---|---|---:|---:|---:|"]
    for r in results:
        g, rf = r["counts"]["gencli"], r["counts"]["reference"]
        for k in g:
            lines.append(f"| {r['config'].title} | {k} | {fmt_params(g[k])} | {fmt_params(rf[k])} | {g[k] - rf[k]:+,} |")
    lines += ["", "gencli hyperparameters of each configuration (all else at its defaults):", ""]
    for r in results:
        c = r["config"]
        ov = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in c.overrides.items())
        extra = " (unconditional: no class names given)" if not c.conditional else ""
        lines.append(f"- {c.title}: `{c.model}` against {c.reference}; {ov}{extra}.")
    lines += ["", "Remaining differences between the two sides (what each step computes beyond the architecture):", ""]
    names = {r["config"].name for r in results}
    if "dcgan-64" in names:
        lines.append(
            "- DCGAN: as in the example, one batch of fakes per step serves both updates (one G forward) and the "
            "generator's loss goes through D without D's weight gradients; gencli also updates an EMA copy of G, the "
            "example reads five values with `.item()` every step (it prints them every iteration). gencli's D ends in "
            "a linear layer with a bias and has a bias on its first conv, its G a bias on its output layer (+68 "
            "parameters); the loss is BCE on logits instead of a sigmoid followed by BCELoss.")
    if names & {"cyclegan-128", "cyclegan-256", "pix2pix-256"}:
        lines.append(
            "- CycleGAN and pix2pix: identical networks (parameter counts checked). Both sides freeze the "
            "discriminators while the generator's loss is built, so neither computes D's weight gradients in the "
            "generator update. The pix2pix original's skip blocks use an in-place LeakyReLU, so its skip connections "
            "carry the activated features; gencli's carry the features themselves (same work). gencli steps its "
            "learning-rate schedulers every step, the original once per epoch.")
    if names & {"ddpm-32", "ddpm-32-additive"}:
        lines.append(
            "- DDPM: both sides the 38.3M-parameter U-Net of Ho et al.'s layout (128 wide, multipliers 1,2,2,2, 2 "
            "residual blocks per level, attention at 16 px and in the middle, dropout 0.1, GroupNorm(32)) with the "
            "time embedding applied as a scale and shift after the second group norm, the way gencli's U-Net does it "
            "(improved DDPM's `use_scale_shift_norm`); Ho et al.'s additive embedding (35.7M parameters) cannot be "
            "set in gencli, so the reference takes gencli's (`--configs ddpm-32-additive` runs the additive one; the "
            "difference is in linear layers on [batch, 512] vectors). gencli is unconditional here, as the reference. "
            "Attention: gencli uses `scaled_dot_product_attention`, the reference two `bmm` and a softmax; swish: "
            "`F.silu` against `x * sigmoid(x)`. Both clip the gradient norm at 1 and update an EMA copy every step, "
            "the reference tensor by tensor through `state_dict`, gencli with `lerp_`; the reference reads the loss "
            "with `.item()` every step for its progress bar and steps a warm-up learning-rate schedule.")
    def ratio(r) -> float:
        return r["ratio"]["gencli"]

    on_par, faster, slower = [], [], []
    for r in results:
        item = f"{r['config'].title} ({ratio(r):.2f}x)"
        if abs(ratio(r) - 1) < 0.01:
            on_par.append(item)
        elif ratio(r) > 1:
            faster.append(item)
        else:
            extra = r["config"].extra_work
            slower.append(item + (f": gencli's step also computes {extra}" if extra else ""))
    parts = [f"faster in {', '.join(faster)}" if faster else "",
             f"on par (within 1%) in {', '.join(on_par)}" if on_par else "",
             f"slower in {'; '.join(slower)}" if slower else ""]
    summary = ("Result, gencli's fp32 step against the reference's: " + "; ".join(p for p in parts if p) + ". "
               "Read differences of a few percent against the spread of the per-round ratios in the table.")
    lines += ["", summary]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per side and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side before the first round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds rotating the sides' order; medians reported")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                        help=f"comma-separated, of: {', '.join(c.name for c in CONFIGS)}")
    parser.add_argument("--compile", action="store_true", help="on CUDA, also torch.compile gencli's bf16 side")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as gencli's engine and the reference scripts do
    wanted = [n for n in args.configs.split(",") if n]
    known = {c.name: c for c in CONFIGS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(known)}")
    fast_mode = ("bf16 channels_last" + (" compile" if args.compile else "")) if device.type == "cuda" else None
    info = machine(device)
    print(f"device: {info['device']}, torch {info['torch']}, threads {info['threads']}", flush=True)
    results = []
    for name in wanted:
        config = known[name]
        if config.model not in registry().models:
            print(f"{name}: skipped, model {config.model!r} is not installed")
            continue
        results.append(run_config(config, device, args.steps, args.warmup, args.rounds, fast_mode))
        med = results[-1]["median"]
        print(f"{name}: gencli {med['gencli']:.4f} s/step, reference {med['reference']:.4f} s/step, "
              f"ratio {results[-1]['ratio']['gencli']:.2f}x", flush=True)
    publish(report(results, argv, machine(device), args, fast_mode), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
