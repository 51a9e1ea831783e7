"""Every user mistake the command line can meet ends the same way: exit code 2, exactly one line
on stderr, no traceback, and nothing already on disk changed.

Each row of ``CASES`` is one mistake. To add one, give the command-line arguments (``{run}`` is a
copy of a finished tiny VAE run, ``{other}`` a second run, ``{tmp}`` the test's folder), the text
its error line must hold, and any files to write first (``files``: path under ``{tmp}`` -> bytes,
or a callable that builds them). The test hashes every file under ``{tmp}`` before and after.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TINY = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "8"]


@dataclass
class Case:
    id: str
    args: list[str]
    message: str
    files: dict[str, bytes | str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None  # for what files cannot say: links, tampered runs


def _toml(text: str) -> dict[str, str]:
    return {"c.toml": text}


def _dangling_pointer(tmp: Path) -> None:
    (tmp / "run" / "checkpoints" / "latest").write_text("../../other/checkpoints/step-00000002")


def _linked_checkpoint(tmp: Path) -> None:
    own = tmp / "run" / "checkpoints" / "step-00000002"
    shutil.rmtree(own)
    own.symlink_to(tmp / "other" / "checkpoints" / "step-00000002", target_is_directory=True)


def _run_json_without(key: str):
    def setup(tmp: Path) -> None:
        import json

        info = json.loads((tmp / "run" / "run.json").read_text())
        del info[key]
        (tmp / "run" / "run.json").write_text(json.dumps(info))
    return setup


def _run_json_from_the_future(tmp: Path) -> None:
    import json

    info = json.loads((tmp / "run" / "run.json").read_text())
    info["schema"] = 99
    (tmp / "run" / "run.json").write_text(json.dumps(info))


class _WritesMarker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _evil_torchscript(tmp: Path) -> None:
    import torch

    plain = tmp / "plain.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(torch.nn.Linear(2, 3)).save(str(plain))
    with zipfile.ZipFile(plain) as zin, zipfile.ZipFile(tmp / "evil.pt", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(_WritesMarker(str(tmp / "marker")), protocol=2)
            zout.writestr(info, data)
    plain.unlink()


CASES = [
    # TOML configs: every top-level value is checked by its flag's rules
    Case("config-steps-word", ["train", "vae", "--config", "{tmp}/c.toml"], 'steps = "five" in', _toml('steps = "five"\n')),
    Case("config-steps-float", ["train", "vae", "--config", "{tmp}/c.toml"], "steps = 3.5 in", _toml("steps = 3.5\n")),
    Case("config-model-int", ["train", "--config", "{tmp}/c.toml"], "model = 5 in", _toml("model = 5\n")),
    Case("config-device-int", ["train", "vae", "--config", "{tmp}/c.toml"], "device = 7 in", _toml("device = 7\n")),
    Case("config-data-list", ["train", "vae", "--config", "{tmp}/c.toml"], 'data = ["a"] in', _toml('data = ["a"]\n')),
    Case("config-seed-word", ["train", "vae", "--config", "{tmp}/c.toml"], 'seed = "x" in', _toml('seed = "x"\n')),
    Case("config-log-every-0", ["train", "vae", "--config", "{tmp}/c.toml"], "log_every = 0 in", _toml("log_every = 0\n")),
    Case("config-batch-bool", ["train", "vae", "--config", "{tmp}/c.toml"], "batch_size = true in",
         _toml("batch_size = true\n")),
    Case("config-keep-negative", ["train", "vae", "--config", "{tmp}/c.toml"], "keep_checkpoints = -1 in",
         _toml("keep_checkpoints = -1\n")),
    Case("config-precision", ["train", "vae", "--config", "{tmp}/c.toml"], 'precision = "fp8" in',
         _toml('precision = "fp8"\n')),
    Case("config-not-utf8", ["train", "vae", "--config", "{tmp}/c.toml"], "is not UTF-8", {"c.toml": b"steps = 1 # caf\xe9\n"}),
    Case("config-folder", ["train", "vae", "--config", "{tmp}"], "is a folder", {}),
    Case("config-hyperparameter-source", ["train", "vae", "--config", "{tmp}/c.toml"],
         "'latent_dimm' in [hyperparameters] in", _toml("[hyperparameters]\nlatent_dimm = 2\n")),
    Case("config-hyperparameter-value-source", ["train", "vae", "--config", "{tmp}/c.toml"],
         "expected int (in [hyperparameters] in", _toml('[hyperparameters]\nlatent_dim = "two"\n')),
    Case("from-for-a-one-stage-model", ["train", "vae", "--from", "{run}"], "does not train from another run; drop --from", {}),
    # data and sizes
    Case("blank-data", ["train", "vae", "--data", " "], "--data must not be blank", {}),
    Case("huge-image-size", ["train", "vae", "--image-size", "100000"], "--image-size must be from 1 to 4,096", {}),
    Case("huge-seed", ["train", "vae", "--seed", str(2**70)], "--seed must be from 0 to", {}),
    Case("negative-seed", ["train", "vae", "--seed", "-1"], "--seed must be from 0 to", {}),
    Case("batch-beyond-memory", ["train", "vae", "--batch-size", "1000000", "--image-size", "4096"], "would need", {}),
    Case("eval-huge-seed", ["eval", "{run}", "--metrics", "mse", "--n", "4", "--device", "cpu", "--seed", str(2**70)],
         "--seed must be from 0 to", {}),
    Case("interpolate-huge-seed", ["interpolate", "{run}", "--frames", "3", "--seeds", f"0,{2**64}"],
         "--seeds must be from 0 to", {}),
    Case("sample-huge-seed", ["sample", "{run}", "--n", "2", "--seed", str(2**70)], "--seed must be from 0 to", {}),
    Case("sample-huge-n", ["sample", "{run}", "--n", "100000000"], "--n 100000000 is more than gencli writes", {}),
    Case("resume-from", ["train", "--resume", "{run}", "--from", "{other}", "--steps", "4"],
         "--from cannot change on --resume", {}),
    # sample quality while training
    Case("eval-features-without-eval-every", ["train", "vae", "--eval-features", "{tmp}/net.pt"],
         "--eval-features and --eval-classifier need --eval-every", {}),
    Case("eval-every-nonsense", ["train", "vae", "--eval-every", "often"],
         "--eval-every must be a number of steps (500) or epochs (2ep)", {}),
    # run descriptions that are damaged or newer than this gencli
    Case("run-json-without-data", ["sample", "{run}", "--n", "2"], "is damaged: it has no 'data'", {},
         _run_json_without("data")),
    Case("run-json-without-model", ["eval", "{run}", "--metrics", "mse"], "is damaged: it has no 'model'", {},
         _run_json_without("model")),
    Case("resume-run-json-without-training", ["train", "--resume", "{run}", "--steps", "4"],
         "is damaged: it has no 'training'", {}, _run_json_without("training")),
    Case("run-json-from-a-newer-gencli", ["sample", "{run}", "--n", "2"], "upgrade gencli", {}, _run_json_from_the_future),
    # output paths: never a traceback, never anything overwritten
    Case("sample-out-existing-file", ["sample", "{run}", "--n", "2", "--out", "{tmp}/taken.png"], "already exists",
         {"taken.png": b"mine"}),
    Case("sample-out-existing-folder", ["sample", "{run}", "--n", "2", "--out", "{tmp}/folder"], "is a folder",
         {"folder/keep.txt": b"mine"}),
    Case("sample-out-under-a-file", ["sample", "{run}", "--n", "2", "--out", "{tmp}/afile/x.png"],
         "lies under", {"afile": b"mine"}),
    Case("sample-out-dev-null", ["sample", "{run}", "--n", "2", "--out", "/dev/null"], "is not a regular file", {}),
    Case("sample-no-grid-out-a-file", ["sample", "{run}", "--n", "2", "--no-grid", "--out", "{tmp}/afile"],
         "is a file; give a folder", {"afile": b"mine"}),
    Case("interpolate-out-existing-folder", ["interpolate", "{run}", "--frames", "3", "--out", "{tmp}/folder"],
         "is a folder", {"folder/keep.txt": b"mine"}),
    Case("interpolate-out-under-a-file", ["interpolate", "{run}", "--frames", "3", "--out", "{tmp}/afile/x.png"],
         "lies under", {"afile": b"mine"}),
    Case("train-out-a-file", ["train", "vae", "--out", "{tmp}/afile"], "is a file, not a folder", {"afile": b"mine"}),
    Case("train-out-under-a-file", ["train", "vae", "--out", "{tmp}/afile/run"], "lies under", {"afile": b"mine"}),
    # resume: what made the run cannot change
    Case("resume-other-model", ["train", "dcgan", "--resume", "{run}", "--steps", "4"], "MODEL cannot change on --resume", {}),
    Case("resume-data", ["train", "--resume", "{run}", "--data", "shapes-paired", "--steps", "4"],
         "--data cannot change on --resume: the run trained on 'shapes'", {}),
    Case("resume-image-size", ["train", "--resume", "{run}", "--image-size", "32", "--steps", "4"],
         "--image-size cannot change on --resume", {}),
    Case("resume-batch-size", ["train", "--resume", "{run}", "--batch-size", "4", "--steps", "4"],
         "--batch-size cannot change on --resume", {}),
    Case("resume-lr", ["train", "--resume", "{run}", "--lr", "0.5", "--steps", "4"], "--lr cannot change on --resume", {}),
    Case("resume-set", ["train", "--resume", "{run}", "--set", "beta=2", "--steps", "4"],
         "--set beta cannot change on --resume", {}),
    Case("resume-precision", ["train", "--resume", "{run}", "--precision", "bf16", "--steps", "4"],
         "--precision cannot change on --resume", {}),
    # a run's files cannot lead to another run's
    Case("latest-names-another-run", ["sample", "{run}", "--n", "2"], "refusing", {}, _dangling_pointer),
    Case("resume-latest-names-another-run", ["train", "--resume", "{run}", "--steps", "4"], "refusing", {},
         _dangling_pointer),
    Case("checkpoint-links-to-another-run", ["sample", "{run}", "--n", "2"], "refusing", {}, _linked_checkpoint),
    # files that could run code
    Case("features-crafted-pickle", ["eval", "{run}", "--metrics", "fid", "--features", "{tmp}/evil.pt", "--n", "4",
                                     "--device", "cpu"], "TorchScript is required", {}, _evil_torchscript),
    Case("features-not-torchscript", ["eval", "{run}", "--metrics", "fid", "--features", "{tmp}/c.toml", "--n", "4",
                                      "--device", "cpu"], "is not a TorchScript file", _toml("steps = 1\n")),
]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> tuple[Path, Path]:
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("bad-inputs-runs")
    tiny = dict(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, overrides={"widths": "8,16"},
                quiet=True, sample_count=4)
    return train(TrainConfig(out=root / "run", **tiny)), train(TrainConfig(out=root / "other", seed=1, **tiny))


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link under ``root``, by relative path: a hash of its bytes, or where it points."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                seen[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[rel] = "folder"
    return seen


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_mistake_is_one_line_exit_2_and_changes_nothing(case, tiny_runs, tmp_path, cli, monkeypatch):
    for run in tiny_runs:
        shutil.copytree(run, tmp_path / run.name, symlinks=True)
    for name, content in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content.encode() if isinstance(content, str) else content)
    if case.setup is not None:
        case.setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    args = [a.format(tmp=tmp_path, run=tmp_path / "run", other=tmp_path / "other") for a in case.args]
    result = cli(*args)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(tmp_path) == before, "the failed command changed files on disk"


def test_one_damaged_run_does_not_hide_the_others_from_a_model_name(tiny_runs, tmp_path, cli, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_runs[0], runs / "good", symlinks=True)
    (runs / "broken").mkdir()
    (runs / "broken" / "run.json").write_text("{not json")
    (runs / "partial").mkdir()
    (runs / "partial" / "run.json").write_text('{"model": "vae"}')
    monkeypatch.setenv("GENCLI_RUNS_DIR", str(runs))
    result = cli("sample", "vae", "--n", "2", "--out", tmp_path / "by-name.png")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "by-name.png").is_file()
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 2 and any("broken" in w for w in warnings) and any("partial" in w for w in warnings)
