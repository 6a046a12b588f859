"""Perceptual (feature) losses: a VGG-16/19 stack loaded from a user file, or a weight-free substitute.

The VGG stack is built here in plain torch with torchvision's module indices, so a torchvision
state dict (keys ``features.N.weight``/``features.N.bias``) loads as is; other keys (the classifier)
are ignored. Nothing is ever downloaded: without a weights file the loss falls back to
``PyramidFeatures`` and says so in one warning line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from distilfuse.losses.base import TaskLoss, register_loss
from distilfuse.losses.functional import check_image, sobel_magnitude
from distilfuse.models.registry import WeightsError, read_state_dict

log = logging.getLogger(__name__)

Network = Literal["vgg16", "vgg19"]
VGG_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_network(network: str) -> tuple[int, ...]:
    if network not in VGG_BLOCKS:
        raise ValueError(f"unknown network {network!r}; use one of {sorted(VGG_BLOCKS)}")
    return VGG_BLOCKS[network]


def vgg_layer_indices(network: Network) -> dict[str, int]:
    """Layer name ('relu{block}_{conv}') -> index of that ReLU in torchvision's ``features``."""
    index, names = 0, {}
    for block, convs in enumerate(_check_network(network), start=1):
        for conv in range(1, convs + 1):
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
        index += 1  # max pool
    return names


def default_layers(network: Network) -> tuple[str, ...]:
    """The last ReLU before each of the five max pools (MMDRFuse's five perception maps)."""
    return tuple(f"relu{b}_{n}" for b, n in enumerate(_check_network(network), start=1))


def _layer_block(name: str, network: Network) -> int:
    if name not in vgg_layer_indices(network):
        raise ValueError(f"unknown {network} layer {name!r}; known: {sorted(vgg_layer_indices(network))}")
    return int(name[4])


def build_vgg_features(network: Network, depth: int) -> nn.Sequential:
    """torchvision-compatible ``features`` stack truncated to its first ``depth`` modules."""
    layers: list[nn.Module] = []
    c_in = 3
    for convs, width in zip(_check_network(network), VGG_WIDTHS, strict=True):
        for _ in range(convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
            c_in = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers[:depth])


def _to_rgb(x: Tensor) -> Tensor:
    check_image(x)
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"perceptual features need 1 or 3 channels, got {x.shape[1]}")
    return x


class VGGFeatures(nn.Module):
    """Frozen VGG features at ``layers`` of [0,1] images (gray repeated to RGB, ImageNet-normalised unless
    ``imagenet_normalize=False``: MMDRFuse's code feeds the raw [0,1] image)."""

    def __init__(
        self, network: Network, layers: Sequence[str], weights: str | Path, imagenet_normalize: bool = True
    ) -> None:
        super().__init__()
        self.imagenet_normalize = imagenet_normalize
        indices = vgg_layer_indices(network)
        for name in layers:
            _layer_block(name, network)
        self.layers = tuple(layers)
        self.taps = [indices[n] for n in self.layers]
        self.features = build_vgg_features(network, max(self.taps) + 1)
        self._load(Path(weights))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _load(self, path: Path) -> None:
        state = read_state_dict(path)
        wanted = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        missing = [k for k in wanted if k not in state]
        wrong = [k for k in wanted if k in state and state[k].shape != wanted[k].shape]
        if missing or wrong:
            raise WeightsError(
                f"{path}: not a torchvision-style VGG state dict for these layers "
                f"(missing {missing[:3]}, wrong shape {wrong[:3]})"
            )
        self.features.load_state_dict({k[len("features.") :]: state[k] for k in wanted})

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # frozen: always in eval mode

    def forward(self, x: Tensor) -> list[Tensor]:
        x = _to_rgb(x)
        if self.imagenet_normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: list[Tensor] = []
        for index, module in enumerate(self.features):
            x = module(x)
            if index in self.taps:
                out.append(x)
        return [out[sorted(self.taps).index(t)] for t in self.taps]


