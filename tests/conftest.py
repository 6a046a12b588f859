"""Shared fixtures: where ../shared lives, and skipping cleanly when it is absent.

One CPU thread everywhere, set before torch loads and inherited by the commands and processes the tests
start: the tests' tensors are small, and with a thread per core a machine busy with other work makes
every parallel region wait for a descheduled thread (benchmarks/bench_threads.py; issue 11).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DISTILFUSE_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["DISTILFUSE_THREADS"]))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DISTILFUSE_DATA", PROJECT_ROOT.parent / "shared" / "data")).resolve().parent


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder (data, weights, spec, reference outputs); skips when it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED


def shared_file(relative: str) -> Path:
    """A file under ../shared, or a skip naming it."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One torch thread: tiny tensors run fastest so, and ports that match official float32 outputs
    bit for bit need the same conv kernels, which oneDNN picks per thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
