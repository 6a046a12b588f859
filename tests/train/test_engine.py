"""The training engine on synthetic data: outputs, exact resume, teacher cache, strategies, AMP, CLI."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from distilfuse.models import create
from distilfuse.ops.stretch import min_max_stretch_batch
from distilfuse.train import Trainer, train
from distilfuse.train.teacher_cache import OUTPUT_KEY
from tests.train.conftest import (
    MMDR_DISTILL,
    RESUME_CASES,
    assert_same_state,
    require_models,
    state_of,
    tiny_config,
)


@pytest.fixture(autouse=True)
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILFUSE_RUNS", str(tmp_path / "runs"))


def test_plain_run_writes_checkpoints_logs_and_weights(tmp_path: Path, synthetic_root: Path) -> None:
    summary = train(tiny_config(tmp_path, synthetic_root), tmp_path / "run")
    run = tmp_path / "run"
    for name in (
        "last.pt",
        "best.pt",
        "last.safetensors",
        "best.safetensors",
        "log.csv",
        "steps.csv",
        "log.json",
        "curves.png",
    ):
        assert (run / name).is_file(), name
    log = json.loads((run / "log.json").read_text())
    assert [row["epoch"] for row in log["epochs"]] == [1, 2]
    assert {"loss", "max_intensity", "max_gradient", "seconds", "peak_memory_mb", "val_Qabf"} <= log["epochs"][0].keys()
    assert summary["global_step"] == log["global_step"] == 10 and summary["best"]["metric"] == "Qabf"
    model = create("mmdr-mini", weights=run / "best.safetensors")  # strict load into the registered model
    assert torch.isfinite(model(torch.rand(1, 1, 20, 20), torch.rand(1, 1, 20, 20))).all()
    assert not any(p.name.startswith(".") for p in run.iterdir()), "temporary files left behind"


@pytest.mark.parametrize("case", RESUME_CASES, ids=list(RESUME_CASES))
def test_resume_mid_epoch_is_bit_identical(
    case: str, tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case == "adversarial":
        require_models("scakd-discriminator")
    cfg = tiny_config(tmp_path, synthetic_root, **copy.deepcopy(RESUME_CASES[case]))
    total = train(cfg, tmp_path / "straight")["global_step"]
    interrupted = copy.deepcopy(cfg)
    interrupted["train"]["max_steps"] = 2  # stops inside epoch 1, writing last.pt as an interruption would
    assert train(interrupted, tmp_path / "resumed")["stopped_early"]
    steps_taken = recorded_steps(monkeypatch)
    summary = train(cfg, tmp_path / "resumed", resume=True)
    assert not summary["stopped_early"]
    # A fresh seeded run would reproduce the straight run too: the resumed one must start at step 3.
    assert steps_taken == list(range(3, total + 1))
    assert_same_state(state_of(tmp_path / "straight"), state_of(tmp_path / "resumed"))
    straight = json.loads((tmp_path / "straight" / "log.json").read_text())["epochs"]
    resumed = json.loads((tmp_path / "resumed" / "log.json").read_text())["epochs"]
    drop = {"seconds", "peak_memory_mb"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in straight] == [
        {k: v for k, v in r.items() if k not in drop} for r in resumed
    ]


def recorded_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The global step of every optimisation step taken from now on (filled as training runs)."""
    steps: list[int] = []
    record = Trainer._record

    def spy(self, terms, extras):
        record(self, terms, extras)
        steps.append(self.global_step)

    monkeypatch.setattr(Trainer, "_record", spy)
    return steps


def test_resume_refuses_a_changed_recipe(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train={"max_steps": 1})
    train(cfg, tmp_path / "run")
    cfg["data"]["patch"] = 16
    with pytest.raises(ValueError, match="differs .* in data"):
        train(cfg, tmp_path / "run", resume=True)


