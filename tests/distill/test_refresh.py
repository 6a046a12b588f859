"""MMDRFuse dynamic-refresh memory: bounded storage, best-so-far updates, gap-weighted loss."""

from __future__ import annotations

import logging

import pytest
import torch

from distilfuse.distill.refresh import RefreshMemory
from distilfuse.losses import gmsd, ssim
from distilfuse.losses.functional import sobel_magnitude
from distilfuse.losses.perceptual import PyramidFeatures, default_layers, feature_distance


@pytest.fixture(autouse=True)
def _quiet_substitute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="distilfuse.losses.perceptual")


def sources(batch: int = 2, size: int = 32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 1, size, size, generator=g), torch.rand(batch, 1, size, size, generator=g)


def test_storage_is_uint8_and_bounded(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="distilfuse.distill.refresh"):
        memory = RefreshMemory(1000, (128, 128))
    assert memory.bytes_per_sample == 2 * 128 * 128 + 8 == 32_776
    assert memory.nbytes == 1000 * memory.bytes_per_sample
    assert memory.best_ssim_images.dtype == torch.uint8
    assert any("32776 bytes" in r.getMessage() for r in caplog.records)


def test_update_keeps_the_best_outputs_by_each_score() -> None:
    ir, vis = sources()
    memory = RefreshMemory(5, (32, 32))
    idx = torch.tensor([3, 1])
    good = 0.5 * (ir + vis)
    memory.update(idx, good, ir, vis)
    torch.testing.assert_close(memory.best_ssim[idx], ssim(good, ir) + ssim(good, vis))
    torch.testing.assert_close(memory.best_gmsd[idx], gmsd(good, ir) + gmsd(good, vis))
    assert torch.equal(memory.best_ssim_images[idx], torch.round(good[:, 0] * 255).to(torch.uint8))
    memory.update(idx, torch.rand(2, 1, 32, 32), ir, vis)  # worse by both scores: nothing replaced
    torch.testing.assert_close(memory.best_ssim[idx], ssim(good, ir) + ssim(good, vis))
    assert torch.isinf(memory.best_ssim[[0, 2, 4]]).all()


def test_loss_is_zero_when_current_is_best_and_gap_weighted_otherwise() -> None:
    ir, vis = sources()
    memory = RefreshMemory(4, (32, 32))
    idx = torch.tensor([0, 2])
    good = 0.5 * (ir + vis)
    memory.update(idx, good, ir, vis)
    first = memory.loss(idx, good.clone().requires_grad_(True))
    assert first.item() == 0.0
    current = torch.rand(2, 1, 32, 32, requires_grad=True)
    memory.update(idx, current, ir, vis)
    loss = memory.loss(idx, current)
    # eqs. 9-12 by hand, with the stored (uint8) best outputs
    stored = torch.round(good * 255) / 255
    gap_s = (ssim(good, ir) + ssim(good, vis)) - (ssim(current, ir) + ssim(current, vis))
    gap_g = (gmsd(current, ir) + gmsd(current, vis)) - (gmsd(good, ir) + gmsd(good, vis))
    features = PyramidFeatures("vgg19", default_layers("vgg19"))
    f_cur, f_best = features(current), features(stored)
    loss_s = feature_distance(f_cur[3:], f_best[3:]) + (current - stored).abs().mean(dim=(1, 2, 3))
    grad_gap = (sobel_magnitude(current) - sobel_magnitude(stored)) ** 2
    loss_g = feature_distance(f_cur[:3], f_best[:3]) + grad_gap.mean(dim=(1, 2, 3))
    expected = (gap_s.detach() * loss_s + gap_g.detach() * loss_g).mean()
    assert (gap_s > 0).all() and (gap_g > 0).all()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
    loss.backward()
    assert current.grad is not None and current.grad.abs().sum() > 0


def test_misuse_is_reported() -> None:
    ir, vis = sources()
    memory = RefreshMemory(4, (32, 32))
    out = torch.rand(2, 1, 32, 32)
    with pytest.raises(RuntimeError, match="update"):
        memory.loss(torch.tensor([0, 1]), out)
    with pytest.raises(ValueError, match=r"\(B,1,32,32\)"):
        memory.update(torch.tensor([0, 1]), torch.rand(2, 1, 16, 16), ir, vis)
    with pytest.raises(IndexError, match="indices"):
        memory.update(torch.tensor([0, 4]), out, ir, vis)
    with pytest.raises(ValueError, match="duplicate"):
        memory.update(torch.tensor([1, 1]), out, ir, vis)
    memory.update(torch.tensor([0, 1]), out, ir, vis)
    with pytest.raises(RuntimeError, match="same batch"):
        memory.loss(torch.tensor([1, 0]), out)
