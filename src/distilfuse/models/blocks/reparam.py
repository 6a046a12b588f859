"""Structural re-parameterisation without batch norm: 3x3 + 1x1 + scaled-identity branches as one 3x3 conv.

The three branches are linear in the input, so their sum is the single 3x3 convolution whose kernel is the
3x3 kernel plus the 1x1 kernel at its centre plus ``diag(identity_scale)`` at its centre (RepVGG, Ding et
al. 2021, with a learned per-channel scale in place of the identity branch's batch norm). ``RepConv``
computes that kernel in every forward (about 25 us per layer on a CPU core), so training and inference run
one convolution per layer while the optimiser sees the multi-branch parameters; ``reparameterize`` swaps
each ``RepConv`` for the plain ``nn.Conv2d`` it equals (the deploy form). A ``RepConv`` loads either form
of state dict: a deploy-form ``weight`` becomes the 3x3 branch, with zero 1x1 and identity branches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RepConv(nn.Module):
    """3x3 convolution (zero padding 1, stride 1) parameterised as 3x3 + 1x1 (+ scaled identity) branches.

    The identity branch exists when ``c_in == c_out`` and ``identity`` is true; it starts at scale 1, so
    ``relu(RepConv(x))`` starts as a residual block. The other branches use ``nn.Conv2d``'s initialisation.
    """

    def __init__(self, c_in: int, c_out: int, identity: bool = True) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.weight3 = nn.Parameter(torch.empty(c_out, c_in, 3, 3))
        self.weight1 = nn.Parameter(torch.empty(c_out, c_in, 1, 1))
        self.identity_scale = nn.Parameter(torch.ones(c_out)) if identity and c_in == c_out else None
        self.bias = nn.Parameter(torch.empty(c_out))
        for weight in (self.weight3, self.weight1):
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -1 / math.sqrt(9 * c_in), 1 / math.sqrt(9 * c_in))
        self.register_load_state_dict_pre_hook(_branches_from_deploy_form)

    def kernel(self) -> Tensor:
        """The 3x3 kernel equal to the sum of the branches."""
        centre = self.weight1
        if self.identity_scale is not None:
            eye = torch.eye(self.c_out, dtype=centre.dtype, device=centre.device)
            centre = centre + (self.identity_scale[:, None] * eye)[..., None, None]
        return self.weight3 + F.pad(centre, (1, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.kernel(), self.bias, padding=1)

    def fold(self) -> nn.Conv2d:
        """The plain 3x3 convolution computing the same function (a copy; this module is unchanged)."""
        conv = nn.Conv2d(self.c_in, self.c_out, 3, padding=1).to(self.weight3.device, self.weight3.dtype)
        with torch.no_grad():
            conv.weight.copy_(self.kernel())
            conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self) -> str:
        return f"{self.c_in}, {self.c_out}, identity={self.identity_scale is not None}"


def _branches_from_deploy_form(module: RepConv, state_dict: dict[str, Tensor], prefix: str, *_args: object) -> None:
    """Load hook: a folded ``<prefix>weight`` (from ``reparameterize``) becomes the 3x3 branch."""
    folded = state_dict.get(prefix + "weight")
    if folded is None or prefix + "weight3" in state_dict:
        return
    state_dict[prefix + "weight3"] = state_dict.pop(prefix + "weight")
    state_dict[prefix + "weight1"] = folded.new_zeros(module.weight1.shape)
    if module.identity_scale is not None:
        state_dict[prefix + "identity_scale"] = folded.new_zeros(module.identity_scale.shape)


def reparameterize(model: nn.Module) -> nn.Module:
    """Replace every ``RepConv`` in ``model`` by its folded ``nn.Conv2d``, in place; returns ``model``.

    The result computes the same function (to float rounding) without the per-forward fold, and its state
    dict is the deploy form (``<path>.weight``/``<path>.bias``), which a fresh multi-branch model also loads.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, RepConv):
            setattr(model, name, child.fold())
        else:
            reparameterize(child)
    return model


__all__ = ["RepConv", "reparameterize"]
