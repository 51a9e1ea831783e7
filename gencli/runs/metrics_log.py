"""metrics.jsonl: one training line per logged step, one ``{"eval": ...}`` line per `gencli eval`.

Every line read is checked (``check_row``) before anyone acts on it; a line cut by a kill is
skipped; writers append one line in one write, under the file's lock (``gencli.fileio``).
No torch at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gencli.errors import UserError
from gencli.runs.values import MAX_COUNT, shown
from gencli.runs.values import is_int as _is_int

METRICS_FILE = "metrics.jsonl"


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
