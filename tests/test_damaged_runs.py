"""A run whose files hold damaged values ends in one line naming the file and the field, exit
code 2, and writes nothing: not the lock, not the status, not a truncated metrics.jsonl.

Each row of ``CASES`` damages one value of a copy of a finished tiny VAE run (``run.json``, a
checkpoint's ``state.pt`` or ``meta.json``, or ``metrics.jsonl``), runs one real command on it, and
names the text its error line must hold. The test compares every file of the run (bytes, and the
lock's modification time: taking the lock rewrites it) before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

TRAIN = ["train", "--resume", "{run}", "--steps", "4"]
SAMPLE = ["sample", "{run}", "--n", "2", "--out", "{tmp}/s.png"]
EVAL = ["eval", "{run}", "--metrics", "mse", "--n", "4", "--batch-size", "4", "--device", "cpu"]
COMPARE = ["eval", "{run}", "--compare"]
CKPT = "checkpoints/step-00000002"


def run_json(*path: str, value=None, delete: bool = False) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        info = json.loads((run / "run.json").read_text())
        table = info
        for key in path[:-1]:
            table = table[key]
        if delete:
            del table[path[-1]]
        else:
            table[path[-1]] = value
        (run / "run.json").write_text(json.dumps(info))
    return damage


def state_pt(key: str, value) -> Callable[[Path], None]:
    """Set ``key`` (dotted) of the checkpoint's state.pt, and the size meta.json records for it."""
    def damage(run: Path) -> None:
        path = run / CKPT / "state.pt"
        state = torch.load(path, weights_only=True)
        *parts, last = [int(p) if p.isdigit() else p for p in key.split(".")]
        table = state
        for part in parts:
            table = table[part]
        table[last] = value(table[last]) if callable(value) else value
        torch.save(state, path)
        meta_json("files", "state.pt", value=path.stat().st_size)(run)
    return damage


def meta_json(*path: str, value=None) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        meta = json.loads((run / CKPT / "meta.json").read_text())
        table = meta
        for key in path[:-1]:
            table = table[key]
        table[path[-1]] = value
        (run / CKPT / "meta.json").write_text(json.dumps(meta))
    return damage


