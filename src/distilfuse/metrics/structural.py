"""Structural metrics: SSIM (§2.12), MS-SSIM (§2.13) and GMSD (§2.17)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distilfuse.metrics._filters import box_sum_valid, filter_valid, halve, local_moments, row_strips
from distilfuse.metrics._prep import Triplet
from distilfuse.ops.structural import (
    GMSD_T,
    K2,
    gaussian_window,
    gradient_magnitude_similarity,
    prewitt_magnitude,
    ssim_constants,
    ssim_maps,
)

GAUSS_11 = gaussian_window(11, 1.5)
BOX_7 = np.ones(7)
MSSSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
EPS = np.finfo(np.float64).eps


def _moments(stack: np.ndarray, smooth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local means of (A, B, F), second moments of (A, B, F) and cross moments (AF, BF)."""
    return smooth(stack), smooth(stack * stack), smooth(stack[:2] * stack[2])


def _ssim_maps(means, squares, cross, c1: float, c2: float, correction: float = 1.0):
    """Per-source (A, B against F) SSIM and contrast-structure maps from the stacked local moments."""
    return ssim_maps(means[:2], means[2], squares[:2], squares[2], cross, c1, c2, correction)


def _mean_ssim(
    images: Sequence[np.ndarray],
    kernel: np.ndarray,
    c1: float,
    c2: float,
    normalise: float = 1.0,
    correction: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-source means of the SSIM and contrast-structure maps over the 'valid' windows, by strips.

    `normalise` divides the filtered moments (the window size for box sums).
    """
    ssim_sum, cs_sum, count = np.zeros(2), np.zeros(2), 0
    for moments in local_moments(images, kernel):
        if normalise != 1.0:
            moments = tuple(m / normalise for m in moments)
        ssim_map, cs_map = _ssim_maps(*moments, c1, c2, correction)
        ssim_sum += ssim_map.sum(axis=(1, 2))
        cs_sum += cs_map.sum(axis=(1, 2))
        count += ssim_map[0].size
    return ssim_sum / count, cs_sum / count


def ssim(t: Triplet) -> float:
    """SSIM: skimage-0.19 sum ssim(F,A) + ssim(F,B) (cdd) or MATLAB-default mean (tang)."""
    if t.options.ssim_mode == "cdd":
        window = 7
        # The skimage map is cropped by 3 pixels, i.e. exactly the 'valid' 7x7 windows.
        c1, c2 = ssim_constants(t.options.ssim_data_range)
        per_source, _ = _mean_ssim(
            (t.A, t.B, t.F), BOX_7, c1, c2, normalise=window**2, correction=window**2 / (window**2 - 1)
        )
        return float(per_source.sum())
    half = len(GAUSS_11) // 2
    padded = [np.pad(x, half, mode="edge") for x in (t.A, t.B, t.F)]  # 'same' with replicate borders
    per_source, _ = _mean_ssim(padded, GAUSS_11, *ssim_constants(1.0))  # MATLAB's default dynamic range L = 1
    return float(per_source.mean())


def _ms_ssim_wang(t: Triplet) -> float:
    if min(t.F.shape) <= 160:
        return float("nan")  # the fifth scale would be smaller than the 11x11 window
    c1, c2 = ssim_constants(255.0)
    images = (t.A, t.B, t.F)
    per_source = np.ones(2)
    for scale, weight in enumerate(MSSSIM_WEIGHTS):
        if scale:
            images = tuple(halve(x) for x in images)
        ssim_mean, cs_mean = _mean_ssim(images, GAUSS_11, c1, c2)
        term = ssim_mean if scale == len(MSSSIM_WEIGHTS) - 1 else cs_mean
        per_source *= np.maximum(term, 0.0) ** weight
    return float(per_source.mean())


def _mef_ssim_level(images: tuple[np.ndarray, ...]) -> float:
    """One level of Ma et al.'s MEF-SSIM for the sequence (A, B) against F: mean of the patch scores."""
    window = 11
    total, count = 0.0, 0
    for strip in row_strips(images[0].shape[0] - window + 1):
        rows = slice(strip.start, strip.stop + window - 1)
        scores = _mef_ssim_scores(np.stack([x[rows] for x in images]))
        total += scores.sum()
        count += scores.size
    return total / count


def _mef_ssim_scores(stack: np.ndarray) -> np.ndarray:
    """MEF-SSIM scores of every 11x11 patch of a (3, h, w) stack (A, B, F), vectorised over patches."""
    window, n = 11, 121
    sources = stack[:2]
    # Box moments as sums (exact for integer data): n * ||x - mu||^2 = n*S2 - S1^2.
    s1 = box_sum_valid(sources, window)
    s2 = box_sum_valid(sources * sources, window)
    s_ab = box_sum_valid(sources[0] * sources[1], window)
    centred_sq = np.maximum(n * s2 - s1 * s1, 0.0) / n  # ||x_k - mu_k||^2
    norms = np.sqrt(centred_sq)
    strength = norms + 0.001  # e_k
    sum_sq = (n * (s2[0] + s2[1] + 2 * s_ab) - (s1[0] + s1[1]) ** 2) / n
    consistency = (np.sqrt(np.maximum(sum_sq, 0.0)) + EPS) / (norms[0] + norms[1] + EPS)
    consistency = np.where(consistency > 1, 1 - EPS, np.where(consistency < 0, EPS, consistency))
    power = np.minimum(np.tan(np.pi / 2 * consistency), 10.0)
    weights = (strength / window) ** power + EPS
    weights /= weights.sum(axis=0)
    # Desired patch r = sum_k b_k (x_k - mu_k) with b_k = w_k / e_k, rescaled to norm max_k e_k.
    coef = weights / strength
    cov_ab = (n * s_ab - s1[0] * s1[1]) / n
    r_norm = np.sqrt(
        np.maximum(coef[0] ** 2 * centred_sq[0] + coef[1] ** 2 * centred_sq[1] + 2 * coef[0] * coef[1] * cov_ab, 0.0)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        rescale = np.where(r_norm > 0, strength.max(axis=0) / r_norm, 1.0)
    coef = coef * rescale
    means, squares, cross = _moments(stack, lambda x: filter_valid(x, GAUSS_11))
    var = squares - means * means
    cov_src_f = cross - means[:2] * means[2]
    g_cov_ab = filter_valid(sources[0] * sources[1], GAUSS_11) - means[0] * means[1]
    var_r = coef[0] ** 2 * var[0] + coef[1] ** 2 * var[1] + 2 * coef[0] * coef[1] * g_cov_ab
    cov_r_f = coef[0] * cov_src_f[0] + coef[1] * cov_src_f[1]
    c = (K2 * 255) ** 2
    return (2 * cov_r_f + c) / (var_r + var[2] + c)


def _ms_ssim_mef(t: Triplet) -> float:
    if min(t.F.shape) / 4 < 11:
        return float("nan")
    weights = MSSSIM_WEIGHTS[:3] / MSSSIM_WEIGHTS[:3].sum()
    images = (t.A, t.B, t.F)
    result = 1.0
    for level, weight in enumerate(weights):
        if level:
            images = tuple(halve(x) for x in images)
        result *= max(_mef_ssim_level(images), 0.0) ** weight
    return result


def ms_ssim(t: Triplet) -> float:
    """MS_SSIM: Wang 5-scale mean over sources (cdd) or 3-level MEF-SSIM (tang); NaN if too small."""
    return _ms_ssim_wang(t) if t.options.msssim_mode == "wang" else _ms_ssim_mef(t)


def _gradient_magnitude(x: np.ndarray) -> np.ndarray:
    return prewitt_magnitude(np.pad(halve(x, extension="zero"), 1))


def gmsd(t: Triplet) -> float:
    """GMSD: mean over sources of the deviation of gradient-magnitude similarity, T = 170."""
    m_f = t.per_image("prewitt", "F", _gradient_magnitude)
    total = 0.0
    for source in ("A", "B"):
        m_x = t.per_image("prewitt", source, _gradient_magnitude)
        total += gradient_magnitude_similarity(m_x, m_f, GMSD_T).std(ddof=1)
    return float(total / 2)
