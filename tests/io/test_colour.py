"""BT.601 full-range YCbCr: luma coefficients and the colour round trip."""

from __future__ import annotations

import numpy as np

from distilfuse.io import luma, rgb_to_ycbcr, ycbcr_to_rgb


def test_luma_uses_bt601_weights() -> None:
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=np.float32)
    np.testing.assert_allclose(luma(rgb)[0], [0.299, 0.587, 0.114], atol=1e-7)
    np.testing.assert_allclose(rgb_to_ycbcr(rgb)[0, :, 0], [0.299, 0.587, 0.114], atol=1e-6)


def test_gray_has_neutral_chroma() -> None:
    gray = np.full((4, 4, 3), 0.3, dtype=np.float32)
    np.testing.assert_allclose(rgb_to_ycbcr(gray)[..., 1:], 0.5, atol=1e-6)


def test_round_trip_exact_to_one_level() -> None:
    levels = np.arange(0, 256, 5, dtype=np.float32) / 255
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    rgb = np.stack([r, g, b], axis=-1).reshape(-1, 1, 3)
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    assert np.abs(np.rint(back * 255) - np.rint(rgb * 255)).max() <= 1
