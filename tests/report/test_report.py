"""`distilfuse report`: page content, figures, inputs reused from eval and bench, bad input; zoom box; curves."""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distilfuse.cli.main import main
from distilfuse.io import pair_by_stem
from distilfuse.metrics.evaluate import evaluate_folders, format_value
from distilfuse.report.build import ReportError, choose_pairs
from distilfuse.report.figures import curves_figure, plot_curves
from distilfuse.report.zoom import disagreement_box


class _Page(HTMLParser):
    """Image sources, and the metric table as rows of (text, marked best) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.rows: list[list[tuple[str, bool]]] = []
        self._cell: list[str] | None = None
        self._best = False
        self._tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes["src"] or "")
        elif tag == "table":
            self._tables += 1
        elif tag == "tr" and self._tables == 1:
            self.rows.append([])
        elif tag in ("td", "th") and self._tables == 1:
            self._cell, self._best = [], attributes.get("class") == "best"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(("".join(self._cell), self._best))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(index: Path) -> _Page:
    parsed = _Page()
    parsed.feed(index.read_text(encoding="utf-8"))
    return parsed


def _report(inputs: dict[str, Path], out: Path, *extra: str) -> int:
    argv = ["report", "--ir", str(inputs["ir"]), "--vis", str(inputs["vis"]), "--out", str(out)]
    return main([*argv, "--methods", str(inputs["sharp"]), str(inputs["dim"]), *extra])


def test_page_has_the_metric_table_with_best_marked_and_every_figure(report_inputs, tmp_path) -> None:
    out = tmp_path / "page"
    code = _report(
        report_inputs,
        out,
        "--metrics",
        "SD,MSE",
        "--bench",
        str(report_inputs["bench"]),
        "--runs",
        str(report_inputs["run"]),
    )
    assert code == 0
    index = out / "index.html"
    html = index.read_text(encoding="utf-8")
    page = _parse(index)
    header = [text for text, _ in page.rows[0]]
    assert header == ["Method", "Images", "SD ↑", "MSE ↓"]
    pairs, _ = pair_by_stem(report_inputs["ir"], report_inputs["vis"])
    means = evaluate_folders([report_inputs["sharp"], report_inputs["dim"]], pairs, ["SD", "MSE"]).means
    best = {"SD": max(means, key=lambda m: means[m]["SD"]), "MSE": min(means, key=lambda m: means[m]["MSE"])}
    for row in page.rows[1:]:
        method = row[0][0]
        assert row[1] == ("3", False)
        for column, name in ((2, "SD"), (3, "MSE")):
            assert row[column] == (format_value(means[method][name]), method == best[name])
    assert "metric profile 'cdd'" in unescape(html) and "no stretch" in html
    # Every figure the page shows exists: bars per metric, one grid per pair, the run's curves, the scatter.
    assert sorted(page.images) == sorted(
        [
            "figures/bars_SD.svg",
            "figures/bars_MSE.svg",
            "figures/pair_00_a1.png",
            "figures/pair_01_b2.png",
            "figures/pair_02_c3.png",
            "figures/run_00_toy.svg",
            "figures/latency_quality.svg",
        ]
    )
    assert all((out / src).is_file() and (out / src).stat().st_size > 1000 for src in page.images)
    # Self-contained: nothing fetched from a network, no script.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html) and "<script" not in html
    assert "test cpu" in html  # the bench file's machine
    assert (out / "metrics.md").read_text().startswith("| Method | Images | SD ↑ | MSE ↓ |")


def test_eval_results_are_reused_not_recomputed(report_inputs, tmp_path) -> None:
    methods = [str(report_inputs["sharp"]), str(report_inputs["dim"])]
    eval_out = tmp_path / "ev"
    sources = ["--ir", str(report_inputs["ir"]), "--vis", str(report_inputs["vis"])]
    assert main(["eval", "--methods", *methods, *sources, "--metrics", "EN", "--out", str(eval_out)]) == 0
    summary = json.loads(eval_out.with_suffix(".json").read_text())
    summary["means"]["dim"]["EN"] = 12.3456  # more than the 8 bits that 8-bit images can give
    eval_out.with_suffix(".json").write_text(json.dumps(summary))
    out = tmp_path / "page"
    assert _report(report_inputs, out, "--eval-results", str(eval_out.with_suffix(".json"))) == 0
    rows = {row[0][0]: row for row in _parse(out / "index.html").rows[1:]}
    assert rows["dim"][2] == ("12.3456", True)  # EN: higher is better
    assert not (out / "metrics.csv").exists()


def test_bench_name_maps_a_folder_to_its_model(report_inputs, tmp_path) -> None:
    renamed = report_inputs["root"] / "ours"
    report_inputs["sharp"].rename(renamed)
    report_inputs["sharp"] = renamed
    bench = ["--metrics", "SD", "--bench", str(report_inputs["bench"])]
    assert _report(report_inputs, tmp_path / "p1", *bench, "--bench-name", "ours=sharp") == 0
    html = (tmp_path / "p1" / "index.html").read_text(encoding="utf-8")
    assert "figures/latency_quality.svg" in html and "<td>ours</td><td>sharp</td><td>113</td>" in html
    assert _report(report_inputs, tmp_path / "p2", *bench, "--bench-name", "nobody=sharp") == 2


def test_problems_are_one_line_each_and_the_page_is_still_written(report_inputs, tmp_path, capsys) -> None:
    (report_inputs["dim"] / "b2.png").unlink()
    out = tmp_path / "page"
    assert _report(report_inputs, out, "--metrics", "SD", "--pairs", "b2") == 1
    err = capsys.readouterr().err
    assert "no fused image with stem 'b2'" in err and "Traceback" not in err
    assert (out / "figures" / "pair_00_b2.png").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--pairs", "zz"), "no infrared/visible pair with stem zz"),
        (("--runs", "."), "not a training run folder"),
        (("--bench", "missing.json"), "missing.json: not a 'distilfuse bench --out' results file"),
        (("--quality-metric", "XYZ"), "--quality-metric XYZ: unknown metric"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(report_inputs, tmp_path, capsys, extra, message) -> None:
    out = tmp_path / "page"
    assert _report(report_inputs, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".page.partial-*"))


def test_an_existing_output_folder_is_never_overwritten(report_inputs, tmp_path, capsys) -> None:
    out = tmp_path / "page"
    out.mkdir()
    (out / "keep.txt").write_text("earlier results")
    assert _report(report_inputs, out, "--metrics", "SD") == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_zoom_box_is_where_the_images_differ_most() -> None:
    rng = np.random.default_rng(0)
    base = rng.random((60, 80))
    other = base.copy()
    other[35:47, 50:62] += 2.0  # a local difference
    # A global brightness/contrast change (as a min-max stretch makes) is not a difference.
    assert disagreement_box([base, 3 * other + 10], 12) == disagreement_box([base, other], 12)
    box = disagreement_box([base, other, base], 12)
    assert (box.y, box.x, box.h, box.w) == (35, 50, 12, 12)
    assert disagreement_box([base, other], 500).h == 60  # clipped to the image
    with pytest.raises(ValueError, match="two images"):
        disagreement_box([base], 12)


def test_default_pairs_spread_over_the_set() -> None:
    stems = [f"{i:02d}" for i in range(1, 43)]
    assert choose_pairs(stems, None, 3) == ["11", "21", "32"]  # the quartiles of 01..42
    assert choose_pairs(stems[:2], None, 3) == ["01", "02"]
    assert choose_pairs(stems, ["05"], 3) == ["05"]
    with pytest.raises(ReportError, match="99"):
        choose_pairs(stems, ["05", "99"], 3)


def test_training_curves_use_a_log_axis_and_skip_values_it_cannot_show(tmp_path) -> None:
    series = {"loss": [(1, 1.0), (2, 0.1), (3, 0.0), (4, float("nan"))], "empty": [(1, -1.0)], "one": [(2, 5.0)]}
    figure = curves_figure(series, x_label="epoch", title="toy")
    axes = figure.axes[0]
    assert axes.get_yscale() == "log" and axes.get_xlabel() == "epoch" and axes.get_title() == "toy"
    lines = {line.get_label(): line for line in axes.lines}
    assert set(lines) == {"loss", "one"}
    assert list(lines["loss"].get_xdata()) == [1.0, 2.0] and list(lines["loss"].get_ydata()) == [1.0, 0.1]
    path = plot_curves(tmp_path / "curves.png", series, size=(900, 520))
    with Image.open(path) as image:
        assert image.size == (900, 520)
