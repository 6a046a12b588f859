"""Benchmark registered fusion models by name and format the results as Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from distilfuse.bench.measure import (
    FlopCount,
    Latency,
    count_flops,
    machine_info,
    measure_latency,
    measure_peak_memory,
    parameter_count,
    size_kb,
)
from distilfuse.models import create, get_card, list_models

# Models whose FLOPs grow with (H*W)^2 (full spatial self-attention, e.g. HKDnet's position attention) are
# benched at a smaller size: at most this much memory for the HxW x HxW attention matrices.
QUADRATIC_MEMORY_BUDGET = 2 * 1024**3
ATTENTION_MATRICES_ALIVE = 3  # scores, softmax output and one temporary, float32
_PROBE_SIDE = 32  # quadratic probe: FLOPs at 32x32 and 64x64 (input) pixels


@dataclass(frozen=True)
class BenchResult:
    name: str
    role: str
    params: int
    size_kb: float
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    flops: FlopCount
    latency: Latency
    peak_memory_bytes: int
    note: str = ""


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' (width x height) -> (height, width)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x480") from None
    if width < 1 or height < 1:
        raise ValueError(f"size {text!r} must be positive")
    return height, width


def fusion_models() -> list[str]:
    """Every registered fusion model: teachers then students."""
    return list_models("teacher") + list_models("student")


def _rand_pair(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ir, vis = torch.rand(2, 1, 1, height, width, generator=generator)
    return ir.to(device), vis.to(device)


def quadratic_flops_coefficient(model: nn.Module, device: torch.device) -> float:
    """b in FLOPs(p) ~ a p + b p^2 over input pixels p, from counts at two small sizes (0 when linear)."""
    side = _PROBE_SIDE
    small = count_flops(model, *_rand_pair(side, side, device)).flops
    large = count_flops(model, *_rand_pair(2 * side, 2 * side, device)).flops
    pixels = side * side
    coefficient = (large - 4 * small) / (12 * pixels**2)
    return coefficient if coefficient * pixels**2 > 1e-3 * small else 0.0


def bench_input_size(model: nn.Module, height: int, width: int, device: torch.device) -> tuple[int, int, str]:
    """The input size to bench at for an output of ``height`` x ``width``, and a note when it differs.

    Super-resolution models get the low-resolution size that gives the requested output. Models with
    O((HW)^2) attention are shrunk (same aspect ratio, sides multiples of 8) to fit the memory budget.
    """
    scale = int(getattr(model, "scale", 1))
    h, w = height // scale, width // scale
    notes = [f"x{scale} SR: input {w}x{h} gives {w * scale}x{h * scale}"] if scale > 1 else []
    if quadratic_flops_coefficient(model, device) > 0:
        needed = ATTENTION_MATRICES_ALIVE * 4 * (h * w) ** 2
        if needed > QUADRATIC_MEMORY_BUDGET:
            shrink = (QUADRATIC_MEMORY_BUDGET / needed) ** 0.25  # memory ~ pixels^2 ~ side^4
            new_h, new_w = max(8, int(h * shrink) // 8 * 8), max(8, int(w * shrink) // 8 * 8)
            notes.append(
                f"O((HW)^2) attention needs ~{needed / 1024**3:,.0f} GiB at input {w}x{h}: benched at input "
                f"{new_w}x{new_h}"
            )
            h, w = new_h, new_w
    return h, w, "; ".join(notes)


def benchmark(
    name: str,
    height: int = 480,
    width: int = 640,
    device: str | torch.device = "cpu",
    repeats: int = 10,
    warmup: int = 3,
) -> BenchResult:
    """Measure one registered model (fresh initialisation: cost does not depend on the weights)."""
    device = torch.device(device)
    card = get_card(name)
    torch.manual_seed(0)
    model = create(name, weights=None).to(device).eval()
    h, w, note = bench_input_size(model, height, width, device)
    ir, vis = _rand_pair(h, w, device)
    with torch.inference_mode():
        out_hw = tuple(model(ir, vis).shape[-2:])
    return BenchResult(
        name=name,
        role=card.role,
        params=parameter_count(model),
        size_kb=size_kb(model),
        input_hw=(h, w),
        output_hw=out_hw,
        flops=count_flops(model, ir, vis),
        latency=measure_latency(model, ir, vis, warmup=warmup, repeats=repeats),
        peak_memory_bytes=measure_peak_memory(model, ir, vis),
        note=note,
    )


def machine_header(device: str | torch.device) -> str:
    info = machine_info(torch.device(device))
    return "; ".join(f"{key}: {value}" for key, value in info.items())


def write_results_json(path: str | Path, results: list[BenchResult], machine: dict[str, str]) -> Path:
    """The results and the machine they were measured on, as JSON (read back by `read_results_json`)."""
    from distilfuse.io.atomic import atomic_write

    document = {"machine": machine, "results": [asdict(r) for r in results]}
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(document, indent=1) + "\n"))


def read_results_json(path: str | Path) -> tuple[list[BenchResult], dict[str, str]]:
    """Results and machine from a file written by `write_results_json` (`distilfuse bench --out`)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
        results = [
            BenchResult(
                **{
                    **r,
                    "input_hw": tuple(r["input_hw"]),
                    "output_hw": tuple(r["output_hw"]),
                    "flops": FlopCount(**r["flops"]),
                    "latency": Latency(**r["latency"]),
                }
            )
            for r in document["results"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a 'distilfuse bench --out' results file ({type(exc).__name__}: {exc})") from None
    return results, document.get("machine", {})


def markdown_table(results: list[BenchResult]) -> str:
    columns = (
        "model",
        "role",
        "params",
        "size (KB)",
        "input (WxH)",
        "output (WxH)",
        "GFLOPs",
        "GMACs",
        "latency median (ms)",
        "peak memory (MB)",
        "note",
    )
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in results:
        cells = (
            r.name,
            r.role,
            f"{r.params:,}",
            f"{r.size_kb:,.2f}",
            f"{r.input_hw[1]}x{r.input_hw[0]}",
            f"{r.output_hw[1]}x{r.output_hw[0]}",
            f"{r.flops.flops / 1e9:,.3f}",
            f"{r.flops.macs / 1e9:,.3f}",
            f"{r.latency.median_ms:,.2f}",
            f"{r.peak_memory_bytes / 1024**2:,.1f}",
            r.note,
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
