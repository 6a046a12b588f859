"""The report page in a real browser (headless Chromium): no console errors, no broken images, not blank.

Chromium is the Debian package `chromium` (scripts/ci_setup.sh installs it for CI); without it these
tests skip and say why. Set DISTILFUSE_CHROMIUM to use another Chromium-family browser.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distilfuse.cli.main import main
from tests.report.chromium import HeadlessPage, find_chromium

IMAGES = "Array.from(document.images).map(i => ({src: i.getAttribute('src'), width: i.naturalWidth}))"


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium browser found: install the 'chromium' package (scripts/ci_setup.sh does)")
    return path


@pytest.fixture()
def page_dir(report_inputs, tmp_path) -> Path:
    out = tmp_path / "page"
    code = main(
        [
            "report",
            *("--ir", str(report_inputs["ir"]), "--vis", str(report_inputs["vis"])),
            *("--methods", str(report_inputs["sharp"]), str(report_inputs["dim"])),
            *("--metrics", "SD,SSIM,Qabf", "--bench", str(report_inputs["bench"])),
            *("--runs", str(report_inputs["run"]), "--out", str(out)),
        ]
    )
    assert code == 0
    return out


def _not_blank(path: Path) -> None:
    with Image.open(path) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    non_white = np.any(pixels < 240, axis=-1).mean()
    assert len(colours) > 50 and non_white > 0.05, f"{path}: looks blank ({len(colours)} colours)"


def test_report_page_loads_cleanly_in_chromium(chromium, page_dir) -> None:
    with HeadlessPage(chromium, width=1280, height=900) as browser:
        browser.open((page_dir / "index.html").as_uri())
        images = browser.evaluate(IMAGES)
        viewport = browser.screenshot(page_dir / "screenshot.png")
        browser.screenshot(page_dir / "screenshot_full.png", full_page=True)
        assert browser.errors == []
    assert len(images) == 8  # 3 bar charts, 3 pair grids, 1 training run, 1 scatter
    assert all(image["width"] > 0 for image in images), images
    with Image.open(viewport) as shot:
        assert shot.size == (1280, 900)
    _not_blank(viewport)


def test_a_broken_image_and_a_script_error_are_caught(chromium, page_dir) -> None:
    """The checks above can fail: a missing figure and a throwing script are both reported."""
    (page_dir / "figures" / "bars_SD.svg").unlink()
    html = (page_dir / "index.html").read_text(encoding="utf-8")
    (page_dir / "index.html").write_text(html.replace("</body>", "<script>null.x</script></body>"), encoding="utf-8")
    with HeadlessPage(chromium) as browser:
        browser.open((page_dir / "index.html").as_uri())
        images = browser.evaluate(IMAGES)
        errors = list(browser.errors)
    assert {"src": "figures/bars_SD.svg", "width": 0} in images
    assert any("bars_SD.svg" in e for e in errors) and any("TypeError" in e for e in errors), errors


def test_a_blank_screenshot_is_caught(tmp_path) -> None:
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")
    with pytest.raises(AssertionError, match="blank"):
        _not_blank(tmp_path / "blank.png")


def test_the_browser_helper_is_found_on_path_or_by_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DISTILFUSE_CHROMIUM", str(tmp_path / "my-chrome"))
    assert find_chromium() == str(tmp_path / "my-chrome")
    monkeypatch.delenv("DISTILFUSE_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() is None
    shutil.copy("/bin/true", tmp_path / "chromium")
    assert find_chromium() == str(tmp_path / "chromium")
