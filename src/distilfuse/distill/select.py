"""Quality-selected response distillation: a per-pixel target chosen among several teachers' outputs
(and the student's own), by a local fusion-quality score against the sources (distilfuse's own)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, at_least_float32, register_distiller
from distilfuse.distill.mlkd import response_loss
from distilfuse.losses.functional import resize_to, sobel_magnitude, ssim_map
from distilfuse.ops.stretch import min_max_stretch_batch


def local_quality(
    candidates: Tensor, ir: Tensor, vis: Tensor, window: int = 11, gradient_weight: float = 1.0, eps: float = 1e-3
) -> Tensor:
    """Per-pixel score of each candidate fusion (B,K,H,W) -> (B,K,H,W), higher is better.

    Mean local SSIM to the two sources (structure), plus ``gradient_weight`` x the local share of the
    stronger source gradient the candidate keeps, mean(min(|grad c|, g)) / mean(g), g = max(|grad ir|,
    |grad vis|) (texture, in [0, 1]; edges beyond the sources' earn nothing). Means over a ``window``
    Gaussian (SSIM's) or box (gradient) neighbourhood; reflect padding keeps the full size.
    """
    b, k, h, w = candidates.shape
    flat = candidates.reshape(b * k, 1, h, w)
    ir_k, vis_k = (x.repeat_interleave(k, dim=0) for x in (ir, vis))
    structure = 0.5 * sum(ssim_map(flat, src, window, padding="reflect") for src in (ir_k, vis_k))
    g_max = torch.maximum(sobel_magnitude(ir_k), sobel_magnitude(vis_k))
    kept = torch.minimum(sobel_magnitude(flat), g_max)
    pad = window // 2

    def box(x: Tensor) -> Tensor:
        return F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), window, stride=1)

    texture = box(kept) / (box(g_max) + eps)
    return (structure + gradient_weight * texture).reshape(b, k, h, w)


def select_target(candidates: Tensor, scores: Tensor, temperature: float) -> Tensor:
    """Blend candidates (B,K,H,W) per pixel by softmax(score / temperature); 0 picks the best (argmax)."""
    if temperature > 0:
        weights = torch.softmax(scores / temperature, dim=1)
    else:
        weights = F.one_hot(scores.argmax(dim=1), candidates.shape[1]).permute(0, 3, 1, 2).to(candidates.dtype)
    return (weights * candidates).sum(dim=1, keepdim=True)


@register_distiller("select")
class SelectDistiller(Distiller):
    """Pixel response to a target picked per pixel among the teachers' outputs (each channel of the
    teacher's output is one teacher: a ``TeacherEnsemble``, or a single teacher) and, with
    ``include_student``, the student's own current output (detached), by ``local_quality``.

    Where the student already beats every teacher the target is the student itself and nothing is
    distilled; elsewhere it learns from whichever teacher fuses that neighbourhood best. Loss: MLKD's
    response form, L1 + ``lambda_grad`` x L1 of |Sobel| (``distill.mlkd.response_loss``). ``image`` says
    what a fused image is: ``clamp`` (outputs clamped to [0,1]; the student's raw output meets the target) or
    ``stretch`` (each output min-max stretched, the student's included, for recipes trained and scored on
    the stretched output, `train.loss_space: stretch`).
    """

    outputs_only = True
    target = "clamp"  # as mlkd's `target`: the target is a fused image in [0,1], never the raw output

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        include_student: bool = True,
        temperature: float = 0.0,
        window: int = 11,
        gradient_weight: float = 1.0,
        lambda_grad: float = 1.0,
        normalized: bool = True,
        image: str = "clamp",
    ) -> None:
        if temperature < 0 or window < 3 or window % 2 == 0:
            raise ValueError(f"select: temperature must be >= 0 and window odd >= 3, got {temperature}, {window}")
        if image not in ("clamp", "stretch"):
            raise ValueError(f"select: image must be clamp or stretch, got {image!r}")
        super().__init__(student, teacher, pairs, weight)
        self.include_student, self.temperature = include_student, float(temperature)
        self.window, self.gradient_weight = int(window), float(gradient_weight)
        self.lambda_grad, self.normalized = float(lambda_grad), normalized
        self.target = image

    def fused_image(self, out: Tensor) -> Tensor:
        return min_max_stretch_batch(out) if self.target == "stretch" else out.clamp(0.0, 1.0)

    def selected_target(self, batch: DistillBatch) -> Tensor:
        """The selected per-pixel target (B,1,H,W), detached."""
        s_out = at_least_float32(batch.student_out)
        t_out = at_least_float32(batch.teacher_out.detach())
        if s_out.dim() != 4 or t_out.dim() != 4 or s_out.shape[0] != t_out.shape[0] or s_out.shape[1] != 1:
            raise ValueError(f"select: outputs must be (B,1,H,W) and (B,K,H,W), got {tuple(s_out.shape)}, "
                             f"{tuple(t_out.shape)}")  # fmt: skip
        candidates = self.fused_image(resize_to(t_out, tuple(s_out.shape[-2:])))
        if self.include_student:
            candidates = torch.cat([candidates, self.fused_image(s_out.detach())], dim=1)
        with torch.no_grad():
            ir, vis = (at_least_float32(x) for x in (batch.ir, batch.vis))
            scores = local_quality(candidates, ir, vis, self.window, self.gradient_weight)
            return select_target(candidates, scores, self.temperature)

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        s_out = at_least_float32(batch.student_out)
        if self.target == "stretch":
            s_out = min_max_stretch_batch(s_out)
        loss = response_loss(s_out, self.selected_target(batch), self.lambda_grad, self.normalized)
        return {self.key("out"): self.weight * loss}
