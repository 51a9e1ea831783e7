"""The training settings as flags and TOML files give them: checked by the table of ``gencli.runs.values``.

The same rules hold wherever a value comes from: a command-line flag (``--batch-size 0``), a
TOML config's top level (``batch_size = 0``) or code calling the engine. A whole number is an
int and never a bool (TOML's ``true`` is not 1) nor a float (``steps = 3.5`` is refused, not
rounded); a string is a string; bounds are checked before anything is built or allocated.

Every setting is then decided once, by ``resolve``: from what was asked for (``TrainConfig``: the
flags or code, and the TOML file it names), the run a model trains on (``--from``), the model's
defaults and, on resume, the run's recorded values, into one frozen ``TrainSettings``. Nothing
downstream reads those sources again; ``tests/test_settings_precedence.py`` is the table of rules.

No torch here: the command layer may check values before importing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.runs.values import (  # noqa: F401 - the rules live beside the run that records the values
    DEVICE_NAME,
    EPOCH_SUFFIX,
    MAX_BATCH_SIZE,
    MAX_CHANNELS,
    MAX_EPOCHS,
    MAX_IMAGE_SIZE,
    MAX_SEED,
    MAX_STEPS,
    PRECISIONS,
    SETTINGS,
    Setting,
    check_flag,
    problem,
    shown_number,
)


def check_file_value(key: str, value: Any, path: str) -> Any:
    """Return ``value`` for top-level key ``key`` of TOML file ``path``, or raise ``UserError`` naming both."""
    setting = SETTINGS[key]
    wrong = problem(setting, value)
    if wrong:
        like = f" (as for {setting.flag})" if setting.cli is not None else ""
        raise UserError(f"{key} = {_toml(value)} in {path!r}: {wrong}{like}")
    return float(value) if setting.kind is float else value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # TOML's basic string escapes; a newline stays on the line
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return shown_number(value)


# ----------------------------------------------------------------------------- deciding the settings once
# What a model trains on when no --data is given, by the kind of data it takes.
DEFAULT_DATA = {"images": "shapes", "labelled": "shapes", "paired": "shapes-paired", "unpaired": "shapes-unpaired"}
# Settings a TOML config may hold at its top level (the rest go in [hyperparameters]).
CONFIG_KEYS = (*SETTINGS, "log")
# What may change on resume (the new value is recorded in run.json), besides --device and --compile,
# which a run does not keep. The rest of what made the run (model, data, image shape, batch size,
# hyperparameters, precision, seed, the run it trained on) is refused by name: the checkpoint would
# not fit it, or training would follow another trajectory from it.
CHANGEABLE_ON_RESUME = ("steps", "epochs", "sample_every", "checkpoint_every", "log_every", "keep_checkpoints")
LOG_EVERY, KEEP_CHECKPOINTS, EVAL_N, SAMPLE_COUNT = 10, 3, 1000, 36


@dataclass
class TrainConfig:
    """What was asked for: the flags (or code calling the engine) and the TOML file they name.

    Nothing here is decided yet: ``resolve`` turns it into a ``TrainSettings``. ``None`` means not
    given; so do ``device="auto"`` and ``compile=False``, the flags' defaults, which a config
    file's value replaces.
    """

    model: str | None = None  # None or "": the config file's, or the resumed run's
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
    log_every: int | None = None  # None: 10
    keep_checkpoints: int | None = None  # None: 3
    compile: bool = False
    sync_bn: bool = False
    tensorboard: bool = False
    log: tuple[str, ...] | list[str] | str | None = None  # --log a,b / TOML log = [...]: loggers (gencli.loggers)
    quiet: bool = False
    sample_count: int = SAMPLE_COUNT
    # Sample quality while training: every ``eval_every`` steps (or "Nep"), ``eval_n`` images are
    # scored on the held-out split by FID on ``eval_features`` and, for a conditional model, class
    # accuracy by ``eval_classifier`` (TorchScript files); see gencli.metrics.probe.
    eval_every: int | str | None = None
    eval_features: str | None = None
    eval_classifier: str | None = None
    eval_n: int | None = None  # None: 1000
    config_file: Path | None = None  # `--config FILE`: its values stand where the flags give none


def check_settings(config: TrainConfig) -> None:
    """Refuse any setting of ``config`` its flag would refuse, before anything is resolved or built."""
    for key in SETTINGS:
        value = getattr(config, key)
        if key == "model" and not value:
            continue  # the config file or the resumed run names the model; ``resolve`` says when none does
        if key in ("precision", "device") and isinstance(value, str) and value.strip():
            continue  # resolve_device and check_precision say more (what is available here)
        check_flag(key, value)
    if config.log:
        from gencli import loggers

        loggers.check(loggers.requested(config.log))


def read_config_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (top-level settings, [hyperparameters] table) of TOML file ``path``, each value checked
    by the rules of its flag and a mistake named with the file."""
    from gencli.models import hparams

    raw = hparams.read_config(path)
    hyper = raw.pop("hyperparameters", {})
    log = raw.pop("log", None)
    unknown = [k for k in raw if k not in CONFIG_KEYS]
    if unknown:
        from gencli.errors import did_you_mean

        raise UserError(f"unknown setting {unknown[0]!r} in {str(path)!r}{did_you_mean(unknown[0], CONFIG_KEYS)}; "
                        "hyperparameters belong in a [hyperparameters] table")
    if not isinstance(hyper, dict):
        raise UserError(f"[hyperparameters] in {str(path)!r} must be a table")
    values = {key: check_file_value(key, value, str(path)) for key, value in raw.items()}
    if log is not None:
        if not isinstance(log, list) or not all(isinstance(v, str) and v.strip() for v in log):
            raise UserError(f"log = {_toml(log)} in {str(path)!r}: must be a list of logger names, "
                            'like log = ["tensorboard"]')
        values["log"] = log
    return values, hyper


