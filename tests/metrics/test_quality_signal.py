"""Sample quality as a signal: per-class accuracy and the confusion figure of `gencli eval`, and the
engine's quality probe (``eval_every``) with its curve in losses.png.

Everything runs on a 40-image fake "digits" folder written here (class folders of 16 px
grey blobs whose position says the class), a classifier that reads that position, and tiny
models: seconds, offline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from metrics_helpers import save_torchscript
from PIL import Image
from torch import nn

from gencli.errors import UserError
from gencli.training.engine import TrainConfig, train

SIZE = 16
HALF = SIZE // 2
CLASSES = 4


def write_fake_digits(root, per_class: int = 10) -> str:
    """train/ and test/ class folders: class k is a bright square in quadrant k (plus noise)."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for k in range(CLASSES):
            folder = root / split / f"d{k}"
            folder.mkdir(parents=True)
            for i in range(count):
                img = rng.integers(0, 40, (SIZE, SIZE), dtype=np.uint8)
                y, x = divmod(k, 2)
                img[y * HALF + 2 : y * HALF + 6, x * HALF + 2 : x * HALF + 6] = 255
                Image.fromarray(img, "L").save(folder / f"{i}.png")
    return str(root)


class QuadrantReader(nn.Module):
    """Reads the class from the brightest quadrant: logits [N, 4]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.mean(1)
        quads = [h[:, :8, :8], h[:, :8, 8:], h[:, 8:, :8], h[:, 8:, 8:]]
        return torch.stack([q.mean((1, 2)) for q in quads], 1) * 10


class AlwaysOne(nn.Module):
    """Reads every image as class 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([0.0, 1.0, 0.0, 0.0]).expand(len(x), 4)


