"""BT.601 full-range YCbCr for fusing colour visible images on their luma."""

from __future__ import annotations

import kornia.color
import numpy as np
import torch


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H,W,3) float RGB in [0,1] -> (H,W,3) Y, Cb, Cr (kornia's channel order) in [0,1]."""
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    return kornia.color.rgb_to_ycbcr(t).permute(1, 2, 0).numpy()


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of `rgb_to_ycbcr`; the result is clipped to [0,1]."""
    t = torch.from_numpy(np.ascontiguousarray(ycbcr, dtype=np.float32)).permute(2, 0, 1)
    return kornia.color.ycbcr_to_rgb(t).clamp(0.0, 1.0).permute(1, 2, 0).numpy()


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma Y = 0.299R + 0.587G + 0.114B of a (H,W,3) array (float32 result)."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb.astype(np.float32) @ weights
