"""Runs: the one type that owns a run directory's description, its metrics and its trained model.

A run directory holds ``run.json`` (the schema below), ``metrics.jsonl`` (one training line per
logged step, one ``{"eval": ...}`` line per `gencli eval`), ``checkpoints/``, ``samples/`` and
media. Every command that uses a trained model goes through ``Run.open``; the engine creates and
updates runs through the functions here. No torch at import time.

``run.json`` schema (``schema`` 1): ``gencli_version``, ``model`` (the name to rebuild it by),
``plugin``, ``plugin_distribution``, ``plugin_version``, ``hyperparameters`` (a table),
``data`` (``spec``, ``kind``, ``image_shape`` [C, H, W], ``classes``, ``class_counts``, ...), ``training``
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
# The largest count a run records (steps, batch size, intervals): far above any real run, and small
# enough that no arithmetic on it leaves a signed 64-bit integer.
MAX_COUNT = 10**12
MAX_CHANNELS = 4
MAX_CLASSES = 100_000
MAX_SAMPLE_COUNT = 100_000
# What `gencli train` needs of a run.json to resume it, beyond what every command needs.
NEEDED_TO_TRAIN = {"data": ("spec",), "training": ("batch_size", "seed", "precision", "sample_every", "checkpoint_every")}
_OPTIONAL_TEXT = ("plugin", "plugin_distribution", "plugin_version", "source_run", "status", "created", "finished",
                  "device")


def shown(value: Any) -> str:
    """A damaged value as an error line shows it: short, one line, never a deep repr."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list" if any(isinstance(v, (dict, list, tuple)) for v in value) or len(value) > 8 else repr(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _damaged(path: Path, name: str, what: str, value: Any = None, present: bool = True) -> UserError:
    got = f", got {shown(value)}" if present else ""
    return UserError(f"{str(path)!r} is damaged: {name} {what}{got}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(path: Path, name: str, value: Any, minimum: int = 0, maximum: int = MAX_COUNT) -> None:
    if not _is_int(value) or not minimum <= value <= maximum:
        raise _damaged(path, name, f"must be a whole number from {minimum:,} to {maximum:,}", value)


def check_schema(info: Any, path: Path, training: bool = False) -> dict[str, Any]:
    """Return ``info`` when it is a usable run description, else raise ``UserError`` naming what is wrong.

    Every value a command reads is checked here, by type and range, before anything acts on it:
    the one reader of run.json values. ``training`` also requires what resuming the run reads.
    """
    if not isinstance(info, dict):
        raise UserError(f"{str(path)!r} is not a gencli run description")
    for key, kind in REQUIRED.items():
        if key not in info:
            raise UserError(f"{str(path)!r} is damaged: it has no {key!r}")
        if not isinstance(info[key], kind):
            raise UserError(f"{str(path)!r} is damaged: {key!r} is not a {kind.__name__}")
    schema = info.get("schema", 1)
    if not _is_int(schema) or schema < 1:
        raise _damaged(path, "'schema'", "must be a run schema number", schema)
    if schema > SCHEMA_VERSION:
        raise UserError(f"{str(path)!r} was written by a newer gencli (run schema {schema}); upgrade gencli to use it")
    if not info["model"].strip():
        raise _damaged(path, "'model'", "must name a model", info["model"])
    if "step" in info:
        _count(path, "'step'", info["step"])
    for key in _OPTIONAL_TEXT:
        if info.get(key) is not None and not isinstance(info[key], str):
            raise _damaged(path, repr(key), "must be text", info[key])
    for key, kind, what in (("notes", list, "a list"), ("resumes", list, "a list"),
                            ("final_losses", dict, "a table"), ("thread_choice", dict, "a table")):
        if info.get(key) is not None and not isinstance(info[key], kind):
            raise _damaged(path, repr(key), f"must be {what}", info[key])
    if any(not isinstance(r, dict) for r in info.get("resumes") or []):
        raise _damaged(path, "'resumes'", "must be a list of tables", info["resumes"])
    for key, minimum in (("total_steps", 0), ("world_size", 1), ("threads", 1)):
        if info.get(key) is not None:
            _count(path, repr(key), info[key], minimum)
    _check_data(info["data"], path, training)
    _check_training(info["training"], path, training)
    return info


def _check_data(data: dict[str, Any], path: Path, training: bool) -> None:
    from gencli.training.settings import MAX_IMAGE_SIZE

    shape = data.get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(v) for v in shape)
            and 1 <= shape[0] <= MAX_CHANNELS and shape[1] == shape[2] and 1 <= shape[1] <= MAX_IMAGE_SIZE):
        raise _damaged(path, "data.image_shape", f"must be [channels, size, size] with 1 to {MAX_CHANNELS} channels "
                       f"and a size from 1 to {MAX_IMAGE_SIZE:,}", shape, "image_shape" in data)
    for key in ("spec", "kind"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _damaged(path, f"data.{key}", "must be text", data[key])
    if training and not (isinstance(data.get("spec"), str) and data["spec"].strip()):
        raise _damaged(path, "data.spec", "must name the data the run trains on", data.get("spec"), "spec" in data)
    if data.get("load_size") is not None:
        _count(path, "data.load_size", data["load_size"], shape[1], MAX_IMAGE_SIZE)
    if data.get("size") is not None:
        _count(path, "data.size", data["size"])
    classes = data.get("classes")
    if classes is not None and not (isinstance(classes, list) and len(classes) <= MAX_CLASSES
                                    and all(isinstance(c, str) for c in classes)):
        raise _damaged(path, "data.classes", "must be a list of class names", classes)
    counts = data.get("class_counts")
    if counts is not None and not (isinstance(counts, list) and len(counts) == len(classes or [])
                                   and all(_is_int(c) and 0 <= c <= MAX_COUNT for c in counts)):
        raise _damaged(path, "data.class_counts", "must be a whole number of images for each class", counts)


def _check_training(t: dict[str, Any], path: Path, training: bool) -> None:
    from gencli.training import settings

    for key in NEEDED_TO_TRAIN["training"] if training else ():
        if t.get(key) is None:
            raise _damaged(path, f"training.{key}", "is missing", present=False)
    for key, value in t.items():
        if value is None and key not in ("batch_size", "seed", "precision", "log_every", "keep_checkpoints"):
            continue  # unset (epochs of a run measured in steps, say)
        name = f"training.{key}"
        if key == "sample_count":
            _count(path, name, value, 1, MAX_SAMPLE_COUNT)
        elif key in settings.SETTINGS:
            setting = settings.SETTINGS[key]
            wrong = settings.problem(setting, value)
            if wrong is None and _is_int(value) and setting.maximum is None and value > MAX_COUNT:
                wrong = f"must be at most {MAX_COUNT:,}"
            if wrong:
                raise _damaged(path, name, wrong, value)


def check_model_shape(cls: type, image_shape: tuple[int, int, int] | list[int], source: str) -> None:
    """Refuse a recorded ``data.image_shape`` that model class ``cls`` cannot work at (its ``check_shape``)."""
    channels, size = image_shape[0], image_shape[1]
    try:
        cls.check_shape(size, channels)
    except UserError as exc:
        raise UserError(f"{source!r} is damaged: data.image_shape {list(image_shape)} does not fit the model: {exc}") from None


def read_run_info(run_dir: Path, training: bool = False) -> dict[str, Any]:
    """Return the checked contents of ``run_dir/run.json`` (``training``: also what resuming it needs).

    A link at ``run.json`` (or anything but a plain file) is refused in one line, never followed."""
    from gencli.fileio import read_nofollow

    path = Path(run_dir) / RUN_FILE
    try:
        data = read_nofollow(path)
        if data is None:
            raise UserError(f"{str(run_dir)!r} is not a gencli run (no {RUN_FILE})")
        info = json.loads(data)
    except (OSError, ValueError, RecursionError):
        raise UserError(f"{str(path)!r} is damaged (not valid JSON)") from None
    return check_schema(info, path, training)


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


# ------------------------------------------------------------------ a sealed folder
# Every path the core touches inside a run, and what it must be. A run is sealed: none of them
# may be a link (``check_sealed``), and each is confirmed again where it is written.
RUN_FILES = (RUN_FILE, METRICS_FILE, ".lock", "progress.gif", "losses.png", "README.md")
RUN_FOLDERS = ("checkpoints", "samples", "eval", "generated", "translated", "tensorboard")


def check_sealed(run_dir: Path) -> None:
    """Refuse, in one line naming it, a link (or a file where a folder belongs) anywhere the core
    reads or writes in ``run_dir``: its files, its folders, and what ``checkpoints/``,
    ``samples/`` and ``eval/`` hold (a checkpoint's own files included)."""
    from gencli.fileio import link_refused, sealed

    run_dir = Path(run_dir)
    for name in RUN_FILES:
        sealed(run_dir, name, "file")
    for name in RUN_FOLDERS:
        sealed(run_dir, name, "folder")
    for name in ("checkpoints", "samples", "eval"):
        try:
            entries = list(os.scandir(run_dir / name))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            rel = f"{name}/{entry.name}"
            if entry.is_symlink():
                raise link_refused(run_dir / rel, "folder" if name == "checkpoints" and entry.name.startswith("step-")
                                   else "file")
            if name == "checkpoints" and entry.name.startswith("step-") and entry.is_dir(follow_symlinks=False):
                for member in os.scandir(entry.path):
                    if member.is_symlink():
                        raise link_refused(run_dir / rel / member.name)


# ------------------------------------------------------------------ metrics.jsonl
def _rows(path: Path) -> list[dict[str, Any]]:
    from gencli.fileio import read_nofollow

    data = read_nofollow(path)
    if data is None:
        return []
    return [row for _, row in _parsed_lines(data, Path(path))]


def check_metrics(path: Path) -> None:
    """Refuse a metrics.jsonl holding a line that is not a metrics row (see ``check_row``)."""
    _rows(Path(path))


def _parsed_lines(data: bytes, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Return (line, row) for each line of a metrics.jsonl; a line that is not JSON (one cut by a
    kill) is skipped, a JSON line that is not a metrics row is refused naming its line number."""
    out = []
    for number, line in enumerate(data.decode(errors="replace").splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        except RecursionError:
            row = None
        out.append((line, check_row(row, path, number)))
    return out


def _is_value(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_row(row: Any, path: Path, number: int) -> dict[str, Any]:
    """Return one metrics.jsonl row when its values are what readers expect, else raise ``UserError``
    naming the file, the line and the field."""
    where = f"{str(path)!r} is damaged: line {number}"
    if not isinstance(row, dict):
        raise UserError(f"{where} is not a table of metrics")
    if "eval" in row:
        if not isinstance(row["eval"], dict):
            raise UserError(f"{where}: eval must be a table of metric values, got {shown(row['eval'])}")
        for key, value in row["eval"].items():
            if not _is_value(value):
                raise UserError(f"{where}: eval.{key} must be a number or null, got {shown(value)}")
        if not isinstance(row.get("settings", {}), dict):
            raise UserError(f"{where}: settings must be a table, got {shown(row['settings'])}")
        return row
    for key, value in row.items():
        if key in ("step", "epoch"):
            if not (_is_int(value) and 0 <= value <= MAX_COUNT):
                raise UserError(f"{where}: {key} must be a whole number from 0 to {MAX_COUNT:,}, got {shown(value)}")
        elif key == "quality" and isinstance(value, dict):
            bad = next((k for k, v in value.items() if not _is_value(v)), None)
            if bad is not None:
                raise UserError(f"{where}: quality.{bad} must be a number or null, got {shown(value[bad])}")
        elif not _is_value(value):
            raise UserError(f"{where}: {key} must be a number or null, got {shown(value)}")
    return row


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
    """Drop training lines past ``step`` (written after the checkpoint a run resumes from).

    The file stays locked from reading to replacing it: an eval line appended meanwhile waits,
    then lands in the new file.
    """
    from gencli.fileio import rewrite_locked

    def keep(data: bytes) -> bytes:  # a damaged line raises before anything is written
        kept = [line for line, row in _parsed_lines(data, Path(path)) if "eval" in row or row.get("step", 0) <= step]
        return ("\n".join(kept) + "\n" if kept else "").encode()

    rewrite_locked(Path(path), keep)


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
        if path.is_dir() and ((path / RUN_FILE).exists() or (path / RUN_FILE).is_symlink()):
            check_sealed(path)
            return cls(path, read_run_info(path), latest_checkpoint(path))
        if path.is_dir() and (path / "meta.json").exists() and path.parent.name == "checkpoints":
            run_dir = path.parent.parent
            check_sealed(run_dir)
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
        check_sealed(run_dir)
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
    def class_counts(self) -> list[int] | None:
        """Training images per class (runs from before they were recorded: None)."""
        counts = self.info["data"].get("class_counts")
        return list(counts) if counts is not None else None

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
        source = str(self.dir / RUN_FILE)
        hp = hparams.build(cls.Hyperparameters, self.info["hyperparameters"], source=source)
        check_model_shape(cls, self.image_shape, source)
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
        from gencli.fileio import sealed

        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = sealed(self.dir, "generated", "folder", create=True) / f"{kind}-{stamp}"
        path, i = base.with_name(base.name + suffix), 1
        while os.path.lexists(path):
            i += 1
            path = base.with_name(f"{base.name}-{i}{suffix}")
        return path


def load_trained(ref: str | Path, device: str = "cpu"):
    """Return the trained model of a run (its latest checkpoint) in eval mode."""
    return Run.open(ref).load_model(device=device)
