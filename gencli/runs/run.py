"""The Run: a run directory's checked description (run.json), and what it leads to.

A run directory holds ``run.json`` (the schema below), ``metrics.jsonl`` (``metrics_log``),
``checkpoints/`` (``checkpoints``), the lock of its trainer (``lock``), ``samples/`` and media.
Every command that uses a trained model goes through ``Run.open``, and nothing outside this
package reads run.json: the engine, the commands and evaluation read it through ``Run``'s typed
accessors (``RunInfo``). No torch at import time.

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
from gencli.runs import values
from gencli.runs.metrics_log import METRICS_FILE, append_row, read_eval_rows, read_training_rows
from gencli.runs.values import MAX_CHANNELS, MAX_COUNT, MAX_IMAGE_SIZE, shown
from gencli.runs.values import is_int as _is_int

RUN_FILE = "run.json"
SCHEMA_VERSION = 1
# Keys a run.json must hold for any command to use it: name -> expected JSON type.
REQUIRED = {"gencli_version": str, "model": str, "hyperparameters": dict, "data": dict, "training": dict}


def runs_root() -> Path:
    return Path(os.environ.get("GENCLI_RUNS_DIR", "runs"))


# ------------------------------------------------------------------ run.json
MAX_CLASSES = 100_000
MAX_SAMPLE_COUNT = 100_000
# What `gencli train` needs of a run.json to resume it, beyond what every command needs.
NEEDED_TO_TRAIN = {"data": ("spec",), "training": ("batch_size", "seed", "precision", "sample_every", "checkpoint_every")}
_OPTIONAL_TEXT = ("plugin", "plugin_distribution", "plugin_version", "source_run", "status", "created", "finished",
                  "device")


def _damaged(path: Path, name: str, what: str, value: Any = None, present: bool = True) -> UserError:
    got = f", got {shown(value)}" if present else ""
    return UserError(f"{str(path)!r} is damaged: {name} {what}{got}")


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
    for key in NEEDED_TO_TRAIN["training"] if training else ():
        if t.get(key) is None:
            raise _damaged(path, f"training.{key}", "is missing", present=False)
    for key, value in t.items():
        if value is None and key not in ("batch_size", "seed", "precision", "log_every", "keep_checkpoints"):
            continue  # unset (epochs of a run measured in steps, say)
        name = f"training.{key}"
        if key == "sample_count":
            _count(path, name, value, 1, MAX_SAMPLE_COUNT)
        elif key in values.SETTINGS:
            setting = values.SETTINGS[key]
            wrong = values.problem(setting, value)
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


# ------------------------------------------------------------------ the Run
class RunInfo:
    """A run's description (the contents of a checked run.json) read through typed accessors.

    ``Run`` is one, with its directory; the engine also reads a run it is still planning (not yet
    written to disk) as a ``RunInfo(info)``. Accessors return copies or immutable values: a
    reader never changes the record by accident.
    """

    info: dict[str, Any]

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    # -- who made it
    @property
    def model_name(self) -> str:
        return self.info["model"]

    @property
    def plugin(self) -> str | None:
        return self.info.get("plugin")

    @property
    def plugin_distribution(self) -> str | None:
        return self.info.get("plugin_distribution")

    @property
    def plugin_version(self) -> str | None:
        return self.info.get("plugin_version")

    @property
    def gencli_version(self) -> str:
        return self.info["gencli_version"]

    @property
    def source_run(self) -> str | None:
        """The run this one trained on top of (`gencli train MODEL --from RUN`), or None."""
        return self.info.get("source_run")

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The recorded hyperparameter table (a copy): ``hyperparameters_for`` builds the dataclass."""
        return dict(self.info["hyperparameters"])

    def hyperparameters_for(self, cls: type, source: str | None = None) -> Any:
        """Return ``cls.Hyperparameters`` built and checked from the record (errors name run.json)."""
        from gencli.models import hparams

        return hparams.build(cls.Hyperparameters, self.info["hyperparameters"], source=source or "run.json")

    # -- the data
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the images the model was trained on."""
        return tuple(self.info["data"]["image_shape"])

    @property
    def classes(self) -> list[str]:
        return list(self.info["data"].get("classes") or [])

    @property
    def recorded_classes(self) -> list[str] | None:
        """The class names as recorded: None for a run that had none (what a model is built with)."""
        classes = self.info["data"].get("classes")
        return list(classes) if classes is not None else None

    @property
    def class_counts(self) -> list[int] | None:
        """Training images per class (runs from before they were recorded: None)."""
        counts = self.info["data"].get("class_counts")
        return list(counts) if counts is not None else None

    @property
    def data_spec(self) -> str:
        return str(self.info["data"].get("spec") or "")

    @property
    def data_record(self) -> dict[str, Any]:
        """The whole recorded ``data`` table (a copy), for readers that show every entry."""
        return dict(self.info["data"])

    @property
    def data_kind(self) -> str | None:
        return self.info["data"].get("kind")

    @property
    def data_size(self) -> int | None:
        """How many training images the run saw (None for runs from before it was recorded)."""
        return self.info["data"].get("size")

    @property
    def load_size(self) -> int | None:
        """The side training images are loaded at before a random crop to the image size (None: no crop)."""
        return self.info["data"].get("load_size")

    def data_request(self, split: str = "test", training: bool = False):
        """Return the ``DataRequest`` that loads this run's data (``split``) at its image shape and seed.

        The one place a run's data request is built. ``training``: as the training loop reads it,
        at ``load_size`` for random crops; otherwise at the trained image size, as a model takes it.
        """
        from gencli.data.base import DataRequest

        channels, size, _ = self.image_shape
        return DataRequest(size, channels, split, self.seed, load_size=self.load_size if training else None)

    # -- how it trained
    @property
    def seed(self) -> int:
        seed = self.info["training"].get("seed", 0)
        return seed if _is_int(seed) else 0

    @property
    def batch_size(self) -> int | None:
        return self.info["training"].get("batch_size")

    @property
    def precision(self) -> str | None:
        return self.info["training"].get("precision")

    def setting(self, key: str, default: Any = None) -> Any:
        """One recorded training setting (``sample_every``, ``eval_n``, ...); ``default`` when unset."""
        value = self.info["training"].get(key)
        return default if value is None else value

    @property
    def training_settings(self) -> dict[str, Any]:
        """The recorded training settings (a copy)."""
        return dict(self.info["training"])

    # -- where it stands
    @property
    def step(self) -> int:
        return int(self.info.get("step", 0) or 0)

    @property
    def total_steps(self) -> int | None:
        return self.info.get("total_steps")

    @property
    def status(self) -> str | None:
        return self.info.get("status")

    @property
    def created(self) -> str | None:
        return self.info.get("created")

    @property
    def finished(self) -> str | None:
        return self.info.get("finished")

    @property
    def device(self) -> str | None:
        return self.info.get("device")

    @property
    def world_size(self) -> int | None:
        return self.info.get("world_size")

    @property
    def final_losses(self) -> dict[str, Any] | None:
        losses = self.info.get("final_losses")
        return dict(losses) if isinstance(losses, dict) else None


@dataclass
class Run(RunInfo):
    """A run directory, its checked description and the checkpoint commands load from."""

    dir: Path
    info: dict[str, Any]
    checkpoint: Path | None = None
    _data_cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, ref: str | Path) -> "Run":
        """Resolve a run directory, one of its checkpoint folders, or a model name (its latest run)."""
        from gencli.runs.checkpoints import latest_checkpoint

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
    def open_to_train(cls, run_dir: str | Path) -> "Run":
        """Open a run directory to resume training it: every value resuming reads is checked first,
        and the run must hold a complete checkpoint (``checkpoint``, the one to resume from)."""
        from gencli.runs.checkpoints import latest_checkpoint

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserError(f"--resume {str(run_dir)!r}: no such run directory")
        info = read_run_info(run_dir, training=True)
        last = latest_checkpoint(run_dir)
        if last is None:
            raise UserError(f"run {str(run_dir)!r} has no complete checkpoint to resume from")
        return cls(run_dir, info, last)

    @classmethod
    def open_dir(cls, run_dir: str | Path) -> "Run":
        """Open exactly the run in ``run_dir`` (sealed and checked), without choosing a checkpoint."""
        run_dir = Path(run_dir)
        check_sealed(run_dir)
        return cls(run_dir, read_run_info(run_dir))

    @classmethod
    def _latest_of_model(cls, name: str) -> "Run":
        from gencli.plugins import registry
        from gencli.runs.checkpoints import latest_checkpoint
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

    @property
    def info_path(self) -> Path:
        return self.dir / RUN_FILE

    def save_info(self) -> None:
        write_run_info(self.dir, self.info)

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint of the run now (``checkpoint`` is the one it was opened at)."""
        from gencli.runs.checkpoints import latest_checkpoint

        return latest_checkpoint(self.dir)

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

    def check_model_shape(self, cls: type) -> None:
        """Refuse a recorded image shape that model class ``cls`` cannot work at."""
        check_model_shape(cls, self.image_shape, str(self.info_path))

    def build_model(self, device: str = "cpu", precision: str = "fp32"):
        """Return an untrained model exactly as described by run.json."""
        cls = self.model_class()
        hp = self.hyperparameters_for(cls, str(self.info_path))
        self.check_model_shape(cls)
        return cls(hp, self.image_shape, self.recorded_classes, device=device, precision=precision)

    def load_model(self, device: str = "cpu"):
        """Return the trained model of the run's checkpoint, in eval mode."""
        from gencli.runs.checkpoints import load_weights, read_meta

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
            from gencli.data.resolve import load_dataset

            self._data_cache[key] = load_dataset(spec or self.data_spec, self.data_request(split))
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
