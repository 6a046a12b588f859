"""Every value of the specification's reference_values.json, within its stated tolerance."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from metric_reference_data import DIGESTS, digest, generate_triplet, image_set, reference_params

from distilfuse.metrics import compute

# The 102-tap MATLAB dmey filter is not distributed, so this one case cannot be evaluated.
NOT_DISTRIBUTED = {"FMI_w.matlab102"}


def _case(reference_values: dict, case_id: str) -> dict:
    return next(c for c in reference_values["cases"] if c["id"] == case_id)


@pytest.mark.parametrize(("case_id", "set_name"), reference_params())
def test_reference_value(reference_values, case_id: str, set_name: str) -> None:
    if case_id in NOT_DISTRIBUTED:
        pytest.skip("MATLAB's 102-tap dmey scaling filter is not distributed with the specification")
    case = _case(reference_values, case_id)
    assert "rtol" in case and "atol" in case, f"{case_id}: no tolerance stated"
    profile = "cdd" if "cdd" in case["profiles"] or not case["profiles"] else "tang"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tang FMI_w fallback warning is tested separately
        got = compute(*image_set(set_name), metrics=[case["metric"]], profile=profile, **case["options"])
    expected = case["values"][set_name]
    assert abs(got[case["metric"]] - expected) <= case["atol"] + case["rtol"] * abs(expected), (
        f"{case_id} on {set_name}: got {got[case['metric']]!r}, expected {expected!r}"
    )


@pytest.mark.parametrize("profile", ["cdd", "tang"])
def test_profile_defaults_reproduce_their_cases(reference_values, triplet_256, profile: str) -> None:
    """Without explicit options each profile gives the values listed for it."""
    cases = [
        c
        for c in reference_values["cases"]
        if (profile in c["profiles"] or (profile == "tang" and "tang_fallback" in c["profiles"]))
        and "256x256" in c["values"]
        and c["id"] not in NOT_DISTRIBUTED
        and not c["metric"].startswith("FMI")  # FMI profile defaults are covered on crop64 below
    ]
    got = compute(*triplet_256, metrics=[c["metric"] for c in cases], profile=profile)
    for c in cases:
        assert got[c["metric"]] == pytest.approx(c["values"]["256x256"], rel=c["rtol"], abs=c["atol"]), c["id"]


def test_fmi_profile_defaults_on_crop64(reference_values) -> None:
    crop = image_set("crop64")
    expected = {c["id"]: c["values"]["crop64"] for c in reference_values["cases"] if "crop64" in c["values"]}
    cdd = compute(*crop, metrics="FMI_pixel,FMI_dct,FMI_w")
    assert cdd["FMI_pixel"] == pytest.approx(expected["FMI_pixel.cdd"], rel=1e-5)
    assert cdd["FMI_w"] == pytest.approx(expected["FMI_w.pywt"], rel=1e-5)
    with pytest.warns(UserWarning, match="102-tap"):
        tang = compute(*crop, metrics="FMI_pixel,FMI_dct,FMI_w", profile="tang")
    assert tang["FMI_pixel"] == pytest.approx(expected["FMI_pixel.tang"], rel=1e-5)
    assert tang["FMI_dct"] == pytest.approx(expected["FMI_dct"], rel=1e-5)
    assert tang["FMI_w"] == pytest.approx(expected["FMI_w.pywt"], rel=1e-5)  # fallback without the filter


def test_qabf_on_unit_scale_input_is_rescaled(reference_values, triplet_256) -> None:
    wrong = reference_values["diagnostics"]["Qabf_on_unit_scale_inputs"]["values"]["256x256"]
    right = _case(reference_values, "Qabf")["values"]["256x256"]
    got = compute(*(x / 255 for x in triplet_256), metrics=["Qabf"], data_range=1)["Qabf"]
    assert got == pytest.approx(right, rel=1e-5)
    assert got != pytest.approx(wrong, rel=1e-3)


@pytest.mark.parametrize("tag", ["256x256", "640x480"])
def test_recipe_regenerates_the_reference_images(tag: str) -> None:
    width, height = (int(v) for v in tag.split("x"))
    for role, array in generate_triplet(height, width).items():
        assert digest(array) == DIGESTS[f"{role}_{tag}"], role


def test_components_match_per_source_terms(reference_values, triplet_256) -> None:
    """Per-source debugging terms: MI in nats and CC per source, through single-source triplets."""
    components = reference_values["components"]["values"]["256x256"]
    fused, ir, vis = triplet_256
    # With both sources equal, the sum/mean aggregations reduce to one per-source term.
    both_ir = compute(fused, ir, ir, metrics="MI,CC,MSE")
    assert both_ir["MI"] == pytest.approx(2 * components["MI_FA_nats"], rel=1e-9)
    assert both_ir["CC"] == pytest.approx(components["CC_AF"], rel=1e-9)
    assert both_ir["MSE"] == pytest.approx(components["MSE_AF"], rel=1e-9)
    assert np.max(fused) == components["max_F"]
