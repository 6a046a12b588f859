"""Inter-channel correlation distillation (ICKD, Liu et al., ICCV 2021)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller


def channel_correlation(x: Tensor) -> Tensor:
    """Row-normalised inter-channel Gram matrix F F^T of (B,C,H,W) -> (B,C,C)."""
    f = x.flatten(2)
    return F.normalize(f @ f.transpose(1, 2), dim=2)


def correlation_distance(s: Tensor, t: Tensor) -> Tensor:
    """ICKD's sum of squared Gram differences / (C * B)."""
    b, c = s.shape[:2]
    return ((channel_correlation(s) - channel_correlation(t)) ** 2).sum() / (c * b)


@register_distiller("ic")
class ICDistiller(Distiller):
    """ICKD per pair: student through a 1x1 adapter when channels differ (ICKD's linear embedding).

    ``grid`` > 1 is ICKD's dense-prediction variant: the map is split into grid x grid patches
    (``torch.tensor_split``, so any size works) and the patch losses are averaged.
    """

    needs_adapters = True
    requires_pairs = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        grid: int = 1,
    ) -> None:
        super().__init__(student, teacher, pairs, weight)
        if grid < 1:
            raise ValueError(f"ic: grid must be >= 1, got {grid}")
        self.grid = int(grid)

    def _patches(self, x: Tensor) -> list[Tensor]:
        return [
            p for rows in torch.tensor_split(x, self.grid, dim=-2) for p in torch.tensor_split(rows, self.grid, dim=-1)
        ]

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        terms = {}
        for pair in self.pairs:
            s, t = self.gather(batch, *pair)
            if min(s.shape[-2:]) < self.grid:
                raise ValueError(f"ic: feature {pair[0]!r} of size {tuple(s.shape[-2:])} < grid {self.grid}")
            losses = [correlation_distance(ps, pt) for ps, pt in zip(self._patches(s), self._patches(t), strict=True)]
            terms[self.key(pair)] = self.weight * torch.stack(losses).mean()
        return terms
