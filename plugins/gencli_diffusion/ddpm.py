"""DDPM (Ho et al. 2020) with class conditioning and classifier-free guidance (Ho & Salimans 2022).

One U-Net predicts the noise of ``x_t``; trained on labelled data it sees the label, replaced by
a null label a fraction of the time, so the same network predicts unconditionally too and
sampling can mix the two predictions (guidance). Trained on unlabelled data the model is simply
unconditional. Sampling uses the EMA weights, by ancestral DDPM over all T steps or DDIM over
fewer; ``latents`` + ``generate`` (deterministic DDIM from the initial noise) give interpolation.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch, ImageData, to_float
from gencli.errors import UserError
from gencli.models.base import Figure, Hyperparameters, Model, Options, TrainDefaults, ema_update
from gencli.models.hparams import require
from gencli_diffusion.samplers import NoisePredictor, ddim_sample, ddpm_sample, guided
from gencli_diffusion.schedules import NoiseSchedule
from gencli_diffusion.unet import UNet

# DDIM steps of the training-progress grid: enough to show the shapes, cheap on a CPU.
PREVIEW_STEPS = 20
# Columns of the forward-process figure, as fractions of T (0 is the clean image).
FORWARD_NOISE_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
# Rows (real images) of the forward-noise figure when the caller does not ask for a number.
FORWARD_NOISE_ROWS = 4
SAMPLERS = ("ddim", "ddpm")


@dataclasses.dataclass
class DDPMHyperparameters(Hyperparameters):
    """DDPM's CIFAR-10 settings (Ho et al. 2020, appendix B) except the network size, which is
    small by default so a CPU trains it in minutes; ``examples/ddpm-cifar10.toml`` restores it."""

    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate (Ho et al. 2020: 2e-4)"})
    timesteps: int = field(default=1000, metadata={"help": "diffusion steps T (Ho et al. 2020: 1000)"})
    schedule: Literal["linear", "cosine"] = field(
        default="linear", metadata={"help": "noise schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal 2021)"})
    beta_start: float = field(
        default=1e-4, metadata={"help": "first beta of the linear schedule at T = 1000 (scaled by 1000 / T)"})
    beta_end: float = field(
        default=0.02, metadata={"help": "last beta of the linear schedule at T = 1000 (scaled by 1000 / T)"})
    prediction: Literal["epsilon", "v"] = field(
        default="epsilon", metadata={"help": "training target: the noise (Ho et al.) or v (Salimans & Ho 2022)"})
    base_width: int = field(default=32, metadata={"help": "channels of the first U-Net level (Ho et al.: 128)"})
    channel_mults: tuple[int, ...] = field(
        default=(1, 2), metadata={"help": "width multiplier per U-Net level (Ho et al. at 32 px: 1,2,2,2)"})
    res_blocks: int = field(default=1, metadata={"help": "residual blocks per level (Ho et al.: 2)"})
    attention_levels: tuple[int, ...] = field(
        default=(1,), metadata={"help": "levels (0 = full resolution) with self-attention; the middle block always "
                                        "has it (Ho et al.: 1, the 16 px level at 32 px)"})
    attention_heads: int = field(default=1, metadata={"help": "heads of each self-attention layer (Ho et al.: 1)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout in residual blocks (Ho et al. on CIFAR-10: 0.1)"})
    label_dropout: float = field(
        default=0.1, metadata={"help": "fraction of labels replaced by the null label (Ho & Salimans 2022: 0.1)"})
    ema_decay: float = field(
        default=0.9999, metadata={"help": "EMA decay of the sampling weights (Ho et al.: 0.9999), ramped up early"})
    grad_clip: float = field(
        default=1.0, metadata={"help": "clip the gradient's global norm to this; 0 turns clipping off (Ho et al.: 1)"})
    warmup_steps: int = field(
        default=0, metadata={"help": "steps of linear learning-rate warmup (Ho et al.: 5000)"})
    sampling_steps: int = field(
        default=50, metadata={"help": "sampling steps when `sample --set steps=N` does not say (DDIM below T, DDPM at T)"})
    eta: float = field(
        default=0.0, metadata={"help": "DDIM noise: 0 deterministic, 1 ancestral (Song et al. 2021)"})
    guidance: float = field(
        default=2.0, metadata={"help": "guidance scale w when a label is given: 0 unconditional, 1 conditional, "
                                       ">1 guided (Ho & Salimans's w is this minus 1)"})
    clip_denoised: bool = field(
        default=True, metadata={"help": "clamp each predicted clean image to [-1, 1] while sampling"})

    def validate(self) -> None:
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.timesteps >= 1, f"timesteps must be at least 1, got {self.timesteps}")
        require(0 < self.beta_start < self.beta_end < 1,
                f"need 0 < beta_start < beta_end < 1, got {self.beta_start} and {self.beta_end}")
        require(self.base_width >= 1, f"base_width must be at least 1, got {self.base_width}")
        require(len(self.channel_mults) >= 1 and all(m >= 1 for m in self.channel_mults),
                f"channel_mults must be one or more positive integers, got {self.channel_mults}")
        require(self.res_blocks >= 1, f"res_blocks must be at least 1, got {self.res_blocks}")
        levels = len(self.channel_mults)
        bad = [level for level in self.attention_levels if not 0 <= level < levels]
        require(not bad, f"attention_levels {bad} do not exist: the U-Net has levels 0..{levels - 1}")
        require(self.attention_heads >= 1, f"attention_heads must be at least 1, got {self.attention_heads}")
        widths = {self.base_width * self.channel_mults[level] for level in (*self.attention_levels, levels - 1)}
        require(all(w % self.attention_heads == 0 for w in widths),
                f"attention_heads {self.attention_heads} must divide the attention widths {sorted(widths)}")
        require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        require(0 <= self.label_dropout <= 1, f"label_dropout must be in [0, 1], got {self.label_dropout}")
        require(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        require(self.grad_clip >= 0, f"grad_clip must be 0 or more, got {self.grad_clip}")
        require(self.warmup_steps >= 0, f"warmup_steps must be 0 or more, got {self.warmup_steps}")
        require(1 <= self.sampling_steps <= self.timesteps,
                f"sampling_steps must be between 1 and timesteps ({self.timesteps}), got {self.sampling_steps}")
        require(0 <= self.eta <= 1, f"eta must be in [0, 1], got {self.eta}")
        require(self.guidance >= 0, f"guidance must be 0 or more, got {self.guidance}")


# ---------------------------------------------------------------------------- losses
def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the simplified DDPM objective: mean squared error to the target (Ho et al. eq. 14)."""
    return F.mse_loss(prediction.float(), target)


