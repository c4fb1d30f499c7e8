"""The training loop: BCELoss + Adam, validation after each epoch, early stopping with the best weights restored."""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from sentiment.config import TrainingConfig
from sentiment.errors import ConfigError
from sentiment.evaluate import compute_metrics


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda``/``cuda:N`` must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{spec}' requested but CUDA is not available here; use --set device=cpu")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{spec}' does not exist: {torch.cuda.device_count()} CUDA device(s) found")
    return torch.device(spec)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    val_f1: float | None = None
    lr: float = 0.0
    seconds: float = 0.0


@dataclass
class FitResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    def history_rows(self) -> list[dict]:
        return [asdict(r) for r in self.history]


def _to_device(batch: tuple[torch.Tensor, ...], device: torch.device) -> list[torch.Tensor]:
    non_blocking = device.type == "cuda"
    return [t.to(device, non_blocking=non_blocking) for t in batch]


@torch.no_grad()
def predict_probs(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) over a loader, in loader order."""
    model.eval()
    probs, labels = [], []
    for batch in loader:
        *inputs, y = _to_device(batch, device)
        probs.append(model(*inputs).float().cpu())
        labels.append(y.cpu())
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def _score(record: EpochRecord, monitor: str) -> float:
    # Higher is better for every monitored quantity once loss is negated.
    value = getattr(record, monitor)
    return -value if monitor == "val_loss" else value


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    config: TrainingConfig,
    device: torch.device,
    *,
    param_groups: list[dict] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_batch: Callable[[int, int, float], None] | None = None,
) -> FitResult:
    """Train ``model`` in place; with validation, stop early and restore the best weights."""
    model.to(device)
    optimizer = torch.optim.Adam(param_groups or model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
    if config.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    elif config.lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1)
    criterion = nn.BCELoss()
    result = FitResult()
    best_score, best_state, stale = -math.inf, None, 0
    n_batches = len(train_loader)
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        model.train()
        total, seen = 0.0, 0
        for i, batch in enumerate(train_loader, 1):
            *inputs, y = _to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(*inputs), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            seen += len(y)
            if on_batch is not None:
                on_batch(i, n_batches, total / seen)
        record = EpochRecord(epoch=epoch, train_loss=total / max(seen, 1), lr=optimizer.param_groups[0]["lr"])
        if val_loader is not None:
            probs, labels = predict_probs(model, val_loader, device)
            clipped = np.clip(probs, 1e-7, 1 - 1e-7)
            record.val_loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
            metrics = compute_metrics(labels, probs)
            record.val_accuracy, record.val_f1 = metrics["accuracy"], metrics["f1"]
        record.seconds = time.perf_counter() - start
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(record.val_loss if record.val_loss is not None else record.train_loss)
        elif scheduler is not None:
            scheduler.step()
        if val_loader is None:
            result.best_epoch = epoch
            continue
        score = _score(record, config.monitor)
        if score > best_score:
            best_score, stale, result.best_epoch = score, 0, epoch
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if config.patience and stale >= config.patience:
                result.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result
