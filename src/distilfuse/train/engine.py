"""The training loop shared by every strategy: data, models, teacher cache, checkpoints, validation, logs."""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from distilfuse.data.patches import (
    PatchDataset,
    PatchPool,
    ShardedBatchSampler,
    downsample,
    list_pairs,
    load_pair,
    split_pairs,
    validation_crops,
)
from distilfuse.io.atomic import remove_stale_partials
from distilfuse.models import FeatureTaps, create, freeze
from distilfuse.report.figures import plot_curves
from distilfuse.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    previous_checkpoint,
    rng_state,
    save_checkpoint,
    save_weights,
    seed_everything,
    set_rng_state,
)
from distilfuse.train.config import ConfigError, path_variables
from distilfuse.train.distributed import DistContext, unwrap
from distilfuse.train.logs import loss_series, write_csv, write_json
from distilfuse.train.optim import build_optimizer, build_scheduler
from distilfuse.train.strategies import STRATEGIES, Phase, Strategy
from distilfuse.train.teacher_cache import OUTPUT_KEY, TeacherCache, teacher_inputs

CHECKPOINT_FORMAT = 1
# What a run writes into its folder (a new run refuses a folder holding any of them).
RUN_FILES = (
    "last.pt",
    "last.previous.pt",
    "best.pt",
    "last.safetensors",
    "best.safetensors",
    "log.csv",
    "steps.csv",
    "log.json",
    "curves.png",
)
# Sections that must not change between a checkpoint and the run resuming it.
RESUME_FIXED = ("seed", "student", "teacher", "losses", "distillers", "optimizer", "scheduler", "strategy", "data")


