"""torchvision's small labelled sets, downloaded into ``GENCLI_DATA_DIR`` and held as tensors."""

from __future__ import annotations

import numpy as np
import torch

from gencli.data.base import DataRequest, ImageData, data_root, fit_images
from gencli.errors import UserError

# name -> (torchvision class name, keyword for the split, files to place by hand when offline)
SETS = {
    "mnist": ("MNIST", "train", "MNIST/raw/train-images-idx3-ubyte.gz and the other three MNIST files"),
    "fashion-mnist": ("FashionMNIST", "train", "FashionMNIST/raw/train-images-idx3-ubyte.gz and the other three files"),
    "cifar10": ("CIFAR10", "train", "cifar-10-python.tar.gz"),
}


def _tensor_images(raw) -> torch.Tensor:
    arr = raw.numpy() if torch.is_tensor(raw) else np.asarray(raw)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() == 3:  # N, H, W (MNIST)
        return t.unsqueeze(1)
    return t.permute(0, 3, 1, 2).contiguous()  # N, H, W, C (CIFAR)


def load_torchvision(name: str, request: DataRequest, download: bool = True) -> ImageData:
    import torchvision.datasets as tvd

    cls_name, _, by_hand = SETS[name]
    root = data_root() / name
    cls = getattr(tvd, cls_name)
    try:
        ds = cls(str(root), train=request.split != "test", download=False)
    except RuntimeError:
        if not download:
            raise UserError(f"dataset {name!r} is not downloaded; run `gencli datasets --prepare {name}`") from None
        try:
            ds = cls(str(root), train=request.split != "test", download=True)
        except Exception as exc:  # offline, DNS failure, HTTP error ...
            raise UserError(
                f"cannot download {name!r} ({type(exc).__name__}: {exc}); on an offline machine put "
                f"{by_hand} into {root}"
            ) from None
    images = fit_images(_tensor_images(ds.data), request.stored_size, request.channels)
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    return ImageData(name, "labelled", images, labels, classes=list(ds.classes))


def build_mnist(request: DataRequest) -> ImageData:
    return load_torchvision("mnist", request)


def build_fashion_mnist(request: DataRequest) -> ImageData:
    return load_torchvision("fashion-mnist", request)


def build_cifar10(request: DataRequest) -> ImageData:
    return load_torchvision("cifar10", request)
