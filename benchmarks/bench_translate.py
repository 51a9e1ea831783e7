"""`gencli translate` against the reference project's test-script approach, on the same folder.

    python benchmarks/bench_translate.py [--models cyclegan,pix2pix] [--images 48] [--size 128] [--rounds 3]
                                         [--write benchmarks/RESULTS.md]

For each model a run is trained for one step (the work of a forward pass does not depend on the
weights) and a folder of ``--images`` PNGs of ``--size`` px is written. Two ways to translate it:

- gencli: ``translate_paths``, what `gencli translate RUN FOLDER --to b` runs: the model as
  ``Run.load_model`` prepares it for inference, batches of 16 or the model's CPU pixel budget
  (``cpu_batch_pixels``), images decoded and written as they go;
- per image: the approach of the CycleGAN/pix2pix project's ``test.py``: for each file, open it
  with PIL, resize and normalise it with torchvision's transforms, run the generator on a batch
  of one under ``torch.no_grad`` (NCHW, eager), turn it back into an image and save it.

Both use the same generator weights and the same thread count, in one process, in rotated
order per round (median images/s). The whole commands are timed too, each as a fresh process
(`gencli translate` against a script of the per-image loop), start-up and model loading included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from results import machine, publish, section_head  # benchmarks/results.py, beside this script

# The per-image loop as a script of its own: a fresh process, as a user runs test.py.
PER_IMAGE_SCRIPT = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from pathlib import Path
from bench_translate import generator, per_image

per_image(generator(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
"""


def generator(run):
    """The run's A->B translation as the test script holds it: NCHW, eager."""
    from gencli.runs import load_trained

    model = load_trained(run)
    for net in model.nets.values():
        net.to(memory_format=torch.contiguous_format)
    return lambda x: model.translate(x, "a2b")


def make_run(work: Path, model: str, size: int) -> Path:
    from gencli.training.engine import TrainConfig, train

    return train(TrainConfig(model=model, steps=1, image_size=size, batch_size=1, device="cpu", quiet=True,
                             out=work / model, sample_every=1000, checkpoint_every=1))


def make_folder(folder: Path, n: int, size: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):  # smooth random pictures: upsampled noise, so PNG compression is realistic
        small = torch.rand(3, 8, 8, generator=g)
        image = torch.nn.functional.interpolate(small[None], size=(size, size), mode="bicubic", align_corners=False)[0]
        array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(array).save(folder / f"{i:04d}.png")


def per_image(G, folder: Path, out: Path, size: int) -> None:
    """The test-script loop: one file at a time, PIL and torchvision transforms, batch of one."""
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize([size, size], transforms.InterpolationMode.BICUBIC),
                             transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])
    out.mkdir(parents=True)
    for path in sorted(folder.glob("*.png")):
        x = tf(Image.open(path).convert("RGB")).unsqueeze(0)
        with torch.no_grad():
            y = G(x)
        array = ((y[0].permute(1, 2, 0).numpy() + 1) / 2 * 255).clip(0, 255).astype("uint8")
        Image.fromarray(array).save(out / path.name)


def in_process(run: Path, folder: Path, work: Path, n: int, size: int, rounds: int) -> tuple[dict[str, float], int]:
    from gencli.cli.translate import translate_paths
    from gencli.runs import load_trained

    model = load_trained(run)
    G = generator(run)
    sides = {
        "gencli": lambda out: translate_paths(model, [folder], "a2b", out, show_progress=False),
        "per image": lambda out: per_image(G, folder, out, size),
    }
    for name, go in sides.items():  # warm-up
        go(work / f"warm-{run.name}-{name.replace(' ', '-')}")
    rates: dict[str, list[float]] = {k: [] for k in sides}
    names = list(sides)
    for r in range(rounds):
        for name in names[r % 2:] + names[: r % 2]:
            t = time.perf_counter()
            sides[name](work / f"out-{run.name}-{r}-{name.replace(' ', '-')}")
            rates[name].append(n / (time.perf_counter() - t))
        print(f"{run.name} in process, round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} images/s" for k, v in rates.items()), flush=True)
    return {k: statistics.median(v) for k, v in rates.items()}, model.inference_batch(16, size, size)


def whole_commands(run: Path, folder: Path, work: Path, size: int, rounds: int) -> dict[str, float]:
    script = work / "per_image.py"
    script.write_text(PER_IMAGE_SCRIPT)
    commands = {
        "gencli": lambda out: [sys.executable, "-m", "gencli", "-q", "translate", str(run), str(folder), "--to", "b",
                               "--out", str(out), "--device", "cpu"],
        "per image": lambda out: [sys.executable, str(script), str(run), str(folder), str(out), str(size)],
    }
    walls: dict[str, list[float]] = {k: [] for k in commands}
    names = list(commands)
    for r in range(rounds):
        for name in names[r % 2:] + names[: r % 2]:
            t = time.perf_counter()
            subprocess.run(commands[name](work / f"cmd-{run.name}-{r}-{name.replace(' ', '-')}"), check=True,
                           stdout=subprocess.DEVNULL)
            walls[name].append(time.perf_counter() - t)
        print(f"{run.name} whole command, round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in walls.items()), flush=True)
    return {k: statistics.median(v) for k, v in walls.items()}


def report(rows: list[dict], n: int, size: int, rounds: int, argv: list[str], info: dict) -> str:
    lines = [
        *section_head("Translation against the per-image test script", "bench_translate.py", argv, info),
        f"A folder of {n} PNGs at {size} px translated by each model's generator (its default networks at {size} px), "
        "same weights and threads on both sides. gencli: what `gencli translate RUN FOLDER --to b` runs (the model "
        "prepared for inference, in batches of the size in brackets: 16, or fewer within the model's CPU pixel "
        "budget). Per image: the CycleGAN/pix2pix project's test-script approach (PIL and torchvision transforms "
        f"per file, a batch of one, NCHW eager, save). Median of {rounds} rounds in rotated order. The ratios are "
        "speed-ups: above 1 gencli is faster.",
        "",
        "| model | gencli images/s (batch) | per image images/s | speed-up | gencli command (s) | per-image script (s) | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rates, walls = r["rates"], r["walls"]
        lines.append(f"| {r['model']} | {rates['gencli']:.1f} ({r['batch']}) | {rates['per image']:.1f} | "
                     f"**{rates['gencli'] / rates['per image']:.2f}x** | {walls['gencli']:.2f} | {walls['per image']:.2f} | "
                     f"**{walls['per image'] / walls['gencli']:.2f}x** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cyclegan,pix2pix")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gencli-bench-translate-") as tmp:
        work = Path(tmp)
        folder = work / "inputs"
        make_folder(folder, args.images, args.size)
        for model in args.models.split(","):
            run = make_run(work, model, args.size)
            rates, batch = in_process(run, folder, work, args.images, args.size, args.rounds)
            walls = whole_commands(run, folder, work, args.size, args.rounds)
            rows.append({"model": model, "rates": rates, "walls": walls, "batch": batch})
    argv = [f"--models {args.models}", f"--images {args.images}", f"--size {args.size}", f"--rounds {args.rounds}"]
    publish(report(rows, args.images, args.size, args.rounds, argv, machine("cpu")), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
