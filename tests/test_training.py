"""The engine end to end with the VAE: files, checkpoints, exact resume, failures."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from safetensors.torch import load_file

from gencli.errors import UserError
from gencli.runs import checkpoints as ckpt
from gencli.runs import load_trained
from gencli.training.engine import TrainConfig, train

TINY = dict(image_size=16, batch_size=16, overrides={"widths": "8,16"}, quiet=True)


def tiny_config(tmp_path, name="run", **kw):
    return TrainConfig(**{"model": "vae", "data": "shapes", "steps": 30, "sample_every": 10, "checkpoint_every": 10,
                          "out": tmp_path / name, **TINY, **kw})


def losses(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_short_run_lowers_the_loss_and_writes_every_file(tmp_path):
    run = train(tiny_config(tmp_path, steps=60, log_every=5, sample_every=20))
    rows = losses(run)
    assert rows[-1]["loss"] < 0.93 * rows[0]["loss"]
    for name in ("run.json", "metrics.jsonl", "progress.gif", "losses.png", "checkpoints/latest"):
        assert (run / name).exists(), name
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 60 and info["model"] == "vae"
    assert info["data"]["image_shape"] == [3, 16, 16] and info["hyperparameters"]["widths"] == [8, 16]
    grids = sorted((run / "samples").glob("*.png"))
    assert [g.name for g in grids] == ["step-00000020.png", "step-00000040.png", "step-00000060.png"]
    frames = iio.imread(run / "progress.gif", index=None)
    assert len(frames) == len(grids)


def test_checkpoint_round_trip_restores_identical_weights(tmp_path):
    run = train(tiny_config(tmp_path, steps=10))
    model = load_trained(str(run))
    saved = load_file(str(ckpt.latest_checkpoint(run) / "weights.safetensors"))
    for name, net in model.nets.items():
        for key, value in net.state_dict().items():
            assert torch.equal(value, saved[f"{name}.{key}"]), key
    assert model.step == 10 and not model.nets["encoder"].training


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.latest_checkpoint(run) / "weights.safetensors"))


def _cli(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "gencli", "-q", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


TRAIN_ARGS = ["train", "vae", "--steps", "40", "--checkpoint-every", "10", "--sample-every", "20", "--image-size", "16",
              "--batch-size", "16", "--set", "widths=8,16", "--seed", "7"]


def test_a_run_killed_mid_training_resumes_to_the_same_weights_and_losses(tmp_path):
    full = _cli(*TRAIN_ARGS, "--out", tmp_path / "full")
    assert full.wait(timeout=300) == 0, full.stderr.read()

    killed_dir = tmp_path / "killed"
    proc = _cli(*TRAIN_ARGS, "--out", killed_dir)
    deadline = time.time() + 240
    while time.time() < deadline:  # wait for a checkpoint past the first, then kill mid-run
        latest = ckpt.latest_checkpoint(killed_dir) if killed_dir.exists() else None
        if latest is not None and json.loads((latest / "meta.json").read_text())["step"] >= 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((killed_dir / "run.json").read_text())["status"] == "running"

    resumed = _cli("train", "--resume", killed_dir)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    a, b = _weights(tmp_path / "full"), _weights(killed_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["loss"] for r in losses(tmp_path / "full")] == [r["loss"] for r in losses(killed_dir)]


def test_resuming_a_finished_run_needs_more_steps(tmp_path):
    run = train(tiny_config(tmp_path, steps=10))
    with pytest.raises(UserError, match="already reached step 10 of 10; pass --steps"):
        train(TrainConfig(model="", resume=run, quiet=True))
    more = train(TrainConfig(model="", resume=run, steps=20, quiet=True))
    assert json.loads((more / "run.json").read_text())["step"] == 20


def test_out_never_overwrites_an_existing_run(tmp_path):
    run = train(tiny_config(tmp_path, steps=10))
    before = (run / "run.json").read_text(), _weights(run)
    with pytest.raises(UserError, match="already holds a run"):
        train(tiny_config(tmp_path, steps=10))
    assert (run / "run.json").read_text() == before[0]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from gencli_vae.vae import VAE

    original = VAE.train_step

    def poisoned(self, batch):
        out = original(self, batch)
        if self.step >= 14:  # the 15th step's loss is NaN
            out["kl"] = out["kl"] * float("nan")
        return out

    monkeypatch.setattr(VAE, "train_step", poisoned)
    with pytest.raises(UserError, match=r"loss 'kl' became non-finite at step 15.*checkpoints/step-00000010"):
        train(tiny_config(tmp_path, steps=30))
    run = tmp_path / "run"
    assert ckpt.latest_checkpoint(run).name == "step-00000010"
    for t in _weights(run).values():
        assert torch.isfinite(t.float()).all()
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


def test_checkpoints_are_refused_when_damaged_or_of_another_model(tmp_path):
    run = train(tiny_config(tmp_path, steps=10))
    latest = ckpt.latest_checkpoint(run)
    model = load_trained(str(run))
    model.name = "cvae"
    with pytest.raises(UserError, match="of model 'vae', not 'cvae'"):
        ckpt.load_weights(latest, model)
    weights = latest / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UserError, match="truncated or damaged"):
        load_trained(str(run))


def test_a_state_file_that_would_unpickle_code_is_refused(tmp_path):
    run = train(tiny_config(tmp_path, steps=10))
    latest = ckpt.latest_checkpoint(run)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"evil": Evil()}, latest / "state.pt")
    meta = json.loads((latest / "meta.json").read_text())
    meta["files"]["state.pt"] = (latest / "state.pt").stat().st_size
    (latest / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="cannot read training state"):
        train(TrainConfig(model="", resume=run, steps=20, quiet=True))


def test_a_half_written_checkpoint_is_ignored(tmp_path):
    run = train(tiny_config(tmp_path, steps=10))
    (run / "checkpoints" / ".step-00000020.tmp-123").mkdir()
    (run / "checkpoints" / "step-00000030").mkdir()  # no meta.json: never completed
    (run / "checkpoints" / "latest").unlink()
    assert ckpt.latest_checkpoint(run).name == "step-00000010"


def test_the_command_line_run_length_replaces_the_config_files(tmp_path):
    from gencli.training.engine import merge_config_file

    config = tmp_path / "c.toml"
    config.write_text('model = "vae"\nepochs = 5\nbatch_size = 8\n[hyperparameters]\nbeta = 2.0\n')
    merged = merge_config_file({"steps": 3, "overrides": {"latent_dim": "2"}}, config)
    assert merged["steps"] == 3 and "epochs" not in merged and merged["batch_size"] == 8
    assert merged["overrides"] == {"beta": 2.0, "latent_dim": "2"}
