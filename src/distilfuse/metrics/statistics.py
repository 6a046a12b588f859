"""Global statistics: SD (§2.2), SCD (§2.7), CC (§2.14), MSE (§2.15), PSNR (§2.16).

All of them come from one pass over row strips (`_moments`) that sums the centred products they
need, so no full-size temporary is made.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from distilfuse.metrics._filters import inner, row_strips
from distilfuse.metrics._prep import Triplet


class _Moments(NamedTuple):
    """Sums over all pixels of centred products; d_a = F - A and d_b = F - B, each centred on its mean."""

    ff: float
    aa: float
    bb: float
    af: float
    bf: float
    da_da: float  # SCD: corr(F - A, B)
    db_db: float
    da_b: float
    db_a: float
    sq_da: float  # uncentred sum of (F - A)^2, for MSE
    sq_db: float


def _moments(t: Triplet) -> _Moments:
    def build() -> _Moments:
        mean_a, mean_b, mean_f = t.A.mean(), t.B.mean(), t.F.mean()
        sum_da = sum_db = 0.0
        for strip in row_strips(t.F.shape[0]):
            sum_da += (t.F[strip] - t.A[strip]).sum()
            sum_db += (t.F[strip] - t.B[strip]).sum()
        mean_da, mean_db = sum_da / t.F.size, sum_db / t.F.size
        sums = np.zeros(11)
        for strip in row_strips(t.F.shape[0]):
            f, a, b = (x[strip].ravel() for x in (t.F, t.A, t.B))
            da, db = f - a, f - b
            sums[9] += inner(da, da)
            sums[10] += inner(db, db)
            da -= mean_da
            db -= mean_db
            f, a, b = f - mean_f, a - mean_a, b - mean_b
            sums[:9] += [
                inner(f, f), inner(a, a), inner(b, b), inner(a, f), inner(b, f),
                inner(da, da), inner(db, db), inner(da, b), inner(db, a),
            ]  # fmt: skip
        return _Moments(*(float(v) for v in sums))

    return t.cached(("moments",), build)


def _correlation(cross: float, x_sq: float, y_sq: float) -> float:
    """Pearson correlation from centred sums; NaN (0/0) when either image is constant."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(cross) / np.sqrt(np.float64(x_sq) * y_sq))


def standard_deviation(t: Triplet) -> float:
    """SD: population standard deviation of F."""
    return float(np.sqrt(_moments(t).ff / t.F.size))


def correlation_coefficient(t: Triplet) -> float:
    """CC: mean of corr(A, F) and corr(B, F)."""
    m = _moments(t)
    return 0.5 * (_correlation(m.af, m.aa, m.ff) + _correlation(m.bf, m.bb, m.ff))


def sum_of_correlations_of_differences(t: Triplet) -> float:
    """SCD: corr(F - B, A) + corr(F - A, B); NaN when a source is constant."""
    m = _moments(t)
    return _correlation(m.db_a, m.db_db, m.aa) + _correlation(m.da_b, m.da_da, m.bb)


def _mse_255(t: Triplet) -> float:
    m = _moments(t)
    return 0.5 * (m.sq_da + m.sq_db) / t.F.size


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
        return float(10.0 * np.log10(peak**2 / np.float64(mse)))
