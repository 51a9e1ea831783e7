"""Typed hyperparameters: a dataclass per model, set from ``--set key=value`` and TOML files.

Values from the command line arrive as strings and are parsed by the field's annotation;
values from TOML arrive typed and are checked. Unknown keys and bad values are rejected by
name. A hyperparameter class may define ``validate(self)`` raising ``UserError`` for values
that are well-typed but meaningless (a negative learning rate, bounds in the wrong order).

Bounds hold for every number whatever the class says: a float must be finite (``inf`` and
``nan`` are refused), and a whole number lies within ``MAX_WHOLE`` either side of 0. A field may
declare its own bounds in its metadata: ``field(default=16, metadata={"help": ..., "min": 1, "max": 4096})``.
No torch here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from gencli.errors import UserError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, published separately before Python 3.11
    import tomli as tomllib

# The largest whole number a hyperparameter may hold: a signed 64-bit integer, as torch stores them.
MAX_INT = 2**63 - 1


# The widest whole number a hyperparameter or option takes unless its field declares a "max":
# above any step count (a run trains fewer than 10**8 steps) and any width a network is built
# with; larger is a typo that would only fail later, in torch's allocator.
MAX_WHOLE = 100_000_000


def fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return f"a comma-separated list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "none"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp, key: str) -> Any:
    """Return ``value`` converted to type ``tp``, or raise ``UserError`` naming ``key``."""
    origin = typing.get_origin(tp)
    fail = UserError(f"bad value {value!r} for {key!r}: expected {_type_name(tp)}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in ("none", "null", ""))):
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except UserError:
                continue
        raise fail
    if origin is Literal:
        choices = typing.get_args(tp)
        for choice in choices:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise fail
    if origin in (tuple, list):
        (inner, *rest) = typing.get_args(tp)
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise fail
        items = [s.strip() if isinstance(s, str) else s for s in items if not (isinstance(s, str) and not s.strip())]
        converted = [coerce(item, inner, key) for item in items]
        if origin is tuple and rest and rest[0] is not Ellipsis and len(converted) != len(typing.get_args(tp)):
            raise fail
        return tuple(converted) if origin is tuple else converted
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
            return False
        raise fail
    if tp is int:
        if isinstance(value, bool):
            raise fail
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise fail from None
        if not isinstance(value, int):
            raise fail
        if abs(value) > MAX_INT:  # no network, count or seed is this large: it would overflow torch's integers
            raise UserError(f"bad value {value!r} for {key!r}: expected a whole number from {-MAX_INT:,} to {MAX_INT:,}")
        return value
    if tp is float:
        if isinstance(value, bool):
            raise fail
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise fail from None
        if not isinstance(value, (int, float)):
            raise fail
        try:
            value = float(value)
        except OverflowError:  # an int beyond any float
            raise fail from None
        if not math.isfinite(value):
            raise UserError(f"bad value {value!r} for {key!r}: expected a finite number")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail
    return value


def parse_assignments(pairs: list[str], flag: str = "--set") -> dict[str, str]:
    """Parse repeated ``key=value`` strings."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} takes key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config: top-level training options plus an optional [hyperparameters] table."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"config file {str(path)!r} is a folder; give the TOML file itself")
    if not path.is_file():
        if path.is_symlink() and not path.exists():
            raise UserError(f"config file {str(path)!r} is a link to {os.readlink(path)!r}, which does not exist")
        if path.exists():  # a FIFO, a device, a socket (or a link to one): reading could block or never end
            raise UserError(f"config file {str(path)!r} is not a regular file ({_file_kind(path)}); give a TOML file")
        raise UserError(f"config file {str(path)!r} does not exist")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except RecursionError:
        raise UserError(f"config file {str(path)!r} is nested too deeply (arrays or tables within each other) "
                        "to be a gencli config") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {str(path)!r} is not UTF-8 text (byte {exc.start}); "
                        "save it as UTF-8, as TOML requires") from None
    except OSError as exc:
        raise UserError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None


def _file_kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, word in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word + (f" that {str(path)!r} links to" if path.is_symlink() else "")
    return "not a file"


def build(cls, values: dict[str, Any], source: str | dict[str, str] = "--set", what: str = "hyperparameter",
          validate: bool = True):
    """Return an instance of dataclass ``cls`` (hyperparameters or options) with ``values`` applied and checked.

    ``source`` says where the values came from, for error messages: one label for all of them,
    or a label per key (``{"beta": "[hyperparameters] in 'c.toml'"}``; keys it lacks are ``--set``).
    ``validate=False`` leaves the ``validate`` method to the caller (after it has filled in more).
    """
    known = fields(cls)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        where = source if isinstance(source, str) else source.get(key, "--set")
        if key not in known:
            listing = f"known: {', '.join(sorted(known))}" if known else f"it takes no {what}s"
            raise UserError(f"unknown {what} {key!r} in {where}{did_you_mean(key, known)}; {listing}")
        try:
            kwargs[key] = coerce(value, hints[key], key)
            check_bounds(kwargs[key], key, known[key].metadata)
        except UserError as exc:
            raise UserError(f"{exc} (in {where})") from None
    params = cls(**kwargs)
    if validate:
        check(params)
    return params


def check_bounds(value: Any, key: str, metadata: Any = None) -> None:
    """Refuse a whole number of ``value`` (or of its items) outside the ``min``/``max`` that the field's
    ``metadata`` declares, or beyond ``MAX_WHOLE`` either side of 0 where it declares no ``max``."""
    metadata = metadata or {}
    for item in value if isinstance(value, (list, tuple)) else (value,):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        declared = metadata.get("min"), metadata.get("max")
        low, high = declared
        if isinstance(item, int):
            low = -MAX_WHOLE if low is None else low
            high = MAX_WHOLE if high is None else high
        if low is not None and item < low:
            wrong = f"must be from {low:,} to {high:,}" if None not in declared else f"must be at least {low:,}"
        elif high is not None and item > high:
            wrong = f"must be from {low:,} to {high:,}" if None not in declared else f"must be at most {high:,}"
        else:
            continue
        raise UserError(f"{key} {wrong}, got {_number(item)}")


def _number(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10**20:
        return f"a number of {len(str(abs(value))):,} digits"
    return str(value)


def check(params) -> None:
    """Run the dataclass's own ``validate`` method, when it has one."""
    method = getattr(params, "validate", None)
    if method is not None:
        method()


def to_dict(params) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(params).items()}


def describe(cls) -> list[tuple[str, str, str, str]]:
    """Return (name, type, default, help) for each field; help comes from field metadata."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else ""
        )
        rows.append((f.name, _type_name(hints[f.name]), repr(default), f.metadata.get("help", "")))
    return rows


def require(condition: bool, message: str) -> None:
    """Raise ``UserError(message)`` unless ``condition``: for ``validate`` methods."""
    if not condition:
        raise UserError(message)
