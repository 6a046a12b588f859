"""Speed and memory of distilfuse.metrics (medians of repeated runs, with machine information).

    python benchmarks/bench_metrics.py                      # NumPy path: cdd set, FMI, peak memory
    python benchmarks/bench_metrics.py --device cuda --batch 100   # batched torch path

Targets (issue #3): the cdd set <= 75 ms per 640x480 triplet on CPU, each FMI variant <= 1 s at
640x480, peak memory <= 1 GB for a 1280x1024 triplet.

Every timing is printed as the median wall-clock time and the median CPU time of the process
(time.process_time, which adds up all its threads). On a loaded machine the wall clock is inflated
by waiting for a core; the CPU time of a single-threaded computation is then the better estimate
of its wall-clock time on an idle machine. CPU time above wall time means several threads worked.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from distilfuse.bench.measure import machine_info, time_runs  # noqa: E402
from distilfuse.metrics import CDD_FAST_METRICS, DEFAULT_METRICS, compute, compute_batch  # noqa: E402


def synthetic_triplet(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer-valued 0..255 IR (ramp + blob), VIS (texture + noise) and their max as the fused image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    ir = 40 + 120 * x + 60 * y + 80 * np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.01)
    vis = 110 + 60 * np.sin(40 * x) * np.cos(30 * y) + rng.normal(0, 12, (height, width))
    ir, vis = (np.clip(np.rint(a), 0, 255) for a in (ir, vis))
    return np.maximum(ir, vis), ir, vis


def timed(run, repeat: int) -> str:
    """Medians of `repeat` runs after one warm-up run (imports, caches), wall clock and process CPU time."""
    walls, cpus = time_runs(run, warmup=1, repeats=repeat)
    return f"wall {statistics.median(walls):8.1f} ms  cpu {statistics.median(cpus):8.1f} ms"


def machine_lines(device: torch.device) -> str:
    """`distilfuse bench`'s machine information, plus what the metric timings also depend on."""
    info = ", ".join(f"{key} {value}" for key, value in machine_info(device).items())
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    thread_vars = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    env = ", ".join(f"{k}={os.environ[k]}" for k in thread_vars if k in os.environ)
    task_dir = Path("/proc/self/task")
    threads = len(list(task_dir.iterdir())) if task_dir.is_dir() else "?"
    return (
        f"machine: {info}\n"
        f"load average at start (1, 5, 15 min): {load}\n"
        f"numpy {np.__version__}, scipy {scipy.__version__}\n"
        f"threads in this process: {threads}; the NumPy metric path runs on the calling thread "
        f"(no pool; its BLAS products stay below OpenBLAS's threading threshold)" + (f"; {env}" if env else "")
    )


def bench_numpy(args: argparse.Namespace) -> None:
    height, width = args.height, args.width
    triplet = synthetic_triplet(height, width)
    print(f"\nNumPy path, one {width}x{height} triplet, medians of {args.repeat} runs (cdd profile)")
    total = timed(lambda: compute(*triplet, metrics=CDD_FAST_METRICS), args.repeat)
    print(f"  cdd set ({', '.join(CDD_FAST_METRICS)}): {total}  [target <= 75 ms at 640x480]")
    for name in CDD_FAST_METRICS:
        alone = timed(lambda n=name: compute(*triplet, metrics=[n]), args.repeat)
        print(f"    {name:<9}      alone  {alone}")
    others = [m for m in DEFAULT_METRICS if m not in CDD_FAST_METRICS and (args.fmi or not m.startswith("FMI"))]
    fmi_repeat = max(1, args.repeat // 3)
    for name in others:
        for profile in ("cdd", "tang"):
            repeat = fmi_repeat if name.startswith("FMI") else args.repeat
            timing = timed(lambda n=name, p=profile: compute(*triplet, metrics=[n], profile=p), repeat)
            note = f"  [target <= 1000 ms; median of {repeat}]" if name.startswith("FMI") else ""
            print(f"    {name:<9} {profile:<4} alone  {timing}{note}")


def bench_memory(args: argparse.Namespace) -> None:
    triplet = synthetic_triplet(1024, 1280, seed=1)
    metrics = [m for m in DEFAULT_METRICS if args.fmi or not m.startswith("FMI")]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    compute(*triplet, metrics=metrics)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"\nPeak memory, one 1280x1024 triplet, {len(metrics)} metrics (cdd): traced allocations "
        f"{peak / 2**20:.0f} MiB, process peak RSS {rss_kib / 1024:.0f} MiB (includes torch/scipy and the "
        f"earlier runs; peak before this run {rss_before / 1024:.0f} MiB)  [target <= 1024 MiB]"
    )


def bench_batched(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    triplet = synthetic_triplet(args.height, args.width)
    batch = [torch.from_numpy(np.repeat(a[None, None], args.batch, axis=0) / 255.0).to(device) for a in triplet]

    walls, cpus = time_runs(
        lambda: compute_batch(*batch, metrics=CDD_FAST_METRICS), warmup=1, repeats=args.repeat, device=device
    )
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\nBatched torch path on {name}: {args.batch} x {args.width}x{args.height}, cdd set, per batch: "
        f"wall {wall:8.1f} ms  cpu {cpu:8.1f} ms; wall {wall / args.batch:.2f} ms per triplet"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="640x480", help="WxH of the timed triplet (default 640x480)")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per measurement (medians reported)")
    parser.add_argument("--device", default=None, help="time the batched torch path on this device (cpu, cuda)")
    parser.add_argument("--batch", type=int, default=100, help="batch size for --device (default 100)")
    parser.add_argument("--no-fmi", dest="fmi", action="store_false", help="skip the slow FMI timings")
    args = parser.parse_args()
    args.width, args.height = (int(v) for v in args.size.lower().split("x"))
    device = torch.device(args.device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    print(machine_lines(device))
    if args.device:
        bench_batched(args)
        return
    bench_numpy(args)
    bench_memory(args)


if __name__ == "__main__":
    main()
