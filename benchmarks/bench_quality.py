"""Sample quality on a small real dataset, and the minutes it takes to get it.

The data: scikit-learn's 1,797 handwritten digits (8x8, 16 grey levels, shipped inside the
package, so this runs offline), upscaled to 28 px and written as a class-folder dataset with
``train/`` (1,437 images) and ``test/`` (360) that ``gencli train --data FOLDER`` reads.

The judges, trained here on the training split and saved as TorchScript so that ``gencli eval
--features/--classifier`` and the engine's quality probe load them:
- a classifier CNN (its held-out accuracy is printed beside every result), for the share of
  ``sample --label k`` images read as digit k, overall and per class;
- a small feature network (another CNN trained on the digits, its 64-d penultimate layer), for
  FID. Inception features mean little at 28 px grey and cost minutes per evaluation on a CPU.
The real-data floor is the FID of ``--n`` real training images against the held-out split: what
a perfect model scores with as many images.

The models: each named configuration is trained through the engine (``gencli.training.engine``)
with ``eval_every``, so the quality curve comes from the run's own metrics.jsonl (FID and class
accuracy against training seconds, probes excluded). ``--reference`` also runs the reference DCGAN
loop of benchmarks/reference_impl.py (PyTorch's DCGAN example as it ships: 64 px, 3 channels,
batch 64, its DataLoader with 2 workers) on the same images, its samples brought back to 28 px
grey for the same judge; the table gives each side's minutes to reach ``--race-fid``.

    python benchmarks/bench_quality.py --work DIR      # needs scikit-learn; data, judges and runs go to DIR
    python benchmarks/bench_quality.py --configs "cvae=cvae;dcgan=dcgan" --reference --write benchmarks/RESULTS.md
    python benchmarks/bench_quality.py --work DIR --prepare      # only the digits folder and the judges
    python benchmarks/bench_quality.py --work DIR --runs "old=RUN:temperature=1"   # also runs trained by gencli train
    python benchmarks/bench_quality.py --work DIR --report-only --write benchmarks/RESULTS.md

Minutes are training seconds from the runs' own quality lines (probes excluded); on a shared
machine they move with its load, which the section reports at both ends of the run.

A configuration is ``NAME=MODEL`` or ``NAME=MODEL:key=value:key=value`` (hyperparameters as with
``--set``; configurations separated by ``;``), e.g. ``dcgan-plain=dcgan:augment=`` for a run
without differentiable augmentation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from results import machine, machine_line, publish  # benchmarks/results.py, beside this script
from torch import nn

HEADING = "## Sample quality on small real data (handwritten digits)"
SIZE = 28
TEST_FRACTION = 0.2


# ======================================================================================== data
def write_digits(root: Path, seed: int = 0) -> dict:
    """Write scikit-learn's digits, upscaled to 28 px, as train/ and test/ class folders (a stratified split)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    index = np.arange(len(digits.target))
    train, test = train_test_split(index, test_size=TEST_FRACTION, stratify=digits.target, random_state=seed)
    for split, part in (("train", train), ("test", test)):
        for i in part:
            folder = root / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (digits.images[i] * (255.0 / 16.0)).round().astype(np.uint8)
            Image.fromarray(pixels, "L").resize((SIZE, SIZE), Image.BILINEAR).save(folder / f"{i:04d}.png")
    return {"train": len(train), "test": len(test)}


def load_split(root: Path, split: str):
    """The split as gencli's engine sees it (28 px, 1 channel)."""
    from gencli.data.base import DataRequest
    from gencli.data.resolve import load_dataset

    return load_dataset(str(root), DataRequest(SIZE, 1, split, 0))


