"""SCAKD generator (Zhao & Cai, The Visual Computer 2024): the teacher, and the base of the student.

The paper (section 3.2, Fig. 2) fixes the topology: a dual-stream encoder whose IR and VIS branches each
hold residual dense blocks (RDB, RDN) and one SPADE module conditioned on that branch's source image; a
decoder of ECA over the fused features followed by convolutions; the teacher has 4 RDBs per branch and 4
decoder convs, the student 2 and 2. It reports 1.58 M (teacher) and 0.86 M (student) parameters and
25.94 / 14.08 GFLOPs, but no widths, kernel sizes or activations, and no code was released.

Unstated details chosen here (all convs 3x3 with reflect padding unless noted):
* branch: head conv 1 -> 64 (no activation, as RDN's shallow feature conv), RDBs with 64 channels,
  growth 48, 3 conv+ReLU layers and a 1x1 local fusion with residual, then SPADE(64) with hidden width
  64 and a parameter-free instance norm, conditioned on the branch's own source image;
* fusion: channel concatenation of the two branches (128 ch), then ECA (1-D kernel 5 for 128 ch);
* teacher decoder 128 -> 96 -> 48 -> 16 -> 1, student decoder 128 -> 64 -> 1, LeakyReLU(0.2) between
  convs and tanh at the end (the FusionGAN-family convention the paper's LSGAN training follows);
* inputs in [0, 1] are mapped to [-1, 1] inside ``fuse_raw``; the raw output is the tanh map and
  ``to_unit_range`` maps it back with (y + 1) / 2.
The widths (growth 48, SPADE hidden 64, decoder widths) were picked by enumerating common choices until
both counts round to the paper's: teacher 1,578,934 (paper 1.58 M), student 859,334 (paper 0.86 M).
At 128x128 the convolutions' multiply-accumulates (biases excluded) measure 25.83 G (teacher) and 14.06 G
(student), close to the paper's 25.94 / 14.08 GFLOPs, whose input size the paper does not state.

Feature taps for SCA distillation (paper section 3.3: two encoder layers per branch and one high decoder
layer, balance alpha = 0.8 for the IR branch, 0.2 for the VIS branch, 0.5 for the decoder). Teacher and
student use the same names: ``ir_mid`` / ``vis_mid`` (after half the RDBs: teacher RDB 2 of 4, student
RDB 1 of 2), ``ir_enc`` / ``vis_enc`` (branch outputs after SPADE, 64 ch) and ``fused`` (ECA output, 128
ch), all at full resolution and with equal channel counts between teacher and student.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.eca import ECA
from distilfuse.models.blocks.rdb import ResidualDenseBlock
from distilfuse.models.blocks.spade import SPADE
from distilfuse.models.registry import register_model

BRANCH_CHANNELS = 64
RDB_GROWTH = 48
RDB_LAYERS = 3
SPADE_HIDDEN = 64
PADDING = "reflect"


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=PADDING)


class EncoderBranch(nn.Module):
    """head conv -> n RDBs -> SPADE conditioned on the branch's source image."""

    def __init__(self, n_rdb: int) -> None:
        super().__init__()
        self.head = conv3x3(1, BRANCH_CHANNELS)
        self.rdbs = nn.Sequential(
            *(ResidualDenseBlock(BRANCH_CHANNELS, RDB_GROWTH, RDB_LAYERS, PADDING) for _ in range(n_rdb))
        )
        self.spade = SPADE(BRANCH_CHANNELS, cond_channels=1, hidden=SPADE_HIDDEN, padding_mode=PADDING)

    def forward(self, image: Tensor) -> Tensor:
        return self.spade(self.rdbs(self.head(image)), image)


def sca_feature_taps(n_rdb: int) -> dict[str, str]:
    """Tap names shared by teacher and student; ``*_mid`` is the output of RDB n_rdb/2."""
    mid = f"rdbs.{n_rdb // 2 - 1}"
    return {
        "ir_mid": f"ir_branch.{mid}",
        "ir_enc": "ir_branch.spade",
        "vis_mid": f"vis_branch.{mid}",
        "vis_enc": "vis_branch.spade",
        "fused": "eca",
    }


class SCAKDGenerator(FusionModel):
    """Dual-branch encoder, concat + ECA, conv decoder with tanh. Raw output in (-1, 1)."""

    def __init__(self, n_rdb: int, decoder_widths: tuple[int, ...]) -> None:
        super().__init__()
        self.ir_branch = EncoderBranch(n_rdb)
        self.vis_branch = EncoderBranch(n_rdb)
        self.eca = ECA(2 * BRANCH_CHANNELS)
        widths = (2 * BRANCH_CHANNELS, *decoder_widths, 1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-2], widths[1:-1], strict=True):
            layers += [conv3x3(c_in, c_out), nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*layers, conv3x3(widths[-2], 1), nn.Tanh())

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        ir, vis = 2 * ir - 1, 2 * vis - 1
        fused = self.eca(torch.cat([self.ir_branch(ir), self.vis_branch(vis)], dim=1))
        return self.decoder(fused)

    def to_unit_range(self, raw: Tensor) -> Tensor:
        return (raw + 1) / 2


@register_model(
    "scakd-teacher",
    role="teacher",
    paper="SCAKD (Zhao & Cai, The Visual Computer 2024)",
    param_count=1_578_934,
    summary=(
        "SCAKD teacher generator: per branch conv + 4 RDBs + SPADE(source image), concat + ECA, "
        "4-conv decoder, "
        "tanh; 1,578,934 params vs the paper's 1.58 M (widths unstated in the paper, chosen to match)"
    ),
)
class SCAKDTeacher(SCAKDGenerator):
    feature_taps = sca_feature_taps(4)

    def __init__(self) -> None:
        super().__init__(n_rdb=4, decoder_widths=(96, 48, 16))
