"""MLKD student (Zhang et al., Acta Electronica Sinica 2025): CNN-Transformer dual-branch fusion network.

The paper (section 3.3) fixes: per-modality encoders whose outputs are concatenated into F0 with C = 32
channels; a global branch of 3 Restormer blocks (4 heads, 32 channels); a local branch of 3 detail-aware
conv blocks (depthwise-separable conv, squeeze-excitation channel attention, residual); concat, 1x1 conv
back to C, one Restormer block (the feature F_f that MLKD distils); decoder conv-LeakyReLU-conv-sigmoid.
It reports 0.0772 M parameters. Choices the paper leaves open (documented in docs/models.md):

* encoders: per modality Conv3 1->16, LeakyReLU, Conv3 16->16, LeakyReLU (with biases);
* Restormer blocks: Restormer defaults, FFN expansion 2.66 and no biases;
* detail-aware block: depthwise Conv3 + pointwise Conv1 (biases), LeakyReLU, SE with reduction 4;
* decoder: Conv3 32->16, LeakyReLU(0.01), Conv3 16->1 (biases), as CDDFuse's output head;
* zero padding everywhere.

With these choices the student has 76,721 parameters (0.0767 M).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.conv import channel_gate
from distilfuse.models.blocks.restormer import TransformerBlock
from distilfuse.models.registry import register_model

CHANNELS = 32
HEADS = 4


class ChannelConcat(nn.Module):
    """Concatenation along channels as a module, so that hooks reach the concatenated feature."""

    def forward(self, *features: Tensor) -> Tensor:
        return torch.cat(features, dim=1)


class SqueezeExcitation(nn.Module):
    """Channel attention: x * sigmoid(W2 relu(W1 GAP(x))) (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), *channel_gate(channels, reduction))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class DetailAwareConvBlock(nn.Module):
    """DACB: x + SE(LeakyReLU(pointwise(depthwise(x))))."""

    def __init__(self, channels: int, se_reduction: int = 4) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.act = nn.LeakyReLU(inplace=True)
        self.attention = SqueezeExcitation(channels, se_reduction)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.attention(self.act(self.pointwise(self.depthwise(x))))


def modality_encoder(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1),
        nn.LeakyReLU(inplace=True),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.LeakyReLU(inplace=True),
    )


def restormer_block() -> TransformerBlock:
    return TransformerBlock(CHANNELS, HEADS, ffn_expansion_factor=2.66, bias=False)


@register_model(
    "mlkd-student",
    role="student",
    paper="MLKD (Zhang et al., Acta Electronica Sinica 2025)",
    param_count=76_721,
    summary="CNN-Transformer dual-branch student: 3 Restormer blocks and 3 detail-aware conv blocks in "
    "parallel, 1x1 conv, 1 Restormer block, conv decoder, sigmoid",
)
class MLKDStudent(FusionModel):
    """Raw output is the sigmoid map in (0,1).

    Features: ``enc_ir``/``enc_vis`` (16 ch each), ``encoded`` (F0), ``global``, ``local`` (F_g, F_l),
    ``fused`` (F_f after the unifying Restormer block: the pre-decoder feature that MLKD's attention and
    similarity losses distil), ``out``.
    """

    feature_taps = {
        "enc_ir": "encoder_ir",
        "enc_vis": "encoder_vis",
        "encoded": "concat_encoded",
        "global": "global_branch",
        "local": "local_branch",
        "fused": "unify",
        "out": "sigmoid",
    }

    def __init__(self) -> None:
        super().__init__()
        self.encoder_ir = modality_encoder(CHANNELS // 2)
        self.encoder_vis = modality_encoder(CHANNELS // 2)
        self.concat_encoded = ChannelConcat()
        self.global_branch = nn.Sequential(*(restormer_block() for _ in range(3)))
        self.local_branch = nn.Sequential(*(DetailAwareConvBlock(CHANNELS) for _ in range(3)))
        self.concat_branches = ChannelConcat()
        self.reduce = nn.Conv2d(2 * CHANNELS, CHANNELS, 1)
        self.unify = restormer_block()
        self.decoder = nn.Sequential(
            nn.Conv2d(CHANNELS, CHANNELS // 2, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(CHANNELS // 2, 1, 3, padding=1),
        )
        self.sigmoid = nn.Sigmoid()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        encoded = self.concat_encoded(self.encoder_ir(ir), self.encoder_vis(vis))
        both = self.concat_branches(self.global_branch(encoded), self.local_branch(encoded))
        return self.sigmoid(self.decoder(self.unify(self.reduce(both))))