# ======================================================================================== judges
class DigitNet(nn.Module):
    """A small CNN for 28 px digits; ``features`` is its penultimate layer."""

    def __init__(self, width: int = 32, dims: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * width, dims), nn.ReLU(),
        )
        self.head = nn.Linear(dims, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class Features(nn.Module):
    """The feature half of a trained ``DigitNet`` (what ``--features`` loads)."""

    def __init__(self, net: DigitNet) -> None:
        super().__init__()
        self.body = net.body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def shifted(x: torch.Tensor, g: torch.Generator, pixels: int = 2) -> torch.Tensor:
    """Each image moved by up to ``pixels`` in each direction (zero = black fill): judges that do
    not hinge on exact placement, since a generator's digits need not sit where the scans did."""
    n = len(x)
    pad = nn.functional.pad(x, (pixels,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * pixels + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * pixels + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(SIZE)[None])[:, None, :, None].expand(n, 1, SIZE, SIZE + 2 * pixels)
    out = pad.gather(2, rows)
    cols = (dx[:, None] + torch.arange(SIZE)[None])[:, None, None, :].expand(n, 1, SIZE, SIZE)
    return out.gather(3, cols)


def train_judge(train, test, seed: int, width: int, steps: int = 800) -> tuple[DigitNet, float]:
    """Return a ``DigitNet`` trained on ``train`` (with small shifts) and its held-out accuracy."""
    from gencli.data.base import to_float

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = DigitNet(width)
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    x_all, y_all = to_float(train.images), train.labels
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (64,), generator=g)
        loss = nn.functional.cross_entropy(net(shifted(x_all[idx], g)), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        accuracy = (net(to_float(test.images)).argmax(1) == test.labels).float().mean().item()
    return net, accuracy


def make_judges(folder: Path, train, test) -> dict:
    """Train and save the classifier and the feature network; return their paths and accuracies."""
    folder.mkdir(parents=True, exist_ok=True)
    classifier, acc_c = train_judge(train, test, seed=1, width=32)
    feature_net, acc_f = train_judge(train, test, seed=2, width=24)
    paths = {"classifier": folder / "classifier.pt", "features": folder / "features.pt"}
    with warnings.catch_warnings():  # torch marks TorchScript deprecated; gencli still loads only TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(classifier).save(str(paths["classifier"]))
        torch.jit.script(Features(feature_net)).save(str(paths["features"]))
    return {**{k: str(v) for k, v in paths.items()}, "classifier_accuracy": acc_c, "features_accuracy": acc_f}


def floor_fid(features_path: str, train, test, n: int) -> float:
    """FID of ``n`` real training images against the held-out split: the best a model can score."""
    from gencli.metrics.features import UserFeatures, extract
    from gencli.metrics.fid import fid_from_features

    net = UserFeatures(features_path)
    real = extract(net, test.images, 250, "cpu", progress=False)
    idx = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(0))[:n]
    return fid_from_features(real, extract(net, train.images[idx], 250, "cpu", progress=False))


# ======================================================================================== gencli runs
def parse_config(text: str) -> tuple[str, str, dict]:
    """``NAME=MODEL[:key=value...]`` -> (name, model, overrides as --set strings)."""
    name, _, rest = text.partition("=")
    model, *pairs = (rest or name).split(":")
    overrides = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        overrides[key] = value
    return name, model, overrides


def train_config(name: str, model: str, overrides: dict, data: Path, steps: int, evals: int, judges: dict,
                 n: int, work: Path, seed: int) -> dict:
    """Train one configuration through the engine with its quality probe; return its curve."""
    from gencli.models import hparams
    from gencli.plugins import registry
    from gencli.training.engine import TrainConfig, train

    cls = registry().model_class(model)
    values = hparams.parse_assignments([f"{k}={v}" for k, v in overrides.items()])
    out = work / "runs" / name
    if out.exists():
        import shutil

        shutil.rmtree(out)
    config = TrainConfig(
        model=model, data=str(data), steps=steps, image_size=SIZE, channels=1, device="cpu", seed=seed,
        overrides=values, out=out, quiet=True, eval_every=max(1, steps // evals), eval_n=n,
        eval_features=judges["features"], eval_classifier=judges["classifier"] if cls.conditional else None,
        checkpoint_every=steps,
    )
    started = time.perf_counter()
    run_dir = train(config)
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    info = json.loads((run_dir / "run.json").read_text())
    curve = [{"step": r["step"], "minutes": r["train_s"] / 60, **r["quality"]} for r in rows if "quality" in r]
    temperatures = {}
    if "temperature" in {f.name for f in dataclasses.fields(cls.SampleOptions)}:
        temperatures = sample_temperatures(run_dir, judges, n, cls.conditional)
    return {"temperatures": temperatures,"name": name, "model": model, "overrides": overrides, "steps": steps, "curve": curve, "wall": wall,
            "run": str(run_dir), "hyperparameters": info["hyperparameters"], "notes": info.get("notes", []),
            "conditional": cls.conditional, "batch_size": info["training"]["batch_size"]}


def sample_temperatures(run_dir: Path, judges: dict, n: int, conditional: bool,
                        values: tuple[float, ...] = (1.0, 0.8, 0.6)) -> dict:
    """`gencli eval RUN --features --classifier --set temperature=T` of the finished run, for each T."""
    from gencli.metrics.evaluate import evaluate

    out = {}
    for t in values:
        result = evaluate(run_dir, metrics=["fid"] + (["accuracy"] if conditional else []), n=n, batch_size=250,
                          features=judges["features"], classifier=judges["classifier"] if conditional else None,
                          sample_options={"temperature": t}, progress=False)
        out[t] = result["eval"]
    return out


def evaluate_run(name: str, run_dir: Path, options: dict, judges: dict, n: int) -> dict:
    """A run trained elsewhere (`gencli train`), evaluated at each of its checkpoints like a probe.

    Minutes come from its metrics.jsonl: each logged window's images over its images per second.
    ``options`` are sampling options (``temperature=1``), as `gencli eval --set` takes them.
    """
    from gencli.metrics.evaluate import evaluate
    from gencli.models import hparams
    from gencli.runs import Run

    run = Run.open(run_dir)
    cls = run.model_class()
    values = hparams.build(cls.eval_options(), hparams.parse_assignments([f"{k}={v}" for k, v in options.items()]),
                           what="option")
    rows = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    batch = run.info["training"]["batch_size"]
    seconds, last_step, at = 0.0, 0, {}
    for row in rows:
        if "images_per_s" in row and row.get("images_per_s"):
            seconds += (row["step"] - last_step) * batch / row["images_per_s"]
            last_step = row["step"]
            at[row["step"]] = seconds
    curve = []
    for ck in sorted((run.dir / "checkpoints").glob("step-*")):
        step = int(ck.name.split("-")[1])
        result = evaluate(ck, metrics=["fid"] + (["accuracy"] if cls.conditional else []), n=n, batch_size=250,
                          features=judges["features"], classifier=judges["classifier"] if cls.conditional else None,
                          sample_options=dataclasses.asdict(values), progress=False)
        curve.append({"step": step, "minutes": at.get(step, seconds) / 60, **result["eval"]})
    return {"name": name, "model": run.model_name, "overrides": options, "steps": run.step, "curve": curve,
            "run": str(run.dir), "hyperparameters": run.info["hyperparameters"], "notes": run.info.get("notes", []),
            "conditional": cls.conditional, "batch_size": batch, "temperatures": {}, "trained_elsewhere": True}


def class_mix(run_dir: Path, judges: dict, n: int, train, test) -> dict:
    """How an unconditional run's samples divide among the classes, by the classifier's reading, and
    what that mix alone costs: the FID of real training images drawn in the same proportions.

    The feature network's FID weighs class proportions heavily, so a generator drawing every digit
    well but too few 1s scores far above the floor; this separates the two.
    """
    from gencli.data.base import to_float, to_uint8
    from gencli.metrics.features import UserFeatures, extract
    from gencli.metrics.fid import fid_from_features
    from gencli.runs import Run

    model = Run.open(run_dir).load_model()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        images = to_uint8(torch.cat([model.sample(min(250, n - i), None, generator=g).cpu() for i in range(0, n, 250)]))
        with warnings.catch_warnings():  # torch marks TorchScript deprecated
            warnings.simplefilter("ignore", FutureWarning)
            classifier = torch.jit.load(judges["classifier"]).eval()
        read = torch.cat([classifier(to_float(images[i:i + 250])).argmax(1) for i in range(0, n, 250)])
    counts = torch.bincount(read, minlength=10)
    pick, rng = [], torch.Generator().manual_seed(1)
    for k, count in enumerate(counts.tolist()):
        ids = (train.labels == k).nonzero().flatten()
        draw = torch.randperm(len(ids), generator=rng)[:count] if count <= len(ids) else \
            torch.randint(0, len(ids), (count,), generator=rng)  # more than the class has: with repeats
        pick.append(ids[draw])
    net = UserFeatures(judges["features"])
    real = extract(net, test.images, 250, "cpu", progress=False)
    fid_mix = fid_from_features(real, extract(net, train.images[torch.cat(pick)], 250, "cpu", progress=False))
    return {"shares": (counts.float() / n).tolist(), "fid_real_in_mix": fid_mix}


# ======================================================================================== the reference
def run_reference(train, judges: dict, n: int, minutes: float, eval_every: int, seed: int,
                  samples: Path | None = None) -> dict:
    """PyTorch's DCGAN example on the same digits for ``minutes`` of training; FID every ``eval_every`` steps.

    ``samples``: where to save a grid of its last probe's images (as the judge saw them).
    """
    sys.path.insert(0, str(Path(__file__).parent))
    from reference_impl import DCGANReference

    from gencli.data.base import DataRequest, to_uint8
    from gencli.data.resolve import load_dataset
    from gencli.metrics.features import UserFeatures, extract
    from gencli.metrics.fid import fid_from_features

    torch.manual_seed(seed)
    # The example's folder datasets are RGB (ImageFolder), resized to 64 px by its own transforms.
    images = train.images.expand(-1, 3, -1, -1).contiguous()
    ref = DCGANReference(images, batch_size=64, device=torch.device("cpu"), workers=2)
    judge = UserFeatures(judges["features"])
    test = load_dataset(judges["data"], DataRequest(SIZE, 1, "test", 0))
    real = extract(judge, test.images, 250, "cpu", progress=False)
    noise = torch.randn(n, ref.nz, 1, 1, generator=torch.Generator().manual_seed(seed))

    def score() -> float:
        fakes = []
        with torch.no_grad():  # the example draws its samples with G as it trains (batch statistics)
            for lo in range(0, n, 64):
                x = ref.netG(noise[lo:lo + 64]).mean(1, keepdim=True)
                fakes.append(to_uint8(nn.functional.interpolate(x, size=SIZE, mode="bilinear", antialias=True)))
        last["images"] = torch.cat(fakes)
        return fid_from_features(real, extract(judge, last["images"], 250, "cpu", progress=False))

    last: dict[str, torch.Tensor] = {}

    curve = [{"step": 0, "minutes": 0.0, "fid": score()}]
    spent, step = 0.0, 0
    while spent < minutes * 60:
        began = time.perf_counter()
        for _ in range(eval_every):
            ref.step()
        spent += time.perf_counter() - began
        step += eval_every
        curve.append({"step": step, "minutes": spent / 60, "fid": score()})
    ref.close()
    if samples is not None:  # what the judge saw last, to look at
        from gencli.media.images import save_grid

        save_grid(last["images"][:64].float().div(127.5).sub(1), samples, nrow=8)
    err_d, err_g, d_x, d_g_z1, d_g_z2 = ref.last
    return {"name": "reference DCGAN (PyTorch example)", "curve": curve, "params": ref.parameter_counts(), "steps": step,
            "last": {"loss_d": err_d, "loss_g": err_g, "d_real": d_x, "d_fake": d_g_z1}}


# ======================================================================================== report
def minutes_to(curve: list[dict], key: str, threshold: float, lower: bool = True) -> float | None:
    """Training minutes at the first probe that reached ``threshold`` (None: never)."""
    for point in curve:
        v = point.get(key)
        if v is not None and (v <= threshold if lower else v >= threshold):
            return point["minutes"]
    return None


def trained(curve: list[dict]) -> list[dict]:
    """The probes after training began (the untrained step 0 is no one's result)."""
    return [p for p in curve if p["step"] > 0] or curve


def worst_class(point: dict) -> tuple[str, float] | None:
    per_class = {k.split("/", 1)[1]: v for k, v in point.items() if k.startswith("accuracy/")}
    if not per_class:
        return None
    name = min(per_class, key=per_class.get)
    return name, per_class[name]


def plot_race(results: list[dict], floor: float, thresholds: list[float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for r in results:
        pts = [p for p in r["curve"] if p.get("fid") is not None]
        ax.plot([p["minutes"] for p in pts], [p["fid"] for p in pts], marker="o", markersize=3, label=r["name"])
    ax.axhline(floor, color="black", lw=1, ls=":", label=f"real-data floor {floor:.2f}")
    for threshold in thresholds:
        ax.axhline(threshold, color="grey", lw=0.8, ls="--")
    ax.plot([], [], color="grey", lw=0.8, ls="--", label="race lines " + ", ".join(f"{t / floor:g}x" for t in thresholds))
    ax.set_yscale("log")
    ax.set_xlabel("training minutes (CPU, probes excluded)")
    ax.set_ylabel("FID, digit features (log)")
    ax.set_title("DCGAN on 1,437 handwritten digits: FID against minutes")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def shown_args(argv: list[str]) -> list[str]:
    """The command line as the results show it: where this machine kept its files left out."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name == "--runs":  # where the runs were kept says nothing; their names and options do
            value = arg.split("=", 1)[1] if "=" in arg else argv[i + 1]
            shown = ";".join(f"{t.split('=', 1)[0]}=RUN" + "".join(f":{o}" for o in t.split(":")[1:])
                             for t in value.split(";") if t)
            out.append(f'--runs "{shown}"')
            skip = "=" not in arg
            continue
        if name in ("--work", "--write"):
            skip = "=" not in arg
            if name == "--write":
                out.append("--write benchmarks/RESULTS.md")
            continue
        out.append(f'"{arg}"' if ";" in arg else arg)
    return out


def report(r: dict) -> str:
    floor, lines = r["floor"], []
    cmd = "python benchmarks/bench_quality.py " + " ".join(shown_args(r["argv"]))
    lines += [HEADING, "", f"`{cmd}`", "", machine_line(r["machine"]) +
              f" Load average {r['load_start']:.1f} when the run began.", ""]
    lines += [
        f"Data: scikit-learn's handwritten digits upscaled to 28 px, {r['counts']['train']:,} training and "
        f"{r['counts']['test']} held-out images in 10 class folders. Judges trained on the training split by this script: "
        f"a classifier CNN ({r['judges']['classifier_accuracy']:.1%} held-out accuracy) and a feature network "
        f"({r['judges']['features_accuracy']:.1%}; FID on its 64-d penultimate layer). Each probe generates "
        f"{r['n']:,} images (classes in turn, fixed seed) against the {r['counts']['test']} held-out images; the "
        f"real-data floor, {r['n']:,} training images against the same held-out images, is **{floor:.2f}**.",
        "",
        "| configuration | steps (batch) | minutes | FID | FID / floor | accuracy | worst class |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for res in r["runs"]:
        last = res["curve"][-1]
        worst = worst_class(last)
        acc = f"{last['accuracy']:.1%}" if "accuracy" in last else "-"
        lines.append(f"| {res['name']} | {res['steps']} ({res['batch_size']}) | {last['minutes']:.1f} | "
                     f"{last['fid']:.2f} | {last['fid'] / floor:.1f}x | {acc} | "
                     f"{f'{worst[0]}: {worst[1]:.1%}' if worst else '-'} |")
    lines.append("")
    if any(res.get("trained_elsewhere") for res in r["runs"]):
        lines += ["Minutes of runs trained elsewhere come from another moment of a shared machine (and another "
                  "thread count): compare their quality, not their minutes, with this run's.", ""]
    for res in r["runs"]:
        if res.get("trained_elsewhere"):
            lines.append(f"- {res['name']}: trained by `gencli train {res['model']} --data DIGITS --image-size 28 "
                         f"--channels 1 --steps {res['steps']}` with the defaults before this change, evaluated at "
                         "each checkpoint by `gencli eval --features --classifier`" +
                         (f" with {', '.join(f'{k}={v}' for k, v in res['overrides'].items())}" if res["overrides"] else "") +
                         "; minutes from its logged images per second")
            continue
        if res["overrides"]:
            lines.append(f"- {res['name']}: `{res['model']}` with " +
                         ", ".join(f"{k}={v}" for k, v in res["overrides"].items()))
        for note in res["notes"]:
            lines.append(f"- {res['name']}: {note}")
    conditional = [res for res in r["runs"] if res["conditional"]]
    if conditional:
        lines += ["", "Per-class accuracy of `sample --label k` images at the end of each conditional run:", "",
                  "| configuration | " + " | ".join(str(c) for c in range(10)) + " |",
                  "|---|" + "---:|" * 10]
        for res in conditional:
            last = res["curve"][-1]
            lines.append(f"| {res['name']} | " + " | ".join(f"{last.get(f'accuracy/{c}', float('nan')):.0%}"
                                                           for c in range(10)) + " |")
    mixed = [res for res in r["runs"] if res.get("class_mix")]
    if mixed:
        lines += ["", f"Class mix of unconditional runs: the share of each digit among the finished run's {r['n']:,} "
                  "samples as the classifier reads them (each digit is 10% of the data), and the FID of real training "
                  "images drawn in the same proportions: what the mix alone costs, against the floor's "
                  f"{floor:.2f}.", "",
                  "| configuration | " + " | ".join(str(c) for c in range(10)) + " | real images in this mix |",
                  "|---|" + "---:|" * 11]
        for res in mixed:
            mix = res["class_mix"]
            lines.append(f"| {res['name']} | " + " | ".join(f"{v:.0%}" for v in mix["shares"])
                         + f" | FID {mix['fid_real_in_mix']:.2f} |")
    tempered = [res for res in r["runs"] if res.get("temperatures")]
    if tempered:
        lines += ["", "Sampling temperature (`gencli eval RUN --set temperature=T`, the finished runs):", "",
                  "| configuration | temperature | FID | accuracy | worst class |", "|---|---:|---:|---:|---:|"]
        for res in tempered:
            for t, values in res["temperatures"].items():
                worst = worst_class(values)
                acc = f"{values['accuracy']:.1%}" if "accuracy" in values else "-"
                lines.append(f"| {res['name']} | {float(t):g} | {values['fid']:.2f} | {acc} | "
                             f"{f'{worst[0]}: {worst[1]:.1%}' if worst else '-'} |")
    lines += ["", "Curves (training minutes, FID; accuracy for conditional models):", ""]
    for res in r["runs"]:
        pts = ", ".join(f"{p['minutes']:.1f} min {p['fid']:.1f}" + (f"/{p['accuracy']:.0%}" if "accuracy" in p else "")
                        for p in res["curve"])
        lines.append(f"- {res['name']}: {pts}")
    if r.get("reference"):
        ref = r["reference"]
        thresholds = r.get("race_fids") or [r["race_fid"]]
        lines += ["", "Race: minutes until the FID first falls to each line (a multiple of the floor), the reference "
                  "DCGAN loop against gencli's default `dcgan`, same data, same judge; minutes of training only "
                  "(gencli's include its checkpoint and sample-grid writes, the reference's its per-step `.item()` "
                  f"reads); figure: `{r['race_figure']}`"
                  + (f"; the reference's last samples as the judge saw them: `{r['reference_samples']}`"
                     if r.get("reference_samples") else "") + ".", "",
                  "| side | steps run | best FID | at (min) | " + " | ".join(
                      f"to {t:.1f} ({t / floor:g}x)" for t in thresholds) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(thresholds)]
        for side in [*[x for x in r["runs"] if x["model"] == "dcgan" and not x.get("trained_elsewhere")], ref]:
            best = min(trained(side["curve"]), key=lambda p: p["fid"])
            reached = [minutes_to(side["curve"], "fid", t) for t in thresholds]
            lines.append(f"| {side['name']} | {side['steps']} | {best['fid']:.2f} | {best['minutes']:.1f} | "
                         + " | ".join("not reached" if m is None else f"{m:.1f} min" for m in reached) + " |")
    lines += ["", *reading(r), ""]
    return "\n".join(lines)


def reference_state(last: dict) -> str:
    """One sentence on the reference's discriminator at its last step, from its printed losses."""
    said = (f"At its last step D scored the real batch {last['d_real']:.2g} and the fakes {last['d_fake']:.2g} "
            f"(Loss_D {last['loss_d']:.1f}, Loss_G {last['loss_g']:.1f})")
    if last["d_real"] > 0.9 and last["d_fake"] < 0.1:
        return said + ": its discriminator had won, and G learns nothing from a saturated one."
    if last["d_real"] < 0.01 and last["d_fake"] < 0.01:
        return said + ": D called real and generated images alike fake; it no longer told them apart."
    return said + "."


def reading(r: dict) -> list[str]:
    """The targets, checked against this run's numbers: every class read right 95% of the time by a
    conditional model, and the unconditional DCGAN within 3x the real-data floor."""
    floor, out = r["floor"], ["Reading, measured in this run:", ""]
    for res in r["runs"]:
        last = res["curve"][-1]
        worst = worst_class(last)
        if worst:
            met = "meets" if worst[1] >= 0.95 else "misses"
            out.append(f"- {res['name']}: worst class {worst[0]} at {worst[1]:.1%}: {met} the 95%-for-every-class "
                       f"target after {res['steps']} steps ({last['minutes']:.1f} min).")
            for t, values in res.get("temperatures", {}).items():
                w = worst_class(values)
                if w and w[1] >= 0.95 and worst[1] < 0.95:
                    out.append(f"  At temperature {float(t):g} it meets it (worst class {w[0]} {w[1]:.1%}, FID "
                               f"{values['fid']:.2f}).")
        elif res["model"] == "dcgan":
            ratio = last["fid"] / floor
            out.append(f"- {res['name']}: FID {last['fid']:.2f} is {ratio:.1f}x the floor: "
                       f"{'within' if ratio <= 3 else 'not within'} the 3x target after {res['steps']} steps "
                       f"({last['minutes']:.1f} min).")
    if r.get("reference"):
        ref = r["reference"]
        best_ref = min(trained(ref["curve"]), key=lambda p: p["fid"])
        if best_ref["fid"] >= 0.9 * ref["curve"][0]["fid"]:  # within 10% of untrained: nothing learned
            out.append(f"- The reference's generator had not left its starting point: after {ref['steps']} steps its "
                       f"FID ({ref['curve'][-1]['fid']:.0f}) was within 10% of untrained ({ref['curve'][0]['fid']:.0f}); "
                       "by the judge its samples were no closer to digits than at the start."
                       + (" " + reference_state(ref["last"]) if ref.get("last") else ""))
        ours = [x for x in r["runs"] if x["model"] == "dcgan" and not x.get("trained_elsewhere")]
        for side in ours:
            # the gencli curve at the reference's last minute, for a like-for-like look at equal time
            at = [p for p in side["curve"] if p["minutes"] <= ref["curve"][-1]["minutes"]]
            if at:
                winner = "the reference" if best_ref["fid"] < at[-1]["fid"] else side["name"]
                out.append(f"- In the reference's {ref['curve'][-1]['minutes']:.1f} minutes ({ref['steps']} steps at "
                           f"64 px) it reached FID {best_ref['fid']:.2f}; {side['name']} was at FID {at[-1]['fid']:.2f} "
                           f"after {at[-1]['minutes']:.1f} minutes ({at[-1]['step']} steps at 28 px): at equal "
                           f"time, {winner} is ahead.")
            same = [p for p in side["curve"] if p["step"] <= ref["steps"]]
            if same and same[-1]["step"]:
                winner = "the reference" if ref["curve"][-1]["fid"] < same[-1]["fid"] else side["name"]
                out.append(f"- At equal steps ({same[-1]['step']} and {ref['steps']}): FID {same[-1]['fid']:.2f} for "
                           f"{side['name']} against {ref['curve'][-1]['fid']:.2f} for the reference: {winner} is ahead.")
        out.append("- The reference trains at 64 px in 3 channels, as the example ships (its samples are brought "
                   "back to 28 px grey for the judge), so each of its steps costs several of gencli's at the data's "
                   "own 28 px.")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench-quality"), help="data, judges and runs go here")
    parser.add_argument("--configs", default="cvae=cvae;cgan=cgan;dcgan=dcgan",
                        help="NAME=MODEL[:key=value...] configurations to train, separated by ';'")
    parser.add_argument("--steps", default="cvae=900,cgan=1400,dcgan=1400",
                        help="steps per configuration name or model, e.g. cvae=900,dcgan=1400")
    parser.add_argument("--evals", type=int, default=7, help="quality probes per run (besides step 0)")
    parser.add_argument("--n", type=int, default=1000, help="images generated per probe")
    parser.add_argument("--reference", action="store_true", help="also race the reference DCGAN loop")
    parser.add_argument("--reference-minutes", type=float, default=10.0)
    parser.add_argument("--reference-every", type=int, default=0,
                        help="reference steps between probes (0: as the gencli dcgan's probes)")
    parser.add_argument("--race-fid", default="20,10,5,3",
                        help="race lines, as multiples of the floor (comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    parser.add_argument("--prepare", action="store_true",
                        help="only write the digits folder (WORK/digits) and train the judges (WORK/judges)")
    parser.add_argument("--report-only", action="store_true", help="only write the section again from WORK/result.json")
    parser.add_argument("--runs", default="", help="also NAME=RUN_DIR[:option=value...] runs trained by `gencli train` "
                        "on WORK/digits, evaluated at each checkpoint, separated by ';'")
    args = parser.parse_args(argv)
    if args.prepare:
        print(write_digits(args.work / "digits", args.seed))
        judges = make_judges(args.work / "judges", load_split(args.work / "digits", "train"),
                             load_split(args.work / "digits", "test"))
        (args.work / "judges" / "judges.json").write_text(json.dumps({**judges, "data": str(args.work / "digits")}))
        print(judges)
        return 0
    if args.report_only:  # the tables again from a finished run's result.json, nothing trained
        publish(report(json.loads((args.work / "result.json").read_text())), args.write)
        return 0

    info_start = os.getloadavg()[0]
    data = args.work / "digits"
    if not (data / "test").is_dir():
        counts = write_digits(data, args.seed)
    else:
        counts = {s: sum(1 for _ in (data / s).rglob("*.png")) for s in ("train", "test")}
    train, test = load_split(data, "train"), load_split(data, "test")
    saved = args.work / "judges" / "judges.json"
    if saved.exists():  # the same data and seed train the same judges: reuse them across invocations
        judges = json.loads(saved.read_text())
    else:
        judges = make_judges(args.work / "judges", train, test)
        judges["data"] = str(data)
        saved.write_text(json.dumps(judges))
    floor = floor_fid(judges["features"], train, test, args.n)
    print(f"judges: classifier {judges['classifier_accuracy']:.1%}, features {judges['features_accuracy']:.1%}; "
          f"floor FID {floor:.3f}", flush=True)
    steps = dict(item.split("=") for item in args.steps.split(",") if item)
    runs = []
    for text in filter(None, args.runs.split(";")):
        name, _, rest = text.partition("=")
        run_dir, *pairs = rest.split(":")
        res = evaluate_run(name, Path(run_dir), dict(p.split("=", 1) for p in pairs), judges, args.n)
        print(f"{name}: {res['steps']} steps, FID {res['curve'][-1]['fid']:.2f}", flush=True)
        runs.append(res)
        if not res["conditional"]:
            res["class_mix"] = class_mix(Path(res["run"]), judges, args.n, train, test)
    for text in filter(None, args.configs.split(";")):
        name, model, overrides = parse_config(text)
        count = int(steps.get(name, steps.get(model, 1000)))
        res = train_config(name, model, overrides, data, count, args.evals, judges, args.n, args.work, args.seed)
        last = res["curve"][-1]
        print(f"{name}: {count} steps, {last['minutes']:.1f} min, FID {last['fid']:.2f} "
              f"({last['fid'] / floor:.1f}x floor)" + (f", accuracy {last['accuracy']:.1%}" if "accuracy" in last else ""),
              flush=True)
        runs.append(res)
        if not res["conditional"]:
            res["class_mix"] = class_mix(Path(res["run"]), judges, args.n, train, test)
    result = {"argv": argv, "machine": machine(), "load_start": info_start, "counts": counts, "judges": judges,
              "floor": floor, "n": args.n, "runs": runs,
              "race_fids": [float(m) * floor for m in args.race_fid.split(",") if m.strip()]}
    if args.reference:
        dcgans = [x for x in runs if x["model"] == "dcgan" and not x.get("trained_elsewhere")]  # same machine state
        every = args.reference_every or max(1, (dcgans[0]["steps"] // args.evals) if dcgans else 100)
        grid_path = Path(__file__).parent / "figures" / "quality-reference-samples.png"
        result["reference"] = run_reference(train, judges, args.n, args.reference_minutes, every, args.seed, grid_path)
        result["reference_samples"] = str(grid_path.relative_to(Path(__file__).parent.parent))
        ref_last = result["reference"]["curve"][-1]
        print(f"reference: {result['reference']['steps']} steps, {ref_last['minutes']:.1f} min, FID {ref_last['fid']:.2f}")
        figure = Path(__file__).parent / "figures" / "quality-race.png"
        plot_race([*dcgans, result["reference"]], floor, result["race_fids"], figure)
        result["race_figure"] = str(figure.relative_to(Path(__file__).parent.parent))
    result["machine"] = machine()  # the load at the end
    (args.work / "result.json").write_text(json.dumps(result, indent=1, default=str))
    publish(report(result), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
