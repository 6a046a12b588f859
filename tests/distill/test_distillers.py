"""Every registered distiller on tiny fake models: registry, keys, zero/positive, gradients, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distilfuse.distill import DISTILLERS, DistillBatch, Distiller, build_distiller
from distilfuse.models import FeatureTaps
from tests.distill.fakes import FakeStudent, FakeTeacher

# type -> (spec between FakeStudent and FakeTeacher, expected loss keys, adapters expected)
SPECS = {
    "mmdr": ({"pairs": [["f1", "g3"]]}, {"mmdr:f1/g3", "mmdr:out"}, 0),
    "at": ({"pairs": [["f2", "g2"]], "weight": 1000.0}, {"at:f2/g2"}, 0),
    "ic": ({"pairs": [["f1", "g1"]], "grid": 2}, {"ic:f1/g1"}, 1),
    "fg": ({"pairs": [["f1", "g1"]]}, {"fg:focal:f1/g1", "fg:attention:f1/g1", "fg:global:f1/g1"}, 1),
    "sca": ({"pairs": [["f2", "g2"], ["f1", "g3"]], "alpha": [0.8, 0.2]}, {"sca:f2/g2", "sca:f1/g3"}, 1),
    "mlkd": ({"pairs": [["f2", "g2"]]}, {"mlkd:att:f2/g2", "mlkd:sim:f2/g2", "mlkd:out"}, 0),
    "hkd": ({"pairs": [["f1", "g1"]], "fusion_pair": ["f2", "g2"]}, {"hkd:label", "hkd:f1/g1"}, 2),
    "select": ({"include_student": False}, {"select:out"}, 0),
    "corr": ({}, {"corr:out"}, 0),
}
# Self-distillation specs (teacher = a copy of the student): every term must vanish.
SELF_SPECS = {
    "mmdr": {"pairs": [["f1", "f1"], ["f2", "f2"]]},
    "at": {"pairs": [["f1", "f1"], ["f2", "f2"]]},
    "ic": {"pairs": [["f1", "f1"], ["f2", "f2"]], "grid": 2},
    "fg": {"pairs": [["f1", "f1"], ["f2", "f2"]]},
    "sca": {"pairs": [["f1", "f1"], ["f2", "f2"]], "alpha": 0.5},
    "mlkd": {"pairs": [["f1", "f1"], ["f2", "f2"]]},
    "hkd": {"pairs": [["f1", "f1"], ["f2", "f2"]], "fusion_pair": ["f2", "f2"]},
    "select": {},
    "corr": {},
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def inputs(batch: int = 2, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(batch, 1, size, size, generator=g), torch.rand(batch, 1, size, size, generator=g)


def run(distiller: Distiller, student: nn.Module, teacher: nn.Module, batch: int = 2):
    ir, vis = inputs(batch)
    with FeatureTaps(student, distiller.student_features) as s_taps:
        s_out = student(ir, vis, raw=True)
    with FeatureTaps(teacher, distiller.teacher_features) as t_taps:
        t_out = teacher(ir, vis, raw=True)  # not detached on purpose: the distiller must detach
    batch = DistillBatch(s_taps.features, t_taps.features, s_out, t_out, ir, vis)
    return distiller(batch), batch


def test_specs_cover_every_registered_distiller() -> None:
    assert set(SPECS) == set(DISTILLERS) == set(SELF_SPECS)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_builds_from_spec_with_keys_and_positive_losses(kind: str) -> None:
    spec, keys, n_adapters = SPECS[kind]
    student, teacher = FakeStudent(), FakeTeacher()
    distiller = build_distiller({"type": kind, **spec}, student, teacher)
    assert len(distiller.adapters) == n_adapters
    student_params = {id(p) for p in student.parameters()}
    assert not student_params & {id(p) for p in distiller.parameters()}, "adapters live apart from the student"
    terms, _ = run(distiller, student, teacher)
    assert set(terms) == keys
    for key, value in terms.items():
        assert value.shape == () and torch.isfinite(value) and value > 0, key


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_gradients_reach_student_and_adapters_not_teacher(kind: str) -> None:
    spec, _, _ = SPECS[kind]
    student, teacher = FakeStudent(), FakeTeacher()
    distiller = build_distiller({"type": kind, **spec}, student, teacher)
    terms, _ = run(distiller, student, teacher)
    sum(terms.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    assert all(p.grad is None for p in teacher.parameters()), "no gradient may reach the teacher"
    for s_name, t_name in distiller.pairs:
        key = distiller.adapter_key(s_name, t_name)
        if key in distiller.adapters:
            assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in distiller.adapters[key].parameters())


@pytest.mark.parametrize("kind", sorted(SELF_SPECS))
def test_zero_when_student_equals_teacher(kind: str) -> None:
    student = FakeStudent()
    twin = FakeStudent()
    twin.load_state_dict(student.state_dict())
    distiller = build_distiller({"type": kind, **SELF_SPECS[kind]}, student, twin)
    assert len(distiller.adapters) == 0
    terms, _ = run(distiller, student, twin)
    assert terms
    for key, value in terms.items():
        assert value.item() == pytest.approx(0.0, abs=1e-6), key


def test_feature_errors_name_the_available_features() -> None:
    student, teacher = FakeStudent(), FakeTeacher()
    with pytest.raises(KeyError, match=r"student FakeStudent has no feature 'nope'.*'f1', 'f2'"):
        build_distiller({"type": "at", "pairs": [["nope", "g1"]]}, student, teacher)
    with pytest.raises(KeyError, match=r"teacher FakeTeacher has no feature 'g9'.*'g1'"):
        build_distiller({"type": "mlkd", "pairs": [["f1", "g9"]]}, student, teacher)
    distiller = build_distiller({"type": "at", "pairs": [["f1", "g1"]]}, student, teacher)
    feats = {"f1": torch.rand(2, 4, 8, 8)}
    out = torch.rand(2, 1, 8, 8)
    with pytest.raises(KeyError, match="teacher feature 'g1' missing"):
        distiller(DistillBatch(feats, {}, out, out, out, out))
    with pytest.raises(ValueError, match="same batch size"):
        distiller(DistillBatch(feats, {"g1": torch.rand(3, 8, 8, 8)}, out, out, out, out))
    mmdr = build_distiller({"type": "mmdr", "pairs": [["f1", "g3"]]}, student, teacher)
    with pytest.raises(ValueError, match="outputs must be"):
        mmdr(DistillBatch({"f1": feats["f1"]}, {"g3": torch.rand(2, 4, 8, 8)}, out, torch.rand(3, 1, 8, 8), out, out))


def test_spec_errors() -> None:
    student, teacher = FakeStudent(), FakeTeacher()
    with pytest.raises(KeyError, match="unknown distiller 'kd'.*mmdr"):
        build_distiller({"type": "kd"}, student, teacher)
    with pytest.raises(ValueError, match="unknown parameter.*'alpah'"):
        build_distiller({"type": "sca", "pairs": [["f1", "g1"]], "alpah": 0.2}, student, teacher)
    with pytest.raises(ValueError, match=r"\[student_feature, teacher_feature\]"):
        build_distiller({"type": "at", "pairs": ["f1"]}, student, teacher)
    with pytest.raises(ValueError, match="one per pair"):
        build_distiller({"type": "sca", "pairs": [["f1", "g1"]], "alpha": [0.8, 0.2]}, student, teacher)
    with pytest.raises(ValueError, match="at least one feature pair"):
        build_distiller({"type": "fg"}, student, teacher)
    with pytest.raises(ValueError, match="needs a fusion_pair"):
        build_distiller({"type": "hkd", "stage": "fusion"}, student, teacher)
    with pytest.raises(ValueError, match="stage must be"):
        build_distiller({"type": "hkd", "stage": "both"}, student, teacher)


def test_probe_leaves_batchnorm_and_modes_untouched() -> None:
    student = FakeStudent(norm=True).train()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    build_distiller({"type": "ic", "pairs": [["f1", "g1"]]}, student, FakeTeacher().eval())
    assert student.training and student.norm.training
    for key, value in student.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_hkd_stage_switch_changes_tapped_features_and_terms() -> None:
    student, teacher = FakeStudent(), FakeTeacher()
    distiller = build_distiller(SPECS["hkd"][0] | {"type": "hkd"}, student, teacher)
    assert distiller.student_features == ["f1"] and distiller.teacher_features == ["g1"]
    distiller.stage = "fusion"
    assert distiller.student_features == ["f2"] and distiller.teacher_features == ["g2"]
    terms, _ = run(distiller, student, teacher)
    assert set(terms) == {"hkd:fusion:f2/g2"}


def test_teacher_maps_of_another_size_are_resized_to_the_student() -> None:
    student, teacher = FakeStudent(), FakeTeacher()
    distiller = build_distiller({"type": "hkd", "pairs": [["f2", "g2"]]}, student, teacher)
    _, batch = run(distiller, student, teacher)
    assert batch.teacher_feats["g2"].shape[-1] == batch.student_feats["f2"].shape[-1] // 2
    s, t = distiller.gather(batch, "f2", "g2")
    assert s.shape == t.shape == (2, 16, 16, 16)
    assert not t.requires_grad


def test_half_precision_teacher_maps_are_upcast() -> None:
    # float16 sums of a batch overflow (max 65504): the mmdr norm must still be finite and equal to float32's.
    student, teacher = FakeStudent(), FakeTeacher()
    distiller = build_distiller({"type": "mmdr", "pairs": [["f1", "g3"]], "name": "mmdr_half"}, student, teacher)
    s = torch.full((8, 4, 64, 64), 2.0)
    t = torch.rand(8, 4, 64, 64) * 4
    out = torch.rand(8, 1, 64, 64)
    full = distiller(DistillBatch({"f1": s}, {"g3": t}, out, out, out, out))
    half = distiller(DistillBatch({"f1": s}, {"g3": t.half()}, out, out.half(), out, out))
    assert set(half) == {"mmdr_half:f1/g3", "mmdr_half:out"}
    for key, value in half.items():
        assert value.dtype == torch.float32 and torch.isfinite(value), key
        assert value.item() == pytest.approx(full[key].item(), rel=1e-3, abs=1e-6), key
