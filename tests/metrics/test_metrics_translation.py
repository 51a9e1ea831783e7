"""`gencli eval` of translation models: translations of the held-out split judged per direction."""

import json
import shutil

import pytest
import torch
from torch import nn

import gencli
from gencli.data.base import ImageData
from gencli.errors import UserError
from gencli.metrics.choose import default_metrics
from gencli.metrics.compare import compare
from gencli.metrics.evaluate import evaluate
from gencli.models.base import Hyperparameters, Model
from gencli.training.engine import TrainConfig, train


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pix2pix")
    return train(TrainConfig(model="pix2pix", data="shapes-paired", steps=2, image_size=16, channels=3, batch_size=8,
                             overrides={"ngf": "4", "ndf": "4"}, out=root / "run", quiet=True,
                             sample_every=2, checkpoint_every=2, device="cpu"))


def test_eval_of_a_paired_translation_run_reports_agreement_and_fid_per_direction(cli, pix2pix_run, tmp_path,
                                                                                  scripted_features):
    run = shutil.copytree(pix2pix_run, tmp_path / "run")
    result = cli("eval", run, "--features", scripted_features, "--n", "40", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    values = out["eval"]
    assert set(values) == {"fid/a2b", "kid/a2b", "kid_std/a2b", "l1/a2b", "psnr/a2b", "ssim/a2b"}
    assert values["fid/a2b"] > 0 and 0 < values["l1/a2b"] < 1 and -1 <= values["ssim/a2b"] < 1
    assert "40 real images" in result.stderr  # too few for a trustworthy FID, and said so
    figure = run / "eval" / "translations-a2b.png"
    assert str(figure) in out["figures"] and figure.stat().st_size > 0
    assert out["settings"]["directions"] == ["a2b"]
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1]["eval"]["ssim/a2b"] == pytest.approx(values["ssim/a2b"])
    row = compare([run])[0]
    assert row["eval"]["l1/a2b"] == pytest.approx(values["l1/a2b"])


class Identity(Model):
    """A perfect translator between identical domains: its output is its input."""

    name = "identity-translator"
    summary = "returns its input"
    data = "paired"
    directions = ("a2b", "b2a")

    def build_networks(self):
        return {"G": nn.Identity()}

    def build_optimizers(self):
        return {}

    def translate(self, x, direction="a2b"):
        return x.clone()


def _identity_eval(monkeypatch, tmp_path, kind, metrics, features=None):
    from gencli.data import resolve

    images = torch.randint(0, 256, (24, 3, 16, 16), dtype=torch.uint8)
    other = images.clone() if kind == "paired" else torch.randint(0, 256, (20, 3, 16, 16), dtype=torch.uint8)
    model = type("Translator", (Identity,), {"data": kind})(Hyperparameters(), (3, 16, 16))
    from gencli.runs import Run, write_run_info

    (tmp_path / "run").mkdir(exist_ok=True)
    write_run_info(tmp_path / "run", {
        "gencli_version": gencli.__version__, "model": Identity.name, "hyperparameters": {},
        "data": {"spec": "same-twice", "kind": kind, "image_shape": [3, 16, 16]}, "training": {"seed": 0},
    })
    monkeypatch.setattr(Run, "load_model", lambda self, device="cpu": model)
    monkeypatch.setattr(resolve, "load_dataset", lambda spec, request: ImageData(spec, kind, images, targets=other))
    return evaluate(tmp_path / "run", metrics, n=24, features=features, progress=False)


def test_a_perfect_translator_scores_l1_0_and_ssim_1_in_both_directions(monkeypatch, tmp_path, scripted_features):
    result = _identity_eval(monkeypatch, tmp_path, "paired", None, str(scripted_features))
    values = result["eval"]
    for d in ("a2b", "b2a"):
        assert values[f"l1/{d}"] == 0 and values[f"ssim/{d}"] == pytest.approx(1.0)
        assert values[f"psnr/{d}"] == pytest.approx(100.0)  # the floor of a perfect match
        assert values[f"fid/{d}"] == pytest.approx(0.0, abs=1e-6)
    assert (tmp_path / "run" / "eval" / "translations-b2a.png").is_file()


def test_an_unpaired_translator_gets_fid_both_ways_and_no_ground_truth_metrics(monkeypatch, tmp_path,
                                                                              scripted_features):
    result = _identity_eval(monkeypatch, tmp_path, "unpaired", ["fid", "kid"], str(scripted_features))
    assert {"fid/a2b", "fid/b2a", "kid/a2b", "kid/b2a"} <= set(result["eval"])
    with pytest.raises(UserError, match="ssim compares translations with their ground truth.*unpaired.*use fid"):
        _identity_eval(monkeypatch, tmp_path, "unpaired", ["ssim"], str(scripted_features))


def test_default_metrics_of_translators_follow_their_data_kind():
    paired = type("P", (Identity,), {"data": "paired"}).__new__(type("P", (Identity,), {"data": "paired"}))
    unpaired = type("U", (Identity,), {"data": "unpaired"}).__new__(type("U", (Identity,), {"data": "unpaired"}))
    assert default_metrics(paired) == ["fid", "kid", "l1", "psnr", "ssim"]
    assert default_metrics(unpaired) == ["fid", "kid"]
