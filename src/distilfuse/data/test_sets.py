"""The project's test sets (final tables only: never train, tune or pick checkpoints on them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distilfuse.io import pair_by_stem


@dataclass(frozen=True)
class TestSet:
    folder: str  # under the data root, with ir/ and vi/
    peers: str  # under ../shared/peers: the published methods' outputs on these pairs
    split: str | None = None  # a file of stems inside `folder`, when the set is a subset

    __test__ = False  # not a pytest class


TEST_SETS = {
    "TNO42": TestSet("TNO", "TNO"),
    "TNO25": TestSet("TNO", "TNO", "test25.txt"),  # the 25-pair split most Python evaluations report
    "RoadScene50": TestSet("RoadScene", "RoadScene50", "test50.txt"),
    "MSRS23": TestSet("MSRS_test23", "MSRS_test23"),
}


def test_set_folders(data: Path, label: str, work: Path) -> tuple[Path, Path]:
    """The set's ir/ and vi/ folders; for a split, folders of links (under ``work``) to the listed pairs."""
    spec = TEST_SETS[label]
    root = data / spec.folder
    if spec.split is None:
        return root / "ir", root / "vi"
    stems = {line.strip() for line in (root / spec.split).read_text().splitlines() if line.strip()}
    pairs, problems = pair_by_stem(root / "ir", root / "vi")
    if problems:
        raise ValueError("; ".join(problems))
    ir_dir, vi_dir = work / "inputs" / spec.folder / "ir", work / "inputs" / spec.folder / "vi"
    for d in (ir_dir, vi_dir):
        d.mkdir(parents=True, exist_ok=True)
    for stem, ir, vi in pairs:
        if stem in stems:
            for src, d in ((ir, ir_dir), (vi, vi_dir)):
                link = d / src.name
                if not link.exists():
                    link.symlink_to(src.resolve())
    return ir_dir, vi_dir
