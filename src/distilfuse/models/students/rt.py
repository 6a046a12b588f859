"""Real-time students (rt-s, rt-m, rt-l): patchified re-parameterisable conv nets for CPU inference.

Full-resolution convolutions with few channels are memory-bound on a CPU (a 3-layer 8-channel net takes
~9 ms at 640x480 on 2 cores), so all the convolutions run at 1/4 resolution, where C channels cost the
memory traffic of C/16 at full resolution:

* stem: 4x4 conv with stride 4 (2 -> C), ReLU: every input pixel reaches the features (patchify); it is
  written as one 1 -> C conv per input, summed, which spares the concatenated full-resolution tensor;
* ``body``: ``blocks`` x [``RepConv`` C -> C (3x3 + 1x1 + scaled identity, folded into one 3x3), ReLU];
* ``head``: ``RepConv`` C -> 2*16 without identity, pixel shuffle x4: two full-resolution maps, a blend
  logit ``z`` and a detail term ``d``;
* output: ``vis + w * (ir - vis) + d`` with ``w = sigmoid(z + blend_gain * (ir - vis))`` (``gate``).

The head starts at zero, so an untrained model is the soft-max fusion rule ``vis + sigmoid(8 (ir - vis))
(ir - vis)`` (the brighter input wins, smoothly) and training only learns corrections to it; the blend
keeps full-resolution detail of both inputs whatever the body predicts. The raw output is the unclamped
fused luma (in [0,1] at initialisation); ``to_unit_range`` clamps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distilfuse.models.base import FusionModel
from distilfuse.models.blocks.reparam import RepConv
from distilfuse.models.registry import register_model

PATCH = 4
INITIAL_BLEND_GAIN = 8.0


@register_model(
    "rt-s",
    role="student",
    paper="distilfuse (this project)",
    param_count=16_049,
    summary="real-time student: 4x4/4 patchify stem, 4 RepConv blocks of 16 channels at 1/4 resolution, "
    "pixel-shuffle head to a blend weight and a detail map; 14,449 params (56 KB) once folded",
    untrained_default=True,
    channels=16,
    blocks=4,
)
@register_model(
    "rt-m",
    role="student",
    paper="distilfuse (this project)",
    param_count=31_737,
    summary="real-time student: 4x4/4 patchify stem, 4 RepConv blocks of 24 channels at 1/4 resolution, "
    "pixel-shuffle head to a blend weight and a detail map; 28,569 params (112 KB) once folded",
    untrained_default=True,
    channels=24,
    blocks=4,
)
@register_model(
    "rt-l",
    role="student",
    paper="distilfuse (this project)",
    param_count=52_545,
    summary="real-time student: 4x4/4 patchify stem, 4 RepConv blocks of 32 channels at 1/4 resolution, "
    "pixel-shuffle head to a blend weight and a detail map; 47,297 params (185 KB) once folded",
    untrained_default=True,
    channels=32,
    blocks=4,
)
class RTFuse(FusionModel):
    """Features for distillation (all taps are module outputs):

    ``stem`` and ``body`` are (B,C,H/4,W/4) after ReLU (``body`` is the last block's); ``head`` is (B,2,H,W)
    with the blend logit and the detail map; ``weight`` is the blend weight w of the IR input, (B,1,H,W).
    """

    size_multiple = PATCH
    feature_taps = {"stem": "stem", "body": "body", "head": "head", "weight": "gate"}

    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        self.stem_ir = nn.Conv2d(1, channels, PATCH, stride=PATCH)
        self.stem_vis = nn.Conv2d(1, channels, PATCH, stride=PATCH, bias=False)
        self.stem = nn.ReLU()
        self.body = nn.Sequential(*(m for _ in range(blocks) for m in (RepConv(channels, channels), nn.ReLU())))
        self.head = nn.Sequential(RepConv(channels, 2 * PATCH**2, identity=False), nn.PixelShuffle(PATCH))
        self.gate = nn.Sigmoid()
        self.blend_gain = nn.Parameter(torch.tensor([INITIAL_BLEND_GAIN]))
        with torch.no_grad():
            for param in self.head.parameters():
                param.zero_()

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        patches = self.stem_ir(ir) + self.stem_vis(vis)
        # The 1/4-resolution convolutions run much faster channels-last on CPU (benchmarks/bench_rt.py).
        maps = self.head(self.body(self.stem(patches.contiguous(memory_format=torch.channels_last))))
        contrast = ir - vis
        weight = self.gate(torch.addcmul(maps[:, :1], self.blend_gain, contrast))
        return torch.addcmul(vis + maps[:, 1:], weight, contrast)