def metrics_line(line: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(line + "\n")
    return damage


@dataclass
class Case:
    id: str
    args: list[str]
    damage: Callable[[Path], None]
    message: str  # the field, as the error line names it
    file: str = "run.json"  # the file the error line names


CASES = [
    # run.json: training settings
    Case("seed-word", TRAIN, run_json("training", "seed", value="abc"), "training.seed"),
    Case("seed-2-70", TRAIN, run_json("training", "seed", value=2**70), "training.seed"),
    Case("seed-2-70-sample", SAMPLE, run_json("training", "seed", value=2**70), "training.seed"),
    Case("seed-negative-eval", EVAL, run_json("training", "seed", value=-1), "training.seed"),
    Case("log-every-0", TRAIN, run_json("training", "log_every", value=0), "training.log_every"),
    Case("batch-0", TRAIN, run_json("training", "batch_size", value=0), "training.batch_size"),
    Case("batch-missing", TRAIN, run_json("training", "batch_size", delete=True), "training.batch_size"),
    Case("batch-float", TRAIN, run_json("training", "batch_size", value=8.5), "training.batch_size"),
    Case("steps-word", TRAIN, run_json("training", "steps", value="many"), "training.steps"),
    Case("precision-fp8", TRAIN, run_json("training", "precision", value="fp8"), "training.precision"),
    Case("sample-every-0", TRAIN, run_json("training", "sample_every", value=0), "training.sample_every"),
    Case("checkpoint-every-list", TRAIN, run_json("training", "checkpoint_every", value=[1]), "training.checkpoint_every"),
    Case("keep-negative", TRAIN, run_json("training", "keep_checkpoints", value=-3), "training.keep_checkpoints"),
    Case("sample-count-0", TRAIN, run_json("training", "sample_count", value=0), "training.sample_count"),
    # run.json: data
    Case("image-shape-8192", TRAIN, run_json("data", "image_shape", value=[3, 8192, 8192]), "data.image_shape"),
    Case("image-shape-8192-sample", SAMPLE, run_json("data", "image_shape", value=[3, 8192, 8192]), "data.image_shape"),
    Case("image-shape-16x17", SAMPLE, run_json("data", "image_shape", value=[3, 16, 17]), "data.image_shape"),
    Case("image-shape-16x17-resume", TRAIN, run_json("data", "image_shape", value=[3, 16, 17]), "data.image_shape"),
    Case("image-shape-5-channels", EVAL, run_json("data", "image_shape", value=[5, 16, 16]), "data.image_shape"),
    Case("image-shape-bool", SAMPLE, run_json("data", "image_shape", value=[True, 16, 16]), "data.image_shape"),
    Case("classes-number", SAMPLE, run_json("data", "classes", value=6), "data.classes"),
    Case("classes-number-resume", TRAIN, run_json("data", "classes", value=6), "data.classes"),
    Case("classes-of-numbers", EVAL, run_json("data", "classes", value=[1, 2, 3, 4, 5, 6]), "data.classes"),
    Case("spec-number", TRAIN, run_json("data", "spec", value=5), "data.spec"),
    Case("load-size-word", TRAIN, run_json("data", "load_size", value="big"), "data.load_size"),
    # run.json: the run itself
    Case("step-negative", SAMPLE, run_json("step", value=-1), "'step'"),
    Case("step-word", TRAIN, run_json("step", value="two"), "'step'"),
    Case("status-number", TRAIN, run_json("status", value=5), "'status'"),
    Case("resumes-dict", TRAIN, run_json("resumes", value={"a": 1}), "'resumes'"),
    Case("schema-word", SAMPLE, run_json("schema", value="one"), "'schema'"),
    Case("hyperparameter-huge", SAMPLE, run_json("hyperparameters", "latent_dim", value=2**70), "latent_dim"),
    Case("hyperparameter-nan", TRAIN, run_json("hyperparameters", "beta", value=float("nan")), "beta"),
    # state.pt
    Case("state-step-negative", TRAIN, state_pt("step", -5), "step", "state.pt"),
    Case("state-step-word", TRAIN, state_pt("step", "two"), "step", "state.pt"),
    Case("state-step-inconsistent", TRAIN, state_pt("step", 7), "step", "state.pt"),
    Case("state-epoch-word", TRAIN, state_pt("epoch", "zero"), "epoch", "state.pt"),
    Case("state-batch-in-epoch-negative", TRAIN, state_pt("batch_in_epoch", -1), "batch_in_epoch", "state.pt"),
    Case("state-batch-in-epoch-beyond", TRAIN, state_pt("batch_in_epoch", 10**6), "batch_in_epoch", "state.pt"),
    Case("state-rng-wrong-dtype", TRAIN, state_pt("rng.torch", lambda t: t.float()), "rng", "state.pt"),
    Case("state-rng-wrong-shape", TRAIN, state_pt("rng.torch", lambda t: t[:10]), "rng", "state.pt"),
    Case("state-rng-missing", TRAIN, state_pt("rng", {}), "rng", "state.pt"),
    Case("state-optimizer-lr-word", TRAIN, state_pt("optimizers.vae.param_groups.0.lr", "fast"), "optimizers", "state.pt"),
    Case("state-optimizer-groups", TRAIN, state_pt("optimizers.vae.param_groups", []), "optimizers", "state.pt"),
    Case("state-optimizer-moment-shape", TRAIN,
         state_pt("optimizers.vae.state.0.exp_avg", lambda t: t.flatten()[:1]), "optimizers", "state.pt"),
    Case("state-optimizer-not-a-dict", TRAIN, state_pt("optimizers.vae", 5), "optimizers", "state.pt"),
    Case("state-loop-sums", TRAIN, state_pt("loop", {"losses": {"sums": {"loss": "x"}, "count": 1}}), "loop", "state.pt"),
    Case("state-format", TRAIN, state_pt("format", 99), "format", "state.pt"),
    # meta.json
    Case("meta-step-word", SAMPLE, meta_json("step", value="two"), "step", "meta.json"),
    Case("meta-step-word-resume", TRAIN, meta_json("step", value="two"), "step", "meta.json"),
    Case("meta-model-number", EVAL, meta_json("model", value=5), "model", "meta.json"),
    Case("meta-size-word", SAMPLE, meta_json("files", "state.pt", value="big"), "state.pt", "meta.json"),
    Case("meta-epoch-negative", TRAIN, meta_json("epoch", value=-1), "epoch", "meta.json"),
    # metrics.jsonl
    Case("metrics-list-row", TRAIN, metrics_line("[1, 2, 3]"), "line 2", "metrics.jsonl"),
    Case("metrics-step-word", TRAIN, metrics_line('{"step": "x", "loss": 1.0}'), "step", "metrics.jsonl"),
    Case("metrics-loss-word", TRAIN, metrics_line('{"step": 1, "loss": "high"}'), "loss", "metrics.jsonl"),
    Case("metrics-eval-settings", COMPARE, metrics_line('{"eval": {"mse": 1.0}, "settings": 5}'), "settings",
         "metrics.jsonl"),
    Case("metrics-eval-value", COMPARE, metrics_line('{"eval": {"mse": "low"}}'), "mse", "metrics.jsonl"),
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("damaged-runs")
    return train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8,
                             overrides={"widths": "8,16"}, quiet=True, sample_count=4, out=root / "run"))


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root``: a hash of its bytes (and, for the lock, its modification time)."""
    seen = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            seen[str(path.relative_to(root))] = f"{digest} {path.stat().st_mtime_ns}" if name == ".lock" else digest
    return seen


@pytest.fixture
def deadline():
    """Fail a test that runs past 60 s (a resume spinning over an empty epoch) instead of hanging."""
    def expired(signum, frame):
        raise TimeoutError("the command did not finish within 60 s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_damaged_value_is_one_line_naming_it_and_changes_nothing(case, tiny_run, tmp_path, cli, monkeypatch,
                                                                   deadline):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    case.damage(run)
    monkeypatch.chdir(tmp_path)
    before = snapshot(run)
    result = cli(*[a.format(run=run, tmp=tmp_path) for a in case.args])
    assert "Traceback" not in result.stderr + result.stdout and result.exception is None or \
        isinstance(result.exception, SystemExit), (result.exception, result.stderr)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.file in lines[0] and case.message in lines[0], lines[0]
    assert snapshot(run) == before, "the refused command changed the run's files"
    assert not (tmp_path / "s.png").exists()


def test_an_intact_copy_of_the_run_resumes_and_samples(tiny_run, tmp_path, cli):
    """The table's damage is what fails each case: the same commands on an undamaged copy work."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for args in (SAMPLE, EVAL, COMPARE, ["train", "--resume", "{run}", "--steps", "3"]):
        result = cli(*[a.format(run=run, tmp=tmp_path) for a in args])
        assert result.exit_code == 0, (args, result.stderr)
    assert json.loads((run / "run.json").read_text())["step"] == 3
