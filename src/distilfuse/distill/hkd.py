"""HKDnet heterogeneous distillation (Xiao et al., IEEE TIM 2022, eqs. 22-23)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller

Stage = Literal["fusion", "full"]


@register_distiller("hkd")
class HKDDistiller(Distiller):
    """Stage 'full' (eq. 23): mean|I_t - I_s| (teacher output as label) + phi * sum over pairs mean|T - S|.

    Stage 'fusion' (eq. 22, HKDnet's first 60 epochs): mean|F_t - F_s| on ``fusion_pair`` only (the
    student's fused LR feature vs the teacher's penultimate feature). ``stage`` may be switched on a
    built distiller (its feature lists follow); adapters for both stages exist from construction.
    HKDnet's pairs: (teacher second-to-last, student second-to-last) and (teacher fourth-to-last,
    student third-to-last). Teacher maps of another size are resized to the student's.
    """

    needs_adapters = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        phi: float = 1.0,
        stage: Stage = "full",
        fusion_pair: Sequence[str] | None = None,
    ) -> None:
        super().__init__(student, teacher, pairs, weight, extra_pairs=[fusion_pair] if fusion_pair else ())
        self.phi = float(phi)
        self.fusion_pair = tuple(fusion_pair) if fusion_pair else None
        self.stage = stage
        self._active_pairs()  # validates the stage

    def _active_pairs(self) -> list[tuple[str, str]]:
        if self.stage == "full":
            return self.pairs
        if self.stage == "fusion":
            if self.fusion_pair is None:
                raise ValueError("hkd: stage 'fusion' needs a fusion_pair [student_feature, teacher_feature]")
            return [self.fusion_pair]
        raise ValueError(f"hkd: stage must be 'fusion' or 'full', got {self.stage!r}")

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        pairs = self._active_pairs()
        if self.stage == "fusion":
            s, t = self.gather(batch, *pairs[0])
            return {self.key("fusion", pairs[0]): self.weight * F.l1_loss(s, t)}
        terms = {self.key("label"): self.weight * F.l1_loss(*self.outputs(batch))}
        for pair in pairs:
            s, t = self.gather(batch, *pair)
            terms[self.key(pair)] = self.weight * self.phi * F.l1_loss(s, t)
        return terms
