"""Diffusion sampling: DDIM in 50 steps against DDPM's 1000 ancestral steps, in time and quality.

Trains a small class-conditional ``ddpm`` on the built-in shapes, then samples the same number of
images of every class from the same initial noise with each sampler and measures, in one run:
- time: wall-clock and process CPU seconds of each sampler (network calls included), and the
  ratio DDPM 1000 / DDIM 50;
- quality: FID (``gencli.metrics.fid``) between generated images and held-out real images, on the
  features of a small shape classifier trained here on the real training images (64-d, its
  penultimate layer: Inception features say little about 16 px synthetic shapes, and this needs
  no downloaded weights); and the fraction of images that classifier assigns to the class they
  were sampled for. Real training images against the same held-out images give the floor FID
  reaches with this many images.

Every sampler uses the EMA weights at guidance 1 (the plain conditional prediction, one network
call per step), so the time ratio is the ratio of network calls plus sampler overhead.

    python benchmarks/bench_diffusion_sampling.py    # long on a CPU: DDPM makes 1000 network calls per image
    python benchmarks/bench_diffusion_sampling.py --train-steps 3000 --n 600 --grids grids --write benchmarks/RESULTS.md
    python benchmarks/bench_diffusion_sampling.py --device cuda    # the ddpm on the GPU (the shape classifier stays on the CPU)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
from results import publish  # benchmarks/results.py, beside this script
from torch import nn

HEADING = "## Diffusion sampling"


def train_ddpm(data, steps: int, batch_size: int, lr: float, seed: int, device: str = "cpu"):
    """Return a ``ddpm`` trained for ``steps`` on ``data`` (the networks of its CPU default) on ``device``."""
    from gencli.data.base import BatchStream
    from gencli.models import hparams
    from gencli_diffusion.ddpm import DDPM, DDPMHyperparameters

    torch.manual_seed(seed)
    hp = hparams.build(DDPMHyperparameters, {"lr": lr})
    model = DDPM(hp, data.shape, data.classes, device=torch.device(device))
    stream = BatchStream(data, batch_size, device, seed=seed)
    model.train()
    epoch = 0
    while model.step < steps:
        for batch in stream.epoch(epoch):
            model.train_step(batch)
            model.step += 1
            if model.step >= steps:
                break
        epoch += 1
    return model.eval()


class ShapeFeatures(nn.Module):
    """A small classifier of the shapes; ``features`` is its 64-d penultimate layer."""

    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(64, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_feature_net(train, test, steps: int = 400, seed: int = 0) -> tuple[ShapeFeatures, float]:
    """Return the shape classifier trained on ``train`` and its accuracy on ``test``."""
    from gencli.data.base import BatchStream, to_float

    torch.manual_seed(seed)
    net = ShapeFeatures(train.shape[0], train.num_classes)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    stream, step, epoch = BatchStream(train, 64, seed=seed + 1), 0, 0
    while step < steps:
        for batch in stream.epoch(epoch):
            loss = nn.functional.cross_entropy(net(batch.images), batch.labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
        epoch += 1
    net.eval()
    with torch.no_grad():
        accuracy = (net(to_float(test.images)).argmax(1) == test.labels).float().mean().item()
    return net, accuracy


def timed(fn):
    """Return (result of ``fn()``, wall seconds, process CPU seconds), the GPU's work included."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run(size: int, train_steps: int, batch_size: int, lr: float, n: int, ddim_steps: list[int], seed: int,
        grids: Path | None = None, device: str = "cpu") -> dict:
    from gencli.data.base import DataRequest, to_float
    from gencli.data.synthetic import build_shapes
    from gencli.media.images import save_grid
    from gencli.metrics.fid import fid_from_features
    from gencli_diffusion.samplers import ddim_sample, ddpm_sample

    train = build_shapes(DataRequest(size, 3, "train", seed))
    test = build_shapes(DataRequest(size, 3, "test", seed))
    started = time.perf_counter()
    model, train_wall, _ = timed(lambda: train_ddpm(train, train_steps, batch_size, lr, seed, device))
    judge, accuracy = train_feature_net(train, test, seed=seed)

    def score(images: torch.Tensor, labels: torch.Tensor, name: str = "") -> tuple[float, float]:
        images, labels = images.float().cpu(), labels.cpu()  # the shape classifier runs on the CPU
        if grids is not None and name:  # one row per class
            order = torch.argsort(labels, stable=True)
            save_grid(images[order].float(), grids / f"{name}.png", len(images) // train.num_classes)
        with torch.no_grad():
            feats = judge.features(images)
            agree = (judge.head(feats).argmax(1) == labels).float().mean().item()
        return fid_from_features(real, feats), agree

    with torch.no_grad():
        real = judge.features(to_float(test.images[:n]))
    floor, _ = score(to_float(train.images[:n]), train.labels[:n])

    labels = torch.arange(n) % train.num_classes
    x_T = model.latents(n, torch.Generator().manual_seed(seed + 7))
    predict = model.noise_predictor(labels.to(model.device), 1.0)
    schedule, clip = model.schedule, model.hp.clip_denoised
    rows = []
    with torch.no_grad():
        for steps in ddim_steps:
            images, wall, cpu = timed(lambda steps=steps: ddim_sample(predict, schedule, x_T, steps, 0.0, None, clip))
            rows.append({"sampler": f"DDIM, eta 0, {steps} steps", "steps": steps, "wall": wall, "cpu": cpu,
                         **dict(zip(("fid", "agree"), score(images, labels, f"ddim-{steps}")))})
        g = torch.Generator().manual_seed(seed + 8)
        images, wall, cpu = timed(lambda: ddpm_sample(predict, schedule, x_T, g, clip))
        rows.append({"sampler": f"DDPM ancestral, {schedule.timesteps} steps", "steps": schedule.timesteps,
                     "wall": wall, "cpu": cpu,
                     **dict(zip(("fid", "agree"), score(images, labels, f"ddpm-{schedule.timesteps}")))})
    ddpm = rows[-1]
    ddim50 = next((r for r in rows if r["steps"] == 50), rows[0])
    return {
        "size": size, "train_steps": train_steps, "batch_size": batch_size, "lr": lr, "n": n, "seed": seed,
        "ddim_steps": ddim_steps, "rows": rows, "floor": floor, "accuracy": accuracy, "train_wall": train_wall,
        "params": model.parameter_count()["unet"], "ratio_wall": ddpm["wall"] / ddim50["wall"],
        "ratio_cpu": ddpm["cpu"] / ddim50["cpu"], "ddim50": ddim50, "ddpm": ddpm,
        "total_wall": time.perf_counter() - started, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "machine": f"{platform.system()} {platform.machine()}", "load": os.getloadavg()[0], "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU",
    }


def report(r: dict) -> str:
    ddim, ddpm = r["ddim50"], r["ddpm"]
    steps_arg = ",".join(str(s) for s in r["ddim_steps"])
    return "\n".join([
        HEADING,
        "",
        f"`python benchmarks/bench_diffusion_sampling.py --size {r['size']} --train-steps {r['train_steps']} "
        f"--batch-size {r['batch_size']} --lr {r['lr']:g} --n {r['n']} --ddim-steps {steps_arg} --seed {r['seed']}"
        + (f" --device {r['device']}" if r["device"] != "cpu" else "") + "`",
        "",
        f"A class-conditional `ddpm` with its default network ({r['params'] / 1e6:.2f}M parameters, linear schedule, "
        f"T = 1000) trained for {r['train_steps']} steps of batch {r['batch_size']} on `shapes` at {r['size']} px "
        f"({r['train_wall']:.0f} s), then {r['n']} images (every class equally) sampled from the same initial noise "
        f"by each sampler, with the EMA weights at guidance 1 (one network call per step). "
        f"{r['machine']}, {r['device_name']}, {r['cpus']} CPU cores, {r['threads']} torch threads, Python {r['python']}, "
        f"torch {r['torch']}; load average {r['load']:.1f} at the end of the run, this run's {r['threads']} "
        f"threads included.",
        "",
        f"Quality: FID between the samples and {r['n']} held-out real images on the 64-d penultimate features of a "
        f"small shape classifier trained in the same run ({r['accuracy']:.1%} held-out accuracy), with "
        f"`gencli.metrics.fid`; FID of {r['n']} real training images against the same held-out images is "
        f"**{r['floor']:.3f}**, the floor at this sample size. \"Right class\" is the fraction of samples that "
        f"classifier assigns to the class they were sampled for.",
        "",
        "| sampler | network calls | wall (s) | CPU (s) | ms per image | FID | right class |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {row['sampler']} | {row['steps']} | {row['wall']:.1f} | {row['cpu']:.1f} | "
          f"{1000 * row['wall'] / r['n']:.1f} | {row['fid']:.3f} | {row['agree']:.1%} |" for row in r["rows"]),
        "",
        f"DDPM with 1000 steps took **{r['ratio_wall']:.1f}x** the wall time of DDIM with 50 steps "
        f"({r['ratio_cpu']:.1f}x the CPU time), measured in this run. The quality cost of DDIM 50: FID "
        f"{ddim['fid']:.3f} against {ddpm['fid']:.3f} for DDPM ({ddim['fid'] - ddpm['fid']:+.3f}), and "
        f"{ddim['agree']:.1%} of samples in the right class against {ddpm['agree']:.1%}.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=16, help="image size of the shapes")
    parser.add_argument("--train-steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n", type=int, default=120, help="images per sampler (and held-out real images)")
    parser.add_argument("--ddim-steps", type=lambda s: [int(v) for v in s.split(",")], default=[10, 50, 100],
                        help="comma-separated DDIM step counts; 50 is the one compared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grids", type=Path, default=None, help="also save each sampler's images here, a row per class")
    parser.add_argument("--device", default="cpu", help="where the ddpm trains and samples (cpu, cuda)")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    result = run(args.size, args.train_steps, args.batch_size, args.lr, args.n, args.ddim_steps, args.seed, args.grids,
                 args.device)
    section = report(result)
    publish(section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
