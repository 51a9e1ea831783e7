"""The Fashion-MNIST league: each of gencli's default models against the best-known installable
implementation that does the same job, on the same data, judged by the same judge.

Pairs (``--only FAMILY`` picks one family):
- diffusion: denoising-diffusion-pytorch (Unet, GaussianDiffusion, its Trainer on the PNG folder;
  its classifier-free-guidance Unet for labels) against gencli's ``ddpm``;
- vae: pythae's VAE (convolutional MNIST encoder/decoder, its training pipeline) against ``vae``;
  gencli's ``cvae`` has no conditional peer there and is judged alone;
- gan: PyTorch's DCGAN example loop (benchmarks/reference_impl.py) against ``dcgan``, and
  torch-mimicry's SNGAN, WGAN-GP and SSGAN against ``dcgan``, ``wgan-gp`` and ``ssgan``; ``cgan``
  is judged alone (per-class accuracy);
- stylegan: lightweight-gan against ``stylegan``.

Every side is a subprocess with the same wall-clock budget (``--minutes``), counted from its
start: peers run their runner (benchmarks/league/) in their own environment
(benchmarks/.venv-league, ``benchmarks/league-requirements.txt``), gencli runs ``gencli train``
with frequent checkpoints, stopped by Ctrl-C (SIGINT) at the budget; at each snapshot minute the
newest checkpoint is kept and the others deleted. After training each snapshot draws ``--n``
images (fixed seed; classes in turn for conditional models), brought to 28 px grey, and the judge
(benchmarks/fashion_judge.py, trained on first use) scores them: FD against the 10,000 test images,
and for conditional models the share of images of class k read as k. With ``GENCLI_FID_WEIGHTS``
set, each side's last samples also get an Inception FID.

    python benchmarks/bench_league.py --work bench-league --minutes 30 --write benchmarks/RESULTS.md
    python benchmarks/bench_league.py --work bench-league --only gan --minutes 30
    python benchmarks/bench_league.py --work bench-league --quick --only vae   # about 1 minute a side

Run it on an idle machine: the minutes are wall-clock minutes, and another job's load moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import fashion_judge as judge_mod  # benchmarks/, beside this script
import torch
from results import machine, publish, section_head

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_PYTHON = HERE / ".venv-league" / "bin" / "python"
FIGURES = HERE / "figures" / "league"
TITLE = "Fashion-MNIST league: gencli against other implementations"
LINES = (20, 10, 5, 3, 2)  # FD lines, as multiples of the real-data floor


@dataclass
class Side:
    name: str
    runner: str = ""  # a peer: benchmarks/league/RUNNER
    runner_args: list[str] = field(default_factory=list)
    model: str = ""  # gencli: the model name
    checkpoint_every: int = 100
    conditional: bool = False
    sets: list[str] = field(default_factory=list)
    image_size: int = 28  # gencli: the size it trains at (brought back to 28 px for the judge)


@dataclass
class Pair:
    family: str
    name: str
    peer: Side | None
    ours: Side
    note: str = ""


PAIRS = [
    Pair("diffusion", "ddpm", Side("denoising-diffusion-pytorch", "ddpm_lucidrains.py"),
         Side("gencli ddpm", model="ddpm", checkpoint_every=25)),
    Pair("diffusion", "ddpm-conditional",
         Side("denoising-diffusion-pytorch (classifier-free guidance)", "ddpm_lucidrains.py", ["--conditional"],
              conditional=True),
         Side("gencli ddpm --label", model="ddpm", checkpoint_every=25, conditional=True)),
    Pair("vae", "vae", Side("pythae VAE", "pythae_vae.py"), Side("gencli vae", model="vae")),
    Pair("vae", "cvae", None, Side("gencli cvae", model="cvae", conditional=True),
         note="pythae has no class-conditional VAE; gencli's cvae is judged alone."),
    Pair("gan", "dcgan", Side("PyTorch DCGAN example", "dcgan_example.py"), Side("gencli dcgan", model="dcgan")),
    Pair("gan", "sngan", Side("torch-mimicry SNGAN", "mimicry_gan.py", ["--model", "sngan"]),
         Side("gencli dcgan", model="dcgan")),
    Pair("gan", "wgan-gp", Side("torch-mimicry WGAN-GP", "mimicry_gan.py", ["--model", "wgan-gp"]),
         Side("gencli wgan-gp", model="wgan-gp", checkpoint_every=50)),
    Pair("gan", "ssgan", Side("torch-mimicry SSGAN", "mimicry_gan.py", ["--model", "ssgan"]),
         Side("gencli ssgan", model="ssgan", checkpoint_every=50)),
    Pair("gan", "cgan", None, Side("gencli cgan", model="cgan", conditional=True),
         note="torch-mimicry's conditional GANs need its own label pipeline; gencli's cgan is judged alone."),
    Pair("stylegan", "stylegan", Side("lightweight-gan", "lightweight_gan_runner.py"),
         Side("gencli stylegan", model="stylegan", checkpoint_every=25, image_size=32)),
]


def side_key(side: Side) -> str:
    """Sides with the same key are the same run (gencli's dcgan faces two peers)."""
    return f"peer:{side.runner}:{side.runner_args}" if side.runner else \
        f"gencli:{side.model}:{side.conditional}:{side.sets}"


# ======================================================================================== data
def write_png_folders(root: Path, data: Path) -> int:
    """The training split as class folders of PNG files (``root/0`` ... ``root/9``), and as arrays in
    ``root.npz`` beside them (for the peers whose API takes arrays), once."""
    import numpy as np
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return int(done.read_text())
    images, labels = judge_mod.load_fashion(data, "train")
    root.mkdir(parents=True, exist_ok=True)
    np.savez(root.parent / f"{root.name}.npz", images=images[:, 0].numpy(), labels=labels.numpy())
    for k in range(10):
        (root / str(k)).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(images[:, 0].numpy(), labels.tolist(), strict=True)):
        Image.fromarray(img, "L").save(root / str(label) / f"{i:05d}.png")
    done.write_text(str(len(images)))
    return len(images)


