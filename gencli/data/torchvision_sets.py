"""torchvision's small labelled sets, downloaded into ``GENCLI_DATA_DIR`` and held as tensors.

They differ in small ways that ``SETS`` records: how a split is asked for (``train=True`` or
``split="train"``), and where the labels are (``targets`` or ``labels``). SVHN's images are
already channels-first; the others are [N, H, W] or [N, H, W, C].

MNIST and Fashion-MNIST are read from their IDX files (``gencli.data.idx``) wherever a local copy
lies (``gencli.data.local``): torchvision only downloads them when there is none.
"""

from __future__ import annotations

import numpy as np
import torch

from gencli.data.base import DataRequest, ImageData, data_root, fit_images
from gencli.errors import UserError

# name -> (torchvision class name, keyword for the split, files to place by hand when offline)
# The split keyword is "train" (train=True/False) or "split" (split="train"/"test").
SETS = {
    "mnist": ("MNIST", "train", "MNIST/raw/train-images-idx3-ubyte.gz and the other three MNIST files"),
    "fashion-mnist": ("FashionMNIST", "train", "FashionMNIST/raw/train-images-idx3-ubyte.gz and the other three files"),
    "cifar10": ("CIFAR10", "train", "cifar-10-python.tar.gz"),
    "cifar100": ("CIFAR100", "train", "cifar-100-python.tar.gz"),
    "svhn": ("SVHN", "split", "train_32x32.mat and test_32x32.mat"),
}
SVHN_CLASSES = [str(d) for d in range(10)]


def _tensor_images(raw) -> torch.Tensor:
    arr = raw.numpy() if torch.is_tensor(raw) else np.asarray(raw)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() == 3:  # N, H, W (MNIST)
        return t.unsqueeze(1)
    if t.shape[1] in (1, 3) and t.shape[-1] not in (1, 3):  # N, C, H, W (SVHN)
        return t.contiguous()
    return t.permute(0, 3, 1, 2).contiguous()  # N, H, W, C (CIFAR)


def _open(cls, root, keyword: str, split: str, download: bool):
    if keyword == "split":
        return cls(str(root), split="test" if split == "test" else "train", download=download)
    return cls(str(root), train=split != "test", download=download)


def _card(name: str) -> dict:
    from gencli.plugins import registry

    spec = registry().datasets.get(name)
    return spec.info if spec is not None else {}


def load_torchvision(name: str, request: DataRequest, download: bool = True) -> ImageData:
    """Return a torchvision set; one whose card says its files can be local (MNIST's IDX files)
    is first looked for on this machine (``gencli.data.local``) and read from there."""
    import torchvision.datasets as tvd

    from gencli.data.download import mark_complete, one_line_reason, remove_empty_folders
    from gencli.data.local import find_local, offline_hint

    info = _card(name)
    found = find_local(name, info, request.split)
    if found is not None:
        return _load_local(name, info, found[1], request)
    cls_name, keyword, by_hand = SETS[name]
    root = data_root() / name
    cls = getattr(tvd, cls_name)
    try:
        ds = _open(cls, root, keyword, request.split, download=False)
    except RuntimeError:
        if not download:
            raise UserError(f"dataset {name!r} is not downloaded; run `gencli datasets --prepare {name}`") from None
        try:
            ds = _open(cls, root, keyword, request.split, download=True)
        except Exception as exc:  # offline, DNS failure, HTTP error ...
            # torchvision creates its folders before it fails: leave no empty tree to look cached.
            remove_empty_folders(root)
            raise UserError(
                f"cannot download {name!r} ({one_line_reason(exc)}); on an offline machine put "
                f"{by_hand} into {root}{offline_hint(name, info)}"
            ) from None
    mark_complete(root)
    found = find_local(name, info, request.split)
    if found is not None:  # the download left IDX files: read them as a local copy would be
        return _load_local(name, info, found[1], request)
    images = fit_images(_tensor_images(ds.data), request.stored_size, request.channels)
    raw_labels = ds.targets if hasattr(ds, "targets") else ds.labels  # SVHN calls them labels
    labels = torch.as_tensor(np.asarray(raw_labels), dtype=torch.long)
    classes = list(getattr(ds, "classes", None) or SVHN_CLASSES)
    return ImageData(name, "labelled", images, labels, classes=classes)


def _load_local(name: str, info: dict, folder, request: DataRequest) -> ImageData:
    from gencli.data.idx import load_idx_folder

    classes = info.get("classes")
    return load_idx_folder(folder, request, dataset=name, name=name,
                           classes=list(classes) if isinstance(classes, list) else None)


def build_mnist(request: DataRequest) -> ImageData:
    return load_torchvision("mnist", request)


def build_fashion_mnist(request: DataRequest) -> ImageData:
    return load_torchvision("fashion-mnist", request)


def build_cifar10(request: DataRequest) -> ImageData:
    return load_torchvision("cifar10", request)


def build_cifar100(request: DataRequest) -> ImageData:
    return load_torchvision("cifar100", request)


def build_svhn(request: DataRequest) -> ImageData:
    return load_torchvision("svhn", request)
