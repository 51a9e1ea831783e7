"""The model card: README.md written at the end of training and refreshed by `gencli eval`; its
front matter parses, it names the model and metrics, its sample link and its loading code work,
and a stranger's strings cannot break out of their places."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from gencli.training.engine import TrainConfig, train

    root = tmp_path_factory.mktemp("model-card")
    return train(TrainConfig(model="vae", data="shapes", steps=2, image_size=16, batch_size=8, overrides={"widths": "8,16"},
                             quiet=True, sample_count=4, out=root / "run"))


def parse_front_matter(text: str) -> dict:
    """Parse the card's YAML subset: nested block mappings and sequences, scalars JSON-quoted or numbers."""
    assert text.startswith("---\n")
    block = text[4 : text.index("\n---\n", 4)]
    lines = [(len(line) - len(line.lstrip(" ")), line.strip()) for line in block.splitlines() if line.strip()]

    def parse(i: int, indent: int):
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                rest = lines[i][1][2:]
                if ":" in rest and not rest.startswith('"'):  # a mapping inside the list item
                    lines[i] = (indent + 2, rest)
                    value, i = parse(i, indent + 2)
                else:
                    value, i = json.loads(rest), i + 1
                items.append(value)
            return items, i
        mapping = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            key, _, rest = lines[i][1].partition(":")
            assert re.fullmatch(r"[a-z_-]+", key), lines[i]
            if rest.strip():
                mapping[key], i = json.loads(rest.strip()), i + 1
            else:
                mapping[key], i = parse(i + 1, lines[i + 1][0])
        return mapping, i

    parsed, end = parse(0, 0)
    assert end == len(lines), lines[end:]
    return parsed


def code_block(text: str, language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


def test_training_writes_a_card_and_eval_adds_its_metrics(run_dir, cli):
    card = (run_dir / "README.md").read_text()
    meta = parse_front_matter(card)
    assert meta["library_name"] == "gencli" and {"gencli", "vae", "unconditional-image-generation"} <= set(meta["tags"])
    assert meta["datasets"] == ["shapes"] and "model-index" not in meta
    assert "# vae trained on shapes" in card and "| latent\\_dim |" in card and "| status | finished |" in card

    result = cli("-q", "eval", run_dir, "--metrics", "mse", "--n", "8")
    assert result.exit_code == 0, result.output
    card = (run_dir / "README.md").read_text()
    metrics = parse_front_matter(card)["model-index"][0]["results"][0]["metrics"]
    assert [m["type"] for m in metrics] == ["mse"] and isinstance(metrics[0]["value"], float)
    assert "| mse |" in card

    link = re.search(r"!\[[^\]]*\]\(([^)]+)\)", card).group(1)
    assert link.startswith("samples/step-") and (run_dir / link).is_file()


def test_the_loading_code_in_the_card_rebuilds_the_same_model(run_dir, monkeypatch):
    from gencli.runs import Run

    code = code_block((run_dir / "README.md").read_text(), "python")
    monkeypatch.chdir(run_dir)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    loaded = namespace["model"]
    gencli_model = Run.open(run_dir).load_model(device="cpu")
    z = torch.randn(4, gencli_model.hp.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (loaded.decode(z) - gencli_model.decode(z)).abs().max() < 1e-5


def test_a_strangers_strings_stay_in_their_places(run_dir):
    from gencli.media.model_card import model_card
    from gencli.runs import Run

    run = Run.open(run_dir)
    hostile = 'x"\n---\nlicense: "stolen"\n<script>|'
    run.info = {**run.info, "plugin": hostile, "status": hostile,
                "data": {**run.info["data"], "spec": hostile, "classes": ["a|b", "c\n## Injected"]},
                "hyperparameters": {**run.info["hyperparameters"], "evil|key": hostile}}
    card = model_card(run)
    meta = parse_front_matter(card)
    assert set(meta) <= {"library_name", "tags", "pipeline_tag", "model-index"} and hostile in meta["tags"]
    assert "datasets" not in meta  # not a registered dataset's name
    assert "<script>" not in card and "\n## Injected" not in card and "\nlicense:" not in card
    for line in card.splitlines():
        if line.startswith("| "):  # a table row keeps its two cells
            assert len(re.findall(r"(?<!\\)\|", line)) == 3, line
