"""StyleGAN through the engine and the command line: exact resume, sample, style mix, interpolate, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from stylegan_helpers import tiny_values

SIZE = 16


def run_training(out, steps: int, resume=None, checkpoint_every: int = 3, **overrides):
    """Train the tiny StyleGAN on the shapes with the engine; return the run directory."""
    from gencli.training.engine import TrainConfig, train

    if resume is not None:
        return train(TrainConfig(model="stylegan", resume=resume, steps=steps, device="cpu", quiet=True,
                                 sample_count=4))
    values = tiny_values(**overrides)
    return train(TrainConfig(model="stylegan", data="shapes", steps=steps, batch_size=8, image_size=SIZE, channels=3,
                             seed=3, device="cpu", overrides=values, out=out, sample_every=3,
                             checkpoint_every=checkpoint_every, quiet=True, sample_count=4))


def final_checkpoint(run_dir, step: int):
    folder = run_dir / "checkpoints" / f"step-{step:08d}"
    return load_file(str(folder / "weights.safetensors")), torch.load(folder / "state.pt", weights_only=True)


@pytest.fixture(scope="module")
def trained_stylegan(tmp_path_factory):
    return run_training(tmp_path_factory.mktemp("stylegan") / "run", steps=2, checkpoint_every=2)


def test_resumed_training_matches_an_uninterrupted_run_exactly(tmp_path):
    # Regularisation every 2 steps and a resume at step 3: R1 and path length fall on both sides.
    reg = {"d_reg_every": 2, "g_reg_every": 2}
    straight = run_training(tmp_path / "straight", steps=6, **reg)
    part = run_training(tmp_path / "part", steps=3, **reg)
    resumed = run_training(None, steps=6, resume=part)
    assert resumed == part

    w_straight, s_straight = final_checkpoint(straight, 6)
    w_resumed, s_resumed = final_checkpoint(resumed, 6)
    assert w_straight.keys() == w_resumed.keys()
    assert any(k.startswith("G_ema.") for k in w_straight) and "G.mapping.w_avg" in w_straight
    for key in w_straight:
        assert torch.equal(w_straight[key], w_resumed[key]), key
    extra_a, extra_b = s_straight["extra"], s_resumed["extra"]
    assert extra_a["images_seen"] == extra_b["images_seen"] == 48
    for key in ("pl_mean", "last_r1", "last_pl"):
        assert torch.equal(extra_a[key], extra_b[key]), key
    # The EMA generator and the w average really moved, so the comparison means something.
    first, _ = final_checkpoint(straight, 3)
    assert not torch.equal(first["G_ema.mapping.w_avg"], w_straight["G_ema.mapping.w_avg"])
    assert not torch.equal(first["G_ema.synthesis.blocks.0.const"], w_straight["G_ema.synthesis.blocks.0.const"])


def test_a_run_writes_progress_media_and_loads_back(trained_stylegan):
    import gencli

    assert (trained_stylegan / "samples" / "step-00000002.png").is_file()
    assert (trained_stylegan / "progress.gif").is_file()
    model = gencli.load_run(trained_stylegan)
    assert model.name == "stylegan"
    images = model.sample(3, generator=torch.Generator().manual_seed(0), truncation=0.7)
    assert images.shape == (3, 3, SIZE, SIZE)


def grid_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_sample_with_truncation_and_frozen_noise(cli, trained_stylegan, tmp_path):
    out = tmp_path / "samples.png"
    r = cli("sample", trained_stylegan, "--set", "truncation=0.7", "--set", "noise=const", "-n", "4", "--out", out,
            "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    width, height = grid_size(out)
    assert width >= 2 * SIZE and height >= 2 * SIZE


@pytest.mark.parametrize("value", ["-1", "1.5", "nan"])
def test_a_truncation_outside_0_to_1_is_one_line_and_writes_nothing(cli, trained_stylegan, tmp_path, value):
    out = tmp_path / "samples.png"
    r = cli("sample", trained_stylegan, "--set", f"truncation={value}", "-n", "2", "--out", out, "--device", "cpu")
    assert r.exit_code == 2 and "truncation" in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_sample_style_mix_draws_the_grid(cli, trained_stylegan, tmp_path):
    out = tmp_path / "mix.png"
    r = cli("sample", trained_stylegan, "--figure", "style-mix", "-n", "9", "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    width, height = grid_size(out)
    plain = 2 + 4 * (SIZE + 2)  # (3 + 1) x (3 + 1) images, then enlarged by a whole factor to be read
    assert width == height and width % plain == 0 and width >= 256


@pytest.mark.parametrize("space", ["w", "z"])
def test_interpolate_in_w_and_in_z(cli, trained_stylegan, tmp_path, space):
    out = tmp_path / f"walk-{space}.png"
    r = cli("interpolate", trained_stylegan, "--set", f"space={space}", "--frames", "4", "--out", out, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    assert out.is_file() and out.with_suffix(".gif").is_file()
    width, height = grid_size(out)
    assert width >= 4 * SIZE and height < 2 * width / 4  # one strip of four frames (enlarged, under a heading of t)


@pytest.mark.parametrize("args, message", [
    (["--set", "noise=frozen"], "bad value 'frozen' for 'noise'"),
    (["--figure", "style-mix", "--set", "noise=off"], "bad value 'off' for 'noise'"),
    (["--figure", "forward-noise"], "draws no figure 'forward-noise'"),
    (["--set", "steps=10"], "unknown option 'steps'"),
])
def test_bad_sample_options_exit_2_with_one_line(cli, trained_stylegan, args, message):
    r = cli("sample", trained_stylegan, *args, "--device", "cpu")
    assert r.exit_code == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_bad_interpolation_space_exits_2(cli, trained_stylegan):
    r = cli("interpolate", trained_stylegan, "--set", "space=x", "--device", "cpu")
    assert r.exit_code == 2 and "bad value 'x' for 'space'" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--image-size", "48"], "stylegan works at image sizes 8, 16, 32, 64, 128, 256 (powers of two), not 48"),
    (["--image-size", "16", "--set", "channels_base=8"], "channels_base 8 leaves no channels at 16 px"),
    (["--set", "style_mixing_prob=2"], "style_mixing_prob must be in [0, 1], got 2.0"),
    (["--set", "pl_weight=-1"], "pl_weight must be >= 0"),
])
def test_bad_training_settings_exit_2(cli, tmp_path, args, message):
    r = cli("train", "stylegan", "--steps", "1", "--out", tmp_path / "run", "--device", "cpu", *args)
    assert r.exit_code == 2, r.stdout + r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_plugin_registers_stylegan_without_importing_torch():
    code = (
        "import sys, gencli_stylegan.plugin as p; specs = p.gencli_register_models(); "
        "print([s.name for s in specs], 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['stylegan'] False"
    from gencli.plugins import registry

    spec = registry().model("stylegan")
    assert spec.load().name == "stylegan" and spec.plugin == "stylegan"
