"""The judge of the Fashion-MNIST league (benchmarks/bench_league.py): a small CNN trained here.

FID's Inception weights are not always at hand, and at 28 px grey its features say little; as
benchmarks/bench_quality.py does for the digits, this trains a classifier on the Fashion-MNIST
training split (60,000 images) and keeps two TorchScript files that ``gencli eval --features FILE``
and ``--classifier FILE`` load:

- ``classifier.pt``: the whole network, 10 logits (for ``sample --label k``: the share read as k);
- ``features.pt``: the same network up to its penultimate layer (128-d), for the Frechet
  distance (FD) of generated images against the 10,000 test images.

Both take float images in [-1, 1], [N, 1, 28, 28], as gencli hands them. The judge is not
committed: it is trained again on demand, deterministically (fixed seed; the same files for the
same torch version and thread count), in a few CPU minutes, and ``judge.json`` beside it keeps the SHA-256 of both files with its test accuracy,
per-class accuracy and the real-data floor (FD of 10,000 training images against the test
images). With ``GENCLI_FID_WEIGHTS`` set it also records the Inception FID floor.

    python benchmarks/fashion_judge.py --work bench-league          # trains WORK/judge/ once
    python benchmarks/fashion_judge.py --work bench-league --force  # trains it again
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch
from bench_quality import Features, shifted  # the digits judge's feature half and shifts, beside this script
from torch import nn

FASHION = Path(os.environ.get("GENCLI_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SIZE = 28
SEED = 0
EPOCHS = 4  # 2 gave 89.4% test accuracy
TARGET_ACCURACY = 0.90  # what the league asks of its judge on the test images


# ======================================================================================== data
def load_fashion(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split as uint8 [N, 1, 28, 28] images and int64 labels, read by gencli's IDX reader."""
    from gencli.data.idx import find_idx_split, read_idx_images, read_idx_labels

    images_path, labels_path = find_idx_split(folder, split)
    images = torch.from_numpy(read_idx_images(images_path)).unsqueeze(1).contiguous()
    labels = torch.from_numpy(read_idx_labels(labels_path)).long()
    return images, labels


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1], as gencli's models and judges see images."""
    return images.float().div(127.5).sub(1.0)


