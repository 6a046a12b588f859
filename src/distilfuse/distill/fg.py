"""Focal and global distillation (FGD, Yang et al., CVPR 2022) adapted to fusion (no boxes)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from distilfuse.distill.base import DistillBatch, Distiller, module_device, register_distiller


def spatial_attention(x: Tensor, temperature: float) -> Tensor:
    """FGD's A^S = H*W * softmax(mean_c |x| / T) over positions -> (B,H,W) with mean 1."""
    b, _, h, w = x.shape
    return h * w * torch.softmax(x.abs().mean(dim=1).flatten(1) / temperature, dim=1).view(b, h, w)


def channel_attention(x: Tensor, temperature: float) -> Tensor:
    """FGD's A^C = C * softmax(mean_hw |x| / T) over channels -> (B,C) with mean 1."""
    return x.shape[1] * torch.softmax(x.abs().mean(dim=(2, 3)) / temperature, dim=1)


def focal_mask(teacher_spatial_attention: Tensor) -> Tensor:
    """Fusion has no boxes: the focal region is where the teacher's A^S exceeds its mean (1)."""
    return (teacher_spatial_attention > 1.0).to(teacher_spatial_attention.dtype)


class GlobalContext(nn.Module):
    """GcBlock (Cao et al., 2019), FGD's relation module R: x + transform(attention-pooled context)."""

    def __init__(self, channels: int, ratio: float = 0.5) -> None:
        super().__init__()
        hidden = max(1, int(channels * ratio))
        self.mask = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        weights = torch.softmax(self.mask(x).flatten(1), dim=1)  # (B, HW)
        context = torch.einsum("bcn,bn->bc", x.flatten(2), weights)[..., None, None]
        return x + self.transform(context)


@register_distiller("fg")
class FGDistiller(Distiller):
    """FGD per pair: focal feature loss + attention loss + global (GcBlock relation) loss.

    * focal: (T - f(S))^2 weighted by the teacher's A^S * A^C, summed over the focal region M (see
      ``focal_mask``; each region normalised by its pixel count, FGD's 1/(H_r W_r) and 1/N_bg) and
      divided by C; ``alpha`` on M, ``beta`` on 1 - M;
    * attention: ``gamma`` * (mean |A^S_t - A^S_s| + mean |A^C_t - A^C_s|);
    * global: ``lam`` * mean (R(T) - R(f(S)))^2 with one GcBlock R per pair (the paper's eq.; the official
      code keeps one per network), trained with the student.
    f is the 1x1 adapter when channels differ. Terms are means (FGD sums over FPN levels), so the
    weights default to 1 (beta = alpha / 2 keeps the focal region dominant); T = 0.5 as FGD.
    """

    needs_adapters = True
    requires_pairs = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        temperature: float = 0.5,
        alpha: float = 1.0,
        beta: float = 0.5,
        gamma: float = 1.0,
        lam: float = 1.0,
    ) -> None:
        super().__init__(student, teacher, pairs, weight)
        self.temperature, self.alpha, self.beta, self.gamma, self.lam = temperature, alpha, beta, gamma, lam
        device = module_device(student)
        self.relations = nn.ModuleDict(
            {self.adapter_key(*p): GlobalContext(self.teacher_channels[p[1]]).to(device) for p in self.pairs}
        )

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        terms = {}
        for pair in self.pairs:
            s, t = self.gather(batch, *pair)
            sa_t, sa_s = spatial_attention(t, self.temperature), spatial_attention(s, self.temperature)
            ca_t, ca_s = channel_attention(t, self.temperature), channel_attention(s, self.temperature)
            fg = focal_mask(sa_t)
            bg = 1.0 - fg
            fg = fg / fg.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
            bg = bg / bg.sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
            weighted = (t - s) ** 2 * sa_t[:, None] * ca_t[..., None, None]
            region = self.alpha * fg + self.beta * bg
            focal = (weighted * region[:, None]).sum(dim=(1, 2, 3)).mean() / s.shape[1]
            attention = (sa_t - sa_s).abs().mean() + (ca_t - ca_s).abs().mean()
            relation = self.relations[self.adapter_key(*pair)]
            global_ = ((relation(t) - relation(s)) ** 2).mean()
            terms[self.key("focal", pair)] = self.weight * focal
            terms[self.key("attention", pair)] = self.weight * self.gamma * attention
            terms[self.key("global", pair)] = self.weight * self.lam * global_
        return terms
