"""Whole-image inference: any size, tiling, colour handling, output range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distilfuse.data.synthetic import demo_scene
from distilfuse.inference import fuse_images, fuse_tensors
from distilfuse.io import rgb_to_ycbcr, to_unit
from distilfuse.models import FusionModel, create, get_card, list_models


class StridedToy(FusionModel):
    """A tiny model with a stride-2 layer and a large receptive field, to exercise tiling."""

    size_multiple = 2

    def __init__(self) -> None:
        super().__init__()
        self.down = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.mix = torch.nn.Conv2d(4, 4, 5, padding=2)
        self.up = torch.nn.ConvTranspose2d(4, 1, 2, stride=2)

    def fuse_raw(self, ir, vis):
        return self.up(torch.relu(self.mix(torch.relu(self.down(torch.cat([ir, vis], 1))))))


def test_tiling_is_exact_for_small_receptive_field() -> None:
    model = create("mmdr-mini")
    ir, vis = torch.rand(1, 1, 101, 77), torch.rand(1, 1, 101, 77)
    whole = fuse_tensors(model, ir, vis)
    # Exact up to float summation order (conv kernels block differently for each tile size).
    torch.testing.assert_close(fuse_tensors(model, ir, vis, tile=16, overlap=4), whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize("overlap", [16, 15], ids=["even", "odd-needs-alignment"])
def test_tiling_agrees_with_whole_image_for_strided_model(overlap: int) -> None:
    torch.manual_seed(0)
    model = StridedToy().eval()
    ir, vis = torch.rand(1, 1, 90, 71), torch.rand(1, 1, 90, 71)
    whole = fuse_tensors(model, ir, vis)
    # An odd overlap starts windows on odd rows/columns: only aligning them to the stride keeps the result.
    tiled = fuse_tensors(model, ir, vis, tile=32, overlap=overlap)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="too small"):
        fuse_tensors(model, ir, vis, tile=4)


class SuperResolvingToy(FusionModel):
    """A x3 super-resolving model with spatial context (a 5x5 convolution before upsampling)."""

    scale = 3

    def __init__(self) -> None:
        super().__init__()
        self.mix = torch.nn.Conv2d(2, 9, 5, padding=2)

    def fuse_raw(self, ir, vis):
        return torch.nn.functional.pixel_shuffle(self.mix(torch.cat([ir, vis], 1)), 3)


def test_tiling_a_super_resolving_model_places_every_tile() -> None:
    torch.manual_seed(0)
    model = SuperResolvingToy().eval()
    ir, vis = torch.rand(1, 1, 37, 29), torch.rand(1, 1, 37, 29)
    whole = fuse_tensors(model, ir, vis)
    tiled = fuse_tensors(model, ir, vis, tile=10, overlap=3)
    assert tiled.shape == whole.shape == (1, 1, 111, 87)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


FUSION_MODELS = [name for name in list_models() if get_card(name).role != "discriminator"]


@pytest.mark.parametrize("name", FUSION_MODELS)
def test_every_model_fuses_any_size_down_to_one_pixel(name: str, single_thread) -> None:
    torch.manual_seed(0)
    model = create(name, weights=None).eval()
    scale = getattr(model, "scale", 1)
    for h, w in ((1, 1), (1, 9), (9, 1), (2, 2), (15, 3)):
        out = fuse_tensors(model, torch.rand(1, 1, h, w), torch.rand(1, 1, h, w))
        assert out.shape == (1, 1, h * scale, w * scale) and torch.isfinite(out).all(), (h, w)
    # Tiles whose last row and column are one pixel wide.
    out = fuse_tensors(model, torch.rand(1, 1, 17, 9), torch.rand(1, 1, 17, 9), tile=8, overlap=0)
    assert out.shape == (1, 1, 17 * scale, 9 * scale) and torch.isfinite(out).all()


def test_colour_visible_keeps_its_chroma_and_gray_stays_gray() -> None:
    ir, vis = demo_scene(60, 80)
    model = create("mmdr-mini")
    colour = fuse_images(model, ir, vis).image
    assert colour.shape == (60, 80, 3)
    chroma_in = rgb_to_ycbcr(to_unit(vis))[..., 1:]
    chroma_out = rgb_to_ycbcr(colour)[..., 1:]
    assert np.abs(chroma_in - chroma_out)[(colour > 0.02).all(-1) & (colour < 0.98).all(-1)].max() < 2 / 255
    gray = fuse_images(model, ir, vis[..., 1]).image
    assert gray.shape == (60, 80)


def test_stretch_spans_the_full_range_and_clip_stays_inside() -> None:
    ir, vis = demo_scene(40, 40)
    model = create("mmdr-mini")
    stretched = fuse_images(model, ir, vis[..., 0], output_range="stretch").image
    assert stretched.min() == 0.0 and stretched.max() == 1.0
    clipped = fuse_images(model, ir, vis[..., 0]).image
    assert 0.0 <= clipped.min() and clipped.max() <= 1.0


class ConstantToy(FusionModel):
    """One grey level everywhere: nothing for a min-max stretch to spread."""

    def fuse_raw(self, ir, vis):
        return torch.full_like(ir, 0.7)


def test_stretch_of_a_constant_output_is_black() -> None:
    """The constant case of `ops.stretch.min_max_stretch`: zeros, as the published test scripts save it."""
    ir, vis = demo_scene(24, 24)
    fused = fuse_images(ConstantToy().eval(), ir, vis[..., 0], output_range="stretch").image
    assert fused.shape == (24, 24) and (fused == 0).all()


class UpscalingToy(FusionModel):
    """A x2 super-resolving fusion model: the mean of the inputs, upsampled."""

    scale = 2

    def fuse_raw(self, ir, vis):
        return torch.nn.functional.interpolate((ir + vis) / 2, scale_factor=2, mode="nearest")


def test_super_resolving_model_gets_upsampled_chroma() -> None:
    ir, vis = demo_scene(20, 30)
    fused = fuse_images(UpscalingToy(), ir, vis).image
    assert fused.shape == (40, 60, 3)
    chroma_in = rgb_to_ycbcr(to_unit(vis))[..., 1:].mean(axis=(0, 1))
    chroma_out = rgb_to_ycbcr(fused)[..., 1:].mean(axis=(0, 1))
    np.testing.assert_allclose(chroma_out, chroma_in, atol=2 / 255)


def test_super_resolved_chroma_is_bicubic_in_place() -> None:
    ir, vis = demo_scene(24, 32, seed=3)
    fused = fuse_images(UpscalingToy(), ir, vis).image
    chroma = torch.from_numpy(rgb_to_ycbcr(to_unit(vis))[..., 1:].transpose(2, 0, 1).copy())[None]
    expected = torch.nn.functional.interpolate(chroma, scale_factor=2, mode="bicubic", align_corners=False)
    expected = expected.clamp(0, 1)[0].permute(1, 2, 0).numpy()
    unclipped = (fused > 0.02).all(-1) & (fused < 0.98).all(-1)  # clipping to [0,1] changes the chroma there
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose(rgb_to_ycbcr(fused)[..., 1:][unclipped], expected[unclipped], atol=2 / 255)
