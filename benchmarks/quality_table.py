"""Quality of our models against the published anchors on the three test sets, with `distilfuse fuse` defaults.

    python benchmarks/quality_table.py --model rt-s=runs/rt_s/best.safetensors --model mmdr-mini
    python benchmarks/quality_table.py --model mmdr-teacher=../shared/weights/mmdrfuse/teacher.model

Each --model is NAME or NAME=WEIGHTS (shipped weights without '='); it is fused on TNO42, RoadScene50
(`test50.txt`) and MSRS23 exactly as `distilfuse fuse` does by default (no stretch), and scored with the
8 headline metrics (cdd profile) beside every anchor in ../shared/peers/<set>/ (saved as their official
test scripts save them). Prints, per set, the table and how many metrics each model wins against each
anchor; writes <out>/quality.md. Test sets are for final tables only: never pick weights with this.
"""

from __future__ import annotations

import argparse
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
from distilfuse.train.config import path_variables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="NAME[=WEIGHTS]")
    p.add_argument("--label", action="append", default=[], metavar="LABEL", help="row label per --model")
    p.add_argument("--sets", nargs="+", default=list(TEST_SETS), choices=list(TEST_SETS))
    p.add_argument("--out", type=Path, default=Path(path_variables()["RUNS"]) / "quality")
    args = p.parse_args(argv)
    data = Path(path_variables()["DATA"])
    peers = data.parent / "peers"
    labels = args.label + [m.split("=")[0] for m in args.model[len(args.label) :]]
    start = time.perf_counter()
    lines = [
        "Machine: "
        + ", ".join(f"{k} {v}" for k, v in machine_info(torch.device("cpu")).items())
        + f", load average {os.getloadavg()[0]:.2f}. Metrics: cdd profile, no stretch (`distilfuse fuse` defaults).",
        "",
    ]
    for set_label in args.sets:
        peer_folder = TEST_SETS[set_label].peers
        ir_dir, vi_dir = test_set_folders(data, set_label, args.out)
        pairs, problems = pair_by_stem(ir_dir, vi_dir)
        if problems:
            raise SystemExit("; ".join(problems))
        dirs, names = [], []
        for label, model in zip(labels, args.model, strict=True):
            name, _, weights = model.partition("=")
            fused = args.out / "fused" / set_label / label
            if not fused.is_dir():
                extra = ["--weights", weights] if weights else []
                cmd = [sys.executable, "-m", "distilfuse", "fuse", "--model", name, *extra]
                subprocess.run([*cmd, "--ir", str(ir_dir), "--vis", str(vi_dir), "--out", str(fused)], check=True)
            dirs.append(fused)
            names.append(label)
        anchors = sorted(d.name for d in (peers / peer_folder).iterdir() if d.is_dir())
        dirs += [peers / peer_folder / a for a in anchors]
        result = evaluate_folders(dirs, pairs, HEADLINE, labels=names + anchors, profile="cdd")
        lines += [f"### {set_label} ({len(pairs)} pairs)", "", method_table(result.means, result.counts, HEADLINE)]
        for label in names:
            counts = [
                f"{len(metrics_won(result.means, label, a, HEADLINE))}/8 vs {a}"
                for a in anchors + [n for n in names if n != label]
            ]
            lines.append(f"- {label} wins " + ", ".join(counts))
        lines.append("")
    lines.append(f"Wall time: {time.perf_counter() - start:.0f} s.")
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
