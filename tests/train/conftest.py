"""Fixtures for the training tests: synthetic paired folders made in code, tiny configs, shared cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from distilfuse.data.synthetic import demo_scene
from distilfuse.io import write_image
from distilfuse.models import list_models
from distilfuse.train.config import load_config


def write_pairs(root: Path, count: int = 6, size: tuple[int, int] = (72, 96)) -> Path:
    """`count` synthetic pairs (gray IR, colour VIS) under root/ir and root/vi."""
    for k in range(count):
        ir, vis = demo_scene(*size, seed=k)
        write_image(root / "ir" / f"{k:02d}.png", ir)
        write_image(root / "vi" / f"{k:02d}.png", vis)
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("synthetic"))


def require_models(*names: str) -> None:
    missing = [n for n in names if n not in list_models()]
    if missing:
        pytest.skip(f"model(s) {', '.join(missing)} not registered yet")


def tiny_config(tmp_path: Path, data_root: Path, **sections: Any) -> dict[str, Any]:
    """A plain mmdr-mini run on the synthetic pairs (a few steps), with `sections` merged in."""
    raw: dict[str, Any] = {
        "seed": 3,
        "student": {"name": "mmdr-mini"},
        "losses": [{"type": "max_intensity", "weight": 1.0}, {"type": "max_gradient", "weight": 10.0}],
        "optimizer": {"type": "adam", "lr": 1e-2},
        "data": {
            "sources": [{"root": str(data_root)}],
            "patch": 24,
            "patches_per_image": 4,
            "batch": 4,
            "val_pairs": 1,
            "val_patch": 32,
            "val_patches_per_image": 1,
        },
        "cache": {"dir": str(tmp_path / "cache")},
        "train": {"epochs": 2, "log_every": 1, "progress": False},
        "validation": {"metrics": ["SSIM", "Qabf"], "best_metric": "Qabf"},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path)


def state_of(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "last.safetensors"))


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs (max |diff| {float((a[k] - b[k]).abs().max()):.3g})"


MMDR_DISTILL: dict[str, Any] = {
    "teacher": {"name": "mmdr-teacher", "weights": None},
    "distillers": [{"type": "mmdr", "weight": 5.0, "pairs": [["feat1", "feat11"]]}],
}

RESUME_CASES = {
    "plain": {"scheduler": {"type": "cosine", "min_lr": 1e-3}},  # the schedule must resume too
    "refresh+distill+cache": {
        **MMDR_DISTILL,
        "strategy": {"name": "dynamic_refresh"},
        "losses": [{"type": "max_intensity", "weight": 0.5}, {"type": "perceptual", "weight": 1.0, "network": "vgg19"}],
        "data": {"flips": False, "patch": 32},
    },  # the pyramid needs 32 px
    "adversarial": {
        "strategy": {"name": "adversarial", "discriminator": "scakd-discriminator", "d_steps": 2},
        "data": {"patches_per_image": 8},
    },
}
