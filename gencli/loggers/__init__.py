"""Experiment trackers (``gencli train --log NAME,NAME``): the logger protocol and the dispatcher.

A plugin registers loggers with ``gencli_register_loggers`` (``LoggerSpec``); the core's own
plugin registers ``tensorboard``, ``mlflow`` and ``wandb``. The run folder stays the record of a
run (``run.json``, ``metrics.jsonl``, ``samples/``): a logger gets a copy of what is written there,
as it is written. A run records the loggers it trained with (``run.json``: ``loggers``);
``gencli eval`` sends its metrics to them, and ``--resume`` continues them unless ``--log`` is given.

A logger's failure stays with it: one that cannot be built or raises in any call is named in one
warning line and disabled, and the run goes on without it. No torch here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterable

from gencli.errors import UserError

# run.json's key for the loggers a run trains with
RECORD_KEY = "loggers"


class Logger:
    """What ``gencli train`` and ``gencli eval`` send to an experiment tracker. Override what you need.

    A logger is built as ``Logger(run_dir, start_step)`` on the main process: ``run_dir`` is the run
    folder (keep your files in a folder of your own inside it), ``start_step`` the step training
    starts from (0, or the checkpoint's step on resume: what the interrupted run logged after it is
    logged again). The same run folder may be opened again (a resume, an eval): continue your record.
    """

    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.start_step = start_step

    def start(self, run_info: dict[str, Any]) -> None:
        """The run starts: ``run_info`` is its run.json record (``model``, ``hyperparameters``,
        ``data``, ``training``, ...) and ``command``, ``"train"`` or ``"eval"``."""

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Values at a log step: ``loss/NAME``, ``speed/images_per_s``, ``quality/NAME`` (the probe)."""

    def images(self, step: int, name: str, grid: Any) -> None:
        """A sample grid as saved in ``samples/``: a uint8 numpy array, HWC (colour) or HW (grey)."""

    def metrics(self, step: int, values: dict[str, float]) -> None:
        """``gencli eval``'s results for the checkpoint at ``step`` (FID, KID, ...)."""

    def flush(self) -> None:
        """Write out what is buffered (before the run's last files are written)."""

    def end(self, status: str) -> None:
        """The run (or the eval) ended: ``finished``, ``interrupted`` or ``failed``."""


def requested(names: Iterable[str] | str | None) -> tuple[str, ...]:
    """Return logger names as given (``"a,b"``, or a list), stripped, in order, each once."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = names.split(",")
    chosen: list[str] = []
    for name in names:
        name = name.strip()
        if name and name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def check(names: Iterable[str], flag: str = "--log") -> tuple[str, ...]:
    """Return the names checked: each a registered logger whose modules are installed, else ``UserError``.

    Nothing is imported: a missing library is found by name, before any data is loaded.
    """
    from gencli.plugins import registry

    reg = registry()
    chosen = requested(tuple(names))
    for name in chosen:
        spec = reg.logger(name)
        missing = [m for m in spec.requires if not _installed(m)]
        if missing:
            how = f": {spec.install}" if spec.install else ""
            raise UserError(f"{flag} {name} needs the {missing[0]} package{how}")
    return chosen


def usable(names: Iterable[str], why: str) -> tuple[str, ...]:
    """Return those of ``names`` (a run's record) that can log here; each other is named in one warning."""
    kept: list[str] = []
    for name in requested(tuple(names)):
        try:
            kept.extend(check([name]))
        except UserError as exc:
            _warn(f"{why} logs to {name!r}, which cannot log here: {str(exc).removeprefix('--log ' + name + ' ')}; "
                  "not logging to it")
    return tuple(kept)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def recorded(info: dict[str, Any]) -> tuple[str, ...]:
    """Return the loggers a run's record names: a list of names, else none (a record is a stranger's file)."""
    value = info.get(RECORD_KEY) if isinstance(info, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ()
    return requested(value)


def _warn(message: str) -> None:
    from gencli.ui.console import warn

    warn(message)


class Loggers:
    """The dispatcher: sends each event to every open logger; one that raises is named once and dropped."""

    def __init__(self, loggers: list[tuple[str, Logger]] | None = None) -> None:
        self.open = list(loggers or [])

    def __bool__(self) -> bool:
        return bool(self.open)

    @classmethod
    def build(cls, names: Iterable[str], run_dir: Path, start_step: int = 0, strict: bool = True) -> "Loggers":
        """Build the loggers named. ``strict``: an unknown name or a missing library is a ``UserError``
        (what was asked for); else it is one warning and skipped (what a run's record names)."""
        from gencli.plugins import registry

        built: list[tuple[str, Logger]] = []
        for name in requested(tuple(names)):
            try:
                check([name])
            except UserError as exc:
                if strict:
                    raise
                _warn(f"{exc}; not logging to it")
                continue
            try:
                logger = registry().logger(name).load()(Path(run_dir), start_step)
            except KeyboardInterrupt:
                raise
            except UserError as exc:  # a refusal the logger words itself (a link where its folder goes, ...)
                if strict:
                    raise
                _warn(f"logger {name!r} is disabled: {exc}")
                continue
            except BaseException as exc:  # noqa: BLE001 - a logger never ends the run
                _warn(f"logger {name!r} failed to start and is disabled: {_describe(exc)}")
                continue
            built.append((name, logger))
        return cls(built)

    def _send(self, event: str, *args) -> None:
        for entry in list(self.open):
            name, logger = entry
            if event == "flush" and not callable(getattr(logger, "flush", None)):
                continue  # optional
            try:
                getattr(logger, event)(*args)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a logger never ends the run, not even by sys.exit
                self.open.remove(entry)
                _warn(f"logger {name!r} failed in {event}() and is disabled for the rest of this run: {_describe(exc)}")
                if event != "end":
                    try:
                        logger.end("failed")
                    except Exception:  # noqa: BLE001 - it is already disabled
                        pass

    def start(self, run_info: dict[str, Any]) -> None:
        self._send("start", run_info)

    def scalars(self, step: int, values: dict[str, float | None]) -> None:
        values = {k: float(v) for k, v in values.items() if v is not None}
        if values:
            self._send("scalars", step, values)

    def images(self, step: int, name: str, images: Any, nrow: int) -> None:
        """Send images in [-1, 1] (NCHW tensor) as one grid, laid out as the saved PNG is."""
        if not self.open:
            return  # no grid to make
        from gencli.media.images import grid

        self._send("images", step, name, grid(images.detach().float().cpu(), nrow))

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        values = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if values:
            self._send("metrics", step, values)

    def flush(self) -> None:
        self._send("flush")

    def end(self, status: str) -> None:
        self._send("end", status)
        self.open = []


def _describe(exc: BaseException) -> str:
    from gencli.plugins import one_line

    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return one_line(f"{type(exc).__name__}: {exc}")


def send_eval(run_dir: Path, info: dict[str, Any], step: int, results: dict[str, Any]) -> None:
    """Send ``gencli eval``'s results to the loggers the run records (none: nothing is imported)."""
    names = recorded(info)
    if not names:
        return
    loggers = Loggers.build(names, run_dir, 0, strict=False)  # 0: nothing the run logged is dropped
    if not loggers:
        return
    loggers.start({**info, "command": "eval"})
    loggers.metrics(step, results)
    loggers.end("finished")
