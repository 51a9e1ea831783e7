"""benchmarks/bench_league.py: reading its FD-over-minutes curves (lines reached, FD at equal minutes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_league  # noqa: E402

CURVE = [{"minutes": 1.02, "fd": 80.0}, {"minutes": 5.1, "fd": 30.0}, {"minutes": 10.3, "fd": 12.0},
         {"minutes": 30.2, "fd": 14.0}]


def test_a_line_is_reached_at_the_first_snapshot_at_or_below_it():
    assert bench_league.crossing_minutes(CURVE, 30.0) == 5.1
    assert bench_league.crossing_minutes(CURVE, 13.0) == 10.3
    assert bench_league.crossing_minutes(list(reversed(CURVE)), 13.0) == 10.3  # by minutes, not list order
    assert bench_league.crossing_minutes(CURVE, 11.9) is None


def test_fd_at_equal_minutes_takes_the_last_snapshot_taken_by_then():
    assert bench_league.fd_at(CURVE, 10) == 12.0  # 10.3 lands a step after the 10-minute mark
    assert bench_league.fd_at(CURVE, 30) == 14.0  # the last one, not the best
    assert bench_league.fd_at(CURVE, 20) == 12.0
    assert bench_league.fd_at(CURVE, 0.5) is None
