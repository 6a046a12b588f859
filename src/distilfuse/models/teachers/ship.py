"""SHIP (Zheng et al., CVPR 2024): synergistic high-order interaction fusion, 547,509 parameters.

Module and attribute names follow the official ``highOrderInteractionFusion`` so that the released
``SHIP_model.pth`` (``{'params': state_dict}``) loads strictly; numbered attributes such as
``reflashFused1`` are part of those keys, hence the ``setattr`` loops instead of ``nn.ModuleList``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.conv import channel_gate
from distilfuse.models.blocks.layer_norm import ChannelLayerNorm
from distilfuse.models.registry import register_model

FEATURES = 16
CENTRAL_DIFFERENCE_THETA = 0.8
AFFINE_CLAMP = 0.8
INTERACTION_STEPS = (1, 2, 3)


def conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


def conv_relu_conv(c_in: int, c_mid: int, c_out: int, kernel_size: int) -> nn.Sequential:
    """Conv, ReLU, Conv with zero 'same' padding (official keys '.0' and '.2')."""
    pad = kernel_size // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_mid, kernel_size, padding=pad),
        nn.ReLU(),
        nn.Conv2d(c_mid, c_out, kernel_size, padding=pad),
    )


class CrossTapConv(nn.Module):
    """Five learned taps (stored as a 1x5 conv weight) placed on a 3x3 cross, minus a central difference.

    Computes conv(x, K3x3) - theta * conv(x, sum of taps) as two convolutions, like the official code:
    folding them into one kernel is the same maths but rounds differently, and SHIP's near-degenerate
    instance norms amplify that difference (2.8e-4 at the output on one official reference pair).
    """

    def __init__(self, c_in: int, c_out: int, positions: tuple[int, ...]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (1, 5), bias=False)
        self.positions = positions  # flat indices into the 3x3 kernel

    def kernel(self) -> Tensor:
        taps = self.conv.weight.flatten(2)  # (out, in, 5)
        index = torch.tensor(self.positions, device=taps.device)
        return taps.new_zeros(*taps.shape[:2], 9).index_copy(2, index, taps).view(*taps.shape[:2], 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        centre = self.conv.weight.flatten(2).sum(2)[:, :, None, None]
        return F.conv2d(x, self.kernel(), padding=1) - CENTRAL_DIFFERENCE_THETA * F.conv2d(x, centre)


class CrossDifferenceConv(nn.Module):
    """Official ``cdcconv``: a learned sigmoid gate between the '+' cross and the 'x' cross, plus identity."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.h_conv = CrossTapConv(c_in, c_out, positions=(1, 3, 4, 5, 7))  # [[0,w0,0],[w1,w2,w3],[0,w4,0]]
        self.d_conv = CrossTapConv(c_in, c_out, positions=(0, 2, 4, 6, 8))  # [[w0,0,w1],[0,w2,0],[w3,0,w4]]
        # The official code leaves this uninitialised (torch.FloatTensor(1)); 0 is an even mix.
        self.HP_branch = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.HP_branch)
        return gate * self.h_conv(x) + (1 - gate) * self.d_conv(x) + x


class EdgeBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.process = conv3(channels, channels)
        self.Res = conv_relu_conv(channels, channels, channels, 3)
        self.CDC = CrossDifferenceConv(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.process(x)
        return self.Res(x) + self.CDC(x)


class FeatureExtract(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1)
        self.block1 = EdgeBlock(c_out)
        self.block2 = EdgeBlock(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.block2(self.block1(self.conv(x)))


class HalfInstanceNormBlock(nn.Module):
    """Official ``UNetConvBlock``: conv, instance norm on the first half of the channels, two LReLU(0.1)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.identity = nn.Conv2d(c_in, c_out, 1)
        self.conv_1 = conv3(c_in, c_out)
        self.conv_2 = conv3(c_out, c_out)
        self.norm = nn.InstanceNorm2d(c_out // 2, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        normed, kept = self.conv_1(x).chunk(2, dim=1)
        out = F.leaky_relu(torch.cat([self.norm(normed), kept], dim=1), 0.1)
        out = F.leaky_relu(self.conv_2(out), 0.1)
        return out + self.identity(x)


class DenseBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, growth: int = 16) -> None:
        super().__init__()
        self.conv1 = HalfInstanceNormBlock(c_in, growth)
        self.conv2 = HalfInstanceNormBlock(growth, growth)
        self.conv3 = conv3(c_in + 2 * growth, c_out)
        # Official from-scratch init: small Xavier weights keep the coupling near identity at the start.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight, gain=0.1)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x1 = F.leaky_relu(self.conv1(x), 0.2)
        x2 = F.leaky_relu(self.conv2(x1), 0.2)
        return F.leaky_relu(self.conv3(torch.cat([x, x1, x2], dim=1)), 0.2)


class InvertibleConv1x1(nn.Module):
    """Glow's LU-parametrised invertible 1x1 conv.

    W = p @ (L @ U) with L = strict_lower(lower) + I and U = strict_upper(upper) + diag(sign_s * exp(log_s)),
    multiplied in the official order; the masks are applied here rather than trusted to the stored values.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        orthogonal = torch.linalg.qr(torch.randn(channels, channels)).Q
        permutation, lower, upper = torch.linalg.lu(orthogonal)
        diagonal = torch.diagonal(upper)
        self.lower = nn.Parameter(lower)
        self.log_s = nn.Parameter(diagonal.abs().log())
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.register_buffer("p", permutation)
        self.register_buffer("sign_s", torch.sign(diagonal))

    def weight(self) -> Tensor:
        eye = torch.eye(self.lower.shape[0], device=self.lower.device, dtype=self.lower.dtype)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ (lower @ upper)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight()[:, :, None, None])


class InvBlock(nn.Module):
    """Affine coupling after an invertible 1x1 conv (split s1 | C - s1)."""

    def __init__(self, channels: int, split: int) -> None:
        super().__init__()
        self.split = split
        rest = channels - split
        self.F = DenseBlock(rest, split)
        self.G = DenseBlock(split, rest)
        self.H = DenseBlock(split, rest)
        self.invconv = InvertibleConv1x1(channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.invconv(x)
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 + self.F(x2)
        log_scale = AFFINE_CLAMP * (2 * torch.sigmoid(self.H(y1)) - 1)
        y2 = x2 * torch.exp(log_scale) + self.G(y1)
        return torch.cat([y1, y2], dim=1)


class SpatialInteraction(nn.Module):
    """Official ``spatialInteraction``: FFT circular correlation of the two features, then refreshes."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        for k in INTERACTION_STEPS:
            setattr(self, f"reflashFused{k}", conv_relu_conv(channels, channels, channels, 3))
        for k in INTERACTION_STEPS:
            setattr(self, f"reflashInfrared{k}", conv_relu_conv(channels, channels, channels, 3))
        for k in (1, 2, 3, 4):  # norm1 on the correlation, norm{k+1} after reflashFused{k}
            setattr(self, f"norm{k}", ChannelLayerNorm(channels))

    def forward(self, vis: Tensor, ir: Tensor) -> tuple[Tensor, Tensor]:
        # FFT and its norm in (at least) float32, even under autocast: the circular correlation grows
        # with H*W and would overflow half precision; normalised, it is safe to cast back.
        dtype = torch.promote_types(vis.dtype, torch.float32)
        with torch.autocast(device_type=vis.device.type, enabled=False):
            spectrum = torch.fft.rfft2(vis.to(dtype)) * torch.fft.rfft2(ir.to(dtype))
            correlation = self.norm1(torch.fft.irfft2(spectrum, s=vis.shape[-2:]))
        fused = correlation.to(ir.dtype) * ir
        refreshed_ir = ir
        for k in INTERACTION_STEPS:
            fused = getattr(self, f"norm{k + 1}")(getattr(self, f"reflashFused{k}")(fused))
            refreshed_ir = getattr(self, f"reflashInfrared{k}")(refreshed_ir)
            fused = fused * refreshed_ir
        return fused + vis, refreshed_ir


class ChannelInteraction(nn.Module):
    """Official ``channelInteraction``: channel-softmax attention refreshed three times, then an InvBlock."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        both = 2 * channels
        self.chaAtten = conv_relu_conv(both, channels, both, 1)
        for k in INTERACTION_STEPS:
            setattr(self, f"reflashChaAtten{k}", conv_relu_conv(both, channels, both, 1))
        for k in INTERACTION_STEPS:
            setattr(self, f"reflashFused{k}", conv_relu_conv(both, both, both, 3))
        self.postprocess = nn.Sequential(InvBlock(both, channels), nn.Conv2d(both, channels, 1))

    def forward(self, vis: Tensor, ir: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([vis, ir], dim=1)
        attention = torch.softmax(self.chaAtten(x.mean(dim=(2, 3), keepdim=True)), dim=1)
        fused = x * attention
        for k in INTERACTION_STEPS:
            fused = getattr(self, f"reflashFused{k}")(fused)
            attention = torch.softmax(getattr(self, f"reflashChaAtten{k}")(attention), dim=1)
            fused = fused * attention
        return self.postprocess(fused) + vis, ir


class HighOrderInteraction(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.spatial = SpatialInteraction(channels)
        self.channel = ChannelInteraction(channels)

    def forward(self, vis: Tensor, ir: Tensor) -> tuple[Tensor, Tensor]:
        return self.channel(*self.spatial(vis, ir))


class CALayer(nn.Module):
    """SHIP's channel attention: adds the gated pooled vector (not the gated map) to the input, as trained."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.conv_du = channel_gate(channels, reduction)
        self.process = conv_relu_conv(channels, channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        pooled = self.process(x).mean(dim=(2, 3), keepdim=True)
        return self.conv_du(pooled) * pooled + x


class Refine(nn.Module):
    def __init__(self, channels: int, c_out: int) -> None:
        super().__init__()
        self.conv_in = conv3(channels, channels)
        self.process = nn.Sequential(CALayer(channels, 4), CALayer(channels, 4))
        self.conv_last = conv3(channels, c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_last(self.process(self.conv_in(x)))


@register_model(
    "ship",
    role="teacher",
    paper="SHIP (Zheng et al., CVPR 2024)",
    param_count=547_509,
    summary="official SHIP: edge feature extractors, 3 spatial+channel high-order interactions, INN fusion",
)
class SHIP(FusionModel):
    """``forward(ir, vis)`` with vis the visible luma: SHIP reads only channel Y of its YCrCb input.

    Raw output is the unclamped fused Y (about -0.2..1.5 on real images); ``to_unit_range`` clamps,
    as the official test pipeline does. Any H and W work (the FFT uses the input size).
    """

    feature_taps = {
        "v0": "vis",
        "i0": "inf",
        "v1": "interaction1",
        "v2": "interaction2",
        "v3": "interaction3",
        "g": "postprocess",
        "refine": "reconstruction.process",
        "out": "reconstruction",
    }

    def __init__(self) -> None:
        super().__init__()
        self.vis = FeatureExtract(1, FEATURES)
        self.inf = FeatureExtract(1, FEATURES)
        self.interaction1 = HighOrderInteraction(FEATURES)
        self.interaction2 = HighOrderInteraction(FEATURES)
        self.interaction3 = HighOrderInteraction(FEATURES)
        self.postprocess = nn.Sequential(
            InvBlock(3 * FEATURES, 3 * FEATURES // 2), nn.Conv2d(3 * FEATURES, FEATURES, 1)
        )
        self.reconstruction = Refine(FEATURES, 1)

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        v0, i0 = self.vis(vis), self.inf(ir)
        v1, i1 = self.interaction1(v0, i0)
        v2, i2 = self.interaction2(v1, i1)
        v3, _ = self.interaction3(v2, i2)
        return self.reconstruction(self.postprocess(torch.cat([v1, v2, v3], dim=1)))
