"""HKDnet teacher (Xiao et al., IEEE TIM 2022): DenseFuse-like high-resolution fusion, 74,193 parameters.

Built from the architecture spec (section 4.1) with the official ``Teacher_net`` attribute names, so an
official checkpoint would load strictly. Two registered forms (HKDnet publishes no teacher weights):

``hkd-teacher`` (the paper's text, default), on IR and VIS (B,1,H,W):

1. s_X = conv1(X) (16 ch), e_X = DB1(s_X) (64 ch), shared weights for X in {IR, VIS};
2. F_f = l1-norm activity fusion(e_IR, e_VIS) (eqs. 14-16: ``ActivityRatioFusion``);
3. eq. 5: the decoder D = conv2..conv5 takes e_IR + alpha e_VIS + F_f (alpha = 0.5, section IV-A);
   x2 = conv2(.), out_fe = conv4(conv3(x2)) (16 ch);
4. result = conv5(out_fe), a ReflectConv 16 -> 1 **with** ReLU, so the raw output is >= 0 (its bias starts
   at 0.5, so that the ReLU is not dead at initialisation).

``hkd-teacher-skip`` (the form before issue 10): step 2 is the official code's spatial softmax of the
channel means (``SpatialSoftmaxFusion``), the decoder takes F_f alone, and out_fe adds a skip =
spatial-softmax fusion(s_IR, s_VIS) (a project decision: the released decoder takes one tensor). A
teacher trained with it must be loaded as ``hkd-teacher-skip``.

Distillation (paper section III-D; the pairs are inferred from shapes, no public code confirms them):
teacher ``x2`` <-> student ``sr_uper_fe`` (64 ch, HR), ``out_fe`` <-> ``sr_feature`` (16 ch, HR), and
``result`` <-> the student's SR image. In the fusion-only stage, ``out_fe`` computed on the *LR* inputs
labels the student's ``fusion_feature``.
"""

from __future__ import annotations

from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.densefuse import ActivityRatioFusion, DenseBlock, ReflectConvLayer, SpatialSoftmaxFusion
from distilfuse.models.registry import register_model


@register_model(
    "hkd-teacher",
    role="teacher",
    paper="HKDnet (Xiao et al., IEEE TIM 2022)",
    param_count=74_193,
    summary=(
        "HKDnet HR fusion teacher as the paper writes it, official Teacher_net layout: conv1 + dense block "
        "(shared encoder), l1-norm activity fusion (eqs. 14-16), conv2..conv5 decoder on F_ir + 0.5 F_vis + F_f "
        "(eq. 5); 74,193 params (spec count)"
    ),
)
@register_model(
    "hkd-teacher-skip",
    role="teacher",
    paper="HKDnet (Xiao et al., IEEE TIM 2022)",
    param_count=74_193,
    summary=(
        "HKDnet HR fusion teacher, the form before issue 10: official spatial-softmax fusion, conv2..conv5 "
        "decoder on F_f with a fused conv1 skip; 74,193 params (spec count)"
    ),
    form="skip",
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

    FORMS = ("paper", "skip")

    def __init__(self, form: str = "paper", alpha: float = 0.5) -> None:
        super().__init__()
        if form not in self.FORMS:
            raise ValueError(f"hkd-teacher: form must be one of {self.FORMS}, got {form!r}")
        self.form, self.alpha = form, float(alpha)
        self.conv1 = ReflectConvLayer(1, 16)
        self.DB1 = DenseBlock(16, growth=16, n_layers=3)
        self.conv2 = ReflectConvLayer(64, 64)
        self.conv3 = ReflectConvLayer(64, 32)
        self.conv4 = ReflectConvLayer(32, 16)
        self.conv5 = ReflectConvLayer(16, 1)
        # conv5 ends in a ReLU on a single channel, fed by non-negative features: with PyTorch's default
        # initialisation a negative bias makes the whole output 0 for about half the seeds (seed 0 among
        # them), and then no gradient reaches any weight: the teacher never trains. Starting the bias at
        # mid-grey keeps the output unit alive at initialisation for every seed.
        nn.init.constant_(self.conv5.conv2d.bias, 0.5)
        # Parameter-free named stages, so hooks see each tensor once per forward.
        self.ir_encoding = nn.Identity()
        self.vis_encoding = nn.Identity()
        self.fuse_encodings = ActivityRatioFusion() if form == "paper" else SpatialSoftmaxFusion()
        self.fuse_skip = SpatialSoftmaxFusion()
        self.out_fe = nn.Identity()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        shallow_ir, shallow_vis = self.conv1(ir), self.conv1(vis)
        enc_ir, enc_vis = self.ir_encoding(self.DB1(shallow_ir)), self.vis_encoding(self.DB1(shallow_vis))
        fused = self.fuse_encodings(enc_ir, enc_vis)
        if self.form == "paper":  # eq. 5: the source features join the fused one at the decoder's input
            return self.conv5(self.out_fe(self.conv4(self.conv3(self.conv2(enc_ir + self.alpha * enc_vis + fused)))))
        decoded = self.conv4(self.conv3(self.conv2(fused)))
        return self.conv5(self.out_fe(self.fuse_skip(shallow_ir, shallow_vis) + decoded))
