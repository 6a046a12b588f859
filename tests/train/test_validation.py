"""Validation alone: canonical metric names, mean scores over crops of several sizes, the best epoch's direction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from distilfuse.metrics import compute_batch
from distilfuse.ops.stretch import min_max_stretch
from distilfuse.train.validation import Validator

CPU = torch.device("cpu")


def crops() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    shapes = [(16, 16)] * 3 + [(12, 20)] * 2
    return [(rng.random(s, dtype=np.float32), rng.random(s, dtype=np.float32)) for s in shapes]


class MaxFusion(nn.Module):
    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        return torch.maximum(ir, vis)


def test_scores_are_means_over_every_crop_and_the_names_canonical() -> None:
    vcfg = {"metrics": ["ssim", "QABF"], "best_metric": "qabf", "batch": 2}
    validator = Validator(vcfg, crops(), 1, CPU)
    assert vcfg["metrics"] == ["SSIM", "Qabf"] and vcfg["best_metric"] == "Qabf"  # the run records what it measured
    student = MaxFusion().train()
    scores = validator.scores(student)
    assert student.training
    each = [
        compute_batch(torch.maximum(t(ir), t(vis)), t(ir), t(vis), metrics=["SSIM", "Qabf"], data_range=1.0)
        for ir, vis in crops()
    ]
    for name in ("SSIM", "Qabf"):
        assert scores[name] == pytest.approx(np.mean([float(s[name].squeeze()) for s in each]), rel=1e-6)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x)[None, None]


class DimMaxFusion(nn.Module):
    """A raw output with a compressed range (0.1 + 0.3 max): clamping keeps it dim, a stretch spans [0,1]."""

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, raw: bool = False) -> torch.Tensor:
        out = 0.1 + 0.3 * torch.maximum(ir, vis)
        return out if raw else out.clamp(0.0, 1.0)


@pytest.mark.parametrize("stretch", [False, True])
def test_stretch_scores_each_crops_stretched_raw_output(stretch: bool) -> None:
    validator = Validator({"metrics": ["SD"], "best_metric": "SD", "batch": 2}, crops(), 1, CPU, stretch=stretch)
    scores = validator.scores(DimMaxFusion())
    fused = [0.1 + 0.3 * np.maximum(ir, vis) for ir, vis in crops()]
    if stretch:
        fused = [min_max_stretch(f) for f in fused]
    expected = np.mean([float(compute_batch(t(f), t(f), t(f), metrics=["SD"], data_range=1.0)["SD"]) for f in fused])
    assert scores["SD"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("metric", "better", "worse"), [("Qabf", 0.6, 0.4), ("MSE", 0.4, 0.6)])
def test_best_follows_the_metrics_direction(metric: str, better: float, worse: float) -> None:
    validator = Validator({"metrics": ["Qabf", "MSE"], "best_metric": metric, "batch": 4}, crops(), 1, CPU)
    assert validator.is_best({metric: worse}, {})
    assert validator.is_best({metric: better}, {"value": 0.5})
    assert not validator.is_best({metric: worse}, {"value": 0.5})
    assert not validator.is_best({metric: math.nan}, {})


@pytest.mark.parametrize(
    ("vcfg", "message"),
    [
        ({"metrics": ["SSIM"], "best_metric": "Qabf"}, r"validation.best_metric Qabf is not in .*\['SSIM'\]"),
        ({"metrics": ["SSIM", "PSNR2"], "best_metric": "SSIM"}, "validation: unknown metric 'PSNR2'"),
    ],
)
def test_config_errors_name_the_key(vcfg: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Validator({**vcfg, "batch": 4}, crops(), 1, CPU)
