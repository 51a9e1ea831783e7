"""``python -m gencli.training.launch TORCHRUN-ARGS``: torchrun, minus its tracebacks.

``gencli train --devices N`` starts this. torchrun reports a Ctrl-C, or a worker that exited
with an error, as a traceback of its own agent on top of what the workers printed. Here a
Ctrl-C ends quietly with exit code 130 once torchrun has passed it on to the workers and waited
for them (each stops at the same step, writes its checkpoint and marks the run interrupted), and
a failed worker's exit code is passed on after one line naming it; the worker has already said
why.
"""

from __future__ import annotations

import logging
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    # torchrun's own warnings repeat what the workers say (a Ctrl-C, a failure) in log format
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        torchrun(argv)
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            print(f"gencli: process {rank} was killed by {name}", file=sys.stderr)
            return 128 - code
        if code not in (2, 130):  # a user error or a Ctrl-C, already explained in one line by the worker
            print(f"gencli: process {rank} failed with exit code {code}", file=sys.stderr)
        return code or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
