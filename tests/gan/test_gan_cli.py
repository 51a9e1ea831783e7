"""The GAN family through the engine and the command line: train, sample, interpolate, eval, resume, errors."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from gan_helpers import TINY
from PIL import Image
from safetensors.torch import load_file

from gencli.training.engine import TrainConfig

SIZE = 16
MODELS = ["gan", "dcgan", "wgan", "wgan-gp", "cgan", "ssgan"]


def tiny_sets(name: str, **extra) -> list[str]:
    values = {**TINY[name], **extra}
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def train_args(name: str, out, steps: int = 2, **extra) -> list[str]:
    return ["train", name, "--data", "shapes", "--image-size", str(SIZE), "--batch-size", "8", "--steps", str(steps),
            "--sample-every", "1", "--checkpoint-every", str(steps), "--device", "cpu", "--out", str(out),
            *tiny_sets(name, **extra)]


def message(result) -> str:
    return result.output + (getattr(result, "stderr", "") or "")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny trained dcgan and cgan runs, shared by the sampling and error tests."""
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("gan-runs")
    out = {}
    for name in ("dcgan", "cgan"):
        out[name] = train(TrainConfig(model=name, data="shapes", steps=2, batch_size=8, image_size=SIZE, channels=3,
                                      device="cpu", overrides=dict(TINY[name]), out=root / name, sample_every=2,
                                      checkpoint_every=2, quiet=True, sample_count=12))
    return out


# ---------------------------------------------------------------------------------- every model, end to end
@pytest.mark.parametrize("name", MODELS)
def test_train_sample_interpolate(name, cli, tmp_path):
    run = tmp_path / "run"
    result = cli(*train_args(name, run))
    assert result.exit_code == 0, message(result)
    assert (run / "samples" / "step-00000002.png").is_file() and (run / "progress.gif").is_file()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = {"wasserstein"} if name.startswith("wgan") else {"d_real", "d_fake"}
    assert {"loss_d", "loss_g"} | expected <= set(rows[-1])

    label = ["--label", "square"] if name == "cgan" else []
    result = cli("sample", run, "-n", "6", "-o", tmp_path / "grid.png", "--device", "cpu", *label)
    assert result.exit_code == 0, message(result)
    width, height = Image.open(tmp_path / "grid.png").size
    assert width * height >= 6 * SIZE * SIZE  # six images on the grid

    result = cli("interpolate", run, "--frames", "5", "-o", tmp_path / "walk.png", "--device", "cpu", *label)
    assert result.exit_code == 0, message(result)
    strip = Image.open(tmp_path / "walk.png")
    width, height = strip.size  # one row of five frames, enlarged to be readable, under a heading of t
    assert width >= 5 * SIZE and height < 2 * width / 5
    assert Image.open(tmp_path / "walk.gif").n_frames >= 5


def test_cgan_grid_shows_the_asked_class(runs, cli, tmp_path):
    result = cli("sample", runs["cgan"], "--label", "3", "--grid", "-n", "8", "-o", tmp_path / "threes.png", "--device", "cpu")
    assert result.exit_code == 0, message(result)
    assert (tmp_path / "threes.png").is_file()


def test_eval_computes_fid_for_a_gan(runs, cli, tmp_path):
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten()).eval()
    features = tmp_path / "features.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated by torch, yet what users have
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(net).save(str(features))
    result = cli("eval", runs["dcgan"], "--metrics", "fid,kid", "--n", "64", "--batch-size", "32",
                 "--features", features, "--device", "cpu", "--json")
    assert result.exit_code == 0, message(result)
    assert "fid" in result.output and "kid" in result.output


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name, extra, text", [
    ("wgan", {"clip": 0}, "clip must be > 0"),
    ("wgan", {"n_critic": 0}, "n_critic must be at least 1"),
    ("wgan-gp", {"d_norm": "batch"}, "cannot use batch norm"),
    ("dcgan", {"augment": "blur"}, "unknown augmentation 'blur'"),
])
def test_conflicting_set_exits_2_before_writing_a_run(name, extra, text, cli, tmp_path):
    result = cli(*train_args(name, tmp_path / "run", **extra))
    assert result.exit_code == 2
    assert text in message(result)
    assert not (tmp_path / "run").exists()


