"""The ``image`` modality kind: an ``.npy`` array [N, H, W] or [N, C, H, W], or PNG files (Pillow).

Values are the pixel numbers as stored (0-255 for 8-bit PNG); ``prepare`` standardises each channel
with training statistics.  Every image must have the same size and channel count.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .filelist import listed_files
from .modalities import MODALITY_READERS, Modality, _load_array

# PNG modes read as they are; the others are converted first (bilevel to grey, palette to RGB or RGBA)
_MODES = {"L", "LA", "RGB", "RGBA", "I", "I;16", "I;16B", "F"}


def _png(path: Path) -> np.ndarray:
    """One PNG file as [C, H, W]."""
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise DataError(f"a {im.format} image; expected PNG", source=str(path))
            im.load()  # decode every row now: a truncated file fails here, not later
            if im.mode not in _MODES:
                im = im.convert("L" if im.mode == "1" else "RGBA" if im.has_transparency_data else "RGB")
            arr = np.asarray(im)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"not a readable PNG image ({' '.join(str(exc).split())})", source=str(path)) from None
    arr = arr.astype(np.float32)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def read_pngs(files: list[Path]) -> np.ndarray:
    """[N, C, H, W] from PNG files that must all share the first one's size and channel count."""
    first = _png(files[0])
    out = np.empty((len(files), *first.shape), dtype=np.float32)
    out[0] = first
    for i, f in enumerate(files[1:], start=1):
        img = _png(f)
        if img.shape != first.shape:
            c, h, w = img.shape
            raise DataError(f"{w}x{h} pixels with {c} channel(s); expected {first.shape[2]}x{first.shape[1]} with "
                            f"{first.shape[0]} like {files[0].name}", source=str(f))
        out[i] = img
    return out


@MODALITY_READERS.register("image")
def read_image(name: str, path: Path) -> Modality:
    if path.is_dir() or path.suffix.lower() == ".txt":
        return Modality(name, "image", path, read_pngs(listed_files(path, ".png")))
    if path.suffix != ".npy":
        raise DataError(f"unsupported extension {path.suffix!r}; an image modality is an .npy array, "
                        "a folder of .png files or a .txt listing of them", source=str(path))
    arr = _load_array(path)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or min(arr.shape[1:]) < 1:
        raise DataError(f"array of shape {arr.shape}; an image modality needs [samples, height, width] or "
                        "[samples, channels, height, width]", source=str(path))
    if arr.shape[-1] in (3, 4) and arr.shape[1] > 4:
        raise DataError(f"array of shape {arr.shape} looks channels-last; expected [samples, channels, height, "
                        "width] (np.moveaxis(x, -1, 1))", source=str(path))
    return Modality(name, "image", path, arr)
