"""The mmdr distiller equals a direct transcription of spec §1.4, on fakes and on the MMDRFuse pair."""

from __future__ import annotations

import pytest
import torch

from distilfuse.distill import DistillBatch, build_distiller
from distilfuse.models import FeatureTaps, create, list_models
from tests.conftest import shared_file
from tests.distill.fakes import FakeStudent, FakeTeacher


def spec_transcription(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """architectures.md §1.4, step by step."""
    total = torch.zeros(())
    for student, teacher in pairs:
        s_map = student.sum(dim=1)  # 1. sum over channels -> (B, H, W)
        t_map = teacher.sum(dim=1)
        # 2. divide by the Frobenius norm of the whole batch tensor
        s_map = s_map / torch.linalg.matrix_norm(s_map.flatten(1), ord="fro")
        t_map = t_map / torch.linalg.matrix_norm(t_map.flatten(1), ord="fro")
        total = total + ((s_map - t_map) ** 2).sum()  # 3. sum of squared differences
    return 5 * total / 2  # 4. sum over pairs, / 2, weight 5


def distil(student, teacher, spec, ir, vis):
    distiller = build_distiller(spec, student, teacher)
    with FeatureTaps(student, distiller.student_features) as s_taps:
        s_out = student(ir, vis, raw=True)
    with torch.no_grad(), FeatureTaps(teacher, distiller.teacher_features) as t_taps:
        t_out = teacher(ir, vis, raw=True)
    terms = distiller(DistillBatch(s_taps.features, t_taps.features, s_out, t_out, ir, vis))
    return distiller, terms, s_taps.features, t_taps.features, s_out, t_out


def test_matches_spec_on_fakes() -> None:
    torch.manual_seed(0)
    ir, vis = torch.rand(3, 1, 12, 12), torch.rand(3, 1, 12, 12)
    spec = {"type": "mmdr", "pairs": [["f1", "g3"]]}
    _, terms, s, t, s_out, t_out = distil(FakeStudent(), FakeTeacher(), spec, ir, vis)
    expected = spec_transcription([(s["f1"], t["g3"]), (s_out, t_out)])
    torch.testing.assert_close(sum(terms.values()), expected, rtol=1e-6, atol=0)


MMDR_PAIR = {"mmdr-mini", "mmdr-teacher"}


@pytest.mark.skipif(not MMDR_PAIR <= set(list_models()), reason="mmdr-mini / mmdr-teacher not registered")
@pytest.mark.parametrize("official", [False, True], ids=["fresh", "official-weights"])
def test_mmdr_mini_from_mmdr_teacher(official: bool) -> None:
    if official:
        student = create("mmdr-mini", weights=shared_file("weights/mmdrfuse/student.model"))
        teacher = create("mmdr-teacher", weights=shared_file("weights/mmdrfuse/teacher.model"))
    else:
        torch.manual_seed(0)
        student, teacher = create("mmdr-mini", weights=None), create("mmdr-teacher", weights=None)
    ir, vis = torch.rand(2, 1, 24, 30), torch.rand(2, 1, 24, 30)
    spec = {"type": "mmdr", "weight": 5.0, "pairs": [["feat1", "feat11"]]}
    distiller, terms, s, t, s_out, t_out = distil(student, teacher, spec, ir, vis)
    assert len(distiller.adapters) == 0 and set(terms) == {"mmdr:feat1/feat11", "mmdr:out"}
    expected = spec_transcription([(s["feat1"], t["feat11"]), (s_out, t_out)])
    torch.testing.assert_close(sum(terms.values()), expected, rtol=1e-6, atol=0)
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in student.parameters())
