"""Several frozen teachers seen as one, for distillers that choose between their outputs per pixel."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


class TeacherEnsemble(nn.Module):
    """``forward(ir, vis, raw)`` stacks the members' outputs on the channel axis, in the members' order.

    Each member's features are tapped as ``"<member>.<feature>"`` (e.g. ``"ship.g"``). Members must
    share the output size (no super-resolution teacher beside a fusion one).
    """

    def __init__(self, members: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"a teacher ensemble needs at least two members, got {list(members)}")
        self.members = nn.ModuleDict(members)
        self.feature_taps = {
            f"{key}.{feature}": f"members.{key}.{path}"
            for key, member in members.items()
            for feature, path in getattr(member, "feature_taps", {}).items()
        }

    def forward(self, ir: Tensor, vis: Tensor, raw: bool = False) -> Tensor:
        outputs = [member(ir, vis, raw=raw) for member in self.members.values()]
        sizes = {tuple(out.shape[-2:]) for out in outputs}
        if len(sizes) > 1:
            raise ValueError(f"teacher ensemble members give outputs of different sizes: {sorted(sizes)}")
        return torch.cat(outputs, dim=1)
