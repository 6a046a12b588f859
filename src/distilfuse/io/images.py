"""Reading and writing images as numpy arrays, with errors that name the file."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from distilfuse.io.atomic import atomic_write, describe_os_error
from distilfuse.ops.stretch import min_max_stretch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
# Pillow's decompression-bomb limit (about 89 megapixels): larger images are refused unless allowed.
DEFAULT_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 0
_PILLOW_LIMIT = threading.Lock()


class ImageReadError(ValueError):
    """An input image cannot be used; the message names the file and the problem."""


class ImageWriteError(ValueError):
    """An output cannot be written; the message names the file and the problem."""


def _decode(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("LA", "PA"):
        img = img.getchannel(0)
    elif mode == "RGBA":
        img = img.convert("RGB")
    elif mode == "1" or mode == "CMYK" or mode == "YCbCr":
        img = img.convert("L" if mode == "1" else "RGB")
    elif mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    elif mode == "I":
        # 16-bit PNGs decode as 32-bit "I"; their values fit uint16.
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise ValueError(f"32-bit integer values outside 0..65535 (mode {mode})")
        return arr.astype(np.uint16)
    elif mode == "F":
        raise ValueError("floating-point images are not supported; save as 8- or 16-bit")
    return np.asarray(img)


@contextmanager
def _pillow_limit_off() -> Iterator[None]:
    """Pillow's global pixel limit switched off while `read_image` applies its own."""
    with _PILLOW_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def read_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file to (H, W) or (H, W, 3) in its native dtype (uint8 or uint16).

    Alpha is dropped and palettes are expanded; gray stored as three equal channels stays 3-channel
    (see `is_gray`). Images over `max_pixels` (None: no limit) are refused before decoding, as a guard
    against decompression bombs.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with _pillow_limit_off(), Image.open(path) as img:
            width, height = img.size
            if max_pixels and width * height > max_pixels:
                raise ImageReadError(
                    f"{path}: {width}x{height} is {width * height:,} pixels, over the limit of {max_pixels:,} "
                    "(a guard against decompression bombs; raise it with --max-pixels)"
                )
            img.load()
            arr = _decode(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode the image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from None
    if arr.ndim == 3 and arr.shape[2] > 3:
        arr = arr[:, :, :3]
    if arr.size == 0:
        raise ImageReadError(f"{path}: empty image")
    return np.ascontiguousarray(arr)


def is_gray(arr: np.ndarray) -> bool:
    """True for single-channel images and for RGB images whose three channels are equal."""
    if arr.ndim == 2:
        return True
    return bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))


Scaling = Literal["dtype", "minmax"]


def to_unit(arr: np.ndarray, scaling: Scaling = "dtype") -> np.ndarray:
    """Integer image -> float32 in [0, 1]: by the dtype's range, or per-image min-max."""
    out = arr.astype(np.float32)
    if scaling == "minmax":
        return min_max_stretch(out)
    if scaling != "dtype":
        raise ValueError(f"unknown scaling {scaling!r}: use 'dtype' or 'minmax'")
    return out / float(np.iinfo(arr.dtype).max)


def from_unit(arr: np.ndarray, bits: int = 8) -> np.ndarray:
    """Float image in [0, 1] -> uint8 or uint16 (values outside are clipped, rounded to nearest)."""
    if bits not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bits}")
    scaled = np.clip(arr, 0.0, 1.0)  # one temporary, scaled and rounded in place (large images)
    scaled *= 255 if bits == 8 else 65535
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8 if bits == 8 else np.uint16)


def write_image(path: str | os.PathLike, arr: np.ndarray, *, protect: tuple[Path, ...] = ()) -> Path:
    """Write a uint8/uint16 (H,W) or (H,W,3) array atomically (see `distilfuse.io.atomic`).

    Refuses to write over any path in `protect` (the inputs). Every failure (including the file system's:
    no space, read-only, a parent that is a file) is an ImageWriteError naming the file.
    """
    path = Path(path)
    target = path.resolve()
    if any(target == Path(p).resolve() for p in protect):
        raise ImageWriteError(f"{path}: output path is one of the input files; refusing to overwrite it")
    if arr.dtype == np.uint16 and arr.ndim == 3:
        raise ImageWriteError(f"{path}: 16-bit colour output is not supported; use 8-bit")
    suffix = path.suffix.lower() or ".png"
    if arr.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff"):
        raise ImageWriteError(f"{path}: 16-bit output needs .png or .tif")
    image_format = Image.registered_extensions().get(suffix, "PNG")
    try:
        return atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format=image_format))
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write ({describe_os_error(exc, path)})") from None
