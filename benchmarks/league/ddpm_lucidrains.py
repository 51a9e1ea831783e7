"""League runner: denoising-diffusion-pytorch on the Fashion-MNIST folder.

Unconditional, as its README trains on a folder: ``Unet(dim=64, dim_mults=(1, 2, 4, 8))``,
``GaussianDiffusion(image_size=32, timesteps=1000, sampling_timesteps=250)`` and its ``Trainer``
(batch 32, lr 8e-5, gradient accumulation 2, EMA 0.995, its periodic sample grids), FID off
(it would fetch Inception weights), grey (``convert_image_to="L"``), 32 px: the nearest size its
three downsamplings take. The Trainer is run one step at a time so that the clock is checked.

``--conditional``: its classifier-free-guidance module as its README shows it (``Unet`` with
``num_classes``, ``cond_drop_prob=0.5``; ``GaussianDiffusion`` with the same schedule), trained by
a plain loop with the Trainer's settings (Adam 8e-5, batch 32); samples with ``cond_scale=6``.
"""

import numpy as np
import torch
from common import Clock, arguments, finish, load_folder, save_samples, snapshot, snapshots, to_judge

SIZE, BATCH, SAMPLING = 32, 32, 250


def build(conditional: bool, sampling: int = SAMPLING):
    if conditional:
        from denoising_diffusion_pytorch.classifier_free_guidance import GaussianDiffusion, Unet

        unet = Unet(dim=64, dim_mults=(1, 2, 4, 8), num_classes=10, cond_drop_prob=0.5, channels=1)
    else:
        from denoising_diffusion_pytorch import GaussianDiffusion, Unet

        unet = Unet(dim=64, dim_mults=(1, 2, 4, 8), channels=1, flash_attn=False)
    return GaussianDiffusion(unet, image_size=SIZE, timesteps=1000, sampling_timesteps=sampling)


def sample(args) -> None:
    for snap in snapshots(args.out):
        diffusion = build(args.conditional, args.sampling_steps or SAMPLING)
        diffusion.load_state_dict(torch.load(args.out / f"snap-{snap['index']:02d}.pt"))
        diffusion.eval()
        torch.manual_seed(args.seed)
        images, labels = [], np.arange(args.sample) % 10
        with torch.no_grad():
            for i in range(0, args.sample, 250):
                b = min(250, args.sample - i)
                if args.conditional:
                    x = diffusion.sample(classes=torch.from_numpy(labels[i:i + b]).long(), cond_scale=6.0)
                else:
                    x = diffusion.sample(batch_size=b)
                images.append(to_judge(x, low=0.0))
        save_samples(args.out, snap["index"], np.concatenate(images), labels if args.conditional else None)


def main() -> None:
    from importlib.metadata import version

    import denoising_diffusion_pytorch as ddp  # noqa: F401

    args = arguments(__doc__)
    torch.manual_seed(args.seed)
    if args.sample:
        sample(args)
        return
    clock = Clock(args.minutes, args.snapshots)
    diffusion = build(args.conditional)
    step = 0
    if args.conditional:
        images, labels = load_folder(args.data, SIZE, 1)
        opt = torch.optim.Adam(diffusion.parameters(), 8e-5)
        g = torch.Generator().manual_seed(args.seed)
        while not clock.over():
            idx = torch.randint(0, len(images), (BATCH,), generator=g)
            loss = diffusion(images[idx].float().div(255), classes=labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if clock.due():
                snapshot(args.out, clock, step, step * BATCH, diffusion.state_dict())
        settings = ("classifier-free guidance Unet(dim=64, dim_mults=(1, 2, 4, 8), num_classes=10, "
                    "cond_drop_prob=0.5), 1000 steps, 250 DDIM sampling steps, cond_scale 6, Adam 8e-5, batch 32, "
                    "32 px grey")
    else:
        from denoising_diffusion_pytorch import Trainer

        trainer = Trainer(diffusion, str(args.data), train_batch_size=BATCH, train_lr=8e-5, train_num_steps=10,
                          gradient_accumulate_every=2, ema_decay=0.995, amp=False, calculate_fid=False,
                          convert_image_to="L", results_folder=str(args.out / "results"))
        while not clock.over():
            trainer.train_num_steps = trainer.step + 1
            trainer.train()
            step = trainer.step
            if clock.due():
                snapshot(args.out, clock, step, step * BATCH * 2, trainer.ema.ema_model.state_dict())
        settings = ("Unet(dim=64, dim_mults=(1, 2, 4, 8)), GaussianDiffusion 1000 steps, 250 DDIM sampling "
                    "steps, Trainer: batch 32 x 2 accumulated, lr 8e-5, EMA 0.995 (samples from the EMA), "
                    "32 px grey")
        diffusion = trainer.ema.ema_model
    if clock.due():
        snapshot(args.out, clock, step, step * BATCH, diffusion.state_dict())
    finish(args.out, {"peer": "denoising-diffusion-pytorch", "version": version("denoising-diffusion-pytorch"),
                      "settings": settings, "steps": step, "batch": BATCH * (1 if args.conditional else 2)})


if __name__ == "__main__":
    main()
