"""ONNX export: dynamic batch/height/width, onnxruntime parity at another size, atomic write, clear errors."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from scipy.ndimage import maximum_filter
from torch import Tensor

from distilfuse.cli import export as export_cli
from distilfuse.cli.main import UserError
from distilfuse.export import EXAMPLE_SHAPE, ExportError, export_onnx
from distilfuse.models import FusionModel, create, list_models
from distilfuse.ops.stretch import min_max_stretch_batch

onnxruntime = pytest.importorskip("onnxruntime")


def run_in_onnxruntime(path, ir: Tensor, vis: Tensor) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["fused"], {"ir": ir.numpy(), "vis": vis.numpy()})[0]


def check_export(name: str, tmp_path, weights="default") -> None:
    torch.manual_seed(0)
    model = create(name, weights=weights)
    report = export_onnx(model, tmp_path / f"{name}.onnx")
    assert report.exporter == "dynamo" and report.max_abs_error <= 1e-4
    for shape in [(3, 1, 41, 57), (1, 1, 30, 22)]:  # batch, odd sizes and H > W: all unlike the export size
        assert shape[2:] != EXAMPLE_SHAPE[2:]
        ir, vis = torch.rand(shape), torch.rand(shape)
        with torch.no_grad():
            expected = model(ir, vis).numpy()
        got = run_in_onnxruntime(report.path, ir, vis)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == [f"{name}.onnx"], "one self-contained file, no partial files"


def test_mmdr_mini_with_shipped_weights(tmp_path) -> None:
    check_export("mmdr-mini", tmp_path)


def test_an_opset_the_dynamo_exporter_cannot_write_falls_back_to_torchscript(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    model = create("mmdr-mini")
    report = export_onnx(model, tmp_path / "mini17.onnx", opset=17)  # dynamo writes 18 and cannot convert Pad
    assert report.exporter == "torchscript"
    assert [o.version for o in onnx.load(str(report.path)).opset_import if o.domain in ("", "ai.onnx")] == [17]
    ir, vis = torch.rand(2, 1, 33, 21), torch.rand(2, 1, 33, 21)
    with torch.no_grad():
        assert np.abs(run_in_onnxruntime(report.path, ir, vis) - model(ir, vis).numpy()).max() <= 1e-4


class PadsToFour(FusionModel):
    """Only runs on multiples of 4 (pixel unshuffle): the padding must live inside the exported graph."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.PixelUnshuffle(4), torch.nn.Conv2d(32, 16, 3, padding=1), torch.nn.PixelShuffle(4)
        )

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        return torch.sigmoid(self.body(torch.cat([ir, vis], dim=1)))


def test_models_with_a_size_multiple_pad_inside_the_graph(tmp_path) -> None:
    torch.manual_seed(0)
    model = PadsToFour().eval()
    report = export_onnx(model, tmp_path / "pads.onnx")
    ir, vis = torch.rand(2, 1, 41, 57), torch.rand(2, 1, 41, 57)
    with torch.no_grad():
        expected = model(ir, vis).numpy()
    assert np.abs(run_in_onnxruntime(report.path, ir, vis) - expected).max() <= 1e-4


# Real models take 10-40 s each to export on a small CPU.
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models("teacher") + list_models("student") if n != "mmdr-mini"])
def test_registered_model(name: str, tmp_path) -> None:
    check_export(name, tmp_path, weights=None)


class LeavesTheGraph(FusionModel):
    """Goes through SciPy: no exporter can capture it; tracing bakes in the example size."""

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        return torch.from_numpy(maximum_filter(np.maximum(ir.numpy(), vis.numpy()), size=3))


def test_a_model_that_cannot_be_exported_gives_one_clear_line_and_no_file(tmp_path) -> None:
    target = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="LeavesTheGraph cannot be exported to ONNX") as info:
        export_onnx(LeavesTheGraph(), target)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    export_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", *argv])
    return args.func(args)


def test_cli_exports_with_a_weights_file(tmp_path, capsys) -> None:
    weights = tmp_path / "mini.pt"
    torch.save(create("mmdr-mini", weights=None).state_dict(), weights)
    onnx_path = tmp_path / "out" / "mini.onnx"
    onnx_path.parent.mkdir()
    assert run_cli("mmdr-mini", "--weights", str(weights), "--onnx", str(onnx_path), "--opset", "18") == 0
    assert onnx_path.is_file()
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {onnx_path} (mmdr-mini, dynamo exporter); onnxruntime matches PyTorch at 45x37")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("no-such-model", "--onnx", "x.onnx"), "unknown model"),
        (("mlkd-student", "--onnx", "x.onnx"), "ships no weights"),
        (("mmdr-mini", "--onnx", "no/such/folder/x.onnx"), "does not exist"),
    ],
)
def test_cli_errors_are_user_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UserError, match=message):
        run_cli(*argv)


def test_cli_without_the_onnx_extra_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnx" else find_spec(name))
    with pytest.raises(
        UserError, match=r"needs the onnx extra \(onnx not installed\): pip install 'distilfuse\[onnx\]'"
    ):
        run_cli("mmdr-mini", "--onnx", str(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()


def test_cli_refuses_non_finite_weights(tmp_path) -> None:
    from safetensors.torch import save_file

    state = create("mmdr-mini").state_dict()
    next(iter(state.values())).view(-1)[-1] = float("inf")
    save_file(state, str(tmp_path / "inf.safetensors"))
    with pytest.raises(UserError, match="inf.safetensors: weights hold non-finite values"):
        run_cli("mmdr-mini", "--weights", str(tmp_path / "inf.safetensors"), "--onnx", str(tmp_path / "m.onnx"))


def test_weights_read_stretched_export_the_stretched_output(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    model = create("mmdr-mini")
    model.output_range = "stretch"  # as weights saved by a `train.loss_space: stretch` run declare
    report = export_onnx(model, tmp_path / "stretched.onnx")
    ir, vis = torch.rand(2, 1, 33, 21), torch.rand(2, 1, 33, 21)
    fused = run_in_onnxruntime(report.path, ir, vis)
    with torch.no_grad():
        expected = min_max_stretch_batch(model(ir, vis, raw=True)).numpy()
    assert np.abs(fused - expected).max() <= 1e-4
    assert [(float(f.min()), float(f.max())) for f in fused] == [(0.0, pytest.approx(1.0))] * 2