def test_teacher_cache_is_built_once_and_matches_the_teacher(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(
        tmp_path, synthetic_root, **copy.deepcopy(MMDR_DISTILL), data={"flips": False}, train={"max_steps": 1}
    )
    trainer = Trainer(cfg, tmp_path / "a")
    cache = trainer.caches[1]
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and sorted(cache.names) == ["feat11", OUTPUT_KEY]
    ir, vis = trainer.pool.crop(3)
    with torch.no_grad():
        live = trainer.teacher(torch.from_numpy(ir)[None, None], torch.from_numpy(vis)[None, None], raw=True)
    np.testing.assert_allclose(cache.get(3)[OUTPUT_KEY].astype(np.float32), live[0].numpy(), atol=2e-3)
    stamp = entries[0].stat().st_mtime_ns
    Trainer(cfg, tmp_path / "b")  # same teacher, data and patches: the cache is reused
    assert list((tmp_path / "cache").iterdir()) == entries and entries[0].stat().st_mtime_ns == stamp
    cfg["data"]["patch"] = 16
    Trainer(cfg, tmp_path / "c")
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_student_layer_inherits_the_teachers(tmp_path: Path, synthetic_root: Path) -> None:
    teacher_path = tmp_path / "teacher.safetensors"
    from safetensors.torch import save_file

    torch.manual_seed(0)
    save_file(create("mmdr-teacher", weights=None).state_dict(), str(teacher_path))
    cfg = tiny_config(
        tmp_path,
        synthetic_root,
        teacher={"name": "mmdr-teacher", "weights": str(teacher_path)},
        student={"name": "mmdr-mini", "init_from_teacher": {"conv2": "conv00"}},
    )
    trainer = Trainer(cfg, tmp_path / "run")
    for ours, theirs in zip(trainer.student.conv2.parameters(), trainer.teacher.conv00.parameters(), strict=True):
        assert torch.equal(ours, theirs)


@pytest.fixture
def restore_determinism():
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_bf16_autocast_and_deterministic_mode(tmp_path: Path, synthetic_root: Path, restore_determinism) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train={"amp": "bf16", "deterministic": True, "epochs": 1})
    train(cfg, tmp_path / "run")
    assert torch.are_deterministic_algorithms_enabled()
    assert all(torch.isfinite(v).all() for v in state_of(tmp_path / "run").values())


def test_autoencoder_strategy_reconstructs(tmp_path: Path, synthetic_root: Path) -> None:
    require_models("hkd-teacher")
    cfg = tiny_config(
        tmp_path,
        synthetic_root,
        student={"name": "hkd-teacher"},
        strategy={"name": "autoencoder"},
        losses=[{"type": "hkd_teacher", "weight": 1.0, "mu": 1.0, "perceptual": False}],
        train={"epochs": 1, "max_steps": 2},
    )
    assert train(cfg, tmp_path / "run")["global_step"] == 2


def test_two_stage_sr_switches_phase_and_optimizer(tmp_path: Path, synthetic_root: Path) -> None:
    require_models("hkd-student-x2", "hkd-teacher")
    cfg = tiny_config(
        tmp_path,
        synthetic_root,
        student={"name": "hkd-student-x2"},
        teacher={"name": "hkd-teacher", "weights": None},
        losses=[],
        distillers=[{"type": "hkd", "pairs": [["sr_uper_fe", "x2"], ["sr_feature", "out_fe"]]}],
        strategy={
            "name": "two_stage_sr",
            "scale": 2,
            "fusion_epochs": 1,
            "fusion_module": "fusion",
            "fusion_distillers": [
                {"name": "hkd_fusion", "type": "hkd", "stage": "fusion", "fusion_pair": ["fusion_feature", "out_fe"]}
            ],
        },
        data={"patch": 16, "patches_per_image": 1, "batch": 2, "val_pairs": 0},
        optimizer={"lr": 1e-4},
    )
    trainer = Trainer(cfg, tmp_path / "run")
    sr_before = {k: v.clone() for k, v in trainer.student.sr.state_dict().items()}
    trainer.cfg["train"]["max_steps"] = 1
    trainer.fit()
    assert trainer.phase.name == "fusion"  # stage 1 trains the fusion part alone
    assert all(torch.equal(v, trainer.student.sr.state_dict()[k]) for k, v in sr_before.items())
    assert set(trainer.caches) == {1, 2}  # teacher on LR inputs (stage 1) and on HR patches (stage 2)
    cfg["train"]["max_steps"] = None
    train(cfg, tmp_path / "run", resume=True)
    rows = json.loads((tmp_path / "run" / "log.json").read_text())["epochs"]
    assert [r["phase"] for r in rows] == ["fusion", "sr"]
    assert "hkd_fusion/hkd:fusion:fusion_feature/out_fe" in rows[0] and "hkd:label" in rows[1]


