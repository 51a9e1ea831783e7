"""ControlVAE: a VAE whose KL weight a non-linear PI controller sets every step.

Shao et al. 2020, "ControlVAE: Controllable Variational Autoencoder" (ICML), Algorithm 1.

The controller reads the batch KL (nats) and drives it to ``kl_target``:

    e(t)    = kl_target - KL(t)
    P(t)    = Kp / (1 + exp(e(t)))                       in (0, Kp): a small push up while KL > target
    I(t)    = I(t-1) - Ki * e(t)                         the integral does the real work
    beta(t) = clamp(P(t) + I(t) + beta_min, beta_min, beta_max)

with anti-windup: the integral only accumulates while beta is inside its bounds, so a long stretch
spent at a bound (e.g. early training, when the KL is still below the target and beta sits at
beta_min) does not store up error that later overshoots. Unlike a plain "freeze at the bound",
a step that moves beta back inside is always taken, so the controller can never stay stuck at a
bound once the error changes sign.

Everything is computed with tensor operations on the model's device, so the controller adds no
host synchronisation to the step; its state (integral and beta) is part of the checkpoint, so a
resumed run continues the same beta sequence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gencli.models.base import TrainDefaults
from gencli.models.hparams import require
from gencli_vae.vae import VAE, VAEHyperparameters


# ---------------------------------------------------------------- controller
def pi_step(
    kl: torch.Tensor, integral: torch.Tensor, target: float, kp: float, ki: float, beta_min: float, beta_max: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (beta, new integral) after one step of the non-linear PI controller."""
    error = target - kl.float()
    # Kp / (1 + exp(e)) written as Kp * sigmoid(-e): the same value, without overflow for large e.
    proportional = kp * torch.sigmoid(-error)
    candidate = integral - ki * error
    raw = proportional + candidate + beta_min
    # Conditional integration: skip the update only when it pushes beta further past a bound.
    winding_up = (raw > beta_max) & (candidate > integral)
    winding_down = (raw < beta_min) & (candidate < integral)
    integral = torch.where(winding_up | winding_down, integral, candidate)
    beta = (proportional + integral + beta_min).clamp(beta_min, beta_max)
    return beta, integral


# ---------------------------------------------------------------- model
@dataclass
class ControlVAEHyperparameters(VAEHyperparameters):
    kl_target: float = field(
        default=10.0,
        metadata={"help": "KL set point in nats the controller holds (Shao et al. 2020; about 8-14 on MNIST-like data)"},
    )
    kp: float = field(default=0.01, metadata={"help": "proportional gain Kp (Shao et al. 2020)"})
    ki: float = field(default=0.001, metadata={"help": "integral gain Ki (Shao et al. 2020)"})
    beta_min: float = field(default=1.0, metadata={"help": "lower bound of the KL weight beta"})
    beta_max: float = field(default=50.0, metadata={"help": "upper bound of the KL weight beta"})
    beta: float = field(
        default=1.0, metadata={"help": "not used: the controller sets beta (see kl_target, beta_min, beta_max)"}
    )

    def validate(self) -> None:
        super().validate()
        require(self.kl_target > 0, f"kl_target must be > 0 nats, got {self.kl_target}")
        require(self.kp >= 0, f"kp must be >= 0, got {self.kp}")
        require(self.ki > 0, f"ki must be > 0 (the integral term drives the KL to its target), got {self.ki}")
        require(self.beta_min >= 0, f"beta_min must be >= 0, got {self.beta_min}")
        require(
            self.beta_min < self.beta_max,
            f"beta bounds are reversed or empty: beta_min={self.beta_min} must be below beta_max={self.beta_max}",
        )
        require(self.beta == 1.0, "controlvae sets beta itself each step; set kl_target, beta_min or beta_max instead")


class ControlVAE(VAE):
    name = "controlvae"
    summary = "VAE whose KL weight a PI controller sets to hold a KL target (Shao et al. 2020)"
    Hyperparameters = ControlVAEHyperparameters
    defaults = TrainDefaults(image_size=32, channels=3, batch_size=64, steps=1200, sample_every=100, checkpoint_every=400)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # I(0) = 0, so beta starts at beta_min (plus the small P term).
        self.integral = torch.zeros((), device=self.device)
        self.beta = torch.full((), float(self.hp.beta_min), device=self.device)

    def kl_weight(self, kl: torch.Tensor) -> torch.Tensor:
        """Return this step's beta from the PI controller, updating its state."""
        hp = self.hp
        self.beta, self.integral = pi_step(
            kl.to(self.device), self.integral, hp.kl_target, hp.kp, hp.ki, hp.beta_min, hp.beta_max
        )
        return self.beta

    def extra_state(self) -> dict[str, Any]:
        return {"controller": {"integral": self.integral.detach().cpu(), "beta": self.beta.detach().cpu()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        controller = state.get("controller")
        if controller:
            self.integral = controller["integral"].to(self.device, torch.float32)
            self.beta = controller["beta"].to(self.device, torch.float32)

    # -- figures for `gencli eval`
    def report(self, run_dir: Path) -> list[Path]:
        """Return the figures written: KL and beta over training against the KL target."""
        run_dir = Path(run_dir)
        steps, kl, beta = read_controller_trace(run_dir / "metrics.jsonl")
        if not steps:
            return []
        path = run_dir / "kl-control.png"
        plot_controller_trace(path, steps, kl, beta, self.hp)
        return [path]


# ---------------------------------------------------------------- report helpers
def read_controller_trace(metrics: Path) -> tuple[list[int], list[float], list[float]]:
    """Return (steps, KL, beta) from the lines of a run's metrics.jsonl that logged both."""
    steps: list[int] = []
    kl: list[float] = []
    beta: list[float] = []
    if not metrics.is_file():
        return steps, kl, beta
    for line in metrics.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a run killed mid-write leaves a partial last line
            continue
        if isinstance(row, dict) and "step" in row and "kl" in row and "beta" in row:
            steps.append(int(row["step"]))
            kl.append(float(row["kl"]))
            beta.append(float(row["beta"]))
    return steps, kl, beta


def plot_controller_trace(path: Path, steps: list[int], kl: list[float], beta: list[float], hp: Any) -> None:
    """Write a two-panel figure: KL with its target above, beta within its bounds below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_kl, ax_beta) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    ax_kl.plot(steps, kl, lw=1.2, label="KL (batch)")
    ax_kl.axhline(hp.kl_target, color="black", ls="--", lw=1, label=f"target {hp.kl_target:g}")
    ax_kl.axhspan(0.9 * hp.kl_target, 1.1 * hp.kl_target, color="grey", alpha=0.15, label="target ± 10%")
    ax_kl.set_ylabel("KL (nats)")
    ax_kl.legend(loc="upper right")
    ax_beta.plot(steps, beta, lw=1.2, color="tab:red", label="beta")
    ax_beta.axhline(hp.beta_min, color="grey", ls=":", lw=1)
    ax_beta.axhline(hp.beta_max, color="grey", ls=":", lw=1)
    ax_beta.set_ylim(hp.beta_min - 0.05 * (max(beta) - hp.beta_min + 1), max(beta) * 1.1 + 0.1)
    ax_beta.set_ylabel("beta")
    ax_beta.set_xlabel("step")
    fig.suptitle("ControlVAE: KL held at its target by the PI controller")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
