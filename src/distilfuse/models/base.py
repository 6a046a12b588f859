"""The surface every fusion model shares."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad the bottom/right of (B,C,H,W) so H and W are multiples of `multiple`.

    Written without branches on the size, so exported graphs keep the padding for every input size.
    """
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple), mode="reflect")


class FusionModel(nn.Module):
    """Base of every fusion network: ``forward(ir, vis)`` on (B,1,H,W) in [0,1] -> fused in [0,1].

    Subclasses implement ``fuse_raw`` on inputs whose size is a multiple of ``size_multiple`` and
    return the network's own output (e.g. a tanh map, or an unclamped luma). ``forward`` pads and
    crops around it, and maps the raw output to [0,1] unless ``raw=True`` (used by port checks).
    ``feature_taps`` names intermediate features: feature name -> submodule whose output it is, so
    distillation reaches them with forward hooks (see ``distilfuse.models.features``).
    """

    size_multiple: ClassVar[int] = 1
    feature_taps: ClassVar[dict[str, str]] = {}
    scale: int = 1

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        raise NotImplementedError

    def to_unit_range(self, raw: Tensor) -> Tensor:
        return raw.clamp(0.0, 1.0)

    def forward(self, ir: Tensor, vis: Tensor, raw: bool = False) -> Tensor:
        if ir.dim() != 4 or ir.shape[1] != 1 or ir.shape != vis.shape:
            raise ValueError(
                f"expected two (B,1,H,W) tensors of equal shape, got {tuple(ir.shape)} and {tuple(vis.shape)}"
            )
        h, w = ir.shape[-2:]
        if self.size_multiple > 1:
            ir, vis = pad_to_multiple(ir, self.size_multiple), pad_to_multiple(vis, self.size_multiple)
        out = self.fuse_raw(ir, vis)
        if self.size_multiple > 1:
            out = out[..., : h * self.scale, : w * self.scale]
        return out if raw else self.to_unit_range(out)

    @classmethod
    def convert_state_dict(cls, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map an official checkpoint's keys onto this module's (identity by default)."""
        return state_dict


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


__all__ = ["FusionModel", "count_parameters", "freeze", "pad_to_multiple"]
