"""gencli.nn.optim.adam: torch's fused Adam where every parameter takes it, the same updates as the loop."""

from __future__ import annotations

import pytest
import torch

from gencli.nn.optim import adam, can_fuse


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2))


def _steps(net: torch.nn.Module, opt: torch.optim.Optimizer, n: int) -> None:
    g = torch.Generator().manual_seed(1)
    for _ in range(n):
        x = torch.randn(4, 3, 8, 8, generator=g)
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()


def test_adam_is_fused_on_the_cpu_and_updates_as_the_loop_does():
    a, b = _net(), _net()
    a(torch.zeros(1, 3, 8, 8)), b(torch.zeros(1, 3, 8, 8))  # materialise the lazy layer
    b.load_state_dict(a.state_dict())
    fused, loop = adam(a.parameters(), lr=1e-2, betas=(0.5, 0.99)), adam(b.parameters(), lr=1e-2, betas=(0.5, 0.99), fused=False)
    assert fused.param_groups[0]["fused"] is True and not loop.param_groups[0]["fused"]
    before = [p.detach().clone() for p in a.parameters()]
    _steps(a, fused, 5)
    _steps(b, loop, 5)
    assert all(not torch.equal(p, q) for p, q in zip(a.parameters(), before, strict=True))  # it trained
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_parameters_the_fused_kernel_cannot_take_use_torchs_default():
    assert can_fuse([torch.nn.Parameter(torch.zeros(2))])
    assert not can_fuse([torch.nn.Parameter(torch.zeros(2, device="meta"))])
    assert not can_fuse([])
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [torch.nn.Parameter(torch.zeros(2, device="meta"))]}]
    assert not can_fuse(groups)
    assert not adam([torch.nn.Parameter(torch.zeros(2, device="meta"))], lr=1.0).param_groups[0]["fused"]


def test_a_checkpoint_from_the_loop_resumes_with_the_loop_bit_for_bit():
    """A run saved before Adam was fused goes on with the loop: its resumed steps equal an uninterrupted run's."""
    whole, first = _net(), _net()
    whole(torch.zeros(1, 3, 8, 8)), first(torch.zeros(1, 3, 8, 8))
    first.load_state_dict(whole.state_dict())
    opt_whole = torch.optim.Adam(whole.parameters(), lr=1e-2)
    opt_first = torch.optim.Adam(first.parameters(), lr=1e-2)
    _steps(whole, opt_whole, 6)
    _steps(first, opt_first, 3)
    saved_net, saved_opt = first.state_dict(), opt_first.state_dict()

    resumed = _net()
    resumed(torch.zeros(1, 3, 8, 8))
    resumed.load_state_dict(saved_net)
    opt = adam(resumed.parameters(), lr=1e-2)
    assert opt.param_groups[0]["fused"] is True
    opt.load_state_dict(saved_opt)
    assert not opt.param_groups[0]["fused"]  # the checkpoint's implementation
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # the data stream resumes where it stopped
        torch.randn(4, 3, 8, 8, generator=g)
    for _ in range(3):
        x = torch.randn(4, 3, 8, 8, generator=g)
        opt.zero_grad()
        resumed(x).square().mean().backward()
        opt.step()
    for pa, pb in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("model", ["vae", "dcgan", "stylegan", "ddpm", "pix2pix", "cyclegan", "vqvae"])
def test_the_families_build_fused_adam(model):
    from gencli.testing import hyperparameters, model_class

    cls = model_class(model)
    classes = ["a", "b"] if cls.data == "labelled" or cls.conditional else None
    built = cls(hyperparameters(cls, dict(cls.test_overrides)), (3, 16, 16), classes, device="cpu")
    assert built.optimizers and all(o.param_groups[0]["fused"] is True for o in built.optimizers.values())
