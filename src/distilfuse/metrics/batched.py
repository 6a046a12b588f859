"""Batched torch evaluation of (B, 1, H, W) tensors on their own device (CPU or GPU).

Training validation uses this path. It follows the same specification as the NumPy path in
float64; metrics without a torch implementation here (FMI, MS-SSIM, N^{AB/F}, VIFF) are
computed image by image with the NumPy path and returned as tensors on the input's device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as nnf

from distilfuse.io.colour import round_half_away
from distilfuse.metrics._options import MetricOptions, resolve_options
from distilfuse.metrics._prep import to_grey
from distilfuse.metrics.core import compute, resolve_metric_names
from distilfuse.metrics.vif import EPS as VIF_EPS
from distilfuse.metrics.vif import SCALE_KERNELS
from distilfuse.ops.structural import (
    GMSD_T,
    correlate3x3,
    filter_valid,
    gaussian_window,
    gradient_magnitude_similarity,
    mean2x2,
    prewitt_magnitude,
    ssim_constants,
    ssim_maps,
)

LEVELS = 256


def _box_sum_valid(x: torch.Tensor, size: int) -> torch.Tensor:
    """Window sums by cumulative sums (exact for integer-valued float64 data)."""
    c = nnf.pad(x, (1, 0)).cumsum(-1)
    c = c[..., size:] - c[..., :-size]
    r = nnf.pad(c, (0, 0, 1, 0)).cumsum(-2)
    return r[..., size:, :] - r[..., :-size, :]


def _levels(x: torch.Tensor, opts: MetricOptions) -> torch.Tensor:
    rounded = torch.round(x) if opts.level_rounding == "even" else round_half_away(x)
    return rounded.clamp(0, LEVELS - 1).long().flatten(1)


def _histograms(levels: torch.Tensor, bins: int) -> torch.Tensor:
    offsets = torch.arange(levels.shape[0], device=levels.device)[:, None] * bins
    return torch.bincount((levels + offsets).flatten(), minlength=levels.shape[0] * bins).view(-1, bins)


def _entropy_bits(counts: torch.Tensor) -> torch.Tensor:
    counts = counts.to(torch.float64)
    p = counts / counts.sum(-1, keepdim=True)
    return -torch.where(p > 0, p * torch.log2(p), torch.zeros_like(p)).sum(-1)


def _correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dx = x - x.mean((-2, -1), keepdim=True)
    dy = y - y.mean((-2, -1), keepdim=True)
    return (dx * dy).sum((-2, -1)) / torch.sqrt((dx * dx).sum((-2, -1)) * (dy * dy).sum((-2, -1)))


class _Batch:
    """(B, H, W) float64 images on 0..255 plus a cache shared by the metrics of one call."""

    def __init__(self, f: torch.Tensor, a: torch.Tensor, b: torch.Tensor, opts: MetricOptions) -> None:
        self.F, self.A, self.B, self.opts = f, a, b, opts
        self._cache: dict[str, Any] = {}

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def _en(t: _Batch) -> torch.Tensor:
    return _entropy_bits(_histograms(_levels(t.F, t.opts), LEVELS))


def _mi(t: _Batch) -> torch.Tensor:
    fused = _levels(t.F, t.opts)
    total = torch.zeros(t.F.shape[0], dtype=torch.float64, device=t.F.device)
    for source in (t.A, t.B):
        other = _levels(source, t.opts)
        h_f, h_x = _entropy_bits(_histograms(fused, LEVELS)), _entropy_bits(_histograms(other, LEVELS))
        if t.opts.mi_joint_saturation:
            jf, jx = fused.clamp(max=LEVELS - 2), other.clamp(max=LEVELS - 2)
        else:
            jf, jx = fused, other
        h_joint = _entropy_bits(_histograms(jf * LEVELS + jx, LEVELS * LEVELS))
        mi_bits = h_f + h_x - h_joint
        total = total + (mi_bits if t.opts.mi_base == 2 else mi_bits * np.log(2.0))
    return total


def _sd(t: _Batch) -> torch.Tensor:
    return t.F.flatten(1).std(dim=1, unbiased=False)


def _sf(t: _Batch) -> torch.Tensor:
    rows = (t.F[..., :, 1:] - t.F[..., :, :-1]).pow(2).mean((-2, -1))
    cols = (t.F[..., 1:, :] - t.F[..., :-1, :]).pow(2).mean((-2, -1))
    return torch.sqrt(rows + cols)


def _ag(t: _Batch) -> torch.Tensor:
    grad_rows, grad_cols = torch.gradient(t.F, dim=(-2, -1))
    total = torch.sqrt((grad_cols**2 + grad_rows**2) / 2).sum((-2, -1))
    h, w = t.F.shape[-2:]
    return total / (h * w if t.opts.ag_norm == "mn" else (h - 1) * (w - 1))


def _cc(t: _Batch) -> torch.Tensor:
    return 0.5 * (_correlation(t.A, t.F) + _correlation(t.B, t.F))


def _scd(t: _Batch) -> torch.Tensor:
    return _correlation(t.F - t.B, t.A) + _correlation(t.F - t.A, t.B)


def _mse_255(t: _Batch) -> torch.Tensor:
    return t.cached("mse", lambda: 0.5 * ((t.A - t.F).pow(2).mean((-2, -1)) + (t.B - t.F).pow(2).mean((-2, -1))))


def _mse(t: _Batch) -> torch.Tensor:
    return _mse_255(t) if t.opts.mse_scale == 255 else _mse_255(t) / 255.0**2


def _psnr(t: _Batch) -> torch.Tensor:
    mse = _mse_255(t)
    if t.opts.psnr_mode == "max_f":
        peak = t.F.amax((-2, -1))
    else:
        peak = torch.full_like(mse, 255.0)
    if t.opts.psnr_mode == "tang":
        mse = mse / 255.0**2
    return 10 * torch.log10(peak**2 / mse)


def _vif(t: _Batch) -> torch.Tensor:
    stack = torch.stack([t.A, t.B, t.F])  # (3, B, H, W)
    num = torch.zeros(2, t.F.shape[0], dtype=torch.float64, device=t.F.device)
    den = torch.zeros_like(num)
    for scale, kernel in enumerate(SCALE_KERNELS):
        if scale:
            stack = filter_valid(stack, kernel, step=2)
        means = filter_valid(stack, kernel)
        var = (filter_valid(stack * stack, kernel) - means * means).clamp(min=0)
        cov = filter_valid(stack[:2] * stack[2], kernel) - means[:2] * means[2]
        var_src, var_f = var[:2], var[2].expand_as(var[:2])
        gain = cov / (var_src + VIF_EPS)
        noise_var = var_f - gain * cov
        flat_src = var_src < VIF_EPS
        gain = torch.where(flat_src, 0.0, gain)
        noise_var = torch.where(flat_src, var_f, noise_var)
        var_src = torch.where(flat_src, 0.0, var_src)
        flat_f = var_f < VIF_EPS
        gain = torch.where(flat_f, 0.0, gain)
        noise_var = torch.where(flat_f, 0.0, noise_var)
        negative = gain < 0
        noise_var = torch.where(negative, var_f, noise_var)
        gain = torch.where(negative, 0.0, gain)
        noise_var = noise_var.clamp(min=VIF_EPS)
        num += torch.log10(1 + gain**2 * var_src / (noise_var + 2.0)).sum((-2, -1))
        den += torch.log10(1 + var_src / 2.0).sum((-2, -1))
    per_source = num / den
    per_source = torch.where(torch.isnan(per_source), t.opts.vif_nan, per_source)
    return per_source.sum(0)


def _sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    padded = nnf.pad(x, (1, 1, 1, 1))
    sx = correlate3x3(padded, (1, 2, 1), (-1, 0, 1))
    sy = correlate3x3(padded, (1, 0, -1), (1, 2, 1))
    angle = torch.where(sx == 0, torch.full_like(sx, np.pi / 2), torch.atan(sy / sx))
    return torch.sqrt(sx * sx + sy * sy), angle


def _qabf(t: _Batch) -> torch.Tensor:
    g_f, a_f = _sobel(t.F)
    num = torch.zeros(t.F.shape[0], dtype=torch.float64, device=t.F.device)
    den = torch.zeros_like(num)
    for source in (t.A, t.B):
        g_x, a_x = _sobel(source)
        relative = torch.where(g_x > g_f, g_f / g_x, torch.where(g_x == g_f, g_f, g_x / g_f))
        orientation = 1 - (a_x - a_f).abs() / (np.pi / 2)
        q = 0.9994 / (1 + torch.exp(-15 * (relative - 0.5))) * 0.9879 / (1 + torch.exp(-22 * (orientation - 0.8)))
        num += (q * g_x).sum((-2, -1))
        den += g_x.sum((-2, -1))
    return num / den


def _ssim(t: _Batch) -> torch.Tensor:
    stack = torch.stack([t.A, t.B, t.F])
    if t.opts.ssim_mode == "cdd":
        window = 7

        def smooth(x: torch.Tensor) -> torch.Tensor:
            return _box_sum_valid(x, window) / window**2

        correction = window**2 / (window**2 - 1)
        c1, c2 = ssim_constants(t.opts.ssim_data_range)
    else:
        kernel = gaussian_window(11, 1.5)

        def smooth(x: torch.Tensor) -> torch.Tensor:
            padded = nnf.pad(x.flatten(0, 1).unsqueeze(1), (5, 5, 5, 5), mode="replicate")
            return filter_valid(padded, kernel).squeeze(1).unflatten(0, x.shape[:2])

        correction = 1.0
        c1, c2 = ssim_constants(1.0)  # MATLAB's default dynamic range L = 1
    means, squares, cross = smooth(stack), smooth(stack * stack), smooth(stack[:2] * stack[2])
    maps, _ = ssim_maps(means[:2], means[2], squares[:2], squares[2], cross, c1, c2, correction)
    per_source = maps.mean((-2, -1))
    return per_source.sum(0) if t.opts.ssim_mode == "cdd" else per_source.mean(0)


def _gmsd(t: _Batch) -> torch.Tensor:
    def magnitude(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return prewitt_magnitude(nnf.pad(mean2x2(nnf.pad(x, (0, w % 2, 0, h % 2))), (1, 1, 1, 1)))

    m_f = magnitude(t.F)
    total = torch.zeros(t.F.shape[0], dtype=torch.float64, device=t.F.device)
    for source in (t.A, t.B):
        similarity = gradient_magnitude_similarity(magnitude(source), m_f, GMSD_T)
        total += similarity.flatten(1).std(dim=1, unbiased=True)
    return total / 2


BATCHED_METRICS: dict[str, Callable[[_Batch], torch.Tensor]] = {
    "EN": _en,
    "SD": _sd,
    "SF": _sf,
    "AG": _ag,
    "MI": _mi,
    "SCD": _scd,
    "VIF": _vif,
    "Qabf": _qabf,
    "SSIM": _ssim,
    "CC": _cc,
    "PSNR": _psnr,
    "MSE": _mse,
    "GMSD": _gmsd,
}


def _prepare(x: torch.Tensor, name: str, opts: MetricOptions, data_range: float, quantize: bool) -> torch.Tensor:
    """(B, 1, H, W), (B, 3, H, W) or (B, H, W) -> (B, H, W) float64 grey on 0..255."""
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected a (B, 1, H, W) or (B, 3, H, W) tensor, got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float64) * (255.0 / data_range)
    x = to_grey(x, opts.gray_conversion, channel_axis=1) if x.shape[1] == 3 else x[:, 0]
    if quantize:
        x = torch.round(x).clamp(0, 255)
    return x


def compute_batch(
    fused: torch.Tensor,
    ir: torch.Tensor,
    vis: torch.Tensor,
    metrics: str | Iterable[str] | None = None,
    profile: str = "cdd",
    data_range: float = 1.0,
    *,
    quantize: bool = False,
    **options: Any,
) -> dict[str, torch.Tensor]:
    """Metrics of a batch of triplets: {name: float64 tensor of shape (B,)} on the input's device.

    Takes the same metric names, profile and option overrides as `compute`; `data_range` defaults
    to 1.0 because network outputs are in [0, 1].
    """
    names = resolve_metric_names(metrics)
    opts = resolve_options(profile, options)
    if not fused.shape[0] == ir.shape[0] == vis.shape[0]:
        raise ValueError(f"batch sizes differ: fused {fused.shape[0]}, ir {ir.shape[0]}, vis {vis.shape[0]}")
    images = [_prepare(x, n, opts, data_range, quantize) for x, n in ((fused, "fused"), (ir, "ir"), (vis, "vis"))]
    if not images[0].shape == images[1].shape == images[2].shape:
        raise ValueError(f"image sizes differ: {[tuple(x.shape[-2:]) for x in images]}")
    batch = _Batch(*images, opts)
    results = {name: BATCHED_METRICS[name](batch) for name in names if name in BATCHED_METRICS}
    fallback = [name for name in names if name not in BATCHED_METRICS]
    if fallback:
        per_image = [
            compute(*(x[i].cpu().numpy() for x in images), metrics=fallback, profile=profile, **options)
            for i in range(images[0].shape[0])
        ]
        for name in fallback:
            values = [row[name] for row in per_image]
            results[name] = torch.tensor(values, dtype=torch.float64, device=fused.device)
    return {name: results[name] for name in names}
