"""Atomic checkpoints, random-number states, and student weights for `distilfuse.models.create`."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from distilfuse.io.atomic import atomic_write


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the problem."""


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


def save_weights(path: str | Path, model: nn.Module) -> Path:
    """The model's state dict as safetensors (loads with `create(name, weights=path)`)."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda tmp: save_file(state, tmp))


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
