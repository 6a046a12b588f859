"""Feature mutual information, fast-FMI with 3x3 windows (§2.6): FMI_pixel, FMI_dct, FMI_w.

The per-window MATLAB loop is vectorised over windows. The joint pdf of a window pair mixes a
Frechet copula bound with the product of the marginals; the bound's mass lies on at most 17 cells,
so the joint entropy is the closed-form entropy of the product part corrected on those cells
instead of a sum over all 81 cells.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft, ndimage

from distilfuse.metrics._prep import Triplet

WINDOW = 3
CELLS = WINDOW * WINDOW
CHUNK_WINDOWS = 4096  # keeps the (18, N) work arrays in cache
_INDEX = np.arange(1, CELLS + 1, dtype=np.float64)


def _unit_range(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Min-max normalise to [0, 1]; constant data become all ones."""
    low = x.min(axis=axis, keepdims=axis is not None)
    span = x.max(axis=axis, keepdims=axis is not None) - low
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (x - low) / span, 1.0)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Column-wise -sum p log2 p over p > 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=0)


def _cumsum_rows(x: np.ndarray) -> np.ndarray:
    """Cumulative sum down axis 0 (row by row: numpy's axis-0 accumulate is slow for short axes)."""
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        np.add(out[i - 1], x[i], out=out[i])
    return out


