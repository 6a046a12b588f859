"""Training logs: per-epoch and per-step CSV, a JSON summary, and the loss series their curves plot."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from distilfuse.train.checkpoint import atomic_write

# Columns of the epoch and step logs that are not loss terms.
NOT_LOSSES = frozenset({"step", "epoch", "phase", "steps", "seconds", "peak_memory_mb", "lr"})


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


def loss_series(rows: Sequence[Mapping[str, Any]], x_key: str) -> dict[str, list[tuple[Any, Any]]]:
    """The loss terms of log rows (keys of the last row that are not bookkeeping or validation scores)
    as (x, value) series for `distilfuse.report.figures.plot_curves`."""
    keys = [k for k in rows[-1] if k not in NOT_LOSSES and not k.startswith("val_")]
    return {k: [(r[x_key], r.get(k)) for r in rows if k in r] for k in keys}
