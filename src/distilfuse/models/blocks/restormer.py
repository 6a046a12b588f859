"""Restormer-style transformer blocks with channel ("transposed") attention.

Official module names are kept so that CDDFuse / EMMA checkpoints load strictly:

* ``TransformerBlock`` (Restormer, Zamir et al. CVPR 2022): ``norm1``, ``attn`` (MDTA: ``temperature``,
  ``qkv``, ``qkv_dwconv``, ``project_out``), ``norm2``, ``ffn`` (GDFN: ``project_in``, ``dwconv``,
  ``project_out``).
* ``LiteTransformerBlock`` (CDDFuse's ``BaseFeatureExtraction``, EMMA's global feature): ``norm1``,
  ``attn`` (``scale``, ``qkv1``, ``qkv2``, ``proj``), ``norm2``, ``mlp`` (same keys as GDFN, grouped conv).

Attention is over channels: per head, A = softmax(norm(q) norm(k)^T * t) is (C/h x C/h), so the cost is
linear in the number of pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.models.blocks.layer_norm import ChannelLayerNorm


def channel_attention(q: Tensor, k: Tensor, v: Tensor, num_heads: int, temperature: Tensor) -> Tensor:
    """Multi-head attention across channels of (B,C,H,W) q, k, v; returns (B,C,H,W).

    q and k are L2-normalised along the pixels before A = softmax(q k^T * temperature) (B,heads,C/h,C/h).
    """
    b, c, h, w = q.shape
    q, k, v = (t.reshape(b, num_heads, c // num_heads, h * w) for t in (q, k, v))
    q = F.normalize(q, dim=-1)
    k = F.normalize(k, dim=-1)
    attn = (q @ k.transpose(-2, -1) * temperature).softmax(dim=-1)
    return (attn @ v).reshape(b, c, h, w)


class MDTA(nn.Module):
    """Multi-Dconv-head Transposed Attention: 1x1 conv to q,k,v, depthwise 3x3, channel attention."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        return self.project_out(channel_attention(q, k, v, self.num_heads, self.temperature))


class LiteAttention(nn.Module):
    """CDDFuse's ``AttentionBase``: 1x1 conv then a full 3x3 conv to q,k,v, channel attention."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv1 = nn.Conv2d(dim, dim * 3, 1, bias=qkv_bias)
        self.qkv2 = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, bias=qkv_bias)
        self.proj = nn.Conv2d(dim, dim, 1, bias=qkv_bias)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv2(self.qkv1(x)).chunk(3, dim=1)
        return self.proj(channel_attention(q, k, v, self.num_heads, self.scale))


class GDFN(nn.Module):
    """Gated-Dconv feed-forward: 1x1 conv to 2*hidden, 3x3 (grouped) conv, GELU(x1) * x2, 1x1 conv back.

    ``dw_groups_per_hidden=2`` makes the 3x3 conv depthwise (Restormer GDFN); ``1`` gives CDDFuse's
    ``Mlp`` (groups = hidden, 2 channels per group). ``padding_mode`` is 'reflect' in EMMA's Mlp.
    """

    def __init__(
        self,
        dim: int,
        ffn_expansion_factor: float,
        bias: bool = False,
        dw_groups_per_hidden: int = 2,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(
            hidden * 2,
            hidden * 2,
            3,
            padding=1,
            groups=hidden * dw_groups_per_hidden,
            bias=bias,
            padding_mode=padding_mode,
        )
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """Restormer block: x + MDTA(LN x), then + GDFN(LN x), with channel LayerNorms ("WithBias")."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = MDTA(dim, num_heads, bias)
        self.norm2 = ChannelLayerNorm(dim)
        self.ffn = GDFN(dim, ffn_expansion_factor, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class LiteTransformerBlock(nn.Module):
    """CDDFuse's ``BaseFeatureExtraction`` ("Lite Transformer"): attention with a full 3x3 qkv conv and a
    grouped-conv gated MLP (ffn factor 1), each with a pre-norm residual."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_expansion_factor: float = 1.0,
        qkv_bias: bool = False,
        mlp_padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.attn = LiteAttention(dim, num_heads, qkv_bias)
        self.norm2 = ChannelLayerNorm(dim)
        self.mlp = GDFN(dim, ffn_expansion_factor, bias=False, dw_groups_per_hidden=1, padding_mode=mlp_padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


__all__ = [
    "GDFN",
    "MDTA",
    "LiteAttention",
    "LiteTransformerBlock",
    "TransformerBlock",
    "channel_attention",
]
