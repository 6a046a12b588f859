"""Recipes and overrides: typing of key=value, `${VAR}` paths, `base:` inheritance, smoke sections."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from distilfuse.train.config import ConfigError, load_config, parse_overrides, set_dotted

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))


def test_overrides_are_yaml_typed() -> None:
    parsed = dict(
        parse_overrides(
            [
                "train.epochs=3",
                "data.flips=false",
                "optimizer.lr=1e-3",
                "teacher=null",
                "validation.metrics=[SSIM, Qabf]",
                "student.name=mmdr-mini",
            ]
        )
    )
    assert parsed == {
        "train.epochs": 3,
        "data.flips": False,
        "optimizer.lr": 1e-3,
        "teacher": None,
        "validation.metrics": ["SSIM", "Qabf"],
        "student.name": "mmdr-mini",
    }
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_overrides(["epochs"])


def test_set_dotted_walks_dicts_and_lists() -> None:
    cfg = {"losses": [{"type": "a", "weight": 1.0}], "teacher": None, "train": {"epochs": 1}}
    set_dotted(cfg, "losses.0.weight", 5.0)
    set_dotted(cfg, "teacher.name", "mmdr-teacher")
    set_dotted(cfg, "train.amp", "bf16")
    assert cfg == {
        "losses": [{"type": "a", "weight": 5.0}],
        "teacher": {"name": "mmdr-teacher"},
        "train": {"epochs": 1, "amp": "bf16"},
    }
    with pytest.raises(ConfigError, match="not an index"):
        set_dotted(cfg, "losses.3.weight", 1.0)
    with pytest.raises(ConfigError, match="is a value"):
        set_dotted(cfg, "train.epochs.x", 1)


def test_variables_base_and_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILFUSE_DATA", "/data/here")
    monkeypatch.setenv("DISTILFUSE_RUNS", "/runs/there")
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump(
            {
                "student": {"name": "mmdr-mini"},
                "teacher": {"name": "mmdr-teacher", "weights": "${SHARED}/weights/t.model"},
                "data": {"sources": [{"root": "${DATA}/RoadScene"}], "patch": 64},
                "cache": {"dir": "${RUNS}/cache"},
                "smoke": {"data.patch": 16, "train.epochs": 1},
            }
        )
    )
    (tmp_path / "child.yaml").write_text(
        yaml.safe_dump({"base": "base.yaml", "data": {"batch": 2}, "smoke": {"train.max_steps": 2}})
    )
    cfg = load_config(tmp_path / "child.yaml", ["train.epochs=7"])
    assert cfg["teacher"]["weights"] == "/data/weights/t.model"
    assert cfg["data"]["sources"][0]["root"] == "/data/here/RoadScene"
    assert cfg["cache"]["dir"] == "/runs/there/cache"
    assert (cfg["data"]["patch"], cfg["data"]["batch"], cfg["train"]["epochs"]) == (64, 2, 7)
    smoke = load_config(tmp_path / "child.yaml", smoke=True)
    assert (smoke["data"]["patch"], smoke["train"]["epochs"], smoke["train"]["max_steps"]) == (16, 1, 2)
    assert "smoke" not in smoke


def test_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"student": {"name": "mmdr-mini"}, "data": {"sources": [{"root": "x"}]}}))
    with pytest.raises(ConfigError, match="train.amp"):
        load_config(path, ["train.amp=fp8"])
    with pytest.raises(ConfigError, match="data.batch"):
        load_config(path, ["data.batch=0"])
    with pytest.raises(ConfigError, match="distillers need a teacher"):
        load_config(path, ["distillers=[{type: mmdr}]"])
    with pytest.raises(ConfigError, match="unknown variable"):
        load_config(path, ["cache.dir=${NOPE}/x"])
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_loads_with_its_smoke_variant(recipe: Path) -> None:
    full, smoke = load_config(recipe), load_config(recipe, smoke=True)
    assert full["student"]["name"] == smoke["student"]["name"]
    assert smoke["data"]["patch"] <= 32 and smoke["data"]["batch"] <= 8
    for cfg in (full, smoke):
        assert cfg["data"]["patch"] % int(cfg["strategy"].get("scale", 1)) == 0
        # Training data is the project's training split only.
        for source in cfg["data"]["sources"]:
            assert Path(source["root"]).name in ("RoadScene", "LLVIP_train32")
            if Path(source["root"]).name == "RoadScene":
                assert Path(source["split"]).name == "train171.txt"