# ======================================================================================== curves
def crossing_minutes(curve: list[dict], line: float) -> float | None:
    """Minutes of the first snapshot whose FD is at or below ``line`` (None: never reached)."""
    for point in sorted(curve, key=lambda p: p["minutes"]):
        if point.get("fd") is not None and point["fd"] <= line:
            return point["minutes"]
    return None


def fd_at(curve: list[dict], minutes: float, slack: float = 0.05) -> float | None:
    """FD of the last snapshot taken by ``minutes`` (a snapshot lands a step after its mark: ``slack``
    of the minutes, at least 6 seconds, is allowed); None when the run had no snapshot by then."""
    limit = minutes * (1 + slack) + 0.1
    taken = [p for p in curve if p["minutes"] <= limit and p.get("fd") is not None]
    return max(taken, key=lambda p: p["minutes"])["fd"] if taken else None


# ======================================================================================== running
def launch(cmd: list[str], log: Path, minutes: float, env: dict | None = None,
           on_poll=None, core: int | None = None) -> tuple[int, float, float]:
    """Run ``cmd`` for ``minutes`` of wall-clock time (then SIGINT, then kill); return (exit code,
    seconds, peak RSS of the process in MiB). ``on_poll(seconds)`` is called about once a second;
    ``core``: the process runs on that CPU core only."""
    started = time.perf_counter()
    pin = None if core is None else (lambda: os.sched_setaffinity(0, {core}))
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, preexec_fn=pin)
        interrupted = killed = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            seconds = time.perf_counter() - started
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if on_poll:
                on_poll(seconds)
            if interrupted is None and seconds > minutes * 60:
                proc.send_signal(signal.SIGINT)
                interrupted = seconds
            if interrupted is not None and killed is None and seconds > interrupted + 120:
                proc.kill()
                killed = seconds
            time.sleep(0.5)
    return proc.returncode, seconds, usage.ru_maxrss / 1024


