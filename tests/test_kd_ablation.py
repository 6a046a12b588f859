"""benchmarks/kd_ablation.py: which arms it trains, and that an interrupted arm resumes instead of restarting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def ablation():
    return load_benchmark("kd_ablation")


def test_arms_are_the_recipe_its_no_distill_twin_and_each_extra_recipe(ablation) -> None:
    arms = ablation.ablation_arms(Path("a.yaml"), "select", ["w1=b.yaml"])
    assert arms == {
        "select": (Path("a.yaml"), []),
        "no-KD": (Path("a.yaml"), ["--no-distill"]),
        "w1": (Path("b.yaml"), []),
    }


@pytest.mark.parametrize("bad", ["b.yaml", "=b.yaml", "w1=", "no-KD=b.yaml", "KD=b.yaml"])
def test_an_extra_arm_needs_a_new_label_and_a_recipe(ablation, bad: str) -> None:
    with pytest.raises(SystemExit, match="LABEL=RECIPE"):
        ablation.ablation_arms(Path("a.yaml"), "KD", [bad])


def test_an_interrupted_arm_resumes(ablation, tmp_path, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(ablation, "distilfuse", lambda *args: calls.append(args))
    ablation.train_arm(Path("a.yaml"), ["train.epochs=2"], tmp_path, ["--no-distill"])
    (tmp_path / "last.pt").write_bytes(b"")
    ablation.train_arm(Path("a.yaml"), ["train.epochs=2"], tmp_path, ["--no-distill"])
    assert "--resume" not in calls[0] and calls[1][-1] == "--resume"
    assert calls[0] == ("train", "a.yaml", "train.epochs=2", "--out", str(tmp_path), "--quiet", "--no-distill")


def test_an_arms_time_is_read_from_its_log_so_a_reused_arm_reports_its_training(ablation, tmp_path) -> None:
    log = {"epochs": [{"seconds": 90.0}, {"seconds": 150.0}], "best": {"epoch": 2, "metric": "Qabf", "value": 0.51234}}
    (tmp_path / "log.json").write_text(json.dumps(log))
    assert ablation.arm_summary(tmp_path) == "4.0 min over 2 epochs, best Qabf 0.5123 at epoch 2"
    for i in range(2):
        (tmp_path / "init_trials" / str(i)).mkdir(parents=True)
        (tmp_path / "init_trials" / str(i) / "log.json").write_text(json.dumps({"epochs": [{"seconds": 30.0}]}))
    assert ablation.arm_summary(tmp_path) == (
        "5.0 min over 2 epochs (with 2 initialisation trials), best Qabf 0.5123 at epoch 2"
    )
