"""League runner: lightweight-gan on the Fashion-MNIST folder.

lightweight-gan is a command over a folder (``lightweight_gan --data FOLDER``); its package
refuses to import without an NVIDIA GPU (an ``assert torch.cuda.is_available()`` at import), as
does stylegan2-pytorch's. On a CPU machine this runner stops with that message, which the league
reports; with a GPU it trains through the package's ``Trainer`` (image size 32, its defaults
otherwise), snapshotting the EMA generator at the league's minutes.
"""

import sys

import numpy as np
import torch
from common import Clock, arguments, finish, save_samples, snapshot, snapshots, to_judge

SIZE, BATCH = 32, 10  # its --image-size nearest 28 that it takes; its default --batch-size


def main() -> None:
    args = arguments(__doc__)
    try:
        from lightweight_gan import Trainer
    except AssertionError as exc:
        print(f"error: lightweight-gan does not run here: {exc}", file=sys.stderr)
        sys.exit(1)
    from importlib.metadata import version

    torch.manual_seed(args.seed)
    trainer = Trainer(name="league", results_dir=str(args.out / "results"), models_dir=str(args.out / "models"),
                      image_size=SIZE, batch_size=BATCH, transparent=False, greyscale=True)
    if args.sample:
        for snap in snapshots(args.out):
            trainer.init_GAN()
            trainer.GAN.GE.load_state_dict(torch.load(args.out / f"snap-{snap['index']:02d}.pt"))
            with torch.no_grad():
                out = [to_judge(trainer.GAN.GE(torch.randn(min(100, args.sample - i), trainer.GAN.latent_dim)), 0.0)
                       for i in range(0, args.sample, 100)]
            save_samples(args.out, snap["index"], np.concatenate(out))
        return
    clock = Clock(args.minutes, args.snapshots)
    trainer.set_data_src(str(args.data))
    while not clock.over():
        trainer.train()
        if clock.due():
            snapshot(args.out, clock, trainer.steps, trainer.steps * BATCH, trainer.GAN.GE.state_dict())
    if clock.due():
        snapshot(args.out, clock, trainer.steps, trainer.steps * BATCH, trainer.GAN.GE.state_dict())
    finish(args.out, {"peer": "lightweight-gan", "version": version("lightweight-gan"),
                      "settings": "image size 32, batch 10, its defaults otherwise", "steps": trainer.steps,
                      "batch": BATCH})


if __name__ == "__main__":
    main()
