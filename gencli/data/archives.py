"""Datasets published as one archive, by name: the CycleGAN and pix2pix sets, and the class
that every archive dataset of the zoo shares.

An ``ArchiveDataset`` is a builder (``dataset(request) -> ImageData``) that on first use
downloads its archive into ``GENCLI_DATA_DIR/downloads/NAME/`` (progress, resume, checksum),
extracts it safely into ``GENCLI_DATA_DIR/NAME/``, checks that the layout is the expected one,
and reads it as a dataset folder through the prepared cache. A file placed at the archive's
path by hand (offline machines) is used as if downloaded.

Name clashes between the two collections: ``maps``, ``facades`` and ``cityscapes`` are the
pix2pix paired sets; the CycleGAN unpaired versions are ``cyclegan-maps``,
``cyclegan-facades`` and ``cyclegan-cityscapes``.

No torch at import time (the catalog of dataset cards imports this module).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from gencli.data.roots import MIRROR_ENV
from gencli.errors import UserError
from gencli.registry import DataKind


def _download():
    """The downloader module, imported when first needed: listing datasets must stay fast."""
    from gencli.data import download

    return download

CYCLEGAN_URL = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
PIX2PIX_URL = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"

CYCLEGAN_CITATION = ("Zhu, Park, Isola, Efros 2017, Unpaired Image-to-Image Translation using "
                     "Cycle-Consistent Adversarial Networks (ICCV)")
PIX2PIX_CITATION = ("Isola, Zhu, Zhou, Efros 2017, Image-to-Image Translation with Conditional "
                    "Adversarial Networks (CVPR)")
CITYSCAPES_CITATION = "Cordts et al. 2016, The Cityscapes Dataset for Semantic Urban Scene Understanding (CVPR)"
FACADES_CITATION = ("Tylecek and Sara 2013, Spatial Pattern Templates for Recognition of Objects with Regular "
                    "Structure (GCPR)")


@dataclass(frozen=True)
class ArchiveDataset:
    """A dataset that arrives as one archive and unpacks into a folder layout."""

    name: str
    summary: str
    kind: DataKind
    filename: str  # the archive's file name, e.g. ``horse2zebra.zip``
    base_url: str | None  # None: no public download (placed by hand, or from a mirror)
    required: tuple[str, ...] = ()  # sub-folders the unpacked layout must hold
    layout: str = ""  # that layout in words, for errors and cards
    sha256: str | None = None  # known checksum; otherwise recorded on first download
    skip_corrupt: bool = False  # the archive is known to hold broken images
    recursive: bool = False  # every image under the folder, whatever the sub-folders
    ignore: tuple[str, ...] = ()  # suffixes of side files that are neither images nor noise
    lower_classes: bool = False  # class folder names as lower-case class names
    by_hand: str = ""  # how to obtain it when there is no public download
    info: dict = field(default_factory=dict, compare=False, hash=False)

    # -- where things live -------------------------------------------------------------------

    @property
    def folder(self) -> Path:
        from gencli.data.base import data_root

        return data_root() / self.name

    @property
    def archive_path(self) -> Path:
        from gencli.data.base import data_root

        return data_root() / "downloads" / self.name / self.filename

    @property
    def url(self) -> str | None:
        """The download URL, honouring ``GENCLI_MIRROR`` / ``GENCLI_MIRROR_<NAME>``."""
        default = f"{self.base_url}/{self.filename}" if self.base_url else None
        if default:
            return _download().mirror_url(self.name, default)
        mirrored = _download().mirror_url(self.name, f"mirror:/{self.filename}")
        return None if mirrored.startswith("mirror:") else mirrored

    def is_present(self) -> bool:
        return _download().has_files(self.folder)

    # -- fetching ----------------------------------------------------------------------------

    def missing_message(self) -> str:
        how = self.by_hand.replace("GENCLI_DATA_DIR/", f"{self.folder.parent}/")
        return (
            f"dataset {self.name!r} is not in {self.folder} and has no public download: {how} "
            f"Then `--data {self.name}` finds it; or pass the unpacked folder itself as `--data PATH`."
        )

    def _locate(self, archive: Path):
        if not self.required:
            return _download().unwrap
        describe = self.layout or ", ".join(f"{r}/" for r in self.required)
        return lambda folder: _download().find_layout(folder, self.required, archive.name, describe)

    def fetch(self, console=None) -> Path:
        """Return the dataset folder, downloading and extracting the archive when it is missing."""
        if self.is_present():
            return self.folder
        archive = self.archive_path
        url = self.url
        if url is None and not archive.is_file():
            raise UserError(self.missing_message())
        if url is not None:
            _download().fetch(url, archive, self.sha256, console=console)
        elif not archive.is_file():
            raise UserError(self.missing_message())
        if self.folder.exists():  # empty folders left behind: replace them
            shutil.rmtree(self.folder)
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        return _download().extract(archive, self.folder, self._locate(archive), console=console)

    def _source(self, folder: Path) -> str:
        """Fingerprint of the unpacked files: the extraction record, or a scan when placed by hand."""
        from gencli.data.cache import fingerprint

        manifest = _download().read_manifest(folder)
        if manifest:
            return f"{manifest.get('archive')}:{manifest.get('files')}:{manifest.get('bytes')}:{manifest.get('extracted')}"
        return fingerprint(folder)

    # -- reading -----------------------------------------------------------------------------

    def scan(self, split: str):
        from gencli.data.folders import scan_folder

        folder = self.fetch()
        scan = scan_folder(folder, split, ignore=self.ignore, recursive=self.recursive, name=self.name)
        if scan.kind != self.kind and not (self.kind == "images" and scan.kind == "labelled"):
            raise UserError(
                f"dataset {self.name!r} in {folder} reads as {scan.kind}, not {self.kind}"
                + (f"; expected {self.layout}" if self.layout else "")
            )
        return scan

    def load(self, request, cache: bool = True):
        """Return (ImageData, preparation meta) for ``request``."""
        from gencli.data.folders import load_scan

        folder = self.fetch()
        variant = f"archive|recursive={self.recursive}|ignore={','.join(self.ignore)}"
        data, meta = load_scan(lambda: self.scan(request.split), request, dataset=self.name, source=self._source(folder),
                               variant=variant, skip_corrupt=self.skip_corrupt, cache=cache)
        if self.lower_classes and data.classes:
            data = replace(data, classes=[c.lower() for c in data.classes])
        _download().mark_complete(folder)  # placed by hand and now read whole: the listing can vouch for it
        return data, meta

    def __call__(self, request):
        """Return the dataset as ``ImageData`` at the request's size, channels and split."""
        return self.load(request)[0]

    def prepare(self, image_size: int | None = None, channels: int | None = None, console=None) -> str:
        """Fetch, verify and extract; with ``image_size`` also build the prepared caches (decoding,
        and so checking, every image). Return a one-line summary."""
        from gencli.data.base import DataRequest

        folder = self.fetch(console=console)
        counts, not_images, corrupt = {}, set(), set()
        for split in ("train", "test"):
            if image_size:
                data, meta = self.load(DataRequest(image_size, channels or 3, split))
                counts[split] = len(data.images) + (len(data.targets) if data.kind == "unpaired" else 0)
                not_images.update(meta.get("not_image_files", ()))
                corrupt.update(meta.get("corrupt_files", ()))
            else:
                scan = self.scan(split)
                counts[split] = len(scan.files) + len(scan.files_b or [])
                not_images.update(scan.report.skipped)
        return prepared_summary(self.name, folder, counts, len(not_images), len(corrupt) if image_size else None,
                                image_size)

    def card(self) -> dict:
        """Return the dataset card: source, licence, citation, counts and how to fetch by hand."""
        card = dict(self.info)
        if self.base_url:
            card["url"] = f"{self.base_url}/{self.filename}"
            card["fetch_by_hand"] = (
                f"download {self.base_url}/{self.filename} and put it at "
                f"GENCLI_DATA_DIR/downloads/{self.name}/{self.filename}; gencli verifies and extracts it "
                f"on the next run (or set {MIRROR_ENV} to a server holding the same file name)"
            )
        else:
            card["fetch_by_hand"] = (
                f"{self.by_hand} An archive of that folder placed at "
                f"GENCLI_DATA_DIR/downloads/{self.name}/{self.filename} is extracted too."
            )
        if self.layout:
            card["layout"] = self.layout
        return card


