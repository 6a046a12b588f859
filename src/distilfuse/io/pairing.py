"""Pairing infrared and visible files by stem, and finding the two folders in a dataset root."""

from __future__ import annotations

from pathlib import Path

from distilfuse.io.images import IMAGE_SUFFIXES

IR_DIR_NAMES = ("ir", "IR", "inf", "Inf", "infrared", "Infrared", "thermal", "lwir", "Thermal")
VIS_DIR_NAMES = ("vi", "VI", "vis", "Vis", "VIS", "visible", "Visible", "rgb", "RGB")


def list_images(folder: Path) -> dict[str, Path]:
    """Image files of a folder keyed by stem (hidden files skipped)."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(p.stem, p)
    return found


def pair_by_stem(dir_a: str | Path, dir_b: str | Path) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """Match files of two folders by stem; formats may differ.

    Returns the pairs (stem, path_a, path_b) sorted by stem, and one-line problems (a missing
    folder, an empty folder, a file without a partner).
    """
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    problems = [f"{d}: no such folder" for d in (dir_a, dir_b) if not d.is_dir()]
    if problems:
        return [], problems
    files_a, files_b = list_images(dir_a), list_images(dir_b)
    problems += [f"{d}: no image files" for d, f in ((dir_a, files_a), (dir_b, files_b)) if not f]
    if problems:
        return [], problems
    pairs = [(s, files_a[s], files_b[s]) for s in sorted(files_a.keys() & files_b.keys())]
    problems += [
        f"{files_a[s]}: no partner with stem '{s}' in {dir_b}" for s in sorted(files_a.keys() - files_b.keys())
    ]
    problems += [
        f"{files_b[s]}: no partner with stem '{s}' in {dir_a}" for s in sorted(files_b.keys() - files_a.keys())
    ]
    return pairs, problems


def find_modality_dirs(root: str | Path) -> tuple[Path, Path]:
    """The (infrared, visible) folders of a dataset root, recognised by their usual names."""
    root = Path(root)

    def pick(names: tuple[str, ...], kind: str) -> Path:
        for name in names:
            if (root / name).is_dir():
                return root / name
        raise FileNotFoundError(f"{root}: no {kind} folder (looked for {', '.join(names)})")

    return pick(IR_DIR_NAMES, "infrared"), pick(VIS_DIR_NAMES, "visible")