def _copula_cells(cdf_f: np.ndarray, cdf_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells (row, col) and masses of the co-monotone coupling of two (9, N) CDFs.

    The merged, sorted CDF values (F first on ties) cut [0, 1] into 18 intervals; each interval's
    mass lands on the cell given by the number of F and Y values below it. Returns (18, N) arrays;
    off-grid and empty intervals have mass 0.
    """
    n = cdf_f.shape[1]
    lanes = np.arange(n)
    steps = np.arange(CELLS)[:, None]
    y_below_f = (cdf_y[None, :, :] < cdf_f[:, None, :]).view(np.uint8)  # [i, j]: Y_j < F_i
    flat_f = ((steps + y_below_f.sum(axis=1, dtype=np.uint8)) * n + lanes).ravel()
    flat_y = ((steps + CELLS - y_below_f.sum(axis=0, dtype=np.uint8)) * n + lanes).ravel()
    ends = np.empty((2 * CELLS, n))
    ends.ravel()[flat_f] = cdf_f.ravel()
    ends.ravel()[flat_y] = cdf_y.ravel()
    from_f = np.zeros((2 * CELLS, n), dtype=np.int32)
    from_f.ravel()[flat_f] = 1
    mass = np.empty_like(ends)
    mass[0] = ends[0]
    np.subtract(ends[1:], ends[:-1], out=mass[1:])
    rows = _cumsum_rows(from_f) - from_f
    cols = np.arange(2 * CELLS)[:, None] - rows
    on_grid = (rows < CELLS) & (cols < CELLS) & (mass > 0)
    return np.minimum(rows, CELLS - 1), np.minimum(cols, CELLS - 1), np.where(on_grid, mass, 0.0)


def _pair_scores(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Fast-FMI score 2*MI/(H_x + H_f) of normalised window pairs laid out as (9, N) (steps 4-8)."""
    p_x, p_f = x / x.sum(axis=0), f / f.sum(axis=0)
    cdf_x, cdf_f = _cumsum_rows(p_x), _cumsum_rows(p_f)
    dev_x, dev_f = p_x - p_x.mean(axis=0), p_f - p_f.mean(axis=0)
    num = (dev_x * dev_f).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(
            num == 0, 0.0, num / np.sqrt((dev_x * dev_x).sum(axis=0) * (dev_f * dev_f).sum(axis=0))
        )
    spread_x = np.sqrt(np.maximum(_INDEX**2 @ p_x - (_INDEX @ p_x) ** 2, 0.0))
    spread_f = np.sqrt(np.maximum(_INDEX**2 @ p_f - (_INDEX @ p_f) ** 2, 0.0))

    # Copula bound: co-monotone for c >= 0; counter-monotone for c < 0, i.e. co-monotone with X's
    # cells reversed.
    positive = corr >= 0
    cdf_y = np.where(positive, cdf_x, _cumsum_rows(p_x[::-1]))
    rows, cols, mass = _copula_cells(cdf_f, cdf_y)
    cols = np.where(positive, cols, CELLS - 1 - cols)

    # k = c / (sum_ij (H_ij - C^f_i C^x_j) / (s_f s_x)); H_ij sums the mass of cells (<= i, <= j).
    sum_h = (mass * (CELLS - rows) * (CELLS - cols)).sum(axis=0)
    sum_product = cdf_f.sum(axis=0) * cdf_x.sum(axis=0)
    degenerate = (corr == 0) | (spread_x == 0) | (spread_f == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(degenerate, 0.0, corr * spread_f * spread_x / (sum_h - sum_product))

    h_x, h_f = _entropy_bits(p_x), _entropy_bits(p_f)
    # Joint entropy of P = k*ddH + (1-k) p_f p_x^T, summing -P log2|P| over P != 0: the product
    # part in closed form, then the cells carrying copula mass recomputed exactly.
    scale = 1 - k
    lanes = np.arange(x.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_scale = np.where(scale != 0, np.log2(np.abs(scale)), 0.0)
        h_joint = -scale * log_scale + scale * (h_f + h_x)
        product = scale * np.take(p_f, rows * len(lanes) + lanes) * np.take(p_x, cols * len(lanes) + lanes)
        cell = k * mass + product
        exact = np.where(cell != 0, -cell * np.log2(np.abs(cell)), 0.0)
        counted = np.where(product != 0, -product * np.log2(np.abs(product)), 0.0)
    h_joint = h_joint + np.where(mass > 0, exact - counted, 0.0).sum(axis=0)
    mi = h_x + h_f - h_joint
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((mi == 0) | (h_x + h_f == 0), 0.0, 2 * mi / (h_x + h_f))


def _windows(feature: np.ndarray, first_row: int, stop_row: int) -> np.ndarray:
    """3x3 windows whose top rows lie in [first_row, stop_row), flattened column-major, as (9, N)."""
    view = sliding_window_view(feature[first_row : stop_row + WINDOW - 1], (WINDOW, WINDOW))
    return view.transpose(3, 2, 0, 1).reshape(CELLS, -1)


def _score_where(decided: np.ndarray, x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pair scores: 1 where a shortcut decided, otherwise computed on the normalised windows."""
    scores = np.ones(x.shape[1])
    todo = np.flatnonzero(~decided)
    if todo.size:
        scores[todo] = _pair_scores(_unit_range(x[:, todo], axis=0), _unit_range(f[:, todo], axis=0))
    return scores


def fmi_from_features(feat_f: np.ndarray, feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Mean over all interior 3x3 windows of (s(A, F) + s(B, F)) / 2, with the reference pass order."""
    rows = feat_f.shape[0] - WINDOW + 1
    rows_per_chunk = max(1, CHUNK_WINDOWS // max(feat_f.shape[1] - WINDOW + 1, 1))
    total, count = 0.0, 0
    for start in range(0, rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, rows)
        f, a, b = (_windows(m, start, stop) for m in (feat_f, feat_a, feat_b))
        f_constant = f.min(axis=0) == f.max(axis=0)
        # A pass: equal windows score 1 and leave F raw; otherwise F is normalised for the B pass.
        a_equal = (a == f).all(axis=0)
        a_constant = a.min(axis=0) == a.max(axis=0)
        s_a = _score_where(a_equal | (a_constant & f_constant), a, f)
        f_seen_by_b = np.where(a_equal, f, _unit_range(f, axis=0))
        b_equal = (b == f_seen_by_b).all(axis=0)
        b_constant = b.min(axis=0) == b.max(axis=0)
        s_b = _score_where(b_equal | (b_constant & f_constant), b, f)
        total += float((s_a + s_b).sum()) / 2
        count += f.shape[1]
    return total / count


def edge_map(x: np.ndarray) -> np.ndarray:
    """Binary Sobel edges, threshold 4*mean(s^2), simple thinning (Octave's edge 'sobel')."""
    kernel = np.array([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]]) / 8
    strength = (
        ndimage.correlate(x, kernel, mode="nearest") ** 2
        + ndimage.correlate(x, kernel.T, mode="nearest") ** 2
    )
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


def _fmi(t: Triplet, feature_name: str, feature) -> float:
    feats = [t.per_image(feature_name, role, feature) for role in ("F", "A", "B")]
    return fmi_from_features(*feats)


def fmi_pixel(t: Triplet) -> float:
    """FMI_pixel: raw pixels (cdd) or the binary edge map (tang)."""
    if t.options.fmi_pixel_feature == "edge":
        return _fmi(t, "fmi_edge", edge_map)
    return _fmi(t, "fmi_pixel", lambda x: x)


def fmi_dct(t: Triplet) -> float:
    """FMI_dct: orthonormal 2-D DCT-II of the whole image."""
    return _fmi(t, "fmi_dct", lambda x: fft.dctn(x, type=2, norm="ortho"))


def fmi_wavelet(t: Triplet) -> float:
    """FMI_w: one-level discrete Meyer mosaic (PyWavelets 62 taps, or a user-supplied 102-tap filter)."""
    wavelet = _dmey_wavelet(t.options.fmi_dmey_filter, t.options.fmi_wavelet)
    return _fmi(t, "fmi_w", lambda x: wavelet_mosaic(x, wavelet))
