"""Self-attention blocks of DANet/SAGAN and HKDnet's corner attention, with the official HKDnet key names.

``PositionAttention`` builds a (B, HW, HW) attention matrix: memory and time are O((H*W)^2). One float32
matrix takes (H*W)^2 * 4 bytes per sample, 67 MB for a 64x64 map and 1.07 GB for 128x128 (softmax and
autograd keep further copies). Use it on small (low-resolution) maps only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.blocks.corner import corner_mask


class PositionAttention(nn.Module):
    """SAGAN/DANet position attention: gamma * (V softmax(Q^T K)^T) + x, with Q, K at c/8 channels.

    gamma starts at 0, so the block is the identity at initialisation.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 8, 1)
        self.key_conv = nn.Conv2d(channels, channels // 8, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        query = self.query_conv(x).flatten(2).transpose(1, 2)  # (B, HW, c/8)
        key = self.key_conv(x).flatten(2)  # (B, c/8, HW)
        attention = torch.softmax(torch.bmm(query, key), dim=-1)  # (B, HW, HW)
        value = self.value_conv(x).flatten(2)  # (B, c, HW)
        out = torch.bmm(value, attention.transpose(1, 2)).view(b, c, h, w)
        return self.gamma * out + x


class ChannelSelfAttention(nn.Module):
    """DANet channel attention: gamma * (softmax(rowmax(E) - E) X) + x with E = X X^T over flattened X."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        flat = x.flatten(2)  # (B, c, HW)
        energy = torch.bmm(flat, flat.transpose(1, 2))  # (B, c, c)
        # DANet subtracts from the row max, so the most similar channels get the smallest weight.
        attention = torch.softmax(energy.amax(dim=-1, keepdim=True) - energy, dim=-1)
        return self.gamma * torch.bmm(attention, flat).view(b, c, h, w) + x


class CornerAttention(nn.Module):
    """HKDnet COA: M * relu(conv1(x)) + x, M = constant Harris corner mask of x (see ``corner_mask``)."""

    def __init__(self, channels: int, beta: float = 0.7) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU())
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return corner_mask(x, self.beta) * self.conv(x) + x


__all__ = ["ChannelSelfAttention", "CornerAttention", "PositionAttention"]
