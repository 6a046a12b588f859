"""The metric registry and `compute`, the single-triplet NumPy evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from distilfuse.metrics import fmi, gradient, information, statistics, structural, vif
from distilfuse.metrics._options import resolve_options
from distilfuse.metrics._prep import Triplet, prepare_image


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    function: Callable[[Triplet], float]
    in_default_set: bool = True

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


_ALL = [
    Metric("EN", True, information.entropy),
    Metric("SD", True, statistics.standard_deviation),
    Metric("SF", True, gradient.spatial_frequency),
    Metric("AG", True, gradient.average_gradient),
    Metric("MI", True, information.mutual_information),
    Metric("FMI_pixel", True, fmi.fmi_pixel),
    Metric("FMI_dct", True, fmi.fmi_dct),
    Metric("FMI_w", True, fmi.fmi_wavelet),
    Metric("SCD", True, statistics.sum_of_correlations_of_differences),
    Metric("VIF", True, vif.vif),
    Metric("Qabf", True, gradient.qabf),
    Metric("Nabf", False, gradient.nabf),
    Metric("SSIM", True, structural.ssim),
    Metric("MS_SSIM", True, structural.ms_ssim),
    Metric("CC", True, statistics.correlation_coefficient),
    Metric("PSNR", True, statistics.peak_signal_to_noise_ratio),
    Metric("MSE", False, statistics.mean_squared_error),
    Metric("GMSD", False, structural.gmsd),
    # Han et al.'s VIFF is in neither profile (§2.9): computed only when asked for by name.
    Metric("VIFF_han", True, vif.viff_han, in_default_set=False),
]
METRICS: dict[str, Metric] = {m.name: m for m in _ALL}
DEFAULT_METRICS: tuple[str, ...] = tuple(m.name for m in _ALL if m.in_default_set)
# The cheap set that training validation and the speed target use.
CDD_FAST_METRICS: tuple[str, ...] = (
    "EN",
    "SD",
    "SF",
    "AG",
    "MI",
    "SCD",
    "VIF",
    "Qabf",
    "SSIM",
    "CC",
    "PSNR",
    "MSE",
)

_BY_FOLDED_NAME = {name.lower().replace("-", "_"): name for name in METRICS}


def resolve_metric_names(metrics: str | Iterable[str] | None) -> list[str]:
    """Canonical metric names from a list or comma-separated string (case and '-'/'_' ignored)."""
    if metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",") if m.strip()]
    names = []
    for raw in metrics:
        name = _BY_FOLDED_NAME.get(raw.strip().lower().replace("-", "_"))
        if name is None:
            raise ValueError(f"unknown metric {raw.strip()!r}; known: {', '.join(METRICS)}")
        if name not in names:
            names.append(name)
    return names


def compute(
    fused: Any,
    ir: Any,
    vis: Any,
    metrics: str | Iterable[str] | None = None,
    profile: str = "cdd",
    data_range: float = 255,
    *,
    quantize: bool = False,
    **options: Any,
) -> dict[str, float]:
    """Evaluate fusion metrics for one (fused, infrared, visible) triplet.

    Images are 2-D (or (H, W, 3) colour, channel-first for tensors) numpy arrays or torch tensors
    with values in 0..`data_range`. `metrics=None` evaluates every metric of `DEFAULT_METRICS`;
    `options` override single options of the profile (see `MetricOptions`). `quantize=True`
    rounds to 8-bit levels first, as saving and re-reading a PNG would.
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    names = resolve_metric_names(metrics)
    opts = resolve_options(profile, options)
    images = [
        prepare_image(img, role, opts, data_range, quantize)
        for img, role in ((fused, "fused"), (ir, "ir"), (vis, "vis"))
    ]
    triplet = Triplet(*images, opts)
    return {name: METRICS[name].function(triplet) for name in names}
