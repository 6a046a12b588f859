"""Shared fixtures: where ../shared lives, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

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
