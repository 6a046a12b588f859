"""Efficient channel attention (ECA-Net; Wang et al., CVPR 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive 1-D kernel size: the odd number nearest above |(log2 C + b) / gamma|."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ECA(nn.Module):
    """x * sigmoid(conv1d_k(mean_HW(x))) across channels, k = ``eca_kernel_size(channels)``, no bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = x.mean(dim=(-2, -1)).unsqueeze(1)  # (B, 1, C)
        return x * torch.sigmoid(self.conv(pooled)).transpose(1, 2).unsqueeze(-1)


__all__ = ["ECA", "eca_kernel_size"]
