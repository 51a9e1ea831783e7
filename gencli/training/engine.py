"""The training engine: one loop, read top to bottom, for every model.

train(config)
  1. resolve the model class, hyperparameters, device and data (or read them from the run to resume)
  2. build the model (seeded), and restore the last checkpoint when resuming
  3. loop: batch -> model.train_step -> log / sample / checkpoint at their intervals
  4. on the end, Ctrl-C or a non-finite loss: write what is due (checkpoint, GIF, loss plot); a
     Ctrl-C then raises Interrupted, a disk that refuses a write ends in one UserError line

A run holds a lock on its directory while it trains. Log lines come at the log interval, at
checkpoints and at the end, however often the run was stopped and resumed: a Ctrl-C stop between
checkpoints carries the losses not yet logged in its checkpoint.

Losses stay on the device and are read only when a log line is due; a non-finite loss is
caught at its exact step without a per-step sync, and never reaches a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import gencli
from gencli.data.base import BatchStream, DataRequest, ImageData
from gencli.data.resolve import check_kind, load_dataset
from gencli.errors import Interrupted, UserError
from gencli.fileio import append_line, naming, sealed, write_failure
from gencli.media.model_card import write_model_card
from gencli.models import hparams
from gencli.models.base import Model
from gencli.runs import (
    METRICS_FILE,
    RUN_FILE,
    Run,
    check_metrics,
    check_model_shape,
    new_run_dir,
    read_run_info,
    truncate_rows,
    write_run_info,
)
from gencli.training import checkpoint as ckpt
from gencli.training import distributed as dist_util
from gencli.training import settings
from gencli.training.intervals import EPOCH_SUFFIX, interval_steps
from gencli.training.lock import RunLock
from gencli.training.threads import ThreadPolicy

DEFAULT_DATA = {"images": "shapes", "labelled": "shapes", "paired": "shapes-paired", "unpaired": "shapes-unpaired"}
PRECISIONS = settings.PRECISIONS
# Settings a TOML config may hold at its top level (the rest go in [hyperparameters]).
CONFIG_KEYS = tuple(settings.SETTINGS)


@dataclass
class TrainConfig:
    model: str
    data: str | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    image_size: int | None = None
    channels: int | None = None
    lr: float | None = None
    device: str = "auto"
    precision: str | None = None  # None: fp32 for a new run, the run's own on resume
    seed: int | None = None  # None: 0 for a new run, the run's own on resume
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # `train MODEL --from RUN`: the run a two-stage model builds on
    # Where each override came from, for error messages ("[hyperparameters] in 'c.toml'"); keys it
    # lacks came from --set (and ``from_run`` from --from).
    override_sources: dict[str, str] = field(default_factory=dict)
    out: Path | None = None
    resume: Path | None = None
    # Steps (500) or epochs ("2ep"); see gencli.training.intervals.
    sample_every: int | str | None = None
    checkpoint_every: int | str | None = None
    log_every: int = 10
    keep_checkpoints: int = 3
    compile: bool = False
    sync_bn: bool = False
    tensorboard: bool = False
    quiet: bool = False
    sample_count: int = 36
    # Sample quality while training: every ``eval_every`` steps (or "Nep"), ``eval_n`` images are
    # scored on the held-out split by FID on ``eval_features`` and, for a conditional model, class
    # accuracy by ``eval_classifier`` (TorchScript files); see gencli.metrics.probe.
    eval_every: int | str | None = None
    eval_features: str | None = None
    eval_classifier: str | None = None
    eval_n: int = 1000


def check_devices(processes: int, device: torch.device) -> None:
    """Refuse more processes than GPUs on CUDA (each process takes one); on the CPU any number runs."""
    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise UserError(f"--devices {processes} asks for more GPUs than the {torch.cuda.device_count()} visible; "
                        "use at most that many, or --device cpu")
    if device.type == "mps" and processes > 1:
        raise UserError("--devices above 1 needs CUDA GPUs or the CPU; MPS trains in one process")


def check_sync_bn(device: torch.device) -> None:
    if device.type != "cuda":
        raise UserError(f"--sync-bn needs CUDA devices (torch's SyncBatchNorm runs on GPUs only), not {device.type}; "
                        "without it each process normalises with its own batch statistics")


def resolve_device(name: str) -> torch.device:
    """Return the device for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available (use --device cpu or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps asked for, but MPS is not available (use --device cpu or auto)")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise UserError(f"unknown --device {name!r}: use auto, cpu, cuda or mps")
    return torch.device(name)


def check_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise UserError(f"unknown --precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device; use bf16 on CPU")
    return precision


def check_settings(config: TrainConfig) -> None:
    """Refuse any setting of ``config`` its flag would refuse, before anything is resolved or built."""
    for key in settings.SETTINGS:
        if key == "model" and config.resume is not None and not config.model:
            continue  # the run names its model
        value = getattr(config, key)
        if key in ("precision", "device") and isinstance(value, str) and value.strip():
            continue  # resolve_device and check_precision say more (what is available here)
        settings.check_flag(key, value)


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


class Interrupt:
    """Turns the first Ctrl-C into a clean stop at the end of the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "Interrupt":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def merge_config_file(values: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Return training options from a TOML file, with ``values`` (from the CLI) taking precedence.

    Every top-level value is checked by the same rules as its flag (``settings.SETTINGS``),
    naming the file. ``compile = true`` comes back under ``compile``: the caller passes
    ``compile=merged.pop("compile", flag)`` to ``TrainConfig``. ``override_sources`` says which
    hyperparameters came from the file's [hyperparameters] table, for error messages.
    """
    raw = hparams.read_config(path)
    hyper = raw.pop("hyperparameters", {})
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        from gencli.errors import did_you_mean

        raise UserError(f"unknown setting {unknown[0]!r} in {str(path)!r}{did_you_mean(unknown[0], CONFIG_KEYS)}; "
                        "hyperparameters belong in a [hyperparameters] table")
    if not isinstance(hyper, dict):
        raise UserError(f"[hyperparameters] in {str(path)!r} must be a table")
    merged = {key: settings.check_file_value(key, value, str(path)) for key, value in raw.items()}
    given = {k: v for k, v in values.items() if v is not None and k not in ("overrides", "override_sources")}
    if "steps" in given or "epochs" in given:  # the command line's run length replaces the file's
        merged.pop("steps", None)
        merged.pop("epochs", None)
    merged.update(given)
    from_cli = values.get("overrides", {})
    merged["overrides"] = {**hyper, **from_cli}
    table = f"[hyperparameters] in {str(path)!r}"
    merged["override_sources"] = {**values.get("override_sources", {}),
                                  **{k: table for k in hyper if k not in from_cli}}
    return merged


@dataclass
class Plan:
    """Everything the loop needs, whether starting fresh or resuming."""

    cls: type
    hp: Any
    info: dict[str, Any]
    data: ImageData
    run_dir: Path | None
    resume_from: Path | None
    changes: dict[str, Any] = field(default_factory=dict)  # settings a resume changed


def _plan_new(config: TrainConfig) -> Plan:
    from gencli.models.labels import class_counts
    from gencli.plugins import registry

    spec = registry().model(config.model)
    cls: type[Model] = registry().model_class(config.model)
    d = cls.defaults
    values = dict(config.overrides)
    if config.lr is not None:
        values["lr"] = config.lr
    source = None
    if config.source:
        from gencli.runs import Run

        source = Run.open(config.source)
        # the model records what it needs of the source before its hyperparameters are checked
        hp = hparams.build(cls.Hyperparameters, values, _override_sources(config), validate=False)
        hp = cls.train_from(hp, source)
        hparams.check(hp)
    else:
        hp = hparams.build(cls.Hyperparameters, values, _override_sources(config))
    if config.steps is not None and config.epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    # a model trained on top of another run defaults to that run's data and image shape
    image_size = config.image_size or (source.image_shape[1] if source else None) or d.image_size
    channels = config.channels or (source.image_shape[0] if source else None) or d.channels
    cls.check_shape(image_size, channels)
    data_spec = config.data or (source.data_spec if source else None) or DEFAULT_DATA[cls.data]
    seed = config.seed or 0
    request = DataRequest(image_size, channels, "train", seed, load_size=cls.load_size(hp, image_size))
    check_batch_memory(config.batch_size or d.batch_size, channels, request.stored_size)
    data = load_dataset(data_spec, request)
    check_kind(cls.name, cls.data, data, data_spec)
    if cls.conditional and cls.data == "labelled" and not data.num_classes:
        raise UserError(f"model {cls.name!r} is conditional and needs labelled data; {data_spec!r} has no labels")
    hp, notes = fit_to_data(cls, hp, data, set(values))
    from gencli.ui.console import info as say

    for note in notes:
        say(f"note: {note}", quiet=config.quiet)
    info = {
        "gencli_version": gencli.__version__,
        "plugin": spec.plugin,
        "plugin_distribution": _plugin_field(spec.plugin, "distribution"),
        "plugin_version": _plugin_field(spec.plugin, "version"),
        # the name the user asked for: "plugin:name" for a shadowed model, so it reloads as itself
        "model": config.model if ":" in config.model else cls.name,
        "hyperparameters": hparams.to_dict(hp),
        "source_run": str(source.dir) if source else None,
        # defaults a model chose for this data (by its size, say), in words: run.json keeps the why
        **({"notes": notes} if notes else {}),
        "data": {
            "spec": data_spec,
            "kind": data.kind,
            "image_shape": [channels, image_size, image_size],
            "load_size": request.load_size,
            "classes": data.classes if cls.conditional or data.kind == "labelled" else None,
            # what sampling without --label draws classes by: the training data's proportions
            **({"class_counts": class_counts(data.labels, data.num_classes)}
               if data.labels is not None and data.num_classes and (cls.conditional or data.kind == "labelled") else {}),
            "size": len(data),
        },
        "training": {
            "steps": config.steps,
            "epochs": config.epochs,
            "batch_size": config.batch_size or d.batch_size,
            "seed": seed,
            "precision": config.precision or "fp32",
            # A run measured in epochs samples once an epoch unless told otherwise.
            "sample_every": config.sample_every or (f"1{EPOCH_SUFFIX}" if config.epochs else d.sample_every),
            "checkpoint_every": config.checkpoint_every or d.checkpoint_every,
            "log_every": config.log_every,
            "keep_checkpoints": config.keep_checkpoints,
            "sample_count": config.sample_count,
            **_eval_settings(config),
        },
        "step": 0,
        "status": "created",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return Plan(cls, hp, info, data, None, None)


def fit_to_data(cls: type, hp: Any, data: ImageData, given: set[str]) -> tuple[Any, list[str]]:
    """Let a model adapt its defaults to the training data; return (hyperparameters, notes).

    A model class may define ``fit_to_data(hp, data, given) -> (hp, notes)``: ``data`` is the
    training ``ImageData``, ``given`` the hyperparameters the user set (never to be changed), and
    each note says in one line what was chosen and why ("1,437 images: augment=..."). Only new
    runs are fitted; the chosen values are recorded in run.json like any other, so a resumed or
    loaded run is rebuilt exactly.
    """
    hp, notes = cls.fit_to_data(hp, data, frozenset(given))
    hparams.check(hp)
    return hp, [str(n) for n in notes]


def _eval_settings(config: TrainConfig) -> dict[str, Any]:
    """The quality-probe settings a run records (none when it does not probe)."""
    if config.eval_every is None:
        if config.eval_features or config.eval_classifier:
            raise UserError("--eval-features and --eval-classifier need --eval-every (how often to score)")
        return {}
    from gencli.training.intervals import parse_interval

    if isinstance(config.eval_every, bool) or not isinstance(config.eval_every, (int, str)) or (
            isinstance(config.eval_every, int) and config.eval_every < 1):
        raise UserError(f"eval_every must be a number of steps (500) or epochs (2ep), got {config.eval_every!r}")
    if isinstance(config.eval_every, str):
        parse_interval(config.eval_every, "eval_every")
    paths = {}
    for key in ("eval_features", "eval_classifier"):
        value = getattr(config, key)
        if value is not None:
            # recorded absolute, so a resumed run finds the file wherever it is started from
            paths[key] = str(Path(value).expanduser().resolve())
    return {"eval_every": config.eval_every, "eval_n": config.eval_n, **paths}


def _override_sources(config: TrainConfig) -> dict[str, str]:
    """Where each hyperparameter value came from (keys it lacks came from --set)."""
    sources = dict(config.override_sources)
    if config.lr is not None:  # --lr (or a config's top-level lr) replaces any other
        sources["lr"] = "--lr"
    return sources


def check_batch_memory(batch_size: int, channels: int, size: int) -> None:
    """Refuse a batch whose images alone (float32) would not fit in memory, before anything is allocated."""
    from gencli.data.base import check_fits_in_memory

    check_fits_in_memory(batch_size * channels * size * size * 4,
                         f"a batch of {batch_size:,} images of {channels}x{size}x{size}",
                         "use a smaller --batch-size or --image-size")


# What may change on resume (the new value is recorded in run.json). The rest of what made the
# run (model, data, image shape, batch size, hyperparameters, precision, seed) is refused by name:
# the checkpoint would not fit it, or training would follow another trajectory from it.
CHANGEABLE_ON_RESUME = ("steps", "epochs", "sample_every", "checkpoint_every", "log_every", "keep_checkpoints")


def _plan_resume(config: TrainConfig) -> Plan:
    from gencli.plugins import registry
    from gencli.runs import Run

    run_dir = Path(config.resume)
    if not run_dir.is_dir():
        raise UserError(f"--resume {str(run_dir)!r}: no such run directory")
    info = read_run_info(run_dir, training=True)  # every value resuming reads, checked before any is used
    last = ckpt.latest_checkpoint(run_dir)
    if last is None:
        raise UserError(f"run {str(run_dir)!r} has no complete checkpoint to resume from")
    cls = Run(run_dir, info, last).model_class()
    check_model_shape(cls, info["data"]["image_shape"], str(run_dir / RUN_FILE))
    check_metrics(run_dir / METRICS_FILE)  # a damaged line refuses the resume before the file is rewritten
    spec = registry().models[info["model"]]
    hp = hparams.build(cls.Hyperparameters, info["hyperparameters"], source=str(run_dir / RUN_FILE))
    _refuse_resume_changes(config, run_dir, info, spec, cls)
    t = info["training"]
    changes = {}
    if config.steps is not None or config.epochs is not None:
        if config.steps is not None and config.epochs is not None:
            raise UserError("give --steps or --epochs, not both")
        changes.update(steps=config.steps, epochs=config.epochs)
    for key in ("sample_every", "checkpoint_every"):
        if getattr(config, key) is not None:
            changes[key] = getattr(config, key)
    for key, default in (("log_every", 10), ("keep_checkpoints", 3)):  # no flag: given only when not the default
        if getattr(config, key) != default:
            changes[key] = getattr(config, key)
    changes = {k: v for k, v in changes.items() if t.get(k) != v}
    t.update(changes)
    d = info["data"]
    request = DataRequest(d["image_shape"][1], d["image_shape"][0], "train", t["seed"], load_size=d.get("load_size"))
    check_batch_memory(t["batch_size"], d["image_shape"][0], request.stored_size)
    data = load_dataset(d["spec"], request)
    return Plan(cls, hp, info, data, run_dir, last, changes)


def _refuse_resume_changes(config: TrainConfig, run_dir: Path, info: dict[str, Any], spec, cls) -> None:
    """Refuse, by flag, a setting of ``config`` that differs from the run's and cannot change on resume."""
    from gencli.plugins import registry

    def refuse(flag: str, was: str) -> None:
        raise UserError(f"{flag} cannot change on --resume: the run {was}; start a new run to change it "
                        f"(on resume only {', '.join('--' + k.replace('_', '-') for k in CHANGEABLE_ON_RESUME[:4])}"
                        ", --device and --compile may change)")

    if config.source is not None:
        refuse("--from", f"trained on top of {info.get('source_run') or 'no other run'!r}")
    if config.out is not None and Path(config.out).resolve() != run_dir.resolve():
        raise UserError(f"--out cannot be combined with --resume: a resumed run stays in {str(run_dir)!r}")
    if config.model and config.model != info["model"] and registry().model(config.model) is not spec:
        refuse("MODEL", f"trains {info['model']!r}")
    d, t = info["data"], info["training"]
    if config.data is not None and not _same_data(config.data, d["spec"]):
        refuse("--data", f"trained on {d['spec']!r}")
    if config.image_size is not None and config.image_size != d["image_shape"][1]:
        refuse("--image-size", f"trained at {d['image_shape'][1]} px")
    if config.channels is not None and config.channels != d["image_shape"][0]:
        refuse("--channels", f"trained on {d['image_shape'][0]} channel(s)")
    if config.batch_size is not None and config.batch_size != t["batch_size"]:
        refuse("--batch-size", f"trained with batches of {t['batch_size']}")
    if config.precision not in (None, t["precision"]):
        refuse("--precision", f"trained in {t['precision']}")
    if config.seed not in (None, t["seed"]):
        refuse("--seed", f"trained with seed {t['seed']}")
    given = dict(config.overrides)
    if config.lr is not None:
        given["lr"] = config.lr
    if given:
        recorded = info["hyperparameters"]
        wanted = hparams.to_dict(hparams.build(cls.Hyperparameters, {**recorded, **given},
                                               {k: "run.json" for k in recorded} | _override_sources(config)))
        for key in given:
            if wanted.get(key) != recorded.get(key):
                flag = {"lr": "--lr", "from_run": "--from"}.get(key, f"--set {key}")
                refuse(flag, f"trained with {key}={recorded.get(key)!r}")


def _same_data(given: str, recorded: str) -> bool:
    """Whether two --data specs name the same data: equal, or two spellings of one folder."""
    given, recorded = given.strip(), recorded.strip()
    if given == recorded:
        return True
    a, b = Path(given).expanduser(), Path(recorded).expanduser()
    return a.exists() and b.exists() and a.resolve() == b.resolve()


def _plugin_field(plugin: str, key: str) -> str:
    from gencli.plugins import registry

    info = registry().plugin(plugin)
    return getattr(info, key) if info is not None else ""


def _total_steps(t: dict[str, Any], steps_per_epoch: float, default: int) -> int:
    if t.get("steps"):
        return int(t["steps"])
    if t.get("epochs"):
        return max(1, int(int(t["epochs"]) * steps_per_epoch))
    return default


def batches_per_step(model: Model) -> int:
    """Return how many real batches one ``train_step`` of ``model`` consumes (the contract's ``batches_per_step``)."""
    k = getattr(model, "batches_per_step", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise TypeError(f"{type(model).__name__}.batches_per_step must be a whole number >= 1, got {k!r}")
    return k


def _quality_probe(plan: Plan, model: Model):
    """The run's quality probe (``eval_every``), its files loaded now so a mistake stops it before step 1."""
    t = plan.info["training"]
    if not t.get("eval_every"):
        return None
    from gencli.metrics.probe import QualityProbe

    d = plan.info["data"]
    held_out = load_dataset(d["spec"], DataRequest(d["image_shape"][1], d["image_shape"][0], "test", t["seed"]))
    return QualityProbe(held_out, t.get("eval_n", 1000), features=t.get("eval_features"),
                        classifier=t.get("eval_classifier"), seed=t["seed"], conditional=model.conditional,
                        num_classes=model.num_classes)


def _preview_data(plan: Plan, model: Model) -> ImageData:
    """Held-out images for translation/reconstruction previews; the training data otherwise."""
    if not (model.can("translate") or (model.can("reconstruct") and not model.can("interpolate"))):
        return plan.data
    d = plan.info["data"]
    request = DataRequest(d["image_shape"][1], d["image_shape"][0], "test", plan.info["training"]["seed"])
    try:
        return load_dataset(d["spec"], request)
    except UserError:
        return plan.data


def train(config: TrainConfig, display=None) -> Path:
    """Train as configured; return the run directory.

    Raises ``Interrupted`` (a KeyboardInterrupt) after a Ctrl-C, once the run is checkpointed and
    marked interrupted, and ``UserError`` for a write the disk refused (full, read-only, ...).
    """
    check_settings(config)
    info_dist = dist_util.from_environment()
    device = resolve_device(config.device)
    if info_dist.enabled and device.type == "cuda":
        device = torch.device("cuda", info_dist.local_rank)
        torch.cuda.set_device(device)
    dist_util.init(info_dist, device)
    try:
        with contextlib.ExitStack() as held:
            try:
                return _train(config, display, info_dist, device, held)
            except OSError as exc:
                failure = write_failure(exc)
                if failure is None:
                    raise
                cause, remedy = failure
                raise UserError(f"cannot write {exc.filename!r}: {cause}; {remedy}") from None
    finally:
        # whatever ended training (a user error before the loop included), the process group's
        # threads must be joined while Python is alive, or a worker aborts at exit
        dist_util.shutdown()


def _lock_run(run_dir: Path, held: contextlib.ExitStack) -> RunLock:
    """Hold the run's lock until training ends; a run resumed must be sealed (no link inside it).

    What a killed writer left half-written is cleared later (``_start_run``), once the resume is
    accepted: a refused command deletes nothing.
    """
    from gencli.runs import check_sealed

    lock = held.enter_context(RunLock(run_dir))
    check_sealed(run_dir)
    return lock


def _start_run(run_dir: Path, lock: RunLock | None) -> None:
    """Training starts now: clear a killed writer's leftovers and keep this process's id in the lock."""
    ckpt.remove_partial_writes(run_dir)
    if lock is not None:
        lock.keep()


def _train(config: TrainConfig, display, info_dist: dist_util.DistInfo, device: torch.device,
           held: contextlib.ExitStack) -> Path:
    if config.tensorboard:
        from gencli.training.tensorboard import require_tensorboard

        require_tensorboard()  # fail before any data is loaded
    lock = None
    if config.resume is not None and info_dist.is_main and Path(config.resume).is_dir():
        lock = _lock_run(Path(config.resume), held)  # before the checkpoint to resume is chosen: nobody prunes it now
    plan = _plan_resume(config) if config.resume else _plan_new(config)
    info, t = plan.info, plan.info["training"]
    precision = check_precision(t["precision"] if config.resume else config.precision or "fp32", device)
    t["precision"] = precision
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    torch.manual_seed(t["seed"])
    image_shape = tuple(info["data"]["image_shape"])
    model: Model = build_model(plan.cls, plan.hp, image_shape, info["data"]["classes"], device, precision)
    info["hyperparameters"] = hparams.to_dict(model.hp)  # models may record settings derived while building
    if config.sync_bn:
        check_sync_bn(device)
    if config.sync_bn and info_dist.enabled:
        for k, net in model.nets.items():
            model.nets[k] = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if info_dist.enabled:
        model.process_group = torch.distributed.group.WORLD
        model.rank, model.world_size = info_dist.rank, info_dist.world_size
        dist_util.broadcast_model(model)
    if device.type == "cuda" or (device.type == "cpu" and plan.cls.cpu_channels_last_training):
        for net in model.nets.values():  # oneDNN and cuDNN convolutions run fastest channels-last
            net.to(memory_format=torch.channels_last)
    if config.compile:
        compile_networks(model, config.quiet)

    load_size = info["data"].get("load_size")
    stream = BatchStream(plan.data, t["batch_size"], device, t["seed"], info_dist.rank, info_dist.world_size,
                         crop_size=image_shape[1] if load_size else None, flip=plan.cls.augment_flip)
    # An epoch stays one pass over the data: a model that consumes k batches a step takes 1/k the steps.
    total = _total_steps(t, len(stream) / batches_per_step(model), plan.cls.defaults.steps)
    if total > settings.MAX_STEPS:
        raise UserError(f"--epochs {t.get('epochs')} is {total:,} steps of this data, more than the "
                        f"{settings.MAX_STEPS:,} a run may train; use fewer epochs")
    epoch, batch_index = 0, 0
    window: dict[str, Any] = {}
    if plan.resume_from is not None:
        ckpt.load_weights(plan.resume_from, model)
        state = ckpt.load_training_state(plan.resume_from, model)
        epoch, batch_index = int(state["epoch"]), int(state["batch_in_epoch"])
        if batch_index >= len(stream):  # an epoch has len(stream) batches: a later one would never come
            if info.get("world_size", info_dist.world_size) == info_dist.world_size:
                raise UserError(f"{str(plan.resume_from / 'state.pt')!r} is damaged: batch_in_epoch must be below "
                                f"the {len(stream):,} batches of an epoch, got {batch_index:,}")
            epoch, batch_index = epoch + 1, 0  # fewer batches per process than the run had: the epoch is done
        window = state.get("loop", {}).get("losses", {})
        # a run stopped between its final checkpoint and its last files is finished, not refused
        unfinished = model.step == total and info.get("status") != "finished"
        if model.step >= total and not unfinished:
            raise UserError(
                f"run {str(plan.run_dir)!r} already reached step {model.step} of {total}; "
                f"pass --steps N with N > {model.step} to train further"
            )
        info.setdefault("resumes", []).append({"step": model.step, "device": str(device), "changed": plan.changes,
                                               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    # before the run is written to: a file they cannot load ends the command with the run unchanged
    preview_inputs = model.preview_inputs(_preview_data(plan, model), t.get("sample_count", config.sample_count), t["seed"])
    probe = _quality_probe(plan, model) if info_dist.is_main else None
    # measured last, so the load it sees is the one training starts into
    threads = ThreadPolicy.start(device.type, info_dist.world_size)
    run_dir = plan.run_dir
    if info_dist.is_main:
        if run_dir is None:
            run_dir = new_run_dir(info["model"], info["data"]["spec"], config.out)
            lock = _lock_run(run_dir, held)
            _start_run(run_dir, lock)
        else:
            _start_run(run_dir, lock)
            truncate_rows(run_dir / METRICS_FILE, model.step)
        info["status"] = "running"
        info["total_steps"] = total
        info["device"] = str(device)
        info["threads"] = threads.chosen
        info["thread_choice"] = threads.record()
        info["world_size"] = info_dist.world_size
        write_run_info(run_dir, info)
    run_dir = Path(dist_util.broadcast_object(str(run_dir) if run_dir else None, info_dist))

    loop = _Loop(model, stream, run_dir, info, total, info_dist, config, preview_inputs, probe, threads)
    loop.tracker.restore(window, device)
    try:
        loop.run(epoch, batch_index, display)
    finally:
        model.process_group = None  # nothing may keep the group alive past shutdown()
        dist_util.shutdown()
    return run_dir


def build_model(cls: type, hp: Any, image_shape: tuple, classes: Any, device: torch.device, precision: str) -> Model:
    """Build ``cls`` on ``device``; hyperparameters too large for its memory end in one line, not an allocator error.

    The networks are first built on torch's "meta" device, which allocates nothing, to count their
    parameters: training holds them about four times over (weights, gradients, two optimizer moments).
    """
    way_out = f"use smaller hyperparameters (`gencli models --info {cls.name}` lists them)"
    what = f"training {cls.name!r} with these hyperparameters"
    free = _device_memory(device)
    if free is not None:
        try:
            with torch.random.fork_rng(devices=[]), torch.device("meta"):
                probe = cls(hp, image_shape, classes, device="meta", precision="fp32")
            nbytes = sum(t.numel() * t.element_size() for net in probe.nets.values()
                         for t in (*net.parameters(), *net.buffers()))
            del probe
        except UserError:
            raise
        except Exception:  # noqa: BLE001 - a model that cannot be built on "meta" is built for real and counted then
            nbytes = 0
        if nbytes * 4 > free:
            from gencli.data.base import _gib

            raise UserError(f"{what} would need {_gib(nbytes * 4)} of memory, more than the {_gib(free)} available "
                            f"on {device.type}; {way_out}")
    try:
        return cls(hp, image_shape, classes, device=device, precision=precision)
    except (MemoryError, torch.OutOfMemoryError) as exc:
        raise UserError(f"{what} does not fit in {device.type} memory ({type(exc).__name__}); {way_out}") from None
    except RuntimeError as exc:
        if "allocate" not in str(exc):
            raise
        raise UserError(f"{what} does not fit in {device.type} memory; {way_out}") from None


def _device_memory(device: torch.device) -> int | None:
    """Free bytes where ``device``'s tensors live (None where unknown)."""
    if device.type == "cpu":
        from gencli.data.base import available_memory

        return available_memory()
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0]
        except RuntimeError:
            return None
    return None


def compile_networks(model: Model, quiet: bool = False) -> bool:
    """``torch.compile`` each network in place; warn in one line and stay eager where that cannot work.

    ``nn.Module.compile`` is lazy: a missing backend (no C++ compiler for CPU code, no Triton for
    CUDA) would only surface at the first forward pass, as a long traceback per compiled frame. A
    tiny function compiled and run on the model's device first finds that out before training.
    """
    import logging

    import torch._dynamo

    if model.device.type != "cuda":  # a CUDA build on a machine without CUDA says so on every compile
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        probe = torch.compile(lambda x: torch.nn.functional.silu(x) * 2 + 1, dynamic=False)
        probe(torch.ones(8, device=model.device))
    except Exception as exc:  # noqa: BLE001 - any backend failure means: train eagerly
        from gencli.ui.console import warn

        reason = (str(exc).strip().splitlines() or [""])[0]
        warn(f"--compile unavailable on {model.device.type} ({type(exc).__name__}: {reason}); training without it")
        return False
    torch._dynamo.config.suppress_errors = True  # a graph the backend cannot take runs eagerly
    eager = model.eager_networks()
    for name, net in model.nets.items():
        if name not in eager:
            net.compile()
    if eager:
        from gencli.ui.console import info

        info(f"--compile leaves {', '.join(sorted(eager))} eager: {model.name} trains {'them' if len(eager) > 1 else 'it'} "
             "through gradients of gradients, which torch.compile cannot differentiate", quiet)
    return True


class _Loop:
    """The training loop and what it writes at its intervals."""

    def __init__(self, model, stream, run_dir, info, total, dist_info, config, preview_inputs, probe=None,
                 threads: ThreadPolicy | None = None) -> None:
        self.model, self.stream, self.run_dir, self.info = model, stream, run_dir, info
        self.threads = threads
        self.total, self.dist, self.config = total, dist_info, config
        self.preview_inputs = preview_inputs
        t = info["training"]
        steps_per_epoch = len(stream) / batches_per_step(model)
        self.sample_every = interval_steps(t["sample_every"], steps_per_epoch, "sample_every")
        self.checkpoint_every = interval_steps(t["checkpoint_every"], steps_per_epoch, "checkpoint_every")
        self.probe = probe
        self.eval_every = interval_steps(t["eval_every"], steps_per_epoch, "eval_every") if probe else 0
        self.eval_seconds = 0.0  # spent probing: not training time
        self.log_every, self.keep = t.get("log_every", 10), t.get("keep_checkpoints", 3)
        self.tracker = LossTracker()
        self.last_losses: dict[str, float] = {}
        self.epoch, self.next_batch = 0, 0
        self.start_step = model.step
        self.started = time.perf_counter()
        self.tensorboard = None
        self.interrupt: Interrupt | None = None
        self.stop_agreed = False  # data parallel: some process saw a Ctrl-C by the last agreement
        self.saved_step = -1
        if config.tensorboard and dist_info.is_main:
            from gencli.training.tensorboard import TensorBoardLogger

            sealed(run_dir, "tensorboard", "folder")
            self.tensorboard = TensorBoardLogger.for_run(run_dir, start_step=model.step)
            self.tensorboard.log_run(info, model.step)

    # -- what happens at intervals
    def check_finite(self) -> None:
        """Raise NonFiniteLoss for the first non-finite loss since the last log line, on any process."""
        bad = self.tracker.first_non_finite()
        if self.dist.enabled:
            # one all-reduce agrees on a non-finite loss anywhere and on a Ctrl-C seen anywhere
            interrupted = self.interrupt is not None and self.interrupt.requested
            flag = torch.tensor([bad[1] if bad else -1, int(interrupted)], device=self.model.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            bad_step, self.stop_agreed = flag.tolist()
            if bad_step >= 0 and bad is None:
                bad = ("loss on another process", int(bad_step))
        if bad is not None:
            raise NonFiniteLoss(*bad)

    def log(self, display) -> None:
        if self.tracker.count == 0:
            return
        self.check_finite()
        losses, rate = self.tracker.flush(self.dist)
        self.last_losses = losses
        done = self.model.step - self.start_step
        elapsed = time.perf_counter() - self.started
        eta = (self.total - self.model.step) * elapsed / max(done, 1)
        if self.dist.is_main:
            row = {"step": self.model.step, "epoch": self.epoch, **{k: round(v, 6) for k, v in losses.items()},
                   "images_per_s": round(rate, 1)}
            append_line(self.run_dir / METRICS_FILE, json.dumps(row))
            if self.tensorboard is not None:
                self.tensorboard.log_losses(self.model.step, losses, rate)
            if display is not None:
                display.update(self.model.step, self.epoch, losses, rate, eta, force=self.model.step >= self.total)
        # the interval just trained is the load sample: reading it costs two small file reads
        if self.threads is not None and self.threads.recheck(self.model.step):
            change = self.threads.changes[-1]
            self.info["thread_choice"] = self.threads.record()
            if display is not None and self.dist.is_main:
                display.note(f"CPU threads {change['from']} -> {change['threads']} ({change['reason']})")

    def sample(self, display) -> None:
        if not self.dist.is_main:
            return
        from gencli.media.images import save_grid

        model = self.model
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            images, nrow = model.preview(self.preview_inputs)
            model.train()
        path = self.run_dir / "samples" / f"step-{model.step:08d}.png"
        with naming(path):
            save_grid(images.float(), sealed(self.run_dir, path.relative_to(self.run_dir), create=True), nrow)
        if self.tensorboard is not None:
            self.tensorboard.log_samples(model.step, images, nrow)
        if display is not None:
            display.note(f"samples: {path}")

    def evaluate(self, display) -> None:
        """Score samples with the quality probe and log them as a ``{"step", "quality"}`` line.

        The line carries the training seconds so far (this process, probes excluded), so curves
        can be read against time. The probe draws from its own seeded generator inside a forked
        RNG: a run with probes follows the same trajectory as one without.
        """
        if self.probe is None or not self.dist.is_main:
            return
        from gencli.metrics.probe import summary

        began = time.perf_counter()
        model = self.model
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            try:
                values = self.probe(model)
            finally:
                model.train()
        self.eval_seconds += time.perf_counter() - began
        seconds = time.perf_counter() - self.started - self.eval_seconds
        row = {"step": model.step, "epoch": self.epoch, "quality": {k: round(v, 6) for k, v in values.items()},
               "train_s": round(seconds, 2), "eval_s": round(time.perf_counter() - began, 2)}
        append_line(self.run_dir / METRICS_FILE, json.dumps(row))
        if self.tensorboard is not None:
            self.tensorboard.log_quality(model.step, values)
        if display is not None:
            display.note(f"quality at step {model.step}: {summary(values)}")

    def checkpoint(self, display, stopping: bool = False) -> None:
        """Save the training state, ending a log window with a line as an unbroken run does there.

        A Ctrl-C stop between checkpoint steps writes no line, which an unbroken run would not
        have: the losses summed since the last line travel in the checkpoint instead, so the
        resumed run writes the very lines of an unbroken one.
        """
        if self.saved_step == self.model.step:  # a Ctrl-C right after a checkpoint step
            return
        if stopping:
            if self.tracker.count:
                self.check_finite()  # a non-finite loss must never reach a checkpoint
            window = self.tracker.window(self.dist)
        else:
            self.log(display)  # which raises first for a non-finite loss: it must never reach a checkpoint
            window = {}
        self.saved_step = self.model.step
        if not self.dist.is_main:
            return
        path = ckpt.save_checkpoint(self.run_dir, self.model, self.epoch, self.next_batch, keep=self.keep,
                                    loop_state={"losses": window})
        self.info["step"] = self.model.step
        write_run_info(self.run_dir, self.info)
        if display is not None:
            display.note(f"checkpoint: {path}")

    def finish_media(self) -> None:
        if not self.dist.is_main:
            return
        if self.tensorboard is not None:
            self.tensorboard.flush()
        from gencli.media.images import progress_gif
        from gencli.media.loss_curves import plot_losses
        from gencli.runs import read_training_rows

        run = self.run_dir
        frames = sorted(sealed(run, "samples", "folder").glob("step-*.png"))
        frames = [sealed(run, f"samples/{f.name}") for f in frames if int(f.stem.split("-")[1]) <= self.model.step]
        with naming(run / "progress.gif"):
            progress_gif(frames, sealed(run, "progress.gif"),
                         steps_per_epoch=len(self.stream) / batches_per_step(self.model))
        with naming(run / "losses.png"):
            plot_losses(read_training_rows(run / METRICS_FILE), sealed(run, "losses.png"), title=run.name)

    def set_status(self, status: str, **extra) -> None:
        if self.dist.is_main:
            self.info.update(status=status, **extra)
            write_run_info(self.run_dir, self.info)
            if status in ("finished", "interrupted"):  # the model card, from the run's record as it now stands
                write_model_card(Run(self.run_dir, self.info, ckpt.latest_checkpoint(self.run_dir)))

    def stopping(self) -> bool:
        """Whether to stop for a Ctrl-C now. Processes of a data-parallel run stop together, at the
        first log or checkpoint step after any of them saw it, so their collectives stay in step."""
        if self.dist.enabled:
            return bool(self.stop_agreed)
        return self.interrupt is not None and self.interrupt.requested

    # -- the loop
    def run(self, epoch: int, batch_index: int, display) -> None:
        try:
            self._run(epoch, batch_index, display)
        except OSError as exc:
            failure = write_failure(exc)
            if failure is None:
                raise
            self.stop_for_write_failure(exc.filename, *failure)

    def stop_for_write_failure(self, path: str | None, cause: str, remedy: str) -> None:
        """Mark the run failed where run.json can still be written, and say what to do in one line."""
        try:
            self.set_status("failed", failed_step=self.model.step, reason=f"cannot write {path}: {cause}")
        except OSError:
            pass  # the disk that refused one file may refuse this one too: the status stays "running"
        last = ckpt.latest_checkpoint(self.run_dir) if self.dist.is_main else None
        if last is None:
            way_out = f"{remedy} and train again: no checkpoint was written"
        else:
            way_out = f"{remedy}, then continue from {last.name} with: gencli train --resume {self.run_dir}"
        raise UserError(f"cannot write {path!r}: {cause}; training stopped at step {self.model.step}; {way_out}")

    def _run(self, epoch: int, batch_index: int, display) -> None:
        from gencli.ui.live import TrainDisplay

        model = self.model
        title = f"{model.name} on {self.info['data']['spec']}  ->  {self.run_dir}"
        display = display or TrainDisplay(title, self.total, quiet=self.config.quiet or not self.dist.is_main)
        self.epoch, self.next_batch = epoch, batch_index
        model.train()
        per_step = batches_per_step(model)
        # The batches of the step being gathered; a step may span the end of an epoch. Checkpoints
        # fall between steps only, so (epoch, next batch) always points just past a whole step.
        group: list = []
        interrupted = False
        with display, Interrupt() as interrupt:
            self.interrupt = interrupt
            try:
                if self.probe is not None and model.step == 0:
                    self.evaluate(display)  # where the curve starts; a wrong network fails here, not later
                while model.step < self.total and not self.stopping():
                    for batch in self.stream.epoch(self.epoch, start=self.next_batch):
                        self.next_batch += 1
                        if self.next_batch >= len(self.stream):
                            self.epoch, self.next_batch = self.epoch + 1, 0
                        group.append(batch)
                        if len(group) < per_step:
                            continue
                        losses = model.train_step(group if per_step > 1 else batch)
                        images = sum(len(b) for b in group)
                        group = []
                        model.step += 1
                        self.tracker.add(losses, model.step, images)
                        last = model.step >= self.total
                        if model.step % self.log_every == 0 or last:
                            self.log(display)
                        if model.step % self.sample_every == 0 or last:
                            self.sample(display)
                        if self.eval_every and (model.step % self.eval_every == 0 or last):
                            self.evaluate(display)
                        if model.step % self.checkpoint_every == 0 or last:
                            self.checkpoint(display)
                        if last or self.stopping():
                            break
                    else:
                        continue
                    break
            except BadLoss as exc:
                name, value, step = exc.args
                self.set_status("failed", failed_step=step)
                shown = repr(value) if len(repr(value)) <= 40 else type(value).__name__
                if torch.is_tensor(value):
                    shown = f"a tensor of shape {tuple(value.shape)}"
                raise UserError(f"model {model.name!r} returned {name!r} = {shown} from train_step at step {step}: a "
                                "loss must be a number or a one-element tensor (a bug in the model's plugin)") from None
            except NonFiniteLoss as exc:
                name, step = exc.args
                self.finish_media()
                self.set_status("failed", failed_step=step)
                last = ckpt.latest_checkpoint(self.run_dir) if self.dist.is_main else None
                where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
                raise UserError(f"loss {name!r} became non-finite at step {step}; training stopped, {where}") from None
            if self.stopping() and model.step < self.total:
                self.checkpoint(display, stopping=True)
                self.finish_media()
                self.set_status("interrupted")
                if display is not None:
                    display.note(f"interrupted at step {model.step}; continue with: gencli train --resume {self.run_dir}")
                interrupted = True
        if interrupted:  # raised once the display is closed, so the message is the last line
            raise Interrupted(f"interrupted at step {model.step}; continue with: gencli train --resume {self.run_dir}")
        self.finish_media()
        final_losses = self.last_losses or _logged_losses(self.run_dir / METRICS_FILE, model.step)
        self.set_status("finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), final_losses=final_losses)
        if self.tensorboard is not None:
            self.tensorboard.close()


def _logged_losses(path: Path, step: int) -> dict[str, float]:
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
