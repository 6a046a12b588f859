"""A run folder and its checkpoints: what a run writes, claiming the folder, atomic checkpoints, choosing
the one to resume, random-number states, and student weights for `distilfuse.models.create`."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from distilfuse.io.atomic import atomic_write, remove_stale_partials
from distilfuse.models.registry import OUTPUT_RANGE_KEY
from distilfuse.train.config import ConfigError

CHECKPOINT_FORMAT = 1
# What a run writes into its folder (a new run refuses a folder holding any of them).
RUN_FILES = (
    "last.pt",
    "last.previous.pt",
    "best.pt",
    "last.safetensors",
    "best.safetensors",
    "log.csv",
    "steps.csv",
    "log.json",
    "curves.png",
)
# Sections that must not change between a checkpoint and the run resuming it.
RESUME_FIXED = ("seed", "student", "teacher", "losses", "distillers", "optimizer", "scheduler", "strategy", "data")


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the problem."""


def claim_run_folder(out_dir: Path, resume: bool, overwrite: bool, is_main: bool) -> None:
    """Refuse to train over an earlier run unless resuming it or told to overwrite it (its files are then
    deleted, so none of them mixes with the new run's); clear partial files of killed writes (`is_main` only)."""
    earlier = [out_dir / name for name in RUN_FILES if (out_dir / name).exists()]
    if earlier and not resume and not overwrite:
        raise ConfigError(
            f"{out_dir} already holds a run ({earlier[0].name}); continue it with --resume, "
            "replace it with --overwrite, or choose another --out"
        )
    if is_main:
        if overwrite and not resume:
            for path in earlier:
                path.unlink()
        remove_stale_partials(out_dir)


def load_resume_checkpoint(
    out_dir: Path, cfg: Mapping[str, Any], world: int, say: Callable[[str], None]
) -> tuple[dict[str, Any], Path]:
    """The state in `out_dir`/last.pt, or in the checkpoint it replaced when last.pt is damaged (e.g. by a
    crash while it was written; `say` tells which), and its path. Refused (ConfigError) when none is usable,
    when `cfg` differs in a `RESUME_FIXED` section, or when it was written by another number of processes."""
    path = out_dir / "last.pt"
    problems = []
    for candidate in (path, previous_checkpoint(path)):
        if not candidate.is_file():
            continue
        try:
            state = load_checkpoint(candidate)
            if state.get("format") != CHECKPOINT_FORMAT:
                raise CheckpointError(
                    f"{candidate}: checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT}"
                )
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if problems:
            say(f"{problems[0]}; resuming from the checkpoint before it, {candidate.name}")
        path = candidate
        break
    else:
        raise ConfigError(f"--resume: {'; '.join(problems) or f'no checkpoint at {path}'}")
    changed = [k for k in RESUME_FIXED if state["config"].get(k) != cfg.get(k)]
    if changed:
        raise ConfigError(
            f"--resume: the config differs from {path} in {', '.join(changed)}; "
            "resume with the same recipe (train.* and validation.* may change)"
        )
    if len(state["ranks"]) != world:
        raise ConfigError(f"--resume: {path} was written by {len(state['ranks'])} processes, this run has {world}")
    return state, path


def previous_checkpoint(path: str | Path) -> Path:
    """Where `save_checkpoint(path, ..., keep_previous=True)` keeps the checkpoint it replaced."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def save_checkpoint(path: str | Path, state: dict[str, Any], keep_previous: bool = False) -> Path:
    """Write `state` atomically; with `keep_previous` the checkpoint it replaces is kept (`previous_checkpoint`),
    so a damaged file still leaves one to fall back on."""
    path = Path(path)

    def write(tmp: str) -> None:
        torch.save(state, tmp)
        if keep_previous and path.is_file():
            path.replace(previous_checkpoint(path))

    return atomic_write(path, write)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state, or a CheckpointError (truncated, empty, not a checkpoint) naming the file."""
    try:
        # Our own files: they hold numpy RNG states and plain Python objects besides tensors.
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zips, empty files and foreign pickles fail in many ways
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: unreadable checkpoint ({detail})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a distilfuse checkpoint")
    return state


def save_weights(path: str | Path, model: nn.Module, output_range: str = "clip") -> Path:
    """The model's state dict as safetensors (loads with `create(name, weights=path)`), declaring the
    output range its fused images are read with (`models.registry.OUTPUT_RANGE_KEY`)."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {OUTPUT_RANGE_KEY: output_range}
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
