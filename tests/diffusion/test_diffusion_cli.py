"""ddpm through the engine and the command line: runs, exact resume, sampling options and their errors."""

import json

import pytest
import torch
from diffusion_helpers import TINY
from PIL import Image
from safetensors.torch import load_file

import gencli
from gencli.training.engine import TrainConfig, train

TINY_SET = {**TINY, "timesteps": 20, "sampling_steps": 5}


def _train(out, data="shapes", steps=4, **kw):
    config = dict(model="ddpm", data=data, steps=steps, batch_size=8, image_size=16, channels=3, out=out,
                  overrides=dict(TINY_SET), sample_every=100, checkpoint_every=2, quiet=True, device="cpu",
                  sample_count=4, seed=3)
    config.update(kw)
    return train(TrainConfig(**config))


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("ddpm") / "labelled")


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain-images")
    g = torch.Generator().manual_seed(0)
    for i in range(16):
        pixels = torch.randint(0, 256, (16, 16, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
    return _train(folder.parent / "plain-run", data=str(folder), steps=2)


def _final_weights(run):
    return load_file(str(sorted((run / "checkpoints").glob("step-*"))[-1] / "weights.safetensors"))


def test_a_resumed_run_ends_with_exactly_the_weights_of_an_uninterrupted_one(tmp_path):
    full = _train(tmp_path / "full", steps=6, checkpoint_every=3)
    part = _train(tmp_path / "part", steps=3, checkpoint_every=3)
    train(TrainConfig(model="", resume=part, steps=6, quiet=True, device="cpu", sample_count=4))
    a, b = _final_weights(full), _final_weights(part)
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    losses = [[json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
              for run in (full, part)]
    assert losses[0] == losses[1]


def test_the_trained_model_samples_with_the_ema_weights_of_its_checkpoint(labelled_run):
    model = gencli.load_run(labelled_run)
    saved = _final_weights(labelled_run)
    ema = {k[len("ema."):]: v for k, v in saved.items() if k.startswith("ema.")}
    for name, tensor in model.nets["ema"].state_dict().items():
        assert torch.equal(tensor, ema[name]), name
    assert any(not torch.equal(saved[f"unet.{k}"], v) for k, v in ema.items())  # EMA lags the trained weights
    assert model.classes[:2] == ["circle", "square"]
    assert (labelled_run / "samples").is_dir() and list((labelled_run / "samples").glob("*.png"))


def test_sample_by_class_name_with_ddim_steps_and_guidance(cli, labelled_run, tmp_path):
    out = tmp_path / "cats.png"
    result = cli("sample", labelled_run, "--label", "ring", "--set", "steps=3", "--set", "guidance=3", "-n", "4", "--out", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 16


def test_forward_noise_figure_and_interpolation_from_the_command_line(cli, labelled_run, tmp_path):
    figure = cli("sample", labelled_run, "--figure", "forward-noise", "-n", "2", "--out", tmp_path / "forward.png")
    assert figure.exit_code == 0, figure.output
    assert Image.open(tmp_path / "forward.png").size[0] > Image.open(tmp_path / "forward.png").size[1]
    chosen = cli("sample", labelled_run, "--figure", "forward-noise", "-n", "2", "--set", "timesteps=0,10,20",
                 "--out", tmp_path / "chosen.png")
    assert chosen.exit_code == 0, chosen.output
    width, height = Image.open(tmp_path / "chosen.png").size
    assert Image.open(tmp_path / "forward.png").size[0] > width > height  # 3 columns instead of the default's
    walk = cli("interpolate", labelled_run, "--frames", "3", "--set", "steps=2", "--out", tmp_path / "walk.png")
    assert walk.exit_code == 0, walk.output
    assert (tmp_path / "walk.png").exists() and (tmp_path / "walk.gif").exists()


@pytest.mark.parametrize("args, message", [
    (["--set", "steps=21"], "steps must be between 1 and 20"),
    (["--set", "steps=0"], "steps must be between 1 and 20"),
    (["--label", "cat"], "unknown class 'cat'"),
    (["--set", "sampler=ddpm", "--set", "steps=5"], "the ddpm sampler runs all 20 steps"),
    (["--set", "truncation=0.7"], "unknown option 'truncation'"),
    (["--set", "timesteps=0,10"], "unknown option 'timesteps'"),
    (["--set", "eta=1.5"], "eta"),  # checked by the options class (Options.validate) as --set builds it
    (["--set", "guidance=-1"], "guidance"),
    (["--figure", "forward-noise", "--set", "timesteps=0,99"], r"timesteps must be whole numbers between 0 and 20"),
])
def test_bad_sampling_options_end_with_one_line_and_exit_2(cli, labelled_run, args, message):
    result = cli("sample", labelled_run, "-n", "2", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--set", "guidance=2"], "guidance needs a model trained on labelled data"),
    (["--label", "0"], "was trained without labels"),
])
def test_an_unlabelled_run_refuses_labels_and_guidance(cli, plain_run, args, message):
    result = cli("sample", plain_run, "-n", "2", "--set", "steps=2", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_an_unlabelled_run_samples_unconditionally(cli, plain_run, tmp_path):
    result = cli("sample", plain_run, "-n", "2", "--set", "steps=2", "--out", tmp_path / "plain.png")
    assert result.exit_code == 0, result.output
    assert gencli.load_run(plain_run).num_classes == 0


def test_the_example_config_is_one_step_from_the_papers_cifar10_network():
    from pathlib import Path

    from gencli.models import hparams
    from gencli.training.engine import merge_config_file
    from gencli_diffusion.ddpm import DDPMHyperparameters
    from gencli_diffusion.unet import UNet

    example = Path(__file__).resolve().parents[2] / "examples" / "ddpm-cifar10.toml"
    values = merge_config_file({"overrides": {}}, example)
    assert values["model"] == "ddpm" and values["data"] == "cifar10" and values["image_size"] == 32
    hp = hparams.build(DDPMHyperparameters, values["overrides"], source=str(example))
    net = UNet(3, hp.base_width, hp.channel_mults, hp.res_blocks, hp.attention_levels, hp.dropout, 10)
    # the paper's 35.7M, plus 2.6M for the scale-shift norm's embedding projections (Nichol & Dhariwal)
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(38.3e6, rel=0.01)


def test_class_grids_from_the_command_line(cli, labelled_run, tmp_path):
    import gencli

    classes = gencli.load_run(labelled_run).classes
    grid = cli("sample", labelled_run, "--label", "all", "-n", "2", "--set", "steps=2", "--out", tmp_path / "all.png")
    assert grid.exit_code == 0, grid.output
    width, height = Image.open(tmp_path / "all.png").size
    assert height >= len(classes) * 16 and width > 2 * 16  # a row per class, names in a left margin
    folders = cli("sample", labelled_run, "--label", f"{classes[1]},0", "-n", "2", "--no-grid", "--set", "steps=2",
                  "--out", tmp_path / "per-class")
    assert folders.exit_code == 0, folders.output
    assert sorted(p.name for p in (tmp_path / "per-class").iterdir()) == sorted([classes[1], classes[0]])
    assert all(len(list(p.glob("*.png"))) == 2 for p in (tmp_path / "per-class").iterdir())
    bad = cli("sample", labelled_run, "--label", "0,nosuch", "--set", "steps=2")
    assert bad.exit_code == 2 and "unknown class 'nosuch'" in bad.stderr
