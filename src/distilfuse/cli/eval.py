"""`distilfuse eval`: fusion metrics over folders of fused images, or a comparison of methods.

Files are paired by stem across --ir, --vis and each fused folder (formats may differ). Every
missing, unreadable or mismatched file is reported on one line and skipped; the exit code is then
1. Results go to OUT.csv (one row per image) and OUT.json (means), plus OUT.md with --methods;
OUT defaults to ./eval_results.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

PROG = "distilfuse eval"


class _InputError(Exception):
    """A problem with the command's input as a whole (exit code 2)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="compute fusion metrics for fused images against their infrared/visible sources",
        description=__doc__.split("\n\n", 1)[1].replace("\n", " "),
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--fused", type=Path, help="folder of fused images")
    which.add_argument(
        "--methods",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="one folder of fused images per method (name = folder name)",
    )
    parser.add_argument("--ir", type=Path, required=True, help="folder of infrared source images")
    parser.add_argument("--vis", type=Path, required=True, help="folder of visible source images")
    parser.add_argument(
        "--metrics", default=None, help="comma-separated metric names (default: all; add VIFF_han by name)"
    )
    parser.add_argument(
        "--profile", choices=("cdd", "tang"), default="cdd", help="evaluation convention (default: cdd)"
    )
    parser.add_argument(
        "--stretch",
        action="store_true",
        help="min-max stretch each fused image to 0..255, rounded to 8 bits (CDDFuse/MMDRFuse protocol)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("eval_results"),
        help="base name of the results: OUT.csv, OUT.json (+ OUT.md with --methods); default ./eval_results",
    )
    parser.set_defaults(func=run)