class Pooled(nn.Module):
    """Features: the four quadrant means and the overall contrast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.mean(1)
        quads = [h[:, :8, :8], h[:, :8, 8:], h[:, 8:, :8], h[:, 8:, 8:]]
        return torch.stack([q.mean((1, 2)) for q in quads] + [h.std((1, 2))], 1)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_fake_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def judges(tmp_path_factory):
    folder = tmp_path_factory.mktemp("judges")
    return {"reader": str(save_torchscript(QuadrantReader(), folder / "reader.pt")),
            "one": str(save_torchscript(AlwaysOne(), folder / "one.pt")),
            "features": str(save_torchscript(Pooled(), folder / "features.pt"))}


def tiny(model: str, data: str, out, **kw) -> TrainConfig:
    overrides = {"widths": "8,8", "latent_dim": "2"} if "vae" in model else {"g_width": "8", "d_width": "8", "z_dim": "4"}
    return TrainConfig(model=model, data=data, image_size=SIZE, channels=1, batch_size=8, steps=4,
                       overrides=overrides, out=out, quiet=True, sample_every=4, checkpoint_every=4, device="cpu", **kw)


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory, digits):
    return train(tiny("cvae", digits, tmp_path_factory.mktemp("cvae") / "run"))


# ------------------------------------------------------------------ confusion matrix and per-class table
def test_confusion_matrix_counts_rows_by_class_asked_for():
    from gencli.metrics.accuracy import confusion_matrix, per_class_rows

    asked = torch.tensor([0, 0, 0, 1, 1, 2])
    read = torch.tensor([0, 2, 2, 1, 1, 9])  # 9: a classifier with more outputs than classes
    counts = confusion_matrix(read, asked, 3)
    assert counts.tolist() == [[1, 0, 2], [0, 2, 0], [0, 0, 0]]
    rows = per_class_rows(counts, ["a", "b", "c"])
    assert [r["class"] for r in rows] == ["a", "b"]  # class c: its one image was read as no class
    assert rows[0] == {"class": "a", "n": 3, "accuracy": pytest.approx(1 / 3), "confused_with": "c",
                       "confused_share": pytest.approx(2 / 3)}
    assert rows[1]["confused_with"] is None and rows[1]["accuracy"] == 1.0


def test_eval_with_a_classifier_writes_the_per_class_table_and_the_confusion_figure(cvae_run, judges, cli):
    from gencli.metrics.evaluate import evaluate

    result = evaluate(cvae_run, metrics=["accuracy"], n=40, classifier=judges["one"], progress=False)
    # classes are generated in turn; this classifier reads everything as class 1
    assert result["eval"]["accuracy"] == pytest.approx(0.25)
    assert result["eval"]["accuracy/d1"] == 1.0 and result["eval"]["accuracy/d3"] == 0.0
    rows = {r["class"]: r for r in result["per_class"]}
    assert rows["d0"] == {"class": "d0", "n": 10, "accuracy": 0.0, "confused_with": "d1", "confused_share": 1.0}
    figure = cvae_run / "eval" / "confusion.png"
    assert str(figure) in result["figures"] and figure.stat().st_size > 1000
    assert Image.open(figure).size[0] > 200
    logged = [json.loads(line) for line in (cvae_run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert logged[-1]["eval"]["accuracy/d1"] == 1.0  # per-class values reach metrics.jsonl

    shown = cli("eval", cvae_run, "--metrics", "accuracy", "--classifier", judges["one"], "--n", "20", "--device", "cpu")
    assert shown.exit_code == 0, shown.stderr
    assert "most often read as" in shown.stdout and "d1 (100%)" in shown.stdout


def test_eval_without_accuracy_writes_no_confusion_figure(cvae_run, judges):
    from gencli.metrics.evaluate import evaluate

    (cvae_run / "eval" / "confusion.png").unlink(missing_ok=True)
    result = evaluate(cvae_run, metrics=["fid"], n=20, features=judges["features"], progress=False)
    assert "per_class" not in result and not (cvae_run / "eval" / "confusion.png").exists()


# ------------------------------------------------------------------ the quality probe during training
def quality_rows(run) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "quality" in r]


def test_eval_every_logs_fid_and_per_class_accuracy_and_draws_them(tmp_path, digits, judges):
    run = train(tiny("cgan", digits, tmp_path / "run", eval_every=2, eval_n=16, eval_features=judges["features"],
                     eval_classifier=judges["reader"]))
    rows = quality_rows(run)
    assert [r["step"] for r in rows] == [0, 2, 4]  # the start of the curve, then every 2 steps
    for r in rows:
        q = r["quality"]
        assert q["fid"] >= 0 and 0 <= q["accuracy"] <= 1
        assert {f"accuracy/d{k}" for k in range(CLASSES)} <= set(q)
        assert r["train_s"] >= 0
    info = json.loads((run / "run.json").read_text())
    assert info["training"]["eval_every"] == 2 and info["training"]["eval_n"] == 16
    assert info["training"]["eval_features"].endswith("features.pt")
    assert info["status"] == "finished" and info["final_losses"] and "quality" not in info["final_losses"]

    from gencli.media.loss_curves import quality_series

    series = quality_series(rows)
    assert set(series) == {"FID (held-out)", "class accuracy", "worst class accuracy"}
    assert series["FID (held-out)"][0] == [0, 2, 4]
    assert (run / "losses.png").stat().st_size > 1000


def test_the_quality_curve_reaches_tensorboard_at_the_probes_steps(tmp_path, digits, judges):
    pytest.importorskip("tensorboard", reason="tensorboard is optional: pip install 'gencli[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(tiny("cgan", digits, tmp_path / "run", eval_every=2, eval_n=16, eval_features=judges["features"],
                     eval_classifier=judges["reader"], tensorboard=True))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    rows = quality_rows(run)
    for key in ("fid", "accuracy", "accuracy/d0"):
        logged = events.Scalars(f"quality/{key}")
        assert [e.step for e in logged] == [r["step"] for r in rows] == [0, 2, 4]
        assert [e.value for e in logged] == pytest.approx([r["quality"][key] for r in rows], rel=1e-5)


def test_probing_does_not_change_the_training_trajectory(tmp_path, digits, judges):
    plain = train(tiny("dcgan", digits, tmp_path / "plain", log_every=1))
    probed = train(tiny("dcgan", digits, tmp_path / "probed", log_every=1, eval_every=1, eval_n=8,
                        eval_features=judges["features"]))

    def losses(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows if "quality" not in r]

    assert losses(plain) == losses(probed)
    assert len(quality_rows(probed)) == 5


def test_a_resumed_run_keeps_its_probe_and_continues_the_curve(tmp_path, digits, judges):
    run = train(tiny("dcgan", digits, tmp_path / "run", eval_every=2, eval_n=8, eval_features=judges["features"]))
    train(TrainConfig(model="", resume=run, steps=6, quiet=True, device="cpu"))
    assert [r["step"] for r in quality_rows(run)] == [0, 2, 4, 6]


@pytest.mark.parametrize("settings, message", [
    ({"eval_every": 2}, "eval_every needs eval_features"),
    ({"eval_features": "x.pt"}, "need --eval-every"),
    ({"eval_every": 0, "eval_features": "x.pt"}, "eval-every must be at least 1"),
    ({"eval_every": "every 2", "eval_features": "x.pt"}, "eval-every must be a number of steps"),
    ({"eval_every": 2, "eval_features": "missing.pt"}, "eval_features"),
    ({"eval_every": 2, "eval_features": "F", "eval_n": 1}, "eval-n must be from 2 to"),
])
def test_probe_mistakes_are_one_line_before_training(tmp_path, digits, judges, settings, message):
    settings = {k: (judges["features"] if v == "F" else v) for k, v in settings.items()}
    with pytest.raises(UserError, match=message) as err:
        train(tiny("dcgan", digits, tmp_path / "run", **settings))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_classifier_probe_needs_a_conditional_model(tmp_path, digits, judges):
    with pytest.raises(UserError, match="eval_classifier needs a conditional model"):
        train(tiny("dcgan", digits, tmp_path / "run", eval_every=2, eval_classifier=judges["reader"]))
