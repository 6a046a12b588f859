"""Test-set folders: whole folders as they are, split files as folders of links to the listed pairs only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from distilfuse.data.test_sets import test_set_folders as set_folders
from distilfuse.io import pair_by_stem


def write_pairs(root: Path, stems: list[str]) -> None:
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
        for stem in stems:
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / sub / f"{stem}.png")


def test_a_split_becomes_links_to_its_pairs_only(tmp_path: Path) -> None:
    data, work = tmp_path / "data", tmp_path / "work"
    write_pairs(data / "RoadScene", ["a", "b", "c"])
    (data / "RoadScene" / "test50.txt").write_text("a\nc\n\n")
    ir_dir, vi_dir = set_folders(data, "RoadScene50", work)
    assert ir_dir.is_relative_to(work) and vi_dir.is_relative_to(work)
    pairs, problems = pair_by_stem(ir_dir, vi_dir)
    assert not problems and [stem for stem, _, _ in pairs] == ["a", "c"]
    assert all(p.is_symlink() and p.resolve().parent.parent == (data / "RoadScene").resolve() for _, p, _ in pairs)
    assert set_folders(data, "RoadScene50", work) == (ir_dir, vi_dir), "a second call reuses the links"


def test_a_whole_set_is_its_own_folders(tmp_path: Path) -> None:
    write_pairs(tmp_path / "TNO", ["x"])
    assert set_folders(tmp_path, "TNO42", tmp_path / "work") == (tmp_path / "TNO" / "ir", tmp_path / "TNO" / "vi")
    assert not (tmp_path / "work").exists()
