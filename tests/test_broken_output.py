"""A closed stdout or stderr stops what gencli shows, never the training behind it.

``gencli train vae | head -1`` reads one line and closes the pipe: every later write to it
fails. The run must still train to its end, write its files and mark itself finished, and the
command must end without a traceback (nor an "Exception ignored" at exit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "8"]


def _train_with_closed_pipe(tmp_path: Path, stderr_too: bool) -> tuple[int, str, Path]:
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENCLI_RUNS_DIR": str(tmp_path / "runs"),
           "GENCLI_DATA_DIR": str(tmp_path / "data")}
    cmd = [sys.executable, "-m", "gencli", "train", "vae", *TINY, "--steps", "12", "--sample-every", "2",
           "--checkpoint-every", "6", "--out", str(run)]
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if stderr_too else err_file,
                                env=env)
        first = proc.stdout.readline()  # as `head -1` does: one line, then the pipe is closed
        proc.stdout.close()
        code = proc.wait(timeout=300)
    assert first, "the command printed nothing before its output was closed"
    return code, err_path.read_text(), run


@pytest.mark.parametrize("stderr_too", [False, True], ids=["stdout-closed", "stdout-and-stderr-closed"])
def test_a_closed_output_stops_the_display_not_the_training(tmp_path, stderr_too):
    code, err, run = _train_with_closed_pipe(tmp_path, stderr_too)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished", (info["status"], err)
    assert info["step"] == 12
    assert (run / "checkpoints" / "step-00000012" / "meta.json").is_file()
    assert (run / "progress.gif").is_file() and (run / "losses.png").is_file()
    assert code == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err