def run_peer(side: Side, work: Path, png: Path, minutes: float, marks: str, n: int, seed: int,
             core: int | None = None, sampling_steps: int = 0) -> dict:
    out = work / "peers" / side.name.replace(" ", "_").replace("(", "").replace(")", "")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    script = str(HERE / "league" / side.runner)
    env = {**os.environ, "PYTHONPATH": str(HERE / "league"), "OMP_NUM_THREADS": "1" if core is not None else str(os.cpu_count() or 1)}
    cmd = [str(PEER_PYTHON), script, "--data", str(png), "--out", str(out), "--minutes", str(minutes),
           "--snapshots", marks, "--seed", str(seed), *side.runner_args]
    # the runner stops itself at the budget; the launcher's SIGINT is only a backstop
    code, seconds, rss = launch(cmd, out / "train.log", minutes + 5, env, core=core)
    result = {"name": side.name, "kind": "peer", "exit": code, "seconds": seconds, "peak_rss_mib": rss,
              "log": str(out / "train.log"), "conditional": side.conditional}
    if code != 0 or not (out / "snapshots.jsonl").exists():
        result["error"] = last_error(out / "train.log")
        return result
    info = json.loads((out / "runner.json").read_text())
    sample_code, _, _ = launch([str(PEER_PYTHON), script, "--out", str(out), "--sample", str(n), "--seed",
                                str(seed), "--sampling-steps", str(sampling_steps), *side.runner_args],
                               out / "sample.log", 600, env, core=core)
    if sample_code != 0:
        result["error"] = "sampling failed: " + last_error(out / "sample.log")
        return result
    snaps = [json.loads(line) for line in (out / "snapshots.jsonl").read_text().splitlines() if line.strip()]
    points = []
    for snap in snaps:
        import numpy as np

        data = np.load(out / f"samples-{snap['index']:02d}.npz")
        labels = torch.from_numpy(data["labels"]).long() if "labels" in data else None
        points.append({"minutes": snap["minutes"], "step": snap["step"],
                       "images": torch.from_numpy(data["images"]).unsqueeze(1), "labels": labels})
    result.update(version=info.get("version"), peer=info.get("peer"), settings=info.get("settings"),
                  steps=info.get("steps"), batch=info.get("batch"),
                  images_per_s=(info.get("steps") or 0) * (info.get("batch") or 0) / max(seconds, 1e-9),
                  points=points)
    return result


def last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1][:300]


