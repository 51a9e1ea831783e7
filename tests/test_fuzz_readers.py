"""Property tests of the readers of files a user hands us: run.json, a checkpoint's state.pt and
meta.json, metrics.jsonl and a TOML ``--config``. Whatever a mutation does to one of them (a field
deleted, a value of another type, an extreme number, nan and inf, deep nesting, a cut file, random
bytes), the command reading it ends in exit code 0 or in one ``error:`` line with exit code 2:
never a traceback, never a hang, and nothing changed outside the run it was asked to write.

Runs in-process through the Typer test runner; examples are derandomized, so a failure found once
is found on every machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = 15  # per test: each reader meets 25 to 45 mutations
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# Values that stand in for a field's own: other types, extremes, nan and inf (as numbers and as text).
ODD_VALUES = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**70, -(2**70), 10**12 + 1, 4096, 8192]),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 0.5]),
    st.sampled_from(["", "nan", "inf", "-inf", "NaN", "1e999", "abc", "2ep", "step-00000002", "../x", "\x1b[2J"]),
    st.lists(st.integers(-3, 20), max_size=4),
    st.dictionaries(st.sampled_from(["a", "step", "sums"]), st.integers(-1, 3), max_size=2),
    st.integers(1, 60).map(lambda depth: _nested(depth)),
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth * 20):  # up to 1,200 levels: deeper than any reader recurses by default
        value = [value] if i % 2 else {"k": value}
    return value


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested tables and lists (tensors are leaves)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, (list, tuple)) and len(value) <= 32:
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(tree: Any, path: tuple, action: str, value: Any) -> Any:
    """Return ``tree`` with the value at ``path`` deleted or replaced (tuples become lists)."""
    if isinstance(tree, tuple):
        tree = list(tree)
    parent = tree
    for key in path[:-1]:
        child = parent[key]
        if isinstance(child, tuple):
            child = parent[key] = list(child)
        parent = child
    if action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


MUTATION = st.tuples(st.integers(0, 10**6), st.sampled_from(["delete", "replace", "replace"]), ODD_VALUES)
FILE_DAMAGE = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("bytes"), st.binary(max_size=64)),
    st.tuples(st.just("text"), st.sampled_from(["nan", "[]", "{}", "null", '{"a": NaN}', "1e999", "\ufeff{}",
                                                 "[" * 5000 + "]" * 5000, '{"step": 1}' * 3])),
)


# ------------------------------------------------------------------ the run and the checks
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("fuzz-readers")
    run = train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8,
                            overrides={"widths": "8,16"}, quiet=True, sample_count=4, out=root / "run"))
    # one eval line, so metrics.jsonl holds both kinds of row
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"eval": {"mse": 0.5}, "settings": {"data": "shapes", "step": 2, "label": None}}) + "\n")
    return run


@pytest.fixture(scope="module")
def runner():
    from typer.testing import CliRunner

    from gencli.cli import app

    cli = CliRunner()
    return lambda *args: cli.invoke(app, [str(a) for a in args])


def _digest(root: Path) -> dict[str, str]:
    seen = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            seen[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return seen


class _Deadline:
    """Turns a command running past ``seconds`` (a hang) into a failure."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds

    def __enter__(self):
        def expired(signum, frame):
            raise TimeoutError(f"the command ran past {self.seconds} s")
        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


