"""Small convolution layouts shared by several official ports."""

from __future__ import annotations

from torch import nn


def reflect_conv3(c_in: int, c_out: int, stride: int = 1, relu: bool = False) -> nn.Sequential:
    """ReflectionPad2d(1) + 3x3 conv (+ ReLU), as a Sequential so state-dict keys are '<name>.1.*'.

    This is the MMDRFuse layout (student and teacher); a conv with ``padding_mode="reflect"`` computes
    the same but would store its weights as '<name>.weight'.
    """
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3, stride=stride)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def channel_gate(channels: int, reduction: int) -> nn.Sequential:
    """Squeeze-and-excitation gate on a pooled (B,C,1,1) vector: conv1 C->C/r, ReLU, conv1 C/r->C, sigmoid.

    RCAN's and SHIP's ``conv_du`` layout (keys '.0' and '.2'); MLKD puts a pooling layer in front of it.
    """
    return nn.Sequential(
        nn.Conv2d(channels, channels // reduction, 1),
        nn.ReLU(),
        nn.Conv2d(channels // reduction, channels, 1),
        nn.Sigmoid(),
    )
