"""Checks that run over every registered model (timm-style): one surface for all."""

from __future__ import annotations

import pytest
import torch

from distilfuse.models import FeatureTaps, count_parameters, create, get_card, list_models

FUSION_MODELS = list_models("teacher") + list_models("student")
DISCRIMINATORS = list_models("discriminator")
ODD_SIZE = (37, 45)
# Super-resolving students are ~11 M parameters and upscale their input: test them at a small LR size.
ODD_SIZE_SR = (13, 11)


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return create(name, weights=None)


@pytest.mark.parametrize("name", FUSION_MODELS + DISCRIMINATORS)
def test_parameter_count_matches_documented(name: str) -> None:
    assert count_parameters(build(name)) == get_card(name).param_count


@pytest.mark.parametrize("name", FUSION_MODELS)
def test_odd_size_output_is_finite_in_unit_range_with_features(name: str) -> None:
    model = build(name)
    scale = model.scale
    size = ODD_SIZE if scale == 1 else ODD_SIZE_SR
    ir, vis = torch.rand(2, 1, *size), torch.rand(2, 1, *size)
    with torch.no_grad(), FeatureTaps(model) as taps:
        raw = model(ir, vis, raw=True)
    assert raw.shape == (2, 1, size[0] * scale, size[1] * scale)
    assert torch.isfinite(raw).all()
    fused = model.to_unit_range(raw)
    assert fused.min() >= 0 and fused.max() <= 1
    assert set(taps.features) == set(model.feature_taps), "every declared feature is produced"
    for name_, feat in taps.features.items():
        assert torch.isfinite(feat).all(), name_


@pytest.mark.parametrize("name", FUSION_MODELS)
def test_gradients_reach_every_trainable_parameter(name: str) -> None:
    model = build(name).train()
    side = 24 if model.scale == 1 else 8
    ir, vis = torch.rand(2, 1, side, side), torch.rand(2, 1, side, side)
    model(ir, vis, raw=True).square().mean().backward()
    unused = tuple(getattr(model, "unused_parameters", ()))
    missing = [
        n for n, p in model.named_parameters() if p.requires_grad and p.grad is None and not n.startswith(unused)
    ]
    assert not missing, f"no gradient reaches {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", DISCRIMINATORS)
def test_discriminator_scores_are_finite_and_trainable(name: str) -> None:
    model = build(name).train()
    score = model(torch.rand(2, 1, 64, 64))
    assert torch.isfinite(score).all()
    score.mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
