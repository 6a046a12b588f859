"""Global statistics: SD (§2.2), SCD (§2.7), CC (§2.14), MSE (§2.15), PSNR (§2.16)."""

from __future__ import annotations

import numpy as np

from distilfuse.metrics._prep import Triplet


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over all pixels; NaN (0/0) when either image is constant."""
    dx, dy = x - x.mean(), y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))


def standard_deviation(t: Triplet) -> float:
    """SD: population standard deviation of F."""
    return float(t.F.std())


def correlation_coefficient(t: Triplet) -> float:
    """CC: mean of corr(A, F) and corr(B, F)."""
    return 0.5 * (_correlation(t.A, t.F) + _correlation(t.B, t.F))


def sum_of_correlations_of_differences(t: Triplet) -> float:
    """SCD: corr(F - B, A) + corr(F - A, B); NaN when a source is constant."""
    return _correlation(t.F - t.B, t.A) + _correlation(t.F - t.A, t.B)


def _mse_255(t: Triplet) -> float:
    return t.cached(("mse_255",), lambda: 0.5 * (np.mean((t.A - t.F) ** 2) + np.mean((t.B - t.F) ** 2)))


def mean_squared_error(t: Triplet) -> float:
    """MSE: mean of the two source MSEs, on 0..255 (cdd) or divided by 255^2 (tang)."""
    mse = _mse_255(t)
    return float(mse if t.options.mse_scale == 255 else mse / 255.0**2)


def peak_signal_to_noise_ratio(t: Triplet) -> float:
    """PSNR from the averaged MSE; +inf when F equals both sources."""
    mse = _mse_255(t)
    peak = {"max_f": float(t.F.max()), "peak255": 255.0, "tang": 255.0}[t.options.psnr_mode]
    if t.options.psnr_mode == "tang":
        mse = mse / 255.0**2  # Tang's MSE on [0,1] with the peak kept at 255 (+48.13 dB)
    with np.errstate(divide="ignore"):
        return float(10.0 * np.log10(peak**2 / mse))
