"""Patch pool, sampler and dataset: determinism, shards, resume positions, flips shared with teacher tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from distilfuse.data.patches import (
    PatchDataset,
    PatchPool,
    ShardedBatchSampler,
    flip,
    list_pairs,
    load_pair,
    read_gray,
    split_pairs,
)
from distilfuse.io import luma, read_image, to_unit


def _pool(root: Path, seed: int = 0, per_image: int = 3) -> PatchPool:
    pairs = list_pairs([{"root": str(root)}])
    return PatchPool([load_pair(p) for p in pairs], pairs, patch=16, per_image=per_image, seed=seed)


def test_colour_visible_becomes_luma(synthetic_root: Path) -> None:
    path = synthetic_root / "vi" / "00.png"
    np.testing.assert_array_equal(read_gray(path), luma(to_unit(read_image(path))))
    assert read_gray(synthetic_root / "ir" / "00.png").ndim == 2


def test_split_file_selects_pairs(synthetic_root: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.txt"
    split.write_text("03\n# comment\n01\n")
    assert [p.stem for p in list_pairs([{"root": str(synthetic_root), "split": str(split)}])] == ["03", "01"]
    split.write_text("99\n")
    with pytest.raises(FileNotFoundError, match="not found"):
        list_pairs([{"root": str(synthetic_root), "split": str(split)}])


def test_pool_is_seeded(synthetic_root: Path) -> None:
    a, b, c = _pool(synthetic_root, 0), _pool(synthetic_root, 0), _pool(synthetic_root, 1)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert len(a) == 6 * 3 and not np.array_equal(a.rows, c.rows)


def test_held_out_pairs_are_disjoint(synthetic_root: Path) -> None:
    pairs = list_pairs([{"root": str(synthetic_root)}])
    train, val = split_pairs(pairs, 2, seed=0)
    assert len(val) == 2 and not {p.stem for p in train} & {p.stem for p in val}
    assert split_pairs(pairs, 2, seed=0) == (train, val)


def test_sampler_shards_and_resumes() -> None:
    full = ShardedBatchSampler(20, 3, seed=5, flips=True)
    full.set_epoch(2)
    batches = list(full)
    assert len(batches) == full.batches_per_epoch == 6
    full.set_epoch(2, start_batch=4)
    assert list(full) == batches[4:]  # resuming inside an epoch continues the same order
    full.set_epoch(3)
    assert list(full) != batches
    shards = [ShardedBatchSampler(20, 2, seed=5, rank=r, world=2) for r in range(2)]
    seen = [{i for b in s for i, _ in b} for s in shards]
    assert not seen[0] & seen[1]
    for s in shards:
        s.set_epoch(1)
    assert [{i for b in s for i, _ in b} for s in shards] == seen  # fixed shards across epochs


class _FakeCache:
    def get(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(index)
        return {"out": rng.random((1, 16, 16)).astype(np.float16), "feat": rng.random((3, 8, 8)).astype(np.float16)}


def test_flips_apply_to_inputs_and_cached_teacher_tensors(synthetic_root: Path) -> None:
    pool = _pool(synthetic_root)
    dataset = PatchDataset(pool)
    dataset.teacher_cache = _FakeCache()
    for code in range(4):
        item = dataset[(5, code)]
        ir, vis = pool.crop(5)
        np.testing.assert_array_equal(item["ir"][0].numpy(), flip(ir, code))
        np.testing.assert_array_equal(item["vis"][0].numpy(), flip(vis, code))
        for name, arr in _FakeCache().get(5).items():
            np.testing.assert_array_equal(item["teacher"][name].numpy(), flip(arr, code).astype(np.float32))
    assert np.array_equal(flip(np.arange(4).reshape(2, 2), 3), np.array([[3, 2], [1, 0]]))


def test_sampler_passes_interleave_whole_shuffles() -> None:
    one = ShardedBatchSampler(20, 3, seed=5, flips=True)
    three = ShardedBatchSampler(20, 3, seed=5, flips=True, passes=3)
    one.set_epoch(2)
    three.set_epoch(2)
    batches = list(three)
    assert len(batches) == three.batches_per_epoch == 3 * one.batches_per_epoch
    assert batches[0::3] == list(one)  # the first pass is the one-pass epoch
    for p in range(3):  # each pass visits 18 of the 20 patches, none twice
        seen = [i for b in batches[p::3] for i, _ in b]
        assert len(seen) == len(set(seen)) == 18
    assert batches[1::3] != batches[2::3]
    three.set_epoch(2, start_batch=4)
    assert list(three) == batches[4:]
    with pytest.raises(ValueError, match="at least one pass"):
        ShardedBatchSampler(20, 3, seed=5, passes=0)
