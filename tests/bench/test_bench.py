"""distilfuse.bench: FLOPs against a hand count (attention included), size, latency, memory, CLI, zoo doc."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import distilfuse.bench as bench
from distilfuse.bench.suite import bench_input_size, quadratic_flops_coefficient
from distilfuse.cli import bench as bench_cli
from distilfuse.cli.main import UserError
from distilfuse.models import FusionModel, create
from distilfuse.models.blocks.restormer import TransformerBlock

DOCS = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_restormer_block_flops_match_a_hand_count() -> None:
    dim, heads, factor, h, w = 32, 4, 2.66, 9, 11
    pixels, hidden = h * w, int(dim * factor)
    conv_macs = pixels * (
        dim * 3 * dim  # qkv 1x1
        + 3 * dim * 9  # depthwise 3x3
        + dim * dim  # project_out
        + dim * 2 * hidden  # project_in
        + 2 * hidden * 9  # depthwise 3x3
        + hidden * dim  # project_out
    )
    head_dim = dim // heads
    attention_macs = 2 * heads * head_dim * head_dim * pixels  # q k^T and A v, (C/h x HW x C/h) per head
    count = bench.count_flops(TransformerBlock(dim, heads, factor), torch.randn(1, dim, h, w))
    assert count.flops == 2 * (conv_macs + attention_macs)
    assert count.matmul_flops == 2 * attention_macs
    assert count.macs == conv_macs + attention_macs


def test_size_is_float32_state_dict_in_kb() -> None:
    model = create("mmdr-mini", weights=None)
    assert bench.parameter_count(model) == 113
    assert bench.size_kb(model) == pytest.approx(113 * 4 / 1024)


def test_latency_is_the_median_of_the_timed_runs() -> None:
    calls = []
    model = nn.Identity()
    model.register_forward_hook(lambda *_: calls.append(1))
    latency = bench.measure_latency(model, torch.zeros(1), warmup=2, repeats=5)
    assert len(calls) == 7 and latency.repeats == 5
    assert 0 <= latency.min_ms <= latency.median_ms <= latency.max_ms


def test_time_runs_gives_wall_and_cpu_milliseconds_of_each_timed_call() -> None:
    from distilfuse.bench.measure import time_runs

    calls = []

    def busy() -> None:  # 5 ms of CPU time on this thread
        calls.append(1)
        end = time.process_time() + 0.005
        while time.process_time() < end:
            pass

    walls, cpus = time_runs(busy, warmup=1, repeats=3)
    assert len(calls) == 4 and len(walls) == len(cpus) == 3
    assert all(cpu >= 5 for cpu in cpus) and all(wall >= 5 for wall in walls)


class AllocatesDuringForward(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        big = torch.ones(64, 1024, 1024)  # 256 MiB, alive only inside the forward
        return x + big.sum()


def test_cpu_peak_memory_sees_allocations_inside_the_forward() -> None:
    peak = bench.measure_peak_memory(AllocatesDuringForward(), torch.zeros(1, 1, 4, 4))
    assert 250 * 1024**2 <= peak < 300 * 1024**2  # the 256 MiB tensor, give or take allocator reuse


class SpatialSelfAttention(FusionModel):
    """Full (HW x HW) attention, as HKDnet's position attention."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(2, 2, 1)

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        x = self.proj(torch.cat([ir, vis], 1)).flatten(2)  # (B, 2, HW)
        attn = torch.softmax(x.transpose(1, 2) @ x, dim=-1)  # (B, HW, HW)
        return (x @ attn).mean(1, keepdim=True).reshape(ir.shape)


class Upscaler(FusionModel):
    scale = 2

    def fuse_raw(self, ir: Tensor, vis: Tensor) -> Tensor:
        return nn.functional.interpolate(ir + vis, scale_factor=2)


def test_quadratic_attention_is_detected_and_benched_smaller() -> None:
    cpu = torch.device("cpu")
    assert quadratic_flops_coefficient(SpatialSelfAttention(), cpu) > 0
    h, w, note = bench_input_size(SpatialSelfAttention(), 480, 640, cpu)
    assert h * w < 480 * 640 and h % 8 == 0 and w % 8 == 0 and abs(w / h - 640 / 480) < 0.1
    assert "O((HW)^2)" in note and f"{w}x{h}" in note
    assert quadratic_flops_coefficient(create("mlkd-student", weights=None), cpu) == 0
    assert bench_input_size(create("mmdr-mini", weights=None), 480, 640, cpu) == (480, 640, "")


def test_super_resolution_models_get_the_low_resolution_input() -> None:
    h, w, note = bench_input_size(Upscaler(), 480, 640, torch.device("cpu"))
    assert (h, w) == (240, 320) and "x2 SR" in note and "640x480" in note


