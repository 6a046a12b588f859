"""LSGAN losses with SCAKD's random soft labels."""

from __future__ import annotations

import pytest
import torch

from distilfuse.losses.adversarial import FAKE_RANGE, REAL_RANGE, lsgan_d_loss, lsgan_g_loss, soft_labels_like


def test_soft_labels_lie_in_scakd_ranges_one_per_sample() -> None:
    g = torch.Generator().manual_seed(0)
    score = torch.zeros(64, 1, 4, 4)
    real = soft_labels_like(score, *REAL_RANGE, generator=g)
    assert real.shape == (64, 1, 1, 1)
    assert real.min() >= 0.7 and real.max() <= 1.2 and real.std() > 0.05
    fake = soft_labels_like(score, *FAKE_RANGE, generator=g)
    assert fake.min() >= 0.0 and fake.max() <= 0.3


def test_hard_labels_hand_values() -> None:
    real, fake = torch.full((4, 1), 0.5), torch.full((4, 1), 0.25)
    assert lsgan_d_loss(real, fake, soft_labels=False).item() == pytest.approx(0.25 + 0.0625)
    assert lsgan_g_loss(fake, soft_labels=False).item() == pytest.approx(0.5625)


def test_soft_labels_reproduce_with_a_seeded_generator() -> None:
    real = torch.rand(3, 1, requires_grad=True)
    fake = torch.rand(3, 1, requires_grad=True)
    loss = lsgan_d_loss(real, fake, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    c_real = 0.7 + 0.5 * torch.rand(3, 1, generator=g)
    c_fake = 0.3 * torch.rand(3, 1, generator=g)
    expected = ((real - c_real) ** 2).mean() + ((fake - c_fake) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert real.grad is not None and fake.grad is not None


def test_generator_loss_is_small_near_real_labels() -> None:
    assert lsgan_g_loss(torch.full((256, 1), 0.95)).item() < 0.03
    with pytest.raises(ValueError, match="batch"):
        lsgan_g_loss(torch.tensor(1.0))
