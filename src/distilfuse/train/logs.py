"""Training logs: per-epoch and per-step CSV, a JSON summary, and the loss series their curves plot."""

from __future__ import annotations

import csv
import io
import json
import resource
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from distilfuse.io.atomic import atomic_write
from distilfuse.report.figures import plot_curves

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


class RunLog:
    """What a run logs: sums of the current epoch's step values, a row every few steps and a row per epoch;
    `write` puts them in the run folder (log.csv, steps.csv, log.json, curves.png)."""

    def __init__(self) -> None:
        self.epoch_sums: dict[str, float] = defaultdict(float)
        self.history: list[dict[str, Any]] = []  # one row per epoch
        self.step_log: list[dict[str, Any]] = []

    def start_epoch(self) -> None:
        self.epoch_sums = defaultdict(float)

    def add_step(self, values: Mapping[str, float], row: Mapping[str, Any] | None = None) -> None:
        """Add a step's values to the epoch's sums; with `row` (its step, epoch, lr) log them as a step row too."""
        for k, v in values.items():
            self.epoch_sums[k] += v
        if row is not None:
            self.step_log.append({**row, **values})

    def epoch_means(self, steps: int) -> dict[str, float]:
        return {k: v / max(steps, 1) for k, v in self.epoch_sums.items()}

    def add_epoch(self, row: dict[str, Any]) -> None:
        self.history.append(row)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_sums": dict(self.epoch_sums), "history": self.history, "step_log": self.step_log}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch_sums = defaultdict(float, state["epoch_sums"])
        self.history, self.step_log = state["history"], state["step_log"]

    def write(self, out_dir: Path, cfg: Mapping[str, Any], best: Mapping[str, Any], global_step: int) -> None:
        """The logs and the loss curves (per step when more than one step row was logged, else per epoch)."""
        write_csv(out_dir / "log.csv", self.history)
        if self.step_log:
            write_csv(out_dir / "steps.csv", self.step_log)
        write_json(
            out_dir / "log.json", {"config": cfg, "epochs": self.history, "best": best, "global_step": global_step}
        )
        if len(self.step_log) > 1:
            plot_curves(out_dir / "curves.png", loss_series(self.step_log, "step"), x_label="step")
        else:
            plot_curves(out_dir / "curves.png", loss_series(self.history, "epoch"), x_label="epoch")


def epoch_line(row: Mapping[str, Any], epochs: int, improved: bool) -> str:
    """The console line of an epoch's log row: loss, time, memory, validation scores ("(best)" if improved)."""
    vals = [f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_")]
    best = "  (best)" if improved and vals else ""
    return (
        f"epoch {row['epoch']}/{epochs} [{row['phase']}]  loss {row.get('loss', float('nan')):.4g}  "
        f"{row['seconds']:.1f} s  peak memory {row['peak_memory_mb']:.0f} MB"
        + (f"  | {'  '.join(vals)}{best}" if vals else "")
    )


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory: allocated on a CUDA device since its last reset, else the process's peak resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
