"""`gencli translate`: image files and folders in, translated images out under the same names.

Each image is resized (stretched) to the network's square size, translated in batches on the
model's device, and written as the same file name in the output folder: at the network size, or
resized back to the source size with ``resize_back``; optionally side by side with its input.
With ``native_size`` a fully convolutional model (one that states a ``size_multiple``) translates
each image alone at its own size, rounded to that multiple, and the output has the input's size.
A source format that cannot be written (or cannot hold the channels) is written as PNG.
An output folder that already holds one of the names is refused before anything is written:
nothing is overwritten, as with `gencli sample`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gencli.cli.common import DeviceOpt, JsonOpt, examples, handle_errors, open_run, print_result, results_only
from gencli.errors import UserError

if TYPE_CHECKING:
    import torch

EPILOG = examples(
    "gencli translate RUN photos/ --to b",
    "gencli translate RUN a.jpg b.jpg --to monet --side-by-side --out pairs/",
    "gencli translate RUN scans/ --resize-back",
    "gencli translate RUN photos/ --native-size",
)


@handle_errors
def translate(
    run: Annotated[Optional[str], typer.Argument(help="Run directory, checkpoint folder, or model name of an image-to-image model.",
                                                 show_default=False)] = None,
    inputs: Annotated[Optional[list[Path]], typer.Argument(help="Image files or folders.", show_default=False)] = None,
    to: Annotated[Optional[str], typer.Option("--to", help="Target domain: a, b, or a domain name of the run's data.",
                                              show_default="the model's own direction")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder.", show_default="RUN/translated")] = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Write input | output pairs.")] = False,
    resize_back: Annotated[bool, typer.Option("--resize-back", help="Resize outputs back to each input's size.")] = False,
    native_size: Annotated[bool, typer.Option(
        "--native-size", help="Translate each image at its own size (fully convolutional models), not stretched to the "
                              "training size; the output has the input's size.")] = False,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", help="Images per batch.",
        show_default="16, fewer for large images on the CPU where the model asks")] = None,
    device: DeviceOpt = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Translate images with a trained image-to-image model."""
    if run is None:
        raise UserError("give a run and images: gencli translate RUN INPUT...; models that translate: "
                        + (", ".join(_translation_models()) or "none installed"))
    if native_size and resize_back:
        raise UserError("--native-size already writes each output at its input's size; drop --resize-back")
    with results_only(json_out):
        dest, written = _translate(run, inputs, to, out, side_by_side, resize_back, native_size, batch_size, device)
    print_result(json_out, [f"{len(written)} image(s) written to {dest}"],
                 {"folder": str(dest), "files": [str(p) for p in written]})


def _translate(run, inputs, to, out, side_by_side, resize_back, native_size, batch_size, device) -> tuple[Path, list[Path]]:
    """Translate the images; return (the output folder, the files written)."""
    from gencli.models.base import require_capability

    loaded, model = open_run(run, device)
    require_capability(type(model), "translate", "translate images")
    if not inputs:
        raise UserError("give at least one image file or folder to translate")
    direction = direction_to(model, loaded, to) if to is not None else model.directions[0]
    if out is None:
        from gencli.fileio import sealed

        dest = sealed(loaded.dir, "translated", "folder")  # a link there is refused, not followed
    else:
        dest = out
    if dest.exists() and not dest.is_dir():
        raise UserError(f"--out {str(dest)!r} is a file; give a folder")
    c, s, _ = model.image_shape
    written = translate_paths(model, list(inputs), direction, dest, side_by_side, resize_back, batch_size, s, c, model.device,
                              native_size=native_size)
    return dest, written


def _translation_models() -> list[str]:
    from gencli.cli.common import models_that
    from gencli.models.base import has_capability

    return models_that(lambda cls: has_capability(cls, "translate"))


