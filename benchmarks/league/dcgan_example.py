"""League runner: PyTorch's DCGAN example loop (benchmarks/reference_impl.py) on the Fashion-MNIST folder.

As the example ships: 64 px, 3 channels (the folder's grey images as ImageFolder gives them, RGB),
batch 64, Adam 2e-4 (0.5, 0.999), its DataLoader with 2 workers; samples are drawn with the
generator as it trains (the example never calls ``eval()``), brought back to 28 px grey.
"""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # reference_impl.py
from common import Clock, arguments, finish, load_folder, save_samples, snapshot, snapshots, to_judge  # noqa: E402
from reference_impl import DCGANGenerator, DCGANReference  # noqa: E402

BATCH = 64


def main() -> None:
    args = arguments(__doc__)
    torch.manual_seed(args.seed)
    if args.sample:
        for snap in snapshots(args.out):
            net = DCGANGenerator()
            net.load_state_dict(torch.load(args.out / f"snap-{snap['index']:02d}.pt")["netG"])
            g = torch.Generator().manual_seed(args.seed)
            with torch.no_grad():
                out = [to_judge(net(torch.randn(min(BATCH, args.sample - i), 100, 1, 1, generator=g)))
                       for i in range(0, args.sample, BATCH)]
            save_samples(args.out, snap["index"], np.concatenate(out))
        return
    clock = Clock(args.minutes, args.snapshots)
    images, _ = load_folder(args.data, 28, 3)
    ref = DCGANReference(images, BATCH, torch.device("cpu"), workers=2)
    step = 0
    while not clock.over():
        ref.step()
        step += 1
        if clock.due():
            snapshot(args.out, clock, step, step * BATCH, {"netG": ref.netG.state_dict()})
    if clock.due():
        snapshot(args.out, clock, step, step * BATCH, {"netG": ref.netG.state_dict()})
    ref.close()
    finish(args.out, {"peer": "PyTorch DCGAN example (benchmarks/reference_impl.py)", "version": "examples/dcgan",
                      "settings": "64 px RGB, batch 64, Adam 2e-4 betas (0.5, 0.999), nz 100, ngf = ndf = 64, "
                                  "2 loader workers", "steps": step, "batch": BATCH})


if __name__ == "__main__":
    main()
