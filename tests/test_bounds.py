"""Every number from a flag, a TOML file or ``--set`` has bounds, and odd inputs end in one line.

Each row of ``CASES`` is one value out of bounds (or one odd input): the command ends with exit
code 2, one ``error:`` line on stderr that holds the row's text, no traceback, and nothing on
disk: no run folder, no dataset cache. Rows that need a file give it in ``files``; ``setup``
builds what bytes cannot say (a FIFO, a link).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import run_cli
from test_bad_inputs import snapshot

TINY = ["--set", "widths=8,16", "--image-size", "16", "--batch-size", "8"]
HUGE = "9" * 400  # a number no setting could mean


@dataclass
class Case:
    id: str
    args: list[str]
    message: str
    files: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


def _toml(text: str) -> dict[str, str]:
    return {"c.toml": text}


def _fifo(tmp: Path) -> None:
    os.mkfifo(tmp / "fifo.toml")


def _link_to_urandom(tmp: Path) -> None:
    (tmp / "random.toml").symlink_to("/dev/urandom")


TRAIN = ["train", "vae", *TINY]
CONFIG = ["train", "vae", *TINY, "--config", "{tmp}/c.toml"]

CASES = [
    # run length and intervals: a cap on each, said with the flag's own name
    Case("steps-400-digits", [*TRAIN, "--steps", HUGE], "--steps must be at most 99,999,999, got a number of 400 digits"),
    Case("steps-above-the-cap", [*TRAIN, "--steps", "100000000"], "--steps must be at most 99,999,999"),
    Case("epochs-huge", [*TRAIN, "--epochs", "10000000000"], "--epochs must be at most 1,000,000"),
    Case("epochs-beyond-the-step-cap", [*TRAIN, "--epochs", "1000000"], "more than the 99,999,999 a run may train"),
    Case("batch-size-huge", ["train", "vae", "--batch-size", HUGE], "--batch-size must be at most 1,000,000"),
    Case("sample-every-huge", [*TRAIN, "--sample-every", HUGE], "--sample-every must be at most 99,999,999"),
    Case("sample-every-huge-epochs", [*TRAIN, "--sample-every", HUGE + "ep"], "--sample-every must be at most 1,000,000 epochs"),
    Case("checkpoint-every-huge", [*TRAIN, "--checkpoint-every", "100000000"], "--checkpoint-every must be at most 99,999,999"),
    Case("eval-every-huge", [*TRAIN, "--eval-every", HUGE], "--eval-every must be at most 99,999,999"),
    Case("channels-huge", ["train", "vae", "--channels", HUGE], "--channels must be at most 4"),
    Case("config-steps-huge", CONFIG, "steps = 1000000000000000 in", _toml("steps = 1000000000000000\n")),
    Case("config-log-every-huge", CONFIG, "log_every = 1000000000 in", _toml("log_every = 1000000000\n")),
    # hyperparameters: a general cap on whole numbers, and networks too large to build
    Case("latent-dim-billion", [*TRAIN, "--set", "latent_dim=1000000000"], "latent_dim must be at most 100,000,000"),
    Case("latent-dim-unbuildable", [*TRAIN, "--set", "latent_dim=50000000"], "would need"),
    Case("config-latent-dim-billion", CONFIG, "latent_dim must be at most 100,000,000",
         _toml("[hyperparameters]\nlatent_dim = 1000000000\n")),
    # inf and nan are refused wherever a finite number is meant
    Case("set-lr-inf", [*TRAIN, "--set", "lr=inf"], "expected a finite number"),
    Case("set-lr-nan", [*TRAIN, "--set", "lr=nan"], "expected a finite number"),
    Case("flag-lr-inf", [*TRAIN, "--lr", "inf"], "--lr must be a finite number"),
    Case("config-hyperparameter-lr-inf", CONFIG, "expected a finite number", _toml("[hyperparameters]\nlr = inf\n")),
    Case("config-lr-inf", CONFIG, "lr = inf in", _toml("lr = inf\n")),
    Case("config-hyperparameter-beta-nan", CONFIG, "expected a finite number", _toml("[hyperparameters]\nbeta = nan\n")),
    # config files that are not what a config file is
    Case("config-nested-deep", CONFIG, "nested too deeply", _toml("x = " + "[" * 50_000 + "]" * 50_000 + "\n")),
    Case("config-fifo", ["train", "vae", "--config", "{tmp}/fifo.toml"], "is not a regular file", setup=_fifo),
    Case("config-link-to-a-device", ["train", "vae", "--config", "{tmp}/random.toml"], "is not a regular file",
         setup=_link_to_urandom),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_out_of_bounds_number_is_one_line_exit_2_and_writes_nothing(case, tmp_path, cli, monkeypatch):
    for name, content in case.files.items():
        (tmp_path / name).write_text(content)
    if case.setup is not None:
        case.setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = cli(*[a.format(tmp=tmp_path) for a in case.args])
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.message in lines[0], lines[0]
    assert len(lines[0]) < 400, "the line names the value, it does not print it whole"
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(tmp_path) == before, "a refused command wrote files (a run folder?)"


def test_threads_has_an_upper_bound_and_a_refusal_starts_no_run(tmp_path):
    runs = tmp_path / "runs"
    out = run_cli("--threads", "100000000", "train", "vae", *TINY, "--steps", "1",
                  env={"GENCLI_RUNS_DIR": str(runs), "GENCLI_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--threads" in lines[0] and "1024" in lines[0], out.stderr
    assert not runs.exists()


def test_a_huge_omp_num_threads_is_refused_in_one_line(tmp_path):
    from gencli.errors import UserError
    from gencli.training.threads import requested_threads

    os.environ["OMP_NUM_THREADS"], saved = "100000000", os.environ.get("OMP_NUM_THREADS")
    try:
        with pytest.raises(UserError, match=r"OMP_NUM_THREADS=100000000 .* at most 1,024"):
            requested_threads()
    finally:
        os.environ["OMP_NUM_THREADS"] = saved or "1"


@pytest.mark.parametrize("pairs, message", [
    (["temperature=inf"], "expected a finite number"),
    (["temperature=nan"], "expected a finite number"),
    (["temperature=-inf"], "expected a finite number"),
])
def test_inf_and_nan_are_refused_in_model_options(pairs, message):
    from gencli.cli.common import model_options
    from gencli.errors import UserError
    from gencli.plugins import registry

    cls = registry().model_class("vae")
    with pytest.raises(UserError, match=message):
        model_options(cls, cls.SampleOptions, pairs, "sample")


def test_a_field_may_declare_its_own_bounds():
    from dataclasses import dataclass, field

    from gencli.errors import UserError
    from gencli.models import hparams

    @dataclass
    class Options:
        count: int = field(default=1, metadata={"min": 1, "max": 10})
        widths: tuple[int, ...] = (8, 16)

    assert hparams.build(Options, {"count": "10"}).count == 10
    with pytest.raises(UserError, match=r"count must be from 1 to 10, got 11 \(in --set\)"):
        hparams.build(Options, {"count": "11"})
    with pytest.raises(UserError, match=r"widths must be at most 100,000,000, got 1000000000"):
        hparams.build(Options, {"widths": "8,1000000000"})


def test_a_loss_that_is_not_a_number_is_one_line_naming_the_model_and_key(tmp_path, cli, monkeypatch):
    import json

    from gencli_vae.vae import VAE

    monkeypatch.setattr(VAE, "train_step", lambda self, batch: {"loss": "low", "kl": 0.5})
    monkeypatch.chdir(tmp_path)
    result = cli("--quiet", "train", "vae", *TINY, "--steps", "2", "--out", tmp_path / "run")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "'vae'" in lines[0] and "'loss'" in lines[0] and "'low'" in lines[0], lines[0]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def _png_header(width: int, height: int) -> bytes:
    """The first chunks of a PNG claiming ``width`` x ``height`` grey pixels (PIL reads the size before any pixel)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(20_000, 10_000), (10_000, 9_500)], ids=["over-the-error", "over-the-warning"])
