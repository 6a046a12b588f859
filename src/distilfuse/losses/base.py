"""Task losses: the TaskLoss surface, the name registry and the composite the engine sums."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from torch import Tensor, nn

from distilfuse.losses.functional import check_image

LOSSES: dict[str, type[TaskLoss]] = {}


def register_loss(name: str):
    """Class decorator registering a TaskLoss under ``name`` (the spec's "type")."""

    def decorate(cls: type[TaskLoss]) -> type[TaskLoss]:
        if name in LOSSES and LOSSES[name] is not cls:
            raise ValueError(f"loss name {name!r} registered twice")
        LOSSES[name] = cls
        return cls

    return decorate


class TaskLoss(nn.Module):
    """A loss on the fused image against the sources; ``forward`` returns the UNWEIGHTED scalar.

    Inputs are (B,1,H,W) in [0,1] (``fused`` may be raw/unclamped). ``weight`` is applied by
    ``CompositeLoss`` (or by whoever sums the terms).
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = float(weight)

    @staticmethod
    def check_inputs(fused: Tensor, ir: Tensor, vis: Tensor) -> None:
        for name, t in (("fused", fused), ("ir", ir), ("vis", vis)):
            check_image(t, name)
        if not fused.shape == ir.shape == vis.shape:
            raise ValueError(
                "fused, ir and vis must have the same (B,C,H,W) shape, got "
                f"{tuple(fused.shape)}, {tuple(ir.shape)}, {tuple(vis.shape)}"
            )

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        raise NotImplementedError


def check_params(cls: type, params: dict[str, Any], kind: str, name: str) -> None:
    """Reject spec keys the constructor does not take, naming the accepted ones."""
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in signature.parameters if p != "self"]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"{kind} {name!r}: unknown parameter(s) {unknown}; accepted: {accepted}")


def build_loss(spec: dict[str, Any]) -> TaskLoss:
    """Build a registered loss from {"type": name, "weight": w, **params} ("name" is ignored here)."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a loss spec must be a dict with a 'type' key, got {spec!r}")
    params = {k: v for k, v in spec.items() if k not in ("type", "name")}
    loss_type = spec["type"]
    if loss_type not in LOSSES:
        raise KeyError(f"unknown loss {loss_type!r}; registered: {', '.join(sorted(LOSSES))}")
    cls = LOSSES[loss_type]
    check_params(cls, params, "loss", loss_type)
    return cls(**params)


class CompositeLoss(nn.Module):
    """Several task losses; ``forward`` returns {name: weight * loss} (the engine sums the values)."""

    def __init__(self, specs: Iterable[dict[str, Any]]) -> None:
        super().__init__()
        self.terms = nn.ModuleDict()
        for spec in specs:
            key = str(spec.get("name", spec.get("type")))
            if key in self.terms:
                raise ValueError(f"two loss terms named {key!r}; give one of them a distinct 'name'")
            self.terms[key] = build_loss(spec)

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> dict[str, Tensor]:
        return {key: loss.weight * loss(fused, ir, vis) for key, loss in self.terms.items()}
