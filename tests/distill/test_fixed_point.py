"""The fixed-point property of every recipe's distillers on the teacher's own architecture: a student
that *is* a copy of the teacher must see zero distillation loss and gradient (a distiller that pushed a
perfect student away would teach the wrong thing)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from distilfuse.distill import DistillBatch, build_distiller
from distilfuse.models import FeatureTaps, create
from distilfuse.train.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Recipes whose teacher is a fusion network at the student's scale (HKDnet's SR students differ in kind).
RECIPES = ["mmdr.yaml", "mmdr_official.yaml", "mmdr_select.yaml", "mmdr_select_stretch.yaml"]
RECIPES += ["mmdr_select_valstretch.yaml", "mmdr_mini_select.yaml", "mmdr_mini_corr.yaml", "mmdr_corr.yaml"]
RECIPES += ["mlkd_ship.yaml", "mlkd_mmdr.yaml", "scakd.yaml"]


def as_self_distillation(spec: dict) -> dict:
    """The recipe's distiller with every student feature replaced by its teacher partner."""
    spec = {k: v for k, v in spec.items() if k != "name"}
    spec["pairs"] = [[t, t] for _, t in spec.get("pairs", [])]
    return spec


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_copy_of_the_teacher_gets_no_distillation_gradient(recipe: str) -> None:
    cfg = load_config(CONFIGS / recipe)
    torch.manual_seed(0)
    teacher = create(cfg["teacher"]["name"], weights=None).eval()
    student = copy.deepcopy(teacher).requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    ir, vis = torch.rand(2, 1, 32, 32, generator=g), torch.rand(2, 1, 32, 32, generator=g)
    for spec in cfg["distillers"]:
        distiller = build_distiller(as_self_distillation(spec), student, teacher)
        with FeatureTaps(student, distiller.student_features) as s_taps:
            s_out = student(ir, vis, raw=True)
        with torch.no_grad(), FeatureTaps(teacher, distiller.teacher_features) as t_taps:
            t_out = teacher(ir, vis, raw=True)
        if getattr(distiller, "target", None) == "clamp":  # the target is a fused image, in [0,1]
            s_out = s_out.clamp(0.0, 1.0)
        terms = distiller(DistillBatch(s_taps.features, t_taps.features, s_out, t_out, ir, vis))
        total = sum(terms.values())
        params = [p for p in student.parameters() if p.requires_grad]
        grads = torch.autograd.grad(total, params, allow_unused=True)
        norm = torch.sqrt(sum((gr**2).sum() for gr in grads if gr is not None))
        assert float(total.detach()) == pytest.approx(0.0, abs=1e-6), terms
        assert float(norm) < 1e-5, f"{spec['type']}: gradient {float(norm):.3g} pushes a perfect student away"
