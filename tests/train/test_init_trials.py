"""Initialisation trials: `student.init_seed` and `train.init_trials` (train/init_trials.py)."""

from __future__ import annotations

import json
import weakref
from pathlib import Path

import pytest
import torch

from distilfuse.train import ConfigError, Trainer, train
from distilfuse.train.checkpoint import RUN_FILES
from distilfuse.train.init_trials import TRIALS_DIR, TRIALS_FILE, candidate_init_seeds
from tests.train.conftest import assert_same_state, state_of, tiny_config

TRIALS = {"epochs": 3, "init_trials": 3, "init_trial_epochs": 1}


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILFUSE_RUNS", str(tmp_path / "runs"))


def epoch_losses(run: Path) -> list[float]:
    return [row["loss"] for row in json.loads((run / "log.json").read_text())["epochs"]]


def test_init_seed_changes_the_initial_weights_only(tmp_path: Path, synthetic_root: Path) -> None:
    def build(init_seed: int | None, name: str) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        student = {"name": "mmdr-mini"} if init_seed is None else {"name": "mmdr-mini", "init_seed": init_seed}
        trainer = Trainer(tiny_config(tmp_path, synthetic_root, student=student), tmp_path / name)
        return {k: v.clone() for k, v in trainer.student.state_dict().items()}, torch.rand(4)

    own, after_own = build(None, "a")
    drawn, after_drawn = build(7, "b")
    again, _ = build(7, "c")
    assert any(not torch.equal(own[k], drawn[k]) for k in own)
    assert_same_state(drawn, again)
    assert torch.equal(after_own, after_drawn), "init_seed must leave the global random state (data order) alone"


def test_trials_keep_the_lowest_loss_and_the_run_starts_from_it(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train=TRIALS)
    train(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / TRIALS_FILE).read_text())
    seeds = [t["init_seed"] for t in record["trials"]]
    losses = [t["loss"] for t in record["trials"]]
    assert seeds == candidate_init_seeds(3, 3) and len(set(losses)) == 3
    best = losses.index(min(losses))
    assert record["chosen_init_seed"] == seeds[best]
    for i, loss in enumerate(losses):
        assert epoch_losses(tmp_path / "run" / TRIALS_DIR / str(i)) == [loss]
    # Each trial is the run's own first epoch: the run's first epoch repeats the chosen trial's.
    assert epoch_losses(tmp_path / "run")[0] == losses[best]
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert log["config"]["student"].get("init_seed") == seeds[best] and len(log["epochs"]) == 3


def test_each_trial_is_freed_before_the_next_trainer_is_built(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[weakref.ref] = []
    alive_at_build: list[int] = []
    original = Trainer.__init__

    def recording_init(self: Trainer, *args: object, **kwargs: object) -> None:
        alive_at_build.append(sum(ref() is not None for ref in built))
        original(self, *args, **kwargs)
        built.append(weakref.ref(self))

    monkeypatch.setattr(Trainer, "__init__", recording_init)
    train(tiny_config(tmp_path, synthetic_root, train=TRIALS), tmp_path / "run")
    assert alive_at_build == [0, 0, 0, 0]  # three trials, then the run


def test_a_run_interrupted_after_its_trials_resumes_exactly(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train=TRIALS)
    train(cfg, tmp_path / "straight")
    steps = len(json.loads((tmp_path / "straight" / "log.json").read_text())["epochs"])
    interrupted = tiny_config(tmp_path, synthetic_root, train={**TRIALS, "max_steps": 7})  # inside epoch 2
    assert train(interrupted, tmp_path / "resumed")["stopped_early"]
    trial_logs = sorted((tmp_path / "resumed" / TRIALS_DIR).glob("*/log.json"))
    stamps = [p.stat().st_mtime_ns for p in trial_logs]
    train(cfg, tmp_path / "resumed", resume=True)
    assert [p.stat().st_mtime_ns for p in trial_logs] == stamps, "a resume must not run the trials again"
    assert len(json.loads((tmp_path / "resumed" / "log.json").read_text())["epochs"]) == steps
    assert_same_state(state_of(tmp_path / "straight"), state_of(tmp_path / "resumed"))


def test_a_resume_before_the_first_checkpoint_reuses_finished_trials(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train=TRIALS)
    train(cfg, tmp_path / "straight")
    run = tmp_path / "resumed"
    train(cfg, run)
    for name in (*RUN_FILES, TRIALS_FILE):
        (run / name).unlink(missing_ok=True)  # as if killed during the last trial
    finished = run / TRIALS_DIR / "0" / "log.json"
    stamp = finished.stat().st_mtime_ns
    train(cfg, run, resume=True)
    assert finished.stat().st_mtime_ns == stamp
    assert_same_state(state_of(tmp_path / "straight"), state_of(run))


def test_a_resume_with_another_recipe_trains_the_trials_again(tmp_path: Path, synthetic_root: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(tmp_path, synthetic_root, train={**TRIALS, "max_steps": 7}), run)
    trial_log = run / TRIALS_DIR / "0" / "log.json"
    stamp = trial_log.stat().st_mtime_ns
    for name in RUN_FILES:
        (run / name).unlink(missing_ok=True)  # killed before its first checkpoint: the run itself starts afresh
    changed = [{"type": "max_intensity", "weight": 2.0}, {"type": "max_gradient", "weight": 10.0}]
    train(tiny_config(tmp_path, synthetic_root, train=TRIALS, losses=changed), run, resume=True)
    assert trial_log.stat().st_mtime_ns != stamp
    assert json.loads(trial_log.read_text())["config"]["losses"][0]["weight"] == 2.0


def test_trials_refuse_an_occupied_folder_before_training(tmp_path: Path, synthetic_root: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(tmp_path, synthetic_root), run)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(tiny_config(tmp_path, synthetic_root, train=TRIALS), run)
    assert not (run / TRIALS_DIR).exists()


def test_trials_are_refused_under_torchrun(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")  # no RANK: joining a group would fail with another error
    with pytest.raises(ConfigError, match="one process"):
        train(tiny_config(tmp_path, synthetic_root, train=TRIALS), tmp_path / "run")


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"train": {**TRIALS, "init_trial_epochs": 4}}, "init_trial_epochs must not exceed"),
        ({"train": TRIALS, "student": {"name": "mmdr-mini", "init_seed": 4}}, "init_trials chooses"),
        ({"train": {**TRIALS, "init_trials": 0}}, "init_trials must be a positive integer"),
        ({"student": {"name": "mmdr-mini", "init_seed": -1}}, "init_seed must be an integer >= 0"),
        ({"student": {"name": "mmdr-mini", "init_seed": 1, "weights": "w.safetensors"}}, "cannot go with"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, synthetic_root: Path, sections: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(tmp_path, synthetic_root, **sections)
