"""Training logs: per-epoch and per-step CSV, a JSON summary, and a loss-curve PNG drawn with Pillow."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from distilfuse.train.checkpoint import atomic_write

PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """All rows under the union of their keys (first-seen order); missing cells are left empty."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))


def write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1, default=str)))


def plot_curves(
    path: str | Path,
    series: Mapping[str, Sequence[tuple[float, float]]],
    x_label: str = "step",
    title: str = "training losses",
    size: tuple[int, int] = (900, 520),
) -> Path:
    """Line plot of named (x, y) series on a log10 y axis (losses differ by orders of magnitude).

    Non-positive or non-finite values are skipped.
    """
    width, height = size
    left, right, top, bottom = 70, 200, 36, 46
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    clean = {
        name: [(float(x), math.log10(y)) for x, y in pts if y is not None and math.isfinite(y) and y > 0]
        for name, pts in series.items()
    }
    clean = {k: v for k, v in clean.items() if v}
    draw.text((left, 10), title, fill="black", font=font)
    x0, x1, y0, y1 = left, width - right, top, height - bottom
    draw.rectangle((x0, y0, x1, y1), outline="black")
    if clean:
        xs = [x for pts in clean.values() for x, _ in pts]
        ys = [y for pts in clean.values() for _, y in pts]
        xmin, xmax = min(xs), max(xs)
        ymin, ymax = math.floor(min(ys)), math.ceil(max(ys))
        if xmax == xmin:
            xmax = xmin + 1
        if ymax == ymin:
            ymax = ymin + 1

        def to_px(x: float, y: float) -> tuple[float, float]:
            return (x0 + (x - xmin) / (xmax - xmin) * (x1 - x0), y1 - (y - ymin) / (ymax - ymin) * (y1 - y0))

        for decade in range(ymin, ymax + 1):
            _, py = to_px(xmin, decade)
            draw.line((x0, py, x1, py), fill=(225, 225, 225))
            draw.text((8, py - 6), f"1e{decade}", fill="black", font=font)
        for k in range(5):
            x = xmin + k * (xmax - xmin) / 4
            px, _ = to_px(x, ymin)
            draw.line((px, y1, px, y1 + 4), fill="black")
            draw.text((px - 10, y1 + 8), f"{x:g}", fill="black", font=font)
        for i, (name, pts) in enumerate(clean.items()):
            colour = PALETTE[i % len(PALETTE)]
            pixels = [to_px(x, y) for x, y in pts]
            if len(pixels) == 1:
                px, py = pixels[0]
                draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=colour)
            else:
                draw.line(pixels, fill=colour, width=2)
            ly = y0 + 4 + 16 * i
            draw.line((x1 + 10, ly + 6, x1 + 30, ly + 6), fill=colour, width=3)
            draw.text((x1 + 36, ly), name[:26], fill="black", font=font)
    draw.text(((x0 + x1) // 2 - 10, height - 18), x_label, fill="black", font=font)
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))
