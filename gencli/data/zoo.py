"""The dataset zoo for the classic experiments: cats vs dogs, cartoon and anime faces, CelebA.

- ``cats-vs-dogs``: Microsoft's public download of the Kaggle cats and dogs images, labelled
  cat / dog. It holds zero-byte and truncated JPEGs; they are found once, when the prepared
  cache is built, skipped and counted in one summary line.
- ``cartoonset10k``, ``cartoonset100k``: Google's Cartoon Set (PNG faces; the CSV attribute
  files beside them are ignored).
- ``anime-faces``: needs an account to download, so it is placed by hand in
  ``GENCLI_DATA_DIR/anime-faces`` (any sub-folders); its card says where to get it.
- ``celeba``: torchvision's aligned and cropped CelebA, centre-cropped to the face (148 px of
  the 178x218 originals) before resizing, as is usual for 64 and 128 px generative models.

SVHN and CIFAR-100 live with the other torchvision sets in ``gencli.data.torchvision_sets``.
No torch at import time (the catalog of dataset cards imports this module).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gencli.data.archives import ArchiveDataset, prepared_summary
from gencli.errors import UserError

CATS_VS_DOGS_URL = "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F"
CARTOONSET_URL = "https://storage.googleapis.com/cartoonset_public_files"
CARTOONSET_CITATION = ("Royer, Bousmalis, Gouws, Bertsch, Mosseri, Cole, Murphy 2017, XGAN: Unsupervised "
                       "Image-to-Image Translation for Many-to-Many Mappings")

cats_vs_dogs = ArchiveDataset(
    "cats-vs-dogs", "photos of cats and dogs (Kaggle / Asirra), labelled cat / dog, about 25k JPEGs",
    "labelled", "kagglecatsanddogs_5340.zip", CATS_VS_DOGS_URL, ("Cat", "Dog"),
    "a PetImages/ folder holding Cat/ and Dog/", skip_corrupt=True, lower_classes=True,
    info={"source": "Microsoft Research, https://www.microsoft.com/en-us/download/details.aspx?id=54765 "
                    "(the Kaggle 'Dogs vs. Cats' images)",
          "licence": "published by Microsoft Research for non-commercial research; not to be re-published "
                     "without its permission (see the download page)",
          "citation": "Elson, Douceur, Howell, Saul 2007, Asirra: A CAPTCHA that Exploits Interest-Aligned "
                      "Manual Image Categorization (CCS)",
          "classes": ["cat", "dog"], "images": "about 25,000 (12,500 per class; a few are empty or truncated)",
          "count": 25_000, "resolution": "varies, about 500x375 on average, JPEG", "native": "~500x375",
          "download_size": "about 790 MB",
          "splits": "no official split: every tenth image (by name) is the test split",
          "notes": "empty and truncated JPEGs are skipped and counted when the prepared cache is built"},
)

cartoonset10k = ArchiveDataset(
    "cartoonset10k", "Google Cartoon Set: 10,000 random 2-D cartoon faces (PNG)",
    "images", "cartoonset10k.tgz", CARTOONSET_URL, recursive=True, ignore=(".csv",),
    info={"source": "Google, https://google.github.io/cartoonset/", "licence": "CC BY 4.0",
          "citation": CARTOONSET_CITATION, "images": "10,000", "count": 10_000,
          "resolution": "500x500 PNG", "native": "500x500",
          "download_size": "about 450 MB (varies by release)",
          "splits": "no official split: every tenth image (by name) is the test split",
          "notes": "each csX.png has a csX.csv of attributes, ignored for now"},
)

cartoonset100k = ArchiveDataset(
    "cartoonset100k", "Google Cartoon Set: 100,000 random 2-D cartoon faces (PNG)",
    "images", "cartoonset100k.tgz", CARTOONSET_URL, recursive=True, ignore=(".csv",),
    info={"source": "Google, https://google.github.io/cartoonset/", "licence": "CC BY 4.0",
          "citation": CARTOONSET_CITATION, "images": "100,000", "count": 100_000,
          "resolution": "500x500 PNG", "native": "500x500",
          "download_size": "about 4.5 GB (varies by release)",
          "splits": "no official split: every tenth image (by name) is the test split",
          "notes": "images may be sharded into numbered sub-folders; all are read. CSV attributes are ignored"},
)

anime_faces = ArchiveDataset(
    "anime-faces", "anime character faces (Anime Face Dataset on Kaggle; placed by hand)",
    "images", "anime-faces.zip", None, recursive=True,
    by_hand=("download the Anime Face Dataset from https://www.kaggle.com/datasets/splcher/animefacedataset "
             "(a free Kaggle account is needed) and unpack it so its images are under GENCLI_DATA_DIR/anime-faces/ "
             "(any sub-folders)."),
    info={"source": "Kaggle, https://www.kaggle.com/datasets/splcher/animefacedataset (faces cropped from "
                    "www.getchu.com)",
          "licence": "unspecified by its publisher: research and personal use",
          "citation": "Anime Face Dataset, Kaggle (splcher)", "images": "about 63,600", "count": 63_600,
          "resolution": "varies, about 90x90 to 120x120 JPEG", "native": "~100x100",
          "splits": "no official split: every tenth image (by name) is the test split"},
)

ZOO_ARCHIVES: list[ArchiveDataset] = [cats_vs_dogs, cartoonset10k, cartoonset100k, anime_faces]


@dataclass(frozen=True)
class CelebA:
    """CelebA through torchvision: downloaded once, read by file through the prepared cache."""

    name: str = "celeba"
    crop: int = 148  # the central face square of the 178x218 aligned images
    by_hand: str = (
        "from the CelebA Google Drive (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) download "
        "Img/img_align_celeba.zip and the Anno/ and Eval/ text files (list_attr_celeba.txt, identity_CelebA.txt, "
        "list_bbox_celeba.txt, list_landmarks_align_celeba.txt, list_eval_partition.txt) into "
        "GENCLI_DATA_DIR/celeba/celeba/ and unzip img_align_celeba.zip there."
    )

    @property
    def folder(self) -> Path:
        from gencli.data.base import data_root

        return data_root() / self.name

    def _torchvision(self, split: str, download: bool):
        import torchvision.datasets as tvd

        return tvd.CelebA(str(self.folder), split=split, target_type=[], download=download)

    def fetch(self, console=None) -> Path:
        """Return the folder holding CelebA, downloading it through torchvision when missing."""
        base = self.folder / "celeba"
        if (base / "img_align_celeba").is_dir() and (base / "list_eval_partition.txt").is_file():
            return self.folder
        try:
            self._torchvision("all", download=False)
            return self.folder
        except RuntimeError:
            pass
        from gencli.data.download import mark_complete, one_line_reason, remove_empty_folders

        try:
            self._torchvision("all", download=True)
        except Exception as exc:  # offline, Google Drive quota, damaged file ...
            remove_empty_folders(self.folder)
            raise UserError(
                f"cannot download 'celeba' ({one_line_reason(exc)}); on an offline machine {self.by_hand}"
                .replace("GENCLI_DATA_DIR", str(self.folder.parent))
            ) from None
        mark_complete(self.folder)
        return self.folder

    def scan(self, split: str):
        """Return the files of ``split`` as listed by CelebA's own partition file (0 train, 2 test)."""
        from gencli.data.folders import FolderScan

        base = self.fetch() / "celeba"
        wanted = "2" if split == "test" else "0"
        rows = (line.split() for line in (base / "list_eval_partition.txt").read_text().splitlines())
        files = [base / "img_align_celeba" / row[0] for row in rows if len(row) == 2 and row[1] == wanted]
        if not files:
            raise UserError(f"celeba's list_eval_partition.txt in {base} lists no {split} images")
        return FolderScan(self.name, "images", files, variant="celeba")

    def _source(self) -> str:
        base = self.folder / "celeba"
        partition = (base / "list_eval_partition.txt").stat()
        images = base / "img_align_celeba"
        return f"{partition.st_size}:{partition.st_mtime_ns}:{len(os.listdir(images))}:{images.stat().st_mtime_ns}"

    def load(self, request, cache: bool = True):
        from gencli.data.folders import load_scan

        self.fetch()
        return load_scan(lambda: self.scan(request.split), request, dataset=self.name, source=self._source(),
                         variant="celeba", crop=self.crop, cache=cache)

    def __call__(self, request):
        """Return CelebA faces as ``ImageData`` at the request's size, channels and split."""
        return self.load(request)[0]

    def prepare(self, image_size: int | None = None, channels: int | None = None, console=None) -> str:
        """Fetch and verify CelebA; with ``image_size`` also build the prepared caches. Return a summary."""
        from gencli.data.base import DataRequest

        folder = self.fetch(console=console)
        counts, corrupt = {}, set()
        for split in ("train", "test"):
            if image_size:
                data, meta = self.load(DataRequest(image_size, channels or 3, split))
                counts[split] = len(data)
                corrupt.update(meta.get("corrupt_files", ()))
            else:
                counts[split] = len(self.scan(split).files)
        return prepared_summary(self.name, folder, counts, 0, len(corrupt) if image_size else None, image_size)


celeba = CelebA()