def test_translate_refuses_an_image_too_large_to_read_in_one_line(tmp_path, width, height):
    import warnings

    from gencli.cli import translate
    from gencli.errors import UserError

    big = tmp_path / "big.png"
    big.write_bytes(_png_header(width, height))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's own warning must not surface: it is part of the one line
        with pytest.raises(UserError, match=rf"image '.*big.png' is {width:,}x{height:,} pixels") as err:
            translate._check_readable(big)
        assert "\n" not in str(err.value)
        with pytest.raises(UserError, match=rf"is {width:,}x{height:,} pixels"):
            translate._read(translate._Item(big, big.name), 3)


def test_a_wrong_shape_weight_error_says_which_weight_and_both_shapes():
    import torch

    from gencli.runs.checkpoints import state_dict_mismatch

    try:
        torch.nn.Linear(2, 4).load_state_dict(torch.nn.Linear(2, 3).state_dict())
    except RuntimeError as exc:
        text = state_dict_mismatch(exc)
    assert "\n" not in text and not text.endswith(":"), text
    assert "size mismatch for weight" in text and "[3, 2]" in text and "[4, 2]" in text, text


@pytest.mark.parametrize("args, message", [
    (["--image-size", HUGE], "--image-size must be from 1 to 4,096, got a number of 400 digits"),
    (["--image-size", "8", "--channels", HUGE], "--channels must be at most 4, got a number of 400 digits"),
])
def test_datasets_prepare_takes_the_bounds_of_train(args, message, tmp_path, cli):
    before = snapshot(tmp_path)
    result = cli("datasets", "--prepare", "shapes", *args)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert snapshot(tmp_path) == before


def test_a_data_folder_whose_links_loop_trains_on_the_rest_and_names_them(tmp_path, cli):
    from PIL import Image

    data = tmp_path / "data"
    for c in "ab":
        (data / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(data / c / f"{i}.png")
    (data / "a" / "up").symlink_to("../a")  # a folder linking to itself: walked once
    (data / "x1").symlink_to("x2")  # two links naming each other: neither file nor folder
    (data / "x2").symlink_to("x1")
    (data / "b" / "self").symlink_to("self")
    result = cli("train", "vae", "--data", data, "--steps", "1", "--batch-size", "4", "--image-size", "8",
                 "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.output and "in a loop" in result.stderr
