"""Mixed precision and torch.compile on the CPU: what the GPU paths share with it.

CUDA itself is not available to the test suite; autocast, the per-optimizer gradient scalers and
torch.compile's inductor backend run on the CPU too, so their behaviour is checked here.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from cli_helpers import TINY_VAE, run_cli
from gan.gan_helpers import model_class, shapes, train_steps
from safetensors.torch import load_file

from gencli.models import hparams
from gencli.runs import checkpoints as ckpt
from gencli.training.engine import TrainConfig, train


def _losses(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _tiny_run(tmp_path, precision):
    return train(TrainConfig(model="vae", data="shapes", steps=80, image_size=16, batch_size=16, log_every=10,
                             sample_every=80, checkpoint_every=40, precision=precision, quiet=True,
                             overrides={"widths": "8,16"}, out=tmp_path / precision))


def test_bf16_autocast_follows_fp32_training_and_keeps_fp32_weights(tmp_path):
    run = _tiny_run(tmp_path, "bf16")
    rows, reference = _losses(run), _losses(_tiny_run(tmp_path, "fp32"))
    assert len(rows) == len(reference) == 8 and rows[-1]["loss"] < 0.9 * rows[0]["loss"]
    for r, f in zip(rows, reference):  # bf16 keeps 8 bits of mantissa: the same run within a percent
        assert r["loss"] == pytest.approx(f["loss"], rel=0.01)
    weights = load_file(str(ckpt.latest_checkpoint(run) / "weights.safetensors"))
    assert weights and all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())  # master weights stay fp32
    assert json.loads((run / "run.json").read_text())["training"]["precision"] == "bf16"


def _dcgan_fp16():
    cls = model_class("dcgan")
    hp = hparams.build(cls.Hyperparameters, {"g_width": 16, "d_width": 16, "z_dim": 32})
    torch.manual_seed(0)
    return cls(hp, (3, 16, 16), None, device="cpu", precision="fp16")


def test_fp16_gives_each_optimizer_its_own_scaler_and_skips_only_the_overflowing_step():
    model = _dcgan_fp16()
    assert set(model.scalers) == {"G", "D"} and all(s.is_enabled() for s in model.scalers.values())
    data = shapes(16, 3, 256)
    train_steps(model, data, 2)
    g_scale = model.scalers["G"].get_scale()
    # a loss scale this large overflows D's fp16 backward pass: D's step must be skipped, G's not
    model.scalers["D"] = torch.amp.GradScaler("cpu", init_scale=2.0**120)
    d_before = {k: v.clone() for k, v in model.nets["D"].state_dict().items()}
    g_before = {k: v.clone() for k, v in model.nets["G"].state_dict().items()}
    train_steps(model, data, 3)
    d_params = {n for n, _ in model.nets["D"].named_parameters()}
    assert all(torch.equal(d_before[n], model.nets["D"].state_dict()[n]) for n in d_params)
    assert any(not torch.equal(g_before[n], p) for n, p in model.nets["G"].named_parameters())
    assert model.scalers["D"].get_scale() == 2.0**119  # backed off once
    assert model.scalers["G"].get_scale() == g_scale


def test_fp16_scaler_state_is_saved_and_restored(tmp_path):
    model = _dcgan_fp16()
    model.scalers["D"] = torch.amp.GradScaler("cpu", init_scale=2.0**120)
    train_steps(model, shapes(16, 3, 128), 1)
    saved = ckpt.save_checkpoint(tmp_path, model, epoch=0, batch_in_epoch=1)
    fresh = _dcgan_fp16()
    ckpt.load_training_state(saved, fresh)
    assert fresh.scalers["D"].get_scale() == 2.0**119
    assert fresh.scalers["G"].get_scale() == model.scalers["G"].get_scale()


def _has_cxx() -> bool:
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


@pytest.mark.skipif(not _has_cxx(), reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_training_matches_eager_training(tmp_path):
    env = {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    args = ["--quiet", "train", "vae", *TINY_VAE, "--steps", "30", "--sample-every", "30"]
    eager = run_cli(*args, "--out", str(tmp_path / "eager"), env=env)
    compiled = run_cli(*args, "--compile", "--out", str(tmp_path / "compiled"), env=env, timeout=600)
    assert eager.returncode == 0, eager.stderr
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stderr == ""  # it really compiled, and quietly
    a, b = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [10, 20, 30]
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-2)
    # the compiled networks save under their own parameter names: an eager process samples from them
    out = run_cli("sample", str(tmp_path / "compiled"), "--n", "4", "--out", str(tmp_path / "s.png"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s.png").exists()


def test_compile_without_a_working_backend_warns_once_and_trains_eagerly(tmp_path):
    env = {"CXX": "/bin/false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    out = run_cli("--quiet", "train", "vae", *TINY_VAE, "--steps", "10", "--compile", "--out", str(tmp_path / "r"), env=env)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: --compile unavailable on cpu"), out.stderr
    assert "Traceback" not in out.stderr
    assert (tmp_path / "r" / "checkpoints" / "latest").exists()
