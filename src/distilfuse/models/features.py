"""Reaching named intermediate features with forward hooks (never by forking a model)."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn


class FeatureTaps:
    """Context manager capturing the outputs of a model's named features on every forward.

    ``names`` are keys of ``model.feature_taps`` (feature name -> submodule path) or plain
    submodule paths. After a forward pass, ``taps.features[name]`` holds the tensor.
    """

    def __init__(self, model: nn.Module, names: Iterable[str] | None = None) -> None:
        taps: dict[str, str] = dict(getattr(model, "feature_taps", {}))
        chosen = list(taps) if names is None else list(names)
        self.model = model
        self.paths = {n: taps.get(n, n) for n in chosen}
        self.features: dict[str, Tensor] = {}
        self._handles: list = []

    def _hook(self, name: str):
        def store(_module: nn.Module, _inputs: tuple, output: Tensor | tuple) -> None:
            self.features[name] = output[0] if isinstance(output, tuple) else output

        return store

    def __enter__(self) -> FeatureTaps:
        for name, path in self.paths.items():
            try:
                module = self.model.get_submodule(path)
            except AttributeError:
                raise KeyError(f"{type(self.model).__name__} has no feature {name!r} (module {path!r})") from None
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
