"""FID of N generated images: `gencli eval` vs PNG files + pytorch-fid's command line.

Trains a small VAE on the built-in shapes (not timed), then measures in one run, on one machine:
- gencli: `gencli eval RUN --metrics fid --n N`, images going straight from the model to the
  Inception in batches; cold (real features computed) and warm (real features from gencli's
  cache, as on every later evaluation of a dataset);
- the PNG route: `gencli sample RUN --n N --no-grid` writes N PNG files, then
  `python -m pytorch_fid GENERATED REAL` reads them back; cold (REAL is the folder of the same
  real images as PNGs) and warm (REAL is the statistics file pytorch-fid's `--save-stats` wrote
  beforehand, not timed).
Every command runs in a fresh process, so each side pays its own start-up and model loading.
Rounds alternate the two sides and medians are reported, with wall and CPU time: on a shared
machine the wall time of one command depends on what else runs at that moment. Both
sides use the same FID Inception weights file: pytorch-fid's real one when torch's cache holds
it, otherwise random weights of the same architecture (the work, and so the time, is identical).

    python benchmarks/bench_eval.py                     # N = 500 generated images, CPU
    python benchmarks/bench_eval.py --n 2000 --device cuda --write benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import publish  # benchmarks/results.py, beside this script


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, CPU seconds of it and its children, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def inception_weights(dest: Path) -> str:
    """Put FID Inception weights at ``dest``; return "pytorch-fid's" or "random" for the report."""
    import torch

    from gencli.metrics.inception import cached_weights_path, fid_inception_architecture, randomise

    dest.parent.mkdir(parents=True, exist_ok=True)
    real = cached_weights_path()
    if real.is_file():
        shutil.copy(real, dest)
        return "pytorch-fid's"
    torch.save(randomise(fid_inception_architecture()).state_dict(), dest)
    return "random (same architecture)"


def run(n: int, size: int, device: str, batch_size: int, train_steps: int, repeats: int) -> dict:
    import torch

    from gencli.metrics.inception import WEIGHTS_FILE

    work = Path(tempfile.mkdtemp(prefix="gencli-bench-eval-"))
    # The user's caches stay untouched: data, runs and torch's weights all live in the temp folder.
    env = {**os.environ, "GENCLI_DATA_DIR": str(work / "data"), "GENCLI_RUNS_DIR": str(work / "runs"),
           "TORCH_HOME": str(work / "torch")}
    env.pop("GENCLI_FID_WEIGHTS", None)
    weights = work / "torch" / "hub" / "checkpoints" / WEIGHTS_FILE
    gencli, pyfid = [sys.executable, "-m", "gencli", "--quiet"], [sys.executable, "-m", "pytorch_fid"]
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                  ("ours_cold", "ours_warm", "sample", "pyfid_cold", "pyfid_warm")}
    try:
        kind = inception_weights(weights)
        run_dir = work / "run"
        timed([*gencli, "train", "vae", "--data", "shapes", "--steps", str(train_steps), "--image-size", str(size),
               "--channels", "3", "--batch-size", "32", "--out", str(run_dir), "--device", device], env)
        real_dir = write_real_pngs(run_dir, n, work / "real")
        stats = work / "real.npz"
        timed([*pyfid, "--save-stats", str(real_dir), str(stats), "--device", device, "--batch-size", str(batch_size)], env)

        evaluate = [*gencli, "eval", str(run_dir), "--metrics", "fid", "--n", str(n), "--batch-size", str(batch_size),
                    "--device", device, "--json"]
        sample = [*gencli, "sample", str(run_dir), "--n", str(n), "--no-grid", "--device", device]
        fid_args = ["--device", device, "--batch-size", str(batch_size)]
        # Rounds alternate the two sides, so a busy spell on the machine hits both alike.
        for r in range(repeats):
            shutil.rmtree(work / "data" / "fid-stats", ignore_errors=True)
            wall, cpu, out = timed(evaluate, env)
            times["ours_cold"].append((wall, cpu))
            fid_ours = json.loads(out)["eval"]["fid"]
            times["ours_warm"].append(timed(evaluate, env)[:2])
            generated = work / f"gen-{r}"
            times["sample"].append(timed([*sample, "--out", str(generated)], env)[:2])
            wall, cpu, out = timed([*pyfid, str(generated), str(real_dir), *fid_args], env)
            times["pyfid_cold"].append((wall, cpu))
            fid_theirs = float(out.strip().split()[-1])
            times["pyfid_warm"].append(timed([*pyfid, str(generated), str(stats), *fid_args], env)[:2])
            shutil.rmtree(generated)
        n_real = len(list(real_dir.glob("*.png")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in times.items()}
    return {
        "n": n, "n_real": n_real, "size": size, "device": device, "batch_size": batch_size, "weights": kind,
        "repeats": repeats, "median": med, "fid_ours": fid_ours, "fid_theirs": fid_theirs,
        "cpus": os.cpu_count(), "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "python": platform.python_version(), "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else None,
        "machine": f"{platform.system()} {platform.machine()}",
    }


def write_real_pngs(run_dir: Path, n: int, folder: Path) -> Path:
    """Write, as PNG files, the very real images `gencli eval` compares with (test split, at most n)."""
    from gencli.data.base import ImageData, to_float
    from gencli.data.resolve import load_dataset
    from gencli.media.images import save_images
    from gencli.metrics.context import EvalContext
    from gencli.runs import Run

    run = Run.open_dir(run_dir)
    data = load_dataset(run.data_spec, run.data_request("test"))
    images, _ = EvalContext(model=None, data=ImageData(data.name, "images", data.images), n=n).real_images()
    save_images(to_float(images), folder, prefix="real")
    return folder


def report(r: dict) -> str:
    where = f"{r['gpu']}" if r["gpu"] else f"CPU ({r['cpus']} cores)"
    m = r["median"]
    rows = []
    for label, ours, theirs in (("cold: real features computed", "ours_cold", "pyfid_cold"),
                                ("warm: real statistics cached", "ours_warm", "pyfid_warm")):
        route = (m["sample"][0] + m[theirs][0], m["sample"][1] + m[theirs][1])
        rows.append(f"| {label} | {m[ours][0]:.1f} ({m[ours][1]:.0f}) | {m['sample'][0]:.1f} ({m['sample'][1]:.0f}) | "
                    f"{m[theirs][0]:.1f} ({m[theirs][1]:.0f}) | {route[0]:.1f} ({route[1]:.0f}) | "
                    f"**{route[0] / m[ours][0]:.2f}x** | {route[1] / m[ours][1]:.2f}x |")
    return "\n".join([
        "## Evaluation",
        "",
        f"`python benchmarks/bench_eval.py --n {r['n']} --size {r['size']} --device {r['device']} "
        f"--batch-size {r['batch_size']} --repeats {r['repeats']}`",
        "",
        f"FID of {r['n']:,} images generated by a small VAE ({r['size']} px shapes) against {r['n_real']:,} real "
        f"test images; {r['machine']}, {where}, Python {r['python']}, torch {r['torch']}; Inception weights: "
        f"{r['weights']}; every command a fresh process; medians of {r['repeats']} rounds that alternate the two "
        f"sides; load average {r['load']:.1f} at the end of the run.",
        "",
        "Seconds of wall time (CPU seconds in brackets, the command and its worker processes):",
        "",
        "| | `gencli eval` | `gencli sample` to PNG | `python -m pytorch_fid` | PNG route | ratio (wall) | ratio (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Ratio = PNG route / `gencli eval`, measured in this run. FID: gencli {r['fid_ours']:.6g}, pytorch-fid "
        f"{r['fid_theirs']:.6g} (relative difference {abs(r['fid_ours'] - r['fid_theirs']) / r['fid_theirs']:.1e}; "
        "the two sides draw their latents in different batch sizes, so their images can differ slightly; "
        "tests/metrics checks equality on identical images).",
        "",
        "Both sides spend most of their time in Inception passes at 299 px. gencli's run the same network with its "
        "batch norms folded into the convolutions, channels-last activations and even passes of at most 16 images under "
        "`torch.inference_mode` (`benchmarks/bench_inception.py` times each change); beyond that, pytorch-fid pays "
        "for scipy's `sqrtm` of the 2048x2048 covariance product (gencli takes the trace of the square root from "
        "symmetric eigendecompositions) and the PNG round trip.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="generated images")
    parser.add_argument("--size", type=int, default=32, help="image size of the trained model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=50, help="pytorch-fid's default")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of both sides, alternating; medians reported")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    result = run(args.n, args.size, args.device, args.batch_size, args.train_steps, args.repeats)
    section = report(result)
    publish(section, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
