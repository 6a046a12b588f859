"""SCAKD spatial-corner attention distillation (Zhao & Cai, 2024, eqs. 1-4)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller
from distilfuse.losses.functional import channel_normalize
from distilfuse.models.blocks.corner import corner_mask, harris_response


def _pooled(x: Tensor, pool: int, mode: str) -> Tensor:
    if min(x.shape[-2:]) < 2 * pool:
        raise ValueError(f"sca: feature of size {tuple(x.shape[-2:])} is too small for {pool}x{pool} pooling")
    return F.avg_pool2d(x, pool) if mode == "avg" else F.max_pool2d(x, pool)


def spatial_attention(x: Tensor, pool: int = 4) -> Tensor:
    """F_SA (eq. 3): pool x pool average pooling, channel-normalised pixels, Gram F~^T F~ -> (B, N, N)."""
    f = channel_normalize(_pooled(x, pool, "avg")).flatten(2)
    return f.transpose(1, 2) @ f


def spatial_attention_map(x: Tensor, pool: int = 4) -> Tensor:
    """F_SA in the B x C x H'W' shape the paper gives F_SCA (section 3.3.1): the normalised pooled feature
    F~ re-weighted by its pixel relations, F~ (F~^T F~) / N -> (B, C, N), N = H'W' (values in [-1, 1])."""
    f = channel_normalize(_pooled(x, pool, "avg")).flatten(2)
    return (f @ f.transpose(1, 2)) @ f / f.shape[-1]  # associativity: a C x C product, not the N x N Gram


def corner_attention(x: Tensor, beta: float = 0.7, pool: int = 4, k: float = 0.04, form: str = "mask") -> Tensor:
    """F_CA (eq. 4) on the pool x pool max-pooled map -> (B,C,H',W').

    ``form="mask"``: the binary indicator Harris > beta * per-channel max itself; its gradient passes
    straight through the per-channel max-normalised Harris response (the indicator's own is zero almost
    everywhere). ``form="gated"``: the constant indicator gating the channel-normalised feature.
    """
    pooled = _pooled(x, pool, "max")
    mask = corner_mask(pooled, beta, k, dilate=False)
    if form == "gated":
        return mask * channel_normalize(pooled)
    response = harris_response(pooled, k)
    response = response / response.detach().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return mask + (response - response.detach())


@register_distiller("sca")
class SCADistiller(Distiller):
    """L = sum over pairs l of mean|F_SCA,t - F_SCA,s|, F_SCA = alpha_l F_SA + (1 - alpha_l) F_CA (eqs. 1-2).

    ``alpha`` is per feature-alignment position: one value for all pairs or one per pair (SCAKD: 0.8
    on the infrared encoder branch, 0.2 on the visible branch, 0.5 in the decoder).
    ``mix="maps"`` (the paper's eq. 2, default) mixes the maps before the L1: F_SA is taken in the
    B x C x H'W' shape the paper states for F_SCA (``spatial_attention_map``), element by element with F_CA.
    ``mix="distances"`` mixes the two eq.-1 distances instead, F_SA being the N x N Gram (the behaviour
    before issue 10). ``corner``: "mask" (eq. 4's binary indicators matched, default) or "gated" (the
    indicator gating the channel-normalised feature); see ``corner_attention``. ``beta``: SCAKD gives no
    value; 0.7 is HKDnet's threshold for the same Harris test. A 1x1 adapter maps student channels to the
    teacher's when they differ.
    """

    needs_adapters = True
    requires_pairs = True
    MIXES = ("maps", "distances")
    CORNERS = ("mask", "gated")

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
        mix: str = "maps",
        corner: str = "mask",
    ) -> None:
        super().__init__(student, teacher, pairs, weight)
        alphas = [float(alpha)] * len(self.pairs) if isinstance(alpha, int | float) else [float(a) for a in alpha]
        if len(alphas) != len(self.pairs) or not all(0.0 <= a <= 1.0 for a in alphas):
            raise ValueError(f"sca: alpha must be one value or one per pair, each in [0, 1]; got {alpha!r}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"sca: beta must lie in [0, 1], got {beta}")
        if mix not in self.MIXES:
            raise ValueError(f"sca: mix must be one of {self.MIXES}, got {mix!r}")
        if corner not in self.CORNERS:
            raise ValueError(f"sca: corner must be one of {self.CORNERS}, got {corner!r}")
        self.alphas, self.beta, self.pool, self.k = alphas, float(beta), int(pool), float(k)
        self.mix, self.corner = mix, corner

    def _corner(self, x: Tensor) -> Tensor:
        return corner_attention(x, self.beta, self.pool, self.k, self.corner)

    def _pair_loss(self, s: Tensor, t: Tensor, alpha: float) -> Tensor:
        if self.mix == "maps":
            sca_t, sca_s = (
                alpha * spatial_attention_map(x, self.pool) + (1 - alpha) * self._corner(x).flatten(2) for x in (t, s)
            )
            return (sca_t - sca_s).abs().mean()
        loss = s.new_zeros(())
        if alpha > 0:
            loss = loss + alpha * (spatial_attention(t, self.pool) - spatial_attention(s, self.pool)).abs().mean()
        if alpha < 1:
            loss = loss + (1 - alpha) * (self._corner(t) - self._corner(s)).abs().mean()
        return loss

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        return {
            self.key(pair): self.weight * self._pair_loss(*self.gather(batch, *pair), alpha)
            for pair, alpha in zip(self.pairs, self.alphas, strict=True)
        }


__all__ = ["SCADistiller", "corner_attention", "spatial_attention", "spatial_attention_map"]
