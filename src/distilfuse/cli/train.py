"""`distilfuse train`: train a student (or a teacher) from a YAML recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from distilfuse.cli.common import parse_device
from distilfuse.cli.main import UserError

EPILOG = """examples:
  distilfuse train configs/default_mmdr_mini.yaml
  distilfuse train configs/mmdr.yaml train.epochs=3 data.patches_per_image=20
  distilfuse train configs/mmdr.yaml --smoke --out runs/smoke
  distilfuse train configs/mmdr.yaml --resume
  distilfuse train configs/mmdr.yaml --no-distill --out runs/mmdr-nokd   # the no-KD arm of an ablation
  distilfuse train configs/mmdr.yaml --overwrite        # start the run in runs/mmdr again
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
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last.pt (or, if that is damaged, from the one before it)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (without it, or --resume, an existing run is refused)",
    )
    p.add_argument(
        "--no-distill",
        action="store_true",
        help="the recipe's no-KD arm: same student, task losses, data and budget, without teacher, "
        "distillers or teacher-initialised layers (for ablations)",
    )
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
    from distilfuse.train.config import path_variables, without_teacher

    if args.resume and args.overwrite:
        raise UserError("give --resume or --overwrite, not both")
    device = parse_device(args.device)
    out = args.out
    if out is None:
        out = Path(path_variables()["RUNS"]) / (args.config.stem + ("-smoke" if args.smoke else ""))
    try:
        cfg = load_config(args.config, args.overrides, smoke=args.smoke)
        if args.no_distill:
            cfg = without_teacher(cfg)
        summary = train(
            cfg,
            out,
            device=str(device),
            resume=args.resume,
            overwrite=args.overwrite,
            progress=False if args.quiet else None,
        )
    except (ConfigError, WeightsError, KeyError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    except OSError as exc:  # a missing data file, a full disk, a read-only run folder
        raise UserError(str(exc) if exc.filename is None else f"{exc.filename}: {exc.strerror}") from None
    best = summary["best"]
    if summary["stopped_early"]:
        print(f"stopped at step {summary['global_step']} (train.max_steps); continue with --resume")
    elif best:
        print(f"best {best['metric']} {best['value']:.4g} at epoch {best['epoch']}; weights in {out}/best.safetensors")
    else:
        print(f"finished at step {summary['global_step']}; weights in {out}/last.safetensors")
    return 0
