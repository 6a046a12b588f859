"""Fusion metrics over folders of fused images, and the method-comparison table.

Files are paired by stem across the source pairs and each fused folder (formats may differ). Every
missing, unreadable or mismatched file is passed to `report` as one line and skipped.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distilfuse.metrics._options import PROFILES
from distilfuse.metrics._prep import to_grey
from distilfuse.metrics.core import METRICS, compute
from distilfuse.ops.stretch import min_max_stretch

Pairs = Sequence[tuple[str, Path, Path]]  # (stem, infrared file, visible file), as from io.pair_by_stem


@dataclass
class FolderEvaluation:
    """Per-image rows (with "method" and "stem"), means and image counts per method label."""

    names: list[str]
    profile: str
    stretch: bool
    rows: list[dict] = field(default_factory=list)
    means: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    problems: int = 0


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def as_grey_255(image: np.ndarray, profile: str) -> np.ndarray:
    """A decoded image as float64 grey on 0..255 (16-bit files are rescaled)."""
    x = image.astype(np.float64)
    if image.dtype == np.uint16:
        x *= 255.0 / 65535.0
    return to_grey(x, PROFILES[profile].gray_conversion) if x.ndim == 3 else x


def stretch_to_8bit(fused: np.ndarray) -> np.ndarray:
    """Per-image min-max stretch to 0..255, rounded as saving to 8 bits does; a constant image gives zeros."""
    return np.rint(min_max_stretch(fused, 255.0))


def upscale_factor(fused_shape: tuple[int, ...], source_shape: tuple[int, ...]) -> int | None:
    """The integer factor s with fused H x W = s x the source's (s >= 1), or None when there is none."""
    (fh, fw), (sh, sw) = fused_shape[:2], source_shape[:2]
    if fh % sh or fw % sw or fh // sh != fw // sw:
        return None
    return fh // sh


