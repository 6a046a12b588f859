"""`distilfuse report`: a folder with a self-contained index.html comparing fusion methods, and its figures."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from distilfuse.cli.main import UserError

EPILOG = """examples:
  distilfuse report --ir data/TNO/ir --vis data/TNO/vi --methods peers/TNO/* ours/mmdr-mini --out tno_report
  distilfuse bench mmdr-mini --out bench.json
  distilfuse report ... --bench bench.json --runs runs/mmdr --pairs 05 17
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="HTML report: metric table, per-metric bars, zoomed pair grids, training curves, speed vs quality",
        description="Write a report folder: index.html (no network needed: inline style, no scripts) and the "
        "PNG/SVG figures it shows. Methods are folders of fused images paired by stem with --ir/--vis, as in "
        "'distilfuse eval --methods'. Images that cannot be scored are reported and skipped (exit code 1).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ir", type=Path, required=True, help="folder of infrared (first source) images")
    p.add_argument("--vis", type=Path, required=True, help="folder of visible (second source) images")
    p.add_argument(
        "--methods", type=Path, nargs="+", required=True, metavar="DIR", help="one folder of fused images per method"
    )
    p.add_argument("--out", type=Path, default=Path("report"), help="report folder to create (must not exist)")
    p.add_argument("--metrics", default=None, help="comma-separated metric names (default: all)")
    p.add_argument("--profile", choices=("cdd", "tang"), default="cdd", help="evaluation convention (default: cdd)")
    p.add_argument(
        "--stretch", action="store_true", help="min-max stretch each fused image before scoring (as eval --stretch)"
    )
    p.add_argument(
        "--eval-results",
        type=Path,
        metavar="FILE.json",
        help="use the means of an earlier 'distilfuse eval --methods' run instead of computing them "
        "(its metrics, profile and stretch then apply)",
    )
    p.add_argument(
        "--bench", type=Path, nargs="+", default=[], metavar="FILE.json", help="'distilfuse bench --out' results"
    )
    p.add_argument(
        "--bench-name",
        nargs="+",
        default=[],
        metavar="METHOD=MODEL",
        help="the benched model of a method folder whose name differs from the model name",
    )
    p.add_argument(
        "--quality-metric", default=None, help="y axis of the latency plot (default: the first of Qabf, VIF, SSIM)"
    )
    p.add_argument("--runs", type=Path, nargs="+", default=[], metavar="DIR", help="'distilfuse train' run folders")
    p.add_argument(
        "--pairs", nargs="+", default=None, metavar="STEM", help="pairs to show (default: 3 spread over the set)"
    )
    p.add_argument(
        "--zoom", type=float, default=0.25, help="zoom box side as a fraction of the shorter image side (default 0.25)"
    )
    p.add_argument(
        "--source-names",
        nargs=2,
        default=("infrared", "visible"),
        metavar=("IR_NAME", "VIS_NAME"),
        help="what the two sources are called on the page, e.g. PET MRI (default: infrared visible)",
    )
    p.add_argument("--title", default="distilfuse report", help="page title")
    p.set_defaults(func=run)


def _bench_names(items: list[str]) -> dict[str, str]:
    names = {}
    for item in items:
        method, sep, model = item.partition("=")
        if not sep or not method or not model:
            raise UserError(f"--bench-name {item!r}: write METHOD=MODEL")
        names[method] = model
    return names


def run(args: argparse.Namespace) -> int:
    from distilfuse.report import ReportError, ReportSpec, build_report

    spec = ReportSpec(
        ir=args.ir,
        vis=args.vis,
        methods=args.methods,
        out=args.out,
        metrics=args.metrics,
        profile=args.profile,
        stretch=args.stretch,
        eval_results=args.eval_results,
        bench=args.bench,
        bench_names=_bench_names(args.bench_name),
        quality_metric=args.quality_metric,
        runs=args.runs,
        pairs=args.pairs,
        zoom=args.zoom,
        source_names=tuple(args.source_names),
        title=args.title,
        command="distilfuse " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["report"] else "",
    )
    try:
        index, problems = build_report(spec, report=lambda message: print(f"error: {message}", file=sys.stderr))
    except ReportError as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {index}" + (f" ({problems} problem(s) reported above)" if problems else ""))
    return 1 if problems else 0
