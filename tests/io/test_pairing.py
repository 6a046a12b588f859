"""Pairing by stem across formats, and dataset roots with the usual folder names."""

from __future__ import annotations

import numpy as np
import pytest

from distilfuse.io import find_modality_dirs, pair_by_stem, write_image


def make(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_image(folder / name, np.zeros((4, 4), np.uint8))


def test_pairs_match_stems_across_formats(tmp_path) -> None:
    make(tmp_path / "ir", ["a.png", "b.bmp", "c.png"])
    make(tmp_path / "vi", ["a.jpg", "b.png", "d.png"])
    (tmp_path / "vi" / "notes.txt").write_text("not an image")
    pairs, problems = pair_by_stem(tmp_path / "ir", tmp_path / "vi")
    assert [(s, a.name, b.name) for s, a, b in pairs] == [("a", "a.png", "a.jpg"), ("b", "b.bmp", "b.png")]
    assert len(problems) == 2
    assert "c.png: no partner with stem 'c'" in problems[0] and "d.png: no partner" in problems[1]


def test_empty_and_missing_folders_are_problems(tmp_path) -> None:
    (tmp_path / "ir").mkdir()
    make(tmp_path / "vi", ["a.png"])
    assert pair_by_stem(tmp_path / "ir", tmp_path / "vi") == ([], [f"{tmp_path / 'ir'}: no image files"])
    assert pair_by_stem(tmp_path / "nope", tmp_path / "vi")[1] == [f"{tmp_path / 'nope'}: no such folder"]


@pytest.mark.parametrize(
    ("ir_name", "vis_name"), [("ir", "vi"), ("IR", "VIS"), ("infrared", "visible"), ("inf", "vis")]
)
def test_dataset_root_is_understood(tmp_path, ir_name: str, vis_name: str) -> None:
    (tmp_path / ir_name).mkdir()
    (tmp_path / vis_name).mkdir()
    ir, vis = find_modality_dirs(tmp_path)
    assert ir.name == ir_name and vis.name == vis_name


def test_dataset_root_without_folders_is_an_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no infrared folder"):
        find_modality_dirs(tmp_path)
