"""CycleGAN: shapes at the papers' sizes, the LR schedule, training, resume, capabilities, mistakes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gencli.data.base import BatchStream, DataRequest, ImageData, to_float
from gencli.data.synthetic import build_shapes_paired, build_shapes_unpaired
from gencli.errors import UserError
from gencli.models import hparams
from gencli.runs import checkpoints as ckpt
from gencli.training.engine import TrainConfig, train
from gencli_translation.cyclegan import CycleGAN, CycleGANHyperparameters, linear_decay
from gencli_translation.networks import ResnetBlock

TINY = {"ngf": 4, "blocks": 1}


def tiny(size: int = 16, **kw) -> CycleGAN:
    return CycleGAN(CycleGANHyperparameters(**{**TINY, **kw}), (3, size, size))


def unpaired(size: int = 16, n: int = 64, split: str = "train") -> ImageData:
    return build_shapes_unpaired(DataRequest(size, 3, split=split, options={"size": n}))


@pytest.mark.parametrize("size,blocks,patch", [(64, 6, 6), (128, 6, 14), (256, 9, 30)])
def test_network_shapes_at_the_papers_sizes(size, blocks, patch):
    torch.manual_seed(0)
    model = CycleGAN(CycleGANHyperparameters(ngf=2, ndf=2), (3, size, size))
    x = torch.randn(1, 3, size, size)
    for g in ("G_AB", "G_BA"):
        assert model.nets[g](x).shape == x.shape
        assert sum(isinstance(m, ResnetBlock) for m in model.nets[g].modules()) == blocks
    for d in ("D_A", "D_B"):
        assert model.nets[d](x).shape == (1, 1, patch, patch)


def test_default_widths_are_the_papers_from_128_px():
    model = CycleGAN(CycleGANHyperparameters(blocks=0), (3, 128, 128))
    assert model.nets["G_AB"].model[1].out_channels == 64
    assert model.nets["D_A"].model[0].out_channels == 64


def test_linear_decay_factor():
    factor = linear_decay(100, 50)
    assert [factor(s) for s in (0, 99, 100, 125, 150, 500)] == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert linear_decay(10, 0)(1000) == 1.0


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    torch.manual_seed(0)
    model = tiny(constant_steps=4, decay_steps=4, lr=1e-3)
    lrs = []
    for i, batch in enumerate(BatchStream(unpaired(n=16), 2).epoch(0)):
        lrs.append([opt.param_groups[0]["lr"] for opt in model.optimizers.values()])
        model.train_step(batch)
        if i == 7:
            break
    lrs.append([opt.param_groups[0]["lr"] for opt in model.optimizers.values()])
    start, decay_start, middle, end = lrs[0], lrs[4], lrs[6], lrs[8]
    assert start == [1e-3, 1e-3] and decay_start == [1e-3, 1e-3]
    assert middle == pytest.approx([5e-4, 5e-4]) and end == [0.0, 0.0]


def test_a_short_run_lowers_the_cycle_loss_on_held_out_images():
    torch.manual_seed(0)
    model = CycleGAN(CycleGANHyperparameters(ngf=8, blocks=2), (3, 16, 16))
    held_out = unpaired(n=16, split="test")
    a, b = to_float(held_out.images), to_float(held_out.targets)

    def cycle_loss() -> float:
        model.eval()
        with torch.no_grad():
            loss = F.l1_loss(model.translate(model.translate(a, "a2b"), "b2a"), a) + F.l1_loss(
                model.translate(model.translate(b, "b2a"), "a2b"), b)
        model.train()
        return float(loss)

    before = cycle_loss()
    for i, batch in enumerate(BatchStream(unpaired(n=128), 4, flip=True).epoch(0)):
        losses = model.train_step(batch)
        if i == 24:
            break
    assert cycle_loss() < 0.75 * before
    assert set(losses) == {"g_ab", "g_ba", "cycle_a", "cycle_b", "idt_a", "idt_b", "d_a", "d_b"}
    assert all(v.dim() == 0 and not v.requires_grad for v in losses.values())


def test_identity_loss_can_be_switched_off():
    torch.manual_seed(0)
    model = tiny(lambda_identity=0.0)
    losses = model.train_step(next(iter(BatchStream(unpaired(n=8), 2).epoch(0))))
    assert "idt_a" not in losses and "cycle_a" in losses


def test_trains_on_paired_data_as_two_domains():
    torch.manual_seed(0)
    data = build_shapes_paired(DataRequest(16, 3, options={"size": 8}))
    losses = tiny().train_step(next(iter(BatchStream(data, 2).epoch(0))))
    assert torch.isfinite(torch.stack(list(losses.values()))).all()


def test_translate_uses_one_generator_per_direction():
    torch.manual_seed(0)
    model = tiny().eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model.translate(x, "a2b"), model.nets["G_AB"](x))
        assert torch.equal(model.translate(x, "b2a"), model.nets["G_BA"](x))
    assert model.directions == ("a2b", "b2a")
    with pytest.raises(UserError, match="translates a2b or b2a, not 'sideways'"):
        model.translate(x, "sideways")


def test_preview_shows_triptychs_of_both_directions():
    torch.manual_seed(0)
    model = tiny().eval()
    held_out = unpaired(size=20, n=8, split="test")  # larger than the network, as at load size
    inputs = model.preview_inputs(held_out, 4, seed=3)
    with torch.no_grad():
        images, nrow = model.preview(inputs)
    assert nrow == 6 and images.shape == (12, 3, 16, 16)  # two triptychs per grid row
    a, b = inputs["images"], inputs["targets"]
    assert torch.equal(images[0], a[0]) and torch.equal(images[6], b[0])
    with torch.no_grad():
        assert torch.equal(images[1], model.translate(a, "a2b")[0])
        assert torch.allclose(images[2], model.translate(model.translate(a, "a2b"), "b2a")[0])
        assert torch.equal(images[7], model.translate(b, "b2a")[0])
    again = model.preview_inputs(held_out, 4, seed=3)  # fixed across intervals
    assert torch.equal(again["images"], a)
    many = model.preview_inputs(held_out, 36, seed=3)  # capped, so the grid stays legible
    assert len(many["images"]) + len(many["targets"]) == 12


def test_load_size_follows_the_paper_ratio():
    hp = CycleGANHyperparameters()
    assert CycleGAN.load_size(hp, 256) == 286
    assert CycleGAN.load_size(CycleGANHyperparameters(load_size=40), 32) == 40
    assert CycleGAN.augment_flip
    with pytest.raises(UserError, match="load_size 24 is smaller than the image size 32"):
        CycleGAN.load_size(CycleGANHyperparameters(load_size=24), 32)


@pytest.mark.parametrize("size,channels,message", [
    (30, 3, "multiple of 4 and at least 16"),
    (8, 3, "multiple of 4 and at least 16"),
    (32, 2, "1 or 3 channels"),
])
def test_unsupported_shapes_are_refused(size, channels, message):
    with pytest.raises(UserError, match=message):
        CycleGAN(CycleGANHyperparameters(**TINY), (channels, size, size))


@pytest.mark.parametrize("values,message", [
    ({"lambda_cycle": "-1"}, "lambda_cycle must be at least 0"),
    ({"pool_size": "-2"}, "pool_size must be at least 0"),
    ({"ngf": "0"}, "ngf must be at least 1"),
    ({"gan_mode": "wgan"}, "bad value 'wgan' for 'gan_mode'"),
    ({"norm": "group"}, "bad value 'group' for 'norm'"),
])
def test_bad_hyperparameters_are_refused(values, message):
    with pytest.raises(UserError, match=message):
        hparams.build(CycleGANHyperparameters, values)


def test_too_many_discriminator_layers_for_the_size():
    with pytest.raises(UserError, match="d_layers 4 is too many for 16 px images; use at most 2"):
        tiny(d_layers=4)


def test_a_resumed_run_follows_the_uninterrupted_one(tmp_path):
    """The image pools and the LR schedule are restored, so the weights come out identical."""
    config = dict(model="cyclegan", data="shapes-unpaired", image_size=16, batch_size=2, checkpoint_every=3,
                  sample_every=3, quiet=True, seed=5,
                  overrides={**TINY, "pool_size": 3, "constant_steps": 2, "decay_steps": 10})
    full = train(TrainConfig(steps=6, out=tmp_path / "full", **config))
    part = train(TrainConfig(steps=3, out=tmp_path / "part", **config))
    train(TrainConfig(model="", resume=part, steps=6, quiet=True))
    a = load_file(str(ckpt.latest_checkpoint(full) / "weights.safetensors"))
    b = load_file(str(ckpt.latest_checkpoint(part) / "weights.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (full / "progress.gif").exists()
    rows = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert {"cycle_a", "d_b"} <= set(rows[-1])
