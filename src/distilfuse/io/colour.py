"""Colour: BT.601 luma (the one RGB -> grey conversion, with the conventions as options) and full-range
YCbCr for fusing colour visible images on their luma."""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
LumaWeights = Literal["bt601", "matlab"]
LumaRounding = Literal["none", "half_even", "half_away"]

# R, G, B weights. BT.601's rounded ones (OpenCV, PIL, most fusion code), and MATLAB rgb2gray's: the first
# row of the inverse of the NTSC YIQ -> RGB matrix, 0.298936..., 0.587043..., 0.114020...
BT601_WEIGHTS = (0.299, 0.587, 0.114)
MATLAB_WEIGHTS = tuple(
    float(w) for w in np.linalg.inv(np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]]))[0]
)


def round_half_away(x: Array) -> Array:
    """MATLAB's rounding (ties away from zero), NumPy or torch."""
    xp = torch if isinstance(x, torch.Tensor) else np
    return xp.sign(x) * xp.floor(xp.abs(x) + 0.5)


def luma(
    rgb: Array,
    weights: LumaWeights = "bt601",
    rounding: LumaRounding = "none",
    *,
    keep_grey: bool = False,
    channel_axis: int = -1,
) -> Array:
    """BT.601 full-range luma Y of RGB images (NumPy or torch, channels on `channel_axis`, any leading axes).

    `weights`: "bt601" evaluates 0.299 R + 0.587 G + 0.114 B in float32, summed as OpenCV's COLOR_BGR2GRAY
    does on a float32 image, (B 0.114 + G 0.587) + R 0.299, so that the cdd metrics match OpenCV bit for
    bit; "matlab" evaluates MATLAB rgb2gray's weights in float64.
    `rounding` (on the 0..255 scale): "none" keeps the value (the luma the models fuse, any scale);
    "half_even" rounds to the nearest level, ties to even (the cdd profile); "half_away" rounds ties away
    from zero and saturates to 0..255, as MATLAB's uint8 result (the tang profile). metrics.md §1.3.
    `keep_grey`: an image whose three channels are equal is returned as its first channel, unconverted
    (grey stored as RGB converts back to itself), decided per image.
    The result is float32 ("bt601") or float64 ("matlab"); images kept grey keep their values and dtype.
    """
    is_torch = isinstance(rgb, torch.Tensor)
    xp = torch if is_torch else np
    r, g, b = rgb.unbind(channel_axis) if is_torch else np.moveaxis(rgb, channel_axis, 0)
    if keep_grey:
        first = r
        grey = ((r == g) & (r == b)).reshape(*r.shape[:-2], -1).all(-1)
        if grey.all():
            return first
    if weights == "bt601":
        r, g, b = (c.to(torch.float32) if is_torch else c.astype(np.float32) for c in (r, g, b))
        y = (b * BT601_WEIGHTS[2] + g * BT601_WEIGHTS[1]) + r * BT601_WEIGHTS[0]
    elif weights == "matlab":
        r, g, b = (c.to(torch.float64) if is_torch else c.astype(np.float64) for c in (r, g, b))
        y = r * MATLAB_WEIGHTS[0] + g * MATLAB_WEIGHTS[1] + b * MATLAB_WEIGHTS[2]
    else:
        raise ValueError(f"unknown luma weights {weights!r}: use 'bt601' or 'matlab'")
    if rounding == "half_even":
        y = xp.round(y)
    elif rounding == "half_away":
        y = xp.clip(round_half_away(y), 0, 255)
    elif rounding != "none":
        raise ValueError(f"unknown rounding {rounding!r}: use 'none', 'half_even' or 'half_away'")
    if keep_grey and grey.any():
        y = xp.where(grey[..., None, None], first, y)
    return y


# Rows converted at a time: the conversions are per pixel, so strips give the same result as the whole
# image while bounding torch's temporaries on large images.
STRIP_ROWS = 256


def _by_strips(convert, image: np.ndarray) -> np.ndarray:
    """`convert` ((3,h,W) float32 tensor -> same) applied to row strips of an (H,W,3) image, as float32."""
    out = np.empty(image.shape, np.float32)
    for top in range(0, image.shape[0], STRIP_ROWS):
        strip = np.ascontiguousarray(image[top : top + STRIP_ROWS], dtype=np.float32)
        out[top : top + STRIP_ROWS] = convert(torch.from_numpy(strip).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    return out


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H,W,3) float RGB in [0,1] -> (H,W,3) Y, Cb, Cr (kornia's channel order) in [0,1]."""
    import kornia.color  # lazy: the metrics import this module and need no kornia

    return _by_strips(kornia.color.rgb_to_ycbcr, rgb)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_ycbcr`; the result is clipped to [0,1]."""
    import kornia.color

    return _by_strips(lambda t: kornia.color.ycbcr_to_rgb(t).clamp(0.0, 1.0), ycbcr)
