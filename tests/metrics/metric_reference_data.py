"""Reference triplets of the metric specification: read from ../shared, or rebuilt by its recipe."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image
from tests.conftest import SHARED

REFERENCE_DIR = SHARED / "spec" / "metric_reference"
# SHA-256 of the raw uint8 arrays, from metric_reference/README.md.
DIGESTS = {
    "ir_256x256": "1e1bf19242b1cc17d3d9b49d019c378c4f75fe63a2fda9639ca376d83fa7f223",
    "vis_256x256": "831cde201e7811d6fa100fa5a8bef3b7bf8a7e36118f01b4558b1512571a6cf1",
    "fused_max_256x256": "10288337535a6409f26cbc479bc7df105337991808f3f05525a6f23032b40b1e",
    "ir_640x480": "8eda6bb50ffa6984cc707042f362eaf06384e18d130300968fdfe70ea9bba85a",
    "vis_640x480": "6f9794f75d74a29c4137273a39a0c96a48fd49f5f7fd5fcd76659b0d6d5c61dd",
    "fused_max_640x480": "2a17d6219815d9cf4816da962a20390b6f1f3bf365de05c1401b8f918e0f1e41",
}


def generate_triplet(height: int, width: int) -> dict[str, np.ndarray]:
    """The README's recipe: IR ramp with a bright disc, noisy VIS checkerboard, F = max(IR, VIS)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    ir = 30 + 60 * x / (width - 1) + 60 * y / (height - 1)
    ir[(y - 0.5 * height) ** 2 + (x - 0.6 * width) ** 2 <= (0.2 * min(height, width)) ** 2] = 220
    vis = 70 + 100 * ((np.floor(y / 32) + np.floor(x / 32)) % 2)
    vis = vis + np.random.default_rng(0).normal(0.0, 12.0, size=(height, width))
    ir_u8, vis_u8 = (np.clip(np.rint(a), 0, 255).astype(np.uint8) for a in (ir, vis))
    return {"ir": ir_u8, "vis": vis_u8, "fused_max": np.maximum(ir_u8, vis_u8)}


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def load_triplet(tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F, A, B) as float64 for '256x256' or '640x480': stored PNGs if present, else regenerated."""
    width, height = (int(v) for v in tag.split("x"))
    stored = {role: REFERENCE_DIR / f"{role}_{tag}.png" for role in ("fused_max", "ir", "vis")}
    if all(p.is_file() for p in stored.values()):
        arrays = {role: np.asarray(Image.open(p)) for role, p in stored.items()}
    else:
        arrays = generate_triplet(height, width)
    for role, array in arrays.items():
        assert digest(array) == DIGESTS[f"{role}_{tag}"], f"{role}_{tag}: pixels differ from the specification"
    return tuple(arrays[role].astype(np.float64) for role in ("fused_max", "ir", "vis"))


def image_set(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reference image set by its name in reference_values.json (derived sets built here)."""
    if name == "crop64":
        return tuple(a[96:160, 96:160] for a in load_triplet("256x256"))
    if name == "256x256_fused_plus50":
        fused, ir, vis = load_triplet("256x256")
        return np.minimum(fused + 50, 255), ir, vis
    return load_triplet(name)


def _reference_cases() -> list[dict]:
    path = REFERENCE_DIR / "reference_values.json"
    return json.loads(path.read_text())["cases"] if path.is_file() else []


def reference_params() -> list:
    """One pytest param per (case, image set)."""
    return [
        pytest.param(case["id"], set_name, id=f"{case['id']}-{set_name}")
        for case in _reference_cases()
        for set_name in case["values"]
    ]
