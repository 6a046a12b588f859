"""MLKD multi-level distillation (Zhang et al., Acta Electronica Sinica 2025, eqs. 1-8, 21)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, register_distiller
from distilfuse.losses.functional import resize_to, sobel_magnitude


def mean_attention(x: Tensor) -> Tensor:
    """Eq. 1: channel-mean map, flattened and L2-normalised -> (B, H*W)."""
    return F.normalize(x.mean(dim=1).flatten(1), dim=1)


def attention_loss(s: Tensor, t: Tensor) -> Tensor:
    """Eq. 2: 1 - cos(A_t, A_s), batch mean (the teacher map resized to the student's size)."""
    a_s = mean_attention(s)
    a_t = mean_attention(resize_to(t.mean(dim=1, keepdim=True), tuple(s.shape[-2:])))
    return (1.0 - F.cosine_similarity(a_s, a_t, dim=1)).mean()


def similarity_matrix(x: Tensor, size: int = 32) -> Tensor:
    """Eqs. 3-4: bilinear resize to size x size, rows (pixels) L2-normalised, S = X X^T -> (B, N, N)."""
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    rows = F.normalize(x.flatten(2).transpose(1, 2), dim=2)
    return rows @ rows.transpose(1, 2)


RESPONSE_TARGETS = ("clamp", "raw")


def response_loss(s_out: Tensor, t_out: Tensor, lambda_grad: float, normalized: bool = True) -> Tensor:
    """Eqs. 6-8: mean |I_t - I_s| + lambda_grad * mean | |Sobel I_t| - |Sobel I_s| |."""
    grad = F.l1_loss(sobel_magnitude(s_out, normalized), sobel_magnitude(t_out, normalized))
    return F.l1_loss(s_out, t_out) + lambda_grad * grad


@register_distiller("mlkd")
class MLKDDistiller(Distiller):
    """lambda_att * L_att + lambda_sim * L_sim per pair, + lambda_out * L_out on the outputs (eq. 21).

    All three levels are channel-agnostic (channel means, pixel-pixel similarities, images): no
    adapters, so heterogeneous teachers plug in directly. MLKD's settings: lambdas 1, lambda_grad 10,
    32 x 32 similarity grid. |Sobel| is kornia's (``normalized``: see ``losses.max_gradient``).
    ``target``: the response target I_t is the teacher's output clamped to [0,1] as its fused image is
    ("clamp", default: SHIP's raw output leaves [0,1]), or its raw output ("raw").
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        lambda_att: float = 1.0,
        lambda_sim: float = 1.0,
        lambda_out: float = 1.0,
        lambda_grad: float = 10.0,
        sim_size: int = 32,
        normalized: bool = True,
        target: str = "clamp",
    ) -> None:
        if target not in RESPONSE_TARGETS:
            raise ValueError(f"mlkd: target must be one of {RESPONSE_TARGETS}, got {target!r}")
        super().__init__(student, teacher, pairs, weight)
        self.lambda_att, self.lambda_sim, self.lambda_out = lambda_att, lambda_sim, lambda_out
        self.lambda_grad, self.sim_size, self.normalized = lambda_grad, int(sim_size), normalized
        self.target = target

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        terms = {}
        for pair in self.pairs:
            s, t = self.gather(batch, *pair, resize=False)
            terms[self.key("att", pair)] = self.weight * self.lambda_att * attention_loss(s, t)
            sim = F.mse_loss(similarity_matrix(s, self.sim_size), similarity_matrix(t, self.sim_size))
            terms[self.key("sim", pair)] = self.weight * self.lambda_sim * sim
        s_out, t_out = self.outputs(batch)
        if self.target == "clamp":
            t_out = t_out.clamp(0.0, 1.0)
        out = response_loss(s_out, t_out, self.lambda_grad, self.normalized)
        terms[self.key("out")] = self.weight * self.lambda_out * out
        return terms
