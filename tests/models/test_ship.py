"""ship: the official SHIP architecture, official-weight parity, from-scratch init and numerics."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from tests.conftest import shared_file

from distilfuse.io.images import read_image, to_unit
from distilfuse.models import FeatureTaps, WeightsError, count_parameters, create
from distilfuse.models.blocks.layer_norm import ChannelLayerNorm
from distilfuse.models.teachers.ship import CENTRAL_DIFFERENCE_THETA, CrossTapConv, InvertibleConv1x1

SHIP_SHA256 = "e61783e79144d5c9da6681b833ad64624ed2e61f6a533fd18ab896349e3f7329"  # spec weight-file table

# spec/architectures.md §3: official SHIP raw Y on metric_reference/{ir,vis}_256x256.png.
PIXELS = [(0, 0), (17, 200), (128, 128), (255, 255), (100, 30)]
RAW_STATS = (0.5353772, 0.2106077, 0.0944915, 1.2320373, [0.287143, 0.234873, 0.590755, 0.549545, 0.732037])
CLAMPED_MEAN_STD = (0.5351752, 0.2101180)

# SHIP is ill-conditioned in float32: some half-instance-norm channels have a std ~1e-3 of their mean, so
# round-off is amplified ~1000x on a few pixels and only the official float32 operation order reproduces
# the reference (folding the CDC convs or calling F.layer_norm instead: 2.3e-4-2.8e-4 on pair 07; float64:
# 4.4e-4). Single-threaded, this port reproduces all three pairs bit for bit with torch 2.13 on an AVX-512
# CPU; oneDNN picks other conv kernels for other thread counts (2 threads: 3.1e-4 on 07, 1.7e-5 on 05).
MAX_ERROR = 1e-4
PAIRS = [
    "05",  # 280x280
    "19",  # 620x450, ~5-9 s here
    # 512x512, ~5-9 s here; slow because it is the pair that needs the reference's exact conv kernels
    pytest.param("07", marks=pytest.mark.slow),
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
@pytest.mark.usefixtures("single_thread")
def test_official_weights_match_official_raw_output(official: torch.nn.Module, pair: str) -> None:
    ref_dir = shared_file("reference_outputs/ship")
    ir = torch.from_numpy(np.load(ref_dir / f"{pair}_ir.npy"))[None, None]
    vis = torch.from_numpy(np.load(ref_dir / f"{pair}_vi.npy"))[None, None]
    with torch.no_grad():
        raw = official(ir, vis, raw=True)[0, 0].numpy()
    error = np.abs(raw - np.load(ref_dir / f"{pair}_out.npy"))
    assert error.max() <= MAX_ERROR


def test_statistics_on_metric_reference_images_match_spec(official: torch.nn.Module) -> None:
    ir, vis = (
        torch.from_numpy(to_unit(read_image(shared_file(f"spec/metric_reference/{name}_256x256.png"))))[None, None]
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


def test_cross_taps_are_placed_on_the_spec_crosses() -> None:
    taps = torch.arange(1.0, 6.0)
    expected = {
        (1, 3, 4, 5, 7): [[0, 1, 0], [2, 3, 4], [0, 5, 0]],  # h_conv: horizontal-vertical cross
        (0, 2, 4, 6, 8): [[1, 0, 2], [0, 3, 0], [4, 0, 5]],  # d_conv: diagonal cross
    }
    for positions, kernel in expected.items():
        cross = CrossTapConv(1, 1, positions)
        with torch.no_grad():
            cross.conv.weight.copy_(taps.view(1, 1, 1, 5))
        assert torch.equal(cross.kernel(), torch.tensor(kernel, dtype=torch.float32).view(1, 1, 3, 3))


def test_cross_conv_subtracts_theta_times_the_tap_sum_at_the_centre() -> None:
    torch.manual_seed(0)
    cross = CrossTapConv(1, 1, (1, 3, 4, 5, 7))
    impulse = torch.zeros(1, 1, 5, 5)
    impulse[..., 2, 2] = 1
    with torch.no_grad():
        response = cross(impulse)[0, 0, 1:4, 1:4]
        kernel = cross.kernel()[0, 0]
        expected = kernel.flip(0, 1)  # a correlation's impulse response is the kernel turned 180 degrees
        expected[1, 1] -= CENTRAL_DIFFERENCE_THETA * kernel.sum()
    torch.testing.assert_close(response, expected, rtol=0, atol=1e-6)


def test_channel_layer_norm_is_layer_norm_over_channels() -> None:
    torch.manual_seed(0)
    norm = ChannelLayerNorm(6)
    with torch.no_grad():
        norm.body.weight.normal_()
        norm.body.bias.normal_()
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    expected = norm.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected, rtol=0, atol=1e-5)
    assert set(norm.state_dict()) == {"body.weight", "body.bias"}


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
