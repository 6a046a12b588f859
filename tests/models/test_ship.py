"""ship: the official SHIP architecture, official-weight parity, from-scratch init and numerics."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.conftest import shared_file

from distilfuse.io.images import read_image, to_unit
from distilfuse.models import FeatureTaps, WeightsError, count_parameters, create
from distilfuse.models.teachers.ship import CENTRAL_DIFFERENCE_THETA, CrossTapConv, InvertibleConv1x1

SHIP_SHA256 = "e61783e79144d5c9da6681b833ad64624ed2e61f6a533fd18ab896349e3f7329"  # spec weight-file table

# spec/architectures.md §3: official SHIP raw Y on metric_reference/{ir,vis}_256x256.png.
PIXELS = [(0, 0), (17, 200), (128, 128), (255, 255), (100, 30)]
RAW_STATS = (0.5353772, 0.2106077, 0.0944915, 1.2320373, [0.287143, 0.234873, 0.590755, 0.549545, 0.732037])
CLAMPED_MEAN_STD = (0.5351752, 0.2101180)

# SHIP is ill-conditioned in float32: half-instance norms see channels whose std is ~1e-4 of their mean,
# so round-off is amplified up to ~1000x on a few pixels. On pair 07 a float64 run of this port differs
# from the official float32 output by 4.4e-4 at most, i.e. the reference itself carries that error; the
# bulk of every image still agrees to float32 round-off (99.9th percentile).
MAX_ERROR = {"05": 1e-4, "19": 1e-4, "07": 1e-3}
PAIRS = [
    "05",  # 280x280: the cheap one, run by default
    pytest.param("07", marks=pytest.mark.slow),  # 512x512
    pytest.param("19", marks=pytest.mark.slow),  # 620x450
]


@pytest.fixture(scope="module")
def official() -> torch.nn.Module:
    return create("ship", weights=shared_file("weights/ship/SHIP_model.pth"))


def test_official_checkpoint_is_the_documented_file() -> None:
    path = shared_file("weights/ship/SHIP_model.pth")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHIP_SHA256


def test_official_layout_counts(official: torch.nn.Module) -> None:
    assert count_parameters(official) == 547_509
    assert sum(b.numel() for b in official.buffers()) == 5_520
    assert len(official.state_dict()) == 484


@pytest.mark.parametrize("pair", PAIRS)
def test_official_weights_match_official_raw_output(official: torch.nn.Module, pair: str) -> None:
    ref_dir = shared_file("reference_outputs/ship")
    ir = torch.from_numpy(np.load(ref_dir / f"{pair}_ir.npy"))[None, None]
    vis = torch.from_numpy(np.load(ref_dir / f"{pair}_vi.npy"))[None, None]
    with torch.no_grad():
        raw = official(ir, vis, raw=True)[0, 0].numpy()
    error = np.abs(raw - np.load(ref_dir / f"{pair}_out.npy"))
    assert np.quantile(error, 0.999) <= 1e-4
    assert error.max() <= MAX_ERROR[pair]


def test_statistics_on_metric_reference_images_match_spec(official: torch.nn.Module) -> None:
    ir, vis = (
        torch.from_numpy(to_unit(read_image(shared_file(f"spec/metric_reference/{name}_256x256.png"))))[
            None, None
        ]
        for name in ("ir", "vis")
    )
    with torch.no_grad():
        raw = official(ir, vis, raw=True)[0, 0]
    clamped = official.to_unit_range(raw)
    mean, std, lo, hi, values = RAW_STATS
    measured = [raw.mean(), raw.std(unbiased=False), raw.min(), raw.max(), *(raw[r, c] for r, c in PIXELS)]
    measured += [clamped.mean(), clamped.std(unbiased=False)]
    expected = [mean, std, lo, hi, *values, *CLAMPED_MEAN_STD]
    np.testing.assert_allclose([float(v) for v in measured], expected, rtol=0, atol=1e-5)


def test_a_checkpoint_of_another_model_gives_a_one_line_error_naming_the_file() -> None:
    student_file = shared_file("weights/mmdrfuse/student.model")
    with pytest.raises(WeightsError) as error:
        create("ship", weights=student_file)
    message = str(error.value)
    assert str(student_file) in message and "ship" in message
    assert "\n" not in message


def test_cross_kernel_equals_official_two_conv_central_difference() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 9, 11)
    for positions in ((1, 3, 4, 5, 7), (0, 2, 4, 6, 8)):
        cross = CrossTapConv(3, 2, positions)
        taps = cross.conv.weight[:, :, 0, :]
        full = torch.zeros(2, 3, 9)
        full[:, :, list(positions)] = taps
        expected = F.conv2d(x, full.view(2, 3, 3, 3), padding=1) - CENTRAL_DIFFERENCE_THETA * F.conv2d(
            x, taps.sum(-1)[:, :, None, None]
        )
        torch.testing.assert_close(F.conv2d(x, cross.kernel(), padding=1), expected, rtol=1e-5, atol=1e-5)


def test_from_scratch_init_follows_the_spec() -> None:
    torch.manual_seed(0)
    model = create("ship", weights=None)
    assert all(p.item() == 0 for n, p in model.named_parameters() if n.endswith("HP_branch"))
    invconv = model.postprocess[0].invconv
    assert isinstance(invconv, InvertibleConv1x1)
    weight = invconv.weight().detach()
    torch.testing.assert_close(weight @ weight.T, torch.eye(48), rtol=0, atol=1e-5)  # orthogonal at init
    assert torch.equal(invconv.p.sum(0), torch.ones(48)) and torch.equal(invconv.p.sum(1), torch.ones(48))
    assert set(invconv.sign_s.tolist()) <= {-1.0, 1.0}


def test_feature_taps_are_full_resolution_16_channel_maps() -> None:
    model = create("ship", weights=None)
    ir, vis = torch.rand(1, 1, 13, 17), torch.rand(1, 1, 13, 17)
    with torch.no_grad(), FeatureTaps(model) as taps:
        out = model(ir, vis, raw=True)
    for name in ("v0", "i0", "v1", "v2", "v3", "g", "refine"):
        assert taps.features[name].shape == (1, 16, 13, 17), name
    assert torch.equal(taps.features["out"], out)


def test_unit_range_output_is_clamped_raw_y() -> None:
    model = create("ship", weights=None)
    ir, vis = torch.rand(1, 1, 12, 12), torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        assert torch.equal(model(ir, vis), model(ir, vis, raw=True).clamp(0, 1))


def test_runs_under_autocast_and_in_float64() -> None:
    torch.manual_seed(0)
    model = create("ship", weights=None)
    ir, vis = torch.rand(1, 1, 20, 24), torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        reference = model(ir, vis, raw=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_precision = model(ir, vis, raw=True)
        double = model.double()(ir.double(), vis.double(), raw=True)
    assert torch.isfinite(low_precision).all()
    torch.testing.assert_close(double.float(), reference, rtol=0, atol=1e-5)
