"""The model-zoo table of docs/models.md, generated from the registry by building every model.

Regenerate with ``distilfuse bench --zoo docs/models.md``: the generated part (up to ``END_MARKER``) is
replaced, hand-written notes after it are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from distilfuse.bench.measure import parameter_count, size_kb
from distilfuse.models import create, get_card, list_models

TITLE = "# Model zoo"
INTRO = (
    "Every registered model. Parameters and size (float32 state dict, 1 KB = 1024 bytes) are measured by\n"
    "building the model; features are the names accepted by `FeatureTaps` (`model.feature_taps`); weights\n"
    "says whether trained weights ship with the package. FLOPs, latency and memory: `distilfuse bench --all`."
)
END_MARKER = "<!-- end of generated table: distilfuse bench --zoo docs/models.md -->"
COLUMNS = ("model", "role", "paper", "params", "size (KB)", "scale", "features", "weights", "summary")


def zoo_rows() -> list[tuple[str, ...]]:
    rows = []
    for name in list_models():
        card = get_card(name)
        torch.manual_seed(0)
        model = create(name, weights=None)
        features = ", ".join(f"`{f}`" for f in getattr(model, "feature_taps", {})) or "-"
        weights = "shipped" if card.shipped_weights else "-"
        rows.append(
            (
                f"`{name}`",
                card.role,
                card.paper,
                f"{parameter_count(model):,}",
                f"{size_kb(model):,.2f}",
                f"x{getattr(model, 'scale', 1)}",
                features,
                weights,
                card.summary,
            )
        )
    return rows


def zoo_markdown() -> str:
    lines = [TITLE, "", INTRO, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in zoo_rows()]
    return "\n".join([*lines, "", END_MARKER]) + "\n"


def update(path: Path) -> None:
    """Rewrite the generated part of ``path``, keeping what follows ``END_MARKER``; atomic."""
    notes = ""
    if path.is_file():
        _, marker, notes = path.read_text().partition(END_MARKER + "\n")
        notes = notes if marker else ""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(zoo_markdown() + notes)
    os.replace(partial, path)