def ema_decay_at(step: int, decay: float) -> float:
    """Return the EMA decay to use after ``step`` updates: ramped up as (1 + n) / (10 + n) so that
    short runs already sample from trained weights, capped at ``decay``."""
    return min(decay, (1 + step) / (10 + step))


# ---------------------------------------------------------------------------- the model
@dataclasses.dataclass
class DDPMSampleOptions(Options):
    """`gencli sample RUN --set key=value` (and `gencli eval`)."""

    steps: int | None = field(default=None, metadata={"help": "sampling steps (default: sampling_steps; all T with sampler=ddpm)"})
    guidance: float | None = field(default=None, metadata={"help": "classifier-free guidance w (default: the guidance hyperparameter; 1 = none)"})
    eta: float | None = field(default=None, metadata={"help": "DDIM noise: 0 deterministic, 1 like DDPM (default: the eta hyperparameter)"})
    sampler: Literal["ddim", "ddpm"] | None = field(default=None, metadata={"help": "ddim, or ddpm over all T steps (default: ddim)"})


@dataclasses.dataclass
class DDPMInterpolateOptions(Options):
    """`gencli interpolate RUN --set key=value`: deterministic DDIM from each interpolated noise."""

    steps: int | None = field(default=None, metadata={"help": "DDIM steps per image (default: sampling_steps)"})
    guidance: float | None = field(default=None, metadata={"help": "classifier-free guidance w (default: the guidance hyperparameter)"})


@dataclasses.dataclass
class ForwardNoiseOptions(Options):
    """`gencli sample RUN --figure forward-noise --set key=value`."""

    timesteps: tuple[int, ...] = field(default=(), metadata={"help": "the columns: steps t from 0 (clean) to T (default: 8 from 0 to T)"})