def direction_to(model, run, to: str) -> str:
    """Return the direction that translates into domain ``to`` (a, b, or a domain's name)."""
    key = to.lower()
    if key in ("a", "b"):
        direction = "b2a" if key == "a" else "a2b"
    else:
        domains = [d.lower() for d in (model.domains or _domains_of_dataset(run.data_spec))]
        if len(domains) != 2 or key not in domains:
            raise UserError(f"unknown domain {to!r}; use a or b" + (f" or one of {', '.join(domains)}" if domains else ""))
        direction = "a2b" if domains.index(key) == 1 else "b2a"
    check_direction(model, direction)
    return direction


def _domains_of_dataset(spec: str) -> list[str]:
    """Return the two domain names a dataset called ``A2B`` (monet2photo, say) implies."""
    name = Path(spec).name
    if "2" in name:
        a, _, b = name.partition("2")
        return [a, b]
    return []



@dataclass
class _Item:
    """One image to translate: where it comes from and where its translation goes."""

    source: Path
    target: Path
    size: tuple[int, int] = (0, 0)  # (width, height) of the source, known once decoded


def translate_paths(
    model,
    inputs: Sequence[Path],
    direction: str,
    out: Path,
    side_by_side: bool = False,
    resize_back: bool = False,
    batch_size: int | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    device: torch.device | str | None = None,
    show_progress: bool = True,
    native_size: bool = False,
) -> list[Path]:
    """Translate the images of ``inputs`` (files or folders) into ``out``; return the written paths.

    Folders contribute the image files directly inside them, by extension. Nothing is written
    until every input has been found and checked to be a readable image. ``batch_size`` None:
    16 images a batch, or fewer where the model limits its CPU batches (``cpu_batch_pixels``).
    ``native_size``: each image alone at its own size rounded to the model's ``size_multiple``,
    written at the input's size.
    """
    import torch

    from gencli.data.base import to_float, to_uint8
    from gencli.models.base import require_capability
    from gencli.ui.progress import progress_bar

    require_capability(type(model), "translate", "translate images")
    check_direction(model, direction)
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    channels = channels or model.channels
    image_size = image_size or model.image_size
    if batch_size is None:
        batch_size = model.inference_batch(16, image_size, image_size)
    device = torch.device(device) if device is not None else model.device
    multiple = model.size_multiple if native_size else None
    if native_size and not multiple:
        raise UserError(f"model {model.name!r} translates at its training size only ({image_size} px); drop --native-size")
    if native_size:
        batch_size = 1  # images of their own sizes do not stack
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} exists and is not a folder")
    items = _plan(collect_images(inputs), out, channels)

    model.eval()
    written: list[Path] = []
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar("translating", len(items), show_progress) as advance:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            originals = [_read(item, channels) for item in chunk]
            if multiple:
                x = torch.stack([_resize(img, *native_shape(img.shape[-2:], multiple)) for img in originals]).to(device)
            else:
                x = torch.stack([_resize(img, image_size, image_size) for img in originals]).to(device)
            with torch.no_grad():
                y = model.translate(to_float(x), direction)
            y = to_uint8(y.float()).cpu()
            for item, original, small, result in zip(chunk, originals, x.cpu(), y):
                if resize_back or multiple:
                    w, h = item.size
                    result, shown = _resize(result, h, w), original
                else:
                    shown = small
                image = torch.cat([shown, result], dim=2) if side_by_side else result
                written.append(_write(image, item.target))
            advance(len(chunk))
    return written


