"""Efficiency measurements of one model on given inputs: size, FLOPs, latency, peak memory, machine.

Conventions (also printed by ``distilfuse bench``):

* FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` at the aten level: convolutions,
  (batched) matrix products - so channel/spatial attention (q k^T, A v) is included - and transposed
  convolutions; one multiply-accumulate = 2 FLOPs, MACs = FLOPs / 2. Element-wise work (norms,
  activations, softmax, padding, interpolation) is not counted, as in thop/fvcore-style counts.
* Size is the float32 state dict (parameters and buffers), 1 KB = 1024 bytes.
* Latency is the median over ``repeats`` timed forwards after ``warmup`` untimed ones, under
  ``torch.inference_mode``, synchronising CUDA around each run.
* Peak memory on CUDA is ``max_memory_allocated`` during one forward minus the memory allocated before
  it. On CPU it is the kernel's RSS high-water mark during one forward minus the RSS before it, in a fresh
  child process (so that memory cached by earlier work does not hide the peak), after a warm-up forward on a
  32x32 crop that pays one-time initialisation. On Linux the mark (VmHWM)
  is reset just before the forward (``/proc/self/clear_refs``); elsewhere ``ru_maxrss`` is used, which
  can include earlier peaks of the child.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from distilfuse.allocator import allocator_in_use


@dataclass(frozen=True)
class FlopCount:
    flops: int
    matmul_flops: int  # the part from mm/bmm (attention and linear layers)

    @property
    def macs(self) -> int:
        return self.flops // 2


@dataclass(frozen=True)
class Latency:
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def size_kb(model: nn.Module) -> float:
    """Bytes of the state dict stored as float32, in KB (1024 bytes)."""
    return sum(t.numel() for t in model.state_dict().values()) * 4 / 1024


_MATMUL_OPS = ("aten.mm", "aten.bmm", "aten.addmm", "aten.baddbmm")


def count_flops(model: nn.Module, *inputs: Tensor) -> FlopCount:
    """FLOPs of one forward ``model(*inputs)`` (see the module docstring for what is counted)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(*inputs)
    per_op = counter.get_flop_counts().get("Global", {})
    matmul = sum(count for op, count in per_op.items() if str(op).split(".default")[0] in _MATMUL_OPS)
    return FlopCount(int(counter.get_total_flops()), int(matmul))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_runs(
    run: Callable[[], object], *, warmup: int = 1, repeats: int = 10, device: torch.device | None = None
) -> tuple[list[float], list[float]]:
    """Milliseconds of wall-clock and of process CPU time (all threads added up) of each of ``repeats``
    calls of ``run`` after ``warmup`` untimed ones, synchronising CUDA around each timed call."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    device = device or torch.device("cpu")
    for _ in range(warmup):
        run()
    walls, cpus = [], []
    for _ in range(repeats):
        _synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        _synchronize(device)
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - wall) * 1000)
    return walls, cpus


def measure_latency(model: nn.Module, *inputs: Tensor, warmup: int = 3, repeats: int = 10) -> Latency:
    """Wall-clock latency of ``model(*inputs)`` on the inputs' device."""
    with torch.inference_mode():
        times, _ = time_runs(lambda: model(*inputs), warmup=warmup, repeats=repeats, device=inputs[0].device)
    return Latency(statistics.median(times), min(times), max(times), repeats)


def _proc_status_bytes(field: str) -> int | None:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in bytes; None without procfs."""
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _proc_status_bytes("VmHWM") is not None


def _max_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


_WARMUP_SIDE = 32


def _peak_rss_child(job_path: str) -> None:
    """Child process body: load (model, inputs), print the peak RSS of one forward minus the RSS before it."""
    job = torch.load(job_path, weights_only=False)  # written by measure_peak_memory just before
    torch.set_num_threads(job["threads"])
    model, inputs = job["model"], job["inputs"]
    with torch.inference_mode():  # one-time initialisation (kernels, thread pools) is not the model's memory
        model(*(t[..., :_WARMUP_SIDE, :_WARMUP_SIDE] for t in inputs))
    if _reset_peak_rss():
        before = _proc_status_bytes("VmRSS")
        with torch.inference_mode():
            model(*inputs)
        peak = _proc_status_bytes("VmHWM")
    else:  # no resettable high-water mark: ru_maxrss, which may include earlier peaks (an over-estimate)
        before = _max_rss_bytes()
        with torch.inference_mode():
            model(*inputs)
        peak = _max_rss_bytes()
    print(max(peak - before, 0))


_CHILD_CODE = "import sys; from distilfuse.bench.measure import _peak_rss_child; _peak_rss_child(sys.argv[1])"


def measure_peak_memory(model: nn.Module, *inputs: Tensor) -> int:
    """Bytes of extra memory at the peak of one forward (CUDA allocator, or CPU RSS in a child process)."""
    device = inputs[0].device
    if device.type == "cuda":
        with torch.inference_mode():
            _synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            model(*inputs)
            _synchronize(device)
            return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        raise ValueError(f"peak memory is measured on cpu or cuda, not {device.type}")
    # A fresh interpreter: its allocator holds no memory freed by earlier work in this process.
    with tempfile.TemporaryDirectory() as tmp:
        job_path = Path(tmp) / "job.pt"
        torch.save({"model": model, "inputs": inputs, "threads": torch.get_num_threads()}, job_path)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        child = subprocess.run(
            [sys.executable, "-c", _CHILD_CODE, str(job_path)], capture_output=True, text=True, env=env
        )
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        raise RuntimeError(f"peak-memory child process failed: {last}")
    return int(child.stdout.split()[-1])


def cpu_model_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, str]:
    """What the numbers were measured on."""
    info = {
        "cpu": cpu_model_name(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "allocator": allocator_in_use(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = str(torch.version.cuda)
        info["tf32 matmul"] = str(torch.backends.cuda.matmul.allow_tf32)
    return info
