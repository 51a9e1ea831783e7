"""StyleGAN networks: block shapes at every resolution, demodulation, minibatch std, R1, path length."""

from __future__ import annotations

import math

import pytest
import torch
from stylegan_helpers import tiny_model

from gencli_stylegan.stylegan import (
    AUTO_CHANNELS_PER_PIXEL,
    Discriminator,
    DiscriminatorBlock,
    ModulatedConv2d,
    SynthesisBlock,
    channels_at,
    minibatch_stddev,
    path_lengths,
    r1_penalty,
)


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128, 256])
def test_every_block_has_the_expected_shape_at_each_resolution(size):
    model = tiny_model(size)
    G, D = model.nets["G"], model.nets["D"]
    base, cap = AUTO_CHANNELS_PER_PIXEL * size, model.hp.channels_max
    seen: dict[str, list] = {"synthesis": [], "discriminator": []}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen["synthesis"].append((mod.resolution, out)))
             for m in G.modules() if isinstance(m, SynthesisBlock)]
    hooks += [m.register_forward_hook(lambda mod, inp, out: seen["discriminator"].append(out))
              for m in D.modules() if isinstance(m, DiscriminatorBlock)]
    n = 2
    with torch.no_grad():
        w = G.mapping(torch.randn(n, model.hp.z_dim))
        image = G.synthesis(G.broadcast(w))
        logits = D(image)
    for h in hooks:
        h.remove()

    assert w.shape == (n, model.hp.w_dim)
    assert G.num_ws == 2 * int(math.log2(size)) - 2
    resolutions = [2**k for k in range(2, int(math.log2(size)) + 1)]
    assert [res for res, _ in seen["synthesis"]] == resolutions
    for res, (features, rgb) in seen["synthesis"]:
        assert features.shape == (n, channels_at(res, base, cap), res, res)
        assert rgb.shape == (n, 3, res, res)
    down = list(reversed(resolutions[:-1]))  # each discriminator block halves the size
    assert [out.shape for out in seen["discriminator"]] == [(n, channels_at(r, base, cap), r, r) for r in down]
    assert image.shape == (n, 3, size, size)
    assert logits.shape == (n,)


def test_grey_images_have_one_channel_throughout():
    model = tiny_model(16, channels=1)
    image = model.sample(3)
    assert image.shape == (3, 1, 16, 16)
    assert model.nets["D"](image).shape == (3,)


def test_demodulation_keeps_unit_variance_for_unit_variance_input():
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 48, 3, w_dim=8, demodulate=True)
    plain = ModulatedConv2d(32, 48, 3, w_dim=8, demodulate=False)
    with torch.no_grad():
        # Wild weights and styles: demodulation must undo both.
        conv.weight.mul_(7.0)
        conv.affine.weight.mul_(4.0)
        plain.load_state_dict(conv.state_dict())
    x = torch.randn(6, 32, 24, 24)
    w = torch.randn(6, 8)
    with torch.no_grad():
        out = conv(x, w)[:, :, 1:-1, 1:-1]  # interior: the zero padding lowers the border's variance
        raw = plain(x, w)[:, :, 1:-1, 1:-1]
    variance = out.var(dim=(2, 3))  # per sample and output channel
    assert out.shape == (6, 48, 22, 22)
    assert (variance - 1).abs().max() < 0.3
    assert abs(variance.mean().item() - 1) < 0.05
    assert raw.var(dim=(2, 3)).mean() > 10  # without demodulation the scale runs away


def test_upsampling_modulated_conv_doubles_the_size():
    conv = ModulatedConv2d(4, 5, 3, w_dim=8, upsample=True)
    assert conv(torch.randn(2, 4, 8, 8), torch.randn(2, 8)).shape == (2, 5, 16, 16)


def test_minibatch_stddev_is_zero_for_identical_samples_and_positive_otherwise():
    x = torch.randn(1, 5, 4, 4).repeat(8, 1, 1, 1)
    same = minibatch_stddev(x, 4)
    assert same.shape == (8, 6, 4, 4)
    assert torch.equal(same[:, :5], x)
    assert same[:, 5].abs().max() < 1e-3
    varied = minibatch_stddev(torch.randn(8, 5, 4, 4), 4)
    assert (varied[:, 5] > 0.1).all()
    # A batch that the group size does not divide uses the largest group that fits.
    assert minibatch_stddev(torch.randn(6, 5, 4, 4), 4).shape == (6, 6, 4, 4)


def test_r1_penalty_is_zero_for_a_discriminator_constant_in_its_input():
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    constant = torch.nn.Parameter(torch.tensor(0.7))
    logits = (real * 0).flatten(1).sum(1) + constant
    penalty = r1_penalty(logits, real)
    assert penalty.item() == 0.0


def test_r1_penalty_is_the_squared_gradient_norm_and_trains_d():
    torch.manual_seed(0)
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    a = torch.randn(3 * 16 * 16)
    linear = r1_penalty(real.flatten(1) @ a, real)  # grad of <a, x> is a
    assert linear.item() == pytest.approx(a.square().sum().item(), rel=1e-5)

    D = Discriminator(16, 3, 256, 32, mbstd_group=4)
    penalty = r1_penalty(D(real), real)
    assert penalty.item() > 0
    penalty.backward()
    assert D.from_rgb.weight.grad.abs().sum() > 0  # the penalty's gradient reaches D's weights


def test_path_lengths_measure_the_jacobian_and_are_differentiable():
    torch.manual_seed(0)
    ws = torch.randn(4, 3, 8, requires_grad=True)
    lengths_zero = path_lengths(ws.sum() * torch.zeros(4, 3, 8, 8), ws)  # image independent of w
    assert torch.allclose(lengths_zero, torch.zeros(4))
    model = tiny_model(16)
    G = model.nets["G"]
    ws = G.broadcast(G.mapping(torch.randn(4, model.hp.z_dim)))
    lengths = path_lengths(G.synthesis(ws), ws)
    assert lengths.shape == (4,) and (lengths > 0).all()
    lengths.mean().backward()
    assert G.mapping.layers[0].weight.grad is not None
