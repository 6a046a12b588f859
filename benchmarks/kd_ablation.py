"""Does the teacher help? Train a recipe twice at equal budget -- as written (KD) and with `--no-distill`
(same student, task losses, data, steps and seed; no teacher) -- fuse the test sets with both and score them.

    python benchmarks/kd_ablation.py configs/mmdr.yaml --stretch
    python benchmarks/kd_ablation.py configs/mlkd_ship.yaml train.epochs=2 --out runs/ablation/mlkd_ship
    python benchmarks/kd_ablation.py configs/rt_s.yaml --kd-label mmdr-teacher --arm ship=configs/rt_s_ship.yaml \
        --arm multi=configs/rt_multi.yaml --sets TNO42 RoadScene50 MSRS23

Each --arm LABEL=RECIPE adds an arm trained from another recipe with the same overrides (for teachers or
distillers compared at one budget: the recipes must differ only in that). Runs go to --out (default
runs/ablation/<recipe>); an interrupted arm resumes, a finished one is reused. Writes <out>/ablation.md: one
table per test set (the 8 headline metrics, cdd profile) with every arm and any --anchor/--baseline, and how
many metrics each distilled arm wins against no-KD. Test sets are for this final table only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from distilfuse.bench.measure import machine_info
from distilfuse.data.test_sets import TEST_SETS, test_set_folders
from distilfuse.io import pair_by_stem
from distilfuse.metrics.evaluate import HEADLINE_METRICS as HEADLINE
from distilfuse.metrics.evaluate import evaluate_folders, method_table, metrics_won
from distilfuse.train.config import load_config, path_variables
from distilfuse.train.init_trials import TRIALS_DIR

NO_KD = "no-KD"


def distilfuse(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "distilfuse", *args], check=True)


def train_arm(config: Path, overrides: list[str], out: Path, flags: list[str]) -> None:
    """Train (or resume, or reuse) one arm."""
    resume = ["--resume"] if (out / "last.pt").is_file() else []
    distilfuse("train", str(config), *overrides, "--out", str(out), "--quiet", *flags, *resume)


def arm_summary(out: Path) -> str:
    """An arm's training time (its epochs' times in log.json, so also for a reused or resumed arm, plus those of
    its initialisation trials) and best epoch."""
    log = json.loads((out / "log.json").read_text())
    minutes = sum(epoch["seconds"] for epoch in log["epochs"]) / 60
    trials = [json.loads(p.read_text())["epochs"] for p in sorted(out.glob(f"{TRIALS_DIR}/*/log.json"))]
    minutes += sum(epoch["seconds"] for epochs in trials for epoch in epochs) / 60
    best = log.get("best") or {}
    chosen = f", best {best['metric']} {best['value']:.4g} at epoch {best['epoch']}" if best.get("epoch") else ""
    tried = f" (with {len(trials)} initialisation trials)" if trials else ""
    return f"{minutes:.1f} min over {len(log['epochs'])} epochs{tried}{chosen}"


def ablation_arms(config: Path, kd_label: str, extra: list[str]) -> dict[str, tuple[Path, list[str]]]:
    """label -> (recipe, train flags): the recipe as written, its --no-distill arm, and each LABEL=RECIPE."""
    arms = {kd_label: (config, []), NO_KD: (config, ["--no-distill"])}
    for arm in extra:
        label, _, recipe = arm.partition("=")
        if not label or not recipe or label in arms:
            raise SystemExit(f"--arm {arm!r}: expected a new LABEL=RECIPE")
        arms[label] = (Path(recipe), [])
    return arms


def arm_weights(out: Path) -> Path:
    """The best checkpoint by the recipe's validation on held-out training pairs, else the last one."""
    best = out / "best.safetensors"
    return best if best.is_file() else out / "last.safetensors"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="applied to both arms")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--stretch", action="store_true", help="min-max stretch outputs (the paper's test protocol)")
    p.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="LABEL=SUBFOLDER",
        help="a peer's outputs to list beside the arms, e.g. official=MMDRFuse_student "
        "(looked up under ../shared/peers/<set>/)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="LABEL=WEIGHTS",
        help="other weights of the same student to list beside the arms, e.g. shipped=old.safetensors",
    )
    p.add_argument("--kd-label", default="KD", help="row label of the recipe's own (distilled) arm")
    p.add_argument("--arm", action="append", default=[], metavar="LABEL=RECIPE", help="another distilled arm")
    p.add_argument("--sets", nargs="+", default=["TNO42", "MSRS23"], choices=list(TEST_SETS))
    args = p.parse_args(argv)
    data = Path(path_variables()["DATA"])
    peers = data.parent / "peers"
    out = args.out or Path(path_variables()["RUNS"]) / "ablation" / args.config.stem
    student = load_config(args.config, args.overrides)["student"]["name"]
    started = time.strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]

    arms = ablation_arms(args.config, args.kd_label, args.arm)
    for arm, (config, flags) in arms.items():
        train_arm(config, args.overrides, out / arm, flags)

    stretch = ["--stretch"] if args.stretch else []
    lines = [
        f"## KD ablation: `{args.config}` ({student})",
        "",
        f"Command: `python benchmarks/kd_ablation.py {' '.join(argv if argv is not None else sys.argv[1:])}`; "
        f"started {started}, load average {load:.2f}.",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine_info(torch.device("cpu")).items()) + ".",
        "Training time (each arm's log.json): "
        + "; ".join(f"{arm} {arm_summary(out / arm)}" for arm in arms)
        + f". Weights: each arm's best validation checkpoint (held-out training pairs). Scored with the cdd "
        f"profile{', outputs min-max stretched' if args.stretch else ''}.",
        "",
    ]
    for label in args.sets:
        ir_dir, vi_dir = test_set_folders(data, label, out)
        pairs, problems = pair_by_stem(ir_dir, vi_dir)
        if problems:
            raise SystemExit("; ".join(problems))
        runs = {arm: str(arm_weights(out / arm)) for arm in arms}
        runs.update(b.partition("=")[::2] for b in args.baseline)
        dirs, labels = [], []
        for name, weights in runs.items():
            fused = out / "fused" / label / name
            if not fused.is_dir():
                distilfuse("fuse", "--model", student, "--weights", weights, "--ir", str(ir_dir),
                           "--vis", str(vi_dir), "--out", str(fused), *stretch)  # fmt: skip
            dirs.append(fused)
            labels.append(name)
        for anchor in args.anchor:
            name, _, sub = anchor.partition("=")
            dirs.append(peers / TEST_SETS[label].peers / sub)
            labels.append(name)
        result = evaluate_folders(dirs, pairs, HEADLINE, labels=labels, profile="cdd", stretch=args.stretch)
        lines += [f"### {label} ({len(pairs)} pairs)", "", method_table(result.means, result.counts, HEADLINE), ""]
        for arm in arms:
            if arm != NO_KD:
                won = metrics_won(result.means, arm, NO_KD, HEADLINE)
                lines.append(f"- {arm} beats {NO_KD} on {len(won)}/8 ({', '.join(won) or 'none'})")
        lines.append("")
    text = "\n".join(lines)
    (out / "ablation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
