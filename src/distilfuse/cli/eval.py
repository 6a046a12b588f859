"""`distilfuse eval`: fusion metrics over folders of fused images, a comparison of methods, or a paper's protocol.

Files are paired by stem across --ir, --vis and each fused folder (formats may differ). Every
missing, unreadable or mismatched file is reported on one line and skipped; the exit code is then
1. Results go to OUT.csv (one row per image) and OUT.json (means), plus OUT.md with --methods;
OUT defaults to ./eval_results. With --protocol (scakd, hkdnet, mmdrfuse, mlkd or a YAML file) each
--model is fused on the paper's test pairs (or our substitutes) and scored with its metrics beside the
official outputs and the paper's printed rows: OUT/<protocol>.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from distilfuse.cli.main import UserError

PROG = "distilfuse eval"


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
    which.add_argument(
        "--protocol",
        metavar="NAME|PATH",
        help="a paper's evaluation protocol (scakd, hkdnet, mmdrfuse, mlkd) or a protocol YAML file",
    )
    parser.add_argument("--ir", type=Path, help="folder of infrared source images (with --fused/--methods)")
    parser.add_argument("--vis", type=Path, help="folder of visible source images (with --fused/--methods)")
    parser.add_argument(
        "--metrics", default=None, help="comma-separated metric names (default: all; add VIFF_han by name)"
    )
    parser.add_argument("--profile", choices=("cdd", "tang"), default=None, help="evaluation convention (default: cdd)")
    parser.add_argument(
        "--stretch",
        action="store_true",
        help="min-max stretch each fused image to 0..255, rounded to 8 bits (CDDFuse/MMDRFuse protocol)",
    )
    parser.add_argument(
        "--upscale-sources",
        action="store_true",
        help="fusion + super-resolution: fused images s times the sources' size are scored against the sources "
        "resized bicubically to the fused size (HKDnet protocol)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("eval_results"),
        help="base name of the results: OUT.csv, OUT.json (+ OUT.md with --methods); with --protocol a folder "
        "for OUT/<protocol>.md and the fused images; default ./eval_results",
    )
    protocol = parser.add_argument_group("with --protocol")
    protocol.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME[=WEIGHTS]",
        help="a model to fuse and score (repeatable); without =WEIGHTS its shipped weights",
    )
    protocol.add_argument(
        "--label", action="append", default=[], metavar="LABEL", help="row label of each --model, in order"
    )
    protocol.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="METHOD",
        help="more official outputs to score: ../shared/peers/<set>/METHOD (repeatable)",
    )
    protocol.add_argument("--sets", nargs="+", metavar="NAME", help="only these sets of the protocol")
    protocol.add_argument("--device", default="cpu", help="torch device for fusing (default: cpu)")
    parser.set_defaults(func=run)


def _problem(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def _plain_table(means: dict[str, float], names: list[str], count: int) -> str:
    from distilfuse.metrics import METRICS
    from distilfuse.metrics.evaluate import format_value

    width = max(len(n) for n in names) + 2
    lines = [f"{'metric':<{width}}  mean over {count} images"]
    lines += [f"{n + ' ' + METRICS[n].arrow:<{width}}  {format_value(means[n])}" for n in names]
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
        "upscale_sources": args.upscale_sources,
        "ir": str(args.ir),
        "vis": str(args.vis),
        "directions": {n: "higher" if METRICS[n].higher_is_better else "lower" for n in names},
        "images": counts,
        "problems": problems,
        "means": means,
    }


def _models(args: argparse.Namespace) -> dict:
    """Row label -> loaded model, as `distilfuse fuse --model NAME --weights WEIGHTS` loads it."""
    from distilfuse.cli.common import load_model

    if len(args.label) > len(args.model):
        raise UserError(f"{len(args.label)} --label for {len(args.model)} --model")
    models = {}
    for i, spec in enumerate(args.model):
        name, _, weights = spec.partition("=")
        label = args.label[i] if i < len(args.label) else name
        if label in models:
            raise UserError(f"two models labelled {label!r}; give each a --label")
        loader = argparse.Namespace(model=name, weights=Path(weights) if weights else None, device=args.device)
        models[label] = load_model(loader)
    return models


def run_protocol_command(args: argparse.Namespace) -> int:
    """--protocol: fuse, score and write OUT/<protocol>.md. Exit code 1 when some image was skipped."""
    from distilfuse.metrics.protocol import ProtocolError, load_protocol, run_protocol
    from distilfuse.train.config import path_variables

    fixed = {
        "--ir": args.ir,
        "--vis": args.vis,
        "--metrics": args.metrics,
        "--profile": args.profile,
        "--stretch": args.stretch,
        "--upscale-sources": args.upscale_sources,
    }
    given = [flag for flag, value in fixed.items() if value]
    if given:
        raise UserError(f"{', '.join(given)}: set by the protocol, not with --protocol")
    problems = []

    def report(message: str) -> None:
        problems.append(message)
        _problem(message)

    data = Path(path_variables()["DATA"])
    try:
        protocol = load_protocol(args.protocol)
        models = _models(args)
        text = run_protocol(
            protocol,
            models,
            args.out,
            data=data,
            peers=data.parent / "peers",
            extra_anchors=args.anchor,
            sets=args.sets,
            device=args.device,
            report=report,
        )
    except ProtocolError as exc:
        raise UserError(str(exc)) from None
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{protocol.name}.md"
    path.write_text(text)
    print(text, end="")
    print(f"wrote {path}")
    if problems:
        _problem(f"{len(problems)} problem(s) reported above; those images were skipped")
    return 1 if problems else 0


def run(args: argparse.Namespace) -> int:
    """Evaluate and write results. Exit code: 0 all evaluated, 1 some images skipped, 2 bad input."""
    from distilfuse.io import pair_by_stem
    from distilfuse.metrics import resolve_metric_names
    from distilfuse.metrics.evaluate import evaluate_folders, method_labels, method_table

    if args.protocol:
        return run_protocol_command(args)
    if args.model or args.anchor or args.sets:
        raise UserError("--model, --anchor and --sets go with --protocol")
    if args.ir is None or args.vis is None:
        raise UserError("--fused and --methods need --ir and --vis")
    args.profile = args.profile or "cdd"
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
    try:
        labels = method_labels(fused_dirs)
    except ValueError as exc:
        _problem(f"error: --methods {exc}")
        return 2
    result = evaluate_folders(
        fused_dirs,
        pairs,
        names,
        labels=labels,
        profile=args.profile,
        stretch=args.stretch,
        upscale_sources=args.upscale_sources,
        report=_problem,
    )
    problems = len(pair_problems) + result.problems
    means, counts = result.means, result.counts
    empty = [str(d) for d, label in zip(fused_dirs, labels, strict=True) if counts[label] == 0]
    if empty:
        _problem(f"error: no fused image could be evaluated in {', '.join(empty)}; nothing written")
        return 2
    if args.methods:
        table = method_table(means, counts, names)
        print(table, end="")
        written = _write_outputs(out, result.rows, names, _summary(args, names, means, counts, problems), True)
        md_path = out.with_name(out.name + ".md")
        md_path.write_text(table)
        written.append(md_path)
    else:
        label = labels[0]
        print(_plain_table(means[label], names, counts[label]))
        summary = _summary(args, names, means[label], counts[label], problems)
        written = _write_outputs(out, result.rows, names, summary, False)
    print("wrote " + ", ".join(str(p) for p in written))
    if problems:
        _problem(f"{problems} problem(s) reported above; those images were skipped")
    return 1 if problems else 0
