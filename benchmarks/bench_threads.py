"""VAE training speed on a shared CPU: gencli's default thread count against fixed 1 and all-core threads.

    python benchmarks/bench_threads.py [--seconds 20] [--rounds 2] [--write benchmarks/RESULTS.md]

Each run is `gencli train vae` in a fresh process (its default configuration, the built-in
shapes), with no thread setting (the default: one thread per free core, following the load), with
`--threads 1`, or with `--threads C` for all C usable cores. The timed window starts at the
first log line, so start-up and the first steps stay out of it, and lasts ``--seconds``; a
Ctrl-C then stops the run. Images/s are the images of the log intervals in the window over
their time, as `metrics.jsonl` reports them.

Conditions: an otherwise idle machine; one and two competing CPU-bound processes (busy-looping
Python, one core each) running throughout; and one competing process that starts at the first
log line, so the default has to notice it while training. The settings of each round run in a
rotated order; the table gives the median images/s over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import machine, publish  # benchmarks/results.py, beside this script

CONDITIONS = [("no competing process", 0, False), ("1 competing process", 1, False), ("2 competing processes", 2, False),
              ("1 competing process from the first log line", 1, True)]
SPIN = "import time, sys\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end:\n    pass\n"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def others_busy(seconds: float = 1.0) -> float:
    """Cores kept busy by other processes over ``seconds`` (this script sleeps meanwhile)."""
    from gencli.training import threads

    cpus = threads.usable_cores()
    before = threads.sample_cpus(cpus)
    time.sleep(seconds)
    after = threads.sample_cpus(cpus)
    if before is None or after is None:
        return float("nan")
    return threads.others_busy(before, after, len(cpus)) or 0.0


def start_competitors(n: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait(timeout=30)


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            break  # a line being written
        if "step" in row:
            out.append(row)
    return out


def train_once(threads: int | None, seconds: float, work: Path, env: dict[str, str], join: int) -> dict:
    """Train until ``seconds`` after the first log line; return images/s in that window and the thread record."""
    out = work / f"run-{time.monotonic_ns()}"
    cmd = [sys.executable, "-m", "gencli", "--quiet"]
    if threads:
        cmd += ["--threads", str(threads)]
    cmd += ["train", "vae", "--steps", "1000000", "--device", "cpu", "--out", str(out),
            "--sample-every", "1000000", "--checkpoint-every", "1000000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    competitors: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + 300
        while not rows(out / "metrics.jsonl"):
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr.read()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("no log line within 300 s")
            time.sleep(0.05)
        competitors = start_competitors(join, seconds + 400)
        first = len(rows(out / "metrics.jsonl"))
        time.sleep(seconds)
        logged = rows(out / "metrics.jsonl")
        late = time.monotonic() + 300
        while len(logged) <= first and time.monotonic() < late:  # a very slow setting: wait for one interval
            time.sleep(0.2)
            logged = rows(out / "metrics.jsonl")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=600)
    finally:
        stop(competitors)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    window = logged[first:]
    if not window:
        raise RuntimeError("no log interval completed within 300 s")
    info = json.loads((out / "run.json").read_text())
    batch = info["training"]["batch_size"]
    images = [(b["step"] - a["step"]) * batch for a, b in zip(logged[first - 1:], window)]
    elapsed = sum(i / r["images_per_s"] for i, r in zip(images, window))
    shutil.rmtree(out, ignore_errors=True)
    return {"images_per_s": sum(images) / elapsed, "choice": info.get("thread_choice", {})}


def describe(choice: dict) -> str:
    if not choice:
        return "?"
    text = str(choice.get("chosen"))
    for c in choice.get("changes", []):
        text += f"→{c['threads']}"
    return text


def run(seconds: float, rounds: int) -> dict:
    cores = usable_cores()
    settings = [("default", None), ("1 thread", 1), (f"{cores} threads", cores)]
    work = Path(tempfile.mkdtemp(prefix="gencli-bench-threads-"))
    env = {**os.environ, "GENCLI_DATA_DIR": str(work / "data"), "GENCLI_RUNS_DIR": str(work / "runs")}
    env.pop("OMP_NUM_THREADS", None)  # the default must be gencli's own choice
    env.pop("MKL_NUM_THREADS", None)
    results = []
    try:
        for name, competing, joins in CONDITIONS:
            background = others_busy()
            load_before = os.getloadavg()[0]
            block = rounds * len(settings) * (seconds + 330) + 120  # stopped when the condition ends
            procs = [] if joins else start_competitors(competing, block)
            time.sleep(1.0 if procs else 0.0)
            speeds: dict[str, list[float]] = {s: [] for s, _ in settings}
            choices: list[str] = []
            try:
                for r in range(rounds):
                    order = settings[r % len(settings):] + settings[: r % len(settings)]
                    for label, threads in order:
                        got = train_once(threads, seconds, work, env, competing if joins else 0)
                        speeds[label].append(got["images_per_s"])
                        if threads is None:
                            choices.append(describe(got["choice"]))
                        print(f"{name}: {label}: {got['images_per_s']:.0f} images/s "
                              f"{'(threads ' + choices[-1] + ')' if threads is None else ''}", flush=True)
            finally:
                stop(procs)
            med = {k: statistics.median(v) for k, v in speeds.items()}
            results.append({"condition": name, "background": background, "load": load_before, "median": med,
                            "choices": choices})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"settings": [s for s, _ in settings], "results": results, "cores": cores, "seconds": seconds,
            "rounds": rounds, **machine("cpu"), "load_end": os.getloadavg()[0]}


def report(r: dict) -> str:
    head = "| condition | others' load before (cores) | default chose (threads) | " + " | ".join(
        f"{s} (images/s)" for s in r["settings"]) + " | default / best fixed |"
    rows_ = [head, "|---|---:|---|" + "---:|" * len(r["settings"]) + "---:|"]
    worst = None
    for c in r["results"]:
        m = c["median"]
        best = max(v for k, v in m.items() if k != "default")
        ratio = m["default"] / best
        worst = ratio if worst is None else min(worst, ratio)
        rows_.append(f"| {c['condition']} | {c['background']:.2f} | {', '.join(c['choices'])} | "
                     + " | ".join(f"{m[s]:,.0f}" for s in r["settings"]) + f" | **{ratio:.2f}** |")
    return "\n".join([
        "## CPU threads on a shared machine",
        "",
        f"`python benchmarks/bench_threads.py --seconds {r['seconds']:g} --rounds {r['rounds']}`",
        "",
        f"{r['machine']}, {r['cores']} usable CPU cores, Python {r['python']}, torch {r['torch']}; load average "
        f"{r['load_end']:.1f} at the end of the run; {r['date']}.",
        "",
        "`gencli train vae` (its defaults: 32 px RGB shapes, batch 64) in a fresh process per run; images/s over "
        f"{r['seconds']:g} s of training after the first log line, median of {r['rounds']} rounds with the settings "
        "in rotated order. Competing processes are busy-looping Python, one core each. \"Others' load before\" "
        "is how many cores other processes kept busy in the second before the condition started (the machine's "
        "background, from /proc/stat); \"default chose\" lists the default's threads per round (→ a change while "
        "training, from run.json).",
        "",
        *rows_,
        "",
        f"The default reached {worst:.2f}x the best fixed setting in its worst condition, measured in this run.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed training per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", type=Path, default=None, help="also write the section into this Markdown file")
    args = parser.parse_args(argv)
    publish(report(run(args.seconds, args.rounds)), args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
