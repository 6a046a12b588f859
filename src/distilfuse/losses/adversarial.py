"""LSGAN losses with SCAKD's random soft labels (SCAKD eqs. 6-8).

SCAKD draws the labels a1, a2 (generator), c_ir, c_vis (real) uniformly in [0.7, 1.2] and c (fake) in
[0, 0.3]. As in FusionGAN's code, one label is drawn per sample (broadcast over a patch
discriminator's score map) and redrawn at every call. With ``soft_labels=False`` the labels are 1 and 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

REAL_RANGE = (0.7, 1.2)
FAKE_RANGE = (0.0, 0.3)


def soft_labels_like(score: Tensor, low: float, high: float, generator: torch.Generator | None = None) -> Tensor:
    """Labels ~ U[low, high], one per sample, shaped to broadcast against ``score``."""
    if score.dim() == 0:
        raise ValueError("discriminator scores need a batch dimension")
    shape = (score.shape[0],) + (1,) * (score.dim() - 1)
    u = torch.rand(shape, generator=generator, dtype=score.dtype, device="cpu").to(score.device)
    return low + (high - low) * u


def _label(score: Tensor, real: bool, soft: bool, generator: torch.Generator | None) -> Tensor:
    if soft:
        return soft_labels_like(score, *(REAL_RANGE if real else FAKE_RANGE), generator=generator)
    return torch.full_like(score, 1.0 if real else 0.0)


def lsgan_d_loss(
    real_score: Tensor,
    fake_score: Tensor,
    soft_labels: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Discriminator loss mean((D(real) - c_real)^2) + mean((D(fake) - c)^2) (SCAKD eqs. 7-8)."""
    real = _label(real_score, True, soft_labels, generator)
    fake = _label(fake_score, False, soft_labels, generator)
    return ((real_score - real) ** 2).mean() + ((fake_score - fake) ** 2).mean()


def lsgan_g_loss(fake_score: Tensor, soft_labels: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Generator loss mean((D(fused) - a)^2), a ~ U[0.7, 1.2] (one term of SCAKD eq. 6)."""
    target = _label(fake_score, True, soft_labels, generator)
    return ((fake_score - target) ** 2).mean()


__all__ = ["FAKE_RANGE", "REAL_RANGE", "lsgan_d_loss", "lsgan_g_loss", "soft_labels_like"]
