"""How often a run samples and checkpoints: every N steps (``500``) or every N epochs (``2ep``).

A run records the interval as the user wrote it, and the engine converts it to steps with the
steps an epoch takes (batches per epoch divided by the batches one step consumes), so an
interval in epochs means the same after a resume and for every model.
"""

from __future__ import annotations

import re

from gencli.errors import UserError

EPOCH_SUFFIX = "ep"
_PATTERN = re.compile(r"\s*(\d+)\s*(ep|epochs?|steps?)?\s*", re.IGNORECASE)


def parse_interval(value: int | str, option: str = "interval") -> tuple[str, int]:
    """Return ("steps", N) or ("epochs", N) for ``value``: a whole number of steps, or ``Nep`` epochs.

    ``option`` names the setting in the error, e.g. ``--sample-every``. Steps are at most a
    run's (``MAX_STEPS``), epochs at most ``MAX_EPOCHS``.
    """
    from gencli.training.settings import MAX_EPOCHS, MAX_STEPS, shown_number

    if isinstance(value, bool):
        raise UserError(f"{option} must be a number of steps (500) or epochs (2ep), not {value!r}")
    if isinstance(value, int):
        count, unit = value, "steps"
    else:
        match = _PATTERN.fullmatch(str(value))
        if not match:
            shown = repr(value) if len(str(value)) <= 40 else repr(str(value)[:40]) + "..."
            raise UserError(f"{option} must be a number of steps (500) or epochs (2ep), not {shown}")
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


def interval_steps(value: int | str, steps_per_epoch: float, option: str = "interval") -> int:
    """Return ``value`` (steps, or ``Nep``) as a number of steps, at least 1."""
    unit, count = parse_interval(value, option)
    if unit == "steps":
        return count
    return max(1, round(count * steps_per_epoch))
