"""The values a run records, their types and bounds: the one table every reader and writer checks by.

A training setting holds the same rules wherever its value comes from: a command-line flag
(``--batch-size 0``), a TOML config's top level (``batch_size = 0``), code calling the engine, or
the ``training`` table of a run.json read back. A whole number is an int and never a bool (TOML's
``true`` is not 1) nor a float (``steps = 3.5`` is refused, not rounded); a string is a string;
bounds are checked before anything is built or allocated. How a flag or a TOML file words a
refusal is the training layer's (``gencli.training.settings``); the rules are here, beside the
run that records the values, so reading a run needs nothing above it.

No torch here: the command layer may check values before importing it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from gencli.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16")
# torch's generators take seeds up to 2**64 - 1; gencli derives other seeds from the run's by
# arithmetic kept below 2**63, so a run's seed is a signed 64-bit number that is not negative.
MAX_SEED = 2**63 - 1
# Far above what any model here trains at (the largest, a style-based generator's, is 1024); a larger side is almost
# always a typo, and would ask for gigabytes per image before anything could say so.
MAX_IMAGE_SIZE = 4096
# Caps on counts, far above any real use and far below what breaks arithmetic or memory: a larger
# value is a typo. A run's step count stays below 10**8, so a checkpoint's name holds 8 digits.
MAX_STEPS = 99_999_999
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 1_000_000
MAX_CHANNELS = 4
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# The largest count a run records (steps, batch size, intervals, a checkpoint's step): far above any
# real run, and small enough that no arithmetic on it leaves a signed 64-bit integer.
MAX_COUNT = 10**12


@dataclass(frozen=True)
class Setting:
    """One training setting: its TOML key, the flag that sets it, and what values it takes."""

    key: str
    kind: type  # int, float, str or bool
    minimum: float | None = None
    maximum: float | None = None
    cap: float | None = None  # an upper bound against typos: "must be at most N" (below the minimum still "at least")
    above: float | None = None  # strictly greater than this (a learning rate above 0)
    choices: tuple[str, ...] = ()
    pattern: re.Pattern | None = None
    expected: str = ""  # the accepted values in words, when a pattern decides them
    cli: str | None = ""  # how the command line gives it: "" for --key-name, None when it cannot
    interval: bool = False  # also takes epochs written "Nep" (``parse_interval``)

    @property
    def flag(self) -> str:
        """The name errors use: the flag, or the key as code passes it when no flag sets it."""
        if self.cli is None:
            return self.key
        return self.cli or "--" + self.key.replace("_", "-")


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("model", str, cli="MODEL"),
    Setting("data", str),
    Setting("steps", int, minimum=1, cap=MAX_STEPS),
    Setting("epochs", int, minimum=1, cap=MAX_EPOCHS),
    Setting("batch_size", int, minimum=1, cap=MAX_BATCH_SIZE),
    Setting("image_size", int, minimum=1, maximum=MAX_IMAGE_SIZE),
    Setting("channels", int, minimum=1, cap=MAX_CHANNELS),
    Setting("lr", float, above=0),
    Setting("device", str, pattern=DEVICE_NAME, expected="auto, cpu, cuda, cuda:N or mps"),
    Setting("precision", str, choices=PRECISIONS),
    Setting("seed", int, minimum=0, maximum=MAX_SEED),
    Setting("sample_every", int, minimum=1, cap=MAX_STEPS, interval=True),
    Setting("checkpoint_every", int, minimum=1, cap=MAX_STEPS, interval=True),
    Setting("log_every", int, minimum=1, cap=MAX_STEPS, cli=None),
    Setting("keep_checkpoints", int, minimum=1, cap=MAX_STEPS, cli=None),
    Setting("compile", bool),
    Setting("eval_every", int, minimum=1, cap=MAX_STEPS, interval=True),
    Setting("eval_features", str),
    Setting("eval_classifier", str),
    Setting("eval_n", int, minimum=2, maximum=1_000_000),  # FID needs two images at least
)}

_KIND_WORDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}


def problem(setting: Setting, value: Any) -> str | None:
    """Return what is wrong with ``value`` for ``setting`` ("must be at least 1"), or None."""
    kind = setting.kind
    if setting.interval and isinstance(value, str):
        try:
            parse_interval(value, setting.flag)
        except UserError as exc:
            if " at most " in str(exc):  # the words after the flag's name, without the value
                return str(exc).removeprefix(setting.flag + " ").split(", got ")[0]
            return "must be a number of steps (500) or epochs (2ep)"
        return None
    if isinstance(value, bool) and kind is not bool:
        return f"must be {_KIND_WORDS[kind]}, not true or false"
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        return f"must be {_KIND_WORDS[kind]}"
    if kind is str:
        if not value.strip():
            return "must not be blank"
        if setting.choices and value not in setting.choices:
            return f"must be one of {', '.join(setting.choices)}"
        if setting.pattern is not None and not setting.pattern.fullmatch(value):
            return f"must be {setting.expected}"
    if kind is float and not math.isfinite(value):
        return "must be a finite number"
    if setting.above is not None and value <= setting.above:
        return f"must be greater than {setting.above:g}"
    if setting.minimum is not None and value < setting.minimum:
        return f"must be at least {setting.minimum:,}" if setting.maximum is None else _range(setting)
    if setting.maximum is not None and value > setting.maximum:
        return f"must be at most {setting.maximum:,}" if setting.minimum is None else _range(setting)
    if setting.cap is not None and value > setting.cap:
        return f"must be at most {setting.cap:,}"
    return None


def _range(setting: Setting) -> str:
    return f"must be from {setting.minimum:,} to {setting.maximum:,}"


def shown_number(value: Any) -> str:
    """Return ``value`` for an error line: a whole number too long to read is named by its length."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"a number of {len(str(abs(value))):,} digits"
    return str(value)


