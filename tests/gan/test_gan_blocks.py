"""The shared GAN building blocks of gencli.nn: losses, penalties, stabilisers, augmentation, EMA, layers, init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gencli.nn import augment, layers, losses
from gencli.nn import ema as ema_average


# ---------------------------------------------------------------------------------- losses
@pytest.mark.parametrize("kind", losses.LOSSES)
def test_each_loss_pushes_reals_up_fakes_down_and_the_generator_up(kind):
    # At 0.5 every loss is away from its optimum (lsgan's optimum for fakes is 0 itself).
    real = torch.full((8,), 0.5, requires_grad=True)
    fake = torch.full((8,), 0.5, requires_grad=True)
    losses.discriminator_loss(kind, real, fake).backward()
    # Descending D's loss raises its output on reals and lowers it on fakes.
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.full((8,), 0.5, requires_grad=True)
    losses.generator_loss(kind, fake_g).backward()
    assert (fake_g.grad < 0).all()


def test_nonsaturating_loss_keeps_the_generator_gradient_when_d_is_confident():
    fake = torch.full((4,), -10.0, requires_grad=True)  # D is sure these are fake
    losses.generator_loss("ns", fake).backward()
    # -log D(G(z)) still has a gradient of about -1 per image (the minimax form would vanish).
    assert fake.grad.abs().mean() * 4 > 0.99


def test_one_sided_label_smoothing_moves_the_optimal_real_logit_to_the_target():
    target = losses.smoothed_target(0.1)
    assert target == pytest.approx(0.9)
    logit = torch.logit(torch.tensor([target])).requires_grad_(True)
    losses.discriminator_loss("ns", logit, torch.zeros(1), real_target=target).backward()
    assert logit.grad.abs().item() < 1e-6  # D(x) = 0.9 is now the optimum, not 1
    logit_one = torch.tensor([6.0], requires_grad=True)
    losses.discriminator_loss("ns", logit_one, torch.zeros(1), real_target=target).backward()
    assert logit_one.grad.item() > 0  # overconfident reals are pushed back down


def test_wasserstein_losses_estimate_the_gap_between_critic_means():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert losses.discriminator_loss("wasserstein", real, fake).item() == pytest.approx(-3.0)
    assert losses.generator_loss("wasserstein", fake).item() == pytest.approx(0.0)


def test_discriminator_score_is_a_probability_for_ns_and_raw_otherwise():
    logits = torch.tensor([0.0, 0.0])
    assert losses.discriminator_score("ns", logits).item() == pytest.approx(0.5)
    assert losses.discriminator_score("lsgan", torch.tensor([0.25, 0.75])).item() == pytest.approx(0.5)


# ---------------------------------------------------------------------------------- penalties
def test_interpolates_lie_on_the_segment_between_each_real_and_its_fake():
    torch.manual_seed(0)
    real, fake = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
    x = losses.interpolates(real, fake)
    assert x.requires_grad
    # One mixing weight per image, in [0, 1]: x = fake + eps (real - fake).
    eps = ((x - fake) / (real - fake)).flatten(1)
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-4)
    assert (eps >= 0).all() and (eps <= 1).all()
    assert eps[:, 0].std() > 0  # drawn per image


def test_gradient_penalty_is_computed_on_interpolates_and_is_differentiable():
    torch.manual_seed(0)
    real, fake = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    w = torch.randn(1, 1, 4, 4, requires_grad=True)
    seen = []

    def critic(x):  # linear critic: its input gradient is w everywhere
        seen.append(x)
        return (x * w).flatten(1).sum(1)

    gp = losses.gradient_penalty(critic, real, fake)
    (x_hat,) = seen
    assert not torch.allclose(x_hat, real) and not torch.allclose(x_hat, fake)
    eps = ((x_hat - fake) / (real - fake)).flatten(1)
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-4)
    norm = w.norm()
    assert gp.item() == pytest.approx((norm.item() - 1) ** 2, rel=1e-5)
    gp.backward()  # the penalty trains the critic: d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(w.grad, 2 * (norm - 1) * w / norm, atol=1e-5)


def test_gradient_penalty_vanishes_for_a_one_lipschitz_critic():
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0] = 1.0
    gp = losses.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_r1_penalty_is_zero_for_a_constant_discriminator_and_the_squared_gradient_otherwise():
    x = torch.randn(4, 3, 4, 4, requires_grad=True)
    constant = (x * 0).flatten(1).sum(1) + 1.0
    assert losses.r1_penalty(constant, x).item() == 0.0
    w = torch.randn(1, 3, 4, 4, requires_grad=True)
    out = (x * w).flatten(1).sum(1)
    r1 = losses.r1_penalty(out, x)
    assert r1.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    r1.backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------- stabilisers
def test_instance_noise_decays_linearly_to_zero():
    assert losses.instance_noise_std(0, 0.1, 100) == pytest.approx(0.1)
    assert losses.instance_noise_std(50, 0.1, 100) == pytest.approx(0.05)
    assert losses.instance_noise_std(100, 0.1, 100) == 0.0
    assert losses.instance_noise_std(500, 0.1, 100) == 0.0
    assert losses.instance_noise_std(0, 0.0, 100) == 0.0


def test_instance_noise_adds_gaussian_noise_of_the_given_strength():
    torch.manual_seed(0)
    x = torch.zeros(64, 3, 16, 16)
    assert losses.add_instance_noise(x, 0.0) is x
    noisy = losses.add_instance_noise(x, 0.3)
    assert noisy.std().item() == pytest.approx(0.3, rel=0.03)
    assert noisy.mean().abs().item() < 0.01


def test_diff_augment_keeps_shapes_and_lets_gradients_through():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    out = augment.diff_augment(x * 2 - 1, "color,translation,cutout")
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_content_and_fills_with_zeros():
    torch.manual_seed(0)
    x = torch.arange(1, 17, dtype=torch.float32).view(1, 1, 4, 4).repeat(32, 1, 1, 1)
    out = augment.diff_augment(x, "translation")
    for img in out[:, 0]:
        nz = img.nonzero()
        if len(nz) == 0:
            continue
        top, left = nz.min(0).values.tolist()
        # The visible part is a shifted window of the original: each row steps by 4, each column by 1.
        block = img[top:, left:]
        kept = block[block != 0]
        assert (kept.diff() > 0).all()
        assert len(nz) < 16 or torch.equal(img, x[0, 0])
    assert any(not torch.equal(img, x[0, 0]) for img in out[:, 0])
    assert set(out.unique().tolist()) <= set(range(17))  # no new values: pixels move or become 0


def test_cutout_zeroes_a_square_of_half_the_image():
    torch.manual_seed(0)
    x = torch.ones(64, 1, 16, 16)
    out = augment.diff_augment(x, ["cutout"])
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max().item() == 64  # an 8x8 square when fully inside
    assert (zeros > 0).all() and (zeros <= 64).all()
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_color_changes_brightness_per_image():
    torch.manual_seed(0)
    x = torch.zeros(32, 3, 8, 8)
    means = augment.diff_augment(x, "color").mean(dim=(1, 2, 3))
    assert means.std() > 0.1 and means.abs().max() <= 0.5 + 1e-6


def test_unknown_augmentation_is_rejected_by_name():
    with pytest.raises(ValueError, match="'blur'"):
        augment.diff_augment(torch.zeros(1, 3, 8, 8), "color,blur")
    assert augment.parse_augment_policy("") == ()
    assert augment.parse_augment_policy(["none"]) == ()


def test_ema_copy_is_frozen_and_decay_warms_up():
    net = nn.Linear(3, 3)
    ema = ema_average.ema_copy(net)
    assert all(not p.requires_grad for p in ema.parameters())
    assert all(p.requires_grad for p in net.parameters())
    assert torch.equal(ema.weight, net.weight) and ema.weight is not net.weight
    assert ema_average.ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_average.ema_decay_at(10**6, 0.999) == pytest.approx(0.999)
    assert ema_average.ema_decay_at(10, 0.0) == 0.0


# ---------------------------------------------------------------------------------- layers, init
def test_init_normal_follows_dcgan():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(16, 64, 4), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 64, 4), nn.Linear(64, 64))
    layers.init_normal(net)
    for layer in (net[0], net[2], net[3]):
        assert layer.weight.std().item() == pytest.approx(0.02, rel=0.1)
        assert layer.weight.mean().abs().item() < 0.002
        assert layer.bias.abs().sum() == 0
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert net[1].bias.abs().sum() == 0


def test_spectral_norm_layers_have_unit_largest_singular_value():
    torch.manual_seed(0)
    conv = layers.init_normal(layers.sn_conv2d(8, 16, 3, padding=1), std=1.0)
    lin = layers.sn_linear(32, 8)
    x = torch.randn(2, 8, 8, 8)
    for _ in range(30):  # power iterations run on each training forward
        conv(x)
        lin(torch.randn(2, 32))
    for layer in (conv, lin):
        w = layer.weight.flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.02)
    assert layers.weight_of(conv) is conv.parametrizations.weight.original
    assert layers.weight_of(conv).std().item() == pytest.approx(1.0, rel=0.1)  # init reached the raw weight
