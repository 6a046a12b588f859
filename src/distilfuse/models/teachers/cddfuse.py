"""CDDFuse (Zhao et al., CVPR 2023): correlation-driven dual-branch feature decomposition (1,188,272 params).

Module names follow the official repository (Zhaozixiang1228/MMIF-CDDFuse) so that its checkpoint
(``{'DIDF_Encoder', 'DIDF_Decoder', 'BaseFuseLayer', 'DetailFuseLayer'}``, each saved from DataParallel)
loads directly with ``create('cddfuse', weights=path)``. CDDFuse is trained in two stages: stage I trains the shared
encoder and the decoder to reconstruct each modality (``reconstruct``); stage II adds the fuse layers.
``forward(ir, vis)`` is its test-time fusion path.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.restormer import LiteTransformerBlock, TransformerBlock
from distilfuse.models.registry import register_model

DIM = 64
HEADS = 8
OFFICIAL_PARTS = ("DIDF_Encoder", "DIDF_Decoder", "BaseFuseLayer", "DetailFuseLayer")


class InvertedResidualBlock(nn.Module):
    """MobileNetV2 bottleneck without biases: 1x1 expand, ReLU6, reflect-padded depthwise 3x3, ReLU6, 1x1."""

    def __init__(self, channels: int, expand_ratio: int = 2) -> None:
        super().__init__()
        hidden = channels * expand_ratio
        self.bottleneckBlock = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU6(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(hidden, hidden, 3, groups=hidden, bias=False),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.bottleneckBlock(x)


class DetailNode(nn.Module):
    """Invertible (affine coupling) node on two half-feature streams, after a 1x1 channel shuffle."""

    def __init__(self, channels: int = DIM) -> None:
        super().__init__()
        half = channels // 2
        self.theta_phi = InvertedResidualBlock(half)
        self.theta_rho = InvertedResidualBlock(half)
        self.theta_eta = InvertedResidualBlock(half)
        self.shffleconv = nn.Conv2d(channels, channels, 1, bias=True)

    def forward(self, z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
        z1, z2 = self.shffleconv(torch.cat([z1, z2], dim=1)).chunk(2, dim=1)
        z2 = z2 + self.theta_phi(z1)
        z1 = z1 * torch.exp(self.theta_rho(z2)) + self.theta_eta(z2)
        return z1, z2


class DetailFeatureExtraction(nn.Module):
    """``num_layers`` DetailNodes on the two channel halves of the input, concatenated back."""

    def __init__(self, num_layers: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(*(DetailNode() for _ in range(num_layers)))

    def forward(self, x: Tensor) -> Tensor:
        z1, z2 = x.chunk(2, dim=1)
        for node in self.net:
            z1, z2 = node(z1, z2)
        return torch.cat([z1, z2], dim=1)


class OverlapPatchEmbed(nn.Module):
    def __init__(self, in_channels: int = 1, embed_dim: int = DIM) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dim, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


def transformer_stack(num_blocks: int = 4) -> nn.Sequential:
    return nn.Sequential(*(TransformerBlock(DIM, HEADS, ffn_expansion_factor=2) for _ in range(num_blocks)))


class RestormerEncoder(nn.Module):
    """Shared encoder: image -> (base = low-frequency/global, detail = high-frequency/local, shallow f)."""

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = OverlapPatchEmbed()
        self.encoder_level1 = transformer_stack()
        self.baseFeature = LiteTransformerBlock(DIM, HEADS)
        self.detailFeature = DetailFeatureExtraction(3)

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        shallow = self.encoder_level1(self.patch_embed(image))
        return self.baseFeature(shallow), self.detailFeature(shallow), shallow


class RestormerDecoder(nn.Module):
    """cat[base, detail] -> 1x1 reduce -> 4 Restormer blocks -> conv head + input image -> sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce_channel = nn.Conv2d(DIM * 2, DIM, 1, bias=False)
        self.encoder_level2 = transformer_stack()
        self.output = nn.Sequential(
            nn.Conv2d(DIM, DIM // 2, 3, padding=1, bias=False),
            nn.LeakyReLU(),
            nn.Conv2d(DIM // 2, 1, 3, padding=1, bias=False),
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, image: Tensor, base: Tensor, detail: Tensor) -> tuple[Tensor, Tensor]:
        reduced = self.reduce_channel(torch.cat([base, detail], dim=1))
        decoded = self.output(self.encoder_level2(reduced)) + image
        return self.sigmoid(decoded), reduced


@register_model(
    "cddfuse",
    role="teacher",
    paper="CDDFuse (Zhao et al., CVPR 2023)",
    param_count=1_188_272,
    summary="shared Restormer encoder, Lite-Transformer base / INN detail fuse layers, Restormer decoder",
)
class CDDFuse(FusionModel):
    """Fusion path: shared encoder on VIS and IR, base and detail fuse layers on the summed features, decoder
    with the VIS image as the residual, sigmoid output (already in (0,1))."""

    feature_taps = {
        "base_ir": "base_ir",
        "base_vis": "base_vis",
        "detail_ir": "detail_ir",
        "detail_vis": "detail_vis",
        "base": "BaseFuseLayer",
        "detail": "DetailFuseLayer",
        "reduced": "DIDF_Decoder.reduce_channel",
        "decoded": "DIDF_Decoder.encoder_level2",  # 64-ch feature right before the output head
        "out": "DIDF_Decoder.sigmoid",
    }

    def __init__(self) -> None:
        super().__init__()
        self.DIDF_Encoder = RestormerEncoder()
        self.DIDF_Decoder = RestormerDecoder()
        self.BaseFuseLayer = LiteTransformerBlock(DIM, HEADS)
        self.DetailFuseLayer = DetailFeatureExtraction(1)
        # Named identities so that hooks reach the per-modality features of the shared encoder.
        self.base_ir, self.base_vis = nn.Identity(), nn.Identity()
        self.detail_ir, self.detail_vis = nn.Identity(), nn.Identity()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        base_vis, detail_vis, _ = self.DIDF_Encoder(vis)
        base_ir, detail_ir, _ = self.DIDF_Encoder(ir)
        base_vis, detail_vis = self.base_vis(base_vis), self.detail_vis(detail_vis)
        base_ir, detail_ir = self.base_ir(base_ir), self.detail_ir(detail_ir)
        base = self.BaseFuseLayer(base_ir + base_vis)
        detail = self.DetailFuseLayer(detail_ir + detail_vis)
        fused, _ = self.DIDF_Decoder(vis, base, detail)
        return fused

    def reconstruct(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Stage-I path: (reconstructed image, base, detail) of one modality through encoder and decoder."""
        base, detail, _ = self.DIDF_Encoder(image)
        reconstructed, _ = self.DIDF_Decoder(image, base, detail)
        return reconstructed, base, detail

    @classmethod
    def convert_state_dict(cls, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Accept flattened official keys that still carry DataParallel's ``module.`` after the part name."""

        def strip(key: str) -> str:
            part, _, rest = key.partition(".")
            return f"{part}.{rest.removeprefix('module.')}" if part in OFFICIAL_PARTS else key

        return {strip(key): value for key, value in state_dict.items()}
