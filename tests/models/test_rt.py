"""rt students and RepConv: branch folding is exact, both state-dict forms load, untrained = soft-max rule, ONNX."""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distilfuse.bench.measure import size_kb
from distilfuse.models import FeatureTaps, count_parameters, create
from distilfuse.models.blocks.reparam import RepConv, reparameterize

RT_MODELS = ["rt-s", "rt-m", "rt-l"]
# Measured with count_parameters(reparameterize(create(name, weights=None))); documented in docs/models.md.
FOLDED_PARAMS = {"rt-s": 14_449, "rt-m": 28_569, "rt-l": 47_297}
SHIPPED_SIZE_LIMIT_KB = 200  # issue 9: shipped weights <= 200 KB


def trained_like(name: str, seed: int = 0) -> torch.nn.Module:
    """A model whose every parameter (branch scales and the zero-initialised head too) is non-trivial."""
    torch.manual_seed(seed)
    model = create(name, weights=None)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


def pair(*shape: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)


@pytest.mark.parametrize("identity", [True, False])
def test_repconv_equals_the_sum_of_its_branches(identity: bool) -> None:
    torch.manual_seed(0)
    block = RepConv(6, 6, identity=identity)
    with torch.no_grad():
        if identity:
            block.identity_scale.uniform_(-2, 2)
    x = torch.randn(2, 6, 9, 11)
    expected = F.conv2d(x, block.weight3, block.bias, padding=1) + F.conv2d(x, block.weight1)
    if identity:
        expected = expected + block.identity_scale.view(1, -1, 1, 1) * x
    with torch.no_grad():
        assert (block(x) - expected).abs().max() <= 1e-5
        assert (block.fold()(x) - expected).abs().max() <= 1e-5


def test_repconv_has_no_identity_branch_between_different_widths() -> None:
    assert RepConv(4, 8).identity_scale is None
    assert RepConv(4, 4, identity=False).identity_scale is None


@pytest.mark.parametrize("name", RT_MODELS)
def test_reparameterized_model_fuses_the_same_with_plain_convs(name: str) -> None:
    model = trained_like(name)
    deploy = reparameterize(copy.deepcopy(model))
    assert not any(isinstance(m, RepConv) for m in deploy.modules())
    assert count_parameters(deploy) == FOLDED_PARAMS[name]
    assert size_kb(deploy) <= SHIPPED_SIZE_LIMIT_KB
    ir, vis = pair(2, 1, 37, 45)
    with torch.no_grad(), FeatureTaps(model) as taps, FeatureTaps(deploy) as deploy_taps:
        out, deploy_out = model(ir, vis, raw=True), deploy(ir, vis, raw=True)
    assert (out - deploy_out).abs().max() <= 1e-5
    for feature in model.feature_taps:
        assert (taps.features[feature] - deploy_taps.features[feature]).abs().max() <= 1e-5, feature


@pytest.mark.parametrize("form", ["branches", "folded"])
def test_both_state_dict_forms_load_into_a_fresh_model(form: str, tmp_path) -> None:
    from safetensors.torch import save_file

    model = trained_like("rt-s")
    source = model if form == "branches" else reparameterize(copy.deepcopy(model))
    path = tmp_path / "rt-s.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = create("rt-s", weights=path)
    assert any(isinstance(m, RepConv) for m in loaded.modules()), "loads into the trainable multi-branch form"
    ir, vis = pair(1, 1, 24, 20)
    with torch.no_grad():
        assert (loaded(ir, vis, raw=True) - model(ir, vis, raw=True)).abs().max() <= 1e-5


@pytest.mark.parametrize("name", RT_MODELS)
def test_untrained_model_is_the_soft_max_fusion_rule(name: str) -> None:
    model = create(name, weights=None)  # the fresh initialisation
    ir, vis = pair(1, 1, 30, 22)
    with torch.no_grad():
        fused = model(ir, vis, raw=True)
    expected = vis + torch.sigmoid(8 * (ir - vis)) * (ir - vis)
    assert (fused - expected).abs().max() <= 1e-6


def test_feature_taps_have_the_documented_shapes() -> None:
    model = trained_like("rt-m")
    ir, vis = pair(2, 1, 37, 45)  # padded to 40x48 inside: 1/4 resolution is 10x12
    with torch.no_grad(), FeatureTaps(model) as taps:
        model(ir, vis)
    shapes = {name: tuple(f.shape) for name, f in taps.features.items()}
    assert shapes == {
        "stem": (2, 24, 10, 12),
        "body": (2, 24, 10, 12),
        "head": (2, 2, 40, 48),
        "weight": (2, 1, 40, 48),
    }
    assert taps.features["weight"].min() >= 0 and taps.features["weight"].max() <= 1


def test_onnx_export_is_the_plain_conv_graph_and_matches_onnxruntime(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from distilfuse.export import export_onnx

    model = trained_like("rt-s")
    report = export_onnx(model, tmp_path / "rt-s.onnx")
    assert report.max_abs_error <= 1e-4
    session = onnxruntime.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    ir, vis = pair(3, 1, 41, 57)
    with torch.no_grad():
        expected = model(ir, vis).numpy()
    (got,) = session.run(["fused"], {"ir": ir.numpy(), "vis": vis.numpy()})
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-4
    # The branches are folded at export: the graph is the reparameterized model's.
    deploy = export_onnx(reparameterize(copy.deepcopy(model)), tmp_path / "deploy.onnx")
    ops = [Counter(n.op_type for n in onnx.load(str(p)).graph.node) for p in (report.path, deploy.path)]
    assert ops[0] == ops[1]
    assert ops[0]["Conv"] == 2 + 4 + 1  # two stems, four blocks, the head
