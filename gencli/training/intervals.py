"""How often a run samples and checkpoints: every N steps (``500``) or every N epochs (``2ep``).

A run records the interval as the user wrote it, and the engine converts it to steps with the
steps an epoch takes (batches per epoch divided by the batches one step consumes), so an
interval in epochs means the same after a resume and for every model.
"""

from __future__ import annotations

from gencli.runs.values import EPOCH_SUFFIX, parse_interval  # noqa: F401 - a run records intervals: the rule is there


def interval_steps(value: int | str, steps_per_epoch: float, option: str = "interval") -> int:
    """Return ``value`` (steps, or ``Nep``) as a number of steps, at least 1."""
    unit, count = parse_interval(value, option)
    if unit == "steps":
        return count
    return max(1, round(count * steps_per_epoch))
