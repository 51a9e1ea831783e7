"""A run is a sealed folder: a link planted anywhere inside it is refused, never followed.

A run folder may come from a stranger. Every path the core reads, writes, renames or deletes
inside a run is listed in ``CASES``; for each, the test plants a link there (to a victim file or
folder outside the run, made by the test, holding what the run's own file or folder held, so a
command that followed the link would work), runs every command that touches the path, and checks
the outcome: exit code 2, one ``error:`` line naming the link, no traceback, and the victim's
bytes (a folder's listing and contents) unchanged.

``translate`` is not in the table: a translation run costs more to train than the whole table
and its one run path (``RUN/translated``) goes through the same check as ``RUN/generated``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "O_NOFOLLOW"), reason="links are refused where the platform can tell")

STEP = "step-00000002"
COMMANDS = {
    "eval": ["eval", "{run}", "--metrics", "mse", "--n", "8", "--batch-size", "8"],
    "sample": ["sample", "{run}", "--n", "4"],
    "interpolate": ["interpolate", "{run}", "--frames", "2"],
    "resume": ["-q", "train", "--resume", "{run}", "--steps", "3"],
}
ALL = tuple(COMMANDS)


@dataclass
class Case:
    path: str  # inside the run
    kind: str  # what the link points to: "file", "folder", or "loop" (a link to itself)
    commands: tuple[str, ...]


CASES = [
    Case("run.json", "file", ALL),
    Case("metrics.jsonl", "file", ("eval", "resume")),
    Case(".lock", "file", ("resume",)),
    Case("checkpoints", "folder", ALL),
    Case("checkpoints/latest", "file", ALL),
    Case(f"checkpoints/{STEP}", "folder", ("eval", "resume")),
    Case(f"checkpoints/{STEP}/meta.json", "file", ("sample", "resume")),
    Case(f"checkpoints/{STEP}/weights.safetensors", "file", ("interpolate", "resume")),
    Case(f"checkpoints/{STEP}/state.pt", "file", ("resume",)),
    Case("samples", "folder", ("resume",)),
    Case("samples", "loop", ("resume",)),
    Case(f"samples/{STEP}.png", "file", ("resume",)),
    Case("progress.gif", "file", ("resume",)),
    Case("losses.png", "file", ("resume",)),
    Case("eval", "folder", ("eval",)),
    Case("eval", "loop", ("eval",)),
    Case("eval/reconstructions.png", "file", ("eval",)),
    Case("eval/latents.png", "file", ("eval",)),
    Case("generated", "folder", ("sample", "interpolate")),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A tiny VAE run with every file the table plants a link at: checkpoint, samples, eval figures, outputs."""
    from typer.testing import CliRunner

    from gencli.cli import app
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("sealed")
    run = train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, sample_every=1,
                            overrides={"widths": "8,16"}, quiet=True, out=root / "run"))
    runner = CliRunner()
    for name in ("eval", "sample"):
        result = runner.invoke(app, [a.format(run=run) for a in COMMANDS[name]])
        assert result.exit_code == 0, result.output
    return run


