"""Fill the hyperparameter tables of docs/models/*.md from the models themselves.

    python scripts/model_docs.py          # rewrite the tables in place
    python scripts/model_docs.py --check  # exit 1 when a table differs from its model

A page marks where a model's table goes with a pair of comments:

    <!-- hyperparameters: dcgan -->
    (the table, rewritten by this script)
    <!-- end hyperparameters -->

The table is what `gencli models --info dcgan` prints: name, type, default and help of each field
of the model's hyperparameter dataclass. A model that is not installed leaves its table as it is.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "docs" / "models"
BLOCK = re.compile(r"(<!-- hyperparameters: (?P<name>[\w-]+) -->\n)(?P<table>.*?)(<!-- end hyperparameters -->)", re.S)


def table(model: str) -> str | None:
    """Return the Markdown table of ``model``'s hyperparameters, or None when it is not installed."""
    from gencli.models import hparams
    from gencli.plugins import registry

    spec = registry().models.get(model)
    if spec is None:
        return None
    try:
        cls = spec.load()
    except Exception:
        return None
    cell = lambda text: " ".join(str(text).split()).replace("|", "\\|")  # noqa: E731
    lines = ["| Name | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for name, kind, default, help_text in hparams.describe(cls.Hyperparameters):
        lines.append(f"| `{name}` | {cell(kind)} | `{cell(default)}` | {cell(help_text)} |")
    return "\n".join(lines) + "\n"


def render(text: str) -> str:
    """Return page ``text`` with every marked table regenerated."""
    def fill(match: re.Match) -> str:
        fresh = table(match["name"])
        return match.group(0) if fresh is None else match.group(1) + fresh + match.group(4)

    return BLOCK.sub(fill, text)


def main(argv: list[str]) -> int:
    stale = []
    for page in sorted(PAGES.glob("*.md")):
        text = page.read_text()
        fresh = render(text)
        if fresh == text:
            continue
        if "--check" in argv:
            stale.append(str(page.relative_to(ROOT)))
        else:
            page.write_text(fresh)
            print(page.relative_to(ROOT))
    if stale:
        print(f"out of date: {', '.join(stale)}: run python scripts/model_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
