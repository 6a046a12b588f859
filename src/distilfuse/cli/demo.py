"""`distilfuse demo`: fuse a procedurally generated night scene with the default model."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from distilfuse.cli.common import add_model_options, load_model
from distilfuse.cli.main import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="fuse a built-in demo pair and write the images",
        description="Generate a demo pair in code (warm figures and a vehicle in a cool infrared scene; lit "
        "buildings in low light in the visible image), fuse it, and write IR, visible, fused and a "
        "side-by-side PNG.",
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from distilfuse.data.synthetic import demo_scene
    from distilfuse.inference import fuse_images
    from distilfuse.io import ImageWriteError, from_unit, write_image

    ir, vis = demo_scene()
    model = load_model(args)
    fused = from_unit(fuse_images(model, ir, vis, device=args.device).image)
    gap = np.full((ir.shape[0], 8, 3), 255, dtype=np.uint8)
    side = np.concatenate([np.repeat(ir[..., None], 3, axis=2), gap, vis, gap, fused], axis=1)
    try:
        paths = [
            write_image(args.out / name, img)
            for name, img in (("ir.png", ir), ("vis.png", vis), ("fused.png", fused), ("side_by_side.png", side))
        ]
    except ImageWriteError as exc:
        raise UserError(str(exc)) from None
    print(f"demo fused with {args.model}: {paths[2]}")
    print(f"side by side (IR | visible | fused): {paths[3]}")
    return 0