def fingerprint(path: Path) -> str:
    """A hash of a file's bytes, or of a folder's listing and every file's bytes (links not followed)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for folder, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            f = Path(folder) / name
            digest.update(str(f.relative_to(path)).encode())
            digest.update(f.read_bytes() if not f.is_symlink() else os.readlink(f).encode())
        digest.update(("dirs:" + ",".join(dirs)).encode())
    return digest.hexdigest()


def plant(run: Path, case: Case, outside: Path) -> Path | None:
    """Replace ``case.path`` of ``run`` with a link; return the victim it points to (None for a loop)."""
    inside = run / case.path
    if case.kind == "loop":
        if inside.exists():
            shutil.rmtree(inside)
        inside.symlink_to(inside.name)
        return None
    victim = outside / ("victim-" + case.path.replace("/", "-").lstrip("."))
    if case.kind == "file":
        victim.write_bytes(inside.read_bytes() if inside.is_file() else b"the victim's own bytes\n")
    else:
        if inside.is_dir():
            shutil.copytree(inside, victim)
        else:
            victim.mkdir()
        (victim / ".draft.tmp").write_text("someone's draft")  # what a leftover cleanup must not reach
        (victim / ".keep.tmp-data").mkdir()
        (victim / ".keep.tmp-data" / "notes.txt").write_text("keep me")
    if inside.is_dir() and not inside.is_symlink():
        shutil.rmtree(inside)
    elif inside.exists() or inside.is_symlink():
        inside.unlink()
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.symlink_to(victim, target_is_directory=case.kind == "folder")
    return victim


def assert_refused(result, named: str) -> None:
    output = result.stdout + result.stderr
    assert result.exit_code == 2, output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.path}-{c.kind}")
def test_a_link_inside_a_run_is_refused_and_its_target_is_untouched(case, finished_run, tmp_path, cli):
    for command in case.commands:
        outside = tmp_path / f"outside-{command}"
        outside.mkdir()
        run = Path(shutil.copytree(finished_run, tmp_path / f"run-{command}", symlinks=True))
        victim = plant(run, case, outside)
        before = fingerprint(victim) if victim is not None else None
        result = cli(*[a.format(run=run) for a in COMMANDS[command]])
        assert_refused(result, case.path)
        if victim is not None:
            assert fingerprint(victim) == before, f"{command} changed what {case.path} links to"


# ----------------------------------------------------------------------------- leftovers and temporary names
def test_an_old_fixed_temporary_name_that_is_a_link_is_never_written_through(finished_run, tmp_path, cli):
    """Temporary names are unique: a link planted at a name eval once used is never touched."""
    run = Path(shutil.copytree(finished_run, tmp_path / "run", symlinks=True))
    victim = tmp_path / "victim"
    victim.write_bytes(b"the victim's own bytes\n")
    for name in (".reconstructions.tmp.png", ".latents.tmp.png"):
        (run / "eval" / name).symlink_to(victim)
    result = cli(*[a.format(run=run) for a in COMMANDS["eval"]])
    assert victim.read_bytes() == b"the victim's own bytes\n"
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert_refused(result, "eval/.")


def test_a_refused_resume_clears_no_leftovers(finished_run, tmp_path, cli):
    """Leftover cleanup happens after the run is found sound: a refused resume deletes nothing."""
    run = Path(shutil.copytree(finished_run, tmp_path / "run", symlinks=True))
    (run / "checkpoints" / "latest").write_text("../../elsewhere")
    leftover = run / "checkpoints" / ".step-00000009.tmp-1"
    leftover.mkdir()
    result = cli(*[a.format(run=run) for a in COMMANDS["resume"]])
    assert result.exit_code == 2 and "latest" in result.stderr
    assert leftover.is_dir()


# ----------------------------------------------------------------------------- what is not a link
def test_a_latest_pointer_never_echoes_what_it_holds(finished_run, tmp_path, cli):
    run = Path(shutil.copytree(finished_run, tmp_path / "run", symlinks=True))
    secret = tmp_path / "secret"
    secret.write_text("root:SECRET-HASH:0:0\n" * 50)
    pointer = run / "checkpoints" / "latest"
    pointer.unlink()
    pointer.symlink_to(secret)
    result = cli(*[a.format(run=run) for a in COMMANDS["sample"]])
    assert_refused(result, "checkpoints/latest")
    assert "SECRET" not in result.stderr
    pointer.unlink()
    pointer.write_text("\x1b[2J" + "junk " * 100)  # a terminal escape and a long line: not a name
    result = cli(*[a.format(run=run) for a in COMMANDS["sample"]])
    assert_refused(result, "checkpoints/latest")
    assert "junk" not in result.stderr and "\x1b" not in result.stderr


def test_an_eval_folder_that_is_a_file_is_one_line(finished_run, tmp_path, cli):
    run = Path(shutil.copytree(finished_run, tmp_path / "run", symlinks=True))
    shutil.rmtree(run / "eval")
    (run / "eval").write_text("not a folder")
    result = cli(*[a.format(run=run) for a in COMMANDS["eval"]])
    assert_refused(result, "eval")
    assert (run / "eval").read_text() == "not a folder"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.mkdir()


def _device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("making a device node needs privileges")


@pytest.mark.parametrize("make", [_folder, _fifo, _device], ids=["folder", "fifo", "device"])
def test_a_lock_that_is_not_a_plain_file_is_one_line(finished_run, tmp_path, cli, make):
    run = Path(shutil.copytree(finished_run, tmp_path / "run", symlinks=True))
    (run / ".lock").unlink()
    make(run / ".lock")
    before = (run / "run.json").read_bytes()
    result = cli(*[a.format(run=run) for a in COMMANDS["resume"]])
    assert_refused(result, ".lock")
    assert (run / "run.json").read_bytes() == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the second trainer is a forked process")
@pytest.mark.parametrize("why", ["held", "finished", "setting"])
def test_a_refused_resume_leaves_the_lock_and_run_json_as_they_were(finished_run, tmp_path, why):
    """A second process refused (another holds the run, the run is finished, a setting cannot change)
    writes nothing: not its id into ``.lock``, not run.json."""
    from cli_helpers import fork_cli, wait_child

    from gencli.runs.lock import RunLock

    run = Path(shutil.copytree(finished_run, tmp_path / "run", symlinks=True))
    (run / ".lock").write_text("12345\n")  # the id of a trainer long gone
    args = {"held": COMMANDS["resume"], "finished": ["train", "--resume", "{run}"],
            "setting": [*COMMANDS["resume"], "--batch-size", "4"]}[why]
    holder = RunLock(run).acquire() if why == "held" else None
    try:
        lock_before, info_before = (run / ".lock").read_bytes(), (run / "run.json").read_bytes()
        pid = fork_cli(*[a.format(run=run) for a in args], log=tmp_path / "log")
        code, stderr = wait_child(pid), (tmp_path / "log").read_text()
        assert code == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert (run / ".lock").read_bytes() == lock_before
        assert (run / "run.json").read_bytes() == info_before
    finally:
        if holder is not None:
            holder.release()
