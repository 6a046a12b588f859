"""Choosing the checkpoint to resume, alone: last.pt, else the one it replaced; refusals name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distilfuse.train.checkpoint import CHECKPOINT_FORMAT, load_resume_checkpoint, save_checkpoint

CFG = {"seed": 1, "data": {"patch": 24}, "train": {"epochs": 2}}


def write(folder: Path, **fields: Any) -> None:
    state = {"format": CHECKPOINT_FORMAT, "config": CFG, "ranks": [{}], **fields}
    save_checkpoint(folder / "last.pt", state, keep_previous=True)


def test_resume_takes_last_pt_and_falls_back_to_the_one_it_replaced(tmp_path: Path) -> None:
    write(tmp_path, epoch=1)
    write(tmp_path, epoch=2)
    said: list[str] = []
    state, path = load_resume_checkpoint(tmp_path, {**CFG, "train": {"epochs": 5}}, 1, said.append)
    assert (state["epoch"], path.name, said) == (2, "last.pt", [])  # train.* may change
    (tmp_path / "last.pt").write_bytes(b"")
    state, path = load_resume_checkpoint(tmp_path, CFG, 1, said.append)
    assert (state["epoch"], path.name) == (1, "last.previous.pt")
    assert len(said) == 1 and said[0].startswith(f"{tmp_path / 'last.pt'}: unreadable checkpoint (")
    assert said[0].endswith("; resuming from the checkpoint before it, last.previous.pt")


@pytest.mark.parametrize(
    ("fields", "cfg", "world", "message"),
    [
        ({"format": 0}, CFG, 1, "last.pt: checkpoint format 0 is not 1"),
        ({}, {**CFG, "seed": 2}, 1, "the config differs from .*last.pt in seed"),
        ({"ranks": [{}, {}]}, CFG, 1, "last.pt was written by 2 processes, this run has 1"),
    ],
)
def test_resume_refusals_are_one_line(fields: dict, cfg: dict, world: int, message: str, tmp_path: Path) -> None:
    write(tmp_path, **fields)
    with pytest.raises(ValueError, match=message) as info:
        load_resume_checkpoint(tmp_path, cfg, world, print)
    assert "\n" not in str(info.value)
