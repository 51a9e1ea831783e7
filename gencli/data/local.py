"""Where a named dataset's files may already lie on this machine, before anything is downloaded.

A dataset whose card says its files can be local (``"local_format": "idx"``: a folder of the four
IDX files) is looked for, in this order, in

1. the system dataset folder ``/usr/share/datasets/NAME`` (where Debian's ``dataset-*`` packages
   put them; ``GENCLI_SYSTEM_DATASETS`` names another folder instead of ``/usr/share/datasets``),
2. ``DIR/NAME`` for each folder ``DIR`` of ``GENCLI_DATASET_PATH`` (colon-separated),
3. the cache ``GENCLI_DATA_DIR/NAME`` (or ``GENCLI_DATA_DIR/NAME/*/raw``, torchvision's layout),

and only then downloaded. No torch at import time (the dataset listing uses this module).
"""

from __future__ import annotations

from pathlib import Path

from gencli.data.roots import PATH_ENV, SYSTEM_DATASETS, SYSTEM_ENV, data_root, search_path, system_root  # noqa: F401 - names of this module


def candidates(name: str) -> list[tuple[str, Path]]:
    """Return (where, folder) for every place dataset ``name`` may lie, in lookup order."""
    found = [("system", system_root() / name), *(("path", d / name) for d in search_path())]
    cache = data_root() / name
    found.append(("cache", cache))
    if cache.is_dir():  # torchvision downloads into NAME/ClassName/raw/
        found += [("cache", raw) for raw in sorted(cache.glob("*/raw")) if raw.is_dir()]
    return found


def find_local(name: str, info: dict, split: str | None = None) -> tuple[str, Path] | None:
    """Return (where, folder) of the first local copy of dataset ``name``, or None.

    Only datasets whose card sets ``local_format`` are looked for. With ``split`` the copy must
    hold that split's images.
    """
    if info.get("local_format") != "idx":
        return None
    from gencli.data.idx import has_idx_split, is_idx_folder

    for where, folder in candidates(name):
        if is_idx_folder(folder) if split is None else has_idx_split(folder, split):
            return where, folder
    return None


def known_idx_dataset(folder: Path):
    """Return the registered dataset an IDX folder is a copy of (matched by the folder's name), or None."""
    from gencli.plugins import registry

    spec = registry().datasets.get(folder.name)
    if spec is not None and spec.info.get("local_format") == "idx":
        return spec
    return None


def offline_hint(name: str, info: dict) -> str:
    """Return where else to put the files, or what to install, so that dataset ``name`` is found offline."""
    if info.get("local_format") != "idx":
        return ""
    hint = f", or its four IDX files into DIR/{name} for a folder DIR of {PATH_ENV}"
    package = info.get("apt_package")
    return hint + (f", or install Debian's {package} (apt-get install {package})" if package else "")
