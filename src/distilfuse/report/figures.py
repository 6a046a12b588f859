"""Figures of the report and of training runs, drawn with matplotlib.

matplotlib is the ecosystem's plotting default: log axes, legends, text layout and SVG/PNG output come
ready-made, and figures look like the ones in the papers we compare against. Figures are built with the
object-oriented API (`matplotlib.figure.Figure`, Agg canvas): no pyplot global state, no display needed,
and matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from distilfuse.report.zoom import Box

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
BAR_COLOUR, BEST_COLOUR, BOX_COLOUR = "#9aaec4", "#d9534f", "#ffd400"


@dataclass(frozen=True)
class Panel:
    """One image of a pair grid: its title and pixels (H,W) grey or (H,W,3) RGB, 8- or 16-bit (None: missing)."""

    title: str
    image: np.ndarray | None


def new_figure(width_px: int, height_px: int) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, layout="constrained")


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write atomically as PNG or SVG (by suffix); the file carries no date, so reruns give the same bytes."""
    from distilfuse.io.atomic import atomic_write

    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise ValueError(f"{path}: figures are written as .png or .svg")
    metadata = {"Date": None} if kind == "svg" else {}
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=kind, dpi=DPI, metadata=metadata))


def curves_figure(
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    x_label: str = "step",
    title: str = "training losses",
    size: tuple[int, int] = (900, 520),
) -> Figure:
    """Named (x, y) series on a log y axis (loss terms differ by orders of magnitude); non-positive or
    non-finite values are skipped, and so are series left empty."""
    figure = new_figure(*size)
    axes = figure.subplots()
    for name, points in series.items():
        kept = [(float(x), float(y)) for x, y in points if y is not None and math.isfinite(y) and y > 0]
        if kept:
            xs, ys = zip(*kept, strict=True)
            axes.plot(xs, ys, marker="o" if len(kept) == 1 else None, label=name, linewidth=1.5)
    axes.set_yscale("log")
    axes.set_xlabel(x_label)
    axes.set_title(title)
    axes.grid(True, which="major", alpha=0.3)
    if axes.lines:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return figure


def plot_curves(
    path: str | Path,
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    x_label: str = "step",
    title: str = "training losses",
    size: tuple[int, int] = (900, 520),
) -> Path:
    """`curves_figure` written to `path` (PNG or SVG)."""
    return save_figure(curves_figure(series, x_label, title, size), path)


def metric_bars_figure(values: Mapping[str, float], metric: str, arrow: str, best: Sequence[str]) -> Figure:
    """One metric's mean per method as horizontal bars, methods top to bottom in the given order;
    the best methods (`best`) in a distinct colour. NaN means show as an empty row marked 'nan'."""
    labels = list(values)
    figure = new_figure(420, 60 + 22 * len(labels))
    axes = figure.subplots()
    heights = [0.0 if math.isnan(v) else v for v in values.values()]
    colours = [BEST_COLOUR if label in best else BAR_COLOUR for label in labels]
    rows = np.arange(len(labels))
    axes.barh(rows, heights, color=colours)
    for row, value in zip(rows, values.values(), strict=True):
        axes.text(heights[row], row, " nan" if math.isnan(value) else f" {value:.4g}", va="center", fontsize=8)
    axes.set_yticks(rows, labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_title(f"{metric} {arrow}", fontsize=10)
    axes.margins(x=0.18)
    axes.tick_params(axis="x", labelsize=8)
    return figure


def pair_grid_figure(panels: Sequence[Panel], box: Box, columns: int = 5, panel_px: int = 240) -> Figure:
    """Each panel's full image with `box` outlined, and under it the box enlarged; panels in rows of at
    most `columns`, as even as possible. A panel whose image is None is drawn as 'missing'; the first
    panel must have one."""
    rows = math.ceil(len(panels) / columns)
    columns = math.ceil(len(panels) / rows)
    height, width = panels[0].image.shape[:2]
    full_px = panel_px * height / width
    crop_px = panel_px * box.h / box.w
    figure = new_figure(columns * panel_px, int(rows * (full_px + crop_px + 30)))
    grid = figure.add_gridspec(2 * rows, columns, height_ratios=[full_px, crop_px] * rows)
    from matplotlib.patches import Rectangle

    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        full, zoom = figure.add_subplot(grid[2 * row, column]), figure.add_subplot(grid[2 * row + 1, column])
        for axes in (full, zoom):
            axes.set_axis_off()
        full.set_title(panel.title, fontsize=9)
        if panel.image is None:
            full.text(0.5, 0.5, "missing", ha="center", va="center", transform=full.transAxes)
            continue
        image = _displayable(panel.image)
        shown = {"cmap": "gray", "vmin": 0, "vmax": 255} if image.ndim == 2 else {}
        full.imshow(image, interpolation="antialiased", **shown)
        full.add_patch(
            Rectangle((box.x - 0.5, box.y - 0.5), box.w, box.h, fill=False, edgecolor=BOX_COLOUR, linewidth=1.5)
        )
        zoom.imshow(image[box.y : box.y + box.h, box.x : box.x + box.w], interpolation="nearest", **shown)
    return figure


def _displayable(image: np.ndarray) -> np.ndarray:
    """8-bit pixels for display (16-bit images rescaled)."""
    if image.dtype == np.uint16:
        return np.rint(image / 257.0).astype(np.uint8)
    return image.astype(np.uint8)


def latency_quality_figure(points: Mapping[str, tuple[float, float]], metric: str, arrow: str) -> Figure:
    """Methods as points: median latency (ms, log axis) against a quality metric's mean."""
    figure = new_figure(620, 420)
    axes = figure.subplots()
    for label, (latency_ms, quality) in points.items():
        axes.scatter([latency_ms], [quality], s=36)
        axes.annotate(label, (latency_ms, quality), textcoords="offset points", xytext=(5, 4), fontsize=8)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    latencies = [latency for latency, _ in points.values()]
    decades = math.log10(max(latencies) / min(latencies)) if latencies else 0.0
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("median latency per image (ms, log scale)")
    axes.set_ylabel(f"{metric} {arrow} (mean)")
    axes.grid(True, which="both", alpha=0.3)
    axes.margins(x=0.25, y=0.15)
    return figure
