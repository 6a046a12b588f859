"""Optimizers and per-step learning-rate schedules from config specs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR

from distilfuse.train.config import ConfigError


def build_optimizer(spec: dict[str, Any], params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """`{type: adam|adamw, lr, betas, weight_decay, eps}`."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ConfigError("nothing to optimise: no trainable parameters")
    kind = spec.get("type", "adam").lower()
    kwargs = {
        "lr": float(spec.get("lr", 1e-4)),
        "betas": tuple(spec.get("betas", (0.9, 0.999))),
        "weight_decay": float(spec.get("weight_decay", 0.0)),
        "eps": float(spec.get("eps", 1e-8)),
    }
    if kind == "adam":
        return torch.optim.Adam(params, **kwargs)
    if kind == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    raise ConfigError(f"optimizer.type {kind!r} is not supported (adam, adamw)")


def build_scheduler(spec: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler | None:
    """Stepped once per optimizer step.

    - `none`: constant learning rate;
    - `onecycle`: torch OneCycleLR over the run (`max_lr`, `div_factor`, `final_div_factor`,
      `pct_start`, `anneal_strategy`, `cycle_momentum` as in torch);
    - `cosine`: cosine decay to `min_lr` over the run.
    """
    kind = spec.get("type", "none").lower()
    if kind == "none":
        return None
    if kind == "onecycle":
        options = {
            k: spec[k]
            for k in ("div_factor", "final_div_factor", "pct_start", "anneal_strategy", "cycle_momentum", "three_phase")
            if k in spec
        }
        max_lr = float(spec.get("max_lr", optimizer.param_groups[0]["lr"]))
        return OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(total_steps, 2), **options)
    if kind == "cosine":
        return CosineAnnealingLR(optimizer, T_max=max(total_steps, 1), eta_min=float(spec.get("min_lr", 0.0)))
    raise ConfigError(f"scheduler.type {kind!r} is not supported (none, onecycle, cosine)")
