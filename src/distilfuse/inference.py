"""Running a fusion model on whole images: device, tiling with overlap, colour and output range."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from distilfuse.io import (
    DEFAULT_MAX_PIXELS,
    from_unit,
    is_gray,
    luma,
    read_image,
    rgb_to_ycbcr,
    to_unit,
    write_image,
    ycbcr_to_rgb,
)
from distilfuse.ops.stretch import min_max_stretch

Range = Literal["clip", "stretch"]
ColourSource = Literal["vis", "ir"]
Tile = int | Literal["auto"] | None

# The largest minimum side among the registered models (EMMA: 16; mmdr-teacher: 3; most others: 2).
# Smaller inputs are extended by edge replication and the output cropped, so any size >= 1x1 fuses.
MIN_SIDE = 16
# tile="auto": images over AUTO_TILE_PIXELS are fused in AUTO_TILE x AUTO_TILE tiles, which bounds the
# memory of the forward pass (see the README for measured peaks).
AUTO_TILE_PIXELS = 4096 * 4096
AUTO_TILE = 1024


def auto_tile(height: int, width: int) -> int | None:
    """The tile size `tile="auto"` uses for an image of this size (None: whole image)."""
    return AUTO_TILE if height * width > AUTO_TILE_PIXELS else None


def _forward(model: nn.Module, ir: Tensor, vis: Tensor) -> Tensor:
    """Raw output for inputs of any size >= 1x1: sides under MIN_SIDE are edge-replicated, then cropped."""
    h, w = ir.shape[-2:]
    pad = (0, max(0, MIN_SIDE - w), 0, max(0, MIN_SIDE - h))
    if not any(pad):
        return model(ir, vis, raw=True)
    scale = getattr(model, "scale", 1)
    out = model(F.pad(ir, pad, mode="replicate"), F.pad(vis, pad, mode="replicate"), raw=True)
    return out[..., : h * scale, : w * scale]


def _window(start: int, stop: int, size: int, overlap: int, align: int) -> tuple[int, int]:
    """The input span fused for output span [start, stop): `overlap` of context on each side, at least
    MIN_SIDE long where the image allows (more context rather than padding), starting on a multiple of
    `align` so strided layers see the whole image's sampling grid."""
    lo, hi = max(0, start - overlap), min(size, stop + overlap)
    if hi - lo < MIN_SIDE:
        lo = max(0, hi - MIN_SIDE)
        hi = min(size, lo + MIN_SIDE)
    return lo // align * align, hi


def fuse_tensors(
    model: nn.Module, ir: Tensor, vis: Tensor, tile: Tile = None, overlap: int = 32, progress: bool = False
) -> Tensor:
    """Fuse (B,1,H,W) tensors in [0,1] of any size; with `tile`, process tiles of that size plus
    `overlap` pixels of context on each side, so memory is bounded and seams vanish once `overlap`
    covers the model's receptive field (`"auto"`: see `auto_tile`). `progress` shows a bar over the
    tiles. Returns the raw (unclamped) output.
    """
    with torch.inference_mode():
        h, w = ir.shape[-2:]
        if tile == "auto":
            tile = auto_tile(h, w)
        if tile is None or (h <= tile and w <= tile):
            return _forward(model, ir, vis)
        if tile < 8:
            raise ValueError(f"tile size {tile} is too small (use 8 or more)")
        scale = getattr(model, "scale", 1)
        # Window starts aligned to the model's stride so strided layers see the same sampling grid.
        align = getattr(model, "size_multiple", 1)
        out = ir.new_empty(ir.shape[0], 1, h * scale, w * scale)
        starts = [(y0, x0) for y0 in range(0, h, tile) for x0 in range(0, w, tile)]
        bar = tqdm(starts, desc="tiles", unit="tile", disable=not progress, leave=False, dynamic_ncols=True)
        for y0, x0 in bar:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            wy0, wy1 = _window(y0, y1, h, overlap, align)
            wx0, wx1 = _window(x0, x1, w, overlap, align)
            part = _forward(model, ir[..., wy0:wy1, wx0:wx1], vis[..., wy0:wy1, wx0:wx1])
            out[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] = part[
                ..., (y0 - wy0) * scale : (y1 - wy0) * scale, (x0 - wx0) * scale : (x1 - wx0) * scale
            ]
        return out


@dataclass
class FusionResult:
    image: np.ndarray  # float32 in [0,1]: (H,W) gray or (H,W,3) RGB
    raw: np.ndarray  # the model's raw output for the luma, (H,W)


def _gray(arr: np.ndarray, scaling: str) -> np.ndarray:
    unit = to_unit(arr, scaling)  # type: ignore[arg-type]
    return unit if unit.ndim == 2 else luma(unit)


