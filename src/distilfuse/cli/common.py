"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from distilfuse.cli.main import UserError


def add_model_options(parser: argparse.ArgumentParser, default: str = "mmdr-mini") -> None:
    parser.add_argument(
        "--model",
        default=default,
        help=f"registered model name (default: {default}); see 'distilfuse models'",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights file (safetensors or torch checkpoint); default: the weights shipped with the package",
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")


def load_model(args: argparse.Namespace):
    """The model named by --model/--weights on --device, or a UserError saying why not."""
    import torch

    from distilfuse.models import WeightsError, create

    try:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"--device {args.device}: CUDA is not available on this machine")
        model = create(args.model, weights=args.weights if args.weights is not None else "default")
    except (KeyError, WeightsError, RuntimeError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    return model.to(device).eval()
