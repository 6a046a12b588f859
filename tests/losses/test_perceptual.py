"""Perceptual features: torchvision-compatible VGG layout and loading, and the logged substitute."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from distilfuse.losses import build_loss
from distilfuse.losses.perceptual import (
    PyramidFeatures,
    VGGFeatures,
    build_feature_extractor,
    build_vgg_features,
    default_layers,
    feature_distance,
    vgg_layer_indices,
)
from distilfuse.models import WeightsError


def test_layer_indices_match_torchvision_layout() -> None:
    # torchvision's vgg16/vgg19 ``features`` indices of the last ReLU before each max pool.
    assert [vgg_layer_indices("vgg16")[n] for n in default_layers("vgg16")] == [3, 8, 15, 22, 29]
    assert [vgg_layer_indices("vgg19")[n] for n in default_layers("vgg19")] == [3, 8, 17, 26, 35]
    assert default_layers("vgg19") == ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")


def test_full_stacks_have_torchvision_parameter_counts() -> None:
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(build_vgg_features("vgg16", 31)) == 14_714_688
    assert count(build_vgg_features("vgg19", 37)) == 20_024_384


def fake_vgg16_file(tmp_path, depth: int = 9):
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in build_vgg_features("vgg16", depth).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full checkpoint are ignored
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    return path, state


def test_loads_torchvision_style_weights_and_taps_layers(tmp_path) -> None:
    path, state = fake_vgg16_file(tmp_path)
    features = VGGFeatures("vgg16", ["relu2_2", "relu1_2"], path)
    x = torch.rand(1, 1, 16, 16)
    relu2_2, relu1_2 = features(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = (x.expand(-1, 3, -1, -1) - mean) / std
    h = F.relu(F.conv2d(h, state["features.0.weight"], state["features.0.bias"], padding=1))
    h = F.relu(F.conv2d(h, state["features.2.weight"], state["features.2.bias"], padding=1))
    torch.testing.assert_close(relu1_2, h)
    assert relu2_2.shape == (1, 128, 8, 8)
    assert not any(p.requires_grad for p in features.parameters())


def test_rejects_a_file_missing_layers(tmp_path) -> None:
    path, _ = fake_vgg16_file(tmp_path, depth=4)  # only up to relu1_2
    with pytest.raises(WeightsError, match="missing"):
        VGGFeatures("vgg16", ["relu2_2"], path)
    with pytest.raises(ValueError, match="unknown vgg16 layer"):
        VGGFeatures("vgg16", ["relu3_4"], path)


def test_perceptual_loss_with_weights_file(tmp_path) -> None:
    path, _ = fake_vgg16_file(tmp_path)
    loss = build_loss({"type": "perceptual", "network": "vgg16", "weights": str(path), "layers": ["relu2_2"]})
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    assert loss(x, x, x).item() == 0.0
    assert loss(x, y, y).item() > 0


def test_substitute_logs_one_line_per_process(caplog: pytest.LogCaptureFixture, monkeypatch) -> None:
    monkeypatch.setattr("distilfuse.losses.perceptual._SUBSTITUTES_ANNOUNCED", set())
    with caplog.at_level(logging.WARNING, logger="distilfuse.losses.perceptual"):
        features = build_feature_extractor("vgg19", None, None)
        build_feature_extractor("vgg19", None, None)  # e.g. the refresh memory after the loss
    assert isinstance(features, PyramidFeatures)
    assert len(caplog.records) == 1 and "substitute" in caplog.records[0].getMessage()


def test_substitute_levels_follow_vgg_blocks() -> None:
    features = PyramidFeatures("vgg19", default_layers("vgg19"))
    out = features(torch.rand(2, 1, 64, 48))
    assert [tuple(f.shape[-2:]) for f in out] == [(64, 48), (32, 24), (16, 12), (8, 6), (4, 3)]
    assert all(f.shape[1] == 2 and (f >= 0).all() for f in out)
    flat = features(torch.full((1, 1, 32, 32), 0.3))
    assert all(torch.allclose(f[:, 0], torch.zeros(()), atol=1e-6) for f in flat)  # no band-pass detail


def test_feature_distance_hand_value_and_gradcheck() -> None:
    a = [torch.ones(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]
    b = [torch.zeros(1, 2, 2, 2), torch.full((1, 1, 1, 1), 2.0)]
    # layer 1: mean of 1^2 = 1; layer 2: 2^2 = 4; mean over layers 2.5
    assert feature_distance(a, b).item() == pytest.approx(2.5)
    features = PyramidFeatures("vgg16", ["relu1_2", "relu2_2"])
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: feature_distance(features(t), features(y)), (x,))
