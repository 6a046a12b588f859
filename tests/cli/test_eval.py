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


def _protocol_data(tmp_path: Path) -> Path:
    """data/tiny + peers/tiny_peers/ANCH under tmp_path, and a protocol file scoring them."""
    rng = np.random.default_rng(1)
    for stem in ("a", "b"):
        ir, vis = (rng.integers(0, 255, (24, 32), dtype=np.uint8) for _ in range(2))
        write_image(tmp_path / "data" / "tiny" / "ir" / f"{stem}.png", ir)
        write_image(tmp_path / "data" / "tiny" / "vi" / f"{stem}.png", vis)
        write_image(tmp_path / "peers" / "tiny_peers" / "ANCH" / f"{stem}.png", np.maximum(ir, vis))
    path = tmp_path / "tinyproto.yaml"
    path.write_text(
        "paper: A paper\nmetrics: [SD, CC]\nprofile: cdd\nstretch: true\nsets:\n"
        "  - {name: tiny, paper_pairs: theirs, substitute: ours, parts: [{folder: tiny, peers: tiny_peers}],\n"
        "     anchors: [ANCH], published: [{table: '2', row: them, values: '40.1 0.52'}]}\n"
    )
    return path


def test_a_protocol_run_writes_the_table(tmp_path, monkeypatch, capsys) -> None:
    protocol = _protocol_data(tmp_path)
    monkeypatch.setenv("DISTILFUSE_DATA", str(tmp_path / "data"))
    out = tmp_path / "results"
    code = main(["eval", "--protocol", str(protocol), "--model", "rt-s", "--label", "ours", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    text = (out / "tinyproto.md").read_text()
    assert "| ours | 2 |" in text and "| ANCH (official outputs) | 2 |" in text
    assert "| paper, Table 2: them | — | 40.1 | 0.52 |" in text
    assert sorted(p.name for p in (out / "tinyproto" / "fused" / "tiny" / "ours").iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--protocol", "nope"], "nope: no such protocol; shipped: hkdnet, mlkd, mmdrfuse, scakd"),
        (["--protocol", "mmdrfuse", "--ir", "x"], "--ir: set by the protocol, not with --protocol"),
        (["--protocol", "mmdrfuse", "--model", "rt-s", "--model", "rt-s"], "two models labelled 'rt-s'"),
        (["--protocol", "mmdrfuse", "--model", "no-such-model"], "no-such-model"),
        (["--protocol", "mmdrfuse", "--sets", "MARS"], "no set(s) MARS; its sets: MSRS23, RoadScene50, TNO42"),
        (["--fused", "f", "--model", "rt-s"], "--model, --anchor and --sets go with --protocol"),
        (["--fused", "f"], "--fused and --methods need --ir and --vis"),
    ],
)
def test_bad_protocol_input_is_one_line(tmp_path, capsys, argv: list[str], message: str) -> None:
    assert main(["eval", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_bad_protocol_file_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("paper: p\nmetrics: [SD, NOPE]\nprofile: cdd\nstretch: true\nsets: []\n")
    assert main(["eval", "--protocol", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown metric 'NOPE'" in err and len(err.splitlines()) == 1