def _problem(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _as_grey_255(image: np.ndarray, profile: str) -> np.ndarray:
    """A decoded image as float64 grey on 0..255 (16-bit files are rescaled)."""
    from distilfuse.metrics import PROFILES, to_grey

    x = image.astype(np.float64)
    if image.dtype == np.uint16:
        x *= 255.0 / 65535.0
    return to_grey(x, PROFILES[profile].gray_conversion) if x.ndim == 3 else x


def stretch_to_8bit(fused: np.ndarray) -> np.ndarray:
    """Per-image min-max stretch to 0..255, rounded as saving to 8 bits does; a constant image gives zeros."""
    from distilfuse.ops.stretch import min_max_stretch

    return np.rint(min_max_stretch(fused, 255.0))


def _evaluate_folder(
    fused_dir: Path, pairs, names: list[str], args: argparse.Namespace, label: str
) -> tuple[list[dict], int]:
    """Per-image metric rows of one fused folder and the number of problems reported."""
    from tqdm import tqdm

    from distilfuse.io import ImageReadError, list_images, read_image
    from distilfuse.metrics import compute

    if not fused_dir.is_dir():
        _problem(f"{fused_dir}: no such folder")
        return [], 1
    fused_files = list_images(fused_dir)
    problems = 0
    for stem in sorted(set(fused_files) - {stem for stem, _, _ in pairs}):
        _problem(f"{fused_files[stem]}: no infrared/visible pair with stem '{stem}'; skipped")
        problems += 1
    rows = []
    for stem, ir_path, vis_path in tqdm(pairs, desc=label, unit="img", disable=None, file=sys.stderr):
        fused_path = fused_files.get(stem)
        if fused_path is None:
            _problem(f"{fused_dir}: no fused image with stem '{stem}' (sources {ir_path.name}, {vis_path.name})")
            problems += 1
            continue
        try:
            fused, ir, vis = (read_image(p) for p in (fused_path, ir_path, vis_path))
        except ImageReadError as exc:
            _problem(f"{exc}; skipped")
            problems += 1
            continue
        sizes = {p: img.shape[:2] for p, img in ((fused_path, fused), (ir_path, ir), (vis_path, vis))}
        if len(set(sizes.values())) > 1:
            listed = ", ".join(f"{p.name} {h}x{w}" for p, (h, w) in sizes.items())
            _problem(f"{fused_path}: image sizes differ ({listed}, as HxW); skipped")
            problems += 1
            continue
        grey_fused, grey_ir, grey_vis = (_as_grey_255(img, args.profile) for img in (fused, ir, vis))
        if args.stretch:
            grey_fused = stretch_to_8bit(grey_fused)
        try:
            values = compute(grey_fused, grey_ir, grey_vis, metrics=names, profile=args.profile)
        except ValueError as exc:
            _problem(f"{fused_path}: {exc}; skipped")
            problems += 1
            continue
        rows.append({"method": label, "stem": stem, **values})
    return rows, problems


def _mean(rows: list[dict], name: str) -> float:
    """Arithmetic mean over images (NaN if any image gave NaN, as the per-image CSV shows)."""
    return float(np.mean([row[name] for row in rows])) if rows else float("nan")


def _format(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _best(values: list[float], higher_is_better: bool) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return None
    return max(finite) if higher_is_better else min(finite)


def _markdown_table(means: dict[str, dict[str, float]], counts: dict[str, int], names: list[str]) -> str:
    """Methods as rows (with their image count), metrics as columns, the best value per column in bold."""
    from distilfuse.metrics import METRICS

    header = "| Method | Images | " + " | ".join(f"{n} {METRICS[n].arrow}" for n in names) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(names)]
    best = {n: _best([m[n] for m in means.values()], METRICS[n].higher_is_better) for n in names}
    for method, values in means.items():
        # Best as displayed: values equal to the shown precision are all marked.
        cells = [
            f"**{_format(values[n])}**"
            if best[n] is not None and _format(values[n]) == _format(best[n])
            else _format(values[n])
            for n in names
        ]
        lines.append(f"| {method} | {counts[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plain_table(means: dict[str, float], names: list[str], count: int) -> str:
    from distilfuse.metrics import METRICS

    width = max(len(n) for n in names) + 2
    lines = [f"{'metric':<{width}}  mean over {count} images"]
    lines += [f"{n + ' ' + METRICS[n].arrow:<{width}}  {_format(means[n])}" for n in names]
    return "\n".join(lines)


def _write_outputs(out: Path, rows: list[dict], names: list[str], summary: dict, with_method: bool) -> list[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out.with_name(out.name + ".csv"), out.with_name(out.name + ".json")
    fields = (["method"] if with_method else []) + ["stem"] + names
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(summary, indent=2, allow_nan=True) + "\n")
    return [csv_path, json_path]


def _summary(args: argparse.Namespace, names: list[str], means: dict, counts: dict, problems: int) -> dict:
    from distilfuse.metrics import METRICS

    return {
        "profile": args.profile,
        "stretch": args.stretch,
        "ir": str(args.ir),
        "vis": str(args.vis),
        "directions": {n: "higher" if METRICS[n].higher_is_better else "lower" for n in names},
        "images": counts,
        "problems": problems,
        "means": means,
    }


def run(args: argparse.Namespace) -> int:
    """Evaluate and write results. Exit code: 0 all evaluated, 1 some images skipped, 2 bad input."""
    from distilfuse.io import pair_by_stem
    from distilfuse.metrics import resolve_metric_names

    out = args.out.with_suffix("") if args.out.suffix.lower() in (".csv", ".json", ".md") else args.out
    try:
        names = resolve_metric_names(args.metrics)
    except ValueError as exc:
        _problem(f"error: --metrics: {exc}")
        return 2
    pairs, pair_problems = pair_by_stem(args.ir, args.vis)
    for message in pair_problems:
        _problem(message)
    if not pairs:
        _problem("error: no infrared/visible pairs to evaluate")
        return 2
    fused_dirs = args.methods if args.methods else [args.fused]
    labels = [d.name or str(d) for d in fused_dirs]
    if len(set(labels)) != len(labels):
        _problem("error: --methods folders must have distinct names (the name labels the method)")
        return 2
    problems = len(pair_problems)
    all_rows: list[dict] = []
    means: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for fused_dir, label in zip(fused_dirs, labels, strict=True):
        rows, folder_problems = _evaluate_folder(fused_dir, pairs, names, args, label)
        problems += folder_problems
        all_rows += rows
        means[label] = {n: _mean(rows, n) for n in names}
        counts[label] = len(rows)
    if args.methods:
        table = _markdown_table(means, counts, names)
        print(table, end="")
        written = _write_outputs(out, all_rows, names, _summary(args, names, means, counts, problems), True)
        md_path = out.with_name(out.name + ".md")
        md_path.write_text(table)
        written.append(md_path)
    else:
        label = labels[0]
        print(_plain_table(means[label], names, counts[label]))
        summary = _summary(args, names, means[label], counts[label], problems)
        written = _write_outputs(out, all_rows, names, summary, False)
    print("wrote " + ", ".join(str(p) for p in written))
    if problems:
        _problem(f"{problems} problem(s) reported above; those images were skipped")
    return 1 if problems else 0