def test_unproducible_image_size_exits_2_naming_the_sizes(cli, tmp_path):
    args = train_args("dcgan", tmp_path / "run")
    args[args.index("--image-size") + 1] = "30"
    result = cli(*args)
    assert result.exit_code == 2
    assert "dcgan cannot produce 30 px images; it works at" in message(result) and "28, 32" in message(result)


def test_label_on_an_unconditional_gan_exits_2(runs, cli, tmp_path):
    result = cli("sample", runs["dcgan"], "--label", "3", "-o", tmp_path / "x.png", "--device", "cpu")
    assert result.exit_code == 2
    assert "not conditional" in message(result)
    assert not (tmp_path / "x.png").exists()


def test_cgan_label_out_of_range_exits_2(runs, cli, tmp_path):
    result = cli("sample", runs["cgan"], "--label", "9", "-o", tmp_path / "x.png", "--device", "cpu")
    assert result.exit_code == 2
    assert "out of range" in message(result)


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_truncation_scales_z_and_defaults_to_what_the_model_declares(runs, name):
    from gencli.runs import load_trained

    model = load_trained(str(runs[name]))
    labels = torch.arange(4) % 4 if name == "cgan" else None
    assert model.SampleOptions().truncation == (0.8 if name == "cgan" else 1.0)

    def draw(**kw):
        return model.sample(4, labels, generator=torch.Generator().manual_seed(3), **kw)

    z = model.latents(4, torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(draw(truncation=0.5), model.generate(0.5 * z, labels))
        assert torch.equal(draw(truncation=1.0), model.generate(z, labels))
        assert torch.equal(draw(), draw(truncation=model.SampleOptions().truncation))


def test_truncation_is_a_sample_option_and_a_bad_value_exits_2(runs, cli, tmp_path):
    result = cli("sample", runs["dcgan"], "-n", "4", "--set", "truncation=0.5", "-o", tmp_path / "t.png",
                 "--device", "cpu")
    assert result.exit_code == 0, message(result)
    assert Image.open(tmp_path / "t.png").size[0] >= 2 * SIZE
    for bad in ("0", "1.5"):
        result = cli("sample", runs["cgan"], "-n", "4", "--set", f"truncation={bad}", "-o", tmp_path / "x.png",
                     "--device", "cpu")
        assert result.exit_code == 2 and "truncation must be above 0 and at most 1" in message(result)
        assert "Traceback" not in message(result) and not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------------------- resume
def test_resumed_dcgan_matches_an_uninterrupted_run_exactly(tmp_path):
    """Two optimizers, the EMA generator, batch-norm buffers, decaying instance noise, augmentation."""
    from gencli.training.engine import TrainConfig, train

    stabilisers = {**TINY["dcgan"], "n_critic": 2, "instance_noise": 0.2, "instance_noise_steps": 5,
                   "augment": "color,translation,cutout", "label_smoothing": 0.1, "ema_decay": 0.9}

    def config(out, steps):
        return TrainConfig(model="dcgan", data="shapes", steps=steps, batch_size=8, image_size=SIZE, channels=3,
                           seed=5, device="cpu", overrides=stabilisers, out=out, sample_every=100,
                           checkpoint_every=3, quiet=True, sample_count=4)

    whole = train(config(tmp_path / "whole", 6))
    part = train(config(tmp_path / "part", 3))
    # The preview size is not part of the run, so a resume repeats it (the GIF needs equal frames).
    train(TrainConfig(model="dcgan", resume=part, steps=6, device="cpu", quiet=True, sample_count=4))

    def final(run):
        folder = run / "checkpoints" / "step-00000006"
        return load_file(str(folder / "weights.safetensors")), torch.load(folder / "state.pt", weights_only=True)

    (w_whole, s_whole), (w_part, s_part) = final(whole), final(part)
    assert set(w_whole) == set(w_part) and any(k.startswith("G_ema.") for k in w_whole)
    for key in w_whole:
        assert torch.equal(w_whole[key], w_part[key]), key
    for name in ("G", "D"):
        a, b = s_whole["optimizers"][name]["state"], s_part["optimizers"][name]["state"]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k]["exp_avg"], b[k]["exp_avg"]) and torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"])


