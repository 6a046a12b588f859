"""`distilfuse fuse`, `demo`, `models` end to end: files, folders, bad inputs, real data."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import shared_file

from distilfuse.cli.main import COMMANDS, main
from distilfuse.data.synthetic import demo_scene
from distilfuse.io import read_image, write_image
from distilfuse.models import FusionModel


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


# ---------------------------------------------------------------------------------- robustness (issue 11)
def _fuse(ir: Path, vis: Path, out: Path, *extra: str) -> int:
    return main(["fuse", "--ir", str(ir), "--vis", str(vis), "--out", str(out), *extra])


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if "error" in line]


def test_non_finite_weights_are_refused_at_load(pair_dirs, tmp_path, capsys) -> None:
    from safetensors.torch import save_file

    from distilfuse.models import create

    state = create("mmdr-mini").state_dict()
    key = next(iter(state))
    state[key].view(-1)[0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    assert (
        _fuse(*pair_dirs, tmp_path / "out", "--model", "mmdr-mini", "--weights", str(tmp_path / "nan.safetensors")) == 2
    )
    (line,) = _error_lines(capsys.readouterr().err)
    assert "nan.safetensors" in line and "non-finite" in line and key in line
    assert not (tmp_path / "out").exists()


class TroubleToy(FusionModel):
    """The mean of the inputs, except NaN for images 52 wide and a torch-style error for 47 wide."""

    def fuse_raw(self, ir, vis):
        if ir.shape[-1] == 52:
            return torch.full_like(ir, float("nan"))
        if ir.shape[-1] == 47:
            raise RuntimeError("something deep in torch\nwith a second line")
        return (ir + vis) / 2


def test_every_failing_pair_is_one_line_and_the_others_go_on(pair_dirs, tmp_path, capsys, monkeypatch) -> None:
    ir_dir, vis_dir = pair_dirs
    ir, vis = demo_scene(30, 20, seed=5)
    write_image(ir_dir / "p2.png", ir)
    write_image(vis_dir / "p2.png", vis)
    monkeypatch.setattr("distilfuse.cli.fuse.load_model", lambda args: TroubleToy().eval())
    assert _fuse(ir_dir, vis_dir, tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert "fused 1, failed 2" in captured.out
    errors = _error_lines(captured.err)
    assert len(errors) == 2
    assert any("p0.png" in e and "NaN or infinity" in e for e in errors)
    assert any("p1.png" in e and "RuntimeError: something deep in torch" in e for e in errors)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p2.png"]


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (no pixel data): what a decompression bomb looks like."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_decompression_bomb_and_tiny_pair_in_folder_mode(pair_dirs, tmp_path, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    _png_header_only(ir_dir / "bomb.png", 20000, 20000)
    write_image(vis_dir / "bomb.png", np.zeros((8, 8), np.uint8))
    write_image(ir_dir / "dot.png", np.full((1, 1), 200, np.uint8))
    write_image(vis_dir / "dot.png", np.full((1, 1), 50, np.uint8))
    assert _fuse(ir_dir, vis_dir, tmp_path / "out") == 1
    captured = capsys.readouterr()
    (line,) = _error_lines(captured.err)
    assert "bomb.png" in line and "400,000,000 pixels" in line and "--max-pixels" in line
    assert "fused 3, failed 1" in captured.out
    assert read_image(tmp_path / "out" / "dot.png").shape == (1, 1)
    # Allowed knowingly, the file is then decoded (and found to hold no pixels).
    assert _fuse(ir_dir / "bomb.png", vis_dir / "bomb.png", tmp_path / "b.png", "--max-pixels", "0") == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert "bomb.png: cannot decode" in line


@pytest.mark.parametrize(
    ("code", "text"), [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")]
)
def test_output_failures_are_one_line_per_pair(pair_dirs, tmp_path, capsys, monkeypatch, code, text) -> None:
    ir_dir, vis_dir = pair_dirs
    save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        if ".p0.png" in str(fp):
            raise OSError(code, text)
        return save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    assert _fuse(ir_dir, vis_dir, tmp_path / "out") == 1
    captured = capsys.readouterr()
    (line,) = _error_lines(captured.err)
    assert line == f"error: {tmp_path / 'out' / 'p0.png'}: cannot write ({text})"
    assert "fused 1, failed 1" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p1.png"], "partial file left behind"
    # One pair: the same one line, exit 1.
    assert _fuse(ir_dir / "p0.png", vis_dir / "p0.jpg", tmp_path / "p0.png") == 1
    assert _error_lines(capsys.readouterr().err) == [f"error: {tmp_path / 'p0.png'}: cannot write ({text})"]


def test_output_under_a_file_is_one_line(pair_dirs, tmp_path, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    (tmp_path / "plain").write_text("a file, not a folder")
    assert _fuse(ir_dir / "p0.png", vis_dir / "p0.jpg", tmp_path / "plain" / "f.png") == 2
    assert _error_lines(capsys.readouterr().err) == [
        f"distilfuse fuse: error: {tmp_path / 'plain'}: is a file, so the output cannot go into it"
    ]
    assert _fuse(ir_dir, vis_dir, tmp_path / "plain" / "deeper") == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert "cannot create the output folder" in line and "Not a directory" in line


def test_results_follow_the_umask_and_stale_partials_are_removed(pair_dirs, tmp_path, capsys) -> None:
    from distilfuse.io.atomic import PARTIAL_MARK

    ir_dir, vis_dir = pair_dirs
    out = tmp_path / "out"
    out.mkdir()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its process id no longer runs
    dead = out / f".p0.png{PARTIAL_MARK}{finished.pid}-00000000"
    live = out / f".p1.png{PARTIAL_MARK}{os.getpid()}-00000000"
    dead.write_bytes(b"half an image")
    live.write_bytes(b"being written by a running process")
    old = os.umask(0o027)
    try:
        assert _fuse(ir_dir, vis_dir, out) == 0
    finally:
        os.umask(old)
    assert (out / "p0.png").stat().st_mode & 0o777 == 0o640
    assert not dead.exists() and live.exists()
    assert "removed 1 partial file" in capsys.readouterr().err


def test_output_folder_may_not_be_an_input_folder(pair_dirs, capsys) -> None:
    ir_dir, vis_dir = pair_dirs
    before = sorted(p.name for p in vis_dir.iterdir())
    assert _fuse(ir_dir, vis_dir, vis_dir / ".") == 2
    assert _error_lines(capsys.readouterr().err) == [
        f"distilfuse fuse: error: --out {vis_dir / '.'} is the --vis folder; write the results to another folder"
    ]
    assert sorted(p.name for p in vis_dir.iterdir()) == before


@pytest.mark.parametrize("device", ["mps", "meta", "gpu0", "cuda:x", "xpu", "cuda:99"])
def test_unusable_devices_are_one_line(pair_dirs, tmp_path, capsys, device: str) -> None:
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    assert _fuse(*pair_dirs, tmp_path / "out", "--device", device) == 2
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"distilfuse fuse: error: --device {device}: ")
    assert line.count("'") % 2 == 0 and line.count('"') % 2 == 0


def test_large_single_images_are_tiled_automatically_with_progress(tmp_path, capsys, monkeypatch) -> None:
    ir, vis = demo_scene(70, 90, seed=2)
    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vis.png", vis)
    assert _fuse(tmp_path / "ir.png", tmp_path / "vis.png", tmp_path / "whole.png") == 0
    assert "tiles" not in capsys.readouterr().err
    monkeypatch.setattr("distilfuse.inference.AUTO_TILE_PIXELS", 60 * 60)
    monkeypatch.setattr("distilfuse.inference.AUTO_TILE", 32)
    assert _fuse(tmp_path / "ir.png", tmp_path / "vis.png", tmp_path / "auto.png") == 0
    assert "tiles" in capsys.readouterr().err  # 9 tiles, with a progress bar
    assert _fuse(tmp_path / "ir.png", tmp_path / "vis.png", tmp_path / "never.png", "--tile", "0") == 0
    assert "tiles" not in capsys.readouterr().err
    assert _fuse(tmp_path / "ir.png", tmp_path / "vis.png", tmp_path / "t16.png", "--tile", "16") == 0
    assert "0/30" in capsys.readouterr().err  # 5 x 6 tiles of 16 px
    whole = read_image(tmp_path / "whole.png").astype(int)
    for name in ("auto.png", "never.png", "t16.png"):
        assert np.abs(read_image(tmp_path / name).astype(int) - whole).max() <= 1, name


def test_ir_scaling_minmax_stretches_a_narrow_sixteen_bit_range(tmp_path) -> None:
    ir, vis = demo_scene(30, 40, seed=1)
    ir[0, 0], ir[0, 1] = 0, 255  # the full 8-bit range, so min-max of the 16-bit copy gives ir / 255 back
    write_image(tmp_path / "ir8.png", ir)
    write_image(tmp_path / "ir16.png", ir.astype(np.uint16) * 4 + 1000)
    write_image(tmp_path / "vis.png", vis[..., 1])
    results = {}
    for name, ir_file, scaling in (("8", "ir8", "dtype"), ("dtype", "ir16", "dtype"), ("minmax", "ir16", "minmax")):
        args = ["--ir-scaling", scaling]
        assert _fuse(tmp_path / f"{ir_file}.png", tmp_path / "vis.png", tmp_path / f"f{name}.png", *args) == 0
        results[name] = read_image(tmp_path / f"f{name}.png").astype(int)
    assert np.abs(results["minmax"] - results["8"]).max() <= 1
    assert np.abs(results["dtype"] - results["8"]).max() > 20


def test_the_default_model_ships_trained_weights() -> None:
    from distilfuse.cli.common import DEFAULT_MODEL
    from distilfuse.models.registry import get_card

    card = get_card(DEFAULT_MODEL)
    assert card.shipped_weights is not None and card.shipped_weights.stat().st_size <= 200 * 1024


def test_weights_trained_on_the_stretched_output_are_fused_stretched(tmp_path, capsys) -> None:
    """Weights saved with output range "stretch" are read stretched unless --clip says otherwise; --stretch
    stretches any weights."""
    from distilfuse.models import create
    from distilfuse.train.checkpoint import save_weights

    model = create("mmdr-mini")
    for output_range in ("clip", "stretch"):
        save_weights(tmp_path / f"{output_range}.safetensors", model, output_range)
    ir, vis = demo_scene(30, 40, seed=2)
    write_image(tmp_path / "ir.png", ir)
    write_image(tmp_path / "vis.png", vis[..., 1])
    fused = {}
    for name, weights, flags in (
        ("clip", "clip", ()),
        ("declared", "stretch", ()),
        ("forced_clip", "stretch", ("--clip",)),
        ("forced_stretch", "clip", ("--stretch",)),
    ):
        out = tmp_path / f"{name}.png"
        args = ("--model", "mmdr-mini", "--weights", str(tmp_path / f"{weights}.safetensors"), *flags)
        assert _fuse(tmp_path / "ir.png", tmp_path / "vis.png", out, *args) == 0
        shown = "clipped" if name.endswith("clip") else "stretched"
        assert capsys.readouterr().out.rstrip().endswith(f"model mmdr-mini, output {shown})")
        fused[name] = read_image(out).astype(int)
    assert np.array_equal(fused["declared"], fused["forced_stretch"])
    assert np.array_equal(fused["forced_clip"], fused["clip"])
    assert fused["declared"].min() == 0 and fused["declared"].max() == 255
    assert not np.array_equal(fused["declared"], fused["clip"])


def test_stretch_and_clip_are_exclusive(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        _fuse(tmp_path / "ir.png", tmp_path / "vis.png", tmp_path / "o.png", "--stretch", "--clip")
    assert "not allowed with argument" in capsys.readouterr().err
