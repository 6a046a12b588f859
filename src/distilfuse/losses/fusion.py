"""Task losses of the implemented papers (SCAKD, MMDRFuse, MLKD, HKDnet), on (B,1,H,W) images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from distilfuse.losses.base import TaskLoss, register_loss
from distilfuse.losses.functional import GradientOperator, image_gradient, sobel_magnitude, ssim
from distilfuse.losses.perceptual import build_feature_extractor, feature_distance

Target = Literal["ir", "vis", "max"]


def select_targets(targets: Sequence[str], ir: Tensor, vis: Tensor) -> list[Tensor]:
    """The reference images named by ``targets``: 'ir', 'vis' or 'max' (pixel-wise max of both)."""
    images = {"ir": lambda: ir, "vis": lambda: vis, "max": lambda: torch.maximum(ir, vis)}
    return [images[t]() for t in targets]


def check_targets(targets: Sequence[str]) -> tuple[str, ...]:
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    bad = [t for t in targets if t not in ("ir", "vis", "max")]
    if not targets or bad:
        raise ValueError(f"targets must be a non-empty list of 'ir', 'vis', 'max'; got {list(targets)}")
    return targets


@register_loss("scakd_content")
class SCAKDContentLoss(TaskLoss):
    """SCAKD eq. 5: (1/HW)(||F-I_ir||^2 + ||F-I_vis||^2 + xi (||dF-dI_ir||^2 + ||dF-dI_vis||^2)).

    SCAKD names neither xi nor the gradient operator d; the defaults follow FusionGAN, whose content loss
    eq. 5 extends to both sources: xi = 5 and the 4-neighbour Laplacian. Squared norms are summed over
    the gradient components and divided by H*W; the batch is averaged.
    """

    def __init__(self, weight: float = 1.0, xi: float = 5.0, gradient: GradientOperator = "laplacian") -> None:
        super().__init__(weight)
        self.xi = float(xi)
        self.gradient = gradient
        image_gradient(torch.zeros(1, 1, 3, 3), gradient)  # reject an unknown operator at build time

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        hw = fused.shape[-2] * fused.shape[-1]
        batch = fused.shape[0]

        def sq(x: Tensor) -> Tensor:
            return (x**2).sum() / (hw * batch)

        g_f, g_ir, g_vis = (image_gradient(x, self.gradient) for x in (fused, ir, vis))
        return sq(fused - ir) + sq(fused - vis) + self.xi * (sq(g_f - g_ir) + sq(g_f - g_vis))


@register_loss("max_intensity")
class MaxIntensityLoss(TaskLoss):
    """L1 to the pixel-wise max of the sources (MMDRFuse eq. 2, MLKD eq. 17): mean |F - max(I_ir, I_vis)|."""

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        return F.l1_loss(fused, torch.maximum(ir, vis))


def correlation(x: Tensor, y: Tensor, eps: float = 1e-12) -> Tensor:
    """Pearson correlation of two (B,C,H,W) tensors per sample -> (B,); 0 where one is constant.

    ``eps`` sits inside the square root: outside it, a constant input (a flat sky patch) gives sqrt(0),
    whose gradient is infinite, and NaN weights."""
    x = x.flatten(1) - x.flatten(1).mean(dim=1, keepdim=True)
    y = y.flatten(1) - y.flatten(1).mean(dim=1, keepdim=True)
    return (x * y).sum(dim=1) / (x.square().sum(dim=1) * y.square().sum(dim=1) + eps).sqrt()


@register_loss("scd")
class SCDLoss(TaskLoss):
    """2 - SCD, SCD = corr(F - I_vis, I_ir) + corr(F - I_ir, I_vis) (Aslantas & Bendes 2015), per sample and
    averaged: what each source adds to the fusion beyond the other should look like that source. distilfuse's
    own term (SCD is a metric of the cdd profile); it pulls away from the pixel max, which keeps only one source
    per pixel."""

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        return (2.0 - correlation(fused - vis, ir) - correlation(fused - ir, vis)).mean()


@register_loss("max_gradient")
class MaxGradientLoss(TaskLoss):
    """MLKD eqs. 18-19 (SeAFusion's texture loss): mean | |Sobel F| - max(|Sobel I_ir|, |Sobel I_vis|) |.

    |Sobel| is ``kornia.filters.sobel``: with ``normalized=True`` (default) the kernels are divided by 8,
    so the loss is 1/8 of the OpenCV-scale value; pass ``normalized=False`` for that scale.
    """

    def __init__(self, weight: float = 1.0, normalized: bool = True) -> None:
        super().__init__(weight)
        self.normalized = normalized

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        g_f, g_ir, g_vis = (sobel_magnitude(x, self.normalized) for x in (fused, ir, vis))
        return F.l1_loss(g_f, torch.maximum(g_ir, g_vis))


@register_loss("mmdr_gradient")
class MMDRGradientLoss(TaskLoss):
    """MMDRFuse eq. 3: (1/HW)||grad F - grad max(I_ir, I_vis)||_F^2, the gradient OF the max image, squared.

    The paper does not name the operator; |Sobel| (kornia, ``normalized`` as in ``max_gradient``) by default.
    """

    def __init__(
        self, weight: float = 1.0, gradient: GradientOperator = "sobel_magnitude", normalized: bool = True
    ) -> None:
        super().__init__(weight)
        self.gradient = gradient
        self.normalized = normalized
        image_gradient(torch.zeros(1, 1, 3, 3), gradient)

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        g_f = image_gradient(fused, self.gradient, self.normalized)
        g_max = image_gradient(torch.maximum(ir, vis), self.gradient, self.normalized)
        return F.mse_loss(g_f, g_max)


@register_loss("ssim")
class SSIMLoss(TaskLoss):
    """1 - SSIM(F, target), averaged over ``targets`` ('ir', 'vis', 'max') and the batch."""

    def __init__(
        self,
        weight: float = 1.0,
        targets: Sequence[Target] = ("ir", "vis"),
        window_size: int = 11,
        sigma: float = 1.5,
        padding: Literal["valid", "reflect"] = "valid",
    ) -> None:
        super().__init__(weight)
        self.targets = check_targets(targets)
        self.window_size, self.sigma, self.padding = window_size, sigma, padding

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        refs = select_targets(self.targets, ir, vis)
        scores = [ssim(fused, r, self.window_size, self.sigma, padding=self.padding).mean() for r in refs]
        return 1.0 - torch.stack(scores).mean()


@register_loss("hkd_teacher")
class HKDTeacherLoss(TaskLoss):
    """HKDnet eq. 17: L_pixel + mu * L_ssim + L_grad (+ L_percep), averaged over ``targets``.

    HKDnet trains its teacher as an auto-encoder (output O reconstructs input I); with fusion inputs each
    target in ``targets`` plays I. L_pixel and L_grad are mean squared errors (eqs. 18, 20, on |Sobel|),
    L_ssim = 1 - SSIM (eq. 19) and L_percep the MSE of VGG-16 features (eq. 21; ``layers`` defaults to
    relu2_2, Johnson et al.'s reconstruction layer, as HKDnet names none). Without ``perceptual_weights``
    the perceptual term uses the documented substitute (see ``perceptual``); ``perceptual=False`` drops it.
    """

    def __init__(
        self,
        weight: float = 1.0,
        mu: float = 1000.0,
        targets: Sequence[Target] = ("ir", "vis"),
        perceptual: bool = True,
        perceptual_weights: str | None = None,
        network: Literal["vgg16", "vgg19"] = "vgg16",
        layers: Sequence[str] = ("relu2_2",),
    ) -> None:
        super().__init__(weight)
        self.mu = float(mu)
        self.targets = check_targets(targets)
        self.features = build_feature_extractor(network, layers, perceptual_weights) if perceptual else None

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        g_f = sobel_magnitude(fused)
        feats_f = self.features(fused) if self.features is not None else None
        total = fused.new_zeros(())
        for ref in select_targets(self.targets, ir, vis):
            total = total + F.mse_loss(fused, ref) + self.mu * (1.0 - ssim(fused, ref).mean())
            total = total + F.mse_loss(g_f, sobel_magnitude(ref))
            if feats_f is not None:
                total = total + feature_distance(feats_f, self.features(ref)).mean()
        return total / len(self.targets)
