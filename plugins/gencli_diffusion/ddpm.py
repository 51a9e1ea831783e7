"""DDPM (Ho et al. 2020) with class conditioning and classifier-free guidance (Ho & Salimans 2022).

One U-Net predicts the noise of ``x_t``; trained on labelled data it sees the label, replaced by
a null label a fraction of the time, so the same network predicts unconditionally too and
sampling can mix the two predictions (guidance). Trained on unlabelled data the model is simply
unconditional. Sampling uses the EMA weights, by ancestral DDPM over all T steps or DDIM over
fewer; ``latents`` + ``generate`` (deterministic DDIM from the initial noise) give interpolation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch, ImageData, to_float
from gencli.errors import UserError
from gencli.models.base import (
    ExportedNetwork,
    ExportSpec,
    Model,
    TensorSpec,
)
from gencli.nn.ema import ema_copy, ema_decay_at, ema_update
from gencli.nn.optim import adam
from gencli_diffusion.declarations import (  # noqa: F401 - declared apart from the networks
    DDPMDeclarations,
    DDPMHyperparameters,
    DDPMInterpolateOptions,
    DDPMSampleOptions,
    ForwardNoiseOptions,
)
from gencli_diffusion.samplers import SAMPLERS, DDIMSampler, NoisePredictor, guided, run_sampler
from gencli_diffusion.schedules import NoiseSchedule
from gencli_diffusion.unet import UNet

# DDIM steps of the training-progress grid: enough to show the shapes, cheap on a CPU.
PREVIEW_STEPS = 20
# Columns of the forward-process figure, as fractions of T (0 is the clean image).
FORWARD_NOISE_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
# Rows (real images) of the forward-noise figure when the caller does not ask for a number.
FORWARD_NOISE_ROWS = 4
# The sampler of `gencli sample` when neither sampler nor steps=T (with no eta) says otherwise,
# and the one it picks for all T steps without eta.
DEFAULT_SAMPLER = "ddim"
FULL_STEPS_SAMPLER = "ddpm"


# ---------------------------------------------------------------------------- losses
def diffusion_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the simplified DDPM objective: mean squared error to the target (Ho et al. eq. 14)."""
    return F.mse_loss(prediction.float(), target)


