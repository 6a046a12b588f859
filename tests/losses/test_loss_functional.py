"""The differentiable operators behind the losses: hand-computed values, conventions, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from distilfuse.losses import functional as Fn


def test_ssim_of_identical_images_is_one_and_drops_otherwise() -> None:
    x = torch.rand(3, 1, 16, 16)
    assert torch.allclose(Fn.ssim(x, x), torch.ones(3), atol=1e-6)
    assert (Fn.ssim(x, torch.rand(3, 1, 16, 16)) < 0.5).all()


def test_ssim_single_window_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((5, 5)), rng.random((5, 5))
    g = np.exp(-((np.arange(5) - 2) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx**2, (w * y * y).sum() - my**2, (w * x * y).sum() - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    got = Fn.ssim(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None], window_size=5)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_ssim_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same shape"):
        Fn.ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 15))
    with pytest.raises(ValueError, match="window_size"):
        Fn.ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    assert Fn.ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8), padding="reflect").shape == (1,)


def test_gmsd_matches_the_reference_algorithm() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((7, 9)), rng.random((7, 9))

    def reference(img: np.ndarray) -> np.ndarray:
        padded = np.pad(img, ((0, 1), (0, 1)))  # odd sizes: zero row/column, then 2x2 mean, stride 2
        down = (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2])[:4, :5] / 4
        dx = np.array([[1, 0, -1]] * 3) / 3
        gx = ndimage.correlate(down, dx, mode="constant")
        gy = ndimage.correlate(down, dx.T, mode="constant")
        return np.sqrt(gx**2 + gy**2)

    mx, my = reference(x), reference(y)
    c = 170 / 255**2
    expected = ((2 * mx * my + c) / (mx**2 + my**2 + c)).std(ddof=1)
    got = Fn.gmsd(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None])
    assert got.item() == pytest.approx(expected, rel=1e-6)
    same = torch.rand(2, 1, 12, 12)
    assert torch.allclose(Fn.gmsd(same, same), torch.zeros(2), atol=1e-6)


def test_sobel_conventions_on_a_ramp() -> None:
    ramp = (0.1 * torch.arange(8.0)).expand(1, 1, 8, 8)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert torch.allclose(Fn.sobel_magnitude(ramp)[inner], torch.full((6, 6), 0.1), atol=1e-4)
    assert torch.allclose(Fn.sobel_magnitude(ramp, normalized=False)[inner], torch.full((6, 6), 0.8), atol=1e-4)
    assert torch.allclose(Fn.sobel_magnitude(torch.zeros(1, 1, 4, 4)), torch.full((1, 1, 4, 4), 1e-3))


def test_laplacian_hand_value_and_operator_dispatch() -> None:
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    expected = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    assert torch.equal(Fn.laplacian4(x)[0, 0], expected)
    assert Fn.image_gradient(torch.rand(2, 1, 5, 5), "sobel").shape == (2, 2, 5, 5)
    with pytest.raises(ValueError, match="unknown gradient operator"):
        Fn.image_gradient(x, "prewitt")


def test_channel_normalize_and_resize() -> None:
    x = torch.tensor([[3.0, 0.0], [4.0, 0.0]]).view(1, 2, 1, 2)
    assert torch.allclose(Fn.channel_normalize(x)[0, :, 0, 0], torch.tensor([0.6, 0.8]))
    assert torch.equal(Fn.channel_normalize(x)[0, :, 0, 1], torch.zeros(2))
    assert Fn.resize_to(torch.rand(1, 3, 4, 6), (8, 12)).shape == (1, 3, 8, 12)


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: Fn.ssim(a, b, window_size=3),
        lambda a, b: Fn.gmsd(a, b),
        lambda a, b: Fn.laplacian4(a) * b,
        lambda a, b: Fn.channel_normalize(a + b),
    ],
    ids=["ssim", "gmsd", "laplacian", "channel_normalize"],
)
def test_gradcheck(op) -> None:
    torch.manual_seed(0)
    a = torch.rand(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    b = torch.rand(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (a, b))
