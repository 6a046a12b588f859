"""Histogram metrics: EN (§2.1) and MI (§2.5)."""

from __future__ import annotations

import numpy as np

from distilfuse.metrics._filters import row_strips
from distilfuse.metrics._prep import Triplet, grey_levels

LEVELS = 256


def _levels(t: Triplet, role: str) -> np.ndarray:
    return t.per_image("levels", role, lambda x: grey_levels(x, t.options.level_rounding))


def _histogram(t: Triplet, role: str) -> np.ndarray:
    return t.per_image("histogram", role, lambda _: np.bincount(_levels(t, role).ravel(), minlength=LEVELS))


def _entropy(counts: np.ndarray, log: np.ufunc = np.log2) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * log(p)).sum())


def entropy(t: Triplet) -> float:
    """EN: Shannon entropy in bits of F's 256-bin histogram."""
    return _entropy(_histogram(t, "F"))


def _joint_histogram(fused: np.ndarray, other: np.ndarray, saturate: bool) -> np.ndarray:
    """Counts of (F level, X level) pairs as a flat 256*256 array, accumulated over row strips."""
    joint = np.zeros(LEVELS * LEVELS, dtype=np.intp)
    for strip in row_strips(fused.shape[0], rows=64):
        f, x = fused[strip].astype(np.intp), other[strip].astype(np.intp)
        if saturate:
            # Tang's uint8 "level + 1" indexing merges levels 254 and 255 in the joint histogram only.
            np.minimum(f, LEVELS - 2, out=f)
            np.minimum(x, LEVELS - 2, out=x)
        f *= LEVELS
        f += x
        joint += np.bincount(f.ravel(), minlength=LEVELS * LEVELS)
    return joint


def _mutual_information(t: Triplet, source: str) -> float:
    joint = _joint_histogram(_levels(t, "F"), _levels(t, source), t.options.mi_joint_saturation)
    if t.options.mi_base == 2:
        # Tang: H(X) + H(F) - H(F,X) in bits, with ordinary marginals.
        return _entropy(_histogram(t, source)) + _entropy(_histogram(t, "F")) - _entropy(joint)
    size = t.F.size
    joint = joint.reshape(LEVELS, LEVELS)
    p_fused = _histogram(t, "F") / size
    p_other = _histogram(t, source) / size
    rows, cols = np.nonzero(joint)
    p_joint = joint[rows, cols] / size
    return float((p_joint * np.log(p_joint / (p_fused[rows] * p_other[cols]))).sum())


def mutual_information(t: Triplet) -> float:
    """MI: MI(F, A) + MI(F, B), nats (cdd) or bits with the joint-saturation quirk (tang)."""
    return _mutual_information(t, "A") + _mutual_information(t, "B")
