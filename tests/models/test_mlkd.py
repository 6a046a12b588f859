"""MLKD student: the paper's structure, parameter count close to 0.0772 M, distillation features."""

from __future__ import annotations

import pytest
import torch

from distilfuse.bench import count_flops
from distilfuse.models import FeatureTaps, count_parameters, create
from distilfuse.models.blocks.restormer import TransformerBlock
from distilfuse.models.students.mlkd import DetailAwareConvBlock, MLKDStudent

PAPER_PARAMS = 77_200  # "0.077 2 M" (section 4.5, table 4)
PAPER_FLOPS_640x480 = 22.6148e9  # table 4; the value matches a thop-style multiply-accumulate count


@pytest.fixture(scope="module")
def model() -> MLKDStudent:
    torch.manual_seed(0)
    return create("mlkd-student", weights=None)


def test_structure_follows_the_paper(model: MLKDStudent) -> None:
    assert len(model.global_branch) == 3 and len(model.local_branch) == 3
    blocks = [*model.global_branch, model.unify]
    assert all(isinstance(b, TransformerBlock) for b in blocks)
    assert all(b.attn.num_heads == 4 and b.attn.project_out.out_channels == 32 for b in blocks)
    assert all(isinstance(b, DetailAwareConvBlock) and b.depthwise.groups == 32 for b in model.local_branch)
    assert (model.reduce.in_channels, model.reduce.out_channels, model.reduce.kernel_size) == (64, 32, (1, 1))


def test_parameter_count_is_within_one_percent_of_the_paper(model: MLKDStudent) -> None:
    assert count_parameters(model) == 76_721
    assert abs(count_parameters(model) - PAPER_PARAMS) / PAPER_PARAMS < 0.01


def test_macs_at_640x480_are_within_five_percent_of_the_paper(model: MLKDStudent) -> None:
    meta = MLKDStudent().to("meta")  # shapes only: the count needs no arithmetic
    ir = torch.empty(1, 1, 480, 640, device="meta")
    macs = count_flops(meta, ir, ir).macs
    assert abs(macs - PAPER_FLOPS_640x480) / PAPER_FLOPS_640x480 < 0.05


def test_features_for_multi_level_distillation(model: MLKDStudent) -> None:
    ir, vis = torch.rand(2, 1, 13, 17), torch.rand(2, 1, 13, 17)
    with torch.no_grad(), FeatureTaps(model) as taps:
        out = model(ir, vis, raw=True)
    f = taps.features
    assert f["enc_ir"].shape == f["enc_vis"].shape == (2, 16, 13, 17)
    assert torch.equal(f["encoded"], torch.cat([f["enc_ir"], f["enc_vis"]], dim=1))
    assert all(f[n].shape == (2, 32, 13, 17) for n in ("global", "local", "fused"))
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.decoder(f["fused"])), out)
    assert torch.equal(f["out"], out)
    assert out.min() > 0 and out.max() < 1


def test_detail_aware_block_is_residual() -> None:
    block = DetailAwareConvBlock(32)
    with torch.no_grad():
        block.pointwise.weight.zero_()
        block.pointwise.bias.zero_()
        x = torch.randn(1, 32, 5, 6)
        assert torch.equal(block(x), x)