def prepared_summary(name: str, folder: Path, counts: dict[str, int], not_images: int, corrupt: int | None,
                     image_size: int | None) -> str:
    """Return the line ``gencli datasets --prepare`` prints, e.g. 'prepared cats-vs-dogs: 24,998
    images (train 22,498, test 2,500) in ...; skipped 2 non-image file(s) and 2 unreadable image(s)'."""
    split_text = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    line = f"prepared {name}: {sum(counts.values()):,} images ({split_text}) in {folder}"
    line += f"; cached at {image_size} px" if image_size else "; images are decoded and checked when first used at a size"
    skipped = [f"{not_images:,} non-image file(s)"] if not_images else []
    skipped += [f"{corrupt:,} unreadable image(s)"] if corrupt else []
    return line + ("; skipped " + " and ".join(skipped) if skipped else "")


# ----------------------------------------------------------------------------- the archives


def _total(counts: str) -> int:
    """The number of images a counts line such as '1,067 A + 1,334 B train / 120 A + 140 B test' adds up to."""
    return sum(int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", counts))


def _cyclegan(name: str, summary: str, a: str, b: str, counts: str, download: str, **info) -> ArchiveDataset:
    upstream = name.removeprefix("cyclegan-")
    card = {"source": f"CycleGAN datasets, {CYCLEGAN_URL}/", "licence": info.pop("licence", "research use; "
            "images from ImageNet, Flickr or Wikiart keep their owners' terms"),
            "citation": info.pop("citation", CYCLEGAN_CITATION), "images": counts, "count": _total(counts),
            "resolution": "256x256, 3 channels", "native": "256x256",
            "download_size": download, "domains": {"A": a, "B": b}, **info}
    return ArchiveDataset(name, summary, "unpaired", f"{upstream}.zip", CYCLEGAN_URL, ("trainA", "trainB"),
                          "trainA/ trainB/ testA/ testB/ image folders", info=card)


def _pix2pix(name: str, summary: str, a: str, b: str, counts: str, download: str, resolution: str,
             **info) -> ArchiveDataset:
    card = {"source": f"pix2pix datasets, {PIX2PIX_URL}/", "licence": info.pop("licence", "research use"),
            "citation": info.pop("citation", PIX2PIX_CITATION), "images": counts, "count": _total(counts),
            "resolution": resolution, "native": resolution.rsplit(" ", 1)[-1],
            "download_size": download, "domains": {"A": a, "B": b},
            "direction": "A is the left half, B the right; pix2pix's `direction` hyperparameter swaps them", **info}
    return ArchiveDataset(name, summary, "paired", f"{name}.tar.gz", PIX2PIX_URL, ("train",),
                          "train/ and val/ (or test/) folders of side-by-side AB images", info=card)


_CITYSCAPES_BY_HAND = (
    "Cityscapes may not be redistributed: register at https://www.cityscapes-dataset.com, download "
    "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, and build the {layout} with "
    "datasets/prepare_cityscapes_dataset.py from https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix; "
    "put the result at GENCLI_DATA_DIR/{name}/."
)

_LIST: list[ArchiveDataset] = [
    _cyclegan("monet2photo", "Monet paintings (A) and landscape photos (B), unpaired, 256 px",
              "Monet paintings", "photos", "1,072 A + 6,287 B train / 121 A + 751 B test", "about 290 MB"),
    _cyclegan("horse2zebra", "horses (A) and zebras (B) from ImageNet, unpaired, 256 px",
              "horses", "zebras", "1,067 A + 1,334 B train / 120 A + 140 B test", "about 115 MB"),
    _cyclegan("apple2orange", "apples (A) and oranges (B) from ImageNet, unpaired, 256 px",
              "apples", "oranges", "995 A + 1,019 B train / 266 A + 248 B test", "about 75 MB"),
    _cyclegan("summer2winter_yosemite", "Yosemite in summer (A) and winter (B) from Flickr, unpaired, 256 px",
              "summer", "winter", "1,231 A + 962 B train / 309 A + 238 B test", "about 125 MB"),
    _cyclegan("vangogh2photo", "Van Gogh paintings (A) and landscape photos (B), unpaired, 256 px",
              "Van Gogh paintings", "photos", "400 A + 6,287 B train / 400 A + 751 B test", "about 290 MB"),
    _cyclegan("cezanne2photo", "Cezanne paintings (A) and landscape photos (B), unpaired, 256 px",
              "Cezanne paintings", "photos", "525 A + 6,287 B train / 58 A + 751 B test", "about 265 MB"),
    _cyclegan("ukiyoe2photo", "Ukiyo-e prints (A) and landscape photos (B), unpaired, 256 px",
              "Ukiyo-e prints", "photos", "562 A + 6,287 B train / 263 A + 751 B test", "about 280 MB"),
    _cyclegan("cyclegan-maps", "aerial photos (A) and Google maps (B), the CycleGAN unpaired version of `maps`",
              "aerial photos", "maps", "1,096 A + 1,096 B train / 1,098 A + 1,098 B test", "about 1.4 GB"),
    _cyclegan("cyclegan-facades",
              "building facades (A) and their label maps (B), the CycleGAN unpaired version of `facades`",
              "facade photos", "label maps", "400 A + 400 B train / 106 A + 106 B test", "about 35 MB",
              citation=f"{CYCLEGAN_CITATION}; {FACADES_CITATION}"),
    _cyclegan("iphone2dslr_flower", "flower photos from iPhones (A) and DSLRs with shallow depth of field (B), 256 px",
              "iPhone photos", "DSLR photos", "1,812 A + 3,325 B train / 569 A + 480 B test", "about 325 MB"),
    _pix2pix("facades", "CMP facade label maps (A) beside their photos (B), paired, 256 px",
             "label maps", "photos", "400 train / 100 val / 106 test", "about 30 MB", "512x256 pairs of 256x256",
             citation=f"{PIX2PIX_CITATION}; {FACADES_CITATION}"),
    _pix2pix("maps", "aerial photos (A) beside Google maps (B), paired, 600 px halves",
             "aerial photos", "maps", "1,096 train / 1,098 val", "about 240 MB", "1200x600 pairs of 600x600"),
    _pix2pix("edges2shoes", "edge drawings (A) beside photos of shoes (B), paired, 256 px",
             "edges", "shoe photos", "49,825 train / 200 val", "about 2 GB", "512x256 pairs of 256x256",
             citation=f"{PIX2PIX_CITATION}; Yu and Grauman 2014, Fine-Grained Visual Comparisons with "
                      "Local Learning (CVPR)"),
    _pix2pix("edges2handbags", "edge drawings (A) beside photos of handbags (B), paired, 256 px",
             "edges", "handbag photos", "138,567 train / 200 val", "about 8.6 GB", "512x256 pairs of 256x256",
             citation=f"{PIX2PIX_CITATION}; Zhu et al. 2016, Generative Visual Manipulation on the Natural "
                      "Image Manifold (ECCV)"),
    _pix2pix("night2day", "the same scenes at night (A) and by day (B), paired, 256 px",
             "night", "day", "17,823 train / 10 val / 2,287 test", "about 1.9 GB", "512x256 pairs of 256x256",
             citation=f"{PIX2PIX_CITATION}; Laffont et al. 2014, Transient Attributes for High-Level "
                      "Understanding and Editing of Outdoor Scenes (SIGGRAPH)"),
]

# Cityscapes is listed by both collections but may no longer be redistributed: by hand only.
_LIST += [
    replace(_pix2pix("cityscapes", "semantic label maps (A) beside street photos (B), paired, 256 px (fetched by hand)",
                     "label maps", "photos", "2,975 train / 500 val", "about 100 MB", "512x256 pairs of 256x256",
                     citation=f"{PIX2PIX_CITATION}; {CITYSCAPES_CITATION}",
                     licence="Cityscapes terms of use: non-commercial research, no redistribution"),
            base_url=None,
            by_hand=_CITYSCAPES_BY_HAND.format(layout="side-by-side train/ and val/ pairs", name="cityscapes")),
    replace(_cyclegan("cyclegan-cityscapes", "street photos (A) and semantic label maps (B), unpaired (fetched by hand)",
                      "photos", "label maps", "2,975 A + 2,975 B train / 500 A + 500 B test", "about 270 MB",
                      citation=f"{CYCLEGAN_CITATION}; {CITYSCAPES_CITATION}",
                      licence="Cityscapes terms of use: non-commercial research, no redistribution"),
            base_url=None,
            by_hand=_CITYSCAPES_BY_HAND.format(layout="trainA/ trainB/ testA/ testB/ folders", name="cyclegan-cityscapes")),
]

ARCHIVES: dict[str, ArchiveDataset] = {d.name: d for d in _LIST}


def __getattr__(attr: str) -> ArchiveDataset:
    """``archives.horse2zebra``, ``archives.cyclegan_maps``: a dataset by its registry name."""
    for name in (attr, attr.replace("_", "-")):
        if name in ARCHIVES:
            return ARCHIVES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def target(dataset: ArchiveDataset, module: str = __name__) -> str:
    """Return the registry target ("module:attr") that loads ``dataset``."""
    return f"{module}:{dataset.name.replace('-', '_')}"