class DDPM(Model):
    """Denoising diffusion with DDPM and DDIM sampling, conditional on labels when it has them."""

    name: ClassVar[str] = "ddpm"
    summary: ClassVar[str] = "class-conditional DDPM with DDIM sampling and classifier-free guidance (Ho et al. 2020)"
    data: ClassVar[str] = "images"
    Hyperparameters: ClassVar[type] = DDPMHyperparameters
    # About a minute on two CPU cores; diffusion needs far longer to draw clean shapes.
    defaults: ClassVar[TrainDefaults] = TrainDefaults(
        image_size=32, channels=3, batch_size=16, steps=150, sample_every=75, checkpoint_every=150)
    # Conditional whenever it was trained on labelled data; ``num_classes == 0`` means unconditional.
    conditional: ClassVar[bool] = True
    SampleOptions: ClassVar[type] = DDPMSampleOptions
    InterpolateOptions: ClassVar[type] = DDPMInterpolateOptions
    figures: ClassVar[dict[str, Figure]] = {
        "forward-noise": Figure("held-out images noised by the forward process at several steps t (one row each)",
                                ForwardNoiseOptions, needs_data=True),
    }

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if image_size < 8:
            raise UserError(f"ddpm works with images of 8 px or more (e.g. 28, 32, 64), not {image_size}")

    def build_networks(self) -> dict[str, nn.Module]:
        hp = self.hp
        smallest = self.image_size
        for _ in range(len(hp.channel_mults) - 1):
            smallest = (smallest + 1) // 2
        if smallest < 2:
            raise UserError(
                f"ddpm with {len(hp.channel_mults)} channel_mults halves {self.image_size} px images down to "
                f"{smallest} px; use fewer levels or larger images"
            )
        self.schedule = NoiseSchedule.named(hp.schedule, hp.timesteps, hp.beta_start, hp.beta_end).to(self.device)
        unet = UNet(self.channels, hp.base_width, tuple(hp.channel_mults), hp.res_blocks, tuple(hp.attention_levels),
                    hp.dropout, self.num_classes, hp.attention_heads)
        ema = copy.deepcopy(unet).requires_grad_(False).eval()
        return {"unet": unet, "ema": ema}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": torch.optim.Adam(self.nets["unet"].parameters(), lr=self.hp.lr)}

    def build_schedulers(self) -> dict[str, Any]:
        warmup = self.hp.warmup_steps
        if not warmup:
            return {}
        return {"unet": torch.optim.lr_scheduler.LambdaLR(
            self.optimizers["unet"], lambda step: min(1.0, (step + 1) / warmup))}

    def train(self, mode: bool = True) -> "DDPM":
        super().train(mode)
        self.nets["ema"].eval()  # the EMA network only ever samples: no dropout
        return self

    # ------------------------------------------------------------------ training
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        x0 = batch.images
        n = len(x0)
        t = torch.randint(0, self.schedule.timesteps, (n,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.q_sample(x0, t, noise)
        labels = None
        if self.num_classes and batch.labels is not None:
            # Label dropout: the null label teaches the same network the unconditional prediction.
            drop = torch.rand(n, device=x0.device) < self.hp.label_dropout
            labels = torch.where(drop, torch.full_like(batch.labels, self.num_classes), batch.labels)
        target = noise if self.hp.prediction == "epsilon" else self.schedule.v_target(x0, t, noise)
        with self.autocast():
            prediction = self.nets["unet"](x_t, t, labels)
        loss = diffusion_loss(prediction, target)
        self.optimize("unet", loss, clip_grad_norm=self.hp.grad_clip)
        if "unet" in self.schedulers:
            self.schedulers["unet"].step()
        ema_update(self.nets["ema"], self.nets["unet"], ema_decay_at(self.step, self.hp.ema_decay))
        return {"loss": loss.detach()}

    # ------------------------------------------------------------------ sampling
    def noise_predictor(self, labels: torch.Tensor | None, guidance: float) -> NoisePredictor:
        """Return ``(x_t, t) -> eps`` of the EMA network, guided by ``guidance`` towards ``labels``."""
        net = self.nets["ema"]
        schedule, v_prediction = self.schedule, self.hp.prediction == "v"

        def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with self.autocast():
                if labels is None or guidance == 0:
                    out = net(x, t, None)
                elif guidance == 1:
                    out = net(x, t, labels)
                else:  # both predictions in one batch
                    null = torch.full_like(labels, self.num_classes)
                    cond, uncond = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
                    out = guided(cond.float(), uncond.float(), guidance)
            out = out.float()
            return schedule.eps_from_v(x, t, out) if v_prediction else out

        return predict

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               steps: int | None = None, guidance: float | None = None, eta: float | None = None,
               sampler: str | None = None) -> torch.Tensor:
        """Return ``n`` images sampled with the EMA weights (DDIM by default, DDPM over all T steps)."""
        steps, guidance, eta, sampler = self._sampling_options(steps, guidance, eta, sampler)
        labels, scale = self._conditioning(n, labels, guidance, generator)
        predict = self.noise_predictor(labels, scale)
        x_T = self.latents(n, generator)
        if sampler == "ddpm":
            return ddpm_sample(predict, self.schedule, x_T, generator, self.hp.clip_denoised, progress=True)
        return ddim_sample(predict, self.schedule, x_T, steps, eta, generator, self.hp.clip_denoised, progress=True)

    def latents(self, n: int, generator: torch.Generator | None = None, **options) -> torch.Tensor:
        """Return ``n`` initial noise images x_T (``options`` are generate's, which noise ignores)."""
        device = generator.device if generator is not None else self.device
        return torch.randn((n, *self.image_shape), generator=generator, device=device).to(self.device)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None,
                 guidance: float | None = None, progress: bool = True) -> torch.Tensor:
        """Return the images deterministic DDIM (eta = 0) reaches from initial noise ``z``."""
        steps, guidance, _, _ = self._sampling_options(steps, guidance, None, "ddim")
        labels, scale = self._conditioning(len(z), labels, guidance, None)
        predict = self.noise_predictor(labels, scale)
        return ddim_sample(predict, self.schedule, z.to(self.device), steps, 0.0, None, self.hp.clip_denoised,
                           progress=progress)

    def preview(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
        """Return (images, images per row) of a cheap DDIM pass from the fixed preview noise."""
        images = self.generate(inputs["z"], inputs.get("labels"), steps=min(PREVIEW_STEPS, self.schedule.timesteps),
                               progress=False)
        nrow = self.num_classes if inputs.get("labels") is not None else max(1, round(len(images) ** 0.5))
        return images, nrow

    def figure(self, kind: str, n: int | None, generator: torch.Generator | None = None,
               data: ImageData | None = None, timesteps: Any = None, **options) -> tuple[torch.Tensor, int]:
        """Return (images, images per row): ``n`` real images (default ``FORWARD_NOISE_ROWS``), one
        per row, noised by the forward process at each of ``timesteps`` (0 is the clean image, T
        pure noise)."""
        if kind != "forward-noise":
            raise UserError(f"ddpm draws no {kind!r} figure; it draws: forward-noise")
        if data is None:
            raise UserError("the forward-noise figure needs real images to noise (data=ImageData)")
        columns = self._figure_timesteps(timesteps)
        n = FORWARD_NOISE_ROWS if n is None else n
        idx = torch.randperm(len(data.images), generator=generator)[:n]
        x = to_float(data.images[idx]).to(self.device)
        # Run the Markov chain q(x_t | x_{t-1}) step by step: each row is one real trajectory.
        frames = {0: x}
        for t in range(1, max(columns) + 1):
            noise = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device)
            x = self.schedule.q_step(x, torch.full((len(x),), t - 1, device=x.device), noise.to(x.device))
            if t in columns:
                frames[t] = x
        grid = torch.stack([frames[t].clamp(-1, 1) for t in columns], dim=1).flatten(0, 1)
        return grid, len(columns)

    def figure_captions(self, kind: str, n: int | None = None, timesteps: Any = None,
                        **options) -> tuple[list[str] | None, list[str] | None]:
        """Return the forward-noise figure's column headings: the timestep of each column."""
        if kind != "forward-noise":
            return None, None
        return [f"t={t}" for t in self._figure_timesteps(timesteps)], None

    # ------------------------------------------------------------------ option checks
    def _figure_timesteps(self, timesteps: Any) -> list[int]:
        T = self.schedule.timesteps
        if not timesteps:
            return sorted({round(f * T) for f in FORWARD_NOISE_FRACTIONS})
        items = timesteps.split(",") if isinstance(timesteps, str) else list(timesteps)
        try:
            values = [int(v) for v in items if str(v).strip()]
        except (TypeError, ValueError):
            raise UserError(f"timesteps must be whole numbers between 0 and {T}, got {timesteps!r}") from None
        bad = [v for v in values if not 0 <= v <= T]
        if not values or bad:
            raise UserError(f"timesteps must be whole numbers between 0 and {T}, got {timesteps!r}")
        return values

    def _sampling_options(self, steps, guidance, eta, sampler) -> tuple[int, float | None, float, str]:
        """Return checked (steps, guidance or None, eta, sampler), filling defaults from the hyperparameters."""
        T = self.schedule.timesteps
        if sampler is not None and sampler not in SAMPLERS:
            raise UserError(f"unknown sampler {sampler!r}; ddpm samples with: {', '.join(SAMPLERS)}")
        if steps is None:
            steps = T if sampler == "ddpm" else self.hp.sampling_steps
        steps = _number(steps, int, "steps")
        if not 1 <= steps <= T:
            raise UserError(f"steps must be between 1 and {T} (the model's diffusion steps), got {steps}")
        if sampler is None:
            sampler = "ddpm" if steps == T and eta is None else "ddim"
        if sampler == "ddpm" and steps != T:
            raise UserError(f"the ddpm sampler runs all {T} steps; use sampler=ddim for steps={steps}")
        if sampler == "ddpm" and eta is not None:
            raise UserError("eta sets the ddim sampler's noise; the ddpm sampler has none to set")
        eta = self.hp.eta if eta is None else _number(eta, float, "eta")
        if not 0 <= eta <= 1:
            raise UserError(f"eta must be between 0 and 1, got {eta}")
        if guidance is not None:
            guidance = _number(guidance, float, "guidance")
            if not self.num_classes:
                raise UserError("guidance needs a model trained on labelled data; "
                                "this ddpm was trained without labels")
            if guidance < 0:
                raise UserError(f"guidance must be 0 or more, got {guidance}")
        return steps, guidance, eta, sampler

    def _conditioning(self, n: int, labels: torch.Tensor | None, guidance: float | None,
                      generator: torch.Generator | None) -> tuple[torch.Tensor | None, float]:
        """Return (labels or None, guidance scale) to sample ``n`` images with."""
        labels = self._check_labels(labels, n)
        # Without label dropout the null label was never trained: no unconditional prediction.
        has_unconditional = self.hp.label_dropout > 0
        if guidance is not None and guidance != 1 and not has_unconditional:
            raise UserError("this ddpm was trained with label_dropout 0, so it has no unconditional prediction "
                            "to guide with; use --set guidance=1")
        if labels is None and self.num_classes and (guidance is not None or not has_unconditional):
            # Guidance asked for without --label (or no unconditional prediction): random classes.
            labels = torch.randint(0, self.num_classes, (n,), generator=generator).to(self.device)
        if guidance is None:
            guidance = self.hp.guidance if has_unconditional else 1.0
        return labels, guidance

    def _check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """Return ``labels`` as a long tensor on the device, or raise ``UserError`` if the model cannot take them."""
        if labels is None:
            return None
        if not self.num_classes:
            raise UserError("--label needs a model trained on labelled data; this ddpm was trained without labels")
        labels = torch.as_tensor(labels, dtype=torch.long).flatten().to(self.device)
        if len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} images")
        bad = labels[(labels < 0) | (labels >= self.num_classes)]
        if len(bad):
            raise UserError(f"label {int(bad[0])} is out of range; this model knows {self.num_classes} classes: "
                            f"{', '.join(self.classes)}")
        return labels


def _number(value: Any, kind: type, option: str):
    """Return ``value`` as ``kind`` or raise ``UserError`` naming the option."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{option} must be a number, got {value!r}") from None
    if kind is int:
        if not number.is_integer():
            raise UserError(f"{option} must be a whole number, got {value!r}")
        return int(number)
    return number
