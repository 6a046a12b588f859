"""Which candidate does the `select` target take? Per-pixel shares of each teacher and of the student, and the
gap between the student's output and the target, on crops of held-out training pairs (never test pairs).

    python benchmarks/select_shares.py --student rt-s=runs/ablation/rt/no-KD/best.safetensors

Teachers: the official MMDRFuse teacher and SHIP (../shared/weights). Crops: the last 8 pairs of RoadScene's
train171.txt (the engine's validation pairs come from the same split), centre 192x192 (the smallest is 224 high).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from distilfuse.data.patches import read_gray
from distilfuse.distill.select import local_quality
from distilfuse.models import create
from distilfuse.train.config import path_variables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", required=True, metavar="NAME=WEIGHTS")
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--crop", type=int, default=192)
    args = p.parse_args(argv)
    data = Path(path_variables()["DATA"])
    shared = data.parent
    root = data / "RoadScene"
    stems = [s.strip() for s in (root / "train171.txt").read_text().split() if s.strip()][-args.pairs :]
    irs, viss = [], []
    for stem in stems:
        ir, vis = (torch.from_numpy(read_gray(next((root / sub).glob(f"{stem}.*")))) for sub in ("ir", "vi"))
        h, w = ir.shape
        if min(h, w) < args.crop:
            raise SystemExit(f"{stem}: {w}x{h} is smaller than --crop {args.crop}")
        c = args.crop
        top, left = (h - c) // 2, (w - c) // 2
        irs.append(ir[..., top : top + c, left : left + c])
        viss.append(vis[..., top : top + c, left : left + c])
    ir, vis = torch.stack(irs)[:, None].float(), torch.stack(viss)[:, None].float()
    name, _, weights = args.student.partition("=")
    models = {
        "mmdr-teacher": create("mmdr-teacher", weights=shared / "weights/mmdrfuse/teacher.model"),
        "ship": create("ship", weights=shared / "weights/ship/SHIP_model.pth"),
        name: create(name, weights=weights or "default"),
    }
    with torch.no_grad():
        outs = [m.eval()(ir, vis) for m in models.values()]
        candidates = torch.cat(outs, dim=1)
        scores = local_quality(candidates, ir, vis)
    best = scores.argmax(dim=1)
    print(f"{len(stems)} crops of {ir.shape[-1]}x{ir.shape[-2]} (RoadScene train171, last {len(stems)} pairs)")
    print("| candidate | share of pixels where it is the target | mean score |")
    print("|---|---:|---:|")
    for k, label in enumerate(models):
        share = (best == k).float().mean().item()
        print(f"| {label} | {share:.1%} | {scores[:, k].mean().item():.4f} |")
    target = candidates.gather(1, best[:, None])
    print(f"mean |student - target| = {(outs[-1] - target).abs().mean().item():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
