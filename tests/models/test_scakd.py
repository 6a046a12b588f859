"""SCAKD generators and discriminator: counts vs the paper, aligned feature taps, output mapping."""

from __future__ import annotations

import pytest
import torch

from distilfuse.models import FeatureTaps, count_parameters, create
from distilfuse.models.blocks.eca import ECA, eca_kernel_size
from distilfuse.models.blocks.rdb import ResidualDenseBlock
from distilfuse.models.blocks.spade import SPADE


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    return create("scakd-teacher", weights=None), create("scakd-student", weights=None)


def test_counts_round_to_the_papers_figures(pair) -> None:
    teacher, student = pair
    assert round(count_parameters(teacher) / 1e6, 2) == 1.58
    assert round(count_parameters(student) / 1e6, 2) == 0.86


def test_teacher_minus_student_is_four_rdbs_and_the_decoder_difference(pair) -> None:
    teacher, student = pair
    rdb = count_parameters(ResidualDenseBlock(64, 48, 3))
    # RDB: 3x3 convs (64, 112, 160 -> 48) with bias, 1x1 fusion 208 -> 64 with bias.
    assert rdb == 48 * 9 * (64 + 112 + 160) + 3 * 48 + 208 * 64 + 64
    decoder_difference = count_parameters(teacher.decoder) - count_parameters(student.decoder)
    assert count_parameters(teacher) - count_parameters(student) == 4 * rdb + decoder_difference
    assert len(teacher.ir_branch.rdbs) == 4 and len(student.ir_branch.rdbs) == 2


def test_feature_taps_align_between_teacher_and_student(pair) -> None:
    teacher, student = pair
    assert teacher.feature_taps.keys() == student.feature_taps.keys()
    assert teacher.feature_taps["ir_mid"] == "ir_branch.rdbs.1" and student.feature_taps["ir_mid"] == "ir_branch.rdbs.0"
    ir, vis = torch.rand(2, 1, 16, 20), torch.rand(2, 1, 16, 20)
    shapes = []
    for model in pair:
        with torch.no_grad(), FeatureTaps(model) as taps:
            model(ir, vis)
        shapes.append({name: tuple(f.shape) for name, f in taps.features.items()})
    assert shapes[0] == shapes[1]
    assert shapes[0]["fused"] == (2, 128, 16, 20) and shapes[0]["ir_enc"] == (2, 64, 16, 20)


def test_raw_tanh_output_maps_affinely_to_unit_range(pair) -> None:
    student = pair[1]
    ir, vis = torch.rand(1, 1, 9, 11), torch.rand(1, 1, 9, 11)
    with torch.no_grad():
        raw, fused = student(ir, vis, raw=True), student(ir, vis)
    assert raw.abs().max() < 1
    assert torch.allclose(fused, (raw + 1) / 2)


def test_spade_modulates_with_the_conditioning_image() -> None:
    torch.manual_seed(0)
    spade = SPADE(8, cond_channels=1, hidden=16)
    x = torch.rand(1, 8, 6, 6)
    assert not torch.allclose(spade(x, torch.rand(1, 1, 6, 6)), spade(x, torch.rand(1, 1, 6, 6)))
    assert spade(x, torch.rand(1, 1, 3, 3)).shape == x.shape  # resized condition


def test_eca_kernel_size_and_channel_reweighting() -> None:
    assert (eca_kernel_size(64), eca_kernel_size(128), eca_kernel_size(256)) == (3, 5, 5)
    eca = ECA(128)
    x = torch.rand(2, 128, 4, 4)
    ratio = eca(x) / x
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio))  # one weight per channel
    assert ((ratio > 0) & (ratio < 1)).all()


def test_discriminator_scores_one_value_per_image_of_any_size() -> None:
    torch.manual_seed(0)
    disc = create("scakd-discriminator", weights=None)
    assert disc(torch.rand(3, 1, 64, 64)).shape == (3, 1)
    assert disc(torch.rand(2, 1, 37, 45)).shape == (2, 1)
    with pytest.raises(ValueError):
        disc(torch.rand(2, 3, 32, 32))
