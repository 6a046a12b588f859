"""Model registry: names -> model cards; creation with shipped, user or no weights."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

Role = Literal["teacher", "student", "discriminator"]


# safetensors metadata key: how the fused image is read from the raw output of the weights' model, "clip" (the
# default) or "stretch" (trained on the min-max stretched output, `train.loss_space: stretch`).
OUTPUT_RANGE_KEY = "distilfuse.output_range"


class WeightsError(ValueError):
    """A weights file is missing, unreadable, or does not fit the model."""


@dataclass(frozen=True)
class ModelCard:
    name: str
    cls: type[nn.Module]
    role: Role
    paper: str
    param_count: int  # documented count, checked by the tests
    summary: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    # create(name) gives the fresh initialisation while no weights ship, instead of an error: for models
    # whose untrained form is already a sensible fusion rule (the rt students).
    untrained_default: bool = False

    @property
    def shipped_weights(self) -> Path | None:
        path = resources.files("distilfuse") / "weights" / f"{self.name}.safetensors"
        return Path(str(path)) if path.is_file() else None


_REGISTRY: dict[str, ModelCard] = {}
_MODEL_PACKAGES = ("distilfuse.models.teachers", "distilfuse.models.students")
_discovered = False


def register_model(
    name: str,
    *,
    role: Role,
    paper: str,
    param_count: int,
    summary: str,
    untrained_default: bool = False,
    **kwargs: Any,
):
    """Class decorator registering `name` (stack it for variants that differ by constructor kwargs)."""

    def decorate(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = ModelCard(name, cls, role, paper, param_count, summary, dict(kwargs), untrained_default)
        return cls

    return decorate


def _discover() -> None:
    # Lazy: importing distilfuse must not build every model module.
    global _discovered
    if _discovered:
        return
    for package_name in _MODEL_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{info.name}")
    _discovered = True


def list_models(role: Role | None = None) -> list[str]:
    _discover()
    return sorted(n for n, c in _REGISTRY.items() if role is None or c.role == role)


def get_card(name: str) -> ModelCard:
    _discover()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from safetensors or a torch checkpoint (plain, or under params/state_dict)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoding failure is a bad file for the user
        raise WeightsError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    for key in ("params", "params_ema", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: not a state dict of tensors")
    # Checkpoints holding several sub-network state dicts (e.g. HKDnet's) are flattened to
    # '<part>.<key>' for the model's convert_state_dict; bookkeeping entries (epoch, ...) are dropped.
    parts = {
        k: v
        for k, v in obj.items()
        if isinstance(v, dict) and v and all(isinstance(t, torch.Tensor) for t in v.values())
    }
    if parts:
        obj = {f"{part}.{key}": t for part, sd in parts.items() for key, t in sd.items()}
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    return dict(obj)


def declared_output_range(path: str | Path) -> str:
    """The output range a weights file declares (`OUTPUT_RANGE_KEY`): "clip" unless it says "stretch"."""
    if Path(path).suffix != ".safetensors":
        return "clip"
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        declared = (f.metadata() or {}).get(OUTPUT_RANGE_KEY, "clip")
    return "stretch" if declared == "stretch" else "clip"


def output_range_of(model: nn.Module) -> str:
    """How the model's fused image is read from its raw output: what its weights declared, else "clip"."""
    return getattr(model, "output_range", "clip")


def load_weights(model: nn.Module, path: str | Path, name: str = "") -> nn.Module:
    """Strictly load `path` into `model`, with an error naming the file and what did not fit; the model's
    `output_range` becomes the one the file declares."""
    state = read_state_dict(path)
    convert = getattr(model, "convert_state_dict", None)
    if convert is not None:
        state = convert(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:3]
        detail = "; ".join(line.strip() for line in first) or str(exc)
        raise WeightsError(f"{path}: does not fit model {name or type(model).__name__} ({detail})") from None
    model.output_range = declared_output_range(path)
    return model


def create(name: str, weights: str | Path | None = "default", **kwargs: Any) -> nn.Module:
    """Build a registered model.

    weights: "default" loads the weights shipped with the package (an error if the model ships
    none, unless its card has ``untrained_default``: then the fresh initialisation), None leaves the
    fresh initialisation, a path loads that file strictly.
    """
    card = get_card(name)
    model = card.cls(**{**card.kwargs, **kwargs})
    if weights == "default" and card.shipped_weights is None and card.untrained_default:
        weights = None
    if weights == "default":
        if card.shipped_weights is None:
            raise WeightsError(f"model {name!r} ships no weights; pass a weights file (or weights=None)")
        weights = card.shipped_weights
    if weights is not None:
        load_weights(model, weights, name)
    return model.eval()
