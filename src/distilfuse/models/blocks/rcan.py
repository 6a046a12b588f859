"""RCAN building blocks (Zhang et al., ECCV 2018) with the official RCAN/EDSR state-dict layout.

Attribute names and ``nn.Sequential`` positions follow the RCAN code base (``conv_du.0``, ``body.3`` ...),
so checkpoints of networks built from these blocks (e.g. HKDnet) load strictly.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from distilfuse.models.blocks.conv import channel_gate


def default_conv(c_in: int, c_out: int, kernel_size: int = 3, bias: bool = True) -> nn.Conv2d:
    """RCAN's ``default_conv``: zero padding kernel_size // 2, stride 1."""
    return nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=bias)


class ChannelAttentionLayer(nn.Module):
    """RCAN's CA layer: x * sigmoid(conv1(relu(conv1(mean_HW(x))))), channels c -> c/reduction -> c."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.conv_du = channel_gate(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.conv_du(x.mean(dim=(-2, -1), keepdim=True))


class ResidualChannelAttentionBlock(nn.Module):
    """RCAB: x + CA(conv3(relu(conv3(x))))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            default_conv(channels, channels),
            nn.ReLU(),
            default_conv(channels, channels),
            ChannelAttentionLayer(channels, reduction),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """x + conv3(RCAB^n(x))."""

    def __init__(self, channels: int, n_blocks: int, reduction: int = 16) -> None:
        super().__init__()
        blocks: list[nn.Module] = [ResidualChannelAttentionBlock(channels, reduction) for _ in range(n_blocks)]
        self.body = nn.Sequential(*blocks, default_conv(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class PixelShuffleUpsampler(nn.Sequential):
    """EDSR/RCAN ``Upsampler``: (conv3 c->4c, shuffle 2) per factor 2, or (conv3 c->9c, shuffle 3)."""

    def __init__(self, scale: int, channels: int) -> None:
        layers: list[nn.Module] = []
        if scale >= 2 and scale & (scale - 1) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [default_conv(channels, 4 * channels), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [default_conv(channels, 9 * channels), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"scale must be 3 or a power of two >= 2, got {scale}")
        super().__init__(*layers)


__all__ = [
    "ChannelAttentionLayer",
    "PixelShuffleUpsampler",
    "ResidualChannelAttentionBlock",
    "ResidualGroup",
    "default_conv",
]
