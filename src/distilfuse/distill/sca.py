"""SCAKD spatial-corner attention distillation (Zhao & Cai, 2024, eqs. 1-4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller
from distilfuse.losses.functional import channel_normalize
from distilfuse.models.blocks.corner import corner_mask


def _pooled(x: Tensor, pool: int, mode: str) -> Tensor:
    if min(x.shape[-2:]) < 2 * pool:
        raise ValueError(f"sca: feature of size {tuple(x.shape[-2:])} is too small for {pool}x{pool} pooling")
    return F.avg_pool2d(x, pool) if mode == "avg" else F.max_pool2d(x, pool)


def spatial_attention(x: Tensor, pool: int = 4) -> Tensor:
    """F_SA (eq. 3): pool x pool average pooling, channel-normalised pixels, Gram F~^T F~ -> (B, N, N)."""
    f = channel_normalize(_pooled(x, pool, "avg")).flatten(2)
    return f.transpose(1, 2) @ f


def corner_attention(x: Tensor, beta: float = 0.7, pool: int = 4, k: float = 0.04) -> Tensor:
    """F_CA (eq. 4): on the pool x pool max-pooled map, the Harris corner indicator (response >
    beta * per-channel max, constant) gating the channel-normalised feature -> (B,C,H',W')."""
    pooled = _pooled(x, pool, "max")
    return corner_mask(pooled, beta, k, dilate=False) * channel_normalize(pooled)


@register_distiller("sca")
class SCADistiller(Distiller):
    """L = sum over pairs l of alpha_l * mean|SA_t - SA_s| + (1 - alpha_l) * mean|CA_t - CA_s|.

    Eq. 2 mixes F_SA (N x N pixel relations) and F_CA (C x H' x W' corners), whose shapes differ, so
    the mix is taken on their eq.-1 distances (each normalised by its element count, eq. 1's 1/|F_SCA|).
    ``alpha`` is per feature-alignment position: one value for all pairs or one per pair (SCAKD: 0.8
    on the infrared encoder branch, 0.2 on the visible branch, 0.5 in the decoder). Eq. 4's bare 0/1
    indicator has no gradient, so, per the text's "Harris detection and normalization", it gates the
    channel-normalised feature. ``beta``: SCAKD gives no value; 0.7 is HKDnet's threshold for the same
    Harris test. A 1x1 adapter maps student channels to the teacher's when they differ (F_CA compares
    channel by channel; F_SA would not need it).
    """

    needs_adapters = True
    requires_pairs = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        alpha: float | Sequence[float] = 0.5,
        beta: float = 0.7,
        pool: int = 4,
        k: float = 0.04,
    ) -> None:
        super().__init__(student, teacher, pairs, weight)
        alphas = [float(alpha)] * len(self.pairs) if isinstance(alpha, int | float) else [float(a) for a in alpha]
        if len(alphas) != len(self.pairs) or not all(0.0 <= a <= 1.0 for a in alphas):
            raise ValueError(f"sca: alpha must be one value or one per pair, each in [0, 1]; got {alpha!r}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"sca: beta must lie in [0, 1], got {beta}")
        self.alphas, self.beta, self.pool, self.k = alphas, float(beta), int(pool), float(k)

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        terms = {}
        for pair, alpha in zip(self.pairs, self.alphas, strict=True):
            s, t = self.gather(batch, *pair)
            loss = s.new_zeros(())
            if alpha > 0:
                sa = (spatial_attention(t, self.pool) - spatial_attention(s, self.pool)).abs().mean()
                loss = loss + alpha * sa
            if alpha < 1:
                ca_t = corner_attention(t, self.beta, self.pool, self.k)
                ca_s = corner_attention(s, self.beta, self.pool, self.k)
                loss = loss + (1 - alpha) * (ca_t - ca_s).abs().mean()
            terms[self.key(pair)] = self.weight * loss
        return terms


__all__ = ["SCADistiller", "corner_attention", "spatial_attention"]
