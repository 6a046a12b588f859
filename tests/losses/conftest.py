"""Tiny tensors run fastest on one thread (and the shared CPUs are oversubscribed): use one here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(single_thread: None) -> None:
    """Every test here runs single-threaded (see tests/conftest.py)."""
