"""pix2pix: shapes at the papers' sizes, training on pairs, direction, previews, mistakes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch, BatchStream, DataRequest, ImageData, to_float
from gencli.data.synthetic import build_shapes_paired
from gencli.errors import UserError
from gencli.models import hparams
from gencli_translation.pix2pix import Pix2Pix, Pix2PixHyperparameters


def paired(size: int = 16, n: int = 64, split: str = "train") -> ImageData:
    return build_shapes_paired(DataRequest(size, 3, split=split, options={"size": n}))


def tiny(size: int = 16, **kw) -> Pix2Pix:
    return Pix2Pix(Pix2PixHyperparameters(**{"ngf": 4, **kw}), (3, size, size))


@pytest.mark.parametrize("size,depth,patch", [(64, 6, 6), (128, 7, 14), (256, 8, 30)])
def test_network_shapes_at_the_papers_sizes(size, depth, patch):
    torch.manual_seed(0)
    model = Pix2Pix(Pix2PixHyperparameters(ngf=2, ndf=2), (3, size, size))
    x = torch.randn(2, 3, size, size)
    assert model.nets["G"].depth == depth
    assert model.nets["G"](x).shape == x.shape
    # The conditional discriminator judges input and output together: 6 channels in.
    assert model.nets["D"](torch.cat([x, x], 1)).shape == (2, 1, patch, patch)
    assert model.nets["D"].model[0].in_channels == 6


def test_a_short_run_lowers_l1_on_held_out_pairs():
    torch.manual_seed(0)
    model = tiny(ngf=8)
    held_out = paired(n=32, split="test")
    a, b = to_float(held_out.images), to_float(held_out.targets)

    def held_out_l1() -> float:
        model.eval()
        with torch.no_grad():
            loss = F.l1_loss(model.translate(a, "a2b"), b)
        model.train()
        return float(loss)

    before = held_out_l1()
    stream = BatchStream(paired(n=256), 8, flip=True)
    for i, batch in enumerate(b for epoch in range(4) for b in stream.epoch(epoch)):
        losses = model.train_step(batch)
        if i == 79:
            break
    assert held_out_l1() < 0.7 * before
    assert set(losses) == {"g_gan", "l1", "d"}
    assert all(v.dim() == 0 and not v.requires_grad for v in losses.values())


def test_btoa_swaps_input_and_target():
    torch.manual_seed(0)
    a, b = torch.zeros(2, 3, 16, 16), torch.ones(2, 3, 16, 16)
    model = tiny(direction="BtoA")
    source, target = model.pair(Batch(images=a, targets=b))
    assert source is b and target is a
    assert model.directions == ("b2a",)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.translate(a, "b2a"), model.nets["G"](a))
    with pytest.raises(UserError, match="pix2pix translates b2a, not 'a2b'"):
        model.translate(a, "a2b")


def test_only_the_trained_direction_is_offered():
    model = tiny()
    assert model.directions == ("a2b",)
    with pytest.raises(UserError, match="pix2pix translates a2b, not 'b2a'"):
        model.translate(torch.zeros(1, 3, 16, 16), "b2a")


def test_preview_is_input_output_target():
    torch.manual_seed(0)
    data = paired(n=8, split="test")
    for direction, (src, dst) in {"AtoB": (data.images, data.targets), "BtoA": (data.targets, data.images)}.items():
        model = tiny(direction=direction).eval()
        inputs = model.preview_inputs(data, 3, seed=1)
        with torch.no_grad():
            images, nrow = model.preview(inputs)
        assert nrow == 6 and images.shape == (9, 3, 16, 16)
        # Row i: the input, G(input), and the target of the same pair.
        idx = torch.randperm(len(data.images), generator=torch.Generator().manual_seed(1))[:3]
        assert torch.equal(images[0::3], to_float(src[idx]))
        assert torch.equal(images[2::3], to_float(dst[idx]))
        with torch.no_grad():
            assert torch.equal(images[1::3], model.nets["G"](to_float(src[idx])))


def test_batch_norm_and_dropout_by_default():
    model = tiny()
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.nets["G"].modules())
    assert any(isinstance(m, nn.Dropout) for m in model.nets["G"].modules())
    assert Pix2Pix.augment_flip and Pix2Pix.load_size(model.hp, 256) == 286


@pytest.mark.parametrize("size,message", [(24, "multiple of 16"), (8, "multiple of 16")])
def test_unsupported_sizes_are_refused(size, message):
    with pytest.raises(UserError, match=message):
        tiny(size=size)


def test_too_deep_a_unet_for_the_size():
    with pytest.raises(UserError, match="depth 6 needs an image size divisible by 64; 32 px allows at most 5"):
        tiny(size=32, depth=6)


@pytest.mark.parametrize("values,message", [
    ({"lambda_l1": "-5"}, "lambda_l1 must be at least 0"),
    ({"dropout": "1.5"}, r"dropout must be in \[0, 1\)"),
    ({"direction": "AB"}, "bad value 'AB' for 'direction'"),
    ({"depth": "1"}, "depth must be between 2 and 10"),
])
def test_bad_hyperparameters_are_refused(values, message):
    with pytest.raises(UserError, match=message):
        hparams.build(Pix2PixHyperparameters, values)
