"""What limits a conditional model's class fidelity on Fashion-MNIST, configuration by configuration.

Each configuration (``--config NAME:KEY=VALUE;KEY=VALUE``, ``--set`` values of `gencli train`) trains
the model on Fashion-MNIST's 60,000 images for ``--epochs`` passes or ``--minutes``, one core and one
thread each, ``--parallel`` at once. The league's judge (benchmarks/fashion_judge.py) then reads:

- ``--label k`` samples, ``--n`` per class, at each value of one sampling option (``--option
  temperature=0.6,1.0``), with the class each one is most often taken for;
- for models that reconstruct (the VAEs), the reconstructions of the first 2,000 test images given
  their labels: samples are seldom read right more often than reconstructions of real images, so
  this row is the ceiling a sampling change can reach;
- the real test images (the bar the league sets: the share of real images of class k read as k).

    python benchmarks/bench_class_fidelity.py --model cvae --epochs 5 --option temperature=0.6,1.0 \\
        --config default: --config "beta 0.25:beta=0.25" --config "gaussian:recon=gaussian" \\
        --write benchmarks/RESULTS.md

Run it on an idle machine (``--minutes`` are wall-clock minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bench_league as league  # benchmarks/, beside this script
import fashion_judge as judge_mod
import torch
from results import machine, publish, section_head

TITLE = "Class fidelity on Fashion-MNIST: what limits a conditional model"
RECON_IMAGES = 2000


def parse_config(text: str) -> tuple[str, list[str]]:
    """``'beta 0.25:beta=0.25;lr=2e-3'`` -> ``('beta 0.25', ['beta=0.25', 'lr=2e-3'])``."""
    name, _, sets = text.partition(":")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"--config {text!r} has no name before ':'")
    return name.strip(), [s.strip() for s in sets.split(";") if s.strip()]


def parse_option(text: str) -> tuple[str, list[float]]:
    """``'temperature=0.6,1.0'`` -> ``('temperature', [0.6, 1.0])``."""
    key, _, values = text.partition("=")
    try:
        return key.strip(), [float(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected KEY=NUMBER,NUMBER") from None


def train(model: str, name: str, sets: list[str], args, core: int | None) -> dict:
    out = args.work / name.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "gencli", "--threads", "1", "train", model, "--data", str(args.data),
           "--image-size", "28", "--channels", "1", "--device", "cpu", "--seed", str(args.seed), "--out", str(out),
           "--sample-every", "99999999", "--checkpoint-every", "99999999",
           *(["--epochs", str(args.epochs)] if args.epochs else ["--steps", "99999999"]),
           *[a for s in sets for a in ("--set", s)]]
    print(f"{name}: {' '.join(sets) or 'defaults'}" + (f" on core {core}" if core is not None else ""), flush=True)
    log = args.work / f"{out.name}.log"
    code, seconds, _ = league.launch(cmd, log, args.minutes or 24 * 60, core=core)
    result = {"name": name, "sets": sets, "out": str(out), "exit": code, "seconds": seconds}
    if code not in (0, 130):  # 130: stopped at the budget, its checkpoint saved
        result["error"] = league.last_error(log)
    return result


@torch.no_grad()
def read(result: dict, classifier, option: tuple[str, list[float]] | None, n: int, seed: int,
         test: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Fill ``result`` with the judge's per-class readings of the run's samples and reconstructions."""
    from gencli.data.base import to_uint8
    from gencli.runs import Run

    run = Run.open(Path(result["out"]))
    model = run.load_model()
    result["steps"] = int(run.latest_checkpoint().name.split("-")[1])
    labels = torch.arange(10 * n) % 10
    values = option[1] if option else [None]
    result["samples"] = []
    for value in values:
        g = torch.Generator().manual_seed(seed)
        kw = {} if value is None else {option[0]: value}
        images = torch.cat([to_uint8(model.sample(len(chunk), chunk, generator=g, **kw).cpu())
                            for chunk in labels.split(250)])
        predicted = judge_mod.predict(classifier, images)
        result["samples"].append({"value": value, "per_class": judge_mod.per_class_accuracy(predicted, labels),
                                  "taken_for": taken_for(predicted, labels)})
    if "reconstruct" in type(model).offers:
        x, y = test[0][:RECON_IMAGES], test[1][:RECON_IMAGES]
        rebuilt = torch.cat([to_uint8(model.reconstruct(judge_mod.to_float(xs), ys).cpu())
                             for xs, ys in zip(x.split(250), y.split(250))])
        predicted = judge_mod.predict(classifier, rebuilt)
        result["recon"] = {"per_class": judge_mod.per_class_accuracy(predicted, y), "taken_for": taken_for(predicted, y)}


def taken_for(predicted: torch.Tensor, labels: torch.Tensor) -> list[int | None]:
    """For each class, the other class its images are most often read as (None: never misread)."""
    out = []
    for k in range(10):
        wrong = predicted[(labels == k) & (predicted != k)]
        out.append(int(wrong.mode().values) if len(wrong) else None)
    return out


def row(label: str, per_class: list[float], bar: list[float]) -> str:
    cells = [f"**{a:.0%}**" if a >= b else f"{a:.0%}" for a, b in zip(per_class, bar)]
    met = sum(a >= b for a, b in zip(per_class, bar))
    return f"| {label} | " + " | ".join(cells) + f" | {met}/10 |"


