"""HKDnet student (Xiao et al., IEEE TIM 2022): LR fusion (``Student_fu``) + RCAN-style SR (``Student_sr``).

Built from the architecture spec (section 4.1) with the official attribute names. The model holds the two
official networks as ``fusion`` and ``sr``; ``convert_state_dict`` maps the official checkpoint
(``{'Sec_Fusionnet_state_dict': ..., 'srnet_state_dict': ...}``) onto them.

Fusion part (n_feats 64), on LR IR/VIS (B,1,h,w):
* x_X = conv2(conv1(X)) with conv1/conv2 shared by both branches;
* en_i = x_i + body_i(x_i), body_i = [ResidualGroup(9 RCAB), DFAG (6 DFA), conv3];
* en_v = x_v + body_v(x_v), body_v = [ResidualGroup(9 RCAB), CEA, conv3];
* feature = conv8(conv7(conv6(conv5(spatial-softmax fusion(en_i, en_v))))), 16 ch at LR.
``conv`` (conv3 64->64) is defined and stored by the official code but never used: it is listed in
``unused_parameters``.

SR part: head conv3 16->64, body [5 ResidualGroups(20 RCAB), conv3] with a long skip, ``uperfe`` pixel
shuffle x2/x3/x4 (``sr_uper_fe``, 64 ch HR), ``tail`` conv3 64->16 (``sr_feature``), ``result`` conv3
16->1 (the SR fused image, no activation; ``to_unit_range`` clamps).

``hkd-student-x{2,3,4}-paper`` (``form="paper"``) follow the paper's text where the official code differs:
DFA takes D3 from the RCAB output (eqs. 6-7), the VIS branch has two cascaded residual groups before a CEA
without projections, dilation, BatchNorm or dropout (``PaperCornerEmbeddingAttention``, eqs. 8-13), and
the fusion is the l1-norm activity rule (eqs. 14-16). Their state dict is not the official layout. The
official form stays the default of ``hkd-student-x*``: HKDnet's released student checkpoints need it.

Corner attention (COA, inside CEA) uses the torch Harris mask of ``distilfuse.models.blocks.corner``
(OpenCV cornerHarris(3, 3, 0.04) conventions, 3x3 dilation, > 0.7 * max per sample and channel) as a
constant; the official code ran OpenCV per channel on the CPU. Position attention (POA, inside CEA) is
O((h*w)^2) in memory: keep LR inputs small (a 64x64 LR input needs 67 MB per sample for one attention
matrix).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.attention import ChannelSelfAttention, CornerAttention, PositionAttention
from distilfuse.models.blocks.corner import corner_mask
from distilfuse.models.blocks.densefuse import ActivityRatioFusion, ReflectConvLayer, SpatialSoftmaxFusion
from distilfuse.models.blocks.rcan import (
    PixelShuffleUpsampler,
    ResidualChannelAttentionBlock,
    ResidualGroup,
    default_conv,
)
from distilfuse.models.registry import register_model

N_FEATS = 64


class DualFrequencyAttention(nn.Module):
    """DFA block: x <- 2 RCAB(x); gamma * conv3(k) * softmax_W(conv1(x) * k), k = conv2(x); no residual.

    gamma starts at 0 (the block outputs zeros at initialisation). The softmax runs over the last
    (width) dimension, as in the official code. ``paper=True``: eqs. 6-7, D3 = conv3(D) from the RCAB
    output D itself, not from D2 = k.
    """

    def __init__(self, channels: int, paper: bool = False) -> None:
        super().__init__()
        self.paper = paper
        self.body = nn.Sequential(ResidualChannelAttentionBlock(channels), ResidualChannelAttentionBlock(channels))
        self.conv1 = default_conv(channels, channels, bias=False)
        self.conv2 = default_conv(channels, channels, bias=False)
        self.conv3 = default_conv(channels, channels, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(x)
        key = self.conv2(x)
        attention = torch.softmax(self.conv1(x) * key, dim=-1)
        return self.gamma * (self.conv3(x if self.paper else key) * attention)


class DualFrequencyAttentionGroup(nn.Module):
    """DFAG: x + conv3(DFA^6(x))."""

    def __init__(self, channels: int, n_blocks: int = 6, paper: bool = False) -> None:
        super().__init__()
        blocks: list[nn.Module] = [DualFrequencyAttention(channels, paper) for _ in range(n_blocks)]
        self.body = nn.Sequential(*blocks, default_conv(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def conv_bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(default_conv(channels, channels, bias=False), nn.BatchNorm2d(channels), nn.ReLU())


def dropout_conv1x1(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(channels, channels, 1))


class CornerEmbeddingAttention(nn.Module):
    """CEA: conv8(conv5(convp2(POA(convp1 x))) + conv6(convp4(CHA(convp3 x))) + conv7(convp6(COA(convp5 x))))

    (POA position, CHA channel, COA corner attention; convp* = conv3 + BN + ReLU, conv5..8 = dropout + conv1).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.poa = PositionAttention(channels)
        self.cha = ChannelSelfAttention()
        self.coa = CornerAttention(channels)
        for i in range(1, 7):
            self.add_module(f"convp{i}", conv_bn_relu(channels))
        for i in range(5, 9):
            self.add_module(f"conv{i}", dropout_conv1x1(channels))

    def forward(self, x: Tensor) -> Tensor:
        position = self.conv5(self.convp2(self.poa(self.convp1(x))))
        channel = self.conv6(self.convp4(self.cha(self.convp3(x))))
        corner = self.conv7(self.convp6(self.coa(self.convp5(x))))
        return self.conv8(position + channel + corner)


