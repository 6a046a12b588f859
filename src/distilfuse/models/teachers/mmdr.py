"""MMDRFuse teacher (Deng et al., ACM MM 2024): the official dense encoder-decoder, 556,489 parameters."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.conv import reflect_conv3
from distilfuse.models.registry import register_model


@register_model(
    "mmdr-teacher",
    role="teacher",
    paper="MMDRFuse (Deng et al., ACM MM 2024)",
    param_count=556_489,
    summary="official MMDRFuse teacher: dense encoder with one stride-2 stage, skip decoder, tanh",
)
class MMDRTeacher(FusionModel):
    """Raw output is the tanh map in (-1, 1) (clamped to [0,1] like mmdr-mini).

    The stride-2 stage and the x2 bicubic upsampling need even H and W, so inputs are
    reflect-padded by one pixel at the bottom/right when odd and cropped back (project rule).
    ``feat11`` (ReLU of conv11, 4 channels) is the official distillation partner of mmdr-mini's ``feat1``.
    """

    size_multiple = 2
    feature_taps = {
        **{f"G{k}": f"conv{k}" for k in range(1, 7)},
        **{f"D{k}": f"conv{k}{k}" for k in range(6, 1, -1)},
        "pre11": "conv11",
        "feat11": "act1",
        "pre00": "conv00",
        "out": "act2",
    }

    def __init__(self) -> None:
        super().__init__()
        # Encoder (G1..G6); conv3 halves the resolution.
        self.conv1 = reflect_conv3(2, 32, relu=True)
        self.conv2 = reflect_conv3(32, 32, relu=True)
        self.conv3 = reflect_conv3(64, 64, stride=2, relu=True)
        self.conv4 = reflect_conv3(64, 64, relu=True)
        self.conv5 = reflect_conv3(128, 64, relu=True)
        self.conv6 = reflect_conv3(192, 64, relu=True)
        # Decoder (D6..D2), then the two output layers.
        self.conv66 = reflect_conv3(64, 64, relu=True)
        self.conv55 = reflect_conv3(128, 64, relu=True)
        self.conv44 = reflect_conv3(128, 64, relu=True)
        self.conv33 = reflect_conv3(128, 64, relu=True)
        self.up = nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False)
        self.conv22 = reflect_conv3(96, 32, relu=True)
        self.conv11 = reflect_conv3(64, 4)
        self.act1 = nn.ReLU()
        self.conv00 = reflect_conv3(4, 1)
        self.act2 = nn.Tanh()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        g1 = self.conv1(torch.cat([ir, vis], dim=1))
        g2 = self.conv2(g1)
        g3 = self.conv3(torch.cat([g1, g2], dim=1))
        g4 = self.conv4(g3)
        g5 = self.conv5(torch.cat([g3, g4], dim=1))
        g6 = self.conv6(torch.cat([g3, g4, g5], dim=1))
        d6 = self.conv66(g6)
        d5 = self.conv55(torch.cat([g5, d6], dim=1))
        d4 = self.conv44(torch.cat([g4, d5], dim=1))
        d3 = self.conv33(torch.cat([g3, d4], dim=1))
        d2 = self.conv22(torch.cat([g2, self.up(d3)], dim=1))
        f1 = self.act1(self.conv11(torch.cat([g1, d2], dim=1)))
        return self.act2(self.conv00(f1))
