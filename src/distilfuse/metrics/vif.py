"""Multi-scale pixel VIF (§2.8, Sheikh & Bovik `vifp_mscale`) and Han et al.'s VIFF (§2.9)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from distilfuse.metrics._filters import filter_valid_decimate, local_moments
from distilfuse.metrics._prep import Triplet
from distilfuse.ops.structural import gaussian_window

EPS = 1e-10
SCALE_KERNELS = [gaussian_window(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5) for s in range(1, 5)]


class ScaleMaps(NamedTuple):
    """Per-pixel VIF quantities of one strip of one scale for the sources (A, B) against F, on axis 0."""

    gain: np.ndarray  # g
    noise_var: np.ndarray  # sigma_V^2
    source_var: np.ndarray  # sigma_R^2


def _pyramid(t: Triplet) -> list[tuple[np.ndarray, ...]]:
    """(A, B, F) at every scale: each scale filters the previous one with its own window, then decimates."""

    def build() -> list[tuple[np.ndarray, ...]]:
        levels = [(t.A, t.B, t.F)]
        for kernel in SCALE_KERNELS[1:]:
            levels.append(tuple(filter_valid_decimate(image, kernel) for image in levels[-1]))
        return levels

    return t.cached(("vif_pyramid",), build)


def _scale_maps(images: tuple[np.ndarray, ...], kernel: np.ndarray) -> Iterator[ScaleMaps]:
    """The fixed-up local statistics of one scale, strip by strip; F's moments serve both sources."""
    for means, squares, cross in local_moments(images, kernel):
        var = np.maximum(squares - means * means, 0.0)
        cov = cross - means[:2] * means[2]
        var_src, var_f = var[:2], np.broadcast_to(var[2], var[:2].shape)
        gain = cov / (var_src + EPS)
        noise_var = var_f - gain * cov
        # Fix-ups in the reference order.
        flat_src = var_src < EPS
        gain[flat_src] = 0.0
        noise_var[flat_src] = var_f[flat_src]
        var_src = np.where(flat_src, 0.0, var_src)
        flat_f = var_f < EPS
        gain[flat_f] = 0.0
        noise_var[flat_f] = 0.0
        negative = gain < 0
        noise_var[negative] = var_f[negative]
        gain[negative] = 0.0
        noise_var = np.maximum(noise_var, EPS)
        yield ScaleMaps(gain, noise_var, var_src)


def _information(m: ScaleMaps, visual_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (distorted, reference) information log10 terms of one strip."""
    distorted = np.log10(1 + m.gain**2 * m.source_var / (m.noise_var + visual_noise))
    reference = np.log10(1 + m.source_var / visual_noise)
    return distorted, reference


def vif(t: Triplet) -> float:
    """VIF: vifp(A, F) + vifp(B, F) with sigma_n^2 = 2; a NaN source term becomes `vif_nan`."""
    num, den = np.zeros(2), np.zeros(2)
    for images, kernel in zip(_pyramid(t), SCALE_KERNELS, strict=True):
        for m in _scale_maps(images, kernel):
            distorted, reference = _information(m, 2.0)
            num += distorted.sum(axis=(1, 2))
            den += reference.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_source = num / den
    per_source[np.isnan(per_source)] = t.options.vif_nan
    return float(per_source.sum())


def viff_han(t: Triplet) -> float:
    """VIFF (Han et al. 2013): per pixel the source with the smaller gain, weighted over scales."""
    scale_weights = np.array([1.0, 0.0, 0.15, 1.0]) / 2.15
    total = 0.0
    for weight, images, kernel in zip(scale_weights, _pyramid(t), SCALE_KERNELS, strict=True):
        vid, vind, count = 0.0, 0.0, 0
        for m in _scale_maps(images, kernel):
            distorted, reference = _information(m, 0.005 * 255**2)
            pick_a = m.gain[0] < m.gain[1]
            vid += np.where(pick_a, distorted[0], distorted[1]).sum()
            vind += np.where(pick_a, reference[0], reference[1]).sum()
            count += pick_a.size
        # sum(v + 1e-7) over the scale's pixels
        total += weight * (vid + 1e-7 * count) / (vind + 1e-7 * count)
    return float(total)