class Trainer:
    """Builds a run from a config and trains it: `Trainer(cfg, out_dir).fit()`.

    Strategies (`distilfuse.train.strategies`) decide what one optimisation step does; everything
    else (data order, teacher targets, checkpoints, validation, logs, DDP, AMP) lives here.
    """

    def __init__(
        self,
        cfg: dict[str, Any],
        out_dir: str | Path,
        device: str = "cpu",
        resume: bool = False,
        progress: bool | None = None,
        overwrite: bool = False,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        requested = torch.device(device)
        if requested.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine")
        self.dist = DistContext.from_env(requested.type)
        self._claim_run_folder(resume, overwrite)
        self.device = (
            torch.device("cuda", self.dist.local_rank) if requested.type == "cuda" and self.dist.enabled else requested
        )
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        tcfg = cfg["train"]
        self.progress = (tcfg["progress"] if progress is None else progress) and self.dist.is_main
        self._set_determinism(tcfg["deterministic"])
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[tcfg["amp"]]
        if self.amp_dtype is torch.float16 and self.device.type != "cuda":
            raise ConfigError("train.amp: fp16 needs --device cuda (use bf16 on the CPU)")
        self.seed = int(cfg["seed"])
        seed_everything(self.seed)

        self._build_models()
        self.scale = int(cfg["strategy"].get("scale", 1))
        if getattr(self.student, "scale", 1) != self.scale:
            raise ConfigError(
                f"student {cfg['student']['name']} has scale {getattr(self.student, 'scale', 1)}, "
                f"strategy.scale is {self.scale}"
            )
        if cfg["train"]["loss_space"] not in ("raw", "unit"):
            raise ConfigError("train.loss_space must be raw or unit")
        self._build_data()
        self.strategy: Strategy = self._make_strategy()
        per_step = self.strategy.batches_per_step
        self.steps_per_epoch = self.sampler.batches_per_epoch // per_step
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"{len(self.pool)} patches give no full step of {per_step} batch(es) of "
                f"{cfg['data']['batch']}: raise data.patches_per_image or lower data.batch"
            )
        self._build_caches()

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.phase: Phase | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.epoch_sums: dict[str, float] = defaultdict(float)
        self.history: list[dict[str, Any]] = []
        self.step_log: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}
        self._resume_state: dict[str, Any] | None = self._load_resume() if resume else None

    # ----------------------------------------------------------------------------------- building
    def _claim_run_folder(self, resume: bool, overwrite: bool) -> None:
        """Refuse to train over an earlier run unless resuming it or told to overwrite it (its files are then
        deleted, so none of them mixes with the new run's); clear partial files of killed writes."""
        earlier = [self.out_dir / name for name in RUN_FILES if (self.out_dir / name).exists()]
        if earlier and not resume and not overwrite:
            raise ConfigError(
                f"{self.out_dir} already holds a run ({earlier[0].name}); continue it with --resume, "
                "replace it with --overwrite, or choose another --out"
            )
        if self.dist.is_main:
            if overwrite and not resume:
                for path in earlier:
                    path.unlink()
            remove_stale_partials(self.out_dir)

    def _set_determinism(self, mode: bool | str) -> None:
        if mode:
            # Some CUDA kernels (e.g. reflection-pad backward) have no deterministic version: "warn" keeps going.
            torch.use_deterministic_algorithms(True, warn_only=(mode == "warn"))
            torch.backends.cudnn.benchmark = False
            if self.device.type == "cuda":
                import os

                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

    def _build_models(self) -> None:
        cfg = self.cfg
        scfg = cfg["student"]
        self.student = create(scfg["name"], weights=scfg.get("weights")).to(self.device).train()
        for prefix in getattr(self.student, "unused_parameters", ()):
            for name, p in self.student.named_parameters():
                if name.startswith(prefix):
                    p.requires_grad_(False)  # defined by the official layout but never used: DDP would wait on them
        self.teacher: nn.Module | None = None
        if cfg["teacher"] is not None:
            tcfg = cfg["teacher"]
            self.teacher = freeze(create(tcfg["name"], weights=tcfg.get("weights", "default"))).to(self.device)
            for student_path, teacher_path in (scfg.get("init_from_teacher") or {}).items():
                self._inherit(student_path, teacher_path)
        elif scfg.get("init_from_teacher"):
            raise ConfigError("student.init_from_teacher needs a teacher")
        self.task_loss: nn.Module | None = None
        if cfg["losses"]:
            from distilfuse.losses import CompositeLoss

            self.task_loss = CompositeLoss(cfg["losses"]).to(self.device)
        self.distillers = nn.ModuleDict()

    def _inherit(self, student_path: str, teacher_path: str) -> None:
        """Copy a teacher submodule's weights into the same-shaped student submodule."""
        try:
            target = self.student.get_submodule(student_path)
            source = unwrap(self.teacher).get_submodule(teacher_path)
        except AttributeError as exc:
            raise ConfigError(f"student.init_from_teacher: {exc}") from None
        try:
            target.load_state_dict(source.state_dict())
        except RuntimeError as exc:
            raise ConfigError(
                f"student.init_from_teacher: student {student_path} and teacher {teacher_path} "
                f"differ ({str(exc).splitlines()[-1].strip()})"
            ) from None

    def build_distillers(self, specs: Sequence[dict[str, Any]]) -> list[str]:
        """Build distillers (names: spec `name`, else its type) and return their names."""
        if not specs:
            return []
        if self.teacher is None:
            raise ConfigError("distillers need a teacher")
        from distilfuse.distill import build_distiller

        names = []
        for spec in specs:
            name = spec.get("name") or spec["type"]
            if name in self.distillers:
                raise ConfigError(f"two distillers are named {name!r}: give them distinct 'name' keys")
            spec = {k: v for k, v in spec.items() if k != "name"}
            self.distillers[name] = build_distiller(spec, self.student, self.teacher).to(self.device)
            names.append(name)
        return names

    def _make_strategy(self) -> Strategy:
        spec = self.cfg["strategy"]
        if spec.get("name") not in STRATEGIES:
            raise ConfigError(f"strategy.name {spec.get('name')!r} is unknown; choose from {', '.join(STRATEGIES)}")
        return STRATEGIES[spec["name"]](self, spec)

    def _build_data(self) -> None:
        dcfg = self.cfg["data"]
        if dcfg["patch"] % self.scale or dcfg["val_patch"] % self.scale:
            raise ConfigError(f"data.patch and data.val_patch must be multiples of the scale {self.scale}")
        for i, source in enumerate(dcfg["sources"]):
            for key, exists in (("root", Path.is_dir), ("split", Path.is_file)):
                if source.get(key) and not exists(Path(source[key])):
                    raise ConfigError(
                        f"data.sources.{i}.{key}: {Path(source[key]).absolute()} does not exist (relative paths start "
                        f"from the working directory; ${{DATA}} is {path_variables()['DATA']}, set by DISTILFUSE_DATA)"
                    )
        pairs = list_pairs(dcfg["sources"])
        train_pairs, val_pairs = split_pairs(pairs, int(dcfg["val_pairs"]), self.seed)
        self.train_pairs, self.val_pairs = train_pairs, val_pairs
        images = [load_pair(p) for p in train_pairs]
        self.pool = PatchPool(images, train_pairs, dcfg["patch"], dcfg["patches_per_image"], self.seed)
        self.dataset = PatchDataset(self.pool)
        if dcfg["batch"] % self.dist.world:
            raise ConfigError(f"data.batch {dcfg['batch']} must be divisible by the {self.dist.world} processes")
        self.sampler = ShardedBatchSampler(
            len(self.pool),
            dcfg["batch"] // self.dist.world,
            self.seed,
            self.dist.rank,
            self.dist.world,
            flips=bool(dcfg["flips"]),
        )
        self.val_crops = validation_crops(
            [load_pair(p) for p in val_pairs],
            dcfg["val_patch"],
            dcfg["val_patches_per_image"],
            self.seed,
            multiple=self.scale,
        )
        if self.val_crops:
            self._check_validation_metrics()

    def _check_validation_metrics(self) -> None:
        """Canonical metric names, and the best-checkpoint metric among them, whose own direction (higher or
        lower is better) decides which epoch is best (checked before any training)."""
        from distilfuse.metrics import METRICS, resolve_metric_names

        vcfg = self.cfg["validation"]
        try:
            vcfg["metrics"] = resolve_metric_names(vcfg["metrics"])
            best = resolve_metric_names([vcfg["best_metric"]])[0]
        except ValueError as exc:
            raise ConfigError(f"validation: {exc}") from None
        if best not in vcfg["metrics"]:
            raise ConfigError(f"validation.best_metric {best} is not in validation.metrics {vcfg['metrics']}")
        vcfg["best_metric"] = best
        self.best_is_higher = METRICS[best].higher_is_better
        expected = "max" if self.best_is_higher else "min"
        if vcfg.get("mode", expected) != expected:
            raise ConfigError(
                f"validation.mode {vcfg['mode']} contradicts {best}, for which {expected}imum is best; "
                "drop validation.mode (the metric decides)"
            )

    def _build_caches(self) -> None:
        """One cache per teacher input scale used by any phase (rank 0 computes, the others wait)."""
        self.caches: dict[int, TeacherCache] = {}
        ccfg = self.cfg["cache"]
        if self.teacher is None or not ccfg["enabled"]:
            return
        needed: dict[int, set[str]] = defaultdict(set)
        for phase in self.strategy.phases.values():
            if phase.distillers:
                needed[phase.teacher_scale] |= self.teacher_features(phase)
        for order in range(2):  # rank 0 builds; then the others open what it built
            if (order == 0) == self.dist.is_main:
                for scale, features in needed.items():
                    self.caches[scale] = TeacherCache.build_or_load(
                        ccfg["dir"],
                        self.cfg["teacher"]["name"],
                        self.teacher,
                        sorted(features),
                        self.pool,
                        scale=scale,
                        dtype=ccfg["dtype"],
                        batch=int(ccfg["batch"]),
                        device=self.device,
                        progress=self.progress,
                    )
            self.dist.barrier()

    def teacher_features(self, phase: Phase) -> set[str]:
        return {f for name in phase.distillers for f in self.distillers[name].teacher_features}

    def student_features(self, phase: Phase) -> set[str]:
        return {f for name in phase.distillers for f in self.distillers[name].student_features}

    # ------------------------------------------------------------------------------ phase set-up
    def enter_phase(self, phase: Phase) -> None:
        """Wrap what this phase trains for DDP and build its optimizers, schedulers and scalers."""
        self.phase = phase
        module = self.student.get_submodule(phase.module) if phase.module else self.student
        self.runner = self.dist.wrap(module, self.device)
        self.distiller_runners = {n: self.dist.wrap(self.distillers[n], self.device) for n in phase.distillers}
        phase_steps = phase.epochs * self.steps_per_epoch
        self.optimizers = self.strategy.build_optimizers(phase)
        self.schedulers = {}
        main = self.strategy.scheduled_optimizer
        if main in self.optimizers:
            scheduler = build_scheduler(self.cfg["scheduler"], self.optimizers[main], phase_steps)
            if scheduler is not None:
                self.schedulers[main] = scheduler
        use_scaler = self.amp_dtype is torch.float16
        self.scalers = {n: torch.amp.GradScaler(self.device.type, enabled=use_scaler) for n in self.optimizers}

    def phase_parameters(self, phase: Phase) -> list[nn.Parameter]:
        module = self.student.get_submodule(phase.module) if phase.module else self.student
        params = [p for p in module.parameters() if p.requires_grad]
        for name in phase.distillers:
            params += [p for p in self.distillers[name].parameters() if p.requires_grad]
        return params

    def build_optimizer(self, params: list[nn.Parameter], spec: dict[str, Any] | None = None):
        return build_optimizer(spec or self.cfg["optimizer"], params)

    # -------------------------------------------------------------------------------- one step
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def student_inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        return downsample(batch["ir"], self.scale), downsample(batch["vis"], self.scale)

    def run_student(self, ir: Tensor, vis: Tensor, features: set[str] | Sequence[str] = ()) -> tuple[Tensor, dict]:
        """Raw output of what the phase trains (the student, or its `phase.module`) and tapped features."""
        with FeatureTaps(self.student, sorted(features)) as taps:
            out = self.runner(ir, vis) if self.phase.module else self.runner(ir, vis, raw=True)
        return out, dict(taps.features)

    def teacher_targets(self, batch: dict[str, Any], phase: Phase) -> tuple[Tensor, dict[str, Tensor]]:
        """Raw teacher output and tapped features: from the cache, or computed now when it is off."""
        names = sorted(self.teacher_features(phase))
        if "teacher" in batch:
            cached = batch["teacher"]
            return cached[OUTPUT_KEY], {n: cached[n] for n in names}
        ir, vis = teacher_inputs(batch["ir"], batch["vis"], phase.teacher_scale)
        with torch.no_grad(), FeatureTaps(self.teacher, names) as taps:
            out = self.teacher(ir, vis, raw=True)
        return out, dict(taps.features)

    def generator_terms(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """The student's raw output and its weighted loss terms (task losses, then distillers)."""
        phase = self.phase
        ir_in, vis_in = self.student_inputs(batch)
        with self.autocast():
            out, s_feats = self.run_student(ir_in, vis_in, self.student_features(phase))
            terms: dict[str, Tensor] = {}
            # Sources at the output's resolution: HR patches for fused/SR outputs, LR inputs otherwise.
            if out.shape[-2:] == batch["ir"].shape[-2:]:
                ir_ref, vis_ref = batch["ir"], batch["vis"]
            else:
                ir_ref, vis_ref = ir_in, vis_in
            if phase.task_losses and self.task_loss is not None:
                terms.update(self.task_loss(self.loss_space(out), ir_ref, vis_ref))
            if phase.distillers:
                t_out, t_feats = self.teacher_targets(batch, phase)
                for name in phase.distillers:
                    distiller = self.distillers[name]
                    # Keys already name the distiller's type; a custom spec name is added in front.
                    prefix = "" if name == getattr(distiller, "name", name) else f"{name}/"
                    for key, value in self.distiller_runners[name](
                        s_feats, t_feats, out, t_out, ir_ref, vis_ref
                    ).items():
                        terms[prefix + key] = value
        return out, terms

    def loss_space(self, raw: Tensor) -> Tensor:
        """What task and adversarial losses see: the raw output, or the model's map to [0,1]
        (`train.loss_space: unit`, for tanh generators whose raw output lives in [-1,1])."""
        if self.cfg["train"]["loss_space"] == "unit":
            return unwrap(self.student).to_unit_range(raw)
        return raw

    def optimize(self, loss: Tensor, name: str) -> None:
        """Backward (scaled under fp16), optimizer step, zero the gradients, advance its schedule."""
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if name in self.schedulers:
            self.schedulers[name].step()

    # ------------------------------------------------------------------------------------ loop
    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        def move(x: Any) -> Any:
            if isinstance(x, Tensor):
                return x.to(self.device, non_blocking=True)
            if isinstance(x, dict):
                return {k: move(v) for k, v in x.items()}
            return x

        return move(batch)

    def _loader(self) -> Iterator[dict[str, Any]]:
        workers = int(self.cfg["data"]["workers"])
        # A private generator: making the iterator must not draw from the global RNG (exact resume).
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator(),
            persistent_workers=False,
        )
        return iter(loader)

    def fit(self) -> dict[str, Any]:
        """Train to the end (or to `train.max_steps`); returns a summary."""
        tcfg = self.cfg["train"]
        epochs, max_steps = int(tcfg["epochs"]), tcfg["max_steps"]
        every = int(tcfg["checkpoint_every_steps"] or 0)
        if self._resume_state is not None:
            self._restore(self._resume_state)
            self._resume_state = None
        stopped = False
        try:
            while self.epoch < epochs and not stopped:
                phase = self.strategy.phase_for(self.epoch)
                if phase is not self.phase:
                    self.enter_phase(phase)
                self.dataset.teacher_cache = self.caches.get(phase.teacher_scale) if phase.distillers else None
                per_step = self.strategy.batches_per_step
                self.sampler.set_epoch(self.epoch, self.step_in_epoch * per_step)
                if self.step_in_epoch == 0:
                    self.epoch_sums = defaultdict(float)
                self._epoch_start = time.perf_counter()
                if self.device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(self.device)
                bar = tqdm(
                    total=self.steps_per_epoch,
                    initial=self.step_in_epoch,
                    disable=not self.progress,
                    desc=f"epoch {self.epoch + 1}/{epochs}",
                    unit="step",
                    leave=False,
                    dynamic_ncols=True,
                )
                group: list[dict[str, Any]] = []
                for batch in self._loader():
                    group.append(self._to_device(batch))
                    if len(group) < per_step:
                        continue
                    terms, extras = self.strategy.step(group)
                    group = []
                    self._record(terms, extras)
                    bar.update(1)
                    bar.set_postfix(loss=f"{self._last_total:.4g}")
                    if self.step_in_epoch == self.steps_per_epoch:
                        break
                    if max_steps is not None and self.global_step >= max_steps:
                        stopped = True
                        break
                    if every and self.global_step % every == 0:
                        self._save("last.pt")
                bar.close()
                if stopped:
                    self._save("last.pt")
                    break
                self._end_epoch(epochs)
                if max_steps is not None and self.global_step >= max_steps:
                    stopped = True
        finally:
            self.dist.close()
        return {
            "epochs_done": self.epoch,
            "global_step": self.global_step,
            "stopped_early": stopped,
            "best": self.best,
            "out_dir": str(self.out_dir),
        }

    def _record(self, terms: dict[str, Tensor], extras: dict[str, Tensor]) -> None:
        values = {k: float(v.detach()) for k, v in terms.items()}
        values["loss"] = self._last_total = float(sum(values.values()))
        values.update({k: float(v.detach()) for k, v in extras.items()})
        for k, v in values.items():
            self.epoch_sums[k] += v
        self.step_in_epoch += 1
        self.global_step += 1
        log_every = int(self.cfg["train"]["log_every"] or 0)
        if self.dist.is_main and log_every and self.global_step % log_every == 0:
            lr = self._lr()
            self.step_log.append(
                {"step": self.global_step, "epoch": self.epoch + 1, **({"lr": lr} if lr is not None else {}), **values}
            )

    def _lr(self) -> float | None:
        name = self.strategy.scheduled_optimizer
        return self.optimizers[name].param_groups[0]["lr"] if name in self.optimizers else None

    def _end_epoch(self, epochs: int) -> None:
        seconds = time.perf_counter() - self._epoch_start
        steps = self.step_in_epoch
        row: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "phase": self.phase.name,
            "steps": steps,
            "seconds": round(seconds, 3),
            "peak_memory_mb": round(self._peak_memory_mb(), 1),
        }
        lr = self._lr()
        if lr is not None:
            row["lr"] = lr
        row.update({k: v / max(steps, 1) for k, v in self.epoch_sums.items()})
        self.epoch += 1
        self.step_in_epoch = 0
        every = int(self.cfg["train"]["validate_every"] or 0)
        improved = False
        if self.val_crops and every and (self.epoch % every == 0 or self.epoch == epochs):
            scores = self.validate() if self.dist.is_main else {}
            row.update({f"val_{k}": v for k, v in scores.items()})
            improved = self.dist.broadcast(self._is_best(scores) if self.dist.is_main else False)
            if improved and self.dist.is_main:
                vcfg = self.cfg["validation"]
                self.best = {"epoch": self.epoch, "metric": vcfg["best_metric"], "value": scores[vcfg["best_metric"]]}
        if self.dist.is_main:
            self.history.append(row)
            self._say(self._epoch_line(row, epochs, improved))
        self._save("last.pt")
        if improved:
            self._save("best.pt", weights_name="best.safetensors")
        if self.dist.is_main:
            save_weights(self.out_dir / "last.safetensors", self.student)
            self._write_logs()

    def _epoch_line(self, row: dict[str, Any], epochs: int, improved: bool) -> str:
        vals = [f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_")]
        best = "  (best)" if improved and vals else ""
        return (
            f"epoch {row['epoch']}/{epochs} [{row['phase']}]  loss {row.get('loss', float('nan')):.4g}  "
            f"{row['seconds']:.1f} s  peak memory {row['peak_memory_mb']:.0f} MB"
            + (f"  | {'  '.join(vals)}{best}" if vals else "")
        )

    def _peak_memory_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB

    def _is_best(self, scores: dict[str, float]) -> bool:
        vcfg = self.cfg["validation"]
        value = scores[vcfg["best_metric"]]
        if not math.isfinite(value):
            return False
        if not self.best or self.best.get("value") is None:
            return True
        return value > self.best["value"] if self.best_is_higher else value < self.best["value"]

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean of the configured metrics over the held-out crops (student in eval mode, fused in [0,1])."""
        import distilfuse.metrics as metrics  # written alongside; imported only when validation runs

        vcfg = self.cfg["validation"]
        self.student.eval()
        sums: dict[str, float] = defaultdict(float)
        count = 0
        by_shape: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        for ir, vis in self.val_crops:
            by_shape[ir.shape].append((ir, vis))
        try:
            for crops in by_shape.values():
                for start in range(0, len(crops), int(vcfg["batch"])):
                    chunk = crops[start : start + int(vcfg["batch"])]
                    ir = torch.from_numpy(np.stack([c[0] for c in chunk]))[:, None].to(self.device)
                    vis = torch.from_numpy(np.stack([c[1] for c in chunk]))[:, None].to(self.device)
                    fused = self.student(downsample(ir, self.scale), downsample(vis, self.scale))
                    scores = metrics.compute_batch(
                        fused.float(), ir, vis, metrics=list(vcfg["metrics"]), data_range=1.0
                    )
                    for k, v in scores.items():
                        sums[k] += float(torch.as_tensor(v, dtype=torch.float64).sum())
                    count += len(chunk)
        finally:
            self.student.train()
        return {k: v / count for k, v in sums.items()}

    # ------------------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        local = {"rng": rng_state(), "strategy": self.strategy.local_state_dict()}
        ranks = self.dist.gather(local)
        if not self.dist.is_main:
            return {}
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.cfg,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "phase": self.phase.name if self.phase else None,
            "student": self.student.state_dict(),
            "distillers": self.distillers.state_dict(),
            "strategy": self.strategy.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
            "ranks": ranks,
            "epoch_sums": dict(self.epoch_sums),
            "history": self.history,
            "step_log": self.step_log,
            "best": self.best,
        }

    def _save(self, name: str, weights_name: str | None = None) -> None:
        state = self._state()  # every rank takes part (gathering rank-local states)
        if self.dist.is_main:
            save_checkpoint(self.out_dir / name, state, keep_previous=name == "last.pt")
            if weights_name:
                save_weights(self.out_dir / weights_name, self.student)
        self.dist.barrier()

    def _load_resume(self) -> dict[str, Any]:
        """last.pt, or the checkpoint it replaced when last.pt is damaged (e.g. by a crash while it was written)."""
        path = self.out_dir / "last.pt"
        problems = []
        for candidate in (path, previous_checkpoint(path)):
            if not candidate.is_file():
                continue
            try:
                state = load_checkpoint(candidate)
                if state.get("format") != CHECKPOINT_FORMAT:
                    raise CheckpointError(
                        f"{candidate}: checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT}"
                    )
            except CheckpointError as exc:
                problems.append(str(exc))
                continue
            if problems:
                self._say(f"{problems[0]}; resuming from the checkpoint before it, {candidate.name}")
            path = candidate
            break
        else:
            raise ConfigError(f"--resume: {'; '.join(problems) or f'no checkpoint at {path}'}")
        self._resume_path = path
        changed = [k for k in RESUME_FIXED if state["config"].get(k) != self.cfg.get(k)]
        if changed:
            raise ConfigError(
                f"--resume: the config differs from {path} in {', '.join(changed)}; "
                "resume with the same recipe (train.* and validation.* may change)"
            )
        if len(state["ranks"]) != self.dist.world:
            raise ConfigError(
                f"--resume: {path} was written by {len(state['ranks'])} processes, this run has {self.dist.world}"
            )
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.student.load_state_dict(state["student"])
        self.distillers.load_state_dict(state["distillers"])
        self.strategy.load_state_dict(state["strategy"])
        phase = self.strategy.phase_for(min(self.epoch, int(self.cfg["train"]["epochs"]) - 1))
        self.enter_phase(phase)
        if state["phase"] == phase.name:  # optimizer states belong to the phase they were saved in
            for kind, objs in (
                ("optimizers", self.optimizers),
                ("schedulers", self.schedulers),
                ("scalers", self.scalers),
            ):
                for k, obj in objs.items():
                    obj.load_state_dict(state[kind][k])
        local = state["ranks"][self.dist.rank]
        self.strategy.load_local_state_dict(local["strategy"])
        self.epoch_sums = defaultdict(float, state["epoch_sums"])
        self.history, self.step_log, self.best = state["history"], state["step_log"], state["best"]
        set_rng_state(local["rng"])
        self._say(
            f"resumed from {self._resume_path} at epoch {self.epoch + 1}, "
            f"step {self.step_in_epoch} of {self.steps_per_epoch}"
        )

    def _write_logs(self) -> None:
        write_csv(self.out_dir / "log.csv", self.history)
        if self.step_log:
            write_csv(self.out_dir / "steps.csv", self.step_log)
        write_json(
            self.out_dir / "log.json",
            {"config": self.cfg, "epochs": self.history, "best": self.best, "global_step": self.global_step},
        )
        if len(self.step_log) > 1:
            plot_curves(self.out_dir / "curves.png", loss_series(self.step_log, "step"), x_label="step")
        else:
            plot_curves(self.out_dir / "curves.png", loss_series(self.history, "epoch"), x_label="epoch")

    def _say(self, message: str) -> None:
        if self.dist.is_main:
            tqdm.write(message)


def train(
    cfg: dict[str, Any],
    out_dir: str | Path,
    device: str = "cpu",
    resume: bool = False,
    progress: bool | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a config (see `distilfuse.train.config.load_config`) into `out_dir`; returns a summary.

    An `out_dir` holding an earlier run is refused unless `resume` (continue it) or `overwrite` (replace it).
    """
    return Trainer(cfg, out_dir, device=device, resume=resume, progress=progress, overwrite=overwrite).fit()
