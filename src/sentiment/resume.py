"""Keeping a fit resumable: random states, replaying a part-trained epoch, stopping on request.

``trainer.fit`` tells ``ResumableFit`` where it stands (``batches``, ``batch_done``, ``epoch_done``,
``finish``); everything about stops, checkpoints and resuming happens here, out of the loop's way.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sentiment.errors import CheckpointError
from sentiment.fit_state import FitCallbacks, FitResult, FitState, FitStopped, LoopState

if TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader


def loader_generator(loader: DataLoader) -> torch.Generator | None:
    """The generator drawing a loader's batch order (batches.make_loader: BatchSampler over RandomSampler)."""
    sampler = getattr(loader, "sampler", None)
    inner = getattr(sampler, "sampler", sampler)
    return getattr(inner, "generator", None)


def capture_rng(generator: torch.Generator | None) -> dict[str, Any]:
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state() if generator is not None else None,
    }


def restore_rng(state: dict[str, Any], generator: torch.Generator | None) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and state["loader"] is not None:
        generator.set_state(state["loader"])


def _check_resumable(state: FitState, n_batches: int) -> None:
    """Where a checkpoint stands, and its random states, checked on throwaway objects: ``batches`` applies
    them only when the interrupted epoch is replayed."""
    import torch

    loop = state.loop
    if loop.epoch < 1 or not 0 <= loop.batch < n_batches or loop.seen < 0:
        raise ValueError(f"epoch {loop.epoch}, batch {loop.batch} of {n_batches}: out of range")
    for rng in (state.rng, state.epoch_rng):
        random.Random().setstate(rng["python"])
        np.random.RandomState().set_state(rng["numpy"])
        torch.Generator().set_state(rng["torch"])
        if rng["loader"] is not None:
            torch.Generator().set_state(rng["loader"])


class ResumableFit:
    """The training loop's bookkeeping for stops and resumes.

    ``fit`` calls ``batches()`` at the start of each epoch, ``batch_done`` after each optimizer step,
    ``epoch_done`` at the end of an epoch and ``finish`` at the end. Starting from a ``FitState``, the first
    epoch replays the interrupted one's batch order and skips the batches it had trained.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        loader: DataLoader,
        callbacks: FitCallbacks,
        resume: FitState | None,
    ) -> None:
        self.model, self.optimizer, self.scheduler, self.loader = model, optimizer, scheduler, loader
        self.callbacks = callbacks
        self.generator = loader_generator(loader)
        self.n_batches = len(loader)
        self._resume = resume
        self.loop = LoopState()
        if resume is not None:
            # A checkpoint whose state does not fit this model, optimizer or loader (damaged, or edited)
            # fails here, before any training, as bad input; not as torch's or random's error mid-epoch.
            try:
                _check_resumable(resume, self.n_batches)
                model.load_state_dict(resume.model)
                optimizer.load_state_dict(resume.optimizer)
                if scheduler is not None and resume.scheduler is not None:
                    scheduler.load_state_dict(resume.scheduler)
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
                reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
                raise CheckpointError(
                    f"does not fit this run ({type(exc).__name__}{': ' + reason if reason else ''})"
                ) from None
            self.loop = replace(resume.loop, history=list(resume.loop.history))
        self._epoch_rng: dict[str, Any] = {}
        self._last_checkpoint = time.monotonic()

    def batches(self) -> Iterator[Any]:
        """This epoch's batches (drawing their order), minus those a resumed epoch had already trained."""
        loop, resume = self.loop, self._resume
        self._resume = None  # only the first epoch resumes
        if resume is not None:
            restore_rng(resume.epoch_rng, self.generator)
        else:
            loop.batch, loop.total, loop.seen = 0, 0.0, 0
        self._epoch_rng = capture_rng(self.generator)
        batches = iter(self.loader)  # draws the batch order (and a seed from torch's global RNG)
        if resume is not None and loop.batch:
            for _ in range(loop.batch):  # already trained before the stop: replay the order, skip the work
                next(batches)
            restore_rng(resume.rng, self.generator)
        return batches

    def batch_done(self, loss: float, rows: int) -> None:
        loop, callbacks = self.loop, self.callbacks
        loop.total += loss * rows
        loop.seen += rows
        loop.batch += 1
        if callbacks.on_batch is not None:
            callbacks.on_batch(loop.batch, self.n_batches, loop.total / loop.seen)
        if callbacks.should_stop is not None and callbacks.should_stop() and loop.batch < self.n_batches:
            stopped = self.snapshot(self._epoch_rng)
            if callbacks.on_checkpoint is not None:
                callbacks.on_checkpoint(stopped)
            raise FitStopped(stopped, self.n_batches)

    def epoch_done(self, max_epochs: int) -> None:
        """Next epoch; a checkpoint when asked to stop or when ``checkpoint_every`` seconds have passed."""
        loop, callbacks = self.loop, self.callbacks
        loop.epoch += 1
        loop.finished = loop.stopped_early or loop.epoch > max_epochs
        stop = callbacks.should_stop is not None and callbacks.should_stop()
        due = time.monotonic() - self._last_checkpoint >= callbacks.checkpoint_every
        if callbacks.on_checkpoint is not None and (stop or due):
            loop.batch, loop.total, loop.seen = 0, 0.0, 0
            snapshot = self.snapshot(capture_rng(self.generator))
            callbacks.on_checkpoint(snapshot)
            self._last_checkpoint = time.monotonic()
            if stop and not loop.finished:
                raise FitStopped(snapshot, self.n_batches)

    def finish(self) -> FitResult:
        """The best weights back in the model; the finished fit as a result."""
        loop = self.loop
        if loop.best is not None:
            self.model.load_state_dict(loop.best)
        loop.finished = True
        loop.batch, loop.total, loop.seen = 0, 0.0, 0
        final = self.snapshot(capture_rng(self.generator))
        return FitResult(list(loop.history), loop.best_epoch, loop.stopped_early, final)

    def snapshot(self, epoch_rng: dict[str, Any]) -> FitState:
        return FitState(
            loop=replace(self.loop, history=list(self.loop.history)),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            rng=capture_rng(self.generator),
            epoch_rng=epoch_rng,
        )
