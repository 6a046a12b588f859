"""CPU threads for the command line: defaults that do not collapse when the machine is busy.

PyTorch starts one intra-op thread per core, and its OpenMP workers spin while they wait for each other.
When other processes keep the cores busy, every parallel region then waits for a descheduled thread, and
the spinning threads take time from the ones doing work. `benchmarks/bench_threads.py` measures the effect.
The command line therefore (1) makes waiting OpenMP threads sleep (`OMP_WAIT_POLICY=PASSIVE`, set before
torch loads, unless the user set it), and (2) uses only the cores that other processes leave idle (by the
load average and the processes runnable at start), at least one. `--threads N`, or the environment
variable DISTILFUSE_THREADS, sets the count instead.
"""

from __future__ import annotations

import os
from pathlib import Path

WAIT_POLICY = "OMP_WAIT_POLICY"
THREADS_ENV = "DISTILFUSE_THREADS"
LOADAVG = Path("/proc/loadavg")  # Linux: 1, 5, 15-minute averages, runnable/total processes, last pid


class ThreadsError(ValueError):
    """DISTILFUSE_THREADS is not a thread count."""


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads() -> int:
    """DISTILFUSE_THREADS when set, else one thread per core that other processes leave idle (at least one)."""
    fixed = os.environ.get(THREADS_ENV, "")
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ThreadsError(f"{THREADS_ENV}={fixed!r}: give a whole number of threads, 1 or more")
        return int(fixed)
    cores = usable_cores()
    return max(1, min(cores, round(cores - busy_cores())))


def busy_cores() -> float:
    """How many cores other processes keep busy: the larger of the 1-minute load average and the number of
    runnable processes right now besides this one (the load average lags a load that has just started)."""
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return 0.0
    if LOADAVG.is_file():
        runnable = LOADAVG.read_text().split()[3].split("/")[0]
        busy = max(busy, int(runnable) - 1)
    return busy


def set_passive_wait() -> None:
    """Idle OpenMP threads sleep instead of spinning; takes effect only before torch is first imported."""
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to `threads` (None: `default_threads()`); returns the number set."""
    import torch

    count = default_threads() if threads is None else threads
    torch.set_num_threads(count)
    return count
