"""Assemble a report folder: metric table, per-metric bars, pair grids with a zoom box, training curves,
latency against quality, machine and versions; `index.html` links the figures beside it."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np

from distilfuse.report import page
from distilfuse.report.page import Section

QUALITY_PREFERENCE = ("Qabf", "VIF", "SSIM")  # default y axis of the latency plot, first one computed


class ReportError(ValueError):
    """Input the report cannot be built from (one line naming the file and the problem)."""


@dataclass
class ReportSpec:
    """What to put in the report; see `distilfuse report --help` for each field's meaning."""

    ir: Path
    vis: Path
    methods: list[Path]
    out: Path
    metrics: str | None = None
    profile: str = "cdd"
    stretch: bool = False
    eval_results: Path | None = None
    bench: list[Path] = field(default_factory=list)
    bench_names: dict[str, str] = field(default_factory=dict)
    quality_metric: str | None = None
    runs: list[Path] = field(default_factory=list)
    pairs: list[str] | None = None
    default_pairs: int = 3
    zoom: float = 0.25
    source_names: tuple[str, str] = ("infrared", "visible")
    title: str = "distilfuse report"
    command: str = ""


@dataclass
class Scores:
    """Means per method label and metric, image counts, and the protocol they were computed under."""

    names: list[str]
    means: dict[str, dict[str, float]]
    counts: dict[str, int]
    profile: str
    stretch: bool
    origin: str
    rows: list[dict] = field(default_factory=list)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def choose_pairs(stems: list[str], wanted: list[str] | None, count: int) -> list[str]:
    """The stems asked for (each must exist), or `count` stems evenly spread over the sorted list."""
    if wanted:
        unknown = [s for s in wanted if s not in stems]
        if unknown:
            raise ReportError(f"--pairs: no infrared/visible pair with stem {', '.join(unknown)}")
        return list(wanted)
    ordered = sorted(stems)
    if len(ordered) <= count:
        return ordered
    picks = np.linspace(0, len(ordered) - 1, count + 2)[1:-1]
    return [ordered[int(round(p))] for p in picks]


