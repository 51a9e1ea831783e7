"""Commands a user waits on interactively import no torch: listings, cards, model info and completion.

Each command runs in a fresh interpreter, the way the shell starts it (completion through the
``_GENCLI_COMPLETE`` protocol the installed completion script uses), which then reports whether
torch was imported. No timings here: benchmarks/bench_startup.py measures them.
"""

from __future__ import annotations

import json

import pytest
from cli_helpers import probe_cli


def probe(args: list[str], env: dict[str, str] | None = None) -> dict:
    """The Typer path itself (``gencli.cli``), also for completions: the entry point's fast completer has
    its own tests (tests/test_fast_completion.py)."""
    return probe_cli(args, env, entry="gencli.cli")


def complete(line: str, env: dict[str, str] | None = None) -> dict:
    """Ask for the completions of ``line`` (the word under the cursor last, possibly empty) as bash does."""
    words = line.split(" ")
    return probe([], {"_GENCLI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1),
                      **(env or {})})


@pytest.mark.parametrize("args", [
    ["models"],
    ["models", "--info", "vae"],
    ["models", "--info", "dcgan", "--json"],
    ["models", "--info", "stylegan"],
    ["models", "--info", "cyclegan"],
    ["models", "--info", "ddpm", "--json"],
    ["datasets"],
    ["datasets", "--json"],
    ["datasets", "--info", "mnist"],
    ["plugins"],
], ids=" ".join)
def test_interactive_commands_import_no_torch(args):
    result = probe(args)
    assert result["code"] == 0, result
    assert result["out"].strip()
    assert result["torch"] is False, f"`gencli {' '.join(args)}` imported torch"


def test_models_info_reads_the_light_declarations():
    result = probe(["models", "--info", "ddpm", "--json"])
    info = json.loads(result["out"])
    assert info["capabilities"] == ["sample", "interpolate"] and info["conditional"] is True
    assert [f["name"] for f in info["figures"]] == ["forward-noise"]
    assert {o["name"] for o in info["options"]["sample"]} == {"steps", "guidance", "eta", "sampler"}
    assert result["torch"] is False


def test_completing_set_lists_the_models_hyperparameters_without_torch():
    result = complete("gencli train vae --set ")
    assert result["out"].split() == ["lr=", "latent_dim=", "beta=", "recon=", "widths=", "norm=", "label_maps=",
                                     "prior="]
    assert result["torch"] is False
    # keys already given are not offered again; a prefix narrows the list
    assert complete("gencli train vae --set lr=1e-3 --set ")["out"].split()[0] == "latent_dim="
    assert complete("gencli train ddpm --set samp")["out"].split() == ["sampling_steps="]


def test_completing_set_after_a_run_lists_that_commands_options(tmp_path):
    run = tmp_path / "runs" / "stylegan-shapes"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "gencli_version": "0.1.0", "model": "stylegan", "hyperparameters": {}, "data": {"image_shape": [3, 16, 16]},
        "training": {}}))
    sample = complete(f"gencli sample {run} --set ")
    assert sample["out"].split() == ["truncation=", "noise="] and sample["torch"] is False
    assert complete(f"gencli interpolate {run} --set ")["out"].split() == ["space=", "truncation="]
    figures = complete(f"gencli sample {run} --figure ")
    assert figures["out"].split() == ["style-mix"] and figures["torch"] is False
    assert complete(f"gencli sample {run} --figure style-mix --set ")["out"].split() == ["truncation=", "noise="]
    # a model name stands for its latest run
    assert complete("gencli eval ddpm --set ")["out"].split() == ["steps=", "guidance=", "eta=", "sampler="]


def test_completing_names_imports_no_torch():
    models = complete("gencli train v")
    assert models["out"].split() == ["vae", "vqvae", "vqvae-prior"] and models["torch"] is False
    data = complete("gencli train vae --data shapes-")
    assert data["out"].split() == ["shapes-paired", "shapes-unpaired"] and data["torch"] is False


def test_a_plugin_that_declares_everything_beside_its_networks_still_answers():
    # The example plugin keeps its declarations in its model module: `--info` and completion work,
    # by importing that module (and torch).
    result = probe(["models", "--info", "ae", "--json"])
    assert result["code"] == 0 and json.loads(result["out"])["hyperparameters"]
    assert result["torch"] is True
    keys = complete("gencli train ae --set ")["out"].split()
    assert keys and all(k.endswith("=") for k in keys)


def test_the_conformance_kit_catches_declarations_that_drift_from_the_class(monkeypatch):
    from gencli.testing import ConformanceError, check_declarations
    from gencli_vae import declarations

    check_declarations("vae")
    monkeypatch.setattr(declarations.VAEDeclarations, "offers", ("sample",))
    with pytest.raises(ConformanceError, match="offers"):
        check_declarations("vae")
