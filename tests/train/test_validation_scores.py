"""benchmarks/validation_scores.py: the recipe's own validation crops, scored clipped and stretched."""

from __future__ import annotations

import re

import pytest
import torch

from distilfuse.models import create
from distilfuse.train.checkpoint import save_weights
from distilfuse.train.data import TrainingData
from distilfuse.train.distributed import DistContext
from distilfuse.train.validation import Validator
from tests.conftest import load_benchmark
from tests.train.conftest import tiny_config


def test_tables_score_the_recipes_validation_crops_clipped_then_stretched(tmp_path, synthetic_root, capsys) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, data={"val_pairs": 2})
    torch.manual_seed(0)
    model = create("mmdr-mini", weights=None)
    save_weights(tmp_path / "w.safetensors", model)
    script = load_benchmark("validation_scores")
    argv = [str(tmp_path / "recipe.yaml"), "seed=5", "--weights", f"mine={tmp_path / 'w.safetensors'}"]
    assert script.main([*argv, "--metrics", "SD", "SSIM"]) == 0
    text = capsys.readouterr().out
    clipped, stretched = text.split("### ")[1:]
    assert clipped.startswith("2 validation crops, output clipped") and stretched.startswith(
        "2 validation crops, min-max"
    )
    cfg["seed"] = 5  # the override reaches the crops
    crops = TrainingData.build(cfg["data"], 5, 1, DistContext.from_env("cpu")).val_crops
    for table, stretch in ((clipped, False), (stretched, True)):
        vcfg = {"metrics": ["SD", "SSIM"], "best_metric": "SD", "batch": 4}
        expected = Validator(vcfg, crops, 1, torch.device("cpu"), stretch=stretch).scores(model)
        row = re.search(r"\| mine \| 2 \| ([\d.*]+) \| ([\d.*]+) \|", table)
        assert [float(v.strip("*")) for v in row.groups()] == pytest.approx(
            [expected["SD"], expected["SSIM"]], abs=1e-4
        )


def test_weights_need_a_label(capsys) -> None:
    with pytest.raises(SystemExit, match="LABEL=WEIGHTS"):
        load_benchmark("validation_scores").main(["recipe.yaml", "--weights", "w.safetensors"])


def test_teacher_row_scores_the_recipes_teacher(tmp_path, synthetic_root, capsys) -> None:
    torch.manual_seed(1)
    teacher = create("mmdr-teacher", weights=None)
    save_weights(tmp_path / "t.safetensors", teacher)
    teacher_spec = {"name": "mmdr-teacher", "weights": str(tmp_path / "t.safetensors")}
    cfg = tiny_config(tmp_path, synthetic_root, data={"val_pairs": 1}, teacher=teacher_spec)
    save_weights(tmp_path / "w.safetensors", create("mmdr-mini", weights=None))
    argv = [str(tmp_path / "recipe.yaml"), "--weights", f"mine={tmp_path / 'w.safetensors'}", "--metrics", "SD"]
    assert load_benchmark("validation_scores").main([*argv, "--teacher"]) == 0
    stretched = capsys.readouterr().out.split("### ")[2]
    crops = TrainingData.build(cfg["data"], 3, 1, DistContext.from_env("cpu")).val_crops
    vcfg = {"metrics": ["SD"], "best_metric": "SD", "batch": 4}
    expected = Validator(vcfg, crops, 1, torch.device("cpu"), stretch=True).scores(teacher)["SD"]
    row = re.search(r"\| teacher \| 1 \| ([\d.*]+) \|", stretched)
    assert float(row.group(1).strip("*")) == pytest.approx(expected, abs=1e-4)


def test_teacher_row_needs_a_teacher(tmp_path, synthetic_root) -> None:
    tiny_config(tmp_path, synthetic_root)
    save_weights(tmp_path / "w.safetensors", create("mmdr-mini", weights=None))
    argv = [str(tmp_path / "recipe.yaml"), "--weights", f"mine={tmp_path / 'w.safetensors'}", "--teacher"]
    with pytest.raises(SystemExit, match="has no teacher"):
        load_benchmark("validation_scores").main(argv)
