"""Layer norm over the channels of every pixel (the Restormer "WithBias" LayerNorm)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ChannelLayerNorm(nn.Module):
    """Normalise (B,C,H,W) over C at each pixel: biased variance, eps 1e-5, per-channel weight and bias.

    Official layouts (Restormer "WithBias", CDDFuse, SHIP, EMMA) store it as ``<name>.body.weight`` and
    ``<name>.body.bias``, which this module keeps by holding an ``nn.LayerNorm`` applied channels-last.
    It computes in the input's dtype, so a float32 input to a half-precision model stays float32.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.body = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        norm = self.body
        weight, bias = norm.weight.to(x.dtype), norm.bias.to(x.dtype)
        return F.layer_norm(x.permute(0, 2, 3, 1), norm.normalized_shape, weight, bias, norm.eps).permute(
            0, 3, 1, 2
        )
