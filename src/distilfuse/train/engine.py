"""The training loop shared by every strategy: models, phases, one step, epochs, and the run's own state.

Its parts live apart: data in `train.data`, validation in `train.validation`, the teacher cache in
`train.teacher_cache`, the run folder and checkpoint files in `train.checkpoint`, logs in `train.logs`.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from distilfuse.data.patches import PatchDataset, PatchPool, ShardedBatchSampler, downsample
from distilfuse.distill.base import DistillBatch
from distilfuse.models import FeatureTaps, create, freeze
from distilfuse.ops.stretch import min_max_stretch_batch
from distilfuse.train.checkpoint import (
    CHECKPOINT_FORMAT,
    claim_run_folder,
    load_resume_checkpoint,
    previous_checkpoint,
    rng_state,
    save_checkpoint,
    save_weights,
    seed_everything,
    set_rng_state,
)
from distilfuse.train.config import LOSS_SPACES, ConfigError
from distilfuse.train.data import TrainingData, to_device
from distilfuse.train.distributed import DistContext, unwrap
from distilfuse.train.init_trials import choose_initialisation
from distilfuse.train.logs import RunLog, epoch_line, peak_memory_mb
from distilfuse.train.optim import build_optimizer, build_scheduler
from distilfuse.train.strategies import STRATEGIES, Phase, Strategy
from distilfuse.train.teacher_cache import OUTPUT_KEY, EnsembleCache, TeacherCache, build_teacher_caches, teacher_inputs
from distilfuse.train.teachers import build_teacher
from distilfuse.train.validation import Validator


class Trainer:
    """Builds a run from a config and trains it: `Trainer(cfg, out_dir).fit()`.

    Strategies (`distilfuse.train.strategies`) decide what one optimisation step does; the loop around
    it (phases, teacher targets, epochs, checkpoints, DDP, AMP) lives here.
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
        claim_run_folder(self.out_dir, resume, overwrite, self.dist.is_main)
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
        if cfg["train"]["loss_space"] not in LOSS_SPACES:
            raise ConfigError(f"train.loss_space must be one of {', '.join(LOSS_SPACES)}")
        self.data = TrainingData.build(cfg["data"], self.seed, self.scale, self.dist)
        self.validator = (
            Validator(
                cfg["validation"],
                self.data.val_crops,
                self.scale,
                self.device,
                stretch=self.validates_stretched,
            )
            if self.data.val_crops
            else None
        )
        self.strategy: Strategy = self._make_strategy()
        per_step = self.strategy.batches_per_step
        self.sampler.passes = self.strategy.passes_per_epoch
        self.steps_per_epoch = self.sampler.batches_per_epoch // per_step
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"{len(self.pool)} patches give no full step of {per_step} batch(es) of "
                f"{cfg['data']['batch']}: raise data.patches_per_image or lower data.batch"
            )
        self.caches: dict[int, TeacherCache | EnsembleCache] = self._build_caches()

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.phase: Phase | None = None
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.log = RunLog()
        self.best: dict[str, Any] = {}
        self._resume: tuple[dict[str, Any], Path] | None = (
            load_resume_checkpoint(self.out_dir, cfg, self.dist.world, self._say) if resume else None
        )

    # ----------------------------------------------------------------------------------- building
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
        if scfg.get("init_seed") is not None:
            # Drawn aside, so that the global random state (data order, distiller layers) is the recipe seed's.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(scfg["init_seed"]))
                self.student.load_state_dict(create(scfg["name"], weights=None).state_dict())
        for prefix in getattr(self.student, "unused_parameters", ()):
            for name, p in self.student.named_parameters():
                if name.startswith(prefix):
                    p.requires_grad_(False)  # defined by the official layout but never used: DDP would wait on them
        self.teacher: nn.Module | None = None
        if cfg["teacher"] is not None:
            self.teacher = freeze(build_teacher(cfg["teacher"])).to(self.device)
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

    # The data's parts that strategies, tests and benchmarks reach through the trainer.
    @property
    def pool(self) -> PatchPool:
        return self.data.pool

    @property
    def dataset(self) -> PatchDataset:
        return self.data.dataset

    @property
    def sampler(self) -> ShardedBatchSampler:
        return self.data.sampler

    def _build_caches(self) -> dict[int, TeacherCache | EnsembleCache]:
        """One cache per teacher input scale used by any phase, with the features its distillers tap."""
        ccfg = self.cfg["cache"]
        if self.teacher is None or not ccfg["enabled"]:
            return {}
        needed: dict[int, set[str]] = defaultdict(set)
        for phase in self.strategy.phases.values():
            if phase.distillers:
                needed[phase.teacher_scale] |= self.teacher_features(phase)
        return build_teacher_caches(
            needed,
            ccfg["dir"],
            self.cfg["teacher"].get("name"),  # None for an ensemble: its members' caches are keyed by their names
            self.teacher,
            self.pool,
            self.dist,
            dtype=ccfg["dtype"],
            batch=int(ccfg["batch"]),
            device=self.device,
            progress=self.progress,
        )

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

    def build_optimizer(self, params: list[nn.Parameter], spec: dict[str, Any] | None = None) -> torch.optim.Optimizer:
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
                seen = DistillBatch(s_feats, t_feats, out, t_out, ir_ref, vis_ref)
                for name in phase.distillers:
                    distiller = self.distillers[name]
                    # Keys already name the distiller's type; a custom spec name is added in front.
                    prefix = "" if name == getattr(distiller, "name", name) else f"{name}/"
                    for key, value in self.distiller_runners[name](seen).items():
                        terms[prefix + key] = value
        return out, terms

    @property
    def validates_stretched(self) -> bool:
        """Whether validation scores the stretched raw output: `validation.stretch`, else the loss space's."""
        chosen = self.cfg["validation"].get("stretch")
        return self.cfg["train"]["loss_space"] == "stretch" if chosen is None else bool(chosen)

    @property
    def output_range(self) -> str:
        """How `fuse` reads the trained weights' fused image (declared in the safetensors files): stretched when
        the run trained on the stretched output or chose its checkpoint on it (a model for a stretching protocol,
        whose raw output may be compressed), else clipped."""
        stretched = self.cfg["train"]["loss_space"] == "stretch" or self.validates_stretched
        return "stretch" if stretched else "clip"

    def loss_space(self, raw: Tensor) -> Tensor:
        """What task and adversarial losses see: the raw output, the model's map to [0,1] (`train.loss_space:
        unit`, for tanh generators whose raw output lives in [-1,1]), or each sample min-max stretched
        (`stretch`, for recipes whose evaluation protocol stretches the output, as MMDRFuse's does)."""
        space = self.cfg["train"]["loss_space"]
        if space == "unit":
            return unwrap(self.student).to_unit_range(raw)
        if space == "stretch":
            return min_max_stretch_batch(raw)
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
    def enter_epoch(self) -> None:
        """Set up the current epoch: its phase (entered when it changes), the teacher cache its distillers
        read, and the sampler's order from the step reached in it."""
        phase = self.strategy.phase_for(self.epoch)
        if phase is not self.phase:
            self.enter_phase(phase)
        self.dataset.teacher_cache = self.caches.get(phase.teacher_scale) if phase.distillers else None
        self.sampler.set_epoch(self.epoch, self.step_in_epoch * self.strategy.batches_per_step)

    def batches(self) -> Iterator[dict[str, Any]]:
        """The rest of the epoch's batches (see `enter_epoch`), on the device."""
        loader = self.data.loader(int(self.cfg["data"]["workers"]), pin_memory=self.device.type == "cuda")
        return (to_device(batch, self.device) for batch in loader)

    def fit(self) -> dict[str, Any]:
        """Train to the end (or to `train.max_steps`); returns a summary."""
        tcfg = self.cfg["train"]
        epochs, max_steps = int(tcfg["epochs"]), tcfg["max_steps"]
        every = int(tcfg["checkpoint_every_steps"] or 0)
        if self._resume is not None:
            self._restore(*self._resume)
            self._resume = None
        stopped = False
        try:
            while self.epoch < epochs and not stopped:
                self.enter_epoch()
                per_step = self.strategy.batches_per_step
                if self.step_in_epoch == 0:
                    self.log.start_epoch()
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
                for batch in self.batches():
                    group.append(batch)
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
        self.step_in_epoch += 1
        self.global_step += 1
        log_every = int(self.cfg["train"]["log_every"] or 0)
        row = None
        if self.dist.is_main and log_every and self.global_step % log_every == 0:
            lr = self._lr()
            row = {"step": self.global_step, "epoch": self.epoch + 1, **({"lr": lr} if lr is not None else {})}
        self.log.add_step(values, row)

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
            "peak_memory_mb": round(peak_memory_mb(self.device), 1),
        }
        lr = self._lr()
        if lr is not None:
            row["lr"] = lr
        row.update(self.log.epoch_means(steps))
        self.epoch += 1
        self.step_in_epoch = 0
        every = int(self.cfg["train"]["validate_every"] or 0)
        improved = False
        if self.validator and every and (self.epoch % every == 0 or self.epoch == epochs):
            scores = self.validate() if self.dist.is_main else {}
            row.update({f"val_{k}": v for k, v in scores.items()})
            improved = self.dist.broadcast(self.validator.is_best(scores, self.best) if self.dist.is_main else False)
            if improved and self.dist.is_main:
                metric = self.validator.best_metric
                self.best = {"epoch": self.epoch, "metric": metric, "value": scores[metric]}
        if self.dist.is_main:
            self.log.add_epoch(row)
            self._say(epoch_line(row, epochs, improved))
        self._save("last.pt")
        if improved:
            self._save("best.pt", weights_name="best.safetensors")
        if self.dist.is_main:
            save_weights(self.out_dir / "last.safetensors", self.student, self.output_range)
            self.log.write(self.out_dir, self.cfg, self.best, self.global_step)

    def validate(self) -> dict[str, float]:
        """Mean of the configured metrics over the held-out crops ({} when there are none)."""
        return self.validator.scores(self.student) if self.validator else {}

    # ------------------------------------------------------------------------- the run's state
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
            **self.log.state_dict(),  # epoch_sums, history, step_log
            "best": self.best,
        }

    def _save(self, name: str, weights_name: str | None = None) -> None:
        state = self._state()  # every rank takes part (gathering rank-local states)
        if self.dist.is_main:
            save_checkpoint(self.out_dir / name, state, keep_previous=name == "last.pt")
            if weights_name:
                save_weights(self.out_dir / weights_name, self.student, self.output_range)
        self.dist.barrier()

    def _restore(self, state: dict[str, Any], path: Path) -> None:
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
        self.log.load_state_dict(state)
        self.best = state["best"]
        set_rng_state(local["rng"])
        self._say(f"resumed from {path} at epoch {self.epoch + 1}, step {self.step_in_epoch} of {self.steps_per_epoch}")

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
    With `train.init_trials` > 1 the student's initialisation is chosen first (`train.init_trials`).
    """
    out_dir = Path(out_dir)
    if int(cfg["train"]["init_trials"]) > 1:
        if DistContext.world_from_env() > 1:
            raise ConfigError("train.init_trials runs in one process: set it to 1 under torchrun")

        def run_trial(trial_cfg: dict[str, Any], folder: Path, epochs: int) -> None:
            trial_cfg["train"]["validate_every"] = 0
            trainer = Trainer(trial_cfg, folder, device=device, progress=progress, overwrite=True)
            steps, limit = epochs * trainer.steps_per_epoch, cfg["train"]["max_steps"]
            trainer.cfg["train"]["max_steps"] = steps if limit is None else min(steps, limit)
            trainer.fit()
            del trainer
            gc.collect()  # a Trainer and its strategy refer to each other: free its data and teacher now

        cfg = choose_initialisation(cfg, out_dir, run_trial, resume, overwrite, say=tqdm.write)
        # The trials may have ended before the run's first checkpoint: a resume then starts the run itself.
        resume = resume and any(p.is_file() for p in (out_dir / "last.pt", previous_checkpoint(out_dir / "last.pt")))
    return Trainer(cfg, out_dir, device=device, resume=resume, progress=progress, overwrite=overwrite).fit()
