"""benchmarks/bench_roofline.py: the per-call FLOPs it reads from torch.profiler events, and its categories."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_roofline  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5))


def test_profiled_convolution_flops_match_the_flop_counter_and_time_is_categorised():
    net = _net()
    opt = torch.optim.Adam(net.parameters())
    x = torch.randn(2, 3, 8, 8)

    def step():
        with record_function("bench:data"):
            batch = x * 1.0
        opt.zero_grad()
        net(batch).square().mean().backward()
        opt.step()

    step()  # the optimizer's state exists before counting
    with FlopCounterMode(display=False) as counter:
        step()
    counts = counter.get_flop_counts()["Global"]
    conv = sum(v for op, v in counts.items() if "convolution" in str(op))
    assert conv > 0
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    out = bench_roofline.categorise(prof.events(), wall=10.0)
    assert out["conv_flops"]["conv small"] + out["conv_flops"]["conv large"] == conv
    seconds = out["seconds"]
    for category in ("conv small", "GEMM", "memory-bound", "optimizer", "data"):
        assert seconds[category] > 0, category
    assert seconds["overhead"] == pytest.approx(10.0 - sum(v for k, v in seconds.items() if k != "overhead"))
