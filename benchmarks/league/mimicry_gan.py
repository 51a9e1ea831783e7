"""League runner: torch-mimicry's SNGAN, WGAN-GP or SSGAN (``--model``), 32 px networks, its Trainer.

As its README trains CIFAR-10: the ``*32`` generator and discriminator, Adam 2e-4 with betas
(0.0, 0.9), batch 64, ``n_dis=5``, linear learning-rate decay over 100,000 steps; its networks
are 3-channel, so the grey images are repeated to RGB at 32 px and the samples brought back to
28 px grey. A scheduler wrapper checks the clock after every step and stops the Trainer.

torch-mimicry 0.1.16 (its last release) does not import on today's torch as it stands. Two
stand-ins, put in place before it is imported and changing none of its training code, let it run:

- ``torch._six``, which torch 2.0 removed: its ImageNet helper reads two names of it, ``PY3`` and
  ``string_classes``, which the stand-in gives as Python 3 has them;
- TensorFlow, which its Inception metrics and TensorBoard logger import: loaded next to this
  torch, it crashes the process (a segmentation fault in Triton's import). The league judges
  with its own judge, so the metrics package is left empty and TensorFlow is hidden, which puts
  TensorBoard on its own TensorFlow-free writer.
"""

import importlib
import sys
import types
from importlib.metadata import version

import numpy as np
import torch
from common import Clock, arguments, finish, save_samples, snapshot, snapshots, to_judge

BATCH = 64
NETS = {"sngan": ("sngan", "SNGAN"), "wgan-gp": ("wgan_gp", "WGANGP"), "ssgan": ("ssgan", "SSGAN")}


def import_mimicry():
    """torch-mimicry, with the two stand-ins the module docstring describes."""
    six = types.ModuleType("torch._six")
    six.PY3, six.string_classes = True, (str, bytes)
    sys.modules.setdefault("torch._six", six)
    torch._six = sys.modules["torch._six"]
    sys.modules["tensorflow"] = None  # import tensorflow -> ImportError: TensorBoard falls back to its stub
    sys.modules["torch_mimicry.metrics"] = types.ModuleType("torch_mimicry.metrics")
    return importlib.import_module("torch_mimicry")


def build(name: str):
    module, prefix = NETS[name]
    nets = importlib.import_module(f"torch_mimicry.nets.{module}")
    return getattr(nets, f"{prefix}Generator32")(), getattr(nets, f"{prefix}Discriminator32")()


class OverBudget(Exception):
    pass


def main() -> None:
    args = arguments(__doc__)
    torch.manual_seed(args.seed)
    if args.sample:
        import_mimicry()
        for snap in snapshots(args.out):
            netG, _ = build(args.model)
            netG.load_state_dict(torch.load(args.out / f"snap-{snap['index']:02d}.pt"))
            netG.eval()
            torch.manual_seed(args.seed)
            with torch.no_grad():
                out = [to_judge(netG.generate_images(min(250, args.sample - i), device="cpu"))
                       for i in range(0, args.sample, 250)]
            save_samples(args.out, snap["index"], np.concatenate(out))
        return
    mmc = import_mimicry()
    from torchvision import datasets, transforms

    clock = Clock(args.minutes, args.snapshots)
    dataset = datasets.ImageFolder(str(args.data), transforms.Compose([
        transforms.Grayscale(3), transforms.Resize(32), transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2)
    netG, netD = build(args.model)
    optD = torch.optim.Adam(netD.parameters(), 2e-4, betas=(0.0, 0.9))
    optG = torch.optim.Adam(netG.parameters(), 2e-4, betas=(0.0, 0.9))
    trainer = mmc.training.Trainer(netD=netD, netG=netG, optD=optD, optG=optG, n_dis=5, num_steps=100_000,
                                   lr_decay="linear", dataloader=loader, log_dir=str(args.out / "log"),
                                   device=torch.device("cpu"), print_steps=100)
    step_of = trainer.scheduler.step
    count = {"steps": 0}

    def step(log_data, global_step):
        out = step_of(log_data=log_data, global_step=global_step)
        count["steps"] = global_step
        if clock.due():
            snapshot(args.out, clock, global_step, global_step * BATCH * 5, netG.state_dict())
        if clock.over():
            raise OverBudget
        return out

    trainer.scheduler.step = step
    try:
        trainer.train()
    except OverBudget:
        pass
    if clock.due():
        snapshot(args.out, clock, count["steps"], count["steps"] * BATCH * 5, netG.state_dict())
    finish(args.out, {"peer": f"torch-mimicry {args.model}", "version": version("torch-mimicry"),
                      "settings": f"{NETS[args.model][1]}Generator32/Discriminator32, Adam 2e-4 betas (0.0, 0.9), "
                                  "batch 64, n_dis 5, linear decay over 100k steps, 32 px RGB (grey repeated), "
                                  "2 loader workers; stand-ins for torch._six and TensorFlow (see the runner)",
                      "steps": count["steps"], "batch": BATCH * 5})


if __name__ == "__main__":
    main()