# ---------------------------------------------------------------------------- the model
class DDPM(DDPMDeclarations, Model):
    """Denoising diffusion with DDPM and DDIM sampling, conditional on labels when it has them."""

    name: ClassVar[str] = "ddpm"
    summary: ClassVar[str] = "class-conditional DDPM with DDIM sampling and classifier-free guidance (Ho et al. 2020)"
    data: ClassVar[str] = "images"

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
        ema = ema_copy(unet).eval()
        return {"unet": unet, "ema": ema}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"unet": adam(self.nets["unet"].parameters(), lr=self.hp.lr)}

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
        t = self.randint(0, self.schedule.timesteps, (n,))
        noise = self.randn_like(x0)
        x_t = self.schedule.q_sample(x0, t, noise)
        labels = None
        if self.num_classes and batch.labels is not None:
            # Label dropout: the null label teaches the same network the unconditional prediction.
            drop = self.rand(n) < self.hp.label_dropout
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
        walker = SAMPLERS[sampler](self.schedule, self.hp.clip_denoised, eta)
        return run_sampler(walker, predict, x_T, steps, generator, progress=True)

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
        return run_sampler(DDIMSampler(self.schedule, self.hp.clip_denoised, 0.0), predict, z.to(self.device), steps,
                           None, progress=progress)

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
        chosen = SAMPLERS.get(sampler)
        if steps is None:
            steps = T if chosen is not None and chosen.all_steps else self.hp.sampling_steps
        steps = _number(steps, int, "steps")
        if not 1 <= steps <= T:
            raise UserError(f"steps must be between 1 and {T} (the model's diffusion steps), got {steps}")
        if sampler is None:
            # All T steps and no eta asked for: the ancestral sampler; otherwise DDIM.
            sampler = FULL_STEPS_SAMPLER if steps == T and eta is None else DEFAULT_SAMPLER
            chosen = SAMPLERS[sampler]
        if chosen.all_steps and steps != T:
            raise UserError(f"the {sampler} sampler runs all {T} steps; use sampler={DEFAULT_SAMPLER} for steps={steps}")
        if not chosen.takes_eta and eta is not None:
            raise UserError(f"eta sets the {DEFAULT_SAMPLER} sampler's noise; the {sampler} sampler has none to set")
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

    # ------------------------------------------------------------------ export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return the EMA denoiser for `gencli export`: (x_t, t, labels) -> the noise eps in x_t.

        A v-predicting network is converted to eps inside the module, so every export predicts eps;
        the sampler loop is not exported but written out beside it (``EXPORT_SAMPLER``).
        """
        net, schedule, T, k = self.nets["ema"], self.schedule, self.schedule.timesteps, self.num_classes
        v_prediction = self.hp.prediction == "v"

        def predict_eps(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            out = net(x, t, labels).float()
            return schedule.eps_from_v(x, t, out) if v_prediction else out

        n = 2
        image = ("N", *self.image_shape)
        inputs = [TensorSpec("x_t", image, help="noisy images at step t (x_T ~ N(0, I))"),
                  TensorSpec("t", ("N",), "int64", (0, T - 1), "timestep index of each image")]
        example: tuple[torch.Tensor, ...] = (torch.randn(n, *self.image_shape, device=self.device),
                                             torch.tensor([T - 1, 0], device=self.device))
        has_unconditional = bool(k) and self.hp.label_dropout > 0
        if k:
            null = f"; {k} is the null label (unconditional)" if has_unconditional else ""
            inputs.append(TensorSpec("labels", ("N",), "int64", (0, k if has_unconditional else k - 1),
                                     "class index of each image" + null))
            example += (torch.arange(n, device=self.device) % k,)
        constants = {
            "timesteps": T,
            "alpha_bar": [round(float(a), 9) for a in schedule.alpha_bar.cpu()],
            "sampling_steps": self.hp.sampling_steps,
            "guidance": self.hp.guidance if has_unconditional else 1.0,
            "null_label": k if has_unconditional else None,
            "clip_denoised": bool(self.hp.clip_denoised),
        }
        notes = ["the denoiser only: the sampler loop (DDIM, eta = 0) is the example script beside the file",
                 f"the {self.hp.schedule} noise schedule is in constants.alpha_bar (cumulative products of 1 - beta)"]
        eps = TensorSpec("eps", image, help="the predicted noise in x_t")
        return (ExportedNetwork(predict_eps, ema=net),
                ExportSpec(f"the EMA denoiser eps(x_t, t{', label' if k else ''}) of a {T}-step diffusion", inputs, eps,
                           example, notes, constants, EXPORT_SAMPLER))


# The sampler loop written out beside an exported denoiser (`gencli export`): deterministic DDIM as
# ``ddim_sample`` with eta = 0, over ``network`` and ``CONTRACT`` only.
EXPORT_SAMPLER = '''
def predict(network, x, t, labels, guidance):
    """Return the noise in x at steps t, guided by classifier-free guidance toward labels."""
    if labels is None:
        return network(x, t)
    null = CONTRACT["constants"]["null_label"]
    if guidance == 1 or null is None:
        return network(x, t, labels)
    cond = network(x, t, labels)
    uncond = network(x, t, torch.full_like(labels, null))
    return uncond + guidance * (cond - uncond)


@torch.no_grad()
def sample(network, n, steps, label=None, guidance=1.0, seed=0):
    """Return n images in [-1, 1] reached from noise by `steps` deterministic DDIM steps."""
    constants = CONTRACT["constants"]
    alpha_bar = torch.tensor(constants["alpha_bar"], dtype=torch.float32)
    T = len(alpha_bar)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *CONTRACT["output"]["shape"][1:], generator=generator)
    labels = None
    if any(i["name"] == "labels" for i in CONTRACT["inputs"]):
        if label is not None:
            labels = torch.full((n,), label, dtype=torch.long)
        elif constants["null_label"] is not None:
            labels = torch.full((n,), constants["null_label"], dtype=torch.long)
        else:
            labels = torch.randint(0, len(CONTRACT["classes"]), (n,), generator=generator)
    times = [T - 1] if steps == 1 else torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long().tolist()
    for i, now in enumerate(times):
        t = torch.full((n,), now, dtype=torch.long)
        eps = predict(network, x, t, labels, guidance)
        a = alpha_bar[now]
        a_prev = alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        if constants["clip_denoised"]:
            x0 = x0.clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x.clamp(-1, 1)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Sample images from the exported denoiser with deterministic DDIM.")
    parser.add_argument("--n", type=int, default=8, help="how many images")
    parser.add_argument("--steps", type=int, default=CONTRACT["constants"]["sampling_steps"], help="DDIM steps")
    parser.add_argument("--label", type=int, default=None, help="class index (conditional models)")
    parser.add_argument("--guidance", type=float, default=CONTRACT["constants"]["guidance"], help="guidance w")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="samples.pt", help="where to save the images tensor [N, C, H, W]")
    args = parser.parse_args()
    images = sample(load_network(), args.n, args.steps, args.label, args.guidance, args.seed)
    torch.save(images, args.out)
    print(f"{args.out}: {tuple(images.shape)} in [{images.min():.3f}, {images.max():.3f}]")
'''


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
