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
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from distilfuse.metrics import CDD_FAST_METRICS, DEFAULT_METRICS, compute, compute_batch  # noqa: E402


def synthetic_triplet(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer-valued 0..255 IR (ramp + blob), VIS (texture + noise) and their max as the fused image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    ir = 40 + 120 * x + 60 * y + 80 * np.exp(-((x - 0.6) ** 2 + (y - 0.4) ** 2) / 0.01)
    vis = 110 + 60 * np.sin(40 * x) * np.cos(30 * y) + rng.normal(0, 12, (height, width))
    ir, vis = (np.clip(np.rint(a), 0, 255) for a in (ir, vis))
    return np.maximum(ir, vis), ir, vis


class Timing(NamedTuple):
    wall_ms: float
    cpu_ms: float

    def __str__(self) -> str:
        return f"wall {self.wall_ms:8.1f} ms  cpu {self.cpu_ms:8.1f} ms"


def timed(run, repeat: int) -> Timing:
    """Medians of `repeat` runs after one warm-up run (imports, caches)."""
    run()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return Timing(1e3 * statistics.median(walls), 1e3 * statistics.median(cpus))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def thread_count() -> str:
    task_dir = Path("/proc/self/task")
    return str(len(list(task_dir.iterdir()))) if task_dir.is_dir() else "?"


def machine_info() -> str:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    thread_vars = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    env = ", ".join(f"{k}={os.environ[k]}" for k in thread_vars if k in os.environ)
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}\n"
        f"load average at start (1, 5, 15 min): {load}\n"
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"torch {torch.__version__} (torch intra-op threads {torch.get_num_threads()})\n"
        f"threads in this process: {thread_count()}; the NumPy metric path runs on the calling thread "
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
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    triplet = synthetic_triplet(args.height, args.width)
    batch = [torch.from_numpy(np.repeat(a[None, None], args.batch, axis=0) / 255.0).to(device) for a in triplet]

    def run() -> None:
        compute_batch(*batch, metrics=CDD_FAST_METRICS)
        if device.type == "cuda":
            torch.cuda.synchronize()

    timing = timed(run, args.repeat)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"\nBatched torch path on {name}: {args.batch} x {args.width}x{args.height}, cdd set, per batch: "
        f"{timing}; wall {timing.wall_ms / args.batch:.2f} ms per triplet"
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
    print(machine_info())
    if args.device:
        bench_batched(args)
        return
    bench_numpy(args)
    bench_memory(args)


if __name__ == "__main__":
    main()
