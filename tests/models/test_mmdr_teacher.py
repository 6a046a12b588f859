"""mmdr-teacher: the official MMDRFuse teacher, official-weight parity, the official checkpoints' identity."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.conftest import shared_file

from distilfuse.io.images import read_image, to_unit
from distilfuse.models import FeatureTaps, WeightsError, create

# sha256 of the official files, from the weight-file table of spec/architectures.md.
OFFICIAL_SHA256 = {
    "weights/mmdrfuse/student.model": "e5ad5bab796f4480dbbc35a8f6f63e69ba3ccd1842476d2c2453ca1aca6eb17c",
    "weights/mmdrfuse/teacher.model": "6a4f86a0a543ceb1af93d9b1e955e9108ee35a5014710c6a2b0e071cdc8e25b5",
}

# spec/architectures.md §3: official outputs on metric_reference/{ir,vis}_256x256.png:
# mean, population std, min, max, then the values at the listed (row, col) pixels.
PIXELS = [(0, 0), (17, 200), (128, 128), (255, 255), (100, 30)]
REFERENCE_STATS = {
    "mmdr-mini": ("student.model", 0.5588078, 0.1571618, 0.1532839, 0.8511249,
                  [0.295328, 0.348958, 0.665275, 0.558262, 0.698542]),
    "mmdr-teacher": ("teacher.model", 0.5642648, 0.1929555, 0.1390668, 0.9907734,
                     [0.273084, 0.295985, 0.708876, 0.572133, 0.737597]),
}  # fmt: skip


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def official_teacher() -> torch.nn.Module:
    return create("mmdr-teacher", weights=shared_file("weights/mmdrfuse/teacher.model"))


def metric_reference_pair() -> tuple[torch.Tensor, torch.Tensor]:
    ir, vis = (shared_file(f"spec/metric_reference/{name}_256x256.png") for name in ("ir", "vis"))
    return tuple(torch.from_numpy(to_unit(read_image(p)))[None, None] for p in (ir, vis))


@pytest.mark.parametrize("relative", sorted(OFFICIAL_SHA256))
def test_official_checkpoint_is_the_documented_file(relative: str) -> None:
    assert sha256(shared_file(relative)) == OFFICIAL_SHA256[relative]


@pytest.mark.parametrize("pair", ["05", "07", "19"])
def test_official_weights_match_official_raw_output(pair: str) -> None:
    ref_dir = shared_file("reference_outputs/mmdrfuse")
    ir = torch.from_numpy(np.load(ref_dir / f"{pair}_ir.npy"))[None, None]
    vis = torch.from_numpy(np.load(ref_dir / f"{pair}_vi.npy"))[None, None]
    with torch.no_grad():
        raw = official_teacher()(ir, vis, raw=True)[0, 0].numpy()
    assert np.abs(raw - np.load(ref_dir / f"{pair}_teacher_out.npy")).max() <= 1e-5


@pytest.mark.parametrize("name", sorted(REFERENCE_STATS))
def test_statistics_on_metric_reference_images_match_spec(name: str) -> None:
    weights, mean, std, lo, hi, values = REFERENCE_STATS[name]
    model = create(name, weights=shared_file(f"weights/mmdrfuse/{weights}"))
    with torch.no_grad():
        out = model(*metric_reference_pair(), raw=True)[0, 0]
    measured = [out.mean(), out.std(unbiased=False), out.min(), out.max(), *(out[r, c] for r, c in PIXELS)]
    np.testing.assert_allclose([float(v) for v in measured], [mean, std, lo, hi, *values], rtol=0, atol=1e-5)


def test_odd_sizes_are_reflect_padded_bottom_right_then_cropped() -> None:
    torch.manual_seed(0)
    model = create("mmdr-teacher", weights=None)
    ir, vis = torch.rand(1, 1, 15, 20), torch.rand(1, 1, 15, 20)
    with torch.no_grad():
        out = model(ir, vis, raw=True)
        padded = model.fuse_raw(F.pad(ir, (0, 0, 0, 1), mode="reflect"), F.pad(vis, (0, 0, 0, 1), mode="reflect"))
    assert out.shape == (1, 1, 15, 20)
    assert torch.equal(out, padded[..., :15, :])


def test_feature_taps_expose_encoder_decoder_and_distillation_tensors() -> None:
    model = create("mmdr-teacher", weights=None)
    ir, vis = torch.rand(1, 1, 16, 24), torch.rand(1, 1, 16, 24)
    with torch.no_grad(), FeatureTaps(model) as taps:
        out = model(ir, vis, raw=True)
    shapes = {name: tuple(feature.shape[1:]) for name, feature in taps.features.items()}
    assert shapes["G1"] == shapes["G2"] == shapes["D2"] == (32, 16, 24)
    assert all(shapes[f"G{k}"] == (64, 8, 12) for k in range(3, 7))
    assert all(shapes[f"D{k}"] == (64, 8, 12) for k in range(3, 7))
    assert shapes["pre11"] == shapes["feat11"] == (4, 16, 24)
    assert torch.equal(taps.features["feat11"], taps.features["pre11"].relu())
    assert torch.equal(taps.features["out"], taps.features["pre00"].tanh())
    assert torch.equal(taps.features["out"], out)


def test_feat11_pairs_with_the_student_feat1() -> None:
    teacher, student = create("mmdr-teacher", weights=None), create("mmdr-mini", weights=None)
    ir, vis = torch.rand(1, 1, 12, 12), torch.rand(1, 1, 12, 12)
    with torch.no_grad(), FeatureTaps(teacher, ["feat11"]) as t, FeatureTaps(student, ["feat1"]) as s:
        teacher(ir, vis)
        student(ir, vis)
    assert t.features["feat11"].shape == s.features["feat1"].shape


def test_a_checkpoint_of_another_model_gives_a_one_line_error_naming_the_file() -> None:
    ship_file = shared_file("weights/ship/SHIP_model.pth")
    with pytest.raises(WeightsError) as error:
        create("mmdr-teacher", weights=ship_file)
    message = str(error.value)
    assert str(ship_file) in message and "mmdr-teacher" in message
    assert "\n" not in message
