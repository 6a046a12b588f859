"""Training patches cut from paired infrared/visible folders.

Images are read once (gray, float32 in [0,1]; colour visible images become BT.601 luma), and a
fixed pool of crops is drawn from them with the run's seed. Each epoch visits the pool in a
seeded order, optionally flipping every patch (the same flip for IR, VIS and any cached teacher
tensors of that patch), so a run is fully determined by its seed and its position in the epoch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from distilfuse.io import find_modality_dirs, luma, pair_by_stem, read_image, to_unit


@dataclass(frozen=True)
class ImagePair:
    stem: str
    ir: Path
    vis: Path


def read_split(path: str | Path) -> list[str]:
    """Stems listed one per line (blank lines and '#' comments ignored)."""
    lines = Path(path).read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]


def list_pairs(sources: Sequence[Mapping[str, Any]]) -> list[ImagePair]:
    """Pairs of every source `{root: DIR, split: FILE (optional)}`; a split keeps only its stems."""
    pairs: list[ImagePair] = []
    for source in sources:
        root = Path(source["root"])
        ir_dir, vis_dir = find_modality_dirs(root)
        found, problems = pair_by_stem(ir_dir, vis_dir)
        by_stem = {stem: ImagePair(stem, ir, vis) for stem, ir, vis in found}
        if source.get("split"):
            stems = read_split(source["split"])
            missing = [s for s in stems if s not in by_stem]
            if missing:
                raise FileNotFoundError(
                    f"{source['split']}: {len(missing)} listed pairs not found in {root} (first: {missing[0]})"
                )
            pairs += [by_stem[s] for s in stems]
        else:
            if not found:
                raise FileNotFoundError(f"{root}: no image pairs ({'; '.join(problems)})")
            pairs += list(by_stem.values())
    return pairs


def read_gray(path: Path) -> np.ndarray:
    """(H,W) float32 in [0,1]; gray stored as RGB keeps one channel, true colour becomes luma."""
    arr = read_image(path)
    unit = to_unit(arr)
    if unit.ndim == 3:
        unit = luma(unit, keep_grey=True)
    return np.ascontiguousarray(unit, dtype=np.float32)


def load_pair(pair: ImagePair) -> tuple[np.ndarray, np.ndarray]:
    ir, vis = read_gray(pair.ir), read_gray(pair.vis)
    if ir.shape != vis.shape:
        raise ValueError(f"{pair.ir} and {pair.vis}: sizes differ ({ir.shape} vs {vis.shape})")
    return ir, vis


def downsample(x: Tensor, scale: int) -> Tensor:
    """Low-resolution input for super-resolution training: antialiased bilinear, by an integer factor."""
    if scale == 1:
        return x
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"patch {h}x{w} is not divisible by the scale {scale}")
    return F.interpolate(x, size=(h // scale, w // scale), mode="bilinear", align_corners=False, antialias=True)


def flip(arr: np.ndarray, code: int) -> np.ndarray:
    """Flip the last two axes: bit 0 horizontal, bit 1 vertical (code 0 = none)."""
    if code & 1:
        arr = arr[..., ::-1]
    if code & 2:
        arr = arr[..., ::-1, :]
    return arr


class PatchPool:
    """Fixed crops (pair index, top, left) of size `patch` drawn once from the images with `seed`."""

    def __init__(
        self,
        images: Sequence[tuple[np.ndarray, np.ndarray]],
        pairs: Sequence[ImagePair],
        patch: int,
        per_image: int,
        seed: int,
    ) -> None:
        self.images = list(images)
        self.pairs = list(pairs)
        self.patch = patch
        rng = np.random.default_rng(seed)
        rows = []
        for k, (ir, _vis) in enumerate(self.images):
            h, w = ir.shape
            if patch > min(h, w):
                raise ValueError(f"{self.pairs[k].ir}: image {w}x{h} is smaller than the patch size {patch}")
            tops = rng.integers(0, h - patch + 1, per_image)
            lefts = rng.integers(0, w - patch + 1, per_image)
            rows += [(k, int(t), int(x)) for t, x in zip(tops, lefts, strict=True)]
        self.rows = np.array(rows, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.rows)

    def crop(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        k, top, left = self.rows[i]
        ir, vis = self.images[k]
        p = self.patch
        return ir[top : top + p, left : left + p], vis[top : top + p, left : left + p]

    def fingerprint(self) -> str:
        """Changes whenever the files, their contents' size/time, or the crops change."""
        h = hashlib.sha256()
        for pair in self.pairs:
            for path in (pair.ir, pair.vis):
                st = path.stat()
                h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns};".encode())
        h.update(f"patch={self.patch};".encode())
        h.update(self.rows.tobytes())
        return h.hexdigest()


