"""The quality-selected response target: the score, the per-pixel choice, the student gate."""

from __future__ import annotations

import pytest
import torch

from distilfuse.distill import DistillBatch, build_distiller
from distilfuse.distill.select import local_quality, select_target
from tests.distill.fakes import FakeStudent, FakeTeacher


def textured(size: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, size, size, generator=g)


def test_hard_selection_takes_the_best_candidate_per_pixel() -> None:
    candidates = torch.tensor([[[[0.1, 0.2]], [[0.7, 0.9]]]])  # (1, 2, 1, 2)
    scores = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.3]]]])
    assert select_target(candidates, scores, 0.0).flatten().tolist() == pytest.approx([0.1, 0.9])


def test_soft_selection_is_the_softmax_blend() -> None:
    candidates = torch.tensor([[[[0.0]], [[1.0]]]])
    scores = torch.tensor([[[[0.0]], [[0.1]]]])
    expected = torch.softmax(torch.tensor([0.0, 1.0]), 0)[1].item()  # temperature 0.1: logits 0 and 1
    assert select_target(candidates, scores, 0.1).item() == pytest.approx(expected)


def test_score_of_the_sources_themselves_and_of_a_flat_image() -> None:
    img = textured()
    same = local_quality(img, img, img)
    assert torch.allclose(same, torch.full_like(same, 2.0), atol=1e-2), "SSIM 1 + all of the gradient kept"
    flat = local_quality(torch.full_like(img, img.mean().item()), img, img)
    assert flat.max() < 0.05, "no structure and no gradient"
    assert local_quality(img, img, img, gradient_weight=0.0).mean() == pytest.approx(1.0, abs=1e-4)


def test_target_follows_whichever_candidate_fuses_each_region_better() -> None:
    src = textured(64)
    blurred = torch.nn.functional.avg_pool2d(src, 5, stride=1, padding=2)
    left = torch.zeros_like(src, dtype=torch.bool)
    left[..., :32] = True
    a = torch.where(left, src, blurred)  # exact on the left half
    b = torch.where(left, blurred, src)  # exact on the right half
    candidates = torch.cat([a, b], dim=1)
    target = select_target(candidates, local_quality(candidates, src, src), 0.0)
    inner = (slice(None), slice(None), slice(8, 56))
    assert torch.equal(target[(*inner, slice(4, 24))], src[(*inner, slice(4, 24))])
    assert torch.equal(target[(*inner, slice(40, 60))], src[(*inner, slice(40, 60))])


def test_a_student_better_than_the_teachers_is_its_own_target() -> None:
    student, teacher = FakeStudent(), FakeTeacher()
    src = textured(32)
    flat_teacher = torch.full_like(src, 0.5).expand(2, 1, 32, 32)
    batch = DistillBatch({}, {}, src.expand(2, 1, 32, 32), flat_teacher, src.expand(2, 1, 32, 32),
                         src.expand(2, 1, 32, 32))  # fmt: skip
    gated = build_distiller({"type": "select"}, student, teacher)
    assert gated(batch)["select:out"].item() == pytest.approx(0.0, abs=1e-7)
    ungated = build_distiller({"type": "select", "include_student": False}, student, teacher)
    assert ungated(batch)["select:out"].item() > 0.1


def test_spec_errors() -> None:
    student, teacher = FakeStudent(), FakeTeacher()
    with pytest.raises(ValueError, match="pairs must be empty"):
        build_distiller({"type": "select", "pairs": [["f1", "g1"]]}, student, teacher)
    with pytest.raises(ValueError, match="window odd"):
        build_distiller({"type": "select", "window": 4}, student, teacher)
    with pytest.raises(ValueError, match="image must be clamp or stretch"):
        build_distiller({"type": "select", "image": "unit"}, student, teacher)


@pytest.mark.parametrize("image", ["clamp", "stretch"])
def test_stretched_images_ignore_the_raw_outputs_range(image: str) -> None:
    """With `image: stretch` the loss sees outputs as a stretching protocol scores them: an affine map of the
    student's raw output (here a dim, shifted copy) changes nothing; with `clamp` it does."""
    src, other = textured(32), textured(32, seed=1)
    student_out = (0.6 * src + 0.4 * other).expand(2, 1, 32, 32)
    teacher_out = torch.maximum(src, other).expand(2, 1, 32, 32)
    distiller = build_distiller({"type": "select", "image": image}, FakeStudent(), FakeTeacher())

    def loss(s_out: torch.Tensor, t_out: torch.Tensor) -> float:
        batch = DistillBatch({}, {}, s_out, t_out, src.expand(2, 1, 32, 32), other.expand(2, 1, 32, 32))
        return distiller(batch)["select:out"].item()

    base = loss(student_out, teacher_out)
    assert base > 0.01
    moved = loss(0.2 * student_out - 0.3, 0.5 * teacher_out + 0.25)
    if image == "stretch":
        assert moved == pytest.approx(base, rel=1e-4)
    else:
        assert abs(moved - base) > 0.01
