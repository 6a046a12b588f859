"""distilfuse.metrics.evaluate: folder evaluation and the method table, as a library (eval and report use it)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distilfuse.io import pair_by_stem, read_image
from distilfuse.metrics import compute
from distilfuse.metrics.evaluate import as_grey_255, evaluate_folders, method_labels, method_table


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(5)
    for stem in ("p1", "p2"):
        ir = rng.integers(0, 200, (40, 52), dtype=np.uint8)
        vis = rng.integers(0, 255, (40, 52), dtype=np.uint8)
        for name, image in (("ir", ir), ("vis", vis), ("bright", np.maximum(ir, vis)), ("dark", ir // 3)):
            (tmp_path / name).mkdir(exist_ok=True)
            Image.fromarray(image.astype(np.uint8)).save(tmp_path / name / f"{stem}.png")
    return {name: tmp_path / name for name in ("ir", "vis", "bright", "dark")}


def test_folders_are_scored_per_image_and_problems_reported_through_the_callback(folders) -> None:
    (folders["dark"] / "p2.png").unlink()
    pairs, _ = pair_by_stem(folders["ir"], folders["vis"])
    messages: list[str] = []
    result = evaluate_folders([folders["bright"], folders["dark"]], pairs, ["SD", "MSE"], report=messages.append)
    assert list(result.means) == ["bright", "dark"] and result.counts == {"bright": 2, "dark": 1}
    assert result.problems == 1 and len(messages) == 1 and "no fused image with stem 'p2'" in messages[0]
    assert [(r["method"], r["stem"]) for r in result.rows] == [("bright", "p1"), ("bright", "p2"), ("dark", "p1")]
    grey = [as_grey_255(read_image(folders[k] / "p2.png"), "cdd") for k in ("bright", "ir", "vis")]
    assert result.rows[1]["SD"] == pytest.approx(compute(*grey, metrics="SD")["SD"], rel=1e-12)
    assert result.means["bright"]["MSE"] == pytest.approx((result.rows[0]["MSE"] + result.rows[1]["MSE"]) / 2)


def test_method_labels_are_folder_names_and_must_be_distinct(tmp_path) -> None:
    assert method_labels([tmp_path / "a" / "x", tmp_path / "y"]) == ["x", "y"]
    with pytest.raises(ValueError, match="distinct"):
        method_labels([tmp_path / "a" / "x", tmp_path / "b" / "x"])


def test_method_table_marks_the_best_in_each_metric_direction() -> None:
    means = {"m1": {"SD": 40.0, "MSE": 9.0}, "m2": {"SD": 30.0, "MSE": 3.0}, "m3": {"SD": math.nan, "MSE": 3.00001}}
    lines = method_table(means, {"m1": 5, "m2": 5, "m3": 4}, ["SD", "MSE"]).splitlines()
    assert lines[0] == "| Method | Images | SD ↑ | MSE ↓ |"
    assert lines[2:] == [
        "| m1 | 5 | **40.0000** | 9.0000 |",
        "| m2 | 5 | 30.0000 | **3.0000** |",
        "| m3 | 4 | nan | **3.0000** |",  # equal to the best at the shown precision
    ]


def test_upscaled_sources_score_super_resolved_fusions(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    fused = rng.integers(0, 255, (20, 26)).astype(np.uint8)
    for name, image in (("ir", np.full((10, 13), 100)), ("vis", np.full((10, 13), 200)), ("x2", fused)):
        (tmp_path / name).mkdir()
        Image.fromarray(image.astype(np.uint8)).save(tmp_path / name / "p.png")
    (tmp_path / "odd").mkdir()
    Image.fromarray(fused[:19]).save(tmp_path / "odd" / "p.png")  # 19 rows: not 2 x 10
    pairs, _ = pair_by_stem(tmp_path / "ir", tmp_path / "vis")
    messages: list[str] = []
    result = evaluate_folders([tmp_path / "x2"], pairs, ["MSE", "CC"], upscale_sources=True, report=messages.append)
    # constant sources stay constant when resized: the scores are those against 20 x 26 constants
    expected = compute(fused.astype(np.float64), np.full((20, 26), 100.0), np.full((20, 26), 200.0), metrics="MSE")
    assert result.counts == {"x2": 1} and not messages
    assert result.rows[0]["MSE"] == pytest.approx(expected["MSE"], rel=1e-12)
    plain = evaluate_folders([tmp_path / "x2"], pairs, ["MSE"], report=messages.append)
    odd = evaluate_folders([tmp_path / "odd"], pairs, ["MSE"], upscale_sources=True, report=messages.append)
    assert plain.counts == {"x2": 0} and odd.counts == {"odd": 0}
    assert "image sizes differ" in messages[0] and "not one integer scale apart" in messages[1]
    # every file is named with its role and size: the three files share one name here
    assert f"fused {tmp_path / 'x2' / 'p.png'} 20x26" in messages[0]
    assert f"infrared {tmp_path / 'ir' / 'p.png'} 10x13" in messages[0]
    assert f"visible {tmp_path / 'vis' / 'p.png'} 10x13" in messages[0]


def test_metrics_won_counts_strict_wins_in_each_metrics_direction() -> None:
    from distilfuse.metrics.evaluate import metrics_won

    means = {"a": {"SSIM": 0.9, "MSE": 10.0, "EN": 7.0}, "b": {"SSIM": 0.8, "MSE": 5.0, "EN": 7.0}}
    assert metrics_won(means, "a", "b", ["SSIM", "MSE", "EN"]) == ["SSIM"]  # MSE: lower wins; a tie is no win
    assert metrics_won(means, "b", "a", ["SSIM", "MSE", "EN"]) == ["MSE"]


def test_metric_options_override_the_profile(folders) -> None:
    pairs, _ = pair_by_stem(folders["ir"], folders["vis"])
    average = evaluate_folders([folders["bright"]], pairs, ["SSIM"], options={"ssim_mode": "matlab"})
    grey = [as_grey_255(read_image(folders[k] / "p1.png"), "cdd") for k in ("bright", "ir", "vis")]
    expected = compute(*grey, metrics="SSIM", ssim_mode="matlab")["SSIM"]
    assert average.rows[0]["SSIM"] == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(compute(*grey, metrics="SSIM")["SSIM"], rel=1e-3)
