"""Per-image min-max stretch, the one post-processing step that `fuse`, `eval` and `to_unit` share."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def min_max_stretch(x: np.ndarray, high: float = 1.0) -> np.ndarray:
    """Map the image's [min, max] linearly onto [0, high]; floating input keeps its dtype.

    A constant image (no range to stretch) becomes all zeros, the bottom of the range. That is what the
    published pipelines this stretch reproduces produce: MMDRFuse saves through scipy's `bytescale`, which
    replaces a zero range by 1 so every pixel maps to its `low` = 0; CDDFuse and EMMA compute
    (x - min) / (max - min), a NaN that their cast to uint8 turns into 0; OpenCV's NORM_MINMAX maps it to
    its lower bound too. Keeping the image unchanged instead is not defined for raw network outputs, which
    may lie anywhere (tanh outputs are negative), and would score a flat output by its brightness.
    """
    low, top = float(x.min()), float(x.max())
    if not top > low:
        return np.zeros_like(x)
    # One rounding after an exact product: integer-valued images hit exact halves exactly.
    return (x - low) * high / (top - low)


def min_max_stretch_batch(x: Tensor) -> Tensor:
    """`min_max_stretch` of each sample of a batch (B,...) -> (B,...), differentiable (the gradient reaches the
    extreme pixels through the range); a constant sample becomes zeros, as there."""
    flat = x.flatten(1)
    low = flat.amin(dim=1).view(-1, *([1] * (x.dim() - 1)))
    span = flat.amax(dim=1).view_as(low) - low
    stretched = (x - low) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, stretched, torch.zeros_like(x))
