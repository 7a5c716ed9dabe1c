"""The one small interface every continual-learning strategy implements.

The training loop (engine/train.py) owns the hot path; a strategy only plugs into it through
the hooks below, each a no-op by default, so a strategy module states just what it changes:

* ``phases``       which tasks' data each training phase sees (naive: one task a phase;
                   joint: everything in one phase; cumulative: all tasks so far) — declared
                   on the ``Params`` with the rest of the plan (samples per phase, batch growth,
                   model copies and buffers kept), which cost estimates read without building;
* ``before_task`` / ``after_task``  snapshots, Fisher estimates, buffer updates;
* ``on_optimizer`` / ``should_stop``  learning-rate warm-up, early stopping;
* ``param_groups`` frozen layers and per-layer learning-rate factors;
* ``phase_data``   the phase's training set, once per phase (replay's "grow the epoch");
* ``batch``        batch transform (replay appends buffer samples);
* ``penalty``      extra loss term (L2, EWC, distillation …);
* ``before_step``  after backward, before the optimizer step (gradient projection, SI);
* ``predict``      evaluation-time logits, given the task ids (per-task models, adapters);
* ``state_dict``   what must be saved so an interrupted run resumes bit-for-bit.

Hyperparameters live in a pydantic ``Params`` model per strategy, so the config validates them
at the edge with the same ranges and help texts the CLI and the app show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import torch
    from torch import nn

    from engine.data import Benchmark


class StrategyParams(BaseModel):
    """Base of every strategy's hyperparameters; ``name`` is the discriminator."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    name: str

    # Scenarios the strategy makes sense in; the config refuses the others with `why_not`.
    scenarios: ClassVar[tuple[str, ...]] = ("task", "domain", "class")
    why_not: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # A note per scenario shown beside the strategy where the user picks it (e.g. why a
    # regulariser cannot help in class-IL); empty for most.
    notes: ClassVar[dict[str, str]] = {}
    # Metrics that mean nothing for the strategy (joint: every row of R is the final model), and
    # why; pages show "—" with the reason.
    meaningless_metrics: ClassVar[tuple[str, ...]] = ()
    meaningless_reason: ClassVar[str] = ""
    # Model-sized tensors the strategy keeps besides the model (anchors, Fisher, an old model,
    # per-task copies); ``n_tasks`` may multiply it (see :meth:`model_copies`). For the cost
    # estimate only.
    extra_model_copies: ClassVar[float] = 0.0

    # -- the plan, from the hyperparameters alone (cost estimates and progress totals) ----------
    def phases(self, n_tasks: int) -> list[list[int]]:
        """Task ids trained in each phase; R gets one row per task after the last phase covering it."""
        return [[t] for t in range(n_tasks)]

    def phase_samples(self, phase: int, tasks: list[int], task_sizes: list[int]) -> int:
        """Training samples in one epoch of ``phase`` (the tasks' own data unless the strategy
        grows the epoch, as replay's ``grow_epoch`` does)."""
        return sum(task_sizes[t] for t in tasks)

    def batch_factor(self, batch_size: int) -> float:
        """Samples through the model per step ÷ train.batch_size (replay appends buffer samples,
        A-GEM and DER++ run extra memory batches)."""
        return 1.0

    def model_copies(self, n_tasks: int) -> float:
        """Model-sized tensors kept besides the model and its optimizer state."""
        return self.extra_model_copies

    def buffer_samples(self, n_tasks: int) -> int:
        """Training images the strategy keeps its own copy of (a rehearsal buffer)."""
        return 0


@dataclass
class Context:
    """What a strategy may look at: the benchmark, the scenario and the training settings."""

    bench: Benchmark
    scenario: str
    train: Any  # engine.config.TrainConfig (resolved)
    device: torch.device
    seed: int
    extras: dict[str, Any] = field(default_factory=dict)


class Strategy:
    """Base strategy: plain fine-tuning. Subclasses override only the hooks they need."""

    def __init__(self, params: StrategyParams, ctx: Context) -> None:
        self.p = params
        self.ctx = ctx

    # -- which data each phase trains on -----------------------------------------------------
    def phases(self, n_tasks: int) -> list[list[int]]:
        """Task ids trained in each phase (the plan of :meth:`StrategyParams.phases`)."""
        return self.p.phases(n_tasks)

    # -- hooks around a task -----------------------------------------------------------------
    def before_task(self, t: int, model: nn.Module) -> None:
        """Called before training phase ``t`` starts."""

    def after_task(self, t: int, model: nn.Module) -> None:
        """Called after training phase ``t`` ends (before it is evaluated and saved)."""

    def param_groups(self, t: int, model: nn.Module) -> list[dict[str, Any]]:
        """Optimizer parameter groups for phase ``t`` (frozen parameters are simply left out)."""
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]

    def on_optimizer(self, t: int, optimizer) -> None:
        """Called once the phase's optimizer exists (keep a handle for warm-up schedules)."""

    def should_stop(self, t: int, model: nn.Module) -> bool:
        """Checked at each evaluation point of a phase; True ends the phase early."""
        return False

    # -- hooks inside the loop ----------------------------------------------------------------
    def phase_data(
        self, t: int, x: torch.Tensor, y: torch.Tensor, tid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The whole training set of phase ``t`` before it is shuffled (a longer one grows the epoch)."""
        return x, y, tid

    def batch(
        self, t: int, x: torch.Tensor, y: torch.Tensor, tid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transform a minibatch (inputs, output-unit targets, task ids)."""
        return x, y, tid

    def penalty(
        self,
        t: int,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        tid: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor | None:
        """An extra loss term added to the task loss, or None."""
        return None

    def before_step(self, t: int, model: nn.Module) -> None:
        """After backward, before the optimizer step (e.g. gradient projection)."""

    def after_step(self, t: int, model: nn.Module) -> None:
        """After the optimizer step (e.g. path-integral bookkeeping)."""

    # -- evaluation ----------------------------------------------------------------------------
    def predict(self, model: nn.Module, x: torch.Tensor, tid: torch.Tensor) -> torch.Tensor:
        """Logits used for evaluation of inputs ``x`` from tasks ``tid``; per-task models and
        adapters override this (task-IL may use ``tid``; other scenarios must not)."""
        return model(x)

    # -- resumability --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values needed to resume after phase t (saved as JSON + safetensors,
        engine.tensor_tree: dicts, lists, tuples, numbers, strings and tensors)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
