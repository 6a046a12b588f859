"""HKDnet teacher and students: spec parameter counts, official key layout, shapes, features, checkpoints."""

from __future__ import annotations

import pytest
import torch

from distilfuse.models import FeatureTaps, count_parameters, create
from distilfuse.models.blocks.corner import corner_mask
from distilfuse.models.blocks.densefuse import ActivityRatioFusion, SpatialSoftmaxFusion
from distilfuse.models.blocks.rcan import ResidualGroup
from distilfuse.models.students.hkd import (
    CornerEmbeddingAttention,
    DualFrequencyAttention,
    DualFrequencyAttentionGroup,
    HKDStudent,
    PaperCornerEmbeddingAttention,
    StudentFusion,
    StudentSR,
)

LR = 12  # tiny LR inputs: the students hold ~11 M parameters


@pytest.fixture(scope="module")
def students() -> dict[int, HKDStudent]:
    torch.manual_seed(0)
    return {s: create(f"hkd-student-x{s}", weights=None) for s in (2, 3, 4)}


@pytest.fixture(scope="module")
def teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return create("hkd-teacher", weights=None)


def test_submodule_parameter_counts_match_spec(students) -> None:
    assert count_parameters(ResidualGroup(64, 9)) == 706_852
    assert count_parameters(DualFrequencyAttentionGroup(64)) == 1_593_718
    assert count_parameters(CornerEmbeddingAttention(64)) == 247_954
    fusion = students[2].fusion
    assert count_parameters(fusion) == 3_472_544
    assert count_parameters(fusion.body_i) == 2_337_498
    assert count_parameters(fusion.body_v) == 991_734
    assert sum(count_parameters(getattr(fusion, f"conv{i}")) for i in (5, 6, 7, 8)) == 96_944
    assert count_parameters(fusion.conv) == 36_928
    assert {s: count_parameters(m.sr) for s, m in students.items()} == {
        2: 7_831_537,
        3: 8_016_177,
        4: 7_979_249,
    }
    assert count_parameters(students[2]) == 11_304_081


@pytest.mark.parametrize("name", ["hkd-teacher", "hkd-teacher-skip"])
def test_teacher_parameter_counts_match_spec(name: str) -> None:
    teacher = create(name, weights=None)
    parts = {name: count_parameters(getattr(teacher, name)) for name in ("conv1", "DB1", "conv2", "conv3", "conv4")}
    assert parts == {"conv1": 160, "DB1": 13_872, "conv2": 36_928, "conv3": 18_464, "conv4": 4_624}
    assert count_parameters(teacher.conv5) == 145 and count_parameters(teacher) == 74_193


def test_official_key_layout(students, teacher) -> None:
    keys = set(students[4].state_dict())
    for key in (
        "fusion.conv1.conv2d.weight",
        "fusion.body_i.0.body.8.body.3.conv_du.2.bias",
        "fusion.body_i.1.body.5.gamma",
        "fusion.body_i.1.body.6.weight",
        "fusion.body_v.1.poa.query_conv.weight",
        "fusion.body_v.1.cha.gamma",
        "fusion.body_v.1.coa.conv.0.bias",
        "fusion.body_v.1.convp6.1.running_var",
        "fusion.body_v.1.conv8.1.weight",
        "fusion.conv.weight",
        "sr.head.0.weight",
        "sr.body.4.body.19.body.2.weight",
        "sr.body.5.bias",
        "sr.uperfe.2.weight",
        "sr.tail.weight",
        "sr.result.0.bias",
    ):
        assert key in keys, key
    assert "DB1.denseblock.2.dense_conv.conv2d.weight" in teacher.state_dict()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_student_output_is_scale_times_lr(students, scale: int) -> None:
    ir, vis = torch.rand(1, 1, LR, LR - 3), torch.rand(1, 1, LR, LR - 3)
    with torch.no_grad():
        out = students[scale](ir, vis)
    assert out.shape == (1, 1, scale * LR, scale * (LR - 3))
    assert out.min() >= 0 and out.max() <= 1


def test_student_features_have_documented_shapes(students) -> None:
    model = students[2]
    ir, vis = torch.rand(2, 1, LR, LR), torch.rand(2, 1, LR, LR)
    with torch.no_grad(), FeatureTaps(model) as taps:
        raw = model(ir, vis, raw=True)
    shapes = {name: tuple(f.shape) for name, f in taps.features.items()}
    assert shapes == {
        "enc_ir": (2, 64, LR, LR),
        "enc_vis": (2, 64, LR, LR),
        "fusion_feature": (2, 16, LR, LR),
        "sr_uper_fe": (2, 64, 2 * LR, 2 * LR),
        "sr_feature": (2, 16, 2 * LR, 2 * LR),
        "sr_image": (2, 1, 2 * LR, 2 * LR),
    }
    assert torch.equal(taps.features["sr_image"], raw)
    assert not torch.equal(taps.features["enc_ir"], taps.features["enc_vis"])


