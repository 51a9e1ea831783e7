"""Runs: the one type that owns a run directory's description, its metrics and its trained model.

A run directory holds ``run.json`` (the schema below), ``metrics.jsonl`` (one training line per
logged step, one ``{"eval": ...}`` line per `gencli eval`), ``checkpoints/``, ``samples/`` and
media. Every command that uses a trained model goes through ``Run.open``; the engine creates and
updates runs through the functions here. No torch at import time.

``run.json`` schema (``schema`` 1): ``gencli_version``, ``model`` (the name to rebuild it by),
``plugin``, ``plugin_distribution``, ``plugin_version``, ``hyperparameters`` (a table),
``data`` (``spec``, ``kind``, ``image_shape`` [C, H, W], ``classes``, ...), ``training``
(``seed``, ``batch_size``, intervals, ...), ``step`` and ``status``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli.errors import UserError

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
SCHEMA_VERSION = 1
# Keys a run.json must hold for any command to use it: name -> expected JSON type.
REQUIRED = {"gencli_version": str, "model": str, "hyperparameters": dict, "data": dict, "training": dict}


def runs_root() -> Path:
    return Path(os.environ.get("GENCLI_RUNS_DIR", "runs"))


# ------------------------------------------------------------------ run.json
def check_schema(info: Any, path: Path) -> dict[str, Any]:
    """Return ``info`` when it is a usable run description, else raise ``UserError`` naming what is wrong."""
    if not isinstance(info, dict):
        raise UserError(f"{str(path)!r} is not a gencli run description")
    for key, kind in REQUIRED.items():
        if key not in info:
            raise UserError(f"{str(path)!r} is damaged: it has no {key!r}")
        if not isinstance(info[key], kind):
            raise UserError(f"{str(path)!r} is damaged: {key!r} is not a {kind.__name__}")
    shape = info["data"].get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
        raise UserError(f"{str(path)!r} is damaged: data.image_shape is not [channels, height, width]")
    schema = info.get("schema", 1)
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise UserError(f"{str(path)!r} was written by a newer gencli (run schema {schema}); upgrade gencli to use it")
    return info


def read_run_info(run_dir: Path) -> dict[str, Any]:
    """Return the checked contents of ``run_dir/run.json``."""
    path = Path(run_dir) / RUN_FILE
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{str(run_dir)!r} is not a gencli run (no {RUN_FILE})") from None
    except (OSError, ValueError):
        raise UserError(f"{str(path)!r} is damaged (not valid JSON)") from None
    return check_schema(info, path)


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    from gencli.fileio import write_atomic

    info.setdefault("schema", SCHEMA_VERSION)
    write_atomic(Path(run_dir) / RUN_FILE, (json.dumps(info, indent=2, sort_keys=False) + "\n").encode())


def new_run_dir(model: str, data: str, out: Path | None) -> Path:
    """Return a fresh run directory; ``out`` must not already hold a run or anything else."""
    if out is not None:
        out = Path(out)
        if (out / RUN_FILE).exists():
            raise UserError(f"{str(out)!r} already holds a run; use --resume {out} to continue it, or another --out")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {str(out)!r} is a file, not a folder; choose a new folder")
        blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise UserError(f"--out {str(out)!r} lies under {str(blocking)!r}, which is a file; choose another folder")
        if out.exists() and any(out.iterdir()):
            raise UserError(f"--out {str(out)!r} exists and is not empty; choose a new folder")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create --out {str(out)!r}: {exc.strerror or exc}") from None
        return out
    safe_data = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(data).name or data)[:40]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe_model = model.replace(":", "-")
    base = runs_root() / f"{safe_model}-{safe_data}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"cannot create the run directory {str(path)!r}: {exc.strerror or exc}") from None
    return path


# ------------------------------------------------------------------ metrics.jsonl
def _rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_training_rows(path: Path) -> list[dict[str, Any]]:
    """Return the training lines of a metrics.jsonl (eval lines and broken tails skipped)."""
    return [r for r in _rows(Path(path)) if "step" in r and "eval" not in r]


def read_eval_rows(path: Path) -> list[dict[str, Any]]:
    """Return the ``{"eval": ..., "settings": ...}`` lines of a metrics.jsonl, oldest first."""
    return [r for r in _rows(Path(path)) if isinstance(r.get("eval"), dict)]


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line (one write, so a kill leaves at worst a cut last line that readers skip)."""
    from gencli.fileio import append_line

    append_line(Path(path), json.dumps(row, default=str))


def truncate_rows(path: Path, step: int) -> None:
    """Drop training lines past ``step`` (written after the checkpoint a run resumes from)."""
    from gencli.fileio import write_atomic

    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "eval" in row or row.get("step", 0) <= step:
            kept.append(line)
    write_atomic(path, ("\n".join(kept) + "\n" if kept else "").encode())


