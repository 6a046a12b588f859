"""The min-max stretch: full range, dtype, a constant image; its batched, differentiable form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distilfuse.ops.stretch import min_max_stretch, min_max_stretch_batch


@pytest.mark.parametrize("high", [1.0, 255.0])
def test_stretch_spans_zero_to_high_and_keeps_the_dtype(high: float) -> None:
    x = np.array([[-0.2, 0.3], [0.8, 1.4]], dtype=np.float32)
    out = min_max_stretch(x, high)
    assert out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == np.float32(high)
    np.testing.assert_allclose(out, (x + 0.2) / 1.6 * high, rtol=1e-6)


@pytest.mark.parametrize("value", [-0.3, 0.0, 0.6, 200.0])
def test_constant_image_becomes_zeros(value: float) -> None:
    """No range to stretch: the bottom of the output range, as bytescale and NaN-cast-to-uint8 give."""
    out = min_max_stretch(np.full((3, 4), value), 255.0)
    assert out.shape == (3, 4) and not np.isnan(out).any()
    assert (out == 0).all()


def test_integer_halves_are_exact() -> None:
    # The middle of a range of 50 is 127.5; scaling by a rounded 255 / 50 first gives 127.49999999999999.
    out = min_max_stretch(np.array([0.0, 25.0, 50.0]), 255.0)
    assert out[1] == 127.5


def test_batch_stretch_is_the_image_stretch_of_each_sample() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 5, 6, generator=g) * torch.tensor([0.2, 1.0, 3.0])[:, None, None, None] - 0.4
    out = min_max_stretch_batch(x)
    for k in range(3):
        np.testing.assert_allclose(out[k].numpy(), min_max_stretch(x[k].numpy()), rtol=1e-6, atol=1e-7)


def test_batch_stretch_of_a_constant_sample_is_zeros_with_a_finite_gradient() -> None:
    x = torch.cat([torch.full((1, 1, 4, 4), 0.7), torch.rand(1, 1, 4, 4)]).requires_grad_(True)
    out = min_max_stretch_batch(x)
    assert (out[0] == 0).all() and out[1].max() == 1.0
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[0] == 0).all()


def test_batch_stretch_gradcheck() -> None:
    x = torch.rand(2, 1, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    assert torch.autograd.gradcheck(min_max_stretch_batch, (x,))
