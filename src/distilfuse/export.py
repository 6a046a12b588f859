"""ONNX export of fusion models with dynamic batch, height and width, checked in onnxruntime.

The graph takes ``ir`` and ``vis`` (B,1,H,W) float32 in [0,1] and returns ``fused`` (B,1,H*scale,W*scale) in
[0,1], exactly ``model(ir, vis)``, or each sample's raw output min-max stretched for weights that declare the
output range "stretch" (``models.registry.OUTPUT_RANGE_KEY``), as ``distilfuse fuse`` reads them. The dynamo
exporter (``torch.onnx.export(dynamo=True)`` with ``dynamic_shapes``) is tried first; if it fails, the
TorchScript exporter with ``dynamic_axes``. A traced graph can silently bake in sizes, so every export is run
in onnxruntime at a size other than the export size (odd, and not a multiple of the model's ``size_multiple``)
and compared with PyTorch before the file is moved into place (atomically, in the target folder).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from distilfuse.models.registry import output_range_of
from distilfuse.ops.stretch import min_max_stretch_batch

DEFAULT_OPSET = 18
TOLERANCE = 1e-4
EXAMPLE_SHAPE = (2, 1, 64, 96)  # batch 2 and H != W, so that no dimension is specialised at export
CHECK_SHAPE = (1, 1, 37, 45)


class ExportError(RuntimeError):
    """The model cannot be exported, or the exported graph does not reproduce it."""


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _summary(exc: BaseException) -> str:
    """One line: the first line of the innermost cause (the exporters wrap the real error in banners)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in _ANSI_ESCAPE.sub("", str(exc)).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"


@dataclass(frozen=True)
class ExportReport:
    path: Path
    exporter: str  # "dynamo" or "torchscript"
    max_abs_error: float | None  # vs PyTorch at CHECK_SHAPE; None when onnxruntime is not installed
    checked_shape: tuple[int, ...]


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporters' warnings and log lines (deprecations, absent torchvision); errors raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)  # onnxscript logs (and survives) failed opset conversions
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export_dynamo(model: nn.Module, example: tuple[Tensor, Tensor], path: Path, opset: int) -> None:
    from torch.export import Dim

    # Reflect padding needs sides >= the size multiple; min 2 also avoids 0/1 specialisation.
    side_min = max(2, getattr(model, "size_multiple", 1))
    batch, height, width = Dim("batch", min=1), Dim("height", min=side_min), Dim("width", min=side_min)
    shapes = {name: {0: batch, 2: height, 3: width} for name in ("ir", "vis")}
    torch.onnx.export(
        model,
        example,
        str(path),
        dynamo=True,
        dynamic_shapes=shapes,
        input_names=["ir", "vis"],
        output_names=["fused"],
        opset_version=opset,
        external_data=False,
        verbose=False,
    )


def _export_torchscript(model: nn.Module, example: tuple[Tensor, Tensor], path: Path, opset: int) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        model,
        example,
        str(path),
        dynamo=False,
        dynamic_axes={"ir": axes, "vis": axes, "fused": axes},
        input_names=["ir", "vis"],
        output_names=["fused"],
        opset_version=opset,
    )


def _opset_of(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def _check_in_onnxruntime(model: nn.Module, path: Path) -> float | None:
    """Max |onnxruntime - PyTorch| at CHECK_SHAPE, or None when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    generator = torch.Generator().manual_seed(1)
    ir, vis = torch.rand(2, *CHECK_SHAPE, generator=generator)
    with torch.inference_mode():
        expected = model(ir, vis).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    try:
        (got,) = session.run(["fused"], {"ir": ir.numpy(), "vis": vis.numpy()})
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ExportError(f"the exported model fails at size {CHECK_SHAPE}: {_summary(exc)}") from None
    if got.shape != expected.shape:
        raise ExportError(f"the exported model gives shape {got.shape} instead of {expected.shape}")
    return float(abs(got - expected).max())


class StretchedOutput(nn.Module):
    """A model whose fused image is its raw output min-max stretched per sample (weights trained that way)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.size_multiple = getattr(model, "size_multiple", 1)

    def forward(self, ir: Tensor, vis: Tensor) -> Tensor:
        return min_max_stretch_batch(self.model(ir, vis, raw=True))


def export_onnx(model: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET) -> ExportReport:
    """Export ``model`` (a FusionModel; moved to the CPU) to ONNX at ``path``; raises ExportError when it cannot."""
    path = Path(path)
    model = model.to("cpu").eval()
    if output_range_of(model) == "stretch":
        model = StretchedOutput(model).eval()
    example = tuple(torch.rand(2, *EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(0)))
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    failures = []
    try:
        for exporter, export in (("dynamo", _export_dynamo), ("torchscript", _export_torchscript)):
            try:
                with _quiet_exporter():
                    export(model, example, partial, opset)
            except Exception as exc:  # exporters raise many types; the next exporter may succeed
                failures.append(f"{exporter}: {_summary(exc)}")
                continue
            if _opset_of(partial) != opset:  # the dynamo exporter falls back to its own opset silently
                failures.append(f"{exporter}: wrote opset {_opset_of(partial)}, not {opset}")
                continue
            try:
                error = _check_in_onnxruntime(model, partial)
            except ExportError as exc:
                failures.append(f"{exporter}: {exc}")
                continue
            if error is not None and error > TOLERANCE:
                failures.append(f"{exporter}: onnxruntime differs from PyTorch by {error:.1e} > {TOLERANCE}")
                continue
            os.replace(partial, path)
            return ExportReport(path, exporter, error, CHECK_SHAPE)
    finally:
        partial.unlink(missing_ok=True)
    raise ExportError(f"{type(model).__name__} cannot be exported to ONNX ({'; '.join(failures)})")
