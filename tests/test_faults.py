"""Fault injection: kills, Ctrl-C, a full disk and a second trainer never strand a run.

Each scenario trains a tiny VAE through the real command line in a process forked from one
driver (``python tests/test_faults.py WORKDIR``, started once for the module), so torch is
imported once and a trial costs a fraction of a second. Faults are injected in the forked child
only: a SIGKILL at a seeded random file operation or training step (half-way through writing a
checkpoint file among them), a SIGINT at a chosen step or after the final checkpoint, a
file-size limit or a failing fsync, a second trainer while the first one holds the run.
Every resumed run must end with the bytes of an uninterrupted run's weights and its
``metrics.jsonl`` rows (all but the throughput), and leave no temporary file behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest
from cli_helpers import wait_child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the fault driver forks its trials")

TINY = ["--image-size", "8", "--batch-size", "4", "--set", "widths=4,8", "--set", "latent_dim=2"]
STEPS = 24  # log lines at 10, 20, 24; checkpoints every 3 steps, so most fall between log lines
TRAIN = ["-q", "train", "vae", "--steps", str(STEPS), "--checkpoint-every", "3", "--sample-every", "8", "--seed", "5",
         *TINY]
KILL_TRIALS = 12
FILE_SIZE_LIMIT = 4000  # above run.json and a log line, below the networks' weights
CAUSES = {"EFBIG": "the file would exceed the file-size limit", "ENOSPC": "no space left on the device",
          "EROFS": "the file system is read-only"}


# ----------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def report(tmp_path_factory):
    work = tmp_path_factory.mktemp("faults")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENCLI_DATA_DIR": str(work / "data"),
           "GENCLI_RUNS_DIR": str(work / "runs")}
    # The driver starts with Ctrl-C's default disposition: a suite started in the background of a
    # non-interactive shell inherits SIGINT ignored, and a run would then never see the Ctrl-C it is sent.
    done = subprocess.run([sys.executable, __file__, str(work)], env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((work / "report.json").read_text())


def scenario(report, name):
    result = report[name]
    assert "error" not in result, result.get("error")
    return result


def _assert_same_as_uninterrupted(result):
    assert result["status"] == "finished"
    assert result["same_weights"], "weights differ from the uninterrupted run's"
    assert result["rows"] == result["reference_rows"]
    assert result["leftovers"] == [], "temporary files were left behind"


def test_sigkill_at_random_moments_resumes_to_the_uninterrupted_run(report):
    result = scenario(report, "sigkill")
    assert len(result["trials"]) >= 10
    for trial in result["trials"]:
        assert trial["final_exit"] == 0, trial
        _assert_same_as_uninterrupted(trial)
    during_writes = [t for t in result["trials"] if t["killed_in_checkpoint_write"]]
    assert during_writes, "no kill landed inside a checkpoint write"
    assert any(t["leftovers_after_kill"] for t in result["trials"]), "no kill left a half-written file to clear"


@pytest.mark.parametrize("step", [7, 9, 10])
def test_ctrl_c_exits_130_and_the_resumed_run_matches_an_uninterrupted_one(report, step):
    result = scenario(report, f"sigint-{step}")
    assert result["interrupted_exit"] == 130, result["interrupted_stderr"]
    assert result["interrupted_status"] == "interrupted" and result["interrupted_checkpoint"] == step
    assert "Traceback" not in result["interrupted_stderr"]
    assert result["final_exit"] == 0, result["final_stderr"]
    _assert_same_as_uninterrupted(result)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_a_run_stopped_after_its_final_checkpoint_is_finished_by_resume(report, signal_name):
    result = scenario(report, f"after-final-{signal_name}")
    assert result["stopped_status"] == "running" and result["stopped_checkpoint"] == STEPS
    assert result["final_exit"] == 0, result["final_stderr"]
    assert result["gif"] and result["plot"]
    _assert_same_as_uninterrupted(result)


@pytest.mark.parametrize("fault", ["EFBIG", "ENOSPC", "EROFS"])
def test_a_refused_write_ends_in_one_line_and_the_run_resumes(report, fault):
    result = scenario(report, f"write-{fault}")
    assert result["failed_exit"] == 2, result["failed_stderr"]
    lines = result["failed_stderr"].strip().splitlines()
    assert len(lines) == 1, result["failed_stderr"]
    assert lines[0].startswith("error: cannot write '") and result["cause"] in lines[0], lines[0]
    assert "step-00000006" in lines[0] and "continue from step-00000003" in lines[0] and "--resume" in lines[0]
    assert result["failed_checkpoint"] == 3, "the last complete checkpoint stays the resume point"
    assert result["leftovers_after_failure"] == []
    if fault == "EFBIG":  # run.json is small enough to write under the limit
        assert result["failed_status"] == "failed" and result["cause"] in result["failed_reason"]
    else:  # every write fails: the status cannot be changed
        assert result["failed_status"] == "running"
    assert result["final_exit"] == 0, result["final_stderr"]
    _assert_same_as_uninterrupted(result)


def test_a_second_trainer_is_refused_while_the_first_holds_the_run(report):
    result = scenario(report, "concurrent")
    assert result["second_exit"] == 2
    assert result["second_stderr"].strip().splitlines() == [
        f"error: run {result['run']!r} is being trained by process {result['first_pid']}; wait for it to end "
        f"(or stop it), then continue with: gencli train --resume {result['run']}"]
    assert result["final_exit"] == 0, result["final_stderr"]
    _assert_same_as_uninterrupted(result)


def test_the_run_lock_names_its_holder_and_is_free_once_released(tmp_path, monkeypatch):
    from gencli.errors import UserError
    from gencli.runs.lock import RunLock

    with RunLock(tmp_path):  # a second open file of the same process conflicts like another process
        with pytest.raises(UserError, match=f"is being trained by process {os.getpid()}; wait for it"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(UserError, match="no permission to write in it; train a copy of it that you own"):
        RunLock(tmp_path).acquire()


# ----------------------------------------------------------------------------- the driver
# Everything below runs in the driver process, and after os.fork() in its children.

EVENTS = [0]  # file operations and training steps this child has done


def _child(argv: list, log: Path, setup=None) -> int:
    """Fork a child that runs ``gencli ARGV`` with stderr to ``log``; return its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        if setup is not None:
            setup()
        from gencli.cli import main

        sys.argv = ["gencli", *map(str, argv)]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported through the exit code and the log
        traceback.print_exc()
    finally:
        if EVENTS[0]:
            (log.parent / "events").write_text(str(EVENTS[0]))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run(argv, log, setup=None) -> tuple[int, str]:
    code = wait_child(_child(argv, log, setup), timeout=60)
    return code, log.read_text()


