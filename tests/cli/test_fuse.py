"""`distilfuse fuse`, `demo`, `models` end to end: files, folders, bad inputs, real data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_file

from distilfuse.cli.main import COMMANDS, main
from distilfuse.data.synthetic import demo_scene
from distilfuse.io import read_image, write_image


@pytest.fixture()
def pair_dirs(tmp_path: Path) -> tuple[Path, Path]:
    ir_dir, vis_dir = tmp_path / "ir", tmp_path / "vi"
    for i, (h, w) in enumerate([(40, 52), (33, 47)]):
        ir, vis = demo_scene(h, w, seed=i)
        write_image(ir_dir / f"p{i}.png", ir)
        write_image(vis_dir / f"p{i}.jpg", vis)
    return ir_dir, vis_dir


def test_folder_mode_fuses_every_pair(pair_dirs, tmp_path, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    assert main(["fuse", "--ir", str(ir_dir), "--vis", str(vis_dir), "--out", str(tmp_path / "out")]) == 0
    assert "fused 2, failed 0" in capsys.readouterr().out
    out = read_image(tmp_path / "out" / "p1.png")
    assert out.shape == (33, 47, 3) and out.dtype == np.uint8


def test_dataset_root_and_sixteen_bit_gray_output(tmp_path, capsys) -> None:
    ir, vis = demo_scene(24, 30)
    write_image(tmp_path / "data" / "infrared" / "a.png", ir.astype(np.uint16) * 257)
    write_image(tmp_path / "data" / "visible" / "a.png", vis[..., 1])
    args = [
        "fuse",
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--bits",
        "16",
        "--stretch",
    ]
    assert main(args) == 0
    out = read_image(tmp_path / "out" / "a.png")
    assert out.dtype == np.uint16 and out.min() == 0 and out.max() == 65535


def test_bad_pairs_are_reported_and_the_rest_fused(pair_dirs, tmp_path, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    write_image(ir_dir / "small.png", np.zeros((10, 10), np.uint8))
    write_image(vis_dir / "small.png", np.zeros((12, 10), np.uint8))
    (ir_dir / "junk.png").write_bytes(b"not an image at all")
    write_image(vis_dir / "junk.png", np.zeros((8, 8), np.uint8))
    full = (ir_dir / "p0.png").read_bytes()
    (ir_dir / "cut.png").write_bytes(full[: len(full) // 2])
    write_image(vis_dir / "cut.png", np.zeros((40, 52), np.uint8))
    write_image(ir_dir / "lonely.png", np.zeros((8, 8), np.uint8))
    code = main(["fuse", "--ir", str(ir_dir), "--vis", str(vis_dir), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    assert "fused 2, failed 4" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and "Traceback" not in captured.err
    assert any("small.png" in e and "sizes differ" in e for e in errors)
    assert any("junk.png" in e and "not an image file" in e for e in errors)
    assert any("cut.png" in e for e in errors)
    assert any("lonely.png: no partner" in e for e in errors)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png"]


def test_single_pair_to_a_file_and_refusal_to_overwrite_an_input(pair_dirs, tmp_path, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    ir, vis = ir_dir / "p0.png", vis_dir / "p0.jpg"
    assert main(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "f.png")]) == 0
    assert (tmp_path / "f.png").is_file()
    before = ir.read_bytes()
    assert main(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(ir)]) == 1
    assert "one of the input files" in capsys.readouterr().err
    assert ir.read_bytes() == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ir", "{t}/none", "--vis", "{t}/none"], "no such file or folder"),
        (["--ir", "{t}/empty_ir", "--vis", "{t}/empty_vi"], "no image files"),
        (["--data", "{t}"], "no infrared folder"),
        (["--ir", "{t}/empty_ir"], "give --ir and --vis"),
    ],
)
def test_unusable_arguments_give_one_line_and_exit_2(tmp_path, capsys, argv, message) -> None:
    (tmp_path / "empty_ir").mkdir()
    (tmp_path / "empty_vi").mkdir()
    code = main(["fuse", *[a.format(t=tmp_path) for a in argv], "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_unknown_model_and_bad_weights_are_one_line_errors(pair_dirs, tmp_path, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    base = ["fuse", "--ir", str(ir_dir), "--vis", str(vis_dir), "--out", str(tmp_path / "o")]
    assert main([*base, "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    (tmp_path / "w.pt").write_bytes(b"garbage")
    assert main([*base, "--weights", str(tmp_path / "w.pt")]) == 2
    assert "w.pt: cannot read weights" in capsys.readouterr().err


def test_demo_writes_the_four_images(tmp_path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir()} == {"ir.png", "vis.png", "fused.png", "side_by_side.png"}
    assert str(tmp_path / "fused.png") in capsys.readouterr().out


def test_models_lists_the_default_model_with_shipped_weights(capsys) -> None:
    assert main(["models"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mmdr-mini"))
    assert "113" in line and "shipped" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert len(capsys.readouterr().out) > 200


def test_console_entry_point_runs(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "distilfuse", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout.startswith("distilfuse ")


@pytest.mark.parametrize(
    ("dataset", "stem", "colour"),
    [("TNO", "07", False), ("RoadScene", "FLIR_00006", True), ("MSRS_test23", None, True)],
)
def test_real_pairs(tmp_path, capsys, dataset: str, stem: str | None, colour: bool) -> None:
    root = shared_file(f"data/{dataset}")
    ir = sorted((root / "ir").iterdir())[0] if stem is None else next((root / "ir").glob(f"{stem}.*"))
    vis = next((root / "vi").glob(f"{ir.stem}.*"))
    assert main(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(tmp_path / "f.png")]) == 0
    out = np.asarray(Image.open(tmp_path / "f.png"))
    assert out.shape[:2] == read_image(vis).shape[:2]
    assert (out.ndim == 3) == colour
    assert 20 < out.mean() < 235 and out.std() > 10