def test_cli_trains_and_resumes(tmp_path: Path, synthetic_root: Path, capsys: pytest.CaptureFixture) -> None:
    from distilfuse.cli.main import main

    recipe = Path(__file__).resolve().parents[2] / "configs" / "default_mmdr_mini.yaml"
    data = f"data.sources=[{{root: {synthetic_root}}}]"
    flags = ["--smoke", "--quiet", "--out", str(tmp_path / "cli")]
    assert main(["train", str(recipe), data, "train.max_steps=2", *flags]) == 0
    assert main(["train", str(recipe), data, *flags, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resumed" in out and "best SSIM" in out
    assert main(["train", str(recipe), "train.amp=fp8"]) == 2


# ------------------------------------------------------------------------------ robustness (issue 11)
def test_an_existing_run_is_refused_unless_resumed_or_overwritten(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train={"epochs": 1, "max_steps": 2})
    train(cfg, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(ValueError, match="already holds a run .*--resume.*--overwrite"):
        train(cfg, tmp_path / "run")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    (tmp_path / "run" / "best.pt").write_bytes(b"an earlier run's best")
    cfg["train"]["max_steps"] = None
    cfg["data"]["val_pairs"] = 0  # no validation: this run writes no best.pt of its own
    train(cfg, tmp_path / "run", overwrite=True)
    assert json.loads((tmp_path / "run" / "log.json").read_text())["global_step"] == 6
    assert not (tmp_path / "run" / "best.pt").exists(), "a file of the earlier run survived"


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_resume_falls_back_to_the_previous_checkpoint(
    damage: str, tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train={"epochs": 1, "checkpoint_every_steps": 1})
    straight = tiny_config(tmp_path, synthetic_root, train={"epochs": 1})
    train(straight, tmp_path / "straight")
    interrupted = copy.deepcopy(cfg)
    interrupted["train"]["max_steps"] = 3  # last.pt at step 3, the previous one (step 2) kept beside it
    train(interrupted, tmp_path / "run")
    last = tmp_path / "run" / "last.pt"
    assert (tmp_path / "run" / "last.previous.pt").is_file()
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2] if damage == "truncated" else b"")
    steps_taken = recorded_steps(monkeypatch)
    train(cfg, tmp_path / "run", resume=True)
    assert "last.pt: unreadable checkpoint" in capsys.readouterr().out
    assert steps_taken[0] == 3  # from the previous checkpoint, at step 2
    assert_same_state(state_of(tmp_path / "straight"), state_of(tmp_path / "run"))


def test_resume_without_a_usable_checkpoint_is_one_line(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, train={"epochs": 1})
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="no checkpoint at"):
        train(cfg, tmp_path / "run", resume=True)
    (tmp_path / "run" / "last.pt").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ValueError, match=r"last.pt: unreadable checkpoint \(") as info:
        train(cfg, tmp_path / "run", resume=True)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("metric", "pick"), [("Qabf", max), ("MSE", min)])
