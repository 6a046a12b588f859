"""HKDnet teacher (Xiao et al., IEEE TIM 2022): DenseFuse-like high-resolution fusion, 74,193 parameters.

Built from the architecture spec (section 4.1) with the official ``Teacher_net`` attribute names, so an
official checkpoint would load strictly. Forward, on IR and VIS (B,1,H,W):

1. s_X = conv1(X) (16 ch), e_X = DB1(s_X) (64 ch), shared weights for X in {IR, VIS};
2. f = spatial-softmax fusion(e_IR, e_VIS); x2 = conv2(f) (64 ch);
3. out_fe = skip + conv4(conv3(x2)) (16 ch) with skip = spatial-softmax fusion(s_IR, s_VIS);
4. result = conv5(out_fe), a ReflectConv 16 -> 1 **with** ReLU, so the raw output is >= 0.

No training script was published, so the skip in step 3 is a project decision (the paper's Eq. 5 adds the
source features F_ir + alpha F_vis; the released decoder takes one 16-channel tensor).

Distillation (paper section III-D; the pairs are inferred from shapes, no public code confirms them):
teacher ``x2`` <-> student ``sr_uper_fe`` (64 ch, HR), ``out_fe`` <-> ``sr_feature`` (16 ch, HR), and
``result`` <-> the student's SR image. In the fusion-only stage, ``out_fe`` computed on the *LR* inputs
labels the student's ``fusion_feature``.
"""

from __future__ import annotations

from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.densefuse import DenseBlock, ReflectConvLayer, SpatialSoftmaxFusion
from distilfuse.models.registry import register_model


@register_model(
    "hkd-teacher",
    role="teacher",
    paper="HKDnet (Xiao et al., IEEE TIM 2022)",
    param_count=74_193,
    summary=(
        "HKDnet HR fusion teacher, official Teacher_net layout: conv1 + dense block (shared encoder), "
        "spatial-softmax fusion, conv2..conv5 decoder with fused conv1 skip; 74,193 params (spec count)"
    ),
)
class HKDTeacher(FusionModel):
    """Raw output: the conv5 map (ReLU, >= 0, unbounded above); ``to_unit_range`` clamps."""

    feature_taps = {
        "enc_ir": "ir_encoding",
        "enc_vis": "vis_encoding",
        "fused": "fuse_encodings",
        "x2": "conv2",
        "out_fe": "out_fe",
        "result": "conv5",
    }

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ReflectConvLayer(1, 16)
        self.DB1 = DenseBlock(16, growth=16, n_layers=3)
        self.conv2 = ReflectConvLayer(64, 64)
        self.conv3 = ReflectConvLayer(64, 32)
        self.conv4 = ReflectConvLayer(32, 16)
        self.conv5 = ReflectConvLayer(16, 1)
        # Parameter-free named stages, so hooks see each tensor once per forward.
        self.ir_encoding = nn.Identity()
        self.vis_encoding = nn.Identity()
        self.fuse_encodings = SpatialSoftmaxFusion()
        self.fuse_skip = SpatialSoftmaxFusion()
        self.out_fe = nn.Identity()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        shallow_ir, shallow_vis = self.conv1(ir), self.conv1(vis)
        fused = self.fuse_encodings(self.ir_encoding(self.DB1(shallow_ir)), self.vis_encoding(self.DB1(shallow_vis)))
        decoded = self.conv4(self.conv3(self.conv2(fused)))
        return self.conv5(self.out_fe(self.fuse_skip(shallow_ir, shallow_vis) + decoded))
