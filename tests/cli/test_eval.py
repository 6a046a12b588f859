"""`distilfuse eval` on unusable fused folders: an error, never a table of NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distilfuse.cli.main import main
from distilfuse.io import write_image


@pytest.fixture()
def sources(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    for stem in ("a", "b"):
        write_image(tmp_path / "ir" / f"{stem}.png", rng.integers(0, 255, (24, 32), dtype=np.uint8))
        write_image(tmp_path / "vi" / f"{stem}.png", rng.integers(0, 255, (24, 32), dtype=np.uint8))
    return tmp_path / "ir", tmp_path / "vi"


@pytest.mark.parametrize("content", ["empty", "unrelated", "wrong size"])
def test_a_fused_folder_with_nothing_to_evaluate_is_an_error(tmp_path, sources, capsys, content: str) -> None:
    ir, vis = sources
    fused = tmp_path / "fused"
    fused.mkdir()
    if content == "unrelated":
        write_image(fused / "zzz.png", np.zeros((24, 32), np.uint8))
    elif content == "wrong size":
        for stem in ("a", "b"):
            write_image(fused / f"{stem}.png", np.zeros((20, 32), np.uint8))
    good = tmp_path / "good"
    for stem in ("a", "b"):
        write_image(good / f"{stem}.png", np.full((24, 32), 128, np.uint8))
    out = tmp_path / "results"
    for argv in (["--fused", str(fused)], ["--methods", str(good), str(fused)]):
        code = main(["eval", *argv, "--ir", str(ir), "--vis", str(vis), "--metrics", "EN,SD", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and f"no fused image could be evaluated in {fused}; nothing written" in err
        assert "Traceback" not in err
        assert not list(tmp_path.glob("results*")), "tables of NaN were written"