def report(r: dict) -> str:
    judge, classes = r["judge"], r["judge"]["classes"]
    bar = judge["per_class_accuracy"]
    budget = f"{r['epochs']} epochs" if r["epochs"] else f"{r['minutes']:g} minutes"
    lines = section_head(TITLE + (f" ({r['tag']})" if r.get("tag") else ""), "bench_class_fidelity.py", r["argv"],
                         r["machine"])
    lines += [
        f"Load average {r['load_start']:.1f} when the run began, {r['machine']['load']:.1f} at the end. `gencli train "
        f"{r['model']}` on Fashion-MNIST's 60,000 training images, 28 px grey, {budget} a configuration, one core and "
        f"one thread each ({r['parallel']} at once). The league's judge ({judge['test_accuracy']:.1%} test accuracy) "
        f"reads {r['n']:,} `--label k` samples per class, and the reconstructions of the first "
        f"{RECON_IMAGES:,} test images where the model reconstructs. Bold: at or above the real test images' share "
        "(first row), the bar the league sets.", "",
        "| configuration | " + " | ".join(f"{k} {c}" for k, c in enumerate(classes)) + " | at the bar |",
        "|---|" + "---:|" * 10 + "---:|",
        row("real test images", bar, bar),
    ]
    for res in r["configs"]:
        if "samples" not in res:
            lines.append(f"| {res['name']} | " + " | ".join("-" * 10) + f" | failed: {res.get('error', '')} |")
            continue
        for s in res["samples"]:
            what = "samples" if s["value"] is None else f"samples, {r['option'][0]} {s['value']:g}"
            lines.append(row(f"{res['name']}: {what}", s["per_class"], bar))
        if res.get("recon"):
            lines.append(row(f"{res['name']}: reconstructions", res["recon"]["per_class"], bar))
    lines += ["", "Most often taken for, where below the bar (first sampling value; reconstructions):", ""]
    for res in r["configs"]:
        if "samples" not in res:
            continue
        first = res["samples"][0]
        parts = [f"{classes[k]} -> {classes[first['taken_for'][k]]}" for k in range(10)
                 if first["per_class"][k] < bar[k] and first["taken_for"][k] is not None]
        if res.get("recon"):
            rec = res["recon"]
            parts += [f"reconstructed {classes[k]} -> {classes[rec['taken_for'][k]]}" for k in range(10)
                      if rec["per_class"][k] < bar[k] and rec["taken_for"][k] is not None]
        sets = ", ".join(f"`{s}`" for s in res["sets"]) or "the defaults"
        lines.append(f"- {res['name']} ({sets}; {res['steps']:,} steps, {res['seconds'] / 60:.1f} min): "
                     + ("; ".join(parts) or "every class at the bar"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cvae", help="a conditional model")
    parser.add_argument("--config", type=parse_config, action="append", required=True,
                        help="NAME:KEY=VALUE;KEY=VALUE (repeatable; 'default:' for the defaults)")
    parser.add_argument("--epochs", type=int, default=0, help="passes over the data a configuration")
    parser.add_argument("--minutes", type=float, default=0.0, help="or wall-clock minutes a configuration")
    parser.add_argument("--option", type=parse_option, default=None, help="a sampling option and its values, "
                        "for example temperature=0.6,1.0 (default: the model's own)")
    parser.add_argument("--n", type=int, default=100, help="samples per class")
    parser.add_argument("--work", type=Path, default=Path("bench-fidelity"), help="runs go here")
    parser.add_argument("--judge", type=Path, default=Path("bench-league") / "judge",
                        help="the league's judge folder (trained there on first use)")
    parser.add_argument("--data", type=Path, default=judge_mod.FASHION, help="Fashion-MNIST's four IDX files")
    parser.add_argument("--parallel", type=int, default=2, help="configurations trained at once, one core each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="a second section beside the first (for example 'the fitted "
                        "prior'): its own heading")
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    if bool(args.epochs) == bool(args.minutes):
        parser.error("give one of --epochs and --minutes")
    load_start = os.getloadavg()[0]
    args.work.mkdir(parents=True, exist_ok=True)
    judge = judge_mod.make_judge(args.judge, args.data)
    cores: queue.Queue = queue.Queue()
    for core in sorted(os.sched_getaffinity(0))[:max(args.parallel, 1)]:
        cores.put(core)

    def job(config: tuple[str, list[str]]) -> dict:
        core = cores.get()
        try:
            return train(args.model, *config, args, core if args.parallel > 1 else None)
        finally:
            cores.put(core)

    started = time.time()
    with ThreadPoolExecutor(max_workers=max(args.parallel, 1)) as pool:
        results = list(pool.map(job, args.config))
    print(f"trained in {(time.time() - started) / 60:.1f} min; judging", flush=True)
    from gencli.metrics.features import load_user_network

    classifier = load_user_network(judge["classifier"], "--classifier")
    test = judge_mod.load_fashion(args.data, "test")
    for res in results:
        if "error" in res:
            continue
        try:
            read(res, classifier, args.option, args.n, args.seed, test)
        except Exception as exc:  # a failed run is reported as failed, the others still are
            res["error"] = f"{type(exc).__name__}: {exc}"
    r = {"argv": argv, "machine": machine(), "load_start": load_start, "model": args.model, "epochs": args.epochs,
         "minutes": args.minutes, "parallel": args.parallel, "n": args.n, "judge": judge,
         "option": list(args.option) if args.option else None, "configs": results, "tag": args.tag}
    (args.work / "fidelity.json").write_text(json.dumps(r, indent=1))
    publish(report(r), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
