"""Decoding every mode/format/bit depth, scaling, and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from distilfuse.io import (
    ImageReadError,
    ImageWriteError,
    from_unit,
    is_gray,
    read_image,
    to_unit,
    write_image,
)

RNG = np.random.default_rng(0)
GRAY8 = RNG.integers(0, 256, (13, 17), dtype=np.uint8)
RGB8 = RNG.integers(0, 256, (13, 17, 3), dtype=np.uint8)
# JPEG is lossy and subsamples chroma: check it on smooth content.
SMOOTH_RGB8 = np.dstack([*np.meshgrid(np.arange(17) * 12, np.arange(13) * 15), np.full((13, 17), 90)]).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".jpg"])
@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_formats_round_trip(tmp_path, suffix: str, mode: str) -> None:
    arr = (
        (GRAY8 if mode == "L" else RGB8)
        if suffix != ".jpg"
        else SMOOTH_RGB8[..., : 3 if mode == "RGB" else 1].squeeze()
    )
    path = tmp_path / f"img{suffix}"
    Image.fromarray(arr).save(path, **({"quality": 95} if suffix == ".jpg" else {}))
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == arr.shape
    if suffix == ".jpg":  # lossy: close, not equal
        assert np.abs(out.astype(int) - arr).mean() < 3
    else:
        assert np.array_equal(out, arr)


def test_alpha_is_dropped(tmp_path) -> None:
    Image.fromarray(np.dstack([RGB8, GRAY8]), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.dstack([GRAY8, GRAY8]), "LA").save(tmp_path / "la.png")
    assert np.array_equal(read_image(tmp_path / "a.png"), RGB8)
    assert np.array_equal(read_image(tmp_path / "la.png"), GRAY8)


def test_palette_is_expanded(tmp_path) -> None:
    img = Image.fromarray(RGB8, "RGB").quantize(16)
    img.save(tmp_path / "p.png")
    expected = np.asarray(img.convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "p.png"), expected)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_thermal_keeps_its_range(tmp_path, suffix: str) -> None:
    arr = RNG.integers(0, 65536, (9, 11), dtype=np.uint16)
    write_image(tmp_path / f"t{suffix}", arr)
    out = read_image(tmp_path / f"t{suffix}")
    assert out.dtype == np.uint16 and np.array_equal(out, arr)
    np.testing.assert_allclose(to_unit(out), arr / 65535.0, rtol=1e-6)
    mm = to_unit(out, "minmax")
    assert mm.min() == 0.0 and mm.max() == 1.0


def test_gray_stored_as_rgb_is_recognised() -> None:
    assert is_gray(GRAY8) and is_gray(np.dstack([GRAY8] * 3)) and not is_gray(RGB8)


def test_scaling_and_quantisation() -> None:
    assert to_unit(np.array([[0, 255]], np.uint8)).tolist() == [[0.0, 1.0]]
    assert to_unit(np.full((2, 2), 7, np.uint8), "minmax").max() == 0.0  # constant image: zeros, not NaN
    assert from_unit(np.array([-0.5, 0.5, 2.0])).tolist() == [0, 128, 255]
    assert from_unit(np.array([1.0]), bits=16).tolist() == [65535]
    with pytest.raises(ValueError, match="unknown scaling"):
        to_unit(GRAY8, "percent")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not an image file"), (b"hello, not an image", "not an image file")],
)
def test_non_images_give_one_line_errors(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_file_is_reported(tmp_path) -> None:
    Image.fromarray(RGB8).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(tmp_path / "cut.png")


def test_missing_file_is_reported(tmp_path) -> None:
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "absent.png")


def test_write_is_atomic_and_never_over_an_input(tmp_path) -> None:
    src = tmp_path / "in.png"
    write_image(src, GRAY8)
    before = src.read_bytes()
    with pytest.raises(ImageWriteError, match="one of the input files"):
        write_image(tmp_path / "." / "in.png", RGB8, protect=(src,))
    assert src.read_bytes() == before
    write_image(tmp_path / "sub" / "out.png", RGB8)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out.png"], "no temp file left behind"