def test_teacher_decodes_the_eq5_residual_sum(teacher) -> None:
    ir, vis = torch.rand(2, 1, 20, 17), torch.rand(2, 1, 20, 17)
    with torch.no_grad(), FeatureTaps(teacher) as taps:
        raw = teacher(ir, vis, raw=True)
        enc_ir, enc_vis = teacher.DB1(teacher.conv1(ir)), teacher.DB1(teacher.conv1(vis))
        fused = ActivityRatioFusion()(enc_ir, enc_vis)
        x2 = teacher.conv2(enc_ir + 0.5 * enc_vis + fused)  # eq. 5, alpha = 0.5
    f = taps.features
    assert torch.allclose(f["fused"], fused) and torch.allclose(f["x2"], x2)
    assert torch.allclose(f["out_fe"], teacher.conv4(teacher.conv3(x2)))
    assert torch.equal(f["result"], raw) and raw.min() >= 0


def test_teacher_features_and_skip() -> None:
    torch.manual_seed(0)
    teacher = create("hkd-teacher-skip", weights=None)
    ir, vis = torch.rand(2, 1, 20, 17), torch.rand(2, 1, 20, 17)
    with torch.no_grad(), FeatureTaps(teacher) as taps:
        raw = teacher(ir, vis, raw=True)
        skip = SpatialSoftmaxFusion()(teacher.conv1(ir), teacher.conv1(vis))
        decoded = teacher.conv4(teacher.conv3(taps.features["x2"]))
    f = taps.features
    assert f["x2"].shape == (2, 64, 20, 17) and f["out_fe"].shape == (2, 16, 20, 17)
    assert f["enc_ir"].shape == f["enc_vis"].shape == (2, 64, 20, 17)
    assert torch.allclose(f["out_fe"], skip + decoded)
    assert torch.equal(f["result"], raw) and raw.min() >= 0


def test_spatial_softmax_fusion_weights() -> None:
    a, b = torch.rand(1, 4, 5, 5), torch.rand(1, 4, 5, 5)
    fuse = SpatialSoftmaxFusion()
    assert torch.allclose(fuse(a, a), a)
    w_a = torch.sigmoid(a.mean(1, keepdim=True) - b.mean(1, keepdim=True))
    assert torch.allclose(fuse(a, b), w_a * a + (1 - w_a) * b, atol=1e-6)


def test_activity_ratio_fusion_hand_value() -> None:
    a = torch.zeros(1, 2, 1, 3)
    a[0, :, 0, 0], a[0, :, 0, 1] = torch.tensor([1.0, -2.0]), torch.tensor([1.0, 0.0])  # l1 activity (3, 1, 0)
    b = torch.zeros(1, 2, 1, 3)
    b[0, :, 0, 1], b[0, :, 0, 2] = torch.tensor([0.0, -1.0]), torch.tensor([3.0, 0.0])  # activity (0, 1, 3)
    # 3x3 means inside a 1-row image (over 2, 3, 2 pixels): M_a = (2, 4/3, 1/2), M_b = (1/2, 4/3, 2)
    w_a = torch.tensor([0.8, 0.5, 0.2])
    out = ActivityRatioFusion()(a, b)
    assert torch.allclose(out, w_a * a + (1 - w_a) * b)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.8, -1.6]))
    assert torch.allclose(ActivityRatioFusion()(a, a), a)  # equal inputs pass through (auto-encoder training)


def test_unknown_teacher_form_is_refused() -> None:
    with pytest.raises(ValueError, match="form must be one of"):
        create("hkd-teacher", weights=None, form="dense")


def test_dfa_outputs_zero_at_initialisation_and_dfag_is_residual() -> None:
    torch.manual_seed(0)
    x = torch.rand(1, 16, 6, 6)
    assert torch.count_nonzero(DualFrequencyAttention(16)(x)) == 0
    group = DualFrequencyAttentionGroup(16)
    last_conv = group.body[-1]
    assert torch.allclose(group(x), x + last_conv.bias.view(1, -1, 1, 1).expand_as(x))


def test_cea_is_deterministic_in_eval_mode() -> None:
    torch.manual_seed(0)
    cea = CornerEmbeddingAttention(16).eval()
    x = torch.rand(2, 16, 7, 9)
    with torch.no_grad():
        assert torch.equal(cea(x), cea(x))


