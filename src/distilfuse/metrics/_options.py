"""Per-metric options and the two evaluation profiles of the metric specification (§1.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MetricOptions:
    """Every option that changes a metric's value; a profile is one set of these."""

    gray_conversion: Literal["opencv", "matlab"] = "opencv"  # §1.3 colour -> grey
    level_rounding: Literal["even", "away"] = "even"  # grey levels for EN/MI (§2.1)
    ag_norm: Literal["mn", "m1n1"] = "mn"
    mi_base: Literal["e", 2] = "e"
    mi_joint_saturation: bool = False
    mse_scale: Literal[255, 1] = 255
    psnr_mode: Literal["max_f", "peak255", "tang"] = "max_f"
    vif_nan: float = 1.0  # value replacing a NaN per-source VIF; NaN propagates it
    ssim_mode: Literal["cdd", "matlab"] = "cdd"
    ssim_data_range: float = 2.0
    msssim_mode: Literal["wang", "mef"] = "wang"
    fmi_pixel_feature: Literal["none", "edge"] = "none"
    fmi_wavelet: Literal["dmey_pywt", "dmey_matlab102"] = "dmey_pywt"
    # MATLAB's 102-tap dmey scaling filter (not distributed); used by fmi_wavelet='dmey_matlab102'.
    fmi_dmey_filter: Sequence[float] | None = None
    nabf_order: Literal["fused_first", "tang_driver"] = "fused_first"


PROFILES: dict[str, MetricOptions] = {
    "cdd": MetricOptions(),
    "tang": MetricOptions(
        gray_conversion="matlab",
        level_rounding="away",
        ag_norm="m1n1",
        mi_base=2,
        mi_joint_saturation=True,
        mse_scale=1,
        psnr_mode="tang",
        vif_nan=float("nan"),
        ssim_mode="matlab",
        msssim_mode="mef",
        fmi_pixel_feature="edge",
        fmi_wavelet="dmey_matlab102",  # falls back to dmey_pywt (with a warning) without the filter
        nabf_order="tang_driver",
    ),
}

_CHOICES: dict[str, tuple[object, ...]] = {
    "gray_conversion": ("opencv", "matlab"),
    "level_rounding": ("even", "away"),
    "ag_norm": ("mn", "m1n1"),
    "mi_base": ("e", 2),
    "mse_scale": (255, 1),
    "psnr_mode": ("max_f", "peak255", "tang"),
    "ssim_mode": ("cdd", "matlab"),
    "msssim_mode": ("wang", "mef"),
    "fmi_pixel_feature": ("none", "edge"),
    "fmi_wavelet": ("dmey_pywt", "dmey_matlab102"),
    "nabf_order": ("fused_first", "tang_driver"),
}


def resolve_options(profile: str, overrides: dict[str, object]) -> MetricOptions:
    """The profile's options with explicit overrides applied; unknown names or values raise ValueError."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    known = {f.name for f in dataclasses.fields(MetricOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown metric option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name, value in overrides.items():
        if name in _CHOICES and value not in _CHOICES[name]:
            choices = ", ".join(repr(c) for c in _CHOICES[name])
            raise ValueError(f"option {name}={value!r} is not one of {choices}")
    return dataclasses.replace(PROFILES[profile], **overrides)
