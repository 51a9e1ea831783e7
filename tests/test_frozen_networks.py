"""Generator updates of adversarial models compute no discriminator weight gradients.

Each model's discriminators are frozen (``Model.frozen``) while the generator's loss is built, so
the generator's backward pass stops at their inputs: the gradients a discriminator holds are the
ones of its own update, untouched by the generator's.
"""

from __future__ import annotations

import pytest
import torch

from gencli import testing

# model, its discriminators, small hyperparameters
CASES = [
    ("pix2pix", ("D",), {"ngf": 8, "ndf": 8}),
    ("cyclegan", ("D_A", "D_B"), {"ngf": 8, "ndf": 8, "blocks": 1}),
    ("stylegan", ("D",), {}),
]


def _snapshot(model, names):
    return {(n, i): (None if p.grad is None else p.grad.clone())
            for n in names for i, p in enumerate(model.nets[n].parameters())}


@pytest.mark.parametrize("name, discriminators, small", CASES)
def test_the_generator_step_leaves_the_discriminators_gradients_alone(name, discriminators, small, monkeypatch):
    cls = testing.model_class(name)
    hp = testing.hyperparameters(cls, {**cls.test_overrides, **small} if hasattr(cls, "test_overrides") else small)
    torch.manual_seed(0)
    model = cls(hp, (3, 16, 16), None)
    optimize, checked = model.optimize, []

    def watched(opt_name, loss, *args, **kwargs):
        before = _snapshot(model, discriminators) if opt_name == "G" else None
        optimize(opt_name, loss, *args, **kwargs)
        if before is not None:
            after = _snapshot(model, discriminators)
            for key, grad in before.items():
                assert (grad is None and after[key] is None) or torch.equal(grad, after[key]), key
            checked.append(opt_name)

    monkeypatch.setattr(model, "optimize", watched)
    for _ in range(2):
        model.train_step(testing.random_batch(cls, 16, 3, n=2))
        model.step += 1
    assert checked  # the generator was updated, and each time D's gradients stayed as they were
    assert all(p.requires_grad for n in discriminators for p in model.nets[n].parameters())
