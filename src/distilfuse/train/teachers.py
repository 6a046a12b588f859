"""The recipe's teacher section -> the frozen teacher module: one model, or an ensemble of several."""

from __future__ import annotations

from typing import Any

from torch import nn

from distilfuse.models import create
from distilfuse.models.teachers.ensemble import TeacherEnsemble


def build_teacher(spec: dict[str, Any]) -> nn.Module:
    """``{name, weights}`` -> that model; ``{members: [{name, weights}, ...]}`` -> a TeacherEnsemble."""
    members = spec.get("members")
    if not members:
        return create(spec["name"], weights=spec.get("weights", "default"))
    return TeacherEnsemble({m["name"]: create(m["name"], weights=m.get("weights", "default")) for m in members})
