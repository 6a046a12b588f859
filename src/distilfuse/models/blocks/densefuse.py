"""DenseFuse-style layers (Li & Wu, TIP 2019) as used by HKDnet, with its state-dict key names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ReflectConvLayer(nn.Module):
    """DenseFuse ``ConvLayer``: ReflectionPad(k//2), conv (key ``conv2d``), ReLU unless ``last``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, last: bool = False) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(c_in, c_out, kernel_size)
        self.act = nn.Identity() if last else nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv2d(self.reflection_pad(x)))


class DenseConv(nn.Module):
    """cat[x, ConvLayer(x)]: one step of a dense block (key ``dense_conv``)."""

    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.dense_conv = ReflectConvLayer(c_in, growth)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.dense_conv(x)], dim=1)


class DenseBlock(nn.Module):
    """``n_layers`` dense steps of ``growth`` channels: c -> c + n_layers * growth (key ``denseblock``)."""

    def __init__(self, channels: int, growth: int = 16, n_layers: int = 3) -> None:
        super().__init__()
        self.denseblock = nn.Sequential(*(DenseConv(channels + i * growth, growth) for i in range(n_layers)))

    def forward(self, x: Tensor) -> Tensor:
        return self.denseblock(x)


class SpatialSoftmaxFusion(nn.Module):
    """Parameter-free fusion of two feature maps with per-pixel softmax weights of their channel means.

    w_a = e^{mean_c a} / (e^{mean_c a} + e^{mean_c b} + 1e-10); output w_a * a + w_b * b (HKDnet's
    ``attention_fusion_weight``, DenseFuse's spatial strategy with mean activity).
    """

    eps = 1e-10

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        exp_a, exp_b = a.mean(dim=1, keepdim=True).exp(), b.mean(dim=1, keepdim=True).exp()
        total = exp_a + exp_b + self.eps
        return exp_a / total * a + exp_b / total * b


class ActivityRatioFusion(nn.Module):
    """HKDnet's fusion rule as the paper writes it (eqs. 14-16), DenseFuse's l1-norm strategy.

    M_X = sum_c |X| per pixel (eq. 14), averaged over each 3x3 neighbourhood (inside the image only);
    W_a = M_a / (M_a + M_b + eps) (eq. 15, the "softmax" the text names is this ratio); output
    W_a * a + W_b * b per channel (eq. 16).
    """

    eps = 1e-10

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        m_a, m_b = (F.avg_pool2d(x.abs().sum(dim=1, keepdim=True), 3, 1, 1, count_include_pad=False) for x in (a, b))
        total = m_a + m_b + self.eps
        return m_a / total * a + m_b / total * b


__all__ = ["ActivityRatioFusion", "DenseBlock", "DenseConv", "ReflectConvLayer", "SpatialSoftmaxFusion"]
