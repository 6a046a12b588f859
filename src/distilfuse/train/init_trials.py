"""Initialisation trials (`train.init_trials: K`): train K initialisations of the student for the first
`train.init_trial_epochs` epochs of the run, keep the one with the lowest training loss, and train the run from it.

A tiny student (mmdr-mini, 113 parameters) ends in a poor local minimum from about one initialisation in three,
with twice the training loss of the others and far worse fusions (docs/results.md); the basin is set within the
first two epochs. Choosing on the training loss uses no held-out data and is the same rule for a distilled run
and its no-KD arm. Each trial is the run's own beginning (same data order and schedule), in its own folder
`<out>/init_trials/<i>`; the choice is written to `<out>/init_trials.json`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distilfuse.train.checkpoint import RESUME_FIXED, claim_run_folder
from distilfuse.train.config import ConfigError
from distilfuse.train.logs import write_json

TRIALS_FILE = "init_trials.json"
TRIALS_DIR = "init_trials"


def candidate_init_seeds(seed: int, count: int) -> list[int | None]:
    """The recipe seed's own initialisation (None) and `count` - 1 others derived from the seed."""
    return [None] + [seed * 1000 + i for i in range(1, count)]


def with_init_seed(cfg: dict[str, Any], init_seed: int | None) -> dict[str, Any]:
    """A copy of `cfg` whose student starts from `init_seed` (None: the recipe seed's own initialisation)."""
    out = copy.deepcopy(cfg)
    out["train"]["init_trials"] = 1
    if init_seed is None:
        out["student"].pop("init_seed", None)
    else:
        out["student"]["init_seed"] = init_seed
    return out


def final_loss(run_dir: Path, trial_cfg: dict[str, Any], epochs: int) -> float | None:
    """The mean training loss of the trial's last epoch, or None when it has not finished `epochs` epochs or was
    trained with another recipe (a `RESUME_FIXED` section differs)."""
    try:
        log = json.loads((run_dir / "log.json").read_text())
        history = log["epochs"]
        same = all(log["config"].get(k) == trial_cfg.get(k) for k in RESUME_FIXED)
    except (OSError, ValueError, KeyError, AttributeError):
        return None
    return float(history[-1]["loss"]) if same and len(history) >= epochs else None


def choose_initialisation(
    cfg: dict[str, Any],
    out_dir: Path,
    run_trial: Callable[[dict[str, Any], Path, int], None],
    resume: bool,
    overwrite: bool,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """`cfg` with the student's initialisation chosen by `train.init_trials` (unchanged when it is 1).

    `run_trial(trial_cfg, folder, epochs)` trains a fresh run in `folder` for its first `epochs` epochs. With
    `resume`, finished trials are read back, not trained again."""
    count, epochs = int(cfg["train"]["init_trials"]), int(cfg["train"]["init_trial_epochs"])
    if count == 1:
        return cfg
    claim_run_folder(out_dir, resume, overwrite, is_main=True)  # refuse an occupied folder before any trial
    seeds = candidate_init_seeds(int(cfg["seed"]), count)
    losses = []
    for i, init_seed in enumerate(seeds):
        folder = out_dir / TRIALS_DIR / str(i)
        trial_cfg = with_init_seed(cfg, init_seed)
        loss = final_loss(folder, trial_cfg, epochs) if resume else None
        if loss is None:
            say(f"init trial {i + 1}/{count} (init_seed {init_seed}): {epochs} epoch(s)")
            run_trial(trial_cfg, folder, epochs)
            loss = final_loss(folder, trial_cfg, epochs)
            if loss is None:
                raise ConfigError(f"{folder}: the init trial did not finish {epochs} epoch(s)")
        losses.append(loss)
    best = min(range(count), key=losses.__getitem__)
    write_json(
        out_dir / TRIALS_FILE,
        {
            "epochs": epochs,
            "trials": [{"init_seed": s, "loss": v} for s, v in zip(seeds, losses, strict=True)],
            "chosen_init_seed": seeds[best],
        },
    )
    say(
        "init trials: training loss "
        + ", ".join(f"{v:.4g}" for v in losses)
        + f"; the run starts from trial {best + 1} (init_seed {seeds[best]})"
    )
    return with_init_seed(cfg, seeds[best])
