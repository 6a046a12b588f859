"""Every registered task loss: registry, shapes, zero/positive, gradients, errors, hand-computed values."""

from __future__ import annotations

import logging

import pytest
import torch

from distilfuse.losses import LOSSES, CompositeLoss, TaskLoss, build_loss

# Spec per loss; "ident" = fused equal to every source gives exactly zero.
SPECS = {
    "scakd_content": {"xi": 5.0},
    "max_intensity": {},
    "max_gradient": {},
    "mmdr_gradient": {},
    "ssim": {"targets": ["ir", "vis"]},
    "hkd_teacher": {"mu": 1000.0},
    "perceptual": {"network": "vgg19", "weights": None},
    "scd": {},
}
UNDEFINED_AT_IDENTITY = {"scd"}  # equal sources leave nothing to correlate: SCD is 0/0


@pytest.fixture(autouse=True)
def _quiet_substitute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="distilfuse.losses.perceptual")


def images(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(2, 1, size, size, generator=g) for _ in range(3))


def test_specs_cover_every_registered_loss() -> None:
    assert set(SPECS) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_builds_from_spec_and_behaves(name: str) -> None:
    loss = build_loss({"type": name, "weight": 2.5, **SPECS[name]})
    assert isinstance(loss, TaskLoss) and loss.weight == 2.5
    fused, ir, vis = images()
    fused.requires_grad_(True)
    value = loss(fused, ir, vis)
    assert value.shape == () and torch.isfinite(value) and value > 0
    value.backward()
    assert fused.grad is not None and fused.grad.abs().sum() > 0
    same = ir.clone()
    if name not in UNDEFINED_AT_IDENTITY:
        assert loss(same, same, same).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same"):
        loss(fused[:, :, :16], ir, vis)


@pytest.mark.parametrize(
    ("name", "params"),
    [("max_intensity", {}), ("mmdr_gradient", {}), ("ssim", {"targets": ["max"]})],
)
def test_zero_at_the_max_image(name: str, params: dict) -> None:
    _, ir, vis = images(1)
    target = torch.maximum(ir, vis)
    assert build_loss({"type": name, **params})(target, ir, vis).item() == pytest.approx(0.0, abs=1e-6)


def test_max_intensity_hand_value() -> None:
    ir = torch.tensor([[0.2, 0.8], [0.5, 0.0]]).view(1, 1, 2, 2)
    vis = torch.tensor([[0.4, 0.1], [0.5, 0.3]]).view(1, 1, 2, 2)
    fused = torch.tensor([[0.4, 0.6], [0.0, 0.3]]).view(1, 1, 2, 2)
    # |0.4-0.4| + |0.6-0.8| + |0-0.5| + |0.3-0.3| = 0.7, over 4 pixels
    assert build_loss({"type": "max_intensity"})(fused, ir, vis).item() == pytest.approx(0.175)


def test_scakd_content_hand_value() -> None:
    zeros = torch.zeros(1, 1, 3, 3)
    fused = zeros.clone()
    fused[0, 0, 1, 1] = 1.0
    # intensity: 1 per source; Laplacian of the impulse: 4 neighbours at 1, centre -4 -> 20 per source.
    expected = (1 + 1 + 5.0 * (20 + 20)) / 9
    assert build_loss({"type": "scakd_content"})(fused, zeros, zeros).item() == pytest.approx(expected)
    sobel = build_loss({"type": "scakd_content", "xi": 0.0, "gradient": "sobel"})
    assert sobel(fused, zeros, zeros).item() == pytest.approx(2 / 9)


def test_max_gradient_hand_value_and_scale() -> None:
    ramp = (0.1 * torch.arange(6.0)).expand(1, 1, 6, 6).contiguous()
    flat = torch.zeros(1, 1, 6, 6)
    # |Sobel| of the ramp: 0.1 inside, 0.05 on the replicated left/right columns; sources flat: sqrt(1e-6).
    per_col = torch.tensor([0.05, 0.1, 0.1, 0.1, 0.1, 0.05])
    expected = (torch.sqrt(per_col**2 + 1e-6) - 1e-3).mean().item()
    normalized = build_loss({"type": "max_gradient"})(ramp, flat, flat).item()
    assert normalized == pytest.approx(expected, rel=1e-5)
    raw = build_loss({"type": "max_gradient", "normalized": False})(ramp, flat, flat).item()
    assert raw == pytest.approx((torch.sqrt(64 * per_col**2 + 1e-6) - 1e-3).mean().item(), rel=1e-5)