def test_official_checkpoint_dicts_convert_and_load_strictly(students) -> None:
    model = students[3]
    state = model.state_dict()
    official = {
        "Sec_Fusionnet_state_dict": {k.removeprefix("fusion."): v for k, v in state.items() if k.startswith("fusion.")},
        "srnet_state_dict": {k.removeprefix("sr."): v for k, v in state.items() if k.startswith("sr.")},
        "epoch": 250,
    }
    assert set(StudentFusion().state_dict()) == set(official["Sec_Fusionnet_state_dict"])
    assert set(StudentSR(3).state_dict()) == set(official["srnet_state_dict"])
    fresh = HKDStudent(scale=3)
    fresh.load_state_dict(HKDStudent.convert_state_dict(official), strict=True)
    flattened = {f"{part}.{k}": v for part in official if part != "epoch" for k, v in official[part].items()}
    assert HKDStudent.convert_state_dict(flattened).keys() == state.keys()
    assert HKDStudent.convert_state_dict(state).keys() == state.keys()
    assert all(torch.equal(tensor, state[key]) for key, tensor in fresh.state_dict().items())


def test_unsupported_scale_raises() -> None:
    with pytest.raises(ValueError, match="scale"):
        StudentSR(5)


def test_paper_form_student_parameter_counts() -> None:
    assert count_parameters(PaperCornerEmbeddingAttention(64)) == 3 * (64 * 64 + 64) + 1  # three 1x1 convs, beta
    fusion = StudentFusion(paper=True)
    assert len([m for m in fusion.body_v if isinstance(m, ResidualGroup)]) == 2  # two cascaded RGs before CEA
    assert count_parameters(fusion) == 3_472_544 - 247_954 + 12_481 + 706_852
    assert count_parameters(create("hkd-student-x2-paper", weights=None)) == 3_943_923 + 7_831_537
    assert isinstance(fusion.fuse, ActivityRatioFusion) and isinstance(StudentFusion().fuse, SpatialSoftmaxFusion)


def _identity_1x1(conv: torch.nn.Conv2d) -> None:
    torch.nn.init.ones_(conv.weight)
    torch.nn.init.zeros_(conv.bias)


def test_paper_cea_hand_value() -> None:
    cea = PaperCornerEmbeddingAttention(1)
    for conv in (cea.conv_b, cea.coa_conv, cea.out):
        _identity_1x1(conv)
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    e = torch.e
    # beta = 0: F_COA = F_b; Omega = column softmax of x_i x_j: column 0 (e, 1, 1, 1) / (e + 3), others 1/4,
    # so F_b Omega = (e / (e + 3), 1/4, 1/4, 1/4); Psi = softmax([[1]]) = 1, F_CHA = 2 F_b
    expected = torch.tensor([1 + (1 + e / (e + 3)) + 2, 0.25, 0.25, 0.25]).view(1, 1, 2, 2)
    with torch.no_grad():
        assert torch.allclose(cea(x), expected)
        cea.beta.fill_(1.0)  # eq. 9: beta B M, the Harris mask without dilation
        assert torch.allclose(cea(x) - expected, x * corner_mask(x, 0.7, dilate=False))


def test_paper_dfa_weights_d3_of_the_rcab_output() -> None:
    torch.manual_seed(0)
    dfa = DualFrequencyAttention(16, paper=True)
    x = torch.rand(1, 16, 5, 5)
    with torch.no_grad():
        dfa.gamma.fill_(1.0)
        d = dfa.body(x)
        expected = dfa.conv3(d) * torch.softmax(dfa.conv1(d) * dfa.conv2(d), dim=-1)  # eqs. 6-7
        assert torch.allclose(dfa(x), expected)
        official = DualFrequencyAttention(16)
        official.load_state_dict(dfa.state_dict())
        assert not torch.allclose(official(x), expected)  # the official code takes D3 from D2


def test_paper_form_student_runs_at_scale() -> None:
    model = create("hkd-student-x3-paper", weights=None)
    with torch.no_grad():
        out = model(torch.rand(1, 1, LR, LR), torch.rand(1, 1, LR, LR))
    assert out.shape == (1, 1, 3 * LR, 3 * LR)
    with pytest.raises(ValueError, match="form must be one of"):
        HKDStudent(2, form="dense")


@pytest.mark.parametrize("name", ["hkd-teacher", "hkd-teacher-skip"])
def test_a_fresh_teacher_can_learn_its_output_relu_is_not_dead(name: str) -> None:
    # conv5's ReLU on one channel: with a negative initial bias the output was 0 everywhere for seed 0 (the
    # recipe's), no gradient reached any weight and configs/hkd_teacher.yaml could not train at all.
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    for seed in range(6):
        torch.manual_seed(seed)
        model = create(name, weights=None).train()
        out = model(x, x, raw=True)
        assert (out > 0).float().mean() > 0.9, f"seed {seed}: output ReLU dead"
        out.mean().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters()), f"seed {seed}"
