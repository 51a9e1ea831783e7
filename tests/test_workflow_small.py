"""The smaller workflow expectations: --json results, --quiet bars, which run a model name picks,
translation at each image's own size, readable listings and help, one interrupt message, and a
conditional run sampled without --label drawing classes in the training data's proportions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from PIL import Image

from gencli.models.labels import class_quota, draw_labels

TINY_CVAE = {"widths": "8,16", "latent_dim": "4"}


def _write_class_folder(root: Path, counts: dict[str, int]) -> Path:
    """Write a labelled folder: one sub-folder of small flat images per class."""
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    """A conditional run trained two steps on a class folder with three times as many rings as squares."""
    import gencli

    base = tmp_path_factory.mktemp("cvae")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENCLI_DATA_DIR", str(base / "data"))
        mp.setenv("GENCLI_RUNS_DIR", str(base / "runs"))
        folder = _write_class_folder(base / "classes", {"ring": 30, "square": 10})
        return gencli.train("cvae", str(folder), steps=2, image_size=16, channels=3, batch_size=8, set=TINY_CVAE,
                            out=base / "runs" / "cvae-run", device="cpu").dir


def _recording_labels(monkeypatch, run: Path) -> list:
    """Make the run's model class record the labels ``sample`` is called with; return the record."""
    from gencli.runs import Run

    cls = Run.open(run).model_class()
    calls, original = [], cls.sample

    def sample(self, n, labels=None, generator=None, **options):
        calls.append(None if labels is None else labels.cpu().clone())
        return original(self, n, labels, generator, **options)

    monkeypatch.setattr(cls, "sample", sample)
    return calls


# ------------------------------------------------------------------ issue 24: no --label
def test_labels_drawn_follow_the_counts_as_closely_as_whole_numbers_allow():
    assert class_quota(10, 3, [50, 30, 20]) == [5, 3, 2]
    assert class_quota(7, 2, [1, 1]) == [4, 3] and class_quota(6, 3, None) == [2, 2, 2]
    assert class_quota(4, 2, [0, 0]) == [2, 2]  # no counts to follow: uniform
    labels = draw_labels(64, 3, [600, 300, 100], torch.Generator().manual_seed(0))
    assert torch.bincount(labels, minlength=3).tolist() == [38, 19, 7]  # 64 * (0.6, 0.3, 0.1), remainders rounded
    assert not torch.equal(labels, labels.sort().values)  # shuffled, so a grid mixes the classes
    assert torch.equal(labels, draw_labels(64, 3, [600, 300, 100], torch.Generator().manual_seed(0)))


def test_training_records_how_many_images_each_class_has(cvae_run):
    from gencli.runs import Run

    run = Run.open(cvae_run)
    labels = run.data("train").labels
    assert run.class_counts == torch.bincount(labels, minlength=2).tolist()
    assert run.classes == ["ring", "square"] and run.class_counts[0] > 2 * run.class_counts[1]


def test_a_conditional_run_sampled_without_a_label_draws_classes_in_the_datas_proportions(cli, cvae_run, monkeypatch,
                                                                                        tmp_path):
    from gencli.runs import Run

    calls = _recording_labels(monkeypatch, cvae_run)
    result = cli("sample", cvae_run, "--n", "40", "--out", tmp_path / "mixed.png")
    assert result.exit_code == 0, result.stderr
    counts = Run.open(cvae_run).class_counts
    assert len(calls) == 1 and calls[0] is not None  # never "no label" for a conditional model
    assert torch.bincount(calls[0], minlength=2).tolist() == class_quota(40, 2, counts)
    assert "note: no --label: classes drawn in the data's proportions" in result.stderr
    assert "note:" not in result.stdout
    # one class asked for: every image is of that class
    cli("sample", cvae_run, "--n", "5", "--label", "square", "--out", tmp_path / "squares.png")
    assert calls[-1].tolist() == [1] * 5
    # gencli.sample draws them the same way, and takes a class by name
    import gencli

    gencli.sample(cvae_run, 40, device="cpu")
    assert torch.equal(calls[-1], calls[0])
    gencli.sample(cvae_run, 3, labels="square", device="cpu")
    assert calls[-1].tolist() == [1] * 3


def test_a_run_without_recorded_counts_draws_classes_uniformly(cli, cvae_run, monkeypatch, tmp_path):
    import shutil

    old = tmp_path / "old-run"
    shutil.copytree(cvae_run, old)
    info = json.loads((old / "run.json").read_text())
    del info["data"]["class_counts"]  # as runs from before they were recorded
    (old / "run.json").write_text(json.dumps(info))
    calls = _recording_labels(monkeypatch, old)
    result = cli("sample", old, "--n", "6", "--out", tmp_path / "uniform.png")
    assert result.exit_code == 0, result.stderr
    assert torch.bincount(calls[0], minlength=2).tolist() == [3, 3]
    assert "classes drawn uniformly" in result.stderr


