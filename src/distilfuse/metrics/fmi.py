"""Feature mutual information, fast-FMI with 3x3 windows (§2.6): FMI_pixel, FMI_dct, FMI_w.

The per-window MATLAB loop is vectorised over windows, in chunks. Everything that depends on one
window only (pdf, CDF, spread, entropy) is computed once per window: F's windows serve both the A
and the B pass. The joint pdf of a pair is built on its 81 cells at once: the copula bound H over
all (i, j), its second difference, and the mix with the product of the marginals.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft, ndimage

from distilfuse.metrics._prep import Triplet

WINDOW = 3
CELLS = WINDOW * WINDOW
# Windows per chunk: the (9, 9, N) joint-pdf work arrays then stay within the core's L2 cache.
CHUNK_WINDOWS = 1024
_INDEX = np.arange(1, CELLS + 1, dtype=np.float64)
# Stand-in for 0 inside log2, so that 0 * log2(0) evaluates to 0 without a masked select.
_TINY = np.finfo(np.float64).tiny


def _unit_range(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Min-max normalise to [0, 1]; constant data become all ones."""
    low = x.min(axis=axis, keepdims=axis is not None)
    span = x.max(axis=axis, keepdims=axis is not None) - low
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (x - low) / span, 1.0)


def _cumsum_rows(x: np.ndarray) -> np.ndarray:
    """Cumulative sum down axis 0 (row by row: numpy's axis-0 accumulate is slow for short axes)."""
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        np.add(out[i - 1], x[i], out=out[i])
    return out


def _entropy_bits(p: np.ndarray, axis: int | tuple[int, ...], scratch: np.ndarray | None = None) -> np.ndarray:
    """-sum p log2|p| over `axis`, terms with p = 0 counting 0 (`scratch`: work array shaped like p)."""
    logs = np.abs(p, out=scratch)
    np.maximum(logs, _TINY, out=logs)
    np.log2(logs, out=logs)
    logs *= p
    return -logs.sum(axis=axis)


class _Marginal(NamedTuple):
    """Steps 4-6 and the entropy of normalised windows laid out as (9, N)."""

    p: np.ndarray  # pdf
    cdf: np.ndarray
    dev: np.ndarray  # p - mean(p)
    dev_sq: np.ndarray  # (N,) sum of dev^2
    spread: np.ndarray  # (N,)
    entropy: np.ndarray  # (N,) bits
    cdf_sum: np.ndarray  # (N,)

    def take(self, lanes: np.ndarray) -> _Marginal:
        return _Marginal(*(field[..., lanes] for field in self))


def _marginal(window: np.ndarray) -> _Marginal:
    p = window / window.sum(axis=0)
    cdf = _cumsum_rows(p)
    dev = p - p.mean(axis=0)
    # einsum, not `@`: numpy's own loop rather than a BLAS call that may wake its thread pool.
    spread = np.sqrt(np.maximum(np.einsum("i,in->n", _INDEX**2, p) - np.einsum("i,in->n", _INDEX, p) ** 2, 0.0))
    entropy = _entropy_bits(p, axis=0)
    return _Marginal(p, cdf, dev, (dev * dev).sum(axis=0), spread, entropy, cdf.sum(axis=0))


