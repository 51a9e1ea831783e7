"""VQ-VAE, and a gated PixelCNN prior over its codes trained as a second stage.

van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning" (VQ-VAE);
van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders" (gated PixelCNN);
dead-code restarts as in Dhariwal et al. 2020, "Jukebox".

Stage one, ``vqvae``: an encoder maps an image to a grid of vectors (the image size divided by
2**downsamples), each replaced by its nearest codebook entry; the decoder sees the quantised grid
and gradients skip the quantiser (straight-through). The codebook learns from the codebook loss,
or from exponential moving averages of the vectors assigned to each code (``--set ema=true``).
Codes no vector chose for ``restart_after`` steps are re-initialised to random encoder outputs,
so the whole codebook stays in use. A VQ-VAE reconstructs but cannot sample on its own: there is
no prior over its codes until stage two is trained.

Stage two, ``vqvae-prior``: ``gencli train vqvae-prior --from RUN`` loads the trained VQ-VAE,
keeps it frozen inside the prior (its weights are saved with the prior's checkpoints, and its
settings in the prior's hyperparameters, so a trained prior needs nothing else), encodes each
batch to code indices and fits an autoregressive gated PixelCNN to them. ``gencli sample
vqvae-prior`` draws code grids position by position and decodes them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.base import Batch, ImageData
from gencli.errors import UserError
from gencli.models import hparams
from gencli.models.base import ExportedNetwork, ExportSpec, Model, TensorSpec
from gencli.nn.optim import adam
from gencli_vae.declarations import (  # noqa: F401 - declared apart from the networks
    PriorSampleOptions,
    VQVAEDeclarations,
    VQVAEHyperparameters,
    VQVAEPriorDeclarations,
    VQVAEPriorHyperparameters,
)


# ---------------------------------------------------------------- networks: the autoencoder
class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the VQ-VAE paper's residual block."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VQEncoder(nn.Module):
    """Image -> grid of continuous vectors z_e, the image size divided by 2**downsamples."""

    def __init__(self, channels: int, hidden: int, res_hidden: int, res_blocks: int, downsamples: int, code_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(downsamples):
            c_out = hidden if i == downsamples - 1 else max(hidden // 2, 1)
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, hidden, 3, padding=1))
        layers += [ResidualBlock(hidden, res_hidden) for _ in range(res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(hidden, code_dim, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class VQDecoder(nn.Module):
    """Grid of (quantised) vectors -> image, mirroring the encoder; linear output."""

    def __init__(self, channels: int, hidden: int, res_hidden: int, res_blocks: int, downsamples: int, code_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(code_dim, hidden, 3, padding=1)]
        layers += [ResidualBlock(hidden, res_hidden) for _ in range(res_blocks)]
        layers.append(nn.ReLU())
        c_in = hidden
        for i in range(downsamples):
            last = i == downsamples - 1
            c_out = channels if last else max(hidden // 2, 1)
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
            c_in = c_out
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class VectorQuantizer(nn.Module):
    """A codebook of ``num_codes`` vectors; nearest-code lookup, EMA updates and dead-code restarts.

    Nothing here changes the codebook during a forward pass: the model's train step calls
    ``ema_update`` and ``restart_dead_codes`` explicitly, so a frozen copy (inside the prior)
    never drifts, whatever mode it is in.
    """

    def __init__(self, num_codes: int, dim: int, ema: bool):
        super().__init__()
        self.num_codes, self.dim, self.ema = num_codes, dim, ema
        init = torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        # With EMA updates the codebook is not learned by gradient: no optimizer sees it.
        self.codebook = nn.Parameter(init, requires_grad=not ema)
        self.register_buffer("ema_count", torch.ones(num_codes))
        self.register_buffer("ema_sum", init.clone())
        # Steps since each code was last chosen, for dead-code restarts. A fresh codebook counts as
        # dead, so the first training step fills it with encoder outputs: codes start where the
        # data is instead of in a tiny ball at the origin that only one or two vectors reach.
        self.register_buffer("idle_steps", torch.full((num_codes,), float("inf")))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Return the index of the nearest code to each row of ``flat`` [N, dim]."""
        codebook = self.codebook.float()
        distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codebook.t() + codebook.pow(2).sum(1)
        return distances.argmin(dim=1)

    def forward(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (quantised grid [B, dim, h, w], code indices [B, h, w]) for encoder output ``z_e``."""
        b, _, h, w = z_e.shape
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, self.dim)
        indices = self.nearest(flat).view(b, h, w)
        return self.lookup(indices), indices

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Return the code vectors [B, dim, h, w] for indices [B, h, w]."""
        return F.embedding(indices, self.codebook.float()).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def ema_update(self, counts: torch.Tensor, sums: torch.Tensor, decay: float, eps: float = 1e-5) -> None:
        """Move each code to the running mean of the vectors assigned to it (``counts`` [K], ``sums`` [K, dim])."""
        self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
        # Laplace smoothing keeps a code nobody chose from dividing by zero.
        total = self.ema_count.sum()
        count = (self.ema_count + eps) / (total + self.num_codes * eps) * total
        self.codebook.copy_(self.ema_sum / count.unsqueeze(1))

    @torch.no_grad()
    def restart_dead_codes(self, flat: torch.Tensor, counts: torch.Tensor, after: int) -> None:
        """Re-initialise codes unused for ``after`` steps to random rows of ``flat`` (encoder outputs)."""
        self.idle_steps.add_(1).masked_fill_(counts > 0, 0)
        if after <= 0:
            return
        dead = (self.idle_steps >= after).unsqueeze(1)
        # Drawn every step, dead codes or not, so the RNG stream does not depend on the data and
        # nothing waits on the device to decide.
        picks = flat[torch.randint(0, flat.shape[0], (self.num_codes,), device=flat.device)]
        self.codebook.copy_(torch.where(dead, picks, self.codebook))
        self.ema_sum.copy_(torch.where(dead, picks, self.ema_sum))
        self.ema_count.masked_fill_(dead.squeeze(1), 1.0)
        self.idle_steps.masked_fill_(dead.squeeze(1), 0)


class VQAutoencoder(nn.Module):
    """Encoder, codebook and decoder as one module (the prior keeps a frozen copy of it)."""

    def __init__(self, channels: int, hp: "VQVAEHyperparameters"):
        super().__init__()
        args = (channels, hp.hidden, hp.res_hidden, hp.res_blocks, hp.downsamples, hp.code_dim)
        self.encoder = VQEncoder(*args)
        self.quantizer = VectorQuantizer(hp.codebook_size, hp.code_dim, hp.ema)
        self.decoder = VQDecoder(*args)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code indices [B, h, w] of images ``x``."""
        return self.quantizer(self.encoder(x))[1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Return images in [-1, 1] from a quantised grid [B, dim, h, w] or code indices [B, h, w]."""
        if not z.is_floating_point():
            z = self.quantizer.lookup(z)
        return self.decoder(z).float().clamp(-1, 1)


# ---------------------------------------------------------------- networks: the prior
class GatedLayer(nn.Module):
    """One gated PixelCNN layer: a vertical stack (rows above) and a horizontal stack (left in the row).

    The vertical stack's output at row i sees rows <= i; shifted down one row before it feeds the
    horizontal stack, it tells position (i, j) only about rows above. The horizontal stack sees
    columns <= j of its own row; in the first layer it is shifted right one column, so no position
    ever sees its own code. Splitting the two stacks removes the original PixelCNN's blind spot.
    """

    def __init__(self, channels: int, kernel: int, first: bool):
        super().__init__()
        self.half, self.first = kernel // 2, first
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.half + 1, kernel))
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, self.half + 1))
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.half
        v_pre = self.vertical(F.pad(v, (k, k, k, 0)))
        v_above = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]
        h_pre = self.horizontal(F.pad(h, (k, 0, 0, 0)))
        if self.first:
            h_pre = F.pad(h_pre, (1, 0, 0, 0))[:, :, :, :-1]
        h_pre = h_pre + self.vertical_to_horizontal(v_above)
        h_out = self.out(gate(h_pre))
        # The first layer's input holds the position's own code: no residual path from it.
        return gate(v_pre), (h_out if self.first else h + h_out)


