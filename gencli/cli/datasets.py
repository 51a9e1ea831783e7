"""`gencli datasets`: list datasets, show a card, or download and check one ahead of training."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from gencli.cli.common import complete_datasets, examples, handle_errors

EPILOG = examples(
    "gencli datasets",
    "gencli datasets --info monet2photo",
    "gencli datasets --prepare mnist --image-size 28",
)


@handle_errors
def datasets(
    info: Annotated[Optional[str], typer.Option("--info", help="Show a dataset's card: source, licence, citation, classes.",
                                                autocompletion=complete_datasets, show_default=False)] = None,
    prepare: Annotated[Optional[str], typer.Option("--prepare", help="Download and verify a dataset without training.",
                                                   autocompletion=complete_datasets, show_default=False)] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", help="With --prepare: also build the prepared cache at this size (decodes and checks every image).",
                                                      show_default=False)] = None,
    channels: Annotated[Optional[int], typer.Option("--channels", help="With --prepare --image-size: channels of the prepared cache.",
                                                    show_default="3")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List datasets, show their cards, or prepare one.

    A dataset whose files can be local (MNIST and Fashion-MNIST: their four IDX files) is looked
    for before it is downloaded: in the system dataset folder /usr/share/datasets/NAME
    (GENCLI_SYSTEM_DATASETS names another folder), then in DIR/NAME for each DIR of
    GENCLI_DATASET_PATH (colon-separated), then in the cache GENCLI_DATA_DIR/NAME. The "found"
    column (the "found" key of --json) says where each one is: system, path, cache, generated or
    not present. A folder of IDX files given as --data FOLDER is a labelled dataset whose t10k-
    files are the held-out split.
    """
    from gencli.data import cards
    from gencli.plugins import registry
    from gencli.ui.console import out

    reg = registry()
    if not (prepare or info):
        reg.warn_clashes("dataset")  # listing: every clash of dataset names, with the name to use
    if prepare:
        from gencli.training.settings import check_flag

        check_flag("image_size", image_size)  # the bounds of `gencli train`'s flags
        check_flag("channels", channels)
        line = cards.prepare_dataset(prepare, image_size, channels)
        if json_out:
            _print_json({"prepared": reg.dataset(prepare).name, "summary": line})
        else:
            out.print(line, highlight=False, markup=False)
        return
    if info:
        card = cards.dataset_card(reg.dataset(info))
        _print_json(card) if json_out else render_card(card)
        return
    rows = cards.dataset_rows(reg)
    _print_json(rows) if json_out else render_rows(rows)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], dict):
            return "\n".join(_text(v) for v in value)
        return ", ".join(str(v) for v in value)
    return str(value)


def render_rows(rows: list[dict], console=None) -> None:
    """Print the dataset rows as a Rich table."""
    from rich import box
    from rich.table import Table

    from gencli.data.cards import compact_count, human_bytes
    from gencli.ui.console import out

    console = console or out
    wide = console.width >= 120  # the summary only where it has room to be read
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("kind", no_wrap=True)
    table.add_column("images", justify="right", no_wrap=True)
    table.add_column("native", no_wrap=True)
    table.add_column("on disk", justify="right", no_wrap=True)
    table.add_column("cached", no_wrap=True)
    table.add_column("found", no_wrap=True)
    if wide:
        table.add_column("summary", overflow="fold", ratio=1)
    for row in rows:
        styled = {"yes": "[green]yes[/]", "no": "[dim]no[/]", "generated": "[cyan]generated[/]",
                  "unverified": "[yellow]unverified[/]"}
        cached = styled.get(row["cached"], row["cached"])
        found = {"not present": "[dim]not present[/]"}.get(row["found"], row["found"])
        cells = [row["name"], row["kind"], compact_count(row["images"]), str(row["resolution"]),
                 human_bytes(row["on_disk"]), cached, found]
        table.add_row(*cells, *([row["summary"]] if wide else []))
    console.print(table)
    console.print("[dim]details: gencli datasets --info NAME; fetch ahead of time: gencli datasets --prepare NAME[/]")


def render_card(card: dict, console=None) -> None:
    """Print one dataset card as a two-column Rich table."""
    from rich.markup import escape
    from rich.table import Table

    from gencli.data.cards import human_bytes
    from gencli.ui.console import out

    console = console or out
    table = Table(title=escape(f"{card['name']}: {card['summary']}"), title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in card.items():
        if key in ("name", "summary", "count", "native") or value in (None, "", [], {}):
            continue
        if key == "on_disk":
            value = human_bytes(value)
        if key == "prepared":
            value = "\n".join(f"{e['split']} at {e['size']} px, {e['channels']} channel(s): {e['images']:,} images "
                              f"({human_bytes(e['bytes'])})" for e in value)
        table.add_row(key.replace("_", " "), escape(_text(value)))
    console.print(table)