def fuse_images(
    model: nn.Module,
    ir: np.ndarray,
    vis: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    tile: Tile = None,
    output_range: Range = "clip",
    ir_scaling: str = "dtype",
    colour_from: ColourSource = "vis",
    progress: bool = False,
) -> FusionResult:
    """Fuse decoded images (as from `read_image`). The colour input (`colour_from`: the visible
    image, or the infrared slot, e.g. for a PET/SPECT image fused with an MRI) is fused on its BT.601
    luma and the result gets its Cb/Cr back; a gray one gives a gray result, and a colour image in the
    other slot is fused on its luma. Both inputs must have
    the same height and width (checked by the caller, which knows the file names). `tile`, `progress`:
    see `fuse_tensors`.
    """
    if colour_from not in ("vis", "ir"):
        raise ValueError(f"colour_from must be 'vis' or 'ir', not {colour_from!r}")
    colour_image, scaling = (vis, "dtype") if colour_from == "vis" else (ir, ir_scaling)
    ycbcr = None if is_gray(colour_image) else rgb_to_ycbcr(to_unit(colour_image, scaling))  # type: ignore[arg-type]
    ir_y = ycbcr[..., 0] if ycbcr is not None and colour_from == "ir" else _gray(ir, ir_scaling)
    if ycbcr is not None and colour_from == "vis":
        vis_y = ycbcr[..., 0]
    else:
        vis_unit = to_unit(vis)
        vis_y = vis_unit if vis_unit.ndim == 2 else vis_unit[..., 0] if is_gray(vis) else luma(vis_unit)
        del vis_unit  # large images: keep only what is still needed

    def as_tensor(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None].to(device)

    raw = fuse_tensors(model, as_tensor(ir_y), as_tensor(vis_y), tile=tile, progress=progress)[0, 0]
    del ir_y, vis_y
    raw_np = raw.float().cpu().numpy()
    if output_range == "stretch":
        fused_y = min_max_stretch(raw_np)
    else:
        fused_y = model.to_unit_range(raw.float()).cpu().numpy()
    if ycbcr is None:
        return FusionResult(fused_y.astype(np.float32), raw_np)
    if fused_y.shape != ycbcr.shape[:2]:  # super-resolving models: upsample the chroma to match
        t = torch.from_numpy(np.ascontiguousarray(ycbcr[..., 1:].transpose(2, 0, 1)))[None]
        chroma = F.interpolate(t, size=fused_y.shape, mode="bicubic", align_corners=False)[0]
        chroma = chroma.clamp(0, 1).permute(1, 2, 0).numpy()
        ycbcr = np.concatenate([fused_y[..., None], chroma], axis=-1)
    else:
        ycbcr[..., 0] = fused_y  # in place: the input's luma is no longer needed
    return FusionResult(ycbcr_to_rgb(ycbcr), raw_np)


class PairError(ValueError):
    """One pair cannot be fused; the message names its files and the problem."""


def fuse_file(
    model: nn.Module,
    ir_path: Path,
    vis_path: Path,
    out_path: Path,
    *,
    device: str | torch.device = "cpu",
    tile: Tile = "auto",
    output_range: Range = "clip",
    ir_scaling: str = "dtype",
    colour_from: ColourSource = "vis",
    bits: int = 8,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: bool = False,
) -> None:
    """Fuse one pair of files into ``out_path`` (what `distilfuse fuse` does per pair); every failure is an
    ImageReadError, ImageWriteError or PairError naming the file."""
    ir, vis = (read_image(p, max_pixels=max_pixels) for p in (ir_path, vis_path))
    if ir.shape[:2] != vis.shape[:2]:
        raise PairError(
            f"{ir_path} ({ir.shape[1]}x{ir.shape[0]}) and {vis_path} ({vis.shape[1]}x{vis.shape[0]}): sizes differ"
        )
    colour_path, colour_image = (ir_path, ir) if colour_from == "ir" else (vis_path, vis)
    if bits == 16 and not is_gray(colour_image):
        raise PairError(f"{colour_path}: 16-bit output is gray only; this image (the colour source) is in colour")
    result = fuse_images(
        model,
        ir,
        vis,
        device=device,
        tile=tile,
        output_range=output_range,
        ir_scaling=ir_scaling,
        colour_from=colour_from,
        progress=progress,
    )
    if not np.isfinite(result.raw).all():
        raise PairError(f"{ir_path} + {vis_path}: the model output holds NaN or infinity; nothing written")
    write_image(out_path, from_unit(result.image, bits), protect=(ir_path, vis_path))