def native_shape(shape: Sequence[int], multiple: int) -> tuple[int, int]:
    """Return (height, width) of ``shape`` each rounded to the nearest multiple of ``multiple`` (halves up; at
    least one multiple)."""
    return tuple(max(multiple, (side + multiple // 2) // multiple * multiple) for side in shape)  # type: ignore[return-value]


def check_direction(model, direction: str) -> None:
    """Raise ``UserError`` unless ``model`` translates in ``direction``."""
    allowed = tuple(model.directions)
    if direction not in allowed:
        can = " or ".join(allowed)
        raise UserError(f"model {model.name!r} translates {can}, not {direction!r}")


def collect_images(inputs: Sequence[Path]) -> list[Path]:
    """Return the image files named by ``inputs`` (files, or folders' images), in order."""
    if not inputs:
        raise UserError("give at least one image file or folder to translate")
    files: list[Path] = []
    for path in map(lambda p: Path(p).expanduser(), inputs):
        if not path.exists():
            raise UserError(f"input {str(path)!r} does not exist")
        if path.is_dir():
            from gencli.data.folders import list_images

            found = list_images(path)
            if not found:
                raise UserError(f"input folder {str(path)!r} has no images")
            files += found
        elif _is_image(path):
            files.append(path)
        else:
            raise UserError(f"input {str(path)!r} is not an image (by its extension)")
    return files


def _plan(files: list[Path], out: Path, channels: int) -> list[_Item]:
    """Return one item per file with its output path; refuse clashes and unreadable images."""
    items, taken = [], {}
    for source in files:
        target = out / _output_name(source, channels)
        key = os.path.normcase(str(target.absolute()))
        if key in taken:
            raise UserError(
                f"{str(source)!r} and {str(taken[key])!r} would both be written as {str(target)!r}; "
                "translate them into separate --out folders"
            )
        if target.exists() and target.resolve() == source.resolve():
            raise UserError(f"translating {str(source)!r} into {str(out)!r} would overwrite it; choose another --out")
        if os.path.lexists(target):  # as `gencli sample` does: a user's file is never replaced
            raise UserError(f"--out {str(out)!r} already holds {target.name!r}; choose a new folder "
                            "(nothing is overwritten)")
        taken[key] = source
        _check_readable(source)
        items.append(_Item(source, target))
    return items


def _output_name(source: Path, channels: int) -> str:
    """Return the output file name: the source's, or its stem + .png if that format cannot be written."""
    from PIL import Image

    suffix = source.suffix.lower()
    writable = Image.registered_extensions().get(suffix) in Image.SAVE
    if suffix == ".pgm" and channels != 1:  # a grey-only format cannot hold colour output
        writable = False
    return source.name if writable else source.stem + ".png"


def _open_image(path: Path):
    """Return ``path`` opened by the one image reader (``gencli.data.images``): an image over the
    pixel cap is refused in one line naming its size."""
    from gencli.data.images import open_image

    return open_image(path)


def _check_readable(path: Path) -> None:
    from PIL import UnidentifiedImageError

    try:
        with _open_image(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read image {str(path)!r}: {exc}") from None


def _is_image(path: Path) -> bool:
    from gencli.data.folders import is_image

    return is_image(path)


def _read(item: _Item, channels: int) -> torch.Tensor:
    """Return the full-size image of ``item`` as uint8 [C, H, W]; record its size."""
    import numpy as np
    import torch
    from PIL import ImageOps, UnidentifiedImageError

    try:
        with _open_image(item.source) as img:
            # Camera photos store their rotation in EXIF: translate the picture as it is seen.
            img = ImageOps.exif_transpose(img).convert("L" if channels == 1 else "RGB")
            item.size = img.size
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"cannot read image {str(item.source)!r}: {exc}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def _resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Return uint8 [C, H, W] ``image`` resized (not cropped) to ``height`` x ``width``."""
    import torch

    if image.shape[-2:] == (height, width):
        return image
    resized = torch.nn.functional.interpolate(
        image[None].float(), size=(height, width), mode="bicubic", antialias=True, align_corners=False
    )
    return resized[0].round().clamp(0, 255).to(torch.uint8)


def _write(image: torch.Tensor, path: Path) -> Path:
    """Write uint8 [C, H, W] ``image`` to ``path`` (format by extension) via a new temporary file."""
    import io

    from PIL import Image

    from gencli.fileio import write_atomic

    arr = image.permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    fmt = Image.registered_extensions()[path.suffix.lower()]
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}  # not the lossy defaults' 75-80
    buffer = io.BytesIO()
    pil.save(buffer, format=fmt, **options)
    write_atomic(path, buffer.getvalue())
    return path
