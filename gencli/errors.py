"""The exceptions the CLI turns into one line: user mistakes (exit 2) and a clean stop for Ctrl-C (exit 130)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake the user can fix: bad option, missing data, wrong checkpoint, ..."""


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that stopped a command cleanly, after everything due was written.

    A KeyboardInterrupt, so that whatever handles a bare Ctrl-C (exit code 130) handles this one
    too; its message says how to continue.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest of ``choices``, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
