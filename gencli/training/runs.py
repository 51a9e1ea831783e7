"""Run directories: create them, describe them in run.json, find them again, load their models."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.errors import UserError

RUN_FILE = "run.json"


def runs_root() -> Path:
    return Path(os.environ.get("GENCLI_RUNS_DIR", "runs"))


def new_run_dir(model: str, data: str, out: Path | None) -> Path:
    """Return a fresh run directory; ``out`` must not already hold a run or anything else."""
    if out is not None:
        out = Path(out)
        if (out / RUN_FILE).exists():
            raise UserError(f"{str(out)!r} already holds a run; use --resume {out} to continue it, or another --out")
        if out.exists() and any(out.iterdir()):
            raise UserError(f"--out {str(out)!r} exists and is not empty; choose a new folder")
        out.mkdir(parents=True, exist_ok=True)
        return out
    safe_data = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(data).name or data)[:40]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_model = model.replace(":", "-")
    base = runs_root() / f"{safe_model}-{safe_data}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    path.mkdir(parents=True)
    return path


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    from gencli.fileio import write_atomic

    write_atomic(run_dir / RUN_FILE, (json.dumps(info, indent=2, sort_keys=False) + "\n").encode())


def read_run_info(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{str(run_dir)!r} is not a gencli run (no {RUN_FILE})") from None
    except (OSError, ValueError):
        raise UserError(f"{str(path)!r} is damaged (not valid JSON)") from None
    if not isinstance(info, dict) or "model" not in info or "gencli_version" not in info:
        raise UserError(f"{str(path)!r} is not a gencli run description")
    return info


@dataclass
class RunRef:
    """A resolved reference to a trained model: its run directory and checkpoint."""

    run_dir: Path
    checkpoint: Path | None
    info: dict[str, Any]


def resolve_run(ref: str) -> RunRef:
    """Resolve a run directory, a checkpoint folder, or a model name (its latest run)."""
    from gencli.training.checkpoint import latest_checkpoint

    path = Path(ref).expanduser()
    if path.is_dir() and (path / RUN_FILE).exists():
        info = read_run_info(path)
        return RunRef(path, latest_checkpoint(path), info)
    if path.is_dir() and (path / "meta.json").exists() and path.parent.name == "checkpoints":
        run_dir = path.parent.parent
        return RunRef(run_dir, path, read_run_info(run_dir))
    if path.exists():
        raise UserError(f"{str(path)!r} is not a gencli run directory or checkpoint")
    if "/" in ref or ref.startswith("."):
        raise UserError(f"run {ref!r} does not exist")
    from gencli.plugins import registry

    registry().model(ref)  # unknown model names fail here, with suggestions
    candidates = []
    root = runs_root()
    for run_file in root.glob(f"*/{RUN_FILE}") if root.is_dir() else []:
        try:
            info = json.loads(run_file.read_text())
        except (OSError, ValueError):
            continue
        if info.get("model") == ref and latest_checkpoint(run_file.parent) is not None:
            candidates.append((run_file.stat().st_mtime, run_file.parent, info))
    if not candidates:
        raise UserError(f"no trained run of model {ref!r} under {str(root)!r}; train one with `gencli train {ref}`")
    _, run_dir, info = max(candidates, key=lambda c: c[0])
    return RunRef(run_dir, latest_checkpoint(run_dir), info)


def build_model(info: dict[str, Any], device: str = "cpu", precision: str = "fp32"):
    """Build an untrained model exactly as described by a run's info."""
    from gencli.models import hparams
    from gencli.plugins import registry

    spec = registry().model(info["model"])
    cls = spec.load()
    hp = hparams.build(cls.Hyperparameters, info.get("hyperparameters", {}), source="run.json")
    data = info.get("data", {})
    return cls(hp, tuple(data["image_shape"]), data.get("classes"), device=device, precision=precision)


def load_trained(ref: str, device: str = "cpu"):
    """Return the trained model of a run (latest checkpoint) in eval mode."""
    from gencli.training.checkpoint import load_weights

    run = resolve_run(ref)
    if run.checkpoint is None:
        raise UserError(f"run {str(run.run_dir)!r} has no checkpoint yet")
    model = build_model(run.info, device=device)
    load_weights(run.checkpoint, model)
    model.step = int(json.loads((run.checkpoint / "meta.json").read_text()).get("step", 0))
    model.eval()
    model.run_dir = run.run_dir
    model.run_info = run.info
    return model
