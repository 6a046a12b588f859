"""Turning user input into float64 grey images on the 0..255 scale, and the per-call cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

from distilfuse.io.colour import luma, round_half_away
from distilfuse.metrics._options import MetricOptions

T = TypeVar("T")
Array = TypeVar("Array", np.ndarray, torch.Tensor)

# §1.3: a profile's gray_conversion as `luma` options. cdd = OpenCV BGR2GRAY on float32, rounded half to
# even; tang = MATLAB rgb2gray on uint8 (first row of inv(YIQ->RGB)), rounded half away and saturated.
GREY_CONVENTIONS = {"opencv": ("bt601", "half_even"), "matlab": ("matlab", "half_away")}


def grey_levels(x: np.ndarray, rounding: str) -> np.ndarray:
    """Integer grey levels 0..255 (as uint8) for the 256-bin histograms of EN and MI."""
    levels = np.empty(x.shape, dtype=np.uint8)
    for start in range(0, x.shape[0], 64):  # row blocks: no full-size float temporaries
        rows = x[start : start + 64]
        rounded = np.rint(rows) if rounding == "even" else round_half_away(rows)
        levels[start : start + 64] = np.clip(rounded, 0, 255, out=rounded)
    return levels


def _as_numpy(img: Any, name: str) -> np.ndarray:
    if isinstance(img, torch.Tensor):
        arr = img.detach().to("cpu", torch.float64).numpy()
        while arr.ndim > 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim == 3 and arr.shape[0] == 3:  # tensors are channel-first
            arr = np.moveaxis(arr, 0, -1)
        return arr
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name}: expected a numeric image, got dtype {arr.dtype}")
    return arr


def to_grey(rgb: Array, conversion: str, channel_axis: int = -1) -> Array:
    """Float64 grey of RGB image(s) on 0..255 (NumPy or torch), converted as the profile's `gray_conversion`
    says; an image stored as three equal channels is itself (per image)."""
    weights, rounding = GREY_CONVENTIONS[conversion]
    grey = luma(rgb, weights, rounding, keep_grey=True, channel_axis=channel_axis)  # type: ignore[arg-type]
    return grey.to(torch.float64) if isinstance(grey, torch.Tensor) else grey.astype(np.float64)


def prepare_image(img: Any, name: str, options: MetricOptions, data_range: float, quantize: bool) -> np.ndarray:
    """A 2-D float64 grey image on the 0..255 scale (§1.2, §1.3)."""
    arr = _as_numpy(img, name)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"{name}: expected an (H, W) or (H, W, 3) image, got shape {arr.shape}")
    if min(arr.shape[:2]) < 3:
        raise ValueError(f"{name}: image of shape {arr.shape} is too small (at least 3x3)")
    # No copy for float64 input: the metrics never write into their images (marked read-only below).
    x = np.asarray(arr, dtype=np.float64)
    # A finite sum proves every value finite without a full-size temporary.
    if not np.isfinite(x.sum()) and not np.isfinite(x).all():
        raise ValueError(f"{name}: image contains NaN or infinite values")
    if data_range != 255:
        x = x * (255.0 / data_range)
    if x.ndim == 3:
        x = to_grey(x, options.gray_conversion)
    if quantize:
        x = np.clip(np.rint(x), 0, 255)
    x = x.view()
    x.flags.writeable = False
    return x


class Triplet:
    """The fused image F and sources A (infrared), B (visible) of one evaluation, with a cache.

    Metrics share intermediate results (gradients, filtered moments, histograms) through `cached`,
    so one `compute()` call evaluates each of them once.
    """

    def __init__(self, fused: np.ndarray, ir: np.ndarray, vis: np.ndarray, options: MetricOptions) -> None:
        if not fused.shape == ir.shape == vis.shape:
            raise ValueError(f"image sizes differ: fused {fused.shape[:2]}, ir {ir.shape[:2]}, vis {vis.shape[:2]}")
        self.images = {"F": fused, "A": ir, "B": vis}
        self.options = options
        self._cache: dict[tuple, Any] = {}

    @property
    def F(self) -> np.ndarray:
        return self.images["F"]

    @property
    def A(self) -> np.ndarray:
        return self.images["A"]

    @property
    def B(self) -> np.ndarray:
        return self.images["B"]

    def cached(self, key: tuple, make: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def per_image(self, what: str, role: str, make: Callable[[np.ndarray], T]) -> T:
        """`make(image)` for role 'F', 'A' or 'B', computed once per call."""
        return self.cached((what, role), lambda: make(self.images[role]))
