"""An adversarial model with several optimizers trains data-parallel as it trains in one process.

CycleGAN has no batch statistics (instance norm), so 2 gloo processes with a global batch of 2
must reproduce one process with batch 2: the explicit gradient averaging of the G and D
optimizers, the frozen discriminators of the generator update and the shared augmentation draws
all take part.
"""

import json
import os
import subprocess
import sys

import torch

from gencli.runs import load_trained

ARGS = ["train", "cyclegan", "--data", "shapes-unpaired", "--steps", "6", "--batch-size", "2", "--image-size", "16",
        "--seed", "3", "--set", "ngf=8", "--set", "ndf=8", "--set", "blocks=1", "--set", "pool_size=0",
        "--sample-every", "6", "--checkpoint-every", "6"]


def test_two_gloo_processes_train_cyclegan_as_one_process_does(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENCLI_RUNS_DIR": str(tmp_path / "runs")}
    for out, extra in (("single", []), ("double", ["--devices", "2"])):
        done = subprocess.run([sys.executable, "-m", "gencli", "-q", *ARGS, "--out", out, *extra], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr + done.stdout

    def rows(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    one, two = rows("single"), rows("double")
    assert [r["step"] for r in two] == [r["step"] for r in one]  # one log line per step: only rank 0 writes
    for r1, r2 in zip(one, two):
        for key in ("g_ab", "g_ba", "cycle_a", "cycle_b", "d_a", "d_b"):
            assert abs(r1[key] - r2[key]) <= 1e-4 * max(1.0, abs(r1[key])), (r1["step"], key)
    # The same functions: biases right before an instance norm have no gradient at all, so Adam
    # moves them by rounding noise; what the networks compute is compared instead of raw weights.
    a, b = load_trained(str(tmp_path / "single")), load_trained(str(tmp_path / "double"))
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        for direction in ("a2b", "b2a"):
            torch.testing.assert_close(a.translate(x, direction), b.translate(x, direction), rtol=1e-4, atol=1e-4)
        for name in ("D_A", "D_B"):
            torch.testing.assert_close(a.nets[name](x), b.nets[name](x), rtol=1e-4, atol=1e-4)
    assert not (tmp_path / "runs").exists(), "no process wrote a second run directory"
