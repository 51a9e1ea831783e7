"""The TensorBoard logger: what it writes, and the one line a user gets without the package."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from gencli.errors import UserError
from gencli.training.tensorboard import INSTALL, TensorBoardLogger, require_tensorboard


class RecordingWriter:
    """Stands in for SummaryWriter and keeps every call."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []
        self.images: list[tuple[str, object, int, str]] = []
        self.texts: list[tuple[str, str, int]] = []
        self.closed = False

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_image(self, tag, image, step, dataformats="CHW"):
        self.images.append((tag, image, step, dataformats))

    def add_text(self, tag, text, step):
        self.texts.append((tag, text, step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


def test_losses_speed_and_eval_results_become_scalars(tmp_path):
    writer = RecordingWriter()
    with TensorBoardLogger(tmp_path, writer=writer) as tb:
        tb.log_losses(10, {"loss_d": 0.7, "loss_g": torch.tensor(1.5).item()}, images_per_s=320.0)
        tb.log_metrics(20, {"fid": 41.5, "model": "dcgan", "kid": 0.02, "converged": True})
    assert writer.scalars == [("loss/loss_d", 0.7, 10), ("loss/loss_g", 1.5, 10), ("speed/images_per_s", 320.0, 10),
                              ("eval/fid", 41.5, 20), ("eval/kid", 0.02, 20)]
    assert writer.closed


@pytest.mark.parametrize("channels, layout", [(3, "HWC"), (1, "HW")])
def test_sample_grids_are_written_as_the_saved_png_lays_them_out(tmp_path, channels, layout):
    writer = RecordingWriter()
    images = torch.linspace(-1, 1, 6 * channels * 8 * 8).view(6, channels, 8, 8)
    TensorBoardLogger(tmp_path, writer=writer).log_samples(30, images, nrow=3)
    tag, array, step, dataformats = writer.images[0]
    assert (tag, step, dataformats) == ("samples", 30, layout)
    # 2 rows x 3 columns of 8 px images with 2 px padding
    assert array.shape[:2] == (2 + 2 * 10, 2 + 3 * 10) and array.dtype.name == "uint8"
    assert array.min() == 0 and array.max() == 255  # [-1, 1] spans the full byte range


def test_the_run_description_is_recorded_as_text(tmp_path):
    writer = RecordingWriter()
    info = {"model": "vae", "hyperparameters": {"latent_dim": 2}, "status": "running", "data": {"spec": "mnist"}}
    TensorBoardLogger(tmp_path, writer=writer).log_run(info)
    tag, text, step = writer.texts[0]
    assert tag == "run" and '"latent_dim": 2' in text and "status" not in text and step == 0


def test_without_the_package_the_user_is_told_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # makes `import tensorboard` fail
    with pytest.raises(UserError) as caught:
        require_tensorboard()
    assert str(caught.value) == f"--tensorboard needs the tensorboard package: {INSTALL}"
    with pytest.raises(UserError, match="pip install 'gencli\\[tensorboard\\]'"):
        TensorBoardLogger.for_run(tmp_path)
    assert not (tmp_path / "tensorboard").exists()


def test_events_reach_a_real_event_file(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional: pip install 'gencli[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardLogger.for_run(tmp_path) as tb:
        for step in (10, 20):
            tb.log_losses(step, {"loss": 1.0 / step})
        tb.log_samples(20, torch.zeros(4, 3, 8, 8), nrow=2)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("loss/loss")] == [(10, 0.1), (20, 0.05)]
    assert [e.step for e in events.Images("samples")] == [20]


def test_a_resumed_run_drops_the_events_after_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional: pip install 'gencli[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardLogger.for_run(tmp_path) as tb:
        for step in (10, 20, 30):
            tb.log_losses(step, {"loss": float(step)})
    with TensorBoardLogger.for_run(tmp_path, start_step=20) as tb:  # resumed from the step-20 checkpoint
        tb.log_losses(30, {"loss": -30.0})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss/loss")] == [(10, 10.0), (20, 20.0), (30, -30.0)]


TINY = ["--image-size", "16", "--batch-size", "8", "--set", "widths=8,16", "--set", "latent_dim=2", "--device", "cpu"]


def test_train_tensorboard_without_the_package_is_one_line_and_exit_code_2(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    result = cli("train", "vae", "--steps", "2", "--tensorboard", "--out", tmp_path / "run", *TINY)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --tensorboard needs the tensorboard package: {INSTALL}"
    assert not (tmp_path / "run").exists(), "nothing is written before the check"


def test_train_tensorboard_logs_every_logged_step_and_each_grid(cli, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional: pip install 'gencli[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    result = cli("-q", "train", "vae", "--steps", "4", "--sample-every", "2", "--tensorboard", "--out", run, *TINY)
    assert result.exit_code == 0, result.stderr
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("loss/loss")] == logged
    assert [e.step for e in events.Images("samples")] == [2, 4]
