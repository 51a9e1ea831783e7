"""What every league runner shares: the clock, snapshots, the data and the samples handed back.

The runners run in the league's own environment (benchmarks/.venv-league, the peers installed),
never in gencli's: they import torch, torchvision, PIL, numpy and their peer, nothing of gencli.

The protocol with benchmarks/bench_league.py:
- ``RUNNER --data ROOT --out DIR --minutes M --snapshots a,b,c [--conditional]`` trains for M
  minutes of wall-clock time from the process's start (loading the data and writing snapshots
  count), saving the generator's state at each snapshot minute as ``DIR/snap-NN.pt`` and a line
  of ``DIR/snapshots.jsonl``: ``{"index", "minutes", "step", "images"}``;
- ``RUNNER --out DIR --sample N`` then loads each snapshot and writes ``DIR/samples-NN.npz``:
  ``images`` uint8 [N, 28, 28] (grey, brought back to 28 px as the judge reads them) and, for a
  conditional model, ``labels`` (the classes asked for, in turn).
ROOT holds the training split as class folders (``ROOT/0/*.png`` ... ``ROOT/9/*.png``), and
``ROOT.npz`` beside it the same images as arrays, for peers whose API takes arrays.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

STARTED = time.perf_counter()
SIZE = 28


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, help="the training split as class folders of PNG files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=1.0, help="wall-clock budget")
    parser.add_argument("--snapshots", default="", help="minutes at which to save the generator (comma-separated)")
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--model", default="", help="which of the runner's models (where it has several)")
    parser.add_argument("--sample", type=int, default=0, help="write N samples of each snapshot instead of training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sampling-steps", type=int, default=0,
                        help="sampling steps for --sample where the peer has a step count (0: the peer's default)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


class Clock:
    """The wall-clock budget and the snapshot minutes, counted from the process's start."""

    def __init__(self, minutes: float, snapshots: str) -> None:
        self.budget = minutes * 60
        marks = sorted({float(m) for m in snapshots.split(",") if m.strip()} | {minutes})
        self.marks = [m * 60 for m in marks if m <= minutes]
        self.index = 0

    @staticmethod
    def seconds() -> float:
        return time.perf_counter() - STARTED

    def due(self) -> bool:
        return self.index < len(self.marks) and self.seconds() >= self.marks[self.index]

    def over(self) -> bool:
        return self.seconds() >= self.budget


def snapshot(out: Path, clock: Clock, step: int, images: int, state: dict) -> None:
    """Save ``state`` as the next snapshot, with the minutes and steps it took."""
    minutes = clock.seconds() / 60
    torch.save(state, out / f"snap-{clock.index:02d}.pt")
    with open(out / "snapshots.jsonl", "a") as f:
        f.write(json.dumps({"index": clock.index, "minutes": minutes, "step": step, "images": images}) + "\n")
    print(f"snapshot {clock.index}: {minutes:.2f} min, step {step}", flush=True)
    clock.index += 1
    while clock.due():  # marks passed while one step ran: one snapshot stands for them
        clock.index += 1


def finish(out: Path, info: dict) -> None:
    """The runner's closing facts: peak memory (RSS, MiB), the settings it used."""
    info["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info["seconds"] = Clock.seconds()
    (out / "runner.json").write_text(json.dumps(info, indent=1))


def snapshots(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "snapshots.jsonl").read_text().splitlines() if line.strip()]


def load_folder(root: Path, size: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split as uint8 [N, channels, size, size] and class indices, for the peers whose
    API takes arrays: from ``train.npz`` beside the class folders (the same images, written with
    them), else from the PNG files themselves."""
    arrays = root.parent / f"{root.name}.npz"
    if arrays.exists():
        data = np.load(arrays)
        x, labels = torch.from_numpy(data["images"]).unsqueeze(1), torch.from_numpy(data["labels"]).long()
    else:
        from PIL import Image

        images, classes = [], []
        for k, folder in enumerate(sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: int(p.name))):
            for path in sorted(folder.glob("*.png")):
                images.append(np.asarray(Image.open(path).convert("L")))
                classes.append(k)
        x, labels = torch.from_numpy(np.stack(images)).unsqueeze(1), torch.tensor(classes)
    if size != x.shape[-1]:
        x = F.interpolate(x.float(), size=size, mode="bilinear", antialias=True).round().clamp(0, 255).to(torch.uint8)
    return x.expand(-1, channels, -1, -1).contiguous(), labels


def to_judge(x: torch.Tensor, low: float = -1.0) -> np.ndarray:
    """Generated images in [low, 1] (any size, 1 or 3 channels) -> uint8 [N, 28, 28] grey."""
    x = x.float().mean(1, keepdim=True)
    if x.shape[-1] != SIZE:
        x = F.interpolate(x, size=SIZE, mode="bilinear", antialias=True, align_corners=False)
    x = (x - low) / (1.0 - low)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0].numpy()


def save_samples(out: Path, index: int, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    extra = {"labels": labels} if labels is not None else {}
    np.savez(out / f"samples-{index:02d}.npz", images=images, **extra)