def test_damaged_class_counts_are_refused_in_one_line(cli, cvae_run, tmp_path):
    import shutil

    bad = tmp_path / "bad-run"
    shutil.copytree(cvae_run, bad)
    info = json.loads((bad / "run.json").read_text())
    info["data"]["class_counts"] = [3, "many"]
    (bad / "run.json").write_text(json.dumps(info))
    result = cli("sample", bad, "--n", "2", "--out", tmp_path / "never.png")
    assert result.exit_code == 2 and "data.class_counts" in result.stderr and not (tmp_path / "never.png").exists()


# ------------------------------------------------------------------ which run a model name picks
def test_a_model_name_says_which_run_it_picked_and_where_an_unfinished_one_stands(cli, cvae_run, monkeypatch, tmp_path):
    monkeypatch.setenv("GENCLI_RUNS_DIR", str(cvae_run.parent))
    finished = cli("sample", "cvae", "--n", "2", "--out", tmp_path / "a.png")
    assert finished.exit_code == 0, finished.stderr
    assert f"latest run {cvae_run}" in finished.stderr and "step" not in finished.stderr
    info = json.loads((cvae_run / "run.json").read_text())
    try:
        (cvae_run / "run.json").write_text(json.dumps({**info, "status": "interrupted", "total_steps": 500}))
        unfinished = cli("sample", "cvae", "--n", "2", "--out", tmp_path / "b.png")
    finally:
        (cvae_run / "run.json").write_text(json.dumps(info))
    assert unfinished.exit_code == 0, unfinished.stderr
    assert f"latest run {cvae_run} (interrupted at step 2 of 500)" in unfinished.stderr
    quiet = cli("-q", "sample", "cvae", "--n", "2", "--out", tmp_path / "c.png")
    assert quiet.exit_code == 0 and quiet.stderr == ""


# ------------------------------------------------------------------ --json
def test_sample_and_interpolate_print_the_files_written_as_json(cli, cvae_run, tmp_path):
    sampled = cli("sample", cvae_run, "--n", "4", "--json", "--out", tmp_path / "s.png")
    assert sampled.exit_code == 0, sampled.stderr
    assert json.loads(sampled.stdout) == {"files": [str(tmp_path / "s.png")]}
    singles = json.loads(cli("sample", cvae_run, "--n", "3", "--no-grid", "--json", "--out", tmp_path / "singles").stdout)
    assert len(singles["files"]) == 3 and all(Path(f).is_file() for f in singles["files"])
    walked = cli("interpolate", cvae_run, "--frames", "3", "--label", "ring", "--json", "--out", tmp_path / "w.png")
    assert walked.exit_code == 0, walked.stderr
    assert json.loads(walked.stdout) == {"files": [str(tmp_path / "w.png"), str(tmp_path / "w.gif")]}


def test_train_json_prints_the_run_and_its_final_losses_and_nothing_else(cli, tmp_path):
    result = cli("train", "vae", "--steps", "2", "--image-size", "16", "--batch-size", "8", "--set", "widths=8,16",
                 "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)  # the progress lines went to stderr
    assert payload["run"] == str(tmp_path / "run") and payload["status"] == "finished" and payload["step"] == 2
    assert payload["final_losses"] and all(isinstance(v, float) for v in payload["final_losses"].values())
    assert "step 2/2" in result.stderr


class _Negative:
    """A stand-in fully convolutional translator: inverts colours at whatever size it is given."""

    name, channels, image_size, image_shape = "negative", 3, 16, (3, 16, 16)
    device, directions = torch.device("cpu"), ("a2b", "b2a")

    def __init__(self, multiple):
        self.size_multiple, self.shapes = multiple, []

    def can(self, capability):
        return capability == "translate"

    def eval(self):
        return self

    def inference_batch(self, largest, height, width):
        return largest

    def translate(self, x, direction="a2b"):
        self.shapes.append(tuple(x.shape[-2:]))
        return -x


def test_native_size_translates_each_image_at_its_own_size(tmp_path, monkeypatch):
    from gencli.cli import translate as module
    from gencli.errors import UserError

    monkeypatch.setattr("gencli.models.base.require_capability", lambda *a, **k: None)
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    pixels = {}
    for name, (w, h) in {"wide.png": (24, 8), "odd.png": (30, 18)}.items():
        pixels[name] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(src / name)
    model = _Negative(4)
    written = module.translate_paths(model, [src], "a2b", tmp_path / "out", show_progress=False, native_size=True)
    assert sorted(model.shapes) == sorted([(8, 24), (20, 32)])  # 18 x 30 rounded to multiples of 4
    sizes = {p.name: Image.open(p).size for p in written}
    assert sizes == {"wide.png": (24, 8), "odd.png": (30, 18)}  # each output has its input's size
    wide = np.asarray(Image.open(tmp_path / "out" / "wide.png")).astype(int)
    assert np.array_equal(wide, 255 - pixels["wide.png"].astype(int))  # a multiple already: never stretched
    with pytest.raises(UserError, match="translates at its training size only"):
        module.translate_paths(_Negative(None), [src], "a2b", tmp_path / "out2", show_progress=False, native_size=True)
    assert not (tmp_path / "out2").exists()


def test_the_translation_models_state_the_multiple_their_generators_need():
    from gencli_translation.cyclegan import CycleGAN, CycleGANHyperparameters
    from gencli_translation.pix2pix import Pix2Pix, Pix2PixHyperparameters

    assert CycleGAN(CycleGANHyperparameters(ngf=4, blocks=1), (3, 16, 16)).size_multiple == 4  # two downsamplings
    pix2pix = Pix2Pix(Pix2PixHyperparameters(ngf=4), (3, 16, 16))
    assert pix2pix.size_multiple == 16  # a U-Net down to 1x1 at 16 px
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    assert pix2pix.translate(x, pix2pix.directions[0]).shape == x.shape  # fully convolutional: any multiple works


# ------------------------------------------------------------------ --quiet
def _terminal() -> tuple:
    from rich.console import Console

    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=80), buffer


