"""Frozen-teacher outputs and tapped features, computed once per patch pool and kept on disk.

A cache directory holds one `.npy` per tensor (`out` = the teacher's raw output, then one per
tapped feature), shape (N, C, H, W), stored as float16 (or float32) and read back as memmaps.
It is keyed by a hash of the teacher (name and a hash of its loaded weights), the tapped names,
the input mode (high- or low-resolution and the scale), the storage dtype and the pool
fingerprint (files, sizes, times, crops), so any change gives a new cache. The teacher runs on
the unflipped patches; the dataset flips cached tensors together with the inputs. A TeacherEnsemble gets
one cache per member (shared with recipes that use that member alone), read back as one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from distilfuse.data.patches import PatchPool, downsample
from distilfuse.models import FeatureTaps
from distilfuse.models.teachers.ensemble import TeacherEnsemble
from distilfuse.train.distributed import DistContext

FORMAT_VERSION = 1
OUTPUT_KEY = "out"


def state_hash(model: nn.Module) -> str:
    """sha256 over the model's parameters and buffers (names, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def teacher_inputs(ir: torch.Tensor, vis: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What the teacher sees: the patches, or their low-resolution versions (scale > 1)."""
    return downsample(ir, scale), downsample(vis, scale)


class TeacherCache:
    """Read access to one cache directory: `get(i)` -> {name: (C,H,W) array} for pool index i."""

    def __init__(self, directory: Path, names: list[str]) -> None:
        self.directory = Path(directory)
        self.names = list(names)
        self._arrays: dict[str, np.ndarray] | None = None

    def _open(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {n: np.load(self.directory / f"{n}.npy", mmap_mode="r") for n in self.names}
        return self._arrays

    def __getstate__(self) -> dict:
        # Dataloader workers reopen the memmaps themselves.
        return {"directory": self.directory, "names": self.names, "_arrays": None}

    def get(self, index: int) -> dict[str, np.ndarray]:
        return {n: a[index] for n, a in self._open().items()}

    @staticmethod
    def key(teacher_name: str, teacher: nn.Module, features: list[str], scale: int, dtype: str, pool: PatchPool) -> str:
        description = {
            "version": FORMAT_VERSION,
            "teacher": teacher_name,
            "weights": state_hash(teacher),
            "features": sorted(features),
            "input_scale": scale,
            "dtype": dtype,
            "pool": pool.fingerprint(),
        }
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]

    @classmethod
    def build_or_load(
        cls,
        root: str | Path,
        teacher_name: str,
        teacher: nn.Module,
        features: list[str],
        pool: PatchPool,
        scale: int = 1,
        dtype: str = "float16",
        batch: int = 16,
        device: torch.device | str = "cpu",
        progress: bool = True,
    ) -> TeacherCache:
        """Open the cache for these settings, computing it first if it does not exist yet."""
        names = [OUTPUT_KEY, *[f for f in features if f != OUTPUT_KEY]]
        directory = Path(root) / cls.key(teacher_name, teacher, features, scale, dtype, pool)
        if (directory / "meta.json").is_file():
            return cls(directory, names)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            cls._compute(tmp, names, teacher, pool, scale, np.dtype(dtype), batch, torch.device(device), progress)
            meta = {
                "teacher": teacher_name,
                "features": names,
                "input_scale": scale,
                "dtype": dtype,
                "patches": len(pool),
                "patch": pool.patch,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            try:
                os.replace(tmp, directory)
            except OSError:
                if not (directory / "meta.json").is_file():  # lost a race only if the other one finished
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(directory, names)

    @staticmethod
    def _compute(
        directory: Path,
        names: list[str],
        teacher: nn.Module,
        pool: PatchPool,
        scale: int,
        dtype: np.dtype,
        batch: int,
        device: torch.device,
        progress: bool,
    ) -> None:
        arrays: dict[str, np.ndarray] = {}
        limit = np.finfo(dtype).max
        teacher.eval()
        starts = range(0, len(pool), batch)
        for start in tqdm(starts, desc="teacher cache", unit="batch", disable=not progress, leave=False):
            idx = range(start, min(start + batch, len(pool)))
            crops = [pool.crop(i) for i in idx]
            ir = torch.from_numpy(np.stack([c[0] for c in crops]))[:, None].to(device)
            vis = torch.from_numpy(np.stack([c[1] for c in crops]))[:, None].to(device)
            ir, vis = teacher_inputs(ir, vis, scale)
            with torch.no_grad(), FeatureTaps(teacher, [n for n in names if n != OUTPUT_KEY]) as taps:
                out = teacher(ir, vis, raw=True)
            tensors = {OUTPUT_KEY: out, **taps.features}
            for name in names:
                t = tensors[name].float().cpu().numpy()
                if np.abs(t).max() > limit:
                    raise OverflowError(f"teacher tensor {name!r} exceeds the {dtype} range; set cache.dtype: float32")
                if name not in arrays:
                    arrays[name] = np.lib.format.open_memmap(
                        directory / f"{name}.npy", mode="w+", dtype=dtype, shape=(len(pool), *t.shape[1:])
                    )
                arrays[name][idx.start : idx.stop] = t
        for arr in arrays.values():
            arr.flush()


class EnsembleCache:
    """The members' caches read as one: `out` stacks their outputs on channels (the ensemble's order), and
    member features are named "<member>.<feature>", as the TeacherEnsemble's taps are."""

    def __init__(self, members: Mapping[str, TeacherCache]) -> None:
        self.members = dict(members)

    def get(self, index: int) -> dict[str, np.ndarray]:
        parts = {key: cache.get(index) for key, cache in self.members.items()}
        tensors = {f"{key}.{n}": a for key, part in parts.items() for n, a in part.items() if n != OUTPUT_KEY}
        return {OUTPUT_KEY: np.concatenate([part[OUTPUT_KEY] for part in parts.values()], axis=0), **tensors}


def open_cache(
    root: str | Path, teacher_name: str | None, teacher: nn.Module, features: list[str], pool: PatchPool, **options
) -> TeacherCache | EnsembleCache:
    """`TeacherCache.build_or_load`, per member for a TeacherEnsemble (its members keyed by model name)."""
    if not isinstance(teacher, TeacherEnsemble):
        return TeacherCache.build_or_load(root, teacher_name, teacher, features, pool, **options)
    members = {}
    for key, member in teacher.members.items():
        own = [f.removeprefix(f"{key}.") for f in features if f.startswith(f"{key}.")]
        members[key] = TeacherCache.build_or_load(root, key, member, own, pool, **options)
    return EnsembleCache(members)


def build_teacher_caches(
    needed: Mapping[int, set[str]],
    root: str | Path,
    teacher_name: str | None,
    teacher: nn.Module,
    pool: PatchPool,
    dist: DistContext,
    dtype: str = "float16",
    batch: int = 16,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[int, TeacherCache | EnsembleCache]:
    """One cache per teacher input scale, holding the features `needed` at that scale: rank 0 builds
    the missing ones while the other processes wait, then they open what it built."""
    caches: dict[int, TeacherCache | EnsembleCache] = {}
    for order in range(2):
        if (order == 0) == dist.is_main:
            for scale, features in needed.items():
                caches[scale] = open_cache(
                    root,
                    teacher_name,
                    teacher,
                    sorted(features),
                    pool,
                    scale=scale,
                    dtype=dtype,
                    batch=batch,
                    device=device,
                    progress=progress,
                )
        dist.barrier()
    return caches