def load_eval_results(path: Path, labels: list[str]) -> Scores:
    """Means of `labels` from a `distilfuse eval --methods` JSON file."""
    from distilfuse.metrics import METRICS

    try:
        document = json.loads(path.read_text())
        means, counts = document["means"], document["images"]
        profile, stretch = str(document["profile"]), bool(document["stretch"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{path}: not a 'distilfuse eval' results file ({type(exc).__name__}: {exc})") from None
    if not isinstance(means, dict) or not all(isinstance(v, dict) for v in means.values()):
        raise ReportError(f"{path}: holds one folder's means; the report needs 'distilfuse eval --methods' results")
    missing = [label for label in labels if label not in means]
    if missing:
        raise ReportError(f"{path}: no results for method(s) {', '.join(missing)}")
    names = list(means[labels[0]])
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ReportError(f"{path}: unknown metric(s) {', '.join(unknown)}")
    return Scores(
        names=names,
        means={label: {n: float(means[label][n]) for n in names} for label in labels},
        counts={label: int(counts[label]) for label in labels},
        profile=profile,
        stretch=stretch,
        origin=str(path),
    )


def _read_csv_rows(path: Path) -> list[dict[str, float]]:
    """Numeric cells of a training log CSV (text cells such as the phase name, and empty cells, dropped)."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            numeric = {}
            for key, text in row.items():
                try:
                    numeric[key] = float(text)
                except (TypeError, ValueError):
                    continue
            rows.append(numeric)
    return rows


def read_run_curves(run_dir: Path) -> tuple[dict[str, list[tuple[float, float | None]]], str]:
    """Loss series of a `distilfuse train` run folder: per logged step when there are several, else per epoch."""
    from distilfuse.train.logs import loss_series

    steps, epochs = run_dir / "steps.csv", run_dir / "log.csv"
    try:
        if steps.is_file():
            rows = _read_csv_rows(steps)
            if len(rows) > 1:
                return loss_series(rows, "step"), "step"
        if epochs.is_file():
            rows = _read_csv_rows(epochs)
            if rows:
                return loss_series(rows, "epoch"), "epoch"
    except (OSError, csv.Error, KeyError) as exc:
        raise ReportError(f"{run_dir}: unreadable training log ({type(exc).__name__}: {exc})") from None
    raise ReportError(f"{run_dir}: not a training run folder (no log.csv or steps.csv with values)")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("distilfuse", "numpy", "matplotlib", "pillow"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


class _Builder:
    """Writes one report into a fresh folder; `build` returns the number of problems reported."""

    def __init__(self, spec: ReportSpec, report: Callable[[str], None]) -> None:
        self.spec, self.report = spec, report
        self.problems = 0

    def _problem(self, message: str) -> None:
        self.report(message)
        self.problems += 1

    def validate(self) -> None:
        from distilfuse.bench.suite import read_results_json
        from distilfuse.io import pair_by_stem
        from distilfuse.metrics import METRICS
        from distilfuse.metrics.evaluate import method_labels

        spec = self.spec
        if spec.out.exists():
            raise ReportError(f"--out {spec.out}: already exists; choose a new folder (results are never overwritten)")
        if not 0 < spec.zoom <= 1:
            raise ReportError(f"--zoom {spec.zoom}: give a fraction in (0, 1]")
        for folder in [spec.ir, spec.vis, *spec.methods]:
            if not folder.is_dir():
                raise ReportError(f"{folder}: no such folder")
        try:
            self.labels = method_labels(spec.methods)
        except ValueError as exc:
            raise ReportError(f"--methods {exc}") from None
        self.pairs, pair_problems = pair_by_stem(spec.ir, spec.vis)
        for message in pair_problems:
            self._problem(message)
        if not self.pairs:
            raise ReportError(f"no infrared/visible pairs in {spec.ir} and {spec.vis}")
        self.shown = choose_pairs([s for s, _, _ in self.pairs], spec.pairs, spec.default_pairs)
        self.scores = load_eval_results(spec.eval_results, self.labels) if spec.eval_results else None
        self.bench: dict[str, object] = {}
        self.bench_machines: list[str] = []
        for path in spec.bench:
            try:
                results, machine = read_results_json(path)
            except ValueError as exc:
                raise ReportError(str(exc)) from None
            self.bench_machines.append(f"{path.name}: " + "; ".join(f"{k} {v}" for k, v in machine.items()))
            for result in results:
                self.bench.setdefault(result.name, result)
        unknown = sorted(set(spec.bench_names) - set(self.labels))
        if unknown:
            raise ReportError(f"--bench-name: no method folder named {', '.join(unknown)}")
        self.curves = [(run, *read_run_curves(run)) for run in spec.runs]
        if spec.quality_metric is not None and spec.quality_metric not in METRICS:
            raise ReportError(f"--quality-metric {spec.quality_metric}: unknown metric")

    def evaluate(self) -> Scores:
        from distilfuse.metrics import resolve_metric_names
        from distilfuse.metrics.evaluate import evaluate_folders

        spec = self.spec
        try:
            names = resolve_metric_names(spec.metrics)
        except ValueError as exc:
            raise ReportError(f"--metrics: {exc}") from None
        result = evaluate_folders(
            spec.methods,
            self.pairs,
            names,
            labels=self.labels,
            profile=spec.profile,
            stretch=spec.stretch,
            report=self._problem,
        )
        return Scores(names, result.means, result.counts, spec.profile, spec.stretch, "computed", result.rows)

    def build(self) -> Path:
        from tqdm import tqdm

        spec = self.spec
        self.validate()
        staging = spec.out.parent / f".{spec.out.name}.partial-{os.getpid()}"
        (staging / "figures").mkdir(parents=True)
        try:
            steps = 2 + len(self.shown) + len(self.curves) + (1 if self.scores is None else 0)
            with tqdm(total=steps, desc="report", unit="step", disable=None, file=sys.stderr) as progress:
                if self.scores is None:
                    progress.set_postfix_str("metrics")
                    self.scores = self.evaluate()
                    progress.update()
                if self.spec.quality_metric is not None and self.spec.quality_metric not in self.scores.names:
                    raise ReportError(f"--quality-metric {self.spec.quality_metric}: not among the computed metrics")
                sections = [self._metrics_section(staging)]
                progress.update()
                pair_bodies = []
                for index, stem in enumerate(self.shown):
                    progress.set_postfix_str(f"pair {stem}")
                    pair_bodies.append(self._pair_figure(staging, index, stem))
                    progress.update()
                sections.append(Section("pairs", "Pairs side by side", "\n".join(pair_bodies)))
                run_bodies = []
                for index, (run, series, x_label) in enumerate(self.curves):
                    run_bodies.append(self._curve_figure(staging, index, run, series, x_label))
                    progress.update()
                if run_bodies:
                    sections.append(Section("training", "Training curves", "\n".join(run_bodies)))
                if spec.bench:
                    sections.append(Section("speed", "Latency and quality", self._speed_body(staging)))
                sections.append(Section("machine", "Machine and versions", self._machine_body()))
                lead = (
                    f"{len(self.labels)} methods on {len(self.pairs)} pairs from {spec.ir} ({spec.source_names[0]}) "
                    f"and {spec.vis} ({spec.source_names[1]}); generated {time.strftime('%Y-%m-%d %H:%M %Z')}."
                )
                (staging / "index.html").write_text(page.render(spec.title, lead, sections), encoding="utf-8")
                progress.update()
            os.rename(staging, spec.out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return spec.out / "index.html"

    def _metrics_section(self, staging: Path) -> Section:
        from distilfuse.metrics import METRICS
        from distilfuse.metrics.evaluate import best_values, format_value, is_best, method_table
        from distilfuse.report.figures import metric_bars_figure, save_figure

        scores = self.scores
        assert scores is not None
        names, means = scores.names, scores.means
        best = best_values(means, names)
        header = ["Method", "Images", *(f"{n} {METRICS[n].arrow}" for n in names)]
        rows = [[label, str(scores.counts[label]), *(format_value(means[label][n]) for n in names)] for label in means]
        bold = [[False, False, *(is_best(means[label][n], best[n]) for n in names)] for label in means]
        (staging / "metrics.md").write_text(method_table(means, scores.counts, names))
        if scores.rows:
            with open(staging / "metrics.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["method", "stem", *names], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(scores.rows)
        origin = "computed now" if scores.origin == "computed" else f"read from {scores.origin}"
        stretch = "min-max stretched to 0..255 before scoring" if scores.stretch else "scored as saved (no stretch)"
        protocol = (
            f"Protocol: metric profile '{scores.profile}' (docs/metrics.md); fused images {stretch}; values are "
            f"means over each method's images, {origin}. ↑ higher is better, ↓ lower is better; the best per "
            "column (at the shown precision) is bold."
        )
        links = '<p class="note">Also as <a href="metrics.md">metrics.md</a>' + (
            ' and per image in <a href="metrics.csv">metrics.csv</a>.</p>' if scores.rows else ".</p>"
        )
        charts = []
        for name in names:
            winners = [label for label in means if is_best(means[label][name], best[name])]
            values = {label: means[label][name] for label in means}
            figure = metric_bars_figure(values, name, METRICS[name].arrow, winners)
            src = f"figures/bars_{_safe(name)}.svg"
            save_figure(figure, staging / src)
            charts.append(page.figure(src, f"{name} per method"))
        body = (
            page.table(header, rows, bold)
            + page.paragraph(protocol)
            + links
            + "<h3>Per metric</h3>"
            + page.paragraph("Best method(s) in red; ↑/↓ give the direction.")
            + f'<div class="charts">{"".join(charts)}</div>'
        )
        return Section("metrics", "Metrics", body)

    def _pair_figure(self, staging: Path, index: int, stem: str) -> str:
        from distilfuse.io import ImageReadError, list_images, read_image
        from distilfuse.metrics.evaluate import as_grey_255
        from distilfuse.report.figures import Panel, pair_grid_figure, save_figure
        from distilfuse.report.zoom import disagreement_box

        spec = self.spec
        _, ir_path, vis_path = next(p for p in self.pairs if p[0] == stem)
        try:
            sources = [read_image(ir_path), read_image(vis_path)]
        except ImageReadError as exc:
            self._problem(f"{exc}; pair grid skipped")
            return page.paragraph(f"{stem}: sources unreadable (see the command's output)", "warn")
        size = sources[0].shape[:2]
        panels = [Panel(f"{spec.source_names[0]} ({stem})", sources[0]), Panel(spec.source_names[1], sources[1])]
        for label, folder in zip(self.labels, spec.methods, strict=True):
            path = list_images(folder).get(stem)
            image = None
            if path is not None:
                try:
                    image = read_image(path)
                except ImageReadError as exc:
                    self._problem(f"{exc}; shown as missing")
            if image is not None and image.shape[:2] != size:
                image = None  # the evaluation reported the size mismatch
            panels.append(Panel(label, image))
        fused = [as_grey_255(p.image, spec.profile) for p in panels[2:] if p.image is not None]
        compared = fused if len(fused) >= 2 else fused + [as_grey_255(s, spec.profile) for s in sources]
        side = int(round(spec.zoom * min(size)))
        box = disagreement_box(compared, side)
        src = f"figures/pair_{index:02d}_{_safe(stem)}.png"
        save_figure(pair_grid_figure(panels, box), staging / src)
        what = "the methods differ" if len(fused) >= 2 else "the method differs from the sources"
        caption = (
            f"Pair {stem}: {spec.source_names[0]}, {spec.source_names[1]} and each method. Yellow box: the "
            f"{box.w}x{box.h} window at x={box.x}, y={box.y} where {what} most (largest per-pixel spread of the "
            "images standardised to zero mean and unit variance), enlarged under each image."
        )
        return f"<h3>{escape(stem)}</h3>" + page.figure(src, f"pair {stem}", caption)

    def _curve_figure(self, staging: Path, index: int, run: Path, series, x_label: str) -> str:
        from distilfuse.report.figures import plot_curves

        src = f"figures/run_{index:02d}_{_safe(run.name or str(run))}.svg"
        plot_curves(staging / src, series, x_label=x_label, title=f"{run.name}: training losses")
        caption = (
            f"{run}: loss terms per {x_label} (log scale), from its {'steps' if x_label == 'step' else 'log'}.csv."
        )
        return page.figure(src, f"training curves of {run.name}", caption)

    def _speed_body(self, staging: Path) -> str:
        from distilfuse.metrics import METRICS
        from distilfuse.metrics.evaluate import format_value
        from distilfuse.report.figures import latency_quality_figure, save_figure

        scores = self.scores
        assert scores is not None
        metric = self.spec.quality_metric or next((m for m in QUALITY_PREFERENCE if m in scores.names), scores.names[0])
        points, rows = {}, []
        for label in self.labels:
            model = self.spec.bench_names.get(label, label)
            result = self.bench.get(model)
            quality = scores.means[label][metric]
            if result is None or math.isnan(quality):
                continue
            points[label] = (result.latency.median_ms, quality)
            out_h, out_w = result.output_hw
            rows.append(
                [
                    label,
                    model,
                    f"{result.params:,}",
                    f"{out_w}x{out_h}",
                    f"{result.latency.median_ms:,.2f}",
                    format_value(quality),
                ]
            )
        machines = page.paragraph("Measured with 'distilfuse bench --out' on " + " | ".join(self.bench_machines))
        if not points:
            unmatched = ", ".join(sorted(self.bench)) or "none"
            print(
                f"note: no method matched a bench result (benched: {unmatched}); use --bench-name METHOD=MODEL",
                file=sys.stderr,
            )
            return (
                page.paragraph(
                    f"No method folder matches a benched model (benched: {unmatched}); use --bench-name METHOD=MODEL.",
                    "warn",
                )
                + machines
            )
        src = "figures/latency_quality.svg"
        save_figure(latency_quality_figure(points, metric, METRICS[metric].arrow), staging / src)
        others = [label for label in self.labels if label not in points]
        note = f" Not benched: {', '.join(others)}." if others else ""
        header = [
            "Method",
            "Bench model",
            "Params",
            "Output (WxH)",
            "Latency median (ms)",
            f"{metric} {METRICS[metric].arrow}",
        ]
        return (
            page.figure(src, "latency against quality", f"Median latency per image against mean {metric}.{note}")
            + page.table(header, rows)
            + machines
        )

    def _machine_body(self) -> str:
        import torch

        from distilfuse.bench.measure import machine_info

        items = {"command": self.spec.command} if self.spec.command else {}
        items.update(machine_info(torch.device("cpu")))
        items.update(_versions())
        return page.key_values(items)


def build_report(spec: ReportSpec, report: Callable[[str], None] = _to_stderr) -> tuple[Path, int]:
    """Write the report folder `spec.out` (which must not exist); returns index.html and the number of
    problems reported (images skipped or shown as missing). Raises ReportError on unusable input."""
    builder = _Builder(spec, report)
    index = builder.build()
    return index, builder.problems
