"""Which input carries the colour (`fuse_images(colour_from=...)`, `fuse --colour-from`), on a synthetic
MRI (gray structure) and PET-like (colour blobs) pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from distilfuse.cli.main import main
from distilfuse.inference import fuse_images
from distilfuse.io import read_image, rgb_to_ycbcr, to_unit, write_image
from distilfuse.models import create


@pytest.fixture(scope="module")
def pet_mri() -> tuple[np.ndarray, np.ndarray]:
    """A colour functional image (hue varies with activity) and a gray structural one, 8-bit, 40x48."""
    yy, xx = np.mgrid[0:40, 0:48] / 40.0
    activity = np.exp(-((yy - 0.5) ** 2 + (xx - 0.6) ** 2) / 0.05)
    pet = np.stack([0.9 * activity + 0.05, 0.6 * activity**2 + 0.05, 0.4 * (1 - activity) + 0.05], axis=-1)
    mri = 0.5 + 0.35 * np.sin(9 * xx) * np.cos(7 * yy)
    return np.rint(pet * 255).astype(np.uint8), np.rint(mri * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return create("mmdr-mini").eval()


def _forward(model: torch.nn.Module, ir_y: np.ndarray, vis_y: np.ndarray, raw: bool = False) -> np.ndarray:
    tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None] for a in (ir_y, vis_y)]
    with torch.inference_mode():
        return model(*tensors, raw=raw)[0, 0].numpy()


def test_colour_from_ir_fuses_its_luma_and_keeps_its_chroma(model, pet_mri, single_thread) -> None:
    pet, mri = pet_mri
    pet_ycbcr = rgb_to_ycbcr(to_unit(pet))
    result = fuse_images(model, pet, mri, colour_from="ir")
    assert result.image.shape == (40, 48, 3)
    # The network saw the PET's luma in the infrared slot and the MRI in the visible slot ...
    np.testing.assert_allclose(result.raw, _forward(model, pet_ycbcr[..., 0], to_unit(mri), raw=True), atol=1e-6)
    expected_y = _forward(model, pet_ycbcr[..., 0], to_unit(mri))
    out_ycbcr = rgb_to_ycbcr(result.image)
    unclipped = np.all((result.image > 0.002) & (result.image < 0.998), axis=-1)
    assert unclipped.mean() > 0.5  # pixels the RGB conversion clipped lose their exact Y/Cb/Cr
    np.testing.assert_allclose(out_ycbcr[..., 0][unclipped], expected_y[unclipped], atol=2e-3)
    # ... and the result has the PET's colours back.
    np.testing.assert_allclose(out_ycbcr[..., 1:][unclipped], pet_ycbcr[..., 1:][unclipped], atol=2e-3)


def test_the_colour_source_decides_which_colours_survive(model, pet_mri, single_thread) -> None:
    pet, mri = pet_mri
    # Default (visible carries colour): a colour image given as infrared is fused on its luma, the result gray.
    assert fuse_images(model, pet, mri).image.ndim == 2
    # PET in the visible slot, colour from there: its chroma again.
    swapped = fuse_images(model, mri, pet, colour_from="vis")
    assert swapped.image.ndim == 3
    # Colour from the gray MRI: a gray result, whatever the other slot holds.
    assert fuse_images(model, mri, pet, colour_from="ir").image.ndim == 2
    with pytest.raises(ValueError, match="colour_from"):
        fuse_images(model, pet, mri, colour_from="pet")  # type: ignore[arg-type]


def test_cli_colour_from_ir_writes_the_functional_colours(pet_mri, tmp_path, capsys) -> None:
    pet, mri = pet_mri
    write_image(tmp_path / "pet" / "s1.png", pet)
    write_image(tmp_path / "mri" / "s1.png", mri)
    sources = ["--ir", str(tmp_path / "pet"), "--vis", str(tmp_path / "mri")]
    assert main(["fuse", *sources, "--out", str(tmp_path / "coloured"), "--colour-from", "ir"]) == 0
    assert main(["fuse", *sources, "--out", str(tmp_path / "gray")]) == 0
    coloured, gray = read_image(tmp_path / "coloured" / "s1.png"), read_image(tmp_path / "gray" / "s1.png")
    assert coloured.shape == (40, 48, 3) and gray.ndim == 2
    chroma = rgb_to_ycbcr(to_unit(coloured))[..., 1:]
    assert np.abs(chroma - rgb_to_ycbcr(to_unit(pet))[..., 1:]).mean() < 0.01
    capsys.readouterr()
    pet_file = tmp_path / "pet" / "s1.png"
    single = ["--ir", str(pet_file), "--vis", str(tmp_path / "mri" / "s1.png"), "--out", str(tmp_path / "x.png")]
    assert main(["fuse", *single, "--colour-from", "ir", "--bits", "16"]) == 1
    assert f"{pet_file}: 16-bit output is gray only" in capsys.readouterr().err
    assert not Path(tmp_path / "x.png").exists()