def test_mmdr_gradient_uses_the_gradient_of_the_max_image() -> None:
    ir = torch.zeros(1, 1, 6, 6)
    ir[..., :3] = 1.0
    vis = 1.0 - ir  # max(ir, vis) == 1 everywhere: no edge left
    flat = torch.ones(1, 1, 6, 6)
    assert build_loss({"type": "mmdr_gradient"})(flat, ir, vis).item() == pytest.approx(0.0, abs=1e-9)
    assert build_loss({"type": "max_gradient"})(flat, ir, vis).item() > 0.1


def test_ssim_loss_averages_targets() -> None:
    fused, ir, vis = images(2)
    from distilfuse.losses import ssim

    expected = 1 - 0.5 * (ssim(fused, ir).mean() + ssim(fused, vis).mean())
    assert build_loss({"type": "ssim"})(fused, ir, vis).item() == pytest.approx(expected.item(), rel=1e-6)


def test_hkd_teacher_combines_its_terms() -> None:
    from distilfuse.losses import sobel_magnitude, ssim

    fused, ir, _ = images(3)
    loss = build_loss({"type": "hkd_teacher", "targets": ["ir"], "perceptual": False, "mu": 10.0})
    mse = ((fused - ir) ** 2).mean() + ((sobel_magnitude(fused) - sobel_magnitude(ir)) ** 2).mean()
    expected = mse + 10.0 * (1 - ssim(fused, ir).mean())
    assert loss(fused, ir, ir).item() == pytest.approx(expected.item(), rel=1e-6)


def test_composite_returns_weighted_named_terms() -> None:
    fused, ir, vis = images(4)
    composite = CompositeLoss(
        [
            {"type": "max_intensity", "weight": 2.0},
            {"type": "max_gradient", "weight": 10.0, "name": "texture"},
        ]
    )
    terms = composite(fused, ir, vis)
    assert set(terms) == {"max_intensity", "texture"}
    assert terms["max_intensity"].item() == pytest.approx(2 * build_loss({"type": "max_intensity"})(fused, ir, vis))
    assert terms["texture"].item() == pytest.approx(10 * build_loss({"type": "max_gradient"})(fused, ir, vis))


def test_spec_errors() -> None:
    with pytest.raises(KeyError, match="unknown loss 'nope'.*max_intensity"):
        build_loss({"type": "nope"})
    with pytest.raises(ValueError, match="unknown parameter.*'xii'"):
        build_loss({"type": "scakd_content", "xii": 1})
    with pytest.raises(ValueError, match="'type'"):
        build_loss({"weight": 1})
    with pytest.raises(ValueError, match="two loss terms named"):
        CompositeLoss([{"type": "ssim"}, {"type": "ssim"}])
    with pytest.raises(ValueError, match="targets"):
        build_loss({"type": "ssim", "targets": ["rgb"]})
    with pytest.raises(ValueError, match="gradient operator"):
        build_loss({"type": "scakd_content", "gradient": "roberts"})


def test_scd_loss_is_two_minus_the_metric() -> None:
    from distilfuse.metrics import compute

    fused, ir, vis = images(3)
    expected = [2 - compute(255 * f[0].double().numpy(), 255 * a[0].double().numpy(), 255 * b[0].double().numpy(),
                            metrics=["SCD"])["SCD"] for f, a, b in zip(fused, ir, vis, strict=True)]  # fmt: skip
    value = build_loss({"type": "scd"})(fused, ir, vis).item()
    assert value == pytest.approx(sum(expected) / 2, rel=1e-5)
    added = build_loss({"type": "scd"})(ir + vis, ir, vis).item()  # F - vis = ir exactly: both corr = 1
    assert added == pytest.approx(0.0, abs=1e-6)


def test_scd_loss_gradcheck() -> None:
    fused, ir, vis = (x[:1, :, :6, :6].double() for x in images(4))
    loss = build_loss({"type": "scd"})
    assert torch.autograd.gradcheck(lambda f: loss(f, ir, vis), (fused.requires_grad_(True),))


def test_scd_loss_has_finite_gradients_on_a_flat_source() -> None:
    fused, ir, _ = images(5)
    flat = torch.zeros_like(ir)  # a flat (saturated) patch: corr(F - ir, flat) is 0/0
    fused.requires_grad_(True)
    value = build_loss({"type": "scd"})(fused, ir, flat)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(fused.grad).all()
