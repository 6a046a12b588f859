"""The Distiller surface, its registry, and what every distiller shares (pairs, channel probe, adapters)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from distilfuse.losses.base import check_params
from distilfuse.losses.functional import resize_to
from distilfuse.models.features import FeatureTaps

DISTILLERS: dict[str, type[Distiller]] = {}
PROBE_SIZE = 16  # side of the zero image used to read feature shapes at construction


def register_distiller(name: str):
    """Class decorator registering a Distiller under ``name`` (the spec's "type")."""

    def decorate(cls: type[Distiller]) -> type[Distiller]:
        if name in DISTILLERS and DISTILLERS[name] is not cls:
            raise ValueError(f"distiller name {name!r} registered twice")
        cls.name = name
        DISTILLERS[name] = cls
        return cls

    return decorate


def build_distiller(spec: dict[str, Any], student: nn.Module, teacher: nn.Module) -> Distiller:
    """Build a registered distiller from {"type": kind, "weight": w, "pairs": [[s, t], ...], **params}.

    An optional "name" replaces the type as the prefix of the returned loss keys.
    """
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a distiller spec must be a dict with a 'type' key, got {spec!r}")
    kind = spec["type"]
    if kind not in DISTILLERS:
        raise KeyError(f"unknown distiller {kind!r}; registered: {', '.join(sorted(DISTILLERS))}")
    params = {k: v for k, v in spec.items() if k not in ("type", "name")}
    cls = DISTILLERS[kind]
    check_params(cls, params, "distiller", kind)
    distiller = cls(student, teacher, **params)
    if "name" in spec:  # prefix of its loss keys, to tell two distillers of one type apart
        distiller.name = str(spec["name"])
    return distiller


def _feature_names(model: nn.Module) -> list[str]:
    return sorted(getattr(model, "feature_taps", {}))


def _check_feature(model: nn.Module, name: str, role: str) -> None:
    taps = getattr(model, "feature_taps", {})
    if name in taps:
        return
    try:
        model.get_submodule(name)
    except AttributeError:
        raise KeyError(
            f"{role} {type(model).__name__} has no feature {name!r}; its features: {_feature_names(model)}"
        ) from None


def probe_shapes(model: nn.Module, names: Iterable[str]) -> dict[str, tuple[int, ...]]:
    """(C,H,W) of the named features, from a no-grad forward on a 1x1xPxP zero image in eval mode."""
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(1, 1, PROBE_SIZE, PROBE_SIZE, device=device, dtype=dtype)
    modes = {m: m.training for m in model.modules()}
    model.eval()  # no BatchNorm statistics update, no dropout
    try:
        with torch.no_grad(), FeatureTaps(model, names) as taps:
            model(x, x)
    finally:
        for module, mode in modes.items():
            module.training = mode
    missing = [n for n in names if n not in taps.features]
    if missing:
        raise KeyError(f"{type(model).__name__} did not produce feature(s) {missing} in a forward pass")
    return {n: tuple(taps.features[n].shape[1:]) for n in names}


def at_least_float32(x: Tensor) -> Tensor:
    """Half-precision maps (autocast, float16 caches) overflow in batch norms and Gram sums: upcast."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def module_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@dataclass(frozen=True, eq=False)
class DistillBatch:
    """What every distiller of a training step sees: both models' tapped features and raw outputs, and the
    source images at the resolution of the student's output (built once per step)."""

    student_feats: dict[str, Tensor]
    teacher_feats: dict[str, Tensor]
    student_out: Tensor
    teacher_out: Tensor
    ir: Tensor
    vis: Tensor


class Distiller(nn.Module):
    """Base distiller: named (student, teacher) feature pairs, optional 1x1 adapters, weighted loss dict.

    Subclasses implement ``forward(batch: DistillBatch)`` returning {term name: weighted loss}. Adapters
    (student channels -> teacher channels) are built at construction, from feature shapes read by a dry
    forward of both models, and live in ``self.adapters`` (trained with the student, counted apart from it).
    """

    name = "base"
    needs_adapters = False  # whether the loss compares channels one to one
    requires_pairs = False  # distillers defined only on feature pairs say so
    outputs_only = False  # distillers of the outputs alone refuse feature pairs
    default_weight = 1.0

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        pairs: Sequence[Sequence[str]] = (),
        weight: float | None = None,
        extra_pairs: Sequence[Sequence[str]] = (),
    ) -> None:
        super().__init__()
        self.weight = float(self.default_weight if weight is None else weight)
        self.pairs = self._parse_pairs(pairs)
        if self.requires_pairs and not self.pairs:
            raise ValueError(f"{self.name}: needs at least one feature pair")
        if self.outputs_only and self.pairs:
            raise ValueError(f"{self.name}: distils outputs only; pairs must be empty")
        all_pairs = self.pairs + self._parse_pairs(extra_pairs)
        for s_name, t_name in all_pairs:
            _check_feature(student, s_name, "student")
            _check_feature(teacher, t_name, "teacher")
        s_shapes = probe_shapes(student, [s for s, _ in all_pairs])
        t_shapes = probe_shapes(teacher, [t for _, t in all_pairs])
        self.teacher_channels = {t: t_shapes[t][0] for _, t in all_pairs}
        self.adapters = nn.ModuleDict()
        if self.needs_adapters:
            device = module_device(student)
            for s_name, t_name in all_pairs:
                c_s, c_t = s_shapes[s_name][0], t_shapes[t_name][0]
                if c_s != c_t and self.adapter_key(s_name, t_name) not in self.adapters:
                    self.adapters[self.adapter_key(s_name, t_name)] = nn.Conv2d(c_s, c_t, 1).to(device)

    @staticmethod
    def _parse_pairs(pairs: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
        parsed = []
        for pair in pairs:
            if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(n, str) for n in pair):
                raise ValueError(f"each pair must be [student_feature, teacher_feature], got {pair!r}")
            parsed.append((pair[0], pair[1]))
        return parsed

    @staticmethod
    def adapter_key(s_name: str, t_name: str) -> str:
        # ModuleDict keys cannot contain dots (nested submodule paths are valid feature names).
        return f"{s_name}->{t_name}".replace(".", "_")

    @property
    def student_features(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self._active_pairs()))

    @property
    def teacher_features(self) -> list[str]:
        return list(dict.fromkeys(t for _, t in self._active_pairs()))

    def _active_pairs(self) -> list[tuple[str, str]]:
        return self.pairs

    def key(self, *parts: str | tuple[str, str]) -> str:
        """Loss-dict key: distiller name, labels and 'student/teacher' pairs, e.g. 'fg:focal:f1/G1'."""
        return ":".join([self.name, *("/".join(p) if isinstance(p, tuple) else p for p in parts)])

    def gather(self, batch: DistillBatch, s_name: str, t_name: str, resize: bool = True) -> tuple[Tensor, Tensor]:
        """The pair's tensors: the student's through its adapter (if any), the teacher's detached and resized
        to the student's size, both in at least float32."""
        for feats, name, role in ((batch.student_feats, s_name, "student"), (batch.teacher_feats, t_name, "teacher")):
            if name not in feats:
                raise KeyError(f"{self.name}: {role} feature {name!r} missing; got {sorted(feats)}")
        s, t = batch.student_feats[s_name], batch.teacher_feats[t_name].detach()  # the teacher is never trained here
        if s.dim() != 4 or t.dim() != 4 or s.shape[0] != t.shape[0]:
            raise ValueError(
                f"{self.name}: features {s_name!r} {tuple(s.shape)} and {t_name!r} {tuple(t.shape)} "
                "must be (B,C,H,W) with the same batch size"
            )
        key = self.adapter_key(s_name, t_name)
        if key in self.adapters:
            s = self.adapters[key](s)
        s, t = at_least_float32(s), at_least_float32(t)
        if self.needs_adapters and s.shape[1] != t.shape[1]:
            raise ValueError(
                f"{self.name}: {s_name!r} has {s.shape[1]} channels, {t_name!r} {t.shape[1]}, unlike at construction"
            )
        return s, resize_to(t, tuple(s.shape[-2:])) if resize else t

    @staticmethod
    def outputs(batch: DistillBatch) -> tuple[Tensor, Tensor]:
        """Student and teacher outputs in at least float32, the teacher's detached and resized to the student's size."""
        student_out, teacher_out = batch.student_out, batch.teacher_out
        if student_out.dim() != 4 or teacher_out.dim() != 4 or student_out.shape[:2] != teacher_out.shape[:2]:
            raise ValueError(
                f"outputs must be (B,C,H,W) with equal B and C, got {tuple(student_out.shape)} "
                f"and {tuple(teacher_out.shape)}"
            )
        student_out, teacher_out = at_least_float32(student_out), at_least_float32(teacher_out.detach())
        return student_out, resize_to(teacher_out, tuple(student_out.shape[-2:]))

    def forward(self, batch: DistillBatch) -> dict[str, Tensor]:
        raise NotImplementedError
