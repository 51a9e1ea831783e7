"""Train-step and sampling throughput of each model at its reference configuration.

    python benchmarks/bench_train.py [--device cuda] [--steps 20] [--models dcgan,vae]

For each configuration it reports seconds per training step, images per second and peak memory
on the device, in fp32 and (on CUDA) in bf16 and with torch.compile, plus sampling throughput.
Batches are drawn by the engine's BatchStream from the built-in data kept on the device, so the
figures include the data path the engine really uses. Models that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from gencli.data.base import BatchStream, DataRequest
from gencli.data.resolve import load_dataset
from gencli.models import hparams
from gencli.plugins import registry
from gencli.training.engine import DEFAULT_DATA, compile_networks

# name, model, image size, channels, batch size, hyperparameter overrides
REFERENCE = [
    ("dcgan-64", "dcgan", 64, 3, 64, {}),
    ("cyclegan-128", "cyclegan", 128, 3, 1, {}),
    ("cyclegan-256", "cyclegan", 256, 3, 1, {}),
    ("pix2pix-256", "pix2pix", 256, 3, 1, {}),
    ("vae-28", "vae", 28, 1, 128, {}),
    ("ddpm-32", "ddpm", 32, 3, 16, {}),
]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(model_name, size, channels, batch, overrides, device, precision, compile_, steps, warmup):
    spec = registry().model(model_name)
    cls = spec.load()
    hp = hparams.build(cls.Hyperparameters, overrides)
    request = DataRequest(size, channels, load_size=cls.load_size(hp, size), options={"size": max(4 * batch, 64)})
    data = load_dataset(DEFAULT_DATA[cls.data], request)
    torch.manual_seed(0)
    model = cls(hp, (channels, size, size), data.classes if cls.conditional else None, device=device, precision=precision)
    if device.type == "cuda":
        for net in model.nets.values():
            net.to(memory_format=torch.channels_last)
    if compile_:
        compile_networks(model)
    stream = BatchStream(data, batch, device, crop_size=size if request.load_size else None, flip=cls.augment_flip)
    batches = iter(())
    epoch = 0

    def next_batch():
        nonlocal batches, epoch
        for b in batches:
            return b
        epoch += 1
        batches = iter(stream.epoch(epoch))
        return next(batches)

    model.train()
    for _ in range(warmup):
        model.train_step(next_batch())
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    for _ in range(steps):
        losses = model.train_step(next_batch())
    for v in losses.values():  # one sync at the end, as the engine does at log time
        float(v)
    sync(device)
    per_step = (time.perf_counter() - t) / steps
    sample_rate = float("nan")
    if model.can("sample"):
        model.eval()
        with torch.no_grad():
            model.sample(min(batch, 16))
            sync(device)
            t = time.perf_counter()
            n = max(batch, 16)
            model.sample(n)
            sync(device)
            sample_rate = n / (time.perf_counter() - t)
    return per_step, batch / per_step, peak_memory_mb(device), sample_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated configuration names or model names")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    wanted = set(filter(None, args.models.split(",")))
    modes = [("fp32", False)] + ([("bf16", False), ("bf16", True)] if device.type == "cuda" else [])
    print(f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'config':<14} {'mode':<13} {'s/step':>9} {'img/s':>9} {'peak MB':>9} {'sample img/s':>13}")
    for name, model_name, size, channels, batch, overrides in REFERENCE:
        if wanted and name not in wanted and model_name not in wanted:
            continue
        if model_name not in registry().models:
            print(f"{name:<14} skipped: model {model_name!r} is not installed")
            continue
        for precision, compile_ in modes:
            mode = precision + (" compile" if compile_ else "")
            per_step, rate, mem, sample_rate = bench(model_name, size, channels, batch, overrides, device,
                                                     precision, compile_, args.steps, args.warmup)
            print(f"{name:<14} {mode:<13} {per_step:>9.4f} {rate:>9.1f} {mem:>9.0f} {sample_rate:>13.1f}")


if __name__ == "__main__":
    main()