# ------------------------------------------------------------------ the Run
@dataclass
class Run:
    """A run directory, its checked description and the checkpoint commands load from."""

    dir: Path
    info: dict[str, Any]
    checkpoint: Path | None = None
    _data_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, ref: str | Path) -> "Run":
        """Resolve a run directory, one of its checkpoint folders, or a model name (its latest run)."""
        from gencli.training.checkpoint import latest_checkpoint

        text = str(ref)
        if not text.strip():
            raise UserError("give a run directory, a checkpoint folder or a model name")
        path = Path(text).expanduser()
        if path.is_dir() and (path / RUN_FILE).exists():
            return cls(path, read_run_info(path), latest_checkpoint(path))
        if path.is_dir() and (path / "meta.json").exists() and path.parent.name == "checkpoints":
            run_dir = path.parent.parent
            return cls(run_dir, read_run_info(run_dir), path)
        if path.exists():
            raise UserError(f"{text!r} is not a gencli run directory or checkpoint")
        if "/" in text or text.startswith("."):
            raise UserError(f"run {text!r} does not exist")
        return cls._latest_of_model(text)

    @classmethod
    def _latest_of_model(cls, name: str) -> "Run":
        from gencli.plugins import registry
        from gencli.training.checkpoint import latest_checkpoint
        from gencli.ui.console import warn

        registry().model(name)  # unknown model names fail here, with suggestions
        root = runs_root()
        candidates = []
        for run_file in sorted(root.glob(f"*/{RUN_FILE}")) if root.is_dir() else []:
            try:
                info = read_run_info(run_file.parent)
            except UserError as exc:  # one damaged run must not hide all the others
                warn(f"skipping {exc}")
                continue
            if info["model"] == name and latest_checkpoint(run_file.parent) is not None:
                candidates.append((run_file.stat().st_mtime, run_file.parent, info))
        if not candidates:
            raise UserError(f"no trained run of model {name!r} under {str(root)!r}; train one with `gencli train {name}`")
        _, run_dir, info = max(candidates, key=lambda c: c[0])
        return cls(run_dir, info, latest_checkpoint(run_dir))

    # -- what the description says
    @property
    def model_name(self) -> str:
        return self.info["model"]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images the model was trained on."""
        return tuple(self.info["data"]["image_shape"])

    @property
    def classes(self) -> list[str]:
        return list(self.info["data"].get("classes") or [])

    @property
    def data_spec(self) -> str:
        return str(self.info["data"].get("spec", ""))

    @property
    def seed(self) -> int:
        seed = self.info["training"].get("seed", 0)
        return seed if isinstance(seed, int) else 0

    @property
    def step(self) -> int:
        return int(self.info.get("step", 0) or 0)

    def save_info(self) -> None:
        write_run_info(self.dir, self.info)

    # -- metrics.jsonl
    @property
    def metrics_path(self) -> Path:
        return self.dir / METRICS_FILE

    def metrics(self) -> list[dict[str, Any]]:
        """Return the training lines of metrics.jsonl."""
        return read_training_rows(self.metrics_path)

    def evaluations(self) -> list[dict[str, Any]]:
        """Return the eval lines of metrics.jsonl, oldest first."""
        return read_eval_rows(self.metrics_path)

    def append_metrics(self, row: dict[str, Any]) -> None:
        append_row(self.metrics_path, row)

    # -- the model
    def model_class(self) -> type:
        """Return the Model subclass that trained this run, or say which plugin is missing or broken."""
        from gencli.plugins import registry

        return registry().model_class(self.model_name, run=self)

    def build_model(self, device: str = "cpu", precision: str = "fp32"):
        """Return an untrained model exactly as described by run.json."""
        from gencli.models import hparams

        cls = self.model_class()
        hp = hparams.build(cls.Hyperparameters, self.info["hyperparameters"], source=f"{self.dir / RUN_FILE}")
        return cls(hp, self.image_shape, self.info["data"].get("classes"), device=device, precision=precision)

    def load_model(self, device: str = "cpu"):
        """Return the trained model of the run's checkpoint, in eval mode."""
        from gencli.training.checkpoint import load_weights, read_meta

        if self.checkpoint is None:
            raise UserError(f"run {str(self.dir)!r} has no checkpoint yet")
        model = self.build_model(device=device)
        load_weights(self.checkpoint, model)
        step = read_meta(self.checkpoint).get("step", 0)
        model.step = step if isinstance(step, int) else 0
        model.eval()
        return model.prepare_inference()

    def data(self, split: str = "test", spec: str | None = None):
        """Return the run's dataset (or ``spec``) at the run's image shape: an ``ImageData``."""
        key = f"{spec or self.data_spec}:{split}"
        if key not in self._data_cache:
            from gencli.data.base import DataRequest
            from gencli.data.resolve import load_dataset

            c, s, _ = self.image_shape
            self._data_cache[key] = load_dataset(spec or self.data_spec, DataRequest(s, c, split, self.seed))
        return self._data_cache[key]

    def output_path(self, kind: str, suffix: str) -> Path:
        """Return a new path under ``generated/`` for a command's output, e.g. ``samples-TIME.png``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.dir / "generated" / f"{kind}-{stamp}"
        path, i = base.with_name(base.name + suffix), 1
        while path.exists():
            i += 1
            path = base.with_name(f"{base.name}-{i}{suffix}")
        return path


def load_trained(ref: str | Path, device: str = "cpu"):
    """Return the trained model of a run (its latest checkpoint) in eval mode."""
    return Run.open(ref).load_model(device=device)
