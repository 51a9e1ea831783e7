"""Data-parallel training: 2 processes with gloo on the CPU match one process with the same global batch."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

from gencli.training.checkpoint import latest_checkpoint

ARGS = ["train", "vae", "--steps", "6", "--batch-size", "16", "--image-size", "16", "--seed", "3",
        "--set", "widths=8,16", "--set", "norm=none", "--sample-every", "3", "--checkpoint-every", "6"]


def _run(cmd, cwd, env):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_two_gloo_processes_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENCLI_RUNS_DIR": str(tmp_path / "runs")}
    single = _run([sys.executable, "-m", "gencli", "-q", *ARGS, "--out", "single"], tmp_path, env)
    assert single.returncode == 0, single.stderr
    # `--devices 2` relaunches the same command under torchrun (gloo, since there is no GPU)
    double = _run([sys.executable, "-m", "gencli", "-q", *ARGS, "--out", "double", "--devices", "2"], tmp_path, env)
    assert double.returncode == 0, double.stderr + double.stdout
    assert [os.path.basename(line) for line in double.stdout.split()] == ["double"], "one process prints the run"

    a = load_file(str(latest_checkpoint(tmp_path / "single") / "weights.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "double") / "weights.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)

    def rows(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    one, two = rows("single"), rows("double")
    # only rank 0 writes: one log line per logged step, not one per process
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for r1, r2 in zip(one, two):
        assert abs(r1["loss"] - r2["loss"]) <= 1e-3 * abs(r1["loss"])
    info = json.loads((tmp_path / "double" / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "finished"
    assert sorted(p.name for p in (tmp_path / "double" / "samples").iterdir()) == ["step-00000003.png", "step-00000006.png"]
    assert not (tmp_path / "runs").exists(), "no process wrote a second run directory"


def test_batch_size_must_split_across_processes(tmp_path):
    from gencli.data.base import BatchStream, DataRequest
    from gencli.data.synthetic import build_shapes

    import pytest

    from gencli.errors import UserError

    with pytest.raises(UserError, match="divisible by the 2 processes"):
        BatchStream(build_shapes(DataRequest(8, 1, options={"size": 20})), 5, rank=0, world_size=2)


def test_shutdown_releases_the_process_group(tmp_path):
    """No module may keep the group alive after shutdown: gloo's threads would outlive Python and abort."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = (
        "import gc, sys, torch, torch.distributed as dist\n"
        "from gencli.training import distributed as d\n"
        "d.join_group('gloo')\n"
        "pg = dist.group.WORLD\n"
        "torch.optim.Adam(torch.nn.Linear(2, 2).parameters())  # loads torch's lazily imported modules\n"
        "d.shutdown(); gc.collect()\n"
        "print(sys.getrefcount(pg) - 2)\n"
    )
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1"}
    out = _run([sys.executable, "-c", script], tmp_path, env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0", f"{out.stdout.strip()} references to the destroyed process group remain"
