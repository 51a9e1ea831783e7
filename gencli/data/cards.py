"""Dataset cards: what ``gencli datasets`` lists, shows with ``--info NAME`` and fetches with ``--prepare NAME``.

Where a dataset lives: ``GENCLI_DATA_DIR/NAME/`` (its files), ``GENCLI_DATA_DIR/downloads/NAME/``
(its archive) and ``GENCLI_DATA_DIR/prepared/`` (its prepared caches); a set whose files can be
local (MNIST's IDX files) may also lie in the system dataset folder or on ``GENCLI_DATASET_PATH``
(``gencli.data.local``). Listing reads only those folders and the cards; it never imports a
dataset's builder.
"""

from __future__ import annotations

import re
from typing import Any

from gencli.registry import DatasetSpec

KIND_NAMES = {"images": "unlabelled", "labelled": "labelled", "paired": "paired", "unpaired": "unpaired"}


def human_bytes(n: int | None) -> str:
    """Return ``n`` bytes as '1.2 GB' ('-' for nothing)."""
    if not n:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def compact_count(n: int | None) -> str:
    """Return an image count as '506', '2.7k', '203k'."""
    if n is None:
        return "?"
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1000:.0f}k"


def image_count(info: dict) -> int | None:
    """Return the card's total image count: ``count``, else the numbers of its ``images`` line."""
    if isinstance(info.get("count"), int):
        return info["count"]
    text = str(info.get("images", ""))
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]
    if not numbers:
        return None
    return sum(numbers) if "train" in text else numbers[0]


def native_resolution(info: dict) -> str:
    """Return the card's short native resolution: ``native``, else the first 'WxH' of ``resolution``."""
    if info.get("native"):
        return str(info["native"])
    match = re.search(r"\d+x\d+", str(info.get("resolution", "")))
    return match.group(0) if match else ("any" if "any" in str(info.get("resolution", "")) else "?")


def _is_generated(spec: DatasetSpec) -> bool:
    return "generated" in str(spec.info.get("source", ""))


def _prepared_by_dataset() -> dict[str, list[dict]]:
    from gencli.data.cache import list_entries

    found: dict[str, list[dict]] = {}
    for entry in list_entries():
        found.setdefault(entry["dataset"], []).append(entry)
    return found


def _storage(spec: DatasetSpec, prepared: dict[str, list[dict]]) -> dict[str, Any]:
    """Return where ``spec`` lives on disk, how much it takes and whether it is there."""
    from gencli.data.download import completeness, disk_usage
    from gencli.data.roots import data_root

    root = data_root()
    folder, downloads = root / spec.name, root / "downloads" / spec.name
    entries = prepared.get(spec.name, [])
    # Only a download that finished (or data read back whole) counts: a failed one leaves folders.
    state = completeness(folder)
    present = state != "no"
    on_disk = disk_usage(folder) + disk_usage(downloads) + sum(e["bytes"] for e in entries)
    cached = "generated" if _is_generated(spec) else state
    found, found_at = _found(spec, present)
    return {"location": str(folder), "archive_folder": str(downloads), "present": present,
            "on_disk": on_disk, "cached": cached, "prepared": entries, "found": found, "found_at": found_at}


def _found(spec: DatasetSpec, in_cache: bool) -> tuple[str, str | None]:
    """Return where the dataset's files were found ("system", "path", "cache", "generated" or
    "not present"), and the folder, in the order loading looks for them (``gencli.data.local``)."""
    from gencli.data.local import find_local

    if _is_generated(spec):
        return "generated", None
    local = find_local(spec.name, spec.info)
    if local is not None:
        return local[0], str(local[1])
    if in_cache and spec.info.get("local_format") is None:
        from gencli.data.roots import data_root

        return "cache", str(data_root() / spec.name)
    return "not present", None


def dataset_rows(registry) -> list[dict]:
    """Return one row per registered dataset: name, kind, summary, size on disk, image count,
    native resolution and whether it is already on this machine."""
    prepared = _prepared_by_dataset()
    rows = []
    for name, spec in sorted(registry.datasets.items()):
        if ":" in name:  # "plugin:name" aliases
            continue
        storage = _storage(spec, prepared)
        rows.append({
            "name": name,
            "kind": KIND_NAMES.get(spec.kind, spec.kind),
            "summary": spec.summary,
            "images": image_count(spec.info),
            "resolution": native_resolution(spec.info),
            "download_size": spec.info.get("download_size", ""),
            "on_disk": storage["on_disk"],
            "cached": storage["cached"],
            "found": storage["found"],
            "prepared": len(storage["prepared"]),
            "plugin": spec.plugin,
        })
    return rows


def dataset_card(spec: DatasetSpec) -> dict:
    """Return everything known about a dataset: its card plus name, kind, summary and storage."""
    storage = _storage(spec, _prepared_by_dataset())
    card = {"name": spec.name, "kind": KIND_NAMES.get(spec.kind, spec.kind), "summary": spec.summary}
    card.update(spec.info)
    from gencli.data.roots import data_root

    card.update({"plugin": spec.plugin, "data_dir": str(data_root()), "location": storage["location"],
                 "cached": storage["cached"], "found": storage["found"], "found_at": storage["found_at"],
                 "on_disk": storage["on_disk"], "prepared": storage["prepared"]})
    return card


def prepare_dataset(spec_name: str, image_size: int | None = None, channels: int | None = None) -> str:
    """Download, verify and extract a dataset (and with ``image_size`` build its prepared caches);
    return a one-line summary."""
    from gencli.plugins import registry

    spec = registry().dataset(spec_name)
    builder = spec.load()
    if hasattr(builder, "prepare"):
        return builder.prepare(image_size, channels)
    # Any other builder: building both splits once downloads and checks everything it needs.
    from gencli.data.base import DataRequest

    counts = {}
    for split in ("train", "test"):
        data = builder(DataRequest(image_size or 32, channels or 3, split))
        counts[split] = len(data)
    return (f"prepared {spec.name}: {sum(counts.values()):,} images "
            f"(train {counts['train']:,}, test {counts['test']:,})")


prepare = prepare_dataset
