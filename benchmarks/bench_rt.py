"""Latency of the real-time students against mmdr-mini and mmdr-teacher, side by side in one run.

    python benchmarks/bench_rt.py                 # 640x480, 20 rounds per runtime (about 10 min on 2 cores)
    python benchmarks/bench_rt.py --repeats 30 --models rt-s mmdr-teacher

Every model fuses one random 640x480 pair (float32, batch 1, CPU) in each runtime: PyTorch with 1 and 2
threads, NCHW and channels-last, and onnxruntime (CPU provider, 1 and 2 intra-op threads) when installed.
The rt models are timed in their deploy form (``reparameterize``: plain 3x3 convs) and as built by
``create``, "(multi-branch)": the form ``distilfuse fuse``/``bench`` run, which folds the branches in every
forward. The ONNX export of either form is the same graph of plain convs. Weights are random: the cost
does not depend on them.

Within a runtime, the models are timed round-robin (one forward of each per round, after ``--warmup``
untimed rounds), so load changes on a shared machine hit every model alike; the table gives the median
wall-clock time over the rounds and the speed-up against mmdr-teacher's median in the same runtime. On a
loaded machine the wall clock is inflated by waiting for a core: the single-thread process CPU time,
printed apart, estimates the wall clock on an idle core.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from distilfuse.bench import machine_info, parse_size  # noqa: E402
from distilfuse.bench.measure import time_runs  # noqa: E402
from distilfuse.export import export_onnx  # noqa: E402
from distilfuse.models import create  # noqa: E402
from distilfuse.models.blocks.reparam import reparameterize  # noqa: E402

REFERENCE = "mmdr-teacher"
DEFAULT_MODELS = ("rt-s", "rt-m", "rt-l", "mmdr-mini", REFERENCE)
MULTI_BRANCH = " (multi-branch)"


def build_models(names: list[str]) -> dict[str, torch.nn.Module]:
    """Label -> model in eval mode: rt models folded, and as created (multi-branch)."""
    models = {}
    for name in names:
        torch.manual_seed(0)
        model = create(name, weights=None)
        if name.startswith("rt-"):
            models[name] = reparameterize(copy.deepcopy(model))
            models[name + MULTI_BRANCH] = model
        else:
            models[name] = model
    return models


def export_all(models: dict[str, torch.nn.Module], folder: Path) -> dict[str, Path]:
    """Label -> ONNX file, for every model but the multi-branch forms (their export is the folded graph)."""
    files = {}
    for label, model in tqdm(models.items(), desc="ONNX export", unit="model", leave=False):
        if not label.endswith(MULTI_BRANCH):
            files[label] = export_onnx(model, folder / f"{label}.onnx").path
    return files


Runner = Callable[[], object]


def random_pair(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ir, vis = torch.rand(2, 1, 1, height, width, generator=torch.Generator().manual_seed(0))
    return ir, vis


def torch_runners(models: dict[str, torch.nn.Module], layout: torch.memory_format, height: int, width: int):
    """Label -> one forward with weights and inputs in ``layout`` (the models are converted in place)."""
    ir, vis = (t.contiguous(memory_format=layout) for t in random_pair(height, width))
    runners: dict[str, Runner] = {}
    for label, model in models.items():
        model.to(memory_format=layout)
        runners[label] = lambda m=model: m(ir, vis)
    return runners


def onnx_runners(files: dict[str, Path], ir: torch.Tensor, vis: torch.Tensor, threads: int) -> dict[str, Runner]:
    import onnxruntime

    feed = {"ir": ir.numpy(), "vis": vis.numpy()}
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    runners = {}
    for label, path in files.items():
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        runners[label] = lambda s=session: s.run(["fused"], feed)
    return runners


def round_robin(runners: dict[str, Runner], warmup: int, repeats: int, desc: str) -> dict[str, tuple[float, float]]:
    """Label -> (median wall ms, median process CPU ms) over `repeats` rounds of one call of each runner."""
    walls: dict[str, list[float]] = {label: [] for label in runners}
    cpus: dict[str, list[float]] = {label: [] for label in runners}
    for round_index in tqdm(range(warmup + repeats), desc=desc, unit="round", leave=False):
        for label, run in runners.items():
            wall, cpu = time_runs(run, warmup=0, repeats=1)
            if round_index >= warmup:
                walls[label] += wall
                cpus[label] += cpu
    return {label: (statistics.median(walls[label]), statistics.median(cpus[label])) for label in runners}


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help=f"default: {DEFAULT_MODELS}")
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds per runtime (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds per runtime (default 3)")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip onnxruntime")
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        raise SystemExit("--repeats must be >= 1 and --warmup >= 0")
    height, width = parse_size(args.size)
    if REFERENCE not in args.models:
        args.models.append(REFERENCE)
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
        args.onnx = False

    info = ", ".join(f"{key} {value}" for key, value in machine_info(torch.device("cpu")).items())
    print(f"machine: {info}")
    if onnxruntime is not None:
        print(f"onnxruntime {onnxruntime.__version__}")
    print(f"load average (1, 5, 15 min) at start: {load_average()}")
    print(f"{width}x{height}, float32, batch 1; {args.warmup} warm-up + {args.repeats} timed rounds per runtime")

    models = build_models(args.models)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_files = export_all(models, Path(tmp)) if args.onnx else {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for channels_last in (False, True):
                runtime = f"torch {threads}t {'channels-last' if channels_last else 'NCHW'}"
                layout = torch.channels_last if channels_last else torch.contiguous_format
                with torch.inference_mode():
                    runners = torch_runners(models, layout, height, width)
                    results[runtime] = round_robin(runners, args.warmup, args.repeats, runtime)
            if onnx_files:
                runtime = f"onnxruntime {threads}t"
                runners = onnx_runners(onnx_files, *random_pair(height, width), threads)
                results[runtime] = round_robin(runners, args.warmup, args.repeats, runtime)
    print(f"load average (1, 5, 15 min) at end: {load_average()}\n")

    runtimes = list(results)
    print("median wall-clock ms (speed-up vs mmdr-teacher in the same runtime)\n")
    print("| model | " + " | ".join(runtimes) + " |")
    print("|---|" + "---|" * len(runtimes))
    for label in models:
        cells = []
        for runtime in runtimes:
            if label not in results[runtime]:
                cells.append("-")
                continue
            wall = results[runtime][label][0]
            cells.append(f"{wall:.2f} ({results[runtime][REFERENCE][0] / wall:.0f}x)")
        print(f"| {label} | " + " | ".join(cells) + " |")
    single = [r for r in runtimes if " 1t" in r]
    print("\nmedian process CPU ms of the 1-thread runtimes (estimate of the wall clock on an idle core)\n")
    print("| model | " + " | ".join(single) + " |")
    print("|---|" + "---|" * len(single))
    for label in models:
        cells = [f"{results[r][label][1]:.2f}" if label in results[r] else "-" for r in single]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