def run_gencli(side: Side, work: Path, data: str, minutes: float, marks: list[float], n: int, seed: int,
               core: int | None = None) -> dict:
    from gencli.data.base import to_uint8
    from gencli.runs import Run

    out = work / "gencli" / side.name.replace(" ", "_").replace("--", "")
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    config = work / "gencli" / f"{side.model}.toml"
    config.write_text(f"checkpoint_every = {side.checkpoint_every}\nkeep_checkpoints = 100000\n")
    cmd = [sys.executable, "-m", "gencli", *(["--threads", "1"] if core is not None else []), "train", side.model, "--data", data, "--image-size", str(side.image_size),
           "--channels", "1", "--steps", "99999999", "--config", str(config), "--out", str(out), "--device", "cpu",
           "--seed", str(seed), *[a for s in side.sets for a in ("--set", s)]]
    kept: dict[str, float] = {}  # checkpoint name -> minutes
    started = time.time()
    pending = sorted(m * 60 for m in marks)

    def complete() -> list[Path]:
        root = out / "checkpoints"
        return sorted(p for p in root.glob("step-*") if (p / "meta.json").exists()) if root.is_dir() else []

    def poll(seconds: float) -> None:
        done = complete()
        while pending and seconds >= pending[0] and done:
            pending.pop(0)
            kept.setdefault(done[-1].name, (newest_mtime(done[-1]) - started) / 60)
        for p in done[:-1]:
            if p.name not in kept:
                shutil.rmtree(p, ignore_errors=True)

    code, seconds, rss = launch(cmd, out.parent / f"{out.name}.log", minutes, on_poll=poll, core=core)
    result = {"name": side.name, "kind": "gencli", "exit": code, "seconds": seconds, "peak_rss_mib": rss,
              "conditional": side.conditional, "log": str(out.parent / f"{out.name}.log")}
    done = complete()
    if not done:
        result["error"] = last_error(out.parent / f"{out.name}.log")
        return result
    kept.setdefault(done[-1].name, (newest_mtime(done[-1]) - started) / 60)
    run = Run.open(out)
    batch = run.info["training"]["batch_size"]
    points = []
    for name, at in sorted(kept.items()):
        model = Run.open(out / "checkpoints" / name).load_model()
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % 10 if side.conditional else None
        with torch.no_grad():
            images = torch.cat([to_uint8(to_28(model.sample(min(250, n - i), None if labels is None else labels[i:i + 250],
                                                            generator=g).cpu())) for i in range(0, n, 250)])
        points.append({"minutes": at, "step": int(name.split("-")[1]), "images": images, "labels": labels})
    steps = points[-1]["step"]
    result.update(version=f"gencli {run.info.get('gencli_version', '')}".strip(), steps=steps, batch=batch,
                  settings=f"the model's defaults (batch {batch}), {side.image_size} px grey"
                  + ("" if side.image_size == 28 else ", brought back to 28 px for the judge"),
                  images_per_s=steps * batch / max(seconds, 1e-9), points=points)
    return result


def to_28(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] at the judge's 28 px (area resampling from a larger size)."""
    if images.shape[-1] == 28:
        return images
    return torch.nn.functional.interpolate(images.float(), size=(28, 28), mode="area")


def tag_slug(tag: str) -> str:
    """``--tag``'s folder name: '30 minutes' -> '30-minutes'."""
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-") or "tagged"


def newest_mtime(folder: Path) -> float:
    return max((p.stat().st_mtime for p in folder.iterdir()), default=folder.stat().st_mtime)


# ======================================================================================== judging
def judge_points(result: dict, judge: dict, real_features: torch.Tensor, real_images: torch.Tensor) -> None:
    """FD of every snapshot's images against the test images; per-class accuracy where labelled."""
    classifier = None
    for point in result.get("points", []):
        fake = judge_mod.features_of(judge["features"], point["images"])
        point["fd"] = judge_mod.frechet(real_features, fake)
        if point["labels"] is not None:
            if classifier is None:
                from gencli.metrics.features import load_user_network

                classifier = load_user_network(judge["classifier"], "--classifier")
            read = judge_mod.predict(classifier, point["images"])
            point["per_class"] = judge_mod.per_class_accuracy(read, point["labels"])
    if result.get("points"):
        last = result["points"][-1]
        fid = judge_mod.inception_fid(real_images, last["images"])
        if fid is not None:
            result["inception_fid"] = fid


