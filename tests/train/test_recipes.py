"""Every recipe's smoke variant end to end: on synthetic pairs made in code, and mmdr on the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from distilfuse.train import load_config, train
from distilfuse.train.config import ConfigError, without_teacher
from tests.train.conftest import require_models

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))


def _models(cfg: dict) -> list[str]:
    names = [cfg["student"]["name"]]
    names += [t["name"] for t in _teachers(cfg)]
    if cfg["strategy"].get("discriminator"):
        names.append(cfg["strategy"]["discriminator"])
    return names


def _teachers(cfg: dict) -> list[dict]:
    """The teacher spec, or each member's of an ensemble."""
    teacher = cfg["teacher"] or {}
    return teacher.get("members") or ([teacher] if teacher else [])


def _require_weights(cfg: dict) -> None:
    for teacher in _teachers(cfg):
        weights = teacher.get("weights")
        if weights and not Path(weights).is_file():
            pytest.skip(f"teacher weights {weights} not available")


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_smoke_variant_on_synthetic_pairs(
    recipe: Path, tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILFUSE_RUNS", str(tmp_path / "runs"))
    cfg = load_config(
        recipe,
        [f"data.sources=[{{root: {synthetic_root}}}]", f"cache.dir={tmp_path / 'cache'}", "train.progress=false"],
        smoke=True,
    )
    require_models(*_models(cfg))
    _require_weights(cfg)
    summary = train(cfg, tmp_path / "run")
    assert summary["global_step"] >= 1
    assert (tmp_path / "run" / "last.pt").is_file()


def test_mmdr_smoke_on_the_shared_training_split(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILFUSE_DATA", str(shared_dir / "data"))
    monkeypatch.setenv("DISTILFUSE_RUNS", str(tmp_path / "runs"))
    cfg = load_config(CONFIGS / "mmdr.yaml", ["train.progress=false"], smoke=True)
    require_models(*_models(cfg))
    _require_weights(cfg)
    summary = train(cfg, tmp_path / "run")
    assert summary["global_step"] == cfg["train"]["max_steps"]


DISTILLING = [
    p for p in RECIPES if load_config(p)["distillers"] and not load_config(p)["strategy"].get("fusion_distillers")
]


@pytest.mark.parametrize("recipe", DISTILLING, ids=[p.stem for p in DISTILLING])
def test_no_kd_arm_keeps_everything_but_the_teacher(recipe: Path) -> None:
    cfg = load_config(recipe)
    arm = without_teacher(cfg)
    assert arm["teacher"] is None and arm["distillers"] == [] and arm["student"]["init_from_teacher"] == {}
    dropped = ("teacher", "distillers", "student")
    assert {k: v for k, v in arm.items() if k not in dropped} == {k: v for k, v in cfg.items() if k not in dropped}
    assert arm["student"]["name"] == cfg["student"]["name"] and cfg["distillers"], "the recipe itself is untouched"


def test_a_recipe_distilling_its_first_stage_has_no_no_kd_arm() -> None:
    with pytest.raises(ConfigError, match="no no-KD arm"):
        without_teacher(load_config(CONFIGS / "hkd_x2.yaml"))


def test_cli_no_distill_trains_without_the_teacher(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distilfuse.cli.main import main

    monkeypatch.setenv("DISTILFUSE_RUNS", str(tmp_path / "runs"))
    overrides = [f"data.sources=[{{root: {synthetic_root}}}]", f"cache.dir={tmp_path / 'cache'}"]
    # The teacher's weights file need not exist: the no-KD arm never builds the teacher.
    overrides.append(f"teacher.weights={tmp_path / 'absent.safetensors'}")
    out = tmp_path / "nokd"
    code = main(
        ["train", str(CONFIGS / "mmdr.yaml"), *overrides, "--smoke", "--no-distill", "--quiet", "--out", str(out)]
    )
    assert code == 0
    logged = (out / "log.json").read_text()
    assert '"teacher": null' in logged and '"distillers": []' in logged
    assert not (tmp_path / "cache").exists(), "no teacher cache is built without a teacher"


def test_a_missing_layer_to_copy_from_the_teacher_is_one_config_error(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTILFUSE_RUNS", str(tmp_path / "runs"))
    overrides = [f"data.sources=[{{root: {synthetic_root}}}]", "teacher.weights=null", "train.progress=false"]
    cfg = load_config(CONFIGS / "rt_s.yaml", [*overrides, "student.init_from_teacher={conv2: conv00}"], smoke=True)
    with pytest.raises(ConfigError, match="init_from_teacher: RTFuse has no attribute `conv2`"):
        train(cfg, tmp_path / "run")


SCAKD_ROWS = {
    "scakd_dt": None,
    "scakd_sa": "sca",
    "scakd_ca": "sca",
    "scakd_at": "at",
    "scakd_ic": "ic",
    "scakd_fg": "fg",
}


@pytest.mark.parametrize(("row", "kind"), SCAKD_ROWS.items())
def test_scakd_table_rows_change_only_the_distiller(row: str, kind: str | None) -> None:
    cfg, sca = load_config(CONFIGS / f"{row}.yaml"), load_config(CONFIGS / "scakd.yaml")
    changed = {"distillers", "config_file"} | ({"teacher"} if kind is None else set())
    assert {k: v for k, v in cfg.items() if k not in changed} == {k: v for k, v in sca.items() if k not in changed}
    assert [d["type"] for d in cfg["distillers"]] == ([kind] if kind else [])
    if kind:
        assert cfg["distillers"][0]["pairs"] == sca["distillers"][0]["pairs"]
        assert cfg["distillers"][0]["weight"] == sca["distillers"][0]["weight"]


def test_scakd_distils_two_encoder_layers_per_branch_and_one_decoder_layer() -> None:
    (spec,) = load_config(CONFIGS / "scakd.yaml")["distillers"]
    branch_alpha = {s: a for (s, _), a in zip(spec["pairs"], spec["alpha"], strict=True)}
    assert branch_alpha == {"ir_mid": 0.8, "ir_enc": 0.8, "vis_mid": 0.2, "vis_enc": 0.2, "fused": 0.5}
    assert (spec["mix"], spec["corner"]) == ("maps", "mask")
    assert load_config(CONFIGS / "scakd.yaml")["data"]["flips"] is False
