"""`distilfuse eval` through an argparse harness: outputs, method tables, bad input."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distilfuse.cli import eval as eval_command
from distilfuse.metrics import compute


def run_eval(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="distilfuse")
    eval_command.register(parser.add_subparsers())
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture()
def folders(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(3)
    for i, stem in enumerate(["a1", "b2"]):
        ir = rng.integers(0, 200, (48, 56), dtype=np.uint8)
        vis = rng.integers(0, 255, (48, 56, 3), dtype=np.uint8)
        _save(tmp_path / "ir" / f"{stem}.png", ir)
        _save(tmp_path / "vis" / f"{stem}.jpg" if i else tmp_path / "vis" / f"{stem}.png", vis)
        _save(tmp_path / "good" / f"{stem}.png", np.maximum(ir, vis[..., 1]))
        _save(tmp_path / "dark" / f"{stem}.bmp", (ir // 2).astype(np.uint8))
    return {name: tmp_path / name for name in ("ir", "vis", "good", "dark")}


def test_folder_mode_writes_csv_and_json(folders, tmp_path, capsys) -> None:
    out = tmp_path / "res" / "run1"
    code = run_eval(
        "--fused",
        str(folders["good"]),
        "--ir",
        str(folders["ir"]),
        "--vis",
        str(folders["vis"]),
        "--metrics",
        "EN,MI,SSIM,Nabf",
        "--out",
        str(out),
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "EN ↑" in printed and "Nabf ↓" in printed and "mean over 2 images" in printed
    rows = list(csv.DictReader(open(out.with_suffix(".csv"))))
    assert [r["stem"] for r in rows] == ["a1", "b2"]
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["images"] == 2 and summary["problems"] == 0 and summary["directions"]["Nabf"] == "lower"
    assert summary["means"]["EN"] == pytest.approx(np.mean([float(r["EN"]) for r in rows]))
    # The per-image value is the library's value on the decoded files (colour VIS converted to grey).
    from distilfuse.io import read_image

    expected = compute(
        *(read_image(folders[k] / "a1.png").astype(float) for k in ("good", "ir")),
        read_image(folders["vis"] / "a1.png"),
        metrics="MI",
    )
    assert float(rows[0]["MI"]) == pytest.approx(expected["MI"], rel=1e-12)


def test_problems_are_one_line_each_and_exit_1(folders, tmp_path, capsys) -> None:
    (folders["good"] / "b2.png").unlink()
    _save(folders["good"] / "zz.png", np.zeros((48, 56), np.uint8))  # no sources for this stem
    _save(folders["ir"] / "c3.png", np.zeros((48, 56), np.uint8))
    _save(folders["vis"] / "c3.png", np.zeros((40, 56), np.uint8))  # size mismatch
    _save(folders["good"] / "c3.png", np.zeros((48, 56), np.uint8))
    (folders["ir"] / "d4.png").write_bytes(b"not a png")
    _save(folders["vis"] / "d4.png", np.zeros((48, 56), np.uint8))
    _save(folders["good"] / "d4.png", np.zeros((48, 56), np.uint8))
    code = run_eval(
        "--fused",
        str(folders["good"]),
        "--ir",
        str(folders["ir"]),
        "--vis",
        str(folders["vis"]),
        "--metrics",
        "EN",
        "--out",
        str(tmp_path / "r"),
    )
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert any("zz.png" in line and "no infrared/visible pair" in line for line in lines)
    assert any("no fused image with stem 'b2'" in line for line in lines)
    assert any("c3.png" in line and "sizes differ" in line for line in lines)
    assert any("d4.png" in line for line in lines)
    assert "Traceback" not in err
    assert json.loads((tmp_path / "r.json").read_text())["images"] == 1


def test_methods_mode_marks_best_per_column(folders, tmp_path, capsys) -> None:
    out = tmp_path / "cmp.json"  # a suffix is dropped: cmp.csv, cmp.json and cmp.md are written
    code = run_eval(
        "--methods",
        str(folders["good"]),
        str(folders["dark"]),
        "--ir",
        str(folders["ir"]),
        "--vis",
        str(folders["vis"]),
        "--metrics",
        "SD,MSE",
        "--out",
        str(out),
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "| Method | Images | SD ↑ | MSE ↓ |" in table
    summary = json.loads((tmp_path / "cmp.json").read_text())["means"]
    best_sd = max(summary, key=lambda m: summary[m]["SD"])
    best_mse = min(summary, key=lambda m: summary[m]["MSE"])
    for line in table.splitlines():
        if line.startswith(f"| {best_sd} |"):
            assert line.split("|")[3].strip().startswith("**")
        if line.startswith(f"| {best_mse} |"):
            assert line.split("|")[4].strip().startswith("**")
    assert (tmp_path / "cmp.md").read_text() == table.split("wrote")[0]
    rows = list(csv.DictReader(open(tmp_path / "cmp.csv")))
    assert {r["method"] for r in rows} == {"good", "dark"}


def test_methods_equal_to_the_shown_precision_are_all_marked_best(folders, tmp_path, capsys) -> None:
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(folders["good"], twin)
    args = ["--methods", str(folders["good"]), str(twin), str(folders["dark"])]
    code = run_eval(
        *args, "--ir", str(folders["ir"]), "--vis", str(folders["vis"]), "--metrics", "SD", "--out", str(tmp_path / "t")
    )
    assert code == 0
    rows = {
        line.split("|")[1].strip(): line.split("|")[3].strip()
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| ")
    }
    assert rows["good"] == rows["twin"]
    assert rows["good"].startswith("**") != rows["dark"].startswith("**")


def test_stretch_expands_the_fused_range(folders, tmp_path) -> None:
    base = [
        "--fused",
        str(folders["dark"]),
        "--ir",
        str(folders["ir"]),
        "--vis",
        str(folders["vis"]),
        "--metrics",
        "SD",
    ]
    assert run_eval(*base, "--out", str(tmp_path / "plain")) == 0
    assert run_eval(*base, "--stretch", "--out", str(tmp_path / "stretched")) == 0
    plain = json.loads((tmp_path / "plain.json").read_text())["means"]["SD"]
    stretched = json.loads((tmp_path / "stretched.json").read_text())["means"]["SD"]
    assert stretched > plain


def test_stretch_of_a_constant_fused_image_scores_zeros(folders, tmp_path) -> None:
    """No range to stretch: scored as all zeros (what bytescale and the NaN-to-uint8 casts save), not as is."""
    from distilfuse.io import read_image

    for stem in ("a1", "b2"):
        _save(tmp_path / "flat" / f"{stem}.png", np.full((48, 56), 90, np.uint8))
    base = ["--fused", str(tmp_path / "flat"), "--ir", str(folders["ir"]), "--vis", str(folders["vis"])]
    assert run_eval(*base, "--metrics", "MSE", "--stretch", "--out", str(tmp_path / "stretched")) == 0
    assert run_eval(*base, "--metrics", "MSE", "--out", str(tmp_path / "plain")) == 0
    sources = [(read_image(folders["ir"] / "a1.png"), read_image(folders["vis"] / "a1.png"))]
    sources.append((read_image(folders["ir"] / "b2.png"), read_image(folders["vis"] / "b2.jpg")))
    expected = np.mean([compute(np.zeros((48, 56)), ir, vis, metrics="MSE")["MSE"] for ir, vis in sources])
    stretched = json.loads((tmp_path / "stretched.json").read_text())["means"]["MSE"]
    plain = json.loads((tmp_path / "plain.json").read_text())["means"]["MSE"]
    assert stretched == pytest.approx(expected, rel=1e-12)
    assert plain != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metrics", "EN,BOGUS"], "unknown metric 'BOGUS'"),
        (["--ir", "/nonexistent/ir"], "no such folder"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(folders, tmp_path, capsys, argv, message) -> None:
    defaults = {"--ir": str(folders["ir"]), "--metrics": "EN"}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        defaults[flag] = value
    args = ["--fused", str(folders["good"]), "--vis", str(folders["vis"]), "--out", str(tmp_path / "x")]
    for flag, value in defaults.items():
        args += [flag, value]
    assert run_eval(*args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
