"""BT.601 full-range YCbCr: luma coefficients and the colour round trip."""

from __future__ import annotations

import numpy as np
import torch

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


def test_luma_conventions_round_as_named() -> None:
    # 0.299*54 + 0.587*206 + 0.114*188 is 158.5 in float32: the two tie rules part here.
    tie = np.array([[[54.0, 206.0, 188.0]]])
    assert luma(tie)[0, 0] == np.float32(158.5)
    assert luma(tie, rounding="half_even")[0, 0] == 158.0
    assert luma(tie, rounding="half_away")[0, 0] == 159.0
    # Summed in OpenCV's order: cv2.cvtColor (5.0, float32) gives 81.5 here; R first would give 81.49999.
    assert luma(np.array([[[171.0, 43.0, 45.0]]]))[0, 0] == np.float32(81.5)
    # MATLAB's weights give one level less on this pixel (metrics.md §1.3: they may differ by one).
    pixel = np.array([[[177.0, 10.0, 208.0]]])
    assert luma(pixel, "bt601", "half_even")[0, 0] == 83.0
    assert luma(pixel, "matlab", "half_away")[0, 0] == 82.0
    assert luma(pixel, "matlab").dtype == np.float64 and luma(pixel).dtype == np.float32
    # Only MATLAB's uint8 result saturates.
    out_of_range = np.array([[[300.0, 300.0, 290.0], [-9.0, -9.0, -8.0]]])
    assert luma(out_of_range, rounding="half_away")[0].tolist() == [255.0, 0.0]
    assert luma(out_of_range, rounding="half_even")[0, 0] > 255


def test_luma_of_torch_batches_matches_numpy_and_keeps_grey_per_image() -> None:
    rng = np.random.default_rng(4)
    colour = rng.random((5, 6, 3)) * 255
    grey = np.repeat(rng.random((5, 6, 1)) * 255, 3, axis=-1)  # not integer: rounding would change it
    batch = torch.from_numpy(np.stack([colour, grey])).permute(0, 3, 1, 2)  # (2, 3, H, W)
    for weights, rounding in (("bt601", "half_even"), ("matlab", "half_away"), ("bt601", "none")):
        got = luma(batch, weights, rounding, keep_grey=True, channel_axis=1)
        np.testing.assert_array_equal(got[0].numpy(), luma(colour, weights, rounding))
        np.testing.assert_array_equal(got[1].numpy(), grey[..., 0])
    assert not np.array_equal(luma(grey, rounding="half_even"), grey[..., 0])


def test_conversions_by_row_strips_equal_the_whole_image(monkeypatch) -> None:
    rgb = np.random.default_rng(1).random((23, 9, 3), dtype=np.float32)
    whole = rgb_to_ycbcr(rgb), ycbcr_to_rgb(rgb)
    monkeypatch.setattr("distilfuse.io.colour.STRIP_ROWS", 5)  # 23 rows: four strips of 5 and one of 3
    for before, after in zip(whole, (rgb_to_ycbcr(rgb), ycbcr_to_rgb(rgb)), strict=True):
        assert after.dtype == np.float32 and after.shape == rgb.shape
        np.testing.assert_array_equal(after, before)
