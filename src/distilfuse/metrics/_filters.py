"""Separable filters and resampling shared by the metrics (all on the last two axes).

'valid' correlations are computed as banded matrix products over blocks of output rows (or
columns): a block of b outputs of a length-L kernel is one (b, b + L - 1) matrix times the input
rows it covers. That does about (b + L - 1)/L times the multiply-adds of a direct filter, but BLAS
runs them several times faster than scipy.ndimage's line-by-line loops, above all along rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np

from distilfuse.ops.structural import mean2x2

# Output rows (columns) per banded product: 16 and 32 measured fastest for 3- to 17-tap kernels at
# 640x480, 64 about 1.3x slower.
_BLOCK = 32
# Output rows per strip of local moments: the strip's work arrays stay small enough to be reused
# from the heap instead of being freshly mapped (page faults cost as much as the arithmetic here).
STRIP_ROWS = 16
# OpenBLAS computes a product of M*N*K <= 2**18 multiply-adds on the calling thread. Larger ones wake
# its thread pool, which for these thin products roughly doubles the CPU time for little gain.
_SERIAL_PRODUCT = 2**18


@lru_cache(maxsize=64)
def _band(kernel: tuple[float, ...], outputs: int, step: int) -> np.ndarray:
    """(outputs, (outputs - 1) * step + L) matrix whose row r holds the kernel from column r * step."""
    length = len(kernel)
    band = np.zeros((outputs, (outputs - 1) * step + length))
    for row in range(outputs):
        band[row, row * step : row * step + length] = kernel
    band.flags.writeable = False
    return band


def correlate_valid(x: np.ndarray, kernel: np.ndarray, axis: int, step: int = 1) -> np.ndarray:
    """'valid' correlation along axis -2 or -1, keeping every `step`-th output from the first."""
    length, size = len(kernel), x.shape[axis]
    count = (size - length) // step + 1 if size >= length else 0
    shape = list(x.shape)
    shape[axis] = count
    out = np.empty(shape)
    band = _band(tuple(float(v) for v in kernel), _BLOCK, step)
    if axis == -1:
        # All rows of all images as one matrix, so that each product is one BLAS call.
        x, out = x.reshape(-1, size), out.reshape(-1, count)
    for start in range(0, count, _BLOCK):
        outputs = min(_BLOCK, count - start)
        block = band[:outputs, : (outputs - 1) * step + length]
        span = slice(start * step, start * step + block.shape[1])
        # Split the other dimension so that every product stays below OpenBLAS's threading threshold.
        chunk = max(1, _SERIAL_PRODUCT // block.size)
        for first in range(0, x.shape[-1] if axis == -2 else x.shape[0], chunk):
            part = slice(first, first + chunk)
            if axis == -2:
                np.matmul(block, x[..., span, part], out=out[..., start : start + outputs, part])
            else:
                np.matmul(x[part, span], block.T, out=out[part, start : start + outputs])
    return out.reshape(shape)


def filter_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate with outer(kernel, kernel), keeping MATLAB's 'valid' part."""
    return correlate_valid(correlate_valid(x, kernel, axis=-2), kernel, axis=-1)


def filter_valid_decimate(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """`filter_valid(x, kernel)[..., ::2, ::2]` without computing the discarded outputs."""
    return correlate_valid(correlate_valid(x, kernel, axis=-2, step=2), kernel, axis=-1, step=2)


def box_sum_valid(x: np.ndarray, size: int) -> np.ndarray:
    """Sums over every size x size window lying inside the image.

    Every partial sum of integer-valued data is an exactly representable integer, so these sums are
    exact and flat windows give exactly zero variance.
    """
    return filter_valid(x, np.ones(size))


def inner(x: np.ndarray, y: np.ndarray) -> float:
    """Sum of x * y over all elements, without a temporary (numpy's own loop, never BLAS threads)."""
    return float(np.einsum("i,i->", x.ravel(), y.ravel()))


def row_strips(height: int, rows: int = STRIP_ROWS) -> Iterator[slice]:
    """Consecutive row ranges of at most `rows` rows covering 0..height."""
    for start in range(0, height, rows):
        yield slice(start, min(start + rows, height))


def local_moments(
    images: Sequence[np.ndarray], kernel: np.ndarray, rows: int = STRIP_ROWS
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """'valid' local moments of (A, B, F) with the separable window outer(kernel, kernel), in strips.

    Yields, for consecutive strips of at most `rows` output rows, the local means (3, r, w), second
    moments (3, r, w) and cross moments (AF, BF) as (2, r, w).
    """
    length = len(kernel)
    count = images[0].shape[0] - length + 1
    for start in range(0, max(count, 0), rows):
        stop = min(start + rows, count)
        moments = np.empty((8, stop - start + length - 1, images[0].shape[1]))
        for index, image in enumerate(images):
            moments[index] = image[start : stop + length - 1]
        np.multiply(moments[:3], moments[:3], out=moments[3:6])
        np.multiply(moments[:2], moments[2], out=moments[6:8])
        filtered = filter_valid(moments, kernel)
        yield filtered[:3], filtered[3:6], filtered[6:8]


def halve(x: np.ndarray, extension: str = "edge") -> np.ndarray:
    """2x2 forward mean then keep every second sample from 0.

    An odd side is extended by repeating the last sample (`extension='edge'`, MS-SSIM) or by zeros
    (`'zero'`, GMSD).
    """
    pad_rows, pad_cols = x.shape[-2] % 2, x.shape[-1] % 2
    if pad_rows or pad_cols:
        widths = [(0, 0)] * (x.ndim - 2) + [(0, pad_rows), (0, pad_cols)]
        x = np.pad(x, widths, mode="edge" if extension == "edge" else "constant")
    return mean2x2(x)
