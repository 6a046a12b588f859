"""Where fused images differ most: the window that the pair grids enlarge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distilfuse.metrics._filters import box_sum_valid


@dataclass(frozen=True)
class Box:
    """A rectangle in pixel coordinates: top row, left column, height, width."""

    y: int
    x: int
    h: int
    w: int


def _standardised(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float64)
    spread = x.std()
    return (x - x.mean()) / spread if spread > 0 else x - x.mean()


def disagreement_box(images: Sequence[np.ndarray], side: int) -> Box:
    """The side x side window (clipped to the image) where the (H,W) grey images differ most.

    Each image is standardised (zero mean, unit variance) so that a global brightness or contrast
    offset, such as a min-max stretch, does not count as a difference; the window maximises the sum
    of the per-pixel standard deviation across images. Ties go to the top-most, then left-most window.
    """
    if len(images) < 2:
        raise ValueError("need at least two images to compare")
    stack = np.stack([_standardised(image) for image in images])
    height, width = stack.shape[1:]
    side = max(1, min(side, height, width))
    sums = box_sum_valid(stack.std(axis=0), side)
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return Box(int(y), int(x), side, side)
