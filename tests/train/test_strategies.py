"""Strategies alone, against a stand-in for the loop (they see it only through `TrainingContext`)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from distilfuse.train.distributed import DistContext
from distilfuse.train.strategies import STRATEGIES, Phase, TrainingContext


class StandIn:
    """A TrainingContext without models or data: fixed loss terms, and a record of the optimisations asked for."""

    def __init__(self, epochs: int) -> None:
        self.cfg: dict[str, Any] = {"train": {"epochs": epochs}, "distillers": [{"type": "hkd"}], "optimizer": {}}
        self.device = torch.device("cpu")
        self.dist = DistContext()
        self.student = nn.Module()
        self.student.fusion = nn.Conv2d(1, 1, 1)
        self.epoch = 0
        self.optimized: list[tuple[float, str]] = []

    @property
    def pool(self) -> list[int]:
        return list(range(8))

    def build_distillers(self, specs: list[dict[str, Any]]) -> list[str]:
        return [spec.get("name") or spec["type"] for spec in specs]

    def phase_parameters(self, phase: Phase) -> list[nn.Parameter]:
        return list(self.student.parameters())

    def build_optimizer(self, params: list[nn.Parameter], spec: dict[str, Any] | None = None) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=0.1)

    def autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def student_inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        return batch["ir"], batch["vis"]

    def run_student(self, ir: Tensor, vis: Tensor, features: Any = ()) -> tuple[Tensor, dict[str, Tensor]]:
        return torch.maximum(ir, vis), {}

    def generator_terms(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return batch["ir"], {"a": torch.tensor(1.0), "b": torch.tensor(2.0)}

    def loss_space(self, raw: Tensor) -> Tensor:
        return raw

    def optimize(self, loss: Tensor, name: str) -> None:
        self.optimized.append((float(loss), name))


def test_the_stand_in_is_a_training_context() -> None:
    members = {m for m in vars(TrainingContext) if not m.startswith("_")} | set(TrainingContext.__annotations__)
    assert members <= set(dir(StandIn(epochs=1)))


def test_plain_step_optimizes_the_sum_of_its_terms() -> None:
    context = StandIn(epochs=2)
    strategy = STRATEGIES["plain"](context, {"name": "plain"})
    batch = {"ir": torch.zeros(1, 1, 4, 4), "vis": torch.ones(1, 1, 4, 4)}
    terms, extras = strategy.step([batch])
    assert set(terms) == {"a", "b"} and extras == {} and context.optimized == [(3.0, "student")]
    assert strategy.phase_for(1) is strategy.phase_for(0) and strategy.phase_for(0).distillers == ["hkd"]
    assert set(strategy.build_optimizers(strategy.phase_for(0))) == {"student"}


def test_two_stage_sr_phases() -> None:
    spec = {
        "name": "two_stage_sr",
        "scale": 2,
        "fusion_epochs": 1,
        "fusion_module": "fusion",
        "fusion_distillers": [{"type": "hkd", "name": "hkd_fusion"}],
    }
    strategy = STRATEGIES["two_stage_sr"](StandIn(epochs=3), spec)
    phases = [strategy.phase_for(e) for e in range(3)]
    described = [(p.name, p.epochs, p.distillers, p.module, p.teacher_scale, p.task_losses) for p in phases]
    assert described == [("fusion", 1, ["hkd_fusion"], "fusion", 2, False)] + [("sr", 2, ["hkd"], "", 1, True)] * 2
    with pytest.raises(ValueError, match=r"fusion_epochs must be between 1 and train.epochs - 1 \(2\)"):
        STRATEGIES["two_stage_sr"](StandIn(epochs=3), {**spec, "fusion_epochs": 3})