# ======================================================================================== report
def sample_grid(ax, images: torch.Tensor, title: str) -> None:
    grid = images[:64, 0].reshape(8, 8, 28, 28).permute(0, 2, 1, 3).reshape(8 * 28, 8 * 28)
    ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=255)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def pair_figure(pair: Pair, sides: list[dict], floor: float, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in sides if s.get("points")]
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(3.2 * (len(shown) + 1), 3.4))
    axes = list(axes) if len(shown) else [axes]
    for ax, side in zip(axes, shown, strict=False):
        last = side["points"][-1]
        sample_grid(ax, last["images"], f"{side['name']}\n{last['minutes']:.1f} min, FD {last['fd']:.1f}")
    ax = axes[-1]
    for side in shown:
        ax.plot([p["minutes"] for p in side["points"]], [p["fd"] for p in side["points"]], marker="o",
                markersize=3, label=side["name"])
    ax.axhline(floor, color="black", lw=1, ls=":", label=f"floor {floor:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("wall-clock minutes")
    ax.set_ylabel("FD (judge features, log)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)
    fig.suptitle(f"Fashion-MNIST league: {pair.name}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


def headline(pairs: list[dict], at: list[float]) -> list[str]:
    """Each pair's FD ratio, gencli's over the peer's, at the compared minutes (below 1: gencli ahead)."""
    rows = []
    for pair in pairs:
        peer = next((s for s in pair["sides"] if s.get("kind") == "peer" and s.get("points")), None)
        ours = next((s for s in pair["sides"] if s.get("kind") == "gencli" and s.get("points")), None)
        if peer is None or ours is None:
            continue
        cells = []
        for m in at:
            a, b = fd_at(ours["points"], m), fd_at(peer["points"], m)
            cells.append("-" if a is None or b is None else f"{a:.1f} / {b:.1f} = **{a / b:.2f}**")
        rows.append(f"| {pair['name']} | {ours['name']} against {peer['name']} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["Headline: gencli's FD over the peer's at equal minutes (below 1: gencli ahead).", "",
            "| pair | sides | " + " | ".join(f"at {m:g} min" for m in at) + " |",
            "|---|---|" + "---:|" * len(at), *rows, ""]


def report(r: dict) -> str:
    judge, floor = r["judge"], r["floor"]
    lines = section_head(TITLE + (f" ({r['tag']})" if r.get("tag") else ""), "bench_league.py", r["argv"], r["machine"])
    if r["quick"]:
        lines += ["**Quick mode: these figures check the pipeline end to end (about a minute a side on a "
                  "shared machine); they are not the league.** The league is the full run on an idle "
                  "machine (`--minutes 30`).", ""]
    lines += [
        f"Load average {r['load_start']:.1f} when the run began, {r['machine']['load']:.1f} at the end. Data: "
        f"Fashion-MNIST's 60,000 training images (28 px grey, 10 classes; PNG class folders for the peers that "
        f"read folders). Judge (benchmarks/fashion_judge.py, trained here): a small CNN, "
        f"{judge['test_accuracy']:.1%} test accuracy; FD on its 128-d penultimate layer against the 10,000 test "
        f"images. Real-data floor: FD of 10,000 training images against them, **{judge['floor_fd']:.3f}**"
        + (f" (Inception FID {judge['floor_fid_inception']:.2f})" if judge.get("floor_fid_inception") else "")
        + f"; with this run's {r['n']:,} images per snapshot, **{floor:.3f}**"
        + "".join(f" ({p['name']}: {p['n']:,} images, floor {p['floor']:.3f})" for p in r["pairs"] if p["n"] != r["n"])
        + f". Budget: {r['minutes']:g} wall-clock minutes a side from its process's start (data loading and "
        "snapshot writes included)"
        + (f"; {r['parallel']} sides ran at once, each pinned to its own core with one thread, so that the two "
           "sides of a pair share the same minutes of the same machine." if r.get("parallel", 1) > 1 else
           "; one side at a time on all cores.") + " FD lines (\"min to kx\"): k times the pair's floor.", "",
        "Real test images, share of class k read as k (the bar each conditional model's `--label k` samples "
        "must reach): " + ", ".join(f"{c} {a:.1%}" for c, a in zip(judge["classes"], judge["per_class_accuracy"],
                                                                   strict=True)) + ".", "",
    ]
    at = r["at"]
    lines += headline(r["pairs"], at)
    head = ("| pair | side | version | steps | images/s | peak RSS | " + " | ".join(f"FD at {m:g} min" for m in at)
            + " | last FD | " + " | ".join(f"min to {k}x" for k in LINES) + " |")
    lines += [head, "|---|---|---|---:|---:|---:|" + "---:|" * (len(at) + 1 + len(LINES))]
    for pair in r["pairs"]:
        for side in pair["sides"]:
            if side.get("error"):
                lines.append(f"| {pair['name']} | {side['name']} | - | - | - | - | "
                             + " | ".join("-" for _ in at) + " | failed | " + " | ".join("-" for _ in LINES) + " |")
                continue
            pts = side["points"]
            fds = [fd_at(pts, m) for m in at]
            reach = [crossing_minutes(pts, k * pair.get("floor", floor)) for k in LINES]
            lines.append(f"| {pair['name']} | {side['name']} | {side.get('version') or '-'} | {side['steps']:,} | "
                         f"{side['images_per_s']:.0f} | {side['peak_rss_mib']:.0f} MiB | "
                         + " | ".join("-" if v is None else f"{v:.2f}" for v in fds)
                         + f" | {pts[-1]['fd']:.2f} | "
                         + " | ".join("-" if v is None else f"{v:.1f}" for v in reach) + " |")
    lines.append("")
    conditional = [(pair, side) for pair in r["pairs"] for side in pair["sides"]
                   if side.get("conditional") and side.get("points")]
    if conditional:
        bar = judge["per_class_accuracy"]
        lines += ["Conditional models, last snapshot: share of `--label k` samples read as k (bold: at or above "
                  "the real test images' share).", "",
                  "| side | " + " | ".join(str(k) for k in range(10)) + " | classes at the bar |",
                  "|---|" + "---:|" * 11]
        for _, side in conditional:
            acc = side["points"][-1]["per_class"]
            met = sum(a >= b for a, b in zip(acc, bar, strict=True))
            lines.append(f"| {side['name']} | " + " | ".join(
                (f"**{a:.0%}**" if a >= b else f"{a:.0%}") for a, b in zip(acc, bar, strict=True)) + f" | {met}/10 |")
        lines.append("")
    fid = [(side["name"], side["inception_fid"]) for pair in r["pairs"] for side in pair["sides"]
           if side.get("inception_fid") is not None]
    if fid:
        lines += ["Inception FID of each side's last samples (comparable with published figures; Lucic et al. "
                  "2018's best Fashion-MNIST FID was 21.5): " + ", ".join(f"{n} {v:.1f}" for n, v in fid) + ".", ""]
    lines += ["Settings and notes:", ""]
    for pair in r["pairs"]:
        for side in pair["sides"]:
            if side.get("error"):
                lines.append(f"- {side['name']}: did not run here: `{side['error']}`")
            elif side.get("settings"):
                lines.append(f"- {side['name']}: {side['settings']}.")
        if pair.get("note"):
            lines.append(f"- {pair['name']}: {pair['note']}")
        if pair.get("figure"):
            lines.append(f"- {pair['name']}: figure `{pair['figure']}`.")
    return "\n".join(lines) + "\n"


# ======================================================================================== main
def merge(base: dict, later: dict) -> dict:
    """``base`` with ``later``'s pairs in place of its own of the same name (or added), each noted
    with the command, date and load of the run it came from. The two runs must share the judge,
    the budget and the images per snapshot, or their figures would not be comparable."""
    for key, what in ((("judge", "sha256"), "judge"), (("minutes",), "budget"), (("n",), "images per snapshot")):
        a, b = base, later
        for k in key:
            a, b = a.get(k), b.get(k)
        if a != b:
            raise ValueError(f"cannot merge a run with another {what} ({b} against {a})")
    command = shlex.join(["benchmarks/bench_league.py", *later["argv"]])
    origin = (f"ran in a later run (`python {command}`, {later['machine']['date']}; load average "
              f"{later['load_start']:.1f} at its start, {later['machine']['load']:.1f} at its end), with the same "
              "judge, budget and images per snapshot")
    pairs = {p["name"]: p for p in base["pairs"]}
    for pair in later["pairs"]:
        note = pair.get("note", "").strip()
        pairs[pair["name"]] = {**pair, "note": f"{note} This pair {origin}." if note else f"{origin}."}
    return {**base, "pairs": list(pairs.values())}


def say(line: str) -> None:
    """One line of progress, written whole: the sides' threads print at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def figure_folder(work: Path, quick: bool, tag: str) -> Path:
    """Where a run draws its pair figures: a quick run checks the pipeline, so its figures stay in
    its work folder and never replace the league's; a tagged league gets a folder of its own."""
    if quick:
        return work / "figures"
    return FIGURES / tag_slug(tag) if tag else FIGURES


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench-league"), help="PNG folders, judge and runs go here")
    parser.add_argument("--data", type=Path, default=judge_mod.FASHION, help="Fashion-MNIST's four IDX files")
    parser.add_argument("--gencli-data", default="", help="what `gencli train --data` gets (default: --data)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget a side (default 30; "
                        "--quick: 1)")
    parser.add_argument("--at", default="10,30", help="minutes at which FD is compared (comma-separated)")
    parser.add_argument("--snapshots", default="1,2,3,5,7.5,10,15,20,25,30", help="snapshot minutes")
    parser.add_argument("--n", type=int, default=10_000, help="images generated per snapshot")
    parser.add_argument("--only", default="", help="a family (diffusion, vae, gan, stylegan) or pair name, "
                        "comma-separated")
    parser.add_argument("--quick", action="store_true", help="about 1 minute a side, 2,000 images: checks the "
                        "pipeline end to end; not the league")
    parser.add_argument("--diffusion-n", type=int, default=0, help="images per snapshot for the diffusion pairs "
                        "(default: --n; their sampling is the slow part)")
    parser.add_argument("--diffusion-snapshots", default="", help="snapshot minutes of the diffusion pairs "
                        "(default: --snapshots)")
    parser.add_argument("--peer-sampling-steps", type=int, default=0, help="sampling steps of the diffusion peer "
                        "when judged (default: its own)")
    parser.add_argument("--parallel", type=int, default=1, help="sides run at once, each pinned to one core with "
                        "one thread (1: one side at a time on all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="a second league beside the first (for example '30 minutes'): "
                        "its own section heading and figure folder")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    parser.add_argument("--render", type=Path, default=None, help="write the section again from a run's "
                        "WORK/league.json (its figures stay as that run drew them)")
    parser.add_argument("--merge", type=Path, action="append", default=[], help="with --render: a later run's "
                        "league.json whose pairs replace the rendered run's pairs of the same name (noted as such)")
    args = parser.parse_args(argv)
    if args.merge and not args.render:
        parser.error("--merge goes with --render")
    if args.render:
        result = json.loads(args.render.read_text())
        for later in args.merge:
            try:
                result = merge(result, json.loads(later.read_text()))
            except ValueError as exc:
                print(f"error: {later}: {exc}", file=sys.stderr)
                return 2
        publish(report(result), args.write)
        return 0
    if args.quick:  # snapshots at quarters of the budget, FD compared at its half and its end
        m = args.minutes or 1.0
        args.minutes, args.at, args.n = m, f"{m / 2:g},{m:g}", min(args.n, 2000)
        args.snapshots = ",".join(f"{m * q:g}" for q in (0.25, 0.5, 0.75))
    args.minutes = args.minutes or 30.0
    wanted = set(filter(None, args.only.split(",")))
    pairs = [p for p in PAIRS if not wanted or p.family in wanted or p.name in wanted]
    if not pairs:
        parser.error(f"--only {args.only!r} names no family or pair")
    load_start = os.getloadavg()[0]
    args.work.mkdir(parents=True, exist_ok=True)
    judge = judge_mod.make_judge(args.work / "judge", args.data)
    train_x, _ = judge_mod.load_fashion(args.data, "train")
    test_x, _ = judge_mod.load_fashion(args.data, "test")

    def floor_for(n: int) -> float:
        return judge["floor_fd"] if n == judge["floor_n"] else judge_mod.floor_fd(judge["features"], train_x, test_x, n)

    real = judge_mod.features_of(judge["features"], test_x)
    png = args.work / "fashion-png" / "train"
    write_png_folders(png, args.data)

    def plan(family: str) -> tuple[int, list[float]]:  # images per snapshot and snapshot minutes
        n, snaps = (args.diffusion_n or args.n, args.diffusion_snapshots or args.snapshots) \
            if family == "diffusion" else (args.n, args.snapshots)
        marks = sorted({float(m) for m in snaps.split(",") if m.strip()} | {args.minutes})
        return n, [m for m in marks if m <= args.minutes]

    # every side is a job; a gencli side that two pairs share (dcgan) runs once
    cores: queue.Queue = queue.Queue()
    pinned = args.parallel > 1
    for core in sorted(os.sched_getaffinity(0))[:args.parallel]:
        cores.put(core)
    if pinned:
        torch.set_num_threads(1)

    def job(pair: Pair, side: Side) -> dict:
        core = cores.get()
        try:
            if pinned:
                os.sched_setaffinity(0, {core})  # this thread: its sampling and judging stay on the core
            n, marks = plan(pair.family)
            say(f"{pair.name}: {side.name} for {args.minutes:g} min" + (f" on core {core}" if pinned else ""))
            if side.runner:
                res = run_peer(side, args.work, png, args.minutes, ",".join(map(str, marks)), n, args.seed,
                               core if pinned else None, args.peer_sampling_steps if pair.family == "diffusion" else 0)
            else:
                res = run_gencli(side, args.work, args.gencli_data or str(args.data), args.minutes, marks, n,
                                 args.seed, core if pinned else None)
            res["core"] = core if pinned else None
            judge_points(res, judge, real, test_x)
            shown = res.get("error") or "FD " + ", ".join(f"{p['fd']:.1f}" for p in res["points"])
            say(f"  {pair.name}: {side.name}: {shown}")
            return res
        finally:
            cores.put(core)

    figures = figure_folder(args.work, args.quick, args.tag)
    futures: dict[str, Future] = {}
    with ThreadPoolExecutor(max_workers=max(args.parallel, 1)) as pool:
        # the pairs first, so that both sides of a pair run at the same time; sides without a peer last
        for pair in sorted(pairs, key=lambda p: p.peer is None):
            for side in ([pair.peer] if pair.peer else []) + [pair.ours]:
                if side_key(side) not in futures:
                    futures[side_key(side)] = pool.submit(job, pair, side)
        out_pairs = []
        for pair in pairs:
            n, _ = plan(pair.family)
            floor = floor_for(n)
            sides = [futures[side_key(side)].result() for side in ([pair.peer] if pair.peer else []) + [pair.ours]]
            figure = figures / f"{pair.name}.png"
            entry = {"name": pair.name, "family": pair.family, "note": pair.note, "sides": sides, "n": n,
                     "floor": floor}
            if any(s.get("points") for s in sides):
                pair_figure(pair, sides, floor, figure)
                entry["figure"] = str(figure.relative_to(ROOT) if figure.is_relative_to(ROOT) else figure)
            out_pairs.append(entry)
    floor = floor_for(args.n)
    result = {"argv": argv, "machine": machine(), "load_start": load_start, "quick": args.quick, "judge": judge,
              "parallel": args.parallel, "tag": args.tag,
              "floor": floor, "n": args.n, "minutes": args.minutes, "pairs": out_pairs,
              "at": [float(m) for m in args.at.split(",") if m.strip()]}
    (args.work / "league.json").write_text(json.dumps(
        result, indent=1, default=lambda o: None if isinstance(o, torch.Tensor) else str(o)))
    publish(report(result), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
