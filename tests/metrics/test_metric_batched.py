"""The batched torch path agrees with the NumPy path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distilfuse.metrics import BATCHED_METRICS, CDD_FAST_METRICS, compute, compute_batch


def _batch(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays))[:, None] / 255.0


@pytest.mark.parametrize("profile", ["cdd", "tang"])
def test_batched_matches_numpy(triplet_256, profile: str) -> None:
    fused, ir, vis = triplet_256
    second = [np.flipud(ir), np.fliplr(vis), np.clip(fused[::-1] * 0.8 + 10, 0, 255).round()]
    metrics = list(BATCHED_METRICS)
    got = compute_batch(
        _batch([fused, second[2]]),
        _batch([ir, second[0]]),
        _batch([vis, second[1]]),
        metrics=metrics,
        profile=profile,
    )
    for index, triplet in enumerate([(fused, ir, vis), (second[2], second[0], second[1])]):
        expected = compute(*triplet, metrics=metrics, profile=profile)
        for name in metrics:
            assert got[name].dtype == torch.float64 and got[name].shape == (2,)
            # Different summation orders; tang's SSIM (C2 = 9e-4) amplifies them in flat areas.
            assert got[name][index].item() == pytest.approx(expected[name], rel=1e-7), (name, index)


def test_batched_covers_the_cdd_fast_set() -> None:
    assert set(CDD_FAST_METRICS) <= set(BATCHED_METRICS)


def test_batched_falls_back_to_numpy_for_other_metrics(triplet_256) -> None:
    crops = [torch.from_numpy(x[96:160, 96:160].copy())[None, None] / 255.0 for x in triplet_256]
    got = compute_batch(*crops, metrics="FMI_dct,Nabf,EN")
    expected = compute(*(x[96:160, 96:160] for x in triplet_256), metrics="FMI_dct,Nabf,EN")
    assert list(got) == ["FMI_dct", "Nabf", "EN"]
    for name, value in expected.items():
        assert got[name].item() == pytest.approx(value, rel=1e-9), name


def test_batched_accepts_colour_and_rejects_bad_shapes(triplet_256) -> None:
    fused, ir, vis = (torch.from_numpy(x[:64, :64].copy())[None, None] / 255.0 for x in triplet_256)
    colour_vis = torch.cat([vis, (vis * 0.9), (vis * 0.5)], dim=1)
    got = compute_batch(fused, ir, colour_vis, metrics="MI,SSIM")
    rgb = colour_vis[0].permute(1, 2, 0).numpy() * 255.0
    expected = compute(fused[0, 0].numpy() * 255.0, ir[0, 0].numpy() * 255.0, rgb, metrics="MI,SSIM")
    assert {k: v.item() for k, v in got.items()} == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="batch sizes differ"):
        compute_batch(fused, torch.cat([ir, ir]), vis, metrics="EN")
    with pytest.raises(ValueError, match="fused: expected"):
        compute_batch(fused[:, :, None], ir, vis, metrics="EN")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_batched_on_cuda_matches_cpu(triplet_256) -> None:
    cpu = [torch.from_numpy(x)[None, None] / 255.0 for x in triplet_256]
    on_cpu = compute_batch(*cpu, metrics=list(BATCHED_METRICS))
    on_gpu = compute_batch(*(x.cuda() for x in cpu), metrics=list(BATCHED_METRICS))
    for name, value in on_cpu.items():
        assert on_gpu[name].device.type == "cuda"
        assert on_gpu[name].cpu().item() == pytest.approx(value.item(), rel=1e-9), name


def test_grey_stored_as_rgb_is_kept_per_image_in_a_mixed_batch(triplet_256) -> None:
    """As the NumPy path decides for each image (§1.3), not once for the whole batch."""
    fused, ir, vis = (x[:48, :48] for x in triplet_256)
    colour = np.stack([vis, vis * 0.9, vis * 0.5], axis=-1)
    grey = np.repeat((vis * 0.7 + 0.3)[..., None], 3, axis=-1)  # not integer: converting would round it
    batch = torch.from_numpy(np.stack([colour, grey])).permute(0, 3, 1, 2) / 255.0
    got = compute_batch(_batch([fused, fused]), _batch([ir, ir]), batch, metrics="SD,MSE,SSIM", profile="tang")
    for index, rgb in enumerate((colour, grey)):
        expected = compute(fused, ir, rgb, metrics="SD,MSE,SSIM", profile="tang")
        assert {k: v[index].item() for k, v in got.items()} == pytest.approx(expected, rel=1e-9), index
