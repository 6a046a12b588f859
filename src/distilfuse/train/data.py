"""A run's data: the seeded patch pool of the training pairs, this process's batches of it, the validation crops."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from distilfuse.data.patches import (
    PatchDataset,
    PatchPool,
    ShardedBatchSampler,
    list_pairs,
    load_pair,
    split_pairs,
    validation_crops,
)
from distilfuse.train.config import ConfigError, path_variables
from distilfuse.train.distributed import DistContext


@dataclass
class TrainingData:
    """The pool of training patches, the dataset reading it (with an optional teacher cache), the sampler
    giving this process its share of every epoch, and fixed crops of the held-out pairs."""

    pool: PatchPool
    dataset: PatchDataset
    sampler: ShardedBatchSampler
    val_crops: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, dcfg: dict[str, Any], seed: int, scale: int, dist: DistContext) -> TrainingData:
        """From the config's `data` section; patch sizes must be multiples of the student's `scale`."""
        if dcfg["patch"] % scale or dcfg["val_patch"] % scale:
            raise ConfigError(f"data.patch and data.val_patch must be multiples of the scale {scale}")
        for i, source in enumerate(dcfg["sources"]):
            for key, exists in (("root", Path.is_dir), ("split", Path.is_file)):
                if source.get(key) and not exists(Path(source[key])):
                    raise ConfigError(
                        f"data.sources.{i}.{key}: {Path(source[key]).absolute()} does not exist (relative paths start "
                        f"from the working directory; ${{DATA}} is {path_variables()['DATA']}, set by DISTILFUSE_DATA)"
                    )
        train_pairs, val_pairs = split_pairs(list_pairs(dcfg["sources"]), int(dcfg["val_pairs"]), seed)
        pool = PatchPool(
            [load_pair(p) for p in train_pairs], train_pairs, dcfg["patch"], dcfg["patches_per_image"], seed
        )
        if dcfg["batch"] % dist.world:
            raise ConfigError(f"data.batch {dcfg['batch']} must be divisible by the {dist.world} processes")
        sampler = ShardedBatchSampler(
            len(pool), dcfg["batch"] // dist.world, seed, dist.rank, dist.world, flips=bool(dcfg["flips"])
        )
        crops = validation_crops(
            [load_pair(p) for p in val_pairs], dcfg["val_patch"], dcfg["val_patches_per_image"], seed, multiple=scale
        )
        return cls(pool, PatchDataset(pool), sampler, crops)

    def loader(self, workers: int, pin_memory: bool) -> Iterator[dict[str, Any]]:
        """The sampler's batches from where it stands (see `ShardedBatchSampler.set_epoch`)."""
        # A private generator: making the iterator must not draw from the global RNG (exact resume).
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=workers,
            pin_memory=pin_memory,
            generator=torch.Generator(),
            persistent_workers=False,
        )
        return iter(loader)


def to_device(batch: Any, device: torch.device) -> Any:
    """The batch with every tensor, nested dicts included, moved to `device`."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch
