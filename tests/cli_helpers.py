"""Helpers for tests that run the CLI in a fresh process (a module name no test folder reuses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINY_VAE = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "16"]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m gencli ARGS`` in a fresh process; return the completed process."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gencli", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


# Runs the CLI in-process in a fresh interpreter (``entry``: the module whose main() runs), then
# prints its exit code, its stdout, and whether it imported Typer and torch.
PROBE = """
import contextlib, importlib, io, json, sys
entry, args = sys.argv[1], json.loads(sys.argv[2])
sys.argv = ["gencli", *args]
main = importlib.import_module(entry).main
out = io.StringIO()
code = 0
try:
    with contextlib.redirect_stdout(out):
        main()
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({"code": code, "out": out.getvalue(), "typer": "typer" in sys.modules, "torch": "torch" in sys.modules}))
"""


def probe_cli(args: list[str], env: dict[str, str] | None = None, entry: str = "gencli.launcher") -> dict:
    """Run ``gencli ARGS`` through ``entry`` in a fresh interpreter: {code, out, typer, torch}."""
    import json

    done = subprocess.run([sys.executable, "-c", PROBE, entry, json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def fork_cli(*args: str, log: Path, before=None) -> int:
    """Run ``gencli ARGS`` in a forked child (a real second process, torch already imported, so it
    starts at once), stderr to ``log``; ``before`` runs in the child first. Return the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        sys.stderr = open(2, "w", closefd=False)  # not a test runner's capture, which the child would keep
        sys.stdout = open(1, "w", closefd=False)
        if before is not None:
            before()
        from gencli.cli import main

        sys.argv = ["gencli", *map(str, args)]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported through the exit code and the log
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def wait_child(pid: int, timeout: float = 120) -> int:
    """Return a forked child's exit code (minus the signal number for one killed by a signal)."""
    import time

    deadline = time.time() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.time() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise TimeoutError(f"child {pid} hung")
        time.sleep(0.01)
