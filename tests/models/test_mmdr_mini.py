"""mmdr-mini: the official MMDRFuse student architecture, official-weight parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import shared_file

from distilfuse.models import FeatureTaps, WeightsError, create


@pytest.mark.parametrize("pair", ["05", "07", "19"])
def test_official_weights_match_official_raw_output(pair: str) -> None:
    ref_dir = shared_file("reference_outputs/mmdrfuse")
    model = create("mmdr-mini", weights=shared_file("weights/mmdrfuse/student.model"))
    ir = torch.from_numpy(np.load(ref_dir / f"{pair}_ir.npy"))[None, None]
    vis = torch.from_numpy(np.load(ref_dir / f"{pair}_vi.npy"))[None, None]
    with torch.no_grad():
        raw = model(ir, vis, raw=True)[0, 0].numpy()
    assert np.abs(raw - np.load(ref_dir / f"{pair}_student_out.npy")).max() <= 1e-5


def test_unit_range_output_is_clamped_tanh_map() -> None:
    model = create("mmdr-mini", weights=None)
    ir, vis = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(ir, vis), model(ir, vis, raw=True).clamp(0, 1))


def test_feature_taps_expose_official_distillation_tensors() -> None:
    model = create("mmdr-mini", weights=None)
    ir, vis = torch.rand(1, 1, 10, 12), torch.rand(1, 1, 10, 12)
    with torch.no_grad(), FeatureTaps(model, ["feat1", "out"]) as taps:
        out = model(ir, vis, raw=True)
    assert taps.features["feat1"].shape == (1, 4, 10, 12)
    assert (taps.features["feat1"] >= 0).all()
    assert torch.equal(taps.features["out"], out)


def test_weights_that_do_not_fit_give_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.pt"
    torch.save({"conv1.1.weight": torch.zeros(3)}, bad)
    with pytest.raises(WeightsError, match="bad.pt: does not fit model mmdr-mini"):
        create("mmdr-mini", weights=bad)
    with pytest.raises(WeightsError, match="no such weights file"):
        create("mmdr-mini", weights=tmp_path / "absent.pt")


def test_checkpoint_with_several_sub_networks_is_flattened(tmp_path) -> None:
    from distilfuse.models import read_state_dict

    path = tmp_path / "two_parts.pth"
    torch.save({"epoch": 3, "netA": {"w": torch.ones(2)}, "netB": {"w": torch.zeros(1)}}, path)
    assert set(read_state_dict(path)) == {"netA.w", "netB.w"}