def shown(value: Any) -> str:
    """A damaged value as an error line shows it: short, one line, never a deep repr."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list" if any(isinstance(v, (dict, list, tuple)) for v in value) or len(value) > 8 else repr(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------ intervals
# How often a run samples and checkpoints: every N steps (``500``) or every N epochs (``2ep``). A
# run records the interval as the user wrote it; the engine converts it to steps
# (``gencli.training.intervals.interval_steps``).
EPOCH_SUFFIX = "ep"
_PATTERN = re.compile(r"\s*(\d+)\s*(ep|epochs?|steps?)?\s*", re.IGNORECASE)


def parse_interval(value: int | str, option: str = "interval") -> tuple[str, int]:
    """Return ("steps", N) or ("epochs", N) for ``value``: a whole number of steps, or ``Nep`` epochs.

    ``option`` names the setting in the error, e.g. ``--sample-every``. Steps are at most a
    run's (``MAX_STEPS``), epochs at most ``MAX_EPOCHS``.
    """
    if isinstance(value, bool):
        raise UserError(f"{option} must be a number of steps (500) or epochs (2ep), not {value!r}")
    if isinstance(value, int):
        count, unit = value, "steps"
    else:
        match = _PATTERN.fullmatch(str(value))
        if not match:
            text = repr(value) if len(str(value)) <= 40 else repr(str(value)[:40]) + "..."
            raise UserError(f"{option} must be a number of steps (500) or epochs (2ep), not {text}")
        digits = match.group(1).lstrip("0") or "0"
        count = int(digits) if len(digits) <= 20 else 10**20  # longer than any bound: never converted whole
        unit = "epochs" if (match.group(2) or "").lower().startswith("ep") else "steps"
    if count < 1:
        raise UserError(f"{option} must be at least 1, got {value!r}")
    limit, words = (MAX_EPOCHS, " epochs") if unit == "epochs" else (MAX_STEPS, "")
    if count > limit:
        got = shown_number(count) if isinstance(value, int) or count < 10**20 else f"a number of {len(digits):,} digits"
        raise UserError(f"{option} must be at most {limit:,}{words}, got {got}")
    return unit, count


def check_count(n: int, what: str = "--n", limit: int = 100_000) -> None:
    """Refuse counts below 1, and counts too large to hold, before anything is allocated."""
    if n < 1:
        raise UserError(f"{what} must be at least 1, got {n}")
    if n > limit:
        raise UserError(f"{what} {n} is more than gencli writes in one command ({limit:,}); run it in parts")


def check_flag(key: str, value: Any) -> Any:
    """Return ``value`` for setting ``key`` given as its flag, or raise ``UserError`` naming the flag."""
    setting = SETTINGS[key]
    if value is None:
        return None
    wrong = problem(setting, value)
    if wrong and (setting.choices or setting.pattern) and isinstance(value, str) and value.strip():
        raise UserError(f"unknown {setting.flag} {value!r}: use {setting.expected or 'one of ' + ', '.join(setting.choices)}")
    if wrong:
        raise UserError(f"{setting.flag} {wrong}, got {_shown_flag(value)}")
    return float(value) if setting.kind is float else value


def _shown_flag(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40]) + f"... ({len(value):,} characters)"
    return shown_number(value)
