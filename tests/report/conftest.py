"""Synthetic inputs of a report: source pairs, two methods' fused folders, a bench file and a training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distilfuse.bench import BenchResult, FlopCount, Latency
from distilfuse.bench.suite import write_results_json
from distilfuse.train.logs import write_csv

STEMS = ("a1", "b2", "c3")


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture()
def report_inputs(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(7)
    for stem in STEMS:
        ir = rng.integers(0, 200, (48, 64), dtype=np.uint8)
        vis = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        _save(tmp_path / "ir" / f"{stem}.png", ir)
        _save(tmp_path / "vis" / f"{stem}.png", vis)
        _save(tmp_path / "sharp" / f"{stem}.png", np.maximum(ir, vis[..., 1]))
        _save(tmp_path / "dim" / f"{stem}.png", (ir // 2).astype(np.uint8))
    results = [
        BenchResult(
            name=name,
            role="student",
            params=params,
            size_kb=params * 4 / 1024,
            input_hw=(480, 640),
            output_hw=(480, 640),
            flops=FlopCount(flops=2 * params * 640 * 480, matmul_flops=0),
            latency=Latency(median_ms=ms, min_ms=ms, max_ms=ms, repeats=3),
            peak_memory_bytes=0,
        )
        for name, params, ms in (("sharp", 113, 4.0), ("dim", 76721, 40.0))
    ]
    write_results_json(tmp_path / "bench.json", results, {"cpu": "test cpu", "cores": "2"})
    run = tmp_path / "runs" / "toy"
    write_csv(run / "log.csv", [{"epoch": e, "phase": "main", "lr": 1e-4, "loss": 1.0 / e} for e in (1, 2, 3)])
    write_csv(run / "steps.csv", [{"step": s, "epoch": 1, "loss": 2.0 / s, "l_int": 0.5 / s} for s in range(1, 9)])
    return {
        "ir": tmp_path / "ir",
        "vis": tmp_path / "vis",
        "sharp": tmp_path / "sharp",
        "dim": tmp_path / "dim",
        "bench": tmp_path / "bench.json",
        "run": run,
        "root": tmp_path,
    }
