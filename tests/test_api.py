"""The Python API beside the command line: gencli.train, gencli.sample, gencli.evaluate (docs/api.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import gencli
from gencli.runs import checkpoints as ckpt

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=16, batch_size=16, set={"widths": "8,16"})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "vae"
    return gencli.train("vae", "shapes", steps=20, seed=3, out=out, **TINY)


def test_train_returns_the_finished_run_with_the_settings_asked_for(tiny_run):
    assert isinstance(tiny_run, gencli.Run)
    assert tiny_run.status == "finished" and tiny_run.step == 20 and tiny_run.model_name == "vae"
    assert tiny_run.seed == 3 and tiny_run.image_shape == (3, 16, 16) and tiny_run.batch_size == 16
    assert tiny_run.info["hyperparameters"]["widths"] == [8, 16]


def test_sample_gives_images_in_range_and_the_same_seed_gives_the_same_images(tiny_run):
    images = gencli.sample(tiny_run, 6, seed=1)
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.float32 and images.device.type == "cpu"
    assert images.min() >= -1 and images.max() <= 1 and images.std() > 0
    assert torch.equal(images, gencli.sample(str(tiny_run.dir), 6, seed=1))
    assert not torch.equal(images, gencli.sample(tiny_run, 6, seed=2))


def test_sample_refuses_labels_for_an_unconditional_model_and_bad_counts(tiny_run):
    with pytest.raises(gencli.UserError, match="not conditional"):
        gencli.sample(tiny_run, 4, labels=0)
    with pytest.raises(gencli.UserError, match="at least 1"):
        gencli.sample(tiny_run, 0)
    with pytest.raises(gencli.UserError, match="unknown option 'nope'"):
        gencli.sample(tiny_run, 4, options={"nope": 1})


def test_evaluate_a_pixel_metric_records_it_unless_asked_not_to(tiny_run):
    before = len(tiny_run.evaluations())
    result = gencli.evaluate(tiny_run, ["mse", "psnr"], n=32, device="cpu")
    assert set(result["eval"]) == {"mse", "psnr"} and 0 < result["eval"]["mse"] < 1
    assert result["step"] == 20 and result["settings"]["split"] == "test"
    assert len(tiny_run.evaluations()) == before + 1
    assert tiny_run.evaluations()[-1]["eval"] == pytest.approx(result["eval"])
    again = gencli.evaluate(tiny_run, "mse", n=32, device="cpu", record=False)
    assert again["eval"]["mse"] == pytest.approx(result["eval"]["mse"])
    assert len(tiny_run.evaluations()) == before + 1


def test_a_bad_hyperparameter_raises_a_user_error_naming_it_and_writes_nothing(tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(gencli.UserError, match="beta") as raised:
        gencli.train("vae", "shapes", steps=5, out=out, image_size=16, set={"widths": "8,16", "beta": -1.0})
    assert "\n" not in str(raised.value)
    with pytest.raises(gencli.UserError, match="unknown hyperparameter 'betta'.*beta"):
        gencli.train("vae", "shapes", steps=5, out=out, set={"betta": 1.0})
    with pytest.raises(gencli.UserError, match="--steps"):
        gencli.train("vae", "shapes", steps=0, out=out)
    assert not out.exists()


def test_the_api_and_the_cli_give_bit_identical_weights(tmp_path):
    api = gencli.train("vae", "shapes", steps=8, seed=5, out=tmp_path / "api", device="cpu", **TINY)
    done = subprocess.run([sys.executable, "-m", "gencli", "--quiet", "train", "vae", "--data", "shapes", "--steps", "8",
                           "--seed", "5", "--image-size", "16", "--batch-size", "16", "--set", "widths=8,16",
                           "--device", "cpu", "--out", str(tmp_path / "cli")],
                          capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    a = load_file(str(ckpt.latest_checkpoint(api.dir) / "weights.safetensors"))
    b = load_file(str(ckpt.latest_checkpoint(tmp_path / "cli") / "weights.safetensors"))
    assert a.keys() == b.keys() and a
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["hyperparameters"] == api.info["hyperparameters"]


def test_importing_gencli_and_reaching_the_api_names_imports_no_torch():
    code = "import sys, gencli; gencli.train, gencli.sample, gencli.evaluate; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def test_the_tested_examples_of_docs_api_md_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python tested\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), flags=re.S)
    assert len(blocks) >= 4, "docs/api.md lost its tested examples"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in blocks:
        exec(compile(block, "docs/api.md", "exec"), scope)  # noqa: S102 - the project's own documentation
    assert scope["run"].step == 40 and scope["images"].shape == (16, 3, 16, 16)
    assert "beta" in capsys.readouterr().out
    assert scope["run"].evaluations()[-1]["eval"] == scope["result"]["eval"]
