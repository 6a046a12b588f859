"""Score trained weights on a recipe's validation crops (held-out training pairs, never a test set), on the
output as `fuse` clips it and min-max stretched as a stretching protocol scores it: the way to compare designs
for such a protocol before the final test tables.

    python benchmarks/validation_scores.py configs/mmdr_select_stretch.yaml \
        --weights select=runs/ablation/mmdr_select_stretch/select/best.safetensors \
        --weights shipped=src/distilfuse/weights/mmdr-mini.safetensors

The crops are those the recipe's training validates on (its `data` section and seed; `key=value` overrides
apply, e.g. seed=1); the model is the recipe's student. Prints one Markdown table per output handling.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from distilfuse.bench.measure import machine_info
from distilfuse.metrics.evaluate import method_table
from distilfuse.models import create
from distilfuse.train.config import load_config
from distilfuse.train.data import TrainingData
from distilfuse.train.distributed import DistContext
from distilfuse.train.teachers import build_teacher
from distilfuse.train.validation import Validator

METRICS = ["SD", "SF", "MI", "VIF", "Qabf", "SSIM"]


def score_tables(
    config: Path, overrides: list[str], weights: dict[str, str], metrics: list[str], teacher: bool = False
) -> str:
    """Markdown: the mean `metrics` of each weights file (and of the recipe's teacher with `teacher`) over the
    recipe's validation crops, clipped and stretched."""
    cfg = load_config(config, overrides)
    scale = int(cfg["strategy"].get("scale", 1))
    data = TrainingData.build(cfg["data"], int(cfg["seed"]), scale, DistContext.from_env("cpu"))
    if not data.val_crops:
        raise SystemExit(f"{config}: data.val_pairs is 0, so the recipe has no validation crops")
    models = {label: create(cfg["student"]["name"], weights=path) for label, path in weights.items()}
    if teacher:
        if not cfg.get("teacher"):
            raise SystemExit(f"{config}: --teacher given but the recipe has no teacher")
        models["teacher"] = build_teacher(cfg["teacher"])
    lines = []
    for stretch in (False, True):
        vcfg = {"metrics": list(metrics), "best_metric": metrics[0], "batch": 4}
        validator = Validator(vcfg, data.val_crops, scale, torch.device("cpu"), stretch=stretch)
        means = {label: validator.scores(model) for label, model in models.items()}
        counts = dict.fromkeys(models, len(data.val_crops))
        title = "min-max stretched raw output" if stretch else "output clipped to [0,1]"
        lines += [f"### {len(data.val_crops)} validation crops, {title}", "", method_table(means, counts, metrics)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides (e.g. seed=1)")
    p.add_argument("--weights", action="append", required=True, metavar="LABEL=WEIGHTS", help="repeatable")
    p.add_argument("--metrics", nargs="+", default=METRICS)
    p.add_argument("--teacher", action="store_true", help="add a row for the recipe's teacher")
    args = p.parse_args(argv)
    weights = dict(w.partition("=")[::2] for w in args.weights)
    if any(not label or not path for label, path in weights.items()) or len(weights) < len(args.weights):
        raise SystemExit(f"--weights {args.weights}: expected distinct LABEL=WEIGHTS")
    torch.set_num_threads(1)
    print("Machine: " + ", ".join(f"{k} {v}" for k, v in machine_info(torch.device("cpu")).items()) + ".\n")
    print(score_tables(args.config, args.overrides, weights, args.metrics, args.teacher))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
