"""distilfuse.metrics.protocol: the papers' protocols load and validate, the seeded draw, the table, the
output handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from distilfuse.io import read_image, write_image
from distilfuse.metrics.protocol import ProtocolError, draw_pairs, load_protocol, run_protocol, shipped_protocols
from distilfuse.models import create

GOOD = {
    "paper": "A paper, Table 9",
    "metrics": ["SD", "SSIM"],
    "profile": "cdd",
    "stretch": True,
    "sets": [
        {
            "name": "tiny",
            "paper_pairs": "their pairs",
            "substitute": "three synthetic pairs",
            "parts": [{"folder": "tiny", "peers": "tiny_peers"}],
            "anchors": ["ANCH", "ABSENT"],
            "published": [{"table": "9", "row": "their student", "values": "12.34 1.2345"}],
        }
    ],
}


def write_protocol(tmp_path: Path, **changes) -> Path:
    node = {**GOOD, **changes}
    path = tmp_path / "proto.yaml"
    path.write_text(yaml.safe_dump(node, allow_unicode=True))
    return path


@pytest.fixture()
def tiny_data(tmp_path: Path) -> tuple[Path, Path]:
    """data/tiny with three low-contrast pairs (grey levels 100..140) and peers/tiny_peers/ANCH outputs."""
    rng = np.random.default_rng(7)
    data, peers = tmp_path / "data", tmp_path / "peers"
    for stem in ("a", "b", "c"):
        ir, vis = (rng.integers(100, 140, (24, 32), dtype=np.uint8) for _ in range(2))
        write_image(data / "tiny" / "ir" / f"{stem}.png", ir)
        write_image(data / "tiny" / "vi" / f"{stem}.png", vis)
        write_image(peers / "tiny_peers" / "ANCH" / f"{stem}.png", np.maximum(ir, vis))
    return data, peers


def test_the_four_papers_protocols_ship_and_load() -> None:
    assert shipped_protocols() == ["hkdnet", "mlkd", "mmdrfuse", "scakd"]
    for name in shipped_protocols():
        protocol = load_protocol(name)
        assert protocol.sets and all(s.substitute for s in protocol.sets)
        assert any(s.published for s in protocol.sets)
    assert load_protocol("scakd").options == {"ssim_mode": "matlab"}
    assert load_protocol("mmdrfuse").stretch and not load_protocol("scakd").stretch
    assert load_protocol("hkdnet").unit_scale == ("AG",) and load_protocol("hkdnet").upscale_sources
    assert [s.scale for s in load_protocol("hkdnet").sets] == [2, 3, 4]
    assert {s.scale for s in load_protocol("scakd").sets} == {1}
    mmdr = load_protocol("mmdrfuse").sets[0].published[0]
    assert (mmdr.table, mmdr.values) == ("4", ("43.08", "1.66", "0.90", "0.60", "0.97", "0.61"))  # as printed


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics": ["SD", "NOPE"]}, "unknown metric 'NOPE'"),
        ({"stretch": None}, "stretch must be true or false"),
        ({"options": {"ssim_mode": "odd"}}, "option ssim_mode='odd' is not one of"),
        ({"unit_scale": ["AG"]}, "unit_scale names metrics not in the protocol"),
        ({"sets": [{**GOOD["sets"][0], "scale": 0}]}, "scale must be a positive whole number"),
        ({"sets": [{**GOOD["sets"][0], "scale": 2}]}, "needs upscale_sources: true"),
        ({"extra": 1}, "unknown key(s) extra"),
        ({"sets": [{**GOOD["sets"][0], "parts": [{"set": "NOSET"}]}]}, "unknown test set 'NOSET'"),
        ({"sets": [{**GOOD["sets"][0], "published": [{"table": "9", "row": "r", "values": "1"}]}]}, "1 values for 2"),
    ],
)
def test_a_bad_protocol_is_one_line_naming_the_problem(tmp_path, changes, message) -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol(write_protocol(tmp_path, **changes))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_key_is_named(tmp_path) -> None:
    path = write_protocol(tmp_path)
    node = yaml.safe_load(path.read_text())
    del node["metrics"]
    path.write_text(yaml.safe_dump(node))
    with pytest.raises(ProtocolError, match="missing key\\(s\\) metrics"):
        load_protocol(path)
    with pytest.raises(ProtocolError, match="no such protocol; shipped: hkdnet, mlkd"):
        load_protocol("nope")


def test_the_seeded_draw_is_stable_and_changes_with_the_seed() -> None:
    pairs = [(f"{i:02d}", Path(f"ir/{i:02d}.png"), Path(f"vi/{i:02d}.png")) for i in range(1, 43)]
    first = draw_pairs(pairs[::-1], 5, seed=0)  # the input order does not matter
    assert first == draw_pairs(pairs, 5, seed=0)
    # Pinned: SCAKD's substitute pairs must not change with the implementation.
    assert [stem for stem, _, _ in first] == ["03", "17", "25", "27", "33"]
    assert draw_pairs(pairs, 5, seed=1) != first
    with pytest.raises(ProtocolError, match="cannot draw 43 pairs from 42"):
        draw_pairs(pairs, 43, seed=0)


def _run(tmp_path: Path, tiny_data: tuple[Path, Path], problems: list[str] | None = None, model=None, **changes) -> str:
    data, peers = tiny_data
    protocol = load_protocol(write_protocol(tmp_path, **changes))
    report = print if problems is None else problems.append
    models = {"ours": create("rt-s") if model is None else model}
    return run_protocol(protocol, models, tmp_path / "out", data=data, peers=peers, report=report)


def test_the_table_puts_our_rows_beside_the_official_outputs_and_the_papers(tmp_path, tiny_data) -> None:
    text = _run(tmp_path, tiny_data)
    assert "## tiny (3 pairs)" in text and "Paper: their pairs. Here: three synthetic pairs." in text
    assert "| Method | Images | SD ↑ | SSIM ↑ |" in text
    assert "| ours | 3 |" in text and "| ANCH (official outputs) | 3 |" in text
    assert "| paper, Table 9: their student | — | 12.34 | 1.2345 |" in text
    assert "No official outputs of ABSENT for these pairs." in text


@pytest.mark.parametrize(("stretch", "declared"), [(True, "clip"), (False, "clip"), (False, "stretch")])
def test_the_protocols_output_handling_is_applied(tmp_path, tiny_data, stretch: bool, declared: str) -> None:
    """A stretching protocol stretches every model; otherwise a model is read as its weights declare."""
    model = create("rt-s")
    model.output_range = declared
    _run(tmp_path, tiny_data, model=model, stretch=stretch)
    fused = [read_image(p) for p in sorted((tmp_path / "out" / "proto" / "fused" / "tiny" / "ours").glob("*.png"))]
    assert len(fused) == 3
    spans = [(int(f.min()), int(f.max())) for f in fused]
    if stretch or declared == "stretch":  # min-max stretched to the full 8-bit range
        assert spans == [(0, 255)] * 3
    else:  # clipped: the low-contrast inputs stay low-contrast
        assert all(low >= 80 and high <= 160 for low, high in spans)


def test_a_subset_of_a_larger_peers_folder_scores_only_the_drawn_pairs(tmp_path, tiny_data) -> None:
    parts = [{"folder": "tiny", "peers": "tiny_peers", "draw": 2, "seed": 0}]
    problems: list[str] = []
    text = _run(tmp_path, tiny_data, problems, sets=[{**GOOD["sets"][0], "parts": parts}])
    assert "## tiny (2 pairs)" in text and "| ANCH (official outputs) | 2 |" in text
    assert problems == []  # the undrawn pair's official output is not a problem


def test_a_super_resolution_set_takes_only_the_models_of_its_scale(tmp_path, tiny_data) -> None:
    data, peers = tiny_data
    sets = [{**GOOD["sets"][0], "name": f"tiny_x{s}", "scale": s} for s in (1, 2, 3)]
    protocol = load_protocol(write_protocol(tmp_path, upscale_sources=True, sets=sets))
    assert [s.scale for s in protocol.sets] == [1, 2, 3]
    models = {"fusion": create("rt-s"), "sr": create("hkd-student-x2", weights=None)}
    problems: list[str] = []
    text = run_protocol(protocol, models, tmp_path / "out", data=data, peers=peers, report=problems.append)
    x1, x2, x3 = text.split("## ")[1:]
    assert "| fusion | 3 |" in x1 and "| sr |" not in x1
    assert "Not fused on this x1 set (another output scale): sr (x2)." in x1
    assert "| sr | 3 |" in x2 and "| fusion |" not in x2  # the x2 output scored against 2x-resized sources
    assert "Not fused on this x2 set (another output scale): fusion (x1)." in x2
    assert "| sr |" not in x3 and "| fusion |" not in x3 and "fusion (x1), sr (x2)" in x3
    fused = sorted((tmp_path / "out" / "proto" / "fused" / "tiny_x2" / "sr").glob("*.png"))
    assert [read_image(p).shape for p in fused] == [(48, 64)] * 3
    assert not (tmp_path / "out" / "proto" / "fused" / "tiny_x3").exists()
