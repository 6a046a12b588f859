"""Reproduce the `mmdr-mini` weights shipped in src/distilfuse/weights/.

Plain unsupervised fusion loss (no teacher): L1 to max(ir, vis) + L1 between the Sobel gradient
magnitude of the output and the max of the sources', on random patches from the training split
only (RoadScene/train171.txt and LLVIP_train32). Usage:

    python scripts/train_default_weights.py [--data ../shared/data] [--steps 3000] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from kornia.filters import sobel
from safetensors.torch import save_file
from tqdm import trange

from distilfuse.io import luma, pair_by_stem, read_image, to_unit
from distilfuse.models import create


def load_training_pairs(data: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Gray [0,1] (ir, vis) arrays of the training split."""
    wanted = set((data / "RoadScene" / "train171.txt").read_text().split())
    pairs = [(a, b) for s, a, b in pair_by_stem(data / "RoadScene" / "ir", data / "RoadScene" / "vi")[0] if s in wanted]
    pairs += [(a, b) for _s, a, b in pair_by_stem(data / "LLVIP_train32" / "ir", data / "LLVIP_train32" / "vi")[0]]

    def gray(path: Path) -> np.ndarray:
        unit = to_unit(read_image(path))
        return unit if unit.ndim == 2 else luma(unit)

    return [(gray(a), gray(b)) for a, b in pairs]


def sample_batch(pairs, rng: np.random.Generator, batch: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    irs, viss = [], []
    for i in rng.integers(0, len(pairs), batch):
        ir, vis = pairs[i]
        y, x = rng.integers(0, ir.shape[0] - patch + 1), rng.integers(0, ir.shape[1] - patch + 1)
        irs.append(ir[y : y + patch, x : x + patch])
        viss.append(vis[y : y + patch, x : x + patch])
    return torch.from_numpy(np.stack(irs))[:, None], torch.from_numpy(np.stack(viss))[:, None]


def fusion_loss(out: torch.Tensor, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    intensity = F.l1_loss(out, torch.maximum(ir, vis))
    gradient = F.l1_loss(sobel(out), torch.maximum(sobel(ir), sobel(vis)))
    return intensity + gradient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("DISTILFUSE_DATA", "../shared/data")))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("src/distilfuse/weights/mmdr-mini.safetensors"))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    pairs = load_training_pairs(args.data)
    model = create("mmdr-mini", weights=None).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    start, bar = time.perf_counter(), trange(args.steps, desc="training mmdr-mini")
    for _ in bar:
        ir, vis = sample_batch(pairs, rng, args.batch, args.patch)
        loss = fusion_loss(model(ir, vis, raw=True), ir, vis)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(
        state,
        str(args.out),
        metadata={"recipe": "scripts/train_default_weights.py", "steps": str(args.steps)},
    )
    print(f"{len(pairs)} training pairs, {args.steps} steps in {time.perf_counter() - start:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
