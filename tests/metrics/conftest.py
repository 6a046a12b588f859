"""Fixtures for the metric tests: reference values (../shared) and the reference triplets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metric_reference_data import REFERENCE_DIR, load_triplet


@pytest.fixture(scope="session")
def reference_values() -> dict:
    path = REFERENCE_DIR / "reference_values.json"
    if not path.is_file():
        pytest.skip(f"{path} not available (the metric reference values live in ../shared)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def triplet_256() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return load_triplet("256x256")
