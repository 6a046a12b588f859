"""Separable filters and resampling shared by the metrics (all on the last two axes)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """1-D factor of MATLAB's fspecial('gaussian', size, sigma); the 2-D window is its outer product."""
    offsets = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def filter_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate with outer(kernel, kernel), keeping MATLAB's 'valid' part (kernel length odd)."""
    half = len(kernel) // 2
    rows = ndimage.correlate1d(x, kernel, axis=-2, mode="constant")[..., half : max(x.shape[-2] - half, 0), :]
    return ndimage.correlate1d(rows, kernel, axis=-1, mode="constant")[..., half : max(x.shape[-1] - half, 0)]


def filter_same(x: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    """Correlate with outer(kernel, kernel) at input size with scipy.ndimage border `mode`."""
    return ndimage.correlate1d(ndimage.correlate1d(x, kernel, axis=-2, mode=mode), kernel, axis=-1, mode=mode)


def filter_valid_decimate(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`filter_valid(x, kernel)[..., ::2, ::2]` without computing the discarded rows."""
    half = len(kernel) // 2
    rows = ndimage.correlate1d(x, kernel, axis=-2, mode="constant")[
        ..., half : max(x.shape[-2] - half, 0) : 2, :
    ]
    return ndimage.correlate1d(rows, kernel, axis=-1, mode="constant")[
        ..., half : max(x.shape[-1] - half, 0) : 2
    ]


def box_sum_valid(x: np.ndarray, size: int) -> np.ndarray:
    """Sums over every size x size window lying inside the image.

    Cumulative sums are exact for integer-valued data, so flat windows give exactly zero variance.
    """
    zero_col = np.zeros(x.shape[:-1] + (1,))
    cols = np.cumsum(np.concatenate([zero_col, x], axis=-1), axis=-1)
    cols = cols[..., size:] - cols[..., :-size]
    zero_row = np.zeros(cols.shape[:-2] + (1, cols.shape[-1]))
    rows = np.cumsum(np.concatenate([zero_row, cols], axis=-2), axis=-2)
    return rows[..., size:, :] - rows[..., :-size, :]


def halve(x: np.ndarray, extension: str = "edge") -> np.ndarray:
    """2x2 forward mean then keep every second sample from 0.

    An odd side is extended by repeating the last sample (`extension='edge'`, MS-SSIM) or by zeros
    (`'zero'`, GMSD).
    """
    pad_rows, pad_cols = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_rows or pad_cols:
        widths = [(0, 0)] * (x.ndim - 2) + [(0, pad_rows), (0, pad_cols)]
        x = np.pad(x, widths, mode="edge" if extension == "edge" else "constant")
    return 0.25 * (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2])


def correlate3x3(
    padded: np.ndarray, vertical: tuple[float, ...], horizontal: tuple[float, ...]
) -> np.ndarray:
    """Correlate a 1-pixel-padded image with the 3x3 kernel outer(vertical, horizontal), output unpadded."""
    rows = vertical[0] * padded[:-2] + vertical[1] * padded[1:-1] + vertical[2] * padded[2:]
    return horizontal[0] * rows[:, :-2] + horizontal[1] * rows[:, 1:-1] + horizontal[2] * rows[:, 2:]
