"""`distilfuse bench`: parameters, size, FLOPs/MACs, latency and peak memory of fusion models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distilfuse.cli.common import parse_device
from distilfuse.cli.main import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure the cost of a model (or of every fusion model with --all)",
        description="Measure parameters, size (float32 KB), FLOPs/MACs (torch FlopCounterMode: convolutions "
        "and matrix products, attention included), median latency and peak memory of one forward pass on a "
        "random image pair. Super-resolution students run at the low-resolution size that gives --size. "
        "Models with O((HW)^2) attention run at a smaller size, stated in the note column.",
    )
    p.add_argument("model", nargs="?", help="registered model name (see 'distilfuse models')")
    p.add_argument("--all", action="store_true", help="bench every registered fusion model (teachers, students)")
    p.add_argument("--size", default="640x480", help="output size WIDTHxHEIGHT (default: 640x480)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda (default: cpu)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs; the median is reported (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing (default: 3)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE.json",
        help="also write the results and machine as JSON (input of 'distilfuse report --bench'); never overwritten",
    )
    p.add_argument(
        "--zoo",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the model-zoo table instead (parameters, size and features of every registered model); "
        "with FILE (docs/models.md), rewrite the generated table at its top and keep the notes after it",
    )
    p.set_defaults(func=run)


def _zoo(target: str) -> int:
    from distilfuse.bench.zoo import update, zoo_markdown

    if target == "-":
        print(zoo_markdown(), end="")
        return 0
    try:
        update(Path(target))
    except OSError as exc:
        raise UserError(f"--zoo {target}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {target}")
    return 0


def run(args: argparse.Namespace) -> int:
    from distilfuse.bench import benchmark, fusion_models, markdown_table, parse_size
    from distilfuse.bench.measure import machine_info
    from distilfuse.bench.suite import machine_header, write_results_json

    if args.zoo is not None:
        if args.model or args.all:
            raise UserError("--zoo takes no MODEL or --all")
        return _zoo(args.zoo)
    if args.all == bool(args.model):
        raise UserError("give either a MODEL or --all (or --zoo)")
    if args.repeats < 1 or args.warmup < 0:
        raise UserError("--repeats must be >= 1 and --warmup >= 0")
    if args.out is not None and args.out.exists():
        raise UserError(f"--out {args.out}: already exists; choose a new file name")
    try:
        height, width = parse_size(args.size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    device = parse_device(args.device)
    names = fusion_models() if args.all else [args.model]
    if not args.all and args.model not in fusion_models():
        raise UserError(f"unknown fusion model {args.model!r}; registered: {', '.join(fusion_models())}")

    print(f"machine: {machine_header(device)}")
    print(f"device: {device}; float32, batch 1, {args.warmup} warm-up + {args.repeats} timed runs\n")
    results = []
    for name in names:
        print(f"benching {name} ...", file=sys.stderr, flush=True)
        results.append(benchmark(name, height, width, device, repeats=args.repeats, warmup=args.warmup))
    print(markdown_table(results))
    if args.out is not None:
        print(f"wrote {write_results_json(args.out, results, machine_info(device))}")
    return 0
