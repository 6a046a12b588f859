"""Spatially-adaptive normalisation (SPADE; Park et al., CVPR 2019)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SPADE(nn.Module):
    """norm(x) * (1 + gamma(s)) + beta(s): parameter-free instance norm of ``x``, modulated per pixel by maps
    predicted from the conditioning image ``s`` (a shared 3x3 conv + ReLU, then one 3x3 conv each for gamma
    and beta, as in the SPADE paper). ``s`` is resized (nearest) to x's size when they differ.
    """

    def __init__(self, channels: int, cond_channels: int = 1, hidden: int = 128, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(
            nn.Conv2d(cond_channels, hidden, 3, padding=1, padding_mode=padding_mode), nn.ReLU()
        )
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1, padding_mode=padding_mode)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1, padding_mode=padding_mode)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="nearest")
        hidden = self.shared(cond)
        return self.norm(x) * (1 + self.gamma(hidden)) + self.beta(hidden)


__all__ = ["SPADE"]