def _on_event(kill_at: int | None, action=None) -> None:
    EVENTS[0] += 1
    if EVENTS[0] == kill_at:
        if action is not None:
            action()
        os.kill(os.getpid(), 9)


def _count_events(kill_at: int | None = None) -> None:
    """Count every file operation and training step; SIGKILL this process at the ``kill_at``-th.

    At a checkpoint file the kill comes half-way through writing it."""
    import gencli.runs.checkpoints as ckpt
    from gencli_vae.vae import VAE

    def counted(fn):
        def wrapper(*args, **kwargs):
            _on_event(kill_at)
            return fn(*args, **kwargs)

        return wrapper

    os.replace, os.fsync = counted(os.replace), counted(os.fsync)
    VAE.train_step = counted(VAE.train_step)
    write_file = getattr(ckpt, "write_file", None)

    def half_written(path, data):
        _on_event(kill_at, lambda: Path(path).write_bytes(data[: len(data) // 2]))
        return write_file(path, data)

    if write_file is not None:
        ckpt.write_file = half_written


def _leftovers(run: Path) -> list[str]:
    found = []
    for folder in (run, run / "checkpoints", run / "samples"):
        found += [str(p.relative_to(run)) for p in folder.glob(".*") if ".tmp" in p.name]
    return sorted(found)


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("images_per_s", None)  # a rate of the wall clock, never the same twice
    return rows


def _latest_step(run: Path) -> int | None:
    from gencli.runs.checkpoints import latest_checkpoint

    last = latest_checkpoint(run) if run.exists() else None
    return int(json.loads((last / "meta.json").read_text())["step"]) if last else None


def _status(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


class Driver:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir()
        self.n = 0

    def log(self) -> Path:
        self.n += 1
        return self.logs / f"{self.n}.txt"

    def outcome(self, run: Path) -> dict:
        weights = (run / "checkpoints" / "latest").read_text().strip()
        return {"status": _status(run)["status"], "rows": _rows(run), "reference_rows": self.reference_rows,
                "same_weights": (run / "checkpoints" / weights / "weights.safetensors").read_bytes() == self.weights,
                "leftovers": _leftovers(run)}

    def resume(self, run: Path) -> dict:
        code, err = _run(["-q", "train", "--resume", run], self.log())
        return {"final_exit": code, "final_stderr": err, **self.outcome(run)}

    def reference(self) -> dict:
        run = self.work / "reference"
        code, err = _run([*TRAIN, "--out", run], self.log(), _count_events)
        assert code == 0, err
        self.events = int((self.logs / "events").read_text()) if (self.logs / "events").exists() else 0
        self.reference_rows = _rows(run)
        self.weights = (run / "checkpoints" / "step-00000024" / "weights.safetensors").read_bytes()
        return {"events": self.events}

    def sigkill(self) -> dict:
        import random

        rng = random.Random(20261129)
        trials = []
        for trial in range(KILL_TRIALS):
            run = self.work / f"kill-{trial}"
            argv, kills, in_write, leftovers = [*TRAIN, "--out", run], [], False, False
            while True:
                target = rng.randint(1, self.events) if len(kills) < 3 else None
                code, err = _run(argv, self.log(), lambda target=target: _count_events(target))
                if code != -9:
                    break
                kills.append(target)
                in_write = in_write or any(".tmp" in p.name for p in (run / "checkpoints").glob(".step-*"))
                leftovers = leftovers or bool(_leftovers(run)) if run.exists() else leftovers
                if _latest_step(run) is None:  # killed before its first checkpoint: start again
                    import shutil

                    shutil.rmtree(run, ignore_errors=True)
                    argv = [*TRAIN, "--out", run]
                else:
                    argv = ["-q", "train", "--resume", run]
            trials.append({"kills": kills, "final_exit": code, "final_stderr": err, "killed_in_checkpoint_write": in_write,
                           "leftovers_after_kill": leftovers, **self.outcome(run)})
        return {"trials": trials}

    def sigint(self, step: int) -> dict:
        from gencli_vae.vae import VAE

        def interrupt_at_step():
            train_step = VAE.train_step

            def wrapper(model, batch):
                out = train_step(model, batch)
                if model.step + 1 == step:  # the engine counts the step after train_step returns
                    os.kill(os.getpid(), 2)
                return out

            VAE.train_step = wrapper

        run = self.work / f"sigint-{step}"
        code, err = _run([*TRAIN, "--out", run], self.log(), interrupt_at_step)
        result = {"interrupted_exit": code, "interrupted_stderr": err, "interrupted_status": _status(run)["status"],
                  "interrupted_checkpoint": _latest_step(run)}
        return {**result, **self.resume(run)}

    def after_final(self, signal_number: int) -> dict:
        def stop_before_the_gif():
            import gencli.media.images as images

            images.gif_from_pngs = lambda *a, **k: os.kill(os.getpid(), signal_number)

        run = self.work / f"after-final-{signal_number}"
        _run([*TRAIN, "--out", run], self.log(), stop_before_the_gif)
        result = {"stopped_status": _status(run)["status"], "stopped_checkpoint": _latest_step(run)}
        result.update(self.resume(run))
        return {**result, "gif": (run / "progress.gif").is_file(), "plot": (run / "losses.png").is_file()}

    def write_fault(self, fault: str) -> dict:
        import errno

        import gencli.runs.checkpoints as ckpt

        def fail_from_the_second_checkpoint():
            save_checkpoint, calls = ckpt.save_checkpoint, [0]

            def wrapper(*args, **kwargs):
                calls[0] += 1
                if calls[0] == 2:
                    refuse_writes()
                return save_checkpoint(*args, **kwargs)

            ckpt.save_checkpoint = wrapper

        def refuse_writes():
            if fault == "EFBIG":
                import resource

                resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, resource.RLIM_INFINITY))
            else:
                code = getattr(errno, fault)

                def refuse(fd):
                    raise OSError(code, os.strerror(code))

                os.fsync = refuse

        run = self.work / f"write-{fault}"
        code, err = _run([*TRAIN, "--out", run], self.log(), fail_from_the_second_checkpoint)
        info = _status(run)
        result = {"failed_exit": code, "failed_stderr": err, "failed_status": info["status"],
                  "failed_reason": info.get("reason", ""), "failed_checkpoint": _latest_step(run),
                  "leftovers_after_failure": [p for p in _leftovers(run) if p.startswith("checkpoints")],
                  "cause": CAUSES[fault]}
        return {**result, **self.resume(run)}

    def concurrent(self) -> dict:
        from gencli_vae.vae import VAE

        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()

        def pause_at_step_5():
            train_step = VAE.train_step

            def wrapper(model, batch):
                if model.step == 5:
                    os.write(ready_w, b"1")
                    os.read(go_r, 1)
                return train_step(model, batch)

            VAE.train_step = wrapper

        run = self.work / "concurrent"
        first_log = self.log()
        first = _child([*TRAIN, "--out", run], first_log, pause_at_step_5)
        os.read(ready_r, 1)
        second_code, second_err = _run(["-q", "train", "--resume", run], self.log())
        os.write(go_w, b"1")
        code = wait_child(first, timeout=60)
        return {"run": str(run), "first_pid": first, "second_exit": second_code, "second_stderr": second_err,
                "final_exit": code, "final_stderr": first_log.read_text(), **self.outcome(run)}


def main(work: Path) -> None:
    import torch

    import gencli.cli  # noqa: F401
    from gencli.training.engine import TrainConfig, train

    # One throwaway run imports and warms up everything a run touches (plots, GIFs, the display),
    # so that each forked child only trains.
    torch.set_num_threads(1)
    train(TrainConfig(model="vae", data="shapes", steps=1, image_size=8, batch_size=4, quiet=True,
                      overrides={"widths": "4,8", "latent_dim": "2"}, out=work / "warm-up"))
    driver = Driver(work)
    scenarios = {"reference": driver.reference, "sigkill": driver.sigkill,
                 **{f"sigint-{s}": (lambda s=s: driver.sigint(s)) for s in (7, 9, 10)},
                 "after-final-SIGINT": lambda: driver.after_final(2), "after-final-SIGKILL": lambda: driver.after_final(9),
                 **{f"write-{f}": (lambda f=f: driver.write_fault(f)) for f in ("EFBIG", "ENOSPC", "EROFS")},
                 "concurrent": driver.concurrent}
    report = {}
    for name, run in scenarios.items():
        started = time.perf_counter()
        try:
            report[name] = run()
            report[name]["seconds"] = round(time.perf_counter() - started, 2)
        except Exception:  # noqa: BLE001 - one broken scenario must not hide the others
            report[name] = {"error": traceback.format_exc()}
            if name == "reference":
                break
    (work / "report.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
