"""MMDRFuse student (Deng et al., ACM MM 2024): two 3x3 convs, 113 parameters."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.conv import reflect_conv3
from distilfuse.models.registry import register_model


@register_model(
    "mmdr-mini",
    role="student",
    paper="MMDRFuse (Deng et al., ACM MM 2024)",
    param_count=113,
    summary="official MMDRFuse student: conv 2->4, ReLU, conv 4->1, tanh",
)
class MMDRStudent(FusionModel):
    """Raw output is the tanh map in (-1, 1); features follow the official distillation pairs."""

    feature_taps = {"pre1": "conv1", "feat1": "act1", "pre2": "conv2", "out": "act2"}

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = reflect_conv3(2, 4)
        self.act1 = nn.ReLU()
        self.conv2 = reflect_conv3(4, 1)
        self.act2 = nn.Tanh()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        return self.act2(self.conv2(self.act1(self.conv1(torch.cat([ir, vis], dim=1)))))
