"""Residual dense block (Zhang et al., "Residual Dense Network for Image Super-Resolution", CVPR 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ResidualDenseBlock(nn.Module):
    """x + LFF(cat[x, h_1, ..., h_n]), h_i = ReLU(conv3(cat[x, h_1, ..., h_{i-1}])) with ``growth`` channels.

    LFF is RDN's 1x1 local feature fusion back to ``channels``. ``padding_mode`` applies to the 3x3 convs.
    """

    def __init__(self, channels: int, growth: int, n_layers: int, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels + i * growth, growth, 3, padding=1, padding_mode=padding_mode), nn.ReLU())
            for i in range(n_layers)
        )
        self.fuse = nn.Conv2d(channels + n_layers * growth, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return x + self.fuse(torch.cat(features, dim=1))


__all__ = ["ResidualDenseBlock"]