@pytest.fixture
def no_memory_child(monkeypatch) -> None:
    """CLI tests skip the peak-memory child process (a fresh interpreter per model; tested above)."""
    import distilfuse.bench.suite

    monkeypatch.setattr(distilfuse.bench.suite, "measure_peak_memory", lambda model, *inputs: 0)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    bench_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def test_cli_benches_one_model_and_prints_machine_and_table(capsys, no_memory_child) -> None:
    assert run_cli("mmdr-mini", "--size", "40x24", "--repeats", "2", "--warmup", "1") == 0
    out = capsys.readouterr().out
    assert "cores: " in out and f"torch: {torch.__version__}" in out and "torch threads: " in out
    row = next(line for line in out.splitlines() if line.startswith("| mmdr-mini |"))
    assert "| 113 |" in row and "| 40x24 | 40x24 |" in row


def test_cli_all_prints_one_row_per_fusion_model(capsys, monkeypatch, no_memory_child) -> None:
    monkeypatch.setattr(bench, "fusion_models", lambda: ["mmdr-mini", "mlkd-student"])
    assert run_cli("--all", "--size", "16x16", "--repeats", "1", "--warmup", "0") == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in table] == ["| model", "| mmdr-mini", "| mlkd-student"]


def test_cli_out_writes_json_that_reads_back_and_is_never_overwritten(tmp_path, capsys, no_memory_child) -> None:
    from distilfuse.bench.suite import read_results_json

    out = tmp_path / "bench.json"
    assert run_cli("mmdr-mini", "--size", "40x24", "--repeats", "2", "--warmup", "0", "--out", str(out)) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    (result,), machine = read_results_json(out)
    assert (result.name, result.params, result.output_hw, result.latency.repeats) == ("mmdr-mini", 113, (24, 40), 2)
    assert result.latency.min_ms <= result.latency.median_ms and result.flops.macs == result.flops.flops // 2
    assert machine["torch"] == torch.__version__
    with pytest.raises(UserError, match="already exists"):
        run_cli("mmdr-mini", "--out", str(out))
    out.write_text("{}")
    with pytest.raises(ValueError, match="not a 'distilfuse bench --out' results file"):
        read_results_json(out)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "MODEL or --all"),
        (("mmdr-mini", "--all"), "MODEL or --all"),
        (("mmdr-mini", "--size", "640"), "WIDTHxHEIGHT"),
        (("no-such-model",), "unknown fusion model"),
        (("mmdr-mini", "--repeats", "0"), "--repeats"),
        (("mmdr-mini", "--device", "meta"), "--device meta: meta devices are not supported"),
        (("mmdr-mini", "--device", "gpu0"), "--device gpu0: not a device name"),
    ],
)
def test_cli_errors_are_user_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UserError, match=message):
        run_cli(*argv)


def test_models_doc_is_generated_from_the_registry() -> None:
    from distilfuse.bench.zoo import zoo_markdown

    regenerate = "regenerate: distilfuse bench --zoo docs/models.md"
    assert DOCS.is_file() and DOCS.read_text().startswith(zoo_markdown()), regenerate


def test_zoo_update_keeps_the_notes_after_the_table(tmp_path, monkeypatch) -> None:
    from distilfuse.bench import zoo

    monkeypatch.setattr(zoo, "zoo_markdown", lambda: f"# table v2\n{zoo.END_MARKER}\n")
    doc = tmp_path / "models.md"
    doc.write_text(f"# table v1\n{zoo.END_MARKER}\n\n## Notes\nkept\n")
    zoo.update(doc)
    assert doc.read_text() == f"# table v2\n{zoo.END_MARKER}\n\n## Notes\nkept\n"


def test_cli_zoo_prints_the_table_or_updates_a_file(tmp_path, monkeypatch, capsys) -> None:
    from distilfuse.bench import zoo

    monkeypatch.setattr(zoo, "zoo_markdown", lambda: f"# table v2\n{zoo.END_MARKER}\n")
    assert run_cli("--zoo") == 0
    assert capsys.readouterr().out == f"# table v2\n{zoo.END_MARKER}\n"
    doc = tmp_path / "models.md"
    doc.write_text(f"# table v1\n{zoo.END_MARKER}\n\n## Notes\nkept\n")
    assert run_cli("--zoo", str(doc)) == 0
    assert doc.read_text() == f"# table v2\n{zoo.END_MARKER}\n\n## Notes\nkept\n"
    with pytest.raises(UserError, match="--zoo takes no MODEL"):
        run_cli("mmdr-mini", "--zoo")
    with pytest.raises(UserError, match="cannot write"):
        run_cli("--zoo", str(doc / "inside-a-file.md"))
