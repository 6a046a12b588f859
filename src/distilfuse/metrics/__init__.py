"""Objective metrics for infrared-visible image fusion (see docs/metrics.md).

`compute` evaluates one triplet with NumPy; `compute_batch` evaluates (B, 1, H, W) tensors with
torch on their device.
"""

from distilfuse.metrics._options import PROFILES, MetricOptions
from distilfuse.metrics._prep import to_grey
from distilfuse.metrics.batched import BATCHED_METRICS, compute_batch
from distilfuse.metrics.core import (
    CDD_FAST_METRICS,
    DEFAULT_METRICS,
    METRICS,
    Metric,
    compute,
    resolve_metric_names,
)

__all__ = [
    "BATCHED_METRICS",
    "CDD_FAST_METRICS",
    "DEFAULT_METRICS",
    "METRICS",
    "PROFILES",
    "Metric",
    "MetricOptions",
    "compute",
    "compute_batch",
    "resolve_metric_names",
    "to_grey",
]
