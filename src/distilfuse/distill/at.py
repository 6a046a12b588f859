"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017), activation-based, as the authors' code."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller


def attention_map(x: Tensor, p: float = 2.0) -> Tensor:
    """Q = vec(mean_c |x_c|^p), L2-normalised per sample -> (B, H*W)."""
    return F.normalize(x.abs().pow(p).mean(dim=1).flatten(1), dim=1)


@register_distiller("at")
class ATDistiller(Distiller):
    """mean((Q_s - Q_t)^2) per pair (the authors' ``at_loss``; their beta = 1e3 goes in ``weight``).

    Channel-agnostic: no adapters; a teacher map of another size is resized to the student's.
    """

    requires_pairs = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        p: float = 2.0,
    ) -> None:
        super().__init__(student, teacher, pairs, weight)
        self.p = float(p)

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        terms = {}
        for pair in self.pairs:
            s, t = self.gather(batch, *pair)
            terms[self.key(pair)] = self.weight * (attention_map(s, self.p) - attention_map(t, self.p)).pow(2).mean()
        return terms