def _under_flags(given: dict[str, Any], file_values: dict[str, Any]) -> dict[str, Any]:
    """The file's settings with the flags' over them; a run length on the command line replaces the file's."""
    merged = dict(file_values)
    if "steps" in given or "epochs" in given:
        merged.pop("steps", None)
        merged.pop("epochs", None)
    merged.update(given)
    return merged


def _hyperparameters_under_flags(flags: dict[str, Any], sources: dict[str, str], table: dict[str, Any],
                                 path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's [hyperparameters] with --set over them, and where each value came from."""
    where = f"[hyperparameters] in {str(path)!r}"
    return {**table, **flags}, {**sources, **{k: where for k in table if k not in flags}}


def merge_config_file(values: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Return training options from a TOML file, with ``values`` (as flags give them) taking precedence.

    The same rules as ``resolve`` applies to ``TrainConfig.config_file``: each top-level value is
    checked as its flag would be, naming the file; ``override_sources`` says which hyperparameters
    came from the file's [hyperparameters] table, for error messages.
    """
    file_values, table = read_config_file(path)
    given = {k: v for k, v in values.items() if v is not None and k not in ("overrides", "override_sources")}
    merged = _under_flags(given, file_values)
    merged["overrides"], merged["override_sources"] = _hyperparameters_under_flags(
        values.get("overrides", {}), values.get("override_sources", {}), table, path)
    return merged


def _given(key: str, value: Any) -> bool:
    """Whether the flag (or the code calling the engine) gave ``key``: a flag's default is not given."""
    if value is None or value == "":  # "": no MODEL on the command line (the file's or the run's stands)
        return False
    return not (key == "device" and value == "auto") and not (key == "compile" and value is False)


@dataclass(frozen=True)
class TrainSettings:
    """Every training setting, decided once by ``resolve``: nothing downstream reads a flag, the
    TOML file, the source run or the model's defaults again."""

    model: str  # as run.json records it ("plugin:name" for a shadowed model, so it reloads as itself)
    model_class: type
    hyperparameters: Any  # the model's Hyperparameters, before ``fit_to_data`` (new runs only)
    given_hyperparameters: frozenset[str]  # those the user set, which fitting never changes
    data: str
    image_size: int
    channels: int
    batch_size: int
    steps: int | None  # as asked; ``total_steps`` decides the count
    epochs: int | None
    default_steps: int  # the model's, when neither is given
    seed: int
    precision: str
    device: str
    compile: bool
    sample_every: int | str
    checkpoint_every: int | str
    log_every: int
    keep_checkpoints: int
    sample_count: int
    eval_every: int | str | None
    eval_n: int
    eval_features: str | None
    eval_classifier: str | None
    source_run: str | None
    out: Path | None
    resume: Path | None
    sync_bn: bool = False
    tensorboard: bool = False
    quiet: bool = False
    changes: dict[str, Any] = field(default_factory=dict)  # on resume: what it changed, for run.json
    log: tuple[str, ...] = ()  # the loggers (experiment trackers) the run sends its values to

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.channels, self.image_size, self.image_size

    def total_steps(self, steps_per_epoch: float) -> int:
        """The steps the run trains in all: --steps, --epochs of this data, or the model's default."""
        if self.steps:
            return self.steps
        if not self.epochs:
            return self.default_steps
        total = max(1, int(self.epochs * steps_per_epoch))
        if total > MAX_STEPS:
            raise UserError(f"--epochs {self.epochs} is {total:,} steps of this data, more than the "
                            f"{MAX_STEPS:,} a run may train; use fewer epochs")
        return total

    def training_record(self) -> dict[str, Any]:
        """The ``training`` table of a new run's run.json."""
        probe = {} if self.eval_every is None else {
            "eval_every": self.eval_every, "eval_n": self.eval_n,
            **{k: v for k, v in (("eval_features", self.eval_features), ("eval_classifier", self.eval_classifier))
               if v is not None}}
        return {"steps": self.steps, "epochs": self.epochs, "batch_size": self.batch_size, "seed": self.seed,
                "precision": self.precision, "sample_every": self.sample_every,
                "checkpoint_every": self.checkpoint_every, "log_every": self.log_every,
                "keep_checkpoints": self.keep_checkpoints, "sample_count": self.sample_count, **probe}


def resolve(config: TrainConfig, model_class: Callable[[str], type], source: Any = None,
            recorded: Any = None) -> TrainSettings:
    """Decide every training setting, once, from all that may set it.

    The sources, by precedence: the flags (``config``, as code or the command line gives them),
    then ``config.config_file``'s values, then for a new run the run it trains on (``source``, a
    ``gencli.runs.Run`` for ``--from``) and the model's defaults (``model_class(name).defaults``).
    On resume (``recorded``: the run, a ``gencli.runs.Run`` its planner has read and checked) its
    recorded values stand: a flag may change only what
    ``CHANGEABLE_ON_RESUME`` names (and the device and compile, which a run does not keep); any
    other that differs from the run's is refused by name. ``tests/test_settings_precedence.py``
    holds the table.
    """
    asked = {k: getattr(config, k) for k in SETTINGS if _given(k, getattr(config, k))}
    hyper, sources = dict(config.overrides), dict(config.override_sources)
    if config.config_file is not None:
        file_values, table = read_config_file(config.config_file)
        asked = _under_flags(asked, file_values)
        hyper, sources = _hyperparameters_under_flags(hyper, sources, table, config.config_file)
    if "lr" in asked:  # --lr (or a config's top-level lr) replaces any other
        hyper["lr"], sources["lr"] = asked["lr"], "--lr"
    if recorded is not None:
        return _resolve_resume(config, asked, hyper, sources, model_class, recorded)
    if "steps" in asked and "epochs" in asked:
        raise UserError("give --steps or --epochs, not both")
    if not asked.get("model"):
        raise UserError("name a model to train (see `gencli models`), or --resume RUN")
    from gencli.models import hparams

    cls = model_class(asked["model"])
    d = cls.defaults
    if source is not None:
        # the model records what it needs of the source before its hyperparameters are checked
        hp = cls.train_from(hparams.build(cls.Hyperparameters, hyper, sources, validate=False), source)
        hparams.check(hp)
    else:
        hp = hparams.build(cls.Hyperparameters, hyper, sources)
    # a model trained on top of another run defaults to that run's data and image shape
    image_size = asked.get("image_size") or (source.image_shape[1] if source else None) or d.image_size
    channels = asked.get("channels") or (source.image_shape[0] if source else None) or d.channels
    cls.check_shape(image_size, channels)
    epochs = asked.get("epochs")
    return TrainSettings(
        model=asked["model"] if ":" in asked["model"] else cls.name, model_class=cls, hyperparameters=hp,
        given_hyperparameters=frozenset(hyper), image_size=image_size, channels=channels,
        data=asked.get("data") or (source.data_spec if source else None) or DEFAULT_DATA[cls.data],
        batch_size=asked.get("batch_size") or d.batch_size, steps=asked.get("steps"), epochs=epochs,
        default_steps=d.steps, seed=asked.get("seed") or 0, precision=asked.get("precision") or "fp32",
        device=asked.get("device", "auto"), compile=asked.get("compile", False),
        # a run measured in epochs samples once an epoch unless told otherwise
        sample_every=asked.get("sample_every") or (f"1{EPOCH_SUFFIX}" if epochs else d.sample_every),
        checkpoint_every=asked.get("checkpoint_every") or d.checkpoint_every,
        log_every=asked.get("log_every", LOG_EVERY), keep_checkpoints=asked.get("keep_checkpoints", KEEP_CHECKPOINTS),
        sample_count=config.sample_count, **_probe_settings(asked), source_run=str(source.dir) if source else None,
        out=config.out, resume=None, sync_bn=config.sync_bn, tensorboard=config.tensorboard, quiet=config.quiet,
        log=_loggers(config, asked))


def _loggers(config: TrainConfig, asked: dict[str, Any], run: Any = None) -> tuple[str, ...]:
    """The loggers asked for (``--log``, else the file's ``log``; ``--tensorboard`` adds one), checked; on
    resume, when none is asked for, those the run records that can log here."""
    from gencli import loggers

    names = loggers.requested(config.log) or loggers.requested(asked.get("log"))
    names = loggers.requested((*names, *(("tensorboard",) if config.tensorboard else ())))
    if not names and run is not None:
        return loggers.usable(loggers.recorded(run.info), f"run {str(run.dir)!r}")
    return loggers.check(names)


def _probe_settings(asked: dict[str, Any]) -> dict[str, Any]:
    """The quality-probe settings of a new run (``eval_every``; none when it does not probe)."""
    every, files = asked.get("eval_every"), {k: asked.get(k) for k in ("eval_features", "eval_classifier")}
    if every is None:
        if any(files.values()):
            raise UserError("--eval-features and --eval-classifier need --eval-every (how often to score)")
        return {"eval_every": None, "eval_n": EVAL_N, "eval_features": None, "eval_classifier": None}
    # recorded absolute, so a resumed run finds the files wherever it is started from
    files = {k: str(Path(v).expanduser().resolve()) if v is not None else None for k, v in files.items()}
    return {"eval_every": every, "eval_n": asked.get("eval_n", EVAL_N), **files}


def _resolve_resume(config: TrainConfig, asked: dict[str, Any], hyper: dict[str, Any], sources: dict[str, str],
                    model_class: Callable[[str], type], run: Any) -> TrainSettings:
    cls = run.model_class()
    hp = run.hyperparameters_for(cls, str(run.info_path))
    _refuse_resume_changes(config, asked, hyper, sources, model_class, run, cls)
    recorded = run.training_settings
    changes: dict[str, Any] = {}
    if "steps" in asked or "epochs" in asked:
        if "steps" in asked and "epochs" in asked:
            raise UserError("give --steps or --epochs, not both")
        changes.update(steps=asked.get("steps"), epochs=asked.get("epochs"))
    changes.update({k: asked[k] for k in CHANGEABLE_ON_RESUME[2:] if k in asked})
    changes = {k: v for k, v in changes.items() if recorded.get(k) != v}
    now = {**recorded, **changes}
    channels, image_size, _ = run.image_shape
    return TrainSettings(
        model=run.model_name, model_class=cls, hyperparameters=hp, given_hyperparameters=frozenset(),
        data=run.data_spec, channels=channels, image_size=image_size, batch_size=run.batch_size,
        steps=now.get("steps"), epochs=now.get("epochs"), default_steps=cls.defaults.steps, seed=run.seed,
        precision=run.precision, device=asked.get("device", "auto"), compile=asked.get("compile", False),
        sample_every=now["sample_every"], checkpoint_every=now["checkpoint_every"],
        log_every=now.get("log_every") or LOG_EVERY, keep_checkpoints=now.get("keep_checkpoints") or KEEP_CHECKPOINTS,
        sample_count=run.setting("sample_count", config.sample_count), eval_every=run.setting("eval_every"),
        eval_n=run.setting("eval_n", EVAL_N), eval_features=run.setting("eval_features"),
        eval_classifier=run.setting("eval_classifier"), source_run=run.source_run, out=None, resume=run.dir,
        sync_bn=config.sync_bn, tensorboard=config.tensorboard, quiet=config.quiet, changes=changes,
        log=_loggers(config, asked, run))


def _refuse_resume_changes(config: TrainConfig, asked: dict[str, Any], hyper: dict[str, Any], sources: dict[str, str],
                           model_class: Callable[[str], type], run: Any, cls: type) -> None:
    """Refuse, by flag, a setting asked for that differs from the run's and cannot change on resume."""
    from gencli.models import hparams

    def refuse(flag: str, was: str) -> None:
        raise UserError(f"{flag} cannot change on --resume: the run {was}; start a new run to change it "
                        f"(on resume only {', '.join('--' + k.replace('_', '-') for k in CHANGEABLE_ON_RESUME[:4])}"
                        ", --device and --compile may change)")

    if config.source is not None:
        refuse("--from", f"trained on top of {run.source_run or 'no other run'!r}")
    if config.out is not None and Path(config.out).resolve() != Path(run.dir).resolve():
        raise UserError(f"--out cannot be combined with --resume: a resumed run stays in {str(run.dir)!r}")
    model = asked.get("model")
    if model and model != run.model_name and model_class(model) is not cls:
        refuse("MODEL", f"trains {run.model_name!r}")
    channels, size, _ = run.image_shape
    if "data" in asked and not same_data(asked["data"], run.data_spec):
        refuse("--data", f"trained on {run.data_spec!r}")
    if asked.get("image_size", size) != size:
        refuse("--image-size", f"trained at {size} px")
    if asked.get("channels", channels) != channels:
        refuse("--channels", f"trained on {channels} channel(s)")
    if asked.get("batch_size", run.batch_size) != run.batch_size:
        refuse("--batch-size", f"trained with batches of {run.batch_size}")
    if asked.get("precision", run.precision) != run.precision:
        refuse("--precision", f"trained in {run.precision}")
    if asked.get("seed", run.seed) != run.seed:
        refuse("--seed", f"trained with seed {run.seed}")
    if hyper:
        was = run.hyperparameters
        wanted = hparams.to_dict(hparams.build(cls.Hyperparameters, {**was, **hyper},
                                               {k: "run.json" for k in was} | sources))
        for key in hyper:
            if wanted.get(key) != was.get(key):
                refuse({"lr": "--lr", "from_run": "--from"}.get(key, f"--set {key}"), f"trained with {key}={was.get(key)!r}")


def same_data(given: str, recorded: str) -> bool:
    """Whether two --data specs name the same data: equal, or two spellings of one folder."""
    given, recorded = given.strip(), recorded.strip()
    if given == recorded:
        return True
    a, b = Path(given).expanduser(), Path(recorded).expanduser()
    return a.exists() and b.exists() and a.resolve() == b.resolve()
