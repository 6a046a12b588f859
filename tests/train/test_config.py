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


def _recipe(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump({"student": {"name": "mmdr-mini"}, "data": {"sources": [{"root": "x"}]}, **sections})
    )
    return path


@pytest.mark.parametrize(
    ("sections", "overrides", "message"),
    [
        ({}, ["train.epoch=3"], "override train.epoch=3: unknown key train.epoch; did you mean train.epochs?"),
        (
            {"data": {"sources": [{"root": "x"}], "bach_size": 4}},
            [],
            "unknown key data.bach_size; did you mean data.batch?",
        ),
        ({"data": {"sources": [{"root": "x", "splt": "s.txt"}]}}, [], "unknown key data.sources.0.splt; did you mean"),
        ({"trian": {"epochs": 2}}, [], "unknown key trian; did you mean train?"),
        ({}, ["optimizer.learning_rate=1e-3"], "unknown key optimizer.learning_rate; valid keys here: type, lr"),
        (
            {"smoke": {"train.epocs": 1}},
            ["--smoke"],
            "r.yaml: smoke: unknown key train.epocs; did you mean train.epochs?",
        ),
    ],
)
def test_unknown_keys_are_refused_with_the_closest_valid_name(tmp_path: Path, sections, overrides, message) -> None:
    smoke = "--smoke" in overrides
    overrides = [o for o in overrides if o != "--smoke"]
    with pytest.raises(ConfigError) as info:
        load_config(_recipe(tmp_path, **sections), overrides, smoke=smoke)
    assert message in str(info.value)


def test_free_form_specs_keep_their_own_keys(tmp_path: Path) -> None:
    cfg = load_config(
        _recipe(tmp_path, strategy={"name": "adversarial", "d_steps": 3}, losses=[{"type": "x", "anything": 1}]),
        ["student.init_from_teacher.conv2=conv00", "losses.0.weight=2"],
    )
    assert cfg["strategy"]["d_steps"] == 3 and cfg["losses"][0] == {"type": "x", "anything": 1, "weight": 2.0}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=-1", "optimizer.lr must be > 0, not -1"),
        ("optimizer.lr=0", "optimizer.lr must be > 0, not 0"),
        ("optimizer.lr=fast", "optimizer.lr must be a number, not 'fast'"),
        ("optimizer.lr=.nan", "optimizer.lr must be a number, not nan"),
        ("optimizer.betas=[0.9, 1.5]", "optimizer.betas.1 must be >= 0 and < 1, not 1.5"),
        ("optimizer.weight_decay=-0.1", "optimizer.weight_decay must be >= 0"),
        ("optimizer.type=sgd", "optimizer.type must be one of adam, adamw, not 'sgd'"),
        ("scheduler.type=linear", "scheduler.type must be one of none, onecycle, cosine"),
        ("scheduler.min_lr=-1", "scheduler.min_lr must be >= 0"),
        ("train.max_steps=0", "train.max_steps must be a positive integer or null, not 0"),
        ("train.epochs=1.5", "train.epochs must be a positive integer, not 1.5"),
        ("train.log_every=-1", "train.log_every must be an integer >= 0 or null, not -1"),
        ("data.workers=-2", "data.workers must be an integer >= 0, not -2"),
        ("data.flips=maybe", "data.flips must be one of True, False, not 'maybe'"),
        ("data.val_patch=0", "data.val_patch must be a positive integer, not 0"),
        ("cache.dtype=int8", "cache.dtype must be one of float16, float32, not 'int8'"),
        ("validation.metrics=[]", "validation.metrics must be a non-empty list"),
        ("validation.mode=up", "validation.mode must be one of max, min, not 'up'"),
        ("seed=-3", "seed must be an integer >= 0, not -3"),
        ("data.sources=[{split: a.txt}]", "data.sources.0 must be {root: FOLDER"),
    ],
)
def test_values_are_checked_with_one_line_naming_the_key(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_recipe(tmp_path), [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_numbers_written_as_yaml_strings_are_accepted(tmp_path: Path) -> None:
    cfg = load_config(_recipe(tmp_path, optimizer={"lr": "1e-4"}, scheduler={"type": "cosine", "min_lr": "1e-6"}))
    assert cfg["optimizer"]["lr"] == 1e-4 and cfg["scheduler"]["min_lr"] == 1e-6


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        ({"name": "ship", "members": [{"name": "ship"}, {"name": "mmdr-teacher"}]}, "a name, or members"),
        ({"weights": "x.pth"}, "a name, or members"),
        ({"members": [{"name": "ship"}]}, "at least two"),
        ({"members": [{"name": "ship"}, {"weights": "x.pth"}]}, "each with a name"),
        ({"members": [{"name": "ship"}, {"name": "ship"}]}, "each model once"),
    ],
)
def test_a_teacher_is_one_model_or_an_ensemble(tmp_path: Path, teacher: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_recipe(tmp_path, teacher=teacher))
    members = [{"name": "ship"}, {"name": "mmdr-teacher", "weights": None}]
    assert load_config(_recipe(tmp_path, teacher={"members": members}))["teacher"]["members"] == members