class PatchDataset(Dataset):
    """Items are `(pool index, flip code)`; returns the flipped IR/VIS patches (1,P,P) and, when a
    teacher cache is attached, its tensors for that patch flipped the same way (key `teacher`).

    Flipping cached teacher outputs stands in for running the teacher on flipped inputs; it is exact
    only for flip-equivariant teachers (recipes whose teacher has stride-2 stages or asymmetric
    padding should set `data.flips: false` when that matters).
    """

    def __init__(self, pool: PatchPool) -> None:
        self.pool = pool
        self.teacher_cache: Any = None  # a TeacherCache (distilfuse.train.teacher_cache) or None

    def __len__(self) -> int:
        return len(self.pool)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        index, code = item
        ir, vis = self.pool.crop(index)
        sample: dict[str, Any] = {
            "index": index,
            "ir": torch.from_numpy(np.ascontiguousarray(flip(ir, code)))[None],
            "vis": torch.from_numpy(np.ascontiguousarray(flip(vis, code)))[None],
        }
        if self.teacher_cache is not None:
            sample["teacher"] = {
                name: torch.from_numpy(np.ascontiguousarray(flip(arr, code), dtype=np.float32))
                for name, arr in self.teacher_cache.get(index).items()
            }
        return sample


class ShardedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of `(index, flip)` for one rank, reproducible from (seed, epoch, position).

    The pool is split once into `world` fixed shards (so rank-local state such as a refresh memory
    always sees the same samples); each epoch shuffles a shard with a generator seeded by
    (seed, epoch, rank). `set_epoch(epoch, start_batch)` resumes inside an epoch.
    An epoch of `passes` > 1 is that many shuffles of the shard, interleaved batch by batch (batch b comes
    from pass b mod passes), so every `passes`-th batch, from any start, traverses the shard once.
    """

    def __init__(
        self, size: int, batch: int, seed: int, rank: int = 0, world: int = 1, flips: bool = True, passes: int = 1
    ):
        per_rank = size // world
        if batch < 1 or per_rank < batch:
            raise ValueError(f"{size} patches cannot fill one batch of {batch} per process ({world} processes)")
        order = np.random.default_rng([seed, 0x5EED]).permutation(size)
        self.shard = np.sort(order[rank::world][:per_rank])
        if passes < 1:
            raise ValueError(f"an epoch needs at least one pass over the patches, got {passes}")
        self.batch, self.seed, self.rank, self.flips, self.passes = batch, seed, rank, flips, passes
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.passes * (len(self.shard) // self.batch)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        orders, codes = [], []
        for _ in range(self.passes):
            orders.append(rng.permutation(self.shard))
            codes.append(rng.integers(0, 4, len(self.shard)) if self.flips else np.zeros(len(self.shard), np.int64))
        for b in range(self.start_batch, self.batches_per_epoch):
            p, sl = b % self.passes, slice((b // self.passes) * self.batch, (b // self.passes + 1) * self.batch)
            yield [(int(i), int(c)) for i, c in zip(orders[p][sl], codes[p][sl], strict=True)]

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch


def split_pairs(pairs: Sequence[ImagePair], held_out: int, seed: int) -> tuple[list[ImagePair], list[ImagePair]]:
    """(training pairs, held-out validation pairs), the held-out ones chosen with `seed`."""
    if held_out <= 0:
        return list(pairs), []
    if held_out >= len(pairs):
        raise ValueError(f"cannot hold out {held_out} of {len(pairs)} pairs for validation")
    chosen = set(np.random.default_rng([seed, 0x0A1]).choice(len(pairs), held_out, replace=False).tolist())
    return ([p for k, p in enumerate(pairs) if k not in chosen], [p for k, p in enumerate(pairs) if k in chosen])


def validation_crops(
    images: Sequence[tuple[np.ndarray, np.ndarray]], size: int, per_image: int, seed: int, multiple: int = 1
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed crops of at most `size` (cut to a multiple of `multiple`) from the held-out images."""
    rng = np.random.default_rng([seed, 0x7A1])
    crops = []
    for ir, vis in images:
        h, w = ir.shape
        ch, cw = min(size, h), min(size, w)
        ch, cw = ch - ch % multiple, cw - cw % multiple
        for _ in range(per_image):
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            crops.append((ir[top : top + ch, left : left + cw], vis[top : top + ch, left : left + cw]))
    return crops
