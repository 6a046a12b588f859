"""Differentiable, batched image operators shared by the task losses, distillers and refresh memory.

All functions take (B,C,H,W) tensors and keep the autograd graph; the per-sample scores
(``ssim``, ``gmsd``) return a (B,) tensor so callers can weight samples individually. Their window and
statistics code is `distilfuse.ops.structural`, which the metrics use too.
"""

from __future__ import annotations

from typing import Literal

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from distilfuse.ops import structural

GradientOperator = Literal["sobel", "sobel_magnitude", "laplacian", "laplacian8"]

# GMSD's stability constant T = 170 on the 0..255 scale (Xue et al., 2014), rescaled to [0,1] images.
GMSD_C = structural.GMSD_T / 255.0**2


def check_image(x: Tensor, name: str = "input") -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"{name} must be a (B,C,H,W) tensor, got {getattr(x, 'shape', type(x))}")


def check_same_shape(a: Tensor, b: Tensor, names: str = "inputs") -> None:
    check_image(a)
    check_image(b)
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def sobel_magnitude(x: Tensor, normalized: bool = True, eps: float = 1e-6) -> Tensor:
    """|Sobel| per channel via ``kornia.filters.sobel``: sqrt(gx^2 + gy^2 + eps), replicate border.

    kornia's convention: ``normalized=True`` divides the 3x3 kernels by their L1 norm (8), so a ramp of
    slope s reads ~|s|; ``normalized=False`` gives the OpenCV/SeAFusion scale, ~8|s|. A flat region
    reads sqrt(eps) (1e-3 by default), not 0.
    """
    check_image(x)
    return kornia.filters.sobel(x, normalized=normalized, eps=eps)


def sobel_xy(x: Tensor, normalized: bool = True) -> Tensor:
    """Sobel derivatives (B,C,2,H,W) = (d/dx, d/dy), same kernels and border as ``sobel_magnitude``."""
    check_image(x)
    return kornia.filters.spatial_gradient(x, mode="sobel", order=1, normalized=normalized)


def laplacian4(x: Tensor) -> Tensor:
    """4-neighbour Laplacian [[0,1,0],[1,-4,1],[0,1,0]] per channel (FusionGAN's), replicate border."""
    check_image(x)
    kernel = x.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    channels = x.shape[1]
    weight = kernel.expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, groups=channels)


def laplacian8(x: Tensor) -> Tensor:
    """8-neighbour Laplacian / 8, [[1,1,1],[1,-8,1],[1,1,1]] / 8 per channel, zero border (MMDRFuse's code).

    Signed: losses compare two of these maps, so the kernel's overall sign does not matter.
    """
    check_image(x)
    kernel = x.new_full((3, 3), 1.0 / 8)
    kernel[1, 1] = -1.0
    channels = x.shape[1]
    return F.conv2d(x, kernel.expand(channels, 1, 3, 3), padding=1, groups=channels)


def image_gradient(x: Tensor, operator: GradientOperator = "sobel_magnitude", normalized: bool = True) -> Tensor:
    """The gradient field a loss compares: Sobel (gx, gy) stacked on channels, |Sobel|, or a Laplacian
    (4-neighbour with replicate border, or MMDRFuse's 8-neighbour / 8 with zero border)."""
    if operator == "sobel":
        return sobel_xy(x, normalized).flatten(1, 2)
    if operator == "sobel_magnitude":
        return sobel_magnitude(x, normalized)
    if operator == "laplacian":
        return laplacian4(x)
    if operator == "laplacian8":
        return laplacian8(x)
    raise ValueError(
        f"unknown gradient operator {operator!r}; use 'sobel', 'sobel_magnitude', 'laplacian' or 'laplacian8'"
    )


def per_sample_mean(x: Tensor) -> Tensor:
    return x.flatten(1).mean(dim=1)


def gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    """Normalised 1-D Gaussian of odd length ``size`` with the dtype/device of ``like``."""
    return torch.as_tensor(structural.gaussian_window(size, sigma), dtype=like.dtype, device=like.device)


def ssim_map(
    x: Tensor,
    y: Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    padding: Literal["valid", "reflect"] = "valid",
) -> Tensor:
    """Local SSIM (Wang et al., 2004), Gaussian window, K1=0.01, K2=0.03 -> (B,C,H',W').

    ``padding='valid'`` evaluates only windows inside the image, as the reference code does (H' = H -
    window_size + 1); 'reflect' pads by half a window so the map covers every pixel (H' = H).
    """
    check_same_shape(x, y, "ssim inputs")
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd, got {window_size}")
    if padding == "reflect":
        half = window_size // 2
        x = F.pad(x, (half, half, half, half), mode="reflect")
        y = F.pad(y, (half, half, half, half), mode="reflect")
    elif padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'reflect', got {padding!r}")
    if min(x.shape[-2:]) < window_size:
        raise ValueError(f"ssim needs H and W >= window_size={window_size}, got {tuple(x.shape[-2:])}")
    window = structural.gaussian_window(window_size, sigma)
    # One filtering pass over the five moment images (x, y, x^2, y^2, xy).
    moments = structural.filter_valid(torch.stack([x, y, x * x, y * y, x * y]), window)
    return structural.ssim_maps(*moments, *structural.ssim_constants(data_range))[0]


def ssim(
    x: Tensor,
    y: Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    padding: Literal["valid", "reflect"] = "valid",
) -> Tensor:
    """Per-sample mean of ``ssim_map`` -> (B,)."""
    return per_sample_mean(ssim_map(x, y, window_size, sigma, data_range, padding))


def gmsd(x: Tensor, y: Tensor, c: float = GMSD_C, downsample: bool = True, eps: float = 1e-12) -> Tensor:
    """Per-sample Gradient Magnitude Similarity Deviation (Xue et al., 2014) -> (B,); lower is better.

    As the reference MATLAB code: 2x2 average + stride-2 downsampling (zero-padded on odd sizes),
    Prewitt/3 derivatives with zero padding, GMS = (2 m_x m_y + c)/(m_x^2 + m_y^2 + c), and the
    sample standard deviation of the GMS map. ``eps`` inside the square root keeps it differentiable.
    """
    check_same_shape(x, y, "gmsd inputs")
    if downsample:
        pad_h, pad_w = x.shape[-2] % 2, x.shape[-1] % 2
        x = structural.mean2x2(F.pad(x, (0, pad_w, 0, pad_h)))
        y = structural.mean2x2(F.pad(y, (0, pad_w, 0, pad_h)))
    mx, my = (structural.prewitt_magnitude(F.pad(img, (1, 1, 1, 1)), eps) for img in (x, y))
    return structural.gradient_magnitude_similarity(mx, my, c).flatten(1).std(dim=1)


def channel_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """L2-normalise every pixel's channel vector of (B,C,H,W)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(eps)


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B,C,H,W) to ``size`` (a no-op when it already has it)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


__all__ = [
    "GMSD_C",
    "channel_normalize",
    "check_image",
    "check_same_shape",
    "gaussian_window",
    "gmsd",
    "image_gradient",
    "laplacian4",
    "laplacian8",
    "per_sample_mean",
    "resize_to",
    "sobel_magnitude",
    "sobel_xy",
    "ssim",
]