def gate(x: torch.Tensor) -> torch.Tensor:
    """Return tanh(a) * sigmoid(b) for the two channel halves a, b of ``x``."""
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedPixelCNN(nn.Module):
    """Code indices [B, h, w] -> logits [B, num_codes, h, w], each position seeing only earlier ones."""

    def __init__(self, num_codes: int, channels: int, layers: int, kernel: int):
        super().__init__()
        self.embed = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.logits_from_embedding(self.embed(codes).permute(0, 3, 1, 2))

    def logits_from_embedding(self, x: torch.Tensor) -> torch.Tensor:
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)


# ---------------------------------------------------------------- losses and statistics
def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (codebook loss, commitment loss): the same distance, with gradients to each side."""
    codebook = F.mse_loss(z_q, z_e.detach())
    commitment = F.mse_loss(z_e, z_q.detach())
    return codebook, commitment


def code_statistics(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (perplexity, fraction of codes used) of code counts in a batch."""
    p = counts / counts.sum().clamp_min(1)
    perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())
    return perplexity, (counts > 0).float().mean()


def check_grid(name: str, image_size: int, downsamples: int) -> None:
    """Raise ``UserError`` unless the image halves cleanly ``downsamples`` times."""
    factor = 2**downsamples
    if image_size % factor or image_size // factor < 1:
        sizes = ", ".join(str(factor * k) for k in (2, 4, 7, 8, 16))
        raise UserError(
            f"{name} with downsamples={downsamples} needs an image size divisible by {factor} (e.g. {sizes}), "
            f"got {image_size}"
        )