def upscale_bicubic(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of a 0..255 grey float image to ``shape`` (torch, half-pixel centres), clipped to 0..255."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float64))[None, None]
    return F.interpolate(x, size=shape, mode="bicubic", align_corners=False)[0, 0].clamp(0, 255).numpy()


def evaluate_folder(
    fused_dir: Path,
    pairs: Pairs,
    names: list[str],
    *,
    label: str,
    profile: str = "cdd",
    stretch: bool = False,
    upscale_sources: bool = False,
    options: Mapping[str, Any] | None = None,
    report: Callable[[str], None] = _to_stderr,
) -> tuple[list[dict], int]:
    """Per-image metric rows of one fused folder and the number of problems reported.

    ``options`` override single metric options of the profile (see `MetricOptions`), e.g. ``ssim_mode``.

    ``upscale_sources``: fusion + super-resolution outputs (HKDnet) are s times their LR sources; the
    sources are then resized bicubically to the fused size before scoring (no HR sources exist for them).
    """
    from tqdm import tqdm

    from distilfuse.io import ImageReadError, list_images, read_image

    if not fused_dir.is_dir():
        report(f"{fused_dir}: no such folder")
        return [], 1
    fused_files = list_images(fused_dir)
    problems = 0
    for stem in sorted(set(fused_files) - {stem for stem, _, _ in pairs}):
        report(f"{fused_files[stem]}: no infrared/visible pair with stem '{stem}'; skipped")
        problems += 1
    rows = []
    for stem, ir_path, vis_path in tqdm(pairs, desc=label, unit="img", disable=None, file=sys.stderr):
        fused_path = fused_files.get(stem)
        if fused_path is None:
            report(f"{fused_dir}: no fused image with stem '{stem}' (sources {ir_path.name}, {vis_path.name})")
            problems += 1
            continue
        try:
            fused, ir, vis = (read_image(p) for p in (fused_path, ir_path, vis_path))
        except ImageReadError as exc:
            report(f"{exc}; skipped")
            problems += 1
            continue
        roles = (("fused", fused_path, fused), ("infrared", ir_path, ir), ("visible", vis_path, vis))
        factor = upscale_factor(fused.shape, ir.shape) if upscale_sources and ir.shape[:2] == vis.shape[:2] else 1
        if factor is None or (factor == 1 and len({img.shape[:2] for _, _, img in roles}) > 1):
            listed = ", ".join(f"{role} {p} {img.shape[0]}x{img.shape[1]}" for role, p, img in roles)
            scaled = "are not one integer scale apart" if upscale_sources else "differ"
            report(f"{fused_path}: image sizes {scaled} ({listed}, as HxW); skipped")
            problems += 1
            continue
        grey_fused, grey_ir, grey_vis = (as_grey_255(img, profile) for img in (fused, ir, vis))
        if factor > 1:
            grey_ir, grey_vis = (upscale_bicubic(x, grey_fused.shape) for x in (grey_ir, grey_vis))
        if stretch:
            grey_fused = stretch_to_8bit(grey_fused)
        try:
            values = compute(grey_fused, grey_ir, grey_vis, metrics=names, profile=profile, **(options or {}))
        except ValueError as exc:
            report(f"{fused_path}: {exc}; skipped")
            problems += 1
            continue
        rows.append({"method": label, "stem": stem, **values})
    return rows, problems


def method_labels(fused_dirs: Sequence[Path]) -> list[str]:
    """Each folder's name labels its method; a ValueError when two folders share a name."""
    labels = [d.name or str(d) for d in fused_dirs]
    if len(set(labels)) != len(labels):
        raise ValueError("folders must have distinct names (the name labels the method)")
    return labels


def evaluate_folders(
    fused_dirs: Sequence[Path],
    pairs: Pairs,
    names: list[str],
    *,
    labels: Sequence[str] | None = None,
    profile: str = "cdd",
    stretch: bool = False,
    upscale_sources: bool = False,
    options: Mapping[str, Any] | None = None,
    report: Callable[[str], None] = _to_stderr,
) -> FolderEvaluation:
    """Evaluate each fused folder against `pairs`; labels default to `method_labels(fused_dirs)`."""
    labels = list(labels) if labels is not None else method_labels(fused_dirs)
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be distinct: {labels}")
    result = FolderEvaluation(names=list(names), profile=profile, stretch=stretch)
    for fused_dir, label in zip(fused_dirs, labels, strict=True):
        rows, problems = evaluate_folder(
            fused_dir,
            pairs,
            names,
            label=label,
            profile=profile,
            stretch=stretch,
            upscale_sources=upscale_sources,
            options=options,
            report=report,
        )
        result.rows += rows
        result.problems += problems
        result.means[label] = {n: mean_over_images(rows, n) for n in names}
        result.counts[label] = len(rows)
    return result


def mean_over_images(rows: list[dict], name: str) -> float:
    """Arithmetic mean over images (NaN if any image gave NaN, as the per-image CSV shows)."""
    return float(np.mean([row[name] for row in rows])) if rows else float("nan")


def format_value(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def best_values(means: dict[str, dict[str, float]], names: list[str]) -> dict[str, float | None]:
    """The best finite mean per metric in its direction (None when no method has one)."""
    best: dict[str, float | None] = {}
    for n in names:
        finite = [m[n] for m in means.values() if not math.isnan(m[n])]
        best[n] = (max(finite) if METRICS[n].higher_is_better else min(finite)) if finite else None
    return best


def is_best(value: float, best: float | None) -> bool:
    """Best as displayed: every value equal to the best at the shown precision counts."""
    return best is not None and format_value(value) == format_value(best)


# The eight metrics the papers we implement and compare with all report (EN SD SF MI SCD VIF Qabf SSIM).
HEADLINE_METRICS = ["EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM"]


def metrics_won(means: dict[str, dict[str, float]], a: str, b: str, names: Sequence[str]) -> list[str]:
    """The metrics of `names` on which method `a`'s mean is strictly better than `b`'s, in each one's direction."""
    return [
        n for n in names if (means[a][n] > means[b][n] if METRICS[n].higher_is_better else means[a][n] < means[b][n])
    ]


def method_table(means: dict[str, dict[str, float]], counts: dict[str, int], names: list[str]) -> str:
    """Markdown: methods as rows (with their image count), metrics as columns, the best per column in bold."""
    header = "| Method | Images | " + " | ".join(f"{n} {METRICS[n].arrow}" for n in names) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(names)]
    best = best_values(means, names)
    for method, values in means.items():
        cells = [
            f"**{format_value(values[n])}**" if is_best(values[n], best[n]) else format_value(values[n]) for n in names
        ]
        lines.append(f"| {method} | {counts[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
