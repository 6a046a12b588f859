"""The shared SSIM/GMSD building blocks: the torch filter against scipy, and one result for NumPy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from distilfuse.ops import structural


@pytest.mark.parametrize("step", [1, 2])
def test_filter_valid_matches_a_direct_2d_correlation(step: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 20, 17))
    kernel = structural.gaussian_window(5, 1.0)
    window = np.outer(kernel, kernel)
    full = np.stack([[ndimage.correlate(img, window, mode="constant") for img in batch] for batch in x])
    expected = full[..., 2:-2, 2:-2][..., ::step, ::step]
    got = structural.filter_valid(torch.from_numpy(x), kernel, step=step)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_numpy_and_torch_give_the_same_statistics() -> None:
    rng = np.random.default_rng(1)
    moments = [rng.random((6, 7)) for _ in range(5)]
    ssim_np, cs_np = structural.ssim_maps(*moments, 0.01, 0.03, correction=49 / 48)
    ssim_t, cs_t = structural.ssim_maps(*(torch.from_numpy(m) for m in moments), 0.01, 0.03, correction=49 / 48)
    np.testing.assert_array_equal(ssim_t.numpy(), ssim_np)
    np.testing.assert_array_equal(cs_t.numpy(), cs_np)
    padded = rng.random((8, 9))
    magnitude = structural.prewitt_magnitude(padded)
    assert magnitude.shape == (6, 7)
    np.testing.assert_allclose(structural.prewitt_magnitude(torch.from_numpy(padded)).numpy(), magnitude, rtol=1e-14)
    gms = structural.gradient_magnitude_similarity(magnitude, magnitude[::-1], structural.GMSD_T)
    assert np.all(gms <= 1.0) and np.allclose(structural.gradient_magnitude_similarity(magnitude, magnitude, 1.0), 1.0)


def test_gaussian_window_is_matlab_fspecial() -> None:
    kernel = structural.gaussian_window(11, 1.5)
    assert kernel.sum() == pytest.approx(1.0) and kernel.argmax() == 5
    assert kernel[0] / kernel[5] == pytest.approx(np.exp(-25 / 4.5))
