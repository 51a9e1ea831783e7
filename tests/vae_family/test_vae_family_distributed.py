"""Data-parallel runs of the models with shared state (controller, codebook) match a single process."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from gencli.runs.checkpoints import latest_checkpoint

COMMON = ["--steps", "6", "--batch-size", "16", "--image-size", "16", "--seed", "3", "--sample-every", "6",
          "--checkpoint-every", "6"]
MODELS = {
    # beta comes from the KL of the global batch; batch norm would differ per process, so none
    "controlvae": ["--set", "widths=8,16", "--set", "norm=none", "--set", "kl_target=1", "--set", "ki=0.05"],
    # EMA statistics and dead-code restarts must see the global batch, or the codebooks drift apart
    "vqvae": ["--set", "hidden=16", "--set", "res_hidden=8", "--set", "res_blocks=1", "--set", "codebook_size=16",
              "--set", "code_dim=8", "--set", "ema=true", "--set", "restart_after=2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_gloo_processes_match_one_process(model, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENCLI_RUNS_DIR": str(tmp_path / "runs")}
    args = [sys.executable, "-m", "gencli", "-q", "train", model, *COMMON, *MODELS[model]]
    for out, extra in (("single", []), ("double", ["--devices", "2"])):
        done = subprocess.run([*args, "--out", out, *extra], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr + done.stdout
    a = load_file(str(latest_checkpoint(tmp_path / "single") / "weights.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "double") / "weights.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        # Adam divides each gradient by its own running scale, so where a gradient is near zero the
        # all-reduce's different summation order can move a weight by up to a few 1e-5 (measured
        # 1.3e-5 on this CPU); a process that missed half the batch moves weights by ~lr (1e-3) a step
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=5e-5, msg=key)

    def rows(run):
        return [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    watched = "beta" if model == "controlvae" else "perplexity"
    one, two = [r[watched] for r in rows("single")], [r[watched] for r in rows("double")]
    assert one == pytest.approx(two, rel=1e-4)
    # rank 0 saves the checkpoint: its own controller state must be the single process's
    states = [torch.load(latest_checkpoint(tmp_path / run) / "state.pt", weights_only=True)["extra"]
              for run in ("single", "double")]
    torch.testing.assert_close(states[0], states[1], rtol=1e-5, atol=1e-7)
