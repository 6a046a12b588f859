"""What one optimisation step does, per training recipe; the loop around it is `engine.Trainer`, which
strategies see only through `TrainingContext`.

- `plain`: task losses + distillers, one optimizer (MLKD, the default mmdr-mini recipe);
- `autoencoder`: every image is fused with itself, so a fusion network learns to reconstruct its input
  (HKDnet's teacher: with equal inputs its spatial-softmax fusion layer is the identity);
- `adversarial`: SCAKD/FusionGAN least-squares GAN, `d_steps` discriminator updates (D_ir, D_vis) on fresh
  batches per generator update, separate optimizers;
- `two_stage_sr`: HKDnet, the student's fusion part alone against the teacher's LR features, then the whole
  super-resolving student against the teacher's HR outputs and features;
- `dynamic_refresh`: MMDRFuse, the plain step plus the refresh loss of `distilfuse.distill.refresh`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import Tensor, nn

from distilfuse.train.config import ConfigError

if TYPE_CHECKING:
    from distilfuse.data.patches import PatchPool
    from distilfuse.train.distributed import DistContext

STRATEGIES: dict[str, type[Strategy]] = {}


def register_strategy(name: str) -> Callable[[type[Strategy]], type[Strategy]]:
    def decorate(cls: type[Strategy]) -> type[Strategy]:
        cls.name = name
        STRATEGIES[name] = cls
        return cls

    return decorate


@dataclass(eq=False)
class Phase:
    """A span of epochs trained the same way."""

    name: str
    epochs: int
    distillers: list[str] = field(default_factory=list)  # names in Trainer.distillers
    task_losses: bool = True
    module: str = ""  # student submodule run and trained alone ("" = the whole student)
    teacher_scale: int = 1  # the teacher sees the HR patches (1) or the student's LR inputs (the SR scale)


class TrainingContext(Protocol):
    """What a strategy uses of the loop running it (`distilfuse.train.engine.Trainer`)."""

    cfg: dict[str, Any]
    device: torch.device
    dist: DistContext
    student: nn.Module
    epoch: int  # the current one, from 0

    @property
    def pool(self) -> PatchPool: ...

    def build_distillers(self, specs: Sequence[dict[str, Any]]) -> list[str]: ...

    def phase_parameters(self, phase: Phase) -> list[nn.Parameter]: ...

    def build_optimizer(
        self, params: list[nn.Parameter], spec: dict[str, Any] | None = None
    ) -> torch.optim.Optimizer: ...

    def autocast(self) -> contextlib.AbstractContextManager: ...

    def student_inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]: ...

    def run_student(
        self, ir: Tensor, vis: Tensor, features: set[str] | Sequence[str] = ()
    ) -> tuple[Tensor, dict[str, Tensor]]: ...

    def generator_terms(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]: ...

    def loss_space(self, raw: Tensor) -> Tensor: ...

    def optimize(self, loss: Tensor, name: str) -> None: ...


class Strategy:
    """Base: one phase over all epochs, plain generator step, one optimizer named 'student'."""

    name: ClassVar[str] = ""
    batches_per_step: int = 1
    passes_per_epoch: int = 1  # shuffles of the patches that make one epoch (see ShardedBatchSampler)
    scheduled_optimizer: str = "student"

    def __init__(self, trainer: TrainingContext, spec: dict[str, Any]) -> None:
        self.trainer = trainer
        self.spec = spec
        self.scale = int(spec.get("scale", 1))
        epochs = int(trainer.cfg["train"]["epochs"])
        self.phases: dict[int, Phase] = {0: Phase("main", epochs, trainer.build_distillers(trainer.cfg["distillers"]))}

    def phase_for(self, epoch: int) -> Phase:
        start = max(s for s in self.phases if s <= epoch)
        return self.phases[start]

    def build_optimizers(self, phase: Phase) -> dict[str, torch.optim.Optimizer]:
        return {"student": self.trainer.build_optimizer(self.trainer.phase_parameters(phase))}

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Hook turning a data batch into what the student trains on."""
        return batch

    def step(self, batches: list[dict[str, Any]]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """One update from `batches_per_step` batches: (loss terms that were summed, other values to log)."""
        _out, terms = self.trainer.generator_terms(self.prepare(batches[0]))
        self.trainer.optimize(sum(terms.values()), "student")
        return terms, {}

    # Global state goes in the checkpoint once; local state once per rank.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def local_state_dict(self) -> dict[str, Any]:
        return {}

    def load_local_state_dict(self, state: dict[str, Any]) -> None:
        pass


@register_strategy("plain")
class PlainStrategy(Strategy):
    pass


@register_strategy("autoencoder")
class AutoencoderStrategy(Strategy):
    """IR and VIS patches stacked into one batch, each given as both inputs: the output reconstructs it."""

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        if "teacher" in batch:
            raise ConfigError("strategy autoencoder trains without a teacher")
        images = torch.cat([batch["ir"], batch["vis"]])
        return {**batch, "ir": images, "vis": images}


class DiscriminatorPair(nn.Module):
    """D_ir and D_vis scored in one forward (one DDP call per discriminator update)."""

    def __init__(self, d_ir: nn.Module, d_vis: nn.Module) -> None:
        super().__init__()
        self.d_ir, self.d_vis = d_ir, d_vis

    def forward(self, ir: Tensor, vis: Tensor, fused: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.d_ir(ir), self.d_ir(fused), self.d_vis(vis), self.d_vis(fused)


@register_strategy("adversarial")
class AdversarialStrategy(Strategy):
    """SCAKD Algorithm 1: per generator update, `d_steps` (k = 2) discriminator updates, each on a fresh
    batch; generator loss = task losses + distillers + `adv_weight` * (LSGAN terms of D_ir and D_vis).

    Spec: `discriminator` (registered name, built twice with independent weights), `d_steps`,
    `adv_weight`, `soft_labels`, `d_optimizer` (defaults to the top-level optimizer), `epoch`:
    "generator" (Algorithm 1, default: an epoch is m = N/b generator steps, the generator's batches
    traversing the patches once, the discriminators' drawn from `d_steps` further shuffles) or "batches"
    (an epoch is one pass over the patches, N/((k+1)b) generator steps: the accounting before issue 10).
    """

    EPOCHS = ("generator", "batches")

    def __init__(self, trainer: TrainingContext, spec: dict[str, Any]) -> None:
        super().__init__(trainer, spec)
        from distilfuse.models import create

        name = spec.get("discriminator")
        if not name:
            raise ConfigError("strategy adversarial needs strategy.discriminator (a registered model name)")
        self.d_steps = int(spec.get("d_steps", 2))
        self.batches_per_step = self.d_steps + 1
        epoch = spec.get("epoch", "generator")
        if epoch not in self.EPOCHS:
            raise ConfigError(f"strategy adversarial: epoch must be one of {self.EPOCHS}, got {epoch!r}")
        self.passes_per_epoch = self.batches_per_step if epoch == "generator" else 1
        self.adv_weight = float(spec.get("adv_weight", 1.0))
        self.soft_labels = bool(spec.get("soft_labels", True))
        self.discriminators = DiscriminatorPair(create(name, weights=None), create(name, weights=None))
        self.discriminators.to(trainer.device).train()

    def build_optimizers(self, phase: Phase) -> dict[str, torch.optim.Optimizer]:
        self.d_runner = self.trainer.dist.wrap(self.discriminators, self.trainer.device)
        d_spec = self.spec.get("d_optimizer") or self.trainer.cfg["optimizer"]
        return {
            **super().build_optimizers(phase),
            "discriminator": self.trainer.build_optimizer(list(self.discriminators.parameters()), d_spec),
        }

    def step(self, batches: list[dict[str, Any]]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        from distilfuse.losses.adversarial import lsgan_d_loss, lsgan_g_loss

        trainer = self.trainer
        d_total = torch.zeros((), device=trainer.device)
        for batch in batches[:-1]:
            with torch.no_grad(), trainer.autocast():
                fused = trainer.loss_space(trainer.run_student(*trainer.student_inputs(batch))[0])
            with trainer.autocast():
                real_ir, fake_ir, real_vis, fake_vis = self.d_runner(batch["ir"], batch["vis"], fused.float())
                d_loss = lsgan_d_loss(real_ir.float(), fake_ir.float(), self.soft_labels) + lsgan_d_loss(
                    real_vis.float(), fake_vis.float(), self.soft_labels
                )
            trainer.optimize(d_loss, "discriminator")
            d_total = d_total + d_loss.detach()
        out, terms = trainer.generator_terms(batches[-1])
        self.discriminators.requires_grad_(False)  # the generator update must not touch D
        try:
            with trainer.autocast():
                fused = trainer.loss_space(out)
                g_adv = lsgan_g_loss(self.discriminators.d_ir(fused).float(), self.soft_labels) + lsgan_g_loss(
                    self.discriminators.d_vis(fused).float(), self.soft_labels
                )
            terms["adv"] = self.adv_weight * g_adv
            trainer.optimize(sum(terms.values()), "student")
        finally:
            self.discriminators.requires_grad_(True)
        return terms, {"d_loss": d_total / max(self.d_steps, 1)}

    def state_dict(self) -> dict[str, Any]:
        return {"discriminators": self.discriminators.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminators.load_state_dict(state["discriminators"])


@register_strategy("two_stage_sr")
class TwoStageSRStrategy(Strategy):
    """HKDnet: `fusion_epochs` of the student's `fusion_module` alone (its LR output against the teacher's
    features on the same LR inputs, through `fusion_distillers`), then the whole student (LR in, HR out)
    against the teacher on the HR patches (`distillers` + task losses). LR inputs are antialiased bilinear
    downsamplings of the HR patches by `scale`; a fresh optimizer starts each stage.
    """

    def __init__(self, trainer: TrainingContext, spec: dict[str, Any]) -> None:
        super().__init__(trainer, spec)
        if self.scale < 2:
            raise ConfigError("strategy two_stage_sr needs strategy.scale >= 2")
        fusion_epochs = int(spec.get("fusion_epochs", 0))
        epochs = int(trainer.cfg["train"]["epochs"])
        if not 0 < fusion_epochs < epochs:
            raise ConfigError(f"strategy.fusion_epochs must be between 1 and train.epochs - 1 ({epochs - 1})")
        module = spec.get("fusion_module")
        if not module:
            raise ConfigError("strategy two_stage_sr needs strategy.fusion_module (the student's fusion part)")
        trainer.student.get_submodule(module)  # fail now on a wrong name
        main = self.phases[0]
        self.phases = {
            0: Phase(
                "fusion",
                fusion_epochs,
                trainer.build_distillers(spec.get("fusion_distillers") or []),
                task_losses=False,
                module=module,
                teacher_scale=self.scale,
            ),
            fusion_epochs: Phase("sr", epochs - fusion_epochs, main.distillers),
        }
        if not self.phases[0].distillers:
            raise ConfigError("strategy two_stage_sr needs strategy.fusion_distillers (the stage-1 loss)")


@register_strategy("dynamic_refresh")
class DynamicRefreshStrategy(Strategy):
    """MMDRFuse eq. 13: distillation + comprehensive loss + `refresh_weight` * the dynamic refresh loss
    (eqs. 6-12) of `distilfuse.distill.refresh.RefreshMemory`, whose per-patch memory of the best
    historical outputs is rank-local state (each rank always sees the same shard of the pool).

    Spec: `refresh_weight` (1), `level`: `sample` (the paper's eqs. 6-8) or `batch` (the released code's
    rule, `BatchRefreshMemory`), `fill_epochs` (epochs that only store outputs; the code: 1), `refresh` =
    keyword arguments of the memory (`perceptual_weights`, `network`, `gap_scale`, `gradient`,
    `imagenet_normalize`).
    """

    def __init__(self, trainer: TrainingContext, spec: dict[str, Any]) -> None:
        super().__init__(trainer, spec)
        from distilfuse.distill.refresh import BatchRefreshMemory, RefreshMemory

        if self.scale != 1:
            raise ConfigError("strategy dynamic_refresh trains fusion at scale 1")
        memories = {"sample": RefreshMemory, "batch": BatchRefreshMemory}
        level = spec.get("level", "sample")
        if level not in memories:
            raise ConfigError(f"strategy.level must be sample or batch, not {level!r}")
        patch = int(trainer.cfg["data"]["patch"])
        self.weight = float(spec.get("refresh_weight", 1.0))
        self.fill_epochs = int(spec.get("fill_epochs", 0))
        self.memory = memories[level](len(trainer.pool), (patch, patch), **(spec.get("refresh") or {}))

    def step(self, batches: list[dict[str, Any]]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        trainer = self.trainer
        batch = batches[0]
        out, terms = trainer.generator_terms(batch)
        with trainer.autocast():
            fused = trainer.loss_space(out)
            # Score the current outputs first (eqs. 6-8), then learn from the stored bests (eqs. 9-12).
            fill = trainer.epoch < self.fill_epochs
            self.memory.update(batch["index"], fused, batch["ir"], batch["vis"], fill=fill)
            terms["refresh"] = self.weight * self.memory.loss(batch["index"], fused)
        trainer.optimize(sum(terms.values()), "student")
        return terms, {}

    def local_state_dict(self) -> dict[str, Any]:
        return self.memory.state_dict()

    def load_local_state_dict(self, state: dict[str, Any]) -> None:
        self.memory.load_state_dict(state)
