"""Writers of one run's ``metrics.jsonl`` take turns: no line is ever lost.

Real concurrent processes (forked, so each starts at once): a resume rewriting the file (it drops
the lines past its checkpoint) while an eval appends, and two evals of one run at once. The
children are paused at the moment that matters (the resume just before it replaces the file,
the evals just before their figures), so the overlap is certain, not left to chance.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from cli_helpers import fork_cli, wait_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the concurrent writers are forked processes")

EVAL = ["eval", "{run}", "--metrics", "mse", "--n", "8", "--batch-size", "8"]


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory) -> Path:
    """A tiny VAE run with a line per step and checkpoints at steps 2 and 4."""
    from gencli.training.engine import TrainConfig, train

    return train(TrainConfig(model="vae", data="shapes", steps=4, image_size=16, batch_size=8, log_every=1,
                             checkpoint_every=2, overrides={"widths": "8,16"}, quiet=True,
                             out=tmp_path_factory.mktemp("metrics") / "run"))


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _signal_then_wait(ready: int, go: int):
    """Return a function that tells the parent it got there, then waits for its word."""

    def pause() -> None:
        os.write(ready, b"1")
        os.read(go, 1)

    return pause


def test_an_eval_during_a_resume_keeps_its_line(four_steps, tmp_path):
    run = Path(shutil.copytree(four_steps, tmp_path / "run", symlinks=True))
    # back to step 2, as after a kill: the lines of steps 3 and 4 are the resume's to drop
    shutil.rmtree(run / "checkpoints" / "step-00000004")
    (run / "checkpoints" / "latest").write_text("step-00000002")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pause = _signal_then_wait(ready_w, go_r)

    def pause_before_replacing_metrics():
        replace = os.replace

        def paused(src, dst, *args, **kwargs):
            if Path(dst).name == "metrics.jsonl":
                pause()
            return replace(src, dst, *args, **kwargs)

        os.replace = paused

    resume = fork_cli("-q", "train", "--resume", run, "--steps", "4", log=tmp_path / "resume.log",
                      before=pause_before_replacing_metrics)
    os.read(ready_r, 1)  # the resume has read the file and is about to replace it

    def say_when_appending():
        from gencli.runs import Run

        append = Run.append_metrics

        def announced(self, row):
            os.write(ready_w, b"2")
            return append(self, row)

        Run.append_metrics = announced

    evaluation = fork_cli(*[a.format(run=run) for a in EVAL], log=tmp_path / "eval.log", before=say_when_appending)
    assert os.read(ready_r, 1) == b"2"
    deadline, status = time.time() + 1.0, None  # long enough for an append that does not wait for the resume
    while time.time() < deadline and status is None:
        done, code = os.waitpid(evaluation, os.WNOHANG)
        status = os.waitstatus_to_exitcode(code) if done else None
        time.sleep(0.02)
    os.write(go_w, b"1")
    assert wait_child(resume) == 0, (tmp_path / "resume.log").read_text()
    assert (status if status is not None else wait_child(evaluation)) == 0, (tmp_path / "eval.log").read_text()
    lines = _lines(run)
    assert len([line for line in lines if "eval" in line]) == 1, "the eval's line was lost"
    steps = [line["step"] for line in lines if "step" in line and "eval" not in line]
    assert steps == [1, 2, 3, 4]


def test_two_evals_of_one_run_at_once_both_record(four_steps, tmp_path):
    run = Path(shutil.copytree(four_steps, tmp_path / "run", symlinks=True))
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pause = _signal_then_wait(ready_w, go_r)

    def meet_before_the_figures():
        from gencli.metrics import figures

        write = figures.write_autoencoder_figures
        replace = os.replace

        def met(*args, **kwargs):
            pause()
            return write(*args, **kwargs)

        def slow(src, dst, *args, **kwargs):  # both writers hold a temporary file at once
            time.sleep(0.2)
            return replace(src, dst, *args, **kwargs)

        figures.write_autoencoder_figures = met
        os.replace = slow

    children = [fork_cli(*[a.format(run=run) for a in EVAL], log=tmp_path / f"eval-{i}.log",
                         before=meet_before_the_figures) for i in range(2)]
    for _ in children:
        os.read(ready_r, 1)
    os.write(go_w, b"11")
    for i, pid in enumerate(children):
        assert wait_child(pid) == 0, (tmp_path / f"eval-{i}.log").read_text()
    assert len([line for line in _lines(run) if "eval" in line]) == 2
    assert not [p.name for p in (run / "eval").iterdir() if ".tmp" in p.name], "a temporary file was left behind"
