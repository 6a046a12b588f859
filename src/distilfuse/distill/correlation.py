"""Gain-and-offset-free response distillation: the student's output should be the teacher's up to a gain and an
offset per sample, which is all that a per-image min-max stretch (the MMDRFuse protocol) keeps of it."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller
from distilfuse.losses.functional import sobel_magnitude
from distilfuse.losses.fusion import correlation


@register_distiller("corr")
class CorrelationDistiller(Distiller):
    """``weight`` x mean over samples of (1 - corr(S, T)) + ``lambda_grad`` x (1 - corr(|Sobel S|, |Sobel T|)),
    S and T the raw outputs of student and teacher (Pearson correlation per sample, ``losses.fusion``).

    Unlike an L1 response it leaves the student's brightness and contrast to the task losses: a tiny student
    pulled to the teacher's absolute intensities trades contrast for them (the plain response's failure on
    mmdr-mini, docs/results.md); this one is taught only which pixels are brighter and where the edges are.
    A student equal to the teacher up to a positive gain and an offset gets no gradient.
    """

    outputs_only = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        lambda_grad: float = 1.0,
    ) -> None:
        if lambda_grad < 0:
            raise ValueError(f"corr: lambda_grad must be >= 0, got {lambda_grad}")
        super().__init__(student, teacher, pairs, weight)
        self.lambda_grad = float(lambda_grad)

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        s_out, t_out = self.outputs(batch)
        loss = (1.0 - correlation(s_out, t_out)).mean()
        if self.lambda_grad:
            loss = loss + self.lambda_grad * (1.0 - correlation(sobel_magnitude(s_out), sobel_magnitude(t_out))).mean()
        return {self.key("out"): self.weight * loss}
