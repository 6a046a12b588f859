"""EMMA fusion network (Zhao et al., CVPR 2024, "Equivariant Multi-Modality Image Fusion"): ``Ufuser``.

A 4-level U-Net whose every stage is a ``Restormer_CNN_block`` (a lite channel-attention transformer
branch and a residual CNN branch, merged by a 3x3 conv). Attribute names follow the official ``Ufuser``
so that an official ``EMMA.pth`` (a plain state dict) would load strictly; no weights are available to
the project, so it is an optional heavy teacher trained from scratch (PyTorch default init, as officially).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.restormer import LiteTransformerBlock
from distilfuse.models.registry import register_model

CHANNELS = (8, 16, 32, 32)
NUM_HEADS = 8
MIN_SIZE = 16  # three stride-2 stages, and the reflect padding at the coarsest one needs >= 2 pixels


def reflect_conv3(c_in: int, c_out: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias, padding_mode="reflect")


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            reflect_conv3(channels, channels, bias=True),
            nn.ReLU(),
            reflect_conv3(channels, channels, bias=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + x


class LocalFeatureExtraction(nn.Module):
    def __init__(self, channels: int, num_blocks: int = 2) -> None:
        super().__init__()
        self.Extraction = nn.Sequential(*[ResBlock(channels) for _ in range(num_blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.Extraction(x)


class RestormerCNNBlock(nn.Module):
    """Official ``Restormer_CNN_block``: embed, then global (transformer) and local (CNN) branches, merged."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.embed = reflect_conv3(c_in, c_out)
        self.GlobalFeature = LiteTransformerBlock(
            c_out, NUM_HEADS, ffn_expansion_factor=1.0, mlp_padding_mode="reflect"
        )
        self.LocalFeature = LocalFeatureExtraction(c_out)
        self.FFN = reflect_conv3(2 * c_out, c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed(x)
        return self.FFN(torch.cat([self.GlobalFeature(x), self.LocalFeature(x)], dim=1))


def upsample(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.ReLU())


@register_model(
    "emma",
    role="teacher",
    paper="EMMA (Zhao et al., CVPR 2024)",
    param_count=1_517_657,
    summary="EMMA's Ufuser: 4-level U-Net of Restormer-CNN blocks, separate IR/VIS encoders, sigmoid output",
)
class EMMA(FusionModel):
    """Raw output is the sigmoid map in (0, 1). H and W are padded to multiples of 8 and must be >= 16.

    The official test additionally min-max stretches the fused image; that is post-processing, not here.
    """

    size_multiple = 8
    feature_taps = {
        **{f"i{k}": f"I_en_{k}" for k in range(1, 5)},
        **{f"v{k}": f"V_en_{k}" for k in range(1, 5)},
        **{f"f{k}": f"f_{k}" for k in range(1, 5)},
        **{f"d{k}": f"de_{k}" for k in range(4, 0, -1)},
        "out": "last",
    }

    def __init__(self) -> None:
        super().__init__()
        c1, c2, c3, c4 = CHANNELS
        for prefix in ("V", "I"):
            setattr(self, f"{prefix}_en_1", RestormerCNNBlock(1, c1))
            setattr(self, f"{prefix}_en_2", RestormerCNNBlock(c1, c2))
            setattr(self, f"{prefix}_en_3", RestormerCNNBlock(c2, c3))
            setattr(self, f"{prefix}_en_4", RestormerCNNBlock(c3, c4))
        for k, c in enumerate(CHANNELS, start=1):
            setattr(self, f"f_{k}", RestormerCNNBlock(2 * c, c))
        for prefix in ("V", "I"):
            for k, c in enumerate(CHANNELS[:3], start=1):
                setattr(self, f"{prefix}_down{k}", reflect_conv3(c, c, stride=2))
        self.up4 = upsample(c4, c3)
        self.up3 = upsample(c3, c2)
        self.up2 = upsample(c2, c1)
        self.de_1 = RestormerCNNBlock(2 * c1, c1)
        self.de_2 = RestormerCNNBlock(2 * c2, c2)
        self.de_3 = RestormerCNNBlock(2 * c3, c3)
        self.de_4 = RestormerCNNBlock(c4, c4)
        self.last = nn.Sequential(reflect_conv3(c1, 1, bias=True), nn.Sigmoid())

    def encode(self, x: Tensor, prefix: str) -> list[Tensor]:
        """The four encoder levels of one modality ("I" or "V"), full to 1/8 resolution."""
        levels = [getattr(self, f"{prefix}_en_1")(x)]
        for k in (2, 3, 4):
            down = getattr(self, f"{prefix}_down{k - 1}")(levels[-1])
            levels.append(getattr(self, f"{prefix}_en_{k}")(down))
        return levels

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        if min(ir.shape[-2:]) < MIN_SIZE:
            raise ValueError(f"EMMA needs H and W >= {MIN_SIZE}, got {tuple(ir.shape[-2:])}")
        f1, f2, f3, f4 = (
            getattr(self, f"f_{k}")(torch.cat([i, v], dim=1))
            for k, i, v in zip((1, 2, 3, 4), self.encode(ir, "I"), self.encode(vis, "V"), strict=True)
        )
        out = self.up4(self.de_4(f4))
        out = self.up3(self.de_3(torch.cat([out, f3], dim=1)))
        out = self.up2(self.de_2(torch.cat([out, f2], dim=1)))
        return self.last(self.de_1(torch.cat([out, f1], dim=1)))
