"""The shared translation building blocks: shapes, receptive field, U-Net dropout, image pool."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from gencli_translation.networks import (
    ImagePool,
    PatchDiscriminator,
    ResnetBlock,
    ResnetGenerator,
    UnetGenerator,
    init_weights,
    unet_depth,
)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_resnet_generator_keeps_the_image_shape(size):
    g = ResnetGenerator(3, 1, ngf=4, blocks=2)
    assert g(torch.randn(2, 3, size, size)).shape == (2, 1, size, size)


def test_resnet_block_is_residual():
    block = ResnetBlock(8)
    for p in block.parameters():
        nn.init.zeros_(p)  # a block whose branch outputs zero is the identity
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("size,depth", [(16, 4), (32, 5), (64, 6), (128, 7), (256, 8), (512, 8), (48, 4)])
def test_unet_depth_follows_the_image_size(size, depth):
    assert unet_depth(size) == depth


def test_unet_reaches_1x1_and_keeps_the_shape():
    seen = []
    g = UnetGenerator(3, 3, depth=5, ngf=4)
    for conv in (m for m in g.modules() if isinstance(m, nn.Conv2d)):
        conv.register_forward_hook(lambda mod, i, o: seen.append(o.shape[-1]))
    assert g(torch.randn(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    assert min(seen) == 1  # five stride-2 convs take 32 px to the 1x1 bottleneck


def test_unet_skips_carry_fine_detail():
    """A pixel change reaches the output at full resolution, not only through the 1x1 bottleneck."""
    torch.manual_seed(0)
    g = UnetGenerator(1, 1, depth=4, ngf=4, norm="none", dropout=0.0).eval()
    x = torch.zeros(1, 1, 16, 16)
    x2 = x.clone()
    x2[0, 0, 3, 3] = 1.0
    diff = (g(x2) - g(x)).abs()[0, 0]
    assert diff[3, 3] > 0
    # The outermost skip passes through only one conv pair: the change stays local-ish.
    assert diff[3, 3] >= diff[12:, 12:].max()


def test_unet_dropout_is_in_the_three_layers_after_the_bottleneck():
    g = UnetGenerator(3, 3, depth=8, ngf=2)
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 256)
    g.train()
    assert not torch.equal(g(x), g(x))  # dropout is the noise source during training
    g.eval()
    assert torch.equal(g(x), g(x))


@pytest.mark.parametrize("size,out", [(64, 6), (128, 14), (256, 30)])
def test_patchgan_output_sizes(size, out):
    d = PatchDiscriminator(3, ndf=4, layers=3)
    assert d(torch.randn(1, 3, size, size)).shape == (1, 1, out, out)
    assert PatchDiscriminator.output_size(size, 3) == out


def test_patchgan_sees_70x70_patches():
    """The input region one decision depends on, measured through gradients, is 70x70."""
    torch.manual_seed(0)
    d = PatchDiscriminator(1, ndf=2, layers=3, norm="none")  # norms would couple every pixel
    x = torch.randn(1, 1, 256, 256, requires_grad=True)
    d(x)[0, 0, 15, 15].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 == PatchDiscriminator.receptive_field(3)
    assert cols.max() - cols.min() + 1 == 70


def test_patchgan_layers_shrink_for_tiny_images():
    assert PatchDiscriminator.max_layers(256) == 3
    assert PatchDiscriminator.max_layers(32) == 3
    assert PatchDiscriminator.max_layers(16) == 2
    d = PatchDiscriminator(3, 4, PatchDiscriminator.max_layers(16))
    assert d(torch.randn(1, 3, 16, 16)).shape[-1] >= 2


def test_init_weights_draws_from_n_0_002():
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(3, 3, ngf=16, blocks=2, norm="batch"))
    convs = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(convs.mean()) < 2e-3 and abs(convs.std() - 0.02) < 2e-3
    norms = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(norms.mean() - 1.0) < 0.01


# ---------------------------------------------------------------------------------------- pool
def _marked(values, c=1, s=2) -> torch.Tensor:
    """Images whose every pixel is their mark, so a returned image says where it came from."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, c, s, s).clone()


def test_pool_returns_current_images_until_full():
    pool = ImagePool(5)
    out = pool.query(_marked([1, 2, 3]))
    assert torch.equal(out, _marked([1, 2, 3])) and len(pool) == 3
    out = pool.query(_marked([4, 5]))
    assert torch.equal(out, _marked([4, 5])) and len(pool) == 5


def test_pool_mixes_current_and_past_images_half_and_half():
    torch.manual_seed(0)
    pool = ImagePool(50)
    pool.query(_marked(range(1, 51)))  # fill it with marks 1..50
    given, past, trials = set(range(1, 51)), 0, 0
    for step in range(200):
        marks = [1000 + step * 4 + i for i in range(4)]
        out = pool.query(_marked(marks))[:, 0, 0, 0].long().tolist()
        for mark, returned in zip(marks, out):
            trials += 1
            if returned != mark:
                assert returned in given  # a past image: one it was given earlier
                past += 1
            given.add(mark)
        assert len(pool) == 50
    # Binomial(800, 0.5): the fraction lies within 0.5 +- 0.06 with overwhelming probability.
    assert abs(past / trials - 0.5) < 0.06


def test_pool_of_size_zero_passes_images_through():
    x = torch.randn(3, 3, 4, 4)
    assert torch.equal(ImagePool(0).query(x), x)


def test_pool_state_round_trips_through_a_safe_checkpoint():
    torch.manual_seed(0)
    pool = ImagePool(4)
    pool.query(_marked([1, 2, 3]))
    buffer = io.BytesIO()
    torch.save(pool.state(), buffer)
    buffer.seek(0)
    restored = ImagePool(4)
    restored.load_state(torch.load(buffer, weights_only=True))
    assert len(restored) == 3
    rng = torch.get_rng_state()
    a = pool.query(_marked(range(10, 30)))
    torch.set_rng_state(rng)
    b = restored.query(_marked(range(10, 30)))
    assert torch.equal(a, b)