class PyramidFeatures(nn.Module):
    """Weight-free substitute for VGG features: one Laplacian-pyramid level per VGG block.

    A VGG layer of block b (resolution 1/2^(b-1)) maps to pyramid level b, whose feature is
    [|L_b|, |Sobel G_b|]: the band-pass detail and the edge strength of the Gaussian level G_b. It is
    deterministic, cheap and, like post-ReLU VGG maps, non-negative (so MMDRFuse's "max of the sources'
    features" target stays meaningful). It carries the multi-scale edge/texture signal of shallow VGG
    layers but none of the semantics of deep ones.
    """

    def __init__(self, network: Network, layers: Sequence[str]) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.levels = [_layer_block(name, network) for name in self.layers]

    def forward(self, x: Tensor) -> list[Tensor]:
        check_image(x)
        gaussians = [x]
        for _ in range(max(self.levels)):
            if min(gaussians[-1].shape[-2:]) < 2:
                raise ValueError(f"image {tuple(x.shape[-2:])} too small for pyramid level {max(self.levels)}")
            gaussians.append(kornia.geometry.transform.pyrdown(gaussians[-1], border_type="replicate"))
        out = []
        for level in self.levels:
            g, coarser = gaussians[level - 1], gaussians[level]
            band = g - F.interpolate(coarser, size=g.shape[-2:], mode="bilinear", align_corners=False)
            out.append(torch.cat([band.abs(), sobel_magnitude(g)], dim=1))
        return out


_SUBSTITUTES_ANNOUNCED: set[tuple[str, tuple[str, ...]]] = set()  # one log line per substitute per process


def build_feature_extractor(
    network: Network = "vgg19",
    layers: Sequence[str] | None = None,
    weights: str | Path | None = None,
    imagenet_normalize: bool = True,
) -> nn.Module:
    """VGG features from ``weights``, or the logged ``PyramidFeatures`` substitute when it is None."""
    layers = tuple(layers) if layers is not None else default_layers(network)
    if not layers:
        raise ValueError("perceptual features need at least one layer")
    if weights is not None:
        return VGGFeatures(network, layers, weights, imagenet_normalize)
    features = PyramidFeatures(network, layers)
    if (network, layers) in _SUBSTITUTES_ANNOUNCED:
        return features
    _SUBSTITUTES_ANNOUNCED.add((network, layers))
    log.warning(
        "perceptual loss: no %s weights file given, using the Laplacian-pyramid substitute for %s "
        "(pass weights=PATH to a torchvision-style VGG state dict for the paper's loss)",
        network,
        ",".join(layers),
    )
    return features


def feature_distance(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Per-sample mean over layers of the mean squared feature difference -> (B,).

    This is MMDRFuse's sum_i ||phi_i(x) - phi_i(y)||_F^2 / (n H_i W_i D_i) over n layers.
    """
    per_layer = [((fa - fb) ** 2).flatten(1).mean(dim=1) for fa, fb in zip(a, b, strict=True)]
    return torch.stack(per_layer).mean(dim=0)


@register_loss("perceptual")
class PerceptualLoss(TaskLoss):
    """Feature MSE to a target: MMDRFuse eq. 4 with ``target='max'`` (max of the sources' features).

    ``target``: 'max' (MMDRFuse), 'ir', 'vis', or 'both' (mean of the ir and vis distances).
    ``layers`` default to the five pre-pool ReLUs; ``weights`` is a torchvision-style VGG file or None
    (the pyramid substitute, logged once at construction); ``imagenet_normalize=False`` feeds VGG the raw
    [0,1] image, as MMDRFuse's official code does.
    """

    def __init__(
        self,
        weight: float = 1.0,
        network: Network = "vgg19",
        weights: str | None = None,
        layers: Sequence[str] | None = None,
        target: Literal["max", "ir", "vis", "both"] = "max",
        imagenet_normalize: bool = True,
    ) -> None:
        super().__init__(weight)
        if target not in ("max", "ir", "vis", "both"):
            raise ValueError(f"target must be 'max', 'ir', 'vis' or 'both', got {target!r}")
        self.target = target
        self.features = build_feature_extractor(network, layers, weights, imagenet_normalize)

    def forward(self, fused: Tensor, ir: Tensor, vis: Tensor) -> Tensor:
        self.check_inputs(fused, ir, vis)
        f_fused = self.features(fused)
        if self.target == "ir":
            return feature_distance(f_fused, self.features(ir)).mean()
        if self.target == "vis":
            return feature_distance(f_fused, self.features(vis)).mean()
        f_ir, f_vis = self.features(ir), self.features(vis)
        if self.target == "max":
            return feature_distance(f_fused, [torch.maximum(a, b) for a, b in zip(f_ir, f_vis, strict=True)]).mean()
        return 0.5 * (feature_distance(f_fused, f_ir) + feature_distance(f_fused, f_vis)).mean()
