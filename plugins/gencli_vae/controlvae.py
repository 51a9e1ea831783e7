"""ControlVAE: a VAE whose KL weight a non-linear PI controller sets every step.

Shao et al. 2020, "ControlVAE: Controllable Variational Autoencoder" (ICML), Algorithm 1.

The controller reads the batch KL (nats) and drives it to ``kl_target``:

    e(t)    = kl_target - KL(t)
    P(t)    = Kp / (1 + exp(e(t)))                       in (0, Kp): a small push up while KL > target
    I(t)    = I(t-1) - Ki * e(t)                         the integral does the real work
    beta(t) = clamp(P(t) + I(t) + beta_min, beta_min, beta_max)

with anti-windup: the integral accumulates only while beta is inside its bounds, and is held
where it puts beta exactly on the bound it reached. A long stretch at a bound (early training,
when the KL is still below the target and beta sits at beta_min) so stores up no error that
would later overshoot or keep beta stuck, and the controller reacts at once when the error
changes sign.

Everything is computed with tensor operations on the model's device, so the controller adds no
host synchronisation to the step; its state (integral and beta) is part of the checkpoint, so a
resumed run continues the same beta sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gencli_vae.declarations import (  # noqa: F401 - declared apart from the networks
    ControlVAEDeclarations,
    ControlVAEHyperparameters,
)
from gencli_vae.vae import VAE


# ---------------------------------------------------------------- controller
def pi_step(
    kl: torch.Tensor, integral: torch.Tensor, target: float, kp: float, ki: float, beta_min: float, beta_max: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (beta, new integral) after one step of the non-linear PI controller."""
    error = target - kl.float()
    # Kp / (1 + exp(e)) written as Kp * sigmoid(-e): the same value, without overflow for large e.
    proportional = kp * torch.sigmoid(-error)
    # Anti-windup: the integral moves freely while beta is inside its bounds and is held where it
    # puts beta exactly on a bound, so time spent at a bound stores up no error.
    integral = (integral - ki * error).clamp(min=-proportional, max=beta_max - beta_min - proportional)
    beta = (proportional + integral + beta_min).clamp(beta_min, beta_max)
    return beta, integral


# ---------------------------------------------------------------- model
class ControlVAE(ControlVAEDeclarations, VAE):
    name = "controlvae"
    summary = "VAE whose KL weight a PI controller sets to hold a KL target (Shao et al. 2020)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # I(0) = 0, so beta starts at beta_min (plus the small P term).
        self.integral = torch.zeros((), device=self.device)
        self.beta = torch.full((), float(self.hp.beta_min), device=self.device)

    def kl_weight(self, kl: torch.Tensor) -> torch.Tensor:
        """Return this step's beta from the PI controller, updating its state."""
        hp = self.hp
        kl = kl.to(self.device)
        if self.process_group is not None:
            # The KL of the global batch, so every process (and a single one) sets the same beta.
            from gencli.training.distributed import mean_across

            kl = mean_across({"kl": kl}, self.process_group)["kl"]
        self.beta, self.integral = pi_step(kl, self.integral, hp.kl_target, hp.kp, hp.ki, hp.beta_min, hp.beta_max)
        return self.beta

    def extra_state(self) -> dict[str, Any]:
        return {"controller": {"integral": self.integral.detach().cpu(), "beta": self.beta.detach().cpu()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        controller = state.get("controller")
        if controller:
            self.integral = controller["integral"].to(self.device, torch.float32)
            self.beta = controller["beta"].to(self.device, torch.float32)

    # -- figures for `gencli eval`
    def report(self, run) -> list[Path]:
        """Return the figures written: KL and beta over training, the KL against its target."""
        from gencli.media.plots import plot_series

        hp = self.hp
        path = plot_series(
            run.metrics(),
            ["kl", "beta"],
            run.dir / "eval" / "kl-control.png",
            targets={"kl": hp.kl_target},
            bounds={"kl": (0.9 * hp.kl_target, 1.1 * hp.kl_target)},
            title=f"ControlVAE: KL against its target of {hp.kl_target:g} nats (band ±10%), and beta",
        )
        return [path] if path is not None else []
