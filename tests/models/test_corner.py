"""Torch Harris response and corner masks (blocks/corner.py), kornia-style checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distilfuse.models.blocks.attention import CornerAttention
from distilfuse.models.blocks.corner import corner_mask, harris_response


def reference_harris(image: np.ndarray, k: float = 0.04) -> np.ndarray:
    """Plain-loop OpenCV cornerHarris(blockSize=3, ksize=3, k) on a float image, reflect-101 borders."""
    h, w = image.shape

    def at(a: np.ndarray, r: int, c: int) -> float:
        r = -r if r < 0 else (2 * (h - 1) - r if r >= h else r)
        c = -c if c < 0 else (2 * (w - 1) - c if c >= w else c)
        return a[r, c]

    dx, dy = np.zeros_like(image), np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            dx[r, c] = sum(
                wt * (at(image, r + i, c + 1) - at(image, r + i, c - 1)) for i, wt in ((-1, 1), (0, 2), (1, 1))
            )
            dy[r, c] = sum(
                wt * (at(image, r + 1, c + j) - at(image, r - 1, c + j)) for j, wt in ((-1, 1), (0, 2), (1, 1))
            )
    dx, dy = dx / 12, dy / 12
    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            window = [(r + i, c + j) for i in (-1, 0, 1) for j in (-1, 0, 1)]
            a = sum(at(dx * dx, *p) for p in window)
            b = sum(at(dx * dy, *p) for p in window)
            cc = sum(at(dy * dy, *p) for p in window)
            out[r, c] = a * cc - b * b - k * (a + cc) ** 2
    return out


def square_corner(size: int = 9, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size, dtype=dtype)
    image[..., size // 2 :, size // 2 :] = 1
    return image


def test_response_keeps_shape_dtype_and_treats_planes_independently() -> None:
    x = torch.rand(2, 3, 7, 9)
    r = harris_response(x)
    assert r.shape == x.shape and r.dtype == x.dtype
    assert torch.allclose(r[1, 2:], harris_response(x[1:, 2:])[0], atol=1e-7)


def test_impulse_response_matches_hand_computation() -> None:
    # Unit impulse at the centre of a 5x5 image: in its 3x3 window sum(Ix^2) = sum(Iy^2) = 12/144 and
    # sum(IxIy) = 0 (Sobel / 12), so R = (1/12)^2 - 0.04 * (2/12)^2 = 7/1200.
    image = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    image[..., 2, 2] = 1
    assert harris_response(image)[0, 0, 2, 2].item() == pytest.approx(7 / 1200, rel=1e-12)


@pytest.mark.parametrize("image", ["corner", "random"])
def test_response_matches_loop_reference_of_opencv_formula(image: str) -> None:
    x = square_corner() if image == "corner" else torch.rand(1, 1, 6, 8, dtype=torch.float64)
    expected = reference_harris(x[0, 0].numpy())
    np.testing.assert_allclose(harris_response(x)[0, 0].numpy(), expected, rtol=1e-10, atol=1e-15)


def test_response_is_positive_at_corner_negative_on_edges_zero_on_flats() -> None:
    r = harris_response(square_corner())[0, 0]
    assert divmod(int(r.argmax()), 9) == (4, 4)
    assert r[7, 4] < 0 and r[4, 7] < 0  # on the straight edges, away from the corner
    assert abs(r[0, 0]) < 1e-12 and abs(r[8, 8]) < 1e-12


def test_mask_marks_the_corner_and_dilation_widens_it() -> None:
    x = square_corner(dtype=torch.float32)
    plain, dilated = corner_mask(x, dilate=False), corner_mask(x)
    assert plain.dtype == x.dtype and set(plain.unique().tolist()) == {0.0, 1.0}
    assert plain[0, 0, 4, 4] == 1 and plain.sum() == 3  # (4,4) and its two strongest neighbours
    assert torch.all(dilated >= plain) and dilated.sum() > plain.sum()
    assert dilated[0, 0, :3].sum() == 0 and dilated[0, 0, :, :3].sum() == 0


def test_mask_is_per_sample_and_channel_and_scale_invariant() -> None:
    x = torch.rand(2, 3, 10, 11)
    scaled = x * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1, 1)
    assert torch.equal(corner_mask(x), corner_mask(scaled))
    assert torch.equal(corner_mask(x)[1:], corner_mask(x[1:]))


def test_mask_is_a_constant_and_flat_channels_give_zero() -> None:
    x = torch.rand(1, 2, 8, 8, requires_grad=True)
    mask = corner_mask(x)
    assert not mask.requires_grad
    flat = torch.full((1, 1, 6, 6), 0.5)
    assert corner_mask(flat).sum() == 0


def test_response_gradcheck() -> None:
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(harris_response, (x,))


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (torch.rand(5, 5), ValueError),
        (torch.rand(1, 1, 1, 5), ValueError),
        (torch.zeros(1, 1, 4, 4, dtype=torch.uint8), TypeError),
        (np.zeros((1, 1, 4, 4)), TypeError),
    ],
)
def test_bad_input_raises(bad, error) -> None:
    with pytest.raises(error):
        harris_response(bad)


def test_bad_beta_raises() -> None:
    with pytest.raises(ValueError, match="beta"):
        corner_mask(torch.rand(1, 1, 4, 4), beta=1.5)


def test_corner_attention_adds_masked_features_and_passes_gradient_to_conv_only() -> None:
    torch.manual_seed(0)
    block = CornerAttention(4)
    x = torch.rand(2, 4, 9, 9, requires_grad=True)
    out = block(x)
    expected = corner_mask(x, 0.7) * block.conv(x) + x
    assert torch.allclose(out, expected)
    out.sum().backward()
    assert block.conv[0].weight.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 12, 10)
    assert torch.allclose(harris_response(x.cuda()).cpu(), harris_response(x), rtol=1e-4, atol=1e-9)
    assert corner_mask(x.cuda()).device.type == "cuda"