def test_best_epoch_follows_the_metrics_own_direction(metric: str, pick, tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(
        tmp_path,
        synthetic_root,
        train={"epochs": 4},
        validation={"metrics": ["Qabf", "MSE"], "best_metric": metric},
        optimizer={"lr": 3e-2},
    )
    summary = train(cfg, tmp_path / "run")
    values = [row[f"val_{metric}"] for row in json.loads((tmp_path / "run" / "log.json").read_text())["epochs"]]
    assert len(set(values)) == len(values)  # distinct, so the direction decides
    assert summary["best"] == {"epoch": values.index(pick(values)) + 1, "metric": metric, "value": pick(values)}


@pytest.mark.parametrize(
    ("space", "val_stretch"), [("raw", None), ("stretch", None), ("raw", True), ("stretch", False)]
)
def test_stretch_loss_space_trains_and_validates_the_stretched_output(
    space: str, val_stretch: bool | None, tmp_path: Path, synthetic_root: Path
) -> None:
    """`loss_space: stretch` trains and validates on the stretched output; `validation.stretch` alone only
    validates on it (a run trained on the raw output, its checkpoint chosen for a stretching protocol); weights of
    either are declared as read stretched."""
    cfg = tiny_config(
        tmp_path, synthetic_root, train={"loss_space": space, "epochs": 1}, validation={"stretch": val_stretch}
    )
    trainer = Trainer(cfg, tmp_path / "r")
    raw = 0.2 + 0.3 * torch.rand(2, 1, 8, 8)
    expected = min_max_stretch_batch(raw) if space == "stretch" else raw
    assert torch.equal(trainer.loss_space(raw), expected)
    validated_stretched = space == "stretch" if val_stretch is None else val_stretch
    assert trainer.validator.stretch == validated_stretched
    assert math.isfinite(trainer.fit()["best"]["value"])
    declared = "stretch" if space == "stretch" or validated_stretched else "clip"
    for name in ("best.safetensors", "last.safetensors"):  # `fuse` reads them as they were trained and chosen
        assert create("mmdr-mini", weights=tmp_path / "r" / name).output_range == declared


def test_a_mode_against_the_metrics_direction_is_refused(tmp_path: Path, synthetic_root: Path) -> None:
    cfg = tiny_config(tmp_path, synthetic_root, validation={"best_metric": "Nabf", "metrics": ["Nabf"], "mode": "max"})
    with pytest.raises(ValueError, match="validation.mode max contradicts Nabf, for which minimum is best"):
        Trainer(cfg, tmp_path / "run")


def test_checkpoints_every_n_steps(tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[tuple[str, int]] = []
    save = Trainer._save

    def spy(self, name, weights_name=None):
        saved.append((name, self.global_step))
        save(self, name, weights_name)

    monkeypatch.setattr(Trainer, "_save", spy)
    cfg = tiny_config(tmp_path, synthetic_root, train={"epochs": 2, "checkpoint_every_steps": 3})
    train(cfg, tmp_path / "run")
    assert [step for name, step in saved if name == "last.pt"] == [3, 5, 6, 9, 10]  # every 3 steps, and each epoch


@pytest.mark.parametrize(
    "scheduler",
    [
        {"type": "cosine", "min_lr": 1e-3},
        {"type": "onecycle", "max_lr": 5e-2, "pct_start": 0.3},
    ],
    ids=["cosine", "onecycle"],
)
def test_schedulers_step_once_per_optimizer_step(scheduler: dict, tmp_path: Path, synthetic_root: Path) -> None:
    from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

    cfg = tiny_config(tmp_path, synthetic_root, scheduler=scheduler, train={"epochs": 2, "log_every": 1})
    train(cfg, tmp_path / "run")
    logged = [row["lr"] for row in json.loads((tmp_path / "run" / "log.json").read_text())["epochs"]]
    steps = [r for r in (tmp_path / "run" / "steps.csv").read_text().splitlines()[1:]]
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-2)
    reference = (
        CosineAnnealingLR(optimizer, T_max=10, eta_min=1e-3)
        if scheduler["type"] == "cosine"
        else OneCycleLR(optimizer, max_lr=5e-2, total_steps=10, pct_start=0.3)
    )
    expected = []
    for _ in range(10):
        optimizer.step()
        reference.step()
        expected.append(optimizer.param_groups[0]["lr"])
    assert len(steps) == 10
    np.testing.assert_allclose(logged, [expected[4], expected[9]], rtol=1e-12)


def test_missing_data_names_the_path_tried(
    tmp_path: Path, synthetic_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config(tmp_path, synthetic_root, data={"sources": [{"root": "../elsewhere/RoadScene"}]})
    with pytest.raises(ValueError) as info:
        Trainer(cfg, tmp_path / "run")
    assert str(info.value).startswith(f"data.sources.0.root: {tmp_path / '../elsewhere/RoadScene'} does not exist")
    assert "working directory" in str(info.value) and "DISTILFUSE_DATA" in str(info.value)
    cfg = tiny_config(tmp_path, synthetic_root, data={"sources": [{"root": str(synthetic_root), "split": "no.txt"}]})
    with pytest.raises(ValueError, match=f"data.sources.0.split: {tmp_path / 'no.txt'} does not exist"):
        Trainer(cfg, tmp_path / "run")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train.epoch=3"], "unknown key train.epoch; did you mean train.epochs?"),
        (["optimizer.lr=-1"], "optimizer.lr must be > 0, not -1"),
        (["--device", "gpu0"], "--device gpu0: not a device name"),
        (["--resume", "--overwrite"], "give --resume or --overwrite, not both"),
        (["--threads", "0"], "argument --threads"),
    ],
)
def test_cli_train_errors_are_one_line(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    from distilfuse.cli.main import main

    recipe = Path(__file__).resolve().parents[2] / "configs" / "default_mmdr_mini.yaml"
    try:
        code = main(["train", str(recipe), *argv, "--out", str(tmp_path / "run")])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_partial_files_of_a_killed_run_are_removed(tmp_path: Path, synthetic_root: Path) -> None:
    import subprocess
    import sys

    from distilfuse.io.atomic import PARTIAL_MARK

    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # a writer that no longer runs, as after kill -9
    partial = tmp_path / "run" / f".last.pt{PARTIAL_MARK}{finished.pid}-0badcafe"
    partial.parent.mkdir()
    partial.write_bytes(b"half a checkpoint")
    Trainer(tiny_config(tmp_path, synthetic_root), tmp_path / "run")
    assert not partial.exists()


@pytest.mark.parametrize("epoch", ["generator", "batches"])
def test_adversarial_epoch_accounting(epoch: str, tmp_path: Path, synthetic_root: Path) -> None:
    require_models("scakd-discriminator")
    case = copy.deepcopy(RESUME_CASES["adversarial"])
    case["strategy"]["epoch"] = epoch
    trainer = Trainer(tiny_config(tmp_path, synthetic_root, **case), tmp_path / "run")
    batches = len(trainer.sampler.shard) // trainer.sampler.batch  # one traversal of the patches
    # Algorithm 1: an epoch is m = N/b generator steps, each after k = 2 discriminator steps on other batches
    assert trainer.steps_per_epoch == (batches if epoch == "generator" else batches // 3)
    generator_batches = list(trainer.sampler)[2::3]
    assert len(generator_batches) == trainer.steps_per_epoch
    if epoch == "generator":  # the generator's batches traverse the patches once
        assert sorted(i for b in generator_batches for i, _ in b) == sorted(trainer.sampler.shard.tolist())


def test_an_ensemble_teacher_caches_each_member_and_trains_the_select_distiller(
    tmp_path: Path, synthetic_root: Path
) -> None:
    members = [{"name": "mmdr-teacher", "weights": None}, {"name": "mmdr-mini", "weights": None}]
    cfg = tiny_config(
        tmp_path,
        synthetic_root,
        teacher={"members": members},
        distillers=[{"type": "select"}],
        data={"flips": False},
        train={"epochs": 1},
    )
    trainer = Trainer(cfg, tmp_path / "a")
    entries = sorted((tmp_path / "cache").iterdir())
    assert len(entries) == 2, "one cache per member"
    ir, vis = trainer.pool.crop(2)
    with torch.no_grad():
        live = trainer.teacher(torch.from_numpy(ir)[None, None], torch.from_numpy(vis)[None, None], raw=True)
    cached = trainer.caches[1].get(2)[OUTPUT_KEY].astype(np.float32)
    assert cached.shape == (2, 24, 24)
    np.testing.assert_allclose(cached, live[0].numpy(), atol=2e-3)
    assert trainer.fit()["global_step"] > 0
    assert "select:out" in json.loads((tmp_path / "a" / "log.json").read_text())["epochs"][0]
    Trainer(cfg, tmp_path / "b")
    assert sorted((tmp_path / "cache").iterdir()) == entries, "both member caches reused"
