"""Fixed-point test of a distillation objective: a good student must stay good under it.

Starts the recipe's student from given weights (default: the official MMDRFuse student), trains
``--steps`` steps of the recipe's objective, and compares SSIM / Qabf / VIF on the engine's held-out
validation crops (training split only) before and after. Passes when no metric drops by more than
``--tolerance`` (relative). Prints the loss terms' gradient norms at the start, so an inert or a
dominating term is visible.

    python benchmarks/fixed_point.py configs/mmdr.yaml
    python benchmarks/fixed_point.py configs/mmdr_official.yaml --steps 200 perceptual.weights=...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from distilfuse.bench.measure import machine_info
from distilfuse.train.config import load_config, path_variables
from distilfuse.train.engine import Trainer

METRICS = ["SSIM", "Qabf", "VIF"]


def gradient_norms(trainer: Trainer) -> dict[str, float]:
    """Norm of each loss term's gradient w.r.t. the student's parameters, on the first training batch."""
    trainer.enter_epoch()
    _, terms = trainer.generator_terms(next(trainer.batches()))
    params = [p for p in trainer.student.parameters() if p.requires_grad]
    norms = {}
    for name, value in terms.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        norms[name] = float(torch.sqrt(sum((g**2).sum() for g in grads if g is not None)))
    return norms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--weights", default="${SHARED}/weights/mmdrfuse/student.model", help="the good student")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--tolerance", type=float, default=0.03, help="largest relative drop allowed per metric")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    weights = args.weights.replace("${SHARED}", path_variables()["SHARED"])
    overrides = [
        *args.overrides,
        f"student.weights={weights}",
        "student.init_from_teacher={}",  # the good student is the starting point, nothing is copied into it
        f"train.max_steps={args.steps}",
        "train.validate_every=0",
        "train.progress=false",
    ]
    cfg = load_config(args.config, overrides)
    cfg["validation"]["metrics"] = METRICS
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, progress=False)
        norms = gradient_norms(trainer)
        before = trainer.validate()
        trainer.fit()
        after = trainer.validate()
    info = machine_info(torch.device("cpu"))
    print(f"# fixed-point test: {args.config} from {weights}, {args.steps} steps")
    print(
        ", ".join(f"{k} {v}" for k, v in info.items()) + f", load {os.getloadavg()[0]:.2f}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    print("gradient norms at the start: " + ", ".join(f"{k} {v:.3g}" for k, v in norms.items()))
    print("| metric | before | after | change |")
    print("|---|---:|---:|---:|")
    failed = []
    for name in METRICS:
        change = (after[name] - before[name]) / abs(before[name])
        print(f"| {name} | {before[name]:.4f} | {after[name]:.4f} | {change:+.1%} |")
        if change < -args.tolerance:
            failed.append(name)
    print("PASS" if not failed else f"FAIL: {', '.join(failed)} dropped by more than {args.tolerance:.0%}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
