"""Tiny student/teacher FusionModels with feature taps, so distiller tests need no real model."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models import FusionModel


class FakeStudent(FusionModel):
    """f1: 4 ch, f2: 8 ch, both full resolution; sigmoid output."""

    feature_taps = {"f1": "act1", "f2": "act2", "out": "act3"}

    def __init__(self, norm: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4) if norm else nn.Identity()
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(8, 1, 3, padding=1)
        self.act3 = nn.Sigmoid()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        f1 = self.act1(self.norm(self.conv1(torch.cat([ir, vis], dim=1))))
        return self.act3(self.conv3(self.act2(self.conv2(f1))))


class FakeTeacher(FusionModel):
    """g1: 8 ch full resolution, g2: 16 ch half resolution, g3: 4 ch full resolution."""

    size_multiple = 2
    feature_taps = {"g1": "act1", "g2": "act2", "g3": "act3", "out": "act4"}

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 8, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.act2 = nn.ReLU()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv3 = nn.Conv2d(16, 4, 3, padding=1)
        self.act3 = nn.ReLU()
        self.conv4 = nn.Conv2d(4, 1, 3, padding=1)
        self.act4 = nn.Sigmoid()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        g2 = self.act2(self.conv2(self.act1(self.conv1(torch.cat([ir, vis], dim=1)))))
        return self.act4(self.conv4(self.act3(self.conv3(self.up(g2)))))
