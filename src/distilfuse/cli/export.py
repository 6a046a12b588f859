"""`distilfuse export`: a fusion model to ONNX with dynamic batch, height and width."""

from __future__ import annotations

import argparse
from pathlib import Path

from distilfuse.cli.common import check_finite
from distilfuse.cli.main import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a model to ONNX",
        description="Export a fusion model to ONNX: inputs 'ir' and 'vis' (B,1,H,W) float32 in [0,1], "
        "output 'fused' in [0,1], with dynamic batch, height and width. The file is checked in onnxruntime "
        "at another size against PyTorch (tolerance 1e-4) before it is written.",
    )
    p.add_argument("model", help="registered model name (see 'distilfuse models')")
    p.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights file (safetensors or torch checkpoint); default: the weights shipped with the package",
    )
    p.add_argument("--onnx", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: 18)")
    p.set_defaults(func=run)


ONNX_PACKAGES = ("onnx", "onnxscript")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from distilfuse.export import DEFAULT_OPSET, ExportError, export_onnx
    from distilfuse.models import WeightsError, create, get_card

    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"ONNX export needs the onnx extra ({', '.join(missing)} not installed): pip install 'distilfuse[onnx]'"
        )

    try:
        card = get_card(args.model)
        if card.role == "discriminator":
            raise UserError(f"{args.model} is a discriminator, not a fusion model")
        model = create(args.model, weights=args.weights if args.weights is not None else "default")
    except (KeyError, WeightsError) as exc:
        raise UserError(str(exc).strip("'\"")) from None
    check_finite(model, args.weights if args.weights is not None else f"{args.model} shipped weights")
    if not args.onnx.parent.is_dir():
        raise UserError(f"--onnx {args.onnx}: folder {args.onnx.parent} does not exist")
    try:
        report = export_onnx(model, args.onnx, opset=args.opset or DEFAULT_OPSET)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    checked = "x".join(str(d) for d in report.checked_shape[2:][::-1])
    check = (
        f"onnxruntime matches PyTorch at {checked} (max abs error {report.max_abs_error:.1e})"
        if report.max_abs_error is not None
        else "not checked: onnxruntime is not installed"
    )
    print(f"wrote {report.path} ({args.model}, {report.exporter} exporter); {check}")
    return 0
