"""How many CPU threads torch's operators get: chosen from the free cores, not all of them.

torch's default, one intra-op thread per core, is right on an idle machine and badly wrong on a
shared one: its OpenMP threads meet at a barrier after every operator, so one thread on a core
that another process also wants holds every other thread up. On two cores with one other
CPU-bound process, a VAE step took twice as long with two threads as with one.

So when nobody asked for a count (``gencli --threads N`` or ``OMP_NUM_THREADS``), training
measures how busy the cores it may use are (a short sample of ``/proc/stat``, less this
process's own CPU time) and takes one thread per free core; at log intervals it measures again
over the interval just trained, at no cost, and follows the load when it clearly changed.

A changed thread count changes the rounding of CPU results (reductions split differently), so
runs that must be bit-identical whatever else the machine does pass ``--threads N``. On an idle
machine the choice is torch's own default, so such runs stay as they were.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

# A core counts as free for a new thread while other processes use less than this much of it.
# Below one half a second thread still gains a little in theory, but the OS scheduler's latency
# and the spinning of waiting OpenMP threads eat that gain, so this stays well under it.
START_MARGIN = 0.3
# Once running, a thread is given up only when others take more than half its core, and one is
# added only on the start margin: the gap keeps the count from flapping on a noisy machine.
KEEP_MARGIN = 0.5
# Re-measuring over a shorter window than this reads noise, not load.
MIN_WINDOW_S = 0.5
# run.json keeps this many of the latest changes (and counts them all): a long run on a machine
# whose load comes and goes must not grow its run.json without bound.
KEEP_CHANGES = 50
# The most threads anyone may ask for (``--threads``, ``OMP_NUM_THREADS``): above the hardware
# threads of the largest machines gencli meets. torch crashes on counts far beyond (``--threads
# 100000000`` ended in a segmentation fault), and a count above the cores only slows a run down.
MAX_THREADS = 1024


def choose_threads(cores: int, busy: float, requested: int | None = None, current: int | None = None) -> int:
    """Return torch's intra-op thread count for ``cores`` usable cores of which ``busy`` are in use by others.

    ``requested`` (a count the user gave) wins as it is. ``current`` is the count in use, when
    re-deciding during a run: it is kept unless the load clearly moved.
    """
    if requested:
        return int(requested)
    cores = max(1, int(cores))
    free = cores - max(0.0, float(busy))
    up = min(cores, max(1, math.floor(free + START_MARGIN)))
    if current is None or up > current:
        return up
    keep = min(cores, max(1, math.floor(free + KEEP_MARGIN)))
    return keep if keep < current else current


def usable_cores() -> list[int]:
    """Return the CPUs this process may run on (a taskset's or container's cpuset), in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def cpu_quota() -> float | None:
    """Return the cores a cgroup v2 CPU quota allows this process (``cpu.max``), or None when unlimited."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")), None)
        if rel is None:
            return None
        with open(os.path.join("/sys/fs/cgroup", rel.lstrip("/"), "cpu.max")) as f:
            quota, period = f.read().split()[:2]
    except (OSError, ValueError, IndexError):
        return None
    if quota == "max":
        return None
    return max(float(quota) / float(period), 0.01)


@dataclass
class CpuSample:
    """Cumulative CPU times of some cores (busy and total, in clock ticks) and of this process (s)."""

    busy: int
    total: int
    own: float
    wall: float


def sample_cpus(cpus: list[int]) -> CpuSample | None:
    """Read the cumulative times of ``cpus`` from ``/proc/stat``; None where there is no such file."""
    wanted = {f"cpu{i}" for i in cpus}
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name not in wanted:
                    continue
                # user nice system idle iowait irq softirq steal (guest time is inside user):
                # steal is time the host gave to someone else, so it counts as busy.
                ticks = [int(v) for v in fields[:8]]
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
    except (OSError, ValueError):
        return None
    if total == 0:
        return None
    return CpuSample(busy, total, time.process_time(), time.perf_counter())


def others_busy(before: CpuSample, after: CpuSample, cores: int) -> float | None:
    """Return how many of ``cores`` other processes kept busy between two samples (None: too short to tell)."""
    ticks = after.total - before.total
    if ticks <= 0 or after.wall <= before.wall:
        return None
    busy_cores = (after.busy - before.busy) / ticks * cores
    own_cores = (after.own - before.own) / (after.wall - before.wall)
    return max(0.0, busy_cores - own_cores)


def requested_threads() -> int | None:
    """Return the count the user asked for: ``gencli --threads N`` exports it as ``OMP_NUM_THREADS``."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        n = int(value.split(",")[0])
    except ValueError:
        return None
    if n > MAX_THREADS:
        from gencli.errors import UserError

        raise UserError(f"OMP_NUM_THREADS={value[:20]} asks for more threads than gencli takes: use at most "
                        f"{MAX_THREADS:,} (or unset it to take one per free core)")
    return n if n > 0 else None