def test_quiet_silences_the_download_extraction_decoding_and_weights_bars(tmp_path, monkeypatch):
    import zipfile

    import rich.progress

    from gencli.data import download
    from gencli.data.folders import ScanReport, _decode_into
    from gencli.metrics import inception
    from gencli.ui import console

    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x" * 50_000)
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a/one.txt", "1")
    image = tmp_path / "dot.png"
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(image)
    drawn = {}
    real_progress = rich.progress.Progress

    def recording(*args, **kwargs):
        drawn["decoding"] = not kwargs.get("disable", False)
        return real_progress(*args, **kwargs)

    monkeypatch.setattr(rich.progress, "Progress", recording)
    monkeypatch.setattr(inception.torch.hub, "download_url_to_file",
                        lambda url, dest, hash_prefix=None, progress=True: drawn.__setitem__("weights", progress))

    def shown(quiet: bool) -> dict:
        monkeypatch.setattr(console, "quiet", quiet)
        drawn.clear()
        bar, buffer = _terminal()
        part = tmp_path / f"dl-{quiet}.part"
        download._download(payload.as_uri(), part, tmp_path / f"dl-{quiet}", console=bar)
        drawn["download"] = bool(buffer.getvalue())
        bar, buffer = _terminal()
        download.extract(archive, tmp_path / f"x-{quiet}", console=bar)
        drawn["extraction"] = bool(buffer.getvalue())
        _decode_into([image] * 2000, lambda p: (np.zeros((4, 4), np.uint8),), lambda k, rows: None, False,
                     ScanReport(), label="decoding")
        inception.download_weights(tmp_path / "w.pth")
        return dict(drawn)

    assert shown(False) == {"download": True, "extraction": True, "decoding": True, "weights": True}
    assert shown(True) == {"download": False, "extraction": False, "decoding": False, "weights": False}


# ------------------------------------------------------------------ listings, help, interrupts
def test_the_plugins_table_keeps_every_name_whole_at_80_columns():
    listing = run_cli("plugins", env={"COLUMNS": "80"})
    rows = json.loads(run_cli("plugins", "--json").stdout)
    assert listing.returncode == 0 and max(len(line) for line in listing.stdout.splitlines()) <= 80
    words = {w.strip(",│ ") for line in listing.stdout.splitlines() for w in line.split()}
    names = {r["name"] for r in rows} | {r["distribution"] for r in rows}
    names |= {x for r in rows for k in ("models", "datasets", "metrics") for x in r[k]}
    assert names <= words, sorted(names - words)


def test_models_info_prints_defaults_as_key_value_lines(cli):
    result = cli("models", "--info", "cvae")
    assert result.exit_code == 0, result.stderr
    assert "image_size = 32" in result.stdout and "batch_size = " in result.stdout
    assert "{'image_size'" not in result.stdout


def test_flags_show_no_value_type_in_help(cli):
    top = cli("--help").stdout
    assert "--debug" in top and "<bool>" not in top and "N [1<=x<=1024]" in top
    sample = cli("sample", "--help").stdout
    assert "<bool>" not in sample and "<int>" in sample  # options that take a value keep their type


def test_an_interrupted_run_says_so_once_on_stderr(cli, tmp_path, monkeypatch):
    from gencli.training import engine

    def requested(self):
        self.requested = True  # as if Ctrl-C came during the first step
        return self

    monkeypatch.setattr(engine.Interrupt, "__enter__", requested)
    result = cli("train", "vae", "--steps", "6", "--image-size", "16", "--batch-size", "8", "--set", "widths=8,16",
                 "--out", tmp_path / "run")
    assert result.exit_code == 130
    said = "continue with: gencli train --resume"
    assert result.stderr.count(said) == 1 and said not in result.stdout
