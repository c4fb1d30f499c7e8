"""The training loop: BCELoss + Adam, validation after each epoch, early stopping back to the best weights.

Stopping on a signal, periodic checkpoints and resuming mid-epoch are ``sentiment.resume.ResumableFit``'s
job; the loop only tells it where it stands.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from sentiment import distributed
from sentiment.config import TrainingConfig
from sentiment.errors import ConfigError
from sentiment.fit_state import EpochRecord, FitCallbacks, FitResult, FitState, LoopState
from sentiment.metrics import compute_metrics
from sentiment.resume import ResumableFit


def to_device(batch: tuple[torch.Tensor, ...], device: torch.device) -> list[torch.Tensor]:
    non_blocking = device.type == "cuda"
    return [t.to(device, non_blocking=non_blocking) for t in batch]


@torch.no_grad()
def predict_probs(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) over a loader, in loader order."""
    model.eval()
    probs, labels = [], []
    for batch in loader:
        *inputs, y = to_device(batch, device)
        out = model(*inputs).float()
        if getattr(model, "head", "sigmoid") == "softmax":  # multiclass: N logits -> N probabilities
            out = out.softmax(-1)
        probs.append(out.cpu())
        labels.append(y.cpu())
    probs_, labels_ = torch.cat(probs).numpy(), torch.cat(labels).numpy()
    # several ranks: each predicted its range of the rows; all of them, in order, on every rank
    return distributed.gather_rows(probs_, loader), distributed.gather_rows(labels_, loader)


def make_optimizer(
    model: nn.Module, config: TrainingConfig, device: torch.device, param_groups: list[dict] | None
) -> tuple[torch.optim.Optimizer, Any]:
    """Adam (fused: one kernel per step, about 4x faster than foreach on CPU for a large fine-tuned
    embedding) and the configured learning-rate schedule (None for none)."""
    params = param_groups or model.parameters()
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    scheduler: Any = None
    if config.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    elif config.lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    return optimizer, scheduler


