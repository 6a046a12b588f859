"""Several teachers as one: stacked outputs, prefixed feature taps, clear errors."""

from __future__ import annotations

import pytest
import torch
from tests.distill.fakes import FakeStudent, FakeTeacher

from distilfuse.models import FeatureTaps
from distilfuse.models.teachers.ensemble import TeacherEnsemble


def test_outputs_are_stacked_in_member_order_and_features_prefixed() -> None:
    torch.manual_seed(0)
    a, b = FakeTeacher(), FakeStudent()
    ensemble = TeacherEnsemble({"a": a, "b": b})
    ir, vis = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    with FeatureTaps(ensemble, ["a.g2", "b.f1"]) as taps:
        out = ensemble(ir, vis, raw=True)
    assert out.shape == (2, 2, 16, 16)
    assert torch.equal(out[:, :1], a(ir, vis, raw=True)) and torch.equal(out[:, 1:], b(ir, vis, raw=True))
    assert taps.features["a.g2"].shape == (2, 16, 8, 8) and taps.features["b.f1"].shape == (2, 4, 16, 16)


def test_needs_two_members_of_one_output_size() -> None:
    with pytest.raises(ValueError, match="at least two"):
        TeacherEnsemble({"a": FakeTeacher()})

    class Upscaler(FakeStudent):
        def fuse_raw(self, ir, vis):
            return torch.nn.functional.interpolate(super().fuse_raw(ir, vis), scale_factor=2)

    ensemble = TeacherEnsemble({"a": FakeTeacher(), "up": Upscaler()})
    with pytest.raises(ValueError, match="different sizes"):
        ensemble(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
