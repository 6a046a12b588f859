"""SCAKD student generator and its discriminator, used as D_ir and D_vis (Zhao & Cai, Vis. Comput. 2024).

The student is the teacher's architecture (``distilfuse.models.teachers.scakd``, where the unstated
details are listed) with 2 RDBs per branch instead of 4 and a 2-conv decoder (128 -> 64 -> 1): 859,334
parameters against the paper's 0.86 M. Its feature taps carry the teacher's names.

The paper trains the student against two discriminators of one architecture with independent weights, with
least-squares losses and labels drawn from [0.7, 1.2] (real) and [0, 0.3] (fused): FusionGAN's recipe. It
does not describe the discriminator, so ``scakd-discriminator`` is FusionGAN's: four 3x3 stride-2 convs
(1 -> 32 -> 64 -> 128 -> 256) with LeakyReLU(0.2) and batch norm after all but the first, then a linear
layer to one unbounded score (no sigmoid, as the losses are least squares). FusionGAN flattens a fixed
120x120 patch; a global average pool before the linear layer accepts any input size.
"""

from __future__ import annotations

from torch import Tensor, nn

from distilfuse.models.registry import register_model
from distilfuse.models.teachers.scakd import SCAKDGenerator, sca_feature_taps


@register_model(
    "scakd-student",
    role="student",
    paper="SCAKD (Zhao & Cai, The Visual Computer 2024)",
    param_count=859_334,
    summary=(
        "SCAKD student generator: per branch conv + 2 RDBs + SPADE(source image), concat + ECA, "
        "2-conv decoder, "
        "tanh; 859,334 params vs the paper's 0.86 M (widths unstated in the paper, chosen to match)"
    ),
)
class SCAKDStudent(SCAKDGenerator):
    feature_taps = sca_feature_taps(2)

    def __init__(self) -> None:
        super().__init__(n_rdb=2, decoder_widths=(64,))


@register_model(
    "scakd-discriminator",
    role="discriminator",
    paper="SCAKD (Zhao & Cai, The Visual Computer 2024)",
    param_count=388_993,
    summary="SCAKD D_ir / D_vis (FusionGAN-style): 4 strided conv3 + BN + LeakyReLU, mean pool, linear score",
)
class SCAKDDiscriminator(nn.Module):
    """forward(image (B,1,H,W)) -> (B,1) least-squares GAN score."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i, c_out in enumerate(widths):
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.score = nn.Linear(c_in, 1)

    def forward(self, image: Tensor) -> Tensor:
        if image.dim() != 4 or image.shape[1] != 1:
            raise ValueError(f"expected a (B,1,H,W) image, got {tuple(image.shape)}")
        return self.score(self.features(image).mean(dim=(-2, -1)))