def _pair_scores(x: _Marginal, f: _Marginal, work: np.ndarray) -> np.ndarray:
    """Fast-FMI scores 2*MI/(H_x + H_f) of normalised window pairs (steps 5-8).

    `work` is a (3, 9, 9, N) scratch array, reused across chunks: fresh arrays of this size would
    each be mapped from the system and page-faulted in again. Pairs that a shortcut decides are
    scored too (their score is replaced later); 0/0 there must not warn.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return _copula_scores(x, f, *work[:, :, :, : x.p.shape[1]])


def _copula_scores(x: _Marginal, f: _Marginal, bound: np.ndarray, mass: np.ndarray, joint: np.ndarray) -> np.ndarray:
    num = (x.dev * f.dev).sum(axis=0)
    corr = np.where(num == 0, 0.0, num / np.sqrt(x.dev_sq * f.dev_sq))
    # H[i, j] = min(u, v) for c >= 0 and max(u + v - 1, 0) = u - min(u, 1 - v) for c < 0, with
    # u = C^f_i and v = C^x_j; both cases as counter * u + sign * min(u, v'), without a select.
    counter = (corr < 0).astype(np.float64)
    cdf_x = np.where(corr < 0, 1.0 - x.cdf, x.cdf)
    np.minimum(f.cdf[:, None, :], cdf_x[None, :, :], out=bound)
    bound *= 1.0 - 2.0 * counter
    bound += (counter * f.cdf)[:, None, :]
    degenerate = (corr == 0) | (x.spread == 0) | (f.spread == 0)
    k = np.where(degenerate, 0.0, corr * f.spread * x.spread / (bound.sum(axis=(0, 1)) - f.cdf_sum * x.cdf_sum))
    # Joint pdf P = k * (second difference of H, with H = 0 before the first row and column)
    #               + (1 - k) * p_f p_x^T.
    mass[0] = bound[0]
    np.subtract(bound[1:], bound[:-1], out=mass[1:])
    joint[:, 0] = mass[:, 0]
    np.subtract(mass[:, 1:], mass[:, :-1], out=joint[:, 1:])
    joint *= k
    np.multiply(((1 - k) * f.p)[:, None, :], x.p[None, :, :], out=bound)
    joint += bound
    h_sum = x.entropy + f.entropy
    mi = h_sum - _entropy_bits(joint, axis=(0, 1), scratch=mass)
    # k = 0 leaves the product of the marginals, whose MI is exactly 0.
    return np.where((k == 0) | (mi == 0) | (h_sum == 0), 0.0, 2 * mi / h_sum)


def _windows(feature: np.ndarray, first_row: int, stop_row: int) -> np.ndarray:
    """3x3 windows whose top rows lie in [first_row, stop_row), flattened column-major, as (9, N)."""
    view = sliding_window_view(feature[first_row : stop_row + WINDOW - 1], (WINDOW, WINDOW))
    return view.transpose(3, 2, 0, 1).reshape(CELLS, -1)


def _is_constant(x: np.ndarray) -> np.ndarray:
    return x.min(axis=0) == x.max(axis=0)


def _scores(decided: np.ndarray, x: np.ndarray, f: _Marginal, work: np.ndarray) -> np.ndarray:
    """Pair scores of raw X-windows against F: 1 where a shortcut decided, otherwise steps 4-8."""
    todo = np.flatnonzero(~decided)
    if todo.size > 0.75 * decided.size:  # selecting the few decided lanes out costs more than it saves
        return np.where(decided, 1.0, _pair_scores(_marginal(_unit_range(x, axis=0)), f, work))
    scores = np.ones(decided.size)
    if todo.size:
        scores[todo] = _pair_scores(_marginal(_unit_range(x[:, todo], axis=0)), f.take(todo), work)
    return scores


def fmi_from_features(feat_f: np.ndarray, feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Mean over all interior 3x3 windows of (s(A, F) + s(B, F)) / 2, with the reference pass order."""
    rows = feat_f.shape[0] - WINDOW + 1
    rows_per_chunk = max(1, CHUNK_WINDOWS // max(feat_f.shape[1] - WINDOW + 1, 1))
    work = np.empty((3, CELLS, CELLS, rows_per_chunk * max(feat_f.shape[1] - WINDOW + 1, 1)))
    total, count = 0.0, 0
    for start in range(0, rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, rows)
        f, a, b = (_windows(m, start, stop) for m in (feat_f, feat_a, feat_b))
        f_constant = _is_constant(f)
        f_unit = _unit_range(f, axis=0)
        # Both passes see F normalised (normalising twice changes nothing), so its marginal is shared.
        f_marginal = _marginal(f_unit)
        # A pass: equal windows score 1 and leave F raw; otherwise F is normalised for the B pass.
        a_equal = (a == f).all(axis=0)
        s_a = _scores(a_equal | (_is_constant(a) & f_constant), a, f_marginal, work)
        b_equal = (b == np.where(a_equal, f, f_unit)).all(axis=0)
        s_b = _scores(b_equal | (_is_constant(b) & f_constant), b, f_marginal, work)
        total += float((s_a + s_b).sum()) / 2
        count += f.shape[1]
    return total / count


def edge_map(x: np.ndarray) -> np.ndarray:
    """Binary Sobel edges, threshold 4*mean(s^2), simple thinning (Octave's edge 'sobel')."""
    kernel = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8
    strength = ndimage.correlate(x, kernel, mode="nearest") ** 2 + ndimage.correlate(x, kernel.T, mode="nearest") ** 2
    strength[strength <= 4 * strength.mean()] = 0.0
    padded = np.pad(strength, 1)
    centre = padded[1:-1, 1:-1]
    horizontal = (centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:])
    vertical = (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1])
    return (horizontal | vertical).astype(np.float64)


def _dmey_wavelet(options_filter: Sequence[float] | None, variant: str):
    import pywt  # optional dependency, only FMI_w needs it

    if variant == "dmey_matlab102":
        if options_filter is None:
            warnings.warn(
                "FMI_w: MATLAB's 102-tap dmey filter was not supplied (fmi_dmey_filter); "
                "using PyWavelets' 62-tap dmey instead",
                stacklevel=4,
            )
        else:
            return wavelet_from_scaling_filter(options_filter)
    return pywt.Wavelet("dmey")


def wavelet_from_scaling_filter(scaling: Sequence[float]):
    """A pywt.Wavelet from a scaling filter, built as MATLAB's orthogonal wavelet filters (§2.6)."""
    import pywt

    w = np.asarray(scaling, dtype=np.float64)
    lo_r = np.sqrt(2) * w / w.sum()
    hi_r = lo_r[::-1].copy()
    hi_r[1::2] *= -1
    return pywt.Wavelet("dmey_user", filter_bank=[lo_r[::-1], hi_r[::-1], lo_r, hi_r])


def wavelet_mosaic(x: np.ndarray, wavelet) -> np.ndarray:
    """One-level DWT mosaic [[cA, cH], [cV, cD]] normalised to [0, 1]."""
    import pywt

    approx, (horiz, vert, diag) = pywt.dwt2(x, wavelet, mode="symmetric")
    return _unit_range(np.block([[approx, horiz], [vert, diag]]))


def _fmi(t: Triplet, feature) -> float:
    # Not cached: no other metric uses these full-size feature maps.
    return fmi_from_features(*(feature(x) for x in (t.F, t.A, t.B)))


def fmi_pixel(t: Triplet) -> float:
    """FMI_pixel: raw pixels (cdd) or the binary edge map (tang)."""
    if t.options.fmi_pixel_feature == "edge":
        return _fmi(t, edge_map)
    return _fmi(t, lambda x: x)


def fmi_dct(t: Triplet) -> float:
    """FMI_dct: orthonormal 2-D DCT-II of the whole image."""
    return _fmi(t, lambda x: fft.dctn(x, type=2, norm="ortho"))


def fmi_wavelet(t: Triplet) -> float:
    """FMI_w: one-level discrete Meyer mosaic (PyWavelets 62 taps, or a user-supplied 102-tap filter)."""
    wavelet = _dmey_wavelet(t.options.fmi_dmey_filter, t.options.fmi_wavelet)
    return _fmi(t, lambda x: wavelet_mosaic(x, wavelet))