# ======================================================================================== network
class FashionNet(nn.Module):
    """Four 3x3 convolutions with batch norm, then 128-d features (``body``) and 10 logits (``head``)."""

    def __init__(self, width: int = 16, dims: int = 128, classes: int = 10) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, width), nn.MaxPool2d(2),  # 14
            *block(width, 2 * width), *block(2 * width, 2 * width), nn.MaxPool2d(2),  # 7
            *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
            nn.Linear(36 * width, dims), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(dims, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_net(images: torch.Tensor, labels: torch.Tensor, epochs: int = EPOCHS, batch: int = 128,
              seed: int = SEED) -> FashionNet:
    """A ``FashionNet`` trained on uint8 ``images`` (Adam, one-cycle learning rate, small shifts)."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = FashionNet()
    steps = epochs * (len(images) // batch)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=g)
        for i in range(len(images) // batch):
            idx = order[i * batch:(i + 1) * batch]
            loss = nn.functional.cross_entropy(net(shifted(to_float(images[idx]), g)), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"judge: epoch {epoch + 1}/{epochs}, last loss {loss.item():.3f}", flush=True)
    return net.eval()


@torch.no_grad()
def predict(net: nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    return torch.cat([net(to_float(images[i:i + batch])).argmax(1) for i in range(0, len(images), batch)])


def per_class_accuracy(predicted: torch.Tensor, labels: torch.Tensor, classes: int = 10) -> list[float]:
    """For each class k, the share of images of class k read as k."""
    return [(predicted[labels == k] == k).float().mean().item() for k in range(classes)]


# ======================================================================================== distances
def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def features_of(features_path: str | Path, images: torch.Tensor) -> torch.Tensor:
    """The judge's features of uint8 images, through gencli's own loader (TorchScript, checked)."""
    from gencli.metrics.features import UserFeatures, extract

    return extract(UserFeatures(features_path), images, 500, "cpu", progress=False)


def frechet(real: torch.Tensor, fake: torch.Tensor) -> float:
    from gencli.metrics.fid import fid_from_features

    return fid_from_features(real, fake)


def inception_fid(real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """FID on Inception features of uint8 images, where ``GENCLI_FID_WEIGHTS`` names the weights; else None."""
    if not os.environ.get("GENCLI_FID_WEIGHTS"):
        return None
    from gencli.metrics.features import InceptionFeatures, extract

    net = InceptionFeatures()
    return frechet(extract(net, real, 100, "cpu", progress=False), extract(net, fake, 100, "cpu", progress=False))


def floor_fd(features_path: str | Path, train: torch.Tensor, test: torch.Tensor, n: int, seed: int = 0) -> float:
    """FD of ``n`` real training images (a fixed random draw) against ``test``: a perfect model's score."""
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    return frechet(features_of(features_path, test), features_of(features_path, train[idx]))


# ======================================================================================== the judge
def make_judge(folder: Path, data: Path = FASHION, force: bool = False) -> dict:
    """Train and save the judge into ``folder`` (or reuse the one there); return ``judge.json``'s contents."""
    saved = folder / "judge.json"
    if saved.exists() and not force:
        info = json.loads(saved.read_text())
        if info.get("epochs") == EPOCHS and all((folder / name).is_file() and sha256(folder / name) == info["sha256"][name]
               for name in ("classifier.pt", "features.pt")):
            # the files beside judge.json, wherever the folder now lies and whichever folder it was made from
            return {**info, "classifier": str(folder.resolve() / "classifier.pt"),
                    "features": str(folder.resolve() / "features.pt")}
    folder.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    train_x, train_y = load_fashion(data, "train")
    test_x, test_y = load_fashion(data, "test")
    net = train_net(train_x, train_y)
    seconds = time.perf_counter() - began
    predicted = predict(net, test_x)
    paths = {"classifier.pt": folder.resolve() / "classifier.pt", "features.pt": folder.resolve() / "features.pt"}
    with warnings.catch_warnings():  # torch marks TorchScript deprecated; gencli still loads only TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(net).save(str(paths["classifier.pt"]))
        torch.jit.script(Features(net)).save(str(paths["features.pt"]))
    info = {
        "classifier": str(paths["classifier.pt"]), "features": str(paths["features.pt"]),
        "sha256": {name: sha256(p) for name, p in paths.items()},
        "bytes": {name: p.stat().st_size for name, p in paths.items()},
        "epochs": EPOCHS, "train_seconds": seconds, "threads": torch.get_num_threads(), "torch": torch.__version__, "train_images": len(train_x), "test_images": len(test_x),
        "test_accuracy": (predicted == test_y).float().mean().item(),
        "per_class_accuracy": per_class_accuracy(predicted, test_y),
        "classes": list(CLASSES),
        "floor_fd": floor_fd(paths["features.pt"], train_x, test_x, 10_000),
        "floor_n": 10_000,
    }
    if os.environ.get("GENCLI_FID_WEIGHTS"):
        idx = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(0))[:10_000]
        info["floor_fid_inception"] = inception_fid(test_x, train_x[idx])
    saved.write_text(json.dumps(info, indent=1))
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench-league"), help="the judge goes to WORK/judge")
    parser.add_argument("--data", type=Path, default=FASHION, help="folder of Fashion-MNIST's four IDX files")
    parser.add_argument("--force", action="store_true", help="train it again even if WORK/judge holds one")
    args = parser.parse_args(argv)
    info = make_judge(args.work / "judge", args.data, args.force)
    print(f"judge: test accuracy {info['test_accuracy']:.2%}; per class "
          + ", ".join(f"{c} {a:.1%}" for c, a in zip(CLASSES, info["per_class_accuracy"], strict=True))
          + f"; floor FD {info['floor_fd']:.3f} (10,000 train vs 10,000 test); "
          f"{info['bytes']['classifier.pt'] / 1e3:.0f} kB; trained in {info['train_seconds']:.0f} s")
    if info["test_accuracy"] < TARGET_ACCURACY:
        print(f"warning: the judge is below the {TARGET_ACCURACY:.0%} test accuracy the league asks of it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