def make_criterion(
    class_weights: list[float] | None, multiclass: bool = False
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Binary (one sigmoid output): BCELoss, or the mean of each row's BCE times its class's weight.
    Multiclass (one logit per class): CrossEntropyLoss, weighted likewise. Label sets (one sigmoid per
    label, ``y`` rows x labels): each label's weight multiplies the loss of its positive cells, as
    BCEWithLogitsLoss's ``pos_weight`` does; negative cells keep weight 1."""
    if multiclass:
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights is not None else None
        cross_entropy = nn.CrossEntropyLoss(weight=weight)

        def multiclass(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if cross_entropy.weight is not None and cross_entropy.weight.device != logits.device:
                cross_entropy.to(logits.device)
            return cross_entropy(logits, y.long())

        return multiclass
    if class_weights is None:
        return nn.BCELoss()
    weights = torch.tensor(class_weights, dtype=torch.float32)
    per_row = nn.BCELoss(reduction="none")

    def weighted(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w = weights.to(y.device)
        cell = 1.0 + (w - 1.0) * y if y.ndim == 2 else w[y.long()]
        return (per_row(probs, y) * cell).mean()

    return weighted


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    config: TrainingConfig,
    device: torch.device,
    *,
    param_groups: list[dict] | None = None,
    train_eval_loader: DataLoader | None = None,
    callbacks: FitCallbacks | None = None,
    resume: FitState | None = None,
    class_weights: list[float] | None = None,
    multiclass: bool = False,
) -> FitResult:
    """Train ``model`` in place; with validation, stop early and restore the best weights.

    ``train_eval_loader`` (the training rows, unshuffled) adds each epoch's training accuracy to its record.
    ``class_weights`` (one per class index) weight each row's training loss by its class. ``multiclass``: the
    model gives one logit per class (softmax, cross-entropy).
    ``resume`` continues from a checkpoint state, batch for batch as if the run had never stopped; a stop
    requested through ``callbacks.should_stop`` raises ``fit_state.FitStopped``.
    """
    callbacks = callbacks or FitCallbacks()
    model.to(device)
    optimizer, scheduler = make_optimizer(model, config, device, param_groups)
    criterion = make_criterion(class_weights, multiclass)
    run = ResumableFit(model, optimizer, scheduler, train_loader, callbacks, resume)
    net = distributed.wrap(model, device)  # several ranks: DDP (the checkpoint's weights are loaded by now)
    seed, loop = torch.initial_seed(), run.loop
    while not loop.finished and loop.epoch <= config.epochs:
        start = time.perf_counter()
        net.train()
        distributed.spread_dropout(seed, loop.epoch)
        for batch in run.batches():
            *inputs, y = to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            out = net(*inputs)
            if not bool(torch.isfinite(out).all()):
                raise _diverged(loop.epoch, config)
            loss, shown, rows = _batch_loss(criterion, out, y, class_weights, multiclass)
            loss.backward()
            optimizer.step()
            run.batch_done(shown, rows)
        record = EpochRecord(loop.epoch, loop.total / max(loop.seen, 1), **_learning_rates(optimizer))
        if val_loader is not None:
            _validate(model, val_loader, device, record)
        record.seconds = time.perf_counter() - start
        loop.history.append(record)
        if train_eval_loader is not None:
            probs, y = predict_probs(model, train_eval_loader, device)
            right = _predicted(probs, y.ndim == 2) == np.asarray(y).astype(np.int64)
            record.train_accuracy = float(np.mean(right.all(axis=1) if y.ndim == 2 else right))  # subset
        if callbacks.on_epoch is not None:
            callbacks.on_epoch(record)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(record.val_loss if record.val_loss is not None else record.train_loss)
        elif scheduler is not None:
            scheduler.step()
        _early_stopping(loop, record, model, config, val_loader is not None)
        run.epoch_done(config.epochs)
    return run.finish()


def _diverged(epoch: int, config: TrainingConfig) -> ConfigError:
    """Outputs that are NaN or infinite: the weights blew up, which the settings cause (too large a step or
    decay), not the data; the loss function would otherwise fail with an internal error."""
    rates = f"training.lr = {config.lr:g}, training.wide_lr = {config.wide_lr:g}"
    if config.embedding_lr is not None:
        rates += f", training.embedding_lr = {config.embedding_lr:g}"
    return ConfigError(
        f"training diverged in epoch {epoch}: the model's outputs became NaN or infinite; lower the learning "
        f"rates ({rates}) or training.weight_decay = {config.weight_decay:g}"
    )


def _batch_loss(
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    out: torch.Tensor,
    y: torch.Tensor,
    class_weights: list[float] | None,
    multiclass: bool,
) -> tuple[torch.Tensor, float, int]:
    """The loss to back-propagate, the batch's loss to show and its rows. With several ranks ``y`` is this
    rank's part of the global batch; the loss is scaled so that DDP's gradient average is the global mean."""
    if not distributed.active():
        loss = criterion(out, y)
        return loss, loss.item(), len(y)
    loss = criterion(out, y) if len(y) else out.sum() * 0.0  # an empty part still joins the all-reduce
    weight = float(len(y))  # the mean's denominator: rows, or the rows' class weights (weighted CE)
    if multiclass and class_weights is not None:
        weight = float(torch.tensor(class_weights, dtype=torch.float64)[y.long().cpu()].sum())
    return distributed.global_batch_loss(loss, weight, len(y))


def _learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float | None]:
    """The MLP's learning rate, and the word vectors' when they have a group of their own (fine-tuning:
    ``model.build_classifier`` puts that group first)."""
    groups = optimizer.param_groups
    return {"lr": groups[-1]["lr"], "embedding_lr": groups[0]["lr"] if len(groups) > 1 else None}


def _predicted(probs: np.ndarray, multilabel: bool = False) -> np.ndarray:
    """Class index per row (the most probable class, or positive at 0.5 for one sigmoid output); label sets:
    each label at 0.5."""
    if probs.ndim == 2 and not multilabel:
        return probs.argmax(axis=1)
    return (probs >= 0.5).astype(np.int64)


def _validate(model: nn.Module, loader: DataLoader, device: torch.device, record: EpochRecord) -> None:
    probs, labels = predict_probs(model, loader, device)
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    if probs.ndim == 2 and labels.ndim == 1:  # cross-entropy of the true class
        record.val_loss = float(-np.mean(np.log(clipped[np.arange(len(labels)), labels.astype(np.int64)])))
    else:
        record.val_loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    metrics = compute_metrics(labels, probs)
    record.val_accuracy, record.val_f1 = metrics["accuracy"], metrics["f1"]  # f1: macro when multiclass


def _early_stopping(
    loop: LoopState, record: EpochRecord, model: nn.Module, config: TrainingConfig, validated: bool
) -> None:
    """Keep the best epoch's weights (by ``config.monitor``); stop after ``patience`` epochs without gain."""
    if not validated:
        loop.best_epoch = record.epoch
        return
    value = getattr(record, config.monitor)
    score = -value if config.monitor == "val_loss" else value  # higher is better once loss is negated
    if score > loop.best_score:
        loop.best_score, loop.stale, loop.best_epoch = score, 0, record.epoch
        loop.best = copy.deepcopy(model.state_dict())
    else:
        loop.stale += 1
        if config.patience and loop.stale >= config.patience:
            loop.stopped_early = True