# ---------------------------------------------------------------- stage one: the VQ-VAE
class VQVAE(VQVAEDeclarations, Model):
    name = "vqvae"
    summary = "vector-quantised VAE with a codebook (van den Oord et al. 2017)"
    data = "images"
    test_overrides = {"codebook_size": 16, "code_dim": 8, "hidden": 16, "res_hidden": 8, "res_blocks": 1}
    # A VQ-VAE alone cannot sample (it has no prior over its codes): what to do instead.
    capability_hints = {
        "sample": "train a prior over its codes with `gencli train vqvae-prior --from RUN`, "
        "then `gencli sample vqvae-prior`"
    }

    @classmethod
    def check_shape(cls, image_size: int, channels: int) -> None:
        super().check_shape(image_size, channels)
        if image_size < 8:
            raise UserError(f"{cls.name} needs images of at least 8 px, got {image_size}")

    def build_networks(self) -> dict[str, nn.Module]:
        check_grid(self.name, self.image_size, self.hp.downsamples)
        return {"vqvae": VQAutoencoder(self.channels, self.hp)}

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [p for p in self.nets["vqvae"].parameters() if p.requires_grad]
        return {"vqvae": adam(params, lr=self.hp.lr)}

    # -- the train step
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        hp, net = self.hp, self.nets["vqvae"]
        with self.autocast():
            z_e = net.encoder(batch.images)
        z_e = z_e.float()  # distances and codebook statistics in fp32
        z_q, indices = net.quantizer(z_e)
        codebook, commitment = vq_losses(z_e, z_q)
        # Straight-through: the decoder sees z_q, the encoder receives the decoder's gradient.
        z_st = z_e + (z_q - z_e).detach()
        with self.autocast():
            x_hat = net.decoder(z_st)
        recon = F.mse_loss(x_hat.float(), batch.images)
        loss = recon + hp.beta * commitment
        if not hp.ema:
            loss = loss + codebook
        self.optimize("vqvae", loss)

        flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, hp.code_dim)
        onehot = F.one_hot(indices.flatten(), hp.codebook_size).float()
        counts, sums = onehot.sum(0), onehot.t() @ flat
        if self.process_group is not None:
            flat, counts, sums = self.global_batch(flat, counts, sums)
        if hp.ema:
            net.quantizer.ema_update(counts, sums, hp.ema_decay)
        net.quantizer.restart_dead_codes(flat, counts, hp.restart_after)
        perplexity, usage = code_statistics(counts)
        return {
            "loss": loss.detach(),
            "recon": recon.detach(),
            "codebook": codebook.detach(),
            "commit": commitment.detach(),
            "perplexity": perplexity,
            "usage": usage,
        }

    def global_batch(
        self, flat: torch.Tensor, counts: torch.Tensor, sums: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (encoder outputs, code counts, code sums) of the whole global batch, on every process.

        Codebook updates then see what a single process would see, so every copy of the codebook
        stays identical: encoder outputs are gathered in rank order (the global batch order) for
        dead-code restarts, counts and sums are added up for the EMA.
        """
        import torch.distributed as dist

        dist.all_reduce(counts, group=self.process_group)
        dist.all_reduce(sums, group=self.process_group)
        if self.hp.restart_after > 0:
            parts = [torch.empty_like(flat) for _ in range(self.world_size)]
            dist.all_gather(parts, flat.contiguous(), group=self.process_group)
            flat = torch.cat(parts)
        return flat, counts, sums

    # -- capabilities
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return the quantised latent grid [B, code_dim, h, w] of images ``x``."""
        net = self.nets["vqvae"]
        return net.quantizer(net.encoder(x.to(self.device)).float())[0]

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Return the code indices [B, h, w] of images ``x``."""
        return self.nets["vqvae"].codes(x.to(self.device))

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return images from a quantised grid [B, code_dim, h, w] or code indices [B, h, w]."""
        return self.nets["vqvae"].decode(z.to(self.device))

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(x))

    # -- figures for `gencli eval`
    def report(self, run) -> list[Path]:
        """Return the figures written: reconstruction error and codebook use over training."""
        from gencli.media.plots import plot_series

        path = plot_series(
            run.metrics(),
            ["recon", "perplexity", "usage"],
            run.dir / "eval" / "codebook.png",
            bounds={"perplexity": (1, self.hp.codebook_size), "usage": (0, 1)},
            log_scale=["recon"],
            title=f"VQ-VAE: reconstruction and use of the {self.hp.codebook_size}-code codebook",
        )
        return [path] if path is not None else []

    # -- export
    def export_module(self, direction: str | None = None) -> tuple[nn.Module, ExportSpec]:
        """Return the decoder over code indices for `gencli export`: codes [N, h, w] -> images in [-1, 1]."""
        net = self.nets["vqvae"]
        h = self.image_size // 2**self.hp.downsamples
        k = self.hp.codebook_size
        inputs = [TensorSpec("codes", ("N", h, h), "int64", (0, k - 1), f"code indices into the {k}-code codebook")]
        example = (torch.randint(0, k, (2, h, h), device=self.device),)
        notes = ["the decoder over code indices only: a VQ-VAE has no prior to sample codes from; "
                 "the autoregressive prior (vqvae-prior) is not exported"]
        images = TensorSpec("images", ("N", *self.image_shape), range=(-1, 1), help="decoded images")
        return (ExportedNetwork(net.decode, vqvae=net),
                ExportSpec("the VQ-VAE decoder: code indices -> codebook vectors -> images", inputs, images, example, notes))


