"""benchmarks/medical_table.py: its docs section replaces only itself, and the paper's Table 5 is read as printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def medical():
    return load_benchmark("medical_table")


def test_the_section_is_replaced_in_place_and_others_are_kept(medical, tmp_path) -> None:
    results = tmp_path / "results.md"
    medical.replace_section(results, medical.SECTION + "\n\nfirst\n")
    text = results.read_text()
    assert text.startswith("# Results\n") and text.endswith(medical.SECTION + "\n\nfirst\n")
    results.write_text(text + "\n## Other engineer's section\n\nkept\n")
    medical.replace_section(results, medical.SECTION + "\n\nsecond\n")
    text = results.read_text()
    assert "first" not in text and text.count(medical.SECTION) == 1
    assert text.index(medical.SECTION) < text.index("second") < text.index("## Other engineer's section")
    assert text.endswith("## Other engineer's section\n\nkept\n")


def test_paper_table5_is_parsed_as_printed(medical, tmp_path) -> None:
    spec = tmp_path / "paper_results.md"
    spec.write_text(
        "Table 4 (IVIF): MSRS 43.08 / 1.66 / 0.90 / 0.60 / 0.97 / 0.61.\n"
        "Table 5 (medical, no retraining): MRI-SPECT 65.67 / 1.78 / 0.59 / 0.57 / 0.39 / 0.88; MRI-PET 71.50 / 1.72 /\n"
        "0.60 / 0.56 / 0.43 / 0.81.\n"
    )
    assert medical.paper_table5(spec) == {
        "MRI_SPECT": ["65.67", "1.78", "0.59", "0.57", "0.39", "0.88"],
        "MRI_PET": ["71.50", "1.72", "0.60", "0.56", "0.43", "0.81"],
    }
    assert medical.paper_table5(tmp_path / "absent.md") == {}


def test_model_specs(medical) -> None:
    assert medical.parse_model("mmdr-mini") == ("mmdr-mini", "mmdr-mini", None)
    assert medical.parse_model("official=mmdr-mini:/w/student.model") == (
        "official",
        "mmdr-mini",
        Path("/w/student.model"),
    )
    with pytest.raises(SystemExit, match="LABEL"):
        medical.parse_model("bad label=mmdr-mini")
