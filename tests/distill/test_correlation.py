"""The gain-and-offset-free response (`corr`): what it ignores, what it teaches, what it refuses."""

from __future__ import annotations

import pytest
import torch

from distilfuse.distill import DistillBatch, build_distiller
from tests.distill.fakes import FakeStudent, FakeTeacher


def teacher_output(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 36, 36, generator=g), 5, stride=1)
    return smooth  # (2, 1, 32, 32)


def loss_and_grad(spec: dict, student_out: torch.Tensor, t_out: torch.Tensor) -> tuple[float, torch.Tensor]:
    distiller = build_distiller(spec, FakeStudent(), FakeTeacher())
    s = student_out.clone().requires_grad_(True)
    (loss,) = distiller(DistillBatch({}, {}, s, t_out, t_out, t_out)).values()
    (grad,) = torch.autograd.grad(loss, s)
    return float(loss.detach()), grad


@pytest.mark.parametrize("lambda_grad", [0.0, 1.0])
def test_a_student_equal_to_the_teacher_up_to_gain_and_offset_gets_nothing(lambda_grad: float) -> None:
    t = teacher_output()
    spec = {"type": "corr", "lambda_grad": lambda_grad}
    loss, grad = loss_and_grad(spec, 2.5 * t - 0.7, t)
    _, unrelated = loss_and_grad(spec, teacher_output(1), t)
    assert loss == pytest.approx(0.0, abs=1e-5)  # not exact: |Sobel| keeps an eps under its square root
    assert grad.abs().max() < 1e-2 * unrelated.abs().max()


def test_a_different_student_is_pulled_towards_the_teachers_shape() -> None:
    t = teacher_output(0)
    s = teacher_output(1)
    spec = {"type": "corr", "weight": 2.0, "lambda_grad": 1.0}
    loss, grad = loss_and_grad(spec, s, t)
    assert loss > 0.5  # two unrelated smooth fields: both correlations far below 1, times weight 2
    stepped, _ = loss_and_grad(spec, s - 0.5 * grad / grad.abs().max(), t)
    assert stepped < loss
    assert loss_and_grad({**spec, "weight": 1.0}, s, t)[0] == pytest.approx(loss / 2, rel=1e-5)


def test_the_gradient_term_adds_edge_agreement() -> None:
    t = teacher_output(0)
    s = teacher_output(1)
    without, _ = loss_and_grad({"type": "corr", "lambda_grad": 0.0}, s, t)
    with_edges, _ = loss_and_grad({"type": "corr", "lambda_grad": 1.0}, s, t)
    assert with_edges > without


def test_teacher_output_is_resized_to_the_students() -> None:
    t = teacher_output()
    half = torch.nn.functional.avg_pool2d(t, 2)
    loss, _ = loss_and_grad({"type": "corr", "lambda_grad": 0.0}, half, t)
    assert loss == pytest.approx(0.0, abs=2e-2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [({"pairs": [["f1", "g1"]]}, "outputs only"), ({"lambda_grad": -1.0}, "lambda_grad")],
)
def test_bad_settings_are_refused(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_distiller({"type": "corr", **spec}, FakeStudent(), FakeTeacher())