class PaperCornerEmbeddingAttention(nn.Module):
    """CEA as the paper writes it (eqs. 8-13): F_b = conv1x1(x), then conv1x1(F_COA + F_POA + F_CHA) with

    F_COA = beta * conv1x1(F_b) * M + F_b (eq. 9; M the Harris mask > 0.7 max per channel, no dilation,
    eq. 8; beta from 0), F_POA = F_b Omega + F_b (eqs. 10-11, Omega = softmax of F_b^T F_b over the
    positions summed), F_CHA = Psi F_b + F_b (eqs. 12-13, Psi = softmax of F_b F_b^T over the channels
    summed). No query/key/value projections, BatchNorm or dropout. Eqs. 10 and 12 print a denominator
    summed over both indices; the text's "pixel-level softmax" normalises over the summed index only,
    which is what is done (a softmax over all N^2 entries would shrink the attention as 1/N).
    """

    def __init__(self, channels: int, threshold: float = 0.7) -> None:
        super().__init__()
        self.conv_b = nn.Conv2d(channels, channels, 1)
        self.coa_conv = nn.Conv2d(channels, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1))
        self.out = nn.Conv2d(channels, channels, 1)
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        fb = self.conv_b(x)
        b, c, h, w = fb.shape
        flat = fb.flatten(2)  # (B, C, N)
        corner = self.beta * self.coa_conv(fb) * corner_mask(fb, self.threshold, dilate=False) + fb
        omega = torch.softmax(flat.transpose(1, 2) @ flat, dim=1)  # (B, N, N), columns sum to 1
        position = (flat @ omega).view(b, c, h, w) + fb
        psi = torch.softmax(flat @ flat.transpose(1, 2), dim=-1)  # (B, C, C), rows sum to 1
        channel = (psi @ flat).view(b, c, h, w) + fb
        return self.out(corner + position + channel)


class StudentFusion(nn.Module):
    """Official ``Student_fu``: two-branch LR encoder, spatial-softmax fusion, decoder to 16 channels.

    ``paper=True``: the paper's text instead: DFA with D3 from D (eqs. 6-7), two cascaded residual groups
    before a paper-form CEA in the visible branch (section III-B), l1-norm activity fusion (eqs. 14-16).
    """

    def __init__(self, channels: int = N_FEATS, paper: bool = False) -> None:
        super().__init__()
        self.conv1 = ReflectConvLayer(1, 16)
        self.conv2 = ReflectConvLayer(16, channels)
        self.body_i = nn.Sequential(
            ResidualGroup(channels, 9),
            DualFrequencyAttentionGroup(channels, paper=paper),
            default_conv(channels, channels),
        )
        self.conv = default_conv(channels, channels)  # in the official state dict, never called
        groups = [ResidualGroup(channels, 9) for _ in range(2 if paper else 1)]
        cea = PaperCornerEmbeddingAttention(channels) if paper else CornerEmbeddingAttention(channels)
        self.body_v = nn.Sequential(*groups, cea, default_conv(channels, channels))
        self.conv5 = ReflectConvLayer(channels, channels)
        self.conv6 = ReflectConvLayer(channels, channels)
        self.conv7 = ReflectConvLayer(channels, 32)
        self.conv8 = ReflectConvLayer(32, 16)
        # Parameter-free named stages, so forward hooks can reach these tensors.
        self.ir_encoding = nn.Identity()
        self.vis_encoding = nn.Identity()
        self.fuse = ActivityRatioFusion() if paper else SpatialSoftmaxFusion()

    def forward(self, ir: Tensor, vis: Tensor) -> Tensor:
        x_i, x_v = self.conv2(self.conv1(ir)), self.conv2(self.conv1(vis))
        en_i = self.ir_encoding(x_i + self.body_i(x_i))
        en_v = self.vis_encoding(x_v + self.body_v(x_v))
        return self.conv8(self.conv7(self.conv6(self.conv5(self.fuse(en_i, en_v)))))


