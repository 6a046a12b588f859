"""`distilfuse train`: train a student (or a teacher) from a YAML recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from distilfuse.cli.main import UserError

EPILOG = """examples:
  distilfuse train configs/default_mmdr_mini.yaml
  distilfuse train configs/mmdr.yaml train.epochs=3 data.patches_per_image=20
  distilfuse train configs/mmdr.yaml --smoke --out runs/smoke
  distilfuse train configs/mmdr.yaml --resume
  torchrun --nproc_per_node 2 -m distilfuse train configs/mlkd_ship.yaml --device cuda

Paths in recipes may use ${DATA} (env DISTILFUSE_DATA, default ../shared/data), ${SHARED} (its parent)
and ${RUNS} (env DISTILFUSE_RUNS, default runs). See docs/training.md.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML recipe (configs/*.yaml)",
        description="Train a fusion network from a YAML recipe, with key=value overrides of its entries. "
        "Writes checkpoints (last.pt, best.pt), student weights (last/best.safetensors), log.csv, log.json "
        "and curves.png to --out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", type=Path, help="recipe file, e.g. configs/mmdr.yaml")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="override recipe entries by dotted key, e.g. train.epochs=3 data.patch=64",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: ${RUNS}/<recipe name>, with -smoke added for --smoke)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--device", default="cpu", help="cpu or cuda (under torchrun: each process its own GPU)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="apply the recipe's smoke section: a few steps on tiny patches, to check the set-up",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distilfuse.models import WeightsError
    from distilfuse.train import ConfigError, load_config, train
    from distilfuse.train.config import path_variables

    try:
        cfg = load_config(args.config, args.overrides, smoke=args.smoke)
        out = args.out
        if out is None:
            out = Path(path_variables()["RUNS"]) / (args.config.stem + ("-smoke" if args.smoke else ""))
        summary = train(cfg, out, device=args.device, resume=args.resume, progress=False if args.quiet else None)
    except (ConfigError, WeightsError, FileNotFoundError, KeyError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    best = summary["best"]
    if summary["stopped_early"]:
        print(f"stopped at step {summary['global_step']} (train.max_steps); continue with --resume")
    elif best:
        print(f"best {best['metric']} {best['value']:.4g} at epoch {best['epoch']}; weights in {out}/best.safetensors")
    else:
        print(f"finished at step {summary['global_step']}; weights in {out}/last.safetensors")
    return 0
