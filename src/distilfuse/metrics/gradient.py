"""Gradient metrics: SF (§2.3), AG (§2.4), Q^{AB/F} (§2.10) and N^{AB/F} (§2.11)."""

from __future__ import annotations

import numpy as np

from distilfuse.metrics._filters import inner, row_strips
from distilfuse.metrics._prep import Triplet
from distilfuse.ops.structural import correlate3x3

HALF_PI = np.pi / 2


def spatial_frequency(t: Triplet) -> float:
    """SF = sqrt(RF^2 + CF^2) with means over the existing neighbour differences."""
    rows, cols = t.F.shape
    row_sum = col_sum = 0.0
    for strip in row_strips(rows):
        horizontal = np.diff(t.F[strip], axis=1)
        row_sum += inner(horizontal, horizontal)
        # Vertical differences ending in this strip's rows.
        vertical = np.diff(t.F[max(strip.start - 1, 0) : strip.stop], axis=0)
        col_sum += inner(vertical, vertical)
    return float(np.sqrt(row_sum / (rows * (cols - 1)) + col_sum / ((rows - 1) * cols)))


def _row_gradient(x: np.ndarray, strip: slice) -> np.ndarray:
    """numpy.gradient of x along axis 0, for the rows of `strip` only."""
    rows = x.shape[0]
    inner = slice(max(strip.start, 1), min(strip.stop, rows - 1))
    out = np.empty((strip.stop - strip.start, x.shape[1]))
    if inner.start < inner.stop:
        out[inner.start - strip.start : inner.stop - strip.start] = (
            x[inner.start + 1 : inner.stop + 1] - x[inner.start - 1 : inner.stop - 1]
        ) / 2.0
    if strip.start == 0:
        out[0] = x[1] - x[0]
    if strip.stop == rows:
        out[-1] = x[-1] - x[-2]
    return out


def average_gradient(t: Triplet) -> float:
    """AG: mean of sqrt((Gx^2 + Gy^2)/2) with numpy.gradient, normalised by MN or (M-1)(N-1)."""
    total = 0.0
    for strip in row_strips(t.F.shape[0]):
        grad_cols = np.gradient(t.F[strip], axis=1)
        grad_rows = _row_gradient(t.F, strip)
        np.square(grad_cols, out=grad_cols)
        np.square(grad_rows, out=grad_rows)
        grad_cols += grad_rows
        grad_cols /= 2
        total += np.sqrt(grad_cols, out=grad_cols).sum()
    rows, cols = t.F.shape
    count = rows * cols if t.options.ag_norm == "mn" else (rows - 1) * (cols - 1)
    return float(total / count)


def _sobel(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q^{AB/F} edge strength and plain-arctan orientation (pi/2 where S_x = 0) of zero-padded images."""
    sx = correlate3x3(padded, (1, 2, 1), (-1, 0, 1))
    sy = correlate3x3(padded, (1, 0, -1), (1, 2, 1))
    strength = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.arctan(sy / sx)
    angle[sx == 0] = HALF_PI
    return strength, angle


def _padded_rows(images: tuple[np.ndarray, ...], strip: slice, mode: str) -> np.ndarray:
    """The strip's rows of the stacked images with a one-pixel border: zeros or mirrored ('reflect')."""
    rows, cols = images[0].shape
    index = np.arange(strip.start - 1, strip.stop + 1)
    if mode == "reflect":  # np.pad's 'reflect': row -1 is row 1, row `rows` is row rows - 2
        index = np.abs(index)
        index = np.where(index >= rows, 2 * (rows - 1) - index, index)
        return np.pad(np.stack([x[index] for x in images]), ((0, 0), (0, 0), (1, 1)), mode="reflect")
    padded = np.zeros((len(images), len(index), cols + 2))
    inside = (index >= 0) & (index < rows)
    for layer, image in zip(padded, images, strict=True):
        layer[inside, 1:-1] = image[index[inside]]
    return padded


def qabf(t: Triplet) -> float:
    """Q^{AB/F}: edge preservation weighted by source edge strength; NaN if no source has an edge."""
    num = den = 0.0
    for strip in row_strips(t.F.shape[0]):
        strength, angle = _sobel(_padded_rows((t.A, t.B, t.F), strip, mode="constant"))
        g_src, g_f = strength[:2], strength[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.minimum(g_src, g_f) / np.maximum(g_src, g_f)
        # Quirk kept from every reference: where the strengths are equal G is g_F, not 1.
        equal = g_src == g_f
        relative[equal] = np.broadcast_to(g_f, g_src.shape)[equal]
        orientation = 1 - np.abs(angle[:2] - angle[2]) / HALF_PI
        q_strength = 0.9994 / (1 + np.exp(-15 * (relative - 0.5)))
        q_orientation = 0.9879 / (1 + np.exp(-22 * (orientation - 0.8)))
        num += inner(q_strength * q_orientation, g_src)
        den += g_src.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(num) / den)


def _nabf_gradient(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """N^{AB/F} gradient strength and orientation (arctan, 0 where both components are 0) of padded images."""
    g_v = correlate3x3(padded, (1 / 8, 2 / 8, 1 / 8), (-1, 0, 1))
    g_h = correlate3x3(padded, (-1 / 8, 0, 1 / 8), (1, 2, 1))
    strength = np.sqrt(g_h * g_h + g_v * g_v)
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.arctan(g_v / g_h)  # +-pi/2 where only g_h = 0
    angle[(g_h == 0) & (g_v == 0)] = 0.0
    return strength, angle


def nabf(t: Triplet) -> float:
    """N^{AB/F}: artifacts, i.e. fused edges stronger than both sources' (lower is better)."""
    roles = ("F", "A", "B") if t.options.nabf_order == "fused_first" else ("A", "B", "F")
    images = tuple(t.images[role] for role in roles)  # (the image treated as fused, source, source)
    loss = weight = 0.0
    for strip in row_strips(t.F.shape[0]):
        strength, angle = _nabf_gradient(_padded_rows(images, strip, mode="reflect"))
        g_f, a_f, g_src = strength[0], angle[0], strength[1:]
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where((g_src == 0) | (g_f == 0), 0.0, np.minimum(g_src, g_f) / np.maximum(g_src, g_f))
        orientation = np.abs(np.abs(angle[1:] - a_f) - HALF_PI) / HALF_PI
        q_strength = 0.9999 / (1 + np.exp(-19 * (relative - 0.5)))
        q_orientation = 0.9995 / (1 + np.exp(-22 * (orientation - 0.5)))
        w = np.where(g_src >= 2, g_src**1.5, 0.001)
        artifact = (g_f > g_src[0]) & (g_f > g_src[1])
        loss += ((1 - np.sqrt(q_strength * q_orientation)) * w).sum(axis=0)[artifact].sum()
        weight += w.sum()
    return float(loss / weight)
