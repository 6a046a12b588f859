"""Data-parallel training: two CPU processes (gloo) train, checkpoint and resume with equal weights; a DDP-wrapped
distiller takes the step's DistillBatch."""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tests.train.conftest import RESUME_CASES, assert_same_state, tiny_config

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, cfg: dict[str, Any], out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD)
    )
    torch.set_num_threads(1)
    # One group for the three runs (a Trainer leaves a group it did not create open).
    dist.init_process_group("gloo")
    from distilfuse.train import Trainer

    for run, max_steps, resume in (("straight", None, False), ("resumed", 2, False), ("resumed", None, True)):
        run_cfg = copy.deepcopy(cfg)
        run_cfg["train"]["max_steps"] = max_steps
        trainer = Trainer(run_cfg, Path(out) / run, resume=resume)
        if run == "straight":
            torch.save(
                {k: v.clone() for k, v in trainer.student.state_dict().items()}, Path(out) / f"initial.rank{rank}.pt"
            )
        trainer.fit()
        torch.save(trainer.student.state_dict(), Path(out) / f"{run}.rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_agree_and_resume_exactly(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, **copy.deepcopy(RESUME_CASES["refresh+distill+cache"]))
    mp.spawn(_worker, args=(_free_port(), cfg, str(tmp_path)), nprocs=WORLD, join=True)
    states = {
        (run, r): torch.load(tmp_path / f"{run}.rank{r}.pt") for run in ("straight", "resumed") for r in range(WORLD)
    }
    assert_same_state(states["straight", 0], states["straight", 1])  # DDP keeps the replicas equal
    assert_same_state(states["straight", 0], states["resumed", 0])  # rank-local refresh memories resumed
    assert_same_state(states["resumed", 0], states["resumed", 1])
    assert (tmp_path / "straight" / "last.safetensors").is_file()
    with pytest.raises(AssertionError):  # it did train: the weights moved away from where they started
        assert_same_state(states["straight", 0], torch.load(tmp_path / "initial.rank0.pt"))


def test_a_ddp_wrapped_distiller_takes_the_steps_distill_batch(tmp_path: Path) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from distilfuse.distill import DistillBatch, build_distiller
    from distilfuse.models import FeatureTaps
    from tests.distill.fakes import FakeStudent, FakeTeacher

    torch.manual_seed(0)
    student, teacher = FakeStudent(), FakeTeacher()
    distiller = build_distiller({"type": "fg", "pairs": [["f1", "g1"]]}, student, teacher)  # trainable adapters
    ir, vis = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    with FeatureTaps(student, ["f1"]) as s_taps:
        s_out = student(ir, vis, raw=True)
    with torch.no_grad(), FeatureTaps(teacher, ["g1"]) as t_taps:
        t_out = teacher(ir, vis, raw=True)
    batch = DistillBatch(s_taps.features, t_taps.features, s_out, t_out, ir, vis)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        terms = DistributedDataParallel(distiller)(batch)
        assert terms == distiller(batch)
        sum(terms.values()).backward()
    finally:
        dist.destroy_process_group()
    assert all(p.grad is not None for p in distiller.parameters())
