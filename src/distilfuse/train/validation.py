"""Validation while training: the student's mean metric scores on held-out crops, and which score is best."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch import nn

from distilfuse.data.patches import downsample
from distilfuse.ops.stretch import min_max_stretch_batch
from distilfuse.train.config import ConfigError


class Validator:
    """Scores a student on fixed crops with `validation.metrics`; `validation.best_metric`, in its own
    direction (higher or lower is better), decides whether a score is the best so far.

    `stretch` scores each crop's raw output min-max stretched, as a stretching protocol does.
    The names are resolved to canonical ones when it is built (before any training), and written back
    into `vcfg`, so the run's recorded config names what was measured.
    """

    def __init__(
        self,
        vcfg: dict[str, Any],
        crops: list[tuple[np.ndarray, np.ndarray]],
        scale: int,
        device: torch.device,
        stretch: bool = False,
    ) -> None:
        from distilfuse.metrics import METRICS, resolve_metric_names

        try:
            vcfg["metrics"] = resolve_metric_names(vcfg["metrics"])
            best = resolve_metric_names([vcfg["best_metric"]])[0]
        except ValueError as exc:
            raise ConfigError(f"validation: {exc}") from None
        if best not in vcfg["metrics"]:
            raise ConfigError(f"validation.best_metric {best} is not in validation.metrics {vcfg['metrics']}")
        vcfg["best_metric"] = best
        self.higher_is_better = METRICS[best].higher_is_better
        expected = "max" if self.higher_is_better else "min"
        if vcfg.get("mode", expected) != expected:
            raise ConfigError(
                f"validation.mode {vcfg['mode']} contradicts {best}, for which {expected}imum is best; "
                "drop validation.mode (the metric decides)"
            )
        self.metrics, self.best_metric, self.batch = list(vcfg["metrics"]), best, int(vcfg["batch"])
        self.crops, self.scale, self.device, self.stretch = crops, scale, device, stretch

    @torch.no_grad()
    def scores(self, student: nn.Module) -> dict[str, float]:
        """Mean of each metric over the crops (student in eval mode, then back in training mode), on the fused
        image in [0,1]: the model's own, or its raw output min-max stretched per crop with `stretch` (what a
        stretching protocol scores)."""
        import distilfuse.metrics as metrics  # imported only when validation runs

        student.eval()
        sums: dict[str, float] = defaultdict(float)
        count = 0
        by_shape: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        for ir, vis in self.crops:
            by_shape[ir.shape].append((ir, vis))
        try:
            for crops in by_shape.values():
                for start in range(0, len(crops), self.batch):
                    chunk = crops[start : start + self.batch]
                    ir = torch.from_numpy(np.stack([c[0] for c in chunk]))[:, None].to(self.device)
                    vis = torch.from_numpy(np.stack([c[1] for c in chunk]))[:, None].to(self.device)
                    inputs = downsample(ir, self.scale), downsample(vis, self.scale)
                    fused = min_max_stretch_batch(student(*inputs, raw=True)) if self.stretch else student(*inputs)
                    scores = metrics.compute_batch(fused.float(), ir, vis, metrics=self.metrics, data_range=1.0)
                    for k, v in scores.items():
                        sums[k] += float(torch.as_tensor(v, dtype=torch.float64).sum())
                    count += len(chunk)
        finally:
            student.train()
        return {k: v / count for k, v in sums.items()}

    def is_best(self, scores: dict[str, float], best: dict[str, Any]) -> bool:
        """Whether `scores` beat `best` (`{"value": ...}` of the best epoch so far; empty before any)."""
        value = scores[self.best_metric]
        if not math.isfinite(value):
            return False
        if not best or best.get("value") is None:
            return True
        return value > best["value"] if self.higher_is_better else value < best["value"]
