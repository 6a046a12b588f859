"""A run's data built from its config alone: the pool, each process's share of it, validation crops, loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from distilfuse.train.data import TrainingData, to_device
from distilfuse.train.distributed import DistContext
from tests.train.conftest import tiny_config


def test_two_processes_split_the_pool_and_batch(tmp_path: Path, synthetic_root: Path) -> None:
    dcfg = tiny_config(tmp_path, synthetic_root)["data"]  # 6 pairs, 1 held out: 5 x 4 patches, batch 4
    ranks = [TrainingData.build(dcfg, 3, 1, DistContext(rank=r, world=2)) for r in range(2)]
    assert all(len(d.pool) == 20 and len(d.val_crops) == 1 for d in ranks)
    seen = [[index for batch in d.sampler for index, _ in batch] for d in ranks]
    assert len(seen[0]) == len(seen[1]) == 10 and not set(seen[0]) & set(seen[1])
    batch = next(ranks[1].loader(workers=0, pin_memory=False))
    assert batch["ir"].shape == batch["vis"].shape == (2, 1, 24, 24)  # half of data.batch per process
    assert batch["index"].tolist() == seen[1][:2]


@pytest.mark.parametrize(
    ("change", "scale", "message"),
    [
        ({"batch": 3}, 1, "data.batch 3 must be divisible by the 2 processes"),
        ({"patch": 25}, 2, "data.patch and data.val_patch must be multiples of the scale 2"),
    ],
)
def test_config_errors_name_the_key(
    change: dict, scale: int, message: str, tmp_path: Path, synthetic_root: Path
) -> None:
    dcfg = {**tiny_config(tmp_path, synthetic_root)["data"], **change}
    with pytest.raises(ValueError, match=message):
        TrainingData.build(dcfg, 3, scale, DistContext(rank=0, world=2))


def test_to_device_moves_nested_tensors() -> None:
    batch = {"index": torch.tensor([3]), "ir": torch.zeros(1), "teacher": {"out": torch.zeros(2)}, "name": "a"}
    moved = to_device(batch, torch.device("meta"))
    assert moved["index"].is_meta and moved["ir"].is_meta and moved["teacher"]["out"].is_meta
    assert moved["name"] == "a" and not batch["ir"].is_meta
