"""Every recipe's smoke variant end to end: on synthetic pairs made in code, and mmdr on the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

from distilfuse.train import load_config, train
from tests.train.conftest import require_models

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(CONFIGS.glob("*.yaml"))


def _models(cfg: dict) -> list[str]:
    names = [cfg["student"]["name"]]
    if cfg["teacher"]:
        names.append(cfg["teacher"]["name"])
    if cfg["strategy"].get("discriminator"):
        names.append(cfg["strategy"]["discriminator"])
    return names


def _require_weights(cfg: dict) -> None:
    weights = (cfg["teacher"] or {}).get("weights")
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
