"""Gradient metrics: SF (§2.3), AG (§2.4), Q^{AB/F} (§2.10) and N^{AB/F} (§2.11)."""

from __future__ import annotations

import numpy as np

from distilfuse.metrics._filters import correlate3x3
from distilfuse.metrics._prep import Triplet

HALF_PI = np.pi / 2


def spatial_frequency(t: Triplet) -> float:
    """SF = sqrt(RF^2 + CF^2) with means over the existing neighbour differences."""
    row_freq = np.mean(np.diff(t.F, axis=1) ** 2)
    col_freq = np.mean(np.diff(t.F, axis=0) ** 2)
    return float(np.sqrt(row_freq + col_freq))


def average_gradient(t: Triplet) -> float:
    """AG: mean of sqrt((Gx^2 + Gy^2)/2) with numpy.gradient, normalised by MN or (M-1)(N-1)."""
    grad_rows, grad_cols = np.gradient(t.F)
    total = np.sqrt((grad_cols**2 + grad_rows**2) / 2).sum()
    rows, cols = t.F.shape
    count = rows * cols if t.options.ag_norm == "mn" else (rows - 1) * (cols - 1)
    return float(total / count)


def _sobel(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q^{AB/F} edge strength and plain-arctan orientation (pi/2 where S_x = 0), zero padding."""
    padded = np.pad(x, 1)
    sx = correlate3x3(padded, (1, 2, 1), (-1, 0, 1))
    sy = correlate3x3(padded, (1, 0, -1), (1, 2, 1))
    strength = np.sqrt(sx * sx + sy * sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        angle = np.where(sx == 0, HALF_PI, np.arctan(sy / sx))
    return strength, angle


def _qabf_preservation(t: Triplet, source: str) -> np.ndarray:
    g_x, a_x = t.per_image("sobel", source, _sobel)
    g_f, a_f = t.per_image("sobel", "F", _sobel)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Quirk kept from every reference: where the strengths are equal G is g_F, not 1.
        relative = np.where(g_x > g_f, g_f / g_x, np.where(g_x == g_f, g_f, g_x / g_f))
    orientation = 1 - np.abs(a_x - a_f) / HALF_PI
    q_strength = 0.9994 / (1 + np.exp(-15 * (relative - 0.5)))
    q_orientation = 0.9879 / (1 + np.exp(-22 * (orientation - 0.8)))
    return q_strength * q_orientation


def qabf(t: Triplet) -> float:
    """Q^{AB/F}: edge preservation weighted by source edge strength; NaN if no source has an edge."""
    g_a, _ = t.per_image("sobel", "A", _sobel)
    g_b, _ = t.per_image("sobel", "B", _sobel)
    num = (_qabf_preservation(t, "A") * g_a + _qabf_preservation(t, "B") * g_b).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(num / (g_a + g_b).sum())


def _nabf_gradient(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    padded = np.pad(x, 1, mode="reflect")
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
    (g_f, a_f), (g_a, a_a), (g_b, a_b) = (t.per_image("nabf_gradient", r, _nabf_gradient) for r in roles)

    def preservation(g_x: np.ndarray, a_x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where((g_x == 0) | (g_f == 0), 0.0, np.minimum(g_x, g_f) / np.maximum(g_x, g_f))
        orientation = np.abs(np.abs(a_x - a_f) - HALF_PI) / HALF_PI
        q_strength = 0.9999 / (1 + np.exp(-19 * (relative - 0.5)))
        q_orientation = 0.9995 / (1 + np.exp(-22 * (orientation - 0.5)))
        return np.sqrt(q_strength * q_orientation)

    w_a = np.where(g_a >= 2, g_a**1.5, 0.001)
    w_b = np.where(g_b >= 2, g_b**1.5, 0.001)
    artifact = (g_f > g_a) & (g_f > g_b)
    loss = (1 - preservation(g_a, a_a)) * w_a + (1 - preservation(g_b, a_b)) * w_b
    return float(loss[artifact].sum() / (w_a + w_b).sum())
