"""Multi-scale pixel VIF (§2.8, Sheikh & Bovik `vifp_mscale`) and Han et al.'s VIFF (§2.9)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from distilfuse.metrics._filters import filter_valid, filter_valid_decimate, gaussian_kernel
from distilfuse.metrics._prep import Triplet

EPS = 1e-10
SCALE_KERNELS = [gaussian_kernel(2 ** (5 - s) + 1, (2 ** (5 - s) + 1) / 5) for s in range(1, 5)]


class ScaleMaps(NamedTuple):
    """Per-pixel VIF quantities of one scale for the sources (A, B) against F, stacked on axis 0."""

    gain: np.ndarray  # g
    noise_var: np.ndarray  # sigma_V^2
    source_var: np.ndarray  # sigma_R^2


def _scale_maps(t: Triplet) -> list[ScaleMaps]:
    """The fixed-up local statistics of every scale; F's pyramid and moments serve both sources."""

    def build() -> list[ScaleMaps]:
        stack = np.stack([t.A, t.B, t.F])
        maps = []
        for scale, kernel in enumerate(SCALE_KERNELS):
            if scale:
                stack = filter_valid_decimate(stack, kernel)
            means = filter_valid(stack, kernel)
            var = np.maximum(filter_valid(stack * stack, kernel) - means * means, 0.0)
            cov = filter_valid(stack[:2] * stack[2], kernel) - means[:2] * means[2]
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
            maps.append(ScaleMaps(gain, noise_var, var_src))
        return maps

    return t.cached(("vif_maps",), build)


def _information(m: ScaleMaps, visual_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (distorted, reference) information log10 terms of one scale."""
    distorted = np.log10(1 + m.gain**2 * m.source_var / (m.noise_var + visual_noise))
    reference = np.log10(1 + m.source_var / visual_noise)
    return distorted, reference


def vif(t: Triplet) -> float:
    """VIF: vifp(A, F) + vifp(B, F) with sigma_n^2 = 2; a NaN source term becomes `vif_nan`."""
    num, den = np.zeros(2), np.zeros(2)
    for m in _scale_maps(t):
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
    for weight, m in zip(scale_weights, _scale_maps(t), strict=True):
        distorted, reference = _information(m, 0.005 * 255**2)
        pick_a = m.gain[0] < m.gain[1]
        vid = np.where(pick_a, distorted[0], distorted[1])
        vind = np.where(pick_a, reference[0], reference[1])
        total += weight * (vid + 1e-7).sum() / (vind + 1e-7).sum()
    return float(total)
