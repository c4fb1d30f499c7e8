"""A fit as plain data: per-epoch records, where the loop stands, its result, a checkpoint's state, and the
callbacks through which the caller hears of it. No logic here: ``trainer`` fills these in, ``resume`` keeps
them resumable and ``checkpoint`` writes and reads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_accuracy: float | None = None  # of the epoch's final weights, when fit gets a train_eval_loader
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_f1: float | None = None
    lr: float = 0.0  # the MLP's
    embedding_lr: float | None = None  # the fine-tuned word vectors', when they have their own
    seconds: float = 0.0


@dataclass
class LoopState:
    """Where a fit stands between two batches (with the weights, what a checkpoint holds)."""

    epoch: int = 1  # the epoch in progress, 1-based
    batch: int = 0  # batches of that epoch already trained
    total: float = 0.0  # running loss sum and sample count of that epoch
    seen: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    stale: int = 0
    stopped_early: bool = False
    finished: bool = False  # no epoch left to train (the last one ended, or early stopping fired)
    best: dict[str, torch.Tensor] | None = None  # weights of the best epoch so far


@dataclass
class FitResult:
    history: list[EpochRecord]
    best_epoch: int
    stopped_early: bool
    final: FitState  # the finished fit as a checkpoint state (resuming from it trains nothing)

    def history_rows(self) -> list[dict]:
        return [asdict(r) for r in self.history]


@dataclass
class FitCallbacks:
    """What the caller hears of a fit, and how it asks it to stop (all optional)."""

    on_epoch: Callable[[EpochRecord], None] | None = None
    on_batch: Callable[[int, int, float], None] | None = None  # (batch, n_batches, running loss)
    should_stop: Callable[[], bool] | None = None  # polled after every batch and epoch
    on_checkpoint: Callable[[FitState], None] | None = None  # on a stop, and every checkpoint_every seconds
    checkpoint_every: float = 60.0


@dataclass
class FitState:
    """Where a fit stands, as plain values and tensors: enough to continue it to the same result.

    ``epoch_rng`` holds the random states from when the epoch in progress began (before the loader drew its
    batch order), ``rng`` those of now: a resume replays the batch order from the first, skips the
    ``loop.batch`` batches already trained and then takes up the second.
    """

    loop: LoopState
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any]
    epoch_rng: dict[str, Any]


class FitStopped(Exception):
    """``fit`` stopped on request (SIGINT / SIGTERM) after a batch; ``on_checkpoint`` got its state first."""

    def __init__(self, state: FitState, n_batches: int) -> None:
        loop = state.loop
        super().__init__(f"stopped in epoch {loop.epoch} after batch {loop.batch}/{n_batches}")
        self.state, self.n_batches = state, n_batches
