"""Properties of the metrics: ideal values, degenerate inputs, symmetry, ranges, input forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distilfuse.metrics import DEFAULT_METRICS, METRICS, PROFILES, compute, to_grey
from distilfuse.metrics.fmi import wavelet_from_scaling_filter

CHEAP = [m for m in DEFAULT_METRICS if not m.startswith("FMI")]


@pytest.fixture(scope="module")
def random_triplet() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, size=(176, 180)).astype(np.float64)
    ir = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).round()
    vis = np.clip(255 - base + rng.normal(0, 30, base.shape), 0, 255).round()
    fused = np.clip(0.5 * ir + 0.5 * vis + rng.normal(0, 5, base.shape), 0, 255).round()
    return fused, ir, vis


@pytest.mark.parametrize("profile", ["cdd", "tang"])
def test_fused_equal_to_both_sources(random_triplet, profile: str) -> None:
    image = np.minimum(random_triplet[1], 250)  # no 254/255 pair: tang's joint-bin quirk stays out
    got = compute(image, image, image, metrics=CHEAP + ["FMI_pixel"], profile=profile)
    ssim_ideal = 2.0 if profile == "cdd" else 1.0
    assert got["SSIM"] == pytest.approx(ssim_ideal, rel=1e-6)
    assert got["CC"] == pytest.approx(1.0)
    assert got["MSE"] == 0.0 and got["PSNR"] == math.inf
    assert got["VIF"] == pytest.approx(2.0, rel=1e-6)
    assert got["GMSD"] == pytest.approx(0.0, abs=1e-12)
    assert got["Nabf"] == 0.0
    assert got["MS_SSIM"] == pytest.approx(1.0, rel=1e-6)
    assert got["FMI_pixel"] == 1.0
    assert math.isnan(got["SCD"])  # F - B is constant zero: correlation 0/0
    entropy_in_base = got["EN"] * (math.log(2) if profile == "cdd" else 1)  # MI(X, X) = H(X)
    assert got["MI"] == pytest.approx(2 * entropy_in_base, rel=1e-9)


@pytest.mark.filterwarnings("ignore:FMI_w")
@pytest.mark.parametrize("profile", ["cdd", "tang"])
def test_constant_images_give_documented_values(profile: str) -> None:
    flat = np.full((170, 170), 100.0)
    got = compute(flat, flat, flat, profile=profile)
    assert got["EN"] == 0 and got["SD"] == 0 and got["SF"] == 0 and got["AG"] == 0 and got["MI"] == 0
    assert got["FMI_pixel"] == got["FMI_dct"] == got["FMI_w"] == 1.0  # both-constant windows score 1
    assert math.isnan(got["SCD"]) and math.isnan(got["CC"])  # correlations of constants: 0/0
    # Q^{AB/F}'s zero padding keeps border gradients, so only an all-black triplet is undefined.
    assert 0 < got["Qabf"] <= 1
    black = np.zeros_like(flat)
    assert math.isnan(compute(black, black, black, metrics="Qabf")["Qabf"])
    assert got["VIF"] == 2.0 if profile == "cdd" else math.isnan(got["VIF"])
    assert got["Nabf"] == 0.0 and got["GMSD"] == 0.0 and got["MSE"] == 0.0
    assert got["SSIM"] == pytest.approx(2.0 if profile == "cdd" else 1.0)
    assert got["MS_SSIM"] == pytest.approx(1.0)


SYMMETRIC = ["MI", "VIF", "Qabf", "Nabf", "SSIM", "MS_SSIM", "CC", "PSNR", "MSE", "GMSD", "SCD"]


@pytest.mark.parametrize("profile", ["cdd", "tang"])
def test_symmetric_in_the_sources(random_triplet, profile: str) -> None:
    fused, ir, vis = random_triplet
    metrics = [m for m in SYMMETRIC if not (profile == "tang" and m == "Nabf")]  # Tang's driver order is not
    forward = compute(fused, ir, vis, metrics=metrics, profile=profile)
    swapped = compute(fused, vis, ir, metrics=metrics, profile=profile)
    for name in metrics:
        assert forward[name] == pytest.approx(swapped[name], rel=1e-9), name


def test_value_ranges(random_triplet) -> None:
    got = compute(*(x[:64, :64] for x in random_triplet), metrics=DEFAULT_METRICS)
    assert 0 <= got["EN"] <= 8
    assert -1 <= got["CC"] <= 1 and -2 <= got["SCD"] <= 2
    assert 0 <= got["Qabf"] <= 1 and 0 <= got["Nabf"] <= 1
    assert -2 <= got["SSIM"] <= 2 and got["GMSD"] >= 0
    for name in ("FMI_pixel", "FMI_dct", "FMI_w"):
        assert 0 <= got[name] <= 1, name
    assert math.isnan(got["MS_SSIM"])  # 64x64 is too small for five scales


@pytest.mark.filterwarnings("ignore:FMI_w")
@pytest.mark.parametrize("profile", ["cdd", "tang"])
def test_unit_range_input_matches_0_255(random_triplet, profile: str) -> None:
    small = tuple(x[:64, :64] for x in random_triplet)
    metrics = list(DEFAULT_METRICS)
    on_255 = compute(*small, metrics=metrics, profile=profile)
    on_unit = compute(*(x / 255 for x in small), metrics=metrics, profile=profile, data_range=1)
    for name in metrics:
        assert on_unit[name] == pytest.approx(on_255[name], rel=1e-7, abs=1e-9, nan_ok=True), name


def test_tensor_input_matches_numpy(random_triplet) -> None:
    small = tuple(x[:64, :64] for x in random_triplet)
    as_numpy = compute(*small)
    as_tensor = compute(*(torch.from_numpy(x)[None, None] for x in small))
    assert as_tensor == pytest.approx(as_numpy, rel=1e-12, nan_ok=True)


def test_quantize_rounds_like_a_saved_png(random_triplet) -> None:
    fused, ir, vis = (x[:64, :64] for x in random_triplet)
    jittered = fused + 0.3
    assert compute(jittered, ir, vis, metrics="SD,SSIM", quantize=True) == compute(fused, ir, vis, metrics="SD,SSIM")


def test_colour_conversion_per_profile() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.float64)
    assert to_grey(rgb, "opencv").tolist() == [[76.0, 150.0, 29.0, 18.0]]
    assert to_grey(rgb, "matlab").tolist() == [[76.0, 150.0, 29.0, 18.0]]
    # 0.299*0.5+... ties: MATLAB rounds half away, OpenCV's float path rounds half to even.
    grey = np.stack([np.full((4, 4), 77.0)] * 3, axis=-1)
    assert np.array_equal(to_grey(grey, "opencv"), grey[..., 0])


def test_colour_images_are_compared_on_luma(random_triplet) -> None:
    fused, ir, vis = (x[:64, :64] for x in random_triplet)
    colour_vis = np.stack([vis, np.clip(vis + 20, 0, 255), np.clip(vis - 20, 0, 255)], axis=-1)
    grey_vis = to_grey(colour_vis, PROFILES["cdd"].gray_conversion)
    assert compute(fused, ir, colour_vis, metrics="MI,SSIM") == compute(fused, ir, grey_vis, metrics="MI,SSIM")
    three_equal = np.stack([fused] * 3, axis=-1)
    assert compute(three_equal, ir, vis, metrics="EN,VIF") == compute(fused, ir, vis, metrics="EN,VIF")


def test_wavelet_filter_construction_reproduces_pywavelets_dmey() -> None:
    """The user-filter path (used for MATLAB's 102-tap dmey) rebuilds pywt's own dmey exactly."""
    pywt = pytest.importorskip("pywt")
    reference = pywt.Wavelet("dmey")
    built = wavelet_from_scaling_filter(reference.rec_lo)
    for ours, theirs in zip(built.filter_bank, reference.filter_bank, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-15)


def test_user_wavelet_filter_is_used(random_triplet) -> None:
    pywt = pytest.importorskip("pywt")
    small = tuple(x[:40, :40] for x in random_triplet)
    default = compute(*small, metrics="FMI_w")
    via_filter = compute(*small, metrics="FMI_w", profile="tang", fmi_dmey_filter=pywt.Wavelet("dmey").rec_lo)
    assert via_filter["FMI_w"] == pytest.approx(default["FMI_w"], rel=1e-12)


def test_registry_directions() -> None:
    lower = {name for name, m in METRICS.items() if not m.higher_is_better}
    assert lower == {"Nabf", "MSE", "GMSD"}
    assert "VIFF_han" in METRICS and "VIFF_han" not in DEFAULT_METRICS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": "EN,NOPE"}, "unknown metric 'NOPE'"),
        ({"profile": "vifb"}, "unknown profile"),
        ({"ag_norm": "x"}, "ag_norm"),
        ({"colour": True}, "unknown metric option"),
        ({"data_range": 0}, "data_range"),
    ],
)
def test_bad_arguments_raise_value_error(random_triplet, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        compute(*random_triplet, **kwargs)


def test_bad_images_raise_value_error(random_triplet) -> None:
    fused, ir, vis = random_triplet
    with pytest.raises(ValueError, match="sizes differ"):
        compute(fused[:-1], ir, vis, metrics="EN")
    with pytest.raises(ValueError, match="fused: image contains NaN"):
        compute(np.where(fused > 100, np.nan, fused), ir, vis, metrics="EN")
    with pytest.raises(ValueError, match="ir: expected an"):
        compute(fused, ir[None, None, None], vis, metrics="EN")
