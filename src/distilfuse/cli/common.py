"""Options and helpers shared by sub-commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from distilfuse.cli.main import UserError

# The model `fuse` and `demo` use unless told otherwise: the best shipped student (docs/results.md).
DEFAULT_MODEL = "rt-s"


def add_model_options(parser: argparse.ArgumentParser, default: str = DEFAULT_MODEL) -> None:
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


def parse_device(text: str):
    """A usable torch device from a --device value (cpu, cuda, cuda:N, mps), or a UserError saying why not."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise UserError(f"--device {text}: not a device name; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {text}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"--device {text}: MPS (Apple GPU) is not available on this machine")
        return device
    raise UserError(f"--device {text}: {device.type} devices are not supported; use cpu, cuda, cuda:N or mps")


def check_finite(model, source: object) -> None:
    """Refuse weights holding NaN or infinity (they would fuse every image to black)."""
    import torch

    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise UserError(f"{source}: weights hold non-finite values (NaN or infinity) in {bad[0]}{more}")


def load_model(args: argparse.Namespace):
    """The model named by --model/--weights on --device, or a UserError saying why not."""
    from distilfuse.models import WeightsError, create

    device = parse_device(args.device)
    try:
        model = create(args.model, weights=args.weights if args.weights is not None else "default")
    except (KeyError, WeightsError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    check_finite(model, args.weights if args.weights is not None else f"{args.model} shipped weights")
    return model.to(device).eval()