def _check(result, work: Path, before: dict[str, str], writes: set[str] = frozenset()) -> None:
    """Exit 0, or exit 2 with one ``error:`` line; no traceback; only ``writes`` changed in ``work``."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}") from result.exception
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        after = _digest(work)
        assert after == before, "a refused command changed files"
    else:
        after = _digest(work)
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        assert all(any(k.startswith(w) for w in writes) for k in changed), sorted(changed)


def _fresh(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "work"
    if work.exists():
        shutil.rmtree(work)
    run = work / "run"
    shutil.copytree(tiny_run, run)
    return work, run


def _damage_file(path: Path, damage: tuple) -> None:
    kind, what = damage
    data = path.read_bytes()
    if kind == "cut":
        path.write_bytes(data[: int(len(data) * what)])
    elif kind == "bytes":
        path.write_bytes(what)
    else:
        path.write_bytes(what.encode())


# What each command may write when it succeeds: its own outputs, nothing else of the run.
SAMPLE = (["sample", "{run}", "--n", "2", "--out", "{work}/out.png"], {"out.png"})
RESUME = (["train", "--resume", "{run}", "--steps", "3"], {"run/"})
# A run already at step 2 refuses --steps 2, after every file was read and checked: fast.
CHECKED = (["train", "--resume", "{run}", "--steps", "2"], {"run/"})
RESUMES = st.just(CHECKED)
TRAINS = st.sampled_from([CHECKED, CHECKED, CHECKED, RESUME])  # now and then a resume that trains on
COMPARE = (["eval", "{run}", "--compare"], set())


def _invoke(runner, command, work: Path, run: Path):
    args, writes = command
    with _Deadline(60):
        result = runner(*[a.format(run=run, work=work) for a in args])
    return result, writes


# ------------------------------------------------------------------ run.json
@FUZZ
@given(mutation=MUTATION, command=st.one_of(st.just(SAMPLE), TRAINS))
def test_a_mutated_run_json_ends_in_success_or_one_line(tiny_run, tmp_path, runner, mutation, command):
    work, run = _fresh(tiny_run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    paths = _paths(info)
    pick, action, value = mutation
    info = _mutate(info, paths[pick % len(paths)], action, value)
    try:
        text = json.dumps(info)
    except (ValueError, RecursionError):
        return
    (run / "run.json").write_text(text)
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


@FUZZ
@given(damage=FILE_DAMAGE, command=st.one_of(st.just(SAMPLE), RESUMES, st.just(COMPARE)))
def test_a_broken_run_json_file_ends_in_one_line(tiny_run, tmp_path, runner, damage, command):
    work, run = _fresh(tiny_run, tmp_path)
    _damage_file(run / "run.json", damage)
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


# ------------------------------------------------------------------ a checkpoint: state.pt and meta.json
CKPT = "checkpoints/step-00000002"


@FUZZ
@given(mutation=MUTATION, command=TRAINS)
def test_a_mutated_state_pt_ends_in_success_or_one_line(tiny_run, tmp_path, runner, mutation, command):
    work, run = _fresh(tiny_run, tmp_path)
    path = run / CKPT / "state.pt"
    state = torch.load(path, weights_only=True)
    paths = _paths(state)
    pick, action, value = mutation
    if isinstance(value, (dict, list)) and _paths(value) and len(_paths(value)) > 40:
        value = 7  # torch.save pickles recursively: deep nesting is run.json's and meta.json's to test
    if isinstance(value, float) and math.isnan(value):
        value = torch.tensor(float("nan"))  # a tensor too, not only numbers, where tensors are expected
    state = _mutate(state, paths[pick % len(paths)], action, value)
    torch.save(state, path)
    meta = json.loads((run / CKPT / "meta.json").read_text())
    meta["files"]["state.pt"] = path.stat().st_size
    (run / CKPT / "meta.json").write_text(json.dumps(meta))
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


@FUZZ
@given(mutation=MUTATION, command=st.one_of(st.just(SAMPLE), RESUMES))
def test_a_mutated_meta_json_ends_in_success_or_one_line(tiny_run, tmp_path, runner, mutation, command):
    work, run = _fresh(tiny_run, tmp_path)
    meta = json.loads((run / CKPT / "meta.json").read_text())
    paths = _paths(meta)
    pick, action, value = mutation
    meta = _mutate(meta, paths[pick % len(paths)], action, value)
    try:
        text = json.dumps(meta)
    except (ValueError, RecursionError):
        return
    (run / CKPT / "meta.json").write_text(text)
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


@FUZZ
@given(damage=FILE_DAMAGE, name=st.sampled_from(["state.pt", "meta.json"]), command=st.one_of(st.just(SAMPLE), RESUMES))
def test_a_broken_checkpoint_file_ends_in_one_line(tiny_run, tmp_path, runner, damage, name, command):
    work, run = _fresh(tiny_run, tmp_path)
    _damage_file(run / CKPT / name, damage)
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


# ------------------------------------------------------------------ metrics.jsonl
@FUZZ
@given(mutation=MUTATION, line=st.integers(0, 1), command=st.one_of(RESUMES, st.just(COMPARE)))
def test_a_mutated_metrics_line_ends_in_success_or_one_line(tiny_run, tmp_path, runner, mutation, line, command):
    work, run = _fresh(tiny_run, tmp_path)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    row = json.loads(lines[line])
    paths = _paths(row)
    pick, action, value = mutation
    row = _mutate(row, paths[pick % len(paths)], action, value)
    try:
        lines[line] = json.dumps(row)
    except (ValueError, RecursionError):
        return
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


@FUZZ
@given(damage=FILE_DAMAGE, command=st.one_of(RESUMES, st.just(COMPARE)))
def test_a_broken_metrics_file_ends_in_success_or_one_line(tiny_run, tmp_path, runner, damage, command):
    work, run = _fresh(tiny_run, tmp_path)
    _damage_file(run / "metrics.jsonl", damage)
    before = _digest(work)
    _check(_invoke(runner, command, work, run)[0], work, before, command[1])


# ------------------------------------------------------------------ a TOML --config
TOML_KEYS = ["steps", "epochs", "batch_size", "image_size", "channels", "lr", "seed", "precision", "device",
             "sample_every", "checkpoint_every", "log_every", "keep_checkpoints", "eval_every", "eval_n", "data",
             "model", "compile", "hyperparameters", "latent_dim", "widths"]
TOML_VALUES = st.sampled_from(["0", "-1", "1", "9223372036854775808", "1e999", "nan", "inf", "-inf", '"nan"',
                               '"abc"', "true", "[]", "[1, 2]", "{}", "{a = 1}", '""', "3.5", '"2ep"',
                               "1979-05-27T07:32:00Z"])


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from(TOML_KEYS), TOML_VALUES), min_size=1, max_size=3),
       table=st.booleans(), damage=st.one_of(st.none(), FILE_DAMAGE))
def test_a_mutated_toml_config_ends_in_one_line(tmp_path, runner, pairs, table, damage):
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    seen = dict(pairs)
    body = "\n".join(f"{k} = {v}" for k, v in seen.items())
    text = ("[hyperparameters]\n" + body if table else body + "\n[hyperparameters]\nwidths = [8, 16]") + "\n"
    (work / "c.toml").write_text(text)
    if damage is not None:
        _damage_file(work / "c.toml", damage)
    before = _digest(work)
    # --steps 0 stops every config that is accepted at the first check of the command line's own values
    with _Deadline(60):
        result = runner("train", "vae", "--config", work / "c.toml", "--steps", "0", "--out", work / "run")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    _check(result, work, before)