# ---------------------------------------------------------------- stage two: the prior
class VQVAEPrior(VQVAEPriorDeclarations, Model):
    name = "vqvae-prior"
    summary = "autoregressive prior over a trained VQ-VAE's codes (train with --from RUN)"
    data = "images"
    test_overrides = {"channels": 8, "layers": 2, "kernel": 3}
    capability_hints = {"export": "the autoregressive prior is not exported; "
                        "export the decoder over code indices from its vqvae run (`gencli export VQVAE_RUN`)"}

    @classmethod
    def train_from(cls, hp: VQVAEPriorHyperparameters, source) -> VQVAEPriorHyperparameters:
        """`gencli train vqvae-prior --from RUN`: the prior models the codes of that vqvae run."""
        if source.model_name != "vqvae":
            raise UserError(f"--from {source.dir}: vqvae-prior needs a vqvae run, this is a {source.model_name!r} run")
        hp.from_run = str(source.dir)
        return hp

    def build_networks(self) -> dict[str, nn.Module]:
        vqvae = self.frozen_vqvae()
        prior = GatedPixelCNN(self.vq_hp.codebook_size, self.hp.channels, self.hp.layers, self.hp.kernel)
        return {"prior": prior, "vqvae": vqvae}

    def frozen_vqvae(self) -> VQAutoencoder:
        """Return the VQ-VAE's autoencoder: weights from --from RUN when training starts, else the
        architecture alone (the weights then come from this prior's own checkpoint)."""
        if self.hp.vqvae_settings:
            try:
                settings = json.loads(self.hp.vqvae_settings)
                self.vq_hp = hparams.build(VQVAEHyperparameters, settings["hyperparameters"], source="vqvae_settings")
                shape = tuple(settings["image_shape"])
            except (ValueError, KeyError, TypeError):
                raise UserError("vqvae_settings is damaged; train the prior again with --from RUN") from None
            self.check_same_shape(shape, self.hp.from_run or "the vqvae")
            return VQAutoencoder(shape[0], self.vq_hp).requires_grad_(False)
        from gencli import load_run

        trained = load_run(self.hp.from_run, device=str(self.device))
        if not isinstance(trained, VQVAE):
            raise UserError(f"--from {self.hp.from_run}: vqvae-prior needs a vqvae run, this is a {trained.name!r} run")
        self.check_same_shape(trained.image_shape, self.hp.from_run)
        self.vq_hp = trained.hp
        settings = {"hyperparameters": hparams.to_dict(trained.hp), "image_shape": list(trained.image_shape)}
        # Recorded in the hyperparameters (and so in run.json): resuming or loading this prior
        # rebuilds the VQ-VAE without its run, and takes the weights from the prior's checkpoint.
        self.hp.vqvae_settings = json.dumps(settings, sort_keys=True)
        autoencoder = trained.nets["vqvae"]
        return autoencoder.eval().requires_grad_(False)

    def check_same_shape(self, shape: tuple[int, ...], run: str) -> None:
        if tuple(shape) != tuple(self.image_shape):
            c, s = shape[0], shape[1]
            raise UserError(
                f"the vqvae in {run} was trained on {c}x{s}x{s} images, not "
                f"{self.channels}x{self.image_size}x{self.image_size}; train its prior with "
                f"--image-size {s} --channels {c}"
            )

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"prior": adam(self.nets["prior"].parameters(), lr=self.hp.lr)}

    @property
    def grid(self) -> int:
        return self.image_size // 2**self.vq_hp.downsamples

    # -- the train step
    def train_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            codes = self.nets["vqvae"].codes(batch.images)
        with self.autocast():
            logits = self.nets["prior"](codes)
        nll = F.cross_entropy(logits.float(), codes)
        self.optimize("prior", nll)
        return {"loss": nll.detach(), "bits_per_code": nll.detach() / math.log(2)}

    # -- capabilities
    def sample_codes(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Return ``n`` code grids [n, h, w] drawn position by position from the prior."""
        if temperature <= 0:
            raise UserError(f"temperature must be > 0, got {temperature}")
        prior = self.nets["prior"]
        codes = torch.zeros(n, self.grid, self.grid, dtype=torch.long, device=self.device)
        for i in range(self.grid):
            for j in range(self.grid):
                # Row i depends only on rows <= i, so the rows below need not be computed.
                logits = prior(codes[:, : i + 1])[:, :, i, j]
                probs = torch.softmax(logits.float() / temperature, dim=1)
                if generator is not None and generator.device != probs.device:
                    probs = probs.cpu()
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(self.device)
        return codes

    def sample(
        self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None, temperature: float = 1.0
    ) -> torch.Tensor:
        return self.nets["vqvae"].decode(self.sample_codes(n, generator, float(temperature)))

    def preview_inputs(self, data: ImageData, n: int, seed: int) -> dict[str, Any]:
        """Return the seed of the progress grid: the same codes are drawn from it at each interval."""
        return {"seed": seed, "n": n}

    def preview(self, inputs: dict[str, Any]) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed(inputs["seed"])
        images = self.sample(inputs["n"], generator=g)
        return images, max(1, round(math.sqrt(len(images))))