class StudentSR(nn.Module):
    """Official ``Student_sr``: RCAN with 5 residual groups of 20 RCAB on the 16-channel LR fused feature."""

    def __init__(self, scale: int, channels: int = N_FEATS, n_groups: int = 5, n_blocks: int = 20) -> None:
        super().__init__()
        self.head = nn.Sequential(default_conv(16, channels))
        groups: list[nn.Module] = [ResidualGroup(channels, n_blocks) for _ in range(n_groups)]
        self.body = nn.Sequential(*groups, default_conv(channels, channels))
        self.uperfe = PixelShuffleUpsampler(scale, channels)
        self.tail = default_conv(channels, 16)
        self.result = nn.Sequential(default_conv(16, 1))

    def forward(self, feature: Tensor) -> Tensor:
        x = self.head(feature)
        return self.result(self.tail(self.uperfe(x + self.body(x))))


OFFICIAL_PARTS = {"Sec_Fusionnet_state_dict": "fusion.", "srnet_state_dict": "sr."}


class HKDStudent(FusionModel):
    """forward(ir_lr, vis_lr) -> fused image at ``scale`` x the LR size, (B,1,s*h,s*w)."""

    feature_taps = {
        "enc_ir": "fusion.ir_encoding",
        "enc_vis": "fusion.vis_encoding",
        "fusion_feature": "fusion.conv8",
        "sr_uper_fe": "sr.uperfe",
        "sr_feature": "sr.tail",
        "sr_image": "sr.result",
    }
    unused_parameters = ("fusion.conv.",)

    FORMS = ("official", "paper")

    def __init__(self, scale: int = 2, form: str = "official") -> None:
        super().__init__()
        if form not in self.FORMS:
            raise ValueError(f"hkd-student: form must be one of {self.FORMS}, got {form!r}")
        self.scale, self.form = scale, form
        self.fusion = StudentFusion(paper=form == "paper")
        self.sr = StudentSR(scale)

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        return self.sr(self.fusion(ir, vis))

    @classmethod
    def convert_state_dict(cls, state_dict: dict[str, Any]) -> dict[str, Tensor]:
        """Official checkpoint -> this module's keys.

        Accepts the official dict of two state dicts (other entries, e.g. optimiser state, are ignored),
        the same flattened as ``'<part>.<key>'``, or keys already prefixed ``fusion.`` / ``sr.``.
        """
        if any(part in state_dict for part in OFFICIAL_PARTS):
            return {
                prefix + key: tensor
                for part, prefix in OFFICIAL_PARTS.items()
                for key, tensor in state_dict.get(part, {}).items()
            }
        converted = {}
        for key, tensor in state_dict.items():
            part, _, rest = key.partition(".")
            converted[OFFICIAL_PARTS[part] + rest if part in OFFICIAL_PARTS else key] = tensor
        return converted


# Totals = Student_fu 3,472,544 + Student_sr (x2 7,831,537; x3 8,016,177; x4 7,979,249), spec section 4.1.
# The paper form's Student_fu: 3,472,544 - CEA 247,954 + paper CEA 12,481 + a second ResidualGroup 706,852
# = 3,943,923.
for _scale, _count, _paper_count in (
    (2, 11_304_081, 11_775_460),
    (3, 11_488_721, 11_960_100),
    (4, 11_451_793, 11_923_172),
):
    register_model(
        f"hkd-student-x{_scale}",
        role="student",
        paper="HKDnet (Xiao et al., IEEE TIM 2022)",
        param_count=_count,
        summary=(
            f"HKDnet student, fusion + x{_scale} super-resolution: LR input -> x{_scale} fused image; "
            "official Student_fu (RG+DFAG IR branch, RG+CEA VIS branch) + Student_sr (RCAN 5x20 RCAB); "
            f"{_count:,} params incl. 36,928 of the unused official fusion.conv"
        ),
        scale=_scale,
    )(HKDStudent)
    register_model(
        f"hkd-student-x{_scale}-paper",
        role="student",
        paper="HKDnet (Xiao et al., IEEE TIM 2022)",
        param_count=_paper_count,
        summary=(
            f"HKDnet student x{_scale} as the paper writes it: DFA eqs. 6-7, 2 RGs + CEA eqs. 8-13 in the VIS "
            f"branch, l1-norm activity fusion (eqs. 14-16); not the official checkpoint layout; {_paper_count:,} params"
        ),
        scale=_scale,
        form="paper",
    )(HKDStudent)
