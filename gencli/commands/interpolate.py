"""`gencli interpolate`: walks between latents, or between encoded images, and latent grids."""

from __future__ import annotations

from pathlib import Path

import torch

from gencli.errors import UserError
from gencli.models.base import require_capability


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` (flattened) at fractions ``t``."""
    shape = a.shape
    a, b = a.reshape(1, -1).float(), b.reshape(1, -1).float()
    t = t.reshape(-1, 1).float().to(a.device)
    cos = (a / a.norm()) @ (b / b.norm()).T
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs().item() < 1e-4:  # nearly parallel: slerp degenerates to lerp
        return torch.lerp(a, b, t).reshape(-1, *shape[1:])
    so = torch.sin(omega)
    out = torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b
    return out.reshape(-1, *shape[1:])


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.reshape(-1, *([1] * (a.dim() - 1))).to(a.device)
    return a + (b - a) * t


def _strip_and_gif(images: torch.Tensor, out: Path, nrow: int) -> list[Path]:
    from gencli.media.images import grid, save_gif, save_grid

    png = save_grid(images, out, nrow)
    frames = [grid(img[None], 1, padding=0) for img in images]
    frames = frames + frames[-2:0:-1]  # there and back, so the loop does not jump
    gif = save_gif(frames, out.with_suffix(".gif"), duration_ms=120)
    return [png, gif]


def _load_image(path: Path, model) -> torch.Tensor:
    from gencli.data.base import to_float
    from gencli.data.folders import decode_image

    if not path.is_file():
        raise UserError(f"image {str(path)!r} does not exist")
    c, s, _ = model.image_shape
    return to_float(decode_image(path, s, c)[None]).to(model.device)


@torch.no_grad()
def interpolate_run(model, steps, from_seed, to_seed, images, latent_grid, label, options, out,
                    parse_label, run_data, default_output) -> list[Path]:
    """Write the interpolation figure(s) asked for; return their paths."""
    from gencli.training.settings import MAX_SEED

    for flag, seed in (("--from", from_seed), ("--to", to_seed)):
        if not 0 <= seed <= MAX_SEED:
            raise UserError(f"{flag} must be a seed from 0 to {MAX_SEED:,}, got {seed}")
    t = torch.linspace(0, 1, steps)
    if latent_grid is not None:
        return [latent_grid_figure(model, latent_grid, label, parse_label, run_data,
                                   out or default_output(model, f"latent-grid-{latent_grid}", ".png"))]
    labels = parse_label(model, label, steps)
    if labels is None and model.conditional and model.num_classes:
        labels = torch.zeros(steps, dtype=torch.long, device=model.device)
    if images:
        if len(images) != 2:
            raise UserError(f"--images takes exactly two images, got {len(images)}")
        require_capability(type(model), "encode", "interpolate between images (it has no encoder)")
        one = labels[:1] if labels is not None else None
        za, zb = (model.encode(_load_image(p, model), one) for p in images)
        path = lerp(za, zb, t)
        frames = model.decode(path, labels)
    else:
        require_capability(type(model), "interpolate")
        za = model.latents(1, torch.Generator().manual_seed(from_seed), **options)
        zb = model.latents(1, torch.Generator().manual_seed(to_seed), **options)
        # Gaussian codes are walked on the sphere; learned spaces such as StyleGAN's W in a line.
        space = options.get("space", getattr(model, "default_space", "z"))
        path = lerp(za, zb, t) if space == "w" else slerp(za, zb, t)
        frames = model.generate(path, labels, **options)
    target = out or default_output(model, "interpolation", ".png")
    return _strip_and_gif(frames.float(), Path(target), steps)


def latent_grid_figure(model, k: int, label, parse_label, run_data, out: Path) -> Path:
    """A KxK grid of decodings spanning the range the encoder uses on held-out data (2-D latents)."""
    from gencli.data.base import to_float
    from gencli.media.images import save_grid

    if k < 2:
        raise UserError(f"--latent-grid must be at least 2, got {k}")
    require_capability(type(model), "encode", "draw a latent grid (it has no encoder)")
    data = run_data(model, "test")
    x = data.images[:2000]
    lab = data.labels[:2000].to(model.device) if data.labels is not None and model.conditional else None
    codes = torch.cat([model.encode(to_float(x[i : i + 256].to(model.device)), lab[i : i + 256] if lab is not None else None)
                       for i in range(0, len(x), 256)])
    if codes.shape[1] != 2:
        raise UserError(f"--latent-grid needs a model with a 2-D latent; this one has {codes.shape[1]} (train with --set latent_dim=2)")
    lo, hi = codes.quantile(0.01, dim=0), codes.quantile(0.99, dim=0)
    ys = torch.linspace(float(hi[1]), float(lo[1]), k)
    xs = torch.linspace(float(lo[0]), float(hi[0]), k)
    z = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2).flip(-1).to(model.device)
    labels = parse_label(model, label, k * k)
    if labels is None and model.conditional:
        raise UserError(f"model {model.name!r} is conditional: give --label for the latent grid")
    return save_grid(model.decode(z, labels).float(), out, k)
