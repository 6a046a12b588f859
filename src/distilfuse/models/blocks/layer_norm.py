"""Layer norm over the channels of every pixel (the Restormer "WithBias" LayerNorm)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ChannelLayerNorm(nn.Module):
    """Normalise (B,C,H,W) over C at each pixel: biased variance, eps 1e-5, per-channel weight and bias.

    Official layouts (Restormer "WithBias", CDDFuse, SHIP, EMMA) store it as ``<name>.body.weight`` and
    ``<name>.body.bias``, which this module keeps by holding an ``nn.LayerNorm`` for its parameters.
    The forward spells out the official formula (mean, biased var, (x - mean) / sqrt(var + eps) * w + b) on
    a channels-last view instead of calling ``F.layer_norm``: same maths, but the official float32
    rounding, which SHIP's ill-conditioned instance norms amplify (F.layer_norm: 2.3e-4 off SHIP's
    reference on one pair; this form, single-threaded: bit-identical). It computes in the input's dtype,
    so a float32 input to a half-precision model stays float32.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.body = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        tokens = x.permute(0, 2, 3, 1)
        mean = tokens.mean(-1, keepdim=True)
        var = tokens.var(-1, keepdim=True, unbiased=False)
        weight, bias = self.body.weight.to(x.dtype), self.body.bias.to(x.dtype)
        normed = (tokens - mean) / torch.sqrt(var + self.body.eps) * weight + bias
        return normed.permute(0, 3, 1, 2)