# ---------------------------------------------------------------------------------- batches per step
def _wgan_config(out, **kw):
    from gencli.training.engine import TrainConfig

    settings = {"model": "wgan", "data": "shapes", "batch_size": 250, "image_size": SIZE, "channels": 3, "seed": 3,
                "device": "cpu", "overrides": {**TINY["wgan"], "n_critic": 4}, "out": out, "sample_every": 1000,
                "checkpoint_every": 1000, "quiet": True, "sample_count": 4}
    return TrainConfig(**{**settings, **kw})


def test_the_wgan_critic_sees_a_fresh_real_batch_per_update_and_an_epoch_is_one_pass(tmp_path, monkeypatch):
    from gencli.training.engine import train
    from gencli_gan.wgan import WGAN

    seen = []
    original = WGAN.discriminator_step

    def record(self, real, labels, noise_std, fake=None):
        seen.append((self.step, float(real.double().sum())))
        return original(self, real, labels, noise_std, fake)

    monkeypatch.setattr(WGAN, "discriminator_step", record)
    run = train(_wgan_config(tmp_path / "run", epochs=1))
    batches_per_epoch = 10_000 // 250
    steps = json.loads((run / "run.json").read_text())["step"]
    assert steps == batches_per_epoch // 4  # four real batches a step: an epoch takes a quarter of the steps
    assert len(seen) == batches_per_epoch
    for step in range(steps):
        sums = [s for st, s in seen if st == step]
        assert len(sums) == 4 and len(set(sums)) == 4  # n_critic distinct real batches in each step
    assert len({s for _, s in seen}) == batches_per_epoch  # every batch of the epoch, each once


def test_a_resumed_wgan_matches_an_uninterrupted_run_when_a_step_spans_two_epochs(tmp_path):
    from gencli.training.engine import train

    # 20 batches an epoch, 3 a step: step 7 takes the last two of epoch 0 and the first of epoch 1.
    overrides = {**TINY["wgan"], "n_critic": 3}
    whole = train(_wgan_config(tmp_path / "whole", steps=9, batch_size=500, overrides=overrides, checkpoint_every=6))
    part = train(_wgan_config(tmp_path / "part", steps=6, batch_size=500, overrides=overrides, checkpoint_every=6))
    state = torch.load(part / "checkpoints" / "step-00000006" / "state.pt", weights_only=True)
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 18)
    train(TrainConfig(model="wgan", resume=part, steps=9, device="cpu", quiet=True, sample_count=4))
    a = load_file(str(whole / "checkpoints" / "step-00000009" / "weights.safetensors"))
    b = load_file(str(part / "checkpoints" / "step-00000009" / "weights.safetensors"))
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    final = torch.load(part / "checkpoints" / "step-00000009" / "state.pt", weights_only=True)
    assert (final["epoch"], final["batch_in_epoch"]) == (1, 7)


@pytest.mark.slow
def test_wgan_gp_trains_under_compile_with_its_critic_left_eager(cli, tmp_path):
    # The gradient penalty differentiates through the critic's gradients, which torch.compile's
    # autograd cannot: a compiled critic failed at the first penalty with a RuntimeError.
    result = cli(*train_args("wgan-gp", tmp_path / "run"), "--compile")
    assert result.exit_code == 0, result.stderr
    assert "--compile leaves D eager: wgan-gp" in result.stderr
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2 and rows[-1]["gp"] >= 0


def test_models_name_the_networks_compile_must_leave_eager():
    from gencli.models import hparams
    from gencli.plugins import registry

    def eager(name, **values):
        cls = registry().model_class(name)
        return cls(hparams.build(cls.Hyperparameters, values), (3, 16, 16), None).eager_networks()

    assert eager("wgan-gp") == {"D"} and eager("wgan-gp", lambda_gp=0) == set()
    assert eager("dcgan") == set() and eager("vae") == set()
    assert eager("stylegan") == {"D", "G"} and eager("stylegan", r1_gamma=0, pl_weight=0) == set()
