"""Loss tracking: running sums of the step losses on the device, their means at each log line, and
the rows of metrics.jsonl they become.

Losses stay on the device and are read only when a log line is due; a non-finite loss is caught
at its exact step without a per-step sync, and never reaches a checkpoint. A loss that is not a
number (a plugin's bug) is named with its step as soon as it is returned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from gencli.training import distributed as dist_util


class LossTracker:
    """Running sums of the step losses, kept on the device; read only at flush."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.bad: dict[str, torch.Tensor] = {}
        self.count = 0
        self.images = 0
        self.since = time.perf_counter()

    def add(self, losses: dict[str, Any], step: int, images: int) -> None:
        for key, value in losses.items():
            if torch.is_tensor(value) and value.numel() == 1 and not value.is_complex():
                v = value.detach().float()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                v = torch.tensor(float(value))
            else:  # a plugin's bug: said once, by name, before it reaches a sum or a log line
                raise BadLoss(key, value, step)
            if key in self.sums:
                self.sums[key] = self.sums[key] + v
            else:
                self.sums[key] = v.clone()
                self.bad[key] = torch.full((), -1, dtype=torch.long, device=v.device)
            finite = torch.isfinite(v)
            self.bad[key] = torch.where(~finite & (self.bad[key] < 0), torch.full_like(self.bad[key], step), self.bad[key])
        self.count += 1
        self.images += images

    def first_non_finite(self) -> tuple[str, int] | None:
        """Return (loss name, step) of the first non-finite loss since the last flush, or None."""
        worst = None
        for key, bad in self.bad.items():
            step = int(bad)
            if step >= 0 and (worst is None or step < worst[1]):
                worst = (key, step)
        return worst

    def window(self, info: dist_util.DistInfo) -> dict[str, Any]:
        """The sums not yet logged, for a checkpoint: a run resumed from it logs the same means as
        one never stopped. Data parallel: the mean of every process's sums (a collective)."""
        if not self.count:
            return {}
        sums = dist_util.mean_across(self.sums) if info.enabled else self.sums
        return {"sums": {k: v.detach().to("cpu") for k, v in sums.items()}, "count": self.count}

    def restore(self, window: dict[str, Any], device: torch.device) -> None:
        if not window:
            return
        self.sums = {k: v.to(device) for k, v in window["sums"].items()}
        self.bad = {k: torch.full((), -1, dtype=torch.long, device=device) for k in self.sums}
        self.count = int(window["count"])

    def flush(self, info: dist_util.DistInfo) -> tuple[dict[str, float], float]:
        """Return (mean losses since the last flush, images per second) and reset."""
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        if info.enabled:
            means = dist_util.mean_across(means)
        elapsed = max(time.perf_counter() - self.since, 1e-9)
        rate = self.images * info.world_size / elapsed
        out = {k: float(v) for k, v in means.items()}
        self.sums, self.bad, self.count, self.images, self.since = {}, {}, 0, 0, time.perf_counter()
        return out, rate


class NonFiniteLoss(Exception):
    pass


class BadLoss(Exception):
    """A ``train_step`` returned a loss that is not a number (a string, a list, a tensor of many values)."""


def bad_loss_message(model: str, name: str, value: Any, step: int) -> str:
    """The one line for a ``train_step`` that returned a loss that is not a number."""
    shown = repr(value) if len(repr(value)) <= 40 else type(value).__name__
    if torch.is_tensor(value):
        shown = f"a tensor of shape {tuple(value.shape)}"
    return (f"model {model!r} returned {name!r} = {shown} from train_step at step {step}: a "
            "loss must be a number or a one-element tensor (a bug in the model's plugin)")


def loss_row(step: int, epoch: int, losses: dict[str, float], rate: float) -> dict[str, Any]:
    """A log line of metrics.jsonl: the mean losses since the last one, and images per second."""
    return {"step": step, "epoch": epoch, **{k: round(v, 6) for k, v in losses.items()}, "images_per_s": round(rate, 1)}


def quality_row(step: int, epoch: int, values: dict[str, float], train_s: float, eval_s: float) -> dict[str, Any]:
    """A quality line of metrics.jsonl: the probe's scores, with the training seconds so far."""
    return {"step": step, "epoch": epoch, "quality": {k: round(v, 6) for k, v in values.items()},
            "train_s": round(train_s, 2), "eval_s": round(eval_s, 2)}


def logged_losses(path: Path, step: int) -> dict[str, float]:
    """The losses logged at ``step`` (for a run finished on resume, which trained no step itself)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("step") == step and "eval" not in row and "quality" not in row:
            return {k: v for k, v in row.items() if k not in ("step", "epoch", "images_per_s")}
    return {}