@dataclass
class ThreadPolicy:
    """The thread count of one training process: chosen at the start, re-checked at log intervals."""

    chosen: int
    reason: str
    adaptive: bool
    cores: int = 1
    cpus: list[int] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    first: int | None = None
    change_count: int = 0
    _last: CpuSample | None = None

    @classmethod
    def start(cls, device_type: str = "cpu", processes: int = 1, sample_s: float = 0.1) -> "ThreadPolicy":
        """Decide, apply with ``torch.set_num_threads`` and return the policy for this run."""
        import torch

        requested = requested_threads()
        if requested:
            torch.set_num_threads(requested)
            return cls(requested, f"asked for {requested} (--threads or OMP_NUM_THREADS)", adaptive=False)
        if device_type != "cpu":
            # The network runs on the accelerator; CPU threads only feed it, and torch's default does that.
            n = torch.get_num_threads()
            return cls(n, f"{device_type} run: torch's default", adaptive=False)
        if processes > 1:
            n = torch.get_num_threads()
            return cls(n, f"{processes} data-parallel processes: torch's default", adaptive=False)
        cpus = usable_cores()
        cores = len(cpus)
        quota = cpu_quota()
        if quota is not None and quota < cores:
            cores = max(1, math.ceil(quota - 0.05))
        before = sample_cpus(cpus)
        if before is None:
            # No per-core counters here (not Linux): the load average is the best sign of others' work.
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
            n = choose_threads(cores, load)
            torch.set_num_threads(n)
            return cls(n, f"{_cores(cores)}, load average {load:.1f}", adaptive=False, cores=cores)
        time.sleep(sample_s)
        after = sample_cpus(cpus)
        busy = _within(others_busy(before, after, len(cpus)) if after else 0.0, cores, len(cpus))
        n = choose_threads(cores, busy)
        torch.set_num_threads(n)
        return cls(n, f"{_cores(cores)}, {busy:.1f} busy", adaptive=True, cores=cores, cpus=cpus, _last=after)

    def recheck(self, step: int) -> bool:
        """Measure others' load since the last check and follow it; return whether the count changed."""
        if not self.adaptive or self._last is None:
            return False
        now = sample_cpus(self.cpus)
        if now is None or now.wall - self._last.wall < MIN_WINDOW_S:
            return False  # the window keeps growing until it is long enough to read
        busy = others_busy(self._last, now, len(self.cpus))
        self._last = now
        if busy is None:
            return False
        busy = _within(busy, self.cores, len(self.cpus))
        n = choose_threads(self.cores, busy, current=self.chosen)
        if n == self.chosen:
            return False
        import torch

        torch.set_num_threads(n)
        if self.first is None:
            self.first = self.chosen
        self.changes.append({"step": step, "from": self.chosen, "threads": n, "reason": f"{_cores(self.cores)}, {busy:.1f} busy"})
        del self.changes[:-KEEP_CHANGES]
        self.change_count += 1
        self.chosen = n
        return True

    def record(self) -> dict[str, Any]:
        """The choice as run.json keeps it."""
        out: dict[str, Any] = {"chosen": self.chosen if self.first is None else self.first, "reason": self.reason,
                               "adaptive": self.adaptive}
        if self.changes:
            out["changes"] = list(self.changes)
        if self.change_count > len(self.changes):
            out["change_count"] = self.change_count
        return out


def _within(busy: float | None, cores: int, cpus: int) -> float:
    """Return how much of a quota of ``cores`` (out of ``cpus`` CPUs) others' ``busy`` cores take away.

    Under a CPU quota smaller than the CPUs it may run on, a process competes with others only
    once they leave it fewer idle CPUs than its quota.
    """
    return min(float(cores), max(0.0, (busy or 0.0) - (cpus - cores)))


def _cores(n: int) -> str:
    return f"{n} core" if n == 1 else f"{n} cores"


def inference_device(device: str = "auto") -> str:
    """Resolve ``--device``; on the CPU also take one thread per free core, as training does.

    Sampling, translating and evaluating on a shared machine suffer from torch's one thread per
    core as much as training does (``gencli.training.threads``); ``gencli --threads N`` still wins.
    """
    from gencli.training.device import resolve_device
    from gencli.training.threads import ThreadPolicy

    resolved = resolve_device(device)
    ThreadPolicy.start(resolved.type)
    return str(resolved)
